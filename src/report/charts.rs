//! Charts of a run, as SVG and PNG: per experiment, quality (Δ with 95% CI per metric), the
//! latency distribution (CDF with p50/p95), cost per request with the monthly projection, and
//! the paired per-case plot with flipped cases highlighted.
//!
//! Charts are functions of [`Results`] alone and do no I/O: the same results give the same bytes,
//! so they can be snapshot-tested. Text is laid out with DejaVu Sans compiled into the binary,
//! never a system font, so rendering works on a bare CI runner. Every chart is an opaque white
//! card with mid-grey text and the Okabe–Ito palette: it reads in GitHub's light and dark themes
//! and for colour-blind readers.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, RGBAColor};

use crate::format::{self, Unit};
use crate::results::{
    Call, CaseResult, Direction, ExperimentResult, ExperimentStatus, Flip, MetricResult, MetricVerdict, Results,
};
use crate::stats;

/// One rendered chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// File stem and key for its published URL, e.g. `customer-support-quality`.
    pub name: String,
    /// What the chart shows, for alt text: "customer-support: quality".
    pub title: String,
    pub svg: String,
    pub png: Vec<u8>,
}

/// The kinds of chart drawn per experiment, in the order the report shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChartKind {
    Quality,
    Latency,
    Cost,
    Cases,
}

impl ChartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Quality => "quality",
            ChartKind::Latency => "latency",
            ChartKind::Cost => "cost",
            ChartKind::Cases => "cases",
        }
    }
}

/// A chart [`render_charts`] draws, known without drawing it (the report links charts by name).
#[derive(Clone, Debug, PartialEq)]
pub struct ChartPlan {
    /// Index into `results.experiments`.
    pub experiment: usize,
    pub kind: ChartKind,
    pub name: String,
}

/// Logical size of every chart; the PNG is drawn at twice this, so it stays sharp when GitHub
/// scales it down and on high-density screens.
pub const WIDTH: u32 = 720;
pub const PNG_SCALE: u32 = 2;

/// The charts [`render_charts`] draws for `results`, by experiment and kind.
pub fn plan_charts(results: &Results) -> Vec<ChartPlan> {
    let mut used = BTreeSet::new();
    let mut plans = Vec::new();
    for (index, e) in results.experiments.iter().enumerate() {
        // A removed experiment ran nothing; a failed run's numbers describe errors.
        if e.status == ExperimentStatus::Removed || e.verdict == crate::results::ExperimentVerdict::Error {
            continue;
        }
        let slug = unique_slug(&e.name, &mut used);
        for kind in [
            ChartKind::Quality,
            ChartKind::Latency,
            ChartKind::Cost,
            ChartKind::Cases,
        ] {
            if has_data(e, kind) {
                plans.push(ChartPlan {
                    experiment: index,
                    kind,
                    name: format!("{slug}-{}", kind.as_str()),
                });
            }
        }
    }
    plans
}

/// Draws every chart of [`plan_charts`] as SVG and PNG.
pub fn render_charts(results: &Results) -> anyhow::Result<Vec<Chart>> {
    register_fonts()?;
    plan_charts(results)
        .into_iter()
        .map(|plan| {
            let e = &results.experiments[plan.experiment];
            let figure = Figure::new(e, plan.kind, results.requests_per_month);
            let (svg, png) = figure.render()?;
            Ok(Chart {
                title: format!("{}: {}", e.name, plan.kind.as_str()),
                name: plan.name,
                svg,
                png,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Palette: Okabe–Ito, distinguishable with every common colour-vision deficiency.

const BASELINE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const CANDIDATE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const REGRESSION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const OK: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
const MUTED: RGBColor = RGBColor(0x5F, 0x5F, 0x5F);
const NEUTRAL: RGBColor = RGBColor(0x8A, 0x8A, 0x8A);
const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
const CARD_EDGE: RGBColor = RGBColor(0xD0, 0xD0, 0xD0);

static FONT_REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// plotters looks fonts up in a process-wide table; without an entry even SVG fails.
fn register_fonts() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_REGULAR).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, FONT_BOLD).is_ok()
    });
    if *ok {
        Ok(())
    } else {
        Err(anyhow!("the embedded chart font does not load"))
    }
}

