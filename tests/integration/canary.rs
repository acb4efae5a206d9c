//! `promptgate canary`: the exit codes a deployment pipeline branches on (0 promote, 1 roll
//! back, 4 hold, 2 bad input), the outputs, and bad logs reported with their line numbers.

use std::fmt::Write as _;
use std::path::Path;

use promptgate::stats::Rng;

use crate::support::{Run, promptgate_in};

const CONFIG: &str = "version: 1
experiments: []
canary:
  experiment: support
  version: v1.3.0
  source: {type: jsonl, path: logs/requests.jsonl, arm_field: variant, baseline: v1.2.3, canary: v1.3.0,
           fields: {timestamp: ts, latency_ms: latency_ms, input_tokens: usage.input_tokens,
                    output_tokens: usage.output_tokens, model: model, error: error}}
  min_samples: 300
  gates:
    latency_p95_ms: {margin: \"15%\", blocking: true}
    error_rate: {margin: 0.02, blocking: true}
    cost_per_request: {margin: \"10%\"}
";

/// One arm's requests: lognormal latencies around 400 ms, errors at `error_rate`, one request
/// a minute per arm (interleaved by the caller).
fn requests(rng: &mut Rng, variant: &str, n: usize, error_rate: f64, slow: f64) -> Vec<(u64, String)> {
    (0..n)
        .map(|i| {
            let (u, v) = (1.0 - rng.unit(), rng.unit());
            let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
            let latency = 400.0 * slow * (0.3 * z).exp();
            let error = if rng.unit() < error_rate { "\"timeout\"" } else { "null" };
            let t = 1_796_119_200 + i as u64 * 60;
            let line = format!(
                "{{\"ts\": {t}, \"variant\": \"{variant}\", \"model\": \"gpt-4o-mini\", \"latency_ms\": {latency:.1}, \"usage\": {{\"input_tokens\": {}, \"output_tokens\": {}}}, \"error\": {error}}}",
                900 + rng.below(200),
                200 + rng.below(100)
            );
            (t, line)
        })
        .collect()
}

/// A folder with the config and logs of `n` requests per arm.
fn setup(n: usize, canary_errors: f64, canary_slow: f64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(42);
    let mut lines = requests(&mut rng, "v1.2.3", n, 0.01, 1.0);
    lines.extend(requests(&mut rng, "v1.3.0", n, canary_errors, canary_slow));
    lines.sort_by_key(|(t, _)| *t);
    let mut text = String::new();
    for (_, line) in lines {
        let _ = writeln!(text, "{line}");
    }
    write(dir.path(), "logs/requests.jsonl", &text);
    write(dir.path(), "promptgate.yaml", CONFIG);
    dir
}

fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(full, text).unwrap();
}

fn canary(dir: &Path, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["canary", "--out", "out"];
    args.extend_from_slice(extra);
    let run = promptgate_in(dir, &args);
    let json = std::fs::read_to_string(dir.join("out/canary.json"))
        .map(|t| serde_json::from_str(&t).expect("canary.json is JSON"))
        .unwrap_or(serde_json::Value::Null);
    (run, json)
}

#[test]
fn an_unchanged_canary_is_promoted_with_its_evidence() {
    let dir = setup(2_000, 0.01, 1.0);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(0).stdout_has("promptgate canary: promote");
    assert_eq!(json["verdict"], "promote");
    assert_eq!(json["experiment"], "support");
    assert_eq!(json["version"], "v1.3.0");
    assert_eq!(json["arms"]["canary"]["n"], 2_000);
    let names: Vec<&str> = json["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latency_p95_ms", "error_rate", "cost_per_request"]);
    let report = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(
        report.starts_with("## 🟢 promptgate canary: promote · support v1.3.0"),
        "{report}"
    );
    for chart in ["canary-latency", "canary-error-rate", "canary-cost"] {
        assert!(dir.path().join(format!("out/charts/{chart}.svg")).is_file(), "{chart}");
        assert!(report.contains(&format!("charts/{chart}.png")), "{chart}");
    }
}

