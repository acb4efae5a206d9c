//! One function per subcommand. Each returns the exit code, or an error `main` maps to one.

mod ci;
mod demo;
mod gate;
mod init;
mod inspect;

use crate::cli::{Cli, Command};

pub use gate::{GateOptions, GateRun, PlanFacts, run_gate, run_gate_with};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo(args) => demo::demo(&args.out, args.live),
        Command::Run(args) => {
            let cache_dir = if args.no_cache {
                None
            } else {
                Some(
                    crate::workspace::Repo::open(&cli.repo)?
                        .root()
                        .join(".promptgate")
                        .join("cache"),
                )
            };
            let options = GateOptions {
                base: args.base,
                head: args.head,
                config: cli.config,
                all: args.all,
                approve_cost: args.approve_cost,
                journal: Some(args.out.join("journal.jsonl")),
                out: args.out,
                cache_dir,
                aa: args.aa,
            };
            let run = run_gate(&cli.repo, &options)?;
            gate::print_outcome(&run);
            run.exit_code()
        }
        Command::Ci(args) => ci::ci(&cli.repo, &cli.config, &args),
        Command::Detect(args) => inspect::detect(&cli.repo, &cli.config, &args),
        Command::Validate(args) => inspect::validate(&cli.repo, &cli.config, args.at_ref.as_deref()),
        Command::Report(args) => inspect::report(&args.results, &args.out),
        Command::Init(args) => init::init(&cli.repo, &cli.config, args.force),
    }
}
