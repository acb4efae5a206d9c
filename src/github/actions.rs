//! The runner's side channels: `$GITHUB_OUTPUT`, `$GITHUB_STEP_SUMMARY`, and workflow commands
//! (`::group::`, `::error file=…::`) printed on stdout.
//!
//! Every value written here can come from the pull request (experiment names, paths), so each
//! is escaped: a newline must not start a new output or a new workflow command.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

/// Appends the outputs to the `$GITHUB_OUTPUT` file: `name=value` for a value of one line (the
/// form GitHub's documentation shows first, and the one a script greps for), else the multi-line
/// form with a delimiter the value cannot contain, so no value can start another output.
pub fn write_outputs(file: &Path, outputs: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        if !value.contains(['\n', '\r']) {
            text.push_str(&format!("{name}={value}\n"));
            continue;
        }
        let mut delimiter = "promptgate_EOF".to_owned();
        while value.contains(&delimiter) {
            delimiter.push('_');
        }
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    append(file, &text)
}

/// Appends Markdown to `$GITHUB_STEP_SUMMARY`.
pub fn append_summary(file: &Path, markdown: &str) -> anyhow::Result<()> {
    append(file, markdown)
}

/// `::group::title` … `::endgroup::` folds the lines between them in the log.
pub fn group(title: &str) -> String {
    format!("::group::{}", escape_data(title))
}

pub fn endgroup() -> String {
    "::endgroup::".to_owned()
}

/// `::error file=…,line=…,title=…::message`: an annotation on a file of the pull request.
pub fn error(file: &str, line: u32, title: &str, message: &str) -> String {
    format!(
        "::error file={},line={line},title={}::{}",
        escape_property(file),
        escape_property(title),
        escape_data(message)
    )
}

/// `text` made inert for the runner's log (see [`crate::output::inert`]).
pub use crate::output::inert;

/// The runner's escaping for a command's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// The runner's escaping for a command's `key=value` properties.
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

fn append(file: &Path, text: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_cannot_be_injected() {
        assert_eq!(
            error("prompts/a,b.md", 1, "x: y", "bad\n::set-env name=X::1"),
            "::error file=prompts/a%2Cb.md,line=1,title=x%3A y::bad%0A::set-env name=X::1"
        );
        assert_eq!(group("evaluating 100% of it"), "::group::evaluating 100%25 of it");
    }

    #[test]
    fn printed_text_cannot_start_a_workflow_command() {
        let zwsp = "\u{200B}";
        for hostile in [
            "::add-mask::x",
            "  ::stop-commands::token",
            "fine\n::set-output name=verdict::pass",
            "fine\r::error::fake",
            "\t::warning::fake",
        ] {
            let safe = inert(hostile);
            for line in safe.split('\n') {
                assert!(!line.trim_start().starts_with("::"), "{safe:?}");
            }
        }
        assert_eq!(inert("::add-mask::x"), format!("{zwsp}::add-mask::x"));
        assert_eq!(inert("a ##[error]b"), format!("a #{zwsp}#[error]b"));
        assert_eq!(inert("std::env and a::b"), "std::env and a::b");
    }

    #[test]
    fn a_line_is_name_equals_value_and_more_lines_a_delimiter_the_value_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        write_outputs(
            &file,
            &[
                ("verdict", "fail".to_owned()),
                ("tricky", "a\npromptgate_EOF\nb".to_owned()),
                ("cr", "x\ry".to_owned()),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "verdict=fail\ntricky<<promptgate_EOF_\na\npromptgate_EOF\nb\npromptgate_EOF_\ncr<<promptgate_EOF\nx\ry\npromptgate_EOF\n"
        );
    }
}
