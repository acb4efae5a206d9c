//! A quantile's interval made to agree with its sign-flip test (see [`agreeing_interval`]).

use super::PERMUTATIONS;
use crate::stats;

/// The sign-flip test's own intervals (the shifts, and the ratios, it accepts at `alpha`), each
/// where the bootstrap's at that level disagrees with the test about zero: a significant
/// p-value beside an interval holding 0, or the reverse. `None` where they agree (the
/// bootstrap's stands), or the test did not run.
pub(super) fn agreeing_interval<U: AsRef<[f64]>>(
    units: &[(U, U)],
    q: f64,
    seed: u64,
    alpha: f64,
    drawn: &(Option<stats::SignFlip>, Option<stats::QuantileDraws>),
) -> Agreeing {
    // The test as it ran: its estimate is not drawn again.
    let Some(ran) = drawn.0.as_ref() else {
        return Agreeing::default();
    };
    let test = stats::QuantileTest {
        units,
        q,
        draws: PERMUTATIONS,
        seed,
        estimate: ran.estimate,
    };
    Agreeing {
        difference: disagreeing(units, drawn, alpha, |d| Some(&d.difference))
            .and_then(|bootstrap| test.interval(alpha, bootstrap)),
        ratio: disagreeing(units, drawn, alpha, |d| d.ratio.as_ref())
            .and_then(|bootstrap| test.ratio_interval(alpha, bootstrap)),
    }
}

/// A quantile's intervals from the sign-flip test's inversion, where the bootstrap's disagree
/// with the test (see [`agreeing_interval`]): of the difference and of the relative change.
#[derive(Default)]
pub(super) struct Agreeing {
    pub(super) difference: Option<[f64; 2]>,
    pub(super) ratio: Option<[f64; 2]>,
}

/// The bootstrap's interval (of the draws `pick` chooses) at `alpha`, when it disagrees with
/// the sign-flip test about zero.
fn disagreeing<U>(
    units: &[(U, U)],
    (test, draws): &(Option<stats::SignFlip>, Option<stats::QuantileDraws>),
    alpha: f64,
    pick: impl Fn(&stats::QuantileDraws) -> Option<&stats::Draws>,
) -> Option<[f64; 2]> {
    let test = test.as_ref()?;
    let bootstrap = stats::expanded_alpha(alpha, units.len())
        .and_then(|a| pick(draws.as_ref()?)?.summary(1.0 - a))
        .map(|b| b.ci)?;
    let significant = test.p_value < alpha;
    let excludes_zero = bootstrap[0] > 0.0 || bootstrap[1] < 0.0;
    (significant != excludes_zero).then_some(bootstrap)
}
