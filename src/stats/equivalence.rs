//! Two one-sided tests (TOST) for equivalence of paired arms (Schuirmann, D. J. (1987),
//! *Journal of Pharmacokinetics and Biopharmaceutics* 15(6), 657–680).
//!
//! Equivalence within `[low, high]` is shown when both one-sided paired t-tests reject:
//! `mean(d) > low` and `mean(d) < high`. The TOST p-value is the larger of the two, and the
//! test at level α is the same as the (1 − 2α) confidence interval lying inside the bounds —
//! which is how the gate applies it to every metric, with that metric's own interval.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::describe::{mean, std_dev};

/// The result of [`tost_paired`].
#[derive(Clone, Debug, PartialEq)]
pub struct Tost {
    /// `max(p_lower, p_upper)`: equivalence at level α when below α.
    pub p_value: f64,
    /// One-sided p-value for `H0: mean(d) ≤ low`.
    pub p_lower: f64,
    /// One-sided p-value for `H0: mean(d) ≥ high`.
    pub p_upper: f64,
}

/// TOST with paired t-tests on the differences `candidate − baseline`, as
/// `statsmodels.stats.weightstats.ttost_paired(candidate, baseline, low, high)`.
///
/// `None` with fewer than two differences, a non-finite value, `low ≥ high`, or zero spread
/// (the t statistic is undefined; the caller reads the differences directly then).
pub fn tost_paired(diffs: &[f64], low: f64, high: f64) -> Option<Tost> {
    if low >= high || !low.is_finite() || !high.is_finite() {
        return None;
    }
    let n = diffs.len();
    let m = mean(diffs)?;
    let sd = std_dev(diffs)?;
    if sd <= 0.0 {
        return None;
    }
    let se = sd / (n as f64).sqrt();
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).ok()?;
    let p_lower = t.sf((m - low) / se);
    let p_upper = t.cdf((m - high) / se);
    Some(Tost {
        p_value: p_lower.max(p_upper),
        p_lower,
        p_upper,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The per-case scores of bootstrap.rs's tests (numpy.random.default_rng(7)).
    const B: [f64; 30] = [
        0.638, 0.828, 0.743, 0.358, 0.41, 0.811, 0.204, 0.775, 0.758, 0.528, 0.412, 0.395, 0.378, 0.512, 0.553, 0.587,
        0.897, 0.755, 0.636, 0.892, 0.351, 0.312, 0.629, 0.231, 0.225, 0.56, 0.526, 0.842, 0.64, 0.56,
    ];
    const C: [f64; 30] = [
        0.494, 0.811, 0.666, 0.301, 0.577, 0.754, 0.24, 0.921, 0.728, 0.555, 0.465, 0.443, 0.271, 0.561, 0.756, 0.441,
        1.0, 0.809, 0.599, 1.0, 0.482, 0.208, 0.678, 0.34, 0.242, 0.682, 0.558, 0.962, 0.853, 0.519,
    ];

    #[track_caller]
    fn check(low: f64, high: f64, p: f64, p_lower: f64, p_upper: f64) {
        let d: Vec<f64> = C.iter().zip(B).map(|(c, b)| c - b).collect();
        let r = tost_paired(&d, low, high).expect("a result");
        let close = |a: f64, e: f64| (a - e).abs() <= 1e-9 * e.max(1e-300) + 1e-15;
        assert!(
            close(r.p_value, p) && close(r.p_lower, p_lower) && close(r.p_upper, p_upper),
            "{r:?}"
        );
    }

    #[test]
    fn matches_statsmodels_ttost_paired() {
        // statsmodels.stats.weightstats.ttost_paired(C, B, low, high) -> (p, (t1, p1, df), (t2, p2, df))
        // (-0.1, 0.1) -> 0.0003849763416134342, 2.14124252099616e-08, 0.0003849763416134342
        check(
            -0.1,
            0.1,
            0.000_384_976_341_613_434_2,
            2.141_242_520_996_16e-8,
            0.000_384_976_341_613_434_2,
        );
        // (-0.05, 0.05) -> 0.16735910507741783, 4.1633834223201334e-05, 0.16735910507741783
        check(
            -0.05,
            0.05,
            0.167_359_105_077_417_83,
            4.163_383_422_320_133_4e-5,
            0.167_359_105_077_417_83,
        );
        // (-0.2, 0.08) -> 0.006498269359683746, 7.653328861048794e-14, 0.006498269359683746
        check(
            -0.2,
            0.08,
            0.006_498_269_359_683_746,
            7.653_328_861_048_794e-14,
            0.006_498_269_359_683_746,
        );
    }

    #[test]
    fn undefined_inputs_give_none() {
        assert_eq!(tost_paired(&[0.1], -1.0, 1.0), None);
        assert_eq!(tost_paired(&[0.1, 0.1, 0.1], -1.0, 1.0), None);
        assert_eq!(tost_paired(&[0.1, 0.2], 1.0, -1.0), None);
        assert_eq!(tost_paired(&[0.1, f64::NAN], -1.0, 1.0), None);
    }
}
