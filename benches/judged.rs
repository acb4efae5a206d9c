//! Judged-suite benchmark: does a judged run take about max(generation, judging), or their sum?
//!
//! 2,000 cases × 2 variants = 4,000 outputs, each judged once (a `relevance` assertion) =
//! 4,000 judge calls, against one local OpenAI-compatible simulator that answers every call
//! after 50 ms: a generation with a sentence, a judge call (its system message starts with the
//! judge's mark) with the `{"pass", "score", "reason"}` object. Generation and the judge are
//! two providers of 32 concurrent calls each, so each phase alone takes calls × latency ÷
//! concurrency = 6.25 s. A judge call starts as soon as its output arrives (the runner's
//! `run_then`), so the ideal is max(generation, judging) plus one judge call's latency for the
//! last output, 6.30 s; judging after generating would take their sum, 12.5 s.
//!
//! Run: `cargo build --release && cargo bench --bench judged`
//! (set PROMPTGATE_BENCH_CASES to try other sizes, PROMPTGATE_BENCH_BINARY to measure another
//! build).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[expect(dead_code, reason = "`priced_sim_repo` is for the benchmarks without a judge")]
mod support;

use support::measure;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const LATENCY: Duration = Duration::from_millis(50);
/// Concurrent calls of each provider (the generator and the judge).
const CONCURRENCY: usize = 32;
/// What the judge's system message starts with (`providers::JUDGE_MARK`).
const JUDGE_MARK: &str = "You are promptgate's evaluation judge.";

/// Answers every call after `LATENCY`; notes the first and last arrival, and counts the calls
/// of each kind.
struct Simulator {
    arrivals: support::Arrivals,
    generations: Arc<AtomicUsize>,
    judgements: Arc<AtomicUsize>,
}

impl Respond for Simulator {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        support::arrived(&self.arrivals);
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap_or_default();
        let judging = body["messages"][0]["content"]
            .as_str()
            .is_some_and(|s| s.starts_with(JUDGE_MARK));
        let content = if judging {
            self.judgements.fetch_add(1, Ordering::Relaxed);
            r#"{"pass": true, "score": 5, "reason": "It answers the question."}"#.to_owned()
        } else {
            self.generations.fetch_add(1, Ordering::Relaxed);
            // Each arm's prompt differs, so do its answers: no judge question is asked twice
            // (identical ones would be sent once, and judging would shrink).
            format!("Refunds are available within 30 days (ref {}).", request.body.len())
        };
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({
                "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "sim",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132}
            }))
            .set_delay(LATENCY)
    }
}

fn main() {
    let cases = support::cases(2000);
    let binary = support::binary();
    let runtime = support::runtime();
    let arrivals = Arc::new(Mutex::new(None));
    let generations = Arc::new(AtomicUsize::new(0));
    let judgements = Arc::new(AtomicUsize::new(0));
    let simulator = Simulator {
        arrivals: Arc::clone(&arrivals),
        generations: Arc::clone(&generations),
        judgements: Arc::clone(&judgements),
    };
    let server = runtime.block_on(async {
        let server = MockServer::builder().disable_request_recording().start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(simulator)
            .mount(&server)
            .await;
        server
    });

    let repo = tempfile::tempdir().expect("temp dir");
    write_suite(repo.path(), &server.uri(), cases);
    let outputs = cases * 2;
    let phase = LATENCY.as_secs_f64() * outputs as f64 / CONCURRENCY as f64;
    let ideal = phase + LATENCY.as_secs_f64();
    let sum = 2.0 * phase;

    let (wall, rss, cpu) = measure(&binary, repo.path(), "out");
    let runner_phase = arrivals
        .lock()
        .ok()
        .and_then(|a| *a)
        .map(|(first_in, last_in)| (last_in - first_in + LATENCY).as_secs_f64());
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.path().join("out/results.json")).expect("results.json"))
            .expect("json");
    println!(
        "{outputs} outputs and {} judge calls ({} generations and {} judge calls reached the simulator), \
         {} ms each, {CONCURRENCY} at a time per provider",
        results["run"]["judge_calls"],
        generations.load(Ordering::Relaxed),
        judgements.load(Ordering::Relaxed),
        LATENCY.as_millis()
    );
    println!("generation alone {phase:.3} s, judging alone {phase:.3} s");
    println!("ideal max(generation, judging) + one judge call: {ideal:.3} s; their sum: {sum:.3} s");
    if let Some(phase) = runner_phase {
        println!(
            "runner phase (first request to last response, at the simulator): {phase:.3} s, {:+.1}% vs the ideal, {:.0}% of the sum",
            (phase / ideal - 1.0) * 100.0,
            phase / sum * 100.0
        );
    }
    println!(
        "whole process: {wall:.3} s wall ({:+.1}% vs the ideal, {:.0}% of the sum), peak RSS {:.1} MB, CPU {cpu:.2} s",
        (wall / ideal - 1.0) * 100.0,
        wall / sum * 100.0,
        rss as f64 / 1024.0
    );
    drop(server);
}

fn write_suite(dir: &Path, base_url: &str, cases: usize) {
    let suite = format!(
        "version: 1\nproviders:\n  sim: {{type: openai-compatible, base_url: \"{base_url}/v1\", concurrency: {CONCURRENCY}, max_retries: 0}}\n\
             \x20 judge: {{type: openai-compatible, base_url: \"{base_url}/v1\", concurrency: {CONCURRENCY}, max_retries: 0}}\n\
             pricing:\n  sim-model: {{input: 0.1, output: 0.4}}\n  sim-judge: {{input: 0.1, output: 0.4}}\n\
             defaults: {{provider: sim, judge: judge, judge_model: sim-judge}}\n\
             experiments:\n  - name: bench\n    variant: variant.yaml\n    dataset: cases.jsonl\n    assert: [{{type: relevance}}]\n"
    );
    support::bench_repo(dir, &suite, "sim-model", cases, "");
}
