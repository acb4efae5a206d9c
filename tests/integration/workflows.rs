//! The workflows promptgate ships (`examples/workflows/`, `.github/workflows/`) and the Action
//! itself, read as data and checked against the rules of docs/github.md's threat model:
//!
//! - no job that `issue_comment`, `pull_request_target` or `workflow_run` can start checks out
//!   pull-request code while it holds a secret other than the Actions token;
//! - comments cannot cancel an evaluation: no evaluating job runs on `issue_comment`, and no
//!   job a comment can start shares a concurrency group with an evaluating job;
//! - the Action's evaluating step has no GitHub token.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Events anyone can cause that run the base repository's workflow with its secrets.
const DANGEROUS: [&str; 3] = ["issue_comment", "pull_request_target", "workflow_run"];

struct Workflow {
    path: PathBuf,
    value: Value,
}

fn load(path: &Path) -> Workflow {
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Workflow {
        path: path.to_owned(),
        value,
    }
}

fn shipped() -> Vec<Workflow> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples/workflows", ".github/workflows"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                files.push(load(&path));
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    assert!(files.len() >= 6, "the workflows were not found");
    files
}

/// The Action itself (`action.yml`), read as data.
fn action() -> Workflow {
    load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml"))
}

/// The composite action's steps, in order.
fn steps_of_action(action: &Workflow) -> &Vec<Value> {
    action.value["runs"]["steps"].as_array().unwrap()
}

/// The events that start a workflow (`on:` as a word, a list or a map). YAML 1.1 reads a bare
/// `on` key as `true`; both spellings are looked for.
fn triggers(w: &Workflow) -> Vec<String> {
    let on = w
        .value
        .get("on")
        .or_else(|| w.value.get("true"))
        .unwrap_or(&Value::Null);
    match on {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        Value::Object(map) => map.keys().cloned().collect(),
        _ => panic!("{}: no `on:`", w.path.display()),
    }
}

fn jobs(w: &Workflow) -> Vec<(&String, &Value)> {
    w.value["jobs"]
        .as_object()
        .map(|m| m.iter().collect())
        .unwrap_or_default()
}

fn steps(job: &Value) -> Vec<&Value> {
    job["steps"].as_array().map(|s| s.iter().collect()).unwrap_or_default()
}

/// The secrets a job can read: every `secrets.NAME` in it or in the workflow's `env`, or all of
/// them with `secrets: inherit`. The Actions token (`secrets.GITHUB_TOKEN`) is not counted.
fn secrets(w: &Workflow, job: &Value) -> Vec<String> {
    let text = format!("{job} {}", w.value["env"]);
    let mut found: Vec<String> = text
        .split("secrets.")
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty() && name != "GITHUB_TOKEN")
        .collect();
    if job["secrets"] == "inherit" {
        found.push("(inherit)".to_owned());
    }
    found
}

/// Whether a step brings the pull request's code onto the runner.
fn checks_out_pull_request_code(step: &Value) -> bool {
    let refers_to_pr = |text: &str| {
        [
            "pull_request",
            "head_ref",
            "refs/pull",
            "workflow_run",
            "github.event.issue",
            "head_sha",
            "head.sha",
        ]
        .iter()
        .any(|needle| text.contains(needle))
    };
    let uses = step["uses"].as_str().unwrap_or("");
    if uses.starts_with("actions/checkout") {
        let with = &step["with"];
        return [&with["ref"], &with["repository"]]
            .iter()
            .any(|v| v.as_str().is_some_and(refers_to_pr));
    }
    let run = step["run"].as_str().unwrap_or("");
    run.contains("gh pr checkout") || (run.contains("git ") && refers_to_pr(run))
}

