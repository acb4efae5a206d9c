//! Token counts before a call, for the budget estimate.
//!
//! OpenAI models are counted with their own tokenizer (tiktoken's BPE tables are compiled into
//! the binary: no download). Other models (Anthropic, open models behind an OpenAI-compatible
//! server) have no offline tokenizer, so their counts are an estimate at four characters a
//! token, and say so.

use std::collections::HashMap;

use tiktoken_rs::CoreBPE;

use crate::chat::Message;

/// A token count and whether it came from the model's own tokenizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub tokens: u64,
    pub exact: bool,
}

/// Counts tokens of many requests, remembering the count of the message texts it met lately
/// (a suite's system prompt repeats in every call). The memory is bounded: a plan of a hundred
/// thousand calls has as many distinct texts, each counted once anyway (the plan's distinct
/// requests are), and remembering them all held about a hundred bytes a call while the
/// estimate ran. Full, it starts again: a text that repeats is counted again once a
/// [`Counter::REMEMBERED`] texts.
pub struct Counter {
    /// Per model (a plan names a few), its texts' counts.
    memo: Vec<(String, HashMap<std::sync::Arc<str>, u64>)>,
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

impl Counter {
    /// The texts a model's memory holds before it starts again.
    const REMEMBERED: usize = 4096;

    pub fn new() -> Self {
        Counter { memo: Vec::new() }
    }

    /// Input tokens of a chat request to `model`.
    ///
    /// For OpenAI chat models each message costs 3 tokens of framing and the reply is primed
    /// with 3 more (OpenAI cookbook, "How to count tokens with tiktoken"); the estimate uses
    /// the same framing.
    pub fn messages(&mut self, model: &str, messages: &[Message]) -> Count {
        let bpe = bpe_for(model);
        let at = match self.memo.iter().position(|(m, _)| m == model) {
            Some(at) => at,
            None => {
                self.memo.push((model.to_owned(), HashMap::new()));
                self.memo.len() - 1
            }
        };
        let memo = &mut self.memo[at].1;
        let mut total = 3;
        for m in messages {
            let n = match memo.get(&m.content) {
                Some(n) => *n,
                None => {
                    let n = match bpe {
                        Some(bpe) => bpe.encode_ordinary(&m.content).len() as u64,
                        None => estimate(&m.content),
                    };
                    if memo.len() >= Self::REMEMBERED {
                        memo.clear();
                    }
                    memo.insert(m.content.clone(), n);
                    n
                }
            };
            total += 3 + n;
        }
        Count {
            tokens: total,
            exact: bpe.is_some(),
        }
    }
}

/// At least [`Counter::messages`]'s count, without loading a tokenizer table: a model with a
/// tokenizer has every byte of its messages counted as a token (a BPE token is at least one
/// byte of the text it encodes), any other model the same estimate as there.
pub fn messages_bound(model: &str, messages: &[Message]) -> Count {
    let exact = tiktoken_rs::tokenizer::get_tokenizer(model).is_some();
    let tokens = messages
        .iter()
        .map(|m| {
            3 + if exact {
                m.content.len() as u64
            } else {
                estimate(&m.content)
            }
        })
        .sum::<u64>();
    Count {
        tokens: 3 + tokens,
        exact,
    }
}

/// Four characters a token: the usual rule of thumb for English text with OpenAI and
/// Anthropic tokenizers.
pub const CHARS_PER_TOKEN: usize = 4;

/// A text's tokens at [`CHARS_PER_TOKEN`], rounded up.
pub fn estimate(text: &str) -> u64 {
    text.chars().count().div_ceil(CHARS_PER_TOKEN) as u64
}

/// The messages' tokens by [`estimate`], plus four tokens of framing per message: what the
/// runner's token buckets take for a request before it is sent, without a tokenizer's cost.
pub fn estimate_messages(messages: &[Message]) -> u64 {
    messages.iter().map(|m| estimate(&m.content) + 4).sum()
}

/// Loads the tokenizer tables of `models` on a thread of their own. Building a table takes a
/// noticeable part of a second; started as soon as the models are known, it overlaps the work
/// before the estimate (rendering the requests, the cache identities), and the estimate finds
/// it ready, or waits only for the rest of it.
pub fn preload<'m>(models: impl IntoIterator<Item = &'m str>) {
    let mut tables = Vec::new();
    for table in models.into_iter().filter_map(tiktoken_rs::tokenizer::get_tokenizer) {
        if !tables.contains(&table) {
            tables.push(table);
        }
    }
    if tables.is_empty() {
        return;
    }
    // Without a thread the estimate loads them itself, as it always could.
    let _ = std::thread::Builder::new()
        .name("tokenizer-load".to_owned())
        .spawn(move || {
            for table in tables {
                let _ = tiktoken_rs::bpe_for_tokenizer(table);
            }
        });
}