// ---------------------------------------------------------------------------------------------
// What each chart shows, computed from the results once and drawn twice (SVG and PNG).

fn has_data(e: &ExperimentResult, kind: ChartKind) -> bool {
    match kind {
        ChartKind::Quality => e.metrics.iter().any(is_quality),
        ChartKind::Latency => latencies(e, Arm::Baseline).len() + latencies(e, Arm::Candidate).len() > 0,
        ChartKind::Cost => cost_per_request(e).iter().any(Option::is_some),
        ChartKind::Cases => {
            e.status != ExperimentStatus::New
                && e.cases
                    .iter()
                    .any(|c| !c.baseline.is_empty() && !c.candidate.is_empty())
        }
    }
}

/// Quality is everything that is not latency or cost: pass rate, error rate, scorers.
pub(crate) fn is_quality(m: &MetricResult) -> bool {
    !matches!(format::unit(&m.name), Unit::Milliseconds | Unit::Usd)
}

#[derive(Clone, Copy, PartialEq)]
enum Arm {
    Baseline,
    Candidate,
}

fn calls(case: &CaseResult, arm: Arm) -> &[Call] {
    match arm {
        Arm::Baseline => &case.baseline,
        Arm::Candidate => &case.candidate,
    }
}

/// The latencies the latency metrics compare, ascending: every call timed in this run, an
/// errored one at its arm's timeout, none from the cache (`metrics::Metric::call_value`), so the
/// chart shows exactly the calls the table's numbers come from.
fn latencies(e: &ExperimentResult, arm: Arm) -> Vec<f64> {
    let info = match arm {
        Arm::Baseline => e.baseline.as_ref(),
        Arm::Candidate => e.candidate.as_ref(),
    };
    let timeout = info.map_or(crate::results::DEFAULT_TIMEOUT_MS, |a| a.timeout_ms);
    let metric = crate::metrics::Metric::of(crate::metrics::LATENCY_P95);
    let mut xs: Vec<f64> = e
        .cases
        .iter()
        .flat_map(|c| metric.values(calls(c, arm), timeout))
        .filter(|x| x.is_finite() && *x >= 0.0)
        .collect();
    xs.sort_unstable_by(f64::total_cmp);
    xs
}

/// p50 and p95 of one arm's call latencies.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LatencySummary {
    pub p50: f64,
    pub p95: f64,
    pub calls: usize,
}

/// Baseline and candidate latency quantiles over calls (type 7, as `stats::quantile`).
pub(crate) fn latency_summary(e: &ExperimentResult) -> [Option<LatencySummary>; 2] {
    [Arm::Baseline, Arm::Candidate].map(|arm| {
        let xs = latencies(e, arm);
        Some(LatencySummary {
            p50: stats::quantile(&xs, 0.5)?,
            p95: stats::quantile(&xs, 0.95)?,
            calls: xs.len(),
        })
    })
}

/// Baseline and candidate cost per request: the gated metric when there is one, else the mean
/// over completed calls.
pub(crate) fn cost_per_request(e: &ExperimentResult) -> [Option<f64>; 2] {
    if let Some(m) = e.metrics.iter().find(|m| m.name == "cost_per_request")
        && (m.baseline.is_some() || m.candidate.is_some())
    {
        return [finite(m.baseline), finite(m.candidate)];
    }
    [Arm::Baseline, Arm::Candidate].map(|arm| {
        let costs: Vec<f64> = e
            .cases
            .iter()
            .flat_map(|c| calls(c, arm))
            .filter(|c| c.error.is_none())
            .map(|c| c.cost_usd)
            .collect();
        finite(stats::mean(&costs))
    })
}

