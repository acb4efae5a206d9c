//! Command-line definitions (clap). Behaviour lives in `commands`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::results::Shard;

#[derive(Debug, Parser)]
#[command(
    name = "promptgate",
    version,
    about = "A statistical A/B gate for prompt and model-config changes"
)]
pub struct Cli {
    /// The prompt repository (any folder inside it).
    #[arg(long, short = 'C', global = true, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,

    /// The suite file: relative to the repository root, or an absolute path inside it.
    #[arg(long, global = true, default_value = crate::suite::DEFAULT_CONFIG, value_name = "PATH")]
    pub config: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline, end to end: build a throwaway repo with a base and a PR commit and gate it.
    Demo(DemoArgs),
    /// Run the gate between two git refs.
    Run(RunArgs),
    /// GitHub Actions entry: gate the pull request of the event, then publish the comment,
    /// check run and review.
    Ci(CiArgs),
    /// List the experiments a change affects, and why.
    Detect(DetectArgs),
    /// Check the suite: every error with file:line:column and a hint.
    Validate(ValidateArgs),
    /// Re-render report.md, summary.md and junit.xml from a results.json.
    Report(ReportArgs),
    /// Combine the results.json of shards run as a CI matrix (`run --shard K/N`) and gate them
    /// as one run.
    Merge(MergeArgs),
    /// Scaffold a suite in the current repository.
    Init(InitArgs),
    /// Promote, hold or roll back a canary from production logs, traces or Prometheus
    /// (exit 0 promote, 1 rollback, 4 hold, 2 bad input, 3 run error).
    Canary(CanaryArgs),
    /// Measure a judge: its agreement with labelled cases (accuracy, Cohen's kappa, intervals).
    JudgeCheck(JudgeCheckArgs),
    /// The running log of every change and whether it shipped: record a gate's or a canary's
    /// outcome, show the history (docs/ledger.md).
    #[command(subcommand)]
    Ledger(LedgerCommand),
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Append one entry per changed experiment of a results.json, and/or the decision of a
    /// canary.json, to the ledger.
    Record(LedgerRecordArgs),
    /// The history per experiment (version, commit, PR, verdict, metrics with intervals, canary
    /// decision), trend charts and drift flags.
    Show(LedgerShowArgs),
}

/// Where the ledger is: the `promptgate-ledger` branch through the GitHub API (in Actions,
/// with GITHUB_TOKEN and GITHUB_REPOSITORY), or a local file.
#[derive(Debug, Args)]
pub struct LedgerStore {
    /// A local ledger file (JSON lines) instead of the repository's ledger branch.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,

    /// The branch of the repository the ledger lives on (`ledger.jsonl` at its top).
    #[arg(long, default_value = crate::ledger::BRANCH, value_name = "NAME")]
    pub branch: String,
}

#[derive(Debug, Args)]
pub struct LedgerRecordArgs {
    /// A results.json (`run`, `ci` or `merge`). Default: promptgate-out/results.json, unless
    /// only --canary is given.
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,

    /// A canary.json (`promptgate canary`): its decision joins the entry of its experiment and
    /// version ("shipped", "rolled back" or "hold").
    #[arg(long, value_name = "FILE")]
    pub canary: Option<PathBuf>,

    /// The pull request that made the change. Default: the event's pull request, else (on a
    /// push) the one GitHub associates with the commit.
    #[arg(long, value_name = "NUMBER")]
    pub pr: Option<u64>,

    /// The commit a canary entry names. Default: GITHUB_SHA when set.
    #[arg(long, value_name = "SHA")]
    pub commit: Option<String>,

    #[command(flatten)]
    pub store: LedgerStore,
}

#[derive(Debug, Args)]
pub struct LedgerShowArgs {
    /// Only this experiment.
    #[arg(long, value_name = "NAME")]
    pub experiment: Option<String>,

    /// Write ledger.md and charts/*-trend.{svg,png} here.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Drift is judged across this window: a number of versions (`10`) or a span of time
    /// before the newest version (`30d`, `12h`).
    #[arg(long, default_value = "10", value_name = "N|SPAN")]
    pub window: String,

    #[command(flatten)]
    pub store: LedgerStore,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// Only the last DURATION of data (`24h`, `7d`), ending at the latest record (for
    /// Prometheus: now; default 1h there).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub window: Option<Duration>,

    /// Look again every INTERVAL (`15m`) until the verdict is no longer hold; every look is
    /// anytime-valid.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_duration)]
    pub watch: Option<Duration>,

    /// With --watch: stop after this long, still hold (exit 4).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "watch")]
    pub max_duration: Option<Duration>,

    /// Drift: the last --window of one arm against the window before it.
    #[arg(long, requires = "window")]
    pub drift: bool,

    /// With --drift: which arm's logs.
    #[arg(long, value_enum, default_value = "canary", requires = "drift")]
    pub arm: DriftArmArg,

    /// Where to write canary.json, report.md and charts/.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftArmArg {
    Baseline,
    Canary,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::suite::canary::parse_duration(text)
        .map_err(|why| format!("{why}\nhint: write a duration such as `90s`, `15m`, `24h` or `7d`"))
}

