//! What every source turns into: one [`Record`] per request, split by arm, and an account of
//! every line that could not be used ([`Problems`]), so nothing is dropped silently.

use std::collections::BTreeMap;

use crate::error::{Diagnostic, Error, did_you_mean};
use crate::providers::Usage;
use crate::providers::pricing::PriceTable;
use crate::suite::canary::ArmSelector;

/// One request as the logs describe it. Quantities a log line does not carry are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Record {
    /// Seconds since the Unix epoch; NaN when the source has no timestamps.
    pub time: f64,
    pub latency_ms: Option<f64>,
    pub cost_usd: Option<f64>,
    pub error: bool,
    /// `Some(true)` for a thumbs-down, `Some(false)` for a thumbs-up, `None` without feedback.
    pub thumbs_down: Option<bool>,
    pub quality: Option<f64>,
    pub hallucination: Option<bool>,
    /// Its model has tokens but no price: what it cost is unknown, not nothing.
    pub unpriced: bool,
}

/// The records of both arms, in the order read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Records {
    pub baseline: Vec<Record>,
    pub canary: Vec<Record>,
}

impl Records {
    /// The records of both arms whose time lies in `[from, to)`.
    pub fn between(&self, from: f64, to: f64) -> Records {
        let keep = |r: &&Record| r.time >= from && r.time < to;
        Records {
            baseline: self.baseline.iter().filter(keep).copied().collect(),
            canary: self.canary.iter().filter(keep).copied().collect(),
        }
    }

    /// The latest timestamp of either arm (NaN without timestamps).
    pub fn latest(&self) -> f64 {
        self.baseline
            .iter()
            .chain(&self.canary)
            .map(|r| r.time)
            .filter(|t| t.is_finite())
            .fold(f64::NAN, f64::max)
    }

    /// The earliest timestamp of either arm (NaN without timestamps).
    pub fn earliest(&self) -> f64 {
        self.baseline
            .iter()
            .chain(&self.canary)
            .map(|r| r.time)
            .filter(|t| t.is_finite())
            .fold(f64::NAN, f64::min)
    }
}

/// Why a line could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    Malformed,
    NotObject,
    BadValue,
    BadTimestamp,
    OutOfOrder,
}

impl Problem {
    pub fn describe(self) -> &'static str {
        match self {
            Problem::Malformed => "not valid JSON or CSV",
            Problem::NotObject => "not a JSON object",
            Problem::BadValue => "with a value of the wrong type",
            Problem::BadTimestamp => "with an unreadable timestamp",
            Problem::OutOfOrder => "with a timestamp out of its arm's order (logs concatenated?)",
        }
    }
}

/// The first few lines of one kind of problem are kept to point at; the rest are counted.
const EXAMPLES_KEPT: usize = 5;

/// One unusable line: where, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    pub line: u64,
    pub column: u64,
    pub detail: String,
    /// The start of the line, for the diagnostic (long lines are cut).
    pub text: String,
}

/// Every unusable line, counted by kind, with the first few of each kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    pub by_kind: BTreeMap<Problem, (u64, Vec<BadLine>)>,
}

impl Problems {
    pub fn add(&mut self, kind: Problem, line: u64, column: u64, detail: String, text: &str) {
        let (count, examples) = self.by_kind.entry(kind).or_default();
        *count += 1;
        if examples.len() < EXAMPLES_KEPT {
            let text: String = text.chars().take(200).collect();
            examples.push(BadLine {
                line,
                column,
                detail,
                text,
            });
        }
    }

    pub fn total(&self) -> u64 {
        self.by_kind.values().map(|(n, _)| n).sum()
    }

    /// One sentence per kind: "3 lines not valid JSON or CSV (lines 4, 9, 12): …".
    pub fn sentences(&self) -> Vec<String> {
        self.by_kind
            .iter()
            .map(|(kind, (count, examples))| {
                // Line 0: a span of an export written as one document across lines, which
                // has no line of its own to name.
                let lines: Vec<String> = examples
                    .iter()
                    .filter(|b| b.line > 0)
                    .map(|b| b.line.to_string())
                    .collect();
                let more = if *count as usize > examples.len() { ", …" } else { "" };
                let first = examples.first().map(|b| format!(": {}", b.detail)).unwrap_or_default();
                let at = if lines.is_empty() {
                    "in a document across lines".to_owned()
                } else {
                    format!(
                        "line{} {}{more}",
                        if lines.len() == 1 { "" } else { "s" },
                        lines.join(", ")
                    )
                };
                format!(
                    "{count} {} {} ({at}){first}",
                    if *count == 1 { "line" } else { "lines" },
                    kind.describe(),
                )
            })
            .collect()
    }
}

