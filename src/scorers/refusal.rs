//! Refusals: an output that declines to answer ("I'm sorry, but I can't help with that", "As
//! an AI, I cannot…", "I don't have information about that").
//!
//! A refusal says so up front, so only the opening of the output is read
//! ([`OPENING_CHARS`]): an answer that later says "I can't guarantee delivery by Friday" is
//! not one. The phrases are English; an output in another language is never a refusal here.

use std::sync::LazyLock;

use regex::Regex;

/// How much of the output's start is searched.
pub const OPENING_CHARS: usize = 300;

/// Whether `output` opens by declining to answer.
pub fn is_refusal(output: &str) -> bool {
    static REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
        let cannot = r"(?:can't|cannot|can not|won't|will not|am unable to|'m unable to|am not able to|'m not able to)";
        let act = r"(?:help|assist|provide|answer|comply|do that|share|support|fulfil|fulfill|give|discuss|create|generate|write|respond|engage)";
        let patterns = [
            // "I'm sorry, but I can't …", "I am afraid I don't have …"
            format!(r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:{cannot}|don't have|do not have)\b"),
            // "I can't help with that", "I won't provide …"
            format!(r"\bI {cannot} {act}\b"),
            format!(r"\bI(?:'m| am) (?:unable|not able|not allowed|not permitted) to {act}\b"),
            r"\bI must (?:decline|refuse)\b".to_owned(),
            r"\bas an AI(?: language model| assistant)?,? I (?:can't|cannot|don't|do not|am not|'m not)\b".to_owned(),
            r"\bI don't have (?:any )?(?:information|access|details|data) (?:about|on|to|regarding|for)\b".to_owned(),
            r"\b(?:unfortunately|sorry),? I (?:can't|cannot)\b".to_owned(),
        ];
        Regex::new(&format!("(?i)(?:{})", patterns.join("|"))).expect("a valid regex")
    });
    // Typographic apostrophes, as models often write them.
    let opening: String = output
        .trim_start()
        .chars()
        .take(OPENING_CHARS)
        .map(|c| if c == '\u{2019}' { '\'' } else { c })
        .collect();
    REFUSAL.is_match(&opening)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals() {
        for text in [
            "I'm sorry, but I can't help with that.",
            "I’m sorry, I cannot provide legal advice.",
            "I am afraid I don't have access to your order history.",
            "I can't assist with creating malware.",
            "I won't provide instructions for that.",
            "I'm unable to answer questions about other customers.",
            "I must decline this request.",
            "As an AI language model, I cannot browse the internet.",
            "I'm sorry, I don't have information about that.",
            "Unfortunately, I can't share internal pricing.",
            crate::providers::mock::REFUSAL,
        ] {
            assert!(is_refusal(text), "{text:?} is a refusal");
        }
    }

    #[test]
    fn answers_that_apologise_or_mention_limits_are_not_refusals() {
        for text in [
            "I'm sorry to hear your boots arrived late! You can return them within 30 days.",
            "I'm sorry for the trouble — we can't ship to PO boxes, but a street address works.",
            "Sure! I can help with that: refunds take 5-7 business days.",
            "I can't wait for you to try them on the trail.",
            "Refunds take 5-7 business days.",
            "Our warranty covers defects for two years. ".repeat(8).as_str(),
            // Past the opening: an answer that mentions a limit later is an answer.
            &format!(
                "{} I can't guarantee delivery by Friday.",
                "Orders ship within a day. ".repeat(13)
            ),
            "",
        ] {
            assert!(!is_refusal(text), "{text:?} is not a refusal");
        }
    }
}
