//! `promptgate run`: detection, paired runs, verdicts and exit codes on real git repositories.

use serde_json::Value;

use crate::support::{TestRepo, fixture, results, run_pr_uncached};

/// The demo's base on `main`, and a `pr` branch with the demo's PR tree committed.
pub(crate) fn demo_pr() -> TestRepo {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    repo.commit("pr");
    repo
}

/// [`demo_pr`] with `from` replaced by `to` in the suite file at base and at head alike: a
/// policy the base already has (the base's policy is the one in force).
pub(crate) fn demo_pr_with_suite(from: &str, to: &str) -> TestRepo {
    let repo = TestRepo::with_demo_base();
    repo.edit("promptgate.yaml", from, to);
    repo.commit("base policy");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    repo.edit("promptgate.yaml", from, to);
    repo.commit("pr");
    repo
}

pub(crate) fn experiment<'a>(results: &'a Value, name: &str) -> &'a Value {
    results["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no experiment {name}"))
}

pub(crate) fn metric<'a>(experiment: &'a Value, name: &str) -> &'a Value {
    experiment["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name}"))
}

#[test]
fn demo_regression_fails_the_gate_and_cost_improvement_is_seen() {
    let repo = demo_pr();
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()])
        .expect_code(1)
        .stdout_has("verdict: FAIL");
    let r = results(&out);
    assert_eq!(r["schema_version"], 1);
    assert_eq!(r["verdict"], "fail");
    let support = experiment(&r, "customer-support");
    assert_eq!(support["status"], "changed");
    assert_eq!(support["verdict"], "fail");
    let affected: Vec<&str> = support["affected_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(affected.contains(&"prompts/partials/refunds.md"), "{affected:?}");
    let pass_rate = metric(support, "pass_rate");
    assert_eq!(pass_rate["verdict"], "regression");
    assert_eq!(pass_rate["test"], "mcnemar-exact");
    assert!(pass_rate["p_adjusted"].as_f64().unwrap() < 0.01);
    let faq = experiment(&r, "product-faq");
    assert_eq!(faq["verdict"], "pass");
    assert_eq!(metric(faq, "cost_per_request")["verdict"], "improvement");
    assert_eq!(metric(faq, "pass_rate")["verdict"], "no_change");
    // The grounded help center: the PR drops "use only the provided context", and the judge
    // finds claims the article does not support.
    let help = experiment(&r, "help-center");
    assert_eq!(help["verdict"], "fail");
    assert_eq!(metric(help, "hallucination_rate")["verdict"], "regression");

    // Every job is accounted for: cases × {baseline, candidate} × repeats, each with its output.
    for e in r["experiments"].as_array().unwrap() {
        for case in e["cases"].as_array().unwrap() {
            for arm in ["baseline", "candidate"] {
                let calls = case[arm].as_array().unwrap();
                assert_eq!(calls.len(), 1, "{} {}", case["id"], arm);
                assert!(calls[0]["output"].is_string());
                assert!(calls[0]["scores"]["pass"].is_boolean());
                assert!(calls[0]["tokens"]["input"].as_u64().unwrap() > 0);
            }
        }
    }
    // customer-support 44, product-faq 44 and help-center 40 cases, both arms, one repeat.
    assert_eq!(r["run"]["calls"], (44 + 44 + 40) * 2);
    assert_eq!(r["run"]["completed"], (44 + 44 + 40) * 2);
    // help-center's two judge assertions (hallucination, relevance) on each of its outputs.
    assert_eq!(r["run"]["judge_calls"], 40 * 2 * 2);
}

#[test]
fn unrelated_change_affects_nothing_and_passes() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("docs");
    repo.edit("docs/style-guide.md", "", "A new first line.\n");
    repo.commit("docs only");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()])
        .expect_code(0)
        .stdout_has("no experiment is affected");
    let r = results(&out);
    assert_eq!(r["verdict"], "pass");
    assert_eq!(r["experiments"].as_array().unwrap().len(), 0);
    assert_eq!(r["unaffected"].as_array().unwrap().len(), 3);
    assert_eq!(r["run"]["calls"], 0);
}

