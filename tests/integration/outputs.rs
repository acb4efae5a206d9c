//! The outputs: results.json, report.md, summary.md, junit.xml; `report` and `demo`.

use crate::support::{TestRepo, promptgate_in, results};

#[test]
fn demo_runs_offline_and_exits_0_with_a_failing_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let run = promptgate_in(dir.path(), &["demo", "--out", "out"]);
    run.expect_code(0).stdout_has("verdict: FAIL").stdout_has("wrote");
    // A significant worsening no gate names says so in the log as in the comment (the log said
    // a bare "regression" beside the comment's "regression · not gated"), and is no regression:
    // without a margin nothing is materially worse.
    assert!(
        run.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("latency_p50_ms") && l.contains("significantly worse · not gated")),
        "{}",
        run.stdout
    );
    let out = dir.path().join("out");
    for file in ["results.json", "report.md", "summary.md", "junit.xml"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let r = results(&out);
    assert_eq!(r["verdict"], "fail");
    assert_eq!(r["run"]["simulated"], true);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.starts_with("<!-- promptgate:report -->"));
    assert!(report.contains("flipped pass → fail"));
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    // One testcase per experiment × gated metric it measured: customer-support has the 4
    // default-and-configured gates (its `pii` assertion feeds pii_leak_rate), product-faq 3,
    // help-center 5 (its judges feed hallucination_rate and relevance). Its pass rate and the
    // staff phone number the pull request puts into its answers fail customer-support; the
    // claims its article does not support fail help-center's hallucination_rate and, as a
    // judge's fail fails its call, its pass_rate.
    assert_eq!(junit.matches("<testcase ").count(), 4 + 3 + 5, "{junit}");
    assert_eq!(junit.matches("<failure").count(), 2 + 2, "{junit}");
    assert!(
        junit.contains(
            "<testcase name=\"hallucination_rate\" classname=\"help-center\">\n      <failure message=\"regression"
        ),
        "{junit}"
    );
    assert!(
        junit.contains(
            "<testcase name=\"pii_leak_rate\" classname=\"customer-support\">\n      <failure message=\"regression"
        ),
        "{junit}"
    );
    // The mask's asterisks escaped, as emphasis markers: GitHub shows `+* (***) ***-**93`.
    assert!(report.contains(
        "✗ pii_leak_rate: found personal data: a phone number (+&#42; (&#42;&#42;&#42;) &#42;&#42;&#42;-&#42;&#42;93)"
    ));
    // The leaked number is masked wherever an output is quoted or stored, not only in the
    // failure line: the comment must not publish it again.
    let raw = std::fs::read_to_string(out.join("results.json")).unwrap();
    for (name, text) in [("report.md", &report), ("results.json", &raw)] {
        assert!(!text.contains("555-0193"), "{name} quotes the staff number unmasked");
    }
    assert!(
        report.contains("text her mobile, +&#42; (&#42;&#42;&#42;) &#42;&#42;&#42;-&#42;&#42;93."),
        "the quoted output is masked"
    );
}

#[test]
fn report_rerenders_the_same_outputs_from_results_json() {
    let dir = tempfile::tempdir().unwrap();
    promptgate_in(dir.path(), &["demo", "--out", "first"]).expect_code(0);
    promptgate_in(dir.path(), &["report", "first/results.json", "--out", "second"]).expect_code(0);
    for file in ["report.md", "summary.md", "junit.xml", "results.json"] {
        let a = std::fs::read_to_string(dir.path().join("first").join(file)).unwrap();
        let b = std::fs::read_to_string(dir.path().join("second").join(file)).unwrap();
        let first_difference = a.lines().zip(b.lines()).position(|(x, y)| x != y);
        assert!(
            a == b,
            "{file} differs after re-rendering, first at line {first_difference:?}"
        );
    }
}

