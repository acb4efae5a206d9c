//! A fake OpenAI Batch API and Anthropic Message Batches API on 127.0.0.1, following the
//! documented request and response shapes, with a script for how its batches end.
//!
//! A request whose last message contains `bad request` fails with a 400 (OpenAI: a line of the
//! error file with `response.status_code: 400`; Anthropic: an `errored` result) whose message
//! echoes the key, so tests can check it never gets out. In an expired batch, a request whose
//! last message contains `slow` did not run (OpenAI: `batch_expired` in the error file;
//! Anthropic: an `expired` result).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

pub const OPENAI_KEY: &str = "sk-test-BATCH-SECRET-4242";
pub const ANTHROPIC_KEY: &str = "sk-ant-test-BATCH-SECRET-4242";

/// How every batch the fake creates ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Completed,
    /// OpenAI `failed`: the input was refused, no request ran.
    Failed,
    /// The window closed: `slow` requests did not run.
    Expired,
    /// Never ends (until the script changes).
    Never,
}

#[derive(Default)]
pub struct State {
    pub ending: Option<Ending>,
    /// Polls answered `in_progress` before a batch ends.
    pub polls_before_end: usize,
    /// `POST /v1/batches` or `POST /v1/messages/batches` calls.
    pub creates: usize,
    pub polls: usize,
    /// `GET /v1/batches` or `GET /v1/messages/batches` (list) calls.
    pub lists: usize,
    /// List calls still to answer with a 503 before listing.
    pub list_failures: usize,
    /// Polls still to refuse with a 401, as a rotated key is.
    pub poll_refusals: usize,
    /// Uploaded files: id → content.
    files: Vec<(String, Vec<u8>)>,
    /// The multipart fields of each upload other than the file (`purpose`).
    pub upload_fields: Vec<Vec<(String, String)>>,
    /// Each create's JSON body.
    pub create_bodies: Vec<Value>,
    /// Batches: id → (requests as sent, polls so far).
    batches: Vec<(String, Vec<Value>, usize)>,
    /// The `created_at` a batch created from now on shows (Anthropic), RFC 3339.
    pub created_at: String,
    /// Each batch's `created_at`, in the order of `batches`.
    created: Vec<String>,
    /// Batches whose cancellation was asked for (Anthropic): `canceling` until their polls
    /// run out, then `ended` with every request `canceled` (none had run).
    canceled: Vec<String>,
}

pub struct Fake {
    pub server: MockServer,
    pub state: Arc<Mutex<State>>,
}

