//! The ledger's model, join, drift and renderings, on hand-built entries and the report's
//! hand-built results.

use std::collections::BTreeMap;
use std::time::Duration;

use super::drift::GateMargin;
use super::*;
use crate::report::markdown::test_fixtures::demo_results;
use crate::results::{AcceptedRegression, Direction, ExperimentStatus, Verdict, Waiver};

fn gate(time: &str, experiment: &str, version: &str, verdict: &str, metrics: &[(&str, f64, [f64; 2])]) -> Entry {
    Entry {
        time: time.to_owned(),
        experiment: experiment.to_owned(),
        version: Some(version.to_owned()),
        commit: Some(format!("{:0<40}", version.replace(['v', '.'], ""))),
        pr: Some(7),
        verdict: verdict.to_owned(),
        metrics: metrics
            .iter()
            .map(|(name, value, ci)| {
                (
                    (*name).to_owned(),
                    MetricValue {
                        value: Some(*value),
                        ci: Some(*ci),
                    },
                )
            })
            .collect(),
        waiver: None,
        canary: None,
    }
}

fn canary_file(verdict: &str, version: &str) -> CanaryFile {
    serde_json::from_value(serde_json::json!({
        "schema_version": 1,
        "verdict": verdict,
        "experiment": "support",
        "version": version,
        "arms": {"baseline": {"n": 9000}, "canary": {"n": 1000}},
        "metrics": [
            {"name": "error_rate", "baseline": 0.010, "canary": 0.031, "delta": 0.021, "ci": [0.012, 0.030],
             "p_value": 0.0001, "p_adjusted": 0.0002, "test": "score", "verdict": "regression"},
            {"name": "latency_p95_ms", "baseline": 640.0, "canary": 650.0, "delta": 10.0, "ci": [-20.0, 41.0],
             "p_value": 0.4, "p_adjusted": 0.4, "test": "quantile", "verdict": "no_change"}
        ],
        "needed": null
    }))
    .unwrap()
}

#[test]
fn a_gate_entry_per_changed_experiment_with_the_candidates_own_value_and_interval() {
    let mut results = demo_results();
    results.experiments[0].metrics[0].details.candidate_ci = Some([0.81, 0.93]);
    let entries = gate_entries(&results, Some(12), "2026-11-30T10:00:00Z");
    let touched = results
        .experiments
        .iter()
        .filter(|e| e.status != ExperimentStatus::Removed)
        .count();
    assert!(
        touched < results.experiments.len(),
        "the fixture has a removed experiment"
    );
    assert_eq!(entries.len(), touched);
    let e = &entries[0];
    assert_eq!(e.experiment, "customer-support");
    assert_eq!(
        e.version.as_deref(),
        Some("v1.3.0"),
        "the candidate's version, not the baseline's"
    );
    assert_eq!(e.commit.as_deref(), Some(results.head.sha.as_str()));
    assert_eq!((e.pr, e.verdict.as_str()), (Some(12), "fail"));
    let pass_rate = &e.metrics["pass_rate"];
    assert_eq!(pass_rate.value, results.experiments[0].metrics[0].candidate);
    assert_eq!(pass_rate.ci, Some([0.81, 0.93]));
    // Only the gated metrics: relevance is informational in the fixture.
    assert!(!e.metrics.contains_key("relevance"), "{:?}", e.metrics.keys());
    assert!(e.waiver.is_none() && e.canary.is_none());

    // Every contract key is written, null when unknown.
    let line = to_lines(&entries[..1]);
    let value: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
    let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "time",
            "experiment",
            "version",
            "commit",
            "pr",
            "verdict",
            "metrics",
            "waiver",
            "canary"
        ]
    );
    assert_eq!(parse_ledger(&line, "ledger.jsonl").unwrap(), entries[..1]);
}

