//! The policy in force is the base's: a pull request is judged by the gates, α, budget and
//! prices it may be trying to change; what it changes is reported and takes effect after merge.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::gate::{demo_pr, experiment, metric};
use crate::support::{TestRepo, fixture, results};

fn gate(repo: &TestRepo) -> (crate::support::Run, Value, String) {
    let out = repo.path().join("out");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", out.to_str().unwrap()]);
    let r = results(&out);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    (run, r, report)
}

#[test]
fn a_pr_loosening_its_own_gates_still_fails() {
    for (from, to, change) in [
        (
            "pass_rate:        {direction: higher, margin: 0.02, blocking: true}",
            "pass_rate:        {direction: higher, margin: 0.5, blocking: true}",
            "gate pass_rate: margin 0.02 → 0.5",
        ),
        (
            "pass_rate:        {direction: higher, margin: 0.02, blocking: true}",
            "pass_rate:        {direction: higher, margin: 0.02, blocking: false}",
            "gate pass_rate: blocking → not blocking",
        ),
        ("alpha: 0.05", "alpha: 0.0001", "defaults.alpha 0.05 → 0.0001"),
    ] {
        let repo = demo_pr();
        repo.edit("promptgate.yaml", from, to);
        repo.commit("loosen the gate");
        let (run, r, report) = gate(&repo);
        run.expect_code(1).stderr_has(change);
        let pass_rate = metric(experiment(&r, "customer-support"), "pass_rate");
        assert_eq!(pass_rate["verdict"], "regression", "{change}");
        assert_eq!(pass_rate["blocking"], true, "{change}");
        assert_eq!(pass_rate["alpha"], 0.05, "{change}");
        // The demo's numbers: 42 of 44 cases pass at base, 28 of 44 at head.
        assert!((pass_rate["baseline"].as_f64().unwrap() - 42.0 / 44.0).abs() < 1e-12);
        assert!((pass_rate["candidate"].as_f64().unwrap() - 28.0 / 44.0).abs() < 1e-12);
        assert_eq!(r["policy_changes"], json!([change]));
        assert!(
            report.contains(&format!(
                "**This PR changes the gate policy** (takes effect after merge; it is judged by the base's):\n- {change}\n"
            )),
            "{report}"
        );
    }
}

/// A pull request cannot drop a base gate by no longer scoring its metric: renaming the
/// hallucination metric (assertion and gate) leaves the base's blocking `hallucination_rate`
/// gate with no data at head, which fails closed, where it used to vanish.
#[test]
fn a_pr_that_stops_scoring_a_gated_metric_fails_that_gate_with_no_data() {
    let repo = demo_pr();
    repo.edit(
        "promptgate.yaml",
        "{type: hallucination, context_var: context}",
        "{type: hallucination, context_var: context, metric: grounded_hallucination_rate}",
    );
    repo.edit(
        "promptgate.yaml",
        "  hallucination_rate: {",
        "  grounded_hallucination_rate: {",
    );
    repo.commit("rename the hallucination metric");
    let (run, r, _) = gate(&repo);
    run.expect_code(1);
    let help = experiment(&r, "help-center");
    let gated = metric(help, "hallucination_rate");
    assert_eq!(gated["verdict"], "no_data", "{gated}");
    assert_eq!(gated["blocking"], true);
    assert_eq!(gated["fails_gate"], true);
    assert_eq!(help["verdict"], "fail", "{}", help["reason"]);
    assert!(
        help["base_scored"]
            .as_array()
            .unwrap()
            .contains(&json!("hallucination_rate"))
    );
    // The renamed metric is measured, and as a gate the pull request adds it waits for merge.
    assert_eq!(metric(help, "grounded_hallucination_rate")["blocking"], false);
}

