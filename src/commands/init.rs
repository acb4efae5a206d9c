//! `promptgate init`: a small working suite to start from.

use std::path::Path;

use crate::error::{Diagnostic, Error, exit};

const FILES: &[(&str, &str)] = &[
    (
        "promptgate.yaml",
        r#"version: 1
providers:
  offline: {type: mock}            # deterministic offline stand-in; no API key needed
defaults: {repeats: 1, alpha: 0.05, provider: offline}
budget: {approve_above_usd: 0.50, max_usd: 5.00}
experiments:
  - name: assistant
    variant: configs/assistant.yaml
    dataset: datasets/assistant.jsonl
gates:
  pass_rate:        {direction: higher, margin: 0.02, blocking: true}
  latency_p95_ms:   {direction: lower, margin: "15%", slo: 800}
  cost_per_request: {direction: lower, margin: "10%"}
"#,
    ),
    (
        "configs/assistant.yaml",
        r#"version: v0.1.0
model: gpt-4o-mini
prompt: ../prompts/assistant.md
temperature: 0
max_tokens: 256
"#,
    ),
    (
        "prompts/assistant.md",
        r#"You are the support assistant of Example Co.
Orders ship within 2 business days.
Refunds are available within 30 days of purchase.
"#,
    ),
    (
        "datasets/assistant.jsonl",
        r#"{"id": "shipping", "vars": {"input": "How fast do orders ship?"}, "assert": [{"type": "icontains", "value": "2 business days"}]}
{"id": "refunds", "vars": {"input": "Can I get a refund?"}, "assert": [{"type": "icontains", "value": "30 days"}]}
"#,
    ),
];

pub fn init(repo_dir: &Path, config: &str, force: bool) -> anyhow::Result<u8> {
    // At the repository's root, where `run` and `validate` look for the suite, from any
    // folder of it; outside git, in the folder itself.
    let root = crate::workspace::Repo::open(repo_dir).map_or_else(|_| repo_dir.to_owned(), |r| r.root().to_owned());
    let repo_dir = root.as_path();
    if config != crate::suite::DEFAULT_CONFIG {
        return Err(Error::from(
            Diagnostic::new("init writes promptgate.yaml at the repository root").hint("run it without --config"),
        )
        .into());
    }
    // Every file of the scaffold already there is named, not only the first.
    let existing: Vec<&str> = FILES
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| repo_dir.join(p).exists())
        .collect();
    if !force && !existing.is_empty() {
        return Err(Error::from(
            Diagnostic::new(format!("{} already exist(s)", existing.join(", ")))
                .hint("pass --force to overwrite the scaffold's files (each one overwritten is named)"),
        )
        .into());
    }
    for (path, text) in FILES {
        let full = repo_dir.join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, text)?;
        if existing.contains(path) {
            println!("overwrote {path} (it existed; --force)");
        } else {
            println!("wrote {path}");
        }
    }
    // The outputs of a run are written in the repository; they are not part of it. (The
    // response cache lives outside it, in the user's cache folder.)
    let ignore = repo_dir.join(".gitignore");
    let existing = std::fs::read_to_string(&ignore).unwrap_or_default();
    if !existing.lines().any(|l| l.trim() == "promptgate-out/") {
        let separator = if existing.is_empty() || existing.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        std::fs::write(&ignore, format!("{existing}{separator}promptgate-out/\n"))?;
        println!("added promptgate-out/ (the run's outputs) to .gitignore");
    }
    println!(
        "note: the scaffold's dataset has 2 cases: enough to see the tool work, too few to judge anything \
         (pass_rate needs {}, cost_per_request {}, latency_p95_ms {} cases); until then its metrics are reported, not gated",
        crate::metrics::Metric::of(crate::metrics::PASS_RATE).min_units(),
        crate::metrics::Metric::of(crate::metrics::COST).min_units(),
        crate::metrics::Metric::of(crate::metrics::LATENCY_P95).min_units(),
    );
    println!(
        "next: `promptgate validate`, then commit and gate a change with `promptgate run --base BRANCH` (the branch it merges into, e.g. main)"
    );
    Ok(exit::PASS)
}
