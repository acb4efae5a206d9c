//! Descriptive statistics: mean, sample standard deviation, quantiles.
//!
//! All three return `None` for an empty slice or one holding a NaN or an infinity: a report
//! cannot say anything true about such a metric, and `None` forces the caller to say so
//! instead of printing `NaN`.

/// Arithmetic mean; `None` when empty or any value is non-finite.
///
/// Computed as a running mean (Welford 1962), which returns `c` exactly for a slice of
/// copies of `c` — the bootstrap relies on that to give a zero-width interval for
/// constant differences — and cannot overflow for finite inputs.
pub fn mean(xs: &[f64]) -> Option<f64> {
    welford(xs).map(|(m, _)| m)
}

/// Sample standard deviation (divisor n − 1); `None` for fewer than two values or any
/// non-finite value.
pub fn std_dev(xs: &[f64]) -> Option<f64> {
    if xs.len() < 2 {
        return None;
    }
    let (_, m2) = welford(xs)?;
    Some((m2 / (xs.len() - 1) as f64).sqrt())
}

/// Quantile by linear interpolation between order statistics — Hyndman & Fan type 7, numpy's
/// default `method="linear"`. `None` when empty, any value is non-finite, or `q` is outside
/// `[0, 1]` (or NaN).
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) || !all_finite(xs) {
        return None;
    }
    let mut sorted = xs.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// Type-7 quantile of an ascending slice of finite values; `q` must be in `[0, 1]`.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let h = last as f64 * q;
    // h is in [0, last], so the floor fits and `lo + 1` is only read when it exists.
    let lo = (h.floor() as usize).min(last);
    let t = h - lo as f64;
    let a = sorted[lo];
    match sorted.get(lo + 1) {
        Some(&b) if t > 0.0 => Some(lerp(a, b, t)),
        _ => Some(a),
    }
}

/// Type-7 quantile of unsorted finite values, reordering `xs` in place: linear time via
/// selection, used for the many resamples of the quantile bootstrap.
pub(super) fn quantile_select(xs: &mut [f64], q: f64) -> Option<f64> {
    let last = xs.len().checked_sub(1)?;
    let h = last as f64 * q;
    let lo = (h.floor() as usize).min(last);
    let t = h - lo as f64;
    let (_, &mut a, upper) = xs.select_nth_unstable_by(lo, f64::total_cmp);
    // After selection everything in `upper` is ≥ a, so its minimum is order statistic lo + 1.
    let b = upper.iter().copied().min_by(f64::total_cmp);
    match b {
        Some(b) if t > 0.0 => Some(lerp(a, b, t)),
        _ => Some(a),
    }
}

pub(super) fn all_finite(xs: &[f64]) -> bool {
    xs.iter().all(|x| x.is_finite())
}

/// numpy's `_lerp`: interpolating from the nearer end keeps the result within `[a, b]` and
/// makes `lerp(a, a, t) == a` exactly.
pub(super) fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 { b - diff * (1.0 - t) } else { a + diff * t }
}

