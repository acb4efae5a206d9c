//! The words a reader sees for a metric: its numbers as the report shows them, its verdict with
//! the qualifiers that separate significance from size, and the rule behind them. One module,
//! so the terminal, the comment, the charts and the JUnit report say the same thing.

use crate::format::{self, dash, finite, p_value};
use crate::results::{Direction, ExperimentResult, MetricResult, MetricVerdict};

/// The rule the verdicts follow, in one sentence (the comment's footer).
pub const RULE: &str = "A metric regresses when it is significantly worse (p < α, Holm-adjusted across the \
blocking gates) and its estimate is beyond the margin; significantly worse within the margin is a minor \
regression, shown but not failing; with too few cases a metric is reported, not gated (a gate that \
requires non-inferiority or equivalence fails until it is proven).";

/// Whether a metric of `results` fails its gate by regressing, rather than for a proof its gate
/// requires, an objective missed or data missing: the words of a failure follow it.
pub fn regressed(results: &crate::results::Results) -> bool {
    results
        .experiments
        .iter()
        .flat_map(|e| &e.metrics)
        .any(|m| m.fails_gate && m.verdict == MetricVerdict::Regression)
}

/// The heading's word for a failing PR: "regression" when a metric regressed ([`regressed`]),
/// else "fail" (the audit's suite whose arms were identical read "regression").
pub fn fail_word(regressed: bool) -> &'static str {
    if regressed { "regression" } else { "fail" }
}

/// What a waiver accepts: "regression accepted", or "failure accepted" when no metric
/// regressed ([`regressed`]).
pub fn accepted(regressed: bool) -> &'static str {
    if regressed {
        "regression accepted"
    } else {
        "failure accepted"
    }
}

/// The interval column's header (see `ExperimentView::ci_label`).
pub fn ci_label(e: &ExperimentResult) -> String {
    if e.noise.sequential.is_some() {
        return "repeated CI".to_owned();
    }
    let mut alphas = e.metrics.iter().map(|m| m.alpha);
    match alphas.next() {
        Some(first) if alphas.all(|a| a == first) => {
            let level = format!("{:.2}", 100.0 * (1.0 - first));
            format!("{}% CI", level.trim_end_matches('0').trim_end_matches('.'))
        }
        _ => "CI (1 − α)".to_owned(),
    }
}

/// A metric's verdict with its qualifiers: "regression", "minor regression (within margin)",
/// "improvement (beyond margin)", "no significant change · non-inferior", "too few cases to
/// judge (44 of 100)". `candidate_only` for an experiment without a baseline.
pub fn verdict_text(m: &MetricResult, candidate_only: bool) -> String {
    let basis_margin = m.details.decision.as_ref().map_or(m.margin, |d| d.margin);
    if let Some(way) = crate::metrics::assumed_change(m) {
        return format!("significantly {way} · no gate sets its direction");
    }
    match m.verdict {
        MetricVerdict::NoData if candidate_only => "candidate only".to_owned(),
        // Without a gate there is no margin to be materially beyond: a significant change is
        // that, not a regression (the audit: +0.02 ms of p50 latency read "regression").
        MetricVerdict::Regression if !m.gated => "significantly worse".to_owned(),
        MetricVerdict::Improvement if !m.gated => "significantly better".to_owned(),
        MetricVerdict::Improvement if basis_margin > 0.0 => {
            let beyond = m.details.decision.as_ref().is_some_and(|d| d.estimate.abs() > d.margin);
            format!("improvement ({} margin)", if beyond { "beyond" } else { "within" })
        }
        // Without a margin, "non-inferior" and "equivalent" have nothing to be within.
        MetricVerdict::NoChange => match no_change_qualifier(m) {
            Some(BORDERLINE) => format!(
                "{} · {BORDERLINE}: the interval excludes 0, but the {} does not reject",
                m.verdict.label(),
                match m.test == crate::metrics::Test::McnemarExact.as_str() {
                    true => "exact test",
                    false => "test",
                }
            ),
            Some(qualifier) => format!("{} · {qualifier}", m.verdict.label()),
            None => m.verdict.label().to_owned(),
        },
        MetricVerdict::TooFew => {
            // Grouped cases count by group, the unit of inference.
            let label = m.verdict.label().replace("cases", m.units_word());
            match m.details.min_n {
                Some(min) => format!("{label} ({} of {min})", m.n),
                None => label,
            }
        }
        v => v.label().to_owned(),
    }
}

