//! One metric's decision: its estimate and its gate → regression, improvement or no change.
//!
//! A metric regresses when the candidate is significantly worse (its test rejects: Holm-adjusted
//! p < α, the test's evidence on the bad side) and materially worse (the estimate is beyond the
//! margin). It
//! improves symmetrically. Otherwise it is "no detectable change", and `non_inferior` says
//! whether the CI proves the candidate is not worse than the margin.
//!
//! Ratio metrics with a relative margin ("10%") are decided on the relative scale, with the
//! interval of `candidate / baseline − 1`, so the baseline's own uncertainty is counted.
//! Equivalence (TOST) holds when the (1 − 2α) interval lies inside ±margin; `require:
//! equivalence` fails the gate unless it does. Power: the minimum detectable effect is compared
//! with the margin, and the cases needed for the margin are reported.

use crate::analyze::{self, Estimate, sd_from_ci};
use crate::results::{Direction, Drift, MetricDetails, MetricResult, MetricVerdict, SloResult};
use crate::stats;
use crate::suite::{GateSpec, Margin, default_direction};

/// Holm–Bonferroni across every gated metric of every experiment: returns adjusted p-values
/// aligned with `estimates` (ungated or untested metrics keep `None`).
pub fn adjust(estimates: &[(&Estimate, bool)]) -> Vec<Option<f64>> {
    adjust_at(estimates, None)
}