fn bpe_for(model: &str) -> Option<&'static CoreBPE> {
    tiktoken_rs::tokenizer::get_tokenizer(model).and_then(|t| tiktoken_rs::bpe_for_tokenizer(t).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    fn user(text: &str) -> Message {
        Message {
            role: Role::User,
            content: text.into(),
        }
    }

    #[track_caller]
    fn check(model: &str, text: &str, tokens: u64, exact: bool) {
        let got = Counter::new().messages(model, &[user(text)]);
        // 3 tokens of reply priming + 3 of framing for the one message.
        assert_eq!(
            got,
            Count {
                tokens: tokens + 6,
                exact
            },
            "{model}: {text:?}"
        );
    }

    #[test]
    fn counts() {
        // OpenAI cookbook "How to count tokens with tiktoken":
        // tiktoken.get_encoding("cl100k_base").encode("tiktoken is great!")
        //   -> [83, 1609, 5963, 374, 2294, 0]
        check("gpt-4-turbo", "tiktoken is great!", 6, true);
        // len(tiktoken.get_encoding("o200k_base").encode("hello world")) -> 2
        check("gpt-4o-mini", "hello world", 2, true);
        // No offline tokenizer: 18 characters at four a token.
        check("claude-3-5-haiku", "tiktoken is great!", 5, false);
        check("my-local-llama", "", 0, false);
    }

    #[test]
    fn the_estimate_adds_four_tokens_of_framing_a_message() {
        // 18 characters are 5 tokens, the empty message none: each with 4 of framing.
        assert_eq!(estimate_messages(&[user("tiktoken is great!"), user("")]), 5 + 4 + 4);
        assert_eq!(estimate_messages(&[]), 0);
    }

    #[test]
    fn repeated_texts_are_counted_once_and_the_same() {
        let mut c = Counter::new();
        let a = c.messages("gpt-4o", &[user("same system prompt"), user("q1")]);
        let b = c.messages("gpt-4o", &[user("same system prompt"), user("q1")]);
        assert_eq!(a, b);
        assert_eq!(c.memo.len(), 1);
        assert_eq!(c.memo[0].1.len(), 2);
    }

    #[test]
    fn the_memory_of_texts_is_bounded_and_counts_stay_the_same() {
        let mut c = Counter::new();
        for i in 0..=2 * Counter::REMEMBERED {
            let messages = [user("same system prompt"), user(&format!("q{i}"))];
            assert_eq!(
                c.messages("gpt-4o", &messages),
                Counter::new().messages("gpt-4o", &messages),
                "q{i}"
            );
            assert!(c.memo[0].1.len() <= Counter::REMEMBERED);
        }
    }

    #[test]
    fn the_bound_is_never_below_the_count() {
        // Bytes bound tokens: "hello world" is 11 bytes, 2 tokens (see `counts`), and a
        // multi-byte text's bytes still bound it.
        let texts = [
            "hello world",
            "tiktoken is great!",
            "",
            "Ünïcödé — 30 days ✓",
            "a\nb\n\n  c",
        ];
        for model in ["gpt-4o-mini", "gpt-4-turbo", "claude-3-5-haiku"] {
            let messages: Vec<Message> = texts.iter().map(|t| user(t)).collect();
            let (count, bound) = (
                Counter::new().messages(model, &messages),
                messages_bound(model, &messages),
            );
            assert!(bound.tokens >= count.tokens, "{model}: {bound:?} < {count:?}");
            assert_eq!(bound.exact, count.exact, "{model}");
        }
        // 11 bytes + 3 framing + 3 priming, and a model without a tokenizer gets the estimate.
        assert_eq!(messages_bound("gpt-4o-mini", &[user("hello world")]).tokens, 17);
        assert_eq!(
            messages_bound("claude-3-5-haiku", &[user("tiktoken is great!")]),
            Counter::new().messages("claude-3-5-haiku", &[user("tiktoken is great!")])
        );
    }
}