/// Running mean and sum of squared deviations; `None` when empty or non-finite.
fn welford(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() || !all_finite(xs) {
        return None;
    }
    let (mut m, mut m2) = (0.0, 0.0);
    for (i, &x) in xs.iter().enumerate() {
        let delta = x - m;
        m += delta / (i + 1) as f64;
        m2 += delta * (x - m);
    }
    Some((m, m2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy)]
    enum Stat {
        Mean,
        StdDev,
        Quantile(f64),
    }

    #[track_caller]
    fn check(stat: Stat, xs: &[f64], expected: Option<f64>) {
        let actual = match stat {
            Stat::Mean => mean(xs),
            Stat::StdDev => std_dev(xs),
            Stat::Quantile(q) => {
                // The selection path must agree with the sorting path on every input.
                let mut scratch = xs.to_vec();
                let selected = if all_finite(xs) && (0.0..=1.0).contains(&q) {
                    quantile_select(&mut scratch, q)
                } else {
                    None
                };
                let sorted = quantile(xs, q);
                assert_eq!(selected, sorted, "{stat:?} {xs:?}: select vs sort");
                sorted
            }
        };
        match (actual, expected) {
            (Some(a), Some(e)) => assert!(
                (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                "{stat:?} {xs:?}: got {a}, numpy says {e}"
            ),
            (a, e) => assert_eq!(a, e, "{stat:?} {xs:?}"),
        }
    }

    const DATA: [f64; 7] = [3.5, -1.25, 8.0, 0.0, 2.75, 2.75, 10.125];

    #[test]
    fn means() {
        // numpy.mean([3.5, -1.25, 8.0, 0.0, 2.75, 2.75, 10.125]) -> 3.6964285714285716
        check(Stat::Mean, &DATA, Some(3.696_428_571_428_571_6));
        // numpy.mean([0.1, 0.2, 0.4]) -> 0.23333333333333336
        check(Stat::Mean, &[0.1, 0.2, 0.4], Some(0.233_333_333_333_333_36));
        // numpy's sum overflows here (numpy.mean -> inf); statistics.mean([1e308, 1e308])
        // works in exact fractions -> 1e+308.
        check(Stat::Mean, &[1e308, 1e308], Some(1e308));
        // numpy.mean([0.1] * 9) -> 0.1
        check(Stat::Mean, &[0.1; 9], Some(0.1));
        check(Stat::Mean, &[], None);
        check(Stat::Mean, &[1.0, f64::NAN], None);
        check(Stat::Mean, &[1.0, f64::INFINITY], None);
    }

    #[test]
    fn standard_deviations() {
        // numpy.std([3.5, -1.25, 8.0, 0.0, 2.75, 2.75, 10.125], ddof=1) -> 4.078562567749528
        check(Stat::StdDev, &DATA, Some(4.078_562_567_749_528));
        // numpy.std([1.0, 2.0, 4.0], ddof=1) -> 1.5275252316519465
        check(Stat::StdDev, &[1.0, 2.0, 4.0], Some(1.527_525_231_651_946_5));
        // numpy.std([1e9 + 1, 1e9 + 2, 1e9 + 3], ddof=1) -> 1.0
        check(Stat::StdDev, &[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0], Some(1.0));
        // numpy.std([4.0, 4.0, 4.0], ddof=1) -> 0.0
        check(Stat::StdDev, &[4.0, 4.0, 4.0], Some(0.0));
        check(Stat::StdDev, &[4.0], None);
        check(Stat::StdDev, &[], None);
        check(Stat::StdDev, &[1.0, f64::NAN, 2.0], None);
    }

    #[test]
    fn quantiles() {
        // numpy.percentile(DATA, [0, 10, 25, 50, 75, 95, 100]) (method="linear") ->
        // [-1.25, -0.5, 1.375, 2.75, 5.75, 9.4875, 10.125]
        for (q, e) in [
            (0.0, -1.25),
            (0.10, -0.5),
            (0.25, 1.375),
            (0.50, 2.75),
            (0.75, 5.75),
            (0.95, 9.4875),
            (1.0, 10.125),
        ] {
            check(Stat::Quantile(q), &DATA, Some(e));
        }
        // numpy.quantile([5.0], 0.3) -> 5.0
        check(Stat::Quantile(0.3), &[5.0], Some(5.0));
        // numpy.quantile([1.0, 2.0], 0.3) -> 1.3
        check(Stat::Quantile(0.3), &[2.0, 1.0], Some(1.3));
        // numpy.quantile([0.1, 0.7, 0.2, 0.9, 0.4], 0.9) -> 0.8200000000000001
        check(Stat::Quantile(0.9), &[0.1, 0.7, 0.2, 0.9, 0.4], Some(0.82));
        check(Stat::Quantile(0.5), &[], None);
        check(Stat::Quantile(1.5), &DATA, None);
        check(Stat::Quantile(-0.1), &DATA, None);
        check(Stat::Quantile(f64::NAN), &DATA, None);
        check(Stat::Quantile(0.5), &[1.0, f64::NAN], None);
    }
}
