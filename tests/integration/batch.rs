//! `promptgate run --batch` through the binary, against a fake Anthropic Message Batches API
//! on 127.0.0.1: a run whose wait runs out exits 3 naming its batch, and the rerun resumes
//! polling it (no second batch) and writes results at the batch rate, without latency.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::gate::{experiment, metric};
use crate::support::{Run, TestRepo, refund_cases, results};

const KEY: &str = "sk-ant-test-BATCH-INTEGRATION-77";
const CASES: usize = 6;

/// The batches API: one batch at a time, `in_progress` until `ended` is set.
#[derive(Default)]
struct Batches {
    creates: AtomicUsize,
    ended: AtomicBool,
    requests: Mutex<Vec<Value>>,
}

#[derive(Clone, Copy)]
enum Route {
    Create,
    Poll,
    Results,
}

struct Handle(Arc<Batches>, Route, String);

impl Respond for Handle {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let batches = &self.0;
        let id = "msgbatch_01TEST";
        let status = |processing_status: &str, results_url: Option<String>| {
            json!({"id": id, "type": "message_batch", "processing_status": processing_status,
                   "request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
                   "created_at": "2026-12-02T08:00:00Z", "expires_at": "2026-12-03T08:00:00Z",
                   "ended_at": null, "archived_at": null, "cancel_initiated_at": null, "results_url": results_url})
        };
        match self.1 {
            Route::Create => {
                batches.creates.fetch_add(1, Ordering::SeqCst);
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                *batches.requests.lock().unwrap() = body["requests"].as_array().cloned().unwrap_or_default();
                ResponseTemplate::new(200).set_body_json(status("in_progress", None))
            }
            Route::Poll if !batches.ended.load(Ordering::SeqCst) => {
                ResponseTemplate::new(200).set_body_json(status("in_progress", None))
            }
            Route::Poll => ResponseTemplate::new(200).set_body_json(status(
                "ended",
                Some(format!("{}/v1/messages/batches/{id}/results", self.2)),
            )),
            Route::Results => {
                let mut lines = String::new();
                for r in batches.requests.lock().unwrap().iter() {
                    let line = json!({"custom_id": r["custom_id"], "result": {"type": "succeeded", "message": {
                        "id": "msg_1", "type": "message", "role": "assistant", "model": r["params"]["model"],
                        "content": [{"type": "text", "text": "Refunds are accepted within 30 days."}],
                        "stop_reason": "end_turn", "usage": {"input_tokens": 1000, "output_tokens": 500}}}});
                    lines.push_str(&format!("{line}\n"));
                }
                ResponseTemplate::new(200).set_body_string(lines)
            }
        }
    }
}

async fn serve() -> (MockServer, Arc<Batches>) {
    let batches = Arc::new(Batches::default());
    let server = MockServer::start().await;
    for (verb, route, at) in [
        ("POST", Route::Create, None),
        ("GET", Route::Poll, Some(r"^/v1/messages/batches/[^/]+$")),
        ("GET", Route::Results, Some(r"^/v1/messages/batches/[^/]+/results$")),
    ] {
        let mock = Mock::given(method(verb)).and(header("x-api-key", KEY));
        let mock = match at {
            Some(regex) => mock.and(path_regex(regex)),
            None => mock.and(path("/v1/messages/batches")),
        };
        mock.respond_with(Handle(Arc::clone(&batches), route, server.uri()))
            .mount(&server)
            .await;
    }
    (server, batches)
}

fn suite_repo(base_url: &str, latency_blocking: bool) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\nproviders:\n  claude: {{type: anthropic, base_url: \"{base_url}\", api_key_env: TEST_BATCH_KEY}}\n\
             defaults: {{provider: claude}}\nexperiments:\n  - name: refunds\n    variant: configs/refunds.yaml\n    dataset: datasets/refunds.jsonl\n\
             gates:\n  pass_rate: {{direction: higher, margin: 0.02, blocking: true}}\n  latency_p95_ms: {{direction: lower, margin: \"10%\", blocking: {latency_blocking}}}\n"
        ),
    );
    repo.write(
        "configs/refunds.yaml",
        "version: v1\nmodel: claude-3-5-haiku-20241022\nprompt: ../prompts/refunds.md\nmax_tokens: 600\n",
    );
    repo.write("prompts/refunds.md", "You answer questions about refunds.\n");
    repo.write("datasets/refunds.jsonl", &refund_cases(CASES));
    repo.commit("base");
    repo.checkout_new("pr");
    repo.edit("prompts/refunds.md", "about refunds.", "about refunds, briefly.");
    repo.commit("shorter answers");
    repo
}