#[test]
fn all_on_identical_variants_is_no_change_everywhere() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("noop");
    repo.write("notes.txt", "nothing to see\n");
    repo.commit("noop");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--all", "--out", out.to_str().unwrap()])
        .expect_code(0);
    let r = results(&out);
    assert_eq!(r["verdict"], "pass");
    for e in r["experiments"].as_array().unwrap() {
        assert_eq!(e["status"], "forced");
        for m in e["metrics"].as_array().unwrap() {
            let name = m["name"].as_str().unwrap();
            if name.starts_with("latency") {
                // Identical requests are sent once and shared, so only one arm has a latency
                // of this run: latency is never compared against a shared or cached call.
                assert_eq!(m["verdict"], "no_data", "{} {name}", e["name"]);
                let cases = e["cases"].as_array().unwrap().len();
                assert_eq!(m["left_out"], cases, "{} {name}", e["name"]);
                continue;
            }
            assert_eq!(m["verdict"], "no_change", "{} {name}", e["name"]);
            assert_eq!(m["delta"].as_f64(), Some(0.0), "{} {name}", e["name"]);
        }
    }
}

#[test]
fn a_partial_affects_only_the_experiments_that_include_it() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit("prompts/partials/shipping.md", "", "Orders over $50 ship free.\n");
    repo.commit("shipping");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()]);
    let r = results(&out);
    let names: Vec<&str> = r["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["customer-support"]);
    assert_eq!(
        experiment(&r, "customer-support")["affected_by"],
        serde_json::json!(["prompts/partials/shipping.md"])
    );
    assert_eq!(r["unaffected"], serde_json::json!(["product-faq", "help-center"]));
}

#[test]
fn the_baseline_is_the_merge_base_not_the_moving_base_branch() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.write("notes.txt", "pr work\n");
    repo.commit("pr work");
    // main moves on after the PR branched: its prompt change is not the PR's.
    repo.checkout("main");
    repo.edit("prompts/product-faq.md", "", "Be brief.\n");
    repo.commit("main moves");
    repo.checkout("pr");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()])
        .expect_code(0);
    assert_eq!(results(&out)["experiments"].as_array().unwrap().len(), 0);
}

#[test]
fn new_experiments_run_candidate_only_and_removed_ones_fail_under_blocking_gates() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    let suite = repo.read("promptgate.yaml");
    // product-faq is removed; faq-short is new (its own dataset).
    let suite = suite.replace(
        "  - name: product-faq\n    variant: configs/product-faq.yaml\n    dataset: datasets/product-faq.csv\n",
        "  - name: faq-short\n    variant: configs/product-faq.yaml\n    dataset: datasets/faq-short.csv\n",
    );
    repo.write("promptgate.yaml", &suite);
    let faq = repo.read("datasets/product-faq.csv");
    repo.write(
        "datasets/faq-short.csv",
        &faq.lines().take(6).collect::<Vec<_>>().join("\n"),
    );
    repo.commit("replace the faq experiment");
    let out = repo.path().join("out");
    let run = repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()]);
    run.expect_code(1);
    let r = results(&out);
    let new = experiment(&r, "faq-short");
    assert_eq!(new["status"], "new");
    assert!(new["baseline"].is_null());
    for case in new["cases"].as_array().unwrap() {
        assert_eq!(case["baseline"].as_array().unwrap().len(), 0);
        assert_eq!(case["candidate"].as_array().unwrap().len(), 1);
    }
    assert_eq!(metric(new, "pass_rate")["test"], "none");
    let removed = experiment(&r, "product-faq");
    assert_eq!(removed["status"], "removed");
    assert_eq!(removed["cases"].as_array().unwrap().len(), 0);
    // The base's pass_rate and cost_per_request gates block: removing the experiment removes
    // their protection, and the verdict line says so.
    assert_eq!(removed["verdict"], "fail");
    assert_eq!(r["verdict"], "fail");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("product-faq: removed at head while the base's gates on"),
        "{reason}"
    );
    run.stdout_has("verdict: FAIL: product-faq: removed at head while the base's gates on");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("### ❌ product-faq · removed at head: not run"),
        "{report}"
    );
    assert!(
        r["unaffected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "customer-support")
    );
}

