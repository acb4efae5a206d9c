//! `promptgate canary`: promote, hold or roll back a canary from production logs, traces or
//! Prometheus. Strings together `suite::canary` (the config), `canary::evaluate` (read and
//! decide) and the outputs, and with `--watch` repeats them until the verdict is no longer a
//! hold — the anytime-valid statistics make every look as trustworthy as the first.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

use crate::canary::result::{CanaryResult, CanaryVerdict};
use crate::canary::{self, DriftArm, Evaluation, Options};
use crate::cli::{CanaryArgs, DriftArmArg};
use crate::workspace::{DirTree, Repo};

pub fn canary(repo_dir: &Path, config: &str, args: &CanaryArgs) -> anyhow::Result<u8> {
    let root = Repo::open(repo_dir).map_or_else(|_| repo_dir.to_owned(), |r| r.root().to_owned());
    let settings = crate::suite::canary::load_canary(&DirTree::new(&root), config)?;
    let options = Options {
        window: args.window,
        drift: args.drift.then_some(match args.arm {
            DriftArmArg::Baseline => DriftArm::Baseline,
            DriftArmArg::Canary => DriftArm::Canary,
        }),
    };
    let started = Instant::now();
    let mut look = 1u32;
    loop {
        let evaluation = canary::evaluate(&root, &settings, &options)?;
        let written = write_outputs(&evaluation, &args.out)?;
        print_summary(&evaluation.result, &written, look);
        let verdict = evaluation.result.verdict;
        let Some(interval) = args.watch else {
            return Ok(verdict.exit_code());
        };
        if verdict != CanaryVerdict::Hold {
            return Ok(verdict.exit_code());
        }
        if let Some(max) = args.max_duration
            && started.elapsed() + interval > max
        {
            eprintln!(
                "promptgate canary: still hold after {look} looks; stopping at --max-duration {}",
                canary::time::span(max.as_secs_f64())
            );
            return Ok(verdict.exit_code());
        }
        eprintln!(
            "promptgate canary: hold at look {look}; looking again in {}",
            canary::time::span(interval.as_secs_f64())
        );
        std::thread::sleep(interval);
        look += 1;
    }
}

/// Writes `canary.json`, `report.md` and `charts/*.svg|png` into `dir`.
pub fn write_outputs(evaluation: &Evaluation, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    crate::output::create_dir(dir)?;
    let mut written = Vec::new();
    let json = serde_json::to_string_pretty(&evaluation.result)? + "\n";
    let path = dir.join("canary.json");
    crate::output::write_file(&path, crate::secrets::redact(&json).as_bytes())?;
    written.push(path);
    let charts = match &evaluation.figures {
        Some(f) => crate::report::charts::render_canary_charts(f).context("rendering the canary charts")?,
        None => Vec::new(),
    };
    let charts_dir = dir.join("charts");
    crate::output::replace_charts(
        &charts_dir,
        crate::output::CANARY_CHARTS,
        charts.iter().map(|c| c.name.as_str()),
    )?;
    if !charts.is_empty() {
        crate::output::create_dir(&charts_dir)?;
        for chart in &charts {
            crate::output::write_file(&charts_dir.join(format!("{}.svg", chart.name)), chart.svg.as_bytes())?;
            crate::output::write_file(&charts_dir.join(format!("{}.png", chart.name)), &chart.png)?;
        }
    }
    let names: Vec<(String, String)> = charts.iter().map(|c| (c.name.clone(), c.title.clone())).collect();
    let report = canary::render::report_markdown(&evaluation.result, &names);
    let path = dir.join("report.md");
    crate::output::write_file(&path, crate::secrets::redact(&report).as_bytes())?;
    written.push(path);
    Ok(written)
}

fn print_summary(r: &CanaryResult, written: &[PathBuf], look: u32) {
    let mut text = format!("promptgate canary: {} — {}\n", r.verdict.as_str(), r.reason);
    for m in &r.metrics {
        let (baseline, canary) = crate::format::values(&m.name, m.baseline, m.canary);
        text.push_str(&format!(
            "  {:<20} {:<24} {baseline} → {canary}{}\n",
            m.name,
            m.verdict.words(r.unit()),
            if m.blocking { "  (blocking)" } else { "" }
        ));
    }
    if let Some(n) = &r.needed {
        text.push_str(&format!(
            "  needed: about {} {} per arm ({} more){}\n",
            n.requests_per_arm,
            r.unit(),
            n.more_requests_per_arm,
            n.hours
                .map(|h| format!(", about {h:.1} h at the current traffic"))
                .unwrap_or_default()
        ));
    }
    for note in &r.notes {
        text.push_str(&format!("  note: {note}\n"));
    }
    if look > 1 {
        text.push_str(&format!("  look {look}\n"));
    }
    for path in written {
        text.push_str(&format!("  wrote {}\n", path.display()));
    }
    let text = crate::output::inert(&crate::secrets::redact(&text));
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
