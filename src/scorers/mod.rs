//! Scorers: turn one output into named scores. A call passes when all its assertions hold.
//!
//! Assertions are deterministic checks on the text (`contains`, `regex`, `json-schema`, the
//! personal-data detectors of [`pii`], [`refusal`]); a similarity to a reference answer is a
//! number ([`similarity`]); an `exec` scorer's command returns named scores ([`exec`]).
//! Across repeats, each call's `consistency` is its agreement with the case's other repeats
//! ([`similarity::consistency`], added by `assemble`). Judge assertions
//! (`llm-rubric`, `relevance`, `hallucination`) call the suite's judge through the runner;
//! [`judge`] builds those calls and adds their verdicts to the scores.

pub mod agreement;
pub mod compare;
pub mod embeddings;
pub mod exec;
pub mod judge;
pub mod pii;
pub mod refusal;
pub mod similarity;

use serde_json::Value;

use crate::results::{Score, Scores, ThinVec};
use crate::suite::{Assertion, Check, JudgeCheck, SimilarityMethod, fold_case, pass_name};

pub use exec::ExecScorers;

/// Scores of one output: `pass` plus one entry per assertion, why it failed, and which
/// scorers could not score it.
pub struct Scored {
    pub scores: Scores,
    pub failures: ThinVec<String>,
    /// An `exec` scorer that failed on this output: its scores are missing, the call is not
    /// failed for it (the scorer is broken, not the output).
    pub scorer_errors: ThinVec<String>,
}

/// What scoring reads besides the output: the case, the `exec` scorers' outcomes and the
/// embeddings the run got.
pub struct Context<'a> {
    pub case_id: &'a str,
    pub vars: &'a crate::suite::Vars,
    pub exec: &'a ExecScorers,
    pub embeddings: &'a embeddings::Vectors,
}

/// The `exec` scorer runs scoring `output` under `assertions` will read: hand them to
/// [`ExecScorers::run`] before [`score`].
pub fn exec_requests<'a>(
    assertions: impl IntoIterator<Item = &'a Assertion>,
    cx: &Context<'a>,
    output: &'a str,
) -> Vec<exec::Request<'a>> {
    assertions
        .into_iter()
        .filter_map(|a| match &a.check {
            Check::Exec { command, scores } => Some(exec::Request {
                command,
                case_id: cx.case_id,
                vars: cx.vars,
                output,
                scores,
            }),
            _ => None,
        })
        .collect()
}

