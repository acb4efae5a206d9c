//! Wilcoxon signed-rank test on paired differences (Wilcoxon 1945; zeros per Pratt 1959).
//!
//! Method choice follows `scipy.stats.wilcoxon(d, zero_method=..., correction=False,
//! method="auto")` as of scipy 1.17:
//!
//! - more than 50 differences (zeros included): normal approximation;
//! - otherwise, no zeros and no ties: the exact null distribution;
//! - otherwise, at most 13 differences: scipy runs an exhaustive sign-flip permutation test,
//!   which is the exact conditional distribution of W+ given the observed (mid-)ranks — we
//!   compute that same distribution by dynamic programming instead of enumerating 2ⁿ flips;
//! - otherwise: normal approximation with the tie correction and, for Pratt, Cureton's zero
//!   correction. Never a continuity correction (scipy's `correction=False`).
//!
//! Where we depart from scipy on purpose: non-finite differences are dropped (scipy
//! propagates NaN), and differences whose magnitudes agree within `1e-9 · max|d|` count as
//! ties or zeros (scipy compares exactly). Per-case means and `candidate − baseline` carry
//! rounding noise of about 1e-16 of the arms' magnitude — `0.3 − 0.1` is not `0.2` — and arms
//! can be a million times larger than their differences (latencies in ms). Exact comparison
//! would turn that noise into fake ranks and flip the choice between exact and approximate
//! methods; 1e-9 absorbs it while staying far below any difference worth reporting. The
//! tolerance scales with the data, so multiplying every difference by a constant never
//! changes the result.

use statrs::function::erf::erfc;

/// How differences of exactly zero (within tolerance) are treated; scipy's `zero_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroMethod {
    /// Drop zeros before ranking (Wilcoxon 1945).
    Wilcox,
    /// Rank zeros with the rest, then leave them out of both rank sums (Pratt 1959).
    Pratt,
}

/// Which null distribution produced the p-value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WilcoxonMethod {
    /// The exact distribution of W+ under random signs, conditional on the observed ranks
    /// (ties and Pratt zeros included) — see the module docs for when it is used.
    Exact,
    /// The normal approximation with tie (and Pratt zero) corrections.
    Normal,
}

/// Result of a two-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, PartialEq)]
pub struct Wilcoxon {
    /// scipy's two-sided statistic: `min(W+, W−)`.
    pub statistic: f64,
    /// Sum of the ranks of the positive differences (candidate above baseline).
    pub w_plus: f64,
    /// Two-sided p-value in `[0, 1]`.
    pub p_value: f64,
    /// Number of non-zero differences that carry a sign.
    pub n: usize,
    pub method: WilcoxonMethod,
    /// Standardised `(W+ − E[W+]) / sd(W+)` for the normal approximation, signed so that a
    /// positive z means the candidate is higher (scipy reports `−|z|` instead); `None` for
    /// the exact method.
    pub z: Option<f64>,
}

/// Two-sided Wilcoxon signed-rank test on `diffs = candidate − baseline`.
///
/// With no usable non-zero difference (empty input, all zeros, all non-finite) there is no
/// evidence of a shift: the result is `p_value = 1`, `statistic = w_plus = 0`, `n = 0`,
/// `method = Exact`, `z = None`.
pub fn wilcoxon_signed_rank(diffs: &[f64], zero_method: ZeroMethod) -> Wilcoxon {
    let ranked = rank(diffs, zero_method);
    let n = ranked.signed.len();
    if n == 0 {
        return Wilcoxon {
            statistic: 0.0,
            w_plus: 0.0,
            p_value: 1.0,
            n: 0,
            method: WilcoxonMethod::Exact,
            z: None,
        };
    }
    // Doubled ranks are integers (a mid-rank is a multiple of ½), so the rank sums are exact.
    let w_plus2: u64 = ranked
        .signed
        .iter()
        .filter(|s| s.positive)
        .map(|s| s.rank2)
        .sum();
    let total2: u64 = ranked.signed.iter().map(|s| s.rank2).sum();
    let w_plus = w_plus2 as f64 / 2.0;
    let w_minus = (total2 - w_plus2) as f64 / 2.0;

    // Like scipy, the size thresholds count the zeros even when Wilcox drops them.
    let untied = ranked.zeros == 0 && ranked.tie_term == 0.0;
    let exact = ranked.finite <= MAX_EXACT && (untied || ranked.finite <= MAX_EXACT_CONDITIONAL);
    let (p_value, method, z) = if exact {
        let ranks2: Vec<u64> = ranked.signed.iter().map(|s| s.rank2).collect();
        (exact_p(&ranks2, w_plus2), WilcoxonMethod::Exact, None)
    } else {
        let z = normal_z(&ranked, zero_method, w_plus);
        let p = match z {
            // 2·Φ(−|z|) written through erfc, which keeps its accuracy far into the tail.
            Some(z) => erfc(z.abs() / std::f64::consts::SQRT_2).clamp(0.0, 1.0),
            None => 1.0,
        };
        (p, WilcoxonMethod::Normal, z)
    };
    Wilcoxon {
        statistic: w_plus.min(w_minus),
        w_plus,
        p_value,
        n,
        method,
        z,
    }
}

