//! The charts as text, for a comment whose images are not published.

use super::*;

/// The charts as text: one bar pair per quality metric, latency p50/p95, cost, flips. Width
/// of a bar in cells.
pub(super) const BAR_CELLS: usize = 20;

pub(super) fn text_chart(e: &ExperimentResult, requests_per_month: Option<u64>) -> Vec<String> {
    let mut lines = Vec::new();
    let row = |label: &str, arm: &str, bar: String, text: String| {
        format!("{label:<20} {arm:<9} {bar} {text}").trim_end().to_owned()
    };
    for m in e.metrics.iter().filter(|m| figures::is_quality(m)) {
        let (b, c) = (finite(m.baseline), finite(m.candidate));
        let in_unit_range = [b, c].iter().flatten().all(|x| (0.0..=1.0).contains(x));
        let scale = if in_unit_range {
            1.0
        } else {
            [b, c].iter().flatten().fold(0.0, |acc: f64, x| acc.max(x.abs()))
        };
        let name = safe_label(&m.name);
        let (b_text, c_text) = format::values(&m.name, b, c);
        if let Some(b) = b {
            lines.push(row(&name, "baseline", bar(b, scale), b_text));
        }
        if let Some(c) = c {
            let mut text = c_text;
            if let (Some(_), Some(_)) = (finite(m.delta), b) {
                let text_of = MetricText::new(m);
                text.push_str(&format!(
                    "   Δ {} {} {}",
                    text_of.delta,
                    text_of.ci,
                    words::verdict_text(m, false)
                ));
            }
            let label = if b.is_some() { String::new() } else { name };
            lines.push(row(&label, "candidate", bar(c, scale), text));
        }
    }
    let latency = figures::latency_summary(e);
    let p95_max = latency.iter().flatten().fold(0.0, |acc: f64, l| acc.max(l.p95));
    // Both arms' quantiles told apart as the table's values are (8.02 ms against 8.05 ms).
    let ms = format::Unit::Milliseconds;
    let texts = match &latency {
        [Some(b), Some(c)] => {
            let ((b95, c95), (b50, c50)) = (ms.pair(b.p95, c.p95), ms.pair(b.p50, c.p50));
            [Some((b95, b50)), Some((c95, c50))]
        }
        _ => latency.map(|l| l.map(|l| (ms.value(l.p95), ms.value(l.p50)))),
    };
    for (i, (arm, summary)) in ["baseline", "candidate"].into_iter().zip(&latency).enumerate() {
        if let (Some(l), Some((p95, p50))) = (summary, &texts[i]) {
            let label = if i == 0 || latency[0].is_none() {
                "latency p95 (p50)"
            } else {
                ""
            };
            let text = format!("{p95} ({p50}) over {} calls", l.calls);
            lines.push(row(label, arm, bar(l.p95, p95_max), text));
        }
    }
    let costs = figures::cost_per_request(e);
    let cost_max = costs.iter().flatten().fold(0.0, |acc: f64, x| acc.max(*x));
    for (i, (arm, cost)) in ["baseline", "candidate"].into_iter().zip(costs).enumerate() {
        if let Some(cost) = cost {
            let label = if i == 0 || costs[0].is_none() {
                "cost per request"
            } else {
                ""
            };
            let mut text = dollars(cost);
            if let Some(rpm) = requests_per_month {
                text.push_str(&format!(" · {}/month", figures::whole_dollars(cost * rpm as f64)));
            }
            lines.push(row(label, arm, bar(cost, cost_max), text));
        }
    }
    if let Some(p) = figures::monthly_projection(e, requests_per_month) {
        lines.push(format!("{:<20} {}", "", figures::savings_sentence(&p).0));
    }
    let count = |flip| e.cases.iter().filter(|c| c.flip == Some(flip)).count();
    let compared = e
        .cases
        .iter()
        .filter(|c| !c.baseline.is_empty() && !c.candidate.is_empty())
        .count();
    if compared > 0 {
        let (worse, better) = (count(Flip::PassToFail), count(Flip::FailToPass));
        // A case whose outcome is unknown in an arm (no judgement answered it, nothing else
        // failed it) has no flip: it is not "unchanged", and the line says how many.
        let unknown = e
            .cases
            .iter()
            .filter(|c| c.flip.is_none() && !c.baseline.is_empty() && !c.candidate.is_empty())
            .filter(|c| {
                [&c.baseline, &c.candidate]
                    .into_iter()
                    .any(|calls| crate::metrics::known_passes(calls).0 == 0)
            })
            .count();
        let not_judged = if unknown > 0 {
            format!(", {unknown} not judged in an arm")
        } else {
            String::new()
        };
        lines.push(format!(
            "{:<20} {compared} compared: {worse} pass → fail, {better} fail → pass, {} unchanged{not_judged}",
            "cases",
            compared.saturating_sub(worse + better + unknown)
        ));
    }
    lines
}

pub(super) fn bar(value: f64, scale: f64) -> String {
    let share = if scale > 0.0 {
        (value / scale).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let full = (share * BAR_CELLS as f64).round() as usize;
    format!("{}{}", "█".repeat(full), "░".repeat(BAR_CELLS - full))
}
