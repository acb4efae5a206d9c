//! Turning parser errors (YAML, JSON, CSV) into diagnostics with a location and a hint.

use crate::error::{Diagnostic, did_you_mean};

/// A diagnostic for a YAML file that failed to parse or did not fit the expected shape.
///
/// serde-saphyr parses while it deserializes, so a syntax error late in the file can surface
/// first as a confusing shape error ("expected string scalar" for an unclosed `[`). When the
/// text is not valid YAML at all, the syntax error is reported instead.
pub fn yaml_diagnostic(file: &str, text: &str, err: &serde_saphyr::Error, what: &str) -> Diagnostic {
    // Nothing but comments, blank lines and document markers (an empty file is reported
    // before parsing).
    let empty = |l: &str| l.trim().is_empty() || matches!(l.trim(), "---" | "...") || l.trim_start().starts_with('#');
    if text.lines().all(empty) {
        return Diagnostic::new("the file has no content: only comments and blank lines".to_owned())
            .in_file(file)
            .hint("`promptgate init` writes a suite to start from; the README shows the shape");
    }
    if let Some(d) = special(file, text, err) {
        return d;
    }
    if let Err(syntax) = serde_saphyr::from_str::<serde::de::IgnoredAny>(text) {
        if let Some(d) = special(file, text, &syntax) {
            return d;
        }
        let message = format!("not valid YAML: {}", user_message(&syntax));
        // A number too large for a float, `.nan` or `.inf` is valid YAML that promptgate does
        // not take: no bracket is unclosed (the audit: `seed: 1e400` read so).
        if message.contains("non-finite") {
            return located(file, text, &syntax, message)
                .hint("write a finite number: `.nan`, `.inf` and numbers beyond about 1.8e308 are not taken");
        }
        return located(file, text, &syntax, message).hint(
            "look for an unclosed `[`, `{` or quote at or before this place, or indentation that does not line up",
        );
    }
    let message = user_message(err);
    let diagnostic = located(file, text, err, format!("{message} (expected {what})"));
    let diagnostic = with_serde_hint(diagnostic, &message);
    if !diagnostic.hints.is_empty() {
        return diagnostic;
    }
    if let Some(expected) = message.strip_prefix("this value is not ")
        && let Some(key) = key_before_caret(&diagnostic)
    {
        return diagnostic.hint(format!("`{key}` takes {expected}"));
    }
    if message.contains("percentage such as") {
        // The key the value belongs to: the last one written before the caret.
        let before = match (&diagnostic.source_line, diagnostic.column) {
            (Some(line), Some(column)) => line.chars().take(column.saturating_sub(1) as usize).collect::<String>(),
            _ => String::new(),
        };
        let slo = before
            .rfind("slo")
            .is_some_and(|at| before.rfind("margin").is_none_or(|m| m < at));
        return diagnostic.hint(if slo {
            "an objective is a number in the metric's unit (`slo: 800` for 800 ms), or a percentage for a rate (`slo: \"5%\"`)"
        } else {
            "a margin is an amount in the metric's unit (`0.02`) or a share of the baseline (`\"10%\"`)"
        });
    }
    diagnostic.hint(format!("this value does not fit {what}; see the shapes in the README"))
}

/// The key whose value the caret points at: the last `key:` written before it on its line.
fn key_before_caret(d: &Diagnostic) -> Option<String> {
    let (line, column) = (d.source_line.as_ref()?, d.column?);
    let before: String = line.chars().take(column.saturating_sub(1) as usize).collect();
    let before = before.trim_end().strip_suffix(':')?;
    let key: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    (!key.is_empty()).then_some(key)
}

/// Adds a "did you mean" hint to serde's "unknown key/value" messages, or a generic one.
pub fn with_serde_hint(diagnostic: Diagnostic, message: &str) -> Diagnostic {
    for marker in [
        "unknown field `",
        "unknown variant `",
        "unknown key `",
        "unknown value `",
    ] {
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
        // serde reports a missing key where its mapping ends, which may be another key's line.
        return diagnostic
            .hint("add the missing key to the mapping that ends here; see the config shape in the README");
    }
    diagnostic
}

/// A serde message in the words of someone editing a config file: keys, not fields; values,
/// not variants; and no location, which the diagnostic shows separately.
pub fn user_words(message: &str) -> String {
    let message = strip_location_suffix(strip_location_prefix(
        message.strip_prefix("error: ").unwrap_or(message),
    ));
    message
        .replacen("unknown field `", "unknown key `", 1)
        .replacen("unknown variant `", "unknown value `", 1)
}

fn user_message(err: &serde_saphyr::Error) -> String {
    if let serde_saphyr::Error::InvalidScalar { ty, .. } = err.without_snippet() {
        let expected = match *ty {
            "boolean" => "true or false",
            t if t.starts_with('f') || t.contains("float") => "a number",
            t if t.starts_with('u') => "a whole number without a sign",
            t if t.starts_with('i') => "a whole number",
            t => t,
        };
        return format!("this value is not {expected}");
    }
    let rendered = err.without_snippet().to_string();
    user_words(rendered.lines().next().unwrap_or("invalid YAML"))
}

fn located(file: &str, text: &str, err: &serde_saphyr::Error, message: String) -> Diagnostic {
    let (line, column) = err.location().map_or((0, 0), |l| (l.line(), l.column()));
    Diagnostic::new(message).in_file(file).at(text, line, column)
}

