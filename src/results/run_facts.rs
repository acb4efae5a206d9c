//! The facts of running: calls made, cached, errored and refused, what they cost, how long.

use serde::{Deserialize, Serialize};

use super::{is_zero, is_zero_usd};

/// Every run's `results.json` `run`: what the calls themselves say (`verdict::count_calls`) and
/// what the runner counted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// the first measurement is replaced, its attempts counted in the new one's.
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
}
