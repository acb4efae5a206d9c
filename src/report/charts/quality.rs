//! Quality: Δ with its interval per metric, the margin shaded, the verdict in words.

use plotters::prelude::*;

use super::pen::{Align, Pen, shorten};
use super::*;

pub(super) const QUALITY_TOP: u32 = 92;

pub(super) const QUALITY_ROW: u32 = 58;

pub(super) fn draw_quality<DB: DrawingBackend>(pen: &Pen<'_, DB>, e: &ExperimentResult) -> anyhow::Result<()> {
    let candidate_only = e.status == ExperimentStatus::New;
    let label = crate::report::words::ci_label(e);
    let subtitle = if candidate_only {
        "new experiment: candidate values only, nothing to compare with".to_owned()
    } else {
        format!("Δ = candidate − baseline per metric, with the {label} of the paired difference")
    };
    pen.title(&format!("{} · quality", e.name), &subtitle)?;
    let (panel_left, panel_right) = (250.0, 560.0);
    let header_y = f64::from(QUALITY_TOP) - 16.0;
    pen.text(
        "metric · baseline → candidate",
        (20.0, header_y),
        11.0,
        MUTED,
        Align::Left,
    )?;
    if !candidate_only {
        pen.text(
            &format!("Δ and {label}"),
            ((panel_left + panel_right) / 2.0, header_y),
            11.0,
            MUTED,
            Align::Center,
        )?;
    }
    pen.text(
        "verdict",
        (f64::from(WIDTH) - 20.0, header_y),
        11.0,
        MUTED,
        Align::Right,
    )?;

    let metrics: Vec<&MetricResult> = e.metrics.iter().filter(|m| is_quality(m)).collect();
    // Rows in one unit share one scale, so equal intervals are drawn equally wide (each its
    // own drew an error rate's ±8.8 pp wider than a pass rate's 31 pp).
    let shared = |unit: crate::metrics::Unit| {
        (metrics.iter())
            .filter(|m| format::unit(&m.name) == unit)
            .filter_map(|m| finite(m.delta).map(|delta| row_extent(m, delta)))
            .fold(0.0_f64, f64::max)
    };
    for (row, m) in metrics.iter().enumerate() {
        let top = f64::from(QUALITY_TOP) + row as f64 * f64::from(QUALITY_ROW);
        let mid = top + f64::from(QUALITY_ROW) / 2.0;
        if row > 0 {
            pen.line(&[(20.0, top), (f64::from(WIDTH) - 20.0, top)], GRID.into(), 1.0)?;
        }
        let unit = format::unit(&m.name);
        let name = if m.blocking && m.gated {
            format!("{} (blocking)", shorten(&m.name, 24))
        } else {
            shorten(&m.name, 30)
        };
        pen.bold(&name, (20.0, mid - 10.0), 13.0, INK, Align::Left)?;
        // Baseline in blue, candidate in orange: the same colours as the other charts.
        let mut x = 20.0;
        if let Some(b) = finite(m.baseline) {
            let text = unit.value(b);
            pen.text(&text, (x, mid + 10.0), 12.0, BASELINE, Align::Left)?;
            x += pen.text_width(&text, 12.0, false);
            pen.text(" → ", (x, mid + 10.0), 12.0, MUTED, Align::Left)?;
            x += pen.text_width(" → ", 12.0, false);
        }
        let candidate = finite(m.candidate).map_or_else(|| "—".to_owned(), |c| unit.value(c));
        pen.text(&candidate, (x, mid + 10.0), 12.0, darker(CANDIDATE), Align::Left)?;

        let (word, color) = quality_verdict(m, candidate_only);
        pen.bold(word, (f64::from(WIDTH) - 20.0, mid), 12.0, color, Align::Right)?;

        if let (Some(delta), false) = (finite(m.delta), candidate_only) {
            let extent = shared(format::unit(&m.name));
            draw_delta_row(pen, m, delta, extent, (panel_left, panel_right), mid, color)?;
        }
    }

    let legend_y = f64::from(QUALITY_TOP) + metrics.len() as f64 * f64::from(QUALITY_ROW) + 26.0;
    let mut x = pen.legend(20.0, legend_y, BASELINE, "baseline")?;
    x = pen.legend(x, legend_y, CANDIDATE, "candidate")?;
    if !candidate_only {
        pen.rect(
            (x, legend_y - 5.0),
            (x + 14.0, legend_y + 5.0),
            REGRESSION.mix(0.14),
            true,
        )?;
        pen.text("worse than the margin", (x + 20.0, legend_y), 12.0, MUTED, Align::Left)?;
    }
    Ok(())
}