/// The qualifier of a change the test did not call significant though the interval excludes 0.
const BORDERLINE: &str = "borderline";

/// What "no significant change" proved: `equivalent`, `non-inferior`, `variance unknown` or
/// `inconclusive`; nothing without a margin (there is nothing to be within). The table and the
/// quality chart say the same.
pub fn no_change_qualifier(m: &MetricResult) -> Option<&'static str> {
    let basis_margin = m.details.decision.as_ref().map_or(m.margin, |d| d.margin);
    // The exact McNemar test and the Newcombe interval beside it can disagree near the edge
    // (9 against 2 of 40 cases: p = 0.065, the interval −33.5 to −1.1 pp): "no significant
    // change" beside an interval that excludes 0 says which one decided.
    let borderline = m.ci.is_some_and(|[lo, hi]| lo > 0.0 || hi < 0.0);
    if basis_margin <= 0.0 && !m.details.variance_unknown && !borderline {
        return None;
    }
    Some(if m.details.equivalent == Some(true) {
        "equivalent"
    } else if m.non_inferior && basis_margin > 0.0 {
        "non-inferior"
    } else if borderline {
        BORDERLINE
    } else if m.details.variance_unknown {
        "variance unknown"
    } else {
        "inconclusive"
    })
}

/// What an A/A run recommends for a metric, in the report's and the terminal's words: "To
/// detect a change of 5.0 pp in pass_rate: about 157 cases × 2 repeats" (`shown` is the
/// metric's name as the output shows it).
pub fn aa_recommendation(r: &crate::results::AaRecommendation, shown: &str) -> String {
    let cases = |c: usize| format!("about {c} case{}", if c == 1 { "" } else { "s" });
    let design = match (r.cases, r.repeats) {
        (Some(c), Some(k)) => format!("{} × {k} repeat{}", cases(c), if k == 1 { "" } else { "s" }),
        (Some(c), None) => cases(c),
        _ => "more data than this run can estimate".to_owned(),
    };
    format!(
        "To detect a change of {} in {shown}: {design}",
        format::unit(&r.metric).magnitude(r.margin)
    )
}

/// A metric's numbers as the report shows them.
pub struct MetricText {
    pub baseline: String,
    pub candidate: String,
    pub delta: String,
    pub ci: String,
    /// p_adjusted when present, else p_value.
    pub p: String,
    /// The margin, in the unit differences are shown in.
    pub margin: String,
    /// "SLO ≤ 800 ms missed" when the candidate misses its objective.
    pub slo_missed: Option<String>,
}

impl MetricText {
    pub fn new(m: &MetricResult) -> MetricText {
        let unit = format::unit(&m.name);
        let too_few = m.verdict == MetricVerdict::TooFew;
        let slo_missed = m.slo.as_ref().filter(|slo| !slo.met && !too_few).map(|slo| {
            let bound = match m.direction {
                Direction::Lower => "≤",
                Direction::Higher => "≥",
            };
            format!("SLO {bound} {} missed", unit.value(slo.target))
        });
        let judged = !matches!(m.verdict, MetricVerdict::TooFew | MetricVerdict::NoData);
        let relative = m.details.decision.as_ref().filter(|d| d.relative);
        let percent = |r: f64| format::relative(r);
        let (baseline, candidate) = format::values(&m.name, m.baseline, m.candidate);
        MetricText {
            baseline,
            candidate,
            delta: match (finite(m.delta), relative) {
                (None, _) => dash(),
                (Some(d), Some(basis)) if unit != format::Unit::Usd => {
                    format!("{} ({})", unit.signed(d), percent(basis.estimate))
                }
                (Some(d), _) => unit.delta(d, finite(m.baseline)),
            },
            // The interval the decision used: relative for a relative margin.
            ci: match relative {
                Some(basis) => basis
                    .ci
                    .filter(|[lo, hi]| lo.is_finite() && hi.is_finite())
                    .map_or_else(dash, |[lo, hi]| format!("[{}, {}]", percent(lo), percent(hi))),
                None => {
                    m.ci.filter(|[lo, hi]| lo.is_finite() && hi.is_finite())
                        .map_or_else(dash, |[lo, hi]| unit.interval(lo, hi))
                }
            },
            p: if judged {
                p_value(m.p_adjusted.or(m.p_value))
            } else {
                dash()
            },
            margin: match relative {
                Some(basis) => format!("{:.0}%", basis.margin * 100.0),
                None if m.margin.is_finite() => unit.magnitude(m.margin),
                None => dash(),
            },
            slo_missed,
        }
    }
}

