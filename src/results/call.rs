//! One call's record in `results.json`: what it cost, how long it took, how it scored.

use serde::{Deserialize, Serialize};

use super::outputs::output_elsewhere;
use super::{Evaluated, Latency, Name, Score, Scores, Text, ThinVec, Tokens, is_zero_usd};

/// One call's record. Its rarely set parts (an error, failures, evaluation records) are held
/// in one word, [`Evaluated`], and read through [`Call::error`] and [`Call::failures`]: a run
/// holds every call until its outputs are written, a million of them at the largest.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
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
    #[serde(flatten)]
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

impl Call {
    /// Why the call has no output; `None` when it has one.
    pub fn error(&self) -> Option<&str> {
        self.evaluation.error()
    }

    /// Why the call failed its assertions, one line each (empty when it passed).
    pub fn failures(&self) -> &[String] {
        self.evaluation.failures()
    }

    pub fn set_error(&mut self, error: Option<Text>) {
        self.evaluation.change(|e| e.error = error);
    }

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