/// What reading a source found besides the records: enough to say what was used and why the
/// rest was not.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadNotes {
    /// Non-empty lines (or spans, for OTLP) read.
    pub lines: u64,
    /// For OTLP, where a line holds many spans: the non-empty lines read, and those that could
    /// not be read at all (each a whole export request's spans lost). Their share is held to
    /// the same limit as the spans', on its own: a broken line is not one bad span of many.
    pub export_lines: u64,
    pub unreadable_export_lines: u64,
    pub problems: Problems,
    /// Arm values that are neither the baseline's nor the canary's, with their counts.
    pub other_arms: BTreeMap<String, u64>,
    /// Records without the arm field at all.
    pub without_arm: u64,
    /// Records per quantity that carried it (`latency_ms`, `cost_usd`, …).
    pub present: BTreeMap<&'static str, u64>,
    /// Models with tokens but no price, and how many records they cost nothing in.
    pub unpriced_models: BTreeMap<String, u64>,
    /// A file read as documents across lines that stops being JSON, or a CSV log with a quoted
    /// cell never closed: where, and why. What
    /// follows cannot be read, so the reading is bad input whatever the share.
    pub cut: Option<(u64, String)>,
}

/// Turns token counts into a cost where the log carries no cost.
pub struct Costing<'a> {
    pub prices: &'a PriceTable,
}

impl Costing<'_> {
    /// The record's cost: the logged cost, else tokens × the model's price; a model without a
    /// price is noted, never taken as free. The second value says the record is unpriced.
    pub fn cost(
        &self,
        logged: Option<f64>,
        model: Option<&str>,
        usage: Option<Usage>,
        notes: &mut ReadNotes,
    ) -> (Option<f64>, bool) {
        if logged.is_some() {
            return (logged, false);
        }
        let (Some(model), Some(usage)) = (model, usage) else {
            return (None, false);
        };
        match self.prices.cost(model, &usage) {
            Some(cost) => (Some(cost), false),
            None => {
                *notes.unpriced_models.entry(model.to_owned()).or_default() += 1;
                (None, true)
            }
        }
    }
}

/// `d` placed at the first problem line of the reading, if one was noted.
fn at_first_problem(notes: &ReadNotes, mut d: Diagnostic) -> Diagnostic {
    let first = (notes.problems.by_kind.values())
        .flat_map(|(_, e)| e.first())
        .min_by_key(|b| b.line);
    if let Some(b) = first.filter(|b| b.line > 0) {
        d = d.at(&b.text, 1, b.column);
        d.line = Some(b.line);
    }
    d
}

