//! Two independent samples (a canary's requests against the baseline's): rank tests, quantile
//! standard errors, two proportions and a ratio of means. Production logs are not paired, and
//! they are large: every function here is O(n log n) at most, so a million requests take a
//! fraction of a second.
//!
//! - [`mann_whitney`]: the Mann–Whitney U test, normal approximation with the tie correction
//!   and continuity correction (Mann & Whitney 1947), as `scipy.stats.mannwhitneyu(x, y,
//!   method="asymptotic")`.
//! - [`hodges_lehmann_shift`]: the two-sample Hodges–Lehmann shift (median of all n·m
//!   differences) and the interval that inverts the rank-sum test (Hollander & Wolfe 1999,
//!   §4.3, eq. 4.41 with the normal approximation), found by selection over the sorted samples
//!   (a count of the differences below a value is one O(n + m) sweep) instead of forming the
//!   n·m differences.
//! - [`maritz_jarrett_se`]: the standard error of a sample quantile by Maritz & Jarrett (1978),
//!   as `scipy.stats.mstats.mjci`.
//! - [`agresti_caffo`]: the difference of two independent proportions with Agresti & Caffo's
//!   (2000) interval (one success and one failure added to each arm): right where errors are
//!   rare and a Wald interval collapses to zero width.
//! - [`welch_z`]: the difference of two means with the unequal-variance standard error.
//! - [`mean_ratio`]: the ratio of two means, its log's delta-method standard error.
//! - [`separation_p`]: two arms each of one value throughout: the exact permutation p-value
//!   of their difference, where every standard error above is zero.

use statrs::distribution::{ContinuousCDF, Normal};

use super::describe::all_finite;

/// An estimate on some scale with its standard error and a fixed-horizon interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub estimate: f64,
    pub se: f64,
    pub ci: [f64; 2],
}

/// The Mann–Whitney U test of `x` against `y`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of `x`: the number of pairs with x above y, ties counting one half.
    pub u: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

fn z_of(confidence: f64) -> f64 {
    Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

fn valid(confidence: f64) -> bool {
    confidence > 0.0 && confidence < 1.0
}

/// Mann–Whitney U of `x` against `y`, two-sided, normal approximation with tie and continuity
/// corrections. `None` when a sample is empty or holds a non-finite value.
pub fn mann_whitney(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 || !all_finite(x) || !all_finite(y) {
        return None;
    }
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut rank_sum_x, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        // Ranks i+1 ..= j+1 share their mean.
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_x += mid * all[i..=j].iter().filter(|e| e.1).count() as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let (f1, f2, nf) = (n1 as f64, n2 as f64, n as f64);
    let u = rank_sum_x - f1 * (f1 + 1.0) / 2.0;
    let mu = f1 * f2 / 2.0;
    let s = (f1 * f2 / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)))).sqrt();
    let p_value = if s > 0.0 {
        let big = u.max(f1 * f2 - u);
        let z = (big - mu - 0.5) / s;
        (2.0 * Normal::standard().sf(z)).min(1.0)
    } else {
        1.0
    };
    Some(MannWhitney { u, p_value })
}

/// The Hodges–Lehmann shift `median(yⱼ − xᵢ)` of `y` over `x`, with the interval of the
/// differences' order statistics at ranks `C` and `nm + 1 − C`, `C = round(nm/2 −
/// z·√(nm(n+m+1)/12))`; its standard error is the interval's half-width over z. `None` for an
/// empty or non-finite sample.
pub fn hodges_lehmann_shift(x: &[f64], y: &[f64], confidence: f64) -> Option<Estimate> {
    if x.is_empty() || y.is_empty() || !all_finite(x) || !all_finite(y) || !valid(confidence) {
        return None;
    }
    let mut xs = x.to_vec();
    let mut ys = y.to_vec();
    xs.sort_unstable_by(f64::total_cmp);
    ys.sort_unstable_by(f64::total_cmp);
    let (n, m) = (xs.len() as u64, ys.len() as u64);
    let nm = n * m;
    let kth = |k: u64| kth_difference(&xs, &ys, k);
    let estimate = if nm % 2 == 1 {
        kth(nm / 2 + 1)
    } else {
        (kth(nm / 2) + kth(nm / 2 + 1)) / 2.0
    };
    let z = z_of(confidence);
    let (nf, mf) = (n as f64, m as f64);
    let c = (nf * mf / 2.0 - z * (nf * mf * (nf + mf + 1.0) / 12.0).sqrt()).round();
    let rank = (c.max(1.0) as u64).min(nm.div_ceil(2));
    let ci = [kth(rank), kth(nm + 1 - rank)];
    Some(Estimate {
        estimate,
        se: (ci[1] - ci[0]) / (2.0 * z),
        ci,
    })
}

