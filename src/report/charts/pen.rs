//! The drawing kit: a pen in logical pixels (the same code serves the 1× SVG and the 2× PNG)
//! and a plot area with its axes.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontFamily, FontStyle, RGBAColor};

use super::*;

pub(super) struct Pen<'a, DB: DrawingBackend> {
    area: &'a DrawingArea<DB, Shift>,
    k: f64,
}

#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

impl<'a, DB: DrawingBackend> Pen<'a, DB> {
    pub(super) fn new(area: &'a DrawingArea<DB, Shift>, k: f64) -> Self {
        Pen { area, k }
    }

    pub(super) fn at(&self, (x, y): (f64, f64)) -> (i32, i32) {
        ((x * self.k).round() as i32, (y * self.k).round() as i32)
    }

    pub(super) fn width(&self, w: f64) -> u32 {
        (w * self.k).round().max(1.0) as u32
    }

    /// The white card with a thin edge that every chart sits on.
    pub(super) fn card(&self, height: f64) -> anyhow::Result<()> {
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
    pub(super) fn text_styled(
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
    pub(super) fn text(
        &self,
        text: &str,
        at: (f64, f64),
        size: f64,
        color: RGBColor,
        align: Align,
    ) -> anyhow::Result<()> {
        self.text_styled(text, at, size, color, align, false, VPos::Center)
    }

    pub(super) fn bold(
        &self,
        text: &str,
        at: (f64, f64),
        size: f64,
        color: RGBColor,
        align: Align,
    ) -> anyhow::Result<()> {
        self.text_styled(text, at, size, color, align, true, VPos::Center)
    }

    /// Width of `text` in logical pixels, for placing the next piece after it.
    pub(super) fn text_width(&self, text: &str, size: f64, bold: bool) -> f64 {
        let style = if bold { FontStyle::Bold } else { FontStyle::Normal };
        let font = FontDesc::new(FontFamily::SansSerif, size * self.k, style);
        font.box_size(text)
            .map_or(text.chars().count() as f64 * size * 0.6, |(w, _)| f64::from(w) / self.k)
    }

    pub(super) fn line(&self, points: &[(f64, f64)], color: RGBAColor, width: f64) -> anyhow::Result<()> {
        let points: Vec<(i32, i32)> = points.iter().map(|p| self.at(*p)).collect();
        self.area
            .draw(&PathElement::new(points, color.stroke_width(self.width(width))))
            .map_err(drawing)
    }

    pub(super) fn dashed(&self, from: (f64, f64), to: (f64, f64), color: RGBAColor, width: f64) -> anyhow::Result<()> {
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

    pub(super) fn rect(&self, a: (f64, f64), b: (f64, f64), color: RGBAColor, filled: bool) -> anyhow::Result<()> {
        let style = if filled {
            color.filled()
        } else {
            color.stroke_width(self.width(1.0))
        };
        self.area
            .draw(&Rectangle::new([self.at(a), self.at(b)], style))
            .map_err(drawing)
    }

    pub(super) fn circle(&self, at: (f64, f64), r: f64, color: RGBAColor, filled: bool) -> anyhow::Result<()> {
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

    pub(super) fn triangle(&self, (x, y): (f64, f64), r: f64, color: RGBAColor, down: bool) -> anyhow::Result<()> {
        let s = if down { 1.0 } else { -1.0 };
        let points = vec![
            self.at((x - r, y - s * r * 0.8)),
            self.at((x + r, y - s * r * 0.8)),
            self.at((x, y + s * r)),
        ];
        self.area.draw(&Polygon::new(points, color.filled())).map_err(drawing)
    }

    pub(super) fn title(&self, title: &str, subtitle: &str) -> anyhow::Result<()> {
        self.bold(&shorten(title, 60), (20.0, 24.0), 16.0, INK, Align::Left)?;
        self.text(subtitle, (20.0, 46.0), 12.0, MUTED, Align::Left)
    }

    /// A legend entry: a coloured swatch and its label; returns the x after it.
    pub(super) fn legend(&self, x: f64, y: f64, color: RGBColor, label: &str) -> anyhow::Result<f64> {
        self.rect((x, y - 5.0), (x + 14.0, y + 5.0), color.into(), true)?;
        self.text(label, (x + 20.0, y), 12.0, MUTED, Align::Left)?;
        Ok(x + 20.0 + self.text_width(label, 12.0, false) + 18.0)
    }
}

pub(super) fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_owned()
    } else {
        let kept: String = text.chars().take(max_chars - 1).collect();
        format!("{kept}…")
    }
}

/// A rectangle of data coordinates from 0 to (x_max, y_max).
pub(super) struct Plot {
    pub(super) left: f64,
    pub(super) right: f64,
    pub(super) top: f64,
    pub(super) bottom: f64,
    pub(super) x_max: f64,
    pub(super) y_max: f64,
    /// Data below 0 shown, as a share of the range (room for jitter around 0).
    pub(super) pad: f64,
}

impl Plot {
    pub(super) fn x(&self, v: f64) -> f64 {
        self.left + self.share(v / self.x_max) * (self.right - self.left)
    }

    pub(super) fn y(&self, v: f64) -> f64 {
        self.bottom - self.share(v / self.y_max) * (self.bottom - self.top)
    }

    pub(super) fn share(&self, t: f64) -> f64 {
        ((t + self.pad) / (1.0 + 2.0 * self.pad)).clamp(0.0, 1.0)
    }

    pub(super) fn grid<DB: DrawingBackend>(
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
pub(super) fn nice_axis(max: f64) -> (f64, Vec<f64>) {
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