/// Whether a job evaluates: runs the gate (and so the pull request's prompts and programs).
fn evaluates(job: &Value) -> bool {
    steps(job).iter().any(|step| {
        let uses = step["uses"].as_str().unwrap_or("");
        if uses.starts_with("promptgate/promptgate") || uses == "./" {
            let mode = step["with"]["mode"].as_str().unwrap_or("full");
            return matches!(mode, "full" | "evaluate" | "warm");
        }
        let run = step["run"].as_str().unwrap_or("");
        run.contains("promptgate run")
            || (run.contains("promptgate ci") && !run.contains("--publish-only") && !run.contains("--republish"))
    })
}

/// The concurrency group of a job (else its workflow's), as written.
fn group<'a>(w: &'a Workflow, job: &'a Value) -> Option<&'a str> {
    let of = |c: &'a Value| c["group"].as_str().or(c.as_str());
    of(&job["concurrency"]).or_else(|| of(&w.value["concurrency"]))
}

/// The rules, as messages: empty when the workflows keep them.
fn violations(workflows: &[Workflow]) -> Vec<String> {
    let mut problems = Vec::new();
    let evaluation_groups: Vec<&str> = workflows
        .iter()
        .flat_map(|w| {
            jobs(w)
                .into_iter()
                .filter(|(_, j)| evaluates(j))
                .filter_map(move |(_, j)| group(w, j))
        })
        .collect();
    for w in workflows {
        let on = triggers(w);
        let dangerous: Vec<&str> = DANGEROUS
            .iter()
            .copied()
            .filter(|t| on.iter().any(|o| o == t))
            .collect();
        let file = w.path.file_name().unwrap().to_string_lossy();
        for (name, job) in jobs(w) {
            if !dangerous.is_empty() {
                let secrets = secrets(w, job);
                if !secrets.is_empty() && steps(job).into_iter().any(checks_out_pull_request_code) {
                    problems.push(format!(
                        "{file}: job `{name}` runs on {dangerous:?}, checks out pull-request code and holds {secrets:?}"
                    ));
                }
            }
            if on.iter().any(|t| t == "issue_comment") {
                if evaluates(job) {
                    problems.push(format!("{file}: job `{name}` evaluates on `issue_comment`"));
                }
                if let Some(g) = group(w, job)
                    && evaluation_groups.contains(&g)
                {
                    problems.push(format!(
                        "{file}: job `{name}` shares the concurrency group `{g}` with an evaluation: a comment would cancel it"
                    ));
                }
            }
        }
        if on.iter().any(|t| t == "issue_comment") && w.value["concurrency"]["cancel-in-progress"] == true {
            problems.push(format!(
                "{file}: a workflow-level concurrency with cancel-in-progress runs on `issue_comment`"
            ));
        }
    }
    problems
}

#[test]
fn no_shipped_workflow_gives_pull_request_code_a_secret_or_lets_a_comment_cancel_an_evaluation() {
    let workflows = shipped();
    assert_eq!(violations(&workflows), Vec::<String>::new());
    // The rules see what they must: the examples do evaluate, and do take comments.
    assert!(workflows.iter().any(|w| jobs(w).iter().any(|(_, j)| evaluates(j))));
    assert!(
        workflows
            .iter()
            .any(|w| triggers(w).iter().any(|t| t == "issue_comment"))
    );
}

#[test]
fn the_checks_catch_the_pwn_request_they_guard_against() {
    // The example workflow as it was: an accept comment checked out the pull request's head
    // with a key and a write token, under a workflow-wide cancelling concurrency group.
    let old = r#"
name: promptgate
on:
  pull_request:
    types: [opened, synchronize, reopened, labeled, unlabeled]
  issue_comment:
    types: [created]
permissions:
  contents: write
concurrency:
  group: promptgate-${{ github.event.pull_request.number || github.event.issue.number }}
  cancel-in-progress: true
jobs:
  gate:
    if: github.event_name == 'pull_request' || startsWith(github.event.comment.body, '/promptgate accept')
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-depth: 0
          ref: ${{ github.event_name == 'issue_comment' && format('refs/pull/{0}/head', github.event.issue.number) || '' }}
      - uses: promptgate/promptgate@v0
        env:
          OPENAI_API_KEY: ${{ secrets.OPENAI_API_KEY }}
"#;
    let workflow = Workflow {
        path: PathBuf::from("old-promptgate.yml"),
        value: serde_saphyr::from_str(old).unwrap(),
    };
    let problems = violations(&[workflow]);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("checks out pull-request code and holds [\"OPENAI_API_KEY\"]")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("evaluates on `issue_comment`")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("shares the concurrency group")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("workflow-level concurrency")),
        "{problems:?}"
    );
}