/// What the words of a metric's verdict leave out about its gate: "not gated" (a metric no gate
/// names), or "not blocking" beside a regression its gate does not block on. The comment's
/// table and the terminal both say it, so a regression that fails nothing never reads as one
/// that does.
pub fn gate_qualifier(m: &MetricResult) -> Option<&'static str> {
    if !m.gated {
        Some("not gated")
    } else if !m.blocking && matches!(m.verdict, MetricVerdict::Regression | MetricVerdict::MinorRegression) {
        Some("not blocking")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::markdown::test_fixtures::metric;

    #[track_caller]
    fn check_metric(name: &str, b: f64, c: f64, ci: [f64; 2], expected: [&str; 4]) {
        let mut m = metric(name, Direction::Higher);
        m.baseline = Some(b);
        m.candidate = Some(c);
        m.delta = Some(c - b);
        m.ci = Some(ci);
        let text = MetricText::new(&m);
        assert_eq!([&*text.baseline, &*text.candidate, &*text.delta, &*text.ci], expected);
    }

    #[test]
    fn numbers_are_formatted_by_unit() {
        check_metric(
            "pass_rate",
            0.87,
            0.81,
            [-0.095, -0.025],
            ["87.0%", "81.0%", "−6.0 pp", "[−9.5, −2.5] pp"],
        );
        check_metric(
            "hallucination_rate",
            0.02,
            0.02,
            [-0.0001, 0.01],
            ["2.0%", "2.0%", "0.0 pp", "[0.0, +1.0] pp"],
        );
        check_metric(
            "latency_p95_ms",
            612.0,
            655.4,
            [-12.4, 97.6],
            ["612 ms", "655 ms", "+43 ms", "[−12, +98] ms"],
        );
        check_metric(
            "cost_per_request",
            0.000412,
            0.000405,
            [-0.0000201, 0.0000062],
            [
                "$0.000412",
                "$0.000405",
                "−$0.00000700 (−1.7%)",
                "[−$0.0000201, +$0.00000620]",
            ],
        );
        check_metric(
            "cost_per_request",
            0.0,
            1.5,
            [1.2, 1.8],
            ["$0", "$1.50", "+$1.50", "[+$1.20, +$1.80]"],
        );
        check_metric(
            "relevance",
            0.842,
            0.835,
            [-0.021, 0.007],
            ["0.842", "0.835", "−0.007", "[−0.021, +0.007]"],
        );
    }

    #[test]
    fn p_shows_the_adjusted_value_when_there_is_one() {
        let mut m = metric("pass_rate", Direction::Higher);
        m.p_value = Some(0.002);
        assert_eq!(MetricText::new(&m).p, "0.002");
        m.p_adjusted = Some(0.006);
        assert_eq!(MetricText::new(&m).p, "0.006");
    }

    /// A score whose direction nothing set (an `exec` script's `toxicity`, ungated) that rose
    /// significantly is "significantly higher", not an improvement, in the row and the
    /// experiment's summary; gated, its gate's direction decides the words.
    #[test]
    fn a_change_of_a_metric_whose_direction_nothing_set_is_not_called_better() {
        let mut m = metric("toxicity", Direction::Higher);
        m.gated = false;
        m.verdict = MetricVerdict::Improvement;
        assert_eq!(
            verdict_text(&m, false),
            "significantly higher · no gate sets its direction"
        );
        m.verdict = MetricVerdict::Regression;
        assert_eq!(
            verdict_text(&m, false),
            "significantly lower · no gate sets its direction"
        );
        let mut e = crate::report::markdown::test_fixtures::demo_results()
            .experiments
            .remove(0);
        m.verdict = MetricVerdict::Improvement;
        e.metrics = vec![m.clone()];
        let (_, reason) = crate::verdict::experiment_verdict(&e);
        assert_eq!(reason, "toxicity significantly higher (no gate sets its direction)");
        m.gated = true;
        assert_eq!(verdict_text(&m, false), "improvement");
        // A metric whose direction is known, ungated: better or worse, but with no margin to be
        // materially beyond, no improvement or regression (the audit: +0.02 ms of p50 latency
        // read "regression").
        let mut known = metric("relevance", Direction::Higher);
        known.gated = false;
        known.verdict = MetricVerdict::Improvement;
        assert_eq!(verdict_text(&known, false), "significantly better");
        known.verdict = MetricVerdict::Regression;
        assert_eq!(verdict_text(&known, false), "significantly worse");
    }
}
