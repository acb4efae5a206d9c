//! What judge repeats say about where a judged metric's noise comes from (`results.json`:
//! a metric's `variance_components`).

use serde::{Deserialize, Serialize};

use super::{Arm, Name};

/// One judge call on one output: the judge's `score` (1–5), `pass` and `reason`, or why the
/// call failed (then the output has no value for `metric`, and `judge_error_rate` counts it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// The metric the judgement feeds (`relevance`, `hallucination_rate`, a rubric's name).
    pub metric: Name,
    pub repeat: u32,
    pub score: Option<u8>,
    pub pass: Option<bool>,
    pub reason: Option<String>,
    pub error: Option<String>,
    /// What the judgement gives its metric (`relevance`: (score − 1)/4; `hallucination_rate`:
    /// 1 for an unsupported claim); `None` when the judge failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// What this judgement's calls cost: a malformed first reply's retry included (0 for a
    /// cache hit).
    pub cost_usd: f64,
    pub cached: bool,
    /// `llm-compare`: the arm whose output the judge saw first (as "A").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Arm>,
    /// `llm-compare`: the arm whose output the judge preferred; `None` for a tie (or an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<Arm>,
}

/// Variance components of a metric fed by judge repeats: between cases, between a case's
/// outputs (generation repeats) and between one output's judgements (judge repeats), each
/// arm's balanced nested analysis of variance averaged over the arms (`stats::nested_components`).
/// The variance of an arm's mean is `case/n + generation/(n·r) + judge/(n·r·k)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeVariance {
    /// The cases with every output judged `judge_repeats` times (the complete ones), and the
    /// design's outputs per case and judgements per output.
    pub cases: usize,
    pub repeats: usize,
    pub judge_repeats: usize,
    pub case: f64,
    /// `None` with one output per case: then `case` holds the generation noise too.
    pub generation: Option<f64>,
    pub judge: f64,
    /// The variance of an arm's mean at this design.
    pub variance_of_mean: f64,
    /// The share of `variance_of_mean` the judge's noise contributes.
    pub judge_share: f64,
    /// Mean cost of an output and of a judgement in this run (USD), the prices `advice` weighs.
    pub generation_cost_usd: f64,
    pub judge_cost_usd: f64,
    /// The judge repeats per output that make the mean's variance smallest for the same spend
    /// (rounded, 1 to [`MAX_JUDGE_REPEATS`]).
    pub best_judge_repeats: u32,
    pub advice: JudgeAdvice,
}

/// Where the next dollar of evaluation buys more precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeAdvice {
    /// The judge is noisy next to the cases: judge each output more often.
    MoreJudgeRepeats,
    /// The cases vary more than the judge: spend on cases (fewer judge repeats would do).
    MoreCases,
    /// The judge repeats are about the best split.
    Balanced,
}

/// The most judge repeats advised: beyond it the judge, not the design, is the problem.
pub const MAX_JUDGE_REPEATS: u32 = 10;
