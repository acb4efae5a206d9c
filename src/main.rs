use std::process::ExitCode;

use clap::Parser;
use promptgate::error::{Error, exit};

fn main() -> ExitCode {
    let cli = promptgate::cli::Cli::parse();
    match promptgate::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::SUCCESS;
            }
            match err.downcast_ref::<Error>() {
                Some(expected) => {
                    eprintln!("{expected}");
                    ExitCode::from(expected.exit_code())
                }
                None => {
                    eprintln!("error: {err:#}");
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
