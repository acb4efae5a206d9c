//! Scorers: turn one output into named scores. A call passes when all its assertions hold.
//!
//! Assertions are deterministic checks on the text, scored here. Judge assertions
//! (`llm-rubric`, `relevance`, `hallucination`) call the suite's judge through the runner;
//! [`judge`] builds those calls and adds their verdicts to the scores.

pub mod agreement;
pub mod judge;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::results::Score;
use crate::suite::{Assertion, Check};

/// Scores of one output: `pass` plus one entry per assertion, and why it failed.
pub struct Scored {
    pub scores: BTreeMap<String, Score>,
    pub failures: Vec<String>,
}

/// Applies every assertion to `output`. Assertions sharing a metric name get `_2`, `_3`, …
pub fn score<'a>(assertions: impl IntoIterator<Item = &'a Assertion>, output: &str) -> Scored {
    let mut scores = BTreeMap::new();
    let mut failures = Vec::new();
    for a in assertions {
        let Some((ok, why)) = check(&a.check, output) else {
            continue;
        };
        let mut name = a.metric.clone();
        let mut n = 2;
        while scores.contains_key(&name) || name == "pass" {
            name = format!("{}_{n}", a.metric);
            n += 1;
        }
        if !ok {
            failures.push(format!("{name}: {why}"));
        }
        scores.insert(name, Score::Bool(ok));
    }
    scores.insert("pass".to_owned(), Score::Bool(failures.is_empty()));
    Scored { scores, failures }
}

/// The scores of a call that produced no output: it fails every assertion.
pub fn errored<'a>(assertions: impl IntoIterator<Item = &'a Assertion>, error: &str) -> Scored {
    let mut scored = score(assertions, "");
    for v in scored.scores.values_mut() {
        *v = Score::Bool(false);
    }
    scored.failures = vec![format!("call failed: {error}")];
    scored
}

/// Whether `output` passes a deterministic check, and what was expected; `None` for a judge's
/// check, which [`judge::apply`] scores from the judge's reply.
fn check(check: &Check, output: &str) -> Option<(bool, String)> {
    Some(match check {
        Check::Equals(v) => (output.trim() == v.trim(), format!("expected exactly {v:?}")),
        Check::Contains(v) => (output.contains(v.as_str()), format!("expected to contain {v:?}")),
        Check::IContains(v) => (
            output.to_lowercase().contains(v.as_str()),
            format!("expected to contain {v:?} (any case)"),
        ),
        Check::NotContains(v) => (!output.contains(v.as_str()), format!("expected not to contain {v:?}")),
        Check::NotIContains(v) => (
            !output.to_lowercase().contains(v.as_str()),
            format!("expected not to contain {v:?} (any case)"),
        ),
        Check::StartsWith(v) => (
            output.trim_start().starts_with(v.as_str()),
            format!("expected to start with {v:?}"),
        ),
        Check::Regex(r) => (r.is_match(output), format!("expected to match /{}/", r.as_str())),
        Check::JsonValid => (
            serde_json::from_str::<Value>(output.trim()).is_ok(),
            "expected valid JSON".to_owned(),
        ),
        Check::JsonPath { path, source, value } => {
            let why = format!("expected {source} = {value}");
            match serde_json::from_str::<Value>(output.trim()) {
                Ok(doc) => {
                    let found = path.query(&doc).all();
                    (found.iter().any(|v| json_equal(v, value)), why)
                }
                Err(_) => (false, format!("{why}, but the output is not JSON")),
            }
        }
        Check::MaxLength(n) => {
            let len = output.chars().count();
            (len <= *n, format!("expected at most {n} characters, got {len}"))
        }
        Check::Judge(_) => return None,
    })
}

/// JSON equality where a number written as text in a CSV or YAML cell still matches.
fn json_equal(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::Number(b)) | (Value::Number(b), Value::String(a)) => {
            a.parse::<f64>().ok() == b.as_f64()
        }
        _ => found == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::raw::RawAssertion;
    use crate::workspace::MemTree;

    fn assertion(kind: &str, value: Option<Value>, path: Option<&str>) -> Assertion {
        let raw = RawAssertion {
            kind: kind.to_owned(),
            value,
            path: path.map(str::to_owned),
            metric: None,
            context_var: None,
        };
        crate::suite::resolve_assertion(&MemTree::default(), "", &raw, &mut Default::default()).unwrap()
    }

    #[track_caller]
    fn check(kind: &str, value: Option<Value>, path: Option<&str>, output: &str, expected: bool) {
        let a = assertion(kind, value, path);
        let scored = score([&a], output);
        assert_eq!(
            scored.scores["pass"],
            Score::Bool(expected),
            "{kind} on {output:?}: {:?}",
            scored.failures
        );
        assert_eq!(scored.failures.is_empty(), expected);
    }

    #[test]
    fn assertions() {
        let s = |v: &str| Some(Value::String(v.to_owned()));
        check("equals", s("yes"), None, " yes\n", true);
        check("equals", s("yes"), None, "yes!", false);
        check("contains", s("30 days"), None, "within 30 days.", true);
        check("contains", s("30 days"), None, "within 30 Days.", false);
        check("icontains", s("30 DAYS"), None, "within 30 days.", true);
        check("not-contains", s("refund"), None, "no money back", true);
        check("not-contains", s("refund"), None, "a refund", false);
        check("not-icontains", s("REFUND"), None, "a refund", false);
        check("starts-with", s("Hello"), None, "  Hello there", true);
        check("regex", s(r"^\d{3}-\d{4}$"), None, "555-1234", true);
        check("regex", s(r"^\d{3}-\d{4}$"), None, "call 555-1234", false);
        check("json-valid", None, None, r#"{"a": 1}"#, true);
        check("json-valid", None, None, "{a: 1}", false);
        check("json-path", s("yes"), Some("$.answer"), r#"{"answer": "yes"}"#, true);
        check(
            "json-path",
            Some(Value::from(3)),
            Some("$.items[0].n"),
            r#"{"items": [{"n": 3.0}]}"#,
            true,
        );
        check("json-path", s("3"), Some("$.n"), r#"{"n": 3}"#, true);
        check("json-path", s("yes"), Some("$.answer"), r#"{"answer": "no"}"#, false);
        check("json-path", s("yes"), Some("$.answer"), "not json", false);
        check("max-length", Some(Value::from(5)), None, "héllo", true);
        check("max-length", Some(Value::from(5)), None, "hello!", false);
    }

    #[test]
    fn duplicate_metric_names_are_numbered_and_errors_fail_everything() {
        let a = assertion("contains", Some(Value::String("a".into())), None);
        let b = assertion("contains", Some(Value::String("b".into())), None);
        let scored = score([&a, &b], "a");
        assert_eq!(scored.scores["contains"], Score::Bool(true));
        assert_eq!(scored.scores["contains_2"], Score::Bool(false));
        assert_eq!(scored.scores["pass"], Score::Bool(false));
        let e = errored([&a], "timed out");
        assert_eq!(e.scores["contains"], Score::Bool(false));
        assert_eq!(e.failures, vec!["call failed: timed out"]);
    }

    #[test]
    fn no_assertions_passes() {
        assert_eq!(score([], "anything").scores["pass"], Score::Bool(true));
    }
}
