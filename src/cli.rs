//! Command-line definitions (clap). Behaviour lives in `commands`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "promptgate", version, about = "A statistical A/B gate for prompt and model-config changes")]
pub struct Cli {
    /// The prompt repository (any folder inside it).
    #[arg(long, short = 'C', global = true, default_value = ".", value_name = "DIR")]
    pub repo: PathBuf,

    /// The suite file, relative to the repository root.
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
    /// List the experiments a change affects, and why.
    Detect(DetectArgs),
    /// Check the suite: every error with file:line:column and a hint.
    Validate(ValidateArgs),
    /// Re-render report.md, summary.md and junit.xml from a results.json.
    Report(ReportArgs),
    /// Scaffold a suite in the current repository.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The PR's base (a branch, tag or SHA). The baseline is its merge base with --head.
    #[arg(long, value_name = "REF")]
    pub base: String,

    /// The PR's head.
    #[arg(long, default_value = "HEAD", value_name = "REF")]
    pub head: String,

    /// Where to write the outputs.
    #[arg(long, default_value = "promptgate-out", value_name = "DIR")]
    pub out: PathBuf,

    /// Run every experiment, affected or not.
    #[arg(long)]
    pub all: bool,

    /// Approve an estimated cost up to this many US dollars (above the budget's threshold).
    #[arg(long, value_name = "USD")]
    pub approve_cost: Option<f64>,

    /// A/A check: run the suite at --base against itself to measure its noise, the gate's
    /// false-alarm rate on it, and the cases and repeats its margins need.
    #[arg(long)]
    pub aa: bool,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[arg(long, value_name = "REF")]
    pub base: String,

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
