//! Why an experiment's run is not a verdict on the change: an arm whose calls errored beyond
//! `max_error_rate`, a scorer that could not score its outputs, or a judge that failed one
//! metric's questions beyond [`MAX_JUDGE_ERROR_RATE`]; and why a metric fails its gate.

use crate::format;
use crate::results::*;

/// Why an experiment's run failed: an arm whose calls errored beyond `max_error_rate`.
pub(super) fn arm_failure(e: &ExperimentResult, max_error_rate: f64) -> Option<String> {
    for (arm, calls) in [
        ("baseline", e.cases.iter().flat_map(|c| &c.baseline).collect::<Vec<_>>()),
        ("candidate", e.cases.iter().flat_map(|c| &c.candidate).collect()),
    ] {
        if calls.is_empty() {
            continue;
        }
        // A scorer that failed on too many outputs leaves its metrics measured on a few: the
        // run is not a verdict on them (its failures say what broke).
        let answered: Vec<&&Call> = calls.iter().filter(|c| c.error().is_none()).collect();
        let unscored: Vec<&&&Call> = answered
            .iter()
            .filter(|c| !c.evaluation.scorer_errors().is_empty())
            .collect();
        if !answered.is_empty() && unscored.len() as f64 / answered.len() as f64 > max_error_rate {
            let example = unscored
                .first()
                .and_then(|c| c.evaluation.scorer_errors().first())
                .cloned()
                .unwrap_or_default();
            return Some(format!(
                "the run failed: a scorer could not score {} of {} {arm} outputs (more than {} allowed); first error: {example}",
                unscored.len(),
                answered.len(),
                format::relative(max_error_rate).trim_start_matches('+'),
            ));
        }
        let errored = calls.iter().filter(|c| c.error().is_some()).count();
        if errored as f64 / calls.len() as f64 > max_error_rate {
            let example = calls.iter().find_map(|c| c.error()).unwrap_or_default();
            return Some(format!(
                "the run failed: {errored} of {} {arm} calls errored (more than {} allowed); first error: {example}",
                calls.len(),
                format::relative(max_error_rate).trim_start_matches('+'),
            ));
        }
    }
    None
}

/// Judge calls that failed beyond this share make the run an error: the judged metrics would
/// rest on the outputs a judge happened to answer for.
pub const MAX_JUDGE_ERROR_RATE: f64 = 0.2;

/// Why an experiment's judging failed: more than [`MAX_JUDGE_ERROR_RATE`] of one metric's judge
/// calls in one arm failed or answered with something other than the asked-for object. Each
/// arm on its own: a judge that fails on one arm's outputs (a content filter, a context limit)
/// leaves that arm judged on the outputs it happened to answer for, however well the other arm
/// was judged. Each metric on its own too: a judge that refuses only the hallucination question
/// leaves `hallucination_rate` measured on the outputs it chose to answer, however well it
/// answered the rubric's and relevance's on the same outputs.
pub(super) fn judge_failure(e: &ExperimentResult) -> Option<String> {
    [Arm::Baseline, Arm::Candidate].into_iter().find_map(|arm| {
        // Per metric, in name order: (judge calls, the failed ones).
        let mut by_metric: std::collections::BTreeMap<&str, (usize, Vec<&Judgement>)> =
            std::collections::BTreeMap::new();
        for judgement in (e.cases.iter())
            .flat_map(|c| c.calls(arm))
            .flat_map(|call| call.evaluation.judgements())
        {
            let entry = by_metric.entry(judgement.metric.as_str()).or_default();
            entry.0 += 1;
            if judgement.error.is_some() {
                entry.1.push(judgement);
            }
        }
        // The arm's judge calls together, then each metric's with enough of them to be judged
        // (below `MIN_UNITS_MEAN` a metric is too few to gate anyway, and one failure in three
        // calls is no evidence the judge fails on its question).
        let (asked, failed): (usize, Vec<&Judgement>) =
            by_metric
                .values()
                .fold((0, Vec::new()), |(n, mut all), (asked, failed)| {
                    all.extend(failed.iter().copied());
                    (n + asked, all)
                });
        std::iter::once(("", (asked, failed)))
            .chain(by_metric.into_iter().filter(|(_, (asked, _))| *asked >= crate::metrics::MIN_UNITS_MEAN))
            .find_map(|(metric, (asked, failed))| {
            let rate = failed.len() as f64 / asked.max(1) as f64;
            let which = if metric.is_empty() { String::new() } else { format!("`{metric}` ") };
            (rate > MAX_JUDGE_ERROR_RATE).then(|| {
                format!(
                    "the run failed: {} of {asked} {which}judge calls on the {}'s outputs failed ({}, more than {} allowed: the judged metrics would rest on the outputs the judge happened to answer; run.judge_error_rate counts every judge call of the run); first error: {}",
                    failed.len(),
                    arm.name(),
                    format::relative(rate).trim_start_matches('+'),
                    format::relative(MAX_JUDGE_ERROR_RATE).trim_start_matches('+'),
                    failed.first().and_then(|j| j.error.clone()).unwrap_or_default()
                )
            })
        })
    })
}

