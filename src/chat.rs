//! Chat messages: what a prompt template renders to and what a provider sends. At the bottom of
//! the house so that `suite` (which renders them) and `providers` (which send them) both use it
//! without importing each other.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Who speaks a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message, already rendered from the prompt template. The content is shared: a
/// plan holds a message for every call, and most are equal to another's (the system prompt
/// of every case, the user message both arms send), so equal contents are one allocation
/// (see `plan::jobs`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: Arc<str>,
}

/// The sampling settings a variant rarely sets besides temperature and top_p: OpenAI's
/// penalties and stop sequences. One per variant, shared by every request of it (a plan holds
/// every request until it is sent); a request of a variant that sets none carries none, so
/// the cache keys of the requests that never had them do not change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Sequences that end the answer where they first appear (at most 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
}

impl Sampling {
    /// The settings, shared, or `None` when none is set.
    pub fn shared(self) -> Option<Arc<Sampling>> {
        (self != Sampling::default()).then(|| Arc::new(self))
    }

    /// Reads the settings flattened into a request: a request written without any (every
    /// request but a few variants') reads back as `None`, equal to the one planned, not as a
    /// set of none.
    pub fn deserialize_shared<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Arc<Sampling>>, D::Error> {
        Ok(Sampling::deserialize(d)?.shared())
    }
}
