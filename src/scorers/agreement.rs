//! How far a judge agrees with labelled cases (`promptgate judge-check`): the labels file, the
//! judge's question for each line, and the agreement — accuracy with its Wilson interval and
//! Cohen's kappa with its interval (quadratic-weighted for 1–5 labels).
//!
//! A labels file is JSONL, one case a line: `input`, `output`, optional `context` (then the
//! judge is asked the hallucination question: is every claim supported?) or `rubric` (the
//! rubric question), else the relevance question; and `label`: `"pass"`/`"fail"` (or a
//! boolean) for the judge's `pass`, or an integer 1–5 for its `score`. One file holds one kind
//! of label.

use serde::Serialize;
use serde_json::Value;

use super::judge::Reply;
use crate::error::{Diagnostic, Error};
use crate::providers::Request;
use crate::stats::{self, KappaWeights};
use crate::suite::{Case, Check, GateSpec, JudgeCheck, JudgeSettings};

/// One labelled line.
#[derive(Clone, Debug)]
pub struct Labelled {
    /// 1-based line in the labels file.
    pub line: usize,
    pub check: JudgeCheck,
    pub case: Case,
    pub output: String,
    pub label: Label,
}

/// What a human said of the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Pass(bool),
    Score(u8),
}

/// The agreement of a judge with the labels, as `judge-check` prints it (`--json`: this).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    /// `pass-fail` or `1-5`.
    pub scale: &'static str,
    pub labelled: usize,
    /// Lines the judge answered with the asked-for object.
    pub judged: usize,
    /// Lines whose judge call failed or answered with something else (after one retry).
    pub errors: usize,
    pub agreed: usize,
    pub accuracy: Option<f64>,
    pub accuracy_ci: Option<[f64; 2]>,
    /// Unweighted for pass/fail, quadratic-weighted for 1–5.
    pub kappa: Option<f64>,
    pub kappa_se: Option<f64>,
    pub kappa_ci: Option<[f64; 2]>,
    pub kappa_weights: &'static str,
}

/// Where `judge-check --record` keeps its measurements, in the repository (committed, so the
/// gate sees them): one JSON line per check.
pub const RECORD_PATH: &str = ".promptgate/judge-checks.jsonl";

/// The line `judge-check --record` appends: the judge, its model, the labels, the agreement,
/// and the questions the labels asked ([`question_id`]), so the record counts only for them.
pub fn record_line(judge: &str, model: &str, labels: &str, questions: &[String], agreement: &Agreement) -> String {
    serde_json::json!({
        "judge": judge, "model": model, "labels": labels, "questions": questions, "agreement": agreement,
    })
    .to_string()
}

/// What a judge is asked, as a record names it: the kind of question and a hash of the
/// instructions the judge is given for it (and the rubric). A judge-check measures a judge on
/// its questions: a changed rubric, or a judge prompt promptgate changed, is a question the
/// check never asked, so an old record does not vouch for it.
pub fn question_id(check: &JudgeCheck) -> String {
    let (kind, rubric) = match check {
        JudgeCheck::Relevance => ("relevance", ""),
        JudgeCheck::Hallucination { .. } => ("hallucination", ""),
        JudgeCheck::Rubric(rubric) => ("rubric", rubric.as_str()),
    };
    // The instructions as the judge receives them: the system message of a request for an
    // empty output (its context var present, so a grounded question builds).
    let mut vars = serde_json::Map::new();
    if let JudgeCheck::Hallucination { context_var } = check {
        vars.insert(context_var.clone(), Value::String(String::new()));
    }
    let case = Case {
        id: String::new(),
        group: None,
        vars: vars.into(),
        asserts: std::sync::Arc::from([]),
        assert_source: std::sync::Arc::from(""),
        line: 0,
    };
    let instructions = super::judge::request(check, "", &case, "", 0)
        .ok()
        .and_then(|r| r.messages.first().cloned())
        .map(|m| m.content.to_string())
        .unwrap_or_default();
    // The fence's nonce is derived from the sections' text, so it names one request, not the
    // question: the instructions are compared without it.
    let instructions = match crate::providers::judge_nonce(&instructions) {
        Some(nonce) if !nonce.is_empty() => instructions.replace(nonce, "NONCE"),
        _ => instructions,
    };
    let hash = stats::fnv1a(instructions.bytes().chain([0]).chain(rubric.bytes()));
    format!("{kind}:{hash:016x}")
}