#[test]
fn a_removed_experiment_passes_when_the_base_gates_nothing_blocking() {
    let unblocked = "gates:\n  pass_rate:        {direction: higher, margin: 0.02, blocking: false}\n  error_rate:       {direction: lower, blocking: false}\n  cost_per_request: {direction: lower, margin: \"10%\", blocking: false}\n";
    let repo = TestRepo::with_demo_base();
    let suite = repo.read("promptgate.yaml");
    let gates = &suite[suite.find("gates:").unwrap()..];
    repo.edit("promptgate.yaml", gates, unblocked);
    repo.commit("nothing blocks");
    repo.checkout_new("pr");
    repo.edit(
        "promptgate.yaml",
        "  - name: product-faq\n    variant: configs/product-faq.yaml\n    dataset: datasets/product-faq.csv\n",
        "",
    );
    repo.commit("drop the faq experiment");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()])
        .expect_code(0);
    let r = results(&out);
    assert_eq!(experiment(&r, "product-faq")["verdict"], "pass");
}

#[test]
fn a_renamed_dataset_affects_its_experiment() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.git(&["mv", "datasets/product-faq.csv", "datasets/faq.csv"]);
    repo.edit("promptgate.yaml", "datasets/product-faq.csv", "datasets/faq.csv");
    repo.commit("rename");
    let run = repo.promptgate(&["detect", "--base", "main", "--json"]);
    run.expect_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let faq = json["affected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "product-faq")
        .unwrap();
    let by: Vec<&str> = faq["affected_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        by.contains(&"datasets/faq.csv") && by.contains(&"datasets/product-faq.csv") && by.contains(&"promptgate.yaml"),
        "{by:?}"
    );
    assert!(
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == "renamed")
    );
}

#[test]
fn repeats_multiply_the_calls_and_are_clustered_by_case() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit("promptgate.yaml", "defaults: {repeats: 1,", "defaults: {repeats: 3,");
    repo.commit("three repeats");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()])
        .expect_code(0);
    let r = results(&out);
    // Every experiment's entry resolves to new repeats, so all three are affected via the suite
    // file: cases × 3 repeats × 2 arms.
    assert_eq!(r["run"]["calls"], (44 + 44 + 40) * 3 * 2);
    let support = experiment(&r, "customer-support");
    let case = &support["cases"][0];
    let repeats: Vec<u64> = case["candidate"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["repeat"].as_u64().unwrap())
        .collect();
    assert_eq!(repeats, [0, 1, 2]);
    // k > 1: per-case pass rates are means, compared with the paired t-test, not McNemar;
    // unless the repeats agree in every case and arm, when they are each case's one outcome
    // (a t interval over means without spread proves nothing).
    for e in r["experiments"].as_array().unwrap() {
        let agree = e["cases"].as_array().unwrap().iter().all(|case| {
            ["baseline", "candidate"].iter().all(|arm| {
                let passes: Vec<&Value> = case[arm]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| &c["scores"]["pass"])
                    .collect();
                passes.windows(2).all(|w| w[0] == w[1])
            })
        });
        let expected = if agree { "mcnemar-exact" } else { "paired-t" };
        assert_eq!(metric(e, "pass_rate")["test"], expected, "{}", e["name"]);
    }
}

