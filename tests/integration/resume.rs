//! One runner per run, end to end: the binary against a priced fake OpenAI-compatible server on
//! 127.0.0.1 that counts every request by its identity (a hash of its body: model, messages,
//! seed). The hard cap holds across sequential looks; a run killed with SIGKILL resumes without
//! sending again a call that had finished, whichever look it was in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::live::{SECRET, demo_repo_with, gate, reply};
use crate::support::{TestRepo, results};

/// gpt-4o-mini in the demo's `pricing:`, USD per token.
const INPUT_USD: f64 = 0.15e-6;
const OUTPUT_USD: f64 = 0.60e-6;

/// The demo's suite makes 176 calls; its provider `sim` sends at most 8 at once.
const CALLS: usize = 176;
const CONCURRENCY: usize = 8;

/// A priced provider: it answers like the offline mock but bills every byte of the messages as
/// a token and the whole `max_tokens` as output (the most the runner's upper bound allows, and
/// about four times what the plan's estimate assumes), so a cap the estimate passes is reached
/// during the run.
struct Billing {
    delay: Duration,
    /// Each request's identity, in the order received.
    received: Mutex<Vec<u64>>,
    /// What the server billed, in USD.
    billed: Mutex<f64>,
    /// Output tokens billed beyond the request's `max_tokens` (reasoning tokens, say).
    extra_output: std::sync::atomic::AtomicU64,
}

