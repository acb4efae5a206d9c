//! The facts of running: calls made, cached, errored and refused, what they cost, how long.

use serde::{Deserialize, Serialize};

use super::{is_zero, is_zero_usd};

/// Every run's `results.json` `run`: what the calls themselves say (`verdict::count_calls`) and
/// what the runner counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunFacts {
    pub cases: usize,
    pub calls: usize,
    pub completed: usize,
    pub errored: usize,
    pub cache_hits: usize,
    pub spend_usd: f64,
    /// Estimated before the run, for comparison with the spend.
    pub estimated_usd: f64,
    /// True when every call went to the offline mock: spend is simulated.
    pub simulated: bool,
    pub duration_ms: u64,
    /// Retries made across all calls.
    #[serde(default)]
    pub retries: usize,
    /// Calls answered by a fallback provider.
    #[serde(default)]
    pub fallbacks: usize,
    /// Responses that were rate limits (429).
    #[serde(default)]
    pub rate_limited: usize,
    /// Calls recovered from the journal of an interrupted run.
    #[serde(default)]
    pub resumed: usize,
    /// Pairs measured again, both arms sent, because one call failed with a rate limit, a
    /// server error or a timeout while the other came from the cache (`runner::remeasure`):
    /// the first measurement is replaced, its attempts counted in the new one's, and what it
    /// and the judge calls on it were paid stays in `spend_usd`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remeasured: usize,
    /// Calls the budget's hard cap refused: the run (and a merge of its shard) is an error.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub budget_refused: usize,
    /// Judge calls made (after its retry, one per judgement) and those that failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub judge_calls: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub judge_errors: usize,
    /// `judge_errors / judge_calls`: the share of judge calls that failed (absent without
    /// judge calls). Above [`crate::verdict::MAX_JUDGE_ERROR_RATE`] in an arm of an experiment,
    /// the run is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_error_rate: Option<f64>,
    /// What judging cost; part of `spend_usd` (the evaluation's cost), never of
    /// `cost_per_request` (the change's).
    #[serde(default, skip_serializing_if = "is_zero_usd")]
    pub judge_spend_usd: f64,
    /// What embedding similarities cost; part of `spend_usd`, like judging.
    #[serde(default, skip_serializing_if = "is_zero_usd")]
    pub embedding_spend_usd: f64,
    /// What the calls replaced when pairs were measured again were paid: in the spends above,
    /// though no call in the results is theirs (so `merge` can add it up). Absent when nothing.
    #[serde(default, skip_serializing_if = "Replaced::is_nothing")]
    pub replaced: Replaced,
}

/// What calls the results hold no outcome of were paid: a pair's first measurement and the
/// judge calls on it, replaced when the pair was measured again (`runner::remeasure`). Paid
/// all the same, so in the run's spend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Replaced {
    pub generation_usd: f64,
    pub judge_usd: f64,
    pub embedding_usd: f64,
}

impl Replaced {
    fn is_nothing(&self) -> bool {
        *self == Replaced::default()
    }

    pub fn add(&mut self, other: Replaced) {
        self.generation_usd += other.generation_usd;
        self.judge_usd += other.judge_usd;
        self.embedding_usd += other.embedding_usd;
    }
}

impl RunFacts {
    /// Adds what calls the results hold no outcome of were paid (see [`Replaced`]) to the
    /// spend the calls themselves say, and records it.
    pub fn add_replaced(&mut self, replaced: Replaced) {
        if replaced.is_nothing() {
            return;
        }
        self.spend_usd += replaced.generation_usd + replaced.judge_usd + replaced.embedding_usd;
        self.judge_spend_usd += replaced.judge_usd;
        self.embedding_spend_usd += replaced.embedding_usd;
        self.replaced.add(replaced);
    }
}