/// The monthly projection at `requests_per_month`: what each arm costs and what the change saves.
#[derive(Clone, Debug, PartialEq)]
pub struct Projection {
    pub baseline: f64,
    pub candidate: f64,
    /// baseline − candidate: positive when the candidate is cheaper.
    pub savings: f64,
}

/// cost_per_request × requests_per_month for both arms; `None` without traffic or a baseline.
pub fn monthly_projection(e: &ExperimentResult, requests_per_month: Option<u64>) -> Option<Projection> {
    let rpm = requests_per_month? as f64;
    let [Some(b), Some(c)] = cost_per_request(e) else {
        return None;
    };
    Some(Projection {
        baseline: b * rpm,
        candidate: c * rpm,
        savings: (b - c) * rpm,
    })
}

enum Figure<'a> {
    Quality(&'a ExperimentResult),
    Latency(&'a ExperimentResult),
    Cost(&'a ExperimentResult, Option<u64>),
    Cases(&'a ExperimentResult),
}

impl<'a> Figure<'a> {
    fn new(e: &'a ExperimentResult, kind: ChartKind, requests_per_month: Option<u64>) -> Self {
        match kind {
            ChartKind::Quality => Figure::Quality(e),
            ChartKind::Latency => Figure::Latency(e),
            ChartKind::Cost => Figure::Cost(e, requests_per_month),
            ChartKind::Cases => Figure::Cases(e),
        }
    }

    fn height(&self) -> u32 {
        match self {
            Figure::Quality(e) => {
                let rows = e.metrics.iter().filter(|m| is_quality(m)).count() as u32;
                QUALITY_TOP + rows * QUALITY_ROW + 56
            }
            Figure::Latency(_) => 360,
            Figure::Cost(..) => 240,
            Figure::Cases(_) => 400,
        }
    }

    fn render(&self) -> anyhow::Result<(String, Vec<u8>)> {
        let height = self.height();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            self.draw(&Pen::new(&root, 1.0))?;
            root.present().map_err(drawing)?;
        }
        let (w, h) = (WIDTH * PNG_SCALE, height * PNG_SCALE);
        let mut pixels = vec![255u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            self.draw(&Pen::new(&root, f64::from(PNG_SCALE)))?;
            root.present().map_err(drawing)?;
        }
        Ok((svg, encode_png(&pixels, w, h)?))
    }

    fn draw<DB: DrawingBackend>(&self, pen: &Pen<'_, DB>) -> anyhow::Result<()> {
        let height = f64::from(self.height());
        pen.card(height)?;
        match *self {
            Figure::Quality(e) => draw_quality(pen, e),
            Figure::Latency(e) => draw_latency(pen, e, height),
            Figure::Cost(e, rpm) => draw_cost(pen, e, rpm),
            Figure::Cases(e) => draw_cases(pen, e, height),
        }
    }
}

fn encode_png(pixels: &[u8], w: u32, h: u32) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(out)
}

fn drawing<E: std::fmt::Display>(err: E) -> anyhow::Error {
    anyhow!("drawing a chart: {err}")
}

// ---------------------------------------------------------------------------------------------
// A pen in logical pixels: the same drawing code serves the 1× SVG and the 2× PNG.

struct Pen<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    k: f64,
}

#[derive(Clone, Copy)]
enum Align {
    Left,
    Center,
    Right,
}

impl<'a, DB: DrawingBackend> Pen<'a, DB> {
    fn new(area: &'a DrawingArea<DB, Shift>, k: f64) -> Self {
        Pen { area, k }
    }

    fn at(&self, (x, y): (f64, f64)) -> (i32, i32) {
        ((x * self.k).round() as i32, (y * self.k).round() as i32)
    }

    fn width(&self, w: f64) -> u32 {
        (w * self.k).round().max(1.0) as u32
    }

