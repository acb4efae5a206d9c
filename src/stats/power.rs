//! Minimum detectable effect and sample-size planning, so an underpowered suite shows up in the
//! report.
//!
//! The closed forms ([`cases_needed`], [`cases_needed_mcnemar`]) are normal approximations. The
//! gate does not run the tests they describe: binary metrics go through the exact McNemar test
//! and continuous ones through the signed-rank test, so [`cases_needed_mcnemar_exact`] and
//! [`cases_needed_signed_rank`] plan for those.

use std::f64::consts::PI;

use statrs::distribution::{Binomial, ContinuousCDF, Discrete, DiscreteCDF, Normal};

use super::mcnemar::mcnemar_exact;

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
    let multiplier = -z.inverse_cdf(alpha / 2.0) + z.inverse_cdf(power);
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
    Some(saturating_cases((unit / effect).powi(2)))
}

/// Cases the two-sided Wilcoxon signed-rank test at level `alpha` needs to detect a true shift of
/// `effect` with probability `power`: the normal-approximation n of [`cases_needed`] divided by
/// the signed-rank test's Pitman asymptotic relative efficiency to the t-test under normal
/// differences, 3/π ≈ 0.955 (Lehmann, *Nonparametrics*, 1975, §4.2), rounded up.
///
/// The gate's p-value for continuous and per-case-mean metrics is the signed-rank test, which
/// under normal differences needs π/3 ≈ 1.047 times the cases of the t-test for the same power;
/// planning with [`cases_needed`] alone leaves it about 5% short. The ARE is a large-sample rule
/// and the standard one for planning; for heavy-tailed differences the signed-rank test is more
/// efficient than the t-test (ARE ≥ 0.864 for any symmetric distribution, often above 1), so this
/// errs on the side of more cases only under normality.
///
/// `None` on the same inputs as [`cases_needed`]. Zero spread needs a single case.
pub fn cases_needed_signed_rank(sd_diff: f64, effect: f64, alpha: f64, power: f64) -> Option<usize> {
    if !(effect > 0.0 && effect.is_finite()) {
        return None;
    }
    let unit = mde_paired(sd_diff, 1, alpha, power)?;
    // Divide the unrounded n, so the plan is rounded once.
    Some(saturating_cases((unit / effect).powi(2) / (3.0 / PI)))
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
    let root = -z.inverse_cdf(alpha / 2.0) * discordance.sqrt()
        + z.inverse_cdf(power) * (discordance - effect * effect).max(0.0).sqrt();
    Some(saturating_cases((root / effect).powi(2)))
}

