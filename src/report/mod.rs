//! Report: the results model and its renderings (results.json, report.md, summary.md,
//! junit.xml). Renderers return strings; [`write_outputs`] decides where they go.

pub mod escape;
pub mod junit;
pub mod markdown;
pub mod results;

use std::path::{Path, PathBuf};

use anyhow::Context;

use results::Results;

/// Writes every output into `dir` and returns the paths written.
pub fn write_outputs(results: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        ("results.json", serde_json::to_string_pretty(results)? + "\n"),
        ("report.md", markdown::render_report(results)?),
        ("summary.md", markdown::render_summary(results)?),
        ("junit.xml", junit::render_junit(results)),
    ];
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Reads a `results.json`, checking its schema version.
pub fn read_results(path: &Path) -> Result<Results, crate::error::Error> {
    use crate::error::{Diagnostic, Error};
    let text = std::fs::read_to_string(path).map_err(|e| Error::from(Diagnostic::new(format!("cannot read {}: {e}", path.display()))))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::from(Diagnostic::new(format!("{} is not JSON: {e}", path.display())).in_file(path.display().to_string()).at(&text, e.line() as u64, e.column() as u64))
    })?;
    let version = value.get("schema_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(results::SCHEMA_VERSION)) {
        return Err(Diagnostic::new(format!("{} has schema_version {:?}; this promptgate reads {}", path.display(), version, results::SCHEMA_VERSION))
            .hint("re-run the gate with this version of promptgate")
            .into());
    }
    serde_json::from_value(value).map_err(|e| Diagnostic::new(format!("{} does not match the results schema: {e}", path.display())).into())
}
