//! Chat Completions: one client for the three shapes of the OpenAI API.
//!
//! - `openai`: `POST {base_url|https://api.openai.com/v1}/chat/completions`,
//!   `Authorization: Bearer $OPENAI_API_KEY`, output limit as `max_completion_tokens` (the
//!   field the API documents; `max_tokens` is deprecated and refused by reasoning models).
//! - `azure-openai`: `POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version={api_version}`,
//!   `api-key: $AZURE_OPENAI_API_KEY`; `max_completion_tokens` from api-version 2024-09-01 on,
//!   `max_tokens` before (older versions reject the newer field).
//! - `openai-compatible` (vLLM, Ollama, llama.cpp, LiteLLM, …): `POST {base_url}/chat/completions`,
//!   a bearer key only when `api_key_env` is set, and `max_tokens`, which these servers take.

use std::fmt;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::http::{self, Api, ApiKey};
use super::{Provider, ProviderError, Request, Response, Usage};
use crate::error::{Diagnostic, Error};
use crate::suite::{ProviderKind, ProviderSpec};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Which of the three APIs an [`OpenAiProvider`] speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Azure,
    Compatible,
}

impl Dialect {
    pub fn kind(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Azure => "azure-openai",
            Dialect::Compatible => "openai-compatible",
        }
    }

    /// The variable the key is read from when the config names none.
    pub fn default_key_env(self) -> Option<&'static str> {
        match self {
            Dialect::OpenAi => Some("OPENAI_API_KEY"),
            Dialect::Azure => Some("AZURE_OPENAI_API_KEY"),
            Dialect::Compatible => None,
        }
    }

    fn of(kind: ProviderKind) -> Option<Dialect> {
        match kind {
            ProviderKind::Openai => Some(Dialect::OpenAi),
            ProviderKind::AzureOpenai => Some(Dialect::Azure),
            ProviderKind::OpenaiCompatible => Some(Dialect::Compatible),
            _ => None,
        }
    }
}

/// The `openai`, `azure-openai` and `openai-compatible` provider types.
pub struct OpenAiProvider {
    dialect: Dialect,
    url: String,
    /// `{base}/embeddings` (`None` for Azure, whose embeddings live on another deployment).
    embeddings_url: Option<String>,
    /// `max_completion_tokens` or `max_tokens`.
    max_tokens_field: &'static str,
    api: Api,
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("dialect", &self.dialect)
            .field("url", &self.url)
            .field("max_tokens_field", &self.max_tokens_field)
            .field("api", &self.api)
            .finish()
    }
}

impl OpenAiProvider {
    /// Builds the provider a suite entry describes, reading its key from the environment.
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, Error> {
        let dialect = dialect_of(spec)?;
        let key = http::api_key(spec, dialect.default_key_env())?;
        Self::with_key(spec, key)
    }

