//! The results model: everything a run produced, serialised as `results.json`.
//!
//! Renderers (markdown, junit, charts) are functions of [`Results`] alone, so `promptgate
//! report` can re-render from a saved file and `promptgate merge` can combine shards. The keys
//! of [`SCHEMA_VERSION`] (the README's "Outputs" lists them) keep their meaning: new keys may
//! be added, optional so that older files still read, and none is ever repurposed.

use std::collections::BTreeMap;

mod approvals;
mod call;
mod case_text;
mod changes;
mod compact;
mod designs;
mod judging;
mod outputs;
mod run_facts;
mod scores;

use serde::{Deserialize, Serialize};
pub use thin_vec::ThinVec;

pub use approvals::{AcceptedRegression, ApprovalNeeded, ProviderChange, TrustFacts, Waiver};
pub use call::{Call, Evaluated, Evaluation};
pub use case_text::CaseText;
pub use changes::{ChangeFacts, DatasetChanges};
pub use compact::{Latency, Text, Tokens};
pub use designs::{AaRecommendation, AaSummary, SequentialSummary};
pub use judging::{JudgeAdvice, JudgeVariance, Judgement, MAX_JUDGE_REPEATS};
use outputs::schema_written;
pub use outputs::{CallLine, LONGEST_OUTPUT, SHOWN_FLIPS, outputs_elsewhere};
pub use run_facts::{Replaced, RunFacts};
pub use scores::{Name, Scores};

/// The schema of a `results.json` that carries every call's `output` inline.
pub const SCHEMA_VERSION: u32 = 1;
/// The schema of a `results.json` whose calls leave `output` to the `calls.jsonl` beside it
/// (`report::calls`); every other key is schema 1's.
pub const SCHEMA_VERSION_CALLS_FILE: u32 = 2;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The schema read; written as [`SCHEMA_VERSION`], or [`SCHEMA_VERSION_CALLS_FILE`] when
    /// the writer leaves the outputs to `calls.jsonl` (see [`outputs_elsewhere`]).
    #[serde(serialize_with = "schema_written")]
    pub schema_version: u32,
    /// The promptgate that wrote the file. The keys the contract in DESIGN.md does not name
    /// default when absent, so a file another tool wrote from the contract reads; one without
    /// `tool_version` is taken as such (`report::calls::read_results` fills in what it can).
    #[serde(default)]
    pub tool_version: String,
    /// The PR's verdict; the exit code follows it.
    pub verdict: Verdict,
    /// One sentence a reviewer reads first, e.g. "pass_rate regressed in customer-support".
    #[serde(default)]
    pub reason: String,
    pub base: GitRef,
    pub head: GitRef,
    /// Path of the suite file, relative to the repository root.
    #[serde(default)]
    pub config: String,
    pub experiments: Vec<ExperimentResult>,
    /// Experiments of the suite the change did not touch (not run).
    #[serde(default)]
    pub unaffected: Vec<String>,
    #[serde(default)]
    pub run: RunFacts,
    /// `traffic.requests_per_month` from the suite, for the monthly cost projection.
    #[serde(default)]
    pub requests_per_month: Option<u64>,
    /// Set when a maintainer accepted a regression (`verdict` is then `waived`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    /// Set by `--shard K/N`: these results cover only the cases of shard K of N.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Set by `promptgate merge`: the shards combined, and any that were missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeFacts>,
    /// The suite's gates as the analysis applied them, so `promptgate merge` can re-analyze
    /// without the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gates: Option<Vec<GateRecord>>,
    /// The suite's defaults the analysis read (α, seed, error tolerance, design).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defaults: Option<AnalysisDefaults>,
    /// What the pull request changes in the policy that judges it (gates, α, seed, budget,
    /// prices), one sentence each: the base's policy is in force, these take effect after merge.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_changes: Vec<String>,
    /// Why the suite at base could not be loaded (file:line:column and the error): the
    /// experiments ran candidate-only and the verdict is `error` unless waived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_error: Option<String>,
    /// What waits for a maintainer, and whether untrusted code produced these results.
    #[serde(default, flatten)]
    pub trust: TrustFacts,
    /// Gated metrics that rely on a judge no `judge-check --record` has measured, a sentence each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchecked_judges: Vec<String>,
    /// Not in `results.json`: the `calls.jsonl` files that hold the outputs this model left
    /// unloaded (a schema 2 file read back keeps in memory only the outputs the report shows).
    /// Writing these results copies the outputs from them.
    #[serde(skip)]
    pub outputs_from: Vec<std::path::PathBuf>,
}

