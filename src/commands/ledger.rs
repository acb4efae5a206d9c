//! `promptgate ledger record` and `promptgate ledger show`: read the inputs, build or read the
//! entries (`ledger`), and store or render them. Where the ledger lives is decided here: a
//! local file with `--ledger FILE`, else the repository's ledger branch: through the GitHub API
//! when the Actions environment has a token, else in the local repository (`git`, without a
//! checkout).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::{LedgerCommand, LedgerRecordArgs, LedgerShowArgs, LedgerStore};
use crate::error::{Diagnostic, Error, did_you_mean, exit};
use crate::format::short_sha;
use crate::github::client::Client;
use crate::github::event::{ActionsEnv, Trigger};
use crate::ledger::{self, Entry, GateMargin};
use crate::output::inert;
use crate::suite::Margin;
use crate::workspace::{DirTree, Repo};

pub fn ledger(repo_dir: &Path, config: &str, command: LedgerCommand) -> anyhow::Result<u8> {
    match command {
        LedgerCommand::Record(args) => record(repo_dir, &args),
        LedgerCommand::Show(args) => show(repo_dir, config, &args),
    }
}

/// Where the ledger is read from and written to.
enum Store {
    File(PathBuf),
    Branch {
        client: Client,
        runtime: tokio::runtime::Runtime,
        branch: String,
    },
    /// The branch of the local repository (no token: outside Actions).
    Local {
        repo: Repo,
        branch: String,
    },
}

impl Store {
    /// `writing`: `record`, whose local commit on a runner would go with the job.
    fn open(store: &LedgerStore, env: &ActionsEnv, repo_dir: &Path, writing: bool) -> Result<Store, Error> {
        if let Some(path) = &store.ledger {
            return Ok(Store::File(path.clone()));
        }
        // The repository's branch through the API when both a token and the repository are
        // known; else the local repository's branch.
        let api = env.token.clone().zip(env.require_repository().ok());
        let Some((token, repository)) = api else {
            let on_runner = std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true");
            if on_runner && writing {
                // A runner's checkout is thrown away with the job: a local commit would be lost.
                return Err(Diagnostic::new(
                    "no ledger to write in GitHub Actions: GITHUB_TOKEN or the repository is not set",
                )
                .hint("pass `env: GITHUB_TOKEN: ${{ github.token }}` (the ledger lives on the `promptgate-ledger` branch, the job needs `contents: write`), or --ledger FILE")
                .into());
            }
            if on_runner {
                // Reading the runner's checkout: it may lack the branch the API would find.
                eprintln!(
                    "warning: GITHUB_TOKEN or the repository is not set: reading the local `{}` branch of this checkout, which may lack the repository's; pass `env: GITHUB_TOKEN: ${{{{ github.token }}}}`, or --ledger FILE",
                    store.branch
                );
            }
            let repo = Repo::open(repo_dir).map_err(|_| {
                Error::from(
                    Diagnostic::new("no ledger to use: not in a git repository, and neither --ledger FILE nor GITHUB_TOKEN is set")
                        .hint("run it in the prompt repository (the ledger lives on its `promptgate-ledger` branch), pass --ledger FILE, or in GitHub Actions `env: GITHUB_TOKEN: ${{ github.token }}`"),
                )
            })?;
            return Ok(Store::Local {
                repo,
                branch: store.branch.clone(),
            });
        };
        crate::secrets::register("GITHUB_TOKEN", &token);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::run(format!("cannot start the GitHub client: {e}")))?;
        let client = {
            let _entered = runtime.enter();
            Client::live(&env.api_url, token, &repository)?
        };
        Ok(Store::Branch {
            client,
            runtime,
            branch: store.branch.clone(),
        })
    }

    /// Where, in words.
    fn describe(&self) -> String {
        match self {
            Store::File(path) => path.display().to_string(),
            Store::Branch { client, branch, .. } => {
                format!("{} on `{branch}` of {}", ledger::FILE, client.repository)
            }
            Store::Local { repo, branch } => {
                format!("{} on `{branch}` of {}", ledger::FILE, repo.root().display())
            }
        }
    }
}

/// An exclusive lock on `<ledger>.lock` beside the ledger file, held until dropped (the
/// operating system releases it however the process ends).
fn lock_beside(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    if let Some(folder) = lock_path.parent().filter(|f| !f.as_os_str().is_empty()) {
        crate::output::create_dir(folder)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| Error::run(format!("cannot lock the ledger ({}): {e}", lock_path.display())))?;
    file.lock()
        .map_err(|e| Error::run(format!("cannot lock the ledger ({}): {e}", lock_path.display())))?;
    Ok(file)
}

