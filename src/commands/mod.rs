//! One function per subcommand. Each returns the exit code, or an error `main` maps to one.

mod budget;
mod canary;
mod ci;
mod demo;
mod handoff;
mod init;
mod inspect;
mod judge_check;
mod ledger;
mod looks;
mod merge;
mod run;

use std::path::Path;

use crate::cli::{Cli, Command};
use crate::error::{Diagnostic, Error};

pub use crate::plan::PlanFacts;
pub use run::{GateOptions, GateRun, run_gate, run_gate_with};

pub fn run(mut cli: Cli) -> anyhow::Result<u8> {
    // `canary` reads production logs, not the repository's history: a config outside the
    // repository is read where it is, its relative paths from its own folder (or the root of
    // the repository that folder is in).
    if let Command::Canary(args) = &cli.command
        && let Some(folder) = Path::new(&cli.config)
            .parent()
            .filter(|_| Path::new(&cli.config).is_absolute())
        && config_in_repo(&cli.repo, &cli.config).is_err()
    {
        let config = config_in_repo(folder, &cli.config)?;
        return canary::canary(folder, &config, args);
    }
    // `report`, `merge` and `demo` read no suite: the global flag is theirs to ignore.
    if !matches!(cli.command, Command::Demo(_) | Command::Report(_) | Command::Merge(_)) {
        cli.config = config_in_repo(&cli.repo, &cli.config)?;
    }
    match cli.command {
        Command::Demo(args) => demo::demo(&args.out, args.live),
        Command::Run(args) => {
            let repo = crate::workspace::Repo::open(&cli.repo)?;
            let root = repo.root().to_owned();
            let options = GateOptions {
                aa: args.aa,
                batch: args.batch.then_some(args.batch_timeout),
                ..GateOptions::from_flags(&root, args.base, args.head, &cli.config, &args.out, &args.gate)
            };
            crate::output::create_dir(&args.out)?;
            let run = run_gate_with(&repo, &options, None)?;
            run::print_outcome(&run);
            run.exit_code()
        }
        Command::Ci(args) => ci::ci(&cli.repo, &cli.config, &args),
        Command::Detect(args) => inspect::detect(&cli.repo, &cli.config, &args),
        Command::Validate(args) => inspect::validate(&cli.repo, &cli.config, args.at_ref.as_deref()),
        Command::Report(args) => inspect::report(&args.results, &args.out),
        Command::Merge(args) => merge::merge(&args),
        Command::Init(args) => init::init(&cli.repo, &cli.config, args.force),
        Command::Canary(args) => canary::canary(&cli.repo, &cli.config, &args),
        Command::JudgeCheck(args) => judge_check::judge_check(&cli.repo, &cli.config, &args),
        Command::Ledger(command) => ledger::ledger(&cli.repo, &cli.config, command),
    }
}

/// `--config` as every command reads it: relative to the repository's root (the folder itself
/// outside git). An absolute path is made relative to that root, or refused (exit 2) when it
/// lies outside it: the suite's own paths are read from inside the repository.
fn config_in_repo(repo_dir: &Path, config: &str) -> Result<String, Error> {
    let path = Path::new(config);
    if !path.is_absolute() {
        // As a commit's tree names it: `./promptgate.yaml` and `suites/../promptgate.yaml` are
        // `promptgate.yaml` (read from a commit, the first was no file). One that climbs out
        // of the root names no file a commit holds.
        let mut parts: Vec<&str> = Vec::new();
        for part in config.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(Diagnostic::new(format!(
                            "--config {config} climbs out of the repository: a relative path is read from the repository's root"
                        ))
                        .hint("give the suite file's path from the repository's root (`promptgate.yaml`, `evals/promptgate.yaml`) or as an absolute path, or point -C at the repository it belongs to")
                        .into());
                    }
                }
                part => parts.push(part),
            }
        }
        return Ok(match parts.is_empty() {
            true => config.to_owned(),
            false => parts.join("/"),
        });
    }
    let root = crate::workspace::Repo::open(repo_dir).map_or_else(|_| repo_dir.to_owned(), |r| r.root().to_owned());
    // The file itself need not exist yet (`init` writes it): its folder must.
    let resolved = (|| {
        let root = std::fs::canonicalize(&root).ok()?;
        let folder = std::fs::canonicalize(path.parent()?).ok()?;
        let relative = folder.join(path.file_name()?).strip_prefix(&root).ok()?.to_owned();
        relative.to_str().map(str::to_owned)
    })();
    resolved.filter(|r| !r.is_empty()).ok_or_else(|| {
        Diagnostic::new(format!(
            "--config {config} is not a file inside the repository at {}",
            root.display()
        ))
        .hint("give the suite file's path inside the repository (relative to its root, or absolute), or point -C at the repository it belongs to")
        .into()
    })
}
