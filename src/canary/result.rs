//! `canary.json`: what a canary run decided and why, for pipelines and for `ledger record
//! --canary`. `report.md` and the charts are rendered from this and the chart data alone.

use serde::{Deserialize, Serialize};

use crate::results::Direction;

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CanaryVerdict {
    /// Every blocking metric is proven no worse than its margin, and its SLO proven met.
    Promote,
    /// Not enough evidence either way yet: `needed` says how much more.
    Hold,
    /// A blocking metric is significantly and materially worse, or its SLO is proven broken.
    Rollback,
}

impl CanaryVerdict {
    pub fn exit_code(self) -> u8 {
        match self {
            CanaryVerdict::Promote => 0,
            CanaryVerdict::Rollback => 1,
            CanaryVerdict::Hold => crate::error::exit::HOLD,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CanaryVerdict::Promote => "promote",
            CanaryVerdict::Hold => "hold",
            CanaryVerdict::Rollback => "rollback",
        }
    }
}

/// One metric's comparison. `delta` is in the quantity the test inverts: a difference of
/// quantiles, of proportions or of means, a shift, or for cost the ratio minus one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryMetric {
    pub name: String,
    pub direction: Direction,
    pub blocking: bool,
    pub baseline: Option<f64>,
    pub canary: Option<f64>,
    pub delta: Option<f64>,
    /// The anytime-valid interval of `delta` at the gate's α (valid at every look).
    pub ci: Option<[f64; 2]>,
    /// Always-valid p-value of "no difference".
    pub p_value: Option<f64>,
    /// Holm across the blocking metrics; equal to `p_value` for the others.
    pub p_adjusted: Option<f64>,
    pub test: String,
    pub verdict: MetricVerdict,
    pub n: ArmCounts,
    /// The margin on `delta`'s scale (a relative margin converted with the baseline's value).
    pub margin: Option<f64>,
    /// Proven no worse than the margin: what promotion needs.
    pub non_inferior: bool,
    /// `null` for a gate without an objective: every metric carries the same keys.
    pub slo: Option<Slo>,
    /// Why, in words.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricVerdict {
    Regression,
    MinorRegression,
    Improvement,
    NoChange,
    TooFew,
    NoData,
}

impl MetricVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricVerdict::Regression => "regression",
            MetricVerdict::MinorRegression => "minor regression",
            MetricVerdict::Improvement => "improvement",
            MetricVerdict::NoChange => "no significant change",
            MetricVerdict::TooFew => "too few requests",
            MetricVerdict::NoData => "no data",
        }
    }

    /// [`MetricVerdict::as_str`], "too few" counting what the arms' counts count (`unit`:
    /// [`CanaryResult::unit`]).
    pub fn words(self, unit: &str) -> std::borrow::Cow<'static, str> {
        match self {
            MetricVerdict::TooFew => format!("too few {unit}").into(),
            other => other.as_str().into(),
        }
    }
}

/// An absolute objective on the canary's own value (the seed's alert rules are these).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    pub value: f64,
    /// The canary's own value's anytime-valid interval.
    pub ci: Option<[f64; 2]>,
    /// `true` proven met, `false` proven broken, `None` not yet known.
    pub met: Option<bool>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmCounts {
    pub baseline: u64,
    pub canary: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmInfo {
    /// The arm's value in the logs (a version).
    pub name: String,
    pub n: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arms {
    pub baseline: ArmInfo,
    pub canary: ArmInfo,
}

/// How much more a hold needs before the metrics still open can decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Needed {
    /// Requests per arm (steps, for Prometheus) at which every open metric is expected to
    /// decide if its estimate and spread stay as they are.
    pub requests_per_arm: u64,
    /// Beyond what each arm has now.
    pub more_requests_per_arm: u64,
    /// At the canary's current rate of traffic; `None` without timestamps.
    pub hours: Option<f64>,
    /// The metrics still open.
    pub metrics: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub from: String,
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryResult {
    pub schema_version: u32,
    pub verdict: CanaryVerdict,
    /// `canary` (baseline against canary) or `drift` (this window against the previous one).
    pub mode: String,
    pub experiment: Option<String>,
    pub version: Option<String>,
    /// `jsonl logs/requests.jsonl`, `prometheus http://…`.
    pub source: String,
    pub window: Option<Window>,
    pub arms: Arms,
    pub alpha: f64,
    pub min_samples: u64,
    pub metrics: Vec<CanaryMetric>,
    /// The blocking metrics that failed (a rollback names them).
    pub failing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<Needed>,
    /// The verdict in one sentence.
    pub reason: String,
    /// What was read but not used, gates left out for want of data, and such.
    pub notes: Vec<String>,
}

impl CanaryResult {
    /// What `min_samples` and `needed` count: steps of Prometheus series, else requests.
    pub fn unit(&self) -> &'static str {
        if self.source.starts_with("prometheus ") {
            "steps"
        } else {
            "requests"
        }
    }
}
