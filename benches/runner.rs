//! Runner benchmark: the release binary against a local OpenAI-compatible simulator.
//!
//! 2,000 cases × 2 variants × 3 repeats = 12,000 calls at concurrency 64 against a server
//! that answers every call after a fixed 50 ms. The ideal wall time is calls × latency ÷
//! concurrency = 9.375 s. Measures wall time and peak RSS of the `promptgate` process (VmHWM,
//! polled from /proc), then the same run again fully from cache.
//!
//! Run: `cargo build --release && cargo bench --bench runner`
//! (set PROMPTGATE_BENCH_CASES to try other sizes, PROMPTGATE_BENCH_BINARY to measure another
//! build).

use std::time::Duration;

mod support;

use support::measure;

const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 64;
const REPEATS: usize = 3;

fn main() {
    let cases = support::cases(2000);
    let binary = support::binary();
    let runtime = support::runtime();
    let (server, arrivals) = runtime.block_on(support::simulator("Refunds are available within 30 days.", 9, LATENCY));

    let repo = tempfile::tempdir().expect("temp dir");
    support::priced_sim_repo(repo.path(), &server.uri(), cases, CONCURRENCY, REPEATS);
    let calls = cases * 2 * REPEATS;
    let ideal = LATENCY.as_secs_f64() * calls as f64 / CONCURRENCY as f64;

    let (first, rss_first, cpu_first) = measure(&binary, repo.path(), "out1");
    let runner_phase = arrivals
        .lock()
        .ok()
        .and_then(|a| *a)
        .map(|(first_in, last_in)| (last_in - first_in + LATENCY).as_secs_f64());
    let (second, rss_second, cpu_second) = measure(&binary, repo.path(), "out2");
    println!(
        "calls: {calls} at concurrency {CONCURRENCY}, simulated latency {} ms",
        LATENCY.as_millis()
    );
    println!("ideal wall time: {ideal:.3} s");
    println!(
        "first run:  {first:.3} s wall ({:+.1}% vs ideal), peak RSS {:.1} MB, CPU {cpu_first:.2} s",
        (first / ideal - 1.0) * 100.0,
        rss_first as f64 / 1024.0
    );
    println!(
        "cached run: {second:.3} s wall, peak RSS {:.1} MB, CPU {cpu_second:.2} s",
        rss_second as f64 / 1024.0
    );
    // The simulator sleeps at least 50 ms and its timer rounds up; the latency each call
    // measured is what a perfect runner would have to wait for.
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo.path().join("out1/results.json")).expect("results.json"))
            .expect("json");
    let latencies: Vec<f64> = results["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["cases"].as_array().into_iter().flatten())
        .flat_map(|c| {
            c["baseline"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(c["candidate"].as_array().into_iter().flatten())
        })
        .filter_map(|call| call["latency_ms"].as_f64())
        .collect();
    let measured = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
    let ideal_measured = measured / 1000.0 * calls as f64 / CONCURRENCY as f64;
    println!(
        "mean latency the calls measured: {measured:.2} ms; ideal at that latency {ideal_measured:.3} s; first run {:+.1}% vs it",
        (first / ideal_measured - 1.0) * 100.0
    );
    if let Some(phase) = runner_phase {
        println!(
            "runner phase (first request to last response, at the simulator): {phase:.3} s, {:+.1}% vs ideal",
            (phase / ideal - 1.0) * 100.0
        );
    }
    drop(server);
}
