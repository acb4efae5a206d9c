//! The real HTTP path end to end: the binary against a fake OpenAI-compatible server on
//! 127.0.0.1 that answers like the offline mock, with faults injected, a secret to leak, an
//! outage, and a kill in the middle of a run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use promptgate::providers::{Request, Settings, mock};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::support::{Run, TestRepo, fixture, results};

/// A recognisable fake key: it must never appear in anything promptgate writes.
pub(crate) const SECRET: &str = "sk-test-SECRET-canary-7f3a";

/// Answers chat completions with the offline mock's reply, so a run over HTTP must reach the
/// same verdict as the demo; optionally fails the first attempt of some requests.
struct Simulator {
    faults: bool,
    down: bool,
    attempts: Mutex<HashMap<String, u32>>,
    injected: AtomicUsize,
    served: AtomicUsize,
    /// How long each answer takes, in ms: long enough while a run is to be stopped in the
    /// middle, zero (no waiting) for the runs that only need to finish.
    delay_ms: AtomicU64,
}

impl Simulator {
    fn new(faults: bool, down: bool, delay: Duration) -> Arc<Simulator> {
        Arc::new(Simulator {
            faults,
            down,
            attempts: Mutex::new(HashMap::new()),
            injected: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            delay_ms: AtomicU64::new(delay.as_millis() as u64),
        })
    }
}

/// The simulator as mounted on the server (the orphan rule wants a local type).
struct Handle(Arc<Simulator>);

impl Respond for Handle {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let this = &self.0;
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if this.down {
            return ResponseTemplate::new(503)
                .set_body_json(json!({"error": {"message": "the service is down", "type": "server_error"}}));
        }
        let key = promptgate::stats::fnv1a(request.body.iter().copied());
        let attempt = {
            let mut attempts = this.attempts.lock().unwrap();
            let n = attempts.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        // One request in five fails its first attempt, in a mix of ways real APIs fail.
        if this.faults && attempt == 1 && key % 5 == 0 {
            this.injected.fetch_add(1, Ordering::SeqCst);
            return match (key / 5) % 5 {
                0 => ResponseTemplate::new(429)
                    .insert_header("retry-after", "0")
                    .set_body_json(json!({"error": {"message": "Rate limit reached", "type": "requests"}})),
                1 => ResponseTemplate::new(500)
                    .set_body_json(json!({"error": {"message": "internal error", "type": "server_error"}})),
                2 => ResponseTemplate::new(503).set_body_string("upstream unavailable"),
                3 => ResponseTemplate::new(200)
                    .set_body_json(reply(&body))
                    .set_delay(Duration::from_secs(3)),
                _ => ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string("{\"id\": \"chatcmpl-1\", \"choices\": [{\"mess"),
            };
        }
        this.served.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(200)
            .set_body_json(reply(&body))
            .set_delay(Duration::from_millis(this.delay_ms.load(Ordering::SeqCst)))
    }
}

/// The mock's answer to an OpenAI chat-completions body, in the OpenAI response shape.
pub(crate) fn reply(body: &Value) -> Value {
    let settings = Settings {
        temperature: body["temperature"].as_f64(),
        max_tokens: body["max_tokens"]
            .as_u64()
            .or(body["max_completion_tokens"].as_u64())
            .map(|n| n as u32),
        top_p: body["top_p"].as_f64(),
        ..Settings::of(body["model"].as_str().unwrap_or_default())
    };
    let messages = serde_json::from_value(body["messages"].clone()).unwrap_or_default();
    let request = Request::new(
        std::sync::Arc::new(settings),
        messages,
        body["seed"].as_u64().unwrap_or(0),
    );
    let response = mock::respond(&request);
    json!({
        "id": "chatcmpl-sim", "object": "chat.completion", "created": 1_700_000_000, "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": response.text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": response.usage.input, "completion_tokens": response.usage.output, "total_tokens": response.usage.input + response.usage.output}
    })
}

/// The demo's generation calls: customer-support 44, product-faq 44 and help-center 40
/// cases, both arms, one repeat.
const DEMO_CALLS: usize = (44 + 44 + 40) * 2;
/// Its judge calls: help-center's two judge assertions on each of its 80 outputs.
const DEMO_JUDGE_CALLS: usize = 40 * 2 * 2;