/// The records (the text of [`RECORD_PATH`]) that measured `judge` with `model`, oldest first:
/// on at least one labelled case, with a kappa. A record whose kappa is undefined (every label,
/// or every answer, alike: two labels, say) measured nothing about agreement beyond chance and
/// vouches for nothing (an audit's two-label record cleared the "unmeasured judge" warning).
fn checks_of(records: &str, judge: &str, model: &str) -> Vec<Value> {
    records
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| {
            r["judge"] == judge
                && r["model"] == model
                && r["agreement"]["judged"].as_u64().is_some_and(|n| n > 0)
                && r["agreement"]["kappa"].as_f64().is_some()
        })
        .collect()
}

/// Whether `record`'s labels asked the question `question` ([`question_id`]).
fn asked_of(record: &Value, question: &str) -> bool {
    record["questions"]
        .as_array()
        .is_some_and(|qs| qs.iter().any(|x| x.as_str() == Some(question)))
}

/// Of `asked` (question ids), those no record (the text of [`RECORD_PATH`]) measured for
/// `judge` with `model`; `None` when no record measured that judge and model at all.
pub fn unmeasured<'a>(records: &str, judge: &str, model: &str, asked: &'a [String]) -> Option<Vec<&'a String>> {
    let checks = checks_of(records, judge, model);
    if checks.is_empty() {
        return None;
    }
    let measured = |q: &String| checks.iter().any(|r| asked_of(r, q));
    Some(asked.iter().filter(|q| !measured(q)).collect())
}

/// Of `asked` (question ids), those whose latest record (the text of [`RECORD_PATH`]) for
/// `judge` with `model` measured agreement no better than chance, with that kappa and its
/// interval: the interval reaches 0 (or, without one, kappa is at most 0). A record vouches
/// for a judge by what it measured, not by being there.
pub fn at_chance<'a>(
    records: &str,
    judge: &str,
    model: &str,
    asked: &'a [String],
) -> Vec<(&'a String, f64, Option<[f64; 2]>)> {
    let checks = checks_of(records, judge, model);
    asked
        .iter()
        .filter_map(|q| {
            let latest = checks.iter().rev().find(|r| asked_of(r, q))?;
            let agreement = &latest["agreement"];
            // Every record `checks_of` keeps has a kappa.
            let kappa = agreement["kappa"].as_f64()?;
            let ci = agreement["kappa_ci"]
                .as_array()
                .and_then(|b| Some([b.first()?.as_f64()?, b.get(1)?.as_f64()?]));
            let chance = match ci {
                Some([lo, _]) => lo <= 0.0,
                None => kappa <= 0.0,
            };
            chance.then_some((q, kappa, ci))
        })
        .collect()
}

/// Most labelled lines read: each is a judge call.
const MAX_LABELS: usize = 10_000;