#[test]
fn a_baseline_that_cannot_render_is_counted_as_errors_and_exits_3() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    // Head stops using {{ customer_name }} and drops it from the dataset; the base template
    // still needs it, so every baseline call fails to render.
    repo.edit("prompts/customer-support.md", "{{ customer_name }}", "the customer");
    let dataset = repo.read("datasets/customer-support.jsonl");
    let stripped: String = dataset
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["vars"].as_object_mut().unwrap().remove("customer_name");
            v.to_string() + "\n"
        })
        .collect();
    repo.write("datasets/customer-support.jsonl", &stripped);
    repo.commit("drop the name");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--out", out.to_str().unwrap()])
        .expect_code(3)
        .stderr_has("customer-support: the run failed: 44 of 44 baseline calls errored");
    let r = results(&out);
    let support = experiment(&r, "customer-support");
    let errored = support["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["baseline"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("undefined"))
        })
        .count();
    assert_eq!(errored, 44);
    assert_eq!(r["run"]["errored"], 44);
    // A run that could not finish is never a regression: verdict `error`, no metric judged.
    assert_eq!(r["verdict"], "error");
    assert_eq!(support["verdict"], "error");
    assert!(
        support["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["verdict"] == "no_data")
    );
}

#[test]
fn aa_mode_measures_the_suites_own_noise() {
    let repo = TestRepo::with_demo_base();
    let out = repo.path().join("out");
    let run = repo.promptgate(&["run", "--aa", "--base", "main", "--out", out.to_str().unwrap()]);
    run.expect_code(0);
    let r = results(&out);
    assert_eq!(r["verdict"], "pass");
    for e in r["experiments"].as_array().unwrap() {
        let aa = &e["aa"];
        assert!(aa.is_object(), "{} has no A/A summary", e["name"]);
        let rate = aa["false_alarm_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate));
        for m in e["metrics"].as_array().unwrap() {
            assert_ne!(m["verdict"], "regression", "A/A: {} {}", e["name"], m["name"]);
        }
    }
    // The report says what was compared: the base with itself, not "base → head" (an audit
    // read an A/A run's report as a pull request's), and the rate as the terminal prints it.
    assert_eq!(r["defaults"]["aa"], true);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("A/A check of **main** (") && report.contains("any difference found is a false alarm"),
        "{report}"
    );
    assert!(!report.contains("→ head"), "{report}");
    assert!(report.contains("A/A: the base against itself"), "{report}");
    assert!(!report.contains("not affected by this change"), "{report}");
    // Reproduced as what it was: an A/A check (without `--aa` it would compare base and head).
    let sha = r["base"]["sha"].as_str().unwrap();
    assert!(
        report.contains(&format!("promptgate run --base {sha} --aa\n")),
        "{report}"
    );
    let rate = r["experiments"][0]["aa"]["false_alarm_rate"].as_f64().unwrap();
    assert!(
        report.contains(&format!("false-alarm rate {:.1}%", rate * 100.0)),
        "{report}"
    );
}

/// A shard cannot see a sequential design's looks: refused before anything is sent, with a
/// hint that names the base's setting, the one in force (not the suite at head's).
#[test]
fn a_sequential_design_refuses_shards_naming_the_base() {
    let repo = demo_pr_with_suite("defaults: {repeats: 1,", "defaults: {sequential: true, repeats: 1,");
    repo.promptgate(&[
        "run", "--base", "main", "--head", "pr", "--shard", "1/2", "--out", "out",
    ])
    .expect_code(2)
    .stderr_has("--shard 1/2 cannot be used here: a sequential design")
    .stderr_has("(`defaults.sequential` at the base branch)");
    assert!(!repo.path().join("out/results.json").exists());
}

