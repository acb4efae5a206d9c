//! Where a run keeps its jobs' outcomes until it returns them ([`Kept`]): in memory, or — with
//! [`super::Options::stow`] — written to a file as they arrive. A large run then holds about
//! sixteen bytes a call where it held the outcome (a hundred and four bytes) and its answer,
//! and scoring reads each outcome back when it scores that call.
//!
//! Each outcome is appended to the file as one unbuffered write of a record, so an outcome whose
//! write returned is in the file. A write that fails keeps that outcome, and every later one,
//! in memory (with one warning): nothing is lost, the run only holds more. The file is the
//! run's own scratch ([`Scratch`]: removed when its last holder goes, or by the next run when
//! this one is killed); the journal and the response cache keep their own copies as before.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::Arc;

use super::{CallError, Outcome, as_follower, not_sent};
use crate::output::Scratch;
use crate::providers::{Response, Usage};
use crate::results::Name;

/// The outcomes of one batch of jobs, in the file and (a failed write's) in memory: by index,
/// where each one's record is. The file goes when the last holder of it does.
#[derive(Clone, Debug)]
pub struct Stowed {
    scratch: Option<Arc<Scratch>>,
    at: Vec<Option<At>>,
    /// Outcomes not in the file: their write, or an earlier one, failed.
    held: HashMap<usize, Outcome>,
    /// The providers the records name, by position: a run has a few.
    providers: Vec<Name>,
}

/// Where one outcome's record is. A follower (an identical job, answered by another's call)
/// reads its leader's record as [`as_follower`] makes it.
#[derive(Clone, Copy, Debug)]
struct At {
    offset: u64,
    len: u32,
    follower: bool,
}

impl Stowed {
    /// How many outcomes: one per job of the batch.
    pub fn len(&self) -> usize {
        self.at.len()
    }

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The file, as messages name it.
    pub fn describe(&self) -> String {
        self.scratch.as_deref().map_or_else(String::new, Scratch::to_string)
    }

    /// Puts `outcome` in place of outcome `index`, held in memory (a run replaces a few).
    pub(super) fn hold(&mut self, index: usize, outcome: Outcome) {
        self.held.insert(index, outcome);
    }

    /// Every outcome, read back in order.
    pub fn take_all(&mut self) -> std::io::Result<Vec<Outcome>> {
        (0..self.len()).map(|index| self.take(index)).collect()
    }

    /// Outcome `index`, read back (a job that never ended was not run).
    pub fn take(&mut self, index: usize) -> std::io::Result<Outcome> {
        if let Some(outcome) = self.held.remove(&index) {
            return Ok(outcome);
        }
        let at = self.at.get(index).copied().flatten();
        read(self.scratch.as_deref(), at, &self.providers, index)
    }

    /// Every outcome in order, each read back as [`Stowed::take`] reads it when it is asked
    /// for. Where they lie is given back as they go (`allocator::Shrinking`): sixteen bytes a
    /// call, which stayed whole until the last call was scored (16 MB at a million calls).
    pub fn into_outcomes(self) -> impl Iterator<Item = std::io::Result<Outcome>> {
        let Stowed {
            scratch,
            at,
            mut held,
            providers,
        } = self;
        let places = crate::allocator::Shrinking::new(at).enumerate();
        places.map(move |(index, at)| match held.remove(&index) {
            Some(outcome) => Ok(outcome),
            None => read(scratch.as_deref(), at, &providers, index),
        })
    }
}

/// Outcome `index`'s record, `at` in `scratch`; none: a job that never ended, not run.
fn read(scratch: Option<&Scratch>, at: Option<At>, providers: &[Name], index: usize) -> std::io::Result<Outcome> {
    let (Some(scratch), Some(at)) = (scratch, at) else {
        return Ok(not_sent(CallError::NotRun));
    };
    let mut bytes = vec![0; at.len as usize];
    super::cache::read_exact_at(scratch.file(), &mut bytes, at.offset)?;
    let outcome =
        decode(&bytes, providers).ok_or_else(|| std::io::Error::other(format!("record {index} does not read back")))?;
    Ok(if at.follower { as_follower(&outcome) } else { outcome })
}

/// A batch's outcomes as its jobs end, and the counts [`super::Ran`] reports of them.
pub(super) struct Kept {
    place: Place,
    /// Answered from the cache or by an identical job's call.
    pub(super) cached: usize,
    pub(super) fell_back: usize,
    /// Sent, or answered without a call.
    pub(super) finished: usize,
    /// Not sent: the budget's cap would have been exceeded.
    pub(super) refused: usize,
    /// Per job, how it was measured (`remeasure::CACHED`, `remeasure::MAY_PASS`, else 0): a
    /// byte a job, read when the outcomes are in the file.
    pub(super) marks: Vec<u8>,
}

