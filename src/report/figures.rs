//! Figures derived from a run's results that both the comment and the charts show: each arm's
//! latencies and their quantiles (the same calls the latency metrics compare), cost per request,
//! the monthly projection and its sentence. No colours here: a sentence carries a neutral
//! [`Tone`] that each renderer draws in its own way.

use crate::format::{self, Unit, finite};
use crate::results::{Arm, ExperimentResult, MetricResult};
use crate::stats;

/// Which way a figure leans, for the renderer to colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Neutral,
}

/// Quality is everything that is not latency or cost: pass rate, error rate, scorers.
pub(crate) fn is_quality(m: &MetricResult) -> bool {
    !matches!(format::unit(&m.name), Unit::Milliseconds | Unit::Usd)
}

/// The latencies the latency metrics compare, ascending: every call timed in this run, an
/// errored one at its arm's timeout, none from the cache (`metrics::Metric::call_value`), so the
/// chart shows exactly the calls the table's numbers come from.
pub(crate) fn latencies(e: &ExperimentResult, arm: Arm) -> Vec<f64> {
    let info = match arm {
        Arm::Baseline => e.baseline.as_ref(),
        Arm::Candidate => e.candidate.as_ref(),
    };
    let timeout = info.map_or(crate::results::DEFAULT_TIMEOUT_MS, |a| a.timeout_ms);
    let metric = crate::metrics::Metric::of(crate::metrics::LATENCY_P95);
    let mut xs: Vec<f64> = e
        .cases
        .iter()
        .flat_map(|c| metric.values(c.calls(arm), timeout))
        .filter(|x| x.is_finite() && *x >= 0.0)
        .collect();
    xs.sort_unstable_by(f64::total_cmp);
    xs
}

/// p50 and p95 of one arm's call latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LatencySummary {
    pub p50: f64,
    pub p95: f64,
    pub calls: usize,
}

/// Baseline and candidate latency quantiles over calls (type 7, as `stats::quantile`).
pub(crate) fn latency_summary(e: &ExperimentResult) -> [Option<LatencySummary>; 2] {
    [Arm::Baseline, Arm::Candidate].map(|arm| {
        let xs = latencies(e, arm);
        Some(LatencySummary {
            p50: stats::quantile(&xs, 0.5)?,
            p95: stats::quantile(&xs, 0.95)?,
            calls: xs.len(),
        })
    })
}

/// Baseline and candidate cost per request: the gated metric when there is one, else the mean
/// over completed calls.
pub(crate) fn cost_per_request(e: &ExperimentResult) -> [Option<f64>; 2] {
    if let Some(m) = e.metrics.iter().find(|m| m.name == "cost_per_request")
        && (m.baseline.is_some() || m.candidate.is_some())
    {
        return [finite(m.baseline), finite(m.candidate)];
    }
    [Arm::Baseline, Arm::Candidate].map(|arm| {
        let costs: Vec<f64> = e
            .cases
            .iter()
            .flat_map(|c| c.calls(arm))
            .filter(|c| c.error().is_none() && !c.unpriced)
            .map(|c| c.cost_usd)
            .collect();
        finite(stats::mean(&costs))
    })
}

/// The monthly projection at `requests_per_month`: what each arm costs and what the change saves.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub baseline: f64,
    pub candidate: f64,
    /// baseline − candidate: positive when the candidate is cheaper.
    pub savings: f64,
}

/// cost_per_request × requests_per_month for both arms; `None` without traffic or a baseline.
/// The candidate's is the baseline's times the comparison's ratio (`relative_delta`, over the
/// cases both arms completed) where there is one: an arm's own mean leaves out its errored
/// calls, which have no cost, so a candidate failing on the dearest cases looked cheaper by them.
pub fn monthly_projection(e: &ExperimentResult, requests_per_month: Option<u64>) -> Option<Projection> {
    let rpm = requests_per_month? as f64;
    let [Some(b), Some(c)] = cost_per_request(e) else {
        return None;
    };
    let paired = e
        .metrics
        .iter()
        .find(|m| m.name == "cost_per_request")
        .and_then(|m| m.details.relative_delta)
        .filter(|r| r.is_finite());
    let c = paired.map_or(c, |r| b * (1.0 + r));
    Some(Projection {
        baseline: b * rpm,
        candidate: c * rpm,
        savings: (b - c) * rpm,
    })
}

/// "saves $1,000/month" or "costs $250/month more", and which way it leans.
pub fn savings_sentence(p: &Projection) -> (String, Tone) {
    if p.savings > 0.0 {
        (
            format!("candidate saves {}/month", whole_dollars(p.savings)),
            Tone::Good,
        )
    } else if p.savings < 0.0 {
        (
            format!("candidate costs {}/month more", whole_dollars(-p.savings)),
            Tone::Bad,
        )
    } else {
        ("no change in monthly cost".to_owned(), Tone::Neutral)
    }
}

/// Dollars for monthly sums: whole dollars with thousands separators above $100, cents below.
pub fn whole_dollars(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    let sign = if x < 0.0 { "−" } else { "" };
    let a = x.abs();
    if a >= 100.0 {
        format!("{sign}${}", thousands(a.round() as u64))
    } else {
        format!("{sign}${a:.2}")
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