#[test]
fn sequential_runs_report_their_looks_and_keep_the_verdict() {
    let repo = demo_pr_with_suite("defaults: {repeats: 1,", "defaults: {sequential: true, repeats: 1,");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()])
        .expect_code(1);
    let r = results(&out);
    let support = experiment(&r, "customer-support");
    assert_eq!(metric(support, "pass_rate")["verdict"], "regression");
    let sequential = &support["sequential"];
    let made = sequential["calls_made"].as_u64().unwrap();
    assert!(made > 0 && made <= sequential["calls_planned"].as_u64().unwrap());
    let looks = sequential["looks"].as_array().unwrap();
    assert!(!looks.is_empty());
    // Each look's nominal level is the Lan–DeMets boundary's, four looks at α = 0.05:
    // 2 * norm.sf(c) for c from the scipy computation in src/stats/sequential.rs ->
    // [8.857543832140365e-05, 0.005537975583115089, 0.02154798069504264, 0.041088233385984364].
    let expected = [
        8.857543832140365e-05,
        0.005537975583115089,
        0.02154798069504264,
        0.041088233385984364,
    ];
    let levels = sequential["look_alphas"].as_array().unwrap();
    assert_eq!(levels.len(), looks.len());
    for (level, e) in levels.iter().zip(expected) {
        let level = level.as_f64().unwrap();
        assert!((level - e).abs() < 1e-6 * e.max(1e-3), "{level} vs {e}");
    }
    // The inflation factor, brentq over the scipy power function there -> 1.0312791906708534.
    assert!((sequential["inflation"].as_f64().unwrap() - 1.0312791906708534).abs() < 1e-6);
    // A stop at the regression: the regressed metric's p_adjusted is its repeated p-value,
    // compared with α itself, and at least the raw p-value.
    let pass_rate = metric(support, "pass_rate");
    let (p, adjusted) = (
        pass_rate["p_value"].as_f64().unwrap(),
        pass_rate["p_adjusted"].as_f64().unwrap(),
    );
    assert!(
        adjusted >= p && adjusted < 0.05,
        "p {p}, repeated and adjusted {adjusted}"
    );
}

#[test]
fn a_sequential_run_stops_at_a_clear_regression_without_calling_it_underpowered() {
    // Only the regressed experiment, at base and head: nothing else has to settle.
    let repo = TestRepo::with_demo_base();
    let one_experiment = |repo: &TestRepo| {
        repo.edit(
            "promptgate.yaml",
            "defaults: {repeats: 1,",
            "defaults: {sequential: true, repeats: 1,",
        );
        repo.edit(
            "promptgate.yaml",
            "  - name: product-faq\n    variant: configs/product-faq.yaml\n    dataset: datasets/product-faq.csv\n",
            "",
        );
    };
    one_experiment(&repo);
    repo.commit("sequential, one experiment");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    one_experiment(&repo);
    repo.commit("pr");
    let out = repo.path().join("out");
    repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()])
        .expect_code(1);
    let r = results(&out);
    let support = experiment(&r, "customer-support");
    let sequential = &support["sequential"];
    assert_eq!(sequential["stopped_early"], true, "{sequential}");
    assert!(sequential["calls_made"].as_u64() < sequential["calls_planned"].as_u64());
    let pass_rate = metric(support, "pass_rate");
    assert_eq!(pass_rate["verdict"], "regression");
    // Settled at an early look: its MDE (bigger than the margin at that look's few cases)
    // describes the look, not a weak suite.
    assert!(
        pass_rate["mde"].as_f64().unwrap() > pass_rate["margin"].as_f64().unwrap(),
        "{pass_rate}"
    );
    assert_eq!(pass_rate["underpowered"], false, "{pass_rate}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("stopped early"), "{report}");
    // The run's facts count the cases the looks ran, not every case of the plan.
    let cases: Vec<&serde_json::Value> = (r["experiments"].as_array().unwrap().iter())
        .flat_map(|e| e["cases"].as_array().unwrap())
        .collect();
    let ran = cases
        .iter()
        .filter(|c| !c["candidate"].as_array().unwrap().is_empty())
        .count();
    assert!(ran < cases.len(), "{ran} of {}", cases.len());
    assert_eq!(r["run"]["cases"].as_u64().unwrap() as usize, ran);
}