impl Fake {
    /// Forgets every batch, as a provider does one deleted: its polls are 404s.
    pub fn forget_batches(&self) {
        self.state().batches.clear();
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The OpenAI API under `{uri}/v1`, key [`OPENAI_KEY`].
    pub async fn openai(ending: Ending, polls_before_end: usize) -> Fake {
        let fake = Fake::start(ending, polls_before_end).await;
        let auth = || header("authorization", format!("Bearer {OPENAI_KEY}").as_str());
        let handler = |kind: Kind| Handler {
            kind,
            state: fake.state.clone(),
            uri: fake.server.uri(),
        };
        Mock::given(method("POST"))
            .and(path("/v1/files"))
            .and(auth())
            .respond_with(handler(Kind::Upload))
            .mount(&fake.server)
            .await;
        Mock::given(method("POST"))
            .and(path("/v1/batches"))
            .and(auth())
            .respond_with(handler(Kind::OpenAiCreate))
            .mount(&fake.server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1/batches"))
            .and(auth())
            .respond_with(handler(Kind::OpenAiList))
            .mount(&fake.server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/batches/[^/]+$"))
            .and(auth())
            .respond_with(handler(Kind::OpenAiPoll))
            .mount(&fake.server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/v1/files/[^/]+/content$"))
            .and(auth())
            .respond_with(handler(Kind::FileContent))
            .mount(&fake.server)
            .await;
        fake
    }

    /// The Anthropic API at `{uri}`, key [`ANTHROPIC_KEY`].
    pub async fn anthropic(ending: Ending, polls_before_end: usize) -> Fake {
        let fake = Fake::start(ending, polls_before_end).await;
        let handler = |kind: Kind| Handler {
            kind,
            state: fake.state.clone(),
            uri: fake.server.uri(),
        };
        let given = |verb: &str| {
            Mock::given(method(verb))
                .and(header("x-api-key", ANTHROPIC_KEY))
                .and(header("anthropic-version", "2023-06-01"))
        };
        given("POST")
            .and(path("/v1/messages/batches"))
            .respond_with(handler(Kind::AnthropicCreate))
            .mount(&fake.server)
            .await;
        given("GET")
            .and(path("/v1/messages/batches"))
            .respond_with(handler(Kind::AnthropicList))
            .mount(&fake.server)
            .await;
        given("GET")
            .and(path_regex(r"^/v1/messages/batches/[^/]+$"))
            .respond_with(handler(Kind::AnthropicPoll))
            .mount(&fake.server)
            .await;
        given("GET")
            .and(path_regex(r"^/v1/messages/batches/[^/]+/results$"))
            .respond_with(handler(Kind::AnthropicResults))
            .mount(&fake.server)
            .await;
        given("POST")
            .and(path_regex(r"^/v1/messages/batches/[^/]+/cancel$"))
            .respond_with(handler(Kind::AnthropicCancel))
            .mount(&fake.server)
            .await;
        fake
    }

    async fn start(ending: Ending, polls_before_end: usize) -> Fake {
        let state = State {
            ending: Some(ending),
            polls_before_end,
            created_at: "2026-12-02T08:00:00Z".to_owned(),
            ..State::default()
        };
        Fake {
            server: MockServer::start().await,
            state: Arc::new(Mutex::new(state)),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Upload,
    OpenAiCreate,
    OpenAiList,
    OpenAiPoll,
    FileContent,
    AnthropicCreate,
    AnthropicList,
    AnthropicPoll,
    AnthropicResults,
    AnthropicCancel,
}

struct Handler {
    kind: Kind,
    state: Arc<Mutex<State>>,
    uri: String,
}

impl Respond for Handler {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap();
        let last_segment = |n: usize| {
            let segments: Vec<&str> = request.url.path().split('/').collect();
            segments[segments.len() - n].to_owned()
        };
        match self.kind {
            Kind::Upload => {
                let content_type = request
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let Some(boundary) = content_type.split("boundary=").nth(1) else {
                    return ResponseTemplate::new(400).set_body_json(error("not multipart"));
                };
                let (fields, file) = multipart(&request.body, boundary);
                let Some(file) = file else {
                    return ResponseTemplate::new(400).set_body_json(error("no file part"));
                };
                let id = format!("file-in-{}", state.files.len());
                let bytes = file.len();
                state.files.push((id.clone(), file));
                state.upload_fields.push(fields);
                ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "object": "file", "bytes": bytes, "created_at": 1_733_000_000,
                    "filename": "promptgate-batch.jsonl", "purpose": "batch"
                }))
            }
            Kind::OpenAiCreate => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let file_id = body["input_file_id"].as_str().unwrap_or("").to_owned();
                let Some((_, content)) = state.files.iter().find(|(id, _)| *id == file_id) else {
                    return ResponseTemplate::new(400).set_body_json(error("no such input file"));
                };
                let lines: Vec<Value> = content
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .map(|l| serde_json::from_slice(l).unwrap_or(Value::Null))
                    .collect();
                state.creates += 1;
                state.create_bodies.push(body.clone());
                let id = format!("batch_{}", state.creates);
                state.batches.push((id.clone(), lines, 0));
                let created = state.created_at.clone();
                state.created.push(created);
                ResponseTemplate::new(200).set_body_json(openai_batch(
                    &id,
                    "validating",
                    &file_id,
                    None,
                    None,
                    (0, 0, 0),
                ))
            }
            Kind::OpenAiList => {
                // Newest first, `limit` (1–100, default 20) a page, `after` the previous page's
                // `last_id`; each batch as a poll would show it, with its create's metadata.
                state.lists += 1;
                if state.list_failures > 0 {
                    state.list_failures -= 1;
                    return ResponseTemplate::new(503).set_body_json(error("The server is overloaded"));
                }
                let (limit, after) = page_query(request, 100, "after");
                let ending = state.ending.unwrap_or(Ending::Completed);
                let newest_first = state.batches.iter().zip(&state.create_bodies).rev();
                let listed: Vec<Value> = newest_first
                    .skip_while(|((id, _, _), _)| after.as_ref().is_some_and(|a| a != id))
                    .skip(usize::from(after.is_some()))
                    .map(|((id, lines, polls), body)| {
                        let status = match ending {
                            _ if *polls <= state.polls_before_end => "in_progress",
                            Ending::Never => "in_progress",
                            Ending::Completed => "completed",
                            Ending::Failed => "failed",
                            Ending::Expired => "expired",
                        };
                        let mut batch = openai_batch(id, status, "file-in", None, None, (lines.len() as u64, 0, 0));
                        batch["metadata"] = body.get("metadata").cloned().unwrap_or(Value::Null);
                        batch
                    })
                    .collect();
                let has_more = listed.len() > limit;
                let page = &listed[..listed.len().min(limit)];
                ResponseTemplate::new(200).set_body_json(json!({
                    "object": "list", "data": page, "has_more": has_more,
                    "first_id": page.first().map(|b| b["id"].clone()), "last_id": page.last().map(|b| b["id"].clone())
                }))
            }
            Kind::OpenAiPoll => {
                let id = last_segment(1);
                state.polls += 1;
                if state.poll_refusals > 0 {
                    state.poll_refusals -= 1;
                    return ResponseTemplate::new(401).set_body_json(error("Incorrect API key provided"));
                }
                let (ending, before) = (state.ending.unwrap_or(Ending::Completed), state.polls_before_end);
                let Some(index) = state.batches.iter().position(|(b, _, _)| *b == id) else {
                    return ResponseTemplate::new(404).set_body_json(error("No batch found"));
                };
                state.batches[index].2 += 1;
                let (_, lines, polls) = state.batches[index].clone();
                let total = lines.len() as u64;
                if polls <= before || ending == Ending::Never {
                    return ResponseTemplate::new(200).set_body_json(openai_batch(
                        &id,
                        "in_progress",
                        "file-in",
                        None,
                        None,
                        (total, 0, 0),
                    ));
                }
                if ending == Ending::Failed {
                    let mut batch = openai_batch(&id, "failed", "file-in", None, None, (total, 0, 0));
                    batch["errors"] = json!({"object": "list", "data": [{
                        "code": "invalid_request", "message": "The model `gpt-5-imaginary` does not exist", "param": "body.model", "line": 1
                    }]});
                    return ResponseTemplate::new(200).set_body_json(batch);
                }
                let (mut output, mut errors, mut failed) = (Vec::new(), Vec::new(), 0);
                for line in &lines {
                    let custom_id = line["custom_id"].clone();
                    let said = last_message(&line["body"]);
                    if ending == Ending::Expired && said.contains("slow") {
                        failed += 1;
                        errors.push(json!({"id": "batch_req_x", "custom_id": custom_id, "response": null,
                            "error": {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}}));
                    } else if said.contains("bad request") {
                        failed += 1;
                        errors.push(json!({"id": "batch_req_x", "custom_id": custom_id,
                            "response": {"status_code": 400, "request_id": "req_1", "body": error(&format!("Invalid 'max_tokens' for key {OPENAI_KEY}"))},
                            "error": null}));
                    } else {
                        output.push(json!({"id": "batch_req_x", "custom_id": custom_id,
                            "response": {"status_code": 200, "request_id": "req_1", "body": openai_completion(&format!("answer to: {said}"))},
                            "error": null}));
                    }
                }
                let output_id = store(&mut state, format!("file-out-{id}"), &output);
                let error_id = store(&mut state, format!("file-err-{id}"), &errors);
                let status = if ending == Ending::Expired {
                    "expired"
                } else {
                    "completed"
                };
                ResponseTemplate::new(200).set_body_json(openai_batch(
                    &id,
                    status,
                    "file-in",
                    (!output.is_empty()).then_some(output_id.as_str()),
                    (!errors.is_empty()).then_some(error_id.as_str()),
                    (total, total - failed, failed),
                ))
            }
            Kind::FileContent => {
                let id = last_segment(2);
                match state.files.iter().find(|(f, _)| *f == id) {
                    Some((_, content)) => ResponseTemplate::new(200).set_body_bytes(content.clone()),
                    None => ResponseTemplate::new(404).set_body_json(error("No such file")),
                }
            }
            Kind::AnthropicCreate => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                let requests = body["requests"].as_array().cloned().unwrap_or_default();
                state.creates += 1;
                state.create_bodies.push(body);
                let id = format!("msgbatch_{:03}", state.creates);
                let n = requests.len() as u64;
                state.batches.push((id.clone(), requests, 0));
                let created = state.created_at.clone();
                state.created.push(created);
                let mut batch = anthropic_batch(&id, "in_progress", None, [n, 0, 0, 0, 0]);
                batch["created_at"] = state.created_at.clone().into();
                ResponseTemplate::new(200).set_body_json(batch)
            }
            Kind::AnthropicList => {
                // Newest first, `limit` (1–1000, default 20) a page, `after_id` the previous
                // page's `last_id`; each batch as a poll would show it.
                state.lists += 1;
                if state.list_failures > 0 {
                    state.list_failures -= 1;
                    return ResponseTemplate::new(529).set_body_json(json!({"type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"}}));
                }
                let (limit, after) = page_query(request, 1000, "after_id");
                let listed: Vec<Value> = (0..state.batches.len())
                    .rev()
                    .skip_while(|&i| after.as_ref().is_some_and(|a| *a != state.batches[i].0))
                    .skip(usize::from(after.is_some()))
                    .map(|i| self.anthropic_view(&state, i))
                    .collect();
                let has_more = listed.len() > limit;
                let page = &listed[..listed.len().min(limit)];
                ResponseTemplate::new(200).set_body_json(json!({
                    "data": page, "has_more": has_more,
                    "first_id": page.first().map(|b| b["id"].clone()), "last_id": page.last().map(|b| b["id"].clone())
                }))
            }
            Kind::AnthropicPoll => {
                let id = last_segment(1);
                state.polls += 1;
                if state.poll_refusals > 0 {
                    state.poll_refusals -= 1;
                    return ResponseTemplate::new(401).set_body_json(json!({"type": "error",
                        "error": {"type": "authentication_error", "message": "invalid x-api-key"}}));
                }
                let Some(index) = state.batches.iter().position(|(b, _, _)| *b == id) else {
                    return ResponseTemplate::new(404).set_body_json(json!({"type": "error",
                        "error": {"type": "not_found_error", "message": "batch not found"}}));
                };
                state.batches[index].2 += 1;
                ResponseTemplate::new(200).set_body_json(self.anthropic_view(&state, index))
            }
            Kind::AnthropicResults => {
                let id = last_segment(2);
                let ending = state.ending.unwrap_or(Ending::Completed);
                let Some((_, requests, _)) = state.batches.iter().find(|(b, _, _)| *b == id) else {
                    return ResponseTemplate::new(404);
                };
                let results = if state.canceled.contains(&id) {
                    requests.iter().map(|r| anthropic_canceled(&r["custom_id"])).collect()
                } else {
                    anthropic_results(requests, ending)
                };
                ResponseTemplate::new(200).set_body_bytes(jsonl(&results))
            }
            Kind::AnthropicCancel => {
                let id = last_segment(2);
                let Some(index) = state.batches.iter().position(|(b, _, _)| *b == id) else {
                    return ResponseTemplate::new(404).set_body_json(json!({"type": "error",
                        "error": {"type": "not_found_error", "message": "batch not found"}}));
                };
                state.canceled.push(id);
                ResponseTemplate::new(200).set_body_json(self.anthropic_view(&state, index))
            }
        }
    }
}