/// What every producer of [`Results`] (`run`, `merge`) decides. [`Results::new`] is the only
/// way to build them, so a key added here is a compile error in every producer until each sets
/// it; the keys a later stage owns (a waiver, a shard, a merge, a maintainer's approval) start
/// absent and are set by that stage.
#[derive(Clone, Debug, PartialEq)]
pub struct ResultParts {
    pub verdict: Verdict,
    pub reason: String,
    pub base: GitRef,
    pub head: GitRef,
    pub config: String,
    pub experiments: Vec<ExperimentResult>,
    pub unaffected: Vec<String>,
    pub run: RunFacts,
    pub requests_per_month: Option<u64>,
    pub gates: Vec<GateRecord>,
    pub defaults: AnalysisDefaults,
    pub policy_changes: Vec<String>,
    pub base_error: Option<String>,
}

impl Results {
    /// Results of this version of promptgate, not waived, sharded or merged, nothing held.
    pub fn new(parts: ResultParts) -> Results {
        let ResultParts {
            verdict,
            reason,
            base,
            head,
            config,
            experiments,
            unaffected,
            run,
            requests_per_month,
            gates,
            defaults,
            policy_changes,
            base_error,
        } = parts;
        Results {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            verdict,
            reason,
            base,
            head,
            config,
            experiments,
            unaffected,
            run,
            requests_per_month,
            waiver: None,
            shard: None,
            merged: None,
            gates: Some(gates),
            defaults: Some(defaults),
            policy_changes,
            base_error,
            trust: TrustFacts::default(),
            unchecked_judges: Vec::new(),
            outputs_from: Vec::new(),
        }
    }
}

/// One shard of a CI matrix: cases whose hash falls in `index` of `count` (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

/// What `promptgate merge` combined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeFacts {
    pub count: u32,
    /// Shard indexes merged, ascending.
    pub shards: Vec<u32>,
    /// Shard indexes absent (`--allow-partial`): their cases are not in these results.
    pub missing: Vec<u32>,
}

/// A gate from the suite, as recorded in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRecord {
    pub metric: String,
    pub direction: Direction,
    /// In the metric's unit, or a fraction of the baseline when `relative` (0.1 for "10%").
    pub margin: f64,
    pub relative: bool,
    pub alpha: f64,
    pub blocking: bool,
    pub slo: Option<f64>,
    pub require_non_inferiority: bool,
    pub require_equivalence: bool,
    /// A gate the pull request adds on a metric the base does not gate: decided with these
    /// settings, but never blocking and outside Holm's family until it is merged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// The suite defaults the analysis depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnalysisDefaults {
    pub alpha: f64,
    pub seed: u64,
    pub max_error_rate: f64,
    pub sequential: bool,
    /// Set for `--aa` runs: their analysis is not a comparison of base and head.
    #[serde(default)]
    pub aa: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub sha: String,
    /// `--head WORKTREE`: the working tree was gated, `sha` is the commit it was on, and the
    /// tree differed from it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
}

/// The two sides of every comparison: the files at the merge base (the baseline) and at the
/// pull request's head (the candidate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    Baseline,
    Candidate,
}