/// Errors whose library wording would mislead: an alias bomb stopped by the parser's budget,
/// and a duplicate key (whose message suggests a parser option).
fn special(file: &str, text: &str, err: &serde_saphyr::Error) -> Option<Diagnostic> {
    use serde_saphyr::Error as E;
    let mut inner = err;
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = inner {
        inner = error;
    }
    match inner {
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. } => Some(
            located(
                file,
                text,
                err,
                "the YAML is too large once its aliases are expanded".to_owned(),
            )
            .hint("anchors and aliases (`&name`, `*name`) may not multiply into a huge document; write the values out"),
        ),
        E::MultipleDocuments { .. } => Some(
            located(file, text, err, "the file holds more than one YAML document".to_owned())
                .hint("a `---` line starts a second document: keep one, and merge what follows it into the first"),
        ),
        E::DuplicateMappingKey { key, .. } => {
            let message = match key {
                Some(k) => format!("duplicate key `{k}`"),
                None => "duplicate key".to_owned(),
            };
            Some(
                located(file, text, err, message)
                    .hint("a key may appear only once in a mapping; merge the two entries"),
            )
        }
        _ => None,
    }
}

/// serde-saphyr and serde_json end messages with "at line N, column M" (and, for aliases,
/// "(defined at line …)"); the location is shown separately.
fn strip_location_suffix(message: &str) -> &str {
    for marker in [" at line ", " (defined at line ", " (used at line "] {
        if let Some((head, tail)) = message.split_once(marker)
            && tail.starts_with(|c: char| c.is_ascii_digit())
        {
            return strip_location_suffix(head);
        }
    }
    message
}

fn strip_location_prefix(message: &str) -> &str {
    // serde-saphyr prefixes "line N column M: "; the location is shown separately.
    if let Some(rest) = message.strip_prefix("line ")
        && let Some((_, tail)) = rest.split_once(": ")
    {
        return tail;
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_gets_did_you_mean() {
        let d = with_serde_hint(
            Diagnostic::new("m"),
            "unknown field `temprature`, expected one of version, model, temperature",
        );
        assert_eq!(d.hints, vec!["did you mean `temperature`?"]);
        let d = with_serde_hint(
            Diagnostic::new("m"),
            "unknown field `zzz`, expected one of `id`, `vars`",
        );
        assert_eq!(d.hints, vec!["expected one of: id, vars"]);
        let d = with_serde_hint(
            Diagnostic::new("m"),
            "unknown variant `opnai`, expected one of `openai`, `mock`",
        );
        assert_eq!(d.hints, vec!["did you mean `openai`?"]);
    }

    #[test]
    fn speaks_of_keys_and_values_without_locations() {
        assert_eq!(
            user_words("unknown field `temprature`, expected one of model, temperature at line 5, column 1"),
            "unknown key `temprature`, expected one of model, temperature"
        );
        assert_eq!(
            user_words("unknown variant `up`, expected one of higher, lower at line 2, column 3"),
            "unknown value `up`, expected one of higher, lower"
        );
        assert_eq!(
            user_words("budget breached at line 1, column 2 (defined at line 3, column 4)"),
            "budget breached"
        );
        assert_eq!(user_words("the line at line end"), "the line at line end");
    }

    #[test]
    fn syntax_errors_win_over_shape_errors() {
        let text = "model: x\ntemperature: [0.2\nmax_tokens: 3\n";
        let err = serde_saphyr::from_str::<crate::suite::raw::RawVariant>(text).expect_err("broken");
        let d = yaml_diagnostic("v.yaml", text, &err, "a variant config");
        assert!(d.message.starts_with("not valid YAML: "), "{d}");
        assert!(d.hints[0].contains("unclosed `[`"), "{d}");
    }

    /// A second document and a file of comments say so in the editor's words (serde-saphyr's
    /// own messages named its API and "unexpected end of input").
    #[test]
    fn a_second_document_and_a_file_of_comments_are_named() {
        let text = "model: x\n---\nmodel: y\n";
        let err = serde_saphyr::from_str::<crate::suite::raw::RawVariant>(text).expect_err("two documents");
        let d = yaml_diagnostic("v.yaml", text, &err, "a variant config");
        assert_eq!(d.message, "the file holds more than one YAML document", "{d}");
        assert!(d.line.is_some() && d.hints[0].contains("`---`"), "{d}");
        let text = "---\n# model: x\n\n   # nothing yet\n";
        let err = serde_saphyr::from_str::<crate::suite::raw::RawVariant>(text).expect_err("no content");
        let d = yaml_diagnostic("v.yaml", text, &err, "a variant config");
        assert_eq!(
            d.message, "the file has no content: only comments and blank lines",
            "{d}"
        );
        assert!(d.hints[0].contains("promptgate init"), "{d}");
    }

    /// A value of the wrong type is hinted with its key and what it takes.
    #[test]
    fn a_wrong_type_names_its_key() {
        let check = |text: &str, hint: &str| {
            let err = serde_saphyr::from_str::<crate::suite::raw::RawVariant>(text).expect_err("wrong type");
            let d = yaml_diagnostic("v.yaml", text, &err, "a variant config");
            assert_eq!(d.hints, vec![hint.to_owned()], "{d}");
        };
        check(
            "model: x\nprompt: p.md\nmax_tokens: many\n",
            "`max_tokens` takes a whole number without a sign",
        );
        check(
            "model: x\nprompt: p.md\ntemperature: 'warm'\n",
            "`temperature` takes a number",
        );
    }

    #[test]
    fn strips_location_prefix() {
        assert_eq!(strip_location_prefix("line 3 column 1: unknown field"), "unknown field");
        assert_eq!(strip_location_prefix("missing field `model`"), "missing field `model`");
    }
}
