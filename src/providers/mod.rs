//! Providers: the boundary where a rendered prompt becomes a model call.
//!
//! Every provider implements [`Provider`]. The runner never knows which API sits behind it;
//! adding a provider touches one file plus its registration in [`build`].

pub mod anthropic;
pub mod batch;
pub mod exec;
pub mod http;
pub mod mock;
pub mod openai;
pub mod pricing;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::results::Name;

pub use crate::chat::{Message, Role};

// A response's text is never longer than what `calls.jsonl` is sized to read back (a batch's
// answers, read from one large file, are checked one by one in `runner::batch`).
const _: () = assert!(
    http::MAX_BODY as u64 <= crate::results::LONGEST_OUTPUT
        && exec::MAX_STDOUT as u64 <= crate::results::LONGEST_OUTPUT
);

/// How a judge's system prompt starts (`scorers::judge`): the mock answers such a prompt as a
/// judge would, offline.
pub const JUDGE_MARK: &str = "You are promptgate's evaluation judge.";

/// Names the nonce of a judge prompt's section delimiters in its system prompt
/// (`scorers::judge::Fence`): the word after it is the nonce.
pub const JUDGE_FENCE: &str = "delimiter nonce:";

/// The text of section `tag` of a judge's question, fenced by `nonce`
/// (`<tag-NONCE>` … `</tag-NONCE>`), trimmed; `None` when there is no such section.
pub fn judge_section<'a>(question: &'a str, tag: &str, nonce: &str) -> Option<&'a str> {
    let open = format!("<{tag}-{nonce}>");
    let start = question.find(&open)? + open.len();
    let end = start + question[start..].find(&format!("</{tag}-{nonce}>"))?;
    Some(question[start..end].trim())
}

/// The nonce a judge's system prompt names after [`JUDGE_FENCE`].
pub fn judge_nonce(system: &str) -> Option<&str> {
    let after = &system[system.find(JUDGE_FENCE)? + JUDGE_FENCE.len()..];
    after
        .split(|c: char| !c.is_ascii_hexdigit())
        .find(|word| !word.is_empty())
}

/// What the requests of one arm share: the model and its settings. A plan holds a request a
/// call until it is sent, so these are held once a variant, not once a call (at a hundred
/// thousand calls, 7 MB); a request reads them as its own fields ([`Request`] derefs to them),
/// and setting one copies them first, so a request changed alone changes alone.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Shared: a plan holds every request until it is sent, and they name a few models.
    pub model: Name,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    /// Penalties and stop sequences, when the variant sets any (absent from the serialized
    /// request otherwise).
    pub sampling: Option<Arc<crate::chat::Sampling>>,
    /// Ask for a JSON object (a judge's reply) through the provider's JSON mode, where it has
    /// one. Left out of the serialized request when false, so the cache keys of ordinary calls
    /// do not change.
    pub json: bool,
    /// The JSON Schema of the object `json` asks for, for a provider that enforces a schema
    /// rather than a JSON mode: Anthropic, whose judge call is a forced tool call with it as
    /// the tool's `input_schema`. Left out of the serialized request when absent.
    pub json_schema: Option<Box<serde_json::Value>>,
    /// Embed the last message's text through the provider's embeddings endpoint instead of
    /// completing the messages ([`Provider::embed`]): the response's text is the vector, a
    /// JSON array of numbers, so an embedding is cached, journaled and budgeted like any call.
    /// Left out of the serialized request when false.
    pub embed: bool,
}