/// The binary with the key set, off the async runtime (the fake server lives on it).
async fn promptgate(repo: &TestRepo, args: &[&str]) -> Run {
    let dir = repo.path().to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::support::promptgate_env(&dir, &args, &[("TEST_BATCH_KEY", KEY)])
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_run_resumes_its_batch_after_the_wait_ran_out_and_prices_at_the_batch_rate() {
    let (server, batches) = serve().await;
    let repo = suite_repo(&server.uri(), false);

    // The wait runs out while the batch is in progress: exit 3, the batch named.
    let first = promptgate(
        &repo,
        &[
            "run",
            "--base",
            "main",
            "--out",
            "out",
            "--batch",
            "--batch-timeout",
            "50ms",
        ],
    )
    .await;
    first
        .expect_code(3)
        .stderr_has("--batch-timeout ran out with 1 batch(es) still running: `claude`: msgbatch_01TEST (in_progress)");
    assert_eq!(batches.creates.load(Ordering::SeqCst), 1);
    // Both arms' prompts differ, so the batch holds every call of both arms.
    assert_eq!(batches.requests.lock().unwrap().len(), 2 * CASES);

    // The rerun finds the recorded batch and polls it: no second batch.
    batches.ended.store(true, Ordering::SeqCst);
    let second = promptgate(&repo, &["run", "--base", "main", "--out", "out", "--batch"]).await;
    second
        .expect_code(0)
        .stderr_has("resuming batch msgbatch_01TEST of `claude`");
    assert_eq!(batches.creates.load(Ordering::SeqCst), 1);

    let r = results(&repo.path().join("out"));
    let refunds = experiment(&r, "refunds");
    for case in refunds["cases"].as_array().unwrap() {
        for call in case["baseline"]
            .as_array()
            .unwrap()
            .iter()
            .chain(case["candidate"].as_array().unwrap())
        {
            assert_eq!(call["batch"], true, "{call}");
            assert_eq!(call["latency_ms"], Value::Null, "{call}");
            // claude-3-5-haiku lists $0.80 in and $4 out per million tokens: 1000 in and 500
            // out cost $0.0028 at list price, $0.0014 at the batch rate.
            let cost = call["cost_usd"].as_f64().unwrap();
            let list = call["list_cost_usd"].as_f64().unwrap();
            assert!((cost - 0.0014).abs() < 1e-12, "{call}");
            assert!((list - 0.0028).abs() < 1e-12, "{call}");
        }
    }
    assert_eq!(metric(refunds, "latency_p95_ms")["verdict"], "no_data");
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("not measured: calls sent through a batch API"),
        "{report}"
    );
    for text in [&first.stdout, &first.stderr, &second.stdout, &second.stderr, &report] {
        assert!(!text.contains(KEY));
    }
    assert!(
        !std::fs::read_to_string(repo.path().join("out/results.json"))
            .unwrap()
            .contains(KEY)
    );
}

/// A shard sends its own part of the plan through the batch API, and says once (of the whole
/// plan) which calls go that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_batches_its_part_and_says_so_once() {
    let (server, batches) = serve().await;
    batches.ended.store(true, Ordering::SeqCst);
    let repo = suite_repo(&server.uri(), false);
    let run = promptgate(
        &repo,
        &["run", "--base", "main", "--out", "out", "--batch", "--shard", "1/2"],
    )
    .await;
    assert!(matches!(run.code, 0 | 1), "{run:?}");
    assert_eq!(run.stderr.matches("promptgate: --batch:").count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "--batch: {} of {} calls go through batch APIs",
            2 * CASES,
            2 * CASES
        )),
        "{}",
        run.stderr
    );
    let kept: usize = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("promptgate: shard 1/2: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the shard says its calls\n{}", run.stderr));
    assert!(kept > 0 && kept < 2 * CASES, "{kept}");
    assert_eq!(
        batches.requests.lock().unwrap().len(),
        kept,
        "the shard's calls, batched"
    );
}

