//! `promptgate demo`: the whole gate, offline, on a throwaway repository built from the
//! fixtures compiled into the binary.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::run::{GateOptions, print_outcome, run_gate};
use crate::error::exit;
use crate::workspace::{Repo, ScratchDir};

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
    let scratch = ScratchDir::create("demo")?;
    let root = scratch.path();
    let repo = Repo::init(root, "main").context("creating the demo repository (the demo needs git on PATH)")?;
    write_tree(root, "base/")?;
    if live {
        go_live(root)?;
    }
    repo.commit_all("base: the prompts in production")?;
    repo.switch_new("pr")?;
    clear_tree(root)?;
    write_tree(root, "pr/")?;
    if live {
        go_live(root)?;
    }
    repo.commit_all(
        "pr: drop the refunds paragraph; shorten the FAQ prompt; let the help center answer from what it knows",
    )?;

    eprintln!("promptgate demo: a throwaway repo with a base commit (main) and a PR commit (pr)");
    if live {
        eprintln!(
            "promptgate demo: --live: the model and the judge are OpenAI's gpt-4o-mini (about 420 calls, a few cents)"
        );
    } else {
        // Offline whatever the environment holds: the README's demo command never spends.
        let key_set = std::env::var_os("OPENAI_API_KEY").is_some_and(|k| !k.is_empty());
        eprintln!(
            "promptgate demo: the model is the deterministic offline mock (it reads no API key and uses no network{})",
            if key_set {
                "; OPENAI_API_KEY is set: `demo --live` uses it"
            } else {
                ""
            }
        );
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
        batch: None,
        batch_records: None,
    };
    let run = run_gate(root, &options)?;
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
    .replace("provider: offline,", "provider: openai,")
    // The judge too: a live demo's judgements are a real model's, not the mock's word overlap.
    .replace("judge: offline,", "judge: openai,")
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
            let judge = suite.defaults.judge.as_ref().expect("the demo suite names a judge");
            assert_eq!(judge.provider, "openai");
        }
    }
}
