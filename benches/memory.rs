//! Memory benchmark: peak RSS of the release binary as a run grows from 10,000 to 100,000
//! (and, on request, 1,000,000) calls against a local OpenAI-compatible simulator.
//!
//! Each size is one experiment of `calls / 2` cases × 2 arms × 1 repeat at concurrency 64 (from
//! 200,000 calls on, 100,000 cases and the repeats to make up the calls);
//! the simulator answers after 2 ms (1 ms from a million calls on, as the target is stated).
//! Measures wall time and peak RSS (VmHWM, polled from /proc) of the `promptgate` process, and
//! the size of `results.json` and `calls.jsonl` it wrote. The target: the peak at 100,000
//! calls, and at 1,000,000, within 1.5× the peak at 10,000. Each size is then run again, every
//! call answered by the response cache the first run filled: that run's peak is what the
//! cache's index and reads cost.
//!
//! Run: `cargo build --release && cargo bench --bench memory`
//! (PROMPTGATE_BENCH_CALLS=10000,100000,1000000 sets the sizes, PROMPTGATE_BENCH_CASES=N runs
//! N cases alone; PROMPTGATE_BENCH_OUTPUT_BYTES=1000 answers about 1,000 bytes instead of one
//! 93-byte sentence; PROMPTGATE_BENCH_BINARY measures another build).

use std::time::Duration;

mod support;

const CONCURRENCY: usize = 64;

/// The most cases one experiment holds (`suite::MAX_CASES`).
const MAX_CASES: usize = 100_000;

fn main() {
    // PROMPTGATE_BENCH_CASES, as in the other benchmarks, runs one size of that many cases.
    let sizes: Vec<usize> = match std::env::var_os("PROMPTGATE_BENCH_CASES") {
        Some(_) => vec![support::cases(0) * 2],
        None => std::env::var("PROMPTGATE_BENCH_CALLS")
            .unwrap_or_else(|_| "10000,100000".to_owned())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect(),
    };
    // The answer every call gets: one sentence (93 bytes), or that sentence repeated to about
    // PROMPTGATE_BENCH_OUTPUT_BYTES (real answers run to a kilobyte and more).
    let sentence = "Refunds are available within 30 days of purchase, with the receipt, at any store or online.";
    let answer = match std::env::var("PROMPTGATE_BENCH_OUTPUT_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        Some(bytes) => vec![sentence; bytes.div_ceil(sentence.len() + 1).max(1)].join(" "),
        None => sentence.to_owned(),
    };
    let binary = support::binary();
    let runtime = support::runtime();
    let mut first_peak = None;
    for calls in sizes {
        let latency = if calls >= 1_000_000 {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(2)
        };
        let (server, _) = runtime.block_on(support::simulator(&answer, 19, latency));
        let repo = tempfile::tempdir().expect("temp dir");
        // One experiment holds at most 100,000 cases: beyond 200,000 calls, repeats make up the rest.
        let cases = (calls / 2).min(MAX_CASES);
        let repeats = (calls / 2).div_ceil(cases).max(1);
        support::priced_sim_repo(repo.path(), &server.uri(), cases, CONCURRENCY, repeats);
        let (wall, peak, cpu) = support::measure(&binary, repo.path(), "out");
        let size =
            |name: &str| std::fs::metadata(repo.path().join("out").join(name)).map_or(0.0, |m| m.len() as f64 / 1e6);
        let baseline = *first_peak.get_or_insert(peak);
        println!(
            "{calls} calls ({} ms): {wall:.2} s wall, CPU {cpu:.2} s, peak RSS {:.1} MB ({:.2}× the first size), results.json {:.1} MB, calls.jsonl {:.1} MB",
            latency.as_millis(),
            peak as f64 / 1024.0,
            peak as f64 / baseline as f64,
            size("results.json"),
            size("calls.jsonl"),
        );
        let (wall, peak, cpu) = support::measure(&binary, repo.path(), "cached");
        println!(
            "{calls} calls again, all from the cache: {wall:.2} s wall, CPU {cpu:.2} s, peak RSS {:.1} MB",
            peak as f64 / 1024.0,
        );
        drop(server);
    }
}
