//! `ledger show`'s outputs: the history as a Markdown document and as terminal text, and a trend
//! chart per metric. Renderers return strings and charts; the command decides where they go.
//!
//! Experiment names, versions and waiver reasons come from files a pull request may write:
//! the Markdown escapes them (`report::escape`), the terminal prints them through
//! `output::inert` at the command.

use std::collections::BTreeMap;

use super::drift::label;
use super::{DriftFlag, GateMargin, Row, Window};
use crate::format;
use crate::report::charts::{Chart, Trend, TrendPoint, render_trend, trend_name};
use crate::report::escape::escape_untrusted;

/// At most this many metric columns per table; the rest are in the file and the charts.
const MAX_COLUMNS: usize = 5;

/// What `show` renders.
pub struct Show<'a> {
    pub history: &'a BTreeMap<String, Vec<Row>>,
    pub gates: &'a BTreeMap<String, GateMargin>,
    pub flags: &'a [DriftFlag],
    pub window: Window,
    /// Why drift was not checked (no gates could be read), when it was not.
    pub drift_unchecked: Option<&'a str>,
    /// Chart file stems by (experiment, metric), linked from the Markdown.
    pub charts: &'a BTreeMap<(String, String), String>,
}

/// What drift means, said once wherever flags are shown.
pub fn drift_definition(window: Window) -> String {
    format!(
        "Drift means: across {}, a gated metric got worse from the oldest to the newest version by more than its gate's margin (a relative margin taken of the oldest value) — each change may have passed its own gate while the metric slid.",
        window.describe()
    )
}

/// The history as Markdown (`ledger.md`).
pub fn render_markdown(show: &Show<'_>) -> String {
    let esc = |t: &str| escape_untrusted(t, 200);
    let mut out = String::from("# promptgate ledger\n\n");
    if show.history.is_empty() {
        out.push_str("The ledger has no entries yet.\n");
        return out;
    }
    out.push_str(&drift_section(show, true));
    for (experiment, rows) in show.history {
        out.push_str(&format!("\n## {}\n\n", esc(experiment)));
        let metrics = columns(rows, show.gates);
        let mut header = vec!["version", "commit", "PR", "verdict"];
        header.extend(metrics.iter().map(String::as_str));
        header.push("canary");
        out.push_str(&format!(
            "| {} |\n",
            header.iter().map(|h| esc(h)).collect::<Vec<_>>().join(" | ")
        ));
        out.push_str(&format!("|{}\n", " --- |".repeat(header.len())));
        for row in rows {
            out.push_str(&format!("| {} |\n", cells(row, &metrics, &esc).join(" | ")));
        }
        let omitted = all_metrics(rows).len().saturating_sub(metrics.len());
        if omitted > 0 {
            out.push_str(&format!(
                "\n{omitted} more metric(s) recorded; `--experiment {}` and ledger.jsonl have them all.\n",
                esc(experiment)
            ));
        }
        let charts: Vec<(&String, &String)> = show
            .charts
            .iter()
            .filter(|((e, _), _)| e == experiment)
            .map(|((_, m), name)| (m, name))
            .collect();
        if !charts.is_empty() {
            out.push('\n');
            for (metric, name) in charts {
                out.push_str(&format!(
                    "![{}: {} across versions](charts/{name}.svg)\n",
                    esc(experiment),
                    esc(metric)
                ));
            }
        }
    }
    out
}

/// The history as terminal text: the same tables, columns padded.
pub fn render_terminal(show: &Show<'_>) -> String {
    if show.history.is_empty() {
        return "the ledger has no entries yet\n".to_owned();
    }
    let mut out = String::new();
    for (experiment, rows) in show.history {
        out.push_str(&format!("{experiment}\n"));
        let metrics = columns(rows, show.gates);
        let mut header: Vec<String> = ["version", "commit", "PR", "verdict"].map(str::to_owned).to_vec();
        header.extend(metrics.iter().cloned());
        header.push("canary".to_owned());
        let body: Vec<Vec<String>> = rows.iter().map(|r| cells(r, &metrics, &|t| t.to_owned())).collect();
        out.push_str(&padded(&header, &body));
        out.push('\n');
    }
    out.push_str(&drift_section(show, false));
    out
}

/// One trend chart per (experiment, metric) with a version measured: the first version's
/// chart is its one point, where the history starts.
pub fn trend_charts(show: &Show<'_>, ci_label: &str) -> anyhow::Result<Vec<((String, String), Chart)>> {
    let mut charts = Vec::new();
    for (experiment, rows) in show.history {
        for metric in all_metrics(rows) {
            let measured: Vec<&Row> = rows
                .iter()
                .filter(|r| r.metrics.get(&metric).and_then(|m| m.value).is_some_and(f64::is_finite))
                .collect();
            if measured.is_empty() {
                continue;
            }
            let points: Vec<TrendPoint> = measured
                .iter()
                .map(|r| TrendPoint {
                    label: label(r),
                    value: r.metrics[&metric].value.unwrap_or(0.0),
                    ci: r.metrics[&metric].ci,
                })
                .collect();
            let drift = show
                .flags
                .iter()
                .find(|f| &f.experiment == experiment && f.metric == metric)
                .and_then(|f| {
                    let at = |v: &str| points.iter().rposition(|p| p.label == v);
                    Some((at(&f.from_version)?, at(&f.to_version)?))
                });
            let unchecked = match (show.drift_unchecked, show.gates.contains_key(&metric)) {
                (Some(_), _) => Some("the suite's gates did not load"),
                (None, false) => Some("no gate gives it a margin"),
                (None, true) => None,
            };
            let trend = Trend {
                experiment: experiment.clone(),
                metric: metric.clone(),
                points,
                drift,
                unchecked,
                ci_label: ci_label.to_owned(),
            };
            let name = trend_name(experiment, &metric);
            charts.push(((experiment.clone(), metric), render_trend(&trend, &name)?));
        }
    }
    Ok(charts)
}

