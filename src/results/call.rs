//! One call's record in `results.json`: what it cost, how long it took, how it scored, and
//! the rarely set rest (its error, failures and evaluation records) in one word.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::outputs::output_elsewhere;
use super::{Judgement, Latency, Name, Score, Scores, Text, ThinVec, Tokens, is_zero_usd};

/// One call's record. Its rarely set parts (an error, failures, evaluation records) are held
/// in one word, [`Evaluated`], and read through [`Call::error`] and [`Call::failures`]: a run
/// holds every call until its outputs are written, a million of them at the largest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Call {
    pub repeat: u32,
    /// In schema 2 absent here and found in `calls.jsonl`; `None` also for an errored call.
    pub output: Option<Text>,
    pub latency_ms: Latency,
    pub tokens: Tokens,
    /// What this call cost: 0 for a cache hit.
    pub cost_usd: f64,
    /// What the call costs at list price, cached or not: the basis of `cost_per_request`.
    pub list_cost_usd: f64,
    /// Its model has no price (in the pricing table in force or the built-in one): its costs
    /// read 0, and `cost_per_request` has no value for it (an unknown price is not a free call).
    /// Absent when false.
    pub unpriced: bool,
    pub cached: bool,
    /// Attempts made (1 = no retry; 0 = never sent: cache hit, render error, budget).
    pub attempts: u32,
    /// The provider that answered; differs from the experiment's when the call fell back.
    pub provider: Option<Name>,
    pub fell_back: bool,
    /// Sent through its provider's batch API (`run --batch`): `cost_usd` is at the batch rate,
    /// and it has no latency. Absent when false.
    pub batch: bool,
    /// `pass` plus one entry per assertion or scorer, by name.
    pub scores: Scores,
    /// Its error, why it failed its assertions, and what evaluating it added besides the
    /// scores (the scorers that failed, the judges' records, an embedding's cost): written as
    /// the fields `error`, `failures`, `scorer_errors`, `judgements` and `embedding_cost_usd`,
    /// the last three absent when empty.
    pub evaluation: Evaluated,
}

/// The fields in the order `results.json` has always had them.
impl Serialize for Call {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("repeat", &self.repeat)?;
        if !output_elsewhere(&self.output) {
            map.serialize_entry("output", &self.output)?;
        }
        map.serialize_entry("error", &self.error())?;
        map.serialize_entry("latency_ms", &self.latency_ms)?;
        map.serialize_entry("tokens", &self.tokens)?;
        map.serialize_entry("cost_usd", &self.cost_usd)?;
        map.serialize_entry("list_cost_usd", &self.list_cost_usd)?;
        if self.unpriced {
            map.serialize_entry("unpriced", &true)?;
        }
        map.serialize_entry("cached", &self.cached)?;
        map.serialize_entry("attempts", &self.attempts)?;
        map.serialize_entry("provider", &self.provider)?;
        map.serialize_entry("fell_back", &self.fell_back)?;
        if self.batch {
            map.serialize_entry("batch", &true)?;
        }
        map.serialize_entry("scores", &self.scores)?;
        map.serialize_entry("failures", self.failures())?;
        let evaluation = &self.evaluation;
        if !evaluation.scorer_errors().is_empty() {
            map.serialize_entry("scorer_errors", evaluation.scorer_errors())?;
        }
        if !evaluation.judgements().is_empty() {
            map.serialize_entry("judgements", evaluation.judgements())?;
        }
        if !is_zero_usd(&evaluation.embedding_cost_usd()) {
            map.serialize_entry("embedding_cost_usd", &evaluation.embedding_cost_usd())?;
        }
        map.end()
    }
}

/// Read field by field, each absent one its default and an unknown one passed over, as
/// serde's derive with `default` reads; by hand so that the rarely set fields go straight into
/// their one word (serde's `flatten` would buffer them, every call, and report a malformed
/// one at the end of its call instead of at the field).
impl<'de> Deserialize<'de> for Call {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Call, D::Error> {
        deserializer.deserialize_map(CallVisitor)
    }
}

/// A call's fields by name, in the order it writes them.
#[derive(Clone, Copy)]
enum Field {
    Repeat,
    Output,
    Error,
    LatencyMs,
    Tokens,
    CostUsd,
    ListCostUsd,
    Unpriced,
    Cached,
    Attempts,
    Provider,
    FellBack,
    Batch,
    Scores,
    Failures,
    ScorerErrors,
    Judgements,
    EmbeddingCostUsd,
    Other,
}

