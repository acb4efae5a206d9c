//! What the A/A and sequential designs record in `results.json` (`aa`, `sequential`).

use serde::{Deserialize, Serialize};

/// What an A/A run says about the suite: its noise and the design it would need.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AaSummary {
    /// Share of arm-swap permutations of this A/A run in which some gated metric regressed:
    /// the false-alarm rate the gate has on this suite (should be at most α).
    pub false_alarm_rate: f64,
    pub permutations: usize,
    /// Per gated metric with a margin: cases and repeats that detect a change of the margin
    /// with 80% power.
    pub recommendations: Vec<AaRecommendation>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AaRecommendation {
    pub metric: String,
    pub margin: f64,
    pub cases: Option<usize>,
    pub repeats: Option<u32>,
}

/// A sequential run: looks made, where it stopped, the calls it saved.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SequentialSummary {
    /// Cases evaluated at each look, cumulative.
    pub looks: Vec<usize>,
    /// Two-sided nominal level of each look made: a test at a look rejects when its p-value is
    /// below it (Lan–DeMets boundaries, O'Brien–Fleming-type spending).
    pub look_alphas: Vec<f64>,
    /// R: the sequential design needs R times the fixed design's cases for the same power
    /// (`cases_needed` of a sequential run already includes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inflation: Option<f64>,
    pub stopped_early: bool,
    pub calls_made: usize,
    pub calls_planned: usize,
}
