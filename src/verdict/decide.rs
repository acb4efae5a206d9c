//! One metric's decision: its estimate and its gate → regression, minor regression,
//! improvement, no significant change, no data, or too few cases to judge.
//!
//! Significance and size are separate questions. A metric **regresses** when its test rejects on
//! the bad side (Holm-adjusted across the PR's blocking gated metrics, p < α) and the estimate
//! is beyond the margin; significantly worse but within the margin is a **minor regression**
//! (shown, never fails). Significantly better is an **improvement**. Otherwise there is **no
//! significant change**, and the interval says whether the candidate is proven non-inferior
//! (its bad-side bound inside the margin) or equivalent (TOST: the (1 − 2α) interval inside
//! ±margin, and non-inferior: never the stronger claim without the weaker). A relative margin ("10%") is judged on the relative scale, `candidate / baseline −
//! 1`, for every one of these questions. Below the test's minimum n the metric is reported "too
//! few cases to judge" and not gated (unless its gate requires a proof: then it fails); a
//! zero-width interval proves nothing.
//!
//! Power has one model: `cases_needed` is the smallest n at which this metric's own test, at α
//! divided by the Holm family's size, detects a change of the margin with 80% power, `mde` the
//! change it detects at this n, and `underpowered` means n is below `cases_needed`.

use crate::analyze::{self, Estimate};
use crate::metrics::{Metric, Test};
use crate::results::{DecisionBasis, Direction, Drift, MetricDetails, MetricResult, MetricVerdict, SloResult};
use crate::stats;
use crate::suite::{GateSpec, Margin};

/// Power the plans are for.
pub const POWER: f64 = 0.8;

/// Holm–Bonferroni across the family (`true` in `estimates`): adjusted p-values aligned with
/// `estimates`; the others keep `None`.
pub fn adjust(estimates: &[(&Estimate, bool)]) -> Vec<Option<f64>> {
    adjust_at(estimates, None)
}

/// [`adjust`] at a sequential look: each p-value is first made the look's repeated p-value (the
/// smallest overall α whose spending design rejects at this look), then Holm adjusts the
/// family's — the group-sequential Holm procedure (Maurer & Bretz 2013). Metrics outside the
/// family get their repeated p-value unadjusted, so that every p compared with α at a look
/// accounts for the looks. With `look = None` this is [`adjust`].
pub fn adjust_at(estimates: &[(&Estimate, bool)], look: Option<&stats::Look>) -> Vec<Option<f64>> {
    adjust_at_for(estimates, look, None)
}

