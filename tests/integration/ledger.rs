//! `promptgate ledger record` and `show` end to end: the built binary, a results.json and a
//! canary.json written by the contract, and a fake GitHub API on 127.0.0.1 holding the
//! `promptgate-ledger` branch.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{Run, TestRepo};

const REPO: &str = "octo-org/prompts";
const TOKEN: &str = "ghs_FAKE0LEDGER0TOKEN0never0printed00000";
const MERGE: &str = "3e7c0de000000000000000000000000000000001";
const HEAD: &str = "1ed9e70000000000000000000000000000000001";
const HEAD_TREE: &str = "7ee0000000000000000000000000000000000001";
const MOVED: &str = "1ed9e70000000000000000000000000000000002";
const MOVED_TREE: &str = "7ee0000000000000000000000000000000000002";
const NEW_COMMIT: &str = "c0ffee0000000000000000000000000000000003";

/// A results.json of one changed experiment, as `promptgate run` writes it (the keys the
/// results model requires).
fn results_json(version: &str, pass_rate: f64) -> Value {
    let metric = json!({
        "name": "pass_rate", "direction": "higher", "blocking": true, "gated": true,
        "baseline": 0.95, "candidate": pass_rate, "delta": pass_rate - 0.95, "ci": [-0.06, 0.01],
        "p_value": 0.2, "p_adjusted": 0.2, "test": "mcnemar-exact", "n": 120,
        "verdict": "no_change", "non_inferior": false, "mde": 0.05, "margin": 0.02, "alpha": 0.05,
        "slo": null, "fails_gate": false, "candidate_ci": [pass_rate - 0.03, pass_rate + 0.02]
    });
    let arm = |v: &str| {
        json!({"variant": "configs/support.yaml", "version": v, "model": "gpt-4o-mini",
        "prompt": "prompts/support.md", "temperature": 0.2, "max_tokens": 512, "top_p": null})
    };
    json!({
        "schema_version": 1, "tool_version": "0.1.0", "verdict": "pass", "reason": "no regression",
        "base": {"ref": "main", "sha": "ba5e000000000000000000000000000000000001"},
        "head": {"ref": "main", "sha": MERGE},
        "config": "promptgate.yaml",
        "experiments": [{
            "name": "support", "status": "changed", "affected_by": ["prompts/support.md"],
            "verdict": "pass", "reason": "no regression", "provider": "openai",
            "baseline": arm("v1.2.0"), "candidate": arm(version), "repeats": 1,
            "metrics": [metric], "cases": []
        }],
        "unaffected": [],
        "run": {"cases": 120, "calls": 240, "completed": 240, "errored": 0, "cache_hits": 0,
                "spend_usd": 0.1, "estimated_usd": 0.1, "simulated": false, "duration_ms": 1000}
    })
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// Runs `promptgate ARGS` as a step of a `push` workflow on the default branch.
fn in_actions(dir: &Path, api: &str, args: &[&str]) -> Run {
    let event = write_json(
        dir,
        "push.json",
        &json!({"ref": "refs/heads/main", "after": MERGE, "repository": {"full_name": REPO}}),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", "push")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", api)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_SHA", MERGE)
        .output()
        .expect("the binary runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token leaked"
    );
    run
}

async fn in_actions_async(dir: &Path, api: String, args: &[&str]) -> Run {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        in_actions(&dir, &api, &args)
    })
    .await
    .unwrap()
}

async fn mock(server: &MockServer, verb: &str, route: &str, status: u16, body: Value) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .mount(server)
        .await;
}

fn git(p: &str) -> String {
    format!("/repos/{REPO}/git{p}")
}

fn b64(text: &str) -> String {
    promptgate::github::git_data::base64(text.as_bytes())
}