/// A list request's page size (`limit`, default 20, 1 to `most`) and its cursor (`cursor`).
fn page_query(request: &wiremock::Request, most: usize, cursor: &str) -> (usize, Option<String>) {
    let query: std::collections::HashMap<String, String> = request.url.query_pairs().into_owned().collect();
    let limit = query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20_usize)
        .clamp(1, most);
    (limit, query.get(cursor).cloned())
}

impl Handler {
    /// Anthropic batch `index` as a poll shows it, after the polls it has had.
    fn anthropic_view(&self, state: &State, index: usize) -> Value {
        let (id, requests, polls) = &state.batches[index];
        let ending = state.ending.unwrap_or(Ending::Completed);
        let n = requests.len() as u64;
        let ended = *polls > state.polls_before_end;
        let mut batch = if state.canceled.contains(id) {
            let url = format!("{}/v1/messages/batches/{id}/results", self.uri);
            match ended {
                false => anthropic_batch(id, "canceling", None, [n, 0, 0, 0, 0]),
                true => anthropic_batch(id, "ended", Some(&url), [0, 0, 0, n, 0]),
            }
        } else if !ended || ending == Ending::Never {
            anthropic_batch(id, "in_progress", None, [n, 0, 0, 0, 0])
        } else {
            let results = anthropic_results(requests, ending);
            let count = |kind: &str| results.iter().filter(|r| r["result"]["type"] == kind).count() as u64;
            let url = format!("{}/v1/messages/batches/{id}/results", self.uri);
            anthropic_batch(
                id,
                "ended",
                Some(&url),
                [
                    0,
                    count("succeeded"),
                    count("errored"),
                    count("canceled"),
                    count("expired"),
                ],
            )
        };
        if let Some(created) = state.created.get(index) {
            batch["created_at"] = created.clone().into();
        }
        batch
    }
}