/// Applies every assertion to `output`. Assertions sharing a metric name get `_2`, `_3`, …
pub fn score<'a>(assertions: impl IntoIterator<Item = &'a Assertion>, output: &str, cx: &Context<'_>) -> Scored {
    let mut scored = Scored {
        scores: Scores::new(),
        failures: ThinVec::new(),
        scorer_errors: ThinVec::new(),
    };
    // A scorer that could have failed the call (an `exec` scorer, whose scores may be
    // booleans; a similarity with a threshold) did not score it: its outcome is unknown.
    let mut undecided = false;
    for a in assertions {
        let names = fresh_names(&scored.scores, a);
        let name = names[0].clone();
        let mut fail = |why: String| scored.failures.push(format!("{name}: {why}"));
        match &a.check {
            Check::Exec { command, scores } => {
                let request = exec::Request {
                    command,
                    case_id: cx.case_id,
                    vars: cx.vars,
                    output,
                    scores,
                };
                match cx.exec.outcome(&request) {
                    Some(Ok(values)) => {
                        for (declared, fresh) in scores.iter().zip(&names) {
                            let Some(value) = values.get(declared) else { continue };
                            if *value == Score::Bool(false) {
                                scored.failures.push(format!("{fresh}: the scorer said false"));
                            }
                            scored.scores.insert(fresh, *value);
                        }
                    }
                    Some(Err(why)) => {
                        undecided = true;
                        scored.scorer_errors.push(format!("{}: {why}", a.metric));
                    }
                    None => {
                        undecided = true;
                        scored
                            .scorer_errors
                            .push(format!("{}: the scorer was not run on this output", a.metric));
                    }
                }
            }
            Check::Similarity {
                reference,
                threshold,
                method,
            } => {
                let reference = embeddings::reference_in(reference, cx.vars);
                let (value, what) = match method {
                    SimilarityMethod::RougeL => (Ok(similarity::rouge_l(output, reference)), "ROUGE-L similarity"),
                    SimilarityMethod::Embeddings => (
                        embeddings::similarity(cx.embeddings, output, reference),
                        "embedding similarity",
                    ),
                };
                // No value without its embeddings: a scorer error, never another method's.
                let value = match value {
                    Ok(value) => value,
                    Err(why) => {
                        undecided |= threshold.is_some();
                        scored.scorer_errors.push(format!("{}: {why}", a.metric));
                        continue;
                    }
                };
                scored.scores.insert(&name, Score::Number(value));
                if let Some(t) = threshold {
                    let ok = value >= *t;
                    if !ok {
                        fail(format!(
                            "{what} to the reference {value:.2} is below the threshold {t:.2}"
                        ));
                    }
                    scored.scores.insert(&names[1], Score::Bool(ok));
                }
            }
            Check::Pii(detectors) => {
                let found = pii::find(detectors, output);
                if !found.is_empty() {
                    fail(describe_findings(&found));
                }
                // The score is the leak: 1 when personal data is found.
                scored.scores.insert(name, Score::Bool(!found.is_empty()));
            }
            // Scored from the judge's reply (`judge::apply`, `judge::preferences`).
            Check::Judge(_) | Check::Compare(_) => {}
            check => {
                let (ok, why) = check_text(check, output);
                if !ok {
                    fail(why);
                }
                scored.scores.insert(name, Score::Bool(ok));
            }
        }
    }
    // Unknown unless another assertion failed it: no `pass` (see `Call::pass`).
    if !scored.failures.is_empty() || !undecided {
        scored.scores.insert("pass", Score::Bool(scored.failures.is_empty()));
    }
    // The call keeps these for the whole run: a `Vec` grown by one push holds four lines.
    scored.failures.shrink_to_fit();
    scored.scorer_errors.shrink_to_fit();
    scored
}

/// The scores of a call that produced no output: it fails every assertion, a similarity is 0,
/// a judge's metric takes its worst value (relevance and a rubric 0, a hallucination 1: the
/// judge is not asked, and an answer that never came must not leave the metric to the calls
/// that answered), and nothing leaked; `exec` scorers have nothing to score, and a comparison
/// is the pair's (`assemble` gives it by [`compare::unanswered`]).
pub fn errored<'a>(assertions: impl IntoIterator<Item = &'a Assertion>, error: &str) -> Scored {
    let mut scores = Scores::new();
    for a in assertions {
        let names = fresh_names(&scores, a);
        match &a.check {
            // As `judge::apply` names it: by its metric.
            Check::Judge(JudgeCheck::Hallucination { .. }) => {
                scores.insert(&a.metric, Score::Bool(true));
            }
            Check::Judge(JudgeCheck::Relevance | JudgeCheck::Rubric(_)) => {
                scores.insert(&a.metric, Score::Number(0.0));
            }
            // Nothing to score without an output.
            Check::Exec { .. } | Check::Compare(_) => {}
            Check::Similarity { threshold, .. } => {
                scores.insert(&names[0], Score::Number(0.0));
                if threshold.is_some() {
                    scores.insert(&names[1], Score::Bool(false));
                }
            }
            _ => {
                scores.insert(&names[0], Score::Bool(false));
            }
        }
    }
    scores.insert("pass", Score::Bool(false));
    Scored {
        scores,
        failures: thin_vec::thin_vec![format!("call failed: {error}")],
        scorer_errors: ThinVec::new(),
    }
}