    /// The white card with a thin edge that every chart sits on.
    fn card(&self, height: f64) -> anyhow::Result<()> {
        self.area.fill(&WHITE).map_err(drawing)?;
        self.rect(
            (0.5, 0.5),
            (f64::from(WIDTH) - 0.5, height - 0.5),
            CARD_EDGE.into(),
            false,
        )
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "text needs all of these; a builder would hide them"
    )]
    fn text_styled(
        &self,
        text: &str,
        (x, y): (f64, f64),
        size: f64,
        color: RGBColor,
        align: Align,
        bold: bool,
        vpos: VPos,
    ) -> anyhow::Result<()> {
        let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
        let hpos = match align {
            Align::Left => HPos::Left,
            Align::Center => HPos::Center,
            Align::Right => HPos::Right,
        };
        let font = FontDesc::new(FontFamily::SansSerif, size * self.k, style)
            .color(&color)
            .pos(Pos::new(hpos, vpos));
        self.area
            .draw(&Text::new(text.to_owned(), self.at((x, y)), font))
            .map_err(drawing)
    }

    /// Text vertically centred on `y`.
    fn text(&self, text: &str, at: (f64, f64), size: f64, color: RGBColor, align: Align) -> anyhow::Result<()> {
        self.text_styled(text, at, size, color, align, false, VPos::Center)
    }

    fn bold(&self, text: &str, at: (f64, f64), size: f64, color: RGBColor, align: Align) -> anyhow::Result<()> {
        self.text_styled(text, at, size, color, align, true, VPos::Center)
    }

    /// Width of `text` in logical pixels, for placing the next piece after it.
    fn text_width(&self, text: &str, size: f64, bold: bool) -> f64 {
        let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
        let font = FontDesc::new(FontFamily::SansSerif, size * self.k, style);
        font.box_size(text)
            .map_or(text.chars().count() as f64 * size * 0.6, |(w, _)| f64::from(w) / self.k)
    }

    fn line(&self, points: &[(f64, f64)], color: RGBAColor, width: f64) -> anyhow::Result<()> {
        let points: Vec<(i32, i32)> = points.iter().map(|p| self.at(*p)).collect();
        self.area
            .draw(&PathElement::new(points, color.stroke_width(self.width(width))))
            .map_err(drawing)
    }

    fn dashed(&self, from: (f64, f64), to: (f64, f64), color: RGBAColor, width: f64) -> anyhow::Result<()> {
        let (dx, dy) = (to.0 - from.0, to.1 - from.1);
        let length = (dx * dx + dy * dy).sqrt();
        let (dash, gap) = (5.0, 4.0);
        let mut t = 0.0;
        while t < length {
            let end = (t + dash).min(length);
            let p = |s: f64| (from.0 + dx * s / length, from.1 + dy * s / length);
            self.line(&[p(t), p(end)], color, width)?;
            t += dash + gap;
        }
        Ok(())
    }

    fn rect(&self, a: (f64, f64), b: (f64, f64), color: RGBAColor, filled: bool) -> anyhow::Result<()> {
        let style = if filled {
            color.filled()
        } else {
            color.stroke_width(self.width(1.0))
        };
        self.area
            .draw(&Rectangle::new([self.at(a), self.at(b)], style))
            .map_err(drawing)
    }

    fn circle(&self, at: (f64, f64), r: f64, color: RGBAColor, filled: bool) -> anyhow::Result<()> {
        let radius = (r * self.k).round() as i32;
        let style = if filled {
            color.filled()
        } else {
            color.stroke_width(self.width(1.5))
        };
        self.area
            .draw(&Circle::new(self.at(at), radius, style))
            .map_err(drawing)
    }

    fn triangle(&self, (x, y): (f64, f64), r: f64, color: RGBAColor, down: bool) -> anyhow::Result<()> {
        let s = if down { 1.0 } else { -1.0 };
        let points = vec![
            self.at((x - r, y - s * r * 0.8)),
            self.at((x + r, y - s * r * 0.8)),
            self.at((x, y + s * r)),
        ];
        self.area.draw(&Polygon::new(points, color.filled())).map_err(drawing)
    }

    fn title(&self, title: &str, subtitle: &str) -> anyhow::Result<()> {
        self.bold(&shorten(title, 60), (20.0, 24.0), 16.0, INK, Align::Left)?;
        self.text(subtitle, (20.0, 46.0), 12.0, MUTED, Align::Left)
    }

    /// A legend entry: a coloured swatch and its label; returns the x after it.
    fn legend(&self, x: f64, y: f64, color: RGBColor, label: &str) -> anyhow::Result<f64> {
        self.rect((x, y - 5.0), (x + 14.0, y + 5.0), color.into(), true)?;
        self.text(label, (x + 20.0, y), 12.0, MUTED, Align::Left)?;
        Ok(x + 20.0 + self.text_width(label, 12.0, false) + 18.0)
    }
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max_chars - 1).collect();
        format!("{kept}…")
    }
}