impl Arm {
    /// `baseline` or `candidate`, as `results.json` and the reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Baseline => "baseline",
            Arm::Candidate => "candidate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    /// A blocking regression (or a failed strict requirement): exit 1.
    Fail,
    /// A regression a maintainer accepted: exit 0, check neutral.
    Waived,
    /// The run could not finish (provider down, budget refused, too many errors): no metric
    /// verdict is built from it; exit 3.
    Error,
    /// Part of the comparison waits for a maintainer's approval (a change to where a key
    /// goes): fail closed, exit 1, check `action_required`.
    NeedsApproval,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentStatus {
    /// Something it depends on changed between base and head.
    Changed,
    /// Exists only at head: runs candidate-only.
    New,
    /// Exists only at base: reported, not run.
    Removed,
    /// Not affected, run anyway (`--all`).
    Forced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExperimentVerdict {
    Pass,
    Fail,
    /// Its calls failed beyond `defaults.max_error_rate`: not judged.
    Error,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    pub name: String,
    pub status: ExperimentStatus,
    /// Changed paths that made the experiment affected (empty for `forced`).
    pub affected_by: Vec<String>,
    pub verdict: ExperimentVerdict,
    /// Why the verdict is what it is, one sentence.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub provider: String,
    #[serde(default)]
    pub baseline: Option<ArmInfo>,
    #[serde(default)]
    pub candidate: Option<ArmInfo>,
    #[serde(default = "one")]
    pub repeats: u32,
    pub metrics: Vec<MetricResult>,
    #[serde(default)]
    pub cases: Vec<CaseResult>,
    /// In one shard's results (`--shard K/N`): the ids of all the experiment's cases, in
    /// dataset order, so `promptgate merge` restores that order (the seeded bootstrap
    /// resamples by position) and knows which cases no shard covered. Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_cases: Vec<String>,
    /// Noise, A/A and sequential facts; every key optional in `results.json`, so files written
    /// before they existed still read.
    #[serde(default, flatten)]
    pub noise: ExperimentNoise,
    /// What changed between the arms, in words, and what the pull request did to the cases.
    #[serde(default, flatten)]
    pub changed: ChangeFacts,
}

/// How noisy an experiment's suite is, and how the run was designed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExperimentNoise {
    /// Share of (case, arm) pairs whose repeats disagree on `pass`; `None` with one repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky_share: Option<f64>,
    /// Ids of the flaky cases (either arm), in case order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flaky_cases: Vec<String>,
    /// With repeats: the cases whose repeats agree least (`consistency` below 1 in either arm),
    /// least consistent first, at most five.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub least_consistent: Vec<CaseConsistency>,
    /// Set by `promptgate run --aa`: the baseline compared with itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa: Option<AaSummary>,
    /// Set when the experiment ran with `sequential: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialSummary>,
    /// Per `llm-compare` metric: how often the judge preferred the output it saw first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub position_bias: Vec<PositionBias>,
}

/// An `llm-compare` judge's position bias: of its judgements that preferred one output (ties
/// and errors left out), the share that preferred the one shown first. An unbiased judge is at
/// 0.5; each pair is shown in both orders, so a content preference alone gives 0.5 exactly.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PositionBias {
    pub metric: String,
    /// Judgements that preferred one output.
    pub decisive: usize,
    /// Of those, the ones that preferred the output shown first.
    pub first_wins: usize,
    pub share: Option<f64>,
    /// The share's 95% Wilson score interval.
    pub ci: Option<[f64; 2]>,
}

/// A case's `consistency` in each arm (the mean agreement between its repeats).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseConsistency {
    pub id: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
}

/// What one side of the comparison ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArmInfo {
    pub variant: String,
    pub version: Option<String>,
    pub model: String,
    pub prompt: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    /// `frequency_penalty`, `presence_penalty` and `stop`, each only when the variant sets it.
    #[serde(default, flatten)]
    pub sampling: crate::chat::Sampling,
    /// The variant's recorded `evaluation_metrics` (its baseline contract), for drift.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub evaluation_metrics: BTreeMap<String, f64>,
    /// The provider's `timeout_ms` for this arm: an errored or timed-out call counts there in
    /// latency.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// The latency an errored or timed-out call counts at when its provider sets no `timeout_ms`.
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Higher,
    Lower,
}

/// What the comparison says of one metric. Significance and size are separate: a significant
/// change inside the margin is a minor regression (shown, does not fail), never "no change".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    /// Significantly worse, and the estimate is beyond the margin: fails a blocking gate.
    Regression,
    /// Significantly worse, but within the margin.
    MinorRegression,
    /// Significantly better.
    Improvement,
    /// No significant change (the details say non-inferior, equivalent or inconclusive).
    NoChange,
    /// No data to compare (every call errored, or nothing measured).
    NoData,
    /// Fewer cases than the metric's test needs to judge: reported, not gated.
    TooFew,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    pub direction: Direction,
    /// Whether a regression on this metric fails the experiment.
    pub blocking: bool,
    /// Whether the metric is gated at all (configured in `gates`, or a default gate).
    #[serde(default = "yes")]
    pub gated: bool,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// candidate − baseline, in the metric's unit.
    pub delta: Option<f64>,
    /// 95% (1 − α) confidence interval of `delta`.
    pub ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    /// After Holm–Bonferroni across the PR's blocking gated metrics (`None` outside that
    /// family: informational metrics are compared with α unadjusted).
    pub p_adjusted: Option<f64>,
    /// `mcnemar-exact`, `paired-t`, `sign-flip-permutation`, or `none`.
    pub test: String,
    /// Units the test used: paired cases, or groups of cases (see `details.clustered`).
    pub n: usize,
    pub verdict: MetricVerdict,
    /// The CI proves the candidate is not worse than the margin.
    pub non_inferior: bool,
    /// Smallest effect this many cases could detect (α, 80% power), in the metric's unit.
    pub mde: Option<f64>,
    /// The margin in the metric's unit (a "10%" margin is converted against the baseline).
    #[serde(default)]
    pub margin: f64,
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    #[serde(default)]
    pub slo: Option<SloResult>,
    /// Whether this metric, on its own, fails the experiment (absent: `false`; a file without
    /// `tool_version` has it inferred from `blocking` and `verdict`).
    #[serde(default)]
    pub fails_gate: bool,
    /// Estimand, equivalence, power, variance components and drift; every key optional in
    /// `results.json`, so files written before they existed still read.
    #[serde(default, flatten)]
    pub details: MetricDetails,
}