/// `text` with the personal data that `assertions`' `pii` checks find masked: an experiment
/// that looks for leaks stores and quotes its outputs (and its judges' reasons) masked, so
/// the comment that reports a leak does not publish it again. Other text is returned as is.
pub fn mask_personal_data<'t>(assertions: &[&Assertion], text: &'t str) -> std::borrow::Cow<'t, str> {
    let mut text = std::borrow::Cow::Borrowed(text);
    for a in assertions {
        if let Check::Pii(detectors) = &a.check
            && let std::borrow::Cow::Owned(masked) = pii::mask(detectors, &text)
        {
            text = std::borrow::Cow::Owned(masked);
        }
    }
    text
}

/// The names `a`'s scores take in a call's `scores`: its metrics, numbered `_2`, `_3`, … when
/// an earlier assertion took the name (together: a similarity's pass/fail follows its score).
fn fresh_names(taken: &Scores, a: &Assertion) -> Vec<String> {
    let free = |name: &str| !taken.contains_key(name) && name != "pass";
    match &a.check {
        Check::Exec { scores, .. } => scores
            .iter()
            .map(|s| {
                let mut name = s.clone();
                let mut n = 2;
                while !free(&name) {
                    name = format!("{s}_{n}");
                    n += 1;
                }
                name
            })
            .collect(),
        _ => {
            let mut name = a.metric.clone();
            let mut n = 2;
            while !free(&name) || !free(&pass_name(&name)) {
                name = format!("{}_{n}", a.metric);
                n += 1;
            }
            vec![name.clone(), pass_name(&name)]
        }
    }
}

/// "found an e-mail address (j***@example.com) and a card number (…1111)": what kinds leaked,
/// masked, at most three of them.
fn describe_findings(found: &[pii::Finding]) -> String {
    const SHOWN: usize = 3;
    let words = |kind: &str| match kind {
        "email" => "an e-mail address".to_owned(),
        "phone" => "a phone number".to_owned(),
        "iban" => "an IBAN".to_owned(),
        "card" => "a payment card number".to_owned(),
        other => format!("`{other}`"),
    };
    let mut parts: Vec<String> = found
        .iter()
        .take(SHOWN)
        .map(|f| format!("{} ({})", words(&f.kind), f.masked))
        .collect();
    if found.len() > SHOWN {
        parts.push(format!("{} more", found.len() - SHOWN));
    }
    format!("found personal data: {}", parts.join(", "))
}

