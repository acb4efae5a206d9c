//! `similarity` with `method: embeddings` against a fake OpenAI-compatible embeddings
//! endpoint on 127.0.0.1: valid vectors, an HTTP error, a malformed response and a vector of
//! another dimension, each a scorer error for its case rather than a value.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::support::{TestRepo, promptgate_in, results};

/// Dimensions of the fake's vectors.
const DIMENSIONS: usize = 8;

/// The fake's embedding: each lowercase word adds 1 at (sum of its bytes mod 8).
fn fake_embedding(text: &str) -> Vec<f64> {
    let mut v = vec![0.0; DIMENSIONS];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        let sum: usize = word.to_lowercase().bytes().map(usize::from).sum();
        v[sum % DIMENSIONS] += 1.0;
    }
    v
}

/// The embedder: counts the requests per input, fails by the marker in it.
#[derive(Clone, Default)]
struct Embedder {
    seen: Arc<Mutex<HashMap<String, u32>>>,
}

impl Respond for Embedder {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        let input = body["input"].as_str().unwrap().to_owned();
        *self.seen.lock().unwrap().entry(input.clone()).or_default() += 1;
        if input.contains("[http500]") {
            return ResponseTemplate::new(500).set_body_json(
                json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}),
            );
        }
        let embedding = if input.contains("[malformed]") {
            return ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [], "model": body["model"]}));
        } else if input.contains("[dim3]") {
            vec![0.1, 0.2, 0.3]
        } else {
            fake_embedding(&input)
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": embedding}],
            "model": body["model"],
            "usage": {"prompt_tokens": 10, "total_tokens": 10}
        }))
    }
}

/// The cosine, written out here rather than taken from promptgate.
fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_similarity_goes_through_the_runner_and_a_failed_embedding_is_a_scorer_error() {
    let embedder = Embedder::default();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(embedder.clone())
        .mount(&server)
        .await;
    let repo = TestRepo::new();
    repo.write(
        "promptgate.yaml",
        &format!(
            "version: 1\n\
             providers:\n  offline: {{type: mock}}\n  \
             emb: {{type: openai-compatible, base_url: \"{}/v1\", max_retries: 0, timeout_ms: 5000}}\n\
             pricing:\n  gpt-4o-mini: {{input: 0.15, output: 0.60}}\n  emb-1: {{input: 0.02, output: 0}}\n\
             defaults: {{provider: offline, embedder: emb, embedding_model: emb-1}}\n\
             experiments:\n  - name: help\n    variant: v.yaml\n    dataset: cases.jsonl\n    \
             assert: [{{type: similarity, threshold: 0.3}}]\n",
            server.uri()
        ),
    );
    repo.write(
        "v.yaml",
        "version: v1\nmodel: gpt-4o-mini\nprompt: p.md\ntemperature: 0\n",
    );
    repo.write(
        "p.md",
        "Answer from the policy.\n\nRefunds are issued within 30 days of delivery.\nExpress shipping takes one business day.\n",
    );
    let markers = ["[http500]", "[malformed]", "[dim3]"];
    let mut cases = String::new();
    for i in 0..20 {
        let marker = markers.get(i).copied().unwrap_or("");
        cases.push_str(
            &json!({"id": format!("c{i}"), "vars": {
                "input": format!("How long do refunds take (case {i})?"),
                "expected": format!("Refunds are issued within 30 days. {marker}")}})
            .to_string(),
        );
        cases.push('\n');
    }
    repo.write("cases.jsonl", &cases);
    repo.commit("base");
    repo.checkout_new("pr");
    repo.write(
        "p.md",
        "Answer from the policy. Be brief.\n\nRefunds are issued within 30 days of delivery.\nExpress shipping takes one business day.\n",
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
    // Three of twenty cases cannot be scored: 15%, under the tolerated 20%.
    run.expect_code(0);
    let r = results(&repo.path().join("out"));
    let cases = r["experiments"][0]["cases"].as_array().unwrap();

    for case in &cases[3..] {
        let output = case["candidate"][0]["output"].as_str().unwrap();
        let want = cosine(
            &fake_embedding(output),
            &fake_embedding("Refunds are issued within 30 days."),
        );
        let got = case["candidate"][0]["scores"]["similarity"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{}: {got} vs {want}", case["id"]);
        assert_eq!(case["candidate"][0]["scores"]["similarity_pass"], want >= 0.3);
    }
    for (case, why) in cases.iter().zip([
        "HTTP 500",
        "malformed embedding: `data` is empty",
        "different dimensions (8 and 3)",
    ]) {
        let call = &case["candidate"][0];
        assert!(call["scores"].get("similarity").is_none(), "no silent value: {call}");
        let errors = call["scorer_errors"].to_string();
        assert!(errors.contains(why), "{}: {errors}", case["id"]);
    }

    // The reference of a case is embedded once for both arms; each distinct output once.
    let seen = embedder.seen.lock().unwrap();
    for (text, n) in seen.iter() {
        assert_eq!(*n, 1, "{text:?} embedded {n} times");
    }
    // Embedding is the evaluation's spend: ten tokens at $0.02 per million, per request sent.
    let spend = r["run"]["embedding_spend_usd"].as_f64().unwrap();
    let sent_ok = seen
        .keys()
        .filter(|t| !t.contains("[http500]") && !t.contains("[malformed]"))
        .count();
    assert!(
        (spend - sent_ok as f64 * 10.0 * 0.02 / 1e6).abs() < 1e-12,
        "{spend} for {sent_ok} embeddings"
    );
}
