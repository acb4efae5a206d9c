//! One function per subcommand. Each returns the exit code, or an error `main` maps to one.

mod canary;
mod ci;
mod demo;
mod init;
mod inspect;
mod judge_check;
mod ledger;
mod merge;
mod run;

use crate::cli::{Cli, Command};

pub use crate::plan::PlanFacts;
pub use run::{GateOptions, GateRun, run_gate, run_gate_with};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
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
