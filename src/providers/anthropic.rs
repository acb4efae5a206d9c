//! The Anthropic Messages API: `POST {base_url|https://api.anthropic.com}/v1/messages` with
//! `x-api-key: $ANTHROPIC_API_KEY` and `anthropic-version: 2023-06-01`.
//!
//! The API differs from Chat Completions where it matters here: system messages go to a
//! top-level `system`, `max_tokens` is required, there is no `seed`, the reply is a list of
//! content blocks, and cache reads and writes are counted apart from `input_tokens`.
//!
//! Nor has it a JSON mode. A request asking for a JSON object ([`Request::json`], a judge's
//! question) is sent with one tool whose `input_schema` is the object's schema
//! ([`Request::json_schema`]) and `tool_choice: {"type": "tool", "name": …}`, which forces the
//! model to answer by calling it; the `tool_use` block's `input` is the object, returned as
//! the response's text.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Api, ApiKey};
use super::{Provider, ProviderError, Request, Response, Role, Usage};
use crate::error::Error;
use crate::suite::ProviderSpec;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
pub const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// The tool a JSON reply is forced through.
pub const REPLY_TOOL: &str = "record_reply";

/// `max_tokens` when the variant sets none: the API requires one.
pub const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The `anthropic` provider type.
pub struct AnthropicProvider {
    url: String,
    api: Api,
}

impl fmt::Debug for AnthropicProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicProvider")
            .field("url", &self.url)
            .field("api", &self.api)
            .finish()
    }
}

impl AnthropicProvider {
    /// Builds the provider a suite entry describes, reading its key from the environment.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, Error> {
        let key = http::api_key(spec, Some(DEFAULT_KEY_ENV))?;
        Self::with_key(spec, key)
    }

    /// Builds the provider with `key` instead of the environment's.
    pub fn with_key(spec: &ProviderSpec, key: Option<ApiKey>) -> Result<Self, Error> {
        let base = http::check_base_url(spec, spec.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
        // `{base}/v1/messages`; a base written the OpenAI way, ending in `/v1`, means the same.
        let base = base.strip_suffix("/v1").unwrap_or(&base);
        Ok(AnthropicProvider {
            url: format!("{base}/v1/messages"),
            api: Api::new("anthropic", key, "x-api-key", "")?,
        })
    }

    /// `{base}/v1/messages`.
    pub(super) fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn api(&self) -> &Api {
        &self.api
    }

    /// The JSON body of `request`.
    pub fn body(request: &Request) -> serde_json::Value {
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_ref())
            .collect();
        let messages: Vec<_> = request
            .messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut body = json!({
            "model": request.model,
            "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "messages": messages,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = request.top_p {
            body["top_p"] = json!(top_p);
        }
        // The Messages API has stop sequences but no penalties (a variant with one is refused
        // when the suite loads).
        if let Some(stop) = request.sampling.as_ref().and_then(|s| s.stop.as_ref()) {
            body["stop_sequences"] = json!(stop);
        }
        if request.json {
            body["tools"] = json!([{
                "name": REPLY_TOOL,
                "description": "Record your reply: the JSON object the instructions ask for.",
                "input_schema": request.json_schema.as_deref().cloned().unwrap_or_else(|| json!({"type": "object"})),
            }]);
            body["tool_choice"] = json!({"type": "tool", "name": REPLY_TOOL});
        }
        body
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    fn default_output_limit(&self) -> Option<u32> {
        Some(DEFAULT_MAX_TOKENS)
    }

    fn kind(&self) -> &'static str {
        "anthropic"
    }

    fn batch(&self) -> Option<&dyn super::batch::BatchApi> {
        Some(self)
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
        let message: MessageResponse = self
            .api
            .post_json(&self.url, &[("anthropic-version", API_VERSION)], &Self::body(request))
            .await?;
        answer(request, message)
    }
}

/// A Messages API body (a batch result's `message`) as a [`Response`].
pub(crate) fn message_response(request: &Request, body: serde_json::Value) -> Result<Response, ProviderError> {
    let message: MessageResponse = serde_json::from_value(body).map_err(|e| ProviderError::Permanent {
        message: format!("anthropic returned an unexpected response: {e}"),
    })?;
    answer(request, message)
}

