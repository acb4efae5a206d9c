//! The journal: one JSON line per finished job, so a run that is killed resumes where it stopped.
//!
//! The first line is a header naming the run (`run_identity`: a digest of the whole plan's job
//! list, every sequential look included). On start, a journal of the same run is replayed and
//! its jobs are not sent again; any other file (another run's, a corrupt one) is replaced. Each
//! line is one `write` to the operating system, made the moment a call's answer arrives and
//! before the call gives back its concurrency slot, which survives the process being killed
//! (SIGKILL): a kill re-sends at most the calls in flight. It does not fsync, so a machine crash
//! may lose the last lines — those calls are then made again, never lost. A torn last line is
//! skipped on replay. Each line carries the call's cost, so a resumed run's cap counts what the
//! interrupted one spent. The journal is removed only once the run's outputs are written
//! (`Runner::finish`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::{CallError, Outcome};
use crate::providers::Response;

/// 2: one journal for the whole run, each line with its cost.
const FORMAT: u32 = 2;

pub struct Journal {
    file: Mutex<File>,
    path: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Header {
    promptgate_journal: u32,
    run_identity: String,
}

/// A finished job: its key (cache key plus fallback chain) and its outcome.
#[derive(Serialize, Deserialize)]
struct Record {
    job: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<Response>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<CallError>,
    latency_ms: Option<f64>,
    cached: bool,
    attempts: u32,
    provider: Option<String>,
    fell_back: bool,
    /// Sent through a batch API (`run --batch`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    batched: bool,
    /// What the call cost at list prices (0 for a cache hit or a failure).
    cost_usd: f64,
}

/// What an interrupted run's journal hands the rerun.
#[derive(Default)]
pub struct Replay {
    /// Finished outcomes by job key; a key sent twice has two.
    pub outcomes: HashMap<String, Vec<Outcome>>,
    /// What those calls cost: spent already, against the run's cap.
    pub spent_usd: f64,
}

impl Journal {
    /// Opens the journal at `path` for the run `identity`, returning what it already holds
    /// (nothing unless the file is this run's).
    pub fn open(path: &Path, identity: &str) -> std::io::Result<(Journal, Replay)> {
        // The journal lives in the output folder: never written through a link there.
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::output::create_dir(parent).map_err(std::io::Error::other)?;
        }
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!("{} is a symbolic link", path.display())));
        }
        let records = read(path, identity).unwrap_or_default();
        // Rewrite the file from what replayed, so a torn last line is gone before appending.
        let tmp = path.with_extension("jsonl.tmp");
        let _ = std::fs::remove_file(&tmp);
        {
            let mut out = std::io::BufWriter::new(File::create(&tmp)?);
            let header = Header {
                promptgate_journal: FORMAT,
                run_identity: identity.to_owned(),
            };
            writeln!(
                out,
                "{}",
                serde_json::to_string(&header).map_err(std::io::Error::other)?
            )?;
            for record in &records {
                writeln!(out, "{}", serde_json::to_string(record).map_err(std::io::Error::other)?)?;
            }
            out.flush()?;
        }
        let mut replay = Replay::default();
        for record in records {
            replay.spent_usd += record.cost_usd;
            let (job, outcome) = record.into_outcome();
            replay.outcomes.entry(job).or_default().push(outcome);
        }
        std::fs::rename(&tmp, path)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        Ok((
            Journal {
                file: Mutex::new(file),
                path: path.to_owned(),
            },
            replay,
        ))
    }

    /// Appends a finished job and what it cost; returns once the line is with the operating
    /// system.
    pub fn append(&self, job: &str, outcome: &Outcome, cost_usd: f64) -> std::io::Result<()> {
        let mut line = serde_json::to_string(&Record::new(job, outcome, cost_usd)).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())?;
        file.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The records in the journal at `path`, if it belongs to the run `identity`.
fn read(path: &Path, identity: &str) -> Option<Vec<Record>> {
    let mut lines = BufReader::new(File::open(path).ok()?).lines();
    let header: Header = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    if header.promptgate_journal != FORMAT || header.run_identity != identity {
        return None;
    }
    let mut records = Vec::new();
    for line in lines {
        let Ok(line) = line else { break };
        if let Ok(record) = serde_json::from_str::<Record>(&line) {
            records.push(record);
        }
    }
    Some(records)
}

impl Record {
    fn new(job: &str, o: &Outcome, cost_usd: f64) -> Record {
        let (response, error) = match &o.result {
            Ok(r) => (Some(r.clone()), None),
            Err(e) => (None, Some(e.clone())),
        };
        Record {
            job: job.to_owned(),
            response,
            error,
            latency_ms: o.latency_ms,
            cached: o.cached,
            attempts: o.attempts,
            provider: o.provider.clone(),
            fell_back: o.fell_back,
            batched: o.batched,
            cost_usd,
        }
    }

    fn into_outcome(self) -> (String, Outcome) {
        let result = match (self.response, self.error) {
            (Some(r), _) => Ok(r),
            (None, e) => Err(e.unwrap_or(CallError::NotRun)),
        };
        (
            self.job,
            Outcome {
                result,
                latency_ms: self.latency_ms,
                cached: self.cached,
                attempts: self.attempts,
                provider: self.provider,
                fell_back: self.fell_back,
                batched: self.batched,
            },
        )
    }
}
