//! `detect`, `validate` and `report`: the commands that look without running models.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::cli::DetectArgs;
use crate::detect;
use crate::error::{Error, exit};
use crate::report;
use crate::suite;
use crate::workspace::{DirTree, FileSource, GitTree, Repo};

pub fn detect(repo_dir: &Path, config: &str, args: &DetectArgs) -> anyhow::Result<u8> {
    let repo = Repo::open(repo_dir)?;
    let base_sha = repo.resolve(&args.base)?;
    let head_sha = repo.resolve(&args.head)?;
    let merge_base = repo.merge_base(&base_sha, &head_sha)?;
    let changes = repo.changes(&merge_base, &head_sha)?;
    let head = suite::load(Arc::new(GitTree::new(repo.root(), &head_sha)), config)?;
    let base_tree: Arc<dyn FileSource> = Arc::new(GitTree::new(repo.root(), &merge_base));
    let base = match base_tree.read(config) {
        Ok(Some(_)) => suite::load(base_tree, config).ok(),
        _ => None,
    };
    let detection = detect::detect(base.as_ref(), &head, &changes, args.all);
    let mut out = std::io::stdout().lock();
    if args.json {
        let json = serde_json::json!({
            "base": {"ref": args.base, "sha": base_sha},
            "head": {"ref": args.head, "sha": head_sha},
            "merge_base": merge_base,
            "changes": changes,
            "affected": detection.affected,
            "removed": detection.removed,
            "unaffected": detection.unaffected,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(exit::PASS);
    }
    if detection.affected.is_empty() && detection.removed.is_empty() {
        writeln!(out, "no experiment is affected ({} changed path(s))", detection.changed_paths.len())?;
    }
    for a in detection.affected.iter().chain(&detection.removed) {
        let status = serde_json::to_value(a.status)?.as_str().unwrap_or_default().to_owned();
        if a.affected_by.is_empty() {
            writeln!(out, "{}\t{status}", a.name)?;
        } else {
            writeln!(out, "{}\t{status}\t{}", a.name, a.affected_by.join(", "))?;
        }
    }
    for name in &detection.unaffected {
        writeln!(out, "{name}\tunaffected")?;
    }
    Ok(exit::PASS)
}

pub fn validate(repo_dir: &Path, config: &str, at_ref: Option<&str>) -> anyhow::Result<u8> {
    let source: Arc<dyn FileSource> = match at_ref {
        Some(r) => {
            let repo = Repo::open(repo_dir)?;
            let sha = repo.resolve(r)?;
            Arc::new(GitTree::new(repo.root(), &sha))
        }
        None => {
            // The working tree: the repository root when inside git, else the folder itself.
            let root = Repo::open(repo_dir).map(|r| r.root().to_owned()).unwrap_or_else(|_| repo_dir.to_owned());
            Arc::new(DirTree::new(&root))
        }
    };
    match suite::lint(source, config) {
        Ok(s) => {
            let cases: usize = s.experiments.iter().map(|e| e.cases.len()).sum();
            println!("ok: {} experiment(s), {cases} case(s), {} gate(s)", s.experiments.len(), s.gates.len());
            Ok(exit::PASS)
        }
        Err(errors) => {
            let mut code = exit::USAGE;
            for e in &errors {
                eprintln!("{e}\n");
                if let Error::Run { .. } = e {
                    code = exit::RUN;
                }
            }
            eprintln!("{} error(s)", errors.len());
            Ok(code)
        }
    }
}

pub fn report(results_path: &Path, out: &Path) -> anyhow::Result<u8> {
    let results = report::read_results(results_path)?;
    for path in report::write_outputs(&results, out)? {
        println!("wrote {}", path.display());
    }
    Ok(exit::PASS)
}
