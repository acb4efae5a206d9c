//! Charts of a run, as SVG and PNG: per experiment, quality (Δ with 95% CI per metric), the
//! latency distribution (CDF with p50/p95), cost per request with the monthly projection, and
//! the paired per-case plot with flipped cases highlighted; and, for the ledger, a metric's
//! trend across versions (`trend.rs`, drawn from a [`Trend`]).
//!
//! Charts are functions of [`Results`] (or a [`Trend`]) alone and do no I/O: the same results give the same bytes,
//! so they can be snapshot-tested. Text is laid out with DejaVu Sans compiled into the binary,
//! never a system font, so rendering works on a bare CI runner. Every chart is an opaque white
//! card with mid-grey text and the Okabe–Ito palette: it reads in GitHub's light and dark themes
//! and for colour-blind readers.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;

mod canary;
mod cases;
mod cost;
mod latency;
mod pen;
mod quality;
mod trend;

pub use trend::{Trend, TrendPoint, render_trend, trend_name};

use super::figures::{cost_per_request, is_quality, latencies};
#[cfg(test)]
use super::figures::{monthly_projection, savings_sentence, thousands, whole_dollars};
use crate::format::{self, Unit};
use crate::results::{
    Arm, Call, Direction, ExperimentResult, ExperimentStatus, Flip, MetricResult, MetricVerdict, Results,
};
use crate::stats;
use pen::Pen;

pub use canary::{CanaryFigures, RateSeries, Share, render_canary_charts};

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
            let (svg, png) = render(&figure)?;
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

/// Orange text on white is faint; text uses a darker shade of the same hue.
pub(super) fn darker(c: RGBColor) -> RGBColor {
    RGBColor(
        (f64::from(c.0) * 0.72) as u8,
        (f64::from(c.1) * 0.72) as u8,
        (f64::from(c.2) * 0.72) as u8,
    )
}

static FONT_REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static FONT_BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

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
}

impl Drawing for Figure<'_> {
    fn height(&self) -> u32 {
        match self {
            Figure::Quality(e) => {
                let rows = e.metrics.iter().filter(|m| is_quality(m)).count() as u32;
                quality::QUALITY_TOP + rows * quality::QUALITY_ROW + 56
            }
            Figure::Latency(_) => 360,
            Figure::Cost(..) => 240,
            Figure::Cases(_) => 400,
        }
    }

    fn draw<DB: DrawingBackend>(&self, pen: &Pen<'_, DB>) -> anyhow::Result<()> {
        let height = f64::from(self.height());
        pen.card(height)?;
        match *self {
            Figure::Quality(e) => quality::draw_quality(pen, e),
            Figure::Latency(e) => latency::draw_latency(pen, e, height),
            Figure::Cost(e, rpm) => cost::draw_cost(pen, e, rpm),
            Figure::Cases(e) => cases::draw_cases(pen, e, height),
        }
    }
}

/// A chart that draws itself with a [`Pen`]: once for the 1× SVG and once for the 2× PNG.
trait Drawing {
    fn height(&self) -> u32;
    fn draw<DB: DrawingBackend>(&self, pen: &Pen<'_, DB>) -> anyhow::Result<()>;
}

fn render(figure: &impl Drawing) -> anyhow::Result<(String, Vec<u8>)> {
    let height = figure.height();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        figure.draw(&Pen::new(&root, 1.0))?;
        root.present().map_err(drawing)?;
    }
    let (w, h) = (WIDTH * PNG_SCALE, height * PNG_SCALE);
    let mut pixels = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        figure.draw(&Pen::new(&root, f64::from(PNG_SCALE)))?;
        root.present().map_err(drawing)?;
    }
    Ok((svg, encode_png(&pixels, w, h)?))
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

// ---------------------------------------------------------------------------------------------
// Quality: one row per metric, the paired difference with its 95% CI against the margin.

// ---------------------------------------------------------------------------------------------
// Latency: the empirical CDF of both arms, with p50 and p95 marked, and the SLO if any.

// ---------------------------------------------------------------------------------------------
// Cost: per request for both arms, and what that means per month at the configured traffic.

// ---------------------------------------------------------------------------------------------
// Cases: baseline against candidate per case, flipped cases highlighted.

// ---------------------------------------------------------------------------------------------

use crate::format::finite;

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
    use super::pen::nice_axis;
    use super::*;
    use crate::report::markdown::test_fixtures::demo_results;
    use crate::results::CaseText;

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
        // The arms' own means differ (the candidate's errored calls, which have no cost, were
        // its dearest), but over the cases both completed the cost did not change: no savings.
        let cost = e.metrics.iter_mut().find(|m| m.name == "cost_per_request").unwrap();
        cost.details.relative_delta = Some(0.0);
        let p = monthly_projection(e, Some(1_000_000)).unwrap();
        assert_eq!(savings_sentence(&p).0, "no change in monthly cost");
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
                case.text = CaseText::new(&format!("case-{i}"), case.group(), case.input());
                for (k, call) in case.baseline.iter_mut().chain(&mut case.candidate).enumerate() {
                    call.latency_ms = Some(200.0 + f64::from((i * 37 + k * 11) as u32 % 900)).into();
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
    fn a_large_runs_cases_chart_draws_a_share_of_them_and_counts_them_all() {
        let mut results = demo_results();
        let e = &mut results.experiments[0];
        let template = e
            .cases
            .iter()
            .find(|c| c.flip.is_none() && !c.baseline.is_empty())
            .unwrap()
            .clone();
        // 50,000 unchanged cases (the memory benchmark's 100,000 calls) and 2,001 flipped: all
        // are counted, 1 in 25 of the unchanged and 1 in 2 of the flips are drawn.
        e.cases = (0..52_001)
            .map(|i| {
                let mut case = template.clone();
                case.text = CaseText::new(&format!("case-{i}"), case.group(), case.input());
                case.flip = (i >= 50_000).then_some(Flip::PassToFail);
                case
            })
            .collect();
        let charts = render_charts(&results).unwrap();
        let cases = charts.iter().find(|c| c.name == "customer-support-cases").unwrap();
        assert!(cases.svg.contains("52,001 cases"), "{}", cases.svg);
        assert!(cases.svg.contains("50,000 unchanged (1 in 25 drawn)"));
        assert!(cases.svg.contains("2,001 flipped pass → fail (1 in 2 drawn)"));
        assert!(cases.svg.contains("▲ 0 flipped fail → pass\n"));
        assert_eq!(cases.svg.matches("<circle").count(), 2_000);
        assert_eq!(cases.svg.matches("<polygon").count(), 1_001);
        assert!(cases.svg.len() < 1_000_000, "{} bytes", cases.svg.len());
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