enum Place {
    Memory(Vec<Option<Outcome>>),
    File(Stow),
}

impl Kept {
    /// For `count` jobs: in the file `stow` names while it is there, else in memory.
    pub(super) fn new(stow: Option<&std::sync::Weak<Scratch>>, count: usize) -> Kept {
        let place = match stow.and_then(std::sync::Weak::upgrade) {
            Some(scratch) => Place::File(Stow::new(&scratch, count)),
            None => Place::Memory(vec![None; count]),
        };
        Kept {
            place,
            cached: 0,
            fell_back: 0,
            finished: 0,
            refused: 0,
            marks: vec![0; count],
        }
    }

    /// Outcome `index`, which `followers` identical jobs will share (counted here, with it).
    pub(super) fn put(&mut self, index: usize, outcome: Outcome, followers: usize) {
        let with_followers = 1 + followers;
        let answered = usize::from(outcome.result.is_ok()) * followers;
        self.cached += usize::from(outcome.cached) + answered;
        self.fell_back += usize::from(outcome.fell_back) * with_followers;
        self.finished += usize::from(outcome.attempts > 0 || outcome.cached) + answered;
        if outcome.result.as_ref().is_err_and(CallError::is_budget_refusal) {
            self.refused += with_followers;
        }
        self.marks[index] = super::remeasure::mark(&outcome);
        match &mut self.place {
            Place::Memory(outcomes) => outcomes[index] = Some(outcome),
            Place::File(stow) => stow.put(index, outcome),
        }
    }

    /// Outcome `follower` is its leader's, as an identical job's (not run if the leader was not).
    pub(super) fn follow(&mut self, leader: usize, follower: usize) {
        // The leader's call is the follower's: measured as the leader was (and counted as
        // resumed once, the leader's).
        self.marks[follower] = self.marks[leader] & !super::remeasure::REPLAYED;
        match &mut self.place {
            Place::Memory(outcomes) => {
                outcomes[follower] = Some(
                    outcomes[leader]
                        .as_ref()
                        .map_or_else(|| not_sent(CallError::NotRun), as_follower),
                );
            }
            Place::File(stow) => stow.follow(leader, follower),
        }
    }

    /// The outcomes in memory (every job's, in order), or those in the file.
    pub(super) fn finish(self) -> (Vec<Outcome>, Option<Stowed>) {
        match self.place {
            Place::Memory(outcomes) => (
                outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or_else(|| not_sent(CallError::NotRun)))
                    .collect(),
                None,
            ),
            Place::File(stow) => (Vec::new(), Some(stow.stowed)),
        }
    }
}

/// The writing end, for one batch of jobs.
struct Stow {
    /// False once a write failed: the remaining outcomes stay in memory.
    writing: bool,
    written: u64,
    stowed: Stowed,
    /// One record's bytes, reused.
    buffer: Vec<u8>,
}

impl Stow {
    /// Outcomes of `count` jobs go to the end of `scratch`, which only this stow writes while
    /// it lives.
    fn new(scratch: &Arc<Scratch>, count: usize) -> Stow {
        // Appends land at the end whatever an earlier stow left there (the file's offset is
        // shared): the offsets count from there.
        let end = scratch.file().metadata().map(|m| m.len());
        if let Err(e) = &end {
            eprintln!("warning: cannot read {scratch}: {e}; the run holds every answer in memory");
        }
        Stow {
            writing: end.is_ok(),
            written: end.unwrap_or(0),
            stowed: Stowed {
                scratch: Some(Arc::clone(scratch)),
                at: vec![None; count],
                held: HashMap::new(),
                providers: Vec::new(),
            },
            buffer: Vec::new(),
        }
    }

    /// Moves outcome `index` into the file.
    fn put(&mut self, index: usize, outcome: Outcome) {
        let (true, Some(scratch)) = (self.writing, self.stowed.scratch.as_deref()) else {
            self.stowed.held.insert(index, outcome);
            return;
        };
        let provider = outcome.provider.as_ref().map(|name| {
            let providers = &mut self.stowed.providers;
            providers.iter().position(|p| p == name).unwrap_or_else(|| {
                providers.push(name.clone());
                providers.len() - 1
            })
        });
        self.buffer.clear();
        encode(&outcome, provider, &mut self.buffer);
        // An error is JSON, which has no NaN or infinity: one that would not read back (and
        // any record too long to place) stays in memory.
        let reads_back = outcome.result.is_ok() || decode(&self.buffer, &self.stowed.providers).is_some();
        let (true, Ok(len)) = (reads_back, u32::try_from(self.buffer.len())) else {
            self.stowed.held.insert(index, outcome);
            return;
        };
        match scratch.file().write_all(&self.buffer) {
            Ok(()) => {
                self.stowed.at[index] = Some(At {
                    offset: self.written,
                    len,
                    follower: false,
                });
                self.written += u64::from(len);
            }
            Err(e) => {
                eprintln!("warning: cannot write {scratch}: {e}; the run holds the remaining answers in memory");
                self.writing = false;
                self.stowed.held.insert(index, outcome);
            }
        }
    }