    /// Builds the provider with `key` instead of the environment's.
    pub fn with_key(spec: &ProviderSpec, key: Option<ApiKey>) -> Result<Self, Error> {
        let dialect = dialect_of(spec)?;
        let (url, max_tokens_field) = match dialect {
            Dialect::OpenAi => {
                let base = http::check_base_url(spec, spec.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL))?;
                (format!("{base}/chat/completions"), "max_completion_tokens")
            }
            Dialect::Compatible => {
                let base = spec.base_url.as_deref().ok_or_else(|| {
                    Diagnostic::new(format!("provider `{}` (type openai-compatible) needs `base_url`", spec.name))
                        .hint("e.g. `base_url: \"http://127.0.0.1:11434/v1\"` for Ollama, `http://127.0.0.1:8000/v1` for vLLM")
                })?;
                let base = http::check_base_url(spec, base)?;
                (format!("{base}/chat/completions"), "max_tokens")
            }
            Dialect::Azure => azure_url(spec)?,
        };
        let embeddings_url = match dialect {
            Dialect::OpenAi | Dialect::Compatible => url
                .strip_suffix("/chat/completions")
                .map(|base| format!("{base}/embeddings")),
            Dialect::Azure => None,
        };
        let (header, prefix) = match dialect {
            Dialect::Azure => ("api-key", ""),
            Dialect::OpenAi | Dialect::Compatible => ("authorization", "Bearer "),
        };
        Ok(OpenAiProvider {
            dialect,
            url,
            embeddings_url,
            max_tokens_field,
            api: Api::new(dialect.kind(), key, header, prefix)?,
        })
    }

    /// The address calls go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The API's base (`…/v1`), under which the batch endpoints live.
    pub(super) fn base_url(&self) -> &str {
        self.url.strip_suffix("/chat/completions").unwrap_or(&self.url)
    }

    pub(super) fn api(&self) -> &Api {
        &self.api
    }

    /// The JSON body of `request`.
    pub fn body(&self, request: &Request) -> serde_json::Value {
        let messages: Vec<_> = request
            .messages
            .iter()
            .map(|m| json!({"role": m.role, "content": m.content}))
            .collect();
        let mut body = json!({"model": request.model, "messages": messages});
        if let Some(temperature) = request.temperature {
            body["temperature"] = json!(temperature);
        }
        if let Some(top_p) = request.top_p {
            body["top_p"] = json!(top_p);
        }
        if let Some(sampling) = &request.sampling {
            if let Some(p) = sampling.frequency_penalty {
                body["frequency_penalty"] = json!(p);
            }
            if let Some(p) = sampling.presence_penalty {
                body["presence_penalty"] = json!(p);
            }
            if let Some(stop) = &sampling.stop {
                body["stop"] = json!(stop);
            }
        }
        if let Some(max_tokens) = request.max_tokens {
            body[self.max_tokens_field] = json!(max_tokens);
        }
        body["seed"] = json!(api_seed(request.seed));
        if request.json {
            // JSON mode: OpenAI, Azure and the common compatible servers (vLLM, Ollama,
            // llama.cpp) accept it; the judge's prompt asks for the object as well.
            body["response_format"] = json!({"type": "json_object"});
        }
        body
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn kind(&self) -> &'static str {
        self.dialect.kind()
    }

    /// Only OpenAI's own API: Azure's batches are another shape, compatible servers have none.
    fn batch(&self) -> Option<&dyn super::batch::BatchApi> {
        (self.dialect == Dialect::OpenAi).then_some(self as &dyn super::batch::BatchApi)
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
        let completion: ChatCompletion = self.api.post_json(&self.url, &[], &self.body(request)).await?;
        answer(self.dialect.kind(), request, completion)
    }

    /// `POST {base}/embeddings` with `{model, input}`; the vector is `data[0].embedding`.
    async fn embed(&self, request: &Request) -> Result<Response, ProviderError> {
        let Some(url) = &self.embeddings_url else {
            return Err(ProviderError::Permanent {
                message: format!("provider type `{}` has no embeddings endpoint", self.dialect.kind()),
            });
        };
        let body = json!({"model": request.model, "input": request.embedded_text()});
        let response: Embeddings = self.api.post_json(url, &[], &body).await?;
        let (vector, tokens) = embedding_of(self.dialect.kind(), response)?;
        Ok(Response {
            text: serde_json::to_string(&vector).unwrap_or_default(),
            usage: Usage {
                // A server that reports no usage: four characters a token.
                input: if tokens > 0 {
                    tokens
                } else {
                    crate::tokens::estimate(request.embedded_text())
                },
                cached_input: 0,
                output: 0,
            },
            latency_ms: None,
        })
    }
}

/// A Chat Completions body as a [`Response`]: the first choice's text (or refusal) and usage.
pub(crate) fn completion_response(
    kind: &str,
    request: &Request,
    body: serde_json::Value,
) -> Result<Response, ProviderError> {
    let completion: ChatCompletion = serde_json::from_value(body).map_err(|e| ProviderError::Permanent {
        message: format!("{kind} returned an unexpected response: {e}"),
    })?;
    answer(kind, request, completion)
}

fn answer(kind: &str, request: &Request, completion: ChatCompletion) -> Result<Response, ProviderError> {
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(ProviderError::Permanent {
            message: format!("{kind} returned no choices"),
        });
    };
    // A refusal is what the user would have been shown, so it is the output.
    let text = choice.message.content.or(choice.message.refusal).unwrap_or_default();
    let usage = match completion.usage {
        Some(u) => Usage {
            input: u.prompt_tokens,
            cached_input: u.prompt_tokens_details.and_then(|d| d.cached_tokens).unwrap_or(0),
            output: u.completion_tokens,
        },
        // Some compatible servers report no usage; an estimate beats a call that is free.
        None => super::exec::estimate_usage(request, &text),
    };
    Ok(Response {
        text,
        usage,
        latency_ms: None,
    })
}

