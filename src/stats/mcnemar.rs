//! McNemar's exact test for paired binary outcomes (McNemar 1947).

use statrs::distribution::{Binomial, DiscreteCDF};

/// Two-sided exact McNemar p-value from the discordant pair counts.
///
/// `b` counts cases where the baseline passed and the candidate failed, `c` the reverse.
/// Under the null each discordant pair is equally likely to go either way, so
/// `p = min(1, 2·P(X ≤ min(b, c)))` with `X ~ Binomial(b + c, 1/2)` — the same as
/// `statsmodels.stats.contingency_tables.mcnemar(table, exact=True)` and
/// `scipy.stats.binomtest(min(b, c), b + c, 0.5)` (the distribution is symmetric, so
/// doubling the smaller tail equals scipy's "as likely or less likely" rule).
///
/// Returns 1 when there are no discordant pairs. `b + c` saturates at `u64::MAX`, far beyond
/// any real suite.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b.saturating_add(c);
    if n == 0 {
        return 1.0;
    }
    let Ok(dist) = Binomial::new(0.5, n) else {
        // Unreachable: p = 0.5 is always a valid probability. 1 is the conservative answer.
        return 1.0;
    };
    let p = 2.0 * dist.cdf(b.min(c));
    // A NaN from the incomplete beta function would otherwise escape as a "significant"
    // comparison failure downstream; 1 is the conservative answer.
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(b: u64, c: u64, expected: f64) {
        let p = mcnemar_exact(b, c);
        // The exact test is computed through the regularised incomplete beta function, so
        // compare relatively: tiny p-values must be right in their leading digits too.
        assert!(
            (p - expected).abs() <= 1e-9 * expected,
            "mcnemar_exact({b}, {c}) = {p:e}, reference {expected:e}"
        );
        assert_eq!(p, mcnemar_exact(c, b), "symmetric in b and c");
    }

    #[test]
    fn matches_statsmodels() {
        // statsmodels.stats.contingency_tables.mcnemar([[a, b], [c, d]], exact=True).pvalue,
        // (a and d do not enter the exact test); cross-checked against
        // scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue.
        check(0, 0, 1.0); // b + c = 0: no evidence either way, p = 1 by definition.
        check(1, 0, 1.0); // mcnemar([[10, 1], [0, 10]], exact=True) -> 1.0
        check(3, 3, 1.0); // mcnemar([[10, 3], [3, 10]], exact=True) -> 1.0
        check(5, 0, 0.0625); // mcnemar([[10, 5], [0, 10]], exact=True) -> 0.0625
        check(6, 0, 0.03125); // mcnemar([[10, 6], [0, 10]], exact=True) -> 0.03125
        // mcnemar([[10, 10], [2, 10]], exact=True) -> 0.03857421875
        check(10, 2, 0.038_574_218_75);
        // mcnemar([[10, 7], [12, 10]], exact=True) -> 0.359283447265625
        check(7, 12, 0.359_283_447_265_625);
        // mcnemar([[10, 100], [130, 10]], exact=True) -> 0.05561357778139238
        check(100, 130, 0.055_613_577_781_392_38);
        // mcnemar([[10, 1000], [1100, 10]], exact=True) -> 0.03072070786424249
        check(1000, 1100, 0.030_720_707_864_242_49);
        // mcnemar([[10, 0], [60, 10]], exact=True) -> 1.734723475976807e-18 (= 2 * 0.5**60)
        check(0, 60, 1.734_723_475_976_807e-18);
    }

    #[test]
    fn extreme_counts_stay_in_range() {
        for (b, c) in [(u64::MAX, 1), (u64::MAX, u64::MAX), (1 << 40, 1 << 40)] {
            let p = mcnemar_exact(b, c);
            assert!((0.0..=1.0).contains(&p), "mcnemar_exact({b}, {c}) = {p}");
        }
    }
}