impl Settings {
    /// `model` with every setting the provider's default: no sampling settings, no output
    /// limit, no JSON mode.
    pub fn of(model: &str) -> Settings {
        Settings {
            model: model.into(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            sampling: None,
            json: false,
            json_schema: None,
            embed: false,
        }
    }
}

/// One model call, fully resolved: the same request always means the same call
/// (the cache key of a later issue is derived from it). Serialized as one object: the model,
/// the messages, the settings, the seed, in that order (its JSON is the cache key).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "Fields")]
pub struct Request {
    /// Shared by the requests of an arm (see [`Settings`]); read through `Deref`.
    settings: Arc<Settings>,
    /// Shared by the repeats of a case (and by both arms when they render alike).
    pub messages: Arc<[Message]>,
    /// Seed for providers that accept one (and for the mock's randomness). Derived from the
    /// case and the repeat index, so repeats differ and reruns repeat.
    pub seed: u64,
}

impl std::ops::Deref for Request {
    type Target = Settings;
    fn deref(&self) -> &Settings {
        &self.settings
    }
}

impl std::ops::DerefMut for Request {
    /// Copies the settings first when other requests share them.
    fn deref_mut(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }
}

/// A request as it is read: every field at the top level.
#[derive(Deserialize)]
struct Fields {
    model: Name,
    messages: Arc<[Message]>,
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    top_p: Option<f64>,
    #[serde(default, flatten, deserialize_with = "crate::chat::Sampling::deserialize_shared")]
    sampling: Option<Arc<crate::chat::Sampling>>,
    seed: u64,
    #[serde(default)]
    json: bool,
    #[serde(default)]
    json_schema: Option<Box<serde_json::Value>>,
    #[serde(default)]
    embed: bool,
}

/// A request as it is written: every field at the top level, in the order of the cache keys
/// written before the settings were shared, and the settings left at their default left out.
#[derive(Serialize)]
struct Written<'a> {
    model: &'a Name,
    messages: &'a [Message],
    temperature: Option<f64>,
    max_tokens: Option<u32>,
    top_p: Option<f64>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    sampling: Option<&'a crate::chat::Sampling>,
    seed: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    json: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    embed: bool,
}

impl From<Fields> for Request {
    fn from(f: Fields) -> Request {
        let settings = Settings {
            model: f.model,
            temperature: f.temperature,
            max_tokens: f.max_tokens,
            top_p: f.top_p,
            sampling: f.sampling,
            json: f.json,
            json_schema: f.json_schema,
            embed: f.embed,
        };
        Request::new(Arc::new(settings), f.messages, f.seed)
    }
}

impl Serialize for Request {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let s = &*self.settings;
        Written {
            model: &s.model,
            messages: &self.messages,
            temperature: s.temperature,
            max_tokens: s.max_tokens,
            top_p: s.top_p,
            sampling: s.sampling.as_deref(),
            seed: self.seed,
            json: s.json,
            json_schema: s.json_schema.as_deref(),
            embed: s.embed,
        }
        .serialize(serializer)
    }
}

impl Request {
    /// A request of `messages` with `settings` (shared with the other requests of its arm).
    pub fn new(settings: Arc<Settings>, messages: Arc<[Message]>, seed: u64) -> Request {
        Request {
            settings,
            messages,
            seed,
        }
    }

    /// A request of `messages` to `model` with every setting the provider's default: no
    /// sampling settings, no output limit, seed 0, no JSON mode.
    pub fn chat(model: &str, messages: Arc<[Message]>) -> Request {
        Request::new(Arc::new(Settings::of(model)), messages, 0)
    }

    /// The request that embeds `text` with `model` (see [`Settings::embed`]).
    pub fn embedding(model: &str, text: &str) -> Request {
        let messages = vec![Message {
            role: Role::User,
            content: text.into(),
        }];
        let settings = Settings {
            // Embeddings have no output tokens: the budget's upper bound counts none.
            max_tokens: Some(0),
            embed: true,
            ..Settings::of(model)
        };
        Request::new(Arc::new(settings), messages.into(), 0)
    }

    /// The settings this request shares with the others of its arm.
    pub fn settings(&self) -> &Arc<Settings> {
        &self.settings
    }

    /// The text an embedding request embeds.
    pub fn embedded_text(&self) -> &str {
        self.messages.last().map_or("", |m| m.content.as_ref())
    }
}

/// Token usage as the provider reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input: u64,
    pub cached_input: u64,
    pub output: u64,
}

