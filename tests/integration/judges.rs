//! Judge assertions against a fake OpenAI-compatible judge on 127.0.0.1 that answers like a
//! real one: valid objects, a fenced one, malformed and refused replies, a score out of range.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::support::{Run, TestRepo, promptgate_in, results};

/// The judge: replies by the marker in the case's input, counting the requests per question.
#[derive(Clone, Default)]
struct Judge {
    seen: Arc<Mutex<HashMap<String, u32>>>,
    /// Requests that did not ask for JSON mode.
    without_json_mode: Arc<Mutex<u32>>,
}

impl Respond for Judge {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if body["response_format"] != json!({"type": "json_object"}) || body["temperature"] != json!(0.0) {
            *self.without_json_mode.lock().unwrap() += 1;
        }
        let question = body["messages"][1]["content"].as_str().unwrap().to_owned();
        let asked = {
            let mut seen = self.seen.lock().unwrap();
            let n = seen.entry(question.clone()).or_default();
            *n += 1;
            *n
        };
        let valid = r#"{"pass": true, "score": 4, "reason": "every claim is in the article"}"#;
        let content = if question.contains("[fenced]") {
            Value::from(format!("```json\n{valid}\n```"))
        } else if question.contains("[malformed-once]") && asked == 1 {
            Value::from(r#"{"pass": true, "score": 4, "reason": "cut off"#)
        } else if question.contains("[malformed]") {
            Value::from("The output looks fine to me.")
        } else if question.contains("[score9]") {
            Value::from(r#"{"pass": true, "score": 9, "reason": "great"}"#)
        } else if question.contains("[missing]") {
            Value::from(r#"{"verdict": "pass"}"#)
        } else if question.contains("[leaky]") {
            Value::from(
                r#"{"pass": false, "score": 1, "reason": "it tells the customer to write to jane.roe@example.com"}"#,
            )
        } else if question.contains("[refused]") {
            Value::Null
        } else {
            Value::from(valid)
        };
        let refusal = if content.is_null() {
            Value::from("I'm sorry, I can't assist with that request.")
        } else {
            Value::Null
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-judge", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 30, "total_tokens": 230}
        }))
    }
}

/// A suite whose help-center answers are judged by the fake judge at `base_url`, with one case
/// per marker; base and `pr` differ by a sentence of the prompt.
fn judged_repo(base_url: &str, markers: &[&str]) -> TestRepo {
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\n\
             providers:\n  offline: {{type: mock}}\n  \
             judge: {{type: openai-compatible, base_url: \"{base_url}/v1\", model: judge-1, max_retries: 0, timeout_ms: 5000}}\n\
             pricing:\n  gpt-4o-mini: {{input: 0.15, output: 0.60}}\n  judge-1: {{input: 1.0, output: 2.0}}\n\
             defaults: {{provider: offline, judge: judge}}\n\
             experiments:\n  - name: help\n    variant: v.yaml\n    dataset: cases.jsonl\n    \
             assert: [{{type: hallucination, context_var: article}}, {{type: relevance}}]\n\
             gates:\n  hallucination_rate: {{direction: lower, margin: 0.05, blocking: true}}\n"
        ),
    );
    repo.write(
        "v.yaml",
        "version: v1\nmodel: gpt-4o-mini\nprompt: p.md\ntemperature: 0\n",
    );
    repo.write("p.md", "Use only the article.\n\n{{ article }}\n");
    let mut cases = String::new();
    for (i, marker) in markers.iter().enumerate() {
        cases.push_str(
            &json!({"id": format!("c{i}"), "vars": {
                "input": format!("How long is the refund window {marker} (case {i})?"),
                "article": "The refund window is 30 days from delivery."}})
            .to_string(),
        );
        cases.push('\n');
    }
    repo.write("cases.jsonl", &cases);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.write("p.md", "Use only the article. Be brief.\n\n{{ article }}\n");
    repo.commit("pr");
    repo
}