/// [`adjust`] at a sequential look: each p-value is first made the look's repeated p-value
/// (the smallest overall α whose spending design rejects at this look), then Holm adjusts
/// those across the gated metrics — the group-sequential Holm procedure (Maurer & Bretz 2013).
/// Ungated metrics get their repeated p-value unadjusted, so that every p compared with α at
/// a look accounts for the looks. With `look = None` this is [`adjust`].
pub fn adjust_at(estimates: &[(&Estimate, bool)], look: Option<&stats::Look>) -> Vec<Option<f64>> {
    // Each repeated p-value once: it costs some twenty boundary computations.
    let at_look: Vec<Option<f64>> = estimates
        .iter()
        .map(|(e, _)| e.p_value.map(|p| look.map_or(p, |l| l.repeated_p(p))))
        .collect();
    let tested: Vec<(usize, f64)> = estimates
        .iter()
        .zip(&at_look)
        .enumerate()
        .filter_map(|(i, ((_, gated), p))| p.filter(|_| *gated).map(|p| (i, p)))
        .collect();
    let adjusted = stats::holm(&tested.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    let mut out: Vec<Option<f64>> = match look {
        Some(_) => at_look,
        None => vec![None; estimates.len()],
    };
    for ((i, _), p) in tested.iter().zip(adjusted) {
        out[*i] = Some(p);
    }
    out
}

/// Applies the metric's gate (or the neutral policy for an ungated metric).
pub fn decide(
    estimate: &Estimate,
    gate: Option<&GateSpec>,
    p_adjusted: Option<f64>,
    default_alpha: f64,
) -> MetricResult {
    decide_with(estimate, gate, p_adjusted, default_alpha, true)
}

/// [`decide`], with the sample-size plan (`cases_needed`, an exact search for McNemar metrics)
/// only when `plan` is set: the A/A permutations need the verdict alone, hundreds of times.
pub(super) fn decide_with(
    estimate: &Estimate,
    gate: Option<&GateSpec>,
    p_adjusted: Option<f64>,
    default_alpha: f64,
    plan: bool,
) -> MetricResult {
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
    let orient = |ci: [f64; 2]| if sign > 0.0 { ci } else { [-ci[1], -ci[0]] };
    // A relative margin on a ratio metric is judged on the relative scale.
    let relative = match (gate.map(|g| g.margin), estimate.relative_delta, estimate.relative_ci) {
        (Some(Margin::Relative(r)), Some(d), Some(ci)) => Some((d, ci, r)),
        _ => None,
    };
    let (decision_delta, decision_ci, decision_margin) = match relative {
        Some((d, ci, r)) => (Some(d), Some(ci), r),
        None => (estimate.delta, estimate.ci, margin),
    };
    let oriented_delta = decision_delta.map(|d| sign * d);
    let oriented_ci = decision_ci.map(orient);
    let margin_for_decision = decision_margin;
    // Significant: the metric's own test rejects at α after Holm (and, in a sequential run,
    // after the looks), on the side its evidence points to. The interval is not a second test:
    // requiring both would make the verdict the intersection of two tests, which neither the
    // error guarantee nor the power analysis describes (it cost 2 points of power).
    let p = p_adjusted.or(estimate.p_value);
    let significant = p.is_some_and(|p| p < alpha);
    let evidence = estimate.shift.map(|s| sign * s);
    let verdict = match (oriented_delta, evidence) {
        (Some(d), Some(e)) if significant && e < 0.0 && d < -margin_for_decision => MetricVerdict::Regression,
        (Some(d), Some(e)) if significant && e > 0.0 && d > margin_for_decision => MetricVerdict::Improvement,
        _ => MetricVerdict::NoChange,
    };
    let non_inferior = oriented_ci.is_some_and(|[lo, _]| lo >= -margin_for_decision);
    // TOST at level α: the (1 − 2α) interval inside ±margin (absolute scale).
    let equivalent = (margin > 0.0).then(|| {
        estimate
            .ci_equivalence
            .is_some_and(|[lo, hi]| lo > -margin && hi < margin)
    });
    // Power: the smallest effect this n detects, against the margin.
    let underpowered = margin > 0.0 && estimate.mde.is_some_and(|mde| mde > margin);
    // Planned for the test the gate runs: exact McNemar power, the signed-rank test's
    // efficiency, the normal formula for the bootstrap (quantiles).
    let cases_needed = match estimate.ci {
        Some(ci) if plan && margin > 0.0 => {
            sd_from_ci(ci, estimate.n, estimate.ci_alpha).and_then(|sd| match estimate.test {
                "mcnemar-exact" => {
                    let good_rate = estimate.baseline.map(|b| if sign > 0.0 { b } else { 1.0 - b })?;
                    let psi = discordance_under_drop(sd, estimate.delta.unwrap_or(0.0), good_rate, margin);
                    stats::cases_needed_mcnemar_exact(psi, margin, alpha, 0.8)
                        .or_else(|| stats::cases_needed_mcnemar(psi, margin, alpha, 0.8))
                }
                "wilcoxon-signed-rank" => stats::cases_needed_signed_rank(sd, margin, alpha, 0.8),
                _ => stats::cases_needed(sd, margin, alpha, 0.8),
            })
        }
        _ => None,
    };
    let slo = gate.and_then(|g| g.slo).map(|target| SloResult {
        target,
        met: estimate.candidate.is_some_and(|c| match direction {
            Direction::Higher => c >= target,
            Direction::Lower => c <= target,
        }),
    });
    let blocking = gate.is_some_and(|g| g.blocking);
    // The SLO "proven": even the interval's bad-side bound meets the target.
    let slo_proven = gate.and_then(|g| g.slo).and_then(|target| {
        let [lo, hi] = estimate.candidate_ci?;
        Some(match direction {
            Direction::Higher => lo >= target,
            Direction::Lower => hi <= target,
        })
    });
    let strict = gate.is_some_and(|g| g.require_non_inferiority) && estimate.ci.is_some();
    let needs_equivalence = gate.is_some_and(|g| g.require_equivalence) && estimate.ci.is_some();
    let fails_gate = blocking
        && (verdict == MetricVerdict::Regression
            || (strict && !non_inferior)
            || (needs_equivalence && equivalent != Some(true))
            || slo.as_ref().is_some_and(|s| !s.met));
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
        details: MetricDetails {
            estimand: (estimate.estimand != "none").then(|| estimate.estimand.to_owned()),
            relative_delta: estimate.relative_delta,
            relative_ci: estimate.relative_ci,
            equivalent,
            equivalence_ci: estimate.ci_equivalence,
            underpowered,
            cases_needed,
            between_var: estimate.between_var,
            within_var: estimate.within_var,
            candidate_ci: estimate.candidate_ci,
            slo_proven,
            drift: None,
        },
    }
}

/// Whether a sequential run may stop at this look: some blocking metric already regressed
/// (the verdict is "fail" whatever follows), or — when `may_accept` — every blocking gated
/// metric is proven non-inferior within its margin (and, where required, equivalent). The
/// metrics must have been decided at the look (intervals at its nominal level, p-values
/// repeated; see `stats::Look`). `may_accept` is false at looks whose nominal level is finer
/// than the bootstrap can resolve ([`accepts_at`]).
pub fn sequential_settled(metrics: &[MetricResult], may_accept: bool) -> bool {
    let blocking: Vec<&MetricResult> = metrics.iter().filter(|m| m.gated && m.blocking).collect();
    if blocking.iter().any(|m| m.verdict == MetricVerdict::Regression) {
        return true;
    }
    may_accept && !blocking.is_empty() && blocking.iter().all(|m| m.non_inferior && !m.fails_gate)
}

