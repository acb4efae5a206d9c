//! Gates: the defaults a suite without `gates:` gets, and the check that every gate names a
//! metric something produces.

use super::*;

/// Higher is better for quality scores; lower for errors, latency, cost, hallucinations and
/// leaks (`metrics::Metric::default_direction`, the one home of that rule).
pub fn default_direction(metric: &str) -> Direction {
    crate::metrics::Metric::of(metric).default_direction()
}

/// Quality and errors block by default; latency and cost inform unless the suite says so.
pub(super) fn default_blocking(metric: &str) -> bool {
    metric == "pass_rate" || metric == "error_rate"
}

/// What a gate says against the metric it names, each a message and a hint: a direction
/// against the one promptgate knows (`direction_written`: the gate wrote one), which turns the
/// gate upside down (a falling pass rate would read as an improvement); and an absolute margin
/// of a whole rate or more on a rate promptgate records, which is no gate at all (the audit:
/// `margin: 5` read as 5 points panicked after the calls were paid for; `margin: 1` let 100% →
/// 0% pass). An `exec` script's `_rate` score may be any number, and its direction is its own.
pub(super) fn contradictions(
    metric: &str,
    direction_written: bool,
    direction: Direction,
    margin: Option<Margin>,
) -> Vec<(String, String)> {
    let known = crate::metrics::Metric::of(metric);
    let mut found = Vec::new();
    if direction_written && known.direction_known() && direction != known.default_direction() {
        let (better, said) = match known.default_direction() {
            Direction::Higher => ("higher", "lower"),
            Direction::Lower => ("lower", "higher"),
        };
        found.push((
            format!("gate `{metric}`: `direction: {said}` contradicts the metric: a {better} `{metric}` is better"),
            "remove `direction:` from this gate: promptgate knows which way this metric is better".to_owned(),
        ));
    }
    let Some((low, high)) = known.known_range() else {
        return found;
    };
    // A share of the baseline of 100% or more, for a metric better higher that cannot go below
    // 0: no fall passes it either (`"100%"` let a pass rate of 100% → 0% pass).
    if let (Direction::Higher, Some(Margin::Relative(r))) = (direction, margin)
        && low == 0.0
        && r >= 1.0
    {
        found.push((
            format!(
                "gate `{metric}`: a margin of {}% of the baseline is all of it: no fall could fail it",
                r * 100.0
            ),
            "a margin of a share of the baseline is below 100%, e.g. `margin: \"5%\"`; or an amount, e.g. `margin: 0.05` for 5 percentage points".to_owned(),
        ));
    }
    let width = high - low;
    if let Some(Margin::Absolute(m)) = margin
        && m >= width
    {
        let what = if known.unit == crate::metrics::Unit::Share {
            "a rate's"
        } else {
            "its"
        };
        found.push((
            format!("gate `{metric}`: a margin of {m} is {what} whole range ({low} to {high}): no change could fail it"),
            format!(
                "write the margin as a share of that range (`margin: 0.05` for 5 percentage points) or as a share of the baseline (`margin: \"5%\"`){}",
                if m <= 100.0 { format!("; `{m}` looks meant as `{}`", m / 100.0) } else { String::new() }
            ),
        ));
    }
    found
}

/// The gates a suite without a `gates:` section gets.
pub(super) fn default_gates(alpha: f64) -> Vec<GateSpec> {
    let gate = |metric: &str, margin: Margin| GateSpec {
        metric: metric.to_owned(),
        direction: default_direction(metric),
        margin,
        alpha,
        blocking: default_blocking(metric),
        slo: None,
        require_non_inferiority: false,
        require_equivalence: false,
    };
    vec![
        gate("pass_rate", Margin::Absolute(0.0)),
        gate("error_rate", Margin::Absolute(0.0)),
        gate("latency_p95_ms", Margin::Relative(0.10)),
        gate("cost_per_request", Margin::Relative(0.10)),
    ]
}