async fn gate(repo: &TestRepo) -> Run {
    let dir = repo.path().to_owned();
    tokio::task::spawn_blocking(move || {
        promptgate_in(
            &dir,
            &["run", "--base", "main", "--head", "pr", "--out", "out", "--no-cache"],
        )
    })
    .await
    .unwrap()
}

async fn judge_server(judge: &Judge) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(judge.clone())
        .mount(&server)
        .await;
    server
}

/// The candidate's judgement of `metric` for case `id`.
fn judgement(r: &Value, id: &str, metric: &str) -> Value {
    let case = r["experiments"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("case {id}"));
    case["candidate"][0]["judgements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["metric"] == metric)
        .unwrap_or_else(|| panic!("{id}: no {metric} judgement in {case}"))
        .clone()
}

const GOOD: [&str; 16] = ["[ok]"; 16];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_replies_valid_malformed_and_refused_land_in_the_results() {
    let judge = Judge::default();
    let server = judge_server(&judge).await;
    let mut markers: Vec<&str> = GOOD[..14].to_vec();
    markers.extend([
        "[fenced]",
        "[malformed-once]",
        "[malformed]",
        "[score9]",
        "[missing]",
        "[refused]",
    ]);
    let repo = judged_repo(&server.uri(), &markers);
    // Four of twenty cases cannot be judged: 20% of the judge calls, the most tolerated.
    gate(&repo)
        .await
        .expect_code(0)
        .stdout_has("judging: 80 judge calls (16 failed)");
    let r = results(&repo.path().join("out"));
    assert_eq!(
        *judge.without_json_mode.lock().unwrap(),
        0,
        "every judge call asks for JSON at temperature 0"
    );
    assert_eq!(r["run"]["judge_calls"], 80);
    assert_eq!(r["run"]["judge_errors"], 16);

    let ok = judgement(&r, "c0", "relevance");
    assert_eq!((ok["score"].clone(), ok["pass"].clone()), (json!(4), json!(true)));
    assert_eq!(ok["reason"], "every claim is in the article");
    let call = &r["experiments"][0]["cases"][0]["candidate"][0];
    assert_eq!(call["scores"]["relevance"], 0.75, "(4 − 1) / 4");
    assert_eq!(
        call["scores"]["hallucination_rate"], false,
        "one judgement: a flag, no unsupported claim"
    );
    assert_eq!(judgement(&r, "c14", "relevance")["score"], 4, "a fenced object is read");
    assert_eq!(
        judgement(&r, "c15", "relevance")["score"],
        4,
        "a malformed first reply is asked again"
    );

    for (id, why) in [
        ("c16", "not a JSON object"),
        ("c17", "`score` is 9"),
        ("c18", "no `pass`"),
        ("c19", "not a JSON object: \"I'm sorry"),
    ] {
        let failed = judgement(&r, id, "hallucination_rate");
        let error = failed["error"].as_str().unwrap_or_else(|| panic!("{id}: {failed}"));
        assert!(error.contains(why) && error.contains("asked twice"), "{id}: {error}");
        assert!(failed["score"].is_null());
        // A failed judgement is no value: never a silent 0.
        let call = &r["experiments"][0]["cases"][id[1..].parse::<usize>().unwrap()]["candidate"][0];
        assert!(call["scores"].get("hallucination_rate").is_none(), "{id}: {call}");
    }
    let seen = judge.seen.lock().unwrap();
    let asked = |marker: &str| seen.iter().filter(|(q, _)| q.contains(marker)).map(|(_, n)| *n).max();
    assert_eq!(
        asked("[malformed]"),
        Some(2),
        "asked once more after a malformed reply, not again"
    );
    assert_eq!(asked("[score9]"), Some(2));
    // Every judge request was paid for, a malformed first reply's too: 200 input tokens at
    // $1.00 and 30 output at $2.00 a million, each.
    let sent: u32 = seen.values().sum();
    let judge_spend = r["run"]["judge_spend_usd"].as_f64().unwrap();
    let paid = f64::from(sent) * (200.0 * 1.0 + 30.0 * 2.0) / 1e6;
    assert!(
        (judge_spend - paid).abs() < 1e-9,
        "{sent} judge requests cost {paid}; the results say {judge_spend}"
    );

    // The judges' spend is the evaluation's, never the change's cost per request.
    let generation: f64 = r["experiments"][0]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(crate::support::case_calls)
        .map(|call| call["cost_usd"].as_f64().unwrap())
        .sum();
    let spend = r["run"]["spend_usd"].as_f64().unwrap();
    assert!(
        (spend - generation - judge_spend).abs() < 1e-9,
        "{spend} = {generation} + {judge_spend}"
    );
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("| judging them (80 judge calls, 16 failed) |"),
        "{report}"
    );
}

