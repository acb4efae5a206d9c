//! A canary's charts in the comment's style: the latency distributions of both arms overlaid
//! (CDF, p50/p95/p99 marked), rates over time with their intervals, and cost per request with
//! its interval. Drawn from plain figures (`CanaryFigures`), which `src/canary/` computes, so
//! the report knows nothing of logs.

use plotters::prelude::*;

use super::pen::{Align, Pen, Plot, nice_axis};
use super::*;

/// What the canary charts show. Latencies are sorted and thinned by the caller.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CanaryFigures {
    /// For titles: the experiment, or "canary".
    pub name: String,
    /// Arm labels: the versions.
    pub arms: [String; 2],
    /// Sorted latencies of each arm (at most a few thousand quantiles of each).
    pub latency: [Vec<f64>; 2],
    /// Each arm's p50, p95 and p99 over all its requests.
    pub latency_marks: [[f64; 3]; 2],
    /// Rates over time, one per rate metric with data.
    pub rates: Vec<RateSeries>,
    /// Mean cost per request of each arm with its 95% interval.
    pub cost: Option<[(f64, [f64; 2]); 2]>,
}

/// A share with its 95% interval.
pub type Share = (f64, [f64; 2]);

/// One rate metric per time bucket and arm: the share and its 95% Wilson interval.
#[derive(Clone, Debug, PartialEq)]
pub struct RateSeries {
    pub metric: String,
    /// Hours since the first request, per bucket (its middle).
    pub hours: Vec<f64>,
    pub arms: [Vec<Option<Share>>; 2],
}

enum CanaryFigure<'a> {
    Latency(&'a CanaryFigures),
    Rate(&'a CanaryFigures, &'a RateSeries),
    Cost(&'a CanaryFigures),
}

const COLORS: [RGBColor; 2] = [BASELINE, CANDIDATE];

/// Draws every canary chart that has data, as SVG and PNG.
pub fn render_canary_charts(figures: &CanaryFigures) -> anyhow::Result<Vec<Chart>> {
    register_fonts()?;
    let mut out = Vec::new();
    let mut list = Vec::new();
    if figures.latency.iter().any(|l| !l.is_empty()) {
        list.push((
            "canary-latency".to_owned(),
            "latency".to_owned(),
            CanaryFigure::Latency(figures),
        ));
    }
    for series in &figures.rates {
        list.push((
            format!("canary-{}", series.metric.replace('_', "-")),
            series.metric.clone(),
            CanaryFigure::Rate(figures, series),
        ));
    }
    if figures.cost.is_some() {
        list.push(("canary-cost".to_owned(), "cost".to_owned(), CanaryFigure::Cost(figures)));
    }
    for (name, what, figure) in list {
        let (svg, png) = render(&figure)?;
        out.push(Chart {
            name,
            title: format!("{}: {what}", figures.name),
            svg,
            png,
        });
    }
    Ok(out)
}

impl Drawing for CanaryFigure<'_> {
    fn height(&self) -> u32 {
        match self {
            CanaryFigure::Latency(_) => 360,
            CanaryFigure::Rate(..) => 320,
            CanaryFigure::Cost(_) => 200,
        }
    }

    fn draw<DB: DrawingBackend>(&self, pen: &Pen<'_, DB>) -> anyhow::Result<()> {
        let height = f64::from(self.height());
        pen.card(height)?;
        match *self {
            CanaryFigure::Latency(f) => draw_latency(pen, f, height),
            CanaryFigure::Rate(f, s) => draw_rate(pen, f, s, height),
            CanaryFigure::Cost(f) => draw_cost(pen, f),
        }
    }
}

fn draw_latency<DB: DrawingBackend>(pen: &Pen<'_, DB>, f: &CanaryFigures, height: f64) -> anyhow::Result<()> {
    pen.title(
        &format!("{} · latency", f.name),
        "share of requests answered within a time (CDF), p50, p95 and p99 marked",
    )?;
    let max = f.latency.iter().filter_map(|xs| xs.last().copied()).fold(0.0, f64::max);
    let plot = super::latency::cdf_axes(pen, max.max(1.0) * 1.04, height, "latency per request")?;
    let mut legend_x = 20.0;
    for (arm, xs) in f.latency.iter().enumerate() {
        if xs.is_empty() {
            continue;
        }
        let color = COLORS[arm];
        let n = xs.len();
        let points: Vec<(f64, f64)> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| (plot.x(x), plot.y((i + 1) as f64 / n as f64)))
            .collect();
        pen.line(&points, color.into(), 2.5)?;
        let marks = f.latency_marks[arm];
        for (q, p) in [0.5, 0.95, 0.99].into_iter().zip(marks) {
            if p.is_finite() {
                pen.dashed((plot.x(p), plot.y(q)), (plot.x(p), plot.bottom), color.mix(0.8), 1.2)?;
                pen.circle((plot.x(p), plot.y(q)), 4.5, color.into(), true)?;
                pen.circle((plot.x(p), plot.y(q)), 4.5, WHITE.into(), false)?;
            }
        }
        let text = format!(
            "{}: p50 {:.0} · p95 {:.0} · p99 {:.0} ms",
            pen::shorten(&f.arms[arm], 16),
            marks[0],
            marks[1],
            marks[2]
        );
        legend_x = pen.legend(legend_x, 72.0, color, &text)?;
    }
    Ok(())
}

