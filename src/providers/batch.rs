//! Batch APIs: many requests submitted at once, answered within hours, at half the list price
//! (`pricing::BATCH_DISCOUNT`). Two shapes, one trait:
//!
//! - OpenAI (`openai` type): upload a JSONL file (`POST {base}/files`, multipart,
//!   `purpose=batch`; one line per request, `{custom_id, method: "POST", url:
//!   "/v1/chat/completions", body}`), create the batch (`POST {base}/batches` with
//!   `input_file_id`, `endpoint`, `completion_window: "24h"`, `metadata` with the batch's tag),
//!   find a tagged batch in `GET {base}/batches?limit=100&after=…`, poll `GET {base}/batches/{id}`
//!   (`status`: validating, in_progress, finalizing, completed, failed, expired, cancelling,
//!   cancelled), then read `output_file_id` and `error_file_id` through
//!   `GET {base}/files/{id}/content`. Expired and cancelled requests are in the error file with
//!   the codes `batch_expired` and `batch_cancelled`.
//! - Anthropic (`anthropic` type): `POST {base}/v1/messages/batches` with `{requests:
//!   [{custom_id, params}]}`, poll `GET {base}/v1/messages/batches/{id}` (`processing_status`:
//!   in_progress, canceling, ended), then read the JSONL at `results_url`: one
//!   `{custom_id, result: {type: succeeded | errored | canceled | expired, message | error}}`
//!   per request. A Message Batch carries no label: a lost one is looked for in
//!   `GET {base}/v1/messages/batches?limit=100&after_id=…` by when it was created and how many
//!   requests it holds.
//!
//! `azure-openai` is not batched: Azure's batch API needs a separate global-batch deployment,
//! lives under other paths (`/openai/files`, `/openai/batches` with an `api-version`) and does
//! not expire jobs, so it is not the same shape; its calls go through the normal path.
//!
//! This module speaks the APIs; what to batch, how to poll, and where batch ids are kept is
//! the runner's (`runner::batch`).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::anthropic::{API_VERSION, AnthropicProvider};
use super::openai::OpenAiProvider;
use super::{ProviderError, Request, Response};

/// What a run that lost a batch's id knows of it, to find it at the provider by.
#[derive(Clone, Copy, Debug)]
pub struct Sought<'a> {
    /// The label the batch was created with (OpenAI's `metadata`).
    pub tag: &'a str,
    /// How many requests it holds.
    pub calls: usize,
    /// When the run was about to submit it, by this machine's clock; `None` in a record
    /// written before it was kept.
    pub since: Option<std::time::SystemTime>,
}

/// The most requests and bytes one batch may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_requests: usize,
    pub max_bytes: usize,
}

/// OpenAI: 50,000 requests and 200 MB per input file.
pub const OPENAI_LIMITS: Limits = Limits {
    max_requests: 50_000,
    max_bytes: 200 * 1000 * 1000,
};

/// Anthropic: 100,000 requests or 256 MB per batch, whichever comes first.
pub const ANTHROPIC_LIMITS: Limits = Limits {
    max_requests: 100_000,
    max_bytes: 256 * 1000 * 1000,
};

/// The largest results file read: answers of a full batch, well above one call's body.
pub const MAX_RESULTS_BYTES: usize = 1 << 30;

/// Where a batch stands, as one poll saw it.
#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub id: String,
    /// The provider's own word (`in_progress`, `finalizing`, `ended`, …), for progress lines.
    pub status: String,
    /// No request will change any more: the results can be read.
    pub ended: bool,
    /// The batch as a whole failed (OpenAI's `failed`: the input was refused): why.
    pub failed: Option<String>,
    pub total: u64,
    /// Requests answered or failed so far.
    pub done: u64,
    /// Requests failed, expired or cancelled so far.
    pub failed_requests: u64,
    /// Where the results are: OpenAI's output and error files, Anthropic's `results_url`.
    results: Vec<String>,
}

/// How one request of an ended batch ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    /// The API's answer body (a chat completion, a message), to turn into a [`Response`] with
    /// [`BatchApi::response`].
    Answered(Value),
    /// The request failed; classified as a normal call's failure would be.
    Failed(ProviderError),
    /// The batch's completion window closed before the request ran.
    Expired,
    /// The batch was cancelled before the request ran.
    Canceled,
}