/// [`adjust_at`] for an intermediate sequential look that only decides whether to stop, given
/// the largest α of the family (`verdicts_below`): metrics outside the family get no repeated
/// p-value (`None`), and a p-value at or above that α stands for its repeated p-value (which
/// is never smaller, so it cannot be significant either way, and Holm's verdicts do not
/// change). Each repeated p-value costs some twenty boundary computations.
pub fn adjust_at_for(
    estimates: &[(&Estimate, bool)],
    look: Option<&stats::Look>,
    verdicts_below: Option<f64>,
) -> Vec<Option<f64>> {
    let at_look: Vec<Option<f64>> = estimates
        .iter()
        .map(|(e, in_family)| {
            let p = e.p_value?;
            let Some(look) = look else { return Some(p) };
            match verdicts_below {
                None => Some(look.repeated_p(p)),
                Some(_) if !*in_family => None,
                Some(alpha) if p >= alpha => Some(p),
                Some(_) => Some(look.repeated_p(p)),
            }
        })
        .collect();
    let tested: Vec<(usize, f64)> = estimates
        .iter()
        .zip(&at_look)
        .enumerate()
        .filter_map(|(i, ((_, in_family), p))| p.filter(|_| *in_family).map(|p| (i, p)))
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

/// Whether a metric's estimate can be judged at all: a test ran, and on at least its minimum
/// number of units. Only judged blocking metrics join Holm's family.
pub fn judged(estimate: &Estimate) -> bool {
    estimate.test != Test::None && estimate.delta.is_some() && estimate.n >= estimate.min_units.max(1)
}

/// Applies the metric's gate (or the neutral policy for an ungated metric). `family` is the size
/// of Holm's family the metric's p-value was adjusted in (1 outside it), for the plan.
/// `compared` is false for a candidate-only experiment (no baseline).
pub fn decide(
    estimate: &Estimate,
    gate: Option<&GateSpec>,
    p_adjusted: Option<f64>,
    default_alpha: f64,
    family: usize,
) -> MetricResult {
    decide_with(estimate, gate, p_adjusted, default_alpha, family, true)
}

/// [`decide`], with the power plan only when `plan` is set: the A/A permutations need the
/// verdict alone, hundreds of times.
pub fn decide_with(
    estimate: &Estimate,
    gate: Option<&GateSpec>,
    p_adjusted: Option<f64>,
    default_alpha: f64,
    family: usize,
    plan: bool,
) -> MetricResult {
    let metric = Metric::of(&estimate.metric);
    let direction = gate.map_or_else(|| metric.default_direction(), |g| g.direction);
    let alpha = gate.map_or(default_alpha, |g| g.alpha);
    let sign = match direction {
        Direction::Higher => 1.0,
        Direction::Lower => -1.0,
    };
    // The margin in the metric's unit (a relative one against the baseline's own value).
    let margin_abs = match gate.map(|g| g.margin) {
        Some(Margin::Absolute(m)) => m,
        Some(Margin::Relative(r)) => r * estimate.baseline.unwrap_or(0.0).abs(),
        None => 0.0,
    };
    // The scale the decision is made on: relative for a relative margin when the relative
    // interval exists, else the metric's unit. A single-repeat pass rate is decided on the
    // Newcombe interval whatever its margin (DESIGN's Decisions: "the Newcombe interval is
    // shown and decides the margin comparisons"), a relative margin as that share of the
    // baseline's rate; a ratio of two rates has no interval when both are 100%.
    let basis = match (gate.map(|g| g.margin), estimate.relative_delta) {
        (Some(Margin::Relative(r)), Some(d)) if estimate.test != Test::McnemarExact => DecisionBasis {
            relative: true,
            estimate: d,
            ci: estimate.relative_ci,
            margin: r,
        },
        _ => DecisionBasis {
            relative: false,
            estimate: estimate.delta.unwrap_or(0.0),
            ci: estimate.ci,
            margin: margin_abs,
        },
    };
    let equivalence_ci = if basis.relative {
        estimate.relative_ci_equivalence
    } else {
        estimate.ci_equivalence
    };
    let zero_width = |ci: Option<[f64; 2]>| ci.is_some_and(|[lo, hi]| hi - lo <= 0.0);
    let variance_unknown = zero_width(basis.ci);
    let is_judged = judged(estimate);
    let margin = basis.margin;
    let oriented = sign * basis.estimate;
    let p = p_adjusted.or(estimate.p_value);
    let significant = p.is_some_and(|p| p < alpha);
    let verdict = if estimate.test == Test::None || estimate.delta.is_none() || estimate.n == 0 {
        MetricVerdict::NoData
    } else if !is_judged {
        MetricVerdict::TooFew
    } else if significant && oriented < 0.0 {
        if oriented < -margin {
            MetricVerdict::Regression
        } else {
            MetricVerdict::MinorRegression
        }
    } else if significant && oriented > 0.0 {
        MetricVerdict::Improvement
    } else {
        MetricVerdict::NoChange
    };
    // Proofs need a judged metric and an interval with a spread.
    let orient = |[lo, hi]: [f64; 2]| if sign > 0.0 { [lo, hi] } else { [-hi, -lo] };
    // A skewed amount's paired t below the bootstrap-t's minimum (its values all 0 or 1; any
    // other is too few there) is short on the long tail: it proves no bound.
    let provable = is_judged && Metric::of(&estimate.metric).proves_bounds(estimate.test, estimate.n);
    let non_inferior = provable && !variance_unknown && basis.ci.map(orient).is_some_and(|[lo, _]| lo >= -margin);
    // Equivalence is the stronger claim: TOST's (1 − 2α) interval inside ±margin, and the
    // non-inferiority the shown (1 − α) interval proves. TOST alone can hold where that bound
    // does not (the narrower interval clears −margin, the wider does not), and a gate requiring
    // equivalence would then pass where one requiring only non-inferiority fails.
    let equivalent = (margin > 0.0).then(|| {
        non_inferior
            && !zero_width(equivalence_ci)
            && equivalence_ci.is_some_and(|[lo, hi]| lo > -margin && hi < margin)
    });
    let blocking = gate.is_some_and(|g| g.blocking);
    // Power: one model for the plan and the detectable effect, at α over the family.
    let plan_alpha = alpha / family.max(1) as f64;
    // The smallest effect detectable, for every metric judged (DESIGN: the report says it, so
    // an underpowered suite is visible); the cases needed, for a gate's margin. An interval of
    // zero width (no spread seen) tells nothing of what could be detected.
    let relative_margin = match gate.map(|g| g.margin) {
        Some(Margin::Relative(r)) => Some(r),
        _ => None,
    };
    // A skewed amount with too few units to judge still gets its plan from the spread seen
    // (an A/A run of 20 cases says how many cost needs), as any metric judged from 10 would.
    let plannable = is_judged
        || (Metric::of(&estimate.metric).is_skewed_amount()
            && estimate.test != Test::None
            && estimate.delta.is_some()
            && estimate.n >= crate::metrics::MIN_UNITS_MEAN);
    let (mde, cases_needed) = if plan && plannable {
        power_plan(estimate, plan_alpha, margin_abs, sign, relative_margin)
    } else {
        (None, None)
    };
    let mde = mde.filter(|_| !variance_unknown && is_judged);
    // No plan needs fewer units than the test judges; a skewed amount proves a bound only from
    // the bootstrap-t's minimum.
    let cases_needed = cases_needed.map(|c| c.max(estimate.min_units));
    let cases_needed = match Metric::of(&estimate.metric).proves_bounds(estimate.test, estimate.n) {
        false if is_judged => cases_needed.map(|c| c.max(crate::metrics::MIN_UNITS_AMOUNT)),
        _ => cases_needed,
    };
    let underpowered = margin_abs > 0.0 && is_judged && cases_needed.is_some_and(|c| c > estimate.n);
    // Judged on the candidate's value: with none (no call timed in this run), there is no SLO
    // to have met or missed, and the metric says it has no data.
    let slo = gate
        .and_then(|g| g.slo)
        .zip(estimate.candidate)
        .map(|(target, c)| SloResult {
            target,
            met: match direction {
                Direction::Higher => c >= target,
                Direction::Lower => c <= target,
            },
        });
    // The SLO "proven": even the interval's bad-side bound meets the target.
    let slo_proven = gate.and_then(|g| g.slo).and_then(|target| {
        let [lo, hi] = estimate.candidate_ci?;
        Some(match direction {
            Direction::Higher => lo >= target,
            Direction::Lower => hi <= target,
        })
    });
    let strict = gate.is_some_and(|g| g.require_non_inferiority);
    let needs_equivalence = gate.is_some_and(|g| g.require_equivalence);
    let fails_gate = blocking
        && match verdict {
            MetricVerdict::NoData => false,
            // A gate that requires a proof fails without one, too few cases or not.
            MetricVerdict::TooFew => strict || needs_equivalence,
            _ => {
                verdict == MetricVerdict::Regression
                    || (strict && !non_inferior)
                    || (needs_equivalence && equivalent != Some(true))
                    || slo.as_ref().is_some_and(|s| !s.met)
            }
        };
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
        test: estimate.test.as_str().to_owned(),
        n: estimate.n,
        verdict,
        non_inferior,
        mde,
        margin: margin_abs,
        alpha,
        slo,
        fails_gate,
        details: MetricDetails {
            estimand: (estimate.test != Test::None).then(|| estimate.estimand.as_str().to_owned()),
            relative_delta: estimate.relative_delta,
            relative_ci: estimate.relative_ci,
            equivalent,
            equivalence_ci,
            underpowered,
            cases_needed: cases_needed.filter(|_| margin_abs > 0.0),
            between_var: estimate.between_var,
            within_var: estimate.within_var,
            variance_components: estimate.variance_components.clone(),
            candidate_ci: estimate.candidate_ci,
            slo_proven,
            drift: None,
            min_n: Some(estimate.min_units),
            cases: Some(estimate.cases),
            left_out: estimate.left_out,
            clustered: estimate.grouped,
            variance_unknown: variance_unknown && is_judged,
            decision: (estimate.test != Test::None && estimate.delta.is_some()).then_some(basis),
            family: (family > 1).then_some(family),
            require: gate.and_then(|g| {
                if g.require_equivalence {
                    Some("equivalence".to_owned())
                } else {
                    g.require_non_inferiority.then(|| "non-inferiority".to_owned())
                }
            }),
            sd: estimate.unit_sd,
        },
    }
}