/// Probability that the two-sided exact McNemar test of [`mcnemar_exact`] at level `alpha`
/// flags a drop (p < `alpha` with b > c) on `n` paired cases, when each case independently is a
/// baseline-pass/candidate-fail pair (counted in b) with probability `p_bad` and the reverse
/// (counted in c) with probability `p_good`.
///
/// This is the unconditional power: the number of discordant pairs D is itself random,
/// D ~ Bin(n, ψ) with ψ = `p_bad + p_good`, and given D = d the bad pairs are
/// B ~ Bin(d, `p_bad`/ψ), so power = Σ_d P(D = d) · P(B ≥ b_crit(d) | d), where b_crit(d) is the
/// smallest b with `mcnemar_exact(b, d − b) < alpha` and b > d − b (the p-value falls as b
/// grows past d/2, so the rejection region is b ≥ b_crit). The critical values come from
/// [`mcnemar_exact`] itself, so this is the power of the test the gate runs, rounding included.
///
/// Only the discordant counts d with P(D = d) ≥ 1e-22 are summed (they form one run around the
/// mode); the mass left out is below `(n + 1) · 1e-22`. The critical value moves by at most one
/// from d to d + 1, so each d costs a few incomplete-beta evaluations and a power takes
/// O(√(n·ψ(1 − ψ))) of them rather than O(n²) pmf terms.
///
/// Zero when `n == 0`. `None` when `p_bad` or `p_good` lies outside [0, 1], their sum exceeds 1
/// (by more than rounding), or `alpha` lies outside (0, 1).
pub fn mcnemar_exact_power(n: usize, p_bad: f64, p_good: f64, alpha: f64) -> Option<f64> {
    let unit = |x: f64| (0.0..=1.0).contains(&x);
    // (ψ + δ)/2 + (ψ − δ)/2 may round a hair above ψ = 1.
    let defined = unit(p_bad) && unit(p_good) && p_bad + p_good <= 1.0 + 1e-12;
    if !(defined && alpha > 0.0 && alpha < 1.0) {
        return None;
    }
    let psi = (p_bad + p_good).min(1.0);
    if n == 0 || psi == 0.0 {
        return Some(0.0);
    }
    let n = n as u64;
    let discordant = Binomial::new(psi, n).ok()?;
    // Share of the discordant pairs that go the good way; the tail below is P(C ≤ k) for the
    // good-way count C = d − B, which is P(B ≥ d − k).
    let good_share = (p_good / psi).clamp(0.0, 1.0);

    let (first, last) = bulk(&discordant, n);
    let mut k = largest_rejected_c(first, alpha);
    let mut power = 0.0;
    for d in first..=last {
        if d > first {
            // k(d) ∈ {k(d − 1), k(d − 1) + 1}: one more discordant pair can only move the
            // smaller count's critical value up by one.
            while next_rejects(d, k, alpha) {
                k = Some(k.map_or(0, |k| k + 1));
            }
        }
        let Some(k) = k else { continue };
        let given_d = Binomial::new(good_share, d).ok()?;
        power += discordant.pmf(d) * given_d.cdf(k);
    }
    Some(power.clamp(0.0, 1.0))
}

/// Cases the exact McNemar test at two-sided level `alpha` needs to flag a drop `effect` = δ
/// with probability at least `power`, when `discordance` = ψ of the cases are discordant under
/// the drop: the per-case probabilities are p_bad = (ψ + δ)/2 and p_good = (ψ − δ)/2, and the
/// power is [`mcnemar_exact_power`].
///
/// The exact test's power is saw-toothed in n (Chernick & Liu 2002, *The American
/// Statistician* 56(2), 149–155): one case more can lose power when the critical value steps.
/// Mixing over the random number of discordant pairs smooths most of it out, but not all (at
/// ψ near 1 and small n the dips remain), so the answer is the smallest n whose power is at
/// least `power` there **and at each of the next w sample sizes**, w = clamp(⌈n/50⌉, 20, 200):
/// adding up to 2% more cases (at least 20) never drops the suite below the target. The cap
/// bounds the work; past a few thousand cases the dips are far narrower than 200.
///
/// The search starts at Connor's closed form [`cases_needed_mcnemar`] (which the exact test
/// usually needs a few percent more than), brackets the target by doubling steps up or down,
/// bisects to a crossing and scans upward from it for the first run of w + 1 sizes above the
/// target. A qualifying run below the crossing would need the power to fall back under the
/// target after w consecutive sizes above it, which the smoothed unconditional power has not
/// done in any case checked against the scipy loop in the tests.
///
/// `None` on the same inputs as [`cases_needed_mcnemar`], and when the plan would exceed
/// [`MAX_EXACT_CASES`] (the exact search is then too slow, and the closed form is close).
pub fn cases_needed_mcnemar_exact(discordance: f64, effect: f64, alpha: f64, power: f64) -> Option<usize> {
    let connor = cases_needed_mcnemar(discordance, effect, alpha, power)?;
    if connor > MAX_EXACT_CASES {
        return None;
    }
    let p_bad = (discordance + effect) / 2.0;
    let p_good = ((discordance - effect) / 2.0).max(0.0);
    let reaches = |n: usize| mcnemar_exact_power(n, p_bad, p_good, alpha).map(|p| p >= power);

    // Bracket: `below` falls short of the target, `above` reaches it. n = 0 has power 0.
    let mut step = (connor / 32).max(1);
    let (below, above) = if reaches(connor)? {
        let mut above = connor;
        loop {
            let n = above.saturating_sub(step);
            if !reaches(n)? {
                break (n, above);
            }
            above = n;
            step *= 2;
        }
    } else {
        let mut below = connor;
        loop {
            let n = below + step;
            if n > MAX_EXACT_CASES {
                return None;
            }
            if reaches(n)? {
                break (below, n);
            }
            below = n;
            step *= 2;
        }
    };
    let above = first_reaching(below, above, reaches)?;

    // `above` is a crossing; find the first run that holds for the whole window.
    let mut start = above;
    let mut n = above;
    while n < start + window(start) {
        n += 1;
        if !reaches(n)? {
            // A dip: the run restarts at the next size that reaches the target.
            n += 1;
            while !reaches(n)? && n <= MAX_EXACT_CASES {
                n += 1;
            }
            start = n;
        }
        if n > MAX_EXACT_CASES {
            return None;
        }
    }
    Some(start)
}

