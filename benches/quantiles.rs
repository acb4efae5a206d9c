//! Quantile statistics benchmark: the time each resampling kernel of a latency metric takes on
//! one core — most of a run's own time after its last response (`benches/overhead.rs`).
//!
//! For 2,000 and 50,000 units of one call per arm (the 4,000-call overhead run; the
//! 100,000-call memory run) with log-normal latencies, times, at p50 and at p95: the
//! sign-flip test (10,000 draws), the paired unit bootstrap (4,000 resamples) and one arm's unit
//! bootstrap (4,000 resamples), each the median of five runs.
//!
//! Run: `cargo bench --bench quantiles` (PROMPTGATE_BENCH_UNITS=2000,50000 sets the sizes).

use std::time::{Duration, Instant};

use promptgate::analyze::{PERMUTATIONS, RESAMPLES};
use promptgate::stats;

fn main() {
    let sizes: Vec<usize> = std::env::var("PROMPTGATE_BENCH_UNITS")
        .unwrap_or_else(|_| "2000,50000".to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!(
        "units | q | sign-flip test ({PERMUTATIONS}) | paired bootstrap ({RESAMPLES}) | one arm's bootstrap ({RESAMPLES})"
    );
    for g in sizes {
        let units = latencies(g);
        let candidate: Vec<Vec<f64>> = units.iter().map(|(_, c)| c.clone()).collect();
        for q in [0.5, 0.95] {
            let test = median(|| {
                std::hint::black_box(stats::sign_flip_quantile(&units, q, PERMUTATIONS, 7));
            });
            let paired = median(|| {
                std::hint::black_box(stats::unit_bootstrap_quantile(&units, q, RESAMPLES, 7));
            });
            let one = median(|| {
                std::hint::black_box(stats::unit_bootstrap_one_quantile(&candidate, q, RESAMPLES, 7));
            });
            println!("{g} | {q} | {} | {} | {}", ms(test), ms(paired), ms(one));
        }
    }
}

/// `g` units of one baseline and one candidate call: log-normal latencies around 800 ms, the
/// candidate 5% slower, from a fixed seed (a SplitMix64 stream and Box–Muller).
fn latencies(g: usize) -> Vec<(Vec<f64>, Vec<f64>)> {
    let mut state = 0x5eed_u64;
    let mut uniform = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 + f64::EPSILON
    };
    let mut normal = move || (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
    (0..g)
        .map(|_| {
            let b = 800.0 * (0.4 * normal()).exp();
            let c = 840.0 * (0.4 * normal()).exp();
            (vec![(b * 1000.0).round() / 1000.0], vec![(c * 1000.0).round() / 1000.0])
        })
        .collect()
}

fn median(mut run: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}
