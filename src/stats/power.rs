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

/// Cases McNemar's test at two-sided level `alpha` needs to detect a difference of paired
/// proportions `effect = p₁₀ − p₀₁` with probability `power`, when the discordant pairs make up
/// `discordance = p₁₀ + p₀₁` of the cases **under the alternative** (Connor 1987, eq. 3):
///
/// `n = ⌈(z₁₋α/₂ · √ψ + z_power · √(ψ − δ²))² / δ²⌉`, ψ = `discordance`, δ = `effect`.
///
/// The first term is the spread of the discordance difference under H₀ (given ψ), the second
/// under the alternative; planning both from a no-change run's ψ (as `cases_needed` with the
/// A/A standard deviation `√ψ₀` does) underplans, since a real drop adds discordant pairs.
///
/// `None` when `effect` is not in (0, 1], `discordance` is not in [effect, 1] (an alternative
/// needs at least `effect` of discordant pairs), or `alpha`/`power` outside (0, 1).
pub fn cases_needed_mcnemar(discordance: f64, effect: f64, alpha: f64, power: f64) -> Option<usize> {
    let open_unit = |x: f64| x > 0.0 && x < 1.0;
    let defined = effect > 0.0 && effect <= 1.0 && discordance >= effect && discordance <= 1.0;
    if !defined || !open_unit(alpha) || !open_unit(power) {
        return None;
    }
    let z = Normal::standard();
    let root = z.inverse_cdf(1.0 - alpha / 2.0) * discordance.sqrt()
        + z.inverse_cdf(power) * (discordance - effect * effect).max(0.0).sqrt();
    let n = (root / effect).powi(2).ceil();
    Some((n as usize).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_needed_mcnemar_matches_connor() {
        // Python transcription of Connor (1987), eq. 3, for (psi, delta, alpha, power):
        // numpy.ceil(((norm.ppf(1 - alpha/2) * numpy.sqrt(psi)
        //              + norm.ppf(power) * numpy.sqrt(psi - delta**2)) / delta)**2)
        // (0.3, 0.08, 0.05, 0.8) -> 365.54947124363684 -> 366
        // (0.1, 0.05, 0.05, 0.9) -> 416.12685505665416 -> 417
        // (0.25, 0.1, 0.01, 0.8) -> 289.0758819519749 -> 290
        // (0.5, 0.02, 0.05, 0.8) -> 9808.741464287641 -> 9809
        assert_eq!(cases_needed_mcnemar(0.3, 0.08, 0.05, 0.8), Some(366));
        assert_eq!(cases_needed_mcnemar(0.1, 0.05, 0.05, 0.9), Some(417));
        assert_eq!(cases_needed_mcnemar(0.25, 0.1, 0.01, 0.8), Some(290));
        assert_eq!(cases_needed_mcnemar(0.5, 0.02, 0.05, 0.8), Some(9809));
        // More discordance under the alternative, more cases; and never fewer than the
        // normal-approximation plan from the alternative's own sd √(ψ − δ²).
        assert!(cases_needed_mcnemar(0.35, 0.08, 0.05, 0.8) > cases_needed_mcnemar(0.3, 0.08, 0.05, 0.8));
        let sd = (0.3f64 - 0.08 * 0.08).sqrt();
        assert!(cases_needed_mcnemar(0.3, 0.08, 0.05, 0.8) >= cases_needed(sd, 0.08, 0.05, 0.8));
        // Undefined: fewer discordant pairs than the effect, or a null effect.
        assert_eq!(cases_needed_mcnemar(0.05, 0.08, 0.05, 0.8), None);
        assert_eq!(cases_needed_mcnemar(0.3, 0.0, 0.05, 0.8), None);
        assert_eq!(cases_needed_mcnemar(f64::NAN, 0.08, 0.05, 0.8), None);
    }

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