/// Largest sample (zeros included) for which scipy's "auto" uses the exact distribution.
const MAX_EXACT: usize = 50;
/// Largest sample for which scipy's "auto" still gives an exact answer with ties or zeros.
const MAX_EXACT_CONDITIONAL: usize = 13;
/// Relative tolerance for ties and zeros; see the module docs.
const REL_TOL: f64 = 1e-9;

struct Signed {
    /// Twice the (mid-)rank among all ranked values.
    rank2: u64,
    positive: bool,
}

struct Ranked {
    /// The non-zero differences with their ranks.
    signed: Vec<Signed>,
    /// Number of finite differences, zeros included.
    finite: usize,
    /// Number of differences that count as zero.
    zeros: usize,
    /// Σ (t³ − t) over groups of tied non-zero magnitudes.
    tie_term: f64,
}

fn rank(diffs: &[f64], zero_method: ZeroMethod) -> Ranked {
    let finite = diffs.iter().copied().filter(|d| d.is_finite());
    let scale = finite.clone().fold(0.0_f64, |m, d| m.max(d.abs()));
    let tol = REL_TOL * scale;
    // (magnitude, sign) with sign 0 for a zero; zeros get magnitude 0 so they sort first.
    let mut items: Vec<(f64, i8)> = finite
        .map(|d| match d {
            _ if d.abs() <= tol => (0.0, 0),
            _ if d > 0.0 => (d, 1),
            _ => (-d, -1),
        })
        .collect();
    let finite = items.len();
    let zeros = items.iter().filter(|&&(_, sign)| sign == 0).count();
    if zero_method == ZeroMethod::Wilcox {
        items.retain(|&(_, sign)| sign != 0);
    }
    items.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut signed = Vec::with_capacity(finite - zeros);
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < items.len() {
        let (first, first_sign) = items[start];
        // A group is a run within `tol` of its first member; zeros never join non-zeros.
        let end = start
            + items[start..]
                .iter()
                .take_while(|&&(m, sign)| (sign == 0) == (first_sign == 0) && m - first <= tol)
                .count();
        let t = (end - start) as f64;
        if first_sign != 0 {
            tie_term += t * t * t - t;
        }
        // Positions start+1 ..= end share the mid-rank (start + 1 + end) / 2.
        let rank2 = (start + 1 + end) as u64;
        signed.extend(
            items[start..end]
                .iter()
                .filter(|&&(_, sign)| sign != 0)
                .map(|&(_, sign)| Signed {
                    rank2,
                    positive: sign > 0,
                }),
        );
        start = end;
    }
    Ranked {
        signed,
        finite,
        zeros,
        tie_term,
    }
}

/// Two-sided exact p for the observed doubled rank sum: every sign assignment of the
/// non-zero ranks is equally likely under the null, and `counts[s]` is how many give
/// doubled W+ = s. Only called with at most 50 ranks, so `counts` stays below 2⁵⁰.
fn exact_p(ranks2: &[u64], w_plus2: u64) -> f64 {
    let total: usize = ranks2.iter().map(|&r| r as usize).sum();
    let mut counts = vec![0u64; total + 1];
    counts[0] = 1;
    let mut reach = 0;
    for &r in ranks2 {
        let r = r as usize;
        reach += r;
        for s in (r..=reach).rev() {
            counts[s] += counts[s - r];
        }
    }
    let observed = (w_plus2 as usize).min(total);
    let at_most: u64 = counts[..=observed].iter().sum();
    let at_least: u64 = counts[observed..].iter().sum();
    let all = 2f64.powi(ranks2.len() as i32);
    (2.0 * at_most.min(at_least) as f64 / all).min(1.0)
}