fn draw_rate<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    f: &CanaryFigures,
    s: &RateSeries,
    height: f64,
) -> anyhow::Result<()> {
    pen.title(
        &format!("{} · {}", f.name, s.metric),
        "share per time bucket with its 95% interval (Wilson)",
    )?;
    let top = s
        .arms
        .iter()
        .flatten()
        .flatten()
        .map(|(_, ci)| ci[1])
        .fold(0.0, f64::max);
    let (y_max, y_ticks) = nice_axis(top.max(0.001) * 1.1);
    // Time in the unit that suits the span: seconds, minutes, hours or days.
    let last = s.hours.last().copied().unwrap_or(1.0).max(1e-6);
    let (per_hour, unit) = if last < 2.0 / 60.0 {
        (3600.0, "s")
    } else if last < 2.0 {
        (60.0, "min")
    } else if last < 72.0 {
        (1.0, "h")
    } else {
        (1.0 / 24.0, "d")
    };
    let (x_max, x_ticks) = nice_axis(last * per_hour * 1.02);
    let plot = Plot {
        left: 64.0,
        right: f64::from(WIDTH) - 24.0,
        top: 96.0,
        bottom: height - 48.0,
        x_max,
        y_max,
        pad: 0.0,
    };
    plot.grid(
        pen,
        &x_ticks,
        &y_ticks,
        |v| format!("{v:.0} {unit}"),
        |v| format!("{:.1}%", v * 100.0),
    )?;
    pen.text(
        "time since the first request",
        ((plot.left + plot.right) / 2.0, height - 14.0),
        11.0,
        MUTED,
        Align::Center,
    )?;
    let mut legend_x = 20.0;
    for (arm, values) in s.arms.iter().enumerate() {
        let color = COLORS[arm];
        // Offset the arms a little so their intervals do not hide each other.
        let dx = if arm == 0 { -2.0 } else { 2.0 };
        let mut points = Vec::new();
        for (h, v) in s.hours.iter().zip(values) {
            let Some((share, ci)) = v else { continue };
            let x = plot.x(*h * per_hour) + dx;
            pen.line(&[(x, plot.y(ci[0])), (x, plot.y(ci[1]))], color.mix(0.6), 1.5)?;
            pen.circle((x, plot.y(*share)), 3.0, color.into(), true)?;
            points.push((x, plot.y(*share)));
        }
        if points.len() > 1 {
            pen.line(&points, color.mix(0.8), 1.5)?;
        }
        legend_x = pen.legend(legend_x, 72.0, color, &pen::shorten(&f.arms[arm], 24))?;
    }
    Ok(())
}

fn draw_cost<DB: DrawingBackend>(pen: &Pen<'_, DB>, f: &CanaryFigures) -> anyhow::Result<()> {
    pen.title(
        &format!("{} · cost", f.name),
        "mean cost per request with its 95% interval",
    )?;
    let Some(cost) = f.cost else { return Ok(()) };
    let max = cost.iter().map(|(_, ci)| ci[1]).fold(0.0, f64::max);
    let (left, right) = (160.0, 560.0);
    let x = |v: f64| {
        if max > 0.0 {
            left + v / max * (right - left)
        } else {
            left
        }
    };
    for (arm, (mean, ci)) in cost.iter().enumerate() {
        let y = 92.0 + arm as f64 * 48.0;
        pen.bold(&pen::shorten(&f.arms[arm], 18), (20.0, y), 13.0, INK, Align::Left)?;
        pen.rect(
            (left, y - 12.0),
            (x(*mean).max(left + 1.0), y + 12.0),
            COLORS[arm].into(),
            true,
        )?;
        pen.line(&[(x(ci[0]), y), (x(ci[1]), y)], INK.into(), 1.5)?;
        for end in ci {
            pen.line(&[(x(*end), y - 6.0), (x(*end), y + 6.0)], INK.into(), 1.5)?;
        }
        pen.text(
            &format!("{} / request", format::dollars(*mean)),
            (x(ci[1]) + 10.0, y),
            12.0,
            INK,
            Align::Left,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_latency_rates_and_cost() {
        let figures = CanaryFigures {
            name: "support".to_owned(),
            arms: ["v1.2.3".to_owned(), "v1.3.0".to_owned()],
            latency: [
                (1..=100).map(|i| f64::from(i) * 5.0).collect(),
                (1..=100).map(|i| f64::from(i) * 6.0).collect(),
            ],
            latency_marks: [[250.0, 475.0, 495.0], [300.0, 570.0, 594.0]],
            rates: vec![RateSeries {
                metric: "error_rate".to_owned(),
                hours: vec![0.5, 1.5],
                arms: [
                    vec![Some((0.01, [0.005, 0.02])), None],
                    vec![Some((0.02, [0.01, 0.03])), Some((0.03, [0.02, 0.04]))],
                ],
            }],
            cost: Some([(0.002, [0.0019, 0.0021]), (0.0025, [0.0024, 0.0026])]),
        };
        let charts = render_canary_charts(&figures).unwrap();
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["canary-latency", "canary-error-rate", "canary-cost"]);
        for chart in &charts {
            assert!(
                chart.svg.starts_with("<svg") && chart.svg.contains("v1.3.0"),
                "{}",
                chart.name
            );
            assert!(!chart.png.is_empty());
        }
    }
}