fn answer(request: &Request, message: MessageResponse) -> Result<Response, ProviderError> {
    // Citations split one answer into several text blocks; together they are the answer.
    // A forced reply is the input of its tool call; a reply without one is passed on as
    // text, for the caller to find it is not the object asked for.
    let tool_input = message
        .content
        .iter()
        .find(|block| block.kind == "tool_use" && block.name.as_deref() == Some(REPLY_TOOL))
        .and_then(|block| block.input.as_ref());
    let text: String = match (request.json, tool_input) {
        (true, Some(input)) => input.to_string(),
        _ => message
            .content
            .iter()
            .filter(|block| block.kind == "text")
            .filter_map(|block| block.text.as_deref())
            .collect(),
    };
    let usage = match message.usage {
        Some(MessageUsage {
            input_tokens: Some(input),
            output_tokens: Some(output),
            cache_creation_input_tokens,
            cache_read_input_tokens,
        }) => {
            let cache_read = cache_read_input_tokens.unwrap_or(0);
            Usage {
                // `input_tokens` counts only what was neither read from nor written to the
                // cache; the prompt's size is the sum of the three.
                input: input + cache_read + cache_creation_input_tokens.unwrap_or(0),
                cached_input: cache_read,
                output,
            }
        }
        // A compatible server that reports no usage (or half of it): an estimate beats a call
        // that is free, as for OpenAI-compatible servers.
        _ => super::exec::estimate_usage(request, &text),
    };
    Ok(Response {
        text,
        usage,
        latency_ms: None,
    })
}

#[derive(Deserialize)]
struct MessageResponse {
    content: Vec<ContentBlock>,
    #[serde(default)]
    usage: Option<MessageUsage>,
}

#[derive(Deserialize)]
struct ContentBlock {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    /// A `tool_use` block's tool and arguments.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    input: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct MessageUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::providers::Message;
    use crate::providers::http::tests::{Expect, check_failure, request, spec};
    use crate::suite::ProviderKind;

    const KEY: &str = "sk-ant-test-SECRET-42";

    fn provider(base_url: &str) -> AnthropicProvider {
        let spec = spec(ProviderKind::Anthropic, Some(base_url));
        AnthropicProvider::with_key(&spec, Some(ApiKey::new(DEFAULT_KEY_ENV, KEY))).unwrap()
    }

