//! A metric across versions (the ledger's history): each version's own value with its
//! interval, in the order recorded, the versions that drifted apart marked.
//!
//! The chart knows nothing of the ledger: it draws a [`Trend`], which the ledger builds.

use plotters::prelude::*;

use super::pen::{Align, Pen, Plot, nice_axis, shorten};
use super::*;

/// One metric of one experiment over its versions.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    pub experiment: String,
    pub metric: String,
    /// Oldest first.
    pub points: Vec<TrendPoint>,
    /// The two versions a drift flag compares (indexes into `points`), when flagged.
    pub drift: Option<(usize, usize)>,
    /// Why drift was not checked (no gate gives the metric a margin, the suite did not load):
    /// the chart then claims no absence of drift.
    pub unchecked: Option<&'static str>,
    /// The interval's level, for the subtitle ("95% interval").
    pub ci_label: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrendPoint {
    /// The version (or commit) under the point.
    pub label: String,
    pub value: f64,
    pub ci: Option<[f64; 2]>,
}

const HEIGHT: u32 = 340;

/// Draws `trend` as SVG and PNG; `name` is the chart's file stem.
pub fn render_trend(trend: &Trend, name: &str) -> anyhow::Result<Chart> {
    register_fonts()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw_trend(&Pen::new(&root, 1.0), trend)?;
        root.present().map_err(drawing)?;
    }
    let (w, h) = (WIDTH * PNG_SCALE, HEIGHT * PNG_SCALE);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        draw_trend(&Pen::new(&root, f64::from(PNG_SCALE)), trend)?;
        root.present().map_err(drawing)?;
    }
    Ok(Chart {
        name: name.to_owned(),
        title: format!("{}: {} across versions", trend.experiment, trend.metric),
        svg,
        png: encode_png(&pixels, w, h)?,
    })
}

/// A file stem for an experiment's metric trend: `[a-z0-9-]` only.
pub fn trend_name(experiment: &str, metric: &str) -> String {
    let mut used = BTreeSet::new();
    unique_slug(&format!("{experiment} {metric} trend"), &mut used)
}

/// A round axis around `[low, high]`: its start, end and ticks (about five).
fn nice_range(low: f64, high: f64) -> (f64, f64, Vec<f64>) {
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 1.0, vec![0.0, 0.5, 1.0]);
    }
    let span = if high > low {
        high - low
    } else {
        low.abs().max(1e-9) * 0.1
    };
    let (_, ticks) = nice_axis(span);
    let step = ticks.get(1).copied().unwrap_or(span);
    let start = (low / step).floor() * step;
    let end = ((high / step).ceil() * step).max(start + step);
    let n = ((end - start) / step).round() as usize;
    (start, end, (0..=n).map(|i| start + i as f64 * step).collect())
}

