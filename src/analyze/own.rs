//! One arm's own value and its interval, apart from the comparison: what the report shows
//! beside each arm, and what an objective (`slo`) is proven against.

use std::borrow::Cow;
use std::collections::HashMap;

use super::{RESAMPLES, Ragged};
use crate::metrics::{Kind, Metric};
use crate::stats;

/// One arm's value on its own calls: a quantile over every call, else the mean of the per-case
/// means.
pub(super) fn own_value(metric: &Metric, values: &Ragged) -> Option<f64> {
    match metric.quantile() {
        Some(q) => stats::quantile(&values.values, q),
        None => stats::mean(&values.iter().filter_map(stats::mean).collect::<Vec<_>>()),
    }
}

/// The (1 − α) interval of one arm's own value: the bootstrap over units for a quantile, Wilson's
/// interval for single binary outcomes, else the (cluster-robust) t interval of the per-case
/// means.
pub(super) fn own_interval(
    metric: &Metric,
    values: &Ragged,
    unit_ids: &[usize],
    confidence: f64,
    seed: u64,
) -> Option<[f64; 2]> {
    let present: Vec<usize> = (0..values.len()).filter(|&i| !values[i].is_empty()).collect();
    if present.is_empty() {
        return None;
    }
    if let Some(q) = metric.quantile() {
        // A case that is its own unit lends its calls; a group's are copied together, in the
        // order of the units' ids.
        let units: Vec<Cow<'_, [f64]>> = if present.iter().all(|&i| unit_ids[i] == i) {
            present.iter().map(|&i| Cow::Borrowed(&values[i])).collect()
        } else {
            let mut by_unit: HashMap<usize, Vec<f64>> = HashMap::new();
            for &i in &present {
                by_unit.entry(unit_ids[i]).or_default().extend_from_slice(&values[i]);
            }
            let mut units: Vec<(usize, Vec<f64>)> = by_unit.into_iter().collect();
            units.sort_by_key(|(id, _)| *id);
            units.into_iter().map(|(_, v)| Cow::Owned(v)).collect()
        };
        let level = stats::expanded_alpha(1.0 - confidence, units.len())?;
        let draws = stats::unit_bootstrap_one_quantile(&units, q, RESAMPLES, seed ^ 1)?;
        return draws.summary(1.0 - level).map(|b| b.ci);
    }
    // Binary: a pass, an error, or a score that is 0 or 1 on every call (a hallucination flag,
    // a judge's pass), whose t interval at 0 of 30 was [0, 0] and proved an objective.
    // (Only a score: a cost or a time of 0 on every call is no outcome.)
    let binary = matches!(metric.kind, Kind::Pass | Kind::Error | Kind::Flaky)
        || metric.kind == Kind::Score && present.iter().all(|&i| values[i].iter().all(|&v| v == 0.0 || v == 1.0));
    let distinct_units = || {
        present
            .iter()
            .map(|&i| unit_ids[i])
            .collect::<std::collections::HashSet<_>>()
            .len()
            == present.len()
    };
    if binary && present.iter().all(|&i| values[i].len() == 1) && distinct_units() {
        let successes = present.iter().filter(|&&i| values[i][0] > 0.5).count() as u64;
        return stats::wilson_interval(successes, present.len() as u64, confidence);
    }
    let means: Vec<f64> = present.iter().filter_map(|&i| stats::mean(&values[i])).collect();
    // Binary outcomes all alike over repeats or groups (none of them, or every one): the t
    // interval has no width, which proves nothing; Wilson's over the units (cases, or groups)
    // has.
    if binary && (means.iter().all(|&m| m == 0.0) || means.iter().all(|&m| m == 1.0)) {
        let units = present
            .iter()
            .map(|&i| unit_ids[i])
            .collect::<std::collections::HashSet<_>>()
            .len() as u64;
        let successes = if means[0] == 1.0 { units } else { 0 };
        return stats::wilson_interval(successes, units, confidence);
    }
    let units: Vec<usize> = present.iter().map(|&i| unit_ids[i]).collect();
    stats::paired_t(&means, Some(&units)).and_then(|t| t.interval(confidence))
}