/// z of the normal approximation, as scipy computes it: Pratt subtracts the zeros' share of
/// the mean and variance (Cureton 1967), and tied groups shrink the variance by Σ(t³−t)/48.
fn normal_z(ranked: &Ranked, zero_method: ZeroMethod, w_plus: f64) -> Option<f64> {
    let ranked_len = match zero_method {
        ZeroMethod::Wilcox => ranked.finite - ranked.zeros,
        ZeroMethod::Pratt => ranked.finite,
    };
    let m = ranked_len as f64;
    let mut mean = m * (m + 1.0) / 4.0;
    let mut var24 = m * (m + 1.0) * (2.0 * m + 1.0);
    if zero_method == ZeroMethod::Pratt {
        let z0 = ranked.zeros as f64;
        mean -= z0 * (z0 + 1.0) / 4.0;
        var24 -= z0 * (z0 + 1.0) * (2.0 * z0 + 1.0);
    }
    let sd = ((var24 - ranked.tie_term / 2.0) / 24.0).sqrt();
    // sd is positive whenever a non-zero difference exists; the guard only keeps a NaN
    // or a division by zero from ever reaching the caller.
    (sd > 0.0).then(|| (w_plus - mean) / sd)
}

#[cfg(test)]
mod tests {
    use super::WilcoxonMethod::{Exact, Normal};
    use super::ZeroMethod::{Pratt, Wilcox};
    use super::*;
    use crate::stats::rng::Rng;

    struct Expected {
        n: usize,
        statistic: f64,
        w_plus: f64,
        p: f64,
        method: WilcoxonMethod,
        /// scipy reports `−|z|`; we compare magnitudes.
        z_abs: Option<f64>,
    }

    #[track_caller]
    fn check(diffs: &[f64], zero_method: ZeroMethod, e: Expected) {
        let r = wilcoxon_signed_rank(diffs, zero_method);
        let ctx = format!("{zero_method:?} {diffs:?} -> {r:?}");
        assert_eq!(r.n, e.n, "n: {ctx}");
        assert_eq!(r.method, e.method, "method: {ctx}");
        assert_eq!(r.statistic, e.statistic, "statistic: {ctx}");
        assert_eq!(r.w_plus, e.w_plus, "w_plus: {ctx}");
        // Exact p-values are ratios of integer counts: only rounding separates us from scipy.
        // The normal approximation goes through erfc, whose implementations differ slightly.
        let tol = match e.method {
            Exact => 1e-9,
            Normal => 1e-6,
        };
        assert!(
            (r.p_value - e.p).abs() <= tol * e.p,
            "p: {ctx}, scipy {}",
            e.p
        );
        match (r.z, e.z_abs) {
            (Some(z), Some(want)) => assert!((z.abs() - want).abs() <= 1e-9 * want, "z: {ctx}"),
            (z, want) => assert_eq!(z, want, "z: {ctx}"),
        }
    }