/// The most dimensions an embedding may have: the largest OpenAI's models return is 3,072.
const MAX_DIMENSIONS: usize = 16_384;

/// Checks an embeddings response: one embedding of finite numbers, not empty nor absurdly
/// long. A malformed one is a permanent failure (asking again gets the same), never a vector
/// of zeros.
fn embedding_of(kind: &str, response: Embeddings) -> Result<(Vec<f64>, u64), ProviderError> {
    let malformed = |why: &str| ProviderError::Permanent {
        message: format!("{kind} returned a malformed embedding: {why}"),
    };
    let Some(first) = response.data.into_iter().next() else {
        return Err(malformed("`data` is empty"));
    };
    if first.embedding.is_empty() || first.embedding.len() > MAX_DIMENSIONS {
        return Err(malformed(&format!("{} dimensions", first.embedding.len())));
    }
    if first.embedding.iter().any(|x| !x.is_finite()) {
        return Err(malformed("a value is not a finite number"));
    }
    let tokens = response.usage.map_or(0, |u| u.prompt_tokens);
    Ok((first.embedding, tokens))
}

/// The seed as the APIs take it. OpenAI documents an integer; Ollama reads a Go `int` and
/// llama.cpp a 32-bit one, so a full `u64` is refused by some servers. Folding the halves into
/// 31 bits keeps repeats distinct and every server happy; both arms still share it.
pub fn api_seed(seed: u64) -> u64 {
    ((seed >> 32) ^ seed) & 0x7fff_ffff
}

fn dialect_of(spec: &ProviderSpec) -> Result<Dialect, Error> {
    Dialect::of(spec.kind)
        .ok_or_else(|| Error::run(format!("provider `{}` is not an OpenAI-shaped provider", spec.name)))
}

fn azure_url(spec: &ProviderSpec) -> Result<(String, &'static str), Error> {
    let missing = |field: &str, example: &str| -> Error {
        Diagnostic::new(format!("provider `{}` (type azure-openai) needs `{field}`", spec.name))
            .hint(format!("e.g. `{field}: {example}`"))
            .into()
    };
    let base = spec
        .base_url
        .as_deref()
        .ok_or_else(|| missing("base_url", "\"https://my-resource.openai.azure.com\""))?;
    let deployment = spec
        .deployment
        .as_deref()
        .ok_or_else(|| missing("deployment", "gpt-4o-prod"))?;
    let api_version = spec
        .api_version
        .as_deref()
        .ok_or_else(|| missing("api_version", "\"2024-10-21\""))?;
    let mut url = reqwest::Url::parse(&http::check_base_url(spec, base)?)
        .map_err(|e| Error::run(format!("provider `{}`: {e}", spec.name)))?;
    url.path_segments_mut()
        .map_err(|()| Error::run(format!("provider `{}`: `base_url` cannot take a path", spec.name)))?
        .pop_if_empty()
        .extend(["openai", "deployments", deployment, "chat", "completions"]);
    url.query_pairs_mut().append_pair("api-version", api_version);
    // Dated versions before 2024-09-01 predate `max_completion_tokens`; anything else
    // (`2024-10-21`, `2025-01-01-preview`, `preview`) takes it.
    let dated = api_version
        .get(..10)
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    let field = match dated {
        Some(date) if date < "2024-09-01" => "max_tokens",
        _ => "max_completion_tokens",
    };
    Ok((url.to_string(), field))
}

/// `POST /v1/embeddings`'s response: `{"data": [{"embedding": [...]}], "usage": {...}}`.
#[derive(Deserialize)]
struct Embeddings {
    data: Vec<EmbeddingData>,
    #[serde(default)]
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct EmbeddingData {
    embedding: Vec<f64>,
}

#[derive(Deserialize)]
struct ChatCompletion {
    choices: Vec<Choice>,
    usage: Option<ChatUsage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
}

#[derive(Deserialize)]
struct ChatUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Deserialize)]
struct PromptTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{body_json, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::providers::http::tests::{Expect, check_failure, request, spec};

    const KEY: &str = "sk-test-SECRET-42";

    fn provider(kind: ProviderKind, base_url: &str) -> OpenAiProvider {
        let mut spec = spec(kind, Some(base_url));
        spec.deployment = Some("gpt4o-prod".to_owned());
        spec.api_version = Some("2024-10-21".to_owned());
        let env = Dialect::of(kind)
            .and_then(Dialect::default_key_env)
            .unwrap_or("LOCAL_KEY");
        OpenAiProvider::with_key(&spec, Some(ApiKey::new(env, KEY))).unwrap()
    }

