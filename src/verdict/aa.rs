//! A/A runs: the suite at base compared with itself. The gate's false-alarm rate on the suite's
//! own noise, and the cases and repeats its margins need.

use crate::analyze::{self, Estimate};
use crate::results::DEFAULT_TIMEOUT_MS;
use crate::results::{AaRecommendation, AaSummary, CaseResult, MetricResult, MetricVerdict, Results};
use crate::stats;
use crate::suite::GateSpec;

use super::decide::{adjust, decide_with};

/// Arm-swap permutations per A/A experiment for the false-alarm estimate.
pub const PERMUTATIONS: usize = 200;

/// The suite's noise and the design it needs, from an A/A run.
pub fn add_summaries(results: &mut Results, gates: &[GateSpec], alpha: f64, seed: u64) {
    for (ei, e) in results.experiments.iter_mut().enumerate() {
        // No cases, or no verdict (its calls failed, the budget's cap stopped the run): nothing
        // to measure the suite's noise on.
        if e.cases.is_empty() || e.verdict == crate::results::ExperimentVerdict::Error {
            continue;
        }
        let seed = seed ^ (ei as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let false_alarm_rate = false_alarm_rate(&e.cases, gates, alpha, seed, PERMUTATIONS);
        let recommendations = e
            .metrics
            .iter()
            .filter(|m| m.gated && m.margin > 0.0)
            .map(|m| recommendation(m, e.cases.len(), e.repeats))
            .collect();
        e.noise.aa = Some(AaSummary {
            false_alarm_rate,
            permutations: PERMUTATIONS,
            recommendations,
        });
    }
}

/// The false-alarm rate of the gate on an A/A run's cases: the share of random per-case swaps
/// of the two arms (each another draw from the null, since the arms are exchangeable) in which
/// some blocking gated metric is called a regression after Holm.
pub fn false_alarm_rate(cases: &[CaseResult], gates: &[GateSpec], alpha: f64, seed: u64, permutations: usize) -> f64 {
    if permutations == 0 {
        return 0.0;
    }
    let mut rng = stats::Rng::new(seed);
    let mut alarms = 0usize;
    for p in 0..permutations {
        let swapped: Vec<CaseResult> = cases
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if rng.below(2) == 1 {
                    std::mem::swap(&mut c.baseline, &mut c.candidate);
                }
                c
            })
            .collect();
        let blocking: Vec<&GateSpec> = gates.iter().filter(|g| g.blocking).collect();
        let timeouts = [DEFAULT_TIMEOUT_MS; 2];
        let estimates: Vec<Estimate> = blocking
            .iter()
            .map(|g| {
                analyze::estimate_with(
                    &g.metric,
                    &swapped,
                    true,
                    alpha,
                    seed ^ p as u64,
                    timeouts,
                    analyze::Intervals::Unread,
                )
            })
            .collect();
        let flags: Vec<(&Estimate, bool)> = estimates.iter().map(|e| (e, super::judged(e))).collect();
        let family = flags.iter().filter(|(_, f)| *f).count();
        let adjusted = adjust(&flags);
        let alarm =
            estimates.iter().zip(&blocking).zip(adjusted).any(|((e, g), p)| {
                decide_with(e, Some(*g), p, alpha, family, false).verdict == MetricVerdict::Regression
            });
        alarms += usize::from(alarm);
    }
    alarms as f64 / permutations as f64
}

/// From an A/A run's metric: cases for the margin at 80% power, and repeats when the dataset
/// has fewer cases than that. The per-case difference variance is `σ²_case + 2σ²_within/k`;
/// repeats shrink only the second part, so they are recommended only to make up for cases the
/// dataset does not have, and not at all when `σ²_case` alone exceeds what the margin allows.
pub fn recommendation(metric: &MetricResult, available_cases: usize, repeats: u32) -> AaRecommendation {
    let mut r = AaRecommendation {
        metric: metric.name.clone(),
        margin: metric.margin,
        cases: metric.details.cases_needed,
        repeats: None,
    };
    let Some(needed) = metric.details.cases_needed else {
        return r;
    };
    if needed <= available_cases {
        r.repeats = Some(repeats);
        return r;
    }
    let (Some(sd), Some(within)) = (metric.details.sd, metric.details.within_var) else {
        return r;
    };
    let k = f64::from(repeats.max(1));
    let case_var = (sd * sd - 2.0 * within / k).max(0.0);
    // The variance a per-case difference may have for `available_cases` to reach the margin,
    // by the same power model as `cases_needed` (the t-test's detectable effect scales with sd).
    let alpha = metric.alpha / metric.details.family.unwrap_or(1).max(1) as f64;
    let Some(unit) = stats::mde_t(1.0, available_cases, alpha, super::POWER) else {
        return r;
    };
    let allowed = (metric.margin / unit).powi(2);
    if allowed > case_var && within > 0.0 {
        let k_needed = (2.0 * within / (allowed - case_var)).ceil();
        if k_needed <= 100.0 {
            r.repeats = Some(k_needed as u32);
            r.cases = Some(available_cases);
        }
    }
    r
}