/// Whether a look at two-sided nominal level `level` may stop for non-inferiority: a
/// percentile interval from `analyze::RESAMPLES` draws needs at least ten draws beyond each
/// bound to place it (at 4,000 draws, levels of 0.005 and up). Finer levels — the first look of
/// four (0.0001), the first five of ten — would put the bound at the most extreme draws, which
/// cover less than they claim; those looks can still stop for a regression.
pub fn accepts_at(level: f64) -> bool {
    level * analyze::RESAMPLES as f64 >= 20.0
}

/// Discordant-pair probability of a binary metric under the planning alternative: a drop of
/// `margin` on top of what this run observed. The run's discordance is `ψ̂ = sd² + d̂²` (the
/// per-case difference of a paired 0/1 metric has variance `ψ − d²`). If every case's
/// probability of the good outcome, `p`, falls by `margin` (δ), a case is discordant with
/// probability `p(1 − p + δ) + (p − δ)(1 − p) = 2p(1 − p) + δ(2p − 1)`, so ψ rises by
/// `δ(2p̄ − 1)` with `p̄` the baseline's good-outcome rate. Never below ψ̂ (the plan is not
/// allowed to shrink below the observed spread), at least δ, at most 1. Planning from ψ̂ alone
/// underplans: at p̄ = 0.8 and δ = 0.08 a drop turns 26.7% discordant pairs into ~31%.
fn discordance_under_drop(sd: f64, observed_delta: f64, good_rate: f64, margin: f64) -> f64 {
    let observed = sd * sd + observed_delta * observed_delta;
    let rise = (margin * (2.0 * good_rate - 1.0)).max(0.0);
    (observed + rise).clamp(margin, 1.0)
}

