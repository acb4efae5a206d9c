//! One row of an experiment's metric table: the values, the interval, the verdict in words
//! and why a value is missing (cached latencies, a model with no price, a batch).

use serde::Serialize;

use super::escaping::Safe;
use crate::report::escape::escape_untrusted;
use crate::report::words::{self, MetricText};
use crate::results::{Arm, ExperimentResult, ExperimentStatus, MetricResult, MetricVerdict};

#[derive(Debug, Serialize)]
pub(super) struct MetricRow<'a> {
    name: &'a str,
    blocking: bool,
    gated: bool,
    fails_gate: bool,
    baseline: Safe,
    candidate: Safe,
    delta: Safe,
    ci: Safe,
    p: Safe,
    /// "❌ regression", "improvement", "no detectable change · non-inferior", …
    verdict: Safe,
}

/// The models of the experiment's arms that answered calls with no price (their calls have no
/// `cost_per_request`), as the pull request names them: escaped.
pub(super) fn unpriced_models(e: &ExperimentResult) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for (info, arm) in [(&e.baseline, Arm::Baseline), (&e.candidate, Arm::Candidate)] {
        if let Some(info) = info
            && e.cases.iter().flat_map(|c| c.calls(arm)).any(|c| c.unpriced)
        {
            let model = escape_untrusted(&info.model, 60);
            if !models.contains(&model) {
                models.push(model);
            }
        }
    }
    models
}

impl<'a> MetricRow<'a> {
    /// `batched`: some of the experiment's calls went through a batch API (`run --batch`);
    /// `unpriced`: the models whose calls have no price (escaped).
    pub(super) fn new(
        m: &'a MetricResult,
        status: ExperimentStatus,
        batched: bool,
        unpriced: &[String],
    ) -> MetricRow<'a> {
        let text = MetricText::new(m);
        let mut verdict = words::verdict_text(m, status == ExperimentStatus::New);
        if m.fails_gate {
            verdict = format!("❌ {verdict}");
        } else if m.verdict == MetricVerdict::MinorRegression {
            verdict = format!("⚠️ {verdict}");
        }
        let mut parts = vec![verdict];
        // A gate that fails for a proof it lacks says so beside its verdict (the row read "❌ no
        // significant change", or "❌ minor regression (within margin)", alone).
        if m.fails_gate
            && !matches!(m.verdict, MetricVerdict::Regression | MetricVerdict::NoData)
            && let Some(proven) = crate::verdict::unproven(m)
        {
            parts.push(format!("not proven {proven}, as its gate requires"));
        }
        if let Some(slo) = text.slo_missed.clone() {
            let symbol = if m.fails_gate { "" } else { "⚠️ " };
            parts.push(format!("{symbol}{slo}"));
        }
        let is_cost = m.name == crate::metrics::COST;
        if is_cost && !unpriced.is_empty() {
            parts.push(format!("no price for {}: add it under `pricing:`", unpriced.join(", ")));
        }
        if m.details.left_out > 0 {
            let compared = m.details.cases.unwrap_or(m.n);
            let total = compared + m.details.left_out;
            parts.push(if crate::metrics::Metric::of(&m.name).quantile().is_some() {
                format!(
                    "{compared} of {total} cases timed in this run ({} cached left out)",
                    m.details.left_out
                )
            } else {
                format!(
                    "{compared} of {total} cases compared ({} with a value in one arm only left out)",
                    m.details.left_out
                )
            });
        }
        if batched && m.verdict == MetricVerdict::NoData && crate::metrics::Metric::of(&m.name).quantile().is_some() {
            parts.push("not measured: calls sent through a batch API (`--batch`) have no latency".to_owned());
        }
        parts.extend(words::gate_qualifier(m).map(str::to_owned));
        MetricRow {
            name: &m.name,
            blocking: m.blocking && m.gated,
            gated: m.gated,
            fails_gate: m.fails_gate,
            baseline: Safe(text.baseline),
            candidate: Safe(text.candidate),
            delta: Safe(text.delta),
            ci: Safe(text.ci),
            p: Safe(text.p),
            verdict: Safe(parts.join(" · ")),
        }
    }
}
