//! `promptgate demo`: the whole gate, offline, on a throwaway repository built from the
//! fixtures compiled into the binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::run::{GateOptions, print_outcome, run_gate};
use crate::error::exit;

include!(concat!(env!("OUT_DIR"), "/demo_files.rs"));

/// The environment variable `--live` reads the OpenAI key from.
const LIVE_KEY: &str = "OPENAI_API_KEY";

pub fn demo(out: &Path, live: bool) -> anyhow::Result<u8> {
    if live && std::env::var_os(LIVE_KEY).is_none_or(|k| k.is_empty()) {
        return Err(crate::error::Error::from(
            crate::error::Diagnostic::new(format!("--live needs an OpenAI key in {LIVE_KEY}"))
                .hint("export OPENAI_API_KEY=…, or run the demo without --live (offline)"),
        )
        .into());
    }
    let repo = TempRepo::create()?;
    write_tree(&repo.0, "base/")?;
    if live {
        go_live(&repo.0)?;
    }
    git(&repo.0, &["add", "-A"])?;
    git(&repo.0, &["commit", "-q", "-m", "base: the prompts in production"])?;
    git(&repo.0, &["checkout", "-q", "-b", "pr"])?;
    clear_tree(&repo.0)?;
    write_tree(&repo.0, "pr/")?;
    if live {
        go_live(&repo.0)?;
    }
    git(&repo.0, &["add", "-A"])?;
    git(
        &repo.0,
        &[
            "commit",
            "-q",
            "-m",
            "pr: drop the refunds paragraph; shorten the FAQ prompt",
        ],
    )?;

    eprintln!("promptgate demo: a throwaway repo with a base commit (main) and a PR commit (pr)");
    if live {
        eprintln!("promptgate demo: --live: the model is OpenAI's gpt-4o-mini (about 180 calls, a few cents)");
    } else {
        eprintln!("promptgate demo: the model is the deterministic offline mock (no API key, no network)");
    }
    let options = GateOptions {
        base: "main".to_owned(),
        head: "pr".to_owned(),
        config: crate::suite::DEFAULT_CONFIG.to_owned(),
        all: false,
        approve_cost: None,
        out: absolute(out)?,
        // The demo's repository is thrown away: nothing to cache or resume.
        cache_dir: None,
        journal: None,
        aa: false,
        shard: None,
        trust: None,
        ref_names: None,
    };
    let run = run_gate(&repo.0, &options)?;
    print_outcome(&run);
    if let Some(e) = run.run_error {
        return Err(e.into());
    }
    println!("the demo exits 0 whatever the verdict; `promptgate run` exits 1 on a regression");
    Ok(exit::PASS)
}

/// Points the demo suite at OpenAI: the same experiments and gates, a real model.
fn go_live(root: &Path) -> anyhow::Result<()> {
    let path = root.join(crate::suite::DEFAULT_CONFIG);
    let text = std::fs::read_to_string(&path)?;
    std::fs::write(&path, live_suite(&text))?;
    Ok(())
}

fn live_suite(text: &str) -> String {
    text.replace(
        "providers:\n  offline: {type: mock}\n",
        &format!("providers:\n  offline: {{type: mock}}\n  openai: {{type: openai, api_key_env: {LIVE_KEY}, concurrency: 8}}\n"),
    )
    .replace("provider: offline}", "provider: openai}")
}

/// A temporary folder removed on drop.
struct TempRepo(PathBuf);

impl TempRepo {
    fn create() -> anyhow::Result<TempRepo> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("promptgate-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let repo = TempRepo(dir);
        git(&repo.0, &["init", "-q", "-b", "main"])?;
        Ok(repo)
    }
}

impl Drop for TempRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write_tree(root: &Path, prefix: &str) -> anyhow::Result<()> {
    let mut any = false;
    for (path, text) in DEMO_FILES {
        if let Some(relative) = path.strip_prefix(prefix) {
            let full = root.join(relative);
            if let Some(parent) = full.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&full, text)?;
            any = true;
        }
    }
    if !any {
        bail!("the demo fixtures `{prefix}` are missing from this build");
    }
    Ok(())
}

fn clear_tree(root: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(root)? {
        let path = entry?.path();
        if path.file_name().is_some_and(|n| n == ".git") {
            continue;
        }
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Runs git with a fixed identity and no user configuration, so the demo works on any machine.
fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=promptgate demo",
            "-c",
            "user.email=demo@promptgate.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .context("running git (the demo needs git on PATH)")?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workspace::MemTree;

    #[test]
    fn the_live_suite_uses_openai_by_default_and_still_validates() {
        for tree in ["base/", "pr/"] {
            let files: Vec<(&str, String)> = DEMO_FILES
                .iter()
                .filter_map(|(p, t)| p.strip_prefix(tree).map(|p| (p, (*t).to_owned())))
                .map(|(p, t)| {
                    if p == "promptgate.yaml" {
                        (p, live_suite(&t))
                    } else {
                        (p, t)
                    }
                })
                .collect();
            let suite_text = &files.iter().find(|(p, _)| *p == "promptgate.yaml").unwrap().1;
            assert!(
                suite_text.contains("openai: {type: openai, api_key_env: OPENAI_API_KEY"),
                "{suite_text}"
            );
            let source = Arc::new(MemTree::new(files.iter().map(|(p, t)| (*p, t.as_str()))));
            let suite = crate::suite::load(source, "promptgate.yaml").unwrap();
            assert!(suite.experiments.iter().all(|e| e.provider == "openai"));
        }
    }
}
