use std::process::ExitCode;

use clap::Parser;
use promptgate::error::{Error, exit};
use promptgate::output::inert;
use promptgate::secrets::redact;

fn main() -> ExitCode {
    promptgate::allocator::configure();
    quiet_on_closed_pipes();
    let cli = promptgate::cli::Cli::parse();
    match promptgate::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            // The reader went away: nothing more can be said, and the command did not finish
            // (as below for a panicking print).
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::RUN);
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

/// A reader that went away (`promptgate run … 2>&1 | head -2`) makes `println!` and
/// `eprintln!` panic on the broken pipe. That is no bug to report with a backtrace (exit 101):
/// the process stops quietly, and as a run that could not finish (exit 3), never as a pass a
/// `pipefail` shell would take for the gate's.
fn quiet_on_closed_pipes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(i32::from(exit::RUN));
        }
        report(info);
    }));
}