/// A reused output folder keeps no earlier run's chart: an experiment renamed or gone would
/// leave its chart beside this run's, for a reviewer browsing the artifact to read as current.
/// Only the charts promptgate listed as its own go: the folder may hold the user's images
/// (the review: `--out docs` deleted a committed `docs/charts/logo.png`).
#[test]
fn writing_into_a_reused_folder_removes_the_charts_this_run_has_not() {
    let dir = tempfile::tempdir().unwrap();
    let charts = dir.path().join("out").join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    std::fs::write(charts.join("logo.png"), b"the user's own image").unwrap();
    promptgate_in(dir.path(), &["demo", "--out", "out"]).expect_code(0);
    let names = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let current = names(&charts);
    assert!(current.iter().any(|n| n.ends_with("-quality.png")), "{current:?}");
    assert!(
        current.contains(&"logo.png".to_owned()),
        "the user's image stays: {current:?}"
    );
    // An earlier run's charts of an experiment since renamed, as that run listed them.
    let manifest = charts.join(".promptgate-charts");
    let listed = std::fs::read_to_string(&manifest).unwrap();
    assert!(!listed.contains("logo.png"), "{listed}");
    let mut earlier = listed.clone();
    for stale in ["renamed-experiment-quality.svg", "renamed-experiment-quality.png"] {
        std::fs::write(charts.join(stale), b"an earlier run's chart").unwrap();
        earlier.push_str(&format!("{stale}\n"));
    }
    earlier.push_str("../results.json\n");
    std::fs::write(&manifest, earlier).unwrap();
    std::fs::write(charts.join("notes.txt"), b"not a chart").unwrap();
    promptgate_in(dir.path(), &["report", "out/results.json", "--out", "out"]).expect_code(0);
    let mut expected = current;
    expected.push("notes.txt".to_owned());
    expected.sort();
    assert_eq!(
        names(&charts),
        expected,
        "the stale charts are gone, this run's and the user's files stay"
    );
    assert_eq!(std::fs::read_to_string(&manifest).unwrap(), listed);
    assert!(
        dir.path().join("out/results.json").is_file(),
        "nothing outside the folder is touched"
    );
}

#[test]
fn demo_is_reproducible() {
    let dir = tempfile::tempdir().unwrap();
    promptgate_in(dir.path(), &["demo", "--out", "a"]).expect_code(0);
    promptgate_in(dir.path(), &["demo", "--out", "b"]).expect_code(0);
    let strip = |name: &str| {
        let mut r = results(&dir.path().join(name));
        // Commit SHAs and timings differ between runs; everything else must not.
        for key in ["base", "head"] {
            r[key]["sha"] = serde_json::Value::Null;
        }
        r["run"]["duration_ms"] = serde_json::Value::Null;
        r
    };
    assert_eq!(strip("a"), strip("b"));
}

#[test]
fn validate_accepts_the_demo_suite() {
    let repo = TestRepo::with_demo_base();
    repo.promptgate(&["validate"])
        .expect_code(0)
        .stdout_has("ok: 3 experiment(s), 128 case(s)");
}