/// The k-th smallest (1-based) of the differences `y[j] − x[i]` of two sorted samples, by
/// bisection over the doubles' total order: each step counts the differences at or below a
/// value in one sweep, and 64 steps pin a double exactly.
fn kth_difference(xs: &[f64], ys: &[f64], k: u64) -> f64 {
    let count_at_most = |d: f64| -> u64 {
        // For each y (ascending) the x with y − x ≤ d form a suffix of xs that only shrinks.
        let mut start = 0usize;
        let mut total = 0u64;
        for &y in ys {
            while start < xs.len() && y - xs[start] > d {
                start += 1;
            }
            total += (xs.len() - start) as u64;
        }
        total
    };
    let (mut lo, mut hi) = (ordered(ys[0] - xs[xs.len() - 1]) - 1, ordered(ys[ys.len() - 1] - xs[0]));
    // Invariant: count(lo) < k ≤ count(hi).
    while i128::from(hi) - i128::from(lo) > 1 {
        // In i128: the distance between a negative and a positive double overflows i64.
        let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
        if count_at_most(unordered(mid)) >= k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    unordered(hi)
}

/// Doubles mapped to integers in the same order (negative numbers flip), so bisection over
/// integers walks the doubles.
fn ordered(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    if bits < 0 { bits ^ i64::MAX } else { bits }
}

fn unordered(i: i64) -> f64 {
    f64::from_bits((if i < 0 { i ^ i64::MAX } else { i }) as u64)
}

/// Maritz–Jarrett standard error of the `p` quantile of `sorted` (ascending): the spread of
/// the order statistic `m = ⌊pn + 0.5⌋` under Beta(m − 1, n − m) weights, as
/// `scipy.stats.mstats.mjci(data, prob=[p])`. Weights are summed only where the Beta
/// distribution has mass (20 standard deviations around its mean), so a million values cost
/// a few thousand incomplete-beta evaluations. `None` when `m` leaves no room on either side.
pub fn maritz_jarrett_se(sorted: &[f64], p: f64) -> Option<f64> {
    use statrs::function::beta::beta_reg;
    let n = sorted.len();
    if !(p > 0.0 && p < 1.0) || n < 3 {
        return None;
    }
    let m = (p * n as f64 + 0.5).floor() as usize;
    if m < 2 || m >= n {
        return None;
    }
    let (a, b) = ((m - 1) as f64, (n - m) as f64);
    let nf = n as f64;
    let mean = a / (a + b);
    let sd = (a * b / ((a + b).powi(2) * (a + b + 1.0))).sqrt();
    let first = (((mean - 20.0 * sd) * nf).floor().max(1.0)) as usize;
    let last = (((mean + 20.0 * sd) * nf).ceil().min(nf)) as usize;
    let cdf = |i: usize| -> f64 {
        let t = i as f64 / nf;
        if t <= 0.0 {
            0.0
        } else if t >= 1.0 {
            1.0
        } else {
            beta_reg(a, b, t)
        }
    };
    let (mut c1, mut c2) = (0.0, 0.0);
    let mut previous = cdf(first - 1);
    for i in first..=last {
        let current = cdf(i);
        let w = current - previous;
        previous = current;
        let x = sorted[i - 1];
        c1 += w * x;
        c2 += w * x * x;
    }
    Some((c2 - c1 * c1).max(0.0).sqrt())
}

/// `p₁ − p₀` for `x1` of `n1` against `x0` of `n0`, Agresti–Caffo: each proportion with one
/// success and one failure added, Wald interval on those, as
/// `statsmodels.stats.proportion.confint_proportions_2indep(x1, n1, x0, n0,
/// method="agresti-caffo")`. The estimate is the adjusted difference (what the interval is
/// centred on). `None` without trials or with counts above their totals.
pub fn agresti_caffo(x1: u64, n1: u64, x0: u64, n0: u64, confidence: f64) -> Option<Estimate> {
    if n1 == 0 || n0 == 0 || x1 > n1 || x0 > n0 || !valid(confidence) {
        return None;
    }
    let adjusted = |x: u64, n: u64| ((x as f64 + 1.0) / (n as f64 + 2.0), n as f64 + 2.0);
    let (p1, m1) = adjusted(x1, n1);
    let (p0, m0) = adjusted(x0, n0);
    let estimate = p1 - p0;
    let se = (p1 * (1.0 - p1) / m1 + p0 * (1.0 - p0) / m0).sqrt();
    let z = z_of(confidence);
    Some(Estimate {
        estimate,
        se,
        ci: [estimate - z * se, estimate + z * se],
    })
}

/// `mean(y) − mean(x)` with the unequal-variance standard error and a normal interval, as
/// `statsmodels.stats.weightstats.CompareMeans.from_data(y, x).zconfint_diff(usevar="unequal")`.
/// `None` with fewer than two values in an arm or a non-finite value.
pub fn welch_z(x: &[f64], y: &[f64], confidence: f64) -> Option<Estimate> {
    if x.len() < 2 || y.len() < 2 || !all_finite(x) || !all_finite(y) || !valid(confidence) {
        return None;
    }
    let (mx, vx) = mean_var(x);
    let (my, vy) = mean_var(y);
    let estimate = my - mx;
    let se = (vx / x.len() as f64 + vy / y.len() as f64).sqrt();
    let z = z_of(confidence);
    Some(Estimate {
        estimate,
        se,
        ci: [estimate - z * se, estimate + z * se],
    })
}

/// `ln(mean(y) / mean(x))` with its delta-method standard error
/// `√(s²ᵧ/(n ȳ²) + s²ₓ/(m x̄²))` and a normal interval on the log scale. `None` with fewer than
/// two values in an arm, a non-finite value, or a mean that is not positive.
pub fn mean_ratio(x: &[f64], y: &[f64], confidence: f64) -> Option<Estimate> {
    if x.len() < 2 || y.len() < 2 || !all_finite(x) || !all_finite(y) || !valid(confidence) {
        return None;
    }
    let (mx, vx) = mean_var(x);
    let (my, vy) = mean_var(y);
    if !(mx > 0.0 && my > 0.0) {
        return None;
    }
    let estimate = (my / mx).ln();
    let se = (vy / (y.len() as f64 * my * my) + vx / (x.len() as f64 * mx * mx)).sqrt();
    let z = z_of(confidence);
    Some(Estimate {
        estimate,
        se,
        ci: [estimate - z * se, estimate + z * se],
    })
}

/// Mean and sample variance (n − 1), by Welford's update so a million similar values keep
/// their digits.
pub fn mean_var(values: &[f64]) -> (f64, f64) {
    let mut mean = 0.0;
    let mut m2 = 0.0;
    for (i, &v) in values.iter().enumerate() {
        let delta = v - mean;
        mean += delta / (i + 1) as f64;
        m2 += delta * (v - mean);
    }
    let n = values.len();
    (mean, if n > 1 { m2 / (n - 1) as f64 } else { f64::NAN })
}

/// Two arms each of one value throughout (every baseline request took 500 ms, every canary
/// request 900): no standard error describes them, but the arms' difference is exact. Under
/// exchangeability (no difference) every split of the n + m values into arms of n and m is
/// equally likely, and the observed one, every baseline value on one side of every canary
/// value, is the most extreme there is: the two-sided permutation p-value of any statistic of
/// the difference is `2 / C(n + m, n)`, as `scipy.stats.permutation_test` gives it; 1 when the
/// two values are equal. `None` unless each arm has at least two values and is constant.
pub fn separation_p(x: &[f64], y: &[f64]) -> Option<f64> {
    let constant = |v: &[f64]| one_value(v) && v[0].is_finite();
    if !(constant(x) && constant(y)) {
        return None;
    }
    if x[0] == y[0] {
        return Some(1.0);
    }
    Some(separation_smallest_p(x.len(), y.len()))
}

/// At least two values, all one.
pub fn one_value(v: &[f64]) -> bool {
    v.len() >= 2 && v.iter().all(|x| x == &v[0])
}

/// The smallest two-sided permutation p-value arms of `n` and `m` values can have, `2 / C(n +
/// m, n)`: that of arms each of one value, apart. While it is above α no split of so few values
/// tells anything, equal or apart.
pub fn separation_smallest_p(n: usize, m: usize) -> f64 {
    use statrs::function::gamma::ln_gamma;
    let (n, m) = (n as f64, m as f64);
    let ln_splits = ln_gamma(n + m + 1.0) - ln_gamma(n + 1.0) - ln_gamma(m + 1.0);
    // Past ~745 splits' worth of digits it is below the smallest double: say the smallest.
    (std::f64::consts::LN_2 - ln_splits).exp().clamp(f64::MIN_POSITIVE, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_arms_have_the_exact_permutation_p_value() {
        // scipy.stats.permutation_test((np.full(5, 500.), np.full(5, 900.)), lambda x, y:
        //   np.mean(x) - np.mean(y), permutation_type='independent', n_resamples=np.inf).pvalue
        //   -> 0.007936507936507936; with arms of 4 and 6 -> 0.009523809523809525
        close(
            separation_p(&[500.0; 5], &[900.0; 5]).unwrap(),
            0.007936507936507936,
            1e-12,
        );
        close(
            separation_p(&[500.0; 4], &[900.0; 6]).unwrap(),
            0.009523809523809525,
            1e-12,
        );
        assert_eq!(separation_p(&[500.0; 4], &[500.0; 6]), Some(1.0));
        close(separation_smallest_p(4, 6), 0.009523809523809525, 1e-12);
        // One arm with spread, or an arm of one value, is for the standard errors.
        assert_eq!(separation_p(&[500.0, 501.0], &[900.0; 6]), None);
        assert_eq!(separation_p(&[500.0], &[900.0; 6]), None);
        // A thousand requests an arm: far below any α, and never exactly 0.
        assert_eq!(separation_p(&[1.0; 1000], &[2.0; 1000]), Some(f64::MIN_POSITIVE));
    }

    #[track_caller]
    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance * (1.0 + expected.abs()),
            "{actual} vs reference {expected}"
        );
    }

    // rng = numpy.random.default_rng(7); x = round(rng.lognormal(6.0, 0.5, 40), 1);
    // y = round(rng.lognormal(6.15, 0.5, 35), 1); x[3] = x[5]; y[2] = x[7] (ties across and within)
    const X: [f64; 40] = [
        403.7, 468.4, 351.8, 245.7, 321.4, 245.7, 415.7, 788.5, 315.4, 295.8, 515.4, 482.2, 425.3, 253.3, 397.6, 571.1,
        206.0, 320.9, 155.9, 211.7, 160.6, 358.7, 214.1, 462.0, 436.3, 367.4, 114.6, 308.2, 393.8, 426.9, 187.7, 317.7,
        247.3, 269.2, 685.7, 269.4, 396.9, 627.8, 301.3, 381.5,
    ];
    const Y: [f64; 35] = [
        495.3, 483.9, 788.5, 486.9, 924.6, 216.2, 720.3, 497.5, 340.1, 1274.4, 686.2, 257.3, 486.5, 625.4, 426.5,
        659.5, 453.4, 654.3, 962.2, 334.3, 518.8, 371.8, 499.5, 258.9, 350.8, 424.9, 734.6, 831.0, 241.8, 315.0, 647.7,
        173.1, 371.8, 446.5, 878.8,
    ];

    #[test]
    fn mann_whitney_matches_scipy() {
        // scipy.stats.mannwhitneyu(y, x, method="asymptotic") -> (1037.5, 0.0003449410672666682)
        let r = mann_whitney(&Y, &X).unwrap();
        close(r.u, 1037.5, 0.0);
        close(r.p_value, 0.000_344_941_067_266_668_2, 1e-12);
        // Swapping the samples keeps the two-sided p and mirrors U.
        let s = mann_whitney(&X, &Y).unwrap();
        close(s.u, 40.0 * 35.0 - 1037.5, 0.0);
        close(s.p_value, r.p_value, 1e-12);
        assert_eq!(mann_whitney(&[], &X), None);
    }

    #[test]
    fn hodges_lehmann_shift_matches_the_differences_sorted() {
        // d = sort(subtract.outer(y, x).ravel()); C = round(nm/2 − norm.ppf(0.975)·sqrt(nm(n+m+1)/12))
        // = 515 -> median(d) = 157.05, (d[C−1], d[nm−C]) = (68.4, 248.0)
        let r = hodges_lehmann_shift(&X, &Y, 0.95).unwrap();
        close(r.estimate, 157.05, 1e-12);
        close(r.ci[0], 68.400_000_000_000_03, 1e-12);
        close(r.ci[1], 248.0, 1e-12);
        // Negative values and a shift of exactly zero.
        let r = hodges_lehmann_shift(&[-3.0, -1.0, 2.0], &[-3.0, -1.0, 2.0], 0.5).unwrap();
        close(r.estimate, 0.0, 0.0);
    }

    #[test]
    fn maritz_jarrett_matches_scipy() {
        // scipy.stats.mstats.mjci(x, prob=[0.95]) -> 88.90435874123251;
        // mjci(y, prob=[0.5]) -> 46.18280276242454
        let mut x = X.to_vec();
        x.sort_by(f64::total_cmp);
        close(maritz_jarrett_se(&x, 0.95).unwrap(), 88.904_358_741_232_51, 1e-9);
        let mut y = Y.to_vec();
        y.sort_by(f64::total_cmp);
        close(maritz_jarrett_se(&y, 0.5).unwrap(), 46.182_802_762_424_54, 1e-9);
        assert_eq!(maritz_jarrett_se(&y[..2], 0.5), None);
    }

    #[test]
    fn agresti_caffo_matches_statsmodels_even_with_no_events() {
        // confint_proportions_2indep(3, 5000, 0, 5000, method="agresti-caffo")
        // -> (-0.00027611414577416893, 0.0014756343376973995)
        let r = agresti_caffo(3, 5000, 0, 5000, 0.95).unwrap();
        close(r.ci[0], -0.000_276_114_145_774_168_93, 1e-10);
        close(r.ci[1], 0.001_475_634_337_697_399_5, 1e-10);
        // confint_proportions_2indep(12, 400, 30, 410, method="agresti-caffo", alpha=0.1)
        // -> (-0.06874111180335521, -0.017067708174425784)
        let r = agresti_caffo(12, 400, 30, 410, 0.9).unwrap();
        close(r.ci[0], -0.068_741_111_803_355_21, 1e-10);
        close(r.ci[1], -0.017_067_708_174_425_784, 1e-10);
        // No errors in either arm: a positive width, never a zero-width interval.
        let r = agresti_caffo(0, 5000, 0, 5000, 0.95).unwrap();
        assert!(r.se > 0.0 && r.estimate == 0.0);
        assert_eq!(agresti_caffo(1, 0, 0, 5, 0.95), None);
    }

    #[test]
    fn welch_z_matches_statsmodels() {
        // CompareMeans.from_data(y, x).zconfint_diff(usevar="unequal")
        // -> (87.70132091538675, 272.84296479889883); y.mean() − x.mean() = 180.2721428571429
        let r = welch_z(&X, &Y, 0.95).unwrap();
        close(r.estimate, 180.272_142_857_142_9, 1e-12);
        close(r.ci[0], 87.701_320_915_386_75, 1e-10);
        close(r.ci[1], 272.842_964_798_898_83, 1e-10);
    }

    #[test]
    fn mean_ratio_is_the_delta_method_on_the_log() {
        // numpy: mx, my = x.mean(), y.mean(); log(my/mx) = 0.40786403276577443;
        // sqrt(y.var(ddof=1)/(35·my²) + x.var(ddof=1)/(40·mx²)) = 0.0998440861378094
        let r = mean_ratio(&X, &Y, 0.95).unwrap();
        close(r.estimate, 0.407_864_032_765_774_43, 1e-12);
        close(r.se, 0.099_844_086_137_809_4, 1e-12);
        assert_eq!(mean_ratio(&[0.0, 0.0], &Y, 0.95), None);
    }
}