fn record(repo_dir: &Path, args: &LedgerRecordArgs) -> anyhow::Result<u8> {
    let env = ActionsEnv::from_env();
    let results_path = match (&args.results, &args.canary) {
        (Some(path), _) => Some(path.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from("promptgate-out").join("results.json")),
    };
    // Inputs first: a bad file is exit 2 before anything is sent.
    let results = results_path.as_deref().map(crate::report::read_results).transpose()?;
    let canary = args.canary.as_deref().map(ledger::read_canary).transpose()?;
    let store = Store::open(&args.store, &env, repo_dir, true)?;
    let time = ledger::now_rfc3339();

    let mut entries: Vec<Entry> = Vec::new();
    if let Some(results) = &results {
        let pr = match args.pr {
            Some(pr) => Some(pr),
            None => find_pr(&store, &env, &results.head.sha),
        };
        let waived;
        let results = match (results.waiver.is_none(), pr) {
            (true, Some(number)) => match find_waiver(&store, number) {
                Some(waiver) => {
                    waived = crate::results::Results {
                        waiver: Some(waiver),
                        ..results.clone()
                    };
                    &waived
                }
                None => results,
            },
            _ => results,
        };
        entries.extend(ledger::gate_entries(results, pr, &time));
        for removed in results
            .experiments
            .iter()
            .filter(|e| e.status == crate::results::ExperimentStatus::Removed)
        {
            eprintln!(
                "promptgate: `{}` was removed by this change: no version to record",
                inert(&removed.name)
            );
        }
        for e in entries.iter().filter(|e| e.version.is_none()) {
            eprintln!(
                "promptgate: `{}` has no `version:` in its variant: its entry cannot be joined with a canary",
                inert(&e.experiment)
            );
        }
    }
    if let Some(canary) = &canary {
        let commit = args.commit.clone().or_else(|| env.sha.clone());
        entries.push(ledger::canary_entry(canary, commit, args.pr, &time));
    }
    if entries.is_empty() {
        eprintln!("promptgate: nothing to record: the results touch no experiment");
        return Ok(exit::PASS);
    }
    let lines = ledger::to_lines(&entries);
    let names: Vec<String> = entries
        .iter()
        .map(|e| match &e.version {
            Some(v) => format!("{} {v}", e.experiment),
            None => e.experiment.clone(),
        })
        .collect();
    let where_ = store.describe();
    match &store {
        Store::File(path) => {
            // Read, append and replace under a lock on a file beside the ledger: two records
            // made at once both land (the later reads what the earlier wrote).
            let _held = lock_beside(path)?;
            let existing = ledger::read_ledger_file(path, true)?;
            let text = ledger::append_checked(&existing, &lines, &path.display().to_string())?;
            if text.trim_end() == existing.trim_end() {
                eprintln!("promptgate: {where_} already holds these entries (but for their time): nothing added");
                return Ok(exit::PASS);
            }
            crate::output::write_file(path, text.as_bytes())?;
        }
        Store::Branch {
            client,
            runtime,
            branch,
        } => {
            let message = format!("promptgate ledger: {}", names.join(", "));
            let appended = runtime.block_on(crate::github::ledger::append(
                client,
                branch,
                ledger::FILE,
                &lines,
                &message,
                |existing: &str, lines: &str| {
                    ledger::append_checked(existing, lines, &format!("{} on `{branch}`", ledger::FILE))
                },
            ))?;
            if appended.unchanged {
                eprintln!("promptgate: {where_} already holds these entries (but for their time): nothing added");
                return Ok(exit::PASS);
            }
            let how = if appended.created {
                "created the branch"
            } else {
                "appended"
            };
            eprintln!(
                "promptgate: {how}: commit {}",
                crate::format::short_sha(&appended.commit)
            );
        }
        Store::Local { repo, branch } => {
            let message = format!("promptgate ledger: {}", names.join(", "));
            let reading = |e: anyhow::Error| Error::run(format!("reading the ledger on `{branch}`: {e:#}"));
            // The commit builds on the tip the text was read from, and moves the branch only
            // if it is still there: a line another writer added in between is never lost.
            let tip = repo.branch_tip(branch).map_err(reading)?;
            if let Some(origin) = &tip.diverged_from {
                return Err(Error::run_with_hint(
                    format!(
                        "the local `{branch}` and `origin/{branch}` ({}) each have commits the other lacks: a commit here could not be pushed, so nothing was written",
                        short_sha(origin)
                    ),
                    format!("bring them together first (`git fetch origin {branch}`, then merge `origin/{branch}` into `{branch}` keeping every line of {}), and record again", ledger::FILE),
                )
                .into());
            }
            let existing = repo.read_at(&tip, ledger::FILE).map_err(reading)?.unwrap_or_default();
            let text = ledger::append_checked(&existing, &lines, &format!("{} on `{branch}`", ledger::FILE))?;
            if text.trim_end() == existing.trim_end() {
                eprintln!("promptgate: {where_} already holds these entries (but for their time): nothing added");
                return Ok(exit::PASS);
            }
            let committed = repo
                .commit_on_branch(branch, &tip, ledger::FILE, &text, &message)
                .map_err(|e| Error::run(format!("writing the ledger on `{branch}`: {e:#}")))?;
            let how = if committed.created {
                "created the branch"
            } else {
                "appended"
            };
            eprintln!(
                "promptgate: {how}: commit {} (local; `git push origin {branch}` shares it)",
                crate::format::short_sha(&committed.commit)
            );
        }
    }
    eprintln!(
        "promptgate: recorded {} entr{} ({}) in {where_}",
        entries.len(),
        if entries.len() == 1 { "y" } else { "ies" },
        inert(&names.join(", "))
    );
    // stdout carries the data: the lines appended.
    let mut out = std::io::stdout().lock();
    out.write_all(inert(&crate::secrets::redact(&lines)).as_bytes())?;
    Ok(exit::PASS)
}