/// The checks every source's reading ends with: too many bad lines, an arm with no records, a
/// configured field found in no record. Each is bad input (exit 2) with a hint.
///
/// `required` names the arm that must have records when drifting; comparing (`None`), the
/// baseline must (production traffic it always has: none is a selector that matches nothing),
/// while a canary without a record is one with no traffic yet: a hold, and [`reading_notes`]
/// says so, with a "did you mean" when a value seen is close to the one configured.
pub fn check_reading(
    file: &str,
    records: &Records,
    notes: &ReadNotes,
    arms: &ArmSelector,
    explicit_fields: &[(&'static str, &str)],
    max_bad_share: f64,
    required: Option<super::DriftArm>,
) -> Result<(), Error> {
    let bad = notes.problems.total();
    // A cut first: a file cut before its first record has none, and is not empty.
    if let Some((line, why)) = &notes.cut {
        let mut d = Diagnostic::new(format!("the export cannot be read past line {line}: {why}"))
            .in_file(file)
            .hint("everything after it is unreadable, so nothing is judged: fix or re-export the file");
        d.line = Some(*line);
        return Err(d.into());
    }
    if notes.lines == 0 {
        return Err(Diagnostic::new("the source has no records")
            .in_file(file)
            .hint("the file is empty: check the export, or the path under `canary.source`")
            .into());
    }
    let broken = notes.unreadable_export_lines;
    let line_share = broken as f64 / notes.export_lines.max(1) as f64;
    if broken > 0 && line_share > max_bad_share {
        let d = at_first_problem(
            notes,
            Diagnostic::new(format!(
                "{broken} of {} lines ({:.1}%) cannot be read, above the limit of {}%: every span on them is lost",
                notes.export_lines,
                line_share * 100.0,
                max_bad_share * 100.0
            ))
            .in_file(file),
        );
        return Err(d
            .hint("fix the export, or raise `canary.max_bad_share` if such lines are expected")
            .into());
    }
    let share = bad as f64 / notes.lines as f64;
    if bad > 0 && share > max_bad_share {
        let mut d = at_first_problem(
            notes,
            Diagnostic::new(format!(
                "{bad} of {} lines ({:.1}%) cannot be used, above the limit of {}%",
                notes.lines,
                share * 100.0,
                max_bad_share * 100.0
            ))
            .in_file(file),
        );
        for sentence in notes.problems.sentences() {
            d = d.hint(sentence);
        }
        return Err(d
            .hint("fix the export, or raise `canary.max_bad_share` if such lines are expected")
            .into());
    }
    let seen = || {
        let mut values: Vec<(&String, &u64)> = notes.other_arms.iter().collect();
        values.sort_by(|a, b| b.1.cmp(a.1));
        values
            .iter()
            .take(5)
            .map(|(v, n)| format!("`{v}` ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (name, value, n, arm) in [
        (
            "baseline",
            &arms.baseline,
            records.baseline.len(),
            super::DriftArm::Baseline,
        ),
        ("canary", &arms.canary, records.canary.len(), super::DriftArm::Canary),
    ] {
        // Comparing, the baseline must have records (both arms without any fail on it).
        let must = arm == required.unwrap_or(super::DriftArm::Baseline);
        if n == 0 && must {
            let mut d = Diagnostic::new(format!(
                "no record of the {name} arm: none has `{}` equal to `{value}`",
                arms.field
            ))
            .in_file(file);
            if let Some(s) = did_you_mean(value, notes.other_arms.keys().map(String::as_str)) {
                d = d.hint(format!("did you mean `{s}`?"));
            }
            d = if notes.other_arms.is_empty() {
                d.hint(format!(
                    "no record carries `{}` ({} without it): check `arm_field`",
                    arms.field, notes.without_arm
                ))
            } else {
                d.hint(format!("values seen: {}", seen()))
            };
            return Err(d.into());
        }
    }
    // After the arms: a mistyped `arm_field` routes no record, and every mapped field would
    // seem missing (it blamed `latency_ms`, never the arm field).
    for (quantity, path) in explicit_fields {
        if notes.present.get(quantity).copied().unwrap_or(0) == 0 {
            return Err(Diagnostic::new(format!(
                "no record has the field `{path}` (mapped to `{quantity}`)"
            ))
            .in_file(file)
            .hint(format!(
                "check `canary.source.fields.{quantity}`: dotted paths reach into objects, e.g. `usage.input_tokens`"
            ))
            .into());
        }
    }
    Ok(())
}

/// Sentences for the report about what was read but not used (below the limits), and, when the
/// arms are compared (`compared`: their records), about an arm that has no record yet.
pub fn reading_notes(compared: Option<&Records>, notes: &ReadNotes, arms: &ArmSelector) -> Vec<String> {
    let mut out = Vec::new();
    if compared.is_some_and(|r| r.canary.is_empty()) {
        let close = did_you_mean(&arms.canary, notes.other_arms.keys().map(String::as_str))
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        out.push(format!(
            "no record of the canary arm yet: none has `{}` equal to `{}`{close}; the canary holds until it has traffic",
            arms.field, arms.canary
        ));
    }
    out.extend(notes.problems.sentences().into_iter().map(|s| format!("{s} — skipped")));
    if !notes.other_arms.is_empty() {
        let total: u64 = notes.other_arms.values().sum();
        let values: Vec<String> = notes.other_arms.keys().take(5).map(|v| format!("`{v}`")).collect();
        out.push(format!(
            "{total} records belong to neither arm ({} {}) — not compared",
            arms.field,
            values.join(", ")
        ));
    }
    if notes.without_arm > 0 {
        out.push(format!(
            "{} records have no `{}` — not compared",
            notes.without_arm, arms.field
        ));
    }
    for (model, n) in &notes.unpriced_models {
        out.push(format!(
            "{n} records of model `{model}` have tokens but no price — add it under `pricing:` to count their cost"
        ));
    }
    out
}