/// The branch exists at `head` (tree `tree`) and holds `ledger` as ledger.jsonl.
async fn branch_at(server: &MockServer, head: &str, tree: &str, ledger: &str, times: Option<u64>) {
    let mut m =
        Mock::given(method("GET"))
            .and(path(git("/ref/heads/promptgate-ledger")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"ref": "refs/heads/promptgate-ledger", "object": {"type": "commit", "sha": head}}),
            ));
    if let Some(n) = times {
        m = m.up_to_n_times(n).with_priority(1);
    }
    m.mount(server).await;
    mock(
        server,
        "GET",
        &git(&format!("/commits/{head}")),
        200,
        json!({"sha": head, "tree": {"sha": tree}}),
    )
    .await;
    let blob = format!("b10b{}", &tree[4..]);
    mock(
        server,
        "GET",
        &git(&format!("/trees/{tree}")),
        200,
        json!({"sha": tree, "tree": [
            {"path": "README.md", "type": "blob", "sha": "4ead000000000000000000000000000000000001"},
            {"path": "ledger.jsonl", "type": "blob", "sha": blob}
        ]}),
    )
    .await;
    // GitHub wraps blob content at 60 characters.
    let wrapped: String = b64(ledger)
        .as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect();
    mock(
        server,
        "GET",
        &git(&format!("/blobs/{blob}")),
        200,
        json!({"sha": blob, "encoding": "base64", "content": wrapped}),
    )
    .await;
}

