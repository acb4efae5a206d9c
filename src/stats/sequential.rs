//! Group-sequential testing with an alpha-spending function (Lan, K. K. G. & DeMets, D. L.
//! (1983), "Discrete sequential boundaries for clinical trials", *Biometrika* 70(3), 659–663),
//! O'Brien–Fleming type: `α(t) = 2 − 2Φ(z₁₋α/₂ / √t)` for information fraction t.
//!
//! Each look k may spend `α(tₖ) − α(tₖ₋₁)`. promptgate tests at exactly that nominal level at
//! look k, so by the union bound the chance of any false rejection over all looks is at most
//! `Σ (α(tₖ) − α(tₖ₋₁)) = α`, whatever the test (exact McNemar, Wilcoxon, bootstrap) and
//! however the looks are correlated. The usual Lan–DeMets boundaries would recover the
//! correlation between looks and be a little less conservative, but they assume a Brownian
//! z-statistic, which our exact and rank tests are not; the union bound needs no such
//! assumption. O'Brien–Fleming spending keeps almost all of α for the final look, so a run
//! that goes to the end loses little power against the fixed design.

use statrs::distribution::{ContinuousCDF, Normal};

/// O'Brien–Fleming-type spending: the share of the two-sided `alpha` spent by information
/// fraction `t` (0 at t = 0, `alpha` at t ≥ 1). `None` when `alpha` is outside (0, 1) or t is
/// NaN.
pub fn obrien_fleming_spent(alpha: f64, t: f64) -> Option<f64> {
    if !(alpha > 0.0 && alpha < 1.0) || t.is_nan() {
        return None;
    }
    if t <= 0.0 {
        return Some(0.0);
    }
    if t >= 1.0 {
        return Some(alpha);
    }
    let z = Normal::standard();
    // 2·sf rather than 2 − 2·cdf: the upper tail keeps its precision at small t.
    Some(2.0 * z.sf(z.inverse_cdf(1.0 - alpha / 2.0) / t.sqrt()))
}

/// Nominal levels for looks at increasing information fractions `fractions` (the last should
/// be 1): `α(tₖ) − α(tₖ₋₁)`. `None` when the fractions are not strictly increasing within
/// (0, 1] or `alpha` is invalid.
pub fn look_alphas(alpha: f64, fractions: &[f64]) -> Option<Vec<f64>> {
    let mut previous_t = 0.0;
    let mut previous_spent = 0.0;
    let mut out = Vec::with_capacity(fractions.len());
    for &t in fractions {
        if !(t > previous_t && t <= 1.0) {
            return None;
        }
        let spent = obrien_fleming_spent(alpha, t)?;
        out.push(spent - previous_spent);
        (previous_t, previous_spent) = (t, spent);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_spending_function_in_scipy() {
        // 2 - 2*scipy.stats.norm.cdf(scipy.stats.norm.ppf(1 - 0.05/2)/numpy.sqrt(t))
        // t = 0.25 -> 8.857543832130332e-05, 0.5 -> 0.005574596680784305,
        // 0.75 -> 0.023625121317601305, 1.0 -> 0.05
        for (t, e) in [
            (0.25, 8.857_543_832_130_332e-5),
            (0.5, 0.005_574_596_680_784_305),
            (0.75, 0.023_625_121_317_601_305),
            (1.0, 0.05),
        ] {
            let a = obrien_fleming_spent(0.05, t).unwrap();
            // statrs' erfc agrees with scipy's to about 1e-10 relative in the far tail.
            assert!((a - e).abs() <= 1e-9 * e, "t = {t}: {a}, scipy {e}");
        }
        let looks = look_alphas(0.05, &[0.25, 0.5, 0.75, 1.0]).unwrap();
        assert!((looks.iter().sum::<f64>() - 0.05).abs() < 1e-15, "{looks:?}");
        assert!((looks[3] - (0.05 - 0.023_625_121_317_601_305)).abs() < 1e-10);
    }

    #[test]
    fn invalid_schedules_give_none() {
        assert_eq!(look_alphas(0.05, &[0.5, 0.5]), None);
        assert_eq!(look_alphas(0.05, &[0.5, 1.5]), None);
        assert_eq!(look_alphas(0.0, &[1.0]), None);
        assert_eq!(obrien_fleming_spent(0.05, f64::NAN), None);
        assert_eq!(obrien_fleming_spent(0.05, 0.0), Some(0.0));
    }
}