/// A request of a batch cancelled before it ran, as the results show it.
fn anthropic_canceled(custom_id: &Value) -> Value {
    json!({"custom_id": custom_id, "result": {"type": "canceled"}})
}

fn anthropic_results(requests: &[Value], ending: Ending) -> Vec<Value> {
    requests
        .iter()
        .map(|r| {
            let said = last_message(&r["params"]);
            let result = if ending == Ending::Expired && said.contains("slow") {
                json!({"type": "expired"})
            } else if said.contains("bad request") {
                json!({"type": "errored", "error": {"type": "error", "error": {
                    "type": "invalid_request_error", "message": format!("max_tokens: too large for key {ANTHROPIC_KEY}")}}})
            } else {
                json!({"type": "succeeded", "message": {
                    "id": "msg_01", "type": "message", "role": "assistant", "model": r["params"]["model"],
                    "content": [{"type": "text", "text": format!("answer to: {said}")}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 1000, "output_tokens": 500}}})
            };
            json!({"custom_id": r["custom_id"], "result": result})
        })
        .collect()
}

fn store(state: &mut State, id: String, lines: &[Value]) -> String {
    state.files.retain(|(f, _)| *f != id);
    state.files.push((id.clone(), jsonl(lines)));
    id
}

fn jsonl(lines: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn last_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned()
}