fn drift_section(show: &Show<'_>, markdown: bool) -> String {
    let esc = |t: &str| {
        if markdown {
            escape_untrusted(t, 200)
        } else {
            t.to_owned()
        }
    };
    let mut out = String::new();
    if let Some(why) = show.drift_unchecked {
        out.push_str(&format!("Drift not checked: {}\n", esc(why)));
        return out;
    }
    out.push_str(&drift_definition(show.window));
    out.push_str(if markdown { "\n\n" } else { "\n" });
    if show.flags.is_empty() {
        out.push_str("No metric drifted.\n");
    }
    for f in show.flags {
        let unit = format::unit(&f.metric);
        let noise = if f.beyond_noise {
            "the two versions' intervals do not overlap"
        } else {
            "the two versions' intervals overlap: watch it, the slide may be noise"
        };
        let line = format!(
            "{} · {}: {} at {} → {} at {} ({} across {} versions; the margin is {}); {noise}",
            esc(&f.experiment),
            esc(&f.metric),
            unit.value(f.from),
            esc(&f.from_version),
            unit.value(f.to),
            esc(&f.to_version),
            unit.signed(f.to - f.from),
            f.versions,
            unit.magnitude(f.margin),
        );
        if markdown {
            out.push_str(&format!("- ⚠️ **drift** {line}\n"));
        } else {
            out.push_str(&format!("drift: {line}\n"));
        }
    }
    out
}

/// Every metric the rows measured: gated ones first (the gates' order), then by name.
fn all_metrics(rows: &[Row]) -> Vec<String> {
    let mut names: Vec<String> = rows.iter().flat_map(|r| r.metrics.keys().cloned()).collect();
    names.sort();
    names.dedup();
    names
}

fn columns(rows: &[Row], gates: &BTreeMap<String, GateMargin>) -> Vec<String> {
    let mut names = all_metrics(rows);
    names.sort_by_key(|n| !gates.contains_key(n));
    names.truncate(MAX_COLUMNS);
    names
}

/// A row's cells; `esc` is applied to what the ledger's writers chose (versions, commits,
/// verdict words, waivers, canary metric names), not to promptgate's own numbers and words.
fn cells(row: &Row, metrics: &[String], esc: &dyn Fn(&str) -> String) -> Vec<String> {
    let dash = format::dash();
    let mut cells = vec![
        row.version.as_deref().map_or_else(|| dash.clone(), esc),
        row.commit
            .as_deref()
            .map_or_else(|| dash.clone(), |c| esc(format::short_sha(c))),
        row.pr.map_or_else(|| dash.clone(), |n| format!("#{n}")),
        esc(&verdict_cell(row)),
    ];
    for metric in metrics {
        let unit = format::unit(metric);
        cells.push(match row.metrics.get(metric) {
            Some(m) => match (m.value.filter(|v| v.is_finite()), m.ci) {
                (Some(v), Some([lo, hi])) => format!("{} [{}, {}]", unit.value(v), unit.value(lo), unit.value(hi)),
                (Some(v), None) => unit.value(v),
                (None, _) => dash.clone(),
            },
            None => dash.clone(),
        });
    }
    cells.push(esc(&canary_cell(row)));
    cells
}

fn verdict_cell(row: &Row) -> String {
    let Some(verdict) = &row.verdict else {
        return "not gated".to_owned();
    };
    let mut text = verdict.clone();
    if let Some(w) = &row.waiver {
        text.push_str(&format!(" (by {}: {})", w.by, w.reason));
    }
    if row.gated > 1 {
        text.push_str(&format!(" (gated {}× at this version)", row.gated));
    }
    text
}

fn canary_cell(row: &Row) -> String {
    let Some(canary) = &row.canary else {
        return "not yet".to_owned();
    };
    let mut text = canary.decision.clone();
    let failed: Vec<&str> = canary
        .metrics
        .iter()
        .filter(|(_, m)| m.verdict.as_deref() == Some("regression"))
        .map(|(name, _)| name.as_str())
        .collect();
    if !failed.is_empty() {
        text.push_str(&format!(" ({})", failed.join(", ")));
    }
    if row.canary_entries > 1 {
        text.push_str(&format!(" after {} looks", row.canary_entries));
    }
    text
}

/// Columns padded to their widest cell, two spaces apart.
fn padded(header: &[String], body: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            std::iter::once(&header[i])
                .chain(body.iter().map(|r| &r[i]))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("  {}\n", text.join("  ").trim_end())
    };
    let mut out = line(header);
    for row in body {
        out.push_str(&line(row));
    }
    out
}
