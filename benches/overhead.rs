//! Fixed-overhead benchmark: how much of a run is not waiting for the provider?
//!
//! 2,000 cases × 2 variants of `gpt-4o-mini` (so the budget estimate loads that model's
//! tokenizer table) = 4,000 calls at concurrency 32 against a local OpenAI-compatible
//! simulator that answers every call after 50 ms: the ideal wall time is calls × latency ÷
//! concurrency = 6.25 s. Each run is timed on one clock in three spans: process start → the
//! first request (git reads, loading and rendering the suite, the plan and its estimate, the
//! journal, the cache), the first request → the last response as the simulator saw them (the
//! runner phase), and the last response → process exit (scoring, statistics, charts, outputs).
//! The simulator's own slowness (its timer rounds its 50 ms up, and it shares the machine's
//! two cores with us) lands in the runner phase only, so "fixed overhead + ideal" is the
//! whole process against the ideal without the simulator's overhead counted against us.
//!
//! Every run starts with an empty response cache and output folder, so all 4,000 calls are
//! sent. The load average is printed before each run: on a shared machine, repeat a noisy one.
//!
//! Run: `cargo build --release && cargo bench --bench overhead`
//! (PROMPTGATE_BENCH_RUNS runs, default 3; PROMPTGATE_BENCH_CASES and PROMPTGATE_BENCH_BINARY as
//! in the runner benchmark).

use std::time::Duration;

#[expect(dead_code, reason = "`measure` is for the benchmarks that report totals only")]
mod support;

const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 32;

fn main() {
    let cases = support::cases(2000);
    let runs: usize = std::env::var("PROMPTGATE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let binary = support::binary();
    let runtime = support::runtime();
    let (server, arrivals) = runtime.block_on(support::simulator("Refunds are available within 30 days.", 9, LATENCY));
    let repo = tempfile::tempdir().expect("temp dir");
    let suite = format!(
        "version: 1\nproviders:\n  sim: {{type: openai-compatible, base_url: \"{}/v1\", concurrency: {CONCURRENCY}, max_retries: 0}}\n\
         defaults: {{repeats: 1, provider: sim}}\n\
         experiments:\n  - name: bench\n    variant: variant.yaml\n    dataset: cases.jsonl\n",
        server.uri()
    );
    // An OpenAI model, so the estimate loads its tokenizer table as a real suite's would.
    support::bench_repo(
        repo.path(),
        &suite,
        "gpt-4o-mini",
        cases,
        ", \"assert\": [{\"type\": \"icontains\", \"value\": \"30 days\"}]",
    );
    let calls = cases * 2;
    let ideal = LATENCY.as_secs_f64() * calls as f64 / CONCURRENCY as f64;
    println!(
        "calls: {calls} at concurrency {CONCURRENCY}, simulated latency {} ms; ideal {ideal:.3} s",
        LATENCY.as_millis()
    );
    println!(
        "run | load avg (1 min) | start → first request | first request → last response | last response → exit | whole process | fixed overhead + ideal"
    );
    for run in 1..=runs {
        let _ = std::fs::remove_dir_all(repo.path().join(".cache"));
        let out = format!("out{run}");
        let _ = std::fs::remove_dir_all(repo.path().join(&out));
        if let Ok(mut a) = arrivals.lock() {
            *a = None;
        }
        let load = load_average();
        let span = support::measure_span(&binary, repo.path(), &out);
        let Some((first, last_arrival)) = arrivals.lock().ok().and_then(|a| *a) else {
            panic!("the simulator saw no request");
        };
        let last = last_arrival + LATENCY;
        let before = (first - span.started).as_secs_f64();
        let phase = (last - first).as_secs_f64();
        let after = span.exited.saturating_duration_since(last).as_secs_f64();
        let whole = span.wall();
        let fixed = before + after;
        println!(
            "{run} | {load} | {before:.3} s | {phase:.3} s ({:+.1}% vs ideal) | {after:.3} s | {whole:.3} s ({:+.1}%) | {:.3} s ({:+.1}%), peak RSS {:.1} MB, CPU {:.2} s",
            pct(phase, ideal),
            pct(whole, ideal),
            fixed + ideal,
            pct(fixed + ideal, ideal),
            span.peak_kib as f64 / 1024.0,
            span.cpu_secs
        );
    }
    drop(server);
}

fn pct(value: f64, ideal: f64) -> f64 {
    (value / ideal - 1.0) * 100.0
}

/// The 1-minute load average, as /proc says it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