/// The smallest change this metric's test detects at its n, and the units it needs for a change
/// of `margin` (metric unit), both at `alpha` with [`POWER`].
fn power_plan(
    estimate: &Estimate,
    alpha: f64,
    margin: f64,
    sign: f64,
    relative_margin: Option<f64>,
) -> (Option<f64>, Option<usize>) {
    let n = estimate.n;
    match estimate.test {
        Test::McnemarExact => {
            let (Some(observed), Some(baseline)) = (estimate.discordance, estimate.baseline) else {
                return (None, None);
            };
            let good_rate = if sign > 0.0 { baseline } else { 1.0 - baseline };
            let observed = discordance_without_change(observed, good_rate, observed_drop(estimate, sign));
            let needed = (margin > 0.0)
                .then(|| {
                    let psi = discordance_under_drop(observed, good_rate, margin);
                    stats::cases_needed_mcnemar_exact(psi, margin, alpha, POWER)
                        .or_else(|| stats::cases_needed_mcnemar(psi, margin, alpha, POWER))
                })
                .flatten();
            (mcnemar_mde(observed, good_rate, n, alpha), needed)
        }
        Test::PairedT | Test::BootstrapT | Test::SignFlip => {
            let Some(mut sd) = estimate.unit_sd else {
                return (None, None);
            };
            // A quantile that worsens by a relative margin scales the candidate's values, and
            // with them the candidate's sampling spread: plan with the difference's variance
            // under that change, `V_b + f²·V_c − 2f·C` (f = 1 ± m on the bad side).
            if let (Some(m), Some([vb, vc, cov])) = (relative_margin, estimate.quantile_variances) {
                let f = 1.0 - sign * m;
                let var = (vb + f * f * vc - 2.0 * f * cov).max(0.0);
                sd = sd.max((var * estimate.n as f64).sqrt());
            }
            if estimate.binary {
                // Means of 0/1 outcomes: a drop makes the candidate's outcomes noisier, as for
                // McNemar (`discordance_under_drop`); plan with the spread under the drop.
                let good_rate = estimate.baseline.map(|b| if sign > 0.0 { b } else { 1.0 - b });
                if let Some(good_rate) = good_rate {
                    // The spread the drop adds (the variance of a 0/1 outcome with the good
                    // rate moved by δ, per call, over the calls of a unit), and what is left
                    // of the observed spread without the drop the run saw.
                    let rise = |delta: f64| {
                        (delta * (2.0 * good_rate - 1.0) - delta * delta) / estimate.calls_per_unit.max(1.0)
                    };
                    let var = (sd * sd - rise(observed_drop(estimate, sign))).max(0.0);
                    let sd_at = |delta: f64| (var + rise(delta).max(0.0)).sqrt();
                    let needed = (margin > 0.0)
                        .then(|| stats::cases_needed_t(sd_at(margin), margin, alpha, POWER))
                        .flatten();
                    return (binary_mean_mde(&sd_at, n, alpha), needed);
                }
            }
            let needed = (margin > 0.0)
                .then(|| stats::cases_needed_t(sd, margin, alpha, POWER))
                .flatten();
            (stats::mde_t(sd, n, alpha, POWER), needed)
        }
        Test::None => (None, None),
    }
}