/// Reads a labels file; `file` names it in errors.
pub fn parse_labels(file: &str, text: &str) -> Result<Vec<Labelled>, Error> {
    let mut labelled = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let at = |message: String, hint: &str| -> Error {
            Diagnostic::new(message)
                .in_file(file)
                .at(text, line as u64, 1)
                .hint(hint)
                .into()
        };
        let example = r#"e.g. {"input": "Is shipping free?", "output": "Over $75, yes.", "label": "pass"}"#;
        let object: serde_json::Map<String, Value> =
            serde_json::from_str(raw).map_err(|e| at(format!("line {line} is not a JSON object: {e}"), example))?;
        let text_of = |key: &str| -> Result<Option<String>, Error> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(at(format!("`{key}` on line {line} is {other}, not text"), example)),
            }
        };
        for key in object.keys() {
            if !["input", "output", "context", "rubric", "label", "id"].contains(&key.as_str()) {
                return Err(at(
                    format!("unknown key `{key}` on line {line}"),
                    "keys: input, output, label, and optionally context, rubric, id",
                ));
            }
        }
        let (Some(input), Some(output)) = (text_of("input")?, text_of("output")?) else {
            return Err(at(format!("line {line} needs an `input` and an `output`"), example));
        };
        let label = match object.get("label") {
            Some(Value::Bool(b)) => Label::Pass(*b),
            Some(Value::String(s)) if s == "pass" => Label::Pass(true),
            Some(Value::String(s)) if s == "fail" => Label::Pass(false),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (1..=5).contains(&s)) => {
                Label::Score(n.as_u64().unwrap_or(1) as u8)
            }
            other => {
                return Err(at(
                    format!(
                        "the label on line {line} is {}, not pass, fail or 1–5",
                        other.map_or("missing".to_owned(), Value::to_string)
                    ),
                    "label: \"pass\" or \"fail\" (the judge's pass), or an integer 1–5 (its score)",
                ));
            }
        };
        let (context, rubric) = (text_of("context")?, text_of("rubric")?);
        // As in a suite (`validate` refuses them): a judge asked about an empty context, or
        // an empty rubric, answers a question no gate asks.
        for (key, text) in [("context", &context), ("rubric", &rubric)] {
            if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
                return Err(at(
                    format!("the `{key}` on line {line} is empty"),
                    "give the text the judge is to weigh the output against, or leave the key out",
                ));
            }
        }
        let mut vars = serde_json::Map::new();
        vars.insert("input".to_owned(), Value::String(input));
        let check = match (context, rubric) {
            (Some(_), Some(_)) => {
                return Err(at(
                    format!("line {line} has both a `context` and a `rubric`"),
                    "a line asks one question: a context (hallucination) or a rubric",
                ));
            }
            (Some(context), None) => {
                vars.insert("context".to_owned(), Value::String(context));
                JudgeCheck::Hallucination {
                    context_var: "context".to_owned(),
                }
            }
            (None, Some(rubric)) => JudgeCheck::Rubric(rubric),
            (None, None) => JudgeCheck::Relevance,
        };
        let id = text_of("id")?.unwrap_or_else(|| format!("line {line}"));
        labelled.push(Labelled {
            line,
            check,
            case: Case {
                id,
                group: None,
                vars: vars.into(),
                asserts: std::sync::Arc::from([]),
                assert_source: std::sync::Arc::from(""),
                line: u32::try_from(line).unwrap_or(u32::MAX),
            },
            output,
            label,
        });
        if labelled.len() > MAX_LABELS {
            return Err(at(
                format!("more than {MAX_LABELS} labelled lines"),
                "check a sample of them",
            ));
        }
    }
    if labelled.is_empty() {
        return Err(Diagnostic::new("the labels file has no labelled line")
            .in_file(file)
            .hint("one JSON object a line: input, output, label")
            .into());
    }
    let scores = labelled.iter().filter(|l| matches!(l.label, Label::Score(_))).count();
    if scores != 0 && scores != labelled.len() {
        let first = labelled
            .iter()
            .find(|l| matches!(l.label, Label::Score(_)))
            .map_or(1, |l| l.line);
        return Err(Diagnostic::new("the labels mix pass/fail and 1–5 scores")
            .in_file(file)
            .at(text, first as u64, 1)
            .hint("one file, one scale: split them into two files")
            .into());
    }
    Ok(labelled)
}

/// The judge's question for each labelled line, for `model`.
pub fn requests(labelled: &[Labelled], model: &str) -> Vec<Result<Request, String>> {
    labelled
        .iter()
        .map(|l| super::judge::request(&l.check, model, &l.case, &l.output, l.line as u64))
        .collect()
}