#[test]
fn a_removed_experiment_has_no_entry_and_a_waived_one_says_who_accepted_what() {
    let mut results = demo_results();
    results.experiments[1].status = ExperimentStatus::Removed;
    results.verdict = Verdict::Waived;
    results.waiver = Some(Waiver {
        by: "maya".into(),
        reason: "the judge is flaky".into(),
        via: "label".into(),
        waived: "pass_rate regressed".into(),
        at: Some("2026-11-29T09:00:00Z".into()),
        commit: None,
        accepted: vec![AcceptedRegression {
            experiment: "customer-support".into(),
            metric: "pass_rate".into(),
            direction: Direction::Higher,
            estimate: Some(-0.06),
            ci: Some([-0.1, -0.02]),
        }],
        source_id: None,
    });
    let entries = gate_entries(&results, None, "2026-11-30T10:00:00Z");
    let names: Vec<&str> = entries.iter().map(|e| e.experiment.as_str()).collect();
    assert!(!names.contains(&results.experiments[1].name.as_str()), "{names:?}");
    let support = &entries[0];
    assert_eq!(support.verdict, "waived");
    let waiver = support.waiver.as_ref().unwrap();
    assert_eq!(
        (waiver.by.as_str(), waiver.metrics.clone()),
        ("maya", vec!["pass_rate".to_owned()])
    );
    // The waiver named only customer-support's regression.
    assert!(entries[1..].iter().all(|e| e.waiver.is_none()));
    // A waiver that accepts a base that does not load covers every experiment.
    if let Some(w) = results.waiver.as_mut() {
        w.accepted.push(AcceptedRegression::base_not_loading(
            "the suite at base (abc) does not load: promptgate.yaml:3:1: bad",
        ));
    }
    let entries = gate_entries(&results, None, "2026-11-30T10:00:00Z");
    assert!(entries.iter().all(|e| e.waiver.is_some()), "{entries:?}");
}

#[test]
fn a_canary_entry_records_the_decision_in_words() {
    for (verdict, decision) in [("promote", "shipped"), ("rollback", "rolled back"), ("hold", "hold")] {
        let entry = canary_entry(
            &canary_file(verdict, "v1.3.0"),
            Some("abc".into()),
            None,
            "2026-12-01T10:00:00Z",
        );
        assert_eq!(
            (entry.experiment.as_str(), entry.version.as_deref()),
            ("support", Some("v1.3.0"))
        );
        assert_eq!(entry.verdict, verdict);
        assert!(entry.metrics.is_empty(), "a canary's numbers stay in `canary`");
        let canary = entry.canary.unwrap();
        assert_eq!(canary.decision, decision);
        assert_eq!((canary.baseline_n, canary.canary_n), (Some(9000), Some(1000)));
        assert_eq!(canary.metrics["error_rate"].ci, Some([0.012, 0.030]));
        assert_eq!(canary.needed, None, "a null `needed` is not kept");
    }
}

#[test]
fn show_has_one_row_per_version_with_its_latest_canary_decision() {
    let entries = vec![
        gate(
            "2026-11-01T10:00:00Z",
            "support",
            "v1.2.0",
            "pass",
            &[("pass_rate", 0.95, [0.93, 0.97])],
        ),
        gate(
            "2026-11-05T10:00:00Z",
            "support",
            "v1.3.0",
            "pass",
            &[("pass_rate", 0.94, [0.92, 0.96])],
        ),
        canary_entry(&canary_file("hold", "v1.3.0"), None, None, "2026-11-06T10:00:00Z"),
        canary_entry(&canary_file("rollback", "v1.3.0"), None, None, "2026-11-07T10:00:00Z"),
        // A canary of a version the gate never recorded still gets its row.
        canary_entry(
            &canary_file("promote", "v0.9.0"),
            Some("feed".into()),
            None,
            "2026-11-08T10:00:00Z",
        ),
        gate("2026-11-09T10:00:00Z", "other", "v2", "fail", &[]),
    ];
    let all = history(&entries, None);
    assert_eq!(all.keys().collect::<Vec<_>>(), ["other", "support"]);
    let rows = &all["support"];
    let versions: Vec<Option<&str>> = rows.iter().map(|r| r.version.as_deref()).collect();
    assert_eq!(versions, [Some("v1.2.0"), Some("v1.3.0"), Some("v0.9.0")]);
    let v13 = &rows[1];
    assert_eq!(v13.verdict.as_deref(), Some("pass"));
    assert_eq!(v13.canary.as_ref().unwrap().decision, "rolled back");
    assert_eq!(v13.canary_entries, 2);
    assert_eq!(v13.metrics["pass_rate"].value, Some(0.94));
    assert_eq!(rows[2].verdict, None);
    assert_eq!(rows[2].commit.as_deref(), Some("feed"));
    assert_eq!(history(&entries, Some("other")).len(), 1);

    let gates = BTreeMap::new();
    let view = Show {
        history: &all,
        gates: &gates,
        flags: &[],
        window: Window::Versions(10),
        drift_unchecked: None,
        charts: &BTreeMap::new(),
    };
    let text = render_terminal(&view);
    assert!(
        text.contains("rolled back (error_rate) after 2 looks"),
        "the failing canary metric and the looks are named:\n{text}"
    );
    assert!(text.contains("not gated"), "{text}");
    assert!(text.contains("No metric drifted."), "{text}");
}