/// The change the run observed, as a drop of the good outcome's rate (negative when it rose).
fn observed_drop(estimate: &Estimate, sign: f64) -> f64 {
    estimate.delta.map_or(0.0, |d| -sign * d)
}

/// The discordance the cases would show with no change, from the one observed with a drop of
/// `drop` (the inverse of [`discordance_under_drop`]'s model: ψ = ψ₀ + δ(2p̄ − 1)). The plan
/// adds the planned drop to this, not to the observed discordance, which a real regression has
/// already inflated: a run that saw 14 of 44 cases flip one way would otherwise plan for a drop
/// on top of that drop, and call itself blind to the very change it just detected.
fn discordance_without_change(observed: f64, good_rate: f64, drop: f64) -> f64 {
    (observed - drop * (2.0 * good_rate - 1.0)).clamp(0.0, 1.0)
}

/// Discordant-pair probability of a binary metric under the planning alternative: a drop of
/// `margin` on top of the observed discordance `observed` (the share of discordant cases). If
/// every case's probability of the good outcome, `p`, falls by δ, a case is discordant with
/// probability `p(1 − p + δ) + (p − δ)(1 − p) = 2p(1 − p) + δ(2p − 1)`, so ψ rises by `δ(2p̄ −
/// 1)` with `p̄` the baseline's good-outcome rate. `observed` is the discordance without change
/// ([`discordance_without_change`]); the result is at least δ, at most 1.
fn discordance_under_drop(observed: f64, good_rate: f64, margin: f64) -> f64 {
    let rise = (margin * (2.0 * good_rate - 1.0)).max(0.0);
    (observed + rise).clamp(margin.min(1.0), 1.0)
}

/// The drop the exact McNemar test detects with [`POWER`] at n cases: the smallest δ whose
/// exact power, with the discordance under that drop, reaches it (bisection; the exact power
/// rises with δ at fixed n).
fn mcnemar_mde(observed: f64, good_rate: f64, n: usize, alpha: f64) -> Option<f64> {
    if n == 0 || n > stats::MAX_EXACT_CASES {
        return None;
    }
    let power = |delta: f64| {
        let psi = discordance_under_drop(observed, good_rate, delta);
        stats::mcnemar_exact_power(n, (psi + delta) / 2.0, (psi - delta) / 2.0, alpha)
    };
    // 24 halvings: the drop to within 6e-8, far below any margin.
    smallest_detectable(power, 24)
}

/// The drop of a mean of 0/1 outcomes the paired t-test detects with [`POWER`] at n units, when
/// the per-unit spread under a drop δ is `sd_at(δ)` (bisection on δ in (0, 1]).
fn binary_mean_mde(sd_at: &dyn Fn(f64) -> f64, n: usize, alpha: f64) -> Option<f64> {
    let power = |delta: f64| stats::paired_t_power(delta, sd_at(delta), n, alpha);
    if n < 2 {
        return None;
    }
    smallest_detectable(power, 30)
}

