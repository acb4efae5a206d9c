//! The paired t-test of a mean difference, with cases optionally clustered into units, and
//! Fieller's interval for the ratio of the two arms' means — the test and the intervals of the
//! gate's mean metrics (cost, per-case means of repeats, judge scores).
//!
//! Clustering (Miller, E. (2024), "Adding Error Bars to Evals: A Statistical Approach to
//! Language Model Evaluations", arXiv:2411.00640, §2.3): cases that share a passage, a template or
//! a conversation are not independent, so the variance of the mean difference is the cluster-
//! robust one, `V = G/(G − 1) · Σ_g (Σ_{i∈g} e_i)² / N²` with `e_i` the deviations from the mean
//! and `G` clusters, and the t reference has `G − 1` degrees of freedom — statsmodels'
//! `OLS(d, 1).fit(cov_type="cluster", use_t=True)`. With every case its own cluster this is the
//! ordinary paired t-test (`scipy.stats.ttest_rel`).
//!
//! Fieller's interval (Fieller, E. C. (1954), "Some problems in interval estimation", *JRSS B*
//! 16(2), 175–185) for `ρ = mean(candidate) / mean(baseline)` is the set of `ρ` that the same
//! t-test of `candidate − ρ·baseline` does not reject: the interval a relative margin ("10%") is
//! judged on is the inversion of the test, and `1` lies outside it exactly when the paired
//! t-test of `candidate − baseline` rejects.

