//! Drift: a metric that moved, across the window's versions, further in the bad direction than
//! its gate's margin allows one change to move it.
//!
//! Each pull request is judged against its own base, so a run of changes each inside the margin
//! (minor regressions, or no significant change) passes the gate every time while the metric
//! slides. Drift compares the oldest and the newest version in the window: when the newest is
//! worse than the oldest by more than the margin (a relative margin taken of the oldest value),
//! the metric is flagged. Whether the two versions' intervals are apart says if the slide is
//! also beyond the noise of the measurements.

use std::time::Duration;

use super::Row;
use crate::error::{Diagnostic, Error};
use crate::results::Direction;

/// Which versions drift compares across.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Window {
    /// The last N versions that measured the metric.
    Versions(usize),
    /// The versions recorded within this long before the newest.
    Span(Duration),
}

impl Window {
    pub fn describe(self) -> String {
        match self {
            Window::Versions(n) => format!("the last {n} versions"),
            Window::Span(d) => {
                let secs = d.as_secs();
                let (n, unit) = if secs.is_multiple_of(86_400) {
                    (secs / 86_400, "day")
                } else {
                    (secs / 3600, "hour")
                };
                let plural = if n == 1 { "" } else { "s" };
                format!("the versions recorded in the {n} {unit}{plural} before the newest")
            }
        }
    }
}

/// `--window`: `N` versions, or a span such as `30d` or `12h`.
pub fn parse_window(text: &str) -> Result<Window, Error> {
    let bad = || {
        Error::from(
            Diagnostic::new(format!("`--window {text}` is neither a number of versions nor a span"))
                .hint("write `--window 10` (the last 10 versions) or `--window 30d` / `--window 12h`"),
        )
    };
    let text = text.trim();
    if let Ok(n) = text.parse::<usize>() {
        return if n >= 2 { Ok(Window::Versions(n)) } else { Err(bad()) };
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: u64 = number.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" => 86_400,
        "h" => 3_600,
        _ => return Err(bad()),
    };
    if n == 0 {
        return Err(bad());
    }
    Ok(Window::Span(Duration::from_secs(n * secs)))
}

/// A gate's margin as drift reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GateMargin {
    pub direction: Direction,
    /// In the metric's unit, or a fraction of the oldest value when `relative`.
    pub margin: f64,
    pub relative: bool,
}

/// A metric that drifted.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftFlag {
    pub experiment: String,
    pub metric: String,
    /// The oldest and newest versions compared, and their values.
    pub from_version: String,
    pub to_version: String,
    pub from: f64,
    pub to: f64,
    /// The margin in the metric's unit.
    pub margin: f64,
    /// Versions in the window that measured the metric.
    pub versions: usize,
    /// The two versions' intervals do not overlap.
    pub beyond_noise: bool,
}

/// The drift flags of one experiment's rows under `gates` (metric name → margin).
pub fn drift(rows: &[Row], gates: &std::collections::BTreeMap<String, GateMargin>, window: Window) -> Vec<DriftFlag> {
    let mut flags = Vec::new();
    for (metric, gate) in gates {
        let measured: Vec<&Row> = rows
            .iter()
            .filter(|r| r.metrics.get(metric).and_then(|m| m.value).is_some_and(f64::is_finite))
            .collect();
        let in_window: Vec<&Row> = match window {
            Window::Versions(n) => measured[measured.len().saturating_sub(n)..].to_vec(),
            Window::Span(span) => {
                let Some(newest) = measured.last().and_then(|r| super::time::parse(&r.time)) else {
                    continue;
                };
                measured
                    .iter()
                    .copied()
                    .filter(|r| {
                        super::time::parse(&r.time)
                            .is_some_and(|t| newest.duration_since(t).map_or(true, |ago| ago <= span))
                    })
                    .collect()
            }
        };
        let (Some(first), Some(last)) = (in_window.first(), in_window.last()) else {
            continue;
        };
        if in_window.len() < 2 {
            continue;
        }
        let value = |r: &Row| r.metrics[metric].value.unwrap_or(f64::NAN);
        let (from, to) = (value(first), value(last));
        let margin = if gate.relative {
            gate.margin * from.abs()
        } else {
            gate.margin
        };
        let worse_by = match gate.direction {
            Direction::Higher => from - to,
            Direction::Lower => to - from,
        };
        if worse_by.is_finite() && worse_by > margin {
            let ci = |r: &Row| r.metrics[metric].ci;
            let beyond_noise = match (ci(first), ci(last), gate.direction) {
                (Some(a), Some(b), Direction::Higher) => b[1] < a[0],
                (Some(a), Some(b), Direction::Lower) => b[0] > a[1],
                _ => false,
            };
            flags.push(DriftFlag {
                experiment: last.experiment.clone(),
                metric: metric.clone(),
                from_version: label(first),
                to_version: label(last),
                from,
                to,
                margin,
                versions: in_window.len(),
                beyond_noise,
            });
        }
    }
    flags
}

/// A row's version, or its commit when the variant has no `version:`.
pub(super) fn label(row: &Row) -> String {
    match (&row.version, &row.commit) {
        (Some(v), _) => v.clone(),
        (None, Some(c)) => format!("@{}", crate::format::short_sha(c)),
        (None, None) => "(unversioned)".to_owned(),
    }
}