/// The smallest change in (0, 1] whose `power` reaches [`POWER`], by `halvings` bisection
/// steps (the power rises with the change at a fixed n); `None` when even a change of 1 falls
/// short or the power is unknown.
fn smallest_detectable(power: impl Fn(f64) -> Option<f64>, halvings: u32) -> Option<f64> {
    if power(1.0)? < POWER {
        return None;
    }
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..halvings {
        let mid = 0.5 * (lo + hi);
        if power(mid)? >= POWER {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
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
/// four (0.0001), the first five of ten — would put a quantile's bound at the most extreme
/// draws, which cover less than they claim; those looks can still stop for a regression.
pub fn accepts_at(level: f64) -> bool {
    level * analyze::RESAMPLES as f64 >= 20.0
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
    use crate::metrics::Estimand;

    /// A paired-t estimate of `pass_rate` with repeats (a mean), n = 40.
    fn est(delta: f64, ci: [f64; 2], p: f64) -> Estimate {
        Estimate {
            metric: "pass_rate".into(),
            test: Test::PairedT,
            estimand: Estimand::MeanDifference,
            baseline: Some(0.9),
            candidate: Some(0.9 + delta),
            delta: Some(delta),
            ci: Some(ci),
            ci_equivalence: Some(ci),
            relative_delta: None,
            relative_ci: None,
            relative_ci_equivalence: None,
            p_value: Some(p),
            n: 40,
            cases: 40,
            left_out: 0,
            grouped: false,
            min_units: 10,
            unit_sd: Some(0.3),
            discordance: None,
            quantile_variances: None,
            binary: false,
            calls_per_unit: 1.0,
            candidate_ci: None,
            between_var: None,
            within_var: None,
            variance_components: None,
            ci_alpha: 0.05,
        }
    }

    /// A single-repeat pass rate whose cases all pass in both arms (100 of them), with a
    /// relative margin: DESIGN's Decisions say the Newcombe interval decides the margin
    /// comparisons, the margin then 5% of the baseline's 100%. The ratio of two 100% rates has
    /// an interval of zero width, which proves nothing; deciding on it failed every such gate
    /// that requires non-inferiority, while the same margin written as 0.05 passed.
    #[test]
    fn a_relative_margin_on_a_single_repeat_pass_rate_is_decided_on_the_newcombe_interval() {
        let all_pass = Estimate {
            test: Test::McnemarExact,
            estimand: Estimand::ProportionDifference,
            baseline: Some(1.0),
            candidate: Some(1.0),
            delta: Some(0.0),
            // A Newcombe interval around 0 with a spread, as 100 concordant pairs give (the
            // decision's input here, not a figure under test).
            ci: Some([-0.037, 0.037]),
            ci_equivalence: Some([-0.031, 0.031]),
            relative_delta: Some(0.0),
            relative_ci: Some([0.0, 0.0]),
            relative_ci_equivalence: Some([0.0, 0.0]),
            p_value: Some(1.0),
            n: 100,
            cases: 100,
            binary: true,
            ..est(0.0, [0.0, 0.0], 1.0)
        };
        let mut relative = gate(Direction::Higher, Margin::Relative(0.05));
        relative.require_non_inferiority = true;
        let mut absolute = relative.clone();
        absolute.margin = Margin::Absolute(0.05);
        for g in [relative, absolute] {
            let m = decide(&all_pass, Some(&g), None, 0.05, 1);
            assert!(m.non_inferior && !m.fails_gate, "{:?}: {m:?}", g.margin);
            assert!(!m.details.variance_unknown);
        }
    }

    /// DESIGN: the report says "the smallest effect this many cases could detect", so an
    /// underpowered suite is visible: for an ungated metric too (it was `null`), and not for an
    /// interval of zero width, which shows no spread to plan with (it read 0).
    #[test]
    fn every_judged_metric_says_what_it_could_detect_unless_it_saw_no_spread() {
        let ungated = decide(&est(0.01, [-0.05, 0.07], 0.7), None, None, 0.05, 1);
        let mde = ungated.mde.expect("an ungated metric's detectable effect");
        // The two-sided paired t's 80%-power effect at n = 40, α = 0.05, in sd units, times the
        // sd 0.3. scipy: tc = t.ppf(0.975, 39); brentq(lambda d: nct.sf(tc, 39, d*40**0.5) +
        // nct.cdf(-tc, 39, d*40**0.5) - 0.8, 0.01, 1.0) = 0.45425693968357006.
        assert!((mde - 0.3 * 0.454_256_939_683_570_06).abs() < 1e-6, "{mde}");
        let flat = Estimate {
            unit_sd: Some(0.0),
            ..est(0.02, [0.02, 0.02], 0.0)
        };
        assert_eq!(decide(&flat, None, None, 0.05, 1).mde, None);
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
        let m = decide(&e, Some(&g), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.fails_gate),
            (verdict, non_inferior, fails),
            "{e:?}"
        );
    }

    #[test]
    fn significance_and_size_are_separate() {
        let higher = |m| gate(Direction::Higher, Margin::Absolute(m));
        // significant, beyond the margin: regression
        check(
            est(-0.3, [-0.45, -0.15], 0.001),
            higher(0.02),
            MetricVerdict::Regression,
            false,
            true,
        );
        // significant but inside the margin: a minor regression, shown, not failing, and not
        // proven non-inferior (the interval reaches past the margin)
        check(
            est(-0.01, [-0.03, -0.005], 0.01),
            higher(0.02),
            MetricVerdict::MinorRegression,
            false,
            false,
        );
        // significant, inside the margin, and the whole interval inside it too
        check(
            est(-0.01, [-0.015, -0.005], 0.001),
            higher(0.02),
            MetricVerdict::MinorRegression,
            true,
            false,
        );
        // not significant, interval inside the margin: no significant change, non-inferior
        check(
            est(0.0, [-0.01, 0.01], 0.9),
            higher(0.02),
            MetricVerdict::NoChange,
            true,
            false,
        );
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
    fn small_samples_prove_nothing() {
        let g = gate(Direction::Higher, Margin::Absolute(0.05));
        // One case slower, p tiny: too few cases, not gated, not a regression.
        let mut few = est(-0.3, [-0.4, -0.2], 0.0005);
        few.n = 3;
        let m = decide(&few, Some(&g), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.fails_gate, m.non_inferior),
            (MetricVerdict::TooFew, false, false)
        );
        assert_eq!(m.details.min_n, Some(10));
        // A gate that requires a proof fails without one: too few cases prove nothing.
        for (require, name) in [((true, false), "non-inferiority"), ((false, true), "equivalence")] {
            let mut strict = g.clone();
            (strict.require_non_inferiority, strict.require_equivalence) = require;
            let mut same = est(0.0, [-0.01, 0.01], 1.0);
            same.n = 3;
            let m = decide(&same, Some(&strict), None, 0.05, 1);
            assert_eq!((m.verdict, m.fails_gate), (MetricVerdict::TooFew, true), "{name}");
            assert_eq!(m.details.require.as_deref(), Some(name));
        }
        assert_eq!(m.details.require, None);
        // A skewed amount's paired t below 40 cases (its values all 0 or 1: `analyze` judges
        // those from 10) proves no bound; from 40 on, where a bootstrap-t with no spread fell
        // back to the t, it may.
        let lower = gate(Direction::Lower, Margin::Relative(0.1));
        let mut cost = est(0.0, [-0.0001, 0.0001], 1.0);
        (cost.metric, cost.baseline, cost.n) = ("refunded_usd".into(), Some(0.01), 20);
        let m = decide(&cost, Some(&lower), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.details.equivalent),
            (MetricVerdict::NoChange, false, Some(false))
        );
        // Cost itself is too few below 40 (`analyze` gives it that minimum), and its plan
        // asks for no fewer.
        (cost.metric, cost.min_units) = ("cost_per_request".into(), crate::metrics::MIN_UNITS_AMOUNT);
        let m = decide(&cost, Some(&lower), None, 0.05, 1);
        assert_eq!(m.verdict, MetricVerdict::TooFew);
        assert!(
            m.details
                .cases_needed
                .is_some_and(|c| c >= crate::metrics::MIN_UNITS_AMOUNT),
            "{m:?}"
        );
        assert_eq!(m.mde, None);
        cost.n = 40;
        let m = decide(&cost, Some(&lower), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.details.equivalent),
            (MetricVerdict::NoChange, true, Some(true))
        );
        // A zero-width interval inside the margin: variance unknown, never proof.
        let flat = est(0.0, [0.0, 0.0], 1.0);
        let m = decide(&flat, Some(&g), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.details.variance_unknown),
            (MetricVerdict::NoChange, false, true)
        );
        assert_eq!(m.details.equivalent, Some(false));
        // No data: a blocking metric's absence is the caller's to fail (see `judge`).
        let mut none = est(0.0, [0.0, 0.0], 1.0);
        (none.test, none.delta, none.n, none.ci) = (Test::None, None, 0, None);
        assert_eq!(decide(&none, Some(&g), None, 0.05, 1).verdict, MetricVerdict::NoData);
    }

    #[test]
    fn equivalence_is_never_claimed_without_non_inferiority() {
        // A paired mean of −0.010 with standard error 0.0058 on 40 cases (df 39): the 95%
        // interval is −0.010 ± 2.0227 × 0.0058 = [−0.0217, 0.0017], the 90% interval
        // −0.010 ± 1.6849 × 0.0058 = [−0.0198, −0.0002] (t quantiles: scipy.stats.t.ppf(0.975,
        // 39) = 2.0227, t.ppf(0.95, 39) = 1.6849). Against a margin of 0.02, TOST's interval
        // lies inside ±0.02 but the shown interval's bad-side bound (−0.0217) does not: proven
        // neither non-inferior nor equivalent, so a gate requiring equivalence fails exactly
        // where one requiring non-inferiority does.
        let higher = |m| gate(Direction::Higher, Margin::Absolute(m));
        let mut e = est(-0.010, [-0.0217, 0.0017], 0.09);
        e.ci_equivalence = Some([-0.0198, -0.0002]);
        for (require, name) in [((true, false), "non-inferiority"), ((false, true), "equivalence")] {
            let mut g = higher(0.02);
            (g.require_non_inferiority, g.require_equivalence) = require;
            let m = decide(&e, Some(&g), None, 0.05, 1);
            assert_eq!(
                (m.verdict, m.non_inferior, m.details.equivalent, m.fails_gate),
                (MetricVerdict::NoChange, false, Some(false), true),
                "{name}"
            );
        }
        // With the shown interval's bound inside the margin, both are proven.
        e.ci = Some([-0.0195, -0.0005]);
        let m = decide(&e, Some(&higher(0.02)), None, 0.05, 1);
        assert_eq!((m.non_inferior, m.details.equivalent), (true, Some(true)));
    }

    #[test]
    fn relative_margins_are_judged_on_the_relative_scale_throughout() {
        let g = gate(Direction::Lower, Margin::Relative(0.1));
        let mut cost = est(0.0008, [0.0003, 0.0013], 0.001);
        cost.metric = "cost_per_request".into();
        cost.baseline = Some(0.01);
        cost.relative_delta = Some(0.08);
        cost.relative_ci = Some([0.03, 0.13]);
        cost.relative_ci_equivalence = Some([0.04, 0.12]);
        // +8% [+3%, +13%], significant: within the 10% margin, a minor regression; not proven
        // non-inferior (13% > 10%) nor equivalent, both judged on the relative interval.
        let m = decide(&cost, Some(&g), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.details.equivalent),
            (MetricVerdict::MinorRegression, false, Some(false))
        );
        let basis = m.details.decision.unwrap();
        assert!(basis.relative && basis.margin == 0.1 && basis.ci == Some([0.03, 0.13]));
        assert_eq!(m.details.equivalence_ci, Some([0.04, 0.12]));
        cost.relative_delta = Some(0.12);
        cost.relative_ci = Some([0.105, 0.135]);
        assert_eq!(
            decide(&cost, Some(&g), None, 0.05, 1).verdict,
            MetricVerdict::Regression
        );
        // Cheaper within ±10% at the (1 − 2α) level: equivalent.
        cost.relative_delta = Some(-0.02);
        cost.relative_ci = Some([-0.06, 0.03]);
        cost.relative_ci_equivalence = Some([-0.05, 0.02]);
        cost.p_value = Some(0.4);
        let m = decide(&cost, Some(&g), None, 0.05, 1);
        assert_eq!(
            (m.verdict, m.non_inferior, m.details.equivalent),
            (MetricVerdict::NoChange, true, Some(true))
        );
    }

    #[test]
    fn one_power_model_for_the_plan_and_the_detectable_effect() {
        let g = gate(Direction::Higher, Margin::Absolute(0.1));
        let e = est(0.0, [-0.1, 0.1], 0.9);
        let m = decide(&e, Some(&g), None, 0.05, 1);
        // sd 0.3, margin 0.1: statsmodels TTestPower().solve_power(effect_size=1/3, alpha=0.05,
        // power=0.8) = 72.6 -> 73 cases; at n = 40 the detectable effect is above the margin.
        assert_eq!(
            m.details.cases_needed,
            Some(stats::cases_needed_t(0.3, 0.1, 0.05, 0.8).unwrap())
        );
        assert_eq!(m.details.cases_needed, Some(73));
        assert!(m.details.underpowered && m.mde.unwrap() > 0.1);
        // The plan for a member of a Holm family of three is at α/3.
        let in_family = decide(&e, Some(&g), Some(0.9), 0.05, 3);
        assert_eq!(
            in_family.details.cases_needed,
            Some(stats::cases_needed_t(0.3, 0.1, 0.05 / 3.0, 0.8).unwrap())
        );
        assert_eq!(in_family.details.family, Some(3));
        // Enough cases: not underpowered, and the detectable effect is inside the margin.
        let mut many = e.clone();
        many.n = 80;
        let m = decide(&many, Some(&g), None, 0.05, 1);
        assert!(!m.details.underpowered && m.mde.unwrap() <= 0.1, "{m:?}");
        // McNemar metrics plan for the exact test from the discordance under the drop:
        // ψ̂ = 0.4/z² = 0.104127 observed, plus 0.02·(2·0.9 − 1) = 0.016 → ψ = 0.120127; the
        // independent scipy power of stats::power's tests (`power_vec`, binom.pmf over every
        // (d, b) with p = min(1, 2*binom.cdf(min(b, d-b), d, .5))), pb = (psi + .02)/2,
        // pg = (psi - .02)/2, and the smallest n with power >= 0.8 at n..n + w,
        // w = min(max(ceil(n/50), 20), 200), found by a Python loop -> 2440.
        let z = 1.959_963_984_540_054_f64;
        let mut binary = est(0.0, [-0.1, 0.1], 0.9);
        binary.test = Test::McnemarExact;
        binary.discordance = Some(0.4 / (z * z));
        let m = decide(
            &binary,
            Some(&gate(Direction::Higher, Margin::Absolute(0.02))),
            None,
            0.05,
            1,
        );
        assert_eq!(m.details.cases_needed, Some(2440));
        assert!(m.details.underpowered);
        // A run that saw a real drop plans from the discordance without it: the demo's 14 of 44
        // cases flipping pass → fail (95.5% → 63.6%) leave ψ₀ = 14/44 − (14/44)·(2·0.955 − 1)
        // = 0.0286, and the drop it just detected is within what it can detect.
        let mut dropped = binary.clone();
        (dropped.n, dropped.baseline, dropped.delta) = (44, Some(0.955), Some(-14.0 / 44.0));
        dropped.discordance = Some(14.0 / 44.0);
        let g = gate(Direction::Higher, Margin::Absolute(0.02));
        let m = decide(&dropped, Some(&g), None, 0.05, 1);
        assert!(m.mde.unwrap() < 14.0 / 44.0, "{m:?}");
        let mut unchanged = dropped.clone();
        unchanged.delta = Some(0.0);
        unchanged.discordance = Some(14.0 / 44.0 * (1.0 - (2.0 * 0.955 - 1.0)));
        let same = decide(&unchanged, Some(&g), None, 0.05, 1);
        assert_eq!(m.details.cases_needed, same.details.cases_needed);
        assert_eq!(m.mde, same.mde);
        // Means of 0/1 outcomes (3 repeats per case) plan with the spread under the drop: a
        // baseline pass rate of 0.9 falling by 0.1 adds (0.1·(2·0.9 − 1) − 0.1²)/3 = 0.07/3 to
        // the per-case variance, 0.3² → 0.3² + 0.0233.
        let mut repeats = est(0.0, [-0.1, 0.1], 0.9);
        (repeats.binary, repeats.calls_per_unit) = (true, 3.0);
        let m = decide(
            &repeats,
            Some(&gate(Direction::Higher, Margin::Absolute(0.1))),
            None,
            0.05,
            1,
        );
        let sd = (0.09f64 + 0.07 / 3.0).sqrt();
        assert_eq!(m.details.cases_needed, stats::cases_needed_t(sd, 0.1, 0.05, 0.8));
        let plain = decide(
            &est(0.0, [-0.1, 0.1], 0.9),
            Some(&gate(Direction::Higher, Margin::Absolute(0.1))),
            None,
            0.05,
            1,
        );
        assert!(m.details.cases_needed > plain.details.cases_needed);
        assert!(m.mde > plain.mde);
        // A p95 that may worsen by 15%: the candidate's spread scales by 1.15 too. With arm
        // variances 40 and 40 and covariance 20 over 100 units, the difference's per-unit sd
        // is √(100·(40 + 40 − 40)) = 63.2 under no change and √(100·(40 + 1.15²·40 − 2·1.15·20))
        // = 68.1 under the slowdown.
        let mut p95 = est(0.0, [-20.0, 20.0], 0.9);
        p95.metric = "latency_p95_ms".into();
        (p95.test, p95.baseline, p95.n) = (Test::SignFlip, Some(60.0), 100);
        p95.unit_sd = Some((100.0f64 * 40.0).sqrt());
        p95.quantile_variances = Some([40.0, 40.0, 20.0]);
        let g = gate(Direction::Lower, Margin::Relative(0.15));
        let m = decide(&p95, Some(&g), None, 0.05, 1);
        let sd = (100.0f64 * (40.0 + 1.15 * 1.15 * 40.0 - 2.0 * 1.15 * 20.0)).sqrt();
        assert_eq!(m.details.cases_needed, stats::cases_needed_t(sd, 9.0, 0.05, 0.8));
        assert!(
            m.details.cases_needed > Some(p95.min_units),
            "above the floor: the model's own"
        );
    }

    #[test]
    fn slo_with_interval_and_drift() {
        let mut g = gate(Direction::Lower, Margin::Absolute(0.0));
        g.slo = Some(0.05);
        let mut e = est(0.0, [-0.01, 0.01], 1.0);
        e.candidate = Some(0.03);
        e.candidate_ci = Some([0.01, 0.07]);
        let m = decide(&e, Some(&g), None, 0.05, 1);
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
        // A missed SLO blocks only a blocking gate, and only a judged metric.
        let mut g = gate(Direction::Lower, Margin::Absolute(0.0));
        g.slo = Some(800.0);
        let mut e = est(0.0, [-1.0, 1.0], 1.0);
        e.candidate = Some(900.0);
        assert!(decide(&e, Some(&g), None, 0.05, 1).fails_gate);
        // No candidate value (no call timed in this run): no SLO met or missed.
        let unmeasured = Estimate {
            candidate: None,
            ..e.clone()
        };
        assert_eq!(decide(&unmeasured, Some(&g), None, 0.05, 1).slo, None);
        e.n = 4;
        assert!(
            !decide(&e, Some(&g), None, 0.05, 1).fails_gate,
            "too few cases: not gated"
        );
        e.n = 40;
        g.blocking = false;
        let m = decide(&e, Some(&g), None, 0.05, 1);
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
    fn holm_only_over_the_family() {
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
        // Two metrics in the family and one outside, at the second of four looks.
        let look = stats::Look::new(vec![0.25, 0.5]).unwrap();
        let a = est(-0.1, [-0.2, -0.05], 0.001);
        let b = est(-0.1, [-0.2, -0.05], 0.004);
        let c = est(-0.1, [-0.2, -0.05], 0.004);
        let adjusted = adjust_at(&[(&a, true), (&b, true), (&c, false)], Some(&look));
        let (ra, rb) = (look.repeated_p(0.001), look.repeated_p(0.004));
        // Holm on the repeated p-values: 2·ra, then max(2·ra, rb); the one outside keeps its
        // repeated p-value.
        assert_eq!(adjusted, vec![Some(2.0 * ra), Some(rb.max(2.0 * ra)), Some(rb)]);
        assert_eq!(
            adjust_at(&[(&a, true), (&b, true), (&c, false)], None),
            vec![Some(0.002), Some(0.004), None]
        );
        // p = 0.004 at the second look (nominal level 0.0055 for α = 0.05) is significant alone.
        assert!(rb < 0.05 && rb > 0.004, "{rb}");
    }

    #[test]
    fn non_inferiority_stops_only_at_looks_the_bootstrap_resolves() {
        // Four looks at α = 0.05: nominal levels 8.9e-5, 0.0055, 0.0215, 0.0411 (scipy, see
        // stats::sequential); 4,000 draws resolve 0.005 and up.
        assert!(!accepts_at(8.857543832140365e-05));
        assert!(accepts_at(0.005537975583115089));
        assert!(accepts_at(0.05));
        let g = gate(Direction::Higher, Margin::Absolute(0.05));
        let safe = decide(&est(0.0, [-0.01, 0.01], 0.9), Some(&g), None, 0.05, 1);
        assert!(safe.non_inferior);
        assert!(sequential_settled(std::slice::from_ref(&safe), true));
        assert!(!sequential_settled(std::slice::from_ref(&safe), false));
        let worse = decide(&est(-0.1, [-0.15, -0.06], 0.001), Some(&g), None, 0.05, 1);
        assert_eq!(worse.verdict, MetricVerdict::Regression);
        assert!(sequential_settled(std::slice::from_ref(&worse), false));
    }
}