#[test]
fn the_actions_evaluating_step_has_no_github_token() {
    let action = action();
    let steps = steps_of_action(&action);
    let evaluating: Vec<&Value> = steps
        .iter()
        .filter(|s| s["run"].as_str().is_some_and(|r| r.contains("--no-publish")))
        .collect();
    assert_eq!(evaluating.len(), 1, "one evaluating step");
    let env = &evaluating[0]["env"];
    assert_eq!(env["GITHUB_TOKEN"], "", "{env}");
    assert!(!env.to_string().contains("github-token"), "{env}");
    // The steps that hold the token run no pull-request code: prepare and publish only.
    for step in steps.iter().filter(|s| {
        s["env"]["GITHUB_TOKEN"]
            .as_str()
            .is_some_and(|t| t.contains("github-token"))
    }) {
        let run = step["run"].as_str().unwrap_or("");
        assert!(
            run.contains("--prepare") || run.contains("--publish-only") || run.contains("--republish"),
            "a step with the token runs {run}"
        );
    }
    // The installed binary is the action's own version by default, and the install step needs
    // no token.
    assert_eq!(action.value["inputs"]["version"]["default"], "");
    assert!(steps[0]["env"].get("GH_TOKEN").is_none());
    // One artifact name per use of the action.
    assert_eq!(action.value["inputs"]["artifact-name"]["default"], "");
}

/// A maintainer's `workflow_dispatch` evaluates a fork's commit in the default branch's cache
/// scope, which every pull request restores: it must not save the cache the fork's code could
/// have written into.
#[test]
fn a_dispatched_evaluation_saves_no_cache() {
    let action = action();
    let steps = steps_of_action(&action);
    let saving: Vec<&Value> = steps
        .iter()
        .filter(|s| s["uses"].as_str().is_some_and(|u| u.starts_with("actions/cache/save")))
        .collect();
    assert_eq!(saving.len(), 1, "one step saves the cache");
    let condition = saving[0]["if"].as_str().unwrap_or("");
    assert!(
        condition.contains("github.event_name != 'workflow_dispatch'"),
        "{condition}"
    );
}

/// `fail-on: never` leaves the verdict to the check run in every step that can end with a
/// verdict's exit code 1 — the prepare step too, which re-publishes a waiver's event.
#[test]
fn every_step_of_the_action_that_runs_promptgate_follows_fail_on() {
    let action = action();
    let steps = steps_of_action(&action);
    let running: Vec<&Value> = steps
        .iter()
        .filter(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("promptgate \"${args[@]}\""))
        })
        .collect();
    assert_eq!(running.len(), 4, "prepare, evaluate, publish, and the other modes");
    for step in running {
        let run = step["run"].as_str().unwrap();
        assert_eq!(
            step["env"]["INPUT_FAIL_ON"], "${{ inputs.fail-on }}",
            "{}",
            step["name"]
        );
        assert!(
            run.contains(r#"if [ "$code" = 1 ] && "#) && run.contains(r#"[ "$INPUT_FAIL_ON" = never ]"#),
            "{} ignores fail-on:\n{run}",
            step["name"]
        );
    }
}