/// Gate names must be metrics something produces: every gate that names none is an error.
pub(super) fn check_gate_metrics(source: &dyn FileSource, suite: &Suite) -> Result<(), Vec<Error>> {
    let mut known: BTreeSet<String> = BUILTIN_METRICS.iter().map(|m| (*m).to_owned()).collect();
    known.insert(crate::metrics::FLAKY_SHARE.to_owned());
    known.insert(crate::metrics::CONSISTENCY.to_owned());
    for e in &suite.experiments {
        for a in e.asserts.iter().chain(e.cases.iter().flat_map(|c| c.asserts.iter())) {
            known.extend(a.metrics());
        }
    }
    let mut errors: Vec<Error> = check_hallucination_directions(source, suite)
        .err()
        .into_iter()
        .chain(check_higher_directions(source, suite).err())
        .collect();
    // `gates:` is the canary's too (`canary.gates` overrides it): a metric only a canary
    // measures (p99, thumbs-down, logged quality) is its, and no experiment's, when the file
    // has a canary.
    let canary = std::cell::LazyCell::new(|| super::has_canary(source, &suite.config_path));
    for g in &suite.gates {
        let canarys = super::canary::CANARY_METRICS.contains(&g.metric.as_str());
        if canarys && !known.contains(&g.metric) && *canary {
            continue;
        }
        if !known.contains(&g.metric) {
            // Metrics an assertion feeds by default, which a canary measures too.
            let fed_by = match g.metric.as_str() {
                "hallucination_rate" => Some("{type: hallucination, context_var: context}"),
                "relevance" => Some("{type: relevance}"),
                _ => None,
            };
            let hint = match did_you_mean(&g.metric, known.iter().map(String::as_str)) {
                _ if let Some(assertion) = fed_by => format!(
                    "no assertion of an experiment feeds `{}`: add one, e.g. `{assertion}`, or gate it in a file with a `canary:` section, where `promptgate canary` measures it on production logs",
                    g.metric
                ),
                Some(s) if !canarys => format!("did you mean `{s}`?"),
                _ if canarys => format!(
                    "`{}` is measured by `promptgate canary` on production logs, not by a pull request's run: gate it in a file with a `canary:` section",
                    g.metric
                ),
                _ => format!(
                    "known metrics: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            let d = Diagnostic::new(format!("gate on unknown metric `{}`", g.metric)).in_file(&suite.config_path);
            let d = match gate_key_location(source, &suite.config_path, &g.metric) {
                Some((text, line, column)) => d.at(&text, line, column),
                None => d,
            };
            errors.push(d.hint(hint).into());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// A `hallucination` judgement is 1 for an unsupported claim: its metric must read
/// lower-is-better, by its gate's direction, or by its name when it has no gate (a name of
/// one's own such as `faithfulness` would report more hallucinations as an improvement).
fn check_hallucination_directions(source: &dyn FileSource, suite: &Suite) -> Result<(), Error> {
    let mut checked = BTreeSet::new();
    for e in &suite.experiments {
        for a in e.asserts.iter().chain(e.cases.iter().flat_map(|c| c.asserts.iter())) {
            if !matches!(a.check, Check::Judge(JudgeCheck::Hallucination { .. })) || !checked.insert(&a.metric) {
                continue;
            }
            let gate = suite.gates.iter().find(|g| g.metric == a.metric);
            if gate.map_or_else(|| default_direction(&a.metric), |g| g.direction) == Direction::Lower {
                continue;
            }
            let d = Diagnostic::new(format!(
                "the `hallucination` score is 1 when the output makes an unsupported claim, so its metric `{}` must read lower-is-better",
                a.metric
            ))
            .in_file(&suite.config_path);
            let at = match gate {
                Some(_) => gate_key_location(source, &suite.config_path, &a.metric),
                None => first_mention(source, &suite.config_path, &a.metric),
            };
            let d = match at {
                Some((text, line, column)) => d.at(&text, line, column),
                None => d,
            };
            return Err(d
                .hint("give its gate `direction: lower`, or name it as a hallucination rate, e.g. `metric: policy_hallucination_rate` (the default is `hallucination_rate`)")
                .into());
        }
    }
    Ok(())
}

/// Every other assertion's score is higher for a better output (a check passed, a judge's
/// score, a preference for the candidate): its metric must read higher-is-better, by its
/// gate's direction, or by its name when its gate gives none. A name the metrics read as
/// lower-is-better (it names a hallucination, a leak, a time or a cost) would report its fall
/// as an improvement, and the gate would pass it.
fn check_higher_directions(source: &dyn FileSource, suite: &Suite) -> Result<(), Error> {
    let mut checked = BTreeSet::new();
    for e in &suite.experiments {
        for a in e.asserts.iter().chain(e.cases.iter().flat_map(|c| c.asserts.iter())) {
            if matches!(
                a.check,
                Check::Pii(_) | Check::Exec { .. } | Check::Judge(JudgeCheck::Hallucination { .. })
            ) {
                continue;
            }
            for metric in a.metrics() {
                if !checked.insert(metric.clone()) {
                    continue;
                }
                let gate = suite.gates.iter().find(|g| g.metric == metric);
                if gate.map_or_else(|| default_direction(&metric), |g| g.direction) == Direction::Higher {
                    continue;
                }
                let d = Diagnostic::new(format!(
                    "the `{metric}` score is higher for a better output, but it reads lower-is-better (its name names a hallucination, a leak, a time or a cost{}), so a fall would read as an improvement",
                    if gate.is_some() { ", or its gate says `direction: lower`" } else { "" }
                ))
                .in_file(&suite.config_path);
                let at = match gate {
                    Some(_) => gate_key_location(source, &suite.config_path, &metric),
                    None => first_mention(source, &suite.config_path, &metric),
                };
                let d = match at {
                    Some((text, line, column)) => d.at(&text, line, column),
                    None => d,
                };
                return Err(d
                    .hint(format!("give it a gate with `direction: higher` (`{metric}: {{direction: higher}}` under `gates:`), or name it for what it rewards, e.g. `metric: grounded`"))
                    .into());
            }
        }
    }
    Ok(())
}

/// The first place `word` is written in the suite file (1-based line and column).
fn first_mention(source: &dyn FileSource, config_path: &str, word: &str) -> Option<(String, u64, u64)> {
    let text = source.read(config_path).ok().flatten()?;
    let (line, column) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find(word).map(|c| (i as u64 + 1, l[..c].chars().count() as u64 + 1)))?;
    Some((text, line, column))
}

/// Where a gate's metric is written in the suite file. The resolved gates do not carry it, and
/// it is only needed on this error path, so the file is read again.
fn gate_key_location(source: &dyn FileSource, config_path: &str, metric: &str) -> Option<(String, u64, u64)> {
    #[derive(serde::Deserialize)]
    struct GateKeys {
        #[serde(default)]
        gates: std::collections::HashMap<serde_saphyr::Spanned<String>, serde::de::IgnoredAny>,
    }
    let text = source.read(config_path).ok().flatten()?;
    let keys: GateKeys = serde_saphyr::from_str(&text).ok()?;
    let key = keys.gates.into_keys().find(|k| k.value == metric)?;
    Some((text, key.referenced.line(), key.referenced.column()))
}