#[test]
fn a_config_named_by_its_absolute_path_is_read_inside_the_repository() {
    let repo = TestRepo::with_demo_base();
    let config = repo.path().join("promptgate.yaml");
    let config = config.to_str().unwrap();
    repo.promptgate(&["validate", "--config", config])
        .expect_code(0)
        .stdout_has("ok: 3 experiment(s), 128 case(s)");
    // From a folder below the root, and from outside the repository through -C.
    std::fs::create_dir_all(repo.path().join("sub")).unwrap();
    promptgate_in(&repo.path().join("sub"), &["validate", "--config", config]).expect_code(0);
    let elsewhere = tempfile::tempdir().unwrap();
    let root = repo.path().to_str().unwrap();
    promptgate_in(elsewhere.path(), &["-C", root, "validate", "--config", config]).expect_code(0);
    promptgate_in(
        elsewhere.path(),
        &["-C", root, "detect", "--base", "HEAD", "--config", config],
    )
    .expect_code(0);
    // A file outside the repository is refused, saying why.
    let outside = elsewhere.path().join("promptgate.yaml");
    std::fs::write(&outside, "experiments: []\n").unwrap();
    repo.promptgate(&["validate", "--config", outside.to_str().unwrap()])
        .expect_code(2)
        .stderr_has("is not a file inside the repository")
        .stderr_has("hint:");
    // Written to climb out (`../other/promptgate.yaml`): outside, and no link is blamed.
    if repo.path().parent() == elsewhere.path().parent() {
        let name = elsewhere.path().file_name().unwrap().to_str().unwrap();
        let climbing = format!("../{name}/promptgate.yaml");
        let run = repo.promptgate(&["validate", "--config", &climbing]);
        run.expect_code(2).stderr_has("hint:");
        assert!(!run.stderr.contains("is a link"), "{}", run.stderr);
    }
    // A relative path is read as a commit's tree names it: `./` and `dir/..` name the root's
    // file (read from a commit, `./promptgate.yaml` was no file), `..` past the root is refused.
    for config in ["./promptgate.yaml", "prompts/../promptgate.yaml"] {
        repo.promptgate(&["validate", "--config", config])
            .expect_code(0)
            .stdout_has("ok: 3 experiment(s), 128 case(s)");
        repo.promptgate(&["detect", "--base", "HEAD", "--config", config])
            .expect_code(0);
    }
    // Climbing out says so (it read "no suite file"); commands that read no suite ignore it.
    for command in [
        &["validate"][..],
        &["run", "--base", "HEAD"],
        &["detect", "--base", "HEAD"],
    ] {
        let args: Vec<&str> = command
            .iter()
            .copied()
            .chain(["--config", "../promptgate.yaml"])
            .collect();
        repo.promptgate(&args)
            .expect_code(2)
            .stderr_has("--config ../promptgate.yaml climbs out of the repository")
            .stderr_has("hint:");
    }
    let missing = repo.path().join("no-results.json");
    let report = repo.promptgate(&["report", missing.to_str().unwrap(), "--config", "../x.yaml"]);
    report.expect_code(2).stderr_has("no-results.json");
    assert!(!report.stderr.contains("climbs out"), "{}", report.stderr);
}

#[test]
fn validate_checks_a_canary_only_config_as_canary_reads_it() {
    let repo = TestRepo::new();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/canary/promptgate.yaml");
    let config = std::fs::read_to_string(fixture).unwrap();
    repo.write("promptgate.yaml", &config);
    repo.promptgate(&["validate"])
        .expect_code(0)
        .stdout_has("ok: a canary-only config, 6 gate(s)");
    repo.write(
        "promptgate.yaml",
        &config.replace("arm_field: variant", "arm_field: variant\n    bogus: 1"),
    );
    repo.promptgate(&["validate"])
        .expect_code(2)
        .stderr_has("unknown key `bogus`")
        .stderr_has("promptgate.yaml:");
}

/// A suite's `canary:` section is checked as `canary` reads it, too, not only in a canary-only
/// file: a full suite with a broken canary section validated, and `canary` then refused it.
#[test]
fn validate_checks_a_suites_canary_section() {
    let repo = TestRepo::with_demo_base();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/canary/promptgate.yaml");
    let canary = std::fs::read_to_string(fixture).unwrap();
    let section = &canary[canary.find("\ncanary:").expect("a canary section") + 1..];
    let section = section.split("\nexperiments:").next().unwrap_or(section);
    let suite = repo.read("promptgate.yaml");
    repo.write("promptgate.yaml", &format!("{suite}\n{section}\n"));
    repo.promptgate(&["validate"]).expect_code(0);
    repo.write(
        "promptgate.yaml",
        &format!(
            "{suite}\n{}\n",
            section.replace("arm_field: variant", "arm_field: variant\n    bogus: 1")
        ),
    );
    let run = repo.promptgate(&["validate"]);
    run.expect_code(2)
        .stderr_has("unknown key `bogus`")
        .stderr_has("promptgate.yaml:");
    // Said once: the suite's own reading checks the section's keys too.
    assert_eq!(run.stderr.matches("unknown key `bogus`").count(), 1, "{}", run.stderr);
}

