//! The journal: one JSON line per finished job, so a run that is killed resumes where it stopped.
//!
//! The first line is a header naming the run (`run_identity`: a digest of the whole plan's job
//! list, every sequential look included). On start, a journal of the same run is replayed and
//! its jobs are not sent again; any other file (another run's, a corrupt one) is replaced. Each
//! line is one `write` to the operating system, made the moment a call's answer arrives and
//! before the call gives back its concurrency slot, which survives the process being killed
//! (SIGKILL): a kill re-sends at most the calls in flight. A machine crash loses what the
//! operating system had not yet written to the disk, so a thread of the journal's own syncs
//! it (`fdatasync`) every [`SYNC_EVERY`] while lines arrive — off the calls' path, which only
//! marks the journal as written — and a crash re-sends at most the calls in flight and those
//! finished in the last [`SYNC_EVERY`]. A torn last line is skipped on replay. Each line carries the call's cost, so a resumed run's cap counts what the
//! interrupted one spent; under a cap each attempt is noted before it is sent (`Sending`), so
//! the calls a kill left in flight count too, at their upper bounds, as possibly billed. The journal is removed only once the run's outputs are written
//! (`Runner::finish`).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{CallError, Outcome};
use crate::providers::Response;

/// 2: one journal for the whole run, each line with its cost.
const FORMAT: u32 = 2;

/// How often the journal's lines are synced to the disk while a run writes them.
pub const SYNC_EVERY: Duration = Duration::from_millis(100);

pub struct Journal {
    file: Mutex<File>,
    path: PathBuf,
    /// Lines written since the last sync.
    unsynced: Arc<AtomicBool>,
    syncer: Option<Syncer>,
}

/// The thread that syncs the journal; told on drop whether to sync a last time.
struct Syncer {
    stop: mpsc::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
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
    /// The upper bounds of its attempts that timed out: they may have been billed, so a resumed
    /// run's cap holds them too (`SpendCap::settle_uncertain`).
    #[serde(default, skip_serializing_if = "is_zero")]
    uncertain_usd: f64,
}

fn is_zero(usd: &f64) -> bool {
    *usd == 0.0
}

/// A note of one attempt under a spending cap: written before the request leaves (`ended`
/// absent), and again when the attempt failed (`ended`: `timeout`, possibly billed; `failed`,
/// not billed), so an attempt a kill cut short (in flight, never journaled as finished) is held
/// against the rerun's cap at its upper bound. `attempt` counts a copy of the job's attempts
/// (as its finished line's `attempts` does), so one copy's retries replace its note and two
/// copies of one job (a pair measured again) keep one each; the copy's finished line settles
/// its last. What a journal's rewrite carries over is one line of the empty key.
#[derive(Serialize, Deserialize)]
struct Sending {
    sending: String,
    #[serde(default)]
    attempt: u32,
    upper_usd: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended: Option<Ended>,
}

/// How a noted attempt ended, when it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// It timed out, or its answer could not be read (`ProviderError::Unsettled`): the
    /// provider may bill it in full.
    Timeout,
    /// It failed otherwise (a refusal, a rate limit, a server error): not billed.
    Failed,
}

/// The notes of attempts a journal's finished lines have not settled (see [`Sending`]).
#[derive(Default)]
struct InFlight {
    /// Per job, each copy's last attempt sent and its upper bound.
    sent: HashMap<String, Vec<(u32, f64)>>,
    /// Per job, the upper bounds of its attempts that timed out.
    timed_out: HashMap<String, f64>,
    /// What an earlier rewrite carried over.
    carried: f64,
}

impl InFlight {
    fn note(&mut self, n: Sending) {
        if !(n.upper_usd.is_finite() && n.upper_usd > 0.0) {
            return;
        }
        if n.sending.is_empty() {
            self.carried += n.upper_usd;
            return;
        }
        let sent = self.sent.entry(n.sending.clone()).or_default();
        match n.ended {
            None => match sent.iter_mut().find(|(a, _)| *a + 1 == n.attempt) {
                Some(copy) => *copy = (n.attempt, n.upper_usd),
                None => sent.push((n.attempt, n.upper_usd)),
            },
            Some(ended) => {
                if let Some(i) = sent.iter().position(|(a, _)| *a == n.attempt) {
                    sent.swap_remove(i);
                }
                if ended == Ended::Timeout {
                    *self.timed_out.entry(n.sending).or_default() += n.upper_usd;
                }
            }
        }
    }

