//! `promptgate canary` at production scale: writes 1,000,000 JSON lines (about 200 MB) of
//! requests of two versions, runs the built binary on them under `/usr/bin/time -v`, and
//! prints the wall time and peak memory (README, "Canary at scale").
//!
//! ```text
//! cargo bench --bench canary                         # 1,000,000 lines in a temporary folder
//! cargo bench --bench canary -- --lines 200000       # fewer
//! cargo bench --bench canary -- --write FILE --lines 800 --regress --every-ms 36000   # only write logs
//! ```
//!
//! `--regress` gives the canary a slower tail (its slowest 3% take twice as long) and 2% more
//! errors; without it both versions draw from the same distributions.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use promptgate::stats::Rng;

const CONFIG: &str = "version: 1
experiments: []
canary:
  experiment: support
  version: v1.3.0
  source: {type: jsonl, path: requests.jsonl, arm_field: variant, baseline: v1.2.3, canary: v1.3.0,
           fields: {timestamp: ts, model: model, latency_ms: latency_ms, input_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens, error: error, thumbs_up: feedback.up,
                    quality: quality, hallucination: hallucinated}}
  min_samples: 300
  gates:
    latency_p95_ms: {margin: \"10%\", blocking: true}
    latency_p99_ms: {margin: \"20%\", blocking: true}
    error_rate: {margin: 0.01, blocking: true}
    cost_per_request: {margin: \"10%\"}
    quality: {margin: 0.02}
    hallucination_rate: {margin: 0.01, blocking: true}
";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let lines: usize = value("--lines").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let regress = args.iter().any(|a| a == "--regress");
    let every_ms: u64 = value("--every-ms").and_then(|v| v.parse().ok()).unwrap_or(50);
    if let Some(file) = value("--write") {
        write_logs(Path::new(&file), lines, regress, every_ms);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let logs = dir.path().join("requests.jsonl");
    let started = Instant::now();
    write_logs(&logs, lines, regress, every_ms);
    let size = std::fs::metadata(&logs).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {lines} lines, {:.0} MB, in {:.1} s",
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(dir.path().join("promptgate.yaml"), CONFIG).expect("config");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_promptgate"));
    let out = dir.path().join("out");
    let started = Instant::now();
    let run = if Path::new("/usr/bin/time").exists() {
        Command::new("/usr/bin/time")
            .arg("-v")
            .arg(&binary)
            .args(["canary", "--out"])
            .arg(&out)
            .current_dir(dir.path())
            .output()
    } else {
        Command::new(&binary)
            .args(["canary", "--out"])
            .arg(&out)
            .current_dir(dir.path())
            .output()
    }
    .expect("the binary runs");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&run.stderr);
    let rss = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    print!("{}", String::from_utf8_lossy(&run.stdout));
    println!("exit {:?}", run.status.code());
    println!("wall {wall:.2} s");
    match rss {
        Some(kb) => println!("peak RSS {:.0} MB", kb / 1024.0),
        None => println!("peak RSS not measured (/usr/bin/time -v is not installed)"),
    }
}

/// Interleaved requests of the two versions, one every `every_ms`, in time order.
fn write_logs(path: &Path, lines: usize, regress: bool, every_ms: u64) {
    let file = std::fs::File::create(path).expect("create the log");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng::new(2026);
    let mut line = String::with_capacity(300);
    let start_ms: u64 = 1_796_119_200_000;
    for i in 0..lines {
        let canary = i % 2 == 1;
        let (u, v) = (1.0 - rng.unit(), rng.unit());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        let mut latency = 420.0 * (0.35 * z).exp();
        if canary && regress && z > 1.881 {
            latency *= 2.0;
        }
        let error_rate = if canary && regress { 0.03 } else { 0.01 };
        let error = if rng.unit() < error_rate {
            "\"upstream timeout\""
        } else {
            "null"
        };
        let input = 800 + rng.below(600);
        let output = 120 + rng.below(300);
        let feedback = match rng.below(10) {
            0 => "{\"up\": false}",
            1 | 2 => "{\"up\": true}",
            _ => "{}",
        };
        let quality = 0.85 + 0.1 * (rng.unit() - 0.5);
        let hallucinated = rng.unit() < 0.02;
        let t = start_ms + i as u64 * every_ms;
        let (secs, millis) = (t / 1000, t % 1000);
        let stamp = promptgate::canary::time::format_utc(secs as f64);
        line.clear();
        let _ = write!(
            line,
            "{{\"ts\": \"{}.{millis:03}Z\", \"request_id\": \"req-{i:08}\", \"variant\": \"{}\", \"model\": \"gpt-4o-mini\", \"latency_ms\": {latency:.1}, \"usage\": {{\"input_tokens\": {input}, \"output_tokens\": {output}}}, \"error\": {error}, \"feedback\": {feedback}, \"quality\": {quality:.3}, \"hallucinated\": {hallucinated}}}",
            stamp.trim_end_matches('Z'),
            if canary { "v1.3.0" } else { "v1.2.3" },
        );
        line.push('\n');
        out.write_all(line.as_bytes()).expect("write the log");
    }
    out.flush().expect("write the log");
}