/// A fork's `pull_request` run has a read-only token: the accept label waives on a fork's pull
/// request only through `pull_request_target`, which the waiver workflow may take because it
/// checks nothing out, holds no secret and only re-publishes.
#[test]
fn the_waiver_workflow_takes_a_forks_label_and_only_republishes() {
    let waiver = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/promptgate-waiver.yml"));
    let mut on = triggers(&waiver);
    on.sort();
    assert_eq!(on, ["issue_comment", "pull_request_target"]);
    assert_eq!(
        waiver.value["on"]["pull_request_target"]["types"],
        serde_json::json!(["labeled", "unlabeled"])
    );
    for (name, job) in jobs(&waiver) {
        assert!(
            job["if"]
                .as_str()
                .unwrap()
                .contains("github.event_name == 'pull_request_target'")
        );
        assert!(!evaluates(job), "{name} evaluates");
        assert!(secrets(&waiver, job).is_empty(), "{name} holds a secret");
        for step in steps(job) {
            assert!(step["run"].is_null(), "{name} runs a script: {step}");
            let uses = step["uses"].as_str().unwrap_or("");
            assert!(uses.starts_with("promptgate/promptgate"), "{name} uses {uses}");
            assert_eq!(step["with"]["mode"], "republish");
        }
    }
}

#[test]
fn the_publish_workflow_honours_the_evaluation_and_never_fails_on_a_regression() {
    let publish = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/promptgate-publish.yml"));
    let job = &publish.value["jobs"]["publish"];
    let step = steps(job)
        .into_iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("promptgate/promptgate"))
        })
        .unwrap();
    assert_eq!(step["with"]["mode"], "publish");
    assert_eq!(step["with"]["fail-on"], "never");
    assert!(job["if"].as_str().unwrap().contains("workflow_run.conclusion"));
}

#[test]
fn the_deployment_workflow_promotes_only_after_a_reviewed_environment_and_records_what_was_done() {
    let deploy = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/promptgate-deploy.yml"));
    assert_eq!(triggers(&deploy), ["push"]);
    let job = |name: &str| &deploy.value["jobs"][name];
    assert_eq!(job("promote")["environment"], "production");
    assert_eq!(job("promote")["needs"], "canary");
    let judge = steps(job("canary")).into_iter().find(|s| s["id"] == "judge").unwrap()["run"]
        .as_str()
        .unwrap()
        .to_owned();
    for needle in [
        "promptgate canary",
        "GITHUB_STEP_SUMMARY",
        "0) echo \"decision=promote\"",
        "1) echo \"decision=rollback\"",
        "4) echo \"decision=hold\"",
    ] {
        assert!(judge.contains(needle), "the canary step lacks {needle}: {judge}");
    }
    let recorded: Vec<&str> = jobs(&deploy)
        .into_iter()
        .flat_map(|(_, j)| steps(j))
        .filter_map(|s| s["run"].as_str())
        .filter(|r| r.contains("promptgate ledger record"))
        .collect();
    assert_eq!(recorded.len(), 2, "the merge and the canary's decision: {recorded:?}");
    // The merge's gate reads the default branch's response cache (restored, never saved here).
    let record = steps(job("record"));
    let restored = record
        .iter()
        .position(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache/restore"))
        })
        .expect("the record job restores the response cache");
    let gate = record
        .iter()
        .position(|s| s["name"] == "Gate the merge")
        .expect("a gate step");
    assert!(restored < gate);
    assert_eq!(
        record[gate]["env"]["PROMPTGATE_CACHE_DIR"], record[restored]["with"]["path"],
        "the gate reads the folder restored"
    );
    assert!(jobs(&deploy).into_iter().flat_map(|(_, j)| steps(j)).all(|s| {
        !s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/cache/save") || u == "actions/cache@v4")
    }));
    // Only the steps that record hold the token; the step that runs the suite does not.
    for (name, job) in jobs(&deploy) {
        for step in steps(job) {
            let run = step["run"].as_str().unwrap_or("");
            if step["env"].get("GITHUB_TOKEN").is_some() {
                assert!(run.starts_with("promptgate ledger record"), "{name}: {run}");
            }
        }
        assert!(job.get("permissions").is_some(), "{name} states its permissions");
    }
}

