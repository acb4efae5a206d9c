//! Turning parser errors (YAML, JSON, CSV) into diagnostics with a location and a hint.

use crate::error::{Diagnostic, did_you_mean};

/// A diagnostic for a YAML file that failed to parse or did not fit the expected shape.
pub fn yaml_diagnostic(file: &str, text: &str, err: &serde_saphyr::Error, what: &str) -> Diagnostic {
    let rendered = err.without_snippet().to_string();
    let first = rendered.lines().next().unwrap_or("invalid YAML");
    let message = strip_location_prefix(first.strip_prefix("error: ").unwrap_or(first));
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    let diagnostic = Diagnostic::new(format!("{message} (expected {what})")).in_file(file).at(text, line, column);
    with_serde_hint(diagnostic, message)
}

/// Adds a "did you mean" hint to serde's "unknown field/variant" messages, or a generic one.
pub fn with_serde_hint(diagnostic: Diagnostic, message: &str) -> Diagnostic {
    for marker in ["unknown field `", "unknown variant `"] {
        let Some(rest) = message.split_once(marker).map(|(_, r)| r) else {
            continue;
        };
        let Some((word, tail)) = rest.split_once('`') else {
            continue;
        };
        let expected: Vec<&str> = tail
            .split_once("expected")
            .map(|(_, e)| e)
            .unwrap_or("")
            .trim_start_matches(" one of")
            .split(',')
            .map(|s| s.trim().trim_matches('`'))
            .filter(|s| !s.is_empty())
            .collect();
        return match did_you_mean(word, expected.iter().copied()) {
            Some(s) => diagnostic.hint(format!("did you mean `{s}`?")),
            None if !expected.is_empty() => diagnostic.hint(format!("expected one of: {}", expected.join(", "))),
            None => diagnostic,
        };
    }
    if message.contains("missing field") {
        return diagnostic.hint("add the missing key; see the config shape in the README");
    }
    diagnostic
}

fn strip_location_prefix(message: &str) -> &str {
    // serde-saphyr prefixes "line N column M: "; the location is shown separately.
    if let Some(rest) = message.strip_prefix("line ") {
        if let Some((_, tail)) = rest.split_once(": ") {
            return tail;
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_gets_did_you_mean() {
        let d = with_serde_hint(Diagnostic::new("m"), "unknown field `temprature`, expected one of version, model, temperature");
        assert_eq!(d.hints, vec!["did you mean `temperature`?"]);
        let d = with_serde_hint(Diagnostic::new("m"), "unknown field `zzz`, expected one of `id`, `vars`");
        assert_eq!(d.hints, vec!["expected one of: id, vars"]);
        let d = with_serde_hint(Diagnostic::new("m"), "unknown variant `opnai`, expected one of `openai`, `mock`");
        assert_eq!(d.hints, vec!["did you mean `openai`?"]);
    }

    #[test]
    fn strips_location_prefix() {
        assert_eq!(strip_location_prefix("line 3 column 1: unknown field"), "unknown field");
        assert_eq!(strip_location_prefix("missing field `model`"), "missing field `model`");
    }
}