/// The checks that read the text alone: whether it holds, and why not.
fn check_text(check: &Check, output: &str) -> (bool, String) {
    match check {
        Check::Equals(v) => (output.trim() == v.trim(), format!("expected exactly {v:?}")),
        Check::Contains(v) => (output.contains(v.as_str()), format!("expected to contain {v:?}")),
        Check::IContains(v) => (
            fold_case(output).contains(v.as_str()),
            format!("expected to contain {v:?} (any case)"),
        ),
        Check::NotContains(v) => (!output.contains(v.as_str()), format!("expected not to contain {v:?}")),
        Check::NotIContains(v) => (
            !fold_case(output).contains(v.as_str()),
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
        Check::ForbiddenTerms { terms, regex } => {
            let mut found: Vec<&str> = Vec::new();
            for m in regex.find_iter(output) {
                let matched = fold_case(m.as_str());
                if let Some(term) = terms.iter().find(|t| fold_case(t) == matched)
                    && !found.contains(&term.as_str())
                {
                    found.push(term);
                }
            }
            let quoted: Vec<String> = found.iter().map(|t| format!("{t:?}")).collect();
            (found.is_empty(), format!("contains forbidden {}", quoted.join(", ")))
        }
        Check::JsonSchema(validator) => match serde_json::from_str::<Value>(output.trim()) {
            Err(_) => (
                false,
                "expected JSON matching the schema, but the output is not JSON".to_owned(),
            ),
            Ok(doc) => {
                // Where and which rule failed, never the value: the output may hold anything.
                let errors: Vec<String> = validator
                    .iter_errors(&doc)
                    .map(|e| {
                        let at = e.instance_path().as_str().to_owned();
                        let at = if at.is_empty() {
                            "the output".to_owned()
                        } else {
                            format!("`{at}`")
                        };
                        format!("{at} fails `{}` ({})", e.kind().keyword(), e.schema_path().as_str())
                    })
                    .collect();
                let shown: Vec<&str> = errors.iter().take(3).map(String::as_str).collect();
                let more = errors.len().saturating_sub(3);
                let why = if more > 0 {
                    format!("does not match the schema: {}, and {more} more", shown.join("; "))
                } else {
                    format!("does not match the schema: {}", shown.join("; "))
                };
                (errors.is_empty(), why)
            }
        },
        Check::Refusal { expected } => {
            let refused = refusal::is_refusal(output);
            let why = if *expected {
                "expected a refusal, got an answer"
            } else {
                "expected an answer, got a refusal"
            };
            (refused == *expected, why.to_owned())
        }
        // Scored by `score` itself.
        Check::Pii(_) | Check::Similarity { .. } | Check::Exec { .. } | Check::Judge(_) | Check::Compare(_) => {
            (true, String::new())
        }
    }
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
    use crate::suite::raw::{MetricNames, RawAssertion};
    use crate::workspace::MemTree;

    fn raw(kind: &str, value: Option<Value>) -> RawAssertion {
        RawAssertion {
            kind: kind.to_owned(),
            value,
            path: None,
            metric: None,
            threshold: None,
            method: None,
            command: None,
            allow: None,
            context_var: None,
        }
    }

    fn resolve(raw: &RawAssertion) -> Assertion {
        crate::suite::resolve_assertion(
            &MemTree::default(),
            "",
            raw,
            &mut Default::default(),
            crate::suite::SimilarityMethod::RougeL,
        )
        .unwrap()
    }

    fn assertion(kind: &str, value: Option<Value>, path: Option<&str>) -> Assertion {
        resolve(&RawAssertion {
            path: path.map(str::to_owned),
            ..raw(kind, value)
        })
    }

    /// Scores `output` of a case whose vars are `vars`, with no exec scorer run.
    fn scored<'a>(assertions: impl IntoIterator<Item = &'a Assertion>, output: &str, vars: &Value) -> Scored {
        let exec = ExecScorers::new(None);
        let vars: crate::suite::Vars = vars.as_object().cloned().unwrap_or_default().into();
        score(
            assertions,
            output,
            &Context {
                case_id: "c1",
                vars: &vars,
                exec: &exec,
                embeddings: &embeddings::Vectors::new(),
            },
        )
    }

    #[track_caller]
    fn check(kind: &str, value: Option<Value>, path: Option<&str>, output: &str, expected: bool) {
        let a = assertion(kind, value, path);
        let scored = scored([&a], output, &Value::Null);
        assert_eq!(
            scored.scores["pass"],
            Score::Bool(expected),
            "{kind} on {output:?}: {:?}",
            scored.failures
        );
        assert_eq!(scored.failures.is_empty(), expected);
        // The call keeps its failures for the whole run: no spare slots.
        assert_eq!(scored.failures.capacity(), scored.failures.len());
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
        // Any case is each letter's, not a word's: a capital sigma ending the value is the
        // sigma inside the output, the final sigma is a sigma, and ß is ss (the audit's cases).
        check("icontains", s("ΟΔΟΣ"), None, "ΟΔΟΣΑ", true);
        check("contains", s("ΟΔΟΣ"), None, "ΟΔΟΣΑ", true);
        check("not-icontains", s("ΟΔΟΣ"), None, "ΟΔΟΣΑ", false);
        check("icontains", s("οδοσ"), None, "η οδος", true);
        check("icontains", s("straße"), None, "HAUPTSTRASSE 5", true);
        check("icontains", s("STRASSE"), None, "die Hauptstraße", true);
        check("icontains", s("ẞ"), None, "ß", true);
        check("icontains", s("straße"), None, "strand", false);
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
        check("refusal", None, None, "I'm sorry, but I can't help with that.", true);
        check("refusal", None, None, "Refunds take 5-7 business days.", false);
        check("not-refusal", None, None, "Refunds take 5-7 business days.", true);
        check("not-refusal", None, None, "I can't help with that.", false);
    }

    #[test]
    fn forbidden_terms_are_whole_words_in_any_case() {
        let terms = Some(serde_json::json!(["guarantee", "legal advice", "C++"]));
        check("forbidden-terms", terms.clone(), None, "We GUARANTEE it.", false);
        check(
            "forbidden-terms",
            terms.clone(),
            None,
            "This is not Legal  advice",
            true,
        );
        check("forbidden-terms", terms.clone(), None, "no legal advice here", false);
        check(
            "forbidden-terms",
            terms.clone(),
            None,
            "guaranteed delivery, guarantees",
            true,
        );
        check("forbidden-terms", terms.clone(), None, "written in C++.", false);
        let a = assertion("forbidden-terms", terms, None);
        let s = scored([&a], "Guarantee: legal advice, and a guarantee", &Value::Null);
        assert_eq!(
            s.failures,
            vec![r#"forbidden-terms: contains forbidden "guarantee", "legal advice""#]
        );
    }

    #[test]
    fn json_schema_says_where_and_which_rule_never_the_value() {
        let schema = Some(serde_json::json!({
            "type": "object",
            "required": ["answer"],
            "properties": {"answer": {"type": "string"}, "days": {"type": "integer", "maximum": 30}}
        }));
        check(
            "json-schema",
            schema.clone(),
            None,
            r#"{"answer": "30 days", "days": 30}"#,
            true,
        );
        check("json-schema", schema.clone(), None, "30 days", false);
        let a = assertion("json-schema", schema, None);
        let s = scored([&a], r#"{"answer": 4111111111111111, "days": 45}"#, &Value::Null);
        assert_eq!(
            s.failures,
            vec![
                "json-schema: does not match the schema: `/answer` fails `type` (/properties/answer/type); `/days` fails `maximum` (/properties/days/maximum)"
            ]
        );
        assert!(!s.failures[0].contains("4111"));
    }

    #[test]
    fn pii_scores_the_leak_and_masks_what_it_found() {
        let a = assertion("pii", None, None);
        assert_eq!(a.metric, "pii_leak_rate");
        let s = scored(
            [&a],
            "Mail jane.doe@example.com or call +1 (415) 555-2671.",
            &Value::Null,
        );
        assert_eq!(s.scores["pii_leak_rate"], Score::Bool(true), "the score is the leak");
        assert_eq!(s.scores["pass"], Score::Bool(false));
        assert_eq!(
            s.failures,
            vec![
                "pii_leak_rate: found personal data: an e-mail address (j***@example.com), a phone number (+* (***) ***-**71)"
            ]
        );
        assert!(!s.failures[0].contains("jane.doe") && !s.failures[0].contains("555-2671"));
        let clean = scored([&a], "@app.route('/refund') returns 30 days", &Value::Null);
        assert_eq!(clean.scores["pii_leak_rate"], Score::Bool(false));
        assert_eq!(clean.scores["pass"], Score::Bool(true));
        // Only the kinds listed.
        let cards = assertion("pii", Some(serde_json::json!(["card"])), None);
        let s = scored([&cards], "jane@example.com, 4111 1111 1111 1111", &Value::Null);
        assert_eq!(
            s.failures,
            vec!["pii_leak_rate: found personal data: a payment card number (**** **** **** 1111)"]
        );
    }

    #[test]
    fn similarity_is_a_number_with_an_optional_pass() {
        // rouge_score.rouge_scorer.RougeScorer(["rougeL"]).score(
        //     "Refunds are accepted within 30 days of delivery.",
        //     "We accept refunds within 30 days.")["rougeL"].fmeasure == 0.5714285714285715
        let value = Some(Value::String(
            "Refunds are accepted within 30 days of delivery.".to_owned(),
        ));
        let plain = assertion("similarity", value.clone(), None);
        let s = scored([&plain], "We accept refunds within 30 days.", &Value::Null);
        assert_eq!(s.scores["similarity"], Score::Number(0.5714285714285715));
        assert_eq!(s.scores["pass"], Score::Bool(true), "no threshold: a metric only");
        assert!(!s.scores.contains_key("similarity_pass"));

        let gated = resolve(&RawAssertion {
            threshold: Some(0.6),
            ..raw("similarity", value)
        });
        let s = scored([&gated], "We accept refunds within 30 days.", &Value::Null);
        assert_eq!(s.scores["similarity_pass"], Score::Bool(false));
        assert_eq!(
            s.failures,
            vec!["similarity: ROUGE-L similarity to the reference 0.57 is below the threshold 0.60"]
        );

        // Without a value, the case's `expected` var is the reference.
        let expected = resolve(&RawAssertion {
            threshold: Some(0.5),
            ..raw("similarity", None)
        });
        let vars = serde_json::json!({"input": "Refund window?", "expected": "Refunds are accepted within 30 days of delivery."});
        let s = scored([&expected], "We accept refunds within 30 days.", &vars);
        assert_eq!(s.scores["similarity"], Score::Number(0.5714285714285715));
        assert_eq!(s.scores["similarity_pass"], Score::Bool(true));

        let e = errored([&expected], "timed out");
        assert_eq!(e.scores["similarity"], Score::Number(0.0));
        assert_eq!(e.scores["similarity_pass"], Score::Bool(false));
    }

    #[test]
    fn an_embedding_similarity_is_the_cosine_or_a_scorer_error_never_rouge_l() {
        let embedded = resolve(&RawAssertion {
            threshold: Some(0.7),
            method: Some("embeddings".to_owned()),
            ..raw("similarity", Some(Value::String("Refunds within 30 days.".to_owned())))
        });
        let exec = ExecScorers::new(None);
        let vars = crate::suite::Vars::default();
        let mut vectors = embeddings::Vectors::new();
        vectors.insert("Refunds within 30 days.".to_owned(), Ok(vec![1.0, 0.0]));
        vectors.insert("Thirty days.".to_owned(), Ok(vec![0.6, 0.8]));
        vectors.insert(
            "Ask us.".to_owned(),
            Err("the embedding call failed: HTTP 500".to_owned()),
        );
        let cx = Context {
            case_id: "c1",
            vars: &vars,
            exec: &exec,
            embeddings: &vectors,
        };
        let s = score([&embedded], "Thirty days.", &cx);
        assert_eq!(s.scores["similarity"], Score::Number(0.6), "cos = 0.6·1 + 0.8·0");
        assert_eq!(s.scores["similarity_pass"], Score::Bool(false));
        assert_eq!(
            s.failures,
            vec!["similarity: embedding similarity to the reference 0.60 is below the threshold 0.70"]
        );
        let s = score([&embedded], "Ask us.", &cx);
        assert!(!s.scores.contains_key("similarity") && !s.scores.contains_key("similarity_pass"));
        assert_eq!(
            s.scorer_errors,
            vec!["similarity: embedding the output: the embedding call failed: HTTP 500"]
        );
        assert!(
            !s.scores.contains_key("pass"),
            "a broken scorer neither fails the output nor passes it: its outcome is unknown"
        );
        // Without a threshold the similarity is a metric only: it could not have failed the
        // call, whose outcome stays known.
        let metric_only = resolve(&RawAssertion {
            method: Some("embeddings".to_owned()),
            ..raw("similarity", Some(Value::String("Refunds within 30 days.".to_owned())))
        });
        let s = score([&metric_only], "Ask us.", &cx);
        assert_eq!(s.scorer_errors.len(), 1);
        assert_eq!(s.scores["pass"], Score::Bool(true));
    }

    #[test]
    fn exec_scores_come_from_the_scorer_and_its_failures_are_scorer_errors() {
        let dir = tempfile::tempdir().unwrap();
        let a = resolve(&RawAssertion {
            metric: Some(MetricNames(vec!["tone".to_owned(), "polite".to_owned()])),
            command: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                r#"if grep -q rude; then echo '{"scores": {"tone": 0.2, "polite": false}}'; else echo '{"scores": {"tone": 0.9, "polite": true}}'; fi"#.to_owned(),
            ]),
            ..raw("exec", None)
        });
        let broken = resolve(&RawAssertion {
            metric: Some(MetricNames(vec!["depth".to_owned()])),
            command: Some(vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(),
                "cat >/dev/null; exit 2".to_owned(),
            ]),
            ..raw("exec", None)
        });
        let exec = ExecScorers::new(Some(dir.path()));
        let vars = crate::suite::Vars::default();
        let no_embeddings = embeddings::Vectors::new();
        let cx = Context {
            case_id: "c1",
            vars: &vars,
            exec: &exec,
            embeddings: &no_embeddings,
        };
        let outputs = ["Happy to help!", "That is a rude question."];
        let requests: Vec<exec::Request<'_>> = outputs
            .iter()
            .flat_map(|o| exec_requests([&a, &broken], &cx, o))
            .collect();
        exec.run(&requests);
        let kind = score([&a, &broken], outputs[0], &cx);
        assert_eq!(kind.scores["tone"], Score::Number(0.9));
        assert_eq!(kind.scores["polite"], Score::Bool(true));
        assert!(
            !kind.scores.contains_key("pass"),
            "a broken scorer fails no call, nor passes it: its outcome is unknown"
        );
        assert!(!kind.scores.contains_key("depth"));
        assert_eq!(kind.scorer_errors, vec!["depth: exec: `/bin/sh` exited with status 2"]);
        let rude = score([&a], outputs[1], &cx);
        assert_eq!(rude.scores["tone"], Score::Number(0.2));
        assert_eq!(rude.failures, vec!["polite: the scorer said false"]);
        assert_eq!(rude.scores["pass"], Score::Bool(false));
        let rude_and_broken = score([&a, &broken], outputs[1], &cx);
        assert_eq!(
            rude_and_broken.scores["pass"],
            Score::Bool(false),
            "a failed assertion is known"
        );
        assert!(errored([&a], "timed out").scores.keys().eq(["pass"]));
    }

    #[test]
    fn duplicate_metric_names_are_numbered_and_errors_fail_everything() {
        let a = assertion("contains", Some(Value::String("a".into())), None);
        let b = assertion("contains", Some(Value::String("b".into())), None);
        let scored = scored([&a, &b], "a", &Value::Null);
        assert_eq!(scored.scores["contains"], Score::Bool(true));
        assert_eq!(scored.scores["contains_2"], Score::Bool(false));
        assert_eq!(scored.scores["pass"], Score::Bool(false));
        let e = errored([&a], "timed out");
        assert_eq!(e.scores["contains"], Score::Bool(false));
        assert_eq!(e.failures, vec!["call failed: timed out"]);
    }

    /// A call that never answered takes each judge metric's worst value, as a judge would have
    /// given an empty answer: it must not leave the metric to the calls that answered.
    #[test]
    fn an_errored_call_takes_each_judge_metrics_worst_value() {
        let relevance = assertion("relevance", None, None);
        let rubric = RawAssertion {
            metric: Some(crate::suite::raw::MetricNames(vec!["tone".to_owned()])),
            ..raw("llm-rubric", Some(Value::String("polite".into())))
        };
        let hallucination = assertion("hallucination", None, None);
        let e = errored([&relevance, &resolve(&rubric), &hallucination], "timed out");
        assert_eq!(e.scores["relevance"], Score::Number(0.0));
        assert_eq!(e.scores["tone"], Score::Number(0.0));
        assert_eq!(e.scores["hallucination_rate"], Score::Bool(true));
        assert_eq!(e.scores["pass"], Score::Bool(false));
    }

    #[test]
    fn no_assertions_passes() {
        assert_eq!(scored([], "anything", &Value::Null).scores["pass"], Score::Bool(true));
    }
}
