//! Policy: statistics → a verdict per metric, per experiment and for the PR.
//!
//! A metric regresses when the candidate is significantly worse (Holm-adjusted p < α and the CI
//! excludes zero on the bad side) and materially worse (the estimate is beyond the margin). It
//! improves symmetrically. Otherwise it is "no detectable change", and `non_inferior` says
//! whether the CI proves the candidate is not worse than the margin.

use crate::analyze::Estimate;
use crate::report::results::{Direction, MetricResult, MetricVerdict, SloResult};
use crate::stats;
use crate::suite::{GateSpec, Margin, default_direction};

/// Holm–Bonferroni across every gated metric of every experiment: returns adjusted p-values
/// aligned with `estimates` (ungated or untested metrics keep `None`).
pub fn adjust(estimates: &[(&Estimate, bool)]) -> Vec<Option<f64>> {
    let tested: Vec<(usize, f64)> = estimates
        .iter()
        .enumerate()
        .filter_map(|(i, (e, gated))| e.p_value.filter(|_| *gated).map(|p| (i, p)))
        .collect();
    let adjusted = stats::holm(&tested.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    let mut out = vec![None; estimates.len()];
    for ((i, _), p) in tested.iter().zip(adjusted) {
        out[*i] = Some(p);
    }
    out
}

/// Applies the metric's gate (or the neutral policy for an ungated metric).
pub fn decide(estimate: &Estimate, gate: Option<&GateSpec>, p_adjusted: Option<f64>, default_alpha: f64) -> MetricResult {
    let direction = gate.map_or_else(|| default_direction(&estimate.metric), |g| g.direction);
    let alpha = gate.map_or(default_alpha, |g| g.alpha);
    let margin = match gate.map(|g| g.margin) {
        Some(Margin::Absolute(m)) => m,
        Some(Margin::Relative(r)) => r * estimate.baseline.unwrap_or(0.0).abs(),
        None => 0.0,
    };
    // Orient everything so that "bad" is negative.
    let sign = match direction {
        Direction::Higher => 1.0,
        Direction::Lower => -1.0,
    };
    let oriented_delta = estimate.delta.map(|d| sign * d);
    let oriented_ci = estimate.ci.map(|[lo, hi]| if sign > 0.0 { [lo, hi] } else { [-hi, -lo] });
    let p = p_adjusted.or(estimate.p_value);
    let significant = p.is_some_and(|p| p < alpha);
    let verdict = match (oriented_delta, oriented_ci) {
        (Some(d), Some([_, hi])) if significant && hi < 0.0 && d < -margin => MetricVerdict::Regression,
        (Some(d), Some([lo, _])) if significant && lo > 0.0 && d > margin => MetricVerdict::Improvement,
        _ => MetricVerdict::NoChange,
    };
    let non_inferior = oriented_ci.is_some_and(|[lo, _]| lo >= -margin);
    let slo = gate.and_then(|g| g.slo).map(|target| SloResult {
        target,
        met: estimate.candidate.is_some_and(|c| match direction {
            Direction::Higher => c >= target,
            Direction::Lower => c <= target,
        }),
    });
    let blocking = gate.is_some_and(|g| g.blocking);
    let strict = gate.is_some_and(|g| g.require_non_inferiority) && estimate.ci.is_some();
    let fails_gate = blocking && (verdict == MetricVerdict::Regression || (strict && !non_inferior) || slo.as_ref().is_some_and(|s| !s.met));
    MetricResult {
        name: estimate.metric.clone(),
        direction,
        blocking,
        gated: gate.is_some(),
        baseline: estimate.baseline,
        candidate: estimate.candidate,
        delta: estimate.delta,
        ci: estimate.ci,
        p_value: estimate.p_value,
        p_adjusted,
        test: estimate.test.to_owned(),
        n: estimate.n,
        verdict,
        non_inferior,
        mde: estimate.mde,
        margin,
        alpha,
        slo,
        fails_gate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(delta: f64, ci: [f64; 2], p: f64) -> Estimate {
        Estimate { metric: "pass_rate".into(), baseline: Some(0.9), candidate: Some(0.9 + delta), delta: Some(delta), ci: Some(ci), p_value: Some(p), test: "t", n: 40, mde: None }
    }

    fn gate(direction: Direction, margin: Margin) -> GateSpec {
        GateSpec { metric: "pass_rate".into(), direction, margin, alpha: 0.05, blocking: true, slo: None, require_non_inferiority: false }
    }

    #[track_caller]
    fn check(e: Estimate, g: GateSpec, verdict: MetricVerdict, non_inferior: bool, fails: bool) {
        let m = decide(&e, Some(&g), None, 0.05);
        assert_eq!((m.verdict, m.non_inferior, m.fails_gate), (verdict, non_inferior, fails), "{e:?}");
    }

    #[test]
    fn policy() {
        let higher = |m| gate(Direction::Higher, Margin::Absolute(m));
        // significant, CI below zero, beyond the margin: regression
        check(est(-0.3, [-0.45, -0.15], 0.001), higher(0.02), MetricVerdict::Regression, false, true);
        // significant but inside the margin: no detectable change, not proven non-inferior
        check(est(-0.01, [-0.03, -0.005], 0.01), higher(0.02), MetricVerdict::NoChange, false, false);
        // not significant, CI inside the margin: non-inferior
        check(est(0.0, [-0.01, 0.01], 0.9), higher(0.02), MetricVerdict::NoChange, true, false);
        // improvement
        check(est(0.2, [0.1, 0.3], 0.001), higher(0.02), MetricVerdict::Improvement, true, false);
        // lower is better: a significant drop in cost is an improvement
        let lower = gate(Direction::Lower, Margin::Relative(0.1));
        let mut cost = est(-0.004, [-0.005, -0.003], 0.0001);
        cost.baseline = Some(0.01);
        check(cost, lower.clone(), MetricVerdict::Improvement, true, false);
        // and a significant rise beyond 10% of the baseline is a regression
        let mut cost = est(0.002, [0.0015, 0.0025], 0.0001);
        cost.baseline = Some(0.01);
        check(cost, lower, MetricVerdict::Regression, false, true);
        // strict policy fails an inconclusive result
        let mut strict = higher(0.02);
        strict.require_non_inferiority = true;
        check(est(-0.01, [-0.1, 0.08], 0.7), strict, MetricVerdict::NoChange, false, true);
    }

    #[test]
    fn slo_breach_blocks_only_when_blocking() {
        let mut g = gate(Direction::Lower, Margin::Absolute(0.0));
        g.slo = Some(800.0);
        let mut e = est(0.0, [-1.0, 1.0], 1.0);
        e.candidate = Some(900.0);
        assert!(decide(&e, Some(&g), None, 0.05).fails_gate);
        g.blocking = false;
        let m = decide(&e, Some(&g), None, 0.05);
        assert!(!m.fails_gate);
        assert_eq!(m.slo, Some(SloResult { target: 800.0, met: false }));
    }

    #[test]
    fn holm_only_over_gated_tested_metrics() {
        let a = est(-0.3, [-0.4, -0.2], 0.01);
        let b = est(-0.3, [-0.4, -0.2], 0.04);
        let mut c = est(0.0, [0.0, 0.0], 0.5);
        c.p_value = None;
        let adjusted = adjust(&[(&a, true), (&b, true), (&c, true), (&a, false)]);
        // statsmodels.stats.multitest.multipletests([0.01, 0.04], method="holm")[1] -> [0.02, 0.04]
        assert_eq!(adjusted, vec![Some(0.02), Some(0.04), None, None]);
    }
}