/// The judge grades both arms from head, so a pull request that picks another judge (a
/// lenient model that passes everything) says so in the policy changes the comment shows,
/// as a changed rubric or dataset does (an audit's swap turned a failing gate into a pass with
/// nothing on the comment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_that_changes_its_judge_says_so() {
    let judge = Judge::default();
    let server = judge_server(&judge).await;
    let repo = judged_repo(&server.uri(), &GOOD);
    repo.edit(
        "promptgate.yaml",
        "defaults: {provider: offline, judge: judge}",
        "defaults: {provider: offline, judge: judge, judge_model: lenient-1}",
    );
    repo.edit(
        "promptgate.yaml",
        "judge-1: {input: 1.0, output: 2.0}",
        "judge-1: {input: 1.0, output: 2.0}\n  lenient-1: {input: 1.0, output: 2.0}",
    );
    repo.commit("a lenient judge");
    gate(&repo).await;
    let out = repo.path().join("out");
    let changes = results(&out)["policy_changes"].to_string();
    assert!(
        changes.contains("judge judge/judge-1 × 1 → judge/lenient-1 × 1 (applies now: the judge grades both arms)"),
        "{changes}"
    );
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(report.contains("lenient-1"), "{report}");
}

/// A judge's reason quoting personal data is masked wherever it is kept or shown when the
/// experiment checks for personal data: in its judgement, and in the failure its `pass: false`
/// adds to the call, which the comment's case table quotes (that one was published whole).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_judges_reason_is_masked_in_the_failures_the_comment_quotes() {
    let judge = Judge::default();
    let server = judge_server(&judge).await;
    let repo = judged_repo(&server.uri(), &["[leaky]"; 12]);
    repo.edit(
        "promptgate.yaml",
        "assert: [{type: hallucination, context_var: article}, {type: relevance}]",
        "assert: [{type: hallucination, context_var: article}, {type: relevance}, {type: pii}]",
    );
    repo.commit("check for personal data");
    gate(&repo).await;
    let out = repo.path().join("out");
    let raw = std::fs::read_to_string(out.join("results.json")).unwrap();
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for (name, text) in [("results.json", &raw), ("report.md", &report)] {
        assert!(
            !text.contains("jane.roe@example.com"),
            "{name} quotes the address unmasked"
        );
    }
    let r = results(&out);
    let failures = r["experiments"][0]["cases"][0]["candidate"][0]["failures"].to_string();
    assert!(failures.contains("write to j***@example.com"), "{failures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_a_fifth_of_judge_calls_failing_is_a_run_error() {
    let judge = Judge::default();
    let server = judge_server(&judge).await;
    let mut markers: Vec<&str> = GOOD[..15].to_vec();
    markers.extend(["[malformed]", "[score9]", "[missing]", "[refused]", "[malformed]"]);
    let repo = judged_repo(&server.uri(), &markers);
    gate(&repo)
        .await
        .expect_code(3)
        .stderr_has("10 of 40 judge calls on the baseline's outputs failed (25.0%, more than 20.0% allowed")
        .stderr_has("hint: the results were written; the judged metrics were not judged. Fix the judge provider");
    let r = results(&repo.path().join("out"));
    assert_eq!(r["verdict"], "error");
    assert_eq!(
        (
            &r["run"]["judge_calls"],
            &r["run"]["judge_errors"],
            &r["run"]["judge_error_rate"]
        ),
        (&json!(80), &json!(20), &json!(0.25))
    );
}