    /// The documented response dialect, with cached prompt tokens.
    fn completion(text: &str) -> serde_json::Value {
        json!({
            "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
            "object": "chat.completion",
            "created": 1_741_570_283,
            "model": "gpt-4o-2024-08-06",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null, "annotations": []},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": 2006,
                "completion_tokens": 300,
                "total_tokens": 2306,
                "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
            },
            "service_tier": "default",
            "system_fingerprint": "fp_fc9f1d7035"
        })
    }

    const USAGE: Usage = Usage {
        input: 2006,
        cached_input: 1920,
        output: 300,
    };

    #[tokio::test]
    async fn openai_sends_the_documented_request() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("authorization", "Bearer sk-test-SECRET-42"))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are the Acme support assistant."},
                    {"role": "user", "content": "Can I get a refund after 45 days?"}
                ],
                "temperature": 0.5,
                "top_p": 0.9,
                "max_completion_tokens": 256,
                "seed": 12345
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("Refunds are issued within 30 days.")))
            .expect(1)
            .mount(&server)
            .await;
        let provider = provider(ProviderKind::Openai, &format!("{}/v1/", server.uri()));
        assert_eq!(provider.kind(), "openai");
        let response = provider.complete(&request()).await.unwrap();
        assert_eq!(
            response,
            Response {
                text: "Refunds are issued within 30 days.".to_owned(),
                usage: USAGE,
                latency_ms: None
            }
        );
        let agent = &server.received_requests().await.unwrap()[0].headers["user-agent"];
        assert_eq!(
            agent.to_str().unwrap(),
            concat!("promptgate/", env!("CARGO_PKG_VERSION"))
        );
    }

    #[tokio::test]
    async fn azure_calls_the_deployment_with_an_api_key_header() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/openai/deployments/gpt4o-prod/chat/completions"))
            .and(query_param("api-version", "2024-10-21"))
            .and(header("api-key", KEY))
            .and(body_json(json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are the Acme support assistant."},
                    {"role": "user", "content": "Can I get a refund after 45 days?"}
                ],
                "temperature": 0.5,
                "top_p": 0.9,
                "max_completion_tokens": 256,
                "seed": 12345
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion("Within 30 days.")))
            .expect(1)
            .mount(&server)
            .await;
        let provider = provider(ProviderKind::AzureOpenai, &server.uri());
        assert_eq!(provider.kind(), "azure-openai");
        let response = provider.complete(&request()).await.unwrap();
        assert_eq!((response.text.as_str(), response.usage), ("Within 30 days.", USAGE));
        let received = &server.received_requests().await.unwrap()[0];
        assert!(!received.headers.contains_key("authorization"));
    }

    /// A variant's penalties and stop sequences go in the body under OpenAI's names; a request
    /// without them sends none (and its cache key is as before: `sampling` is left out).
    #[test]
    fn penalties_and_stop_sequences_are_sent_as_openai_names_them() {
        let provider = OpenAiProvider::with_key(
            &spec(ProviderKind::Openai, None),
            Some(ApiKey::new("OPENAI_API_KEY", KEY)),
        )
        .unwrap();
        let mut r = request();
        let plain = provider.body(&r);
        assert!(plain.get("stop").is_none() && plain.get("frequency_penalty").is_none());
        assert!(!serde_json::to_string(&r).unwrap().contains("penalty"));
        r.sampling = crate::chat::Sampling {
            frequency_penalty: Some(0.5),
            presence_penalty: Some(-1.0),
            stop: Some(vec!["###".to_owned()]),
        }
        .shared();
        let body = provider.body(&r);
        assert_eq!(body["frequency_penalty"], json!(0.5));
        assert_eq!(body["presence_penalty"], json!(-1.0));
        assert_eq!(body["stop"], json!(["###"]));
        // In the request's own JSON (the cache key, an exec program's stdin) at the top level.
        let own: serde_json::Value = serde_json::to_value(&r).unwrap();
        assert_eq!(
            (own["frequency_penalty"].clone(), own["stop"].clone()),
            (json!(0.5), json!(["###"]))
        );
        let back: Request = serde_json::from_value(own).unwrap();
        assert_eq!(back, r);
        // One written without them (a journal's, a batch's) reads back as planned: none.
        let plain: Request = serde_json::from_value(serde_json::to_value(request()).unwrap()).unwrap();
        assert_eq!(plain.sampling, None);
        assert_eq!(plain, request());
    }

    #[test]
    fn azure_versions_before_2024_09_take_max_tokens() {
        #[track_caller]
        fn check(api_version: &str, url: &str, field: &str) {
            let mut spec = spec(ProviderKind::AzureOpenai, Some("https://acme.openai.azure.com/"));
            spec.deployment = Some("my deployment".to_owned());
            spec.api_version = Some(api_version.to_owned());
            let provider = OpenAiProvider::with_key(&spec, Some(ApiKey::new("AZURE_OPENAI_API_KEY", KEY))).unwrap();
            assert_eq!(provider.url(), url);
            assert_eq!(provider.max_tokens_field, field);
        }
        let url = |v: &str| {
            format!("https://acme.openai.azure.com/openai/deployments/my%20deployment/chat/completions?api-version={v}")
        };
        check("2024-06-01", &url("2024-06-01"), "max_tokens");
        check("2024-08-01-preview", &url("2024-08-01-preview"), "max_tokens");
        check("2024-10-21", &url("2024-10-21"), "max_completion_tokens");
        check(
            "2025-04-01-preview",
            &url("2025-04-01-preview"),
            "max_completion_tokens",
        );
        check("preview", &url("preview"), "max_completion_tokens");
    }

    #[tokio::test]
    async fn compatible_sends_max_tokens_and_estimates_missing_usage() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(body_json(json!({
                "model": "llama3.2",
                "messages": [{"role": "user", "content": "Say hi"}],
                "max_tokens": 16,
                "seed": api_seed(u64::MAX)
            })))
            .respond_with(hi_there())
            .expect(1)
            .mount(&server)
            .await;
        let spec = spec(ProviderKind::OpenaiCompatible, Some(&format!("{}/v1", server.uri())));
        let provider = OpenAiProvider::with_key(&spec, None).unwrap();
        assert_eq!(provider.kind(), "openai-compatible");
        let request = crate::providers::Request::new(
            std::sync::Arc::new(crate::providers::Settings {
                max_tokens: Some(16),
                ..crate::providers::Settings::of("llama3.2")
            }),
            vec![super::super::Message {
                role: super::super::Role::User,
                content: "Say hi".into(),
            }]
            .into(),
            u64::MAX,
        );
        let response = provider.complete(&request).await.unwrap();
        // "Say hi": 2 tokens + 4 for the message; "Hi there!": 3 tokens.
        assert_eq!(
            response.usage,
            Usage {
                input: 6,
                cached_input: 0,
                output: 3
            }
        );
        let received = &server.received_requests().await.unwrap()[0];
        assert!(!received.headers.contains_key("authorization"));
        assert_eq!(api_seed(u64::MAX), 0);
        assert_eq!(api_seed(12345), 12345);
    }

    /// A fake `POST /v1/embeddings` answering `status` with `body`; what `embed` made of it.
    async fn embedded(
        kind: ProviderKind,
        status: u16,
        body: serde_json::Value,
    ) -> (Result<Response, ProviderError>, serde_json::Value) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(ResponseTemplate::new(status).set_body_json(body))
            .mount(&server)
            .await;
        let provider = provider(kind, &format!("{}/v1", server.uri()));
        let request = Request::embedding("text-embedding-3-small", "Refunds are issued within 30 days.");
        let result = provider.embed(&request).await;
        let sent = server
            .received_requests()
            .await
            .unwrap()
            .first()
            .map(|r| serde_json::from_slice(&r.body).unwrap())
            .unwrap_or_default();
        (result, sent)
    }

    /// A local server's chat completion saying "Hi there!", without usage.
    fn hi_there() -> ResponseTemplate {
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "llama3.2",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi there!"}, "finish_reason": "stop"}]
        }))
    }

    /// A base URL by host name (a local server such as Ollama at `http://localhost:11434/v1`)
    /// is looked up and reached; the request names the host as written.
    #[tokio::test]
    async fn a_base_url_by_host_name_is_looked_up_and_reached() {
        let server = MockServer::start().await;
        let port = server.address().port();
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .and(header("host", format!("localhost:{port}").as_str()))
            .respond_with(hi_there())
            .expect(1)
            .mount(&server)
            .await;
        let spec = spec(
            ProviderKind::OpenaiCompatible,
            Some(&format!("http://localhost:{port}/v1")),
        );
        let provider = OpenAiProvider::with_key(&spec, None).unwrap();
        let response = provider.complete(&request()).await.unwrap();
        assert_eq!(response.text, "Hi there!");
    }

    #[tokio::test]
    async fn embeddings_send_model_and_input_and_read_the_first_vector() {
        // The documented response of POST /v1/embeddings.
        let documented = json!({
            "object": "list",
            "data": [{"object": "embedding", "index": 0, "embedding": [0.0023064255, -0.009327292, 0.015797347]}],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 8, "total_tokens": 8}
        });
        for kind in [ProviderKind::Openai, ProviderKind::OpenaiCompatible] {
            let (result, sent) = embedded(kind, 200, documented.clone()).await;
            assert_eq!(
                sent,
                json!({"model": "text-embedding-3-small", "input": "Refunds are issued within 30 days."})
            );
            let response = result.unwrap();
            assert_eq!(
                serde_json::from_str::<Vec<f64>>(&response.text).unwrap(),
                vec![0.0023064255, -0.009327292, 0.015797347]
            );
            assert_eq!(
                response.usage,
                Usage {
                    input: 8,
                    cached_input: 0,
                    output: 0
                }
            );
        }
    }

    #[tokio::test]
    async fn malformed_and_failed_embeddings_are_errors_never_vectors() {
        #[track_caller]
        fn check(result: Result<Response, ProviderError>, permanent: bool, fragment: &str) {
            let e = result.expect_err("an error");
            assert_eq!(matches!(e, ProviderError::Permanent { .. }), permanent, "{e:?}");
            assert!(e.to_string().contains(fragment), "{e}");
            assert!(!e.to_string().contains(KEY), "{e}");
        }
        let (result, _) = embedded(
            ProviderKind::Openai,
            200,
            json!({"object": "list", "data": [], "model": "m"}),
        )
        .await;
        check(result, true, "malformed embedding: `data` is empty");
        let (result, _) = embedded(ProviderKind::Openai, 200, json!({"data": [{"embedding": []}]})).await;
        check(result, true, "malformed embedding: 0 dimensions");
        let (result, _) = embedded(
            ProviderKind::Openai,
            200,
            json!({"data": [{"embedding": ["0.1", "0.2"]}]}),
        )
        .await;
        let e = result.expect_err("not numbers");
        assert!(!e.to_string().is_empty());
        let (result, _) = embedded(
            ProviderKind::Openai,
            400,
            json!({"error": {"message": "This model's maximum context length is 8192 tokens.", "type": "invalid_request_error", "param": null, "code": null}}),
        )
        .await;
        check(result, true, "maximum context length is 8192 tokens");
        let (result, _) = embedded(
            ProviderKind::Openai,
            503,
            json!({"error": {"message": "The server is overloaded.", "type": "server_error", "param": null, "code": null}}),
        )
        .await;
        check(result, false, "overloaded");
        // Azure's embeddings live on another deployment: not this provider's.
        let azure = provider(ProviderKind::AzureOpenai, "https://example.openai.azure.com");
        let request = Request::embedding("text-embedding-3-small", "x");
        check(azure.embed(&request).await, true, "has no embeddings endpoint");
    }

    #[tokio::test]
    async fn errors_are_classified_and_redacted() {
        let openai = |server: &MockServer| provider(ProviderKind::Openai, &server.uri());
        let error = |message: &str, kind: &str, code: &str| json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
        check_failure(
            openai,
            ResponseTemplate::new(400).set_body_json(error(
                "Invalid value for 'temperature': must be between 0 and 2.",
                "invalid_request_error",
                "invalid_value",
            )),
            Expect::Permanent(
                "openai returned HTTP 400 invalid_request_error: Invalid value for 'temperature': must be between 0 and 2",
            ),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(401).set_body_json(error(
                "Incorrect API key provided: sk-test-SECRET-42. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                "invalid_api_key",
            )),
            Expect::Permanent("Incorrect API key provided: [redacted]. You can find your API key at https://platform.openai.com/account/api-keys; check that OPENAI_API_KEY holds a valid key"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(404).set_body_json(error(
                "The model `gpt-5-mega` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )),
            Expect::Permanent("does not exist or you do not have access to it; check the model"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(429)
                .insert_header("retry-after", "2")
                .insert_header("x-ratelimit-reset-requests", "6m0s")
                .set_body_json(error(
                    "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.",
                    "requests",
                    "rate_limit_exceeded",
                )),
            Expect::RateLimited(Some(2000), "Rate limit reached"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(429)
                .insert_header("x-ratelimit-remaining-tokens", "0")
                .insert_header("x-ratelimit-reset-tokens", "1.5s")
                .set_body_json(error(
                    "Rate limit reached on tokens per min (TPM)",
                    "tokens",
                    "rate_limit_exceeded",
                )),
            Expect::RateLimited(Some(1500), "tokens per min"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(429).set_body_json(error(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            )),
            Expect::Permanent("You exceeded your current quota"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(500).set_body_json(error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                "",
            )),
            Expect::Transient(None, "HTTP 500 server_error: The server had an error"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(503).set_body_string("upstream connect error or disconnect/reset before headers"),
            Expect::Transient(None, "HTTP 503: upstream connect error"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(200).set_body_raw(
                r#"{"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assist"#,
                "application/json",
            ),
            Expect::Unsettled("truncated or invalid JSON"),
        )
        .await;
        check_failure(
            openai,
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": []})),
            Expect::Permanent("openai returned no choices"),
        )
        .await;
        let azure = |server: &MockServer| provider(ProviderKind::AzureOpenai, &server.uri());
        check_failure(
            azure,
            ResponseTemplate::new(401).set_body_json(json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}})),
            Expect::Permanent("azure-openai returned HTTP 401 401: Access denied due to invalid subscription key"),
        )
        .await;
        check_failure(
            azure,
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "800")
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"code": "429", "message": "Requests to the ChatCompletions_Create Operation have exceeded the token rate limit."}})),
            Expect::RateLimited(Some(800), "exceeded the token rate limit"),
        )
        .await;
    }

    #[tokio::test]
    async fn connection_refused_is_transient() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let provider = provider(ProviderKind::Openai, &format!("http://{address}/v1"));
        match provider.complete(&request()).await {
            Err(ProviderError::Transient {
                message,
                retry_after_ms: None,
            }) => {
                assert!(message.starts_with("openai: error sending request"), "{message}");
            }
            other => panic!("expected a transient error, got {other:?}"),
        }
    }

    #[test]
    fn configuration_errors_exit_2() {
        #[track_caller]
        fn check(result: Result<OpenAiProvider, Error>, expected: &str) {
            let error = result.unwrap_err();
            assert_eq!(error.exit_code(), crate::error::exit::USAGE, "{error}");
            let text = error.to_string();
            assert!(text.contains(expected), "{text}");
        }
        let unset = "PROMPTGATE_TEST_SURELY_UNSET_VARIABLE";
        let mut openai = spec(ProviderKind::Openai, None);
        openai.api_key_env = Some(unset.to_owned());
        check(
            OpenAiProvider::from_spec(&openai),
            "the environment variable `PROMPTGATE_TEST_SURELY_UNSET_VARIABLE` is not set",
        );
        let mut compatible = spec(ProviderKind::OpenaiCompatible, Some("http://127.0.0.1:1/v1"));
        compatible.api_key_env = Some(unset.to_owned());
        check(
            OpenAiProvider::from_spec(&compatible),
            "hint: export PROMPTGATE_TEST_SURELY_UNSET_VARIABLE=",
        );
        let no_key = |spec: &ProviderSpec| OpenAiProvider::with_key(spec, None);
        check(no_key(&spec(ProviderKind::OpenaiCompatible, None)), "needs `base_url`");
        check(
            no_key(&spec(ProviderKind::OpenaiCompatible, Some("localhost:8000"))),
            "is not an http(s) URL",
        );
        let mut azure = spec(ProviderKind::AzureOpenai, Some("https://acme.openai.azure.com"));
        check(no_key(&azure), "needs `deployment`");
        azure.deployment = Some("gpt4o".to_owned());
        check(no_key(&azure), "needs `api_version`");
        azure.base_url = None;
        check(no_key(&azure), "needs `base_url`");
    }

    #[test]
    fn debug_output_hides_the_key() {
        for kind in [
            ProviderKind::Openai,
            ProviderKind::AzureOpenai,
            ProviderKind::OpenaiCompatible,
        ] {
            let debug = format!("{:?}", provider(kind, "http://127.0.0.1:9/v1"));
            assert!(!debug.contains("SECRET"), "{debug}");
            assert!(debug.contains("127.0.0.1:9"), "{debug}");
        }
    }
}
