//! Each arm runs with its own ref's settings: a pull request that moves a provider, or edits the
//! `exec` pipeline that produces the answers, is compared against what the base really ran.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::gate::{experiment, metric};
use crate::support::{Run, TestRepo, refund_cases, results};

/// Cases in the suites below: `question N` for N in 0..CASES.
const CASES: usize = 40;

/// An OpenAI-compatible endpoint that answers `question N` correctly ("30 days") when
/// `correct(N)`, and counts the requests it receives.
struct Endpoint {
    correct: fn(usize) -> bool,
    requests: AtomicUsize,
}

struct Handle(Arc<Endpoint>);

impl Respond for Handle {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        self.0.requests.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let question = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        let n: usize = question
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.trim_end_matches(':').parse().ok())
            .unwrap_or(0);
        let text = if (self.0.correct)(n) {
            "Refunds are accepted within 30 days of delivery."
        } else {
            "Please contact the store about that."
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 10, "total_tokens": 30}
        }))
    }
}

async fn serve(correct: fn(usize) -> bool) -> (MockServer, Arc<Endpoint>) {
    let endpoint = Arc::new(Endpoint {
        correct,
        requests: AtomicUsize::new(0),
    });
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Handle(Arc::clone(&endpoint)))
        .mount(&server)
        .await;
    (server, endpoint)
}

/// A suite of one experiment over `question N` cases asserting "30 days", calling `provider`.
fn suite_repo(provider: &str) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\nproviders:\n  {provider}\ndefaults: {{provider: sim}}\nexperiments:\n  - name: refunds\n    variant: configs/refunds.yaml\n    dataset: datasets/refunds.jsonl\ngates:\n  pass_rate: {{direction: higher, margin: 0.02, blocking: true}}\n"
        ),
    );
    repo.write(
        "configs/refunds.yaml",
        "version: v1\nmodel: gpt-4o-mini\nprompt: ../prompts/refunds.md\n",
    );
    repo.write("prompts/refunds.md", "You answer questions about refunds.\n");
    repo.write("datasets/refunds.jsonl", &refund_cases(CASES));
    repo
}

async fn promptgate(repo: &TestRepo, args: &[&str]) -> Run {
    promptgate_in(repo.path(), args).await
}