/// The config may live outside the repository the command runs in (production logs are not
/// the repository's): given by its absolute path, it is read where it is, and its relative log
/// path from its own folder. Run from inside a git repository that does not hold it.
#[test]
fn a_config_outside_the_repository_is_read_where_it_is() {
    let dir = setup(2_000, 0.08, 1.0);
    let elsewhere = crate::support::TestRepo::new();
    let config = dir.path().join("promptgate.yaml");
    let out = dir.path().join("out");
    let run = promptgate_in(
        elsewhere.path(),
        &[
            "canary",
            "--config",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.expect_code(1).stdout_has("roll back: error_rate worse");
    assert!(out.join("canary.json").is_file());
}

#[test]
fn a_canary_with_more_errors_is_rolled_back_by_name() {
    let dir = setup(2_000, 0.08, 1.0);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(1).stdout_has("roll back: error_rate worse");
    assert_eq!(json["verdict"], "rollback");
    assert_eq!(json["failing"], serde_json::json!(["error_rate"]));
}

#[test]
fn too_little_traffic_holds_and_says_how_much_more() {
    let dir = setup(320, 0.01, 1.0);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(4).stdout_has("needed: about");
    assert_eq!(json["verdict"], "hold");
    let needed = &json["needed"];
    assert!(needed["requests_per_arm"].as_u64().unwrap() > 320, "{needed}");
    assert!(needed["hours"].as_f64().unwrap() > 0.0, "{needed}");
}

/// Logs written arm by arm (every baseline request, then every canary request over the same
/// hours) are not bad input: each arm is in its own time order, and every record is used.
#[test]
fn logs_written_arm_by_arm_are_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(42);
    let mut text = String::new();
    for (_, line) in requests(&mut rng, "v1.2.3", 2_000, 0.01, 1.0)
        .into_iter()
        .chain(requests(&mut rng, "v1.3.0", 2_000, 0.01, 1.0))
    {
        let _ = writeln!(text, "{line}");
    }
    write(dir.path(), "logs/requests.jsonl", &text);
    write(dir.path(), "promptgate.yaml", CONFIG);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(0);
    assert_eq!(json["arms"]["baseline"]["n"], 2_000);
    assert_eq!(json["arms"]["canary"]["n"], 2_000);
    // The same arm's log twice (a file concatenated with itself) is out of its arm's order:
    // bad lines above the limit, not requests counted twice.
    let doubled = format!("{text}{text}");
    write(dir.path(), "logs/requests.jsonl", &doubled);
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(2).stderr_has("out of its arm's order");
}

/// Just deployed: the logs hold the baseline's requests and none of the canary's yet. That is a
/// hold (exit 4) saying how much more it needs, not bad input; drift on the baseline reads the
/// same logs.
#[test]
fn a_canary_without_traffic_yet_holds_for_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(7);
    let mut text = String::new();
    for (_, line) in requests(&mut rng, "v1.2.3", 400, 0.01, 1.0) {
        let _ = writeln!(text, "{line}");
    }
    write(dir.path(), "logs/requests.jsonl", &text);
    write(dir.path(), "promptgate.yaml", CONFIG);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(4);
    assert_eq!(json["verdict"], "hold");
    assert_eq!(json["arms"]["canary"]["n"], 0);
    assert_eq!(json["needed"]["requests_per_arm"], 300, "{json}");
    assert_eq!(json["needed"]["more_requests_per_arm"], 300, "{json}");
    let notes = json["notes"].to_string();
    assert!(notes.contains("no record of the canary arm yet"), "{notes}");

    let (run, json) = canary(dir.path(), &["--window", "3h"]);
    run.expect_code(4);
    assert_eq!(json["needed"]["requests_per_arm"], 300, "{json}");

    let (drift, json) = canary(dir.path(), &["--drift", "--arm", "baseline", "--window", "3h"]);
    assert_ne!(drift.code, 2, "{}", drift.stderr);
    assert!(
        !json["notes"].to_string().contains("no record of the canary arm"),
        "{json}"
    );
}

