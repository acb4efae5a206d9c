//! Paired bootstrap over cases (Efron & Tibshirani 1993, ch. 13 for percentile intervals).
//!
//! Cases are the unit of inference, so each resample draws case indices with replacement and
//! uses the same indices for both arms: the pairing — and with it the correlation between
//! baseline and candidate on the same case — survives resampling.

use super::describe::{all_finite, mean, quantile, quantile_select, quantile_sorted};
use super::rng::Rng;

/// A bootstrap estimate of `candidate − baseline`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// The statistic on the original sample (not the mean of the resamples).
    pub estimate: f64,
    /// Percentile interval `[lower, upper]` at the requested confidence.
    pub ci: [f64; 2],
    /// Two-sided bootstrap p-value for "no difference", never exactly 0.
    pub p_value: f64,
    /// Number of resamples drawn.
    pub resamples: usize,
}

/// Paired bootstrap of `mean(candidate − baseline)`.
///
/// `None` when the arms differ in length, are empty, hold a non-finite value (or a
/// difference overflows), `confidence` is outside the open interval (0, 1), or
/// `resamples == 0`. The same `seed` always gives the same result, on every platform and
/// every promptgate version that keeps [`Rng`] unchanged.
///
/// The p-value is `min(1, 2·min(#{θ*ᵦ ≤ 0} + 1, #{θ*ᵦ ≥ 0} + 1) / (B + 1))`: the share of
/// resampled estimates on each side of zero, with the +1 that keeps a finite number of
/// resamples from ever claiming p = 0.
pub fn paired_bootstrap_mean(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Bootstrap> {
    validate(baseline, candidate, confidence, resamples)?;
    paired_bootstrap_mean_draws(baseline, candidate, resamples, seed)?.summary(confidence)
}

/// The resampled statistics of a paired bootstrap, drawn once and summarised at as many
/// confidence levels as needed: the same seed gives the same draws as the one-level functions,
/// so every interval read from them equals the one those would return.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    estimate: f64,
    /// Sorted.
    stats: Vec<f64>,
}

impl Draws {
    pub(super) fn new(estimate: f64, mut stats: Vec<f64>) -> Option<Draws> {
        // Only reachable when differences of finite values overflow; no interval is honest then.
        if !estimate.is_finite() || !all_finite(&stats) || stats.is_empty() {
            return None;
        }
        stats.sort_unstable_by(f64::total_cmp);
        Some(Draws { estimate, stats })
    }

    /// The standard deviation of the resampled statistics: the bootstrap standard error.
    pub fn standard_error(&self) -> Option<f64> {
        super::describe::std_dev(&self.stats)
    }

    /// Percentile interval and two-sided p-value at `confidence`.
    pub fn summary(&self, confidence: f64) -> Option<Bootstrap> {
        if !(confidence > 0.0 && confidence < 1.0) {
            return None;
        }
        let stats = &self.stats;
        // Same arithmetic as scipy.stats.bootstrap(method="percentile"): alpha = (1 − level) / 2,
        // then the type-7 quantiles at alpha and 1 − alpha.
        let alpha = (1.0 - confidence) / 2.0;
        let ci = [quantile_sorted(stats, alpha)?, quantile_sorted(stats, 1.0 - alpha)?];
        let b = stats.len();
        let at_most_zero = stats.partition_point(|&s| s <= 0.0);
        let at_least_zero = b - stats.partition_point(|&s| s < 0.0);
        let share = |count: usize| (count + 1) as f64 / (b + 1) as f64;
        let p_value = (2.0 * share(at_most_zero).min(share(at_least_zero))).min(1.0);
        Some(Bootstrap {
            estimate: self.estimate,
            ci,
            p_value,
            resamples: b,
        })
    }
}

/// The draws of [`paired_bootstrap_mean`], for summaries at several levels.
pub fn paired_bootstrap_mean_draws(baseline: &[f64], candidate: &[f64], resamples: usize, seed: u64) -> Option<Draws> {
    let n = validate(baseline, candidate, 0.5, resamples)?;
    let diffs: Vec<f64> = candidate.iter().zip(baseline).map(|(c, b)| c - b).collect();
    let estimate = mean(&diffs)?;
    // Resampling deviations from the estimate keeps the sums small (less rounding) and makes
    // identical differences give exactly `estimate` every time: a zero-width interval.
    let deviations: Vec<f64> = diffs.iter().map(|d| d - estimate).collect();
    let mut rng = Rng::new(seed);
    let stats = (0..resamples)
        .map(|_| {
            let sum: f64 = (0..n).map(|_| deviations[rng.below(n)]).sum();
            estimate + sum / n as f64
        })
        .collect();
    Draws::new(estimate, stats)
}