#[derive(Debug, Args)]
pub struct JudgeCheckArgs {
    /// The provider to check (a configured one); else the suite's `defaults.judge`.
    #[arg(long, value_name = "PROVIDER")]
    pub judge: Option<String>,

    /// A JSONL file of labelled cases (input, output, optional context or rubric, label
    /// pass/fail or 1–5); else the small set shipped with promptgate.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,

    /// Print the agreement as JSON.
    #[arg(long)]
    pub json: bool,

    /// Append the result to .promptgate/judge-checks.jsonl (commit it): a gate relying on a
    /// judge with no record there says so in its comment.
    #[arg(long)]
    pub record: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,

    /// Call OpenAI (gpt-4o-mini, key from OPENAI_API_KEY) instead of the offline mock.
    #[arg(long)]
    pub live: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The PR's base (a branch, tag or SHA). The baseline is its merge base with --head.
    #[arg(long, value_name = "REF")]
    pub base: String,

    /// The PR's head; `WORKTREE` gates the working tree itself (uncommitted and untracked,
    /// non-ignored files included) as the candidate.
    #[arg(long, default_value = "HEAD", value_name = "REF")]
    pub head: String,

    /// Where to write the outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,

    #[command(flatten)]
    pub gate: GateFlags,

    /// A/A check: run the suite at --base against itself to measure its noise, the gate's
    /// false-alarm rate on it, and the cases and repeats its margins need.
    #[arg(long)]
    pub aa: bool,

    /// Send the calls of `openai` and `anthropic` providers through their batch APIs: half
    /// the price, answered within hours (nightly and release evaluations, not pull-request
    /// checks). Latency is not measured for them. A rerun resumes polling the same batches.
    #[arg(long)]
    pub batch: bool,

    /// With --batch: the longest to wait for the batches; then exit 3 naming them (a rerun
    /// resumes polling).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h", requires = "batch")]
    pub batch_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// Where to write the outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,

    /// Gate from this commit instead of the pull request's base.
    #[arg(long, value_name = "REF")]
    pub base: Option<String>,

    /// Gate this commit instead of the pull request's head.
    #[arg(long, value_name = "REF")]
    pub head: Option<String>,

    /// When to post the sticky comment (an existing one is always kept up to date).
    #[arg(long, value_enum, default_value = "affected", value_name = "WHEN")]
    pub comment: CommentWhen,

    /// Do not create the `promptgate` check run.
    #[arg(long)]
    pub no_check: bool,

    /// Request changes on a regression; dismiss that review once the gate passes.
    #[arg(long)]
    pub review: bool,

    /// Send nothing to GitHub: write the requests that would have been sent to FILE (JSON).
    #[arg(long, value_name = "FILE")]
    pub dry_run: Option<PathBuf>,

    /// Publish the chart PNGs as a commit on this branch of the repository, so the comment
    /// shows them inline (needs `contents: write`).
    #[arg(long, default_value = crate::github::assets::DEFAULT_BRANCH, value_name = "NAME")]
    pub asset_branch: String,

    /// Do not publish the chart PNGs: the comment shows the charts as text only.
    #[arg(long)]
    pub no_assets: bool,

    /// The login our comments and reviews are posted as, when the token cannot say (a GitHub
    /// App's installation token posts as `<app-slug>[bot]` but may not read `GET /user`).
    /// Only comments by this login are taken for ours. Default: the token's own login, or
    /// `github-actions[bot]` for the Actions token.
    #[arg(long, env = "PROMPTGATE_BOT_LOGIN", value_name = "LOGIN")]
    pub bot_login: Option<String>,

    /// Evaluate only, publishing nothing: for the untrusted half of the fork-safe pair. Writes
    /// `pr.json` next to the results for the trusted half.
    #[arg(long, conflicts_with_all = ["publish_only", "dry_run"])]
    pub no_publish: bool,

    /// Publish the results an untrusted job left in DIR (`results.json`, `pr.json`) without
    /// evaluating: for the trusted `workflow_run` half of the fork-safe pair.
    #[arg(long, value_name = "DIR")]
    pub publish_only: Option<PathBuf>,

    /// The Action's first step, with the token and before any of the pull request's code runs:
    /// decide what the event asks for, check approvals, announce the run in the comment (or,
    /// for a waiver, re-publish and finish), and write what the evaluating step needs to FILE
    /// (`--prepared`). Writes `route` (evaluate, done or skip) to `$GITHUB_OUTPUT`.
    #[arg(long, requires = "prepared", conflicts_with_all = ["publish_only", "no_publish", "republish"])]
    pub prepare: bool,

    /// With --prepare, where to write the prepared pull request and approvals; with
    /// --no-publish, where to read them (instead of asking the API, which that step cannot).
    #[arg(long, value_name = "FILE")]
    pub prepared: Option<PathBuf>,

    /// Only re-publish the last results with the waivers now in force (the accept label, a
    /// `/promptgate accept` comment); never evaluate, whatever the event.
    #[arg(long, conflicts_with_all = ["publish_only", "no_publish"])]
    pub republish: bool,