    /// A copy of `job` finished after `attempts` attempts, its timeouts' `uncertain_usd` on
    /// its line.
    fn finished(&mut self, job: &str, attempts: u32, uncertain_usd: f64) {
        if let Some(sent) = self.sent.get_mut(job)
            && let Some(i) = sent.iter().position(|(a, _)| *a == attempts)
        {
            sent.swap_remove(i);
        }
        if let Some(t) = self.timed_out.get_mut(job) {
            *t = (*t - uncertain_usd).max(0.0);
        }
    }

    fn total(&self) -> f64 {
        self.carried
            + self.sent.values().flatten().map(|(_, usd)| usd).sum::<f64>()
            + self.timed_out.values().sum::<f64>()
    }
}

/// What an interrupted run's journal hands the rerun.
#[derive(Default)]
pub struct Replay {
    /// Finished outcomes by job key; a key sent twice has two.
    pub outcomes: HashMap<String, Vec<Outcome>>,
    /// What those calls cost: spent already, against the run's cap.
    pub spent_usd: f64,
    /// Their timed-out attempts' upper bounds: possibly spent, held against the cap as well.
    pub uncertain_usd: f64,
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
        let (records, in_flight) = read(path, identity).unwrap_or_default();
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
            if in_flight > 0.0 {
                let carried = Sending {
                    sending: String::new(),
                    attempt: 0,
                    upper_usd: in_flight,
                    ended: None,
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&carried).map_err(std::io::Error::other)?
                )?;
            }
            out.flush()?;
        }
        let mut replay = Replay {
            uncertain_usd: in_flight,
            ..Replay::default()
        };
        for record in records {
            replay.spent_usd += record.cost_usd;
            replay.uncertain_usd += record.uncertain_usd;
            let (job, outcome) = record.into_outcome();
            replay.outcomes.entry(job).or_default().push(outcome);
        }
        std::fs::rename(&tmp, path)?;
        let file = std::fs::OpenOptions::new().append(true).open(path)?;
        let unsynced = Arc::new(AtomicBool::new(true));
        let syncer = Syncer::start(file.try_clone()?, path, Arc::clone(&unsynced));
        Ok((
            Journal {
                file: Mutex::new(file),
                path: path.to_owned(),
                unsynced,
                syncer,
            },
            replay,
        ))
    }

    /// Appends a finished job, what it cost and what it may have cost besides (its timed-out
    /// attempts' upper bounds); returns once the line is with the operating system.
    pub fn append(&self, job: &str, outcome: &Outcome, cost_usd: f64, uncertain_usd: f64) -> std::io::Result<()> {
        self.write_line(&Record::new(job, outcome, cost_usd, uncertain_usd))
    }

    /// Notes attempt `attempt` of `job`, holding `upper_usd` under the cap: about to be sent
    /// (`ended` `None`), or failed. Returns once the line is with the operating system (see
    /// [`Sending`]).
    pub fn note(&self, job: &str, attempt: u32, upper_usd: f64, ended: Option<Ended>) -> std::io::Result<()> {
        self.write_line(&Sending {
            sending: job.to_owned(),
            attempt,
            upper_usd,
            ended,
        })
    }

    /// One line, one `write` to the operating system (so a kill never tears it).
    fn write_line(&self, value: &impl Serialize) -> std::io::Result<()> {
        let mut line = serde_json::to_string(value).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())?;
        file.flush()?;
        self.unsynced.store(true, Ordering::Release);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run is over and its outputs are written: the journal goes, unsynced.
    pub fn remove(mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop(false);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Journal {
    /// Dropped without [`Journal::remove`] (an error, Ctrl-C): the rerun will replay it, so its
    /// last lines are synced before the process ends.
    fn drop(&mut self) {
        if let Some(syncer) = self.syncer.take() {
            syncer.stop(true);
        }
    }
}

impl Syncer {
    /// Syncs the folder once (the journal was just renamed into it), then the journal every
    /// [`SYNC_EVERY`] while it has unsynced lines. `None` when no thread can be started: the
    /// journal then still survives a kill, as the module documentation says, not a crash.
    fn start(file: File, path: &Path, unsynced: Arc<AtomicBool>) -> Option<Syncer> {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned);
        let (stop, stopped) = mpsc::channel::<bool>();
        let sync = move || {
            if unsynced.swap(false, Ordering::Acquire) {
                // A failed sync leaves the lines where a kill cannot reach them; a crash then
                // re-sends those calls, as it would without syncing.
                let _ = file.sync_data();
            }
        };
        let thread = std::thread::Builder::new()
            .name("journal-sync".to_owned())
            .spawn(move || {
                if let Ok(dir) = File::open(&folder) {
                    let _ = dir.sync_all();
                }
                loop {
                    match stopped.recv_timeout(SYNC_EVERY) {
                        Err(mpsc::RecvTimeoutError::Timeout) => sync(),
                        Ok(true) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                            sync();
                            return;
                        }
                        Ok(false) => return,
                    }
                }
            })
            .ok()?;
        Some(Syncer { stop, thread })
    }

    /// Stops the thread, syncing a last time when `sync`.
    fn stop(self, sync: bool) {
        let _ = self.stop.send(sync);
        let _ = self.thread.join();
    }
}

