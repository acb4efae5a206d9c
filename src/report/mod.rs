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
///
/// Every text output passes through the redactor last (`crate::secrets`), and nothing is
/// written through a symbolic link: a pull request that commits `promptgate-out` as a link
/// must not redirect the outputs.
pub fn write_outputs(results: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    crate::output::create_dir(dir)?;
    // The results are rendered from their redacted form. Most runs have nothing to redact
    // (the runner redacted every output and error already), and a whole-results copy costs
    // memory in a large run: the copy is made only when the serialized results show a need.
    let json = serde_json::to_string_pretty(results)? + "\n";
    let redacted;
    let (results, json) = if crate::secrets::needs_redaction(&json) {
        redacted = crate::secrets::redacted(results);
        (&redacted, crate::secrets::redact(&json))
    } else {
        (results, json)
    };
    let mut written = Vec::new();
    let path = dir.join("results.json");
    crate::output::write_file(&path, json.as_bytes())?;
    written.push(path);
    drop(json);
    let files = [
        ("report.md", markdown::render_report(results)?),
        ("summary.md", markdown::render_summary(results)?),
        ("junit.xml", junit::render_junit(results)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        let text = if crate::secrets::needs_redaction(&text) {
            crate::secrets::redact(&text)
        } else {
            text
        };
        crate::output::write_file(&path, text.as_bytes())?;
        written.push(path);
    }
    let charts_dir = dir.join("charts");
    let charts = charts::render_charts(results).context("rendering the charts")?;
    if !charts.is_empty() {
        crate::output::create_dir(&charts_dir)?;
    }
    for chart in charts {
        for (ext, bytes) in [
            ("svg", crate::secrets::redact(&chart.svg).into_bytes()),
            ("png", chart.png),
        ] {
            let path = charts_dir.join(format!("{}.{ext}", chart.name));
            crate::output::write_file(&path, &bytes)?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The largest `results.json` read: a run of 100,000 cases with long outputs stays well below.
pub const MAX_RESULTS_BYTES: u64 = 1 << 30;

fn read_capped(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_RESULTS_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_RESULTS_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {} MiB",
            MAX_RESULTS_BYTES >> 20
        )));
    }
    Ok(text)
}

/// Reads a `results.json`, checking its schema version.
pub fn read_results(path: &Path) -> Result<Results, crate::error::Error> {
    use crate::error::{Diagnostic, Error};
    let text = read_capped(path).map_err(|e| {
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
