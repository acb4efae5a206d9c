//! The interval a sign-flip test inverts: the shifts of the candidate's calls the test does not
//! reject. A quantile's interval is otherwise the unit bootstrap's, an approximation of this
//! set; where the two disagree about zero (the test rejects "no change" and the bootstrap's
//! interval holds 0, or the other way round), the report would show a significant change beside
//! an interval that allows none. There the interval is found exactly as the test decides, by
//! testing shifted candidates (Lehmann, E. L. & Romano, J. P. (2005), *Testing Statistical
//! Hypotheses*, 3rd ed., §3.5: a confidence set is the set of parameters a level-α test
//! accepts).

use super::permutation::sign_flip_quantile;

/// Bisection steps at each end: the interval's ends within 2^-24 of the bracket found.
const STEPS: usize = 24;
/// The bracket doubles at most this often before the search gives up (no shift rejected).
const WIDENINGS: usize = 40;

/// A sign-flip test of a quantile difference as it was run: its units, the quantile, its
/// permutations (`draws`, `seed`: the same at every hypothesis, so the p-value steps with the
/// hypothesis alone) and the difference it estimated (candidate − baseline).
pub struct QuantileTest<'a, U> {
    pub units: &'a [(U, U)],
    pub q: f64,
    pub draws: usize,
    pub seed: u64,
    pub estimate: f64,
}