use std::collections::BTreeMap;

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A paired t-test of `mean(candidate − baseline)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanTest {
    /// The mean difference over the cases.
    pub estimate: f64,
    /// Its standard error (cluster-robust when the cases are clustered).
    pub se: f64,
    /// Degrees of freedom: units − 1.
    pub df: f64,
    /// Two-sided p-value for "no difference". With zero spread it is the exact sign-flip
    /// permutation p-value, `2^(1 − G)` (every unit moved the same way), or 1 without a change.
    pub p_value: f64,
    /// Independent units: cases, or clusters of cases.
    pub units: usize,
}

impl MeanTest {
    /// The t interval of the mean difference at `confidence`.
    pub fn interval(&self, confidence: f64) -> Option<[f64; 2]> {
        let t = t_quantile(confidence, self.df)?;
        Some([self.estimate - t * self.se, self.estimate + t * self.se])
    }

    /// The per-unit standard deviation the test implies (`se · √units`), for planning.
    pub fn unit_sd(&self) -> f64 {
        self.se * (self.units as f64).sqrt()
    }
}

/// The paired t-test of the per-case differences `diffs`. `units[i]` names the cluster of case
/// `i` (any ids; `None`: every case its own). `None` with fewer than two units, lengths that
/// differ, or a non-finite value.
pub fn paired_t(diffs: &[f64], units: Option<&[usize]>) -> Option<MeanTest> {
    // Squares of differences near 1e154 and beyond overflow: the test is the same on the
    // differences scaled to at most 1, its estimate and standard error scaled back.
    let largest = diffs.iter().fold(0.0_f64, |m, d| m.max(d.abs()));
    if largest > 1e100 && largest.is_finite() {
        let scaled: Vec<f64> = diffs.iter().map(|d| d / largest).collect();
        let test = paired_t(&scaled, units)?;
        return Some(MeanTest {
            estimate: test.estimate * largest,
            se: test.se * largest,
            ..test
        });
    }
    let moments = Moments::new(diffs, diffs, units)?;
    let estimate = moments.mean_x;
    let se = moments.var_xx.sqrt();
    let df = (moments.units - 1) as f64;
    let p_value = if se > 0.0 {
        let dist = StudentsT::new(0.0, 1.0, df).ok()?;
        (2.0 * dist.sf((estimate / se).abs())).min(1.0)
    } else if estimate == 0.0 {
        1.0
    } else {
        // Every unit's deviations sum to zero: only flipping all of them together matches the
        // observed mean, so the exact sign-flip p-value is 2 of the 2^G arrangements.
        2f64.powi(1 - i32::try_from(moments.units).unwrap_or(i32::MAX)).min(1.0)
    };
    Some(MeanTest {
        estimate,
        se,
        df,
        p_value,
        units: moments.units,
    })
}

/// `mean(candidate) / mean(baseline) − 1` and Fieller's interval of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    pub estimate: f64,
    /// `None` when the interval is unbounded: the baseline's mean is not distinguishable from
    /// zero at this level, so no finite ratio interval is honest.
    pub ci: Option<[f64; 2]>,
}

/// The relative change of the means with Fieller's interval at `confidence`, paired by case and
/// clustered as [`paired_t`]. `None` when the inputs are unusable or the baseline's mean is not
/// positive (a ratio to nothing).
pub fn paired_ratio(baseline: &[f64], candidate: &[f64], units: Option<&[usize]>, confidence: f64) -> Option<Ratio> {
    let m = Moments::new(baseline, candidate, units)?;
    let (b, c) = (m.mean_x, m.mean_y);
    if b.is_nan() || b <= 0.0 {
        return None;
    }
    let estimate = c / b - 1.0;
    let t = t_quantile(confidence, (m.units - 1) as f64)?;
    let t2 = t * t;
    // {ρ : (c − ρb)² ≤ t²·(v_cc − 2ρ·v_cb + ρ²·v_bb)} = {ρ : Aρ² − 2Bρ + C ≤ 0}.
    let a = b * b - t2 * m.var_xx;
    let half_b = c * b - t2 * m.var_xy;
    let cc = c * c - t2 * m.var_yy;
    if a <= 0.0 {
        return Some(Ratio { estimate, ci: None });
    }
    let disc = (half_b * half_b - a * cc).max(0.0).sqrt();
    let (lo, hi) = ((half_b - disc) / a, (half_b + disc) / a);
    Some(Ratio {
        estimate,
        ci: Some([lo - 1.0, hi - 1.0]),
    })
}

/// `t_{(1 + confidence)/2, df}`: the two-sided critical value.
fn t_quantile(confidence: f64, df: f64) -> Option<f64> {
    let usable = confidence > 0.0 && confidence < 1.0 && df > 0.0;
    if !usable {
        return None;
    }
    StudentsT::new(0.0, 1.0, df)
        .ok()
        .map(|d| d.inverse_cdf(1.0 - (1.0 - confidence) / 2.0))
}

/// Means of two paired samples and the cluster-robust (co)variances of those means.
struct Moments {
    mean_x: f64,
    mean_y: f64,
    var_xx: f64,
    var_yy: f64,
    var_xy: f64,
    units: usize,
}

impl Moments {
    fn new(x: &[f64], y: &[f64], units: Option<&[usize]>) -> Option<Moments> {
        let n = x.len();
        if n != y.len() || units.is_some_and(|u| u.len() != n) || x.iter().chain(y).any(|v| !v.is_finite()) {
            return None;
        }
        let mean_x = super::mean(x)?;
        let mean_y = super::mean(y)?;
        // Per cluster: the sums of the deviations. A case is its own cluster when there are no
        // units: its deviations are the sums, in the order of the cases, with no map to hold.
        let deviations = |i: usize| (x[i] - mean_x, y[i] - mean_y);
        let clustered: Option<BTreeMap<usize, (f64, f64)>> = units.map(|u| {
            let mut sums: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
            for (i, &id) in u.iter().enumerate() {
                let entry = sums.entry(id).or_default();
                let (dx, dy) = deviations(i);
                entry.0 += dx;
                entry.1 += dy;
            }
            sums
        });
        let g = clustered.as_ref().map_or(n, BTreeMap::len);
        if g < 2 {
            return None;
        }
        let scale = g as f64 / (g - 1) as f64 / (n as f64 * n as f64);
        // Deviations that are rounding only (every case the same value) are no spread.
        let tiny = 1e-12 * x.iter().chain(y).fold(0.0f64, |m, v| m.max(v.abs()));
        let (xx, yy, xy) = match &clustered {
            Some(sums) => cross_products(sums.values().copied(), tiny),
            None => cross_products((0..n).map(deviations), tiny),
        };
        Some(Moments {
            mean_x,
            mean_y,
            var_xx: scale * xx,
            var_yy: scale * yy,
            var_xy: scale * xy,
            units: g,
        })
    }
}

/// The sums of squares and of products of the clusters' summed deviations, each at most
/// `tiny` counted as 0.
fn cross_products(sums: impl Iterator<Item = (f64, f64)>, tiny: f64) -> (f64, f64, f64) {
    let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
    for (sx, sy) in sums {
        let (sx, sy) = (
            if sx.abs() <= tiny { 0.0 } else { sx },
            if sy.abs() <= tiny { 0.0 } else { sy },
        );
        xx += sx * sx;
        yy += sy * sy;
        xy += sx * sy;
    }
    (xx, yy, xy)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: [f64; 10] = [1.2, 0.8, 1.5, 2.0, 0.9, 1.1, 1.7, 1.3, 0.6, 1.0];
    const C: [f64; 10] = [1.4, 0.7, 1.9, 2.6, 1.0, 1.0, 2.2, 1.5, 0.8, 1.3];
    const GROUPS: [usize; 10] = [0, 0, 1, 1, 1, 2, 3, 3, 4, 4];

    fn diffs() -> Vec<f64> {
        C.iter().zip(B).map(|(c, b)| c - b).collect()
    }

    #[track_caller]
    fn close(got: f64, expected: f64, tol: f64) {
        assert!((got - expected).abs() < tol, "{got} vs {expected}");
    }

    #[test]
    fn unclustered_is_scipys_one_sample_t_on_the_differences() {
        // r = scipy.stats.ttest_1samp(c - b, 0.0): statistic 3.146129192854116,
        // pvalue 0.01181090412485648; r.confidence_interval(0.95) -> (0.06462340051853269,
        // 0.3953765994814673); (0.90) -> (0.09598898243957626, 0.36401101756042364)
        let t = paired_t(&diffs(), None).unwrap();
        close(t.estimate / t.se, 3.146_129_192_854_116, 1e-12);
        close(t.p_value, 0.011_810_904_124_856_48, 1e-12);
        let ci = t.interval(0.95).unwrap();
        close(ci[0], 0.064_623_400_518_532_69, 1e-12);
        close(ci[1], 0.395_376_599_481_467_3, 1e-12);
        let ci = t.interval(0.90).unwrap();
        close(ci[0], 0.095_988_982_439_576_26, 1e-12);
        close(ci[1], 0.364_011_017_560_423_64, 1e-12);
        assert_eq!((t.units, t.df), (10, 9.0));
    }

    #[test]
    fn clustered_matches_statsmodels_cluster_robust_t() {
        // m = statsmodels.api.OLS(c - b, numpy.ones(10)).fit(cov_type="cluster",
        //     cov_kwds={"groups": GROUPS}, use_t=True): bse 0.0763053078101386,
        // pvalues 0.039386952156984914, conf_int(0.05) (0.018142501629929753, 0.44185749837007027)
        let t = paired_t(&diffs(), Some(&GROUPS)).unwrap();
        close(t.se, 0.076_305_307_810_138_6, 1e-12);
        close(t.p_value, 0.039_386_952_156_984_914, 1e-12);
        let ci = t.interval(0.95).unwrap();
        close(ci[0], 0.018_142_501_629_929_753, 1e-12);
        close(ci[1], 0.441_857_498_370_070_27, 1e-12);
        assert_eq!((t.units, t.df), (5, 4.0));
    }

    #[test]
    fn fieller_is_the_inversion_of_the_t_test() {
        // The set of rho with scipy.stats.ttest_1samp(c - rho*b, 0).pvalue >= alpha, bounds found
        // by scipy.optimize.brentq; minus 1. rho_hat - 1 = 0.19008264462809943.
        let r = paired_ratio(&B, &C, None, 0.95).unwrap();
        close(r.estimate, 0.190_082_644_628_099_43, 1e-12);
        let [lo, hi] = r.ci.unwrap();
        close(lo, 0.065_799_984_773_185_6, 1e-9);
        close(hi, 0.283_365_555_215_578_05, 1e-9);
        let [lo, hi] = paired_ratio(&B, &C, None, 0.90).unwrap().ci.unwrap();
        close(lo, 0.093_322_584_077_225_6, 1e-9);
        close(hi, 0.266_954_010_425_972_44, 1e-9);
        // Clustered: the same inversion of statsmodels' cluster-robust test.
        let [lo, hi] = paired_ratio(&B, &C, Some(&GROUPS), 0.95).unwrap().ci.unwrap();
        close(lo, 0.019_357_782_228_967_89, 1e-9);
        close(hi, 0.320_623_869_130_443_94, 1e-9);
    }

    #[test]
    fn ratio_excludes_one_exactly_when_the_t_test_rejects() {
        let t = paired_t(&diffs(), None).unwrap();
        for (confidence, rejects) in [(0.95, true), (0.99, false)] {
            assert_eq!(t.p_value < 1.0 - confidence, rejects);
            let [lo, hi] = paired_ratio(&B, &C, None, confidence).unwrap().ci.unwrap();
            assert_eq!(!(lo <= 0.0 && 0.0 <= hi), rejects, "{confidence}: [{lo}, {hi}]");
        }
    }

    #[test]
    fn zero_spread_and_degenerate_inputs() {
        // Every case 0.2 higher: the exact sign-flip p-value 2/2^10.
        let same = [0.2; 10];
        let t = paired_t(&same, None).unwrap();
        assert_eq!((t.se, t.p_value), (0.0, 2.0 / 1024.0));
        assert_eq!(t.interval(0.95), Some([0.2, 0.2]));
        assert_eq!(paired_t(&[0.0; 5], None).unwrap().p_value, 1.0);
        assert_eq!(paired_t(&[0.3], None), None);
        assert_eq!(paired_t(&[0.3, 0.1], Some(&[7, 7])), None, "one cluster");
        assert_eq!(paired_t(&[0.3, f64::NAN], None), None);
        // A baseline mean of zero has no ratio; a noisy one near zero no bounded interval.
        assert_eq!(paired_ratio(&[0.0, 0.0], &[1.0, 2.0], None, 0.95), None);
        let wide = paired_ratio(&[0.01, -0.005, 0.02, -0.01], &[1.0, 2.0, 1.5, 1.2], None, 0.95).unwrap();
        assert_eq!(wide.ci, None);
    }

    /// Differences near 1e300, whose squares overflow, are tested as the same differences
    /// scaled (t is scale-free): `scipy.stats.ttest_1samp([1, 2, -0.5, 3, 1.5, -1], 0)` gives
    /// t = 1.6151457061744965, p = 0.16720046877557923 (scipy itself overflows on the ×1e300
    /// values, returning p = 1).
    #[test]
    fn huge_differences_do_not_overflow() {
        let d: Vec<f64> = [1.0, 2.0, -0.5, 3.0, 1.5, -1.0].iter().map(|x| x * 1e300).collect();
        let t = paired_t(&d, None).unwrap();
        assert!((t.p_value - 0.16720046877557923).abs() < 1e-12, "{}", t.p_value);
        assert!((t.estimate / t.se - 1.6151457061744965).abs() < 1e-12);
        assert!((t.estimate / 1e300 - 1.0).abs() < 1e-12);
    }
}