/// Whether some experiment's judging failed ([`judge_failure`]) while its calls did not.
pub(super) fn judging_failed(results: &Results) -> bool {
    let max_error_rate = results.defaults.as_ref().map_or(1.0, |d| d.max_error_rate);
    // Only when no experiment failed on its calls: a provider's failure is the one to fix first.
    let experiments = &results.experiments;
    experiments.iter().all(|e| arm_failure(e, max_error_rate).is_none())
        && experiments.iter().any(|e| judge_failure(e).is_some())
}

/// The proof `m`'s gate requires (`require:`) and its interval did not give: "equivalent" or
/// "non-inferior"; `None` without a requirement, or with it met.
pub fn unproven(m: &MetricResult) -> Option<&'static str> {
    match m.details.require.as_deref()? {
        "equivalence" => (m.details.equivalent != Some(true)).then_some("equivalent"),
        _ => (!m.non_inferior).then_some("non-inferior"),
    }
}

pub(super) fn p_text(m: &MetricResult) -> String {
    m.p_adjusted.or(m.p_value).map_or_else(String::new, format::p_sentence)
}

/// Why a metric fails its gate, in one clause: regressed, no data, too few cases for a proof,
/// an objective missed, or a proof its gate requires and lacks.
pub(super) fn describe_failure(m: &MetricResult) -> String {
    match m.verdict {
        MetricVerdict::Regression => {
            let (baseline, candidate) = format::values(&m.name, m.baseline, m.candidate);
            return format!("{} regressed ({baseline} → {candidate}, {})", m.name, p_text(m));
        }
        // A new experiment has nothing to compare with, but its own value can miss an
        // objective: that is the failure, said below.
        MetricVerdict::NoData if m.slo.as_ref().is_none_or(|s| s.met) || m.candidate.is_none() => {
            return format!("{} has no data to compare", m.name);
        }
        MetricVerdict::TooFew => {
            // Grouped cases count by group (the unit of inference).
            let units = match m.details.cases {
                Some(cases) if cases != m.n => format!(
                    "groups to be judged ({} of {}; {cases} cases)",
                    m.n,
                    m.details.min_n.unwrap_or(0)
                ),
                _ => format!("cases to be judged ({} of {})", m.n, m.details.min_n.unwrap_or(0)),
            };
            if let Some(require) = &m.details.require {
                let proven = if require == "equivalence" {
                    "equivalent"
                } else {
                    "non-inferior"
                };
                // The minimum shown is the bound's unless the metric's minimum is lower.
                let amount = if crate::metrics::Metric::of(&m.name).is_skewed_amount()
                    && m.test == crate::metrics::Test::PairedT.as_str()
                    && m.details.min_n.is_some_and(|n| n < crate::metrics::MIN_UNITS_AMOUNT)
                {
                    format!(
                        " (a bound on {} needs {} cases)",
                        m.name,
                        crate::metrics::MIN_UNITS_AMOUNT
                    )
                } else {
                    String::new()
                };
                return format!(
                    "{} is not proven {proven} within its margin, as its gate requires: too few {units}{amount}",
                    m.name
                );
            }
            return format!(
                "{} has too few {units} after this PR removed, regrouped or edited the dataset's cases",
                m.name
            );
        }
        _ => {}
    }
    if let Some(slo) = m.slo.as_ref().filter(|s| !s.met) {
        return format!(
            "{} misses its objective ({} vs {})",
            m.name,
            format::value(&m.name, m.candidate),
            format::value(&m.name, Some(slo.target))
        );
    }
    // A skewed amount the paired t judged (below 40 cases) proves no bound, however narrow.
    let why = match m.test == crate::metrics::Test::PairedT.as_str()
        && !crate::metrics::Metric::of(&m.name).proves_bounds(crate::metrics::Test::PairedT, m.n)
    {
        true => format!(
            " ({} proves a bound from {} cases; this run had {})",
            m.name,
            crate::metrics::MIN_UNITS_AMOUNT,
            m.n
        ),
        false => String::new(),
    };
    // A margin of 0 leaves only a significant improvement to prove a bound; with a baseline of
    // 0 (a percentage of it is 0 too), not even that, for a rate that cannot fall below it.
    let why = match m.details.decision.as_ref().map(|d| d.margin) {
        Some(margin) if margin == 0.0 && why.is_empty() => match m.baseline {
            Some(0.0) => " (its margin is 0 on a baseline of 0: no interval can prove that; give the gate an absolute margin, e.g. `margin: 0.01`)".to_owned(),
            _ => " (its margin is 0: only a significant improvement proves that)".to_owned(),
        },
        _ => why,
    };
    // Named by what the gate requires: a gate requiring non-inferiority read "not proven
    // equivalent or non-inferior" (the audit).
    let proven = match (unproven(m), m.details.require.as_deref()) {
        (Some(proof), _) => proof,
        (None, Some("equivalence")) => "equivalent",
        (None, Some(_)) => "non-inferior",
        (None, None) if m.details.equivalent == Some(false) && !m.non_inferior => "equivalent or non-inferior",
        (None, None) if m.details.equivalent == Some(false) => "equivalent",
        (None, None) => "non-inferior",
    };
    format!(
        "{} is not proven {proven} within its margin, as its gate requires{why}",
        m.name
    )
}
