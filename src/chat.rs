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