/// The candidate variant's recorded value of a metric (its `evaluation_metrics`) against this
/// run: consistent when the recorded value lies inside the candidate's (1 − α) interval.
pub fn drift(recorded: Option<f64>, estimate: &Estimate) -> Option<Drift> {
    let recorded = recorded?;
    let measured = estimate.candidate?;
    let consistent = estimate
        .candidate_ci
        .is_some_and(|[lo, hi]| lo <= recorded && recorded <= hi);
    Some(Drift {
        recorded,
        measured,
        consistent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est(delta: f64, ci: [f64; 2], p: f64) -> Estimate {
        Estimate {
            metric: "pass_rate".into(),
            baseline: Some(0.9),
            candidate: Some(0.9 + delta),
            delta: Some(delta),
            ci: Some(ci),
            p_value: Some(p),
            test: "t",
            n: 40,
            mde: None,
            estimand: "mean-difference",
            ci_equivalence: Some(ci),
            relative_delta: None,
            relative_ci: None,
            candidate_ci: None,
            between_var: None,
            within_var: None,
            ci_alpha: 0.05,
            shift: Some(delta),
        }
    }

    fn gate(direction: Direction, margin: Margin) -> GateSpec {
        GateSpec {
            metric: "pass_rate".into(),
            direction,
            margin,
            alpha: 0.05,
            blocking: true,
            slo: None,
            require_non_inferiority: false,
            require_equivalence: false,
        }
    }

    #[track_caller]
    fn check(e: Estimate, g: GateSpec, verdict: MetricVerdict, non_inferior: bool, fails: bool) {
        let m = decide(&e, Some(&g), None, 0.05);
        assert_eq!(
            (m.verdict, m.non_inferior, m.fails_gate),
            (verdict, non_inferior, fails),
            "{e:?}"
        );
    }

    #[test]
    fn policy() {
        let higher = |m| gate(Direction::Higher, Margin::Absolute(m));
        // significant, CI below zero, beyond the margin: regression
        check(
            est(-0.3, [-0.45, -0.15], 0.001),
            higher(0.02),
            MetricVerdict::Regression,
            false,
            true,
        );
        // significant but inside the margin: no detectable change, not proven non-inferior
        check(
            est(-0.01, [-0.03, -0.005], 0.01),
            higher(0.02),
            MetricVerdict::NoChange,
            false,
            false,
        );
        // not significant, CI inside the margin: non-inferior
        check(
            est(0.0, [-0.01, 0.01], 0.9),
            higher(0.02),
            MetricVerdict::NoChange,
            true,
            false,
        );
        // improvement
        check(
            est(0.2, [0.1, 0.3], 0.001),
            higher(0.02),
            MetricVerdict::Improvement,
            true,
            false,
        );
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
        check(
            est(-0.01, [-0.1, 0.08], 0.7),
            strict,
            MetricVerdict::NoChange,
            false,
            true,
        );
    }

    #[test]
    fn equivalence_power_and_relative_margins() {
        let higher = |m| gate(Direction::Higher, Margin::Absolute(m));
        let mut e = est(0.0, [-0.01, 0.01], 0.9);
        e.ci_equivalence = Some([-0.008, 0.008]);
        let mut g = higher(0.02);
        g.require_equivalence = true;
        let m = decide(&e, Some(&g), None, 0.05);
        assert_eq!((m.details.equivalent, m.fails_gate), (Some(true), false));
        // Inconclusive for equivalence: the 90% interval reaches past the margin.
        e.ci_equivalence = Some([-0.03, 0.01]);
        let m = decide(&e, Some(&g), None, 0.05);
        assert_eq!((m.details.equivalent, m.fails_gate), (Some(false), true));
        // No margin, no equivalence question.
        assert_eq!(decide(&e, Some(&higher(0.0)), None, 0.05).details.equivalent, None);
        // Power: a 95% interval of half-width 0.1 at n = 40 implies sd = 0.1/1.96·√40; the MDE
        // (0.14) exceeds a 0.02 margin, and detecting 0.02 needs
        // ceil(((1.96 + 0.8416)·0.3227/0.02)²) = 2044 cases.
        let mut wide = est(0.0, [-0.1, 0.1], 0.9);
        wide.mde = Some(0.14);
        let m = decide(&wide, Some(&higher(0.02)), None, 0.05);
        assert!(m.details.underpowered);
        // numpy.ceil(((norm.ppf(0.975) + norm.ppf(0.8)) * (0.1/norm.ppf(0.975)*numpy.sqrt(40)) / 0.02)**2) -> 2044
        assert_eq!(m.details.cases_needed, Some(2044));
        // McNemar metrics plan for the exact test from the discordance under the drop:
        // sd = 0.1/1.96·√40 = 0.322687 → ψ̂ = sd² = 0.104127 (no observed change), plus
        // 0.02·(2·0.9 − 1) = 0.016 → ψ = 0.120127; Connor's closed form gives
        // numpy.ceil(((norm.ppf(0.975)*numpy.sqrt(psi) + norm.ppf(0.8)*numpy.sqrt(psi - 0.02**2))/0.02)**2)
        // = 2355 (vs 2044 from the no-change sd); the exact test needs more. Reference: the
        // independent scipy power of stats::power's tests (`power_vec`, binom.pmf over every
        // (d, b) with p = min(1, 2*binom.cdf(min(b, d-b), d, .5))), pb = (psi + .02)/2,
        // pg = (psi - .02)/2, and the smallest n with power >= 0.8 at n..n + w,
        // w = min(max(ceil(n/50), 20), 200), found by a Python loop -> 2440.
        let mut binary = wide.clone();
        binary.test = "mcnemar-exact";
        let m = decide(&binary, Some(&higher(0.02)), None, 0.05);
        assert_eq!(m.details.cases_needed, Some(2440));
        // Signed-rank metrics need π/3 times the normal formula's cases:
        // math.ceil(((norm.ppf(0.975) + norm.ppf(0.8)) * (0.1/norm.ppf(0.975)*numpy.sqrt(40)) / 0.02)**2 / (3/math.pi)) -> 2140
        let mut ranked = wide.clone();
        ranked.test = "wilcoxon-signed-rank";
        assert_eq!(
            decide(&ranked, Some(&higher(0.02)), None, 0.05).details.cases_needed,
            Some(2140)
        );
        // A 10% margin on cost is judged on the relative interval: +8% [+3%, +13%] is a
        // significant rise but not beyond 10%, so no regression though the absolute delta is.
        let mut cost = est(0.0008, [0.0003, 0.0013], 0.001);
        cost.metric = "cost_per_request".into();
        cost.baseline = Some(0.01);
        cost.relative_delta = Some(0.08);
        cost.relative_ci = Some([0.03, 0.13]);
        let m = decide(&cost, Some(&gate(Direction::Lower, Margin::Relative(0.1))), None, 0.05);
        assert_eq!((m.verdict, m.non_inferior), (MetricVerdict::NoChange, false));
        cost.relative_delta = Some(0.12);
        cost.relative_ci = Some([0.105, 0.135]);
        let m = decide(&cost, Some(&gate(Direction::Lower, Margin::Relative(0.1))), None, 0.05);
        assert_eq!(m.verdict, MetricVerdict::Regression);
    }

    #[test]
    fn slo_with_interval_and_drift() {
        let mut g = gate(Direction::Lower, Margin::Absolute(0.0));
        g.slo = Some(0.05);
        let mut e = est(0.0, [-0.01, 0.01], 1.0);
        e.candidate = Some(0.03);
        e.candidate_ci = Some([0.01, 0.07]);
        let m = decide(&e, Some(&g), None, 0.05);
        assert_eq!(
            (m.slo.as_ref().map(|s| s.met), m.details.slo_proven),
            (Some(true), Some(false))
        );
        assert_eq!(
            drift(Some(0.02), &e),
            Some(Drift {
                recorded: 0.02,
                measured: 0.03,
                consistent: true
            })
        );
        assert_eq!(drift(Some(0.2), &e).map(|d| d.consistent), Some(false));
        assert_eq!(drift(None, &e), None);
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
        assert_eq!(
            m.slo,
            Some(SloResult {
                target: 800.0,
                met: false
            })
        );
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

    #[test]
    fn a_sequential_look_adjusts_repeated_p_values_with_holm() {
        // Two gated metrics and one ungated, at the second of four looks.
        let look = stats::Look::new(vec![0.25, 0.5]).unwrap();
        let a = est(-0.1, [-0.2, -0.05], 0.001);
        let b = est(-0.1, [-0.2, -0.05], 0.004);
        let c = est(-0.1, [-0.2, -0.05], 0.004);
        let adjusted = adjust_at(&[(&a, true), (&b, true), (&c, false)], Some(&look));
        let (ra, rb) = (look.repeated_p(0.001), look.repeated_p(0.004));
        // Holm on the repeated p-values: 2·ra, then max(2·ra, rb); the ungated metric keeps
        // its repeated p-value.
        assert_eq!(adjusted, vec![Some(2.0 * ra), Some(rb.max(2.0 * ra)), Some(rb)]);
        // Without a look it is plain Holm, ungated metrics untouched.
        assert_eq!(
            adjust_at(&[(&a, true), (&b, true), (&c, false)], None),
            vec![Some(0.002), Some(0.004), None]
        );
        // p = 0.004 at the second look (nominal level 0.0055 for α = 0.05) is significant alone.
        assert!(rb < 0.05 && rb > 0.004, "{rb}");
    }

    #[test]
    fn the_test_decides_on_the_side_its_evidence_points_to() {
        // A skewed drop: the mean fell beyond the margin, but the signed ranks point up (most
        // cases a little better). Significant, but not a regression.
        let mut e = est(-0.1, [-0.2, 0.01], 0.001);
        e.shift = Some(5.0);
        let g = gate(Direction::Higher, Margin::Absolute(0.05));
        assert_eq!(decide(&e, Some(&g), None, 0.05).verdict, MetricVerdict::NoChange);
        // The same with the evidence on the bad side regresses, even though the interval
        // touches zero: the test decides, the interval measures.
        e.shift = Some(-5.0);
        assert_eq!(decide(&e, Some(&g), None, 0.05).verdict, MetricVerdict::Regression);
    }

    #[test]
    fn non_inferiority_stops_only_at_looks_the_bootstrap_resolves() {
        // Four looks at α = 0.05: nominal levels 8.9e-5, 0.0055, 0.0215, 0.0411 (scipy, see
        // stats::sequential); 4,000 draws resolve 0.005 and up.
        assert!(!accepts_at(8.857543832140365e-05));
        assert!(accepts_at(0.005537975583115089));
        assert!(accepts_at(0.05));
        let g = gate(Direction::Higher, Margin::Absolute(0.05));
        let safe = decide(&est(0.0, [-0.01, 0.01], 0.9), Some(&g), None, 0.05);
        assert!(safe.non_inferior);
        assert!(sequential_settled(std::slice::from_ref(&safe), true));
        assert!(!sequential_settled(std::slice::from_ref(&safe), false));
        // A regression settles a look whatever its level.
        let worse = decide(&est(-0.1, [-0.15, -0.06], 0.001), Some(&g), None, 0.05);
        assert_eq!(worse.verdict, MetricVerdict::Regression);
        assert!(sequential_settled(std::slice::from_ref(&worse), false));
    }
}