/// The fields' names, in [`Field`]'s order.
const FIELDS: [&str; 18] = [
    "repeat",
    "output",
    "error",
    "latency_ms",
    "tokens",
    "cost_usd",
    "list_cost_usd",
    "unpriced",
    "cached",
    "attempts",
    "provider",
    "fell_back",
    "batch",
    "scores",
    "failures",
    "scorer_errors",
    "judgements",
    "embedding_cost_usd",
];

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Field, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a call's field name")
            }

            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "repeat" => Field::Repeat,
                    "output" => Field::Output,
                    "error" => Field::Error,
                    "latency_ms" => Field::LatencyMs,
                    "tokens" => Field::Tokens,
                    "cost_usd" => Field::CostUsd,
                    "list_cost_usd" => Field::ListCostUsd,
                    "unpriced" => Field::Unpriced,
                    "cached" => Field::Cached,
                    "attempts" => Field::Attempts,
                    "provider" => Field::Provider,
                    "fell_back" => Field::FellBack,
                    "batch" => Field::Batch,
                    "scores" => Field::Scores,
                    "failures" => Field::Failures,
                    "scorer_errors" => Field::ScorerErrors,
                    "judgements" => Field::Judgements,
                    "embedding_cost_usd" => Field::EmbeddingCostUsd,
                    _ => Field::Other,
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

struct CallVisitor;

impl<'de> Visitor<'de> for CallVisitor {
    type Value = Call;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a call: an object of its fields")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Call, A::Error> {
        let mut call = Call::default();
        let mut rare = Evaluation::default();
        // A field given twice is an error, as serde's derive has it (the later would win
        // silently: an error written over with `null` would read as a completed call).
        let mut seen = 0u32;
        while let Some(field) = map.next_key::<Field>()? {
            if !matches!(field, Field::Other) {
                let bit = 1 << field as u32;
                if seen & bit != 0 {
                    return Err(de::Error::duplicate_field(FIELDS[field as usize]));
                }
                seen |= bit;
            }
            match field {
                Field::Repeat => call.repeat = map.next_value()?,
                Field::Output => call.output = map.next_value()?,
                Field::Error => rare.error = map.next_value()?,
                Field::LatencyMs => call.latency_ms = map.next_value()?,
                Field::Tokens => call.tokens = map.next_value()?,
                Field::CostUsd => call.cost_usd = map.next_value()?,
                Field::ListCostUsd => call.list_cost_usd = map.next_value()?,
                Field::Unpriced => call.unpriced = map.next_value()?,
                Field::Cached => call.cached = map.next_value()?,
                Field::Attempts => call.attempts = map.next_value()?,
                Field::Provider => call.provider = map.next_value()?,
                Field::FellBack => call.fell_back = map.next_value()?,
                Field::Batch => call.batch = map.next_value()?,
                Field::Scores => call.scores = map.next_value()?,
                Field::Failures => rare.failures = map.next_value()?,
                Field::ScorerErrors => rare.scorer_errors = map.next_value()?,
                Field::Judgements => rare.judgements = map.next_value()?,
                Field::EmbeddingCostUsd => rare.embedding_cost_usd = map.next_value()?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        call.evaluation = rare.into();
        Ok(call)
    }
}

impl Call {
    /// Why the call has no output; `None` when it has one.
    pub fn error(&self) -> Option<&str> {
        self.evaluation.error()
    }

    /// Why the call failed its assertions, one line each (empty when it passed).
    pub fn failures(&self) -> &[String] {
        self.evaluation.failures()
    }

    #[cfg(test)]
    pub fn set_error(&mut self, error: Option<Text>) {
        self.evaluation.change(|e| e.error = error);
    }

    #[cfg(test)]
    pub fn set_failures(&mut self, failures: ThinVec<String>) {
        self.evaluation.change(|e| e.failures = failures);
    }

    pub fn passed(&self) -> bool {
        self.pass() == Some(true)
    }

