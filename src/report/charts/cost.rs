//! Cost per request per arm, with the monthly projection.

use plotters::prelude::*;

use super::pen::{Align, Pen};
use super::*;
use crate::report::figures::{Tone, cost_per_request, monthly_projection, savings_sentence, thousands, whole_dollars};

pub(super) fn draw_cost<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    e: &ExperimentResult,
    rpm: Option<u64>,
) -> anyhow::Result<()> {
    let subtitle = match rpm {
        Some(rpm) => format!(
            "cost per request, and per month at {} requests/month (traffic in promptgate.yaml)",
            thousands(rpm)
        ),
        None => {
            "cost per request; set traffic.requests_per_month in promptgate.yaml for a monthly projection".to_owned()
        }
    };
    pen.title(&format!("{} · cost", e.name), &subtitle)?;
    let costs = cost_per_request(e);
    let max = costs.iter().flatten().fold(0.0, |a: f64, b| a.max(*b));
    let (left, right) = (120.0, 470.0);
    for (i, (label, color, cost)) in [("baseline", BASELINE, costs[0]), ("candidate", CANDIDATE, costs[1])]
        .into_iter()
        .enumerate()
    {
        let y = 92.0 + i as f64 * 44.0;
        pen.bold(label, (20.0, y), 13.0, INK, Align::Left)?;
        let Some(cost) = cost else {
            let arm = if i == 0 { Arm::Baseline } else { Arm::Candidate };
            let calls = || e.cases.iter().flat_map(|c| c.calls(arm));
            let why = if calls().next().is_none() {
                "not run"
            } else if calls().any(|c| c.unpriced) {
                "no price for its model: add it under pricing in promptgate.yaml"
            } else {
                "no cost measured"
            };
            pen.text(why, (left, y), 12.0, MUTED, Align::Left)?;
            continue;
        };
        let end = if max > 0.0 {
            left + cost / max * (right - left)
        } else {
            left
        };
        pen.rect((left, y - 13.0), (end.max(left + 1.0), y + 13.0), color.into(), true)?;
        let mut text = format!("{} / request", format::dollars(cost));
        if let Some(rpm) = rpm {
            text.push_str(&format!(" · {} / month", whole_dollars(cost * rpm as f64)));
        }
        pen.text(&text, (end + 8.0, y), 12.0, INK, Align::Left)?;
    }
    if let Some(p) = monthly_projection(e, rpm) {
        let (text, tone) = savings_sentence(&p);
        let color = match tone {
            Tone::Good => OK,
            Tone::Bad => REGRESSION,
            Tone::Neutral => MUTED,
        };
        pen.bold(&text, (20.0, 196.0), 15.0, color, Align::Left)?;
        if p.baseline > 0.0 {
            let pct = (p.candidate - p.baseline) / p.baseline * 100.0;
            pen.text(
                &format!("{pct:+.1}% per request; Δ = candidate − baseline").replace('-', "−"),
                (20.0, 222.0),
                12.0,
                MUTED,
                Align::Left,
            )?;
        }
    }
    Ok(())
}