/// With `--no-cache` a batch's record is still kept in the cache folder's `batches/` while the
/// batch runs (a rerun with or without the flag finds it); none is left in the output folder.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_batch_run_without_the_cache_leaves_no_records_folder() {
    let (server, batches) = serve().await;
    batches.ended.store(true, Ordering::SeqCst);
    let repo = suite_repo(&server.uri(), false);
    let run = promptgate(
        &repo,
        &["run", "--base", "main", "--out", "out", "--batch", "--no-cache"],
    )
    .await;
    run.expect_code(0);
    assert_eq!(batches.creates.load(Ordering::SeqCst), 1);
    assert!(repo.path().join("out/results.json").exists());
    assert!(!repo.path().join("out/batches").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_latency_gate_refuses_batch_before_anything_is_sent() {
    let (server, batches) = serve().await;
    let repo = suite_repo(&server.uri(), true);
    let run = promptgate(&repo, &["run", "--base", "main", "--out", "out", "--batch"]).await;
    run.expect_code(2)
        .stderr_has("--batch cannot decide the blocking gate `latency_p95_ms`")
        .stderr_has("hint: run without --batch");
    assert_eq!(batches.creates.load(Ordering::SeqCst), 0);
}

/// The batch records a run keeps in its repository's response cache folder.
fn batch_records(repo: &TestRepo) -> Vec<std::path::PathBuf> {
    fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.parent().is_some_and(|p| p.ends_with("batches"))
                && path.extension().is_some_and(|e| e == "json")
            {
                // Only a record renamed into place (not its temporary file, `.….tmp`).
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&crate::support::test_cache_home(repo.path()), &mut found);
    found
}

/// A CI job killed (SIGKILL: no chance to tidy up) while its batch runs: the rerun polls the
/// recorded batch and pays for no second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_batch_run_resumes_its_batch() {
    killed_batch_run_resumed_by(&[], &[]).await;
}

/// A rerun that adds `--no-cache` finds the batch as well: its records are kept in the cache
/// folder either way (the audit's rerun, looking beside the journal, paid for all 40 calls again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_batch_run_resumes_its_batch_when_the_rerun_adds_no_cache() {
    killed_batch_run_resumed_by(&[], &["--no-cache"]).await;
}

/// The same with the cache folder named (`--cache-dir`, as CI setups do): a rerun with
/// `--no-cache` looks in that folder, not the default one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_batch_run_resumes_its_batch_in_a_named_cache_folder_when_the_rerun_adds_no_cache() {
    killed_batch_run_resumed_by(&["--cache-dir", "CACHE"], &["--no-cache", "--cache-dir", "CACHE"]).await;
}

/// Kills a `--batch` run given `first_flags` once its batch is recorded, then reruns it with
/// `rerun_flags` (`CACHE` stands for a cache folder of the test's own): no second batch.
async fn killed_batch_run_resumed_by(first_flags: &[&str], rerun_flags: &[&str]) {
    let (server, batches) = serve().await;
    let repo = suite_repo(&server.uri(), false);
    let named = crate::support::test_cache_home(repo.path()).join("named");
    let named = named.to_str().unwrap();
    let flags = |given: &[&str]| -> Vec<String> {
        given
            .iter()
            .map(|f| {
                if *f == "CACHE" {
                    named.to_owned()
                } else {
                    (*f).to_owned()
                }
            })
            .collect()
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(repo.path())
        .env("XDG_CACHE_HOME", crate::support::test_cache_home(repo.path()))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .env("TEST_BATCH_KEY", KEY)
        .args(["run", "--base", "main", "--out", "out", "--batch"])
        .args(flags(first_flags))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The batch's id is recorded the moment it is created, before the first wait (the record is
    // written first without an id, while the batch is being submitted).
    let recorded = |repo: &TestRepo| {
        batch_records(repo).iter().any(|path| {
            std::fs::read(path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .is_some_and(|record| record["batch_id"].as_str().is_some_and(|id| !id.is_empty()))
        })
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !recorded(&repo) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never recorded its batch"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before its batch did"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(batches.creates.load(Ordering::SeqCst), 1);

    batches.ended.store(true, Ordering::SeqCst);
    let rerun_flags = flags(rerun_flags);
    let rerun_args: Vec<&str> = ["run", "--base", "main", "--out", "out", "--batch"]
        .into_iter()
        .chain(rerun_flags.iter().map(String::as_str))
        .collect();
    let rerun = promptgate(&repo, &rerun_args).await;
    rerun
        .expect_code(0)
        .stderr_has("resuming batch msgbatch_01TEST of `claude`");
    assert_eq!(batches.creates.load(Ordering::SeqCst), 1, "no second batch");
    assert!(
        batch_records(&repo).is_empty(),
        "the finished batch's record is removed"
    );
}
