//! Providers: the boundary where a rendered prompt becomes a model call.
//!
//! Every provider implements [`Provider`]. The runner never knows which API sits behind it;
//! adding a provider touches one file plus its registration in [`build`].

pub mod mock;
pub mod pricing;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message, already rendered from the prompt template.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// One model call, fully resolved: the same request always means the same call
/// (the cache key of a later issue is derived from it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    /// Seed for providers that accept one (and for the mock's randomness). Derived from the
    /// case and the repeat index, so repeats differ and reruns repeat.
    pub seed: u64,
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
    /// Retrying cannot help: bad request, authentication, unknown model.
    #[error("{message}")]
    Permanent { message: String },
    /// The call exceeded its deadline.
    #[error("timed out after {after_ms} ms")]
    Timeout { after_ms: u64 },
}

#[async_trait]
pub trait Provider: Send + Sync {
    /// Short name for reports and errors, e.g. `mock` or `openai`.
    fn kind(&self) -> &'static str;

    /// Whether spend through this provider is simulated (reported as such, never billed).
    fn simulated(&self) -> bool {
        false
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError>;
}

/// Builds the provider a suite entry describes.
pub fn build(spec: &crate::suite::ProviderSpec) -> Result<std::sync::Arc<dyn Provider>, crate::error::Error> {
    use crate::suite::ProviderKind;
    match spec.kind {
        ProviderKind::Mock => Ok(std::sync::Arc::new(mock::MockProvider::new())),
        other => Err(crate::error::Diagnostic::new(format!(
            "provider `{}` has type `{}`, which this build of promptgate cannot call yet",
            spec.name,
            other.as_str()
        ))
        .hint("only the offline `mock` provider is available in this version; set `defaults: {provider: NAME}` to a provider of `type: mock`")
        .into()),
    }
}