/// Paired bootstrap of `quantile(candidate, q) − quantile(baseline, q)` (type-7 quantiles,
/// as [`quantile`]), e.g. the change in p95 latency.
///
/// `None` in the same cases as [`paired_bootstrap_mean`], and when `q` is outside `[0, 1]`.
/// The p-value and interval are defined as there.
pub fn paired_bootstrap_quantile(
    baseline: &[f64],
    candidate: &[f64],
    q: f64,
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Bootstrap> {
    validate(baseline, candidate, confidence, resamples)?;
    paired_bootstrap_quantile_draws(baseline, candidate, q, resamples, seed)?.summary(confidence)
}

/// The draws of [`paired_bootstrap_quantile`], for summaries at several levels.
pub fn paired_bootstrap_quantile_draws(
    baseline: &[f64],
    candidate: &[f64],
    q: f64,
    resamples: usize,
    seed: u64,
) -> Option<Draws> {
    let n = validate(baseline, candidate, 0.5, resamples)?;
    let estimate = quantile(candidate, q)? - quantile(baseline, q)?;
    let mut rng = Rng::new(seed);
    let (mut b, mut c) = (vec![0.0; n], vec![0.0; n]);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for (bj, cj) in b.iter_mut().zip(c.iter_mut()) {
            let i = rng.below(n);
            (*bj, *cj) = (baseline[i], candidate[i]);
        }
        stats.push(quantile_select(&mut c, q)? - quantile_select(&mut b, q)?);
    }
    Draws::new(estimate, stats)
}

/// Paired bootstrap of the relative change `mean(candidate) / mean(baseline) − 1`, e.g. the
/// change in cost per request ("+12%"), resampling cases with the same indices in both arms.
///
/// `None` in the same cases as [`paired_bootstrap_mean`], and when any value is negative or
/// the baseline's mean (on the sample or a resample) is zero: a ratio to nothing has no
/// interval.
pub fn paired_bootstrap_ratio(
    baseline: &[f64],
    candidate: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<Bootstrap> {
    let n = validate(baseline, candidate, confidence, resamples)?;
    if baseline.iter().chain(candidate).any(|x| *x < 0.0) {
        return None;
    }
    let ratio = |b: f64, c: f64| (b > 0.0).then(|| c / b - 1.0);
    let estimate = ratio(mean(baseline)?, mean(candidate)?)?;
    let mut rng = Rng::new(seed);
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let (mut sb, mut sc) = (0.0, 0.0);
        for _ in 0..n {
            let i = rng.below(n);
            sb += baseline[i];
            sc += candidate[i];
        }
        stats.push(ratio(sb, sc)?);
    }
    Draws::new(estimate, stats)?.summary(confidence)
}

