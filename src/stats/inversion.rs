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

/// The shifts δ (of the `q` quantile difference, candidate − baseline) whose sign-flip test of
/// "the candidate's calls less δ are the baseline's" is not rejected at `alpha` (p ≥ `alpha`),
/// searched from the estimate outwards past `guess` (an approximate interval, such as the
/// bootstrap's). The permutations are the same at every shift (`draws`, `seed`, as the test
/// drew them), so the p-value steps with δ alone. `None` when the test cannot run or no shift
/// on one side is rejected.
pub fn sign_flip_quantile_interval<U: AsRef<[f64]>>(
    units: &[(U, U)],
    q: f64,
    draws: usize,
    seed: u64,
    alpha: f64,
    guess: [f64; 2],
) -> Option<[f64; 2]> {
    let estimate = sign_flip_quantile(units, q, draws, seed)?.estimate;
    let mut shifted: Vec<(Vec<f64>, Vec<f64>)> = units
        .iter()
        .map(|(b, c)| (b.as_ref().to_vec(), c.as_ref().to_vec()))
        .collect();
    let mut accepts = |delta: f64| -> Option<bool> {
        for ((_, c), (_, original)) in shifted.iter_mut().zip(units) {
            for (value, &was) in c.iter_mut().zip(original.as_ref()) {
                *value = was - delta;
            }
        }
        Some(sign_flip_quantile(&shifted, q, draws, seed)?.p_value >= alpha)
    };
    let scale = (guess[1] - guess[0]).abs().max(estimate.abs() * 1e-3).max(1e-9);
    let mut end = |direction: f64, guessed: f64| -> Option<f64> {
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
    let low = end(-1.0, guess[0])?;
    let high = end(1.0, guess[1])?;
    Some([low, high])
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

    #[test]
    fn the_interval_holds_exactly_the_shifts_the_test_accepts() {
        let units = shifted_units(40, 12.0);
        let (q, draws, seed, alpha) = (0.5, 2000, 7, 0.05);
        let [low, high] = sign_flip_quantile_interval(&units, q, draws, seed, alpha, [0.0, 1.0]).unwrap();
        let estimate = sign_flip_quantile(&units, q, draws, seed).unwrap().estimate;
        assert!(low < estimate && estimate < high, "{low} {estimate} {high}");
        // Every end is where the test turns: accepted at it, rejected just beyond it.
        let p = |delta: f64| {
            let moved: Vec<(Vec<f64>, Vec<f64>)> = units
                .iter()
                .map(|(b, c)| (b.clone(), c.iter().map(|x| x - delta).collect()))
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
        // Zero is outside: the test rejects "no change" (a shift of 12 against a spread of 3).
        assert!(p(0.0) < alpha && low > 0.0);
    }

    #[test]
    fn no_interval_without_units() {
        let units: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
        assert_eq!(sign_flip_quantile_interval(&units, 0.5, 100, 1, 0.05, [0.0, 1.0]), None);
    }
}
