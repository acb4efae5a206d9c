//! Latency: the empirical CDF of both arms, with p50 and p95 marked, and the SLO if any.

use plotters::prelude::*;

use super::pen::{Align, Pen, Plot, nice_axis};
use super::*;
use crate::report::figures::latencies;

/// At most this many points per CDF line, so a 2,000-case run stays a small SVG.
pub(super) const CDF_POINTS: usize = 300;

/// The axes of a latency CDF: milliseconds up to `max` (rounded up to a nice tick), shares
/// 0–100%, and `label` under the x axis.
pub(super) fn cdf_axes<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    max: f64,
    height: f64,
    label: &str,
) -> anyhow::Result<Plot> {
    let (x_max, ticks) = nice_axis(max.max(1.0));
    let plot = Plot {
        left: 64.0,
        right: f64::from(WIDTH) - 24.0,
        top: 96.0,
        bottom: height - 48.0,
        x_max,
        y_max: 1.0,
        pad: 0.0,
    };
    plot.grid(
        pen,
        &ticks,
        &[0.0, 0.25, 0.5, 0.75, 1.0],
        |v| format!("{v:.0} ms"),
        |v| format!("{:.0}%", v * 100.0),
    )?;
    pen.text(
        label,
        ((plot.left + plot.right) / 2.0, height - 14.0),
        11.0,
        MUTED,
        Align::Center,
    )?;
    Ok(plot)
}

pub(super) fn draw_latency<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    e: &ExperimentResult,
    height: f64,
) -> anyhow::Result<()> {
    pen.title(
        &format!("{} · latency", e.name),
        "share of calls answered within a time (CDF), with p50 and p95 of the calls marked",
    )?;
    let arms = [
        (Arm::Baseline, BASELINE, "baseline", latencies(e, Arm::Baseline)),
        (Arm::Candidate, CANDIDATE, "candidate", latencies(e, Arm::Candidate)),
    ];
    let slo = e
        .metrics
        .iter()
        .filter(|m| m.name.starts_with("latency_"))
        .find_map(|m| m.slo.as_ref().map(|s| (m, s.target)));
    let mut max = arms
        .iter()
        .filter_map(|(.., xs)| xs.last().copied())
        .fold(0.0, f64::max);
    if let Some((_, target)) = slo {
        max = max.max(target);
    }
    let plot = cdf_axes(pen, max.max(1.0) * 1.06, height, "latency per call")?;

    if let Some((m, target)) = slo {
        let sx = plot.x(target);
        pen.dashed((sx, plot.top), (sx, plot.bottom), REGRESSION.into(), 1.5)?;
        // Below the metric's minimum n the objective is shown, not judged (as in the table).
        let word = if m.verdict == MetricVerdict::TooFew {
            "not judged: too few cases"
        } else if m.slo.as_ref().is_some_and(|s| s.met) {
            "met"
        } else {
            "missed"
        };
        pen.text(
            &format!("SLO {target:.0} ms ({word})"),
            (sx - 6.0, plot.bottom - 12.0),
            11.0,
            REGRESSION,
            Align::Right,
        )?;
    }

    let mut legend_x = 20.0;
    for (_, color, label, xs) in &arms {
        if xs.is_empty() {
            continue;
        }
        let n = xs.len();
        let mut points = Vec::with_capacity(2 * CDF_POINTS + 2);
        points.push((plot.x(xs[0]), plot.y(0.0)));
        let step = (n / CDF_POINTS).max(1);
        let mut i = 0;
        while i < n {
            let y_before = i as f64 / n as f64;
            let y_after = (i + 1) as f64 / n as f64;
            points.push((plot.x(xs[i]), plot.y(y_before)));
            points.push((plot.x(xs[i]), plot.y(y_after)));
            i = if i + step >= n && i != n - 1 { n - 1 } else { i + step };
        }
        pen.line(&points, (*color).into(), 2.5)?;
        let p50 = stats::quantile(xs, 0.5).unwrap_or(f64::NAN);
        let p95 = stats::quantile(xs, 0.95).unwrap_or(f64::NAN);
        for (q, p) in [(0.5, p50), (0.95, p95)] {
            if p.is_finite() {
                pen.dashed((plot.x(p), plot.y(q)), (plot.x(p), plot.bottom), color.mix(0.8), 1.2)?;
                pen.circle((plot.x(p), plot.y(q)), 4.5, (*color).into(), true)?;
                pen.circle((plot.x(p), plot.y(q)), 4.5, WHITE.into(), false)?;
            }
        }
        let text = format!("{label}: p50 {p50:.0} ms · p95 {p95:.0} ms ({n} calls)");
        legend_x = pen.legend(legend_x, 72.0, *color, &text)?;
    }
    Ok(())
}