#[test]
fn each_gate_s_intervals_are_at_its_own_alpha() {
    let run = |alpha: Option<&str>| {
        let repo = match alpha {
            Some(alpha) => demo_pr_with_suite(
                "pass_rate:        {direction: higher, margin: 0.02, blocking: true}",
                &format!("pass_rate:        {{direction: higher, margin: 0.02, blocking: true, alpha: {alpha}}}"),
            ),
            None => demo_pr(),
        };
        let out = repo.path().join("out");
        repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()])
            .expect_code(1);
        let r = results(&out);
        let m = metric(experiment(&r, "customer-support"), "pass_rate").clone();
        let ci = m["ci"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect::<Vec<_>>();
        (m["alpha"].as_f64().unwrap(), ci[1] - ci[0])
    };
    let (default_alpha, default_width) = run(None);
    let (strict_alpha, strict_width) = run(Some("0.01"));
    assert_eq!((default_alpha, strict_alpha), (0.05, 0.01));
    // A 99% interval is wider than the 95% one on the same cases.
    assert!(strict_width > default_width, "{strict_width} vs {default_width}");
}

/// A model with no price is not a free model: a PR that moves product-faq to one has no
/// `cost_per_request` for its candidate, and the demo's blocking cost gate fails closed, saying
/// why in the row and in the chart (it read as a −100% saving before).
#[test]
fn a_model_without_a_price_has_no_cost_and_fails_a_blocking_cost_gate() {
    let repo = demo_pr();
    repo.edit("configs/product-faq.yaml", "model: gpt-4o-mini", "model: gpt-9-ultra");
    repo.commit("an unpriced model");
    let run = repo.promptgate(&["run", "--base", "main", "--out", "out"]);
    run.expect_code(1).stderr_has(
        "model `gpt-9-ultra` has no price; its calls are counted at $0 in the spend and have no cost_per_request",
    );
    let r = results(&repo.path().join("out"));
    let faq = experiment(&r, "product-faq");
    let cost = metric(faq, "cost_per_request");
    assert_eq!(
        (
            cost["verdict"].as_str(),
            cost["fails_gate"].as_bool(),
            cost["candidate"].as_f64()
        ),
        (Some("no_data"), Some(true), None),
        "{cost}"
    );
    let calls = faq["cases"][0]["candidate"][0].clone();
    assert_eq!(calls["unpriced"], true, "{calls}");
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("no price for gpt-9-ultra: add it under `pricing:`"),
        "{report}"
    );
    let chart = std::fs::read_to_string(repo.path().join("out/charts/product-faq-cost.svg")).unwrap();
    assert!(chart.contains("no price for its model"), "{chart}");
}

/// The offline mock's cost is simulated, priced as the run would be: the budget holds for it
/// (a dry run of the budget), and the refusal says the cost is simulated. Before, a mock run
/// was never capped nor held, whatever `budget:` said.
#[test]
fn a_mock_run_keeps_to_the_budget() {
    let repo = demo_pr_with_suite(
        "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
        "budget: {max_usd: 0.001}",
    );
    let out = repo.path().join("out");
    let run = run_pr_uncached(repo.path(), &out, &[], &[]);
    run.expect_code(3)
        .stderr_has("estimated cost (simulated: offline mock provider)")
        .stderr_has("exceeds the budget's hard cap of $0.001");
    let r = results(&repo.path().join("out"));
    assert_eq!(r["verdict"], "error");

    let repo = demo_pr_with_suite(
        "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
        "budget: {approve_above_usd: 0.001, max_usd: 5.00}",
    );
    let out = repo.path().join("out");
    run_pr_uncached(repo.path(), &out, &[], &[])
        .expect_code(3)
        .stderr_has("is above the approval threshold of $0.001")
        .stderr_has("--approve-cost");
    run_pr_uncached(repo.path(), &out, &["--approve-cost", "1"], &[]).expect_code(1);
}