#[test]
fn init_scaffolds_a_suite_that_validates_and_refuses_to_overwrite() {
    let repo = TestRepo::new();
    repo.write(".gitignore", "target");
    repo.promptgate(&["init"]).expect_code(0);
    assert_eq!(repo.read(".gitignore"), "target\npromptgate-out/\n");
    repo.promptgate(&["validate"]).expect_code(0);
    // Every file already there is named; with --force each overwritten one is said.
    repo.promptgate(&["init"])
        .expect_code(2)
        .stderr_has("promptgate.yaml, ")
        .stderr_has("already exist(s)");
    repo.promptgate(&["init", "--force"])
        .expect_code(0)
        .stdout_has("overwrote promptgate.yaml (it existed; --force)");

    // From a folder of the repository, the scaffold goes to its root, where run looks.
    let other = TestRepo::new();
    std::fs::create_dir_all(other.path().join("docs")).unwrap();
    promptgate_in(&other.path().join("docs"), &["init"]).expect_code(0);
    assert!(other.path().join("promptgate.yaml").is_file());
    assert!(!other.path().join("docs/promptgate.yaml").exists());
    other.promptgate(&["validate"]).expect_code(0);
}

#[test]
fn live_demo_without_a_key_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(dir.path())
        .args(["demo", "--live"])
        .env_remove("OPENAI_API_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY") && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// A `results.json` holding only the keys DESIGN.md's contract names (another tool's, or one
/// written by hand) is re-rendered: what the contract leaves out is inferred from what it says.
#[test]
fn report_renders_a_results_file_with_only_the_contract_keys() {
    let dir = tempfile::tempdir().unwrap();
    let call = |output: &str, pass: bool| {
        serde_json::json!({"repeat": 0, "output": output, "error": null, "latency_ms": 100,
            "tokens": {"input": 10, "cached_input": 0, "output": 5}, "cost_usd": 0.001,
            "cached": false, "scores": {"pass": pass}})
    };
    let results = serde_json::json!({
        "schema_version": 1, "verdict": "fail",
        "base": {"ref": "main", "sha": "a".repeat(40)}, "head": {"ref": "pr", "sha": "b".repeat(40)},
        "experiments": [{
            "name": "support", "status": "changed", "affected_by": ["prompts/support.md"], "verdict": "fail",
            "metrics": [{"name": "pass_rate", "direction": "higher", "blocking": true, "baseline": 0.9,
                "candidate": 0.7, "delta": -0.2, "ci": [-0.3, -0.1], "p_value": 0.001, "p_adjusted": 0.002,
                "test": "mcnemar-exact", "n": 50, "verdict": "regression", "non_inferior": false, "mde": 0.1}],
            "cases": [{"id": "refund-late", "baseline": [call("Within 30 days.", true)],
                       "candidate": [call("Any time.", false)]}]
        }]
    });
    std::fs::write(dir.path().join("results.json"), results.to_string()).unwrap();
    promptgate_in(dir.path(), &["report", "results.json", "--out", "out"]).expect_code(0);
    let out = dir.path().join("out");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("### ❌ promptgate: regression — support: pass_rate regressed (90.0% → 70.0%, p = 0.002)"),
        "{report}"
    );
    assert!(report.contains("1 case flipped pass → fail"), "{report}");
    assert!(
        report.contains("| calls | 2: 2 completed, 0 errored, 0 cache hits |"),
        "{report}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"1\" failures=\"1\" errors=\"0\""), "{junit}");
    let written = crate::support::results(&out);
    assert_eq!(written["verdict"], "fail");
    assert_eq!(written["experiments"][0]["metrics"][0]["fails_gate"], true);
    assert_eq!(written["experiments"][0]["cases"][0]["flip"], "pass_to_fail");
}

/// A reader that goes away (`promptgate … | head -1`) is no panic (exit 101 with a
/// backtrace): the process stops quietly as a run that could not finish (3), never as a pass.
#[test]
fn a_closed_output_pipe_is_no_panic() {
    let repo = TestRepo::with_demo_base();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(repo.path())
        .arg("validate")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn promptgate");
    // The reading end closes before the first line is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(3), "{stderr}");
}
