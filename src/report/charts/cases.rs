//! Cases: baseline against candidate per case, flipped cases highlighted.

use plotters::prelude::*;

use super::pen::{Align, Pen, Plot};
use super::*;
use crate::report::figures::thousands;
use crate::results::CaseResult;

pub(super) fn draw_cases<DB: DrawingBackend>(
    pen: &Pen<'_, DB>,
    e: &ExperimentResult,
    height: f64,
) -> anyhow::Result<()> {
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

    // Points are drawn in a fixed order, unchanged cases first, so flips stay on top. A large
    // run draws a share of each kind, every k-th in the dataset's order: 50,000 circles made an
    // 8 MB SVG no one can read (and 8 MB more of memory as the run ends), while a few thousand
    // jittered points show the same clouds. The legend counts every case. The cases are counted
    // first, so only the points drawn are held.
    // Each drawable case's kind (0 unchanged, 1 fail → pass, 2 pass → fail) and its two shares.
    let kind = |c: &CaseResult| -> Option<(usize, f64, f64)> {
        if c.baseline.is_empty() || c.candidate.is_empty() {
            return None;
        }
        // A case whose repeats no judge or scorer could score has no share to draw.
        let (b, k) = (pass_share(&c.baseline)?, pass_share(&c.candidate)?);
        let slot = match c.flip {
            None => 0,
            Some(Flip::FailToPass) => 1,
            Some(Flip::PassToFail) => 2,
        };
        Some((slot, b, k))
    };
    let mut counts = [0usize; 3];
    for (slot, ..) in e.cases.iter().filter_map(kind) {
        counts[slot] += 1;
    }
    let steps = counts.map(step);
    let mut drawn: [Vec<(f64, f64)>; 3] = std::array::from_fn(|s| Vec::with_capacity(counts[s].div_ceil(steps[s])));
    let mut seen = [0usize; 3];
    for (c, (slot, b, k)) in e.cases.iter().filter_map(|c| Some((c, kind(c)?))) {
        if seen[slot] % steps[slot] == 0 {
            let (jx, jy) = jitter(c.id());
            drawn[slot].push((plot.x(b + jx), plot.y(k + jy)));
        }
        seen[slot] += 1;
    }
    let [same, better, worse] = &drawn;
    let [same_count, better_count, worse_count] = counts;
    let [same_step, better_step, worse_step] = steps;
    let radius = if same_count / same_step > 500 { 2.5 } else { 3.5 };
    for at in same {
        pen.circle(*at, radius, NEUTRAL.mix(0.45), true)?;
    }
    for at in better {
        pen.triangle(*at, 6.0, OK.into(), false)?;
    }
    for at in worse {
        pen.triangle(*at, 6.0, REGRESSION.into(), true)?;
    }

    let x = plot.right + 28.0;
    let n = same_count + worse_count + better_count;
    pen.bold(
        &format!("{} cases", thousands(n as u64)),
        (x, plot.top + 8.0),
        13.0,
        INK,
        Align::Left,
    )?;
    let rows = [
        (REGRESSION, "▼", worse_count, "flipped pass → fail", worse_step),
        (OK, "▲", better_count, "flipped fail → pass", better_step),
        (MUTED, "●", same_count, "unchanged", same_step),
    ];
    for (i, (color, mark, count, what, step)) in rows.into_iter().enumerate() {
        let drawn = if step > 1 {
            format!(" (1 in {step} drawn)")
        } else {
            String::new()
        };
        let text = format!("{mark} {} {what}{drawn}", thousands(count as u64));
        pen.text(&text, (x, plot.top + 36.0 + i as f64 * 22.0), 12.0, color, Align::Left)?;
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

/// The most points of one kind the chart draws.
const MOST_DRAWN: usize = 2_000;

/// Every how many points of a kind to draw so that at most [`MOST_DRAWN`] are: 1 (all of them)
/// up to that many.
fn step(points: usize) -> usize {
    points.div_ceil(MOST_DRAWN).max(1)
}

/// The share of the repeats whose outcome is known that passed; `None` when none is known.
fn pass_share(calls: &[Call]) -> Option<f64> {
    let (known, passed) = crate::metrics::known_passes(calls);
    (known > 0).then(|| passed as f64 / known as f64)
}

/// A deterministic offset of up to ±0.06 per axis from the case id (FNV-1a), so cases with the
/// same scores spread into a visible cloud and the same results always draw the same picture.
fn jitter(id: &str) -> (f64, f64) {
    let hash = stats::fnv1a(id.bytes());
    let unit = |bits: u64| (bits & 0xFFFF) as f64 / 65_535.0 * 2.0 - 1.0;
    (unit(hash) * 0.06, unit(hash >> 32) * 0.06)
}
