use std::process::ExitCode;

use clap::Parser;
use promptgate::error::{Error, exit};
use promptgate::output::inert;
use promptgate::secrets::redact;

fn main() -> ExitCode {
    promptgate::allocator::configure();
    let cli = promptgate::cli::Cli::parse();
    match promptgate::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            // Errors quote configs, providers and pull requests: no secret, no workflow command.
            let print = |text: String| eprintln!("{}", inert(&redact(&text)));
            match err.downcast_ref::<Error>() {
                Some(expected) => {
                    print(expected.to_string());
                    ExitCode::from(expected.exit_code())
                }
                None => {
                    print(format!("error: {err:#}"));
                    ExitCode::from(exit::RUN)
                }
            }
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}
