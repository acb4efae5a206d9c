//! Reading `ledger.jsonl`: every line an [`Entry`], or an error naming the line.
//!
//! The ledger is a shared, long-lived file that people may edit by hand (a rebase, a merge of
//! the branch): a malformed line stops `show` with its line number rather than vanishing from
//! the history, because a silently shorter history would hide exactly the change it lost.

use std::path::Path;

use super::Entry;
use crate::error::{Diagnostic, Error};

/// Parses the ledger's text. `label` names it in errors (a path, or `branch:ledger.jsonl`).
/// Blank lines are allowed (an editor's trailing newline).
pub fn parse_ledger(text: &str, label: &str) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let entry: Entry = serde_json::from_str(line).map_err(|e| {
            Error::from(
                Diagnostic::new(format!("ledger line {number} is not a ledger entry: {}", json_message(&e)))
                    .in_file(label)
                    .at_byte(text, number, e.column() as u64)
                    .hint("each line is one JSON object with time, experiment, version, commit, pr, verdict, metrics, waiver, canary")
                    .hint("fix or delete the line on the ledger's branch (it is append-only otherwise), then run again"),
            )
        })?;
        if super::time::parse(&entry.time).is_none() {
            let column = line.find(&entry.time).map_or(0, |at| at as u64 + 1);
            return Err(Diagnostic::new(format!(
                "ledger line {number}: `time` is not an RFC 3339 instant: `{}`",
                entry.time
            ))
            .in_file(label)
            .at(text, number, column)
            .hint("write it as `2026-11-30T14:05:00Z`")
            .into());
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// serde_json's message without its " at line L column C" (the diagnostic points there).
pub(super) fn json_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    message.split(" at line").next().unwrap_or(&message).to_owned()
}

/// At most `cap` bytes of the file as text, an error above it.
pub(super) fn read_capped(path: &Path, cap: u64) -> Result<String, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string().to_lowercase())?;
    let mut bytes = Vec::new();
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string().to_lowercase())?;
    if bytes.len() as u64 > cap {
        return Err(format!("it is larger than {} MiB", cap >> 20));
    }
    String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_owned())
}

/// The largest ledger read: about a million entries.
pub const MAX_LEDGER_BYTES: u64 = 512 << 20;

/// Reads a local ledger file; a missing file is an empty ledger when `missing_ok`.
pub fn read_ledger_file(path: &Path, missing_ok: bool) -> Result<String, Error> {
    if missing_ok && !path.exists() {
        return Ok(String::new());
    }
    read_capped(path, MAX_LEDGER_BYTES).map_err(|e| {
        Diagnostic::new(format!("cannot read the ledger {}: {e}", path.display()))
            .hint("pass the ledger.jsonl `promptgate ledger record --ledger FILE` appends to")
            .into()
    })
}