#[test]
fn an_unknown_judge_provider_is_a_config_error_with_a_suggestion() {
    let repo = judged_repo("http://127.0.0.1:9", &["[ok]"]);
    let suite = repo.read("promptgate.yaml").replace("judge: judge}", "judge: jugde}");
    repo.write("promptgate.yaml", &suite);
    repo.promptgate(&["validate"])
        .expect_code(2)
        .stderr_has("unknown judge provider `jugde` in defaults")
        .stderr_has("did you mean `judge`?")
        .stderr_has("promptgate.yaml:");
}

#[test]
fn a_judge_assertion_without_a_judge_is_a_config_error() {
    let repo = judged_repo("http://127.0.0.1:9", &["[ok]"]);
    let suite = repo.read("promptgate.yaml").replace(", judge: judge}", "}");
    repo.write("promptgate.yaml", &suite);
    repo.promptgate(&["validate"])
        .expect_code(2)
        .stderr_has("has a `hallucination` assertion but the suite names no judge")
        .stderr_has("hint: name the provider judges call");
}

/// `fixtures/judges/<side>`: the judged suite the mock judges offline.
fn judged_fixture(side: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("judges")
        .join(side)
}

#[test]
fn the_mock_judge_sees_a_prompt_that_drops_its_grounding_invent_facts() {
    let repo = TestRepo::new();
    repo.copy_tree(&judged_fixture("base"));
    repo.commit("base");
    repo.checkout_new("pr");
    repo.replace_tree(&judged_fixture("pr"));
    repo.commit("pr");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", "out"]);
    run.expect_code(1)
        .stdout_has("hallucination_rate regressed (0.0% → 25.0%")
        .stdout_has("judging: 96 judge calls (0 failed)")
        .stderr_has("plan: 144 calls")
        // Progress counts the judge calls apart: 24 cases × 2 arms × 2 judge assertions.
        .stderr_has("promptgate: 48/48 calls, 96/96 judge calls, 0 retries, 0 cached");
    let r = results(&repo.path().join("out"));
    let metric = r["experiments"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "hallucination_rate")
        .unwrap()
        .clone();
    assert_eq!(metric["verdict"], "regression", "{metric}");
    assert_eq!(metric["test"], "mcnemar-exact");
    // A judged metric's value is the judges' (scores), not anything of the generation's cost.
    let flipped = judgement(&r, "warranty-tent", "hallucination_rate");
    assert_eq!(flipped["pass"], false);
    let reason = flipped["reason"].as_str().unwrap();
    assert!(reason.contains("lifetime warranty"), "{reason}");
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("✗ hallucination_rate: unsupported by the context: \"A lifetime warranty covers every tent"),
        "the flipped case shows the judge's reason:\n{report}"
    );
    assert!(report.contains("| judging them (96 judge calls, 0 failed) |"));
    // No judge-check record: the comment says the gate rests on an unmeasured judge.
    assert!(
        report
            .contains("⚠️ **Unmeasured judge**: hallucination_rate, relevance rely on the judge (provider offline, model gpt-4o-mini)"),
        "{report}"
    );
    assert_eq!(r["unchecked_judges"].as_array().unwrap().len(), 1);

    // Once measured and committed, the warning goes.
    repo.promptgate(&["judge-check", "--record"])
        .expect_code(0)
        .stderr_has("recorded in .promptgate/judge-checks.jsonl");
    repo.commit("judge-check record");
    repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", "checked"])
        .expect_code(1);
    let checked = std::fs::read_to_string(repo.path().join("checked/report.md")).unwrap();
    assert!(!checked.contains("Unmeasured judge"), "{checked}");
    assert!(results(&repo.path().join("checked")).get("unchecked_judges").is_none());

    // A record that measured the judge no better than chance vouches for nothing: the comment
    // says so (the same check, its agreement written as a coin's).
    let path = repo.path().join(".promptgate/judge-checks.jsonl");
    let mut record: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    record["agreement"]["kappa"] = json!(0.02);
    record["agreement"]["kappa_ci"] = json!([-0.21, 0.25]);
    std::fs::write(&path, format!("{record}\n")).unwrap();
    repo.commit("a poor judge-check record");
    repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", "poor"])
        .expect_code(1);
    let poor = std::fs::read_to_string(repo.path().join("poor/report.md")).unwrap();
    assert!(
        poor.contains("⚠️ **Judge at chance**: hallucination_rate, relevance rely on the judge (provider offline, model gpt-4o-mini), whose agreement with labelled cases .promptgate/judge-checks.jsonl records as no better than chance (kappa 0.02, 95% interval &#91;-0.21, 0.25&#93;)"),
        "{poor}"
    );
    assert!(!poor.contains("Unmeasured judge"), "{poor}");
}

