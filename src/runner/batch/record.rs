//! Where `run --batch` keeps its batches between runs: one record a batch in the cache
//! directory, named by the digest of its content, holding its id (or, while it is being
//! submitted, the intent: tag, size, time) and its members' keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Member;
use crate::providers::batch::Sought;

/// A submitted batch, as the cache directory keeps it.
#[derive(Serialize, Deserialize)]
struct Record {
    provider: String,
    batch_id: String,
    calls: usize,
    /// While `batch_id` is empty: the tag the batch being submitted carries.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    tag: String,
    /// While `batch_id` is empty: when the run was about to submit it, in seconds since the
    /// Unix epoch (0 in a record written before it was kept). A batch API that keeps no tag
    /// finds the batch by this and `calls`.
    #[serde(default, skip_serializing_if = "is_zero")]
    since: u64,
    /// The batch's members (their `custom_id`s): a rerun attaches every job still unanswered
    /// to the batch that holds it, whatever else was answered since, instead of submitting it
    /// again. Absent in a record written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a batch record says: the batch's id, or (an empty id) that a run was submitting a
/// batch, and what it knew of it.
pub(super) enum Recorded {
    Batch(String),
    Submitting(Intent),
}

/// A batch a run was about to submit when it stopped: its tag, size and time.
pub(super) struct Intent {
    pub(super) tag: String,
    pub(super) calls: usize,
    pub(super) since: u64,
}

impl Intent {
    pub(super) fn as_sought(&self) -> Sought<'_> {
        Sought {
            tag: &self.tag,
            calls: self.calls,
            since: (self.since > 0).then(|| std::time::UNIX_EPOCH + Duration::from_secs(self.since)),
        }
    }
}

/// A tag no earlier attempt had: the time in nanoseconds and the process.
pub(super) fn attempt_nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:x}", std::process::id())
}

/// The members' keys, as a record keeps them.
pub(super) fn member_keys(members: &[Member]) -> Vec<String> {
    members.iter().map(|m| m.key.clone()).collect()
}

/// The members of `provider`'s recorded batches (those with an id), each with its batch's
/// record and id.
pub(super) fn recorded_members(dir: &Path, provider: &str) -> HashMap<String, (PathBuf, String)> {
    let mut members = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return members;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        else {
            continue;
        };
        if record.provider == provider && !record.batch_id.is_empty() {
            for key in record.keys {
                members.insert(key, (path.clone(), record.batch_id.clone()));
            }
        }
    }
    members
}

pub(super) fn read_record(path: &Path, provider: &str) -> Option<Recorded> {
    let bytes = std::fs::read(path).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    if record.provider != provider {
        None
    } else if record.batch_id.is_empty() {
        Some(Recorded::Submitting(Intent {
            tag: record.tag,
            calls: record.calls,
            since: record.since,
        }))
    } else {
        Some(Recorded::Batch(record.batch_id))
    }
}

/// Records batch `id` of `provider`; an empty `id` records that the batch tagged `tag` is being
/// submitted.
pub(super) fn write_record(path: &Path, provider: &str, id: &str, tag: &str, keys: Vec<String>) {
    let calls = keys.len();
    let since = if id.is_empty() {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    } else {
        0
    };
    let record = Record {
        provider: provider.to_owned(),
        batch_id: id.to_owned(),
        calls,
        tag: tag.to_owned(),
        since,
        keys,
    };
    let written = path
        .parent()
        .map_or(Ok(()), crate::output::create_dir)
        .and_then(|()| crate::output::write_file(path, &serde_json::to_vec(&record).unwrap_or_default()));
    if let Err(e) = written {
        let what = if id.is_empty() {
            "that a batch is being submitted".to_owned()
        } else {
            format!("batch {id}")
        };
        eprintln!(
            "warning: cannot record {what} in {}: {e}; a rerun would submit it again",
            path.display()
        );
    }
}