/// The calls a whole demo run sends: every generation, and each distinct judge call — the judge
/// asked about both arms' identical outputs of a case (they share its seed) is asked once.
fn distinct_calls(out: &Path) -> usize {
    let r = results(out);
    let mut judge_calls = 0;
    for e in r["experiments"].as_array().unwrap() {
        for c in e["cases"].as_array().unwrap() {
            let (baseline, candidate) = (&c["baseline"][0], &c["candidate"][0]);
            let per_output = candidate["judgements"].as_array().map_or(0, Vec::len);
            judge_calls += if baseline["output"] == candidate["output"] {
                per_output
            } else {
                2 * per_output
            };
        }
    }
    DEMO_CALLS + judge_calls
}

async fn start(simulator: &Arc<Simulator>) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Handle(Arc::clone(simulator)))
        .mount(&server)
        .await;
    server
}

/// The demo's base and PR commits, with the suite pointed at `base_url`. Without a fallback
/// the judge is the simulator too (it answers judge prompts as the mock judges), so every
/// call of the run goes over HTTP; with one, the offline judge stays, as a judge has no
/// fallback of its own.
fn demo_repo(base_url: &str, fallback: bool) -> TestRepo {
    demo_repo_with(base_url, fallback, &|suite| suite)
}

/// [`demo_repo`], with `edit` applied to the suite file at both commits (the base's budget and
/// defaults are the policy in force).
pub(crate) fn demo_repo_with(base_url: &str, fallback: bool, edit: &dyn Fn(String) -> String) -> TestRepo {
    let provider = format!(
        "providers:\n  sim: {{type: openai-compatible, base_url: \"{base_url}/v1\", api_key_env: SIM_API_KEY, concurrency: 8, timeout_ms: 1000, max_retries: 3}}\n  offline: {{type: mock}}\n"
    );
    let point = |repo: &TestRepo| {
        let mut suite = repo
            .read("promptgate.yaml")
            .replace("providers:\n  offline: {type: mock}\n", &provider)
            .replace("provider: offline,", "provider: sim,");
        if !fallback {
            suite = suite.replace("judge: offline,", "judge: sim,");
        }
        if fallback {
            for dataset in [
                "datasets/customer-support.jsonl",
                "datasets/product-faq.csv",
                "datasets/help-center.jsonl",
            ] {
                let line = format!("    dataset: {dataset}\n");
                suite = suite.replace(&line, &format!("{line}    fallback: [offline]\n"));
            }
        }
        repo.write("promptgate.yaml", &edit(suite));
    };
    let repo = TestRepo::new();
    repo.copy_tree(&fixture("base"));
    point(&repo);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    point(&repo);
    repo.commit("pr");
    repo
}

