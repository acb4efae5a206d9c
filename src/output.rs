//! What promptgate writes, made safe: files a run produces (`--out`, the journal, the response
//! cache) are never written through a symbolic link — a checkout may hold links a pull
//! request committed, and a committed `promptgate-out` link would otherwise send the outputs
//! (and the journal) wherever it points — and text printed to a CI log cannot start a
//! workflow command ([`inert`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Creates an output folder, refusing one that is (or sits under) a symbolic link inside the
/// working directory: a checkout may hold links the pull request committed.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    refuse_links(dir)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes a file, refusing to follow a symbolic link at its path.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(link_error(path).into());
    }
    // Replace, never write through: a link created between the check and the write would
    // still only be replaced.
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Refuses `path` when it, or a folder on the way to it, is a symbolic link. An absolute path
/// is checked from its last existing folder (system folders such as `/tmp` may be links).
fn refuse_links(path: &Path) -> Result<(), crate::error::Error> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        let checked = path.is_relative() || prefix == path;
        if checked && std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(link_error(&prefix));
        }
    }
    Ok(())
}

fn link_error(path: &Path) -> crate::error::Error {
    crate::error::Diagnostic::new(format!(
        "refusing to write outputs through `{}`: it is a symbolic link",
        path.display()
    ))
    .hint("a checkout may hold links a pull request committed; remove the link or pass another --out folder")
    .into()
}

/// `text` made inert for the runner's log: no line of it starts a workflow command.
///
/// The runner reads a line as a command when, after leading whitespace, it starts with `::`
/// (and, in the older form, wherever `##[` occurs). Text printed from results or the suite can
/// come from a pull request, so a `::add-mask::` or `::stop-commands::` line in an experiment
/// name must print as text: a zero-width space before the `::` (and inside `##[`) keeps the
/// line readable and breaks the match. Carriage returns count as line breaks, as the runner
/// splits on them too.
pub fn inert(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        if body.starts_with("::") {
            out.push_str(&line[..line.len() - body.len()]);
            out.push(ZERO_WIDTH_SPACE);
            out.push_str(body);
        } else {
            out.push_str(line);
        }
    }
    out.replace("##[", "#\u{200B}#[")
}

const ZERO_WIDTH_SPACE: char = '\u{200B}';

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn links_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let e = create_dir(&link).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        let real = dir.path().join("real");
        create_dir(&real).unwrap();
        let target = elsewhere.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, real.join("results.json")).unwrap();
        assert!(write_file(&real.join("results.json"), b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        write_file(&real.join("report.md"), b"ok").unwrap();
        write_file(&real.join("report.md"), b"again").unwrap();
        assert_eq!(std::fs::read_to_string(real.join("report.md")).unwrap(), "again");
    }
}
