//! Per metric: paired per-case values → effect, confidence interval, p-value.
//!
//! Repeats are averaged per case first: repeats measure non-determinism, cases are the unit of
//! inference. Binary outcomes with one repeat use McNemar's exact test; per-case means and
//! continuous values use the Wilcoxon signed-rank test; quantiles (latency p50/p95) use a paired
//! bootstrap over cases. Every confidence interval is a seeded paired bootstrap.

use crate::report::results::{Call, CaseResult, Score};
use crate::stats;

/// Bootstrap resamples for every interval: enough that the Monte-Carlo error of a 95% bound is
/// small next to its width, cheap enough for thousands of cases.
pub const RESAMPLES: usize = 4000;

/// The statistics of one metric in one experiment, before the gate's policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub metric: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    pub delta: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    pub test: &'static str,
    /// Paired cases used.
    pub n: usize,
    /// Smallest effect detectable at this n (two-sided α, 80% power), from the CI's width.
    pub mde: Option<f64>,
}

/// Estimates `metric` over the cases. `paired` is false for a new experiment (candidate only).
pub fn estimate(metric: &str, cases: &[CaseResult], paired: bool, alpha: f64, seed: u64) -> Estimate {
    let confidence = 1.0 - alpha;
    let per_case = |calls: &[Call]| -> Option<f64> {
        let values: Vec<f64> = calls.iter().filter_map(|c| call_value(metric, c)).collect();
        stats::mean(&values)
    };
    let quantile = quantile_of(metric);
    let mut result = Estimate { metric: metric.to_owned(), baseline: None, candidate: None, delta: None, ci: None, p_value: None, test: "none", n: 0, mde: None };

    if !paired {
        let values: Vec<f64> = cases.iter().filter_map(|c| per_case(&c.candidate)).collect();
        result.n = values.len();
        result.candidate = match quantile {
            Some(q) => stats::quantile(&values, q),
            None => stats::mean(&values),
        };
        return result;
    }

    let mut base = Vec::new();
    let mut cand = Vec::new();
    let mut repeats_one = true;
    for case in cases {
        if let (Some(b), Some(c)) = (per_case(&case.baseline), per_case(&case.candidate)) {
            base.push(b);
            cand.push(c);
            repeats_one &= case.baseline.len() <= 1 && case.candidate.len() <= 1;
        }
    }
    result.n = base.len();
    if base.is_empty() {
        return result;
    }
    let metric_seed = seed ^ fnv1a(metric.as_bytes());
    let binary = is_binary(metric, cases);

    let boot = match quantile {
        Some(q) => {
            result.baseline = stats::quantile(&base, q);
            result.candidate = stats::quantile(&cand, q);
            let boot = stats::paired_bootstrap_quantile(&base, &cand, q, confidence, RESAMPLES, metric_seed);
            result.p_value = boot.as_ref().map(|b| b.p_value);
            result.test = "paired-bootstrap";
            boot
        }
        None => {
            result.baseline = stats::mean(&base);
            result.candidate = stats::mean(&cand);
            let diffs: Vec<f64> = cand.iter().zip(&base).map(|(c, b)| c - b).collect();
            if binary && repeats_one {
                let worse = base.iter().zip(&cand).filter(|(b, c)| **b > 0.5 && **c < 0.5).count() as u64;
                let better = base.iter().zip(&cand).filter(|(b, c)| **b < 0.5 && **c > 0.5).count() as u64;
                result.p_value = Some(stats::mcnemar_exact(worse, better));
                result.test = "mcnemar-exact";
            } else {
                result.p_value = Some(stats::wilcoxon_signed_rank(&diffs, stats::ZeroMethod::Wilcox).p_value);
                result.test = "wilcoxon-signed-rank";
            }
            stats::paired_bootstrap_mean(&base, &cand, confidence, RESAMPLES, metric_seed)
        }
    };
    if let (Some(b), Some(c)) = (result.baseline, result.candidate) {
        result.delta = Some(c - b);
    }
    if let Some(boot) = boot {
        result.ci = Some(boot.ci);
        result.mde = mde_from_ci(boot.ci, result.n, alpha);
    }
    result
}

/// The value a call contributes to `metric`, if any. Errored calls fail `pass_rate`, count in
/// `error_rate`, and have no latency or cost.
pub fn call_value(metric: &str, call: &Call) -> Option<f64> {
    let ok = call.error.is_none();
    match metric {
        "pass_rate" => Some(if call.passed() { 1.0 } else { 0.0 }),
        "error_rate" => Some(if ok { 0.0 } else { 1.0 }),
        "cost_per_request" => ok.then_some(call.cost_usd),
        m if quantile_of(m).is_some() => call.latency_ms.filter(|_| ok),
        m => call.scores.get(m).map(|s| s.as_f64()),
    }
}

/// `latency_p95_ms` → 0.95.
pub fn quantile_of(metric: &str) -> Option<f64> {
    let p = metric.strip_prefix("latency_p")?.strip_suffix("_ms")?;
    let q: f64 = p.parse().ok()?;
    (q > 0.0 && q < 100.0).then_some(q / 100.0)
}

fn is_binary(metric: &str, cases: &[CaseResult]) -> bool {
    match metric {
        "pass_rate" | "error_rate" => true,
        "cost_per_request" => false,
        m => cases
            .iter()
            .flat_map(|c| c.baseline.iter().chain(&c.candidate))
            .filter_map(|call| call.scores.get(m))
            .all(|s| matches!(s, Score::Bool(_))),
    }
}

/// The standard error implied by a CI's width, turned into the effect a test at this n would
/// detect with 80% power.
fn mde_from_ci(ci: [f64; 2], n: usize, alpha: f64) -> Option<f64> {
    let z = statrs_z(1.0 - alpha / 2.0)?;
    let se = (ci[1] - ci[0]) / (2.0 * z);
    if se <= 0.0 || n == 0 {
        return None;
    }
    stats::mde_paired(se * (n as f64).sqrt(), n, alpha, 0.8)
}

fn statrs_z(p: f64) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).ok().map(|n| n.inverse_cdf(p))
}

/// FNV-1a: a stable hash to give each metric its own bootstrap stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_names() {
        assert_eq!(quantile_of("latency_p95_ms"), Some(0.95));
        assert_eq!(quantile_of("latency_p50_ms"), Some(0.5));
        assert_eq!(quantile_of("latency_p100_ms"), None);
        assert_eq!(quantile_of("cost_per_request"), None);
    }
}