/// A provider's batch API.
#[async_trait]
pub trait BatchApi: Send + Sync {
    fn limits(&self) -> Limits;

    /// One request as the batch carries it (a JSONL line for OpenAI, an entry of `requests`
    /// for Anthropic), under `custom_id`.
    fn entry(&self, custom_id: &str, request: &Request) -> Value;

    /// Submits the entries as one batch, labelled `tag` where the API keeps a label; its id.
    async fn submit(&self, entries: &[Value], tag: &str) -> Result<String, ProviderError>;

    /// Whether [`BatchApi::find`] has what it needs to look for `sought`: its tag (OpenAI),
    /// or when it was submitted (Anthropic, whose Message Batches carry no label).
    fn can_find(&self, sought: &Sought<'_>) -> bool;

    /// The batch a run submitted and lost the id of, if the provider holds it still usable
    /// (not failed or cancelled); `None` when there is none. An error when the API cannot say
    /// which of several it is.
    async fn find(&self, sought: &Sought<'_>) -> Result<Option<String>, ProviderError>;

    /// Polls the batch `id`; `None` when the provider does not know it (HTTP 404: deleted, or
    /// submitted under another account). Any other refusal (a rotated key's 401) is an error:
    /// the batch may well still run.
    async fn status(&self, id: &str) -> Result<Option<Status>, ProviderError>;

    /// The requests of an ended batch, by `custom_id`. A request missing here ran into the
    /// end of the batch without a result; the runner accounts for it.
    async fn results(&self, status: &Status) -> Result<Vec<(String, Item)>, ProviderError>;

    /// An answered request's body as the response a normal call would have given.
    fn response(&self, request: &Request, body: Value) -> Result<Response, ProviderError>;
}

// --- OpenAI

#[async_trait]
impl BatchApi for OpenAiProvider {
    fn limits(&self) -> Limits {
        OPENAI_LIMITS
    }

    fn entry(&self, custom_id: &str, request: &Request) -> Value {
        json!({
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": self.body(request),
        })
    }

    async fn submit(&self, entries: &[Value], tag: &str) -> Result<String, ProviderError> {
        let mut file = Vec::new();
        for entry in entries {
            file.extend_from_slice(entry.to_string().as_bytes());
            file.push(b'\n');
        }
        let base = self.base_url();
        let uploaded: Created = self
            .api()
            .post_file(
                &format!("{base}/files"),
                &[("purpose", "batch")],
                "promptgate-batch.jsonl",
                &file,
            )
            .await?;
        let body = json!({
            "input_file_id": uploaded.id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {TAG_KEY: tag},
        });
        let created: Created = self.api().post_json(&format!("{base}/batches"), &[], &body).await?;
        Ok(created.id)
    }

    fn can_find(&self, sought: &Sought<'_>) -> bool {
        !sought.tag.is_empty()
    }

    async fn find(&self, sought: &Sought<'_>) -> Result<Option<String>, ProviderError> {
        let tag = sought.tag;
        let mut after: Option<String> = None;
        for _ in 0..FIND_PAGES {
            let url = match &after {
                None => format!("{}/batches?limit=100", self.base_url()),
                Some(last) => format!("{}/batches?limit=100&after={}", self.base_url(), path_segment(last)),
            };
            let page: OpenAiBatchList = self.api().get_json(&url, &[]).await?;
            let found = page.data.into_iter().find(|b| {
                b.metadata.as_ref().and_then(|m| m.get(TAG_KEY)).and_then(Value::as_str) == Some(tag)
                    && !matches!(b.status.as_str(), "failed" | "cancelling" | "cancelled")
            });
            if let Some(batch) = found {
                return Ok(Some(batch.id));
            }
            match page.last_id {
                Some(last) if page.has_more => after = Some(last),
                _ => break,
            }
        }
        Ok(None)
    }

    async fn status(&self, id: &str) -> Result<Option<Status>, ProviderError> {
        let Some(batch): Option<OpenAiBatch> = self
            .api()
            .get_json_if_found(&format!("{}/batches/{}", self.base_url(), path_segment(id)), &[])
            .await?
        else {
            return Ok(None);
        };
        let failed = (batch.status == "failed").then(|| {
            let reasons: Vec<String> = batch
                .errors
                .map(|e| e.data)
                .unwrap_or_default()
                .into_iter()
                .map(|e| match e.line {
                    Some(line) => format!("line {line}: {}", e.message),
                    None => e.message,
                })
                .collect();
            if reasons.is_empty() {
                "the batch failed without saying why".to_owned()
            } else {
                reasons.join("; ")
            }
        });
        let counts = batch.request_counts.unwrap_or_default();
        Ok(Some(Status {
            ended: matches!(batch.status.as_str(), "completed" | "failed" | "expired" | "cancelled"),
            failed,
            total: counts.total,
            done: counts.completed + counts.failed,
            failed_requests: counts.failed,
            results: batch.output_file_id.into_iter().chain(batch.error_file_id).collect(),
            id: batch.id,
            status: batch.status,
        }))
    }

    async fn results(&self, status: &Status) -> Result<Vec<(String, Item)>, ProviderError> {
        let mut items = Vec::new();
        for file in &status.results {
            let url = format!("{}/files/{}/content", self.base_url(), path_segment(file));
            let bytes = self.api().get_bytes(&url, &[], MAX_RESULTS_BYTES).await?;
            for line in lines(&bytes) {
                let line: OpenAiLine = parse_line("openai", line)?;
                items.push((line.custom_id, self.item(line.response, line.error)));
            }
        }
        Ok(items)
    }

    fn response(&self, request: &Request, body: Value) -> Result<Response, ProviderError> {
        super::openai::completion_response("openai", request, body)
    }
}

impl OpenAiProvider {
    /// One line of an output or error file as an [`Item`].
    fn item(&self, response: Option<OpenAiLineResponse>, error: Option<OpenAiLineError>) -> Item {
        match (response, error) {
            (Some(r), _) if (200..300).contains(&r.status_code) => Item::Answered(r.body),
            (Some(r), _) => {
                let status = reqwest::StatusCode::from_u16(r.status_code).unwrap_or(reqwest::StatusCode::BAD_GATEWAY);
                let body = r.body.to_string();
                Item::Failed(
                    self.api()
                        .status_error(status, &reqwest::header::HeaderMap::new(), body.as_bytes()),
                )
            }
            (None, Some(e)) if e.code.as_deref() == Some("batch_expired") => Item::Expired,
            (None, Some(e)) if e.code.as_deref() == Some("batch_cancelled") => Item::Canceled,
            (None, Some(e)) => Item::Failed(ProviderError::Permanent {
                message: self.api().redact(&format!(
                    "openai batch request failed{}: {}",
                    e.code.map(|c| format!(" ({c})")).unwrap_or_default(),
                    e.message.unwrap_or_default()
                )),
            }),
            (None, None) => Item::Failed(ProviderError::Permanent {
                message: "openai batch returned a line with neither a response nor an error".to_owned(),
            }),
        }
    }
}

/// The metadata key an OpenAI batch is labelled under: the digest of its content, so a run
/// that lost its record can find the batch it submitted instead of paying for it again.
pub const TAG_KEY: &str = "promptgate_batch";

/// Pages of 100 batches searched for a tag: the batch sought was created minutes or hours
/// before, and the list is newest first.
const FIND_PAGES: usize = 10;

/// How far this machine's clock may be ahead of the provider's: a batch created up to this
/// long before the run's attempt (by our clock) is still looked at.
const CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct OpenAiBatchList {
    data: Vec<ListedBatch>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct ListedBatch {
    id: String,
    status: String,
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct OpenAiBatch {
    id: String,
    status: String,
    #[serde(default)]
    output_file_id: Option<String>,
    #[serde(default)]
    error_file_id: Option<String>,
    #[serde(default)]
    errors: Option<OpenAiBatchErrors>,
    #[serde(default)]
    request_counts: Option<OpenAiCounts>,
}

#[derive(Deserialize)]
struct OpenAiBatchErrors {
    #[serde(default)]
    data: Vec<OpenAiBatchError>,
}

#[derive(Deserialize)]
struct OpenAiBatchError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    line: Option<u64>,
}

#[derive(Default, Deserialize)]
struct OpenAiCounts {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    completed: u64,
    #[serde(default)]
    failed: u64,
}

#[derive(Deserialize)]
struct OpenAiLine {
    custom_id: String,
    #[serde(default)]
    response: Option<OpenAiLineResponse>,
    #[serde(default)]
    error: Option<OpenAiLineError>,
}

#[derive(Deserialize)]
struct OpenAiLineResponse {
    status_code: u16,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct OpenAiLineError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

// --- Anthropic

#[async_trait]
impl BatchApi for AnthropicProvider {
    fn limits(&self) -> Limits {
        ANTHROPIC_LIMITS
    }

    fn entry(&self, custom_id: &str, request: &Request) -> Value {
        json!({"custom_id": custom_id, "params": AnthropicProvider::body(request)})
    }

    /// Message Batches keep no label: `tag` is not sent.
    async fn submit(&self, entries: &[Value], _tag: &str) -> Result<String, ProviderError> {
        let created: AnthropicBatch = self
            .api()
            .post_json(
                &self.batches_url(),
                &[("anthropic-version", API_VERSION)],
                &json!({"requests": entries}),
            )
            .await?;
        Ok(created.id)
    }

    /// A Message Batch keeps no label: a list entry carries its counts and times, not its
    /// requests, so the batch is found by when it was created and how many requests it holds.
    fn can_find(&self, sought: &Sought<'_>) -> bool {
        sought.since.is_some() && sought.calls > 0
    }

    /// The one usable batch of `sought.calls` requests created since the run was about to
    /// submit (less [`CLOCK_SKEW`]), newest first. Taking another run's batch of the same
    /// size cannot put wrong answers in this one's place: results are matched to jobs by
    /// `custom_id`, the request's own key, and a job without its result fails. Two or more
    /// such batches are an error: which one is this run's cannot be told.
    async fn find(&self, sought: &Sought<'_>) -> Result<Option<String>, ProviderError> {
        let Some(since) = sought.since else { return Ok(None) };
        let from = since.checked_sub(CLOCK_SKEW).unwrap_or(std::time::UNIX_EPOCH);
        let headers = [("anthropic-version", API_VERSION)];
        let mut after: Option<String> = None;
        let mut found: Vec<String> = Vec::new();
        'pages: for _ in 0..FIND_PAGES {
            let url = match &after {
                None => format!("{}?limit=100", self.batches_url()),
                Some(last) => format!("{}?limit=100&after_id={}", self.batches_url(), path_segment(last)),
            };
            let page: AnthropicBatchList = self.api().get_json(&url, &headers).await?;
            for batch in page.data {
                // Newest first: past the window, every later batch is older still.
                match batch.created_at.as_deref().and_then(super::http::parse_rfc3339) {
                    Some(created) if created < from => break 'pages,
                    Some(_) => {}
                    None => continue,
                }
                let c = batch.request_counts.unwrap_or_default();
                let total = c.processing + c.succeeded + c.errored + c.canceled + c.expired;
                let cancelled = batch.processing_status == "canceling" || c.canceled > 0;
                if total == sought.calls as u64 && !cancelled {
                    found.push(batch.id);
                }
            }
            match page.last_id {
                Some(last) if page.has_more => after = Some(last),
                _ => break,
            }
        }
        match found.len() {
            0 | 1 => Ok(found.pop()),
            n => Err(ProviderError::Permanent {
                message: format!(
                    "{n} batches of {} requests were created since the stopped run's attempt ({}), and a Message Batch keeps no label to tell which is its",
                    sought.calls,
                    found.join(", ")
                ),
            }),
        }
    }

    async fn status(&self, id: &str) -> Result<Option<Status>, ProviderError> {
        let url = format!("{}/{}", self.batches_url(), path_segment(id));
        let Some(batch): Option<AnthropicBatch> = self
            .api()
            .get_json_if_found(&url, &[("anthropic-version", API_VERSION)])
            .await?
        else {
            return Ok(None);
        };
        let c = batch.request_counts.unwrap_or_default();
        Ok(Some(Status {
            ended: batch.processing_status == "ended",
            failed: None,
            total: c.processing + c.succeeded + c.errored + c.canceled + c.expired,
            done: c.succeeded + c.errored + c.canceled + c.expired,
            failed_requests: c.errored + c.canceled + c.expired,
            results: batch.results_url.into_iter().collect(),
            id: batch.id,
            status: batch.processing_status,
        }))
    }

    async fn results(&self, status: &Status) -> Result<Vec<(String, Item)>, ProviderError> {
        let mut items = Vec::new();
        for url in &status.results {
            // The key goes only where the batch API itself lives: a `results_url` elsewhere
            // (a misbehaving or impersonated server) would carry it off.
            if !url.starts_with(&format!("{}/", self.batches_url())) {
                return Err(ProviderError::Permanent {
                    message: format!(
                        "anthropic batch {}: its results_url is not under {}; not sending the key there",
                        status.id,
                        self.batches_url()
                    ),
                });
            }
            let bytes = self
                .api()
                .get_bytes(url, &[("anthropic-version", API_VERSION)], MAX_RESULTS_BYTES)
                .await?;
            for line in lines(&bytes) {
                let line: AnthropicLine = parse_line("anthropic", line)?;
                let item = match line.result.kind.as_str() {
                    "succeeded" => Item::Answered(line.result.message.unwrap_or(Value::Null)),
                    "expired" => Item::Expired,
                    "canceled" => Item::Canceled,
                    _ => Item::Failed(self.errored(line.result.error.as_ref())),
                };
                items.push((line.custom_id, item));
            }
        }
        Ok(items)
    }

    fn response(&self, request: &Request, body: Value) -> Result<Response, ProviderError> {
        super::anthropic::message_response(request, body)
    }
}

impl AnthropicProvider {
    fn batches_url(&self) -> String {
        format!("{}/batches", self.url())
    }

    /// An `errored` result: `{type: "error", error: {type, message}}`. A request the API
    /// refused (`invalid_request_error`) is permanent; a server-side failure (`api_error`,
    /// `overloaded_error`) is transient, though the batch does not retry it.
    fn errored(&self, error: Option<&Value>) -> ProviderError {
        let inner = error.and_then(|e| e.get("error")).or(error);
        let kind = inner
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        let text = inner
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let message = self
            .api()
            .redact(&format!("anthropic batch request failed ({kind}): {text}"));
        match kind {
            "rate_limit_error" => ProviderError::RateLimited {
                message,
                retry_after_ms: None,
            },
            "api_error" | "overloaded_error" | "timeout_error" => ProviderError::Transient {
                message,
                retry_after_ms: None,
            },
            _ => ProviderError::Permanent { message },
        }
    }
}

#[derive(Deserialize)]
struct AnthropicBatchList {
    data: Vec<AnthropicBatch>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    last_id: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicBatch {
    id: String,
    #[serde(default)]
    processing_status: String,
    /// RFC 3339.
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    request_counts: Option<AnthropicCounts>,
    #[serde(default)]
    results_url: Option<String>,
}

#[derive(Default, Deserialize)]
struct AnthropicCounts {
    #[serde(default)]
    processing: u64,
    #[serde(default)]
    succeeded: u64,
    #[serde(default)]
    errored: u64,
    #[serde(default)]
    canceled: u64,
    #[serde(default)]
    expired: u64,
}

#[derive(Deserialize)]
struct AnthropicLine {
    custom_id: String,
    result: AnthropicResult,
}

#[derive(Deserialize)]
struct AnthropicResult {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

// --- shared

/// The non-empty lines of a JSONL body.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| line.iter().any(|b| !b.is_ascii_whitespace()))
}

fn parse_line<T: serde::de::DeserializeOwned>(kind: &str, line: &[u8]) -> Result<T, ProviderError> {
    serde_json::from_slice(line).map_err(|e| ProviderError::Permanent {
        message: format!("{kind} batch results hold a line that is not a result ({e})"),
    })
}

/// An id as one path segment: ids are the provider's, but a `/` or `?` in one must not reach
/// another endpoint.
fn path_segment(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
