//! Anytime-valid inference: the normal-mixture confidence sequence and its always-valid
//! p-value, so a canary may be looked at after every batch of traffic without inflating the
//! false-rollback rate.
//!
//! For an estimate θ̂ₙ approximately N(θ, sₙ²), the likelihood ratio of θ against θ₀ mixed over
//! θ ~ N(θ₀, τ²) is
//!
//! ```text
//! Λₙ(θ₀) = √(sₙ² / (sₙ² + τ²)) · exp(τ² (θ̂ₙ − θ₀)² / (2 sₙ² (sₙ² + τ²)))
//! ```
//!
//! a nonnegative martingale under θ₀ with mean 1 when sₙ² is the variance of a running mean
//! (Robbins 1970). By Ville's inequality P(∃n: Λₙ(θ₀) ≥ 1/α) ≤ α, so rejecting θ₀ whenever
//! Λₙ ≥ 1/α, at whatever looks, keeps the error ≤ α: the mixture SPRT of Johari, Koomen,
//! Pekelis & Walsh (2017, "Peeking at A/B tests", KDD) with the always-valid p-value
//! `pₙ = min(1, 1/Λₙ(θ₀))`, and the confidence sequence {θ₀ : Λₙ(θ₀) < 1/α} whose radius has
//! the closed form of Howard, Ramdas, McAuliffe & Sekhon (2021, *Annals of Statistics* 49(2),
//! eq. (14), the normal mixture). With an estimated variance the guarantee is asymptotic
//! (Waudby-Smith et al. 2024, "Time-uniform central limit theory").
//!
//! τ sets where the sequence is tightest: a mixture of the size of the effect that matters
//! (the gate's margin) detects that effect fastest (Johari et al. §4.3).

/// The sequence at one look: the interval and the always-valid p-value of θ = 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sequential {
    pub ci: [f64; 2],
    pub p_value: f64,
}

/// The normal-mixture confidence sequence around `estimate` with standard error `se`, mixture
/// scale `tau` and level `alpha`. `None` unless `se` and `tau` are positive and finite and
/// `alpha` is in (0, 1): a zero standard error proves nothing.
pub fn mixture_sequence(estimate: f64, se: f64, tau: f64, alpha: f64) -> Option<Sequential> {
    if !(estimate.is_finite() && se.is_finite() && se > 0.0 && tau.is_finite() && tau > 0.0) {
        return None;
    }
    let r = mixture_radius(se, tau, alpha)?;
    let (s2, t2) = (se * se, tau * tau);
    let log_lambda = 0.5 * (s2 / (s2 + t2)).ln() + t2 * estimate * estimate / (2.0 * s2 * (s2 + t2));
    Some(Sequential {
        ci: [estimate - r, estimate + r],
        p_value: (-log_lambda).exp().min(1.0),
    })
}

/// The radius of the sequence: `√(2 s²(s² + τ²)/τ² · (ln(1/α) + ½ ln((s² + τ²)/s²)))`.
pub fn mixture_radius(se: f64, tau: f64, alpha: f64) -> Option<f64> {
    if !(se.is_finite() && se > 0.0 && tau.is_finite() && tau > 0.0 && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let (s2, t2) = (se * se, tau * tau);
    Some((2.0 * s2 * (s2 + t2) / t2 * ((1.0 / alpha).ln() + 0.5 * ((s2 + t2) / s2).ln())).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_mixture_integral() {
        // scipy: Λ(θ₀) = integrate.quad(lambda t: norm.pdf(2.3, t, 0.8) / norm.pdf(2.3, θ₀, 0.8)
        //   · norm.pdf(t, θ₀, 1.5), -40, 40); 1/Λ(0) -> 0.08510957082237111; the θ₀ with
        //   Λ(θ₀) = 20 by optimize.brentq -> (-0.18284473740923354, 4.782844737409233)
        let s = mixture_sequence(2.3, 0.8, 1.5, 0.05).unwrap();
        assert!((s.p_value - 0.085_109_570_822_371_11).abs() < 1e-12, "{s:?}");
        assert!((s.ci[0] + 0.182_844_737_409_233_54).abs() < 1e-10, "{s:?}");
        assert!((s.ci[1] - 4.782_844_737_409_233).abs() < 1e-10, "{s:?}");
    }

    #[test]
    fn p_below_alpha_exactly_when_the_interval_excludes_zero() {
        for estimate in [0.0, 0.5, 1.0, 1.9, 2.0, 2.1, 3.0, -2.5] {
            let s = mixture_sequence(estimate, 0.5, 1.0, 0.05).unwrap();
            let excludes = s.ci[0] > 0.0 || s.ci[1] < 0.0;
            assert_eq!(s.p_value < 0.05, excludes, "{estimate}: {s:?}");
        }
    }

    #[test]
    fn wider_than_the_fixed_horizon_interval() {
        // The price of looking any number of times: wider than ±1.96·se at every n.
        for se in [1.0, 0.1, 0.01, 0.001] {
            let r = mixture_radius(se, 0.05, 0.05).unwrap();
            assert!(r > 1.959_963_984_540_054 * se, "{se}: {r}");
        }
        assert_eq!(mixture_sequence(1.0, 0.0, 1.0, 0.05), None);
        assert_eq!(mixture_sequence(1.0, 1.0, 0.0, 0.05), None);
    }
}