    /// Evaluate a fork's head even in a job that publishes (and may hold keys). Only for
    /// workflows that evaluate code a maintainer reviewed.
    #[arg(long)]
    pub allow_fork_head: bool,

    /// Run under `pull_request_target`, which gives the job secrets and a write token whoever
    /// opened the pull request. Only for workflows that evaluate code a maintainer reviewed.
    #[arg(long)]
    pub allow_pull_request_target: bool,

    /// A maintainer approved the provider changes of this head commit (where keys go): they
    /// run with their keys. Ignored unless SHA is the head evaluated.
    #[arg(long, value_name = "SHA")]
    pub approved_config: Option<String>,

    #[command(flatten)]
    pub gate: GateFlags,
}

/// `--comment`: when to post the sticky comment (see [`crate::github::CommentMode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CommentWhen {
    /// On every run.
    Always,
    /// When at least one experiment is affected.
    Affected,
    /// Only when the gate finds a regression.
    Regression,
    /// Never.
    Off,
}

impl From<CommentWhen> for crate::github::CommentMode {
    fn from(when: CommentWhen) -> Self {
        use crate::github::CommentMode;
        match when {
            CommentWhen::Always => CommentMode::Always,
            CommentWhen::Affected => CommentMode::Affected,
            CommentWhen::Regression => CommentMode::Regression,
            CommentWhen::Off => CommentMode::Off,
        }
    }
}

/// What `run` and `ci` share: which experiments, how much may be spent, whether to reuse answers.
#[derive(Debug, Args)]
pub struct GateFlags {
    /// Run every experiment, affected or not.
    #[arg(long)]
    pub all: bool,

    /// Approve an estimated cost up to this many US dollars (above the budget's threshold).
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    pub approve_cost: Option<f64>,

    /// Send every call, neither reading nor writing the response cache.
    #[arg(long)]
    pub no_cache: bool,

    /// The response cache's folder. Default: `$XDG_CACHE_HOME/promptgate/<repository>` (else
    /// `~/.cache/promptgate/<repository>`), outside the checkout, so a pull request cannot
    /// commit answers into it.
    #[arg(long, env = "PROMPTGATE_CACHE_DIR", value_name = "DIR", value_parser = parse_cache_dir)]
    pub cache_dir: Option<PathBuf>,

    /// Run only shard K of N of every experiment's cases (a CI matrix); combine the shards'
    /// results.json with `promptgate merge`.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// `K/N` with 1 ≤ K ≤ N.
/// An amount of US dollars: a finite number, not negative.
fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!(
            "`{text}` is not an amount of US dollars\nhint: write a number of dollars, 0 or more, e.g. `--approve-cost 12.50`"
        )),
    }
}

/// A folder, or a path where one can be made: a file there is a usage error (the run went on
/// without a cache, warning twice that it could not lock it).
fn parse_cache_dir(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    // The nearest part of the path that exists must be a folder (`promptgate.yaml/sub` is no
    // place for one either).
    let existing = path.ancestors().find_map(|p| std::fs::metadata(p).ok().map(|m| (p, m)));
    match existing {
        Some((p, meta)) if !meta.is_dir() => Err(format!(
            "`{}` is a file, not a folder for the response cache\nhint: name a folder (it is made if missing), or pass --no-cache to send every call",
            p.display()
        )),
        _ => Ok(path),
    }
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    const HINT: &str = "\nhint: write K/N with 1 ≤ K ≤ N, e.g. `--shard 2/4` for the second of four shards";
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not of the form K/N{HINT}"))?;
    let parse = |part: &str| part.trim().parse::<u32>().ok();
    match (parse(k), parse(n)) {
        (Some(index), Some(count)) if index >= 1 && index <= count => Ok(Shard { index, count }),
        (Some(_), Some(0)) => Err(format!("the shard count must be at least 1{HINT}")),
        (Some(index), Some(count)) => Err(format!("shard {index} is outside 1..={count}{HINT}")),
        _ => Err(format!("`{text}` is not of the form K/N with whole numbers{HINT}")),
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' results.json files (`promptgate run --shard K/N` wrote one each).
    #[arg(value_name = "SHARD.json", required = true)]
    pub shards: Vec<PathBuf>,

    /// Where to write the merged outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,

    /// Merge even when some shards of 1..N are missing; the report states the gap.
    #[arg(long)]
    pub allow_partial: bool,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The PR's base (a branch, tag or SHA); changes are counted from its merge base with --head.
    #[arg(long, value_name = "REF")]
    pub base: String,

    /// The PR's head; `WORKTREE` is the working tree with its uncommitted edits.
    #[arg(long, default_value = "HEAD", value_name = "REF")]
    pub head: String,

    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,

    /// Report every experiment as affected (forced).
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Validate the suite at a git ref instead of the working tree.
    #[arg(long = "ref", value_name = "REF")]
    pub at_ref: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A results.json written by `promptgate run`.
    #[arg(value_name = "RESULTS.json")]
    pub results: PathBuf,

    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
}