/// The agreement of the judge's replies (`None`: the judge failed on that line) with the labels.
pub fn agreement(labelled: &[Labelled], replies: &[Option<Reply>], confidence: f64) -> Agreement {
    let scored = labelled.first().is_some_and(|l| matches!(l.label, Label::Score(_)));
    // Categories: pass/fail as 0/1, scores 1–5 as 0–4.
    let pairs: Vec<(usize, usize)> = labelled
        .iter()
        .zip(replies)
        .filter_map(|(l, reply)| {
            let reply = reply.as_ref()?;
            Some(match l.label {
                Label::Pass(pass) => (usize::from(pass), usize::from(reply.pass)),
                Label::Score(score) => (usize::from(score) - 1, usize::from(reply.score) - 1),
            })
        })
        .collect();
    let judged = pairs.len();
    let agreed = pairs.iter().filter(|(a, b)| a == b).count();
    let (k, weights) = if scored {
        (5, KappaWeights::Quadratic)
    } else {
        (2, KappaWeights::Unweighted)
    };
    let kappa = stats::cohens_kappa(&stats::contingency(pairs.iter().copied(), k), weights, confidence);
    Agreement {
        scale: if scored { "1-5" } else { "pass-fail" },
        labelled: labelled.len(),
        judged,
        errors: labelled.len() - judged,
        agreed,
        accuracy: (judged > 0).then(|| agreed as f64 / judged as f64),
        accuracy_ci: stats::wilson_interval(agreed as u64, judged as u64, confidence),
        kappa: kappa.map(|k| k.kappa),
        kappa_se: kappa.map(|k| k.se),
        // An interval of no width (no spread in the answers: the judge gave one answer to
        // everything) proves nothing, and is not shown as if it were certain.
        kappa_ci: kappa.map(|k| k.interval).filter(|[lo, hi]| hi - lo > 1e-6),
        kappa_weights: if scored { "quadratic" } else { "none" },
    }
}