/// The half-width a row's scale needs for Δ, its interval and its margin (with room).
fn row_extent(m: &MetricResult, delta: f64) -> f64 {
    let margin = if m.margin.is_finite() { m.margin.abs() } else { 0.0 };
    let mut extent = delta.abs().max(margin * 1.5);
    if let Some([lo, hi]) = m.ci.filter(|[lo, hi]| lo.is_finite() && hi.is_finite()) {
        extent = extent.max(lo.abs()).max(hi.abs());
    }
    if extent <= 0.0 {
        extent = 1.0;
    }
    extent * 1.15
}

/// A small forest plot on a scale of half-width `extent` (shared by the rows of its unit):
/// zero, the margin on the bad side, the CI and Δ.
pub(super) fn draw_delta_row<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    m: &MetricResult,
    delta: f64,
    extent: f64,
    (left, right): (f64, f64),
    mid: f64,
    color: RGBColor,
) -> anyhow::Result<()> {
    let unit = format::unit(&m.name);
    let ci = m.ci.filter(|[lo, hi]| lo.is_finite() && hi.is_finite());
    let margin = if m.margin.is_finite() { m.margin.abs() } else { 0.0 };
    let bad = match m.direction {
        Direction::Higher => -1.0,
        Direction::Lower => 1.0,
    };
    let x = |v: f64| left + (v + extent) / (2.0 * extent) * (right - left);
    // The zone where a significant difference is also a material one: a regression (from
    // zero for a gate whose margin is 0: any worsening is material).
    if margin > 0.0 || m.gated {
        let (a, b) = if bad < 0.0 {
            (x(-extent), x(-margin))
        } else {
            (x(margin), x(extent))
        };
        pen.rect((a, mid - 14.0), (b, mid + 14.0), REGRESSION.mix(0.14), true)?;
    }
    pen.line(&[(left, mid + 14.0), (right, mid + 14.0)], GRID.into(), 1.0)?;
    pen.line(&[(x(0.0), mid - 16.0), (x(0.0), mid + 16.0)], NEUTRAL.into(), 1.0)?;
    pen.text("0", (x(0.0), mid + 22.0), 10.0, MUTED, Align::Center)?;
    if let Some([lo, hi]) = ci {
        let (a, b) = (x(lo), x(hi));
        pen.line(&[(a, mid), (b, mid)], color.into(), 2.5)?;
        pen.line(&[(a, mid - 6.0), (a, mid + 6.0)], color.into(), 2.0)?;
        pen.line(&[(b, mid - 6.0), (b, mid + 6.0)], color.into(), 2.0)?;
    }
    pen.circle((x(delta), mid), 5.5, color.into(), true)?;
    pen.circle((x(delta), mid), 5.5, WHITE.into(), false)?;
    let label = match ci {
        Some([lo, hi]) => format!("{} [{}]", signed(unit, delta), interval(unit, lo, hi)),
        None => signed(unit, delta),
    };
    pen.text(&label, ((left + right) / 2.0, mid - 20.0), 11.0, INK, Align::Center)
}

fn quality_verdict(m: &MetricResult, candidate_only: bool) -> (&'static str, RGBColor) {
    if candidate_only || m.baseline.is_none() {
        return ("candidate only", MUTED);
    }
    match crate::metrics::assumed_change(m) {
        Some("higher") => return ("significantly higher", MUTED),
        Some(_) => return ("significantly lower", MUTED),
        None => {}
    }
    match m.verdict {
        // Without a gate there is no margin to be materially beyond (as the table says).
        MetricVerdict::Regression if !m.gated => ("significantly worse", REGRESSION),
        MetricVerdict::Improvement if !m.gated => ("significantly better", OK),
        MetricVerdict::Regression => ("regression", REGRESSION),
        MetricVerdict::MinorRegression => ("minor regression", CANDIDATE),
        MetricVerdict::Improvement => ("improvement", OK),
        // As the table qualifies it (it read "non-inferior" where the table said equivalent).
        MetricVerdict::NoChange => (
            crate::report::words::no_change_qualifier(m).unwrap_or(m.verdict.label()),
            MUTED,
        ),
        v => (v.label(), MUTED),
    }
}

fn signed(unit: Unit, d: f64) -> String {
    unit.delta(d, None)
}

fn interval(unit: Unit, lo: f64, hi: f64) -> String {
    unit.interval(lo, hi).trim_start_matches('[').replace(']', "")
}
