//! Arms each of one value throughout (a synthetic log, a perfectly steady source): no standard
//! error describes them, and the normal mixture has none to work with; the exact permutation
//! test decides them instead (docs/statistics.md, Canary).

use super::Measured;
use crate::stats;

/// How a metric's sequence was had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The normal mixture over the estimate and its standard error.
    Mixture,
    /// Arms each of one value throughout, decided by the exact permutation test.
    Exact,
    /// Arms each of one value throughout, too few to tell apart by it.
    ExactTooFew,
    /// No standard error and no exact test.
    None,
}

pub(super) const EXACT_TEST: &str = "exact permutation test (each arm one value throughout)";

/// The metric's confidence sequence; for arms each of one value throughout, where no standard
/// error exists, their exact difference with its permutation p-value. That interval is the
/// exact test's inverted under a shift, `{Δ}`, only once the smallest p-value so few values can
/// have is below α (else it is unbounded and tells nothing: three requests an arm promoted,
/// the review). Both are doubled, to spare: as the data grow, arms each of one value at a look
/// were so at every earlier look, so the chance of ever deciding wrongly is at most the
/// smallest p-value at the first look that could (a window that slides, `--watch` over "the
/// last hour", is not data that grow, for this route as for the mixture). Not for a rate's
/// Prometheus series (`measure`): a rate flat at 0 says nothing of the requests behind it.
pub(super) fn sequence_of(m: &Measured, tau: f64, alpha: f64) -> (Option<stats::Sequential>, Route) {
    if let Some(sequence) = stats::mixture_sequence(m.estimate.estimate, m.estimate.se, tau, alpha) {
        return (Some(sequence), Route::Mixture);
    }
    let Some(p) = m.exact_p else {
        return (None, Route::None);
    };
    let smallest = stats::separation_smallest_p(m.n.baseline as usize, m.n.canary as usize);
    if 2.0 * smallest > alpha {
        return (None, Route::ExactTooFew);
    }
    let sequence = stats::Sequential {
        ci: [m.estimate.estimate; 2],
        p_value: (2.0 * p).min(1.0),
    };
    (Some(sequence), Route::Exact)
}

/// Values an arm needs before arms each of one value can be told apart (or proven alike) by
/// the exact test at `alpha`, as [`sequence_of`] asks.
pub(super) fn exact_needs(alpha: f64) -> u64 {
    (2..)
        .find(|&n| 2.0 * stats::separation_smallest_p(n, n) <= alpha)
        .unwrap_or(2) as u64
}