/// Further statistics of a metric. Renderers may show any of them; none changes `verdict`'s
/// meaning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricDetails {
    /// What `delta` and `ci` estimate: `mean-difference`, `proportion-difference` (Newcombe
    /// interval), `quantile-difference` (over calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimand: Option<String>,
    /// `candidate / baseline − 1` and its interval, for ratio metrics (cost per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_delta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relative_ci: Option<[f64; 2]>,
    /// TOST: the (1 − 2α) interval lies inside ±margin, on the decision's scale. `None` when
    /// the margin is 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equivalent: Option<bool>,
    /// The (1 − 2α) interval equivalence was judged on (the decision's scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equivalence_ci: Option<[f64; 2]>,
    /// The suite has fewer units than `cases_needed`: a regression of the margin's size would
    /// likely pass unnoticed.
    #[serde(default)]
    pub underpowered: bool,
    /// Units needed to detect a change of the margin's size with 80% power by this metric's
    /// test at α over Holm's family (the same model as `mde`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases_needed: Option<usize>,
    /// Variance between cases and within a case (over repeats), averaged over the arms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub between_var: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within_var: Option<f64>,
    /// A judged metric with judge repeats: case, generation and judge variance, and whether
    /// more judge repeats or more cases pay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variance_components: Option<JudgeVariance>,
    /// (1 − α) interval of the candidate's own value, for the SLO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_ci: Option<[f64; 2]>,
    /// The SLO holds even at the interval's bad-side bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slo_proven: Option<bool>,
    /// The candidate variant's recorded `evaluation_metrics` value against this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// The fewest units (cases, or groups) this metric's test judges; below it the verdict is
    /// `too_few` and the metric is not gated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_n: Option<usize>,
    /// Cases compared (`n` counts units, which are groups when the dataset groups its cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases: Option<usize>,
    /// Cases left out of the comparison because only one arm has a value of this run, or, for
    /// a latency, because both arms' calls came from the cache (a cached call has no latency
    /// of this run).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left_out: usize,
    /// Whether the cases were clustered by their dataset `group`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clustered: bool,
    /// The interval has zero width: the spread is unknown, so it proves nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub variance_unknown: bool,
    /// The estimate, interval and margin the decision read: on the relative scale
    /// (`candidate / baseline − 1`) for a relative margin, else in the metric's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionBasis>,
    /// The standard deviation of the per-unit difference the test saw (the start of the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    /// Holm's family the p-value was adjusted in (blocking gated metrics judged in this run);
    /// the plan (`mde`, `cases_needed`) is for a test at α divided by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<usize>,
    /// What the metric's gate requires the interval to prove (`non-inferiority` or
    /// `equivalence`): unproven, too few cases among the reasons, the gate fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require: Option<String>,
}

/// Defaults of keys a hand-written `results.json` may leave out (see `Results::tool_version`).
fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn default_alpha() -> f64 {
    0.05
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What a metric's decision was made on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DecisionBasis {
    /// `true`: the relative change `candidate / baseline − 1`; `false`: the metric's unit.
    pub relative: bool,
    pub estimate: f64,
    pub ci: Option<[f64; 2]>,
    /// The margin on the same scale.
    pub margin: f64,
}

/// A recorded metric value compared with the measured one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub recorded: f64,
    pub measured: f64,
    /// The recorded value lies inside the candidate's (1 − α) interval.
    pub consistent: bool,
}