/// Power of the two-sided paired t-test at level `alpha` with `n` units, when the true mean
/// difference is `effect` and the per-unit differences have standard deviation `sd`:
/// `P(T > t_c) + P(T < −t_c)` with `T` noncentral t (df n − 1, noncentrality `effect·√n/sd`),
/// as `statsmodels.stats.power.TTestPower().power`. `None` for n < 2, a non-positive `sd`, or
/// `alpha` outside (0, 1).
pub fn paired_t_power(effect: f64, sd: f64, n: usize, alpha: f64) -> Option<f64> {
    use statrs::distribution::StudentsT;
    let usable = n >= 2 && sd > 0.0 && sd.is_finite() && effect.is_finite() && alpha > 0.0 && alpha < 1.0;
    if !usable {
        return None;
    }
    let df = (n - 1) as f64;
    let critical = StudentsT::new(0.0, 1.0, df).ok()?.inverse_cdf(1.0 - alpha / 2.0);
    let noncentrality = effect * (n as f64).sqrt() / sd;
    let upper = 1.0 - super::nct::noncentral_t_cdf(critical, df, noncentrality)?;
    let lower = super::nct::noncentral_t_cdf(-critical, df, noncentrality)?;
    Some((upper + lower).clamp(0.0, 1.0))
}

/// Units the two-sided paired t-test at `alpha` needs to detect `effect` with probability
/// `power`: the smallest n (≥ 2) with [`paired_t_power`] ≥ `power` (statsmodels'
/// `TTestPower().solve_power(effect_size=effect/sd, alpha=alpha, power=power)`, rounded up).
/// Zero spread needs two units (the fewest a t-test has); `None` on unusable input.
pub fn cases_needed_t(sd: f64, effect: f64, alpha: f64, power: f64) -> Option<usize> {
    let usable = effect > 0.0 && effect.is_finite() && power > 0.0 && power < 1.0 && sd >= 0.0;
    if !usable {
        return None;
    }
    if sd == 0.0 {
        return Some(2);
    }
    // Power rises with n, so the answer is the first n that reaches it: bracketed from the
    // normal approximation (never more than the t-test needs) by doubling, then bisected. A
    // walk one case at a time from there took minutes near a million cases (a spread of
    // timeouts against a small margin), each step a Student-t inverse at a huge df.
    let start = cases_needed(sd, effect, alpha, power)?.max(2);
    if start >= MAX_EXACT_CASES {
        return Some(start);
    }
    let reaches = |n: usize| paired_t_power(effect, sd, n, alpha).map(|p| p >= power);
    // `below` falls short (1: never evaluated, the t-test needs two), `above` reaches it.
    let (mut below, mut above) = (1, start);
    while !reaches(above)? {
        if above >= MAX_EXACT_CASES {
            return Some(MAX_EXACT_CASES);
        }
        below = above;
        above = (above * 2).min(MAX_EXACT_CASES);
    }
    first_reaching(below, above, reaches)
}

/// The first size in `(below, above]` that `reaches` a target, by bisection: `below` falls
/// short, `above` reaches it, and reaching is monotone in between.
fn first_reaching(mut below: usize, mut above: usize, reaches: impl Fn(usize) -> Option<bool>) -> Option<usize> {
    while above - below > 1 {
        let mid = below + (above - below) / 2;
        if reaches(mid)? {
            above = mid;
        } else {
            below = mid;
        }
    }
    Some(above)
}