impl<U: AsRef<[f64]>> QuantileTest<'_, U> {
    /// The shifts δ whose test of "the candidate's calls less δ are the baseline's" is not
    /// rejected at `alpha` (p ≥ `alpha`), searched from the estimate outwards past `guess` (an
    /// approximate interval, such as the bootstrap's). `None` when the test cannot run or no
    /// shift on one side is rejected.
    pub fn interval(&self, alpha: f64, guess: [f64; 2]) -> Option<[f64; 2]> {
        self.inverted(alpha, guess, self.estimate, |was, delta| was - delta)
    }

    /// [`Self::interval`] of the relative change `Q(candidate)/Q(baseline) − 1`: the ratios
    /// 1 + ρ by which the candidate's calls, divided, are accepted as the baseline's. `None`
    /// also when the baseline's quantile is not positive.
    pub fn ratio_interval(&self, alpha: f64, guess: [f64; 2]) -> Option<[f64; 2]> {
        let mut baseline: Vec<f64> = self
            .units
            .iter()
            .flat_map(|(b, _)| b.as_ref().iter().copied())
            .collect();
        baseline.sort_by(f64::total_cmp);
        let baseline = super::quantile_sorted(&baseline, self.q)?;
        if baseline <= 0.0 {
            return None;
        }
        // Below −1 a ratio means nothing: the search stays above it.
        let guess = [guess[0].max(-1.0 + 1e-9), guess[1]];
        let divide = |was: f64, rho: f64| if rho > -1.0 { was / (1.0 + rho) } else { f64::NAN };
        let [low, high] = self.inverted(alpha, guess, self.estimate / baseline, divide)?;
        Some([low.max(-1.0 + 1e-9), high])
    }

    /// The accepted set of `theta` around `estimate`, the candidate's calls moved by `apply`.
    fn inverted(
        &self,
        alpha: f64,
        guess: [f64; 2],
        estimate: f64,
        apply: impl Fn(f64, f64) -> f64,
    ) -> Option<[f64; 2]> {
        let QuantileTest {
            units, q, draws, seed, ..
        } = *self;
        let mut shifted: Vec<(Vec<f64>, Vec<f64>)> = units
            .iter()
            .map(|(b, c)| (b.as_ref().to_vec(), c.as_ref().to_vec()))
            .collect();
        let mut accepts = |theta: f64| -> Option<bool> {
            // A hypothesis with no meaning (a ratio at or below −100%) is rejected.
            if !theta.is_finite() || !apply(1.0, theta).is_finite() {
                return Some(false);
            }
            for ((_, c), (_, original)) in shifted.iter_mut().zip(units) {
                for (value, &was) in c.iter_mut().zip(original.as_ref()) {
                    *value = apply(was, theta);
                }
            }
            Some(sign_flip_quantile(&shifted, q, draws, seed)?.p_value >= alpha)
        };
        let scale = (guess[1] - guess[0]).abs().max(estimate.abs() * 1e-3).max(1e-9);
        // Bisection between an accepted and a rejected hypothesis: the accepted end.
        let bisect = |accepts: &mut dyn FnMut(f64) -> Option<bool>, mut inside: f64, mut outside: f64| {
            for _ in 0..STEPS {
                let middle = 0.5 * (inside + outside);
                if accepts(middle)? {
                    inside = middle;
                } else {
                    outside = middle;
                }
            }
            Some(inside)
        };
        let end = |accepts: &mut dyn FnMut(f64) -> Option<bool>, direction: f64, guessed: f64| -> Option<f64> {
            // Accepted at `inside` (the estimate is always), rejected at `outside`.
            let mut inside = estimate;
            let mut reach = ((guessed - estimate) * direction).max(0.0).max(scale * 0.5);
            let mut outside = estimate + direction * reach;
            let mut widened = 0;
            while accepts(outside)? {
                inside = outside;
                reach *= 2.0;
                outside = estimate + direction * reach;
                widened += 1;
                if widened > WIDENINGS {
                    return None;
                }
            }
            bisect(accepts, inside, outside)
        };
        let mut low = end(&mut accepts, -1.0, guess[0])?;
        let mut high = end(&mut accepts, 1.0, guess[1])?;
        // "No change" is decided as the test decides it, not to the bisection's precision: with
        // tied values the accepted shifts may end exactly at 0, which the last midpoint misses; and
        // where the accepted set is not one piece, the part around the estimate is kept.
        if accepts(0.0)? {
            low = low.min(0.0);
            high = high.max(0.0);
        } else if low <= 0.0 && 0.0 <= high {
            let nearest = bisect(&mut accepts, estimate, 0.0)?;
            if estimate > 0.0 {
                low = nearest;
            } else {
                high = nearest;
            }
        }
        Some([low, high])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Units whose candidate calls are their baseline's plus `shift`, with some spread.
    fn shifted_units(n: usize, shift: f64) -> Vec<(Vec<f64>, Vec<f64>)> {
        (0..n)
            .map(|i| {
                let base = 100.0 + ((i * 37) % 23) as f64 * 3.0;
                let noise = ((i * 11) % 7) as f64 - 3.0;
                (vec![base], vec![base + shift + noise])
            })
            .collect()
    }

    /// The test as it runs on `units`, with its estimate.
    fn test(units: &[(Vec<f64>, Vec<f64>)], (q, draws, seed): (f64, usize, u64)) -> QuantileTest<'_, Vec<f64>> {
        let estimate = sign_flip_quantile(units, q, draws, seed).unwrap().estimate;
        QuantileTest {
            units,
            q,
            draws,
            seed,
            estimate,
        }
    }

    /// Asserts that the test (the candidate's calls moved by `apply`) accepts each end of
    /// `interval` and rejects just beyond it; gives the test's p-value at any hypothesis.
    #[track_caller]
    fn turns_at(
        units: &[(Vec<f64>, Vec<f64>)],
        (q, draws, seed, alpha): (f64, usize, u64, f64),
        [low, high]: [f64; 2],
        apply: impl Fn(f64, f64) -> f64,
    ) -> impl Fn(f64) -> f64 {
        let p = move |theta: f64| {
            let moved: Vec<(Vec<f64>, Vec<f64>)> = units
                .iter()
                .map(|(b, c)| (b.clone(), c.iter().map(|&x| apply(x, theta)).collect()))
                .collect();
            sign_flip_quantile(&moved, q, draws, seed).unwrap().p_value
        };
        let step = (high - low) * 1e-3;
        assert!(p(low) >= alpha && p(low - step) < alpha, "{} {}", p(low), p(low - step));
        assert!(
            p(high) >= alpha && p(high + step) < alpha,
            "{} {}",
            p(high),
            p(high + step)
        );
        p
    }

    #[test]
    fn the_interval_holds_exactly_the_shifts_the_test_accepts() {
        let units = shifted_units(40, 12.0);
        let (q, draws, seed, alpha) = (0.5, 2000, 7, 0.05);
        let estimate = sign_flip_quantile(&units, q, draws, seed).unwrap().estimate;
        let [low, high] = test(&units, (q, draws, seed)).interval(alpha, [0.0, 1.0]).unwrap();
        assert!(low < estimate && estimate < high, "{low} {estimate} {high}");
        // Every end is where the test turns: accepted at it, rejected just beyond it.
        let p = turns_at(&units, (q, draws, seed, alpha), [low, high], |x, delta| x - delta);
        // Zero is outside: the test rejects "no change" (a shift of 12 against a spread of 3).
        assert!(p(0.0) < alpha && low > 0.0);
    }

    #[test]
    fn the_relative_interval_holds_exactly_the_ratios_the_test_accepts() {
        let units = shifted_units(40, 12.0);
        let (q, draws, seed, alpha) = (0.5, 2000, 7, 0.05);
        let [low, high] = test(&units, (q, draws, seed))
            .ratio_interval(alpha, [0.0, 0.01])
            .unwrap();
        let _ = turns_at(&units, (q, draws, seed, alpha), [low, high], |x, rho| x / (1.0 + rho));
        assert!(low > 0.0 && low < high, "{low} {high}");
    }

    #[test]
    fn no_interval_without_units() {
        let units: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        let nothing = QuantileTest {
            units: &units,
            q: 0.5,
            draws: 100,
            seed: 1,
            estimate: 0.0,
        };
        assert_eq!(nothing.interval(0.05, [0.0, 1.0]), None);
    }
}
