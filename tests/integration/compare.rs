//! `llm-compare` against a fake OpenAI-compatible judge on 127.0.0.1: a judge that prefers
//! the fuller answer in both orders, one that always answers "A" (position bias), and one that
//! answers nonsense.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::support::{TestRepo, promptgate_in, results};

/// The text of section `tag` of a judge question fenced by `nonce`.
fn section<'a>(text: &'a str, tag: &str, nonce: &str) -> &'a str {
    let open = format!("<{tag}-{nonce}>\n");
    let start = text.find(&open).unwrap() + open.len();
    let end = start + text[start..].find(&format!("\n</{tag}-{nonce}>")).unwrap();
    &text[start..end]
}

struct Judge;

impl Respond for Judge {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let system = body["messages"][0]["content"].as_str().unwrap();
        let user = body["messages"][1]["content"].as_str().unwrap();
        let nonce: String = system
            .split("delimiter nonce: ")
            .nth(1)
            .unwrap()
            .chars()
            .take_while(char::is_ascii_hexdigit)
            .collect();
        let (a, b) = (section(user, "output_a", &nonce), section(user, "output_b", &nonce));
        let input = section(user, "input", &nonce);
        let content = if input.contains("[malformed]") {
            "Both are fine.".to_owned()
        } else {
            let winner = if input.contains("[first]") || a.len() > b.len() {
                "A"
            } else if a.len() < b.len() {
                "B"
            } else {
                "tie"
            };
            json!({"winner": winner, "reason": format!("{winner} is more complete")}).to_string()
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-compare", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 300, "completion_tokens": 20, "total_tokens": 320}
        }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_compare_judges_both_orders_counts_disagreement_as_a_tie_and_reports_position_bias() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Judge)
        .mount(&server)
        .await;
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\n\
             providers:\n  offline: {{type: mock}}\n  \
             judge: {{type: openai-compatible, base_url: \"{}/v1\", model: judge-1, max_retries: 0, timeout_ms: 5000}}\n\
             pricing:\n  gpt-4o-mini: {{input: 0.15, output: 0.60}}\n  judge-1: {{input: 1.0, output: 2.0}}\n\
             defaults: {{provider: offline, judge: judge}}\n\
             experiments:\n  - name: help\n    variant: v.yaml\n    dataset: cases.jsonl\n    \
             assert: [{{type: llm-compare, value: \"States the refund window and how refunds are paid.\"}}]\n\
             gates:\n  preference: {{direction: higher, margin: 0.1, blocking: true}}\n",
            server.uri()
        ),
    );
    repo.write(
        "v.yaml",
        "version: v1\nmodel: gpt-4o-mini\nprompt: p.md\ntemperature: 0\n",
    );
    repo.write(
        "p.md",
        "Answer from the policy.\n\nRefunds are issued within 30 days.\n",
    );
    let mut cases = String::new();
    for i in 0..20 {
        let marker = match i {
            12..18 => " [first]",
            18.. => " [malformed]",
            _ => "",
        };
        cases.push_str(
            &json!({"id": format!("c{i}"), "vars": {"input": format!("How are refunds issued{marker} (case {i})?")}})
                .to_string(),
        );
        cases.push('\n');
    }
    repo.write("cases.jsonl", &cases);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.write(
        "p.md",
        "Answer from the policy.\n\nRefunds are issued within 30 days to the original payment method.\n",
    );
    repo.commit("pr");
    let dir = repo.path().to_owned();
    let run = tokio::task::spawn_blocking(move || {
        promptgate_in(
            &dir,
            &["run", "--base", "main", "--head", "pr", "--out", "out", "--no-cache"],
        )
    })
    .await
    .unwrap();
    run.expect_code(0);
    let r = results(&repo.path().join("out"));
    let e = &r["experiments"][0];
    for case in e["cases"].as_array().unwrap() {
        let (old, new) = (
            case["baseline"][0]["output"].as_str().unwrap(),
            case["candidate"][0]["output"].as_str().unwrap(),
        );
        assert!(
            new.len() > old.len(),
            "the candidate's answer is the fuller one: {old:?} / {new:?}"
        );
        let id = case["id"].as_str().unwrap();
        let i: usize = id[1..].parse().unwrap();
        let value = &case["candidate"][0]["scores"]["preference"];
        let judgements = case["candidate"][0]["judgements"].as_array().unwrap();
        assert_eq!(judgements.len(), 2, "{id}: one per order");
        match i {
            0..12 => assert_eq!(*value, json!(1.0), "{id}: preferred in both orders"),
            12..18 => {
                assert_eq!(*value, json!(0.0), "{id}: \"A\" both times is a tie");
                assert_eq!(judgements[0]["preferred"], judgements[0]["first"]);
            }
            _ => {
                assert!(value.is_null(), "{id}: a failed comparison is no value");
                assert!(judgements[0]["error"].as_str().unwrap().contains("asked twice"));
            }
        }
        if i < 18 {
            assert_eq!(case["baseline"][0]["scores"]["preference"], 0.0, "{id}");
        }
    }
    let m = e["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "preference")
        .unwrap();
    // The mean preference over the 18 judged cases, tested against 0:
    // scipy.stats.ttest_1samp([1]*12 + [0]*6, 0) → pvalue 2.0045793741234227e-05,
    // confidence_interval(0.95) → (0.4254464089933077, 0.9078869243400256)
    assert_eq!(m["n"], 18);
    assert!((m["delta"].as_f64().unwrap() - 12.0 / 18.0).abs() < 1e-12, "{m}");
    assert!(
        (m["p_value"].as_f64().unwrap() - 2.004_579_374_123_422_7e-5).abs() < 1e-12,
        "{m}"
    );
    assert!(
        (m["ci"][0].as_f64().unwrap() - 0.425_446_408_993_307_7).abs() < 1e-9,
        "{m}"
    );
    assert!(
        (m["ci"][1].as_f64().unwrap() - 0.907_886_924_340_025_6).abs() < 1e-9,
        "{m}"
    );
    assert_eq!(m["verdict"], "improvement");

    // Decisive judgements: 12 fuller-answer pairs (one first-position win each) and 6 "A"
    // pairs (two each): 24 first-position wins of 36.
    // statsmodels.stats.proportion.proportion_confint(24, 36, method="wilson")
    //   → (0.5033399787115651, 0.7978538117569469)
    let bias = &e["position_bias"][0];
    assert_eq!(bias["metric"], "preference");
    assert_eq!(
        (bias["first_wins"].clone(), bias["decisive"].clone()),
        (json!(24), json!(36))
    );
    assert!(
        (bias["ci"][0].as_f64().unwrap() - 0.503_339_978_711_565_1).abs() < 1e-9,
        "{bias}"
    );
    assert!(
        (bias["ci"][1].as_f64().unwrap() - 0.797_853_811_756_946_9).abs() < 1e-9,
        "{bias}"
    );
    assert_eq!(r["run"]["judge_calls"], 40);
    assert_eq!(r["run"]["judge_errors"], 4);
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("the output shown first won 24 of 36 decisive judgements (67%, 95% CI 50%–80%"),
        "{report}"
    );
}