impl Billing {
    fn new(delay: Duration) -> Arc<Billing> {
        Arc::new(Billing {
            delay,
            received: Mutex::new(Vec::new()),
            billed: Mutex::new(0.0),
            extra_output: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn received(&self) -> Vec<u64> {
        self.received.lock().unwrap().clone()
    }

    fn billed(&self) -> f64 {
        *self.billed.lock().unwrap()
    }
}

struct Handle(Arc<Billing>);

impl Respond for Handle {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let identity = promptgate::stats::fnv1a(request.body.iter().copied());
        let input: u64 = body["messages"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .map(|m| m["content"].as_str().unwrap_or("").len() as u64)
                    .sum()
            })
            .unwrap_or(0);
        let output = body["max_tokens"]
            .as_u64()
            .or(body["max_completion_tokens"].as_u64())
            .unwrap_or(0)
            + self.0.extra_output.load(std::sync::atomic::Ordering::Relaxed);
        let mut answer = reply(&body);
        answer["usage"] = json!({"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output});
        self.0.received.lock().unwrap().push(identity);
        *self.0.billed.lock().unwrap() += input as f64 * INPUT_USD + output as f64 * OUTPUT_USD;
        ResponseTemplate::new(200).set_body_json(answer).set_delay(self.0.delay)
    }
}

async fn start(billing: &Arc<Billing>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Handle(Arc::clone(billing)))
        .mount(&server)
        .await;
    server
}

/// The demo's suite without its judged experiment (help-center): these tests count the
/// generation calls of customer-support and product-faq, which the judge's calls would blur.
fn unjudged(suite: String) -> String {
    const HELP_CENTER: &str = "  - name: help-center";
    let start = suite.find(HELP_CENTER).expect("the demo has a help-center experiment");
    let end = start
        + suite[start..]
            .find("\n\n")
            .expect("the experiments end with a blank line");
    let suite = format!("{}{}", &suite[..start], &suite[end + 1..]);
    // Its judges' metrics go with it.
    suite
        .lines()
        .filter(|l| !l.contains("hallucination_rate:") && !l.contains("relevance:"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The demo pointed at the server, sequential with four looks of 44 calls, under `max_usd`.
fn sequential_repo(base_url: &str, max_usd: f64) -> TestRepo {
    capped_repo(base_url, max_usd, true)
}

/// The demo pointed at the server under `max_usd`, in looks or in one batch.
fn capped_repo(base_url: &str, max_usd: f64, sequential: bool) -> TestRepo {
    demo_repo_with(base_url, false, &|suite| {
        let suite = unjudged(suite).replace(
            "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
            &format!("budget: {{approve_above_usd: 5.00, max_usd: {max_usd}}}"),
        );
        match sequential {
            true => suite.replace(
                "defaults: {repeats: 1, alpha: 0.05, ",
                "defaults: {repeats: 1, alpha: 0.05, sequential: true, sequential_looks: 4, ",
            ),
            false => suite,
        }
    })
}

/// `promptgate run` as a child the test can kill.
fn spawn_gate(
    repo: &TestRepo,
    out: &str,
    extra: &[&str],
    vars: &[(&str, &str)],
    stderr: std::process::Stdio,
) -> std::process::Child {
    let dir = repo.path();
    std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(dir)
        .envs(vars.iter().copied())
        .env("XDG_CACHE_HOME", crate::support::test_cache_home(dir))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .args(["run", "--base", "main", "--head", "pr", "--out", out])
        .args(extra)
        .env("SIM_API_KEY", SECRET)
        .env("CI", "1")
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Waits until the server has received `n` requests, then kills the child with SIGKILL.
async fn kill_after(billing: &Billing, mut child: std::process::Child, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while billing.received().len() < n {
        assert!(tokio::time::Instant::now() < deadline, "the run never sent {n} calls");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) after {} calls", billing.received().len());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.kill().unwrap(); // SIGKILL: no chance to tidy up
    child.wait().unwrap();
    // A request the run wrote just before the kill may still be on its way through the server:
    // count it with the killed run's, not the rerun's, by waiting until the count stays put.
    let mut seen = billing.received().len();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = billing.received().len();
        if now == seen {
            break;
        }
        seen = now;
    }
}

/// How many requests of `after` the server had already received in `before`.
fn sent_again(before: &[u64], after: &[u64]) -> usize {
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for id in before {
        *seen.entry(*id).or_default() += 1;
    }
    after
        .iter()
        .filter(|id| match seen.get_mut(id) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hard_cap_holds_across_sequential_looks() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    // Unbounded, the four looks bill $0.121 (each about $0.030); the plan estimates $0.0292,
    // so a cap of $0.045 passes the plan and is reached in the second look. A cap per look
    // would never be reached.
    let cap = 0.045;
    let repo = sequential_repo(&server.uri(), cap);
    let run = gate(&repo, "out", &["--no-cache"]).await;
    run.expect_code(3).stderr_has("hard cap");
    let billed = billing.billed();
    let sent = billing.received().len();
    assert!(billed <= cap, "the server billed ${billed} under a cap of ${cap}");
    assert!(sent > CALLS / 4 && sent < CALLS / 2, "{sent} calls sent");
    let r = results(&repo.path().join("out"));
    assert_eq!(r["verdict"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(reason.contains("hard cap of $0.045"), "{reason}");
    assert!(
        reason.contains(&format!(
            "{} call(s) were not sent",
            r["run"]["budget_refused"].as_u64().unwrap()
        )),
        "{reason}"
    );
    assert!(
        !repo.path().join("out").join("journal.jsonl").exists(),
        "the outputs are written: the journal is gone"
    );
    // No experiment is judged on the calls the cap refused (they are not answers), and the
    // looks stop at the one the cap was reached in: its calls made are the ones sent.
    let mut made = 0;
    for e in r["experiments"].as_array().unwrap() {
        assert_eq!(e["verdict"], "error", "{}", e["name"]);
        let reason = e["reason"].as_str().unwrap();
        assert!(reason.contains("hard cap") || reason.contains("budget cap"), "{reason}");
        for m in e["metrics"].as_array().unwrap() {
            assert_eq!(m["verdict"], "no_data", "{} {}", e["name"], m["name"]);
            assert_eq!(m["fails_gate"], false, "{} {}", e["name"], m["name"]);
        }
        let sequential = &e["sequential"];
        assert_eq!(sequential["looks"].as_array().unwrap().len(), 2, "{sequential}");
        made += sequential["calls_made"].as_u64().unwrap() as usize;
    }
    assert_eq!(made, CALLS / 2 - r["run"]["budget_refused"].as_u64().unwrap() as usize);
    assert!(made >= sent, "{made} calls made, {sent} requests");
    let junit = std::fs::read_to_string(repo.path().join("out").join("junit.xml")).unwrap();
    assert!(!junit.contains("errors=\"0\""), "{junit}");
    // The report says how far the looks went (it showed nothing of them for a run that failed).
    let report = std::fs::read_to_string(repo.path().join("out").join("report.md")).unwrap();
    assert!(report.contains("Sequential: 2 looks"), "{report}");
    assert!(report.contains("stopped without a verdict"), "{report}");
    assert!(!report.contains("saved)"), "{report}");
}

/// A cap that refuses a few calls, fewer than any arm's error tolerance: the calls sent are
/// any share of the cases, and the refused ones are not answers, so no experiment is judged
/// (they once were, each refusal scored as a failed call, and junit.xml passed them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_the_cap_stopped_judges_no_experiment() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    // Unbounded, the calls bill $0.121: a cap of $0.11 refuses about one in ten.
    let repo = capped_repo(&server.uri(), 0.11, false);
    gate(&repo, "out", &["--no-cache"])
        .await
        .expect_code(3)
        .stderr_has("hard cap");
    let r = results(&repo.path().join("out"));
    assert_eq!(r["verdict"], "error");
    let refused = r["run"]["budget_refused"].as_u64().unwrap() as usize;
    assert!(refused > 0 && refused < CALLS / 5, "{refused} refused");
    for e in r["experiments"].as_array().unwrap() {
        assert_eq!(e["verdict"], "error", "{}", e["name"]);
        for m in e["metrics"].as_array().unwrap() {
            assert_eq!(m["verdict"], "no_data", "{} {}", e["name"], m["name"]);
            assert_eq!(m["fails_gate"], false, "{} {}", e["name"], m["name"]);
            // No numbers counting the refused calls (latency p95 read 60,000 ms).
            for key in ["baseline", "candidate", "delta", "ci", "p_value"] {
                assert!(m[key].is_null(), "{} {} {key}: {}", e["name"], m["name"], m[key]);
            }
        }
    }
    let junit = std::fs::read_to_string(repo.path().join("out").join("junit.xml")).unwrap();
    assert!(!junit.contains("errors=\"0\""), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_in_a_later_look_resumes_every_earlier_look_from_the_journal() {
    let billing = Billing::new(Duration::from_millis(20));
    let server = start(&billing).await;
    let repo = sequential_repo(&server.uri(), 5.0);
    // Killed in the third look: the first two (88 calls) and most of the third are finished.
    kill_after(
        &billing,
        spawn_gate(&repo, "out", &["--no-cache"], &[], std::process::Stdio::null()),
        2 * CALLS / 4 + 20,
    )
    .await;
    let first = billing.received();
    let journal = std::fs::read_to_string(repo.path().join("out").join("journal.jsonl")).unwrap();
    assert!(journal.lines().count() > CALLS / 2, "{} lines", journal.lines().count());

    gate(&repo, "out", &["--no-cache"]).await.expect_code(1);
    let second = &billing.received()[first.len()..];
    let again = sent_again(&first, second);
    assert!(
        again <= CONCURRENCY,
        "{again} calls the killed run had sent were sent again; at most {CONCURRENCY} were in flight"
    );
    assert_eq!(first.len() + second.len() - again, CALLS, "every call made once");
    let r = results(&repo.path().join("out"));
    assert!(r["run"]["resumed"].as_u64().unwrap() as usize >= first.len() - CONCURRENCY);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_results_write_keeps_the_journal_and_the_rerun_pays_nothing() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    let repo = demo_repo_with(&server.uri(), false, &unjudged);
    let out = repo.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // A link where results.json goes: the write is refused after every call was made.
    std::os::unix::fs::symlink(repo.path().join("elsewhere.json"), out.join("results.json")).unwrap();
    gate(&repo, "out", &["--no-cache"])
        .await
        .expect_code(2)
        .stderr_has("symbolic link");
    assert_eq!(billing.received().len(), CALLS);
    assert!(
        out.join("journal.jsonl").exists(),
        "the outputs were not written: the journal stays"
    );

    std::fs::remove_file(out.join("results.json")).unwrap();
    gate(&repo, "out", &["--no-cache"]).await.expect_code(1);
    assert_eq!(
        billing.received().len(),
        CALLS,
        "the rerun replays every call from the journal"
    );
    assert_eq!(results(&out)["run"]["resumed"], CALLS as u64);
    assert!(!out.join("journal.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_with_the_cache_on_re_sends_at_most_the_calls_in_flight() {
    let billing = Billing::new(Duration::from_millis(30));
    let server = start(&billing).await;
    let repo = demo_repo_with(&server.uri(), false, &unjudged);
    // The first run writes the cache after each answer — a tiny cache, compacted (and synced to
    // disk) on almost every write, so writes are slow; the rerun reads none of it, so every
    // call the journal lost would reach the server again.
    let slow_cache = [("PROMPTGATE_CACHE_MAX_MB", "0")];
    kill_after(
        &billing,
        spawn_gate(&repo, "out", &[], &slow_cache, std::process::Stdio::null()),
        CALLS / 2,
    )
    .await;
    let first = billing.received();
    gate(&repo, "out", &["--no-cache"]).await.expect_code(1);
    let second = &billing.received()[first.len()..];
    let again = sent_again(&first, second);
    assert!(
        again <= CONCURRENCY,
        "{again} calls the killed run had sent were sent again; at most {CONCURRENCY} were in flight"
    );
    assert_eq!(first.len() + second.len() - again, CALLS, "every call made once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_at_once_in_one_repository_pay_once() {
    let billing = Billing::new(Duration::from_millis(10));
    let server = start(&billing).await;
    // One run bills $0.121; the cap is for the pair, so the second may not pay again.
    let cap = 0.2;
    let repo = demo_repo_with(&server.uri(), false, &|suite| {
        unjudged(suite).replace(
            "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
            &format!("budget: {{approve_above_usd: 5.00, max_usd: {cap}}}"),
        )
    });
    let (first, second) = tokio::join!(gate(&repo, "first", &[]), gate(&repo, "second", &[]));
    first.expect_code(1);
    second.expect_code(1);
    let received = billing.received();
    assert_eq!(received.len(), CALLS, "each call sent once for the two runs");
    assert!(billing.billed() <= cap, "the pair billed ${}", billing.billed());
    assert!(
        first.stderr.contains("waiting for it to finish") || second.stderr.contains("waiting for it to finish"),
        "one run waited for the other\n--- first\n{}\n--- second\n{}",
        first.stderr,
        second.stderr
    );
    let (a, b) = (
        results(&repo.path().join("first")),
        results(&repo.path().join("second")),
    );
    assert_eq!(a["verdict"], b["verdict"]);
    assert_eq!(
        a["run"]["cache_hits"].as_u64().unwrap() + b["run"]["cache_hits"].as_u64().unwrap(),
        CALLS as u64,
        "the run that waited took every answer from the cache"
    );
}

/// The plan's estimate is counted while the first calls go out when the budget's upper bound
/// (every byte a token) already passes, and before them otherwise: the plan line and the
/// results carry the same estimate either way, and a cap below it still refuses the run before
/// any call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estimate_is_the_same_counted_during_the_run_or_before_it() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    let capped = |max_usd: f64| {
        demo_repo_with(&server.uri(), false, &move |suite| {
            unjudged(suite).replace(
                "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
                &format!("budget: {{approve_above_usd: 5.00, max_usd: {max_usd}}}"),
            )
        })
    };
    let plan_line = |run: &crate::support::Run| {
        run.stderr
            .lines()
            .find(|l| l.starts_with("promptgate: plan:"))
            .map(str::to_owned)
    };

    // Far above the bound: counted on its own thread.
    let roomy_repo = capped(5.0);
    let roomy = gate(&roomy_repo, "out", &[]).await;
    // The demo's pull request regresses: a verdict, not a run error.
    roomy.expect_code(1);
    let line = plan_line(&roomy).expect("the plan line is printed");
    assert!(line.contains(&format!("promptgate: plan: {CALLS} calls")), "{line}");
    assert!(line.contains("(tokenizer)"), "{line}");
    let estimated = results(&roomy_repo.path().join("out"))["run"]["estimated_usd"]
        .as_f64()
        .unwrap();
    assert!(line.contains(&format!("estimated ${estimated:.4}")), "{line}");

    // Between the estimate and its bound: the run waits for the count, then goes ahead.
    let sent = billing.received().len();
    let between_repo = capped(estimated * 1.01);
    let between = gate(&between_repo, "out", &[]).await;
    assert_eq!(plan_line(&between), Some(line.clone()), "{}", between.stderr);
    assert!(
        !between.stderr.contains("exceeds the budget's hard cap"),
        "{}",
        between.stderr
    );
    assert!(billing.received().len() > sent, "the run went ahead");

    // Below the estimate: refused on the counted estimate, before any call.
    let sent = billing.received().len();
    let tight = gate(&capped(estimated * 0.9), "out", &[]).await;
    tight.expect_code(3).stderr_has("exceeds the budget's hard cap");
    assert_eq!(plan_line(&tight), Some(line), "{}", tight.stderr);
    assert_eq!(billing.received().len(), sent, "no call may go out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_folder_that_cannot_be_made_fails_the_run_before_any_call() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    let repo = demo_repo_with(&server.uri(), false, &unjudged);
    // A file where the output folder's parent should be: no folder can be made under it, even
    // by root (the tests run as root here, and a folder's permissions do not stop root).
    let elsewhere = tempfile::tempdir().unwrap();
    let blocked = elsewhere.path().join("blocked");
    std::fs::write(&blocked, "a file, not a folder").unwrap();
    // A run written inline, and one over the threshold that keeps its answers and outputs in
    // scratch files in the output folder.
    for threshold in ["100000", "20"] {
        let out = blocked.join("out");
        let dir = repo.path().to_owned();
        let run = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
                .current_dir(&dir)
                .args(["run", "--base", "main", "--head", "pr", "--no-cache", "--out"])
                .arg(&out)
                .env("XDG_CACHE_HOME", crate::support::test_cache_home(&dir))
                .env_remove("PROMPTGATE_CACHE_DIR")
                .env("SIM_API_KEY", SECRET)
                .env("CI", "1")
                .env("PROMPTGATE_TEST_INLINE_MAX_CALLS", threshold)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        // A file where the folder should be is the command line's mistake: a usage error.
        assert_eq!(run.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("blocked/out"), "the message names the folder: {stderr}");
        assert_eq!(
            billing.received().len(),
            0,
            "no call is paid for a run that cannot write"
        );
    }
}

/// The demo's suite, fixed design, with this budget.
/// A pull request cannot lift the hard cap by moving to a model no table prices: its calls
/// would reserve nothing and count $0 (the audit's sent 40 calls past a cap the baseline
/// stopped at). The run is bad input before any call, naming the model and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpriced_model_under_a_hard_cap_is_refused_before_any_call() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    let repo = budgeted_repo(&server.uri(), "budget: {approve_above_usd: 5.00, max_usd: 0.05}");
    repo.edit("configs/product-faq.yaml", "model: gpt-4o-mini", "model: gpt-9-ultra");
    repo.commit("an unpriced model");
    let run = gate(&repo, "out", &["--no-cache"]).await;
    run.expect_code(2)
        .stderr_has("`gpt-9-ultra` has no price, and `budget.max_usd` caps the run at $0.05")
        .stderr_has("hint: add it under `pricing:`");
    assert!(billing.received().is_empty(), "no call was sent");
}

/// Ctrl-C in a sequential run's first look counts the finished calls against the whole plan's,
/// not the looks started so far (an audit read "36 of 40 calls finished" of a plan of 80).
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_in_a_sequential_run_counts_against_the_whole_plan() {
    let billing = Billing::new(Duration::from_millis(200));
    let server = start(&billing).await;
    let repo = sequential_repo(&server.uri(), 5.0);
    let child = spawn_gate(&repo, "out", &["--no-cache"], &[], std::process::Stdio::piped());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while billing.received().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the run never sent a call");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGINT, as a terminal's Ctrl-C sends it, in the first look (each call takes 200 ms).
    let stderr = crate::support::interrupted(child).await;
    assert!(stderr.contains(&format!(" of {CALLS} calls finished")), "{stderr}");
}

/// A provider that bills output beyond `max_tokens` (an OpenAI-compatible server counting
/// reasoning tokens apart) spends more than each call's reservation: the run says so, as the
/// cap can hold calls only to their `max_tokens` (an audit's run passed its cap without a word).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_billed_beyond_its_max_tokens_is_said() {
    let billing = Billing::new(Duration::ZERO);
    billing.extra_output.store(400, std::sync::atomic::Ordering::Relaxed);
    let server = start(&billing).await;
    let repo = budgeted_repo(&server.uri(), "budget: {approve_above_usd: 5.00, max_usd: 5.00}");
    let run = gate(&repo, "out", &["--no-cache"]).await;
    run.stderr_has("more than the $")
        .stderr_has("its request's max_tokens allows");
    assert_eq!(
        run.stderr.matches("its request's max_tokens allows").count(),
        1,
        "said once"
    );
}

fn budgeted_repo(base_url: &str, budget: &str) -> TestRepo {
    let budget = budget.to_owned();
    demo_repo_with(base_url, false, &move |suite| {
        unjudged(suite).replace("budget: {approve_above_usd: 0.50, max_usd: 5.00}", &budget)
    })
}

/// A CI matrix holds the budget as one run does: each shard checks the whole run's estimate
/// and spends only its share of the cap, so the shards together bill at most `max_usd`. (Each
/// holding the whole cap, the four would bill the unbounded run's $0.121.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_of_shards_spends_at_most_the_cap_together() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    // Unbounded, the run bills $0.121 and is estimated at $0.0292: a cap of $0.06 passes the
    // plan, and no shard alone (about $0.03 billed) would reach it.
    let cap = 0.06;
    let repo = budgeted_repo(
        &server.uri(),
        &format!("budget: {{approve_above_usd: 5.00, max_usd: {cap}}}"),
    );
    let mut shares = 0.0;
    for k in 1..=4 {
        let out = format!("shard-{k}");
        let run = gate(&repo, &out, &["--no-cache", "--shard", &format!("{k}/4")]).await;
        run.expect_code(3);
        let line = run
            .stderr
            .lines()
            .find(|l| l.starts_with(&format!("promptgate: shard {k}/4: the whole run")))
            .unwrap_or_else(|| panic!("the shard says what it may spend\n{}", run.stderr));
        assert!(line.contains("(all 4 shards) is estimated at $0.029"), "{line}");
        let share = line
            .split("; this shard may spend $")
            .nth(1)
            .and_then(|rest| rest.split(", its share of the budget's hard cap of $0.0600").next())
            .unwrap_or_else(|| panic!("the shard's cap in dollars: {line}"));
        shares += share.parse::<f64>().unwrap();
        let reason = results(&repo.path().join(&out))["reason"].as_str().unwrap().to_owned();
        assert!(
            reason.contains(&format!(
                "shard {k}/4's share (${share}) of the budget's hard cap of $0.0600"
            )),
            "{reason}"
        );
    }
    assert!(
        (shares - cap).abs() < 0.0005 * 4.0,
        "the shares add up to the cap: ${shares}"
    );
    let billed = billing.billed();
    assert!(billed <= cap, "four shards billed ${billed} under a cap of ${cap}");
    // Merged, the matrix is the run the cap stopped: an error, never the verdict of the cases
    // the shards managed to run.
    let shards: Vec<String> = (1..=4)
        .map(|k| {
            repo.path()
                .join(format!("shard-{k}/results.json"))
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["merge"];
    args.extend(shards.iter().map(String::as_str));
    args.extend(["--out", "merged"]);
    let merged = repo.promptgate(&args);
    merged.expect_code(3);
    let merged = results(&repo.path().join("merged"));
    let reason = merged["reason"].as_str().unwrap();
    assert!(
        reason.contains("the budget refused calls of shard 1/4, shard 2/4, shard 3/4, shard 4/4"),
        "{reason}"
    );
    let refused: u64 = (1..=4)
        .map(|k| {
            results(&repo.path().join(format!("shard-{k}")))["run"]["budget_refused"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(merged["run"]["budget_refused"].as_u64(), Some(refused));
}

/// Approval reads the whole run's estimate in every shard, as the unsharded run would: a shard
/// whose own part is under the threshold still waits for the approval the whole run needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_asks_approval_for_the_whole_run() {
    let billing = Billing::new(Duration::ZERO);
    let server = start(&billing).await;
    // The whole run is estimated at $0.0292, a shard at about a quarter of it.
    let repo = budgeted_repo(&server.uri(), "budget: {approve_above_usd: 0.02, max_usd: 5.00}");
    let shard = gate(&repo, "shard-1", &["--no-cache", "--shard", "1/4"]).await;
    shard
        .expect_code(3)
        .stderr_has("the whole run's estimated cost (all 4 shards) $0.029")
        .stderr_has("is above the approval threshold of $0.02")
        .stderr_has("--approve-cost 0.03");
    assert!(billing.received().is_empty(), "no call before the approval");
    let approved = gate(
        &repo,
        "shard-1",
        &["--no-cache", "--shard", "1/4", "--approve-cost", "0.03"],
    )
    .await;
    assert_ne!(approved.code, 3, "{}", approved.stderr);
    let sent = billing.received().len();
    assert!(sent > 0 && sent < CALLS, "the shard's calls only: {sent}");
}