/// The pull request of a gate entry: the event's, else the one GitHub associates with the
/// commit. Not finding one is a warning: the entry is recorded with `pr: null`.
fn find_pr(store: &Store, env: &ActionsEnv, sha: &str) -> Option<u64> {
    let Store::Branch { client, runtime, .. } = store else {
        return None;
    };
    if let Ok(Trigger::PullRequest { pr, .. }) = env.trigger() {
        return Some(pr.number);
    }
    match runtime.block_on(crate::github::ledger::pull_request_of_commit(client, sha)) {
        Ok(found) => {
            if found.is_none() {
                eprintln!(
                    "promptgate: no pull request is associated with {}: recorded without one (pass --pr)",
                    crate::format::short_sha(sha)
                );
            }
            found
        }
        Err(e) => {
            eprintln!(
                "promptgate: warning: the pull request of {} was not found, recorded without one (pass --pr): {}",
                crate::format::short_sha(sha),
                inert(&crate::secrets::redact(&e.summary()))
            );
            None
        }
    }
}

/// The merged pull request's waiver, from promptgate's sticky comment on it. Not reading it is
/// a warning: the entries are recorded with the results' own verdicts.
fn find_waiver(store: &Store, number: u64) -> Option<crate::results::Waiver> {
    let Store::Branch { client, runtime, .. } = store else {
        return None;
    };
    let login = std::env::var("PROMPTGATE_BOT_LOGIN").ok().filter(|l| !l.is_empty());
    match runtime.block_on(crate::github::ledger::waiver_of_pull_request(
        client,
        number,
        login.as_deref(),
    )) {
        Ok(waiver) => waiver,
        Err(e) => {
            eprintln!(
                "promptgate: warning: the waivers of #{number} were not read, recorded without them: {}",
                inert(&crate::secrets::redact(&e.summary()))
            );
            None
        }
    }
}

