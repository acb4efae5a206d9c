//! One function per subcommand. Each returns the exit code, or an error `main` maps to one.

mod demo;
mod gate;
mod init;
mod inspect;

use crate::cli::{Cli, Command};

pub use gate::{GateOptions, GateRun, run_gate};

pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo(args) => demo::demo(&args.out),
        Command::Run(args) => {
            let options = GateOptions {
                base: args.base,
                head: args.head,
                config: cli.config,
                all: args.all,
                approve_cost: args.approve_cost,
                out: args.out,
                aa: args.aa,
            };
            let run = run_gate(&cli.repo, &options)?;
            gate::print_outcome(&run);
            run.exit_code()
        }
        Command::Detect(args) => inspect::detect(&cli.repo, &cli.config, &args),
        Command::Validate(args) => inspect::validate(&cli.repo, &cli.config, args.at_ref.as_deref()),
        Command::Report(args) => inspect::report(&args.results, &args.out),
        Command::Init(args) => init::init(&cli.repo, &cli.config, args.force),
    }
}
