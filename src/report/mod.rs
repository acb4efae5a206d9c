//! Report: renderings of the results model (results.json, report.md, summary.md,
//! junit.xml, charts/*.svg and *.png). Renderers return strings or bytes; [`write_outputs`]
//! decides where they go.

pub mod calls;
pub mod charts;
pub mod escape;
pub mod figures;
pub mod junit;
pub mod markdown;
pub mod terminal;
pub mod words;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::results::Results;

/// Writes every output into `dir` and returns the paths written. `report.md` links no images
/// (nothing is published yet) and carries the charts as text; a publisher that uploads
/// `charts/*.png` re-renders it with [`markdown::render_report_with_images`].
///
/// Every text output passes through the redactor last (`crate::secrets`), and nothing is
/// written through a symbolic link: a pull request that commits `promptgate-out` as a link
/// must not redirect the outputs.
pub fn write_outputs(results: &Results, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    crate::output::create_dir(dir)?;
    // results.json (and calls.jsonl) stream to disk through the redactor: a large run's
    // results are never one string in memory. The other outputs are rendered from the
    // redacted results; most runs have nothing to redact (the runner redacted every output and
    // error already), so the copy is made only when the redactor found something.
    //
    // results.json is written on a thread of their own while the text outputs and the charts
    // are rendered: the two are independent work for two cores. The rendering stays on the
    // calling thread, whose memory the analysis has just given back: on another thread its
    // strings and bitmaps would grow that thread's own heap beside it (about 12 MB at 100,000
    // calls). Should the redactor find something in results.json, they are rendered again from
    // the redacted copy, so what is written is exactly what a sequential run writes.
    std::thread::scope(|scope| {
        let writing = scope.spawn(|| write_results(results, dir));
        let rendered = render_all(results);
        let (mut written, redacted_something) = writing
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        let (files, charts) = if redacted_something {
            render_all(&crate::secrets::redacted(results))?
        } else {
            rendered?
        };
        write_rendered(dir, files, charts, &mut written)?;
        Ok(written)
    })
}

/// The text outputs (name, text) and the charts, rendered from `results`.
type Rendered = (Vec<(&'static str, String)>, Vec<charts::Chart>);

fn render_all(results: &Results) -> anyhow::Result<Rendered> {
    let files = vec![
        ("report.md", markdown::render_report(results)?),
        ("summary.md", markdown::render_summary(results)?),
        ("junit.xml", junit::render_junit(results)),
    ];
    let charts = charts::render_charts(results).context("rendering the charts")?;
    Ok((files, charts))
}

/// Writes results.json (and calls.jsonl first when the outputs go there); returns the paths
/// and whether the redactor found something to hide.
fn write_results(results: &Results, dir: &Path) -> anyhow::Result<(Vec<PathBuf>, bool)> {
    let mut written = Vec::new();
    let mut redacted_something = false;
    let outputs_in_file = calls::outputs_in_file(results);
    if outputs_in_file {
        // Before results.json, so a schema 2 results.json never names a calls.jsonl not yet
        // written.
        let path = dir.join(calls::CALLS_FILE);
        crate::output::write_file_with(&path, |out| {
            redacted_something = calls::write_calls(results, out)?;
            Ok(())
        })?;
        written.push(path);
    }
    let path = dir.join("results.json");
    crate::output::write_file_with(&path, |out| {
        redacted_something |= calls::write_results_json(results, out, outputs_in_file)?;
        Ok(())
    })?;
    if let Some(warning) = std::fs::metadata(&path)
        .ok()
        .and_then(|m| too_large_to_read(&path, m.len()))
    {
        eprintln!("{warning}");
    }
    written.push(path);
    Ok((written, redacted_something))
}

/// The warning for a `results.json` written larger than promptgate reads back (`read_results`).
fn too_large_to_read(path: &Path, bytes: u64) -> Option<String> {
    (bytes > MAX_RESULTS_BYTES).then(|| {
        format!(
            "warning: {} is {bytes} bytes, more than promptgate reads back ({MAX_RESULTS_BYTES}): `report`, `merge`, `ci`'s publishing step and `ledger record` will refuse it; this run's verdict and its other outputs stand\n\
             hint: run a suite this large as shards (`run --shard K/N`) and read each shard's results.json on its own (merged, they would be as large)",
            path.display(),
        )
    })
}

/// Writes the rendered text outputs and charts into `dir`, appending their paths.
fn write_rendered(
    dir: &Path,
    files: Vec<(&'static str, String)>,
    charts: Vec<charts::Chart>,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
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
    if !charts.is_empty() {
        crate::output::create_dir(&charts_dir)?;
    }
    crate::output::replace_charts(
        &charts_dir,
        crate::output::RUN_CHARTS,
        charts.iter().map(|c| c.name.as_str()),
    )?;
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
    Ok(())
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

pub use calls::read_results;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_results_json_larger_than_is_read_back_is_warned_of() {
        let path = Path::new("out/results.json");
        assert_eq!(too_large_to_read(path, MAX_RESULTS_BYTES), None);
        let warning = too_large_to_read(path, MAX_RESULTS_BYTES + 1).unwrap();
        assert_eq!(
            warning,
            "warning: out/results.json is 1073741825 bytes, more than promptgate reads back (1073741824): `report`, `merge`, `ci`'s publishing step and `ledger record` will refuse it; this run's verdict and its other outputs stand\n\
             hint: run a suite this large as shards (`run --shard K/N`) and read each shard's results.json on its own (merged, they would be as large)"
        );
    }
}
