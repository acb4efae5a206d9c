//! Report: renderings of the results model (results.json, report.md, summary.md,
//! junit.xml, charts/*.svg and *.png). Renderers return strings or bytes; [`write_outputs`]
//! decides where they go.

pub mod charts;
pub mod escape;
pub mod figures;
pub mod junit;
pub mod markdown;
pub mod terminal;
pub mod words;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::results::{self, Results};

/// Writes every output into `dir` and returns the paths written. `report.md` links no images
/// (nothing is published yet) and carries the charts as text; a publisher that uploads
/// `charts/*.png` re-renders it with [`markdown::render_report_with_images`].
pub fn write_outputs(results: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let files = [
        ("results.json", serde_json::to_string_pretty(results)? + "\n"),
        ("report.md", markdown::render_report(results)?),
        ("summary.md", markdown::render_summary(results)?),
        ("junit.xml", junit::render_junit(results)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let charts_dir = dir.join("charts");
    let charts = charts::render_charts(results).context("rendering the charts")?;
    if !charts.is_empty() {
        std::fs::create_dir_all(&charts_dir).with_context(|| format!("creating {}", charts_dir.display()))?;
    }
    for chart in charts {
        for (ext, bytes) in [("svg", chart.svg.into_bytes()), ("png", chart.png)] {
            let path = charts_dir.join(format!("{}.{ext}", chart.name));
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// Reads a `results.json`, checking its schema version.
pub fn read_results(path: &Path) -> Result<Results, crate::error::Error> {
    use crate::error::{Diagnostic, Error};
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::from(
            Diagnostic::new(format!(
                "cannot read {}: {}",
                path.display(),
                e.to_string().to_lowercase()
            ))
            .hint("pass the results.json that `promptgate run` wrote into its --out folder"),
        )
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        let message = e.to_string();
        let message = message.split(" at line").next().unwrap_or(&message).to_owned();
        Error::from(
            Diagnostic::new(format!("{} is not JSON: {message}", path.display()))
                .in_file(path.display().to_string())
                .at(&text, e.line() as u64, e.column() as u64)
                .hint("pass the results.json that `promptgate run` wrote into its --out folder"),
        )
    })?;
    let version = value.get("schema_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(results::SCHEMA_VERSION)) {
        let found = version.map_or_else(|| "no schema_version".to_owned(), |v| format!("schema_version {v}"));
        return Err(Diagnostic::new(format!(
            "{} has {found}; this promptgate reads schema_version {}",
            path.display(),
            results::SCHEMA_VERSION
        ))
        .hint("re-run the gate with this version of promptgate")
        .into());
    }
    serde_json::from_value(value)
        .map_err(|e| Diagnostic::new(format!("{} does not match the results schema: {e}", path.display())).into())
}