fn show(repo_dir: &Path, config: &str, args: &LedgerShowArgs) -> anyhow::Result<u8> {
    let window = ledger::parse_window(&args.window)?;
    let env = ActionsEnv::from_env();
    let store = Store::open(&args.store, &env, repo_dir, false)?;
    // No ledger yet is an empty history (exit 0), said on stderr: a new repository's ledger
    // is created by the first `ledger record`.
    let no_ledger_yet = |repository: &str, branch: &str| {
        eprintln!(
            "promptgate: no ledger yet: {repository} has no `{branch}` branch with a {}; `promptgate ledger record` creates it on the first merge",
            ledger::FILE
        );
        String::new()
    };
    let (text, label) = match &store {
        // A file not written yet is no ledger yet, as a branch not made yet is; in a folder
        // that is not there either, it is a mistyped path (the review), and an error.
        Store::File(path)
            if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                && path.parent().is_none_or(|p| p.as_os_str().is_empty() || p.is_dir()) =>
        {
            eprintln!(
                "promptgate: no ledger yet: {} does not exist; `promptgate ledger record --ledger {}` creates it",
                path.display(),
                path.display()
            );
            (String::new(), path.display().to_string())
        }
        Store::File(path) => (ledger::read_ledger_file(path, false)?, path.display().to_string()),
        Store::Branch {
            client,
            runtime,
            branch,
        } => {
            let text = runtime
                .block_on(crate::github::ledger::read(client, branch, ledger::FILE))?
                .unwrap_or_else(|| no_ledger_yet(&client.repository, branch));
            (text, format!("{branch}:{}", ledger::FILE))
        }
        Store::Local { repo, branch } => {
            let text = repo
                .read_on_branch(branch, ledger::FILE)
                .map_err(|e| Error::run(format!("reading the ledger on `{branch}`: {e:#}")))?
                .unwrap_or_else(|| no_ledger_yet(&repo.root().display().to_string(), branch));
            (text, format!("{branch}:{}", ledger::FILE))
        }
    };
    let entries = ledger::parse_ledger(&text, &label)?;
    if let Some(name) = &args.experiment
        && !entries.is_empty()
        && !entries.iter().any(|e| &e.experiment == name)
    {
        let mut known: Vec<&str> = entries.iter().map(|e| e.experiment.as_str()).collect();
        known.sort_unstable();
        known.dedup();
        let mut d = Diagnostic::new(format!("the ledger has no experiment `{name}`"));
        d = match did_you_mean(name, known.iter().copied()) {
            Some(close) => d.hint(format!("did you mean `{close}`?")),
            None => d.hint(format!("it records: {}", known.join(", "))),
        };
        return Err(Error::from(d).into());
    }
    let history = ledger::history(&entries, args.experiment.as_deref());
    let (gates, drift_unchecked) = match gate_margins(repo_dir, config) {
        Ok(gates) => (gates, None),
        Err(why) => (BTreeMap::new(), Some(why)),
    };
    let flags: Vec<ledger::DriftFlag> = history
        .values()
        .flat_map(|rows| ledger::drift(rows, &gates, window))
        .collect();
    let no_charts = BTreeMap::new();
    let mut names = BTreeMap::new();
    let mut view = ledger::Show {
        history: &history,
        gates: &gates,
        flags: &flags,
        window,
        drift_unchecked: drift_unchecked.as_deref(),
        charts: &no_charts,
    };
    if let Some(out) = &args.out {
        crate::output::create_dir(out)?;
        let charts = ledger::trend_charts(&view, "interval (1 − α of its gate)")?;
        crate::output::replace_charts(
            &out.join("charts"),
            crate::output::LEDGER_CHARTS,
            charts.iter().map(|(_, c)| c.name.as_str()),
        )?;
        if !charts.is_empty() {
            crate::output::create_dir(&out.join("charts"))?;
        }
        for (key, chart) in charts {
            for (ext, bytes) in [
                ("svg", crate::secrets::redact(&chart.svg).into_bytes()),
                ("png", chart.png),
            ] {
                crate::output::write_file(&out.join("charts").join(format!("{}.{ext}", chart.name)), &bytes)?;
            }
            names.insert(key, chart.name);
        }
        view.charts = &names;
        let markdown = crate::secrets::redact(&ledger::render_markdown(&view));
        crate::output::write_file(&out.join("ledger.md"), markdown.as_bytes())?;
        eprintln!("promptgate: wrote {}", out.join("ledger.md").display());
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(inert(&crate::secrets::redact(&ledger::render_terminal(&view))).as_bytes())?;
    Ok(exit::PASS)
}

/// The gates' margins of the suite in the working tree, by metric; why not, when it does not
/// load (drift is then not checked, and `show` says so).
fn gate_margins(repo_dir: &Path, config: &str) -> Result<BTreeMap<String, GateMargin>, String> {
    let root = Repo::open(repo_dir)
        .map(|r| r.root().to_owned())
        .unwrap_or_else(|_| repo_dir.to_owned());
    let suite = crate::suite::load_gates(&DirTree::new(&root), config).map_err(|e| {
        format!(
            "the gates' margins come from {config}, which did not load ({})",
            e.summary()
        )
    })?;
    Ok(suite
        .gates
        .iter()
        .map(|g| {
            let (margin, relative) = match g.margin {
                Margin::Absolute(m) => (m, false),
                Margin::Relative(r) => (r, true),
            };
            (
                g.metric.clone(),
                GateMargin {
                    direction: g.direction,
                    margin,
                    relative,
                },
            )
        })
        .collect())
}