    /// Python: zigzag = lambda n: [0.5*i*(-1 if i % 3 == 0 else 1) for i in range(1, n+1)]
    fn zigzag(n: usize) -> Vec<f64> {
        (1..=n)
            .map(|i| 0.5 * i as f64 * if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect()
    }

    #[test]
    fn matches_scipy_auto() {
        // scipy 1.17.1. Each reference is the call shown; W+ comes from the same call with
        // alternative="greater" (scipy then reports W+ as the statistic), and |z| from
        // method="asymptotic" where our method is the normal approximation.
        // exact, small n
        // scipy.stats.wilcoxon([1.5, -0.5, 2.25, 3.0, -1.0, 4.5, 0.75, 2.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=4.0, pvalue=0.0546875; alternative="greater" -> statistic (W+)=32.0
        check(
            &[1.5, -0.5, 2.25, 3.0, -1.0, 4.5, 0.75, 2.0],
            Wilcox,
            Expected {
                n: 8,
                statistic: 4.0,
                w_plus: 32.0,
                p: 0.0546875,
                method: Exact,
                z_abs: None,
            },
        );
        // exact, all negative
        // scipy.stats.wilcoxon([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=0.0, pvalue=0.03125; alternative="greater" -> statistic (W+)=0.0
        check(
            &[-1.0, -2.0, -3.0, -4.0, -5.0, -6.0],
            Wilcox,
            Expected {
                n: 6,
                statistic: 0.0,
                w_plus: 0.0,
                p: 0.03125,
                method: Exact,
                z_abs: None,
            },
        );
        // n = 1
        // scipy.stats.wilcoxon([0.3], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=0.0, pvalue=1.0; alternative="greater" -> statistic (W+)=1.0
        check(
            &[0.3],
            Wilcox,
            Expected {
                n: 1,
                statistic: 0.0,
                w_plus: 1.0,
                p: 1.0,
                method: Exact,
                z_abs: None,
            },
        );
        // n = 50: exact
        // scipy.stats.wilcoxon(zigzag(50), zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=408.0, pvalue=0.02616696817119646; alternative="greater" -> statistic (W+)=867.0
        check(
            &zigzag(50),
            Wilcox,
            Expected {
                n: 50,
                statistic: 408.0,
                w_plus: 867.0,
                p: 0.02616696817119646,
                method: Exact,
                z_abs: None,
            },
        );
        // n = 51: normal
        // scipy.stats.wilcoxon(zigzag(51), zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=459.0, pvalue=0.055852182035584695; alternative="greater" -> statistic (W+)=867.0
        //   method="asymptotic" -> zstatistic=-1.9121872410435017
        check(
            &zigzag(51),
            Wilcox,
            Expected {
                n: 51,
                statistic: 459.0,
                w_plus: 867.0,
                p: 0.055852182035584695,
                method: Normal,
                z_abs: Some(1.9121872410435017),
            },
        );
        // 50 non-zero + 1 zero: 51 values, normal
        // scipy.stats.wilcoxon(zigzag(50) + [0.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=408.0, pvalue=0.026730738547392646; alternative="greater" -> statistic (W+)=867.0
        //   method="asymptotic" -> zstatistic=-2.215427455792942
        check(
            &[zigzag(50), vec![0.0]].concat(),
            Wilcox,
            Expected {
                n: 50,
                statistic: 408.0,
                w_plus: 867.0,
                p: 0.026730738547392646,
                method: Normal,
                z_abs: Some(2.215427455792942),
            },
        );
        // n = 60 untied: normal
        // scipy.stats.wilcoxon(zigzag(60), zero_method="pratt", correction=False, method="auto")
        //   -> statistic=630.0, pvalue=0.03590012321587811; alternative="greater" -> statistic (W+)=1200.0
        //   method="asymptotic" -> zstatistic=-2.0980568554635552
        check(
            &zigzag(60),
            Pratt,
            Expected {
                n: 60,
                statistic: 630.0,
                w_plus: 1200.0,
                p: 0.03590012321587811,
                method: Normal,
                z_abs: Some(2.0980568554635552),
            },
        );
        // ties, 8 values: exact conditional
        // scipy.stats.wilcoxon([1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=3.5, pvalue=0.046875; alternative="greater" -> statistic (W+)=32.5
        check(
            &[1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0],
            Wilcox,
            Expected {
                n: 8,
                statistic: 3.5,
                w_plus: 32.5,
                p: 0.046875,
                method: Exact,
                z_abs: None,
            },
        );
        // ties, 13 values: exact conditional
        // scipy.stats.wilcoxon([1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0, 11.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=12.5, pvalue=0.01806640625; alternative="greater" -> statistic (W+)=78.5
        check(
            &[
                1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0, 11.0,
            ],
            Wilcox,
            Expected {
                n: 13,
                statistic: 12.5,
                w_plus: 78.5,
                p: 0.01806640625,
                method: Exact,
                z_abs: None,
            },
        );
        // ties, 14 values: normal
        // scipy.stats.wilcoxon([1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0, 11.0, 12.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=12.5, pvalue=0.011994803418993165; alternative="greater" -> statistic (W+)=92.5
        //   method="asymptotic" -> zstatistic=-2.5122971720853107
        check(
            &[
                1.0, 1.0, 2.0, -2.0, 3.0, 4.0, 5.0, 6.0, -7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
            ],
            Wilcox,
            Expected {
                n: 14,
                statistic: 12.5,
                w_plus: 92.5,
                p: 0.011994803418993165,
                method: Normal,
                z_abs: Some(2.5122971720853107),
            },
        );
        // ties, 20 values: normal
        // scipy.stats.wilcoxon([1.0, 1.0, 2.0, -2.0, 3.0, 3.0, 3.0, -4.0, 5.0, 6.0, 6.0, 7.0, -8.0, 9.0, 9.0, 10.0, 11.0, -11.0, 12.0, 13.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=42.0, pvalue=0.018582394893487342; alternative="greater" -> statistic (W+)=168.0
        //   method="asymptotic" -> zstatistic=-2.3538042285917453
        check(
            &[
                1.0, 1.0, 2.0, -2.0, 3.0, 3.0, 3.0, -4.0, 5.0, 6.0, 6.0, 7.0, -8.0, 9.0, 9.0, 10.0,
                11.0, -11.0, 12.0, 13.0,
            ],
            Wilcox,
            Expected {
                n: 20,
                statistic: 42.0,
                w_plus: 168.0,
                p: 0.018582394893487342,
                method: Normal,
                z_abs: Some(2.3538042285917453),
            },
        );
        // zeros dropped, 7 values: exact conditional
        // scipy.stats.wilcoxon([0.0, 0.0, 1.0, 2.0, -3.0, 4.0, 5.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=3.0, pvalue=0.3125; alternative="greater" -> statistic (W+)=12.0
        check(
            &[0.0, 0.0, 1.0, 2.0, -3.0, 4.0, 5.0],
            Wilcox,
            Expected {
                n: 5,
                statistic: 3.0,
                w_plus: 12.0,
                p: 0.3125,
                method: Exact,
                z_abs: None,
            },
        );
        // zeros ranked (Pratt), 7 values: exact conditional
        // scipy.stats.wilcoxon([0.0, 0.0, 1.0, 2.0, -3.0, 4.0, 5.0], zero_method="pratt", correction=False, method="auto")
        //   -> statistic=5.0, pvalue=0.25; alternative="greater" -> statistic (W+)=20.0
        check(
            &[0.0, 0.0, 1.0, 2.0, -3.0, 4.0, 5.0],
            Pratt,
            Expected {
                n: 5,
                statistic: 5.0,
                w_plus: 20.0,
                p: 0.25,
                method: Exact,
                z_abs: None,
            },
        );
        // zeros and ties, 13 values, Wilcox
        // scipy.stats.wilcoxon([0.0, 1.0, 1.0, -1.0, 2.0, 2.5, -3.0, 4.0, 0.0, 5.0, 6.0, 6.0, -7.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=19.0, pvalue=0.2333984375; alternative="greater" -> statistic (W+)=47.0
        check(
            &[
                0.0, 1.0, 1.0, -1.0, 2.0, 2.5, -3.0, 4.0, 0.0, 5.0, 6.0, 6.0, -7.0,
            ],
            Wilcox,
            Expected {
                n: 11,
                statistic: 19.0,
                w_plus: 47.0,
                p: 0.2333984375,
                method: Exact,
                z_abs: None,
            },
        );
        // zeros and ties, 13 values, Pratt
        // scipy.stats.wilcoxon([0.0, 1.0, 1.0, -1.0, 2.0, 2.5, -3.0, 4.0, 0.0, 5.0, 6.0, 6.0, -7.0], zero_method="pratt", correction=False, method="auto")
        //   -> statistic=25.0, pvalue=0.1962890625; alternative="greater" -> statistic (W+)=63.0
        check(
            &[
                0.0, 1.0, 1.0, -1.0, 2.0, 2.5, -3.0, 4.0, 0.0, 5.0, 6.0, 6.0, -7.0,
            ],
            Pratt,
            Expected {
                n: 11,
                statistic: 25.0,
                w_plus: 63.0,
                p: 0.1962890625,
                method: Exact,
                z_abs: None,
            },
        );
        // zeros, 20 values, Wilcox: normal
        // scipy.stats.wilcoxon([0.0, 0.0, 0.0, 1.5, -2.0, 3.0, 4.5, 5.0, -6.0, 7.0, 8.0, 9.5, 10.0, -11.0, 12.0, 13.0, 14.0, 15.0, 16.0, -17.0], zero_method="wilcox", correction=False, method="auto")
        //   -> statistic=36.0, pvalue=0.05521337554271477; alternative="greater" -> statistic (W+)=117.0
        //   method="asymptotic" -> zstatistic=-1.917193326741161
        check(
            &[
                0.0, 0.0, 0.0, 1.5, -2.0, 3.0, 4.5, 5.0, -6.0, 7.0, 8.0, 9.5, 10.0, -11.0, 12.0,
                13.0, 14.0, 15.0, 16.0, -17.0,
            ],
            Wilcox,
            Expected {
                n: 17,
                statistic: 36.0,
                w_plus: 117.0,
                p: 0.05521337554271477,
                method: Normal,
                z_abs: Some(1.917193326741161),
            },
        );
        // zeros, 20 values, Pratt: normal with zero correction
        // scipy.stats.wilcoxon([0.0, 0.0, 0.0, 1.5, -2.0, 3.0, 4.5, 5.0, -6.0, 7.0, 8.0, 9.5, 10.0, -11.0, 12.0, 13.0, 14.0, 15.0, 16.0, -17.0], zero_method="pratt", correction=False, method="auto")
        //   -> statistic=48.0, pvalue=0.043290199803787975; alternative="greater" -> statistic (W+)=156.0
        //   method="asymptotic" -> zstatistic=-2.0208992091258233
        check(
            &[
                0.0, 0.0, 0.0, 1.5, -2.0, 3.0, 4.5, 5.0, -6.0, 7.0, 8.0, 9.5, 10.0, -11.0, 12.0,
                13.0, 14.0, 15.0, 16.0, -17.0,
            ],
            Pratt,
            Expected {
                n: 17,
                statistic: 48.0,
                w_plus: 156.0,
                p: 0.043290199803787975,
                method: Normal,
                z_abs: Some(2.0208992091258233),
            },
        );
        // zeros and ties, 30 values, Pratt
        // scipy.stats.wilcoxon([0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 2.0, 2.0, -3.0, 3.0, 4.0, 5.0, 5.0, 6.0, -6.0, 7.0, 8.0, 9.0, 9.0, 10.0, 0.0, -11.0, 12.0, 12.0, 13.0, 14.0, 15.0, -16.0, 17.0, 18.0], zero_method="pratt", correction=False, method="auto")
        //   -> statistic=81.5, pvalue=0.0023062920952292296; alternative="greater" -> statistic (W+)=377.5
        //   method="asymptotic" -> zstatistic=-3.0476619564556175
        check(
            &[
                0.0, 0.0, 1.0, 1.0, 1.0, -1.0, 2.0, 2.0, -3.0, 3.0, 4.0, 5.0, 5.0, 6.0, -6.0, 7.0,
                8.0, 9.0, 9.0, 10.0, 0.0, -11.0, 12.0, 12.0, 13.0, 14.0, 15.0, -16.0, 17.0, 18.0,
            ],
            Pratt,
            Expected {
                n: 27,
                statistic: 81.5,
                w_plus: 377.5,
                p: 0.0023062920952292296,
                method: Normal,
                z_abs: Some(3.0476619564556175),
            },
        );
    }

    #[test]
    fn no_evidence_gives_p_one() {
        let none = || Expected {
            n: 0,
            statistic: 0.0,
            w_plus: 0.0,
            p: 1.0,
            method: Exact,
            z_abs: None,
        };
        // scipy.stats.wilcoxon([0.0, 0.0, 0.0], zero_method=zm, correction=False,
        // method="auto") -> statistic=0.0, pvalue=1.0 for zm in ("wilcox", "pratt")
        check(&[0.0, 0.0, 0.0], Wilcox, none());
        check(&[0.0, 0.0, 0.0], Pratt, none());
        // scipy returns NaN for empty input; we define p = 1 (no evidence of a change).
        check(&[], Wilcox, none());
        check(&[f64::NAN, f64::INFINITY], Pratt, none());
    }

    #[test]
    fn non_finite_differences_are_omitted() {
        // scipy.stats.wilcoxon([nan, 1.5, -0.5, 2.25, 3.0, -1.0, 4.5, 0.75, 2.0, nan],
        //   correction=False, method="auto", nan_policy="omit") -> statistic=4.0, pvalue=0.0546875
        let d = [
            f64::NAN,
            1.5,
            -0.5,
            2.25,
            3.0,
            -1.0,
            4.5,
            0.75,
            2.0,
            f64::NEG_INFINITY,
        ];
        let e = Expected {
            n: 8,
            statistic: 4.0,
            w_plus: 32.0,
            p: 0.0546875,
            method: Exact,
            z_abs: None,
        };
        check(&d, Wilcox, e);
    }

    #[test]
    fn rounding_noise_counts_as_ties_and_zeros() {
        // candidate − baseline in floating point: 0.3 − 0.1 = 0.19999999999999998,
        // 0.4 − 0.6 = -0.19999999999999996, ... scipy ranks that noise (statistic=1.5,
        // pvalue=0.09375 on the raw differences); we treat the differences as the decimals
        // they are, so the reference is scipy on the intended values:
        // scipy.stats.wilcoxon([0.2, 0.2, -0.2, 0.2, 0.0, 0.7, 0.2], zero_method=zm,
        //   correction=False, method="auto")
        //   "wilcox" -> statistic=3.0, pvalue=0.1875, W+=18.0
        //   "pratt"  -> statistic=4.0, pvalue=0.1875, W+=23.0
        let candidate = [0.3, 0.7, 0.4, 0.9, 0.2, 1.1, 0.35];
        let baseline = [0.1, 0.5, 0.6, 0.7, 0.2, 0.4, 0.15];
        let d: Vec<f64> = candidate
            .iter()
            .zip(&baseline)
            .map(|(c, b)| c - b)
            .collect();
        let e = |statistic, w_plus| Expected {
            n: 6,
            statistic,
            w_plus,
            p: 0.1875,
            method: Exact,
            z_abs: None,
        };
        check(&d, Wilcox, e(3.0, 18.0));
        check(&d, Pratt, e(4.0, 23.0));
    }

    /// Random differences on a coarse dyadic grid: many ties and zeros, and every shift or
    /// power-of-two scaling below is exact in floating point.
    fn random_diffs(rng: &mut Rng) -> Vec<f64> {
        let n = rng.below(70);
        (0..n)
            .map(|_| (rng.below(41) as f64 - 20.0) / 8.0)
            .collect()
    }

    #[test]
    fn invariances_hold_on_random_inputs() {
        let mut rng = Rng::new(2024);
        for _ in 0..500 {
            let d = random_diffs(&mut rng);
            for zm in [Wilcox, Pratt] {
                let r = wilcoxon_signed_rank(&d, zm);
                assert!((0.0..=1.0).contains(&r.p_value), "{d:?} {r:?}");

                // Swapping the arms negates every difference: W+ and W− trade places.
                let neg: Vec<f64> = d.iter().map(|x| -x).collect();
                let rn = wilcoxon_signed_rank(&neg, zm);
                assert_eq!(rn.p_value, r.p_value, "{d:?}");
                assert_eq!(rn.statistic, r.statistic, "{d:?}");
                assert_eq!(rn.z, r.z.map(|z| -z), "{d:?}");

                // Adding a constant to both arms leaves the result unchanged: rebuild arms
                // around a random baseline, shift both, and difference them again.
                let k = (rng.below(400) as f64 - 200.0) / 4.0;
                let shifted: Vec<f64> = d
                    .iter()
                    .map(|x| {
                        let baseline = rng.below(100) as f64 / 8.0;
                        (baseline + x + k) - (baseline + k)
                    })
                    .collect();
                assert_eq!(wilcoxon_signed_rank(&shifted, zm), r, "{d:?} shift {k}");

                // The test is scale-free, tolerance included.
                let scaled: Vec<f64> = d.iter().map(|x| x * 1024.0).collect();
                assert_eq!(
                    wilcoxon_signed_rank(&scaled, zm).p_value,
                    r.p_value,
                    "{d:?}"
                );
            }
        }
    }
}