#[track_caller]
fn check_drift(values: &[f64], gate: GateMargin, window: Window, expected: Option<(&str, &str)>) {
    let entries: Vec<Entry> = values
        .iter()
        .enumerate()
        .map(|(i, v)| gate_line(&format!("2026-11-{:02}T10:00:00Z", i + 1), &format!("v{i}"), *v))
        .collect();
    let rows = &history(&entries, None)["support"];
    let gates = BTreeMap::from([("m".to_owned(), gate)]);
    let flags = drift(rows, &gates, window);
    let got = flags.first().map(|f| (f.from_version.as_str(), f.to_version.as_str()));
    assert_eq!(got, expected, "{flags:?}");
}

fn gate_line(time: &str, version: &str, value: f64) -> Entry {
    gate(
        time,
        "support",
        version,
        "pass",
        &[("m", value, [value - 0.01, value + 0.01])],
    )
}

#[test]
fn drift_is_a_slide_beyond_the_margin_across_the_window_in_the_bad_direction() {
    let higher = GateMargin {
        direction: Direction::Higher,
        margin: 0.02,
        relative: false,
    };
    // Each step is 1 pp, inside the margin; across four versions the slide is 3 pp.
    check_drift(
        &[0.95, 0.94, 0.93, 0.92],
        higher,
        Window::Versions(10),
        Some(("v0", "v3")),
    );
    // Within the margin overall: no flag. Improving: no flag.
    check_drift(&[0.95, 0.94, 0.94], higher, Window::Versions(10), None);
    check_drift(&[0.90, 0.95, 0.99], higher, Window::Versions(10), None);
    // The window is the last two versions only: 1 pp.
    check_drift(&[0.95, 0.94, 0.93, 0.92], higher, Window::Versions(2), None);
    // A span: the versions within three days before the newest (v1 to v3, 2 pp: not beyond).
    check_drift(
        &[0.99, 0.94, 0.93, 0.92],
        higher,
        Window::Span(Duration::from_secs(2 * 86_400)),
        None,
    );
    check_drift(
        &[0.99, 0.94, 0.93, 0.92],
        higher,
        Window::Span(Duration::from_secs(3 * 86_400)),
        Some(("v0", "v3")),
    );
    // A relative margin of a lower-is-better metric: 10% of the oldest value.
    let lower = GateMargin {
        direction: Direction::Lower,
        margin: 0.10,
        relative: true,
    };
    check_drift(&[600.0, 640.0, 661.0], lower, Window::Versions(10), Some(("v0", "v2")));
    check_drift(&[600.0, 640.0, 659.0], lower, Window::Versions(10), None);
    // One version is no trend.
    check_drift(&[0.5], higher, Window::Versions(10), None);
}