#[test]
fn a_gate_added_at_head_is_decided_but_does_not_block_until_merged() {
    let repo = demo_pr();
    repo.edit(
        "promptgate.yaml",
        "gates:\n",
        "gates:\n  latency_p50_ms:   {direction: lower, margin: \"1%\", blocking: true}\n",
    );
    repo.commit("a new gate");
    let (_, r, _) = gate(&repo);
    let p50 = metric(experiment(&r, "customer-support"), "latency_p50_ms");
    assert_eq!(
        (p50["gated"].as_bool(), p50["blocking"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(p50["p_adjusted"], Value::Null, "outside Holm's family: {p50}");
    let recorded: Vec<&Value> = r["gates"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["pending"] == true)
        .collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["metric"], "latency_p50_ms");
    assert_eq!(
        r["policy_changes"],
        json!(["gate latency_p50_ms added (lower, margin 1%, blocking): reported, not blocking until merged"])
    );
}

#[test]
fn a_renamed_experiment_is_the_same_experiment() {
    let repo = demo_pr();
    repo.edit("promptgate.yaml", "name: customer-support", "name: support-assistant");
    repo.commit("rename");
    let (run, r, _) = gate(&repo);
    run.expect_code(1);
    let renamed = experiment(&r, "support-assistant");
    assert_eq!(renamed["status"], "changed");
    assert_eq!(renamed["changes"][0], "renamed from `customer-support`");
    assert_eq!(metric(renamed, "pass_rate")["verdict"], "regression");
    assert!(
        r["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["status"] != "removed" && e["status"] != "new"),
        "{}",
        r["experiments"]
    );
}

#[test]
fn a_pr_editing_its_own_cases_shows_it_in_the_verdict_line() {
    let repo = demo_pr();
    let dataset = repo.read("datasets/customer-support.jsonl");
    let kept: String = dataset
        .lines()
        .filter(|l| !l.starts_with("{\"id\": \"refund-"))
        .map(|l| {
            let line = if l.contains("\"id\": \"return-gift\"") {
                l.replacen(
                    "\"assert\": [",
                    "\"assert\": [{\"type\": \"max-length\", \"value\": 5000}, ",
                    1,
                )
            } else {
                l.to_owned()
            };
            line + "\n"
        })
        .collect();
    repo.write("datasets/customer-support.jsonl", &kept);
    repo.commit("drop the refund cases");
    let (_, r, report) = gate(&repo);
    let support = experiment(&r, "customer-support");
    assert_eq!(
        support["dataset_changes"],
        json!({
            "removed": ["refund-window", "refund-late", "refund-to-card", "refund-timing", "refund-policy", "refund-missing-money"],
            "added": 0,
            "assertions_changed": ["return-gift"],
            "vars_changed": [],
            "base_units": 44,
            "head_units": 38,
            "metric_units": {"icontains": [41, 35], "regex": [3, 3]},
        })
    );
    assert!(
        report.contains(
            " · ⚠️ this PR edits the cases it is judged on: 6 cases removed (refund-window, refund-late, refund-to-card, refund-timing, refund-policy, refund-missing-money), assertions changed in 1 case (return-gift)\n"
        ),
        "{report}"
    );
}

/// The experiment's own `assert:` applies to every case: a PR that rewrites it changes what
/// every case is judged by, as surely as editing each case, and the verdict line says so (the
/// audit: deleting it passed with nothing but "assertions … changed" among the changes).
#[test]
fn a_pr_that_edits_the_assertions_every_case_gets_is_told_in_the_verdict_line() {
    let repo = TestRepo::with_demo_base();
    repo.checkout_new("pr");
    repo.edit(
        "promptgate.yaml",
        "{type: max-length, value: 1200}",
        "{type: max-length, value: 100000}",
    );
    repo.commit("loosen the length every answer is held to");
    let (_, r, report) = gate(&repo);
    let support = experiment(&r, "customer-support");
    assert_eq!(
        support["dataset_changes"]["experiment_assertions_changed"], true,
        "{support}"
    );
    assert!(
        report.contains(
            " · ⚠️ this PR edits the cases it is judged on: the assertions every case gets (the experiment's `assert:`) changed\n"
        ),
        "{report}"
    );
}

#[test]
fn a_base_suite_that_does_not_load_is_an_error_naming_where() {
    // The suite file itself: every experiment runs candidate-only.
    let repo = TestRepo::with_demo_base();
    repo.edit("promptgate.yaml", "experiments:", "experiments: [");
    repo.commit("break the suite on main");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    repo.commit("pr, with a working suite");
    let (run, r, report) = gate(&repo);
    run.expect_code(3)
        .stderr_has("warning: the suite at base (")
        .stderr_has("Fix the suite on the base branch, or a maintainer may accept this run");
    assert_eq!(r["verdict"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not load: promptgate.yaml:16:") && reason.contains("the experiments ran candidate-only"),
        "{reason}"
    );
    assert_eq!(
        r["base_error"].as_str().map(|e| e.contains("promptgate.yaml:16:")),
        Some(true)
    );
    assert!(experiment(&r, "customer-support")["baseline"].is_null());
    assert!(report.contains("promptgate.yaml:16:"), "{report}");
    repo.promptgate(&["detect", "--base", "main", "--head", "pr"])
        .expect_code(0)
        .stdout_has("base does not load: the suite at base (")
        .stdout_has("promptgate.yaml:16:");

    // One experiment's files: it runs candidate-only, the others are compared as usual.
    let repo = TestRepo::with_demo_base();
    repo.edit("configs/product-faq.yaml", "temperature:", "temprature:");
    repo.commit("break one variant on main");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    repo.commit("pr");
    let (run, r, _) = gate(&repo);
    run.expect_code(3);
    assert_eq!(r["verdict"], "error");
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("experiment `product-faq`: configs/product-faq.yaml:5:1: unknown"),
        "{reason}"
    );
    let faq = experiment(&r, "product-faq");
    assert_eq!(faq["status"], "changed");
    assert!(faq["baseline"].is_null());
    assert!(!experiment(&r, "customer-support")["baseline"].is_null());
}

/// Counts the requests it receives and answers none of them usefully: these tests must not
/// get as far as calling.
struct Counter(Arc<AtomicUsize>);

impl Respond for Counter {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        ResponseTemplate::new(500)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pr_cannot_price_its_model_at_zero_to_pass_the_budget() {
    let requests = Arc::new(AtomicUsize::new(0));
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(Counter(Arc::clone(&requests)))
        .mount(&server)
        .await;
    let provider = format!(
        "providers:\n  offline: {{type: openai-compatible, base_url: \"{}/v1\", max_retries: 0}}\n",
        server.uri()
    );
    for (budget, flags, refusal) in [
        (
            "budget: {approve_above_usd: 0.001, max_usd: 5.00}",
            vec![],
            "is above the approval threshold of $0.00",
        ),
        (
            "budget: {approve_above_usd: 0.50, max_usd: 0.001}",
            vec!["--approve-cost", "100"],
            "exceeds the budget's hard cap of $0.00",
        ),
    ] {
        let point = |repo: &TestRepo| {
            repo.edit("promptgate.yaml", "providers:\n  offline: {type: mock}\n", &provider);
            repo.edit(
                "promptgate.yaml",
                "budget: {approve_above_usd: 0.50, max_usd: 5.00}",
                budget,
            );
        };
        let repo = TestRepo::new();
        repo.copy_tree(&fixture("base"));
        point(&repo);
        repo.commit("base, on a real endpoint");
        repo.checkout_new("pr");
        repo.replace_tree(&fixture("pr"));
        point(&repo);
        repo.edit(
            "promptgate.yaml",
            "gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}",
            "gpt-4o-mini: {input: 0, cached_input: 0, output: 0}",
        );
        repo.commit("free at last");
        let dir = repo.path().to_owned();
        let mut args = vec!["run", "--base", "main", "--head", "pr", "--out", "out"];
        args.extend(flags);
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        let run = tokio::task::spawn_blocking(move || {
            crate::support::promptgate_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        run.expect_code(3)
            .stderr_has(refusal)
            .stderr_has("pricing gpt-4o-mini: $0.15 in / $0.6 out per million tokens → $0 in / $0 out per million tokens (ignored: a PR may not lower a price)");
        assert!(!run.stderr.contains("estimated $0.0000"), "{}", run.stderr);
        assert_eq!(requests.load(Ordering::SeqCst), 0, "no call may go out");
        // Refused before any call, the run still writes its results: verdict `error`, every
        // affected experiment in them as not run, the calls the budget refused counted.
        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(repo.path().join("out/results.json")).unwrap()).unwrap();
        assert_eq!(results["verdict"], "error");
        assert!(results["reason"].as_str().unwrap().contains(refusal), "{results}");
        assert!(results["run"]["budget_refused"].as_u64().unwrap() > 0, "{results}");
        let experiments = results["experiments"].as_array().unwrap();
        assert!(!experiments.is_empty());
        for e in experiments.iter().filter(|e| e["status"] != "removed") {
            assert_eq!(e["verdict"], "error", "{e}");
            assert!(e["reason"].as_str().unwrap().starts_with("not run: "), "{e}");
            // With what to do about it.
            assert!(
                e["reason"].as_str().unwrap().contains("--approve-cost")
                    || e["reason"].as_str().unwrap().contains("raise `budget.max_usd`"),
                "{e}"
            );
            assert_eq!(e["cases"], serde_json::json!([]), "{e}");
        }
        let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
        assert!(report.contains(refusal), "{report}");
    }
}