/// Under the default gates, a latency the baseline's requests carry and the canary's
/// successes do not (a field the new version stopped logging) is a blocking gate no amount of
/// traffic measures: bad input naming the field to map, not a promote on the error rate alone
/// nor a hold for ever. With no canary request at all, the defaults are listed as needing
/// traffic.
#[test]
fn a_default_gate_the_canary_cannot_measure_is_bad_input() {
    let dir = setup(2_000, 0.01, 1.0);
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    let defaults = &config[..config.find("  gates:").unwrap()];
    std::fs::write(dir.path().join("promptgate.yaml"), defaults).unwrap();
    let logs = std::fs::read_to_string(dir.path().join("logs/requests.jsonl")).unwrap();
    let stripped: String = logs
        .lines()
        .map(|l| {
            if l.contains("\"v1.3.0\"") {
                let at = l.find("\"latency_ms\"").unwrap();
                let end = at + l[at..].find(", ").unwrap() + 2;
                format!("{}{}\n", &l[..at], &l[end..])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    write(dir.path(), "logs/requests.jsonl", &stripped);
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(2);
    run.stderr_has("the blocking gate `latency_p95_ms`")
        .stderr_has("cannot be measured from these records: none of the 2000 canary requests carries what it measures: map `latency_ms`")
        .stderr_has("hint: fix the config");

    let baseline_only: String = logs
        .lines()
        .filter(|l| !l.contains("\"v1.3.0\""))
        .map(|l| format!("{l}\n"))
        .collect();
    write(dir.path(), "logs/requests.jsonl", &baseline_only);
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(4);
    assert!(
        json["needed"]["metrics"].to_string().contains("latency_p95_ms"),
        "{json}"
    );
}

#[test]
fn a_window_keeps_only_the_latest_requests() {
    let dir = setup(2_000, 0.01, 1.0);
    // One request a minute per arm: the last 10 hours hold 600 of each.
    let (run, json) = canary(dir.path(), &["--window", "10h"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    let n = json["arms"]["canary"]["n"].as_u64().unwrap();
    assert!((600..=601).contains(&n), "{n}");
    // Drift: the canary's last 10 hours against its 10 hours before.
    let (run, json) = canary(dir.path(), &["--drift", "--window", "10h"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    assert_eq!(json["mode"], "drift");
    assert_eq!(json["arms"]["baseline"]["name"], "v1.3.0, previous 10h");
}

/// The error and its exit code, with the temporary folder's path taken out.
fn printed(run: &Run, dir: &Path) -> String {
    format!(
        "exit {}\n{}",
        run.code,
        run.stderr.replace(&dir.display().to_string(), "<dir>")
    )
}

#[test]
fn malformed_lines_above_the_limit_stop_the_run() {
    let dir = setup(400, 0.01, 1.0);
    let logs = dir.path().join("logs/requests.jsonl");
    let mut text = std::fs::read_to_string(&logs).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[3] = "{\"ts\": 1796119380, \"variant\": \"v1.3.0\", \"latency_ms\": 4".to_owned();
    lines[10] = "{\"ts\": 1796119500, \"variant\": \"v1.2.3\", \"latency_ms\": \"slow\"}".to_owned();
    for line in &mut lines[20..28] {
        *line = "not json at all".to_owned();
    }
    text = lines.join("\n");
    std::fs::write(&logs, &text).unwrap();
    let (run, _) = canary(dir.path(), &[]);
    insta::assert_snapshot!("canary_malformed_lines", printed(&run, dir.path()));
}

/// A baseline no record has is a selector that matches nothing (production always has
/// baseline traffic): exit 2, naming what was seen. A canary no record has holds, its note
/// asking whether a close value was meant.
#[test]
fn an_arm_missing_from_the_logs_is_named() {
    let dir = setup(400, 0.01, 1.0);
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    std::fs::write(
        dir.path().join("promptgate.yaml"),
        config.replace("baseline: v1.2.3,", "baseline: v1.2,"),
    )
    .unwrap();
    let (run, _) = canary(dir.path(), &[]);
    insta::assert_snapshot!("canary_unknown_arm", printed(&run, dir.path()));

    std::fs::write(
        dir.path().join("promptgate.yaml"),
        config.replace("canary: v1.3.0,", "canary: v1.3,"),
    )
    .unwrap();
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(4);
    let notes = json["notes"].to_string();
    assert!(notes.contains("(did you mean `v1.3.0`?)"), "{notes}");
}

#[test]
fn a_field_map_that_matches_nothing_is_bad_input() {
    let dir = setup(400, 0.01, 1.0);
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    let config = config.replace("input_tokens: usage.input_tokens", "input_tokens: usage.prompt_tokens");
    std::fs::write(dir.path().join("promptgate.yaml"), config).unwrap();
    let (run, _) = canary(dir.path(), &[]);
    insta::assert_snapshot!("canary_field_not_found", printed(&run, dir.path()));
}

/// A successful request that logs no latency is left out of the latency quantiles, one without
/// token counts out of the cost, and the notes say how many (only the metric's n showed it).
#[test]
fn successful_requests_without_a_latency_are_counted_in_the_notes() {
    let dir = setup(2_000, 0.01, 1.0);
    let path = dir.path().join("logs/requests.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut dropped = 0;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if dropped < 17 && line.contains("\"v1.3.0\"") && line.contains("\"error\": null") {
                dropped += 1;
                // Ten without a latency, then seven without token counts (so without a cost).
                let (from, to) = if dropped <= 10 {
                    (", \"latency_ms\"", ", \"usage\"")
                } else {
                    (", \"usage\"", ", \"error\"")
                };
                let start = line.find(from).unwrap();
                let end = start + line[start..].find(to).unwrap();
                return format!("{}{}", &line[..start], &line[end..]);
            }
            line.to_owned()
        })
        .collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (run, json) = canary(dir.path(), &[]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("10 of 2000 `v1.3.0` requests succeeded without a latency — left out of the latency quantiles"),
        "{notes}"
    );
    assert!(
        notes.contains("7 of 2000 `v1.3.0` requests succeeded without a cost (no token counts or cost logged) — left out of the cost per request"),
        "{notes}"
    );
}

/// A mistyped `arm_field` routes no record to either arm: the error names the arm field, not
/// the first mapped field (it said "no record has the field `latency_ms`").
#[test]
fn a_mistyped_arm_field_is_named() {
    let dir = setup(400, 0.01, 1.0);
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    assert!(config.contains("arm_field: variant"));
    std::fs::write(
        dir.path().join("promptgate.yaml"),
        config.replace("arm_field: variant", "arm_field: varient"),
    )
    .unwrap();
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(2)
        .stderr_has("no record of the baseline arm: none has `varient`")
        .stderr_has("check `arm_field`");
    assert!(!run.stderr.contains("no record has the field"), "{}", run.stderr);
}

/// DESIGN's field map names feedback, quality and hallucinations; logs that carry none of them
/// yet are read, with a note, as long as no gate reads them.
#[test]
fn a_mapped_field_no_gate_reads_is_a_note_when_absent() {
    let dir = setup(2_000, 0.01, 1.0);
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    let config = config.replace(
        "model: model, error: error}",
        "model: model, error: error, thumbs_up: feedback.up, quality: quality, hallucination: hallucinated}",
    );
    std::fs::write(dir.path().join("promptgate.yaml"), config).unwrap();
    let (run, json) = canary(dir.path(), &[]);
    run.expect_code(0);
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("no record has the field `feedback.up` (mapped to `thumbs_up`); no gate reads it"),
        "{notes}"
    );
    // A gate on it makes the same absence bad input.
    let config = std::fs::read_to_string(dir.path().join("promptgate.yaml")).unwrap();
    let config = config.replace("  gates:\n", "  gates:\n    quality: {margin: 0.05}\n");
    std::fs::write(dir.path().join("promptgate.yaml"), config).unwrap();
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(2).stderr_has("mapped to `quality`");
}

#[test]
fn an_empty_window_is_bad_input() {
    let dir = setup(400, 0.01, 1.0);
    let (run, _) = canary(dir.path(), &["--drift", "--window", "7d"]);
    insta::assert_snapshot!("canary_empty_window", printed(&run, dir.path()));
}

#[test]
fn watching_stops_at_the_first_decision_or_at_max_duration() {
    let decided = setup(2_000, 0.08, 1.0);
    let (run, _) = canary(decided.path(), &["--watch", "1h"]);
    run.expect_code(1);
    let undecided = setup(320, 0.01, 1.0);
    // The next look would come after --max-duration: the watch ends at once, still hold.
    let (run, _) = canary(undecided.path(), &["--watch", "1h", "--max-duration", "30m"]);
    run.expect_code(4).stderr_has("stopping at --max-duration 30m");
}

/// A log that is there but cannot be read is a run error (exit 3, docs/canary.md), not a
/// mistake in the config (exit 2); a path that names nothing is the config's (exit 2).
#[test]
fn a_log_that_cannot_be_read_is_a_run_error_and_a_missing_one_bad_input() {
    let dir = setup(10, 0.01, 1.0);
    std::fs::remove_file(dir.path().join("logs/requests.jsonl")).unwrap();
    std::fs::create_dir(dir.path().join("logs/requests.jsonl")).unwrap();
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(3)
        .stderr_has("cannot read `logs/requests.jsonl`: it is a folder, not a file");
    std::fs::remove_dir(dir.path().join("logs/requests.jsonl")).unwrap();
    let (run, _) = canary(dir.path(), &[]);
    run.expect_code(2).stderr_has("cannot read `logs/requests.jsonl`");
}

/// Under `--window`, a record without a timestamp lies in no window: the notes say how many
/// were not compared, rather than the counts falling silently.
#[test]
fn records_without_a_timestamp_under_a_window_are_noted() {
    let dir = setup(600, 0.01, 1.0);
    let logs = std::fs::read_to_string(dir.path().join("logs/requests.jsonl")).unwrap();
    let mut nulled = 0;
    let text: String = logs
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 3 == 0 {
                nulled += 1;
                let end = l.find(", ").unwrap();
                format!("{{\"ts\": null{}\n", &l[end..])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    write(dir.path(), "logs/requests.jsonl", &text);
    let (run, json) = canary(dir.path(), &["--window", "30d"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    let notes = json["notes"].to_string();
    assert!(
        notes.contains(&format!("{nulled} records have no timestamp, so no window holds them")),
        "{json}"
    );
}