/// The records in the journal at `path`, if it belongs to the run `identity`, and the upper
/// bounds of the attempts it noted as sent that no finished line settled (see [`Sending`]).
fn read(path: &Path, identity: &str) -> Option<(Vec<Record>, f64)> {
    let mut lines = BufReader::new(File::open(path).ok()?).lines();
    let header: Header = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    if header.promptgate_journal != FORMAT || header.run_identity != identity {
        return None;
    }
    let mut records = Vec::new();
    let mut in_flight = InFlight::default();
    for line in lines {
        let Ok(line) = line else { break };
        if let Ok(record) = serde_json::from_str::<Record>(&line) {
            in_flight.finished(&record.job, record.attempts, record.uncertain_usd);
            records.push(record);
        } else if let Ok(sending) = serde_json::from_str::<Sending>(&line) {
            in_flight.note(sending);
        }
    }
    Some((records, in_flight.total()))
}

impl Record {
    fn new(job: &str, o: &Outcome, cost_usd: f64, uncertain_usd: f64) -> Record {
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
            provider: o.provider.as_ref().map(|p| p.to_string()),
            fell_back: o.fell_back,
            batched: o.batched,
            cost_usd,
            uncertain_usd,
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
                provider: self.provider.as_deref().map(crate::results::Name::new),
                fell_back: self.fell_back,
                batched: self.batched,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::CallError;

    fn failed() -> Outcome {
        Outcome {
            result: Err(CallError::NotRun),
            latency_ms: None,
            cached: false,
            attempts: 1,
            provider: Some("p".into()),
            fell_back: false,
            batched: false,
        }
    }

    /// Lines written across syncs replay after the journal is dropped (a failed run), and a
    /// journal removed after a finished run is gone, its sync thread stopped.
    #[test]
    fn a_dropped_journal_replays_and_a_removed_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/journal.jsonl");
        let (journal, replay) = Journal::open(&path, "run-1").unwrap();
        assert!(replay.outcomes.is_empty());
        journal.append("a", &failed(), 0.25, 0.0).unwrap();
        std::thread::sleep(SYNC_EVERY + Duration::from_millis(20));
        journal.append("b", &failed(), 0.5, 0.125).unwrap();
        drop(journal);
        let (journal, replay) = Journal::open(&path, "run-1").unwrap();
        assert_eq!(replay.outcomes.len(), 2);
        assert!((replay.spent_usd - 0.75).abs() < 1e-12);
        assert!((replay.uncertain_usd - 0.125).abs() < 1e-12);
        // Attempts noted: `c` sent once and finished; `d` sent, rate-limited (not billed),
        // sent again and cut short by a kill (one attempt in flight, not two); `e` timed out,
        // then sent again and cut short (both held); `f` twice at once (a pair measured
        // again), one copy finished (the other still held).
        journal.note("c", 1, 0.5, None).unwrap();
        journal.append("c", &failed(), 0.0, 0.0).unwrap();
        journal.note("d", 1, 0.25, None).unwrap();
        journal.note("d", 1, 0.25, Some(Ended::Failed)).unwrap();
        journal.note("d", 2, 0.25, None).unwrap();
        journal.note("e", 1, 1.0, None).unwrap();
        journal.note("e", 1, 1.0, Some(Ended::Timeout)).unwrap();
        journal.note("e", 2, 1.0, None).unwrap();
        journal.note("f", 1, 2.0, None).unwrap();
        journal.note("f", 1, 2.0, None).unwrap();
        journal.append("f", &failed(), 0.0, 0.0).unwrap();
        drop(journal);
        let (journal, replay) = Journal::open(&path, "run-1").unwrap();
        let held = 0.125 + 0.25 + 2.0 + 2.0;
        assert!((replay.uncertain_usd - held).abs() < 1e-12, "{}", replay.uncertain_usd);
        // `e` finished by the rerun (its timed-out attempt on its line) takes back none of
        // what the first run's attempts may have cost: the rewrite carried it over.
        journal.append("e", &failed(), 0.0, 1.0).unwrap();
        drop(journal);
        let (journal, replay) = Journal::open(&path, "run-1").unwrap();
        assert!(
            (replay.uncertain_usd - (held + 1.0)).abs() < 1e-12,
            "{}",
            replay.uncertain_usd
        );
        journal.remove();
        assert!(!path.exists());
    }
}