/// An absolute objective checked on the candidate, e.g. p95 latency ≤ 800 ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloResult {
    pub target: f64,
    pub met: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flip {
    PassToFail,
    FailToPass,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    /// Its id, its `group` in the dataset (cases of one group are resampled and tested
    /// together) and its `input` var (or its vars as JSON, for the report): the fields `id`,
    /// `group` and `input`, held in one allocation. Read through [`CaseResult::id`],
    /// [`CaseResult::group`] and [`CaseResult::input`].
    #[serde(flatten)]
    pub text: CaseText,
    /// One call per repeat; empty for a candidate-only (new) experiment's baseline.
    #[serde(default)]
    pub baseline: Vec<Call>,
    #[serde(default)]
    pub candidate: Vec<Call>,
    /// Set when the case's majority outcome changed between baseline and candidate.
    #[serde(default)]
    pub flip: Option<Flip>,
}

/// Read field by field (`case_text::read_case`): a malformed `id`, `group` or `input` is
/// reported at the field, where serde's `flatten` reported it at the end of the case.
impl<'de> Deserialize<'de> for CaseResult {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CaseResult, D::Error> {
        case_text::read_case(deserializer)
    }
}

fn is_zero_usd(x: &f64) -> bool {
    *x == 0.0
}

/// A score is a boolean (an assertion) or a number (a metric).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Score {
    Bool(bool),
    Number(f64),
}

impl Score {
    pub fn as_f64(self) -> f64 {
        match self {
            Score::Bool(b) => f64::from(u8::from(b)),
            Score::Number(x) => x,
        }
    }
}

impl Verdict {
    /// The word `results.json` and `$GITHUB_OUTPUT` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Waived => "waived",
            Verdict::Error => "error",
            Verdict::NeedsApproval => "needs_approval",
        }
    }
}

impl MetricResult {
    /// What `n` counts, in words: "groups" when the compared cases came in fewer groups,
    /// else "cases".
    pub fn units_word(&self) -> &'static str {
        match self.details.cases {
            Some(cases) if cases != self.n => "groups",
            _ => "cases",
        }
    }
}

impl MetricVerdict {
    /// The words a reader sees, the same on the terminal, in the comment and in the charts.
    pub fn label(self) -> &'static str {
        match self {
            MetricVerdict::Regression => "regression",
            MetricVerdict::MinorRegression => "minor regression (within margin)",
            MetricVerdict::Improvement => "improvement",
            MetricVerdict::NoChange => "no significant change",
            MetricVerdict::NoData => "no data",
            MetricVerdict::TooFew => "too few cases to judge",
        }
    }
}

impl CaseResult {
    pub fn id(&self) -> &str {
        self.text.id()
    }

    /// Its `group` in the dataset.
    pub fn group(&self) -> Option<&str> {
        self.text.group()
    }

    /// Its `input` var (or its vars as JSON).
    pub fn input(&self) -> &str {
        self.text.input()
    }

    /// One arm's calls, a call per repeat.
    pub fn calls(&self, arm: Arm) -> &[Call] {
        match arm {
            Arm::Baseline => &self.baseline,
            Arm::Candidate => &self.candidate,
        }
    }
}