/// The smallest true mean difference the two-sided paired t-test at `alpha` with `n` units
/// detects with probability `power`: the inverse of [`paired_t_power`] in the effect (as
/// the root of `TTestPower().power(effect_size=e/sd, nobs=n, alpha=alpha) = power`). `None` for
/// n < 2.
pub fn mde_t(sd: f64, n: usize, alpha: f64, power: f64) -> Option<f64> {
    if n < 2 || !(sd >= 0.0 && sd.is_finite()) || !(power > 0.0 && power < 1.0) {
        return None;
    }
    if sd == 0.0 {
        return Some(0.0);
    }
    // Bisection in the effect, from the normal approximation (a lower bound) up.
    let mut lo = mde_paired(sd, n, alpha, power)?;
    let mut hi = 2.0 * lo;
    while paired_t_power(hi, sd, n, alpha)? < power {
        hi *= 2.0;
        if !hi.is_finite() {
            return None;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if paired_t_power(mid, sd, n, alpha)? >= power {
            hi = mid;
        } else {
            lo = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    Some(hi)
}

/// Largest plan [`cases_needed_mcnemar_exact`] searches for.
pub const MAX_EXACT_CASES: usize = 1_000_000;

/// How many sizes past a candidate n the power must stay above target: 2% of n, at least 20 so
/// small plans span several teeth, at most 200 to bound the work.
fn window(n: usize) -> usize {
    n.div_ceil(50).clamp(20, 200)
}

/// `⌈n⌉`, at least 1, saturating far beyond any suite anyone will run rather than wrapping.
fn saturating_cases(n: f64) -> usize {
    let n = n.ceil();
    if n >= 1e15 {
        1_000_000_000_000_000
    } else {
        (n as usize).max(1)
    }
}

/// The run of discordant counts d around the mode with P(D = d) ≥ 1e-22 (the pmf is unimodal,
/// so it is one run).
fn bulk(discordant: &Binomial, n: u64) -> (u64, u64) {
    const NEGLIGIBLE: f64 = 1e-22;
    let mode = ((n + 1) as f64 * discordant.p()).floor().min(n as f64) as u64;
    let mut first = mode;
    while first > 0 && discordant.pmf(first - 1) >= NEGLIGIBLE {
        first -= 1;
    }
    let mut last = mode;
    while last < n && discordant.pmf(last + 1) >= NEGLIGIBLE {
        last += 1;
    }
    (first, last)
}

/// Whether d discordant pairs split as (d − c, c) with c = k + 1 (or c = 0 when `k` is `None`)
/// still reject in the bad direction.
fn next_rejects(d: u64, k: Option<u64>, alpha: f64) -> bool {
    let c = k.map_or(0, |k| k + 1);
    2 * c < d && mcnemar_exact(d - c, c) < alpha
}

/// The largest good-way count c < d/2 at which `mcnemar_exact(d − c, c) < alpha`, or `None`
/// when no split of d discordant pairs rejects. The p-value rises with c, so bisect.
fn largest_rejected_c(d: u64, alpha: f64) -> Option<u64> {
    if !next_rejects(d, None, alpha) {
        return None;
    }
    // Invariant: c = lo rejects, c = hi does not (hi = ⌈d/2⌉ has b ≤ c).
    let (mut lo, mut hi) = (0, d.div_ceil(2));
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if mcnemar_exact(d - mid, mid) < alpha {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
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

    /// Independent exact power in Python (scipy 1.17.1), summing over every (d, b):
    ///
    /// ```python
    /// def rejecting_bs(d, alpha):
    ///     return [b for b in range(d + 1) if b > d - b and binomtest(b, d, 0.5).pvalue < alpha]
    /// def power(n, pb, pg, alpha):
    ///     psi = pb + pg
    ///     return sum(binom.pmf(d, n, psi) * sum(binom.pmf(b, d, pb / psi) for b in rejecting_bs(d, alpha))
    ///                for d in range(n + 1))
    /// ```
    ///
    /// For n in the thousands `power_vec` replaces `binomtest` by the same p-value vectorised
    /// over b: `numpy.minimum(1, 2 * binom.cdf(numpy.minimum(b, d - b), d, 0.5))`.
    #[track_caller]
    fn check_power(n: usize, p_bad: f64, p_good: f64, alpha: f64, expected: f64) {
        let actual = mcnemar_exact_power(n, p_bad, p_good, alpha).unwrap();
        assert!(
            (actual - expected).abs() <= 1e-9 * expected,
            "mcnemar_exact_power({n}, {p_bad}, {p_good}, {alpha}) = {actual:e}, reference {expected:e}"
        );
    }

    #[test]
    fn mcnemar_exact_power_matches_scipy() {
        // power(100, .15, .05, .05) -> 0.544441256903927
        check_power(100, 0.15, 0.05, 0.05, 0.544_441_256_903_927);
        // power(384, .14, .06, .05) -> 0.9343067083353619
        check_power(384, 0.14, 0.06, 0.05, 0.934_306_708_335_361_9);
        // power(50, .3, .1, .01) -> 0.28748545806059045
        check_power(50, 0.3, 0.1, 0.01, 0.287_485_458_060_590_45);
        // The good direction is not a rejection: power(200, .05, .15, .05) -> 3.4973321391997085e-08
        check_power(200, 0.05, 0.15, 0.05, 3.497_332_139_199_708_5e-8);
        // Every discordant pair bad (ψ = δ): power(300, .05, 0.0, .05) -> 0.9976678613498983
        check_power(300, 0.05, 0.0, 0.05, 0.997_667_861_349_898_3);
        // Every case discordant, no drop: power(10, .5, .5, .05) -> 0.010742187500000002
        // (= P(B ≥ 9), B ~ Bin(10, 1/2): the exact test's one-sided size)
        check_power(10, 0.5, 0.5, 0.05, 0.010_742_187_500_000_002);
        // power_vec(2000, .3, .2, .01) -> 0.9999148844519724
        check_power(2000, 0.3, 0.2, 0.01, 0.999_914_884_451_972_4);
        // power_vec(20000, .26, .24, .05) -> 0.9788740123504484
        check_power(20000, 0.26, 0.24, 0.05, 0.978_874_012_350_448_4);
        // power_vec(20000, .255, .245, .05) -> 0.512002205851288
        check_power(20000, 0.255, 0.245, 0.05, 0.512_002_205_851_288);
        // power_vec(12000, .001, .0005, .05) -> 0.21930028764145723
        check_power(12000, 0.001, 0.0005, 0.05, 0.219_300_287_641_457_23);
    }

    #[test]
    fn mcnemar_exact_power_edges() {
        // No cases, no discordant pairs, or too few to ever reach p < alpha: no power.
        assert_eq!(mcnemar_exact_power(0, 0.2, 0.1, 0.05), Some(0.0));
        assert_eq!(mcnemar_exact_power(100, 0.0, 0.0, 0.05), Some(0.0));
        // Five bad pairs out of five give p = 0.0625, six give 0.03125.
        assert_eq!(mcnemar_exact_power(5, 1.0, 0.0, 0.05), Some(0.0));
        assert_eq!(mcnemar_exact_power(6, 1.0, 0.0, 0.05), Some(1.0));
        // Invalid probabilities or level.
        for (p_bad, p_good, alpha) in [
            (-0.1, 0.1, 0.05),
            (0.1, 1.1, 0.05),
            (0.6, 0.5, 0.05),
            (f64::NAN, 0.1, 0.05),
            (0.1, 0.1, 0.0),
            (0.1, 0.1, 1.0),
            (0.1, 0.1, f64::NAN),
        ] {
            assert_eq!(
                mcnemar_exact_power(100, p_bad, p_good, alpha),
                None,
                "({p_bad}, {p_good}, {alpha})"
            );
        }
        // Rounding in (ψ + δ)/2 + (ψ − δ)/2 at ψ = 1 is not an error.
        assert!(mcnemar_exact_power(100, (1.0 + 0.3) / 2.0, (1.0 - 0.3) / 2.0, 0.05).is_some());
    }

    #[test]
    fn cases_needed_mcnemar_exact_matches_scipy_loop() {
        // With power() above, for (psi, delta, alpha, target), pb = (psi + delta)/2,
        // pg = (psi - delta)/2 and w(n) = min(max(ceil(n / 50), 20), 200):
        // first = next(n for n in count(1) if power(n, pb, pg, alpha) >= target)
        // robust = next(n for n in count(first)
        //               if all(power(m, pb, pg, alpha) >= target for m in range(n, n + w(n) + 1)))
        // (0.3, 0.08, 0.05, 0.8) -> first 387, robust 387 (power 0.8009782212588293; Connor: 366)
        assert_eq!(cases_needed_mcnemar_exact(0.3, 0.08, 0.05, 0.8), Some(387));
        // (0.1, 0.05, 0.05, 0.9) -> first 431, robust 431 (Connor: 417)
        assert_eq!(cases_needed_mcnemar_exact(0.1, 0.05, 0.05, 0.9), Some(431));
        // (0.25, 0.1, 0.01, 0.8) -> first 300, robust 300 (Connor: 290)
        assert_eq!(cases_needed_mcnemar_exact(0.25, 0.1, 0.01, 0.8), Some(300));
        // ψ = δ, every discordant pair bad: (0.1, 0.1, 0.05, 0.8) -> first 78, robust 78 (Connor: 77)
        assert_eq!(cases_needed_mcnemar_exact(0.1, 0.1, 0.05, 0.8), Some(78));
        // The saw-tooth at ψ near 1: power(31) = 0.3408 but power(32) = 0.3395, so a target of
        // 0.34 is first reached at 31 and held from 33; likewise power(18) = 0.21407 but
        // power(19) = 0.19764 for 0.214.
        // (0.95, 0.3, 0.05, 0.34) -> first 31, robust 33 (Connor: 26)
        assert_eq!(cases_needed_mcnemar_exact(0.95, 0.3, 0.05, 0.34), Some(33));
        // (0.95, 0.3, 0.05, 0.214) -> first 18, robust 20 (Connor: 16)
        assert_eq!(cases_needed_mcnemar_exact(0.95, 0.3, 0.05, 0.214), Some(20));
        // The plan reaches the target; Connor's falls short of it.
        let power = |n| mcnemar_exact_power(n, 0.19, 0.11, 0.05).unwrap();
        assert!(power(387) >= 0.8 && power(386) < 0.8 && power(366) < 0.78);
    }

    #[test]
    fn cases_needed_mcnemar_exact_rejects_what_connor_rejects() {
        assert_eq!(cases_needed_mcnemar_exact(0.05, 0.08, 0.05, 0.8), None);
        assert_eq!(cases_needed_mcnemar_exact(0.3, 0.0, 0.05, 0.8), None);
        assert_eq!(cases_needed_mcnemar_exact(f64::NAN, 0.08, 0.05, 0.8), None);
        assert_eq!(cases_needed_mcnemar_exact(0.3, 0.08, 0.0, 0.8), None);
        assert_eq!(cases_needed_mcnemar_exact(0.3, 0.08, 0.05, 1.0), None);
        // Beyond the exact search: Connor (as above) gives 98,110,995 for a 0.02-point drop.
        assert_eq!(cases_needed_mcnemar(0.5, 0.0002, 0.05, 0.8), Some(98_110_995));
        assert_eq!(cases_needed_mcnemar_exact(0.5, 0.0002, 0.05, 0.8), None);
    }

    #[test]
    fn cases_needed_signed_rank_matches_statsmodels() {
        // n = statsmodels.stats.power.normal_sample_size_one_tail(effect, power, alpha/2, std_null=sd)
        // math.ceil(n / (3 / math.pi)) for (sd, effect, alpha, power):
        // (1.0, 0.28, 0.05, 0.8) -> 104.83836272253787 -> 105
        // (0.25, 0.05, 0.05, 0.8) -> 205.48319093617428 -> 206
        // (0.4, 0.02, 0.05, 0.9) -> 4401.33907973091 -> 4402
        // (12.5, 3.0, 0.01, 0.8) -> 212.32963319400358 -> 213
        assert_eq!(cases_needed_signed_rank(1.0, 0.28, 0.05, 0.8), Some(105));
        assert_eq!(cases_needed_signed_rank(0.25, 0.05, 0.05, 0.8), Some(206));
        assert_eq!(cases_needed_signed_rank(0.4, 0.02, 0.05, 0.9), Some(4402));
        assert_eq!(cases_needed_signed_rank(12.5, 3.0, 0.01, 0.8), Some(213));
        assert_eq!(cases_needed_signed_rank(0.0, 0.1, 0.05, 0.8), Some(1));
        assert_eq!(cases_needed_signed_rank(1.0, 0.0, 0.05, 0.8), None);
        assert_eq!(cases_needed_signed_rank(-1.0, 0.1, 0.05, 0.8), None);
        assert_eq!(cases_needed_signed_rank(1.0, 0.1, 0.05, f64::NAN), None);
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

    #[test]
    fn t_power_and_plans_match_statsmodels() {
        // statsmodels.stats.power.TTestPower().power(effect_size=es, nobs=n, alpha=a)
        for (es, n, a, expected) in [
            (0.5, 34, 0.05, 0.807_777_501_279_273_7),
            (0.3, 90, 0.025, 0.713_750_034_263_365_6),
            (0.2, 50, 0.05, 0.283_592_414_667_473_5),
            (1.0, 10, 0.01, 0.504_106_730_701_736_5),
        ] {
            let got = paired_t_power(es, 1.0, n, a).unwrap();
            assert!((got - expected).abs() < 1e-9, "{es} {n} {a}: {got}");
        }
        // numpy.ceil(TTestPower().solve_power(effect_size=eff/sd, alpha=a, power=0.8)):
        // 33.37 -> 34, 2045.28 -> 2046, 281.90 -> 282, 5.69 -> 6, 240.15 -> 241,
        for (sd, effect, a, expected) in [
            (1.0, 0.5, 0.05, 34),
            (0.3227, 0.02, 0.05, 2046),
            (2.0, 0.4, 0.0125, 282),
            (1.0, 1.5, 0.05, 6),
            (0.05, 0.01, 0.025, 241),
        ] {
            assert_eq!(cases_needed_t(sd, effect, a, 0.8), Some(expected), "{sd} {effect} {a}");
        }
        // The plans of a latency spread of timeouts against a small margin, which a walk one
        // case at a time took minutes to reach: 490555.70 -> 490556, 313956.34 -> 313957 (the
        // same call, statsmodels 0.15.0). Near half a million cases the power there moves by
        // 1e-6 a case, below this module's Student-t precision: within 0.01%.
        for (sd, effect, expected) in [(1.0, 0.004, 490_556.0), (20_000.0, 100.0, 313_957.0)] {
            let got = cases_needed_t(sd, effect, 0.05, 0.8).unwrap() as f64;
            assert!((got - expected).abs() < 1e-4 * expected, "{sd} {effect}: {got}");
        }
        // sd * scipy.optimize.brentq(lambda e: TTestPower().power(effect_size=e, nobs=n,
        // alpha=a) - 0.8, 0.05, 0.9, xtol=1e-15) (solve_power's own root is only good to 1e-6)
        for (sd, n, a, expected) in [
            (1.0, 34, 0.05, 0.495_028_097_973_440_66),
            (0.3227, 200, 0.05, 0.064_238_009_403_748_67),
            (2.0, 40, 0.0125, 1.100_349_955_894_305_7),
        ] {
            let got = mde_t(sd, n, a, 0.8).unwrap();
            assert!((got - expected).abs() < 1e-8 * expected.max(1.0), "{sd} {n} {a}: {got}");
        }
        // One model: the plan and the MDE agree with each other at every n.
        for n in [5usize, 17, 120] {
            let mde = mde_t(0.7, n, 0.05, 0.8).unwrap();
            assert_eq!(cases_needed_t(0.7, mde * 1.000_001, 0.05, 0.8), Some(n));
        }
        assert_eq!(cases_needed_t(0.0, 0.1, 0.05, 0.8), Some(2));
        assert_eq!(mde_t(1.0, 1, 0.05, 0.8), None);
    }
}