fn error(message: &str) -> Value {
    json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})
}

fn openai_completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1_733_000_000, "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}
    })
}

fn openai_batch(
    id: &str,
    status: &str,
    input: &str,
    output: Option<&str>,
    errors: Option<&str>,
    (total, completed, failed): (u64, u64, u64),
) -> Value {
    json!({
        "id": id, "object": "batch", "endpoint": "/v1/chat/completions", "errors": null,
        "input_file_id": input, "completion_window": "24h", "status": status,
        "output_file_id": output, "error_file_id": errors, "created_at": 1_733_000_000,
        "in_progress_at": null, "expires_at": 1_733_086_400, "finalizing_at": null, "completed_at": null,
        "failed_at": null, "expired_at": null, "cancelling_at": null, "cancelled_at": null,
        "request_counts": {"total": total, "completed": completed, "failed": failed},
        "metadata": null
    })
}

fn anthropic_batch(id: &str, status: &str, results_url: Option<&str>, counts: [u64; 5]) -> Value {
    let [processing, succeeded, errored, canceled, expired] = counts;
    json!({
        "id": id, "type": "message_batch", "processing_status": status,
        "request_counts": {"processing": processing, "succeeded": succeeded, "errored": errored,
                           "canceled": canceled, "expired": expired},
        "ended_at": null, "created_at": "2026-12-02T08:00:00Z", "expires_at": "2026-12-03T08:00:00Z",
        "archived_at": null, "cancel_initiated_at": null, "results_url": results_url
    })
}

/// The text fields and the `file` part of a multipart body.
fn multipart(body: &[u8], boundary: &str) -> (Vec<(String, String)>, Option<Vec<u8>>) {
    let delimiter = format!("--{boundary}");
    let text = body.to_vec();
    let mut fields = Vec::new();
    let mut file = None;
    let mut parts: Vec<&[u8]> = Vec::new();
    let d = delimiter.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i + d.len() <= text.len() {
        if &text[i..i + d.len()] == d {
            if i > start {
                parts.push(&text[start..i]);
            }
            i += d.len();
            start = i;
        } else {
            i += 1;
        }
    }
    for part in parts {
        let Some(split) = part.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let headers = String::from_utf8_lossy(&part[..split]).to_lowercase();
        let mut content = &part[split + 4..];
        content = content.strip_suffix(b"\r\n").unwrap_or(content);
        let name = headers
            .split("name=\"")
            .nth(1)
            .and_then(|n| n.split('"').next())
            .unwrap_or("");
        if name == "file" {
            file = Some(content.to_vec());
        } else {
            fields.push((name.to_owned(), String::from_utf8_lossy(content).into_owned()));
        }
    }
    (fields, file)
}
