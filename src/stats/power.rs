//! Minimum detectable effect, so an underpowered suite shows up in the report.

use statrs::distribution::{ContinuousCDF, Normal};

/// Smallest true mean difference a two-sided paired test at level `alpha` detects with
/// probability `power`, given the standard deviation of the per-case differences and the
/// number of cases: `(z₁₋α/₂ + z_power) · sd_diff / √n` (the normal-approximation power
/// formula; with small n the t-test needs slightly more, so this is a lower bound).
///
/// `None` when `n == 0`, `sd_diff` is negative or non-finite, or `alpha` or `power` lies
/// outside the open interval (0, 1), where the quantiles are infinite or undefined.
pub fn mde_paired(sd_diff: f64, n: usize, alpha: f64, power: f64) -> Option<f64> {
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    if n == 0 || !sd_diff.is_finite() || sd_diff < 0.0 || !open_unit(alpha) || !open_unit(power) {
        return None;
    }
    let z = Normal::standard();
    let multiplier = z.inverse_cdf(1.0 - alpha / 2.0) + z.inverse_cdf(power);
    Some(multiplier * sd_diff / (n as f64).sqrt())
}

/// Cases a paired two-sided test at level `alpha` needs to detect a true mean difference of
/// `effect` with probability `power`: `⌈((z₁₋α/₂ + z_power) · sd_diff / effect)²⌉`, the inverse
/// of [`mde_paired`] (as `statsmodels.stats.power.normal_sample_size_one_tail(effect, power,
/// alpha / 2, std_null=sd_diff)`, rounded up).
///
/// `None` when `effect` is not positive and finite, `sd_diff` negative or non-finite, or
/// `alpha`/`power` outside (0, 1). Zero spread needs a single case.
pub fn cases_needed(sd_diff: f64, effect: f64, alpha: f64, power: f64) -> Option<usize> {
    if !(effect > 0.0 && effect.is_finite()) {
        return None;
    }
    let unit = mde_paired(sd_diff, 1, alpha, power)?;
    let n = (unit / effect).powi(2).ceil();
    // Beyond any suite anyone will run; saturate rather than wrap.
    Some(if n >= 1e15 {
        1_000_000_000_000_000
    } else {
        (n as usize).max(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_needed_matches_statsmodels() {
        // numpy.ceil(statsmodels.stats.power.normal_sample_size_one_tail(effect, power, alpha/2,
        // std_null=sd)) for (sd, effect, alpha, power):
        // (1.0, 0.28, 0.05, 0.8) -> 100.11326191771798 -> 101
        // (0.25, 0.05, 0.05, 0.8) -> 196.22199335872727 -> 197
        // (0.4, 0.02, 0.05, 0.9) -> 4202.969224576248 -> 4203
        // (12.5, 3.0, 0.01, 0.8) -> 202.7598641262879 -> 203
        assert_eq!(cases_needed(1.0, 0.28, 0.05, 0.8), Some(101));
        assert_eq!(cases_needed(0.25, 0.05, 0.05, 0.8), Some(197));
        assert_eq!(cases_needed(0.4, 0.02, 0.05, 0.9), Some(4203));
        assert_eq!(cases_needed(12.5, 3.0, 0.01, 0.8), Some(203));
        assert_eq!(cases_needed(0.0, 0.1, 0.05, 0.8), Some(1));
        assert_eq!(cases_needed(1.0, 0.0, 0.05, 0.8), None);
        assert_eq!(cases_needed(1.0, f64::NAN, 0.05, 0.8), None);
        // The inverse of mde_paired: at the needed n the MDE is at most the effect.
        let n = cases_needed(0.3, 0.05, 0.05, 0.8).unwrap();
        assert!(mde_paired(0.3, n, 0.05, 0.8).unwrap() <= 0.05);
        assert!(mde_paired(0.3, n - 1, 0.05, 0.8).unwrap() > 0.05);
    }

    #[track_caller]
    fn check(sd_diff: f64, n: usize, alpha: f64, power: f64, expected: Option<f64>) {
        let actual = mde_paired(sd_diff, n, alpha, power);
        match (actual, expected) {
            (Some(a), Some(e)) => assert!(
                (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                "mde_paired({sd_diff}, {n}, {alpha}, {power}) = {a}, reference {e}"
            ),
            (a, e) => assert_eq!(a, e, "mde_paired({sd_diff}, {n}, {alpha}, {power})"),
        }
    }

    #[test]
    fn matches_scipy_normal_quantiles() {
        // (scipy.stats.norm.ppf(1 - alpha/2) + scipy.stats.norm.ppf(power)) * sd / numpy.sqrt(n)
        // (1.0, 100, 0.05, 0.8) -> 0.28015852181129686
        check(1.0, 100, 0.05, 0.8, Some(0.280_158_521_811_296_86));
        // (0.25, 30, 0.05, 0.8) -> 0.1278742850611253
        check(0.25, 30, 0.05, 0.8, Some(0.127_874_285_061_125_3));
        // (12.5, 200, 0.01, 0.9) -> 3.409475212694091
        check(12.5, 200, 0.01, 0.9, Some(3.409_475_212_694_091));
        // (1.0, 1, 0.1, 0.5) -> 1.6448536269514722 (z_power = 0 at power 0.5)
        check(1.0, 1, 0.1, 0.5, Some(1.644_853_626_951_472_2));
        // Zero spread: any difference at all is detectable.
        check(0.0, 10, 0.05, 0.8, Some(0.0));
    }

    #[test]
    fn rejects_undefined_inputs() {
        check(1.0, 0, 0.05, 0.8, None);
        check(-1.0, 10, 0.05, 0.8, None);
        check(f64::NAN, 10, 0.05, 0.8, None);
        check(f64::INFINITY, 10, 0.05, 0.8, None);
        check(1.0, 10, 0.0, 0.8, None);
        check(1.0, 10, 1.0, 0.8, None);
        check(1.0, 10, 0.05, 1.0, None);
        check(1.0, 10, 0.05, f64::NAN, None);
    }
}