// ---------------------------------------------------------------------------------------------
// Quality: one row per metric, the paired difference with its 95% CI against the margin.

const QUALITY_TOP: u32 = 92;
const QUALITY_ROW: u32 = 58;

fn draw_quality<DB: DrawingBackend>(pen: &Pen<'_, DB>, e: &ExperimentResult) -> anyhow::Result<()> {
    let candidate_only = e.status == ExperimentStatus::New;
    let label = super::markdown::ci_label(e);
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
            draw_delta_row(pen, m, delta, (panel_left, panel_right), mid, color)?;
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

/// A small forest plot in its own scale: zero, the margin on the bad side, the CI and Δ.
fn draw_delta_row<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    m: &MetricResult,
    delta: f64,
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
    let mut extent = delta.abs().max(margin * 1.5);
    if let Some([lo, hi]) = ci {
        extent = extent.max(lo.abs()).max(hi.abs());
    }
    if extent <= 0.0 {
        extent = 1.0;
    }
    let extent = extent * 1.15;
    let x = |v: f64| left + (v + extent) / (2.0 * extent) * (right - left);
    // The zone where a significant difference is also a material one: a regression.
    if margin > 0.0 {
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
    match m.verdict {
        MetricVerdict::Regression => ("regression", REGRESSION),
        MetricVerdict::MinorRegression => ("minor regression", CANDIDATE),
        MetricVerdict::Improvement => ("improvement", OK),
        MetricVerdict::NoChange if m.non_inferior => ("non-inferior", MUTED),
        v => (v.label(), MUTED),
    }
}

fn signed(unit: Unit, d: f64) -> String {
    unit.delta(d, None)
}

fn interval(unit: Unit, lo: f64, hi: f64) -> String {
    unit.interval(lo, hi).trim_start_matches('[').replace(']', "")
}

/// Orange text on white is faint; text uses a darker shade of the same hue.
fn darker(c: RGBColor) -> RGBColor {
    RGBColor(
        (f64::from(c.0) * 0.72) as u8,
        (f64::from(c.1) * 0.72) as u8,
        (f64::from(c.2) * 0.72) as u8,
    )
}

// ---------------------------------------------------------------------------------------------
// Latency: the empirical CDF of both arms, with p50 and p95 marked, and the SLO if any.

/// At most this many points per CDF line, so a 2,000-case run stays a small SVG.
const CDF_POINTS: usize = 300;

fn draw_latency<DB: DrawingBackend>(pen: &Pen<'_, DB>, e: &ExperimentResult, height: f64) -> anyhow::Result<()> {
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
    let (x_max, ticks) = nice_axis(max.max(1.0) * 1.06);
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
        "latency per call",
        ((plot.left + plot.right) / 2.0, height - 14.0),
        11.0,
        MUTED,
        Align::Center,
    )?;

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

/// A rectangle of data coordinates from 0 to (x_max, y_max).
struct Plot {
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_max: f64,
    y_max: f64,
    /// Data below 0 shown, as a share of the range (room for jitter around 0).
    pad: f64,
}

impl Plot {
    fn x(&self, v: f64) -> f64 {
        self.left + self.share(v / self.x_max) * (self.right - self.left)
    }

    fn y(&self, v: f64) -> f64 {
        self.bottom - self.share(v / self.y_max) * (self.bottom - self.top)
    }

    fn share(&self, t: f64) -> f64 {
        ((t + self.pad) / (1.0 + 2.0 * self.pad)).clamp(0.0, 1.0)
    }

    fn grid<DB: DrawingBackend>(
        &self,
        pen: &Pen<'_, DB>,
        x_ticks: &[f64],
        y_ticks: &[f64],
        x_label: impl Fn(f64) -> String,
        y_label: impl Fn(f64) -> String,
    ) -> anyhow::Result<()> {
        for &t in x_ticks {
            let x = self.x(t);
            pen.line(&[(x, self.top), (x, self.bottom)], GRID.into(), 1.0)?;
            pen.text(&x_label(t), (x, self.bottom + 14.0), 11.0, MUTED, Align::Center)?;
        }
        for &t in y_ticks {
            let y = self.y(t);
            pen.line(&[(self.left, y), (self.right, y)], GRID.into(), 1.0)?;
            pen.text(&y_label(t), (self.left - 8.0, y), 11.0, MUTED, Align::Right)?;
        }
        pen.line(
            &[
                (self.left, self.top),
                (self.left, self.bottom),
                (self.right, self.bottom),
            ],
            NEUTRAL.into(),
            1.0,
        )
    }
}

/// A round upper bound at or above `max` and ticks from 0 to it.
fn nice_axis(max: f64) -> (f64, Vec<f64>) {
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|f| f * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let top = (max / step).ceil() * step;
    let n = (top / step).round() as usize;
    (top, (0..=n).map(|i| i as f64 * step).collect())
}

// ---------------------------------------------------------------------------------------------
// Cost: per request for both arms, and what that means per month at the configured traffic.

fn draw_cost<DB: DrawingBackend>(pen: &Pen<'_, DB>, e: &ExperimentResult, rpm: Option<u64>) -> anyhow::Result<()> {
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
            pen.text("not run", (left, y), 12.0, MUTED, Align::Left)?;
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
        let (text, color) = savings_sentence(&p);
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

/// "saves $1,000/month" or "costs $250/month more", and the colour to say it in.
pub fn savings_sentence(p: &Projection) -> (String, RGBColor) {
    if p.savings > 0.0 {
        (format!("candidate saves {}/month", whole_dollars(p.savings)), OK)
    } else if p.savings < 0.0 {
        (
            format!("candidate costs {}/month more", whole_dollars(-p.savings)),
            REGRESSION,
        )
    } else {
        ("no change in monthly cost".to_owned(), MUTED)
    }
}

/// Dollars for monthly sums: whole dollars with thousands separators above $100, cents below.
pub fn whole_dollars(x: f64) -> String {
    if !x.is_finite() {
        return "—".to_owned();
    }
    let sign = if x < 0.0 { "−" } else { "" };
    let a = x.abs();
    if a >= 100.0 {
        format!("{sign}${}", thousands(a.round() as u64))
    } else {
        format!("{sign}${a:.2}")
    }
}

pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Cases: baseline against candidate per case, flipped cases highlighted.

fn draw_cases<DB: DrawingBackend>(pen: &Pen<'_, DB>, e: &ExperimentResult, height: f64) -> anyhow::Result<()> {
    pen.title(
        &format!("{} · cases", e.name),
        "pass rate per case (mean over repeats), baseline against candidate; jittered so equal cases do not hide",
    )?;
    let side = height - 96.0 - 56.0;
    let plot = Plot {
        left: 84.0,
        right: 84.0 + side,
        top: 96.0,
        bottom: 96.0 + side,
        x_max: 1.0,
        y_max: 1.0,
        pad: 0.08,
    };
    let ticks = [0.0, 0.25, 0.5, 0.75, 1.0];
    let percent = |v: f64| format!("{:.0}%", v * 100.0);
    plot.grid(pen, &ticks, &ticks, percent, percent)?;
    pen.text(
        "baseline",
        ((plot.left + plot.right) / 2.0, plot.bottom + 34.0),
        12.0,
        BASELINE,
        Align::Center,
    )?;
    pen.text(
        "candidate",
        (plot.left - 44.0, plot.top - 14.0),
        12.0,
        darker(CANDIDATE),
        Align::Left,
    )?;
    pen.dashed(
        (plot.x(0.0), plot.y(0.0)),
        (plot.x(1.0), plot.y(1.0)),
        NEUTRAL.into(),
        1.0,
    )?;

    // Points are drawn in a fixed order, unchanged cases first, so flips stay on top.
    let (mut same, mut worse, mut better) = (Vec::new(), Vec::new(), Vec::new());
    for c in &e.cases {
        if c.baseline.is_empty() || c.candidate.is_empty() {
            continue;
        }
        let b = pass_share(&c.baseline);
        let k = pass_share(&c.candidate);
        let (jx, jy) = jitter(&c.id);
        let at = (plot.x(b + jx), plot.y(k + jy));
        match c.flip {
            Some(Flip::PassToFail) => worse.push(at),
            Some(Flip::FailToPass) => better.push(at),
            None => same.push(at),
        }
    }
    let radius = if same.len() > 500 { 2.5 } else { 3.5 };
    for at in &same {
        pen.circle(*at, radius, NEUTRAL.mix(0.45), true)?;
    }
    for at in &better {
        pen.triangle(*at, 6.0, OK.into(), false)?;
    }
    for at in &worse {
        pen.triangle(*at, 6.0, REGRESSION.into(), true)?;
    }

    let x = plot.right + 28.0;
    let n = same.len() + worse.len() + better.len();
    pen.bold(&format!("{n} cases"), (x, plot.top + 8.0), 13.0, INK, Align::Left)?;
    let rows = [
        (REGRESSION, format!("▼ {} flipped pass → fail", worse.len())),
        (OK, format!("▲ {} flipped fail → pass", better.len())),
        (MUTED, format!("● {} unchanged", same.len())),
    ];
    for (i, (color, text)) in rows.iter().enumerate() {
        pen.text(text, (x, plot.top + 36.0 + i as f64 * 22.0), 12.0, *color, Align::Left)?;
    }
    pen.text(
        "above the diagonal: candidate better",
        (x, plot.top + 120.0),
        11.0,
        MUTED,
        Align::Left,
    )?;
    pen.text(
        "below: candidate worse",
        (x, plot.top + 136.0),
        11.0,
        MUTED,
        Align::Left,
    )
}

fn pass_share(calls: &[Call]) -> f64 {
    calls.iter().filter(|c| c.passed()).count() as f64 / calls.len().max(1) as f64
}

/// A deterministic offset of up to ±0.06 per axis from the case id (FNV-1a), so cases with the
/// same scores spread into a visible cloud and the same results always draw the same picture.
fn jitter(id: &str) -> (f64, f64) {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let unit = |bits: u64| (bits & 0xFFFF) as f64 / 65_535.0 * 2.0 - 1.0;
    (unit(hash) * 0.06, unit(hash >> 32) * 0.06)
}

// ---------------------------------------------------------------------------------------------

fn finite(x: Option<f64>) -> Option<f64> {
    x.filter(|x| x.is_finite())
}

/// Experiment names come from the PR's config: a chart's file name keeps `[a-z0-9-]` only, and
/// two experiments never share one.
fn unique_slug(name: &str, used: &mut BTreeSet<String>) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 60 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let base = if slug.is_empty() { "experiment" } else { slug }.to_owned();
    let mut candidate = base.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::super::markdown::test_fixtures::demo_results;
    use super::*;

    #[test]
    fn plans_four_charts_per_compared_experiment() {
        let names: Vec<String> = plan_charts(&demo_results()).into_iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "customer-support-quality",
                "customer-support-latency",
                "customer-support-cost",
                "customer-support-cases",
                "billing-faq-quality",
                "billing-faq-latency",
                "billing-faq-cost",
                "billing-faq-cases",
                "onboarding-tips-quality",
            ]
        );
    }

    #[test]
    fn slugs_are_safe_and_unique() {
        let mut used = BTreeSet::new();
        assert_eq!(unique_slug("Customer Support!", &mut used), "customer-support");
        assert_eq!(unique_slug("customer/support", &mut used), "customer-support-2");
        assert_eq!(unique_slug("../<script>", &mut used), "script");
        assert_eq!(unique_slug("日本", &mut used), "experiment");
    }

    #[test]
    fn monthly_projection_matches_the_seed() {
        // The seed's example in per-request terms: 10% off $0.01 a request, at 1M requests a
        // month, saves $1,000/month.
        let mut results = demo_results();
        let e = &mut results.experiments[0];
        let cost = e.metrics.iter_mut().find(|m| m.name == "cost_per_request").unwrap();
        cost.baseline = Some(0.01);
        cost.candidate = Some(0.009);
        let p = monthly_projection(e, Some(1_000_000)).unwrap();
        assert!((p.savings - 1_000.0).abs() < 1e-6);
        assert_eq!(savings_sentence(&p).0, "candidate saves $1,000/month");
        assert_eq!(monthly_projection(e, None), None);
    }

    #[test]
    fn renders_every_chart_as_svg_and_png() {
        let results = demo_results();
        let charts = render_charts(&results).unwrap();
        assert_eq!(charts.len(), plan_charts(&results).len());
        for chart in &charts {
            assert!(chart.svg.starts_with("<svg"), "{}", chart.name);
            assert!(chart.svg.contains("<text"), "{}: text is drawn", chart.name);
            let decoder = png::Decoder::new(chart.png.as_slice());
            let reader = decoder.read_info().unwrap();
            let info = reader.info();
            assert_eq!(info.width, WIDTH * PNG_SCALE, "{}", chart.name);
            assert!(info.height > 300, "{}", chart.name);
        }
    }

    #[test]
    fn rendering_is_deterministic() {
        let results = demo_results();
        assert_eq!(render_charts(&results).unwrap(), render_charts(&results).unwrap());
    }

    #[test]
    fn quality_chart_snapshot() {
        let results = demo_results();
        let chart = render_charts(&results)
            .unwrap()
            .into_iter()
            .find(|c| c.name == "customer-support-quality")
            .unwrap();
        insta::assert_snapshot!("quality_svg", chart.svg);
    }

    #[test]
    fn a_2000_case_run_stays_small() {
        let mut results = demo_results();
        let e = &mut results.experiments[0];
        let template = e.cases[0].clone();
        e.cases = (0..2_000)
            .map(|i| {
                let mut case = template.clone();
                case.id = format!("case-{i}");
                for (k, call) in case.baseline.iter_mut().chain(&mut case.candidate).enumerate() {
                    call.latency_ms = Some(200.0 + f64::from((i * 37 + k * 11) as u32 % 900));
                }
                case
            })
            .collect();
        let started = std::time::Instant::now();
        let charts = render_charts(&results).unwrap();
        eprintln!("rendered {} charts in {:?}", charts.len(), started.elapsed());
        for chart in charts.iter().filter(|c| c.name.starts_with("customer-support")) {
            // CDF lines are thinned and points are small circles: the SVG stays well under 1 MB.
            assert!(chart.svg.len() < 1_000_000, "{}: {} bytes", chart.name, chart.svg.len());
        }
    }

    #[test]
    fn nice_axes() {
        assert_eq!(
            nice_axis(845.0),
            (1000.0, vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0])
        );
        assert_eq!(nice_axis(1.0).0, 1.0);
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(whole_dollars(1234.4), "$1,234");
        assert_eq!(whole_dollars(7.0), "$7.00");
    }
}