/// The common arguments' preconditions; returns the number of cases.
fn validate(baseline: &[f64], candidate: &[f64], confidence: f64, resamples: usize) -> Option<usize> {
    let ok = baseline.len() == candidate.len()
        && !baseline.is_empty()
        && confidence > 0.0
        && confidence < 1.0
        && resamples > 0
        && all_finite(baseline)
        && all_finite(candidate);
    ok.then_some(baseline.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an independent computation says a bootstrap should return. Monte-Carlo
    /// quantities get a tolerance of five standard deviations of their sampling error at our
    /// number of resamples, measured as described beside each reference.
    struct Reference {
        estimate: f64,
        ci: [f64; 2],
        ci_tol: f64,
        p: f64,
        p_tol: f64,
    }

    #[track_caller]
    fn check(actual: Option<Bootstrap>, r: Reference) {
        let Some(a) = actual else {
            panic!("no bootstrap result; expected {:?}", r.ci)
        };
        let close = |x: f64, want: f64, tol: f64| (x - want).abs() <= tol;
        assert!(
            close(a.estimate, r.estimate, 1e-9 * r.estimate.abs()),
            "estimate: {a:?}"
        );
        assert!(close(a.ci[0], r.ci[0], r.ci_tol), "lower: {a:?}, reference {:?}", r.ci);
        assert!(close(a.ci[1], r.ci[1], r.ci_tol), "upper: {a:?}, reference {:?}", r.ci);
        assert!(close(a.p_value, r.p, r.p_tol), "p: {a:?}, reference {}", r.p);
    }

    // numpy.random.default_rng(7): b = round(uniform(0.2, 0.9, 30), 3),
    // c = round(clip(b + normal(0.04, 0.12, 30), 0, 1), 3) — per-case mean scores.
    const SCORES_B: [f64; 30] = [
        0.638, 0.828, 0.743, 0.358, 0.41, 0.811, 0.204, 0.775, 0.758, 0.528, 0.412, 0.395, 0.378, 0.512, 0.553, 0.587,
        0.897, 0.755, 0.636, 0.892, 0.351, 0.312, 0.629, 0.231, 0.225, 0.56, 0.526, 0.842, 0.64, 0.56,
    ];
    const SCORES_C: [f64; 30] = [
        0.494, 0.811, 0.666, 0.301, 0.577, 0.754, 0.24, 0.921, 0.728, 0.555, 0.465, 0.443, 0.271, 0.561, 0.756, 0.441,
        1.0, 0.809, 0.599, 1.0, 0.482, 0.208, 0.678, 0.34, 0.242, 0.682, 0.558, 0.962, 0.853, 0.519,
    ];

    /// Python: i = numpy.arange(1, 201); u = (i*0.6180339887498949) % 1.0;
    /// v = (i*0.41421356237309515) % 1.0; lb = 200.0 + 600.0*u; lc = lb*(0.89 + 0.2*v)
    /// — 200 distinct latencies, so the bootstrap distribution of a p90 is nearly smooth.
    fn latencies() -> (Vec<f64>, Vec<f64>) {
        (1..=200)
            .map(|i| {
                let i = f64::from(i);
                let (u, v) = (
                    (i * 0.618_033_988_749_894_9) % 1.0,
                    (i * 0.414_213_562_373_095_15) % 1.0,
                );
                let lb = 200.0 + 600.0 * u;
                (lb, lb * (0.89 + 0.2 * v))
            })
            .unzip()
    }

    #[test]
    fn mean_matches_scipy_bootstrap() {
        // estimate: numpy.mean(c - b) -> 0.03233333333333334
        // ci: scipy.stats.bootstrap((b, c), lambda x, y, axis=-1: numpy.mean(y - x, axis=axis),
        //   paired=True, vectorized=True, method="percentile", confidence_level=0.95,
        //   n_resamples=1_000_000, rng=numpy.random.default_rng(s)) averaged over s = 0..3
        //   -> (-0.0024583333333333293, 0.06690020833333354). The same call with
        //   n_resamples=20_000 over 300 seeds has endpoint sd 0.00031 and 0.00032; 5 sd = 0.0016.
        // p: numpy with 2_000_000 resamples of case indices (default_rng(99).integers(0, 30)),
        //   min(1, 2*min((#θ≤0 + 1)/(B + 1), (#θ≥0 + 1)/(B + 1))) -> 0.06851296574351713;
        //   at B = 20_000 its sd is 2*sqrt(s(1-s)/B) with s = p/2 -> 0.0026; 5 sd = 0.013.
        check(
            paired_bootstrap_mean(&SCORES_B, &SCORES_C, 0.95, 20_000, 1),
            Reference {
                estimate: 0.032_333_333_333_333_34,
                ci: [-0.002_458_333_333_333_329_3, 0.066_900_208_333_333_54],
                ci_tol: 0.0016,
                p: 0.068_512_965_743_517_13,
                p_tol: 0.013,
            },
        );
    }

    #[test]
    fn quantile_matches_scipy_bootstrap() {
        let (lb, lc) = latencies();
        // estimate: numpy.percentile(lc, 90) - numpy.percentile(lb, 90) -> -8.771067550634712
        // ci: scipy.stats.bootstrap((lb, lc), lambda x, y, axis=-1: numpy.percentile(y, 90,
        //   axis=axis) - numpy.percentile(x, 90, axis=axis), paired=True, vectorized=True,
        //   method="percentile", n_resamples=1_000_000, rng=numpy.random.default_rng(s))
        //   averaged over s = 0..3 -> (-33.0802, 13.8323) (runs differ by up to 0.13: the
        //   distribution has atoms). With n_resamples=20_000 over 200 seeds the endpoint sd is
        //   0.25 and 0.27; 5 sd = 1.4.
        // p: numpy, 2_000_000 resamples as in the mean test -> 0.45231377384311305;
        //   sd at B = 20_000 is 0.0059; 5 sd = 0.03.
        check(
            paired_bootstrap_quantile(&lb, &lc, 0.9, 0.95, 20_000, 1),
            Reference {
                estimate: -8.771_067_550_634_712,
                ci: [-33.0802, 13.8323],
                ci_tol: 1.4,
                p: 0.452_313_773_843_113_05,
                p_tol: 0.03,
            },
        );
    }

    #[test]
    fn ratio_matches_scipy_bootstrap() {
        // estimate: numpy.mean(c)/numpy.mean(b) - 1 -> 0.05724064676029772
        // ci: scipy.stats.bootstrap((b, c), lambda x, y, axis=-1: numpy.mean(y, axis=axis) /
        //   numpy.mean(x, axis=axis) - 1, paired=True, vectorized=True, method="percentile",
        //   confidence_level=0.95, n_resamples=1_000_000, rng=numpy.random.default_rng(s))
        //   averaged over s = 0..3 -> (-0.004366548976877392, 0.11947704353189192). With
        //   n_resamples=20_000 over 40 seeds the endpoint sd is 0.00065 and 0.0008; 5 sd = 0.004.
        // p: numpy, 2_000_000 resamples of case indices (default_rng(99).integers(0, 30)) ->
        //   0.06866296566851716; sd at B = 20_000 is 0.0026 as in the mean test; 5 sd = 0.013.
        check(
            paired_bootstrap_ratio(&SCORES_B, &SCORES_C, 0.95, 20_000, 1),
            Reference {
                estimate: 0.057_240_646_760_297_72,
                ci: [-0.004_366_548_976_877_392, 0.119_477_043_531_891_92],
                ci_tol: 0.004,
                p: 0.068_662_965_668_517_16,
                p_tol: 0.013,
            },
        );
        assert_eq!(
            paired_bootstrap_ratio(&[0.0, 0.0], &[1.0, 2.0], 0.95, 100, 0),
            None,
            "zero baseline"
        );
        assert_eq!(
            paired_bootstrap_ratio(&[1.0, -1.0], &[1.0, 2.0], 0.95, 100, 0),
            None,
            "negative"
        );
    }

    #[test]
    fn constant_differences_give_a_zero_width_interval() {
        // Every resample of identical differences has the same mean, so both percentiles are
        // that value, and all B resampled estimates lie above zero: by the definition of the
        // p-value, p = 2·(0 + 1)/(B + 1).
        // The differences must be equal as floats: 0.35 − 0.1 and 0.75 − 0.5 are not.
        // (0.225 - 0.125 == 0.1 in Python -> True)
        for (b, c, d) in [
            ([0.125, 0.5, 0.875, 0.25], [0.375, 0.75, 1.125, 0.5], 0.25),
            ([0.125; 4], [0.225; 4], 0.1),
        ] {
            check(
                paired_bootstrap_mean(&b, &c, 0.9, 999, 3),
                Reference {
                    estimate: d,
                    ci: [d, d],
                    ci_tol: 0.0,
                    p: 2.0 / 1000.0,
                    p_tol: 1e-15,
                },
            );
        }
        // Identical arms: every resampled quantile difference is exactly 0, so both shares
        // are 1 and p = 1.
        const LATE: [f64; 5] = [120.5, 98.0, 300.25, 101.0, 87.5];
        check(
            paired_bootstrap_quantile(&LATE, &LATE, 0.95, 0.9, 999, 3),
            Reference {
                estimate: 0.0,
                ci: [0.0, 0.0],
                ci_tol: 0.0,
                p: 1.0,
                p_tol: 0.0,
            },
        );
    }

    #[test]
    fn undefined_inputs_give_none() {
        let (b, c) = ([1.0, 2.0, 3.0], [1.5, 2.0, 3.5]);
        let mean = |b: &[f64], c: &[f64], conf, reps| paired_bootstrap_mean(b, c, conf, reps, 0);
        assert_eq!(mean(&b, &c[..2], 0.95, 100), None, "lengths differ");
        assert_eq!(mean(&[], &[], 0.95, 100), None, "no cases");
        assert_eq!(mean(&b, &c, 0.95, 0), None, "no resamples");
        assert_eq!(mean(&b, &c, 1.0, 100), None, "confidence 1");
        assert_eq!(mean(&b, &c, 0.0, 100), None, "confidence 0");
        assert_eq!(mean(&b, &c, f64::NAN, 100), None, "confidence NaN");
        assert_eq!(mean(&[1.0, f64::NAN, 3.0], &c, 0.95, 100), None, "NaN");
        assert_eq!(mean(&[f64::MAX], &[-f64::MAX], 0.95, 100), None, "overflow");
        let quant = |q| paired_bootstrap_quantile(&b, &c, q, 0.95, 100, 0);
        assert_eq!(quant(1.01), None, "q above 1");
        assert_eq!(quant(f64::NAN), None, "q NaN");
        assert_eq!(
            paired_bootstrap_quantile(&[f64::MAX], &[-f64::MAX], 0.5, 0.95, 100, 0),
            None,
            "overflow"
        );
    }

    #[test]
    fn seed_determines_the_result() {
        let run = |seed| paired_bootstrap_mean(&SCORES_B, &SCORES_C, 0.95, 2_000, seed);
        assert_eq!(run(5), run(5));
        assert_ne!(run(5).map(|r| r.ci), run(6).map(|r| r.ci));
        let (lb, lc) = latencies();
        let run = |seed| paired_bootstrap_quantile(&lb, &lc, 0.5, 0.95, 2_000, seed);
        assert_eq!(run(5), run(5));
        assert_ne!(run(5).map(|r| r.ci), run(6).map(|r| r.ci));
    }

    #[test]
    fn invariances_hold_on_random_inputs() {
        let mut rng = Rng::new(99);
        // A dyadic grid keeps `(c + k) − (b + k) == c − b` exact.
        let mut draw = |n: usize| -> Vec<f64> { (0..n).map(|_| rng.below(81) as f64 / 8.0).collect() };
        for case in 0..200u64 {
            let n = 1 + (case as usize % 40);
            let (b, c) = (draw(n), draw(n));
            let k = draw(1)[0] * 4.0 - 80.0;
            let (bk, ck): (Vec<f64>, Vec<f64>) = b.iter().zip(&c).map(|(x, y)| (x + k, y + k)).unzip();
            let q = (case % 11) as f64 / 10.0;
            for (fwd, swapped, shifted) in [
                (
                    paired_bootstrap_mean(&b, &c, 0.9, 300, case),
                    paired_bootstrap_mean(&c, &b, 0.9, 300, case),
                    paired_bootstrap_mean(&bk, &ck, 0.9, 300, case),
                ),
                (
                    paired_bootstrap_quantile(&b, &c, q, 0.9, 300, case),
                    paired_bootstrap_quantile(&c, &b, q, 0.9, 300, case),
                    paired_bootstrap_quantile(&bk, &ck, q, 0.9, 300, case),
                ),
            ] {
                let (Some(f), Some(s), Some(t)) = (fwd, swapped, shifted) else {
                    panic!("valid input gave None: {b:?} {c:?}")
                };
                assert!((0.0..=1.0).contains(&f.p_value) && f.p_value > 0.0, "{f:?}");
                assert!(f.ci[0] <= f.ci[1], "{f:?}");
                // Swapping the arms mirrors everything around zero. The interval's ends come
                // from quantile positions (B − 1)·α and (B − 1)·(1 − α), which agree only up
                // to rounding, hence the tolerance.
                let near = |x: f64, y: f64| (x - y).abs() <= 1e-9 * (1.0 + x.abs());
                assert_eq!(s.estimate, -f.estimate, "{b:?} {c:?}");
                assert!(near(s.ci[0], -f.ci[1]) && near(s.ci[1], -f.ci[0]), "{f:?} {s:?}");
                assert_eq!(s.p_value, f.p_value, "{f:?} {s:?}");
                // Shifting both arms by k: the mean difference is untouched; the quantile
                // difference only up to interpolation rounding.
                assert!(near(t.estimate, f.estimate), "{f:?} {t:?}");
                assert!(near(t.ci[0], f.ci[0]) && near(t.ci[1], f.ci[1]), "{f:?} {t:?}");
            }
        }
    }
}