#[test]
fn windows_are_versions_or_spans() {
    assert_eq!(parse_window("10").unwrap(), Window::Versions(10));
    assert_eq!(
        parse_window("30d").unwrap(),
        Window::Span(Duration::from_secs(30 * 86_400))
    );
    assert_eq!(
        parse_window("12h").unwrap(),
        Window::Span(Duration::from_secs(12 * 3600))
    );
    for bad in ["1", "0", "0d", "week", "7w", "-3", ""] {
        let e = parse_window(bad).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{bad}");
        assert!(e.to_string().contains("hint: write `--window 10`"), "{e}");
    }
}

#[test]
fn a_malformed_ledger_line_is_named_by_its_number() {
    let good = to_lines(&[gate_line("2026-11-01T10:00:00Z", "v1", 0.9)]);
    let text = format!("{good}\n{{\"time\": \"2026-11-02T10:00:00Z\", \"experiment\": 3}}\n");
    let e = parse_ledger(&text, "promptgate-ledger:ledger.jsonl").unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.exit_code(), 2);
    assert!(shown.contains("ledger line 3 is not a ledger entry"), "{shown}");
    assert!(shown.contains("--> promptgate-ledger:ledger.jsonl:3:"), "{shown}");
    assert!(shown.contains("hint: each line is one JSON object"), "{shown}");

    let truncated = format!("{good}{}", &good[..40]);
    let shown = parse_ledger(&truncated, "l.jsonl").unwrap_err().to_string();
    assert!(shown.contains("ledger line 2"), "{shown}");

    let bad_time = good.replace("2026-11-01T10:00:00Z", "last tuesday");
    let shown = parse_ledger(&bad_time, "l.jsonl").unwrap_err().to_string();
    assert!(
        shown.contains("ledger line 1: `time` is not an RFC 3339 instant"),
        "{shown}"
    );
    assert!(shown.contains("l.jsonl:1:10"), "the column of the value: {shown}");

    // Blank lines (an editor's last newline) are no entries and no errors.
    assert_eq!(parse_ledger(&format!("\n{good}\n\n"), "l").unwrap().len(), 1);
}

#[test]
fn appending_keeps_one_entry_per_line() {
    assert_eq!(append("", "b\n"), "b\n");
    assert_eq!(append("a\n", "b\n"), "a\nb\n");
    // A ledger edited by hand without its last newline.
    assert_eq!(append("a", "b\n"), "a\nb\n");
}

#[test]
fn the_markdown_escapes_what_the_ledger_writers_chose() {
    let mut hostile = gate_line("2026-11-01T10:00:00Z", "v1 | @admins <img src=x>", 0.9);
    hostile.experiment = "support".into();
    hostile.pr = Some(12);
    let mut next = gate_line("2026-11-02T10:00:00Z", "v2", 0.8);
    next.pr = Some(13);
    let all = history(&[hostile, next], None);
    let gates = BTreeMap::from([(
        "m".to_owned(),
        GateMargin {
            direction: Direction::Higher,
            margin: 0.05,
            relative: false,
        },
    )]);
    let flags = drift(&all["support"], &gates, Window::Versions(10));
    assert_eq!(flags.len(), 1);
    assert!(flags[0].beyond_noise, "[0.79, 0.81] lies below [0.89, 0.91]");
    let view = Show {
        history: &all,
        gates: &gates,
        flags: &flags,
        window: Window::Versions(10),
        drift_unchecked: None,
        charts: &BTreeMap::new(),
    };
    let md = render_markdown(&view);
    assert!(!md.contains("<img"), "{md}");
    assert!(!md.contains("| @admins"), "{md}");
    assert!(md.contains("&#124; @\u{200d}admins &lt;img"), "{md}");
    // The pull request links (GitHub links `#13`); promptgate's own words are not escaped.
    assert!(md.contains("| #13 |"), "{md}");
    assert!(md.contains("Drift means: across the last 10 versions"), "{md}");
    assert!(md.contains("- ⚠️ **drift** support · m:"), "{md}");
}