/// A labelled set for the fake judge: it answers `pass: true` to all but the broken markers, so
/// the labels say how often it is right.
fn labels(lines: &[(&str, &str)]) -> String {
    lines
        .iter()
        .map(|(marker, label)| {
            json!({"input": format!("Refund window {marker}?"), "output": "30 days.", "label": label}).to_string()
                + "\n"
        })
        .collect()
}

async fn judge_check(repo: &TestRepo, args: &[&str]) -> Run {
    let dir = repo.path().to_owned();
    let mut all = vec!["judge-check".to_owned()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        promptgate_in(&dir, &args)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn judge_check_reports_agreement_with_labels_and_fails_on_a_broken_judge() {
    let judge = Judge::default();
    let server = judge_server(&judge).await;
    let repo = judged_repo(&server.uri(), &["[ok]"]);
    // The judge says pass to every [ok]: right on the 6 labelled pass, wrong on the 2 labelled fail.
    let mut lines = vec![("[ok]", "pass"); 6];
    lines.extend([
        ("[ok]", "fail"),
        ("[ok]", "fail"),
        ("[fenced]", "pass"),
        ("[malformed-once]", "pass"),
    ]);
    repo.write("labels.jsonl", &labels(&lines));
    let run = judge_check(&repo, &["--labels", "labels.jsonl", "--json"]).await;
    run.expect_code(0);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let a = &json["agreement"];
    assert_eq!(json["judge"], "judge");
    assert_eq!(json["model"], "judge-1");
    assert_eq!(
        (a["labelled"].clone(), a["agreed"].clone(), a["errors"].clone()),
        (json!(10), json!(8), json!(0))
    );
    // statsmodels.stats.proportion.proportion_confint(8, 10, method='wilson')
    // = (0.49016247153664183, 0.9433178485456247)
    let ci = a["accuracy_ci"].as_array().unwrap();
    assert!(
        (ci[0].as_f64().unwrap() - 0.490_162_471_536_641_83).abs() < 1e-12,
        "{ci:?}"
    );
    assert!(
        (ci[1].as_f64().unwrap() - 0.943_317_848_545_624_7).abs() < 1e-12,
        "{ci:?}"
    );
    // The judge always says pass: it agrees no more than chance.
    // sklearn.metrics.cohen_kappa_score([1]*8 + [0]*2, [1]*10) = 0.0
    assert_eq!(a["kappa"], 0.0);
    // The figures are at the top level too.
    assert_eq!((&json["accuracy"], &json["kappa"]), (&a["accuracy"], &a["kappa"]));
    assert_eq!(json["accuracy_ci"], a["accuracy_ci"]);

    // A config that only names the judge (no experiment) is enough to check it.
    let config = repo.read("promptgate.yaml");
    let experiments = config.find("experiments:").unwrap();
    let gates = config.find("gates:").unwrap();
    repo.write(
        "promptgate.yaml",
        &format!("{}experiments: []\n{}", &config[..experiments], &config[gates..]),
    );
    judge_check(&repo, &["--labels", "labels.jsonl", "--json"])
        .await
        .expect_code(0);
    repo.write("promptgate.yaml", &config);

    repo.write(
        "labels.jsonl",
        &labels(&[("[ok]", "pass"), ("[refused]", "pass"), ("[score9]", "fail")]),
    );
    judge_check(&repo, &["--labels", "labels.jsonl"])
        .await
        .expect_code(3)
        .stderr_has("2 of 3 judge calls failed");
    repo.write(
        "labels.jsonl",
        "{\"input\": \"q\", \"output\": \"o\", \"label\": \"maybe\"}\n",
    );
    judge_check(&repo, &["--labels", "labels.jsonl"])
        .await
        .expect_code(2)
        .stderr_has("labels.jsonl:1:")
        .stderr_has("not pass, fail or 1–5");
    judge_check(&repo, &["--judge", "jduge"])
        .await
        .expect_code(2)
        .stderr_has("did you mean `judge`?");
}

#[test]
fn judge_check_runs_offline_on_the_shipped_labels() {
    let repo = TestRepo::new();
    repo.copy_tree(&judged_fixture("base"));
    repo.promptgate(&["judge-check"])
        .expect_code(0)
        .stdout_has("judge-check: `offline` (gpt-4o-mini) on 24 labelled cases (the built-in labels, pass-fail)")
        .stdout_has("Cohen's kappa");
}

#[test]
fn judge_repeats_judge_each_output_k_times_and_average() {
    let repo = TestRepo::new();
    let repeat = |repo: &TestRepo| {
        let suite = repo.read("promptgate.yaml").replace(
            "judge_model: gpt-4o-mini,",
            "judge_model: gpt-4o-mini, judge_repeats: 3,",
        );
        repo.write("promptgate.yaml", &suite);
    };
    repo.copy_tree(&judged_fixture("base"));
    repeat(&repo);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.replace_tree(&judged_fixture("pr"));
    repeat(&repo);
    repo.commit("pr");
    let run = repo.promptgate(&["run", "--base", "main", "--head", "pr", "--out", "out"]);
    run.stdout_has("judging: 288 judge calls (0 failed)");
    let r = results(&repo.path().join("out"));
    let call = &r["experiments"][0]["cases"][0]["candidate"][0];
    let repeats: Vec<u64> = call["judgements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["metric"] == "relevance")
        .map(|j| j["repeat"].as_u64().unwrap())
        .collect();
    assert_eq!(repeats, vec![0, 1, 2]);
    // Three judgements of a flag are a share: a mean, tested as one.
    let metric = r["experiments"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "hallucination_rate")
        .unwrap()
        .clone();
    assert_eq!(metric["test"], "paired-t", "{metric}");
    assert!(call["scores"]["hallucination_rate"].is_number());
    // The mock judges a question the same way every time: no judge variance, so a second and
    // third judgement buy nothing and more cases pay.
    let relevance = r["experiments"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "relevance")
        .unwrap()
        .clone();
    let v = &relevance["variance_components"];
    assert_eq!(
        (v["cases"].as_u64(), v["judge_repeats"].as_u64()),
        (Some(24), Some(3)),
        "{v}"
    );
    assert_eq!(v["judge"], 0.0, "{v}");
    assert_eq!(
        (v["best_judge_repeats"].as_u64(), v["advice"].as_str()),
        (Some(1), Some("more_cases"))
    );
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("Judge repeats (relevance, 3 judge repeats per output over 24 cases): variance between cases "),
        "{report}"
    );
}