    fn follow(&mut self, leader: usize, follower: usize) {
        let stowed = &mut self.stowed;
        if let Some(outcome) = stowed.held.get(&leader) {
            let copy = as_follower(outcome);
            stowed.held.insert(follower, copy);
        } else if let Some(at) = stowed.at[leader] {
            stowed.at[follower] = Some(At { follower: true, ..at });
        }
    }
}

// A record: one byte of flags, the attempts, then what the flags say is there — the latency,
// the provider, the usage and the provider's own latency — and last the answer's text (a
// success) or the error as JSON. Numbers are little-endian, read back to the bit.
const OK: u8 = 1;
const CACHED: u8 = 2;
const FELL_BACK: u8 = 4;
const BATCHED: u8 = 8;
const LATENCY: u8 = 16;
const PROVIDER: u8 = 32;
const OWN_LATENCY: u8 = 64;

fn encode(outcome: &Outcome, provider: Option<usize>, out: &mut Vec<u8>) {
    let own_latency = outcome.result.as_ref().ok().and_then(|r| r.latency_ms);
    let flag = |set: bool, bit: u8| if set { bit } else { 0 };
    out.push(
        flag(outcome.result.is_ok(), OK)
            | flag(outcome.cached, CACHED)
            | flag(outcome.fell_back, FELL_BACK)
            | flag(outcome.batched, BATCHED)
            | flag(outcome.latency_ms.is_some(), LATENCY)
            | flag(provider.is_some(), PROVIDER)
            | flag(own_latency.is_some(), OWN_LATENCY),
    );
    out.extend_from_slice(&outcome.attempts.to_le_bytes());
    if let Some(ms) = outcome.latency_ms {
        out.extend_from_slice(&ms.to_le_bytes());
    }
    if let Some(p) = provider {
        out.extend_from_slice(&(p as u64).to_le_bytes());
    }
    match &outcome.result {
        Ok(response) => {
            for n in [response.usage.input, response.usage.cached_input, response.usage.output] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            if let Some(ms) = own_latency {
                out.extend_from_slice(&ms.to_le_bytes());
            }
            out.extend_from_slice(response.text.as_bytes());
        }
        // A call error serializes as plain data: nothing to fail on.
        Err(error) => serde_json::to_writer(out, error).unwrap_or_default(),
    }
}

fn decode(bytes: &[u8], providers: &[Name]) -> Option<Outcome> {
    let (&flags, rest) = bytes.split_first()?;
    let mut r = Reader(rest);
    let has = |bit: u8| flags & bit != 0;
    let attempts = u32::from_le_bytes(r.bytes()?);
    let latency_ms = if has(LATENCY) { Some(r.f64()?) } else { None };
    let provider = match has(PROVIDER) {
        true => Some(providers.get(usize::try_from(r.u64()?).ok()?)?.clone()),
        false => None,
    };
    let result = if has(OK) {
        let usage = Usage {
            input: r.u64()?,
            cached_input: r.u64()?,
            output: r.u64()?,
        };
        let own = if has(OWN_LATENCY) { Some(r.f64()?) } else { None };
        Ok(Response {
            text: String::from_utf8(r.0.to_vec()).ok()?,
            usage,
            latency_ms: own,
        })
    } else {
        Err(serde_json::from_slice(r.0).ok()?)
    };
    Some(Outcome {
        result,
        latency_ms,
        cached: has(CACHED),
        attempts,
        provider,
        fell_back: has(FELL_BACK),
        batched: has(BATCHED),
    })
}