/// Generation and judging on one server: the judge as [`Judge`]; a generation answers with the
/// prompt's policy line (the candidate's is the fuller), and fails (500) where the case's input
/// says that arm is down.
struct Both;

impl Respond for Both {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        if body["model"] == "judge-1" {
            return Judge.respond(request);
        }
        let system = body["messages"][0]["content"].as_str().unwrap();
        let input = body["messages"][1]["content"].as_str().unwrap();
        let candidate = system.contains("original payment method");
        let down = input.contains("[both down]")
            || (candidate && input.contains("[candidate down]"))
            || (!candidate && input.contains("[baseline down]"));
        if down {
            return ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "down"}}));
        }
        let answer = system.lines().last().unwrap();
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-gen", "object": "chat.completion", "created": 1_700_000_000, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 10, "total_tokens": 40}
        }))
    }
}

/// A pair one of whose calls failed is decided without a judge: the answer beats the failure
/// (+1 for the candidate when only its baseline failed, −1 when only it did), and two failures
/// tie. An arm that fails on some cases cannot leave the preference to the cases it answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comparison_with_a_failed_call_prefers_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Both)
        .mount(&server)
        .await;
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\n\
             providers:\n  gen: {{type: openai-compatible, base_url: \"{0}/v1\", max_retries: 0, timeout_ms: 5000}}\n  \
             judge: {{type: openai-compatible, base_url: \"{0}/v1\", model: judge-1, max_retries: 0, timeout_ms: 5000}}\n\
             pricing:\n  gpt-4o-mini: {{input: 0.15, output: 0.60}}\n  judge-1: {{input: 1.0, output: 2.0}}\n\
             defaults: {{provider: gen, judge: judge, max_error_rate: 0.5}}\n\
             experiments:\n  - name: help\n    variant: v.yaml\n    dataset: cases.jsonl\n    \
             assert: [{{type: llm-compare, value: \"States the refund window and how refunds are paid.\"}}]\n",
            server.uri()
        ),
    );
    repo.write(
        "v.yaml",
        "version: v1\nmodel: gpt-4o-mini\nprompt: p.md\ntemperature: 0\n",
    );
    repo.write(
        "p.md",
        "Answer from the policy.\n\nRefunds are issued within 30 days.\n",
    );
    let markers = ["[candidate down]", "[baseline down]", "[both down]", "", "", "", "", ""];
    let cases: String = markers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "{}\n",
                json!({"id": format!("c{i}"), "vars": {"input": format!("Refunds {m} (case {i})?")}})
            )
        })
        .collect();
    repo.write("cases.jsonl", &cases);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.write(
        "p.md",
        "Answer from the policy.\n\nRefunds are issued within 30 days to the original payment method.\n",
    );
    repo.commit("pr");
    let dir = repo.path().to_owned();
    let run = tokio::task::spawn_blocking(move || {
        promptgate_in(
            &dir,
            &["run", "--base", "main", "--head", "pr", "--out", "out", "--no-cache"],
        )
    })
    .await
    .unwrap();
    assert!(matches!(run.code, 0 | 1), "{run:?}");
    let r = results(&repo.path().join("out"));
    let cases = r["experiments"][0]["cases"].as_array().unwrap();
    let value = |i: usize, arm: &str| cases[i][arm][0]["scores"]["preference"].clone();
    let judged = |i: usize| cases[i]["candidate"][0]["judgements"].as_array().map_or(0, Vec::len);
    assert_eq!(
        (value(0, "candidate"), judged(0)),
        (json!(-1.0), 0),
        "only the candidate failed"
    );
    assert_eq!(
        (value(1, "candidate"), judged(1)),
        (json!(1.0), 0),
        "only the baseline failed"
    );
    assert_eq!((value(2, "candidate"), judged(2)), (json!(0.0), 0), "both failed");
    for i in 0..3 {
        assert_eq!(value(i, "baseline"), json!(0.0), "c{i}: the baseline carries 0");
    }
    for i in 3..8 {
        assert_eq!(
            (value(i, "candidate"), judged(i)),
            (json!(1.0), 2),
            "c{i}: judged, the fuller answer"
        );
    }
    let m = r["experiments"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "preference")
        .unwrap();
    assert_eq!(m["n"], 8, "every case counts: {m}");
    assert!((m["delta"].as_f64().unwrap() - 5.0 / 8.0).abs() < 1e-12, "{m}");
}