    /// Whether the call passed its assertions: `None` when that is unknown (no assertion
    /// failed, but a judge or an `exec` scorer could not score the output).
    pub fn pass(&self) -> Option<bool> {
        match self.scores.get("pass") {
            Some(Score::Bool(pass)) => Some(*pass),
            _ => None,
        }
    }
}

/// What a call has besides its numbers and scores: its error, why it failed its assertions,
/// and what evaluating it added (an `exec` scorer that failed, a judge's records, an
/// embedding's cost). Most calls have none of these, so a call holds them in one word: nothing
/// when empty, else a box. Reads and writes as the fields a call's JSON has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluated(Option<Box<Evaluation>>);

/// A call's error, failures and evaluation records, read and written as fields of the call's
/// JSON object (by [`Call`]'s own `Deserialize` and `Serialize`). The records' cost is
/// the evaluation's, never the change's (it is not in the call's `cost_usd`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// Why the call has no output (`None` when it has one).
    pub error: Option<Text>,
    /// Why the call failed its assertions, one line each (empty when it passed).
    pub failures: ThinVec<String>,
    /// Scorers that could not score this output (an `exec` scorer that failed), one line
    /// each: their scores are missing from the call's `scores`.
    pub scorer_errors: ThinVec<String>,
    /// What the judges said of this output: one per judge assertion and judge repeat.
    pub judgements: ThinVec<Judgement>,
    /// What embedding this output (and, the first time, its reference) for an embedding
    /// similarity cost.
    pub embedding_cost_usd: f64,
}

impl Evaluation {
    fn is_empty(&self) -> bool {
        self.error.is_none()
            && self.failures.is_empty()
            && self.scorer_errors.is_empty()
            && self.judgements.is_empty()
            && is_zero_usd(&self.embedding_cost_usd)
    }
}

impl From<Evaluation> for Evaluated {
    fn from(evaluation: Evaluation) -> Evaluated {
        Evaluated((!evaluation.is_empty()).then(|| Box::new(evaluation)))
    }
}

impl Evaluated {
    pub fn error(&self) -> Option<&str> {
        self.0.as_ref().and_then(|e| e.error.as_deref())
    }

    pub fn failures(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |e| &e.failures)
    }

    pub fn scorer_errors(&self) -> &[String] {
        self.0.as_ref().map_or(&[], |e| &e.scorer_errors)
    }

    pub fn judgements(&self) -> &[Judgement] {
        self.0.as_ref().map_or(&[], |e| &e.judgements)
    }

    pub fn embedding_cost_usd(&self) -> f64 {
        self.0.as_ref().map_or(0.0, |e| e.embedding_cost_usd)
    }

    /// The records changed by `change`; none held if that leaves them empty. Scoring builds
    /// a call's records whole (`Evaluation` into `Evaluated`); only the tests change them.
    #[cfg(test)]
    pub fn change<T>(&mut self, change: impl FnOnce(&mut Evaluation) -> T) -> T {
        let evaluation = self.0.get_or_insert_default();
        let result = change(evaluation);
        if evaluation.is_empty() {
            self.0 = None;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names table and the names read agree: each name reads as the field at its place.
    #[test]
    fn each_field_name_reads_as_the_field_at_its_place() {
        for (i, name) in FIELDS.iter().enumerate() {
            let field: Field = serde_json::from_value(serde_json::Value::from(*name)).unwrap();
            assert_eq!(field as usize, i, "{name}");
        }
        let other: Field = serde_json::from_str("\"later\"").unwrap();
        assert!(matches!(other, Field::Other));
    }

    #[test]
    fn a_field_given_twice_is_an_error_and_an_unknown_one_twice_is_not() {
        for name in FIELDS {
            // A default call's value, or for a field it leaves out, one of the field's type.
            let value = match serde_json::to_value(Call::default()).unwrap().get(name) {
                Some(value) => value.clone(),
                None => match name {
                    "unpriced" | "batch" => serde_json::json!(false),
                    "scorer_errors" | "judgements" => serde_json::json!([]),
                    _ => serde_json::json!(0.5),
                },
            };
            let text = format!("{{\"{name}\": {value}, \"{name}\": {value}}}");
            let e = serde_json::from_str::<Call>(&text).unwrap_err();
            assert!(
                e.to_string().contains(&format!("duplicate field `{name}`")),
                "{text}: {e}"
            );
        }
        let read: Call = serde_json::from_str(r#"{"later": 1, "later": 2, "repeat": 3}"#).unwrap();
        assert_eq!(read.repeat, 3);
    }
}
