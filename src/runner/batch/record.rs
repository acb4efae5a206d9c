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
    /// When the run was about to submit the batch (while `batch_id` is empty: a batch API that
    /// keeps no tag finds it by this and `calls`), or recorded its id (the record expires by it),
    /// in seconds since the Unix epoch (0 in a record written before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    since: u64,
    /// The batch's members (their `custom_id`s): a rerun attaches every job still unanswered
    /// to the batch that holds it, whatever else was answered since, instead of submitting it
    /// again. Absent in a record written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
    /// When a run read the ended batch's results but needed only some of its members (seconds
    /// since the Unix epoch; 0 while it runs): the record stays for the runs that need the
    /// others, until [`ENDED_KEPT`] has passed.
    #[serde(default, skip_serializing_if = "is_zero")]
    ended: u64,
}

/// How long the record of an ended batch is kept for members no run has claimed yet: by then
/// the provider no longer serves its results (Anthropic keeps them 29 days).
const ENDED_KEPT: Duration = Duration::from_secs(29 * 24 * 3600);

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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

/// What the records say of `provider`'s batches, from one read of the folder (expired records
/// are removed): the members of those with an id, each with its batch's record and id, and
/// the members of those a stopped run was submitting (no id yet), each with its record.
#[derive(Default)]
pub(super) struct Held {
    pub(super) batches: HashMap<String, (PathBuf, String)>,
    pub(super) intents: HashMap<String, PathBuf>,
}

pub(super) fn held(dir: &Path, provider: &str) -> Held {
    let mut held = Held::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return held;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(record) = load(&path) else { continue };
        if expired(&record) {
            // Its results are gone at the provider: a job it held is submitted anew.
            forget(&path);
            continue;
        }
        if record.provider != provider {
            continue;
        }
        for key in record.keys {
            if record.batch_id.is_empty() {
                held.intents.insert(key, path.clone());
            } else {
                held.batches.insert(key, (path.clone(), record.batch_id.clone()));
            }
        }
    }
    held
}

/// Removes the record at `path`, and the records' folder once it holds no other (a run with
/// `--no-cache` keeps its records in its output folder).
pub(super) fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        // Refused while the folder holds anything: another record, another run's.
        let _ = std::fs::remove_dir(dir);
    }
}

/// The record at `path`, if it is one.
fn load(path: &Path) -> Option<Record> {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
}

/// The members a record names (none in a record written before they were kept).
pub(super) fn record_keys(path: &Path) -> Vec<String> {
    load(path).map_or_else(Vec::new, |r| r.keys)
}

/// Whether the provider no longer serves the record's batch: [`ENDED_KEPT`] after it was kept
/// for others, or after it was recorded (a batch ends within a day; a record written before
/// records kept their time never expires).
fn expired(record: &Record) -> bool {
    let age = |since: u64| since > 0 && now_secs().saturating_sub(since) > ENDED_KEPT.as_secs();
    age(record.ended) || (!record.batch_id.is_empty() && age(record.since))
}

pub(super) fn read_record(path: &Path, provider: &str) -> Option<Recorded> {
    let record = load(path)?;
    if expired(&record) {
        forget(path);
        return None;
    }
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
    // For an intent, when it was about to be submitted (found by it); for a batch, when it was
    // recorded (it expires by it).
    let since = now_secs();
    let record = Record {
        provider: provider.to_owned(),
        batch_id: id.to_owned(),
        calls,
        tag: tag.to_owned(),
        since,
        keys,
        ended: 0,
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

/// Whether the record is one kept for others after its batch's results were read once.
pub(super) fn was_read(path: &Path) -> bool {
    load(path).is_some_and(|r| r.ended > 0)
}

/// After an ended batch's results were read, for the `claimed` members (answered and cached):
/// the record goes when they are all it holds (or it names none, as records did before they
/// kept their members); else it stays, marked ended and holding only the others, so a run that
/// needs them reads them from the batch instead of paying for them again. Returns how many
/// members it still holds.
pub(super) fn release(path: &Path, claimed: &std::collections::HashSet<&str>) -> usize {
    let Some(mut record) = load(path) else {
        forget(path);
        return 0;
    };
    record.keys.retain(|k| !claimed.contains(k.as_str()));
    if record.keys.is_empty() {
        forget(path);
        return 0;
    }
    if record.ended == 0 {
        record.ended = now_secs();
    }
    // Not rewritten (a full disk): a later run reads the results again for all its members.
    let _ = crate::output::write_file(path, &serde_json::to_vec(&record).unwrap_or_default());
    record.keys.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ended_batch_is_kept_for_its_unclaimed_members_until_its_results_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        write_record(&path, "openai", "batch_1", "", vec!["a".into(), "b".into(), "c".into()]);
        assert!(!was_read(&path));
        assert_eq!(release(&path, &["a"].into_iter().collect()), 2);
        assert!(was_read(&path));
        let batches = held(dir.path(), "openai").batches;
        assert_eq!(batches.len(), 2);
        assert!(batches.contains_key("b") && batches.contains_key("c") && !batches.contains_key("a"));
        // Past the time the provider keeps results: forgotten, and a job it held is sent anew.
        let mut record: Record = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert!(record.ended > 0);
        record.ended -= ENDED_KEPT.as_secs() + 1;
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        assert!(held(dir.path(), "openai").batches.is_empty());
        assert!(!path.exists());
        // A batch recorded longer ago than its results are kept, never read: forgotten too.
        write_record(&path, "openai", "batch_3", "", vec!["a".into()]);
        let mut record: Record = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record.since -= ENDED_KEPT.as_secs() + 1;
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
        assert!(read_record(&path, "openai").is_none());
        assert!(!path.exists());
        // Every member claimed: the record goes.
        write_record(&path, "openai", "batch_2", "", vec!["a".into(), "b".into()]);
        assert_eq!(release(&path, &["b", "a"].into_iter().collect()), 0);
        assert!(!path.exists());
    }
}