pub(crate) async fn gate(repo: &TestRepo, out: &str, extra: &[&str]) -> Run {
    let dir = repo.path().to_owned();
    let mut args: Vec<String> = ["run", "--base", "main", "--head", "pr", "--out", out]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
            .current_dir(&dir)
            .args(&args)
            .env("XDG_CACHE_HOME", crate::support::test_cache_home(&dir))
            .env_remove("PROMPTGATE_CACHE_DIR")
            .env("SIM_API_KEY", SECRET)
            .env("CI", "1")
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

/// Per case: (experiment, id, baseline pass, candidate pass).
fn outcomes(out: &Path) -> Vec<(String, String, bool, bool)> {
    let r = results(out);
    let mut rows = Vec::new();
    for e in r["experiments"].as_array().unwrap() {
        for c in e["cases"].as_array().unwrap() {
            let pass = |arm: &str| c[arm][0]["scores"]["pass"].as_bool().unwrap_or(false);
            rows.push((
                e["name"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
                pass("baseline"),
                pass("candidate"),
            ));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_with_20_percent_faults_the_verdict_equals_the_fault_free_run() {
    let clean = Simulator::new(false, false, Duration::ZERO);
    let clean_server = start(&clean).await;
    let repo = demo_repo(&clean_server.uri(), false);
    gate(&repo, "clean", &["--no-cache"]).await.expect_code(1);

    let faulty = Simulator::new(true, false, Duration::ZERO);
    let faulty_server = start(&faulty).await;
    let repo2 = demo_repo(&faulty_server.uri(), false);
    let run = gate(&repo2, "faulty", &["--no-cache"]).await;
    run.expect_code(1);

    let r = results(&repo2.path().join("faulty"));
    assert_eq!(r["run"]["calls"], DEMO_CALLS);
    assert_eq!(r["run"]["judge_calls"], DEMO_JUDGE_CALLS);
    assert_eq!(r["run"]["errored"], 0, "{}", run.stderr);
    let injected = faulty.injected.load(Ordering::SeqCst);
    assert!(injected >= 20, "only {injected} faults injected");
    assert_eq!(
        r["run"]["retries"].as_u64().unwrap() as usize,
        injected,
        "every injected fault is one retry"
    );
    assert_eq!(
        outcomes(&repo.path().join("clean")),
        outcomes(&repo2.path().join("faulty"))
    );
    assert_eq!(results(&repo.path().join("clean"))["verdict"], r["verdict"]);
}

/// A variant's penalties and stop sequences reach the provider (OpenAI's names), only the arm
/// that sets them sends them, and the results say what each arm ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn penalties_and_stop_sequences_reach_the_provider() {
    let sim = Simulator::new(false, false, Duration::ZERO);
    let server = start(&sim).await;
    let repo = demo_repo(&server.uri(), false);
    repo.edit(
        "configs/customer-support.yaml",
        "temperature: 0.2",
        "temperature: 0.2\nfrequency_penalty: 0.5\npresence_penalty: -0.25\nstop: [\"###\"]",
    );
    repo.commit("penalise repetition");
    let run = gate(&repo, "out", &[]).await;
    assert!(matches!(run.code, 0 | 1), "{}", run.stderr);
    let bodies: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let with: Vec<&Value> = bodies.iter().filter(|b| b.get("frequency_penalty").is_some()).collect();
    // customer-support's 44 cases, candidate arm only.
    assert_eq!(with.len(), 44, "{} requests", bodies.len());
    for b in &with {
        assert_eq!(
            (b["frequency_penalty"].clone(), b["presence_penalty"].clone()),
            (json!(0.5), json!(-0.25))
        );
        assert_eq!(b["stop"], json!(["###"]));
    }
    let r = results(&repo.path().join("out"));
    let e = r["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "customer-support")
        .unwrap();
    assert_eq!(e["candidate"]["frequency_penalty"], json!(0.5));
    assert_eq!(e["candidate"]["stop"], json!(["###"]));
    assert!(e["baseline"].get("frequency_penalty").is_none(), "{}", e["baseline"]);
    assert!(
        e["affected_by"].to_string().contains("customer-support.yaml"),
        "{}",
        e["affected_by"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_never_leaves() {
    let sim = Simulator::new(true, false, Duration::ZERO);
    let server = start(&sim).await;
    // An error body that echoes the key, as some servers do.
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("refund"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": format!("Incorrect API key provided: {SECRET}")}})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let repo = demo_repo(&server.uri(), false);
    let run = gate(&repo, "out", &[]).await;
    let received = server.received_requests().await.unwrap();
    assert!(
        received.iter().any(|r| r
            .headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap().contains(SECRET))),
        "the key is sent to the server"
    );
    assert!(
        !run.stdout.contains("SECRET") && !run.stderr.contains("SECRET"),
        "{}",
        run.stderr
    );
    for file in walk(repo.path()) {
        if file.components().any(|c| c.as_os_str() == ".git") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains("SECRET"),
            "{} contains the key",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_is_down_is_a_run_error_unless_a_fallback_answers() {
    let down = Simulator::new(false, true, Duration::ZERO);
    let server = start(&down).await;
    // One retry, not three: every attempt fails alike, and each retry of the ~300 calls waits a
    // backoff (base 500 ms, doubling) that only made the test slow.
    let one_retry = |suite: String| suite.replace("max_retries: 3", "max_retries: 1");
    let repo = demo_repo_with(&server.uri(), false, &one_retry);
    let run = gate(&repo, "out", &["--no-cache"]).await;
    run.expect_code(3).stderr_has("failed");
    let r = results(&repo.path().join("out"));
    assert_eq!(r["run"]["errored"], r["run"]["calls"]);
    assert!(
        r["run"]["retries"].as_u64().unwrap() > 0,
        "the calls were retried before failing"
    );

    // The same outage with the offline responder as a fallback: every call is answered.
    let fallback_repo = demo_repo_with(&server.uri(), true, &one_retry);
    let run = gate(&fallback_repo, "out", &["--no-cache"]).await;
    run.expect_code(1);
    let r = results(&fallback_repo.path().join("out"));
    assert_eq!(r["run"]["errored"], 0);
    assert_eq!(r["run"]["fallbacks"], DEMO_CALLS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_resumes_without_repeating_finished_calls() {
    let sim = Simulator::new(false, false, Duration::ZERO);
    let server = start(&sim).await;
    let repo = demo_repo(&server.uri(), false);
    // Reference: an uninterrupted run.
    gate(&repo, "reference", &["--no-cache"]).await.expect_code(1);
    let total = sim.served.swap(0, Ordering::SeqCst);
    assert_eq!(total, distinct_calls(&repo.path().join("reference")));
    // Answers take 40 ms while the run to be killed is going, so the kill lands mid-run.
    sim.delay_ms.store(40, Ordering::SeqCst);

    let dir = repo.path().to_owned();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(&dir)
        .env("XDG_CACHE_HOME", crate::support::test_cache_home(&dir))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .args([
            "run",
            "--base",
            "main",
            "--head",
            "pr",
            "--out",
            "resumed",
            "--no-cache",
        ])
        .env("SIM_API_KEY", SECRET)
        .env("CI", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while sim.served.load(Ordering::SeqCst) < 60 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let journal = std::fs::read_to_string(dir.join("resumed").join("journal.jsonl")).unwrap();
    // Finished calls' lines (not the header, nor the notes of attempts sent under the cap).
    let finished = journal.lines().filter(|l| l.starts_with("{\"job\"")).count();
    assert!(finished >= 40, "only {finished} calls journaled");
    let before = sim.served.load(Ordering::SeqCst);

    sim.delay_ms.store(0, Ordering::SeqCst);
    gate(&repo, "resumed", &["--no-cache"]).await.expect_code(1);
    let sent_again = sim.served.load(Ordering::SeqCst) - before;
    assert!(
        sent_again <= total - finished,
        "resumed run sent {sent_again} calls; {finished} were finished"
    );
    assert_eq!(outcomes(&dir.join("reference")), outcomes(&dir.join("resumed")));
    assert_eq!(
        results(&dir.join("resumed"))["run"]["resumed"].as_u64().unwrap() as usize,
        finished
    );
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_finishes_the_calls_in_flight_and_the_rerun_resumes() {
    let sim = Simulator::new(false, false, Duration::from_millis(200));
    let server = start(&sim).await;
    let repo = demo_repo(&server.uri(), false);
    let dir = repo.path().to_owned();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(&dir)
        .args(["run", "--base", "main", "--head", "pr", "--out", "out", "--no-cache"])
        .env("SIM_API_KEY", SECRET)
        .env("CI", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while sim.served.load(Ordering::SeqCst) < 30 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // SIGINT, as a terminal's Ctrl-C sends it; calls are in flight (each takes 200 ms).
    let stderr = crate::support::interrupted(child).await;
    assert!(
        stderr.contains("interrupted") && stderr.contains("hint: run the same command again"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
    // Every call the provider answered (and billed) is in the journal: none was lost.
    let served = sim.served.load(Ordering::SeqCst);
    let journal = std::fs::read_to_string(dir.join("out").join("journal.jsonl")).unwrap();
    let finished = journal.lines().filter(|l| l.starts_with("{\"job\"")).count();
    assert_eq!(finished, served, "answered calls missing from the journal");
    assert!(finished < DEMO_CALLS + DEMO_JUDGE_CALLS, "the run stopped early");
    assert!(
        !dir.join("out").join("results.json").exists(),
        "no verdict from half a run"
    );

    // The rerun need not wait: what it sends does not depend on how long answers take.
    sim.delay_ms.store(0, Ordering::SeqCst);
    gate(&repo, "out", &["--no-cache"]).await.expect_code(1);
    let sent_again = sim.served.load(Ordering::SeqCst) - served;
    assert_eq!(
        sent_again,
        distinct_calls(&dir.join("out")) - finished,
        "the rerun sends exactly the calls not yet made"
    );
    assert_eq!(
        results(&dir.join("out"))["run"]["resumed"].as_u64().unwrap() as usize,
        finished
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            files.extend(walk(&p))
        } else {
            files.push(p)
        }
    }
    files
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_is_capped_and_ctrl_c_ends_the_wait() {
    // Every call is rate-limited with a wait of about 32 years (and `1e400` seconds): taken at
    // its word it would hang the run.
    let server = MockServer::start().await;
    for (priority, wait) in [(1u8, "1e400"), (2, "999999999")] {
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", wait)
                    .set_body_json(json!({"error": {"message": "slow down", "type": "requests"}})),
            )
            .up_to_n_times(if priority == 1 { 4 } else { 1_000 })
            .with_priority(priority)
            .mount(&server)
            .await;
    }
    let repo = demo_repo(&server.uri(), false);
    let dir = repo.path().to_owned();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(&dir)
        .args(["run", "--base", "main", "--head", "pr", "--out", "out", "--no-cache"])
        .env("SIM_API_KEY", SECRET)
        .env("CI", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the calls are waiting to retry.
    while server.received_requests().await.unwrap().len() < 8 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let interrupted_at = std::time::Instant::now();
    let stderr = crate::support::interrupted(child).await;
    assert!(
        interrupted_at.elapsed() < Duration::from_secs(10),
        "the first Ctrl-C took {:?} to stop the waits",
        interrupted_at.elapsed()
    );
    assert!(!stderr.contains(SECRET));
}
