//! `report.md` of a canary run, for a release manager: the verdict first, then one row per
//! metric with the evidence, what a hold still needs, the notes, and the charts.

use std::fmt::Write as _;

use super::result::{CanaryMetric, CanaryResult, CanaryVerdict, MetricVerdict};
use crate::format;
use crate::report::escape::escape_untrusted;

/// The report as Markdown; `charts` are the file stems written under `charts/`.
pub fn report_markdown(r: &CanaryResult, charts: &[(String, String)]) -> String {
    let e = |t: &str| escape_untrusted(t, 120);
    let mut out = String::new();
    let (mark, word) = match r.verdict {
        CanaryVerdict::Promote => ("🟢", "promote"),
        CanaryVerdict::Hold => ("🟡", "hold"),
        CanaryVerdict::Rollback => ("🔴", "roll back"),
    };
    let what = match (&r.experiment, &r.version) {
        (Some(x), Some(v)) => format!(" · {} {}", e(x), e(v)),
        (Some(x), None) => format!(" · {}", e(x)),
        (None, Some(v)) => format!(" · {}", e(v)),
        (None, None) => String::new(),
    };
    let mode = if r.mode == "drift" { "drift" } else { "canary" };
    let _ = writeln!(out, "## {mark} promptgate {mode}: {word}{what}\n");
    let _ = writeln!(out, "**{}**\n", e(&r.reason));
    // Prometheus series count steps, logs and traces count requests.
    let unit = r.unit();
    let _ = writeln!(
        out,
        "Baseline **{}** ({} {unit}) against canary **{}** ({} {unit}) · source `{}`{} · α = {} per metric, anytime-valid: this verdict holds however often the canary is looked at.\n",
        e(&r.arms.baseline.name),
        r.arms.baseline.n,
        e(&r.arms.canary.name),
        r.arms.canary.n,
        r.source.replace('`', "'"),
        r.window
            .as_ref()
            .map(|w| format!(" · {} to {}", w.from, w.to))
            .unwrap_or_default(),
        r.alpha,
    );
    let _ = writeln!(
        out,
        "| metric | baseline | canary | Δ canary − baseline | interval (anytime, 1 − α) | margin | p (Holm) | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---|");
    for m in &r.metrics {
        let _ = writeln!(out, "{}", row(m, r.unit()));
    }
    let _ = writeln!(out);
    if !r.failing.is_empty() {
        let _ = writeln!(out, "**Failing:** {}.\n", r.failing.join(", "));
    }
    if let Some(n) = &r.needed {
        let time = n
            .hours
            .map(|h| format!(", about {} at the canary's current traffic", hours(h)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "**Needed:** about {} {} per arm ({} more){time} before {} can decide, if the estimates hold.\n",
            n.requests_per_arm,
            r.unit(),
            n.more_requests_per_arm,
            if n.metrics.is_empty() {
                "any metric".to_owned()
            } else {
                n.metrics.join(", ")
            }
        );
    }
    let details: Vec<String> = r
        .metrics
        .iter()
        .map(|m| {
            let test = if m.test.is_empty() {
                String::new()
            } else {
                format!("{}; ", m.test)
            };
            format!(
                "- `{}`: {} ({test}{} and {} {})",
                m.name,
                e(&m.reason),
                m.n.baseline,
                m.n.canary,
                r.unit()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "<details><summary>Why, per metric</summary>\n\n{}\n\n</details>\n",
        details.join("\n")
    );
    if !r.notes.is_empty() {
        let _ = writeln!(out, "**Notes**\n");
        for note in &r.notes {
            let _ = writeln!(out, "- {}", e(note));
        }
        let _ = writeln!(out);
    }
    for (name, title) in charts {
        let _ = writeln!(out, "![{}](charts/{name}.png)\n", e(title));
    }
    let _ = writeln!(
        out,
        "<sub>Exit codes: 0 promote · 1 roll back · 4 hold · 2 bad input · 3 run error. How to read this: docs/canary.md.</sub>"
    );
    out
}

fn row(m: &CanaryMetric, unit_counted: &str) -> String {
    let unit = format::unit(&m.name);
    let cost = m.name == "cost_per_request";
    let delta = match m.delta {
        Some(d) if cost => format::relative(d),
        Some(d) => unit.signed(d),
        None => format::dash(),
    };
    let ci = match m.ci {
        Some([lo, hi]) if cost => format!("[{}, {}]", format::relative(lo), format::relative(hi)),
        Some([lo, hi]) => unit.interval(lo, hi),
        None => format::dash(),
    };
    let margin = match m.margin {
        Some(x) if cost => format!("{:.1}%", x * 100.0),
        Some(x) => unit.magnitude(x),
        None => format::dash(),
    };
    let mut verdict = match m.verdict {
        MetricVerdict::Regression => "🔴 regression".to_owned(),
        MetricVerdict::MinorRegression => "🟠 minor regression".to_owned(),
        MetricVerdict::Improvement => "🟢 improvement".to_owned(),
        MetricVerdict::NoChange if m.non_inferior => "✅ no worse than the margin".to_owned(),
        other => other.words(unit_counted).into_owned(),
    };
    if let Some(slo) = &m.slo {
        let state = match slo.met {
            Some(true) => "met",
            Some(false) => "broken",
            None => "not yet proven",
        };
        verdict.push_str(&format!(" · objective {} {state}", unit.value(slo.value)));
    }
    let (baseline, canary) = format::values(&m.name, m.baseline, m.canary);
    format!(
        "| `{}`{} | {} | {} | {delta} | {ci} | {margin} | {} | {verdict} |",
        m.name,
        if m.blocking { " (blocking)" } else { "" },
        baseline,
        canary,
        format::p_value(m.p_adjusted),
    )
}

fn hours(h: f64) -> String {
    if h < 1.0 {
        format!("{:.0} minutes", (h * 60.0).max(1.0))
    } else if h < 48.0 {
        format!("{h:.1} hours")
    } else {
        format!("{:.1} days", h / 24.0)
    }
}