/// What is left of a record to read.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, tail) = self.0.split_first_chunk::<N>()?;
        self.0 = tail;
        Some(*head)
    }

    fn u64(&mut self) -> Option<u64> {
        self.bytes().map(u64::from_le_bytes)
    }

    fn f64(&mut self) -> Option<f64> {
        self.bytes().map(f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Usage;

    fn answered(text: &str) -> Outcome {
        Outcome::answered(text, "sim")
    }

    /// Outcomes of every shape: answers (empty, unicode, with the provider's own latency and
    /// usage), each flag, two providers and none, and errors of several kinds.
    fn outcomes() -> Vec<Outcome> {
        let mut own = answered("ünïcødé, \"quoted\"\nand a new line");
        if let Ok(r) = &mut own.result {
            r.latency_ms = Some(0.1 + 0.2);
            r.usage = Usage {
                input: 1 << 40,
                cached_input: 7,
                output: 123,
            };
        }
        own.latency_ms = Some(812.000_000_000_1);
        own.attempts = 3;
        let flagged = Outcome {
            cached: true,
            fell_back: true,
            batched: true,
            provider: Some("backup".into()),
            ..answered("")
        };
        let error = |error: CallError, attempts: u32| Outcome {
            result: Err(error),
            attempts,
            ..answered("")
        };
        vec![
            answered("first answer"),
            own,
            flagged,
            error(CallError::BudgetRefused { cap_usd: 0.25 }, 0),
            error(CallError::Timeout { after_ms: 30_000 }, 2),
            // Not a refusal, whatever its words say: refusals are counted by kind.
            error(
                CallError::Permanent {
                    message: "budget exceeded: the budget's hard cap would have been exceeded".to_owned(),
                },
                1,
            ),
            Outcome {
                provider: None,
                ..error(
                    CallError::Permanent {
                        message: "bad request: ünïcødé".to_owned(),
                    },
                    1,
                )
            },
        ]
    }

    fn same(a: &Outcome, b: &Outcome) -> bool {
        // Debug prints every field, each number to the bit (the shortest text that reads back).
        format!("{a:?}") == format!("{b:?}")
    }

    /// What a batch of `count` jobs keeps: the outcomes put out of order, as calls end, and
    /// one follower of the answer with its own latency.
    fn keep(kept: &mut Kept, outcomes: &[Outcome]) {
        for index in [2, 0, 5, 6, 3, 1, 4] {
            kept.put(index, outcomes[index].clone(), usize::from(index == 1));
        }
        kept.follow(1, outcomes.len());
        // A follower of a job that never ended was not run either.
        kept.follow(outcomes.len() + 1, outcomes.len() + 2);
    }

    #[test]
    fn outcomes_go_to_the_file_and_come_back_as_memory_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::create(dir.path(), "answers").unwrap());
        let path = scratch.path().to_owned();
        let outcomes = outcomes();
        let count = outcomes.len() + 3;
        let mut in_memory = Kept::new(None, count);
        let mut in_file = Kept::new(Some(&Arc::downgrade(&scratch)), count);
        keep(&mut in_memory, &outcomes);
        keep(&mut in_file, &outcomes);
        let counts = |k: &Kept| (k.cached, k.fell_back, k.finished, k.refused);
        // Cached: the flagged one and the follower; fallen back: the flagged one; finished:
        // all but the refused one (not sent); refused: that one.
        assert_eq!(counts(&in_memory), (2, 1, 7, 1));
        assert_eq!(counts(&in_file), counts(&in_memory));
        let (memory, none) = in_memory.finish();
        assert!(none.is_none());
        let (empty, stowed) = in_file.finish();
        let mut stowed = stowed.unwrap();
        assert!(empty.is_empty(), "nothing is held in memory");
        assert!(stowed.held.is_empty());
        assert_eq!(stowed.len(), count);
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
        // Read in order, as scoring reads them, the same as one at a time.
        let in_order: Vec<Outcome> = stowed.clone().into_outcomes().map(Result::unwrap).collect();
        assert_eq!(in_order.len(), count);
        for (index, kept) in memory.iter().enumerate() {
            let read = stowed.take(index).unwrap();
            assert!(same(&read, kept), "outcome {index}: {read:?} against {kept:?}");
            assert!(same(&in_order[index], kept), "outcome {index} in order");
        }
        for (index, outcome) in outcomes.iter().enumerate() {
            assert!(same(&memory[index], outcome), "outcome {index} as put");
        }
        let follower = &memory[outcomes.len()];
        assert!(same(follower, &as_follower(&outcomes[1])));
        assert_eq!((follower.attempts, follower.cached), (0, true));
        for never in &memory[outcomes.len() + 1..] {
            assert!(matches!(never.result, Err(CallError::NotRun)));
        }

        // A second batch through the same file: its offsets start where the first's ended.
        let mut again = Kept::new(Some(&Arc::downgrade(&scratch)), 1);
        again.put(0, answered("second batch"), 0);
        let mut second = again.finish().1.unwrap();
        assert_eq!(second.take(0).unwrap().result.unwrap().text, "second batch");
        assert!(
            same(&stowed.take(0).unwrap(), &outcomes[0]),
            "the first batch reads the same"
        );
        drop((scratch, stowed, second));
        assert!(!path.exists(), "the file goes with its last holder");
    }

    #[test]
    fn a_record_that_does_not_read_back_is_an_error_not_a_guess() {
        let providers = [Name::new("sim")];
        let mut record = Vec::new();
        encode(&outcomes()[1], Some(0), &mut record);
        assert!(decode(&record, &providers).is_some());
        // Cut inside the numbers, a provider it does not know, an error that is not one.
        assert!(decode(&record[..9], &providers).is_none());
        assert!(decode(&record, &[]).is_none());
        let mut error = Vec::new();
        encode(&outcomes()[3], None, &mut error);
        error.truncate(error.len() - 1);
        assert!(decode(&error, &providers).is_none());
        assert!(decode(&[], &providers).is_none());
    }

    #[test]
    fn an_error_json_cannot_hold_stays_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::create(dir.path(), "answers").unwrap());
        let mut kept = Kept::new(Some(&Arc::downgrade(&scratch)), 3);
        let refused = |cap_usd: f64| Outcome {
            result: Err(CallError::BudgetRefused { cap_usd }),
            attempts: 0,
            ..answered("")
        };
        kept.put(0, refused(f64::NAN), 1);
        kept.put(2, answered("after it"), 0);
        kept.follow(0, 1);
        assert_eq!(kept.refused, 2, "the refusal and the job that shared it");
        let mut stowed = kept.finish().1.unwrap();
        assert_eq!(stowed.held.len(), 2, "the refusal and its follower stay in memory");
        let in_order: Vec<Outcome> = stowed.clone().into_outcomes().map(Result::unwrap).collect();
        assert!(matches!(in_order[1].result, Err(CallError::BudgetRefused { cap_usd }) if cap_usd.is_nan()));
        assert_eq!(in_order[2].result.as_ref().unwrap().text, "after it");
        for index in [0, 1] {
            let cap = match stowed.take(index).unwrap().result {
                Err(CallError::BudgetRefused { cap_usd }) => cap_usd,
                other => panic!("{other:?}"),
            };
            assert!(cap.is_nan());
        }
        assert_eq!(
            stowed.take(2).unwrap().result.unwrap().text,
            "after it",
            "later ones still go to the file"
        );
    }

    #[test]
    fn an_unnamed_scratch_file_leaves_nothing_in_the_folder_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::unnamed(dir.path(), "the answers").unwrap());
        let mut kept = Kept::new(Some(&Arc::downgrade(&scratch)), 2);
        kept.put(1, answered("two, longer"), 0);
        kept.put(0, answered("one"), 0);
        // On Windows the file keeps a name while open and goes on close.
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file has no name, so a run killed outright leaves nothing behind"
        );
        let mut stowed = kept.finish().1.unwrap();
        let texts = [0, 1].map(|i| stowed.take(i).unwrap().result.unwrap().text);
        assert_eq!(texts, ["one", "two, longer"]);
        assert!(stowed.describe().contains(&dir.path().display().to_string()));
    }

    #[test]
    fn no_scratch_file_left_keeps_the_outcomes_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::create(dir.path(), "answers").unwrap());
        let weak = Arc::downgrade(&scratch);
        drop(scratch);
        let mut kept = Kept::new(Some(&weak), 1);
        kept.put(0, answered("kept"), 0);
        let (outcomes, stowed) = kept.finish();
        assert!(stowed.is_none());
        assert_eq!(outcomes[0].result.as_ref().unwrap().text, "kept");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_that_fails_keeps_that_outcome_and_every_later_one_in_memory() {
        // /dev/full fails every write with "no space left on device", as a full disk would.
        let full = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/full")
            .unwrap();
        let scratch = Arc::new(Scratch::over(full, std::path::Path::new("/dev/full")));
        let outcomes = outcomes();
        let mut kept = Kept::new(Some(&Arc::downgrade(&scratch)), outcomes.len() + 3);
        keep(&mut kept, &outcomes);
        let mut stowed = kept.finish().1.unwrap();
        assert_eq!(
            stowed.held.len(),
            outcomes.len() + 1,
            "every outcome put, and the follower"
        );
        for (index, outcome) in outcomes.iter().enumerate() {
            assert!(same(&stowed.take(index).unwrap(), outcome), "outcome {index}");
        }
        assert!(same(&stowed.take(outcomes.len()).unwrap(), &as_follower(&outcomes[1])));
        assert!(matches!(
            stowed.take(outcomes.len() + 2).unwrap().result,
            Err(CallError::NotRun)
        ));
    }
}