/// A successful completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub text: String,
    pub usage: Usage,
    /// Latency the provider itself determines (the mock simulates one). `None` means the
    /// runner measures wall-clock time around the call.
    pub latency_ms: Option<f64>,
}

/// Why a call failed. The runner decides on retries from the kind alone.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying: rate limits, 5xx, connection errors, truncated bodies.
    #[error("{message}")]
    Transient {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The provider asked to slow down: HTTP 429 (one no wait cures, a spent quota, is
    /// permanent), or another passing failure that names a wait (a 503 with `Retry-After`, a
    /// limit its headers say is exhausted). Retried after the wait; the adaptive concurrency
    /// halves on it.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// Retrying cannot help: bad request, authentication, unknown model.
    #[error("{message}")]
    Permanent { message: String },
    /// The call exceeded its deadline.
    #[error("timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
    /// The request reached the provider, but no answer could be read: a successful body cut
    /// short or mangled, a connection broken after the request was sent. Retried as a
    /// transient failure, but, as a timeout, the provider may have billed it in full (the
    /// budget's cap keeps its worst case).
    #[error("{message}")]
    Unsettled { message: String },
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for reports and errors, e.g. `mock` or `openai`.
    fn kind(&self) -> &'static str;

    /// Whether spend through this provider is simulated (reported as such, never billed).
    fn simulated(&self) -> bool {
        false
    }

    /// The output limit this provider sends for a request that sets none, when its API needs
    /// one (Anthropic's); `None` when such a request goes without a limit.
    fn default_output_limit(&self) -> Option<u32> {
        None
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError>;

    /// The provider's batch API (`promptgate run --batch`), when it has one.
    fn batch(&self) -> Option<&dyn batch::BatchApi> {
        None
    }

    /// Embeds [`Request::embedded_text`]: the response's text is the vector as a JSON array.
    /// Loading refuses an embedder whose type has no embeddings endpoint
    /// (`suite::ProviderKind::has_embeddings`), so this default is never reached from a suite.
    async fn embed(&self, _request: &Request) -> Result<Response, ProviderError> {
        Err(ProviderError::Permanent {
            message: format!("provider type `{}` has no embeddings endpoint", self.kind()),
        })
    }
}

/// Builds the provider a suite entry describes.
///
/// Configuration mistakes (a missing key variable, `deployment`, `command`, a malformed
/// `base_url`, a setting the type does not use) are input errors, exit 2: no call is made.
pub fn build(spec: &crate::suite::ProviderSpec) -> Result<std::sync::Arc<dyn Provider>, crate::error::Error> {
    build_in(spec, None)
}

/// [`build`], with the folder an `exec` command runs in (its arm's tree); `None` runs it in
/// promptgate's own working directory. Other types ignore it.
pub fn build_in(
    spec: &crate::suite::ProviderSpec,
    workdir: Option<&std::path::Path>,
) -> Result<std::sync::Arc<dyn Provider>, crate::error::Error> {
    use crate::suite::ProviderKind;
    check_settings_apply(spec)?;
    Ok(match spec.kind {
        ProviderKind::Mock => std::sync::Arc::new(mock::MockProvider::new()),
        ProviderKind::Openai | ProviderKind::AzureOpenai | ProviderKind::OpenaiCompatible => {
            std::sync::Arc::new(openai::OpenAiProvider::from_spec(spec)?)
        }
        ProviderKind::Anthropic => std::sync::Arc::new(anthropic::AnthropicProvider::from_spec(spec)?),
        ProviderKind::Exec => std::sync::Arc::new(exec::ExecProvider::from_spec(spec)?.in_dir(workdir)),
    })
}

/// Checks a provider entry as [`build_in`] would build it (its type's required settings, a
/// `base_url` of http(s), settings another type reads) without reading its key or starting
/// anything: what `promptgate validate` reports before a run would fail on it.
pub fn check(spec: &crate::suite::ProviderSpec) -> Result<(), crate::error::Error> {
    use crate::suite::ProviderKind;
    check_settings_apply(spec)?;
    match spec.kind {
        ProviderKind::Mock => {}
        ProviderKind::Openai | ProviderKind::AzureOpenai | ProviderKind::OpenaiCompatible => {
            openai::OpenAiProvider::with_key(spec, None)?;
        }
        ProviderKind::Anthropic => {
            anthropic::AnthropicProvider::with_key(spec, None)?;
        }
        ProviderKind::Exec => {
            exec::ExecProvider::from_spec(spec)?;
        }
    }
    Ok(())
}

/// Rejects settings that only another provider type reads: a `deployment` on an `openai`
/// entry means the user meant `azure-openai`, and silently ignoring it would call the wrong
/// model.
fn check_settings_apply(spec: &crate::suite::ProviderSpec) -> Result<(), crate::error::Error> {
    use crate::suite::ProviderKind;
    let kind = spec.kind;
    let misplaced = [
        (
            "deployment",
            spec.deployment.is_some() && kind != ProviderKind::AzureOpenai,
            "azure-openai",
        ),
        (
            "api_version",
            spec.api_version.is_some() && kind != ProviderKind::AzureOpenai,
            "azure-openai",
        ),
        ("command", spec.command.is_some() && kind != ProviderKind::Exec, "exec"),
        (
            "base_url",
            spec.base_url.is_some() && matches!(kind, ProviderKind::Exec | ProviderKind::Mock),
            "openai, anthropic, azure-openai and openai-compatible",
        ),
        (
            "api_key_env",
            spec.api_key_env.is_some() && kind == ProviderKind::Exec,
            "the HTTP provider types",
        ),
        ("env", !spec.env.is_empty() && kind != ProviderKind::Exec, "exec"),
    ];
    match misplaced.into_iter().find(|(_, wrong, _)| *wrong) {
        Some((field, _, owners)) => Err(crate::error::Diagnostic::new(format!(
            "provider `{}` has type `{}`, which does not use `{field}`",
            spec.name,
            kind.as_str()
        ))
        .hint(format!(
            "`{field}` applies to type {owners}; remove it or change the type"
        ))
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::ProviderKind;

    #[track_caller]
    fn check(spec: crate::suite::ProviderSpec, expected: Result<&str, &str>) {
        match (build(&spec), expected) {
            (Ok(provider), Ok(kind)) => assert_eq!(provider.kind(), kind),
            (Err(error), Err(fragment)) => {
                assert_eq!(error.exit_code(), crate::error::exit::USAGE, "{error}");
                assert!(error.to_string().contains(fragment), "{error}");
            }
            (Ok(provider), Err(fragment)) => panic!("built `{}`, expected an error with {fragment:?}", provider.kind()),
            (Err(error), Ok(kind)) => panic!("expected `{kind}`, got {error}"),
        }
    }

    /// A request's JSON is its cache key: its fields, their order and what is left out are
    /// fixed (the literals were written by the serializer before the variant's settings were
    /// shared, and must not move, or every cached answer is lost).
    #[test]
    fn a_request_serializes_to_the_same_json_whatever_it_shares() {
        let messages: Arc<[Message]> = vec![
            Message {
                role: Role::System,
                content: "Be brief.".into(),
            },
            Message {
                role: Role::User,
                content: "Hi".into(),
            },
        ]
        .into();
        let plain = Request::chat("m", Arc::clone(&messages));
        let plain_json = r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":null,"max_tokens":null,"top_p":null,"seed":0}"#;
        assert_eq!(serde_json::to_string(&plain).unwrap(), plain_json);
        let sampling = crate::chat::Sampling {
            frequency_penalty: Some(0.5),
            presence_penalty: None,
            stop: Some(vec!["END".to_owned()]),
        };
        let mut full = Request::chat("m", messages);
        full.temperature = Some(0.7);
        full.max_tokens = Some(64);
        full.top_p = Some(0.9);
        full.sampling = sampling.shared();
        full.seed = 42;
        full.json = true;
        full.json_schema = Some(Box::new(serde_json::json!({"type": "object"})));
        let full_json = r#"{"model":"m","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"temperature":0.7,"max_tokens":64,"top_p":0.9,"frequency_penalty":0.5,"stop":["END"],"seed":42,"json":true,"json_schema":{"type":"object"}}"#;
        assert_eq!(serde_json::to_string(&full).unwrap(), full_json);
        let embedding = Request::embedding("e", "text");
        let embedding_json = r#"{"model":"e","messages":[{"role":"user","content":"text"}],"temperature":null,"max_tokens":0,"top_p":null,"seed":0,"embed":true}"#;
        assert_eq!(serde_json::to_string(&embedding).unwrap(), embedding_json);
        // And each reads back as the request it was.
        for (request, json) in [(&plain, plain_json), (&full, full_json), (&embedding, embedding_json)] {
            assert_eq!(&serde_json::from_str::<Request>(json).unwrap(), request);
        }
    }

    /// The requests of an arm hold its settings once; one changed alone (the runner's output
    /// limit under a spend cap, a test's own setting) changes alone.
    #[test]
    fn requests_share_their_arm_s_settings_and_a_change_copies_them() {
        let settings = Arc::new(Settings {
            temperature: Some(0.7),
            ..Settings::of("m")
        });
        let messages: Arc<[Message]> = vec![Message {
            role: Role::User,
            content: "Hi".into(),
        }]
        .into();
        let one = Request::new(Arc::clone(&settings), Arc::clone(&messages), 1);
        let mut two = Request::new(Arc::clone(&settings), messages, 2);
        assert!(Arc::ptr_eq(one.settings(), two.settings()));
        // A plan holds a request a call: its settings a pointer, its messages the case's.
        #[cfg(target_pointer_width = "64")]
        assert!(
            std::mem::size_of::<Request>() <= 32,
            "{}",
            std::mem::size_of::<Request>()
        );
        two.max_tokens = Some(10);
        assert!(!Arc::ptr_eq(one.settings(), two.settings()));
        assert_eq!((one.max_tokens, two.max_tokens), (None, Some(10)));
        assert_eq!(
            (one.temperature, two.temperature, settings.max_tokens),
            (Some(0.7), Some(0.7), None)
        );
    }

    #[test]
    fn builds_every_type_and_rejects_settings_of_other_types() {
        use http::tests::spec;
        check(spec(ProviderKind::Mock, None), Ok("mock"));
        check(
            spec(ProviderKind::OpenaiCompatible, Some("http://127.0.0.1:11434/v1")),
            Ok("openai-compatible"),
        );
        let mut exec = spec(ProviderKind::Exec, None);
        exec.command = Some(vec!["python3".to_owned(), "answer.py".to_owned()]);
        check(exec.clone(), Ok("exec"));
        let unset = Some("PROMPTGATE_TEST_SURELY_UNSET_VARIABLE".to_owned());
        for kind in [ProviderKind::Openai, ProviderKind::Anthropic, ProviderKind::AzureOpenai] {
            let mut needs_key = spec(kind, Some("https://example.com"));
            needs_key.api_key_env = unset.clone();
            needs_key.deployment = (kind == ProviderKind::AzureOpenai).then(|| "d".to_owned());
            needs_key.api_version = (kind == ProviderKind::AzureOpenai).then(|| "2024-10-21".to_owned());
            check(needs_key, Err("`PROMPTGATE_TEST_SURELY_UNSET_VARIABLE` is not set"));
        }
        let mut openai = spec(ProviderKind::Openai, None);
        openai.deployment = Some("gpt-4o".to_owned());
        check(openai, Err("type `openai`, which does not use `deployment`"));
        exec.base_url = Some("http://x".to_owned());
        check(exec, Err("does not use `base_url`"));
        let mut mock = spec(ProviderKind::Mock, None);
        mock.command = Some(vec!["true".to_owned()]);
        check(mock, Err("hint: `command` applies to type exec"));
    }
}