#[test]
fn a_canary_json_that_is_not_one_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let check = |name: &str, text: &str, expected: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let e = read_canary(&path).unwrap_err();
        assert_eq!(e.exit_code(), 2, "{name}");
        assert!(e.to_string().contains(expected), "{name}: {e}");
        assert!(e.to_string().contains("hint: "), "{name}: {e}");
    };
    check(
        "broken.json",
        "{\"schema_version\": 1,\n \"verdict\": }",
        "broken.json:2:13",
    );
    check(
        "future.json",
        r#"{"schema_version": 2, "verdict": "promote"}"#,
        "has schema_version 2",
    );
    check("results.json", r#"{"verdict": "pass"}"#, "has no schema_version");
    check(
        "verdict.json",
        r#"{"schema_version": 1, "verdict": "ship it", "experiment": "s", "version": "v1"}"#,
        "does not match the canary.json schema",
    );
    check(
        "unjoined.json",
        r#"{"schema_version": 1, "verdict": "promote", "version": "v1"}"#,
        "names no `experiment`",
    );
    let path = dir.path().join("ok.json");
    std::fs::write(
        &path,
        r#"{"schema_version": 1, "verdict": "hold", "experiment": "s", "version": "v1",
            "arms": {"baseline": {"n": 40}, "canary": {"n": 4}}, "metrics": [], "needed": {"canary": 496}}"#,
    )
    .unwrap();
    let canary = read_canary(&path).unwrap();
    let entry = canary_entry(&canary, None, None, "2026-12-01T10:00:00Z");
    assert_eq!(entry.canary.unwrap().needed, Some(serde_json::json!({"canary": 496})));
}

#[test]
fn a_line_recorded_again_but_for_its_time_is_not_appended() {
    let first = r#"{"time":"2026-11-01T10:00:00Z","experiment":"support","verdict":"pass"}"#;
    let again = r#"{"time":"2026-11-02T09:00:00Z","experiment":"support","verdict":"pass"}"#;
    let other = r#"{"time":"2026-11-02T09:00:00Z","experiment":"support","verdict":"fail"}"#;
    let ledger = format!("{first}\n");
    assert_eq!(append(&ledger, &format!("{again}\n")), ledger);
    assert_eq!(
        append(&ledger, &format!("{again}\n{other}\n")),
        format!("{first}\n{other}\n")
    );
    // A gating's return to an earlier result of its commit after another (a waiver come and
    // gone) is that commit's state returning: recorded.
    let back = format!("{first}\n{other}\n");
    assert_eq!(append(&back, &format!("{again}\n")), format!("{back}{again}\n"));
    // A rerun of an older job's gating after another commit's is no second gating.
    let older = r#"{"time":"2026-11-01T10:00:00Z","experiment":"support","commit":"c1","verdict":"fail"}"#;
    let newer = r#"{"time":"2026-11-02T10:00:00Z","experiment":"support","commit":"c2","verdict":"pass"}"#;
    let rerun = r#"{"time":"2026-11-03T10:00:00Z","experiment":"support","commit":"c1","verdict":"fail"}"#;
    let gated = format!("{older}\n{newer}\n");
    assert_eq!(append(&gated, &format!("{rerun}\n")), gated);
    // A canary's look recorded again after a later look is the same look: the same
    // canary.json recorded again read "hold after 3 looks" for a version that was promoted.
    let hold = r#"{"time":"2026-11-03T10:00:00Z","experiment":"support","canary":{"verdict":"hold","n":900}}"#;
    let promote = r#"{"time":"2026-11-03T12:00:00Z","experiment":"support","canary":{"verdict":"promote","n":2400}}"#;
    let hold_again = r#"{"time":"2026-11-03T13:00:00Z","experiment":"support","canary":{"verdict":"hold","n":900}}"#;
    let looks = format!("{first}\n{hold}\n{promote}\n");
    assert_eq!(append(&looks, &format!("{hold_again}\n")), looks);
    // Another experiment's latest line is not this one's.
    let faq = r#"{"time":"2026-11-03T09:00:00Z","experiment":"faq","verdict":"pass"}"#;
    assert_eq!(
        append(&format!("{first}\n{faq}\n"), &format!("{again}\n")),
        format!("{first}\n{faq}\n")
    );
}