/// The gated metrics a judge decides, when no `judge-check --record` at head measured that
/// judge (provider and model) on their question (its kind, the judge's instructions, the
/// rubric): one sentence for the comment.
pub fn unchecked_judges(
    planned: &[crate::plan::Planned<'_>],
    judge: Option<&JudgeSettings>,
    gates: &[GateSpec],
    head: &dyn crate::workspace::FileSource,
) -> Vec<String> {
    let Some(judge) = judge else { return Vec::new() };
    // (metric, question) of every gated judge assertion.
    let mut judged: Vec<(&str, String)> = planned
        .iter()
        .flat_map(|p| {
            p.candidate
                .asserts
                .iter()
                .chain(p.candidate.cases.iter().flat_map(|c| c.asserts.iter()))
        })
        .filter(|a| gates.iter().any(|g| g.metric == a.metric))
        .filter_map(|a| match &a.check {
            Check::Judge(check) => Some((a.metric.as_str(), question_id(check))),
            // judge-check's labels are verdicts on one output, not preferences between two:
            // no record can vouch for a pairwise judge yet.
            Check::Compare(_) => Some((a.metric.as_str(), "llm-compare".to_owned())),
            _ => None,
        })
        .collect();
    judged.sort_unstable();
    judged.dedup();
    if judged.is_empty() {
        return Vec::new();
    }
    let records = head.read(RECORD_PATH).ok().flatten().unwrap_or_default();
    let questions: Vec<String> = judged.iter().map(|(_, q)| q.clone()).collect();
    let (unmeasured, why) = match unmeasured(&records, &judge.provider, &judge.model, &questions) {
        None => (
            questions.iter().collect(),
            "whose agreement with labelled cases was never measured",
        ),
        Some(missing) => (
            missing,
            "whose judge-check did not ask their question (a rubric or the judge's instructions changed since)",
        ),
    };
    let mut metrics: Vec<&str> = judged
        .iter()
        .filter(|(_, q)| unmeasured.contains(&q))
        .map(|(m, _)| *m)
        .collect();
    metrics.dedup();
    let relies = |metrics: &[&str]| {
        format!(
            "{} {} on the judge (provider {}, model {})",
            metrics.join(", "),
            if metrics.len() == 1 { "relies" } else { "rely" },
            judge.provider,
            judge.model
        )
    };
    let mut warnings = Vec::new();
    if !metrics.is_empty() {
        warnings.push(format!(
            "{}, {why}: run promptgate judge-check --record and commit {RECORD_PATH}",
            relies(&metrics)
        ));
    }
    // Measured, and found no better than chance: the record is no vouching.
    let chance = at_chance(&records, &judge.provider, &judge.model, &questions);
    let mut weak: Vec<&str> = judged
        .iter()
        .filter(|(_, q)| chance.iter().any(|(c, _, _)| *c == q))
        .map(|(m, _)| *m)
        .collect();
    weak.dedup();
    if let Some((_, kappa, ci)) = chance.first() {
        let interval = ci.map_or(String::new(), |[lo, hi]| format!(", 95% interval [{lo:.2}, {hi:.2}]"));
        warnings.push(format!(
            "{}, whose agreement with labelled cases {RECORD_PATH} records as no better than chance (kappa {kappa:.2}{interval}): improve the judge or its rubric, then run promptgate judge-check --record again",
            relies(&weak)
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(pass: bool, score: u8) -> Option<Reply> {
        Some(Reply {
            pass,
            score,
            reason: String::new(),
        })
    }

    #[test]
    fn labels_are_read_with_their_question_and_bad_lines_named() {
        let text = "{\"input\": \"q\", \"output\": \"o\", \"context\": \"c\", \"label\": \"pass\"}\n\n\
                    {\"input\": \"q\", \"output\": \"o\", \"label\": false}\n";
        let labelled = parse_labels("labels.jsonl", text).unwrap();
        assert_eq!(labelled.len(), 2);
        assert!(matches!(labelled[0].check, JudgeCheck::Hallucination { .. }));
        assert_eq!((labelled[1].line, labelled[1].label), (3, Label::Pass(false)));
        assert_eq!(labelled[1].check, JudgeCheck::Relevance);
        for (bad, why) in [
            (
                "{\"input\": \"q\", \"output\": \"o\", \"label\": 7}",
                "is 7, not pass, fail or 1–5",
            ),
            (
                "{\"input\": \"q\", \"label\": \"pass\"}",
                "needs an `input` and an `output`",
            ),
            (
                "{\"input\": \"q\", \"output\": \"o\", \"label\": \"pass\", \"lable\": 1}",
                "unknown key `lable`",
            ),
            ("not json", "line 1 is not a JSON object"),
            (
                "{\"input\": \"q\", \"output\": \"o\", \"label\": 3}\n{\"input\": \"q\", \"output\": \"o\", \"label\": \"pass\"}",
                "mix pass/fail and 1–5",
            ),
            (
                "{\"input\": \"q\", \"output\": \"o\", \"context\": \" \", \"label\": \"pass\"}",
                "the `context` on line 1 is empty",
            ),
            (
                "{\"input\": \"q\", \"output\": \"o\", \"rubric\": \"\", \"label\": \"pass\"}",
                "the `rubric` on line 1 is empty",
            ),
        ] {
            let error = parse_labels("labels.jsonl", bad).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::exit::USAGE);
            assert!(error.to_string().contains(why), "{bad}: {error}");
            assert!(error.to_string().contains("labels.jsonl"), "{error}");
        }
    }

    #[test]
    fn agreement_on_pass_fail_matches_the_references() {
        // The pairs of stats::kappa's binary test: labels a, judge b.
        let a = [1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1];
        let b = [1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1];
        let mut text = String::new();
        for label in a {
            text.push_str(&format!(
                "{{\"input\": \"q\", \"output\": \"o\", \"label\": {}}}\n",
                label == 1
            ));
        }
        let labelled = parse_labels("l.jsonl", &text).unwrap();
        let mut replies: Vec<Option<Reply>> = b.iter().map(|&j| reply(j == 1, 3)).collect();
        let got = agreement(&labelled, &replies, 0.95);
        assert_eq!((got.judged, got.agreed, got.errors), (20, 16, 0));
        // statsmodels.stats.proportion.proportion_confint(16, 20, method='wilson')
        // = (0.5839825677481064, 0.919342337420202)
        let ci = got.accuracy_ci.unwrap();
        assert!((ci[0] - 0.5839825677481064).abs() < 1e-12 && (ci[1] - 0.919342337420202).abs() < 1e-12);
        // sklearn.metrics.cohen_kappa_score(a, b) = 0.5833333333333333
        assert!((got.kappa.unwrap() - 0.5833333333333333).abs() < 1e-12);
        // A failed judgement is left out, and counted.
        replies[0] = None;
        let fewer = agreement(&labelled, &replies, 0.95);
        assert_eq!((fewer.judged, fewer.errors), (19, 1));
        // A judge that passes everything: kappa 0 (observed agreement 12/20 = 0.6, chance
        // agreement 0.6 × 1 + 0.4 × 0 = 0.6, so (0.6 − 0.6) / (1 − 0.6) = 0), and no interval
        // (its standard error is 0 but for rounding: one of no width would read as certainty).
        let all_pass: Vec<Option<Reply>> = a.iter().map(|_| reply(true, 3)).collect();
        let flat = agreement(&labelled, &all_pass, 0.95);
        assert_eq!((flat.kappa, flat.kappa_ci), (Some(0.0), None));
    }

    #[test]
    fn agreement_on_scores_is_quadratic_weighted() {
        let a = [5, 4, 4, 3, 2, 1, 5, 3, 2, 4, 1, 5, 3, 4, 2, 5, 1, 3, 4, 2, 5, 4];
        let b = [5, 4, 3, 3, 2, 2, 4, 3, 1, 4, 1, 5, 4, 4, 2, 5, 2, 3, 5, 2, 4, 4];
        let text: String = a
            .iter()
            .map(|l| format!("{{\"input\": \"q\", \"output\": \"o\", \"label\": {l}}}\n"))
            .collect();
        let labelled = parse_labels("l.jsonl", &text).unwrap();
        let replies: Vec<Option<Reply>> = b.iter().map(|&s| reply(s >= 3, s)).collect();
        let got = agreement(&labelled, &replies, 0.95);
        assert_eq!((got.scale, got.kappa_weights, got.agreed), ("1-5", "quadratic", 14));
        // sklearn.metrics.cohen_kappa_score(a, b, weights='quadratic') = 0.8929440389294404
        assert!((got.kappa.unwrap() - 0.8929440389294404).abs() < 1e-12);
        // statsmodels.stats.inter_rater.cohens_kappa(table, wt='quadratic').std_kappa
        // = 0.032786876734716974
        assert!((got.kappa_se.unwrap() - 0.032786876734716974).abs() < 1e-12);
    }

    #[test]
    fn a_record_vouches_only_for_the_questions_it_asked() {
        let hallucination = question_id(&JudgeCheck::Hallucination {
            context_var: "context".to_owned(),
        });
        // The judge reads the context between tags, never the var's name.
        let other_var = question_id(&JudgeCheck::Hallucination {
            context_var: "article".to_owned(),
        });
        assert_eq!(hallucination, other_var);
        let relevance = question_id(&JudgeCheck::Relevance);
        let window = question_id(&JudgeCheck::Rubric("States the refund window.".to_owned()));
        let window_and_fee = question_id(&JudgeCheck::Rubric("States the refund window and fee.".to_owned()));
        assert!(hallucination.starts_with("hallucination:") && relevance.starts_with("relevance:"));
        assert!(window.starts_with("rubric:"));
        assert_ne!(window, window_and_fee, "a changed rubric is another question");

        let measured = Agreement {
            scale: "pass-fail",
            labelled: 24,
            judged: 24,
            errors: 0,
            agreed: 21,
            accuracy: Some(0.875),
            accuracy_ci: None,
            kappa: Some(0.75),
            kappa_se: None,
            kappa_ci: None,
            kappa_weights: "none",
        };
        let record = record_line(
            "judge",
            "gpt-4o-mini",
            "labels.jsonl",
            &[hallucination.clone(), relevance.clone()],
            &measured,
        );
        let asked = [hallucination.clone(), window.clone()];
        assert_eq!(unmeasured(&record, "judge", "gpt-4o-mini", &asked), Some(vec![&window]));
        let both = [hallucination.clone(), relevance.clone()];
        assert_eq!(unmeasured(&record, "judge", "gpt-4o-mini", &both), Some(vec![]));
        // Another model, or another provider, is another judge.
        assert_eq!(unmeasured(&record, "judge", "gpt-4o", &both), None);
        assert_eq!(unmeasured(&record, "offline", "gpt-4o-mini", &both), None);
        // A record written before records named their questions vouches for none of them.
        let old =
            r#"{"judge": "judge", "model": "gpt-4o-mini", "labels": "x", "agreement": {"judged": 24, "kappa": 0.75}}"#;
        assert_eq!(
            unmeasured(old, "judge", "gpt-4o-mini", &both),
            Some(vec![&hallucination, &relevance])
        );
        // A check whose every call failed measured nothing.
        let failed = record.replace("\"judged\":24", "\"judged\":0");
        assert_eq!(unmeasured(&failed, "judge", "gpt-4o-mini", &both), None);
        // Nor did one whose kappa is undefined (two labels, both "pass").
        let undefined = record_line(
            "judge",
            "gpt-4o-mini",
            "labels.jsonl",
            &both,
            &Agreement {
                labelled: 2,
                judged: 2,
                agreed: 2,
                accuracy: Some(1.0),
                kappa: None,
                ..measured.clone()
            },
        );
        assert_eq!(unmeasured(&undefined, "judge", "gpt-4o-mini", &both), None);

        // Measured at chance (the interval reaches 0), then again better: the latest counts.
        let asking = |question: &String, agreement: &Agreement| {
            record_line(
                "judge",
                "gpt-4o-mini",
                "labels.jsonl",
                std::slice::from_ref(question),
                agreement,
            )
        };
        assert!(at_chance(&record, "judge", "gpt-4o-mini", &both).is_empty());
        let chance = Agreement {
            kappa: Some(0.05),
            kappa_ci: Some([-0.2, 0.3]),
            ..measured.clone()
        };
        let poor = asking(&hallucination, &chance);
        let records = format!("{record}\n{poor}");
        assert_eq!(
            at_chance(&records, "judge", "gpt-4o-mini", &both),
            vec![(&hallucination, 0.05, Some([-0.2, 0.3]))]
        );
        assert!(at_chance(&format!("{poor}\n{record}"), "judge", "gpt-4o-mini", &both).is_empty());
        // A judge that passed everything: kappa 0 and no interval.
        let flat = Agreement {
            kappa: Some(0.0),
            ..measured.clone()
        };
        let flat = asking(&relevance, &flat);
        assert_eq!(
            at_chance(&flat, "judge", "gpt-4o-mini", &both),
            vec![(&relevance, 0.0, None)]
        );
        // Every label and every answer "pass": kappa undefined (null), agreement perfect.
        let undefined = Agreement {
            kappa: None,
            ..measured.clone()
        };
        let undefined = asking(&relevance, &undefined);
        assert!(at_chance(&undefined, "judge", "gpt-4o-mini", &both).is_empty());
    }
}