/// The writes every record makes: a blob, a tree, a commit; the PR of the merge commit is #12.
async fn writable(server: &MockServer) {
    mock(
        server,
        "POST",
        &git("/blobs"),
        201,
        json!({"sha": "b10b000000000000000000000000000000000009"}),
    )
    .await;
    mock(
        server,
        "POST",
        &git("/trees"),
        201,
        json!({"sha": "7ee0000000000000000000000000000000000009"}),
    )
    .await;
    mock(server, "POST", &git("/commits"), 201, json!({"sha": NEW_COMMIT})).await;
    mock(
        server,
        "GET",
        &format!("/repos/{REPO}/commits/{MERGE}/pulls"),
        200,
        json!([{"number": 11, "merge_commit_sha": "0000000000000000000000000000000000000000"},
               {"number": 12, "merge_commit_sha": MERGE}]),
    )
    .await;
    // The Actions token cannot read `/user`: promptgate's comments are github-actions[bot]'s.
    mock(
        server,
        "GET",
        "/user",
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;
    let state = |by: &str| {
        json!({"v": 1, "head_sha": "feed", "waiver": {"by": by, "reason": "the judge is flaky", "via": "label",
            "accepted": [{"experiment": "support", "metric": "pass_rate", "direction": "higher", "estimate": -0.04, "ci": [-0.07, -0.01]}]}})
    };
    let sticky = |id: u64, login: &str, by: &str| {
        json!({"id": id, "user": {"login": login}, "body": format!(
            "<!-- promptgate:report -->\n## promptgate: waived\n<!-- promptgate:state {} -->", state(by))})
    };
    // A human pasting a state with a waiver is not the bot.
    mock(
        server,
        "GET",
        &format!("/repos/{REPO}/issues/12/comments"),
        200,
        json!([
            sticky(5, "mallory", "mallory"),
            sticky(6, "github-actions[bot]", "maya")
        ]),
    )
    .await;
    mock(
        server,
        "GET",
        &format!("/repos/{REPO}/issues/15/comments"),
        200,
        json!([]),
    )
    .await;
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.unwrap()
}

fn lines(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

fn body(r: &Request) -> Value {
    serde_json::from_slice(&r.body).unwrap()
}

/// The ledger text the blob uploads carried, in order.
fn uploaded(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path().ends_with("/git/blobs"))
        .map(|r| {
            let content = body(r)["content"].as_str().unwrap().to_owned();
            String::from_utf8(promptgate::github::git_data::unbase64(&content).unwrap()).unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_record_creates_the_ledger_branch_with_one_line_per_experiment() {
    let dir = tempfile::tempdir().unwrap();
    // The merge regressed, and a maintainer had accepted it on the pull request.
    let mut results = results_json("v1.3.0", 0.93);
    results["verdict"] = json!("fail");
    results["experiments"][0]["verdict"] = json!("fail");
    write_json(dir.path(), "results.json", &results);
    let server = MockServer::start().await;
    mock(
        &server,
        "GET",
        &git("/ref/heads/promptgate-ledger"),
        404,
        json!({"message": "Not Found"}),
    )
    .await;
    writable(&server).await;
    mock(
        &server,
        "POST",
        &git("/refs"),
        201,
        json!({"ref": "refs/heads/promptgate-ledger"}),
    )
    .await;

    let run = in_actions_async(
        dir.path(),
        server.uri(),
        &["ledger", "record", "--results", "results.json"],
    )
    .await;
    run.expect_code(0).stderr_has("created the branch");
    let requests = requests(&server).await;
    assert_eq!(
        lines(&requests),
        [
            format!("GET /repos/{REPO}/commits/{MERGE}/pulls"),
            "GET /user".to_owned(),
            format!("GET /repos/{REPO}/issues/12/comments"),
            format!("GET {}", git("/ref/heads/promptgate-ledger")),
            format!("POST {}", git("/blobs")),
            format!("POST {}", git("/trees")),
            format!("POST {}", git("/commits")),
            format!("POST {}", git("/refs")),
        ]
    );
    let tree = body(&requests[5]);
    assert!(tree.get("base_tree").is_none(), "an orphan: {tree}");
    assert_eq!(tree["tree"][0]["path"], "ledger.jsonl");
    assert_eq!(body(&requests[6])["parents"], json!([]));
    assert_eq!(body(&requests[7])["ref"], "refs/heads/promptgate-ledger");
    let text = &uploaded(&requests)[0];
    assert_eq!(text.lines().count(), 1);
    let entry: Value = serde_json::from_str(text.trim_end()).unwrap();
    assert_eq!(entry["experiment"], "support");
    assert_eq!(entry["version"], "v1.3.0");
    assert_eq!(entry["commit"], MERGE);
    assert_eq!(entry["pr"], 12, "the pull request that merged the commit");
    assert_eq!(entry["verdict"], "waived");
    assert_eq!(entry["waiver"]["by"], "maya", "from the bot's sticky comment only");
    assert_eq!(entry["waiver"]["metrics"], json!(["pass_rate"]));
    assert_eq!(entry["metrics"]["pass_rate"]["value"], 0.93);
    assert_eq!(entry["metrics"]["pass_rate"]["ci"], json!([0.9, 0.9500000000000001]));
    // stdout carries the lines appended.
    assert_eq!(run.stdout, *text);
}

/// A promoted canary of `support` v1.3.0, as `promptgate canary` writes canary.json.
fn promoted_canary() -> Value {
    json!({
        "schema_version": 1, "verdict": "promote", "experiment": "support", "version": "v1.3.0",
        "arms": {"baseline": {"n": 9000}, "canary": {"n": 1000}},
        "metrics": [{"name": "error_rate", "baseline": 0.01, "canary": 0.011, "delta": 0.001,
                     "ci": [-0.004, 0.006], "p_value": 0.7, "p_adjusted": 0.9, "test": "score",
                     "verdict": "no_change"}]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_decision_is_appended_after_the_existing_lines() {
    let dir = tempfile::tempdir().unwrap();
    let canary = promoted_canary();
    write_json(dir.path(), "canary.json", &canary);
    let existing = "{\"time\":\"2026-11-30T10:00:00Z\",\"experiment\":\"support\",\"version\":\"v1.3.0\",\"commit\":null,\"pr\":12,\"verdict\":\"pass\",\"metrics\":{},\"waiver\":null,\"canary\":null}\n";
    let server = MockServer::start().await;
    branch_at(&server, HEAD, HEAD_TREE, existing, None).await;
    writable(&server).await;
    mock(&server, "PATCH", &git("/refs/heads/promptgate-ledger"), 200, json!({})).await;

    let run = in_actions_async(
        dir.path(),
        server.uri(),
        &["ledger", "record", "--canary", "canary.json"],
    )
    .await;
    run.expect_code(0).stderr_has("appended");
    let requests = requests(&server).await;
    let text = &uploaded(&requests)[0];
    assert!(text.starts_with(existing), "{text}");
    let added: Value = serde_json::from_str(text[existing.len()..].trim_end()).unwrap();
    assert_eq!(added["verdict"], "promote");
    assert_eq!(added["canary"]["decision"], "shipped");
    assert_eq!(added["commit"], MERGE, "the deployed commit, from GITHUB_SHA");
    let tree = requests.iter().find(|r| r.url.path().ends_with("/git/trees")).unwrap();
    assert_eq!(body(tree)["base_tree"], HEAD_TREE, "the branch's other files stay");
    let commit = requests
        .iter()
        .find(|r| r.url.path().ends_with("/git/commits"))
        .unwrap();
    assert_eq!(body(commit)["parents"], json!([HEAD]));
    let moved = requests.iter().find(|r| r.method.as_str() == "PATCH").unwrap();
    assert_eq!(body(moved), json!({"sha": NEW_COMMIT, "force": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_racing_another_job_re_reads_the_branch_and_appends_to_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "results.json", &results_json("v1.4.0", 0.92));
    let ours_before = "{\"time\":\"2026-11-30T10:00:00Z\",\"experiment\":\"support\",\"version\":\"v1.3.0\",\"commit\":null,\"pr\":12,\"verdict\":\"pass\",\"metrics\":{},\"waiver\":null,\"canary\":null}\n";
    let theirs = format!(
        "{ours_before}{}",
        ours_before.replace("support", "billing").replace("v1.3.0", "v2.0.0")
    );
    let server = MockServer::start().await;
    // The first read sees HEAD; by the time the ref moves, another job has appended (MOVED).
    branch_at(&server, HEAD, HEAD_TREE, ours_before, Some(1)).await;
    branch_at(&server, MOVED, MOVED_TREE, &theirs, None).await;
    writable(&server).await;
    Mock::given(method("PATCH"))
        .and(path(git("/refs/heads/promptgate-ledger")))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"message": "Update is not a fast forward"})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mock(&server, "PATCH", &git("/refs/heads/promptgate-ledger"), 200, json!({})).await;

    let run = in_actions_async(
        dir.path(),
        server.uri(),
        &["ledger", "record", "--results", "results.json", "--pr", "15"],
    )
    .await;
    run.expect_code(0).stderr_has("moved meanwhile");
    let requests = requests(&server).await;
    let texts = uploaded(&requests);
    assert_eq!(texts.len(), 2, "one upload per attempt");
    assert!(texts[0].starts_with(ours_before) && texts[0].lines().count() == 2);
    assert!(
        texts[1].starts_with(&theirs),
        "the other job's line is kept: {}",
        texts[1]
    );
    assert_eq!(texts[1].lines().count(), 3);
    assert!(
        texts[1]
            .lines()
            .last()
            .unwrap()
            .contains("\"version\":\"v1.4.0\",\"commit\":\"3e7c0de")
    );
    assert!(texts[1].contains("\"pr\":15"), "--pr wins over the lookup");
    let commits: Vec<Value> = requests
        .iter()
        .filter(|r| r.url.path().ends_with("/git/commits"))
        .map(body)
        .collect();
    assert_eq!(
        commits[1]["parents"],
        json!([MOVED]),
        "the retry builds on the new head"
    );
    assert!(
        !lines(&requests).iter().any(|l| l.ends_with("/pulls")),
        "--pr needs no lookup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_without_contents_write_is_told_which_permission_to_grant() {
    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "results.json", &results_json("v1.3.0", 0.93));
    let server = MockServer::start().await;
    mock(
        &server,
        "GET",
        &git("/ref/heads/promptgate-ledger"),
        404,
        json!({"message": "Not Found"}),
    )
    .await;
    mock(
        &server,
        "POST",
        &git("/blobs"),
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;
    mock(
        &server,
        "GET",
        &format!("/repos/{REPO}/commits/{MERGE}/pulls"),
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;

    let run = in_actions_async(
        dir.path(),
        server.uri(),
        &["ledger", "record", "--results", "results.json"],
    )
    .await;
    run.expect_code(3)
        .stderr_has("GitHub refused to upload the ledger (403 Resource not accessible by integration")
        .stderr_has("hint: the token lacks the `contents: write` permission")
        // The PR lookup's refusal is a warning, not the failure.
        .stderr_has("warning: the pull request of 3e7c0de00000 was not found");
    assert!(run.stdout.is_empty(), "nothing was recorded: {}", run.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reads_the_ledger_branch_and_flags_a_slide_beyond_the_margin() {
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        "version: 1\nexperiments:\n  - {name: support, variant: configs/support.yaml, dataset: datasets/support.jsonl}\ngates:\n  pass_rate: {direction: higher, margin: 0.02, blocking: true}\n",
    );
    let line = |day: u32, version: &str, value: f64| {
        json!({"time": format!("2026-11-{day:02}T10:00:00Z"), "experiment": "support", "version": version,
               "commit": MERGE, "pr": day, "verdict": "pass",
               "metrics": {"pass_rate": {"value": value, "ci": [value - 0.01, value + 0.01]}},
               "waiver": null, "canary": null})
        .to_string()
            + "\n"
    };
    let ledger = [
        line(1, "v1.0.0", 0.95),
        line(2, "v1.1.0", 0.94),
        line(3, "v1.2.0", 0.92),
    ]
    .concat();
    let server = MockServer::start().await;
    branch_at(&server, HEAD, HEAD_TREE, &ledger, None).await;

    let run = in_actions_async(repo.path(), server.uri(), &["ledger", "show", "--out", "out"]).await;
    run.expect_code(0)
        .stdout_has("v1.2.0")
        .stdout_has("92.0% [91.0%, 93.0%]")
        .stdout_has("drift: support · pass_rate: 95.0% at v1.0.0 → 92.0% at v1.2.0 (−3.0 pp across 3 versions; the margin is 2.0 pp)");
    let md = repo.read("out/ledger.md");
    assert!(
        md.contains("![support: pass_rate across versions](charts/support-pass-rate-trend.svg)"),
        "{md}"
    );
    assert!(repo.path().join("out/charts/support-pass-rate-trend.png").is_file());
    assert!(
        requests(&server).await.iter().all(|r| r.method.as_str() == "GET"),
        "show only reads"
    );
}

#[test]
fn a_malformed_ledger_line_and_a_results_json_of_another_schema_are_exit_2() {
    let repo = TestRepo::new();
    repo.write(
        "ledger.jsonl",
        "{\"time\":\"2026-11-30T10:00:00Z\",\"experiment\":\"s\",\"version\":\"v1\",\"commit\":null,\"pr\":null,\"verdict\":\"pass\",\"metrics\":{},\"waiver\":null,\"canary\":null}\n{\"time\": \"2026-12-01T10:00:00Z\", \"experiment\": \"s\"\n",
    );
    repo.promptgate(&["ledger", "show", "--ledger", "ledger.jsonl"])
        .expect_code(2)
        .stderr_has("ledger line 2 is not a ledger entry")
        .stderr_has("--> ledger.jsonl:2:")
        .stderr_has("hint: ");

    let mut future = results_json("v1", 0.9);
    future["schema_version"] = json!(7);
    write_json(repo.path(), "results.json", &future);
    repo.promptgate(&["ledger", "record", "--results", "results.json", "--ledger", "new.jsonl"])
        .expect_code(2)
        .stderr_has("has schema_version 7; this promptgate reads schema_version 1");
    assert!(!repo.path().join("new.jsonl").exists(), "nothing recorded");

    // No ledger named and no token: the local repository's branch, which has none yet: an
    // empty history, and a word on stderr.
    repo.promptgate(&["ledger", "show", "--out", "empty"])
        .expect_code(0)
        .stdout_has("the ledger has no entries yet")
        .stderr_has("no ledger yet")
        .stderr_has("has no `promptgate-ledger` branch with a ledger.jsonl");
    assert!(repo.read("empty/ledger.md").contains("The ledger has no entries yet."));
    // On an Actions runner without a token, show reads the local branch, with a warning; record
    // refuses, as its commit would go with the job's checkout.
    crate::support::promptgate_env(repo.path(), &["ledger", "show"], &[("GITHUB_ACTIONS", "true")])
        .expect_code(0)
        .stderr_has("which may lack the repository's");
    write_json(repo.path(), "results.json", &results_json("v1.3.0", 0.93));
    crate::support::promptgate_env(
        repo.path(),
        &["ledger", "record", "--results", "results.json"],
        &[("GITHUB_ACTIONS", "true")],
    )
    .expect_code(2)
    .stderr_has("no ledger to write in GitHub Actions");
    // Outside a repository: say how to name one.
    let elsewhere = tempfile::tempdir().unwrap();
    crate::support::promptgate_in(elsewhere.path(), &["ledger", "show"])
        .expect_code(2)
        .stderr_has("not in a git repository, and neither --ledger FILE nor GITHUB_TOKEN is set");

    // Locally: two records of the same version append (a change that kept its version);
    // the same record made again adds nothing (a rerun is no second gating); show joins them.
    let record = || {
        repo.promptgate(&[
            "ledger",
            "record",
            "--results",
            "results.json",
            "--ledger",
            "local.jsonl",
            "--pr",
            "4",
        ])
    };
    for value in [0.93, 0.91] {
        write_json(repo.path(), "results.json", &results_json("v1.3.0", value));
        record().expect_code(0);
    }
    assert_eq!(repo.read("local.jsonl").lines().count(), 2);
    record()
        .expect_code(0)
        .stderr_has("already holds these entries (but for their time): nothing added");
    assert_eq!(repo.read("local.jsonl").lines().count(), 2);
    repo.promptgate(&["ledger", "show", "--ledger", "local.jsonl", "--experiment", "suport"])
        .expect_code(2)
        .stderr_has("did you mean `support`?");
    repo.promptgate(&["ledger", "show", "--ledger", "local.jsonl"])
        .expect_code(0)
        .stdout_has("pass (gated 2× at this version)")
        .stdout_has("Drift not checked");
}

#[test]
fn without_a_token_the_ledger_is_the_local_repositorys_branch_and_the_checkout_is_untouched() {
    let repo = TestRepo::with_demo_base();
    let head = repo.git(&["rev-parse", "HEAD"]);
    write_json(repo.path(), "results.json", &results_json("v1.3.0", 0.93));
    repo.promptgate(&["ledger", "record", "--results", "results.json", "--pr", "4"])
        .expect_code(0)
        .stderr_has("created the branch")
        .stderr_has("git push origin promptgate-ledger");
    write_json(repo.path(), "results.json", &results_json("v1.4.0", 0.94));
    repo.promptgate(&["ledger", "record", "--results", "results.json", "--pr", "5"])
        .expect_code(0)
        .stderr_has("appended");
    // Two commits on the branch, one line each; the checkout is where it was.
    assert_eq!(
        repo.git(&["log", "--format=%s", "promptgate-ledger"]),
        "promptgate ledger: support v1.4.0\npromptgate ledger: support v1.3.0\n"
    );
    let ledger = repo.git(&["show", "promptgate-ledger:ledger.jsonl"]);
    let versions: Vec<Value> = ledger
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["version"].clone())
        .collect();
    assert_eq!(versions, [json!("v1.3.0"), json!("v1.4.0")]);
    assert_eq!(repo.git(&["rev-parse", "HEAD"]), head);
    assert_eq!(repo.git(&["branch", "--show-current"]), "main\n");
    assert_eq!(repo.git(&["status", "--porcelain"]), "?? results.json\n");
    repo.promptgate(&["ledger", "show", "--experiment", "support"])
        .expect_code(0)
        .stdout_has("v1.3.0")
        .stdout_has("v1.4.0");

    // `origin`'s branch, as fetched, took another commit after v1.3.0: the two have diverged,
    // and a commit on the local one could not be pushed. Nothing is written.
    let tree = repo.git(&["rev-parse", "promptgate-ledger^{tree}"]);
    let other = repo.git(&[
        "commit-tree",
        tree.trim(),
        "-p",
        "promptgate-ledger^",
        "-m",
        "elsewhere",
    ]);
    repo.git(&["update-ref", "refs/remotes/origin/promptgate-ledger", other.trim()]);
    let tip = repo.git(&["rev-parse", "promptgate-ledger"]);
    write_json(repo.path(), "results.json", &results_json("v1.5.0", 0.95));
    repo.promptgate(&["ledger", "record", "--results", "results.json", "--pr", "6"])
        .expect_code(3)
        .stderr_has("each have commits the other lacks")
        .stderr_has("hint: bring them together first");
    assert_eq!(repo.git(&["rev-parse", "promptgate-ledger"]), tip);
}

/// A ledger file not written yet is an empty history, as a branch not made yet is (the audit:
/// exit 2), and the first version's record has its trend chart, a point where the history
/// starts (the audit: `--out` wrote no chart until a second version).
#[test]
fn a_ledger_file_starts_empty_and_its_first_version_has_a_chart() {
    let repo = TestRepo::new();
    repo.promptgate(&["ledger", "show", "--ledger", "history.jsonl"])
        .expect_code(0)
        .stderr_has("no ledger yet: history.jsonl does not exist");
    // In a folder that is not there, it is a mistyped path (the review).
    repo.promptgate(&["ledger", "show", "--ledger", "histroy/ledger.jsonl"])
        .expect_code(2)
        .stderr_has("cannot read the ledger histroy/ledger.jsonl");
    write_json(repo.path(), "results.json", &results_json("v1.0.0", 0.93));
    repo.promptgate(&[
        "ledger",
        "record",
        "--results",
        "results.json",
        "--ledger",
        "history.jsonl",
    ])
    .expect_code(0);
    repo.promptgate(&["ledger", "show", "--ledger", "history.jsonl", "--out", "out"])
        .expect_code(0)
        .stdout_has("v1.0.0");
    assert!(repo.path().join("out/charts/support-pass-rate-trend.svg").is_file());
    assert!(
        repo.read("out/ledger.md")
            .contains("charts/support-pass-rate-trend.svg")
    );
    // A canary-only config (`experiments: []`) gives the gates' margins too (the audit: "Drift
    // not checked: … the suite has no experiments").
    repo.write(
        "promptgate.yaml",
        "version: 1\nexperiments: []\ncanary:\n  experiment: support\n  version: v1.0.0\n  source: {type: jsonl, path: logs.jsonl, arm_field: variant, baseline: a, canary: b}\ngates:\n  pass_rate: {direction: higher, margin: 0.02, blocking: true}\n",
    );
    let shown = repo.promptgate(&["ledger", "show", "--ledger", "history.jsonl"]);
    assert!(
        !shown.stdout.contains("Drift not checked"),
        "{}\n{}",
        shown.stdout,
        shown.stderr
    );
    shown.expect_code(0);
}

/// Records made at once into one ledger file all land: each reads, appends and replaces the
/// file under a lock beside it (the audit: of two records at once, one was lost in 8 of 10
/// tries, and both exited 0).
#[test]
fn records_made_at_once_into_one_file_all_land() {
    let repo = TestRepo::new();
    let runs: Vec<std::process::Child> = (0..8)
        .map(|k| {
            write_json(
                repo.path(),
                &format!("results-{k}.json"),
                &results_json(&format!("v1.{k}.0"), 0.9),
            );
            std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
                .current_dir(repo.path())
                .args([
                    "ledger",
                    "record",
                    "--results",
                    &format!("results-{k}.json"),
                    "--ledger",
                    "shared.jsonl",
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut run in runs {
        assert!(run.wait().unwrap().success());
    }
    assert_eq!(repo.read("shared.jsonl").lines().count(), 8);
}

/// A record is appended only to a ledger that reads as one: after a corrupt line it would sit in
/// the middle of an append-only history `ledger show` refuses whole (the audit: `record`
/// appended after `{"time": broken`, exit 0).
#[test]
fn a_record_into_a_corrupt_ledger_is_refused_and_adds_nothing() {
    let repo = TestRepo::new();
    write_json(repo.path(), "results.json", &results_json("v1.4.0", 0.92));
    repo.write("ledger.jsonl", "{\"time\": broken\n");
    let run = crate::support::promptgate_in(
        repo.path(),
        &[
            "ledger",
            "record",
            "--results",
            "results.json",
            "--ledger",
            "ledger.jsonl",
        ],
    );
    run.expect_code(2)
        .stderr_has("ledger.jsonl:1:")
        .stderr_has("ledger line 1 is not a ledger entry")
        .stderr_has("hint:");
    assert_eq!(repo.read("ledger.jsonl"), "{\"time\": broken\n", "nothing appended");
}

/// On the ledger branch too, a record made again (equal but for its time to the latest line of
/// its experiment) adds nothing: no blob, no commit, the branch where it was (the reviewer: it
/// made a commit of the same tree and said "appended").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_made_again_on_the_branch_makes_no_commit() {
    let dir = tempfile::tempdir().unwrap();
    write_json(dir.path(), "results.json", &results_json("v1.4.0", 0.92));
    let record = &["ledger", "record", "--results", "results.json", "--pr", "15"];
    // The first record, onto a branch of one older line: what it uploads is the ledger after it.
    let older = "{\"time\":\"2026-11-30T10:00:00Z\",\"experiment\":\"support\",\"version\":\"v1.3.0\",\"commit\":null,\"pr\":12,\"verdict\":\"pass\",\"metrics\":{},\"waiver\":null,\"canary\":null}\n";
    let first = MockServer::start().await;
    branch_at(&first, HEAD, HEAD_TREE, older, None).await;
    writable(&first).await;
    mock(&first, "PATCH", &git("/refs/heads/promptgate-ledger"), 200, json!({})).await;
    in_actions_async(dir.path(), first.uri(), record).await.expect_code(0);
    let after = uploaded(&requests(&first).await)
        .pop()
        .expect("the first record uploads the ledger");
    assert_eq!(after.lines().count(), 2);
    // The same record again, onto that ledger.
    let again = MockServer::start().await;
    branch_at(&again, HEAD, HEAD_TREE, &after, None).await;
    writable(&again).await;
    in_actions_async(dir.path(), again.uri(), record)
        .await
        .expect_code(0)
        .stderr_has("already holds these entries (but for their time): nothing added");
    let sent = requests(&again).await;
    assert!(
        !sent.iter().any(|r| r.method.as_str() != "GET"),
        "nothing written: {:?}",
        lines(&sent)
    );
}