#[test]
fn the_argo_analysis_runs_promptgate_canary_as_a_job_whose_exit_code_decides() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/argo/promptgate-analysis.yaml");
    let template: Value = serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(template["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(template["kind"], "AnalysisTemplate");
    let job = &template["spec"]["metrics"][0]["provider"]["job"]["spec"];
    // A failed Job is a failed analysis only if it is not retried into a success.
    assert_eq!(job["backoffLimit"], 0);
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let command: Vec<&str> = pod["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&command[..2], ["/tools/promptgate", "canary"]);
    assert!(
        command.contains(&"--watch") && command.contains(&"--max-duration"),
        "{command:?}"
    );
}

/// The fork-safe pair's untrusted evaluation runs for forks only: beside `promptgate.yml`,
/// which evaluates the repository's own pull requests with keys, its untrusted result would
/// race that run's comment and check.
#[test]
fn the_untrusted_evaluation_runs_for_forks_only() {
    let evaluate = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/promptgate-evaluate.yml"));
    let job = &evaluate.value["jobs"]["evaluate"];
    assert_eq!(
        job["if"].as_str(),
        Some("github.event.pull_request.head.repo.full_name != github.repository"),
        "{job}"
    );
    let own = load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows/promptgate.yml"));
    assert!(
        own.value["jobs"]["gate"]["if"]
            .as_str()
            .is_some_and(|c| c.contains("github.event.pull_request.head.repo.full_name == github.repository")),
        "the two split the pull requests between them"
    );
}

/// No shipped checkout leaves the job's token in `.git/config`, where every later step (a
/// build script, the pull request's programs) could read it: the steps that need a token are
/// given it by name.
#[test]
fn no_checkout_leaves_the_token_for_later_steps() {
    let mut left = Vec::new();
    for w in shipped() {
        for (name, job) in jobs(&w) {
            for step in steps(job) {
                let checkout = step["uses"]
                    .as_str()
                    .is_some_and(|u| u.starts_with("actions/checkout@"));
                if checkout && step["with"]["persist-credentials"] != Value::Bool(false) {
                    left.push(format!("{} job {name}", w.path.display()));
                }
            }
        }
    }
    assert!(left.is_empty(), "checkouts that keep the token: {left:?}");
}

/// DESIGN: "The example workflows warm the response cache on pushes to the default branch".
/// Each workflow a repository installs as its gate (the plain one, or the matrix instead of
/// it) has a job that runs the action in `warm` mode on a push to `main`, and its pull-request
/// jobs do not run on that push.
#[test]
fn the_gate_workflows_warm_the_cache_on_the_default_branch() {
    for name in ["promptgate.yml", "promptgate-matrix.yml"] {
        let w = shipped()
            .into_iter()
            .find(|w| w.path.file_name().is_some_and(|f| f == name))
            .unwrap_or_else(|| panic!("{name} not shipped"));
        assert!(triggers(&w).iter().any(|t| t == "push"), "{name}: no push trigger");
        let on = w.value.get("on").or_else(|| w.value.get("true")).unwrap();
        assert_eq!(on["push"]["branches"], serde_json::json!(["main"]), "{name}");
        let mut warms = 0;
        for (job_name, job) in jobs(&w) {
            let condition = job["if"].as_str().unwrap_or_default();
            let warm = steps(job).iter().any(|s| s["with"]["mode"] == "warm");
            if warm {
                warms += 1;
                assert!(
                    condition.contains("github.event_name == 'push'"),
                    "{name} {job_name}: {condition}"
                );
            } else {
                assert!(
                    condition.contains("github.event_name == 'pull_request'"),
                    "{name} {job_name} would run on the push: {condition}"
                );
            }
        }
        assert_eq!(warms, 1, "{name}: one warm job");
    }
}

/// docs/github.md: "The Action and the shipped workflows name every action they use by its
/// commit": a tag moved later cannot change what runs with the keys. promptgate's own action
/// (`promptgate/promptgate@v0`, which a repository pins to the release it reviewed) and local
/// actions are the exceptions.
/// A job that builds (runs `cargo`) runs every dependency's build script, which can write
/// `$GITHUB_ENV` for the job's later steps: no such job holds a write token, from its own
/// `permissions:` or the workflow's (the release workflow's builds held `contents: write` for
/// their upload step, the audit's catch). And no release asset is ever replaced (`--clobber`).
#[test]
fn no_job_that_builds_holds_a_write_token() {
    let writes = |permissions: &Value| {
        permissions == "write-all"
            || permissions
                .as_object()
                .is_some_and(|m| m.values().any(|v| v == "write"))
    };
    for w in shipped() {
        for (name, job) in jobs(&w) {
            for step in steps(job) {
                let run = step["run"].as_str().unwrap_or("");
                assert!(
                    !run.contains("--clobber"),
                    "{}: `{name}` replaces release assets",
                    w.path.display()
                );
            }
            let builds = steps(job)
                .iter()
                .any(|s| s["run"].as_str().is_some_and(|r| r.contains("cargo ")));
            if !builds {
                continue;
            }
            let permissions = job.get("permissions").unwrap_or(&w.value["permissions"]);
            assert!(
                !permissions.is_null() && !writes(permissions),
                "{}: job `{name}` builds with {permissions} (none set is the repository's default, which may write)",
                w.path.display()
            );
        }
    }
}

#[test]
fn every_action_used_is_pinned_to_a_commit() {
    let mut unpinned = Vec::new();
    let mut seen = 0;
    let action = action();
    let mut uses: Vec<(String, String)> = steps_of_action(&action)
        .iter()
        .filter_map(|s| s["uses"].as_str())
        .map(|u| ("action.yml".to_owned(), u.to_owned()))
        .collect();
    for w in shipped() {
        for (_, job) in jobs(&w) {
            for step in steps(job) {
                if let Some(u) = step["uses"].as_str() {
                    uses.push((w.path.display().to_string(), u.to_owned()));
                }
            }
        }
    }
    for (file, u) in uses {
        if u.starts_with("./") || u.starts_with("promptgate/promptgate@") {
            continue;
        }
        seen += 1;
        let pinned = u
            .split_once('@')
            .is_some_and(|(_, r)| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if !pinned {
            unpinned.push(format!("{file}: {u}"));
        }
    }
    assert!(seen >= 10, "the steps' actions were not found ({seen})");
    assert!(unpinned.is_empty(), "actions named by a tag or branch: {unpinned:?}");
}

/// In `full` mode the publishing step writes the job summary from the evaluation's results:
/// the evaluating step writes none, or the job's summary shows it twice. In `evaluate` mode,
/// the only step that runs promptgate, it writes it. The step's script runs in bash with a
/// stand-in `promptgate` that reports whether it was given a summary file.
#[test]
fn the_job_summary_is_written_once_in_full_mode() {
    let action = action();
    let step = steps_of_action(&action)
        .iter()
        .find(|s| s["id"] == "evaluate")
        .expect("the evaluating step");
    let script = step["run"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("promptgate");
    std::fs::write(&fake, "#!/bin/sh\necho \"summary=${GITHUB_STEP_SUMMARY:-none}\"\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&fake).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let summary_given = |mode: &str| {
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()))
            .env("GITHUB_STEP_SUMMARY", dir.path().join("summary.md"))
            .env("GITHUB_OUTPUT", dir.path().join("output"))
            .env("RUNNER_TEMP", dir.path())
            .env("INPUT_MODE", mode)
            .envs(
                [
                    "INPUT_CONFIG",
                    "INPUT_BASE",
                    "INPUT_HEAD",
                    "INPUT_OUT",
                    "INPUT_FAIL_ON",
                    "INPUT_APPROVE_COST",
                    "INPUT_ALL",
                    "INPUT_NO_CACHE",
                    "INPUT_SHARD",
                    "INPUT_ALLOW_FORK_HEAD",
                ]
                .map(|k| (k, "")),
            )
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        !String::from_utf8_lossy(&out.stdout).contains("summary=none")
    };
    assert!(!summary_given("full"));
    assert!(summary_given("evaluate"));
}