    #[tokio::test]
    async fn sends_the_documented_request_and_counts_cache_tokens() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(header("x-api-key", KEY))
            .and(header("anthropic-version", "2023-06-01"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "model": "claude-sonnet-4-20250514",
                "max_tokens": 1024,
                "system": "You are the Acme support assistant.\n\nAnswer in one sentence.",
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello! How can I help?"},
                    {"role": "user", "content": "Can I get a refund after 45 days?"}
                ],
                "temperature": 0.0
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-20250514",
                "content": [
                    {"type": "thinking", "thinking": "The policy says 30 days.", "signature": "abc"},
                    {"type": "text", "text": "Refunds are issued "},
                    {"type": "text", "text": "within 30 days of delivery."}
                ],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {
                    "input_tokens": 21,
                    "cache_creation_input_tokens": 188,
                    "cache_read_input_tokens": 1800,
                    "output_tokens": 393,
                    "service_tier": "standard"
                }
            })))
            .expect(1)
            .mount(&server)
            .await;
        let request = crate::providers::Request::new(
            std::sync::Arc::new(crate::providers::Settings {
                temperature: Some(0.0),
                ..crate::providers::Settings::of("claude-sonnet-4-20250514")
            }),
            vec![
                Message {
                    role: Role::System,
                    content: "You are the Acme support assistant.".into(),
                },
                Message {
                    role: Role::System,
                    content: "Answer in one sentence.".into(),
                },
                Message {
                    role: Role::User,
                    content: "Hi".into(),
                },
                Message {
                    role: Role::Assistant,
                    content: "Hello! How can I help?".into(),
                },
                Message {
                    role: Role::User,
                    content: "Can I get a refund after 45 days?".into(),
                },
            ]
            .into(),
            7,
        );
        let provider = provider(&server.uri());
        assert_eq!(provider.kind(), "anthropic");
        let response = provider.complete(&request).await.unwrap();
        assert_eq!(
            response,
            Response {
                text: "Refunds are issued within 30 days of delivery.".to_owned(),
                usage: Usage {
                    input: 21 + 188 + 1800,
                    cached_input: 1800,
                    output: 393
                },
                latency_ms: None
            }
        );
    }

    /// A redirect is not followed: `x-api-key` would go with it to an address no reviewer
    /// approved (the audit's 307 to another port received the key, and its answer was taken).
    #[tokio::test]
    async fn a_redirect_is_the_calls_error_and_the_key_stays() {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"content": [{"type": "text", "text": "x"}]})))
            .expect(0)
            .mount(&elsewhere)
            .await;
        let to = format!("{}/stolen", elsewhere.uri());
        for status in [301, 302, 307, 308] {
            check_failure(
                |server| provider(&server.uri()),
                ResponseTemplate::new(status).insert_header("location", to.as_str()),
                Expect::Permanent("follows no redirect"),
            )
            .await;
        }
    }

    #[test]
    fn stop_sequences_are_sent_as_stop_sequences() {
        let mut r = request();
        assert!(AnthropicProvider::body(&r).get("stop_sequences").is_none());
        r.sampling = crate::chat::Sampling {
            stop: Some(vec!["###".to_owned(), "END".to_owned()]),
            ..crate::chat::Sampling::default()
        }
        .shared();
        assert_eq!(AnthropicProvider::body(&r)["stop_sequences"], json!(["###", "END"]));
    }

    #[tokio::test]
    async fn passes_max_tokens_and_top_p_and_reads_plain_usage() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .and(body_json(json!({
                "model": "gpt-4o-mini",
                "max_tokens": 256,
                "system": "You are the Acme support assistant.",
                "messages": [{"role": "user", "content": "Can I get a refund after 45 days?"}],
                "temperature": 0.5,
                "top_p": 0.9
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
                "content": [{"type": "text", "text": "No."}],
                "stop_reason": "end_turn", "stop_sequence": null,
                "usage": {"input_tokens": 25, "output_tokens": 2}
            })))
            .expect(1)
            .mount(&server)
            .await;
        let response = provider(&format!("{}/", server.uri()))
            .complete(&request())
            .await
            .unwrap();
        assert_eq!(response.text, "No.");
        assert_eq!(
            response.usage,
            Usage {
                input: 25,
                cached_input: 0,
                output: 2
            }
        );
    }

    /// A base written the OpenAI way (`…/v1`) reaches the same `/v1/messages`; a compatible
    /// server's reply without `usage` is estimated, not an error (four characters a token).
    #[tokio::test]
    async fn a_v1_base_and_a_reply_without_usage() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "content": [{"type": "text", "text": "Within 30 days."}]
            })))
            .expect(1)
            .mount(&server)
            .await;
        let response = provider(&format!("{}/v1", server.uri()))
            .complete(&request())
            .await
            .unwrap();
        assert_eq!(response.text, "Within 30 days.");
        assert_eq!(
            response.usage,
            crate::providers::exec::estimate_usage(&request(), "Within 30 days.")
        );
        assert!(
            response.usage.input > 0 && response.usage.output > 0,
            "{:?}",
            response.usage
        );
    }

    #[tokio::test]
    async fn errors_are_classified_and_redacted() {
        let anthropic = |server: &MockServer| provider(&server.uri());
        let error = |kind: &str, message: &str| json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"});
        check_failure(
            anthropic,
            ResponseTemplate::new(400).set_body_json(error("invalid_request_error", "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-20250514")),
            Expect::Permanent("anthropic returned HTTP 400 invalid_request_error: max_tokens: 100000 > 64000"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(401)
                .set_body_json(error("authentication_error", "invalid x-api-key sk-ant-test-SECRET-42")),
            Expect::Permanent(
                "authentication_error: invalid x-api-key [redacted]; check that ANTHROPIC_API_KEY holds a valid key",
            ),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(403).set_body_json(error(
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            )),
            Expect::Permanent("check that the key in ANTHROPIC_API_KEY may use this model"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .insert_header("anthropic-ratelimit-requests-remaining", "0")
                .insert_header("anthropic-ratelimit-requests-reset", "2099-01-01T00:00:00Z")
                .set_body_json(error(
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                )),
            Expect::RateLimited(Some(2000), "rate_limit_error: Number of request tokens"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(529).set_body_json(error("overloaded_error", "Overloaded")),
            Expect::Transient(None, "anthropic returned HTTP 529 overloaded_error: Overloaded"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(500).set_body_json(error("api_error", "Internal server error")),
            Expect::Transient(None, "HTTP 500 api_error"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(200).set_body_raw(
                r#"{"id": "msg_1", "type": "message", "content": [{"type": "te"#,
                "application/json",
            ),
            Expect::Unsettled("truncated or invalid JSON"),
        )
        .await;
        check_failure(
            anthropic,
            ResponseTemplate::new(200).set_body_json(json!({"choices": []})),
            Expect::Permanent("anthropic returned an unexpected response: missing field `content`"),
        )
        .await;
    }

    #[test]
    fn missing_key_exits_2_and_debug_hides_the_key() {
        let mut spec = spec(ProviderKind::Anthropic, None);
        spec.api_key_env = Some("PROMPTGATE_TEST_SURELY_UNSET_VARIABLE".to_owned());
        let error = AnthropicProvider::from_spec(&spec).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit::USAGE);
        assert!(
            error
                .to_string()
                .contains("`PROMPTGATE_TEST_SURELY_UNSET_VARIABLE` is not set"),
            "{error}"
        );
        let debug = format!("{:?}", provider(DEFAULT_BASE_URL));
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(debug.contains("https://api.anthropic.com/v1/messages"), "{debug}");
    }
}