/// Parts of a passing run of no experiment, for tests.
#[cfg(test)]
pub(crate) fn test_parts() -> ResultParts {
    let at = |name: &str, sha: &str| GitRef {
        name: name.to_owned(),
        sha: sha.to_owned(),
        dirty: false,
    };
    ResultParts {
        verdict: Verdict::Pass,
        reason: "no regression".to_owned(),
        base: at("main", "3f2a9c1e0b7d"),
        head: at("prompt/shorter", "9b7d4e2a1c3f"),
        config: "promptgate.yaml".to_owned(),
        experiments: Vec::new(),
        unaffected: vec!["translation".to_owned()],
        run: RunFacts::default(),
        requests_per_month: None,
        gates: Vec::new(),
        defaults: AnalysisDefaults {
            alpha: 0.05,
            seed: 7,
            max_error_rate: 0.1,
            sequential: false,
            aa: false,
        },
        policy_changes: Vec::new(),
        base_error: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_results_record_the_analysis_and_leave_the_later_stages_keys_absent() {
        let results = Results::new(test_parts());
        assert_eq!(results.schema_version, SCHEMA_VERSION);
        assert_eq!(results.tool_version, env!("CARGO_PKG_VERSION"));
        let json = serde_json::to_value(&results).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        for absent in ["waiver", "shard", "merged", "approval", "untrusted"] {
            assert!(!keys.contains(&absent), "{absent} in {keys:?}");
        }
        // What `merge` needs to re-judge without the repository is always there.
        assert_eq!(json["defaults"]["seed"], 7);
        assert_eq!(json["gates"], serde_json::json!([]));
        let back: Results = serde_json::from_value(json).unwrap();
        assert_eq!(back, results);
    }

    /// A scored call is held for every call of the run until the report is written (a million
    /// of them in the largest runs): its size is part of the run's peak memory. Its output is
    /// boxed text (one word); its error, failures, scorer errors, judgements and embedding cost
    /// one word together, and nothing on the heap when none is set.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_call_holds_its_rarely_used_parts_in_one_word() {
        // A name and a list of scores are a word each of it (the text and the list shared),
        // its output and latency a word each, its token counts 32 bits each, its error,
        // failures and evaluation records one word: 88 bytes, with glibc's own word a block
        // of 96.
        assert_eq!(std::mem::size_of::<Name>(), 8);
        assert!(std::mem::size_of::<Scores>() <= 16, "{}", std::mem::size_of::<Scores>());
        assert_eq!(std::mem::size_of::<Tokens>(), 12);
        assert!(std::mem::size_of::<Call>() <= 88, "{}", std::mem::size_of::<Call>());
        // A case's id, group and input are one boxed string and where each ends.
        assert!(
            std::mem::size_of::<CaseResult>() <= 88,
            "{}",
            std::mem::size_of::<CaseResult>()
        );
        let call = Call::default();
        assert_eq!(&call.evaluation, &Evaluated::default());
        // The lists read and write as the arrays they were, each absent when empty.
        let mut call = call;
        call.set_failures(thin_vec::thin_vec!["missing \"refund\"".to_owned()]);
        let json = serde_json::to_value(&call).unwrap();
        assert_eq!(json["failures"], serde_json::json!(["missing \"refund\""]));
        for absent in ["scorer_errors", "judgements", "embedding_cost_usd"] {
            assert!(json.get(absent).is_none(), "{absent}");
        }
        let back: Call = serde_json::from_value(json).unwrap();
        assert_eq!(back, call);
        // Every field is written where it always was (the error after the output, the
        // evaluation's records after `failures`) and read back into its one word; read
        // empty, it holds nothing.
        call.set_error(Some("timed out after 30000 ms".into()));
        call.evaluation.change(|e| {
            e.scorer_errors.push("depth: exec: exited with status 2".to_owned());
            e.judgements.push(Judgement {
                metric: "relevance".into(),
                score: Some(4),
                ..Judgement::default()
            });
            e.embedding_cost_usd = 2e-5;
        });
        let text = serde_json::to_string(&call).unwrap();
        let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let expected = [
            "repeat",
            "output",
            "error",
            "latency_ms",
            "tokens",
            "cost_usd",
            "list_cost_usd",
            "cached",
            "attempts",
            "provider",
            "fell_back",
            "scores",
            "failures",
            "scorer_errors",
            "judgements",
            "embedding_cost_usd",
        ];
        assert_eq!(keys, expected, "{text}");
        let back: Call = serde_json::from_str(&text).unwrap();
        assert_eq!(back, call);
        assert_eq!(back.evaluation.judgements()[0].score, Some(4));
        assert_eq!(back.evaluation.embedding_cost_usd(), 2e-5);
        let empty = r#"{"repeat": 0, "error": null, "failures": [], "scorer_errors": [], "judgements": [], "embedding_cost_usd": 0.0}"#;
        let read: Call = serde_json::from_str(empty).unwrap();
        assert_eq!(read.evaluation, Evaluated::default());
    }

    /// A call reads as serde's derive with `default` read it: an absent field is its default,
    /// an unknown one is passed over; a malformed one is reported where it is.
    #[test]
    fn a_call_reads_absent_and_unknown_fields_and_reports_a_malformed_one_at_the_field() {
        let read: Call =
            serde_json::from_str(r#"{"later": {"a": [1, "x"]}, "repeat": 2, "failures": ["no \"30 days\""]}"#).unwrap();
        let mut expected = Call {
            repeat: 2,
            ..Call::default()
        };
        expected.set_failures(thin_vec::thin_vec!["no \"30 days\"".to_owned()]);
        assert_eq!(read, expected);
        assert_eq!(serde_json::from_str::<Call>("{}").unwrap(), Call::default());
        for (text, column) in [
            (r#"{"repeat": 1, "error": 5, "cached": true}"#, 24),
            (r#"{"repeat": 1, "failures": "no", "cached": true}"#, 30),
            (r#"{"repeat": -1}"#, 13),
        ] {
            let e = serde_json::from_str::<Call>(text).unwrap_err();
            assert_eq!((e.line(), e.column()), (1, column), "{text}: {e}");
        }
    }
}