/// The binary run from `dir`, off the async runtime (the fake servers live on it).
async fn promptgate_in(dir: &std::path::Path, args: &[&str]) -> Run {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        crate::support::promptgate_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

/// Every call's (provider, output, cached) of one arm.
fn calls(r: &Value, arm: &str) -> Vec<(String, String, bool)> {
    experiment(r, "refunds")["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c[arm].as_array().unwrap().clone())
        .map(|call| {
            (
                call["provider"].as_str().unwrap_or_default().to_owned(),
                call["output"].as_str().unwrap_or_default().to_owned(),
                call["cached"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_moving_base_url_is_compared_against_the_old_endpoint() {
    // 90% and 5% of the questions answered correctly.
    let (good, good_count) = serve(|n| n % 10 != 0).await;
    let (bad, bad_count) = serve(|n| n % 20 == 0).await;
    let spec = |url: &str| format!("sim: {{type: openai-compatible, base_url: \"{url}/v1\", max_retries: 0}}");
    let repo = suite_repo(&spec(&good.uri()));
    repo.commit("base");
    repo.checkout_new("pr");
    repo.edit("promptgate.yaml", &good.uri(), &bad.uri());
    repo.commit("move the provider to the new gateway");

    let run = promptgate(&repo, &["run", "--base", "main", "--out", "out"]).await;
    run.expect_code(1).stdout_has("verdict: FAIL");
    assert_eq!(
        good_count.requests.load(Ordering::SeqCst),
        CASES,
        "the old endpoint serves the baseline"
    );
    assert_eq!(
        bad_count.requests.load(Ordering::SeqCst),
        CASES,
        "the new endpoint serves the candidate"
    );
    let r = results(&repo.path().join("out"));
    let refunds = experiment(&r, "refunds");
    let pass_rate = metric(refunds, "pass_rate");
    // 36 and 2 of the 40 questions answered correctly.
    assert!(
        (pass_rate["baseline"].as_f64().unwrap() - 36.0 / 40.0).abs() < 1e-12,
        "{pass_rate}"
    );
    assert!(
        (pass_rate["candidate"].as_f64().unwrap() - 2.0 / 40.0).abs() < 1e-12,
        "{pass_rate}"
    );
    assert_eq!(pass_rate["verdict"], "regression");
    assert_eq!(refunds["changes"], json!(["provider `sim`: base_url changed"]));
    // Calls report the provider as configured, whichever arm's endpoint served them.
    assert!(calls(&r, "baseline").iter().all(|(provider, _, _)| provider == "sim"));
    assert!(calls(&r, "candidate").iter().all(|(provider, _, _)| provider == "sim"));
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    // Backticks from the config are escaped in the comment (they render as backticks).
    assert!(
        report.contains("Affected by: promptgate.yaml\n- provider &#96;sim&#96;: base_url changed\n"),
        "{report}"
    );
}

/// A pipeline script answering every question correctly, and one answering none.
const GOOD_PIPELINE: &str = "cat >/dev/null\necho 'Refunds are accepted within 30 days.'\n";
const BROKEN_PIPELINE: &str = "cat >/dev/null\necho 'I cannot help with that.'\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_switching_to_a_broken_exec_command_fails() {
    let repo = suite_repo("sim: {type: exec, command: [/bin/sh, scripts/answer.sh]}");
    repo.write("scripts/answer.sh", GOOD_PIPELINE);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.write("scripts/answer-v2.sh", BROKEN_PIPELINE);
    repo.edit("promptgate.yaml", "scripts/answer.sh", "scripts/answer-v2.sh");
    repo.commit("the new pipeline");

    let run = promptgate(&repo, &["run", "--base", "main", "--out", "out"]).await;
    run.expect_code(1);
    let r = results(&repo.path().join("out"));
    let refunds = experiment(&r, "refunds");
    let pass_rate = metric(refunds, "pass_rate");
    assert_eq!(
        (pass_rate["baseline"].as_f64(), pass_rate["candidate"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(
        refunds["changes"],
        json!([
            "provider `sim`: command changed",
            "provider `sim`: scripts/answer-v2.sh added"
        ])
    );
}

/// The variables a config passes to an `exec` program are part of what it answers with: a
/// second run with another value is sent again, not answered from the cache the first filled
/// (the audit's `MODE=beta` run replayed `mode=alpha`).
#[test]
fn an_exec_programs_variables_are_part_of_its_cache_identity() {
    let repo = suite_repo("sim: {type: exec, command: [/bin/sh, scripts/answer.sh], env: [ANSWER_MODE]}");
    repo.write(
        "scripts/answer.sh",
        "cat >/dev/null\nif [ \"$ANSWER_MODE\" = good ]; then echo 'Refunds are accepted within 30 days.'; else echo 'I cannot help with that.'; fi\n",
    );
    repo.commit("base");
    let run = |mode: &str, out: &str| {
        crate::support::promptgate_env(
            repo.path(),
            &["run", "--base", "main", "--head", "main", "--all", "--out", out],
            &[("ANSWER_MODE", mode)],
        )
    };
    run("good", "first").expect_code(0);
    let first = results(&repo.path().join("first"));
    assert_eq!(metric(experiment(&first, "refunds"), "pass_rate")["candidate"], 1.0);
    run("bad", "second");
    let second = results(&repo.path().join("second"));
    let refunds = experiment(&second, "refunds");
    assert_eq!(metric(refunds, "pass_rate")["candidate"], 0.0, "{refunds}");
    // Sent again (both arms are one pipeline here: one of each identical pair is sent).
    let sent = refunds["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["baseline"]
                .as_array()
                .unwrap()
                .iter()
                .chain(c["candidate"].as_array().unwrap())
        })
        .filter(|call| call["cached"] == false)
        .count();
    assert!(sent > 0, "every call answered from the first run's cache");
}

/// Warms the cache with the base pipeline's answers (both arms at main), then starts `pr`.
async fn warm_then_branch(repo: &TestRepo) {
    promptgate(
        repo,
        &["run", "--base", "main", "--head", "main", "--all", "--out", "warm"],
    )
    .await
    .expect_code(0);
    repo.checkout_new("pr");
}

/// An exec pipeline whose `scripts/answer.sh` is `script`, over a module `lib/answer.sh` that
/// answers well, its experiment depending on `lib/**`; committed as the base.
fn module_pipeline_repo(script: &str) -> TestRepo {
    let repo = suite_repo("sim: {type: exec, command: [/bin/sh, scripts/answer.sh]}");
    let suite = std::fs::read_to_string(repo.path().join("promptgate.yaml")).unwrap();
    repo.write(
        "promptgate.yaml",
        &suite.replace(
            "    dataset: datasets/refunds.jsonl\n",
            "    dataset: datasets/refunds.jsonl\n    depends_on: [\"lib/**\"]\n",
        ),
    );
    repo.write("scripts/answer.sh", script);
    repo.write("lib/answer.sh", GOOD_PIPELINE);
    repo.commit("base");
    repo
}

/// Every candidate call was sent (none from the cache) and answered as the broken pipeline does.
#[track_caller]
fn assert_broken_and_sent(r: &Value) {
    let candidate = calls(r, "candidate");
    assert!(
        candidate
            .iter()
            .all(|(_, output, cached)| !*cached && output == "I cannot help with that."),
        "{candidate:?}"
    );
}

/// A pipeline reads more than its command names: here the module its script sources. A pull
/// request that edits only that module is a new pipeline, never answered with the base's
/// output (from a warm cache, or by sharing the baseline's identical call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_module_the_exec_command_does_not_name_is_a_new_pipeline() {
    let repo = module_pipeline_repo(". lib/answer.sh\n");
    warm_then_branch(&repo).await;
    repo.write("lib/answer.sh", BROKEN_PIPELINE);
    repo.commit("break the module");

    let run = promptgate(&repo, &["run", "--base", "main", "--out", "out"]).await;
    run.expect_code(1);
    assert_broken_and_sent(&results(&repo.path().join("out")));
}

/// The working tree's pipeline is its files on disk, a new module not yet committed among
/// them: here an override the script sources when it exists. Its answers are the override's,
/// never the committed pipeline's from the warm cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_uncommitted_module_is_part_of_the_working_tree_s_pipeline() {
    let repo = module_pipeline_repo("if [ -f lib/override.sh ]; then . lib/override.sh; else . lib/answer.sh; fi\n");
    warm_then_branch(&repo).await;
    // Not committed, not added: only on disk.
    repo.write("lib/override.sh", BROKEN_PIPELINE);

    let run = promptgate(&repo, &["run", "--base", "main", "--head", "WORKTREE", "--out", "out"]).await;
    run.expect_code(1);
    let r = results(&repo.path().join("out"));
    assert_broken_and_sent(&r);
    // A second run of the same working tree is the same pipeline: its answers come from the
    // cache, though the first run's output folder is now in the working tree.
    let again = promptgate(&repo, &["run", "--base", "main", "--head", "WORKTREE", "--out", "out"]).await;
    again.expect_code(1);
    let r = results(&repo.path().join("out"));
    assert!(calls(&r, "candidate").iter().all(|(_, _, cached)| *cached));
}

/// A commit's pipeline is the commit's files: gating the checked-out commit while an untracked
/// module sits beside it runs the pipeline from a worktree of the commit, not from the checkout
/// (where it would read the module, and cache what it read under the commit's tree).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_s_pipeline_does_not_read_an_untracked_module_beside_it() {
    let repo = module_pipeline_repo("if [ -f lib/override.sh ]; then . lib/override.sh; else . lib/answer.sh; fi\n");
    warm_then_branch(&repo).await;
    repo.write("prompts/refunds.md", &format!("{}\n", repo.read("prompts/refunds.md")));
    repo.commit("a blank line");
    repo.write("lib/override.sh", BROKEN_PIPELINE);

    let run = promptgate(&repo, &["run", "--base", "main", "--out", "out"]).await;
    run.expect_code(0);
    let r = results(&repo.path().join("out"));
    let candidate = calls(&r, "candidate");
    assert!(
        candidate
            .iter()
            .all(|(_, output, _)| output == "Refunds are accepted within 30 days."),
        "{candidate:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_exec_script_runs_at_base_from_a_worktree_and_is_not_served_from_the_cache() {
    let repo = suite_repo("sim: {type: exec, command: [/bin/sh, scripts/answer.sh]}");
    repo.write("scripts/answer.sh", GOOD_PIPELINE);
    repo.commit("base");
    warm_then_branch(&repo).await;
    repo.write("scripts/answer.sh", BROKEN_PIPELINE);
    repo.commit("rewrite the pipeline");

    // Run from a folder inside the repository: commands run from their arm's tree root, not
    // from promptgate's working directory.
    let inside = repo.path().join("prompts");
    let run = promptgate_in(&inside, &["run", "--base", "main", "--out", "../out"]).await;
    run.expect_code(1);
    let r = results(&repo.path().join("out"));
    let refunds = experiment(&r, "refunds");
    assert_eq!(refunds["changes"], json!(["provider `sim`: scripts/answer.sh changed"]));
    let pass_rate = metric(refunds, "pass_rate");
    assert_eq!(
        (pass_rate["baseline"].as_f64(), pass_rate["candidate"].as_f64()),
        (Some(1.0), Some(0.0))
    );
    // The base pipeline's answers may serve the baseline again; never the candidate.
    let baseline = calls(&r, "baseline");
    let candidate = calls(&r, "candidate");
    assert!(
        baseline
            .iter()
            .all(|(_, output, cached)| *cached && output.contains("30 days")),
        "{baseline:?}"
    );
    assert!(
        candidate
            .iter()
            .all(|(_, output, cached)| !*cached && output == "I cannot help with that."),
        "{candidate:?}"
    );
    // The worktree of the merge base is gone, and git forgot it.
    let listed = repo.git(&["worktree", "list", "--porcelain"]);
    assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
}
