//! Confidence interval for the difference of two paired proportions: Newcombe's hybrid score
//! interval (Newcombe, R. G. (1998), "Improved confidence intervals for the difference between
//! binomial proportions based on paired data", *Statistics in Medicine* 17, 2635–2650, method
//! 10), built from Wilson score intervals (Wilson, E. B. (1927), *JASA* 22, 209–212).
//!
//! Chosen over the Wald interval because it keeps its coverage with few discordant pairs and
//! near 0 or 1 (Fagerland, Lydersen & Laake (2014), *Statistics in Medicine* 33, 2850–2875,
//! recommend it), and over Tango's score interval because it has a closed form.

use statrs::distribution::{ContinuousCDF, Normal};

/// Paired binary outcomes, counted by case: passed in both arms, only in one, in neither.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PairedCounts {
    pub both: u64,
    pub baseline_only: u64,
    pub candidate_only: u64,
    pub neither: u64,
}

impl PairedCounts {
    pub fn n(&self) -> u64 {
        self.both + self.baseline_only + self.candidate_only + self.neither
    }

    /// `p(candidate) − p(baseline)`; `None` without cases.
    pub fn difference(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| (self.candidate_only as f64 - self.baseline_only as f64) / n as f64)
    }
}

/// Newcombe's hybrid score interval for `p(candidate) − p(baseline)` at `confidence`.
///
/// `None` without cases or with `confidence` outside the open interval (0, 1). The interval
/// always contains the point estimate and lies within `[−1, 1]`. The correlation term uses the
/// phi coefficient with Newcombe's refinement (numerator `max(AD − BC − N/2, 0)` when
/// `AD > BC`), and zero when a margin of the table is empty.
pub fn newcombe_paired(counts: PairedCounts, confidence: f64) -> Option<[f64; 2]> {
    let n = counts.n();
    if n == 0 || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    let nf = n as f64;
    // Newcombe's notation: arm 1 is the candidate, so theta = p1 − p2 is the report's delta.
    let (a, b, c, d) = (
        counts.both as f64,
        counts.candidate_only as f64,
        counts.baseline_only as f64,
        counts.neither as f64,
    );
    let (p1, p2) = ((a + b) / nf, (a + c) / nf);
    let [l1, u1] = wilson(a + b, nf, z);
    let [l2, u2] = wilson(a + c, nf, z);
    let denominator = ((a + b) * (c + d) * (a + c) * (b + d)).sqrt();
    let mut numerator = a * d - b * c;
    if numerator > 0.0 {
        numerator = (numerator - nf / 2.0).max(0.0);
    }
    let phi = if denominator > 0.0 {
        numerator / denominator
    } else {
        0.0
    };
    let theta = p1 - p2;
    let root = |x: f64, y: f64| (x * x - 2.0 * phi * x * y + y * y).max(0.0).sqrt();
    let lower = theta - root(p1 - l1, u2 - p2);
    let upper = theta + root(u1 - p1, p2 - l2);
    Some([lower.max(-1.0), upper.min(1.0)])
}

/// Wilson score interval for `x` successes in `n` trials with normal quantile `z`.
/// Wilson's score interval for a proportion of `successes` in `n` at `confidence`; `None`
/// without trials or with `confidence` outside (0, 1), as
/// `statsmodels.stats.proportion.proportion_confint(successes, n, 1 − confidence, "wilson")`.
pub fn wilson_interval(successes: u64, n: u64, confidence: f64) -> Option<[f64; 2]> {
    if n == 0 || successes > n || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let z = Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0);
    Some(wilson(successes as f64, n as f64, z))
}

fn wilson(x: f64, n: f64, z: f64) -> [f64; 2] {
    let z2 = z * z;
    let centre = (x + z2 / 2.0) / (n + z2);
    let half = z * (x * (n - x) / n + z2 / 4.0).max(0.0).sqrt() / (n + z2);
    [(centre - half).max(0.0), (centre + half).min(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(both: u64, candidate_only: u64, baseline_only: u64, neither: u64, confidence: f64, expected: [f64; 2]) {
        let counts = PairedCounts {
            both,
            baseline_only,
            candidate_only,
            neither,
        };
        let ci = newcombe_paired(counts, confidence).expect("an interval");
        for (a, e) in ci.iter().zip(expected) {
            assert!((a - e).abs() <= 1e-12, "{counts:?}: {ci:?}, reference {expected:?}");
        }
        let d = counts.difference().unwrap();
        assert!(ci[0] <= d && d <= ci[1], "{counts:?}: {ci:?} misses {d}");
        // Swapping the arms mirrors the interval.
        let swapped = PairedCounts {
            baseline_only: candidate_only,
            candidate_only: baseline_only,
            ..counts
        };
        let mirrored = newcombe_paired(swapped, confidence).unwrap();
        assert!(
            (mirrored[0] + ci[1]).abs() <= 1e-12 && (mirrored[1] + ci[0]).abs() <= 1e-12,
            "{mirrored:?}"
        );
    }

    #[test]
    fn matches_newcombes_formula_on_statsmodels_wilson_bounds() {
        // No published implementation of method 10 is in scipy or statsmodels, so the reference
        // is Newcombe's (1998) formula transcribed in Python on top of
        // statsmodels.stats.proportion.proportion_confint(x, n, alpha, method="wilson") for the
        // two marginal intervals (script in docs/statistics.md, "References"). Arguments:
        // (A both, B candidate only, C baseline only, D neither, confidence).
        // (30, 2, 8, 10, 0.95) -> (-0.24259714476429908, 0.0064083655457082556)
        check(
            30,
            2,
            8,
            10,
            0.95,
            [-0.242_597_144_764_299_08, 0.006_408_365_545_708_255_6],
        );
        // (30, 2, 8, 10, 0.90) -> (-0.2234716806490648, -0.013855768888824602)
        check(
            30,
            2,
            8,
            10,
            0.90,
            [-0.223_471_680_649_064_8, -0.013_855_768_888_824_602],
        );
        // (10, 6, 0, 4, 0.95) -> (0.06670089185284225, 0.4912059083664403)
        check(10, 6, 0, 4, 0.95, [0.066_700_891_852_842_25, 0.491_205_908_366_440_3]);
        // (45, 0, 0, 5, 0.95) -> (-0.06844603071038978, 0.06844603071038977)
        check(45, 0, 0, 5, 0.95, [-0.068_446_030_710_389_78, 0.068_446_030_710_389_77]);
        // (0, 0, 0, 7, 0.95) -> (-0.35433043506668743, 0.35433043506668743)
        check(0, 0, 0, 7, 0.95, [-0.354_330_435_066_687_43, 0.354_330_435_066_687_43]);
        // (12, 9, 2, 1, 0.95) -> (0.03111612488646187, 0.5077759769557888)
        check(12, 9, 2, 1, 0.95, [0.031_116_124_886_461_87, 0.507_775_976_955_788_8]);
        // (100, 30, 12, 58, 0.95) -> (0.026765685821844507, 0.1519123854695426)
        check(
            100,
            30,
            12,
            58,
            0.95,
            [0.026_765_685_821_844_507, 0.151_912_385_469_542_6],
        );
    }

    #[test]
    fn undefined_inputs_give_none() {
        assert_eq!(newcombe_paired(PairedCounts::default(), 0.95), None);
        let some = PairedCounts {
            both: 1,
            ..Default::default()
        };
        assert_eq!(newcombe_paired(some, 1.0), None);
        assert_eq!(newcombe_paired(some, f64::NAN), None);
    }
}