fn draw_trend<DB: DrawingBackend>(pen: &Pen<'_, DB>, trend: &Trend) -> anyhow::Result<()> {
    pen.card(f64::from(HEIGHT))?;
    pen.title(
        &format!("{} · {} across versions", trend.experiment, trend.metric),
        &format!("each version's value with its {}, oldest first", trend.ci_label),
    )?;
    let unit = format::unit(&trend.metric);
    // The axis spans the data, not zero to the top: a slide of a few points is what the chart
    // is for, and it would be a flat line on a full scale. The ticks say where the axis starts.
    let (low, high) = trend
        .points
        .iter()
        .flat_map(|p| std::iter::once(p.value).chain(p.ci.into_iter().flatten()))
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (start, end, y_ticks) = nice_range(low, high);
    let count = trend.points.len().max(1);
    let plot = Plot {
        left: 90.0,
        right: f64::from(WIDTH) - 30.0,
        top: 70.0,
        bottom: f64::from(HEIGHT) - 60.0,
        x_max: count as f64,
        y_max: end - start,
        pad: 0.0,
    };
    let offsets: Vec<f64> = y_ticks.iter().map(|t| t - start).collect();
    plot.grid(pen, &[], &offsets, |_| String::new(), |v| unit.value(v + start))?;
    let y = |v: f64| plot.y(v - start);
    // Versions sit at the middle of equal slots; their labels under the axis.
    let x = |i: usize| plot.x(i as f64 + 0.5);
    let flagged = |i: usize| trend.drift.is_some_and(|(a, b)| i == a || i == b);
    let line: Vec<(f64, f64)> = trend
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| (x(i), y(p.value)))
        .collect();
    if line.len() > 1 {
        pen.line(&line, BASELINE.mix(0.6), 1.5)?;
    }
    let every = trend.points.len().div_ceil(12).max(1);
    for (i, p) in trend.points.iter().enumerate() {
        let color = if flagged(i) { REGRESSION } else { BASELINE };
        if let Some([lo, hi]) = p.ci {
            pen.line(&[(x(i), y(lo)), (x(i), y(hi))], color.into(), 2.0)?;
            for v in [lo, hi] {
                pen.line(&[(x(i) - 4.0, y(v)), (x(i) + 4.0, y(v))], color.into(), 1.5)?;
            }
        }
        pen.circle((x(i), y(p.value)), 4.0, color.into(), true)?;
        if i % every == 0 || i + 1 == trend.points.len() {
            pen.text(
                &shorten(&p.label, 12),
                (x(i), plot.bottom + 14.0),
                11.0,
                MUTED,
                Align::Center,
            )?;
        }
    }
    let note = match trend.drift {
        Some((a, b)) => format!(
            "drift: {} → {} moved beyond the gate's margin",
            shorten(&trend.points[a].label, 16),
            shorten(&trend.points[b].label, 16)
        ),
        None => match trend.unchecked {
            Some(why) => format!("drift not checked: {why}"),
            None => "no drift beyond the gate's margin in the window".to_owned(),
        },
    };
    let color = if trend.drift.is_some() {
        darker(REGRESSION)
    } else {
        MUTED
    };
    pen.text(&note, (20.0, f64::from(HEIGHT) - 20.0), 12.0, color, Align::Left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_axis_spans_the_data_on_round_ticks() {
        let (start, end, ticks) = nice_range(0.91, 0.985);
        assert!(start <= 0.91 && end >= 0.985, "{start} {end}");
        assert!((start - 0.9).abs() < 1e-9 && (end - 1.0).abs() < 1e-9, "{start} {end}");
        assert_eq!(ticks.len(), 6);
        // One value: a small band around it, never a zero-height axis.
        let (start, end, _) = nice_range(650.0, 650.0);
        assert!(start < 650.0 && end > 650.0, "{start} {end}");
    }

    #[test]
    fn a_trend_draws_as_svg_and_png() {
        let trend = Trend {
            experiment: "support".into(),
            metric: "pass_rate".into(),
            points: ["v1", "v2", "v3"]
                .iter()
                .zip([0.97, 0.95, 0.93])
                .map(|(v, x)| TrendPoint {
                    label: (*v).to_owned(),
                    value: x,
                    ci: Some([x - 0.02, x + 0.01]),
                })
                .collect(),
            drift: Some((0, 2)),
            unchecked: None,
            ci_label: "95% interval".into(),
        };
        let chart = render_trend(&trend, &trend_name("support", "pass_rate")).unwrap();
        assert_eq!(chart.name, "support-pass-rate-trend");
        assert!(chart.svg.contains("v2"), "the versions are labelled");
        assert!(chart.svg.contains("drift: v1 → v3"), "the drift is named");
        let reader = png::Decoder::new(chart.png.as_slice()).read_info().unwrap();
        assert_eq!(reader.info().width, WIDTH * PNG_SCALE);
        // Unflagged, it says no drift only where drift was checked (it said so of a metric
        // no gate gives a margin, and when the suite did not load).
        let checked = Trend { drift: None, ..trend };
        let chart = render_trend(&checked, "checked").unwrap();
        assert!(chart.svg.contains("no drift beyond the gate"), "{}", chart.svg);
        let unchecked = Trend {
            unchecked: Some("no gate gives it a margin"),
            ..checked
        };
        let chart = render_trend(&unchecked, "unchecked").unwrap();
        assert!(
            chart.svg.contains("drift not checked: no gate gives it a margin"),
            "{}",
            chart.svg
        );
        assert!(!chart.svg.contains("no drift"), "{}", chart.svg);
    }
}
