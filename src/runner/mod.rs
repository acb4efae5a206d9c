//! Runs jobs through their providers — fast, cheap, and without losing a call.
//!
//! Each job goes: journal (finished in an interrupted run?) → cache → budget reservation →
//! adaptive concurrency → rate limits → provider, with retries and then fallbacks. Each job ends
//! as an [`Outcome`]: a response or an error. Nothing is dropped: a render error, a timeout, a
//! provider failure and a call the budget refused are all outcomes [`Ran`] counts.
//!
//! Jobs with the same request, provider and fallbacks (a baseline and candidate that render the
//! same prompt, say) are sent once; the others share the answer as cache hits.

pub mod batch;
mod budget;
mod cache;
mod call_error;
pub mod interrupt;
mod journal;
mod limiter;
mod progress;
pub mod remeasure;
mod retry;
pub mod stow;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use sha2::{Digest, Sha256};

pub use cache::cache_dir;
pub use call_error::CallError;
pub use progress::ProgressMode;

use crate::plan::{self, Job, JudgeTag};
use crate::providers::pricing::PriceTable;
use crate::providers::{Provider, ProviderError, Request, Response};
use budget::{Reservation, SpendCap};
use cache::Cache;
use journal::Journal;
use limiter::{Adaptive, Bucket, Signal};

/// A provider ready to call, with its limits.
pub struct Endpoint {
    pub provider: Arc<dyn Provider>,
    /// The most calls in flight at once; the runner lowers it while the provider answers 429.
    pub concurrency: usize,
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub max_retries: u32,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    /// What identifies this endpoint's answers in the cache besides the request: the
    /// provider type and its address (never its key).
    pub cache_identity: String,
}

/// How one job ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub result: Result<Response, CallError>,
    /// Measured around the call when the provider does not report its own.
    pub latency_ms: Option<f64>,
    pub cached: bool,
    /// Attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// The endpoint that produced the result.
    pub provider: Option<crate::results::Name>,
    pub fell_back: bool,
    /// Sent through its provider's batch API (`run --batch`): billed at the batch rate, and
    /// without a latency (the batch's wait says nothing of the model's speed).
    pub batched: bool,
}

impl Outcome {
    /// What this outcome was paid, a call to `model` at `prices`: nothing for an answer that
    /// needed no call (a cache hit, an identical job's) or for a failed call; a batched call
    /// at the batch rate; an unpriced model at 0.
    pub fn paid(&self, prices: &PriceTable, model: &str) -> f64 {
        match &self.result {
            Ok(response) if !self.cached => prices.billed(model, &response.usage, self.batched).unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

#[cfg(test)]
impl Outcome {
    /// A call `provider` answered with `text` on the first try.
    pub(crate) fn answered(text: &str, provider: &str) -> Outcome {
        Outcome {
            result: Ok(Response {
                text: text.to_owned(),
                usage: crate::providers::Usage::default(),
                latency_ms: None,
            }),
            latency_ms: None,
            cached: false,
            attempts: 1,
            provider: Some(provider.into()),
            fell_back: false,
            batched: false,
        }
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where responses are cached; `None` (`--no-cache`) sends every call.
    pub cache_dir: Option<PathBuf>,
    /// Where finished jobs are journaled for resuming; `None` keeps no journal.
    pub journal: Option<PathBuf>,
    /// Names the run in the journal: a journal of another run is replaced. See [`run_identity`].
    pub run_identity: String,
    /// Hard cap on spend; a call that could pass it is not sent.
    pub max_usd: Option<f64>,
    pub progress: ProgressMode,
    /// The first retry waits up to this long (doubling per retry, with full jitter, to 30 s).
    pub backoff_base: Duration,
    /// Ctrl-C stops sending and lets the calls in flight finish (the command line); see
    /// [`interrupt`].
    pub interruptible: bool,
    /// `run --batch`: jobs of providers with a batch API go through it ([`batch`]).
    pub batch: Option<batch::BatchOptions>,
    /// How long to wait for another run's hold on the cache before giving up; see
    /// [`lock_wait`].
    pub lock_wait: Duration,
    /// Writes each outcome to this scratch file as its call ends instead of holding it
    /// ([`stow`]): a large run then holds sixteen bytes a call until scoring reads the outcomes
    /// back. Weak: the run that made it decides how long it lives (with [`Ran::stowed`], which
    /// holds it to the end of scoring), not the runner.
    pub stow: Option<std::sync::Weak<crate::output::Scratch>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cache_dir: None,
            journal: None,
            run_identity: String::new(),
            max_usd: None,
            progress: ProgressMode::Quiet,
            backoff_base: Duration::from_millis(500),
            interruptible: false,
            batch: None,
            lock_wait: MIN_LOCK_WAIT,
            stow: None,
        }
    }
}

/// A run waits at least this long for another run's hold on the response cache.
pub const MIN_LOCK_WAIT: Duration = Duration::from_secs(10 * 60);

/// How long a run of `jobs` waits for another run in the repository to let go of the cache:
/// [`MIN_LOCK_WAIT`], or longer when a plan like this one could take longer even if every call
/// ran to its timeout (per endpoint, its calls in waves of its concurrency, each wave one
/// timeout; endpoints run side by side). The other run is most often this same plan started
/// twice (a re-run job, two pushes), so a holder past that bound is stuck, not slow.
pub fn lock_wait(jobs: &[Job], endpoints: &BTreeMap<String, Endpoint>) -> Duration {
    let mut calls: BTreeMap<&str, u32> = BTreeMap::new();
    for job in jobs {
        *calls.entry(job.provider.as_str()).or_default() += 1;
    }
    let longest = calls
        .iter()
        .filter_map(|(name, &n)| {
            let e = endpoints.get(*name)?;
            let waves = n.div_ceil(u32::try_from(e.concurrency.max(1)).unwrap_or(u32::MAX));
            Some(e.timeout.saturating_mul(waves))
        })
        .max()
        .unwrap_or_default();
    longest.max(MIN_LOCK_WAIT)
}

/// What a run of the jobs did: every job's outcome, and what it took.
#[derive(Clone, Debug, Default)]
pub struct Ran {
    /// In the jobs' order; empty when they are in [`Ran::stowed`].
    pub outcomes: Vec<Outcome>,
    /// Sends repeated after a retryable failure (fallbacks are not retries).
    pub retries: usize,
    /// Failures that were rate limits (see `retry::is_rate_limit` for how one is recognised).
    pub rate_limited: usize,
    /// Outcomes answered from the cache, or by an identical job of this run.
    pub cache_hits: usize,
    /// Outcomes replayed from the journal of an interrupted run.
    pub resumed: usize,
    /// Outcomes answered by a fallback provider.
    pub fallbacks: usize,
    /// Jobs that ended with a call sent or answered without one (the rest were not run).
    pub finished: usize,
    /// Jobs the budget's cap did not let be sent (their derived jobs not counted).
    pub refused: usize,
    /// Some job was not sent because the budget cap would have been exceeded.
    pub budget_exhausted: bool,
    /// The run's settled spend at list prices so far: every batch through its [`Runner`] and the
    /// resumed run's calls (cache hits are free).
    pub spent_usd: f64,
    /// The upper bounds of attempts whose cost could not be known (timed out; answered but
    /// unreadable, `ProviderError::Unsettled`; a batch whose
    /// results could not be read), held against the cap as if billed and not in `spent_usd`.
    pub uncertain_usd: f64,
    /// Ctrl-C stopped the run: the jobs not yet sent were not run, the journal is kept.
    pub interrupted: bool,
    /// The jobs the outcomes asked for (judge calls), in the order they finished.
    pub derived: Vec<Derived>,
    /// Batches (`run --batch`) still running when `--batch-timeout` ran out, as
    /// `` `provider`: id (status) ``; their jobs ended as [`CallError::BatchPending`].
    pub batches_pending: Vec<String>,
    /// With [`Options::stow`]: every outcome, in the file as it arrived (`outcomes` is empty).
    pub stowed: Option<stow::Stowed>,
    /// Per job, how its outcome was measured ([`remeasure::mark`]), in the jobs' order.
    pub marks: Vec<u8>,
    /// Pairs measured again together ([`remeasure`]).
    pub remeasured: usize,
    /// What the calls replaced when their pairs were measured again were paid.
    pub replaced: crate::results::Replaced,
}

impl Ran {
    /// Adds what a later batch through the same runner ran (a sequential look): its outcomes
    /// after these, its judge calls naming their outputs by those positions. Outcomes either
    /// holds in a file are read back into memory first (`run` never stows a sequential run's,
    /// so this costs nothing there); fails only when the file cannot be read.
    pub fn absorb(&mut self, mut batch: Ran) -> std::io::Result<()> {
        self.unstow()?;
        batch.unstow()?;
        let offset = self.outcomes.len();
        self.derived.extend(batch.derived.into_iter().map(|mut d| {
            d.parent += offset;
            d
        }));
        self.outcomes.extend(batch.outcomes);
        self.marks.extend(batch.marks);
        self.remeasured += batch.remeasured;
        self.replaced.add(batch.replaced);
        self.retries += batch.retries;
        self.rate_limited += batch.rate_limited;
        self.cache_hits += batch.cache_hits;
        self.resumed += batch.resumed;
        self.fallbacks += batch.fallbacks;
        self.finished += batch.finished;
        self.refused += batch.refused;
        self.budget_exhausted |= batch.budget_exhausted;
        // The runner's spend is the run's so far, every earlier batch included.
        self.spent_usd = batch.spent_usd;
        self.uncertain_usd = batch.uncertain_usd;
        Ok(())
    }

    /// Moves outcomes held in a file into [`Ran::outcomes`]; an error names the file.
    fn unstow(&mut self) -> std::io::Result<()> {
        if let Some(stowed) = &mut self.stowed {
            let outcomes = stowed
                .take_all()
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", stowed.describe())))?;
            self.outcomes = outcomes;
            self.stowed = None;
        }
        Ok(())
    }
}

/// A digest of the job list: the journal's run identity. Runs of the same plan share it.
pub fn run_identity(jobs: &[Job], endpoints: &BTreeMap<String, Endpoint>) -> String {
    let mut h = Sha256::new();
    for job in jobs {
        h.update(job_key(job, endpoints).map_or_else(|| "-".to_owned(), |k| k.hex()));
        h.update([0]);
    }
    hex::encode(h.finalize())
}

/// Runs every job through a runner of its own; the outcomes are in the jobs' order.
pub async fn run(
    jobs: &[Job],
    endpoints: &BTreeMap<String, Endpoint>,
    prices: &PriceTable,
    options: &Options,
) -> Result<Ran, crate::error::Error> {
    run_then(jobs, endpoints, prices, options, &|_, _, _| Vec::new()).await
}

/// A job another job's outcome asked for (a judge call on an output), and how it ended.
#[derive(Clone, Debug)]
pub struct Derived {
    /// The index of the job whose output it is about (the root, through any retries).
    pub parent: usize,
    /// Which judgement of that output it is.
    pub tag: JudgeTag,
    pub job: Job,
    pub outcome: Outcome,
    /// Replayed from the journal of an interrupted run (counted in [`Ran::resumed`]).
    pub replayed: bool,
}

/// What a finished job asks to run next: `then(parent, asked, outcome)` is called once per
/// outcome, `asked` saying whose: one of the given jobs (`parent`), or a job an outcome asked
/// for, with its tag (so a malformed judge reply can ask for its own retry).
pub type Then<'a> = dyn Fn(usize, Asked<'_>, &Outcome) -> Vec<(JudgeTag, Job)> + 'a;

/// The job whose outcome [`Then`] is told of.
#[derive(Clone, Copy, Debug)]
pub enum Asked<'j> {
    /// One of the given jobs, or an identical one following it.
    Given(&'j Job),
    /// A job an outcome asked for, and its tag.
    Derived(&'j JudgeTag, &'j Job),
}

/// One batch of jobs through a runner of its own: [`Runner::run_then`] on a new [`Runner`],
/// whose journal is removed when the batch finishes uninterrupted. A command that runs several
/// batches (sequential looks) keeps one [`Runner`] instead, so the cap, the cache, the journal
/// and the limits hold across them. Fails only as [`Runner::new`] does.
pub async fn run_then(
    jobs: &[Job],
    endpoints: &BTreeMap<String, Endpoint>,
    prices: &PriceTable,
    options: &Options,
    then: &Then<'_>,
) -> Result<Ran, crate::error::Error> {
    let runner = Runner::new(endpoints, prices, options.clone())?;
    let ran = runner.run_then(&mut jobs.to_vec(), then).await;
    if !ran.interrupted {
        runner.finish();
    }
    Ok(ran)
}

/// What one run shares across all its batches (sequential looks, A/A arms): the spending cap,
/// the response cache, the journal and its replay, and each endpoint's adaptive concurrency
/// and rate limits. A run builds one, sends every batch through it, and calls
/// [`Runner::finish`] once its outputs are written; dropped without `finish` (an error, an
/// interruption), it keeps the journal, so a rerun replays every call it had finished.
pub struct Runner<'a> {
    endpoints: &'a BTreeMap<String, Endpoint>,
    throttles: BTreeMap<&'a str, Throttle>,
    prices: &'a PriceTable,
    options: Options,
    cache: Option<Cache>,
    budget: SpendCap,
    journal: Option<Journal>,
    /// Outcomes of the interrupted run being resumed, by job key, not yet handed out: a key
    /// sent twice (two retimed jobs with one request) was journaled twice and replays twice.
    replayed: Mutex<HashMap<String, Vec<Outcome>>>,
    journal_warned: AtomicBool,
    cache_warned: AtomicBool,
    /// Held for the runner's life: another run on the same cache waits for it.
    _cache_lock: Option<cache::RunLock>,
    /// The output folder's lock, held while the run writes its journal and outputs there.
    _out_lock: Option<cache::RunLock>,
}

impl<'a> Runner<'a> {
    /// Takes the cache's run lock (waiting while another run in the repository holds it, at
    /// most `options.lock_wait`), then opens the journal (replaying a resumed run's calls and
    /// counting their spend against the cap) and the cache. A lock still held after the wait
    /// is a run error: nothing was sent.
    pub fn new(
        endpoints: &'a BTreeMap<String, Endpoint>,
        prices: &'a PriceTable,
        options: Options,
    ) -> Result<Runner<'a>, crate::error::Error> {
        let cache_lock = match options.cache_dir.as_deref() {
            None => None,
            Some(dir) => taken(
                cache::lock(dir, options.lock_wait),
                |path, waited| {
                    crate::error::Error::run_with_hint(
                        format!(
                            "another promptgate run held the response cache's lock {} for {waited}; this run sent nothing",
                            path.display()
                        ),
                        format!(
                            "the lock is released when the run holding it exits: find that process (e.g. `fuser {}`) and let it finish or stop it, or run with --cache-dir DIR (another cache) or --no-cache",
                            path.display()
                        ),
                    )
                },
                |e| {
                    eprintln!(
                        "warning: cannot lock the response cache {}: {e}; a run started meanwhile may send the same calls",
                        dir.display()
                    );
                },
            )?,
        };
        // The output folder holds the run's journal and outputs: one run writes into it at a
        // time (two would share the journal, and the first to finish would remove it).
        let out_lock = match options.journal.as_deref().and_then(std::path::Path::parent) {
            None => None,
            Some(dir) => {
                let dir = if dir.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    dir
                };
                taken(
                    cache::lock_folder(
                        dir,
                        options.lock_wait,
                        "as both would write this folder's journal and outputs",
                    ),
                    |path, waited| {
                        crate::error::Error::run_with_hint(
                            format!(
                                "another promptgate run held the output folder {} for {waited}; this run sent nothing",
                                path.display()
                            ),
                            "give this run another --out, or let the other run finish",
                        )
                    },
                    |e| {
                        eprintln!(
                            "warning: cannot lock the output folder {}: {e}; a run started meanwhile may write into it too",
                            dir.display()
                        );
                    },
                )?
            }
        };
        let (journal, replay) = match &options.journal {
            Some(path) => match Journal::open(path, &options.run_identity) {
                Ok((journal, replay)) => (Some(journal), replay),
                Err(e) => {
                    eprintln!(
                        "warning: cannot keep the journal {}: {e}; this run cannot be resumed",
                        path.display()
                    );
                    (None, journal::Replay::default())
                }
            },
            None => (None, journal::Replay::default()),
        };
        Ok(Runner {
            endpoints,
            throttles: endpoints
                .iter()
                .map(|(name, e)| (name.as_str(), Throttle::new(e)))
                .collect(),
            prices,
            cache: options.cache_dir.as_deref().map(Cache::new),
            budget: SpendCap::new(options.max_usd, replay.spent_usd, replay.uncertain_usd),
            journal,
            replayed: Mutex::new(replay.outcomes),
            journal_warned: AtomicBool::new(false),
            cache_warned: AtomicBool::new(false),
            _cache_lock: cache_lock,
            _out_lock: out_lock,
            options,
        })
    }

    /// The run's settled spend so far, a resumed run's included.
    pub fn spent_usd(&self) -> f64 {
        self.budget.spent()
    }

    /// The run is over and its outputs are written: its journal has served its purpose.
    /// Removing it keeps a later `--no-cache` rerun of the same plan from replaying old answers.
    pub fn finish(mut self) {
        if let Some(journal) = self.journal.take() {
            journal.remove();
        }
    }

    /// The request as `endpoint` is sent it. Under a spending cap, one that sets no output
    /// limit, to a provider that sends none of its own, is sent with the
    /// [`plan::UNBOUNDED_OUTPUT_TOKENS`] its reservation assumed: the provider would otherwise
    /// let a long answer cost more than the cap reserved for it. The cache keys the request as
    /// sent, so a capped answer is never served to a run without the limit.
    fn as_sent<'r>(&self, request: &'r Request, endpoint: &Endpoint) -> std::borrow::Cow<'r, Request> {
        if self.options.max_usd.is_some()
            && request.max_tokens.is_none()
            && !request.embed
            && endpoint.provider.default_output_limit().is_none()
        {
            let mut sent = request.clone();
            sent.max_tokens = Some(plan::UNBOUNDED_OUTPUT_TOKENS);
            std::borrow::Cow::Owned(sent)
        } else {
            std::borrow::Cow::Borrowed(request)
        }
    }

    /// Lets go of the response cache's index: for a run whose last batch is done (the rest of
    /// the run holds the scored calls instead). A later batch loads it again.
    pub fn unload_cache(&self) {
        if let Some(cache) = &self.cache {
            cache.unload();
        }
    }

    /// Whether outcomes of a resumed run are left to replay.
    fn replaying(&self) -> bool {
        !self.replayed.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }

    /// Takes one replayed outcome for `key`, if the resumed run finished one.
    fn take_replayed(&self, key: &JobKey) -> Option<Outcome> {
        let mut replayed = self.replayed.lock().unwrap_or_else(|e| e.into_inner());
        if replayed.is_empty() {
            return None;
        }
        let key = key.hex();
        let outcomes = replayed.get_mut(&key)?;
        // Oldest first: a key finished twice (a pair measured again, `remeasure`) replays in the
        // order it ran, so the resumed run meets the first measurement where the first did.
        let outcome = (!outcomes.is_empty()).then(|| outcomes.remove(0));
        if outcomes.is_empty() {
            replayed.remove(&key);
        }
        outcome
    }

    /// Records a finished job in the journal; it counts as finished only once this returns.
    fn record(&self, key: &str, outcome: &Outcome, cost_usd: f64) {
        self.record_with_uncertain(key, outcome, cost_usd, 0.0);
    }

    /// Notes in the journal, under a spending cap, attempt `attempt` of the job `key` with
    /// `upper_usd` reserved: about to be sent (`ended` `None`) or failed. A kill before its
    /// answer is journaled leaves the note, and the rerun's cap holds a sent or timed-out
    /// attempt as possibly billed (`journal::Sending`).
    fn note_attempt(&self, key: &JobKey, attempt: u32, upper_usd: f64, ended: Option<journal::Ended>) {
        if self.options.max_usd.is_none() || upper_usd <= 0.0 {
            return;
        }
        if let Some(journal) = &self.journal
            && let Err(e) = journal.note(&key.hex(), attempt, upper_usd, ended)
            && !self.journal_warned.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "warning: cannot write the journal {}: {e}; this run cannot be resumed",
                journal.path().display()
            );
        }
    }

    /// [`Runner::record`] for a job some of whose attempts timed out: their upper bounds
    /// (`uncertain_usd`) are journaled with it, so a resumed run's cap holds them again.
    fn record_with_uncertain(&self, key: &str, outcome: &Outcome, cost_usd: f64, uncertain_usd: f64) {
        if let Some(journal) = &self.journal
            && let Err(e) = journal.append(key, outcome, cost_usd, uncertain_usd)
            && !self.journal_warned.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "warning: cannot write the journal {}: {e}; this run cannot be resumed",
                journal.path().display()
            );
        }
    }

    /// Runs every job; the outcomes are in the jobs' order. Each outcome may ask for more jobs
    /// through `then`: they run through the same cache, budget, rate limits, retries and
    /// journal, and start as soon as the outcome that asked for them arrives, so judging
    /// overlaps generation. Identical derived jobs are sent once. Derived jobs are in
    /// [`Ran::derived`], in the order they finished.
    ///
    /// A job's rendered messages are let go of as soon as its outcome is settled (answered by
    /// a call of this run, or failed in a way a second send would not change): only
    /// [`remeasure`] sends a job again, and only a pair measured at two times. At a hundred
    /// thousand calls the messages are about 10 MB, which the calls' own buffers then reuse.
    pub async fn run_then(&self, jobs: &mut [Job], then: &Then<'_>) -> Ran {
        let endpoints = self.endpoints;
        // The outcomes known before any call: render errors, replayed jobs, batches' answers.
        let mut known: Vec<(usize, Outcome)> = Vec::new();

        // Sort the jobs: render errors end at once, finished ones replay, the first of identical
        // jobs (the leader) runs and the others (followers) take its answer. A job's key is
        // worked out again where it is needed, not held through the run (33 bytes a job).
        let followers = identical(jobs, endpoints);
        let mut following = followers.iter().map(|&(follower, _)| follower).peekable();
        // Indices of 32 bits, as a job's are (`plan::narrow`): a run holds one a job to send.
        let mut to_run: Vec<u32> = Vec::new();
        let mut resumed = 0;
        // Outcomes from the journal of an interrupted run: an answer among them was not measured
        // in this run (`remeasure::CACHED`).
        let mut replayed_at: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for (index, job) in jobs.iter().enumerate() {
            if job.request.is_err() {
                known.push((index, not_sent(not_rendered(job))));
                continue;
            }
            if following.next_if_eq(&index).is_some() {
                continue;
            }
            let replayed = if self.replaying() {
                job_key(job, endpoints).and_then(|key| self.take_replayed(&key))
            } else {
                None
            };
            match replayed {
                Some(outcome) => {
                    resumed += 1;
                    replayed_at.insert(index);
                    known.push((index, outcome));
                }
                None => to_run.push(crate::plan::narrow(index)),
            }
        }
        remeasure::alternate(jobs, &mut to_run);
        let mut followers_of: HashMap<usize, Vec<usize>> = HashMap::new();
        for &(follower, leader) in &followers {
            followers_of.entry(leader).or_default().push(follower);
        }

        let watch = interrupt::Watch::new(self.options.interruptible);
        // A batch run sends its batchable jobs as batches first; their outcomes then ask for
        // their judge calls like replayed ones, and those go the normal way (judging a batch's
        // outputs in a second batch would double the wait for a saving on the judge alone).
        let mut batched = batch::Batched::default();
        if let Some(options) = &self.options.batch {
            let (to_batch, rest): (Vec<u32>, Vec<u32>) = to_run
                .iter()
                .partition(|&&index| batch::goes_in_batch(&jobs[index as usize], self.endpoints));
            if !to_batch.is_empty() {
                to_run = rest;
                let to_batch: Vec<usize> = to_batch.into_iter().map(|i| i as usize).collect();
                batched = batch::run(self, options, &watch, &*jobs, &to_batch).await;
                known.append(&mut batched.outcomes);
            }
        }
        let context = Context {
            runner: self,
            watch: &watch,
            retries: AtomicUsize::new(0),
            rate_limited: AtomicUsize::new(0),
            budget_exhausted: AtomicBool::new(batched.budget_exhausted),
        };
        let progress = progress::Progress::new(self.options.progress, jobs.len());
        let done = AtomicUsize::new(jobs.len() - to_run.len());
        let cached_so_far = AtomicUsize::new(known.iter().filter(|(_, o)| o.cached).count() + followers.len());
        if self.options.batch.is_some() {
            // The batches' calls are done before the rest start: count them in the progress.
            progress.update(done.load(Ordering::Relaxed), 0, cached_so_far.load(Ordering::Relaxed));
        }
        let width = 2 * endpoints.values().map(|e| e.concurrency.max(1)).sum::<usize>().max(1);

        // One job, sent (and journaled by `run_job` the moment it finished); `root` says whether
        // it counts in the progress.
        let finish = |job: &Job, key: JobKey, root: bool| {
            let (context, progress, done, cached_so_far, watch) = (&context, &progress, &done, &cached_so_far, &watch);
            let job = job.clone();
            async move {
                if watch.stop_requested() {
                    return not_sent(CallError::Interrupted {
                        waiting_to_retry: false,
                    });
                }
                let outcome = run_job(context, &job, &key).await;
                if root {
                    if outcome.cached {
                        cached_so_far.fetch_add(1, Ordering::Relaxed);
                    }
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.update(
                        finished,
                        context.retries.load(Ordering::Relaxed),
                        cached_so_far.load(Ordering::Relaxed),
                    );
                }
                outcome
            }
        };

        enum Finished {
            Root(usize, Outcome),
            Derived(Box<Pending>, JobKey, Outcome),
        }
        let mut kept = stow::Kept::new(self.options.stow.as_ref(), jobs.len());
        let follower_count = |leader: usize| followers_of.get(&leader).map_or(0, Vec::len);
        let mut running = futures::stream::FuturesUnordered::new();
        let mut roots = to_run.into_iter().map(|index| index as usize);
        let mut derived: Vec<Derived> = Vec::new();
        // Derived jobs to start; those in flight by key (with the identical ones waiting on them);
        // those finished by key (an identical later one takes the answer).
        let mut queue: Vec<Pending> = Vec::new();
        let mut in_flight: HashMap<JobKey, Vec<Pending>> = HashMap::new();
        let mut finished_by_key: HashMap<JobKey, Outcome> = HashMap::new();
        let ask = |parent: usize, asked: Asked<'_>, outcome: &Outcome, queue: &mut Vec<Pending>| {
            let before = queue.len();
            queue.extend(
                then(parent, asked, outcome)
                    .into_iter()
                    .map(|(tag, job)| Pending { parent, tag, job }),
            );
            progress.judge_asked(queue.len() - before);
        };
        // The outcomes known before any call ask at once (in the jobs' order), and are then kept
        // as the calls' are.
        known.sort_unstable_by_key(|(index, _)| *index);
        // A pair one of whose calls the journal gave back may be sent again whatever the other's
        // outcome: then every job keeps its messages.
        let mut letting_go = remeasure::LettingGo::new(replayed_at.is_empty(), jobs.len());
        for (index, outcome) in known {
            ask(index, Asked::Given(&jobs[index]), &outcome, &mut queue);
            for &follower in followers_of.get(&index).into_iter().flatten() {
                ask(
                    follower,
                    Asked::Given(&jobs[follower]),
                    &as_follower(&outcome),
                    &mut queue,
                );
            }
            let replayed = replayed_at.contains(&index);
            kept.put(index, outcome, follower_count(index));
            if replayed {
                let mark = &mut kept.marks[index];
                *mark = remeasure::replayed(*mark);
            }
            letting_go.settled(jobs, index, &kept.marks, followers_of.get(&index));
        }
        drop(replayed_at);

        // Ctrl-C is noticed within a tick, so the user hears at once that the calls in flight are
        // being finished, however long they take.
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut announced = false;
        loop {
            // Start what was asked for, answering identical and journaled jobs without a call.
            while let Some(pending) = queue.pop() {
                let Some(key) = job_key(&pending.job, endpoints) else {
                    let outcome = not_sent(not_rendered(&pending.job));
                    ask(
                        pending.parent,
                        Asked::Derived(&pending.tag, &pending.job),
                        &outcome,
                        &mut queue,
                    );
                    derived.push(pending.into_derived(outcome, false));
                    progress.judge_done();
                    continue;
                };
                let known = match finished_by_key.get(&key) {
                    Some(leader) => Some((as_follower(leader), false)),
                    None => self.take_replayed(&key).map(|outcome| (outcome, true)),
                };
                if let Some((outcome, replayed)) = known {
                    resumed += usize::from(replayed);
                    ask(
                        pending.parent,
                        Asked::Derived(&pending.tag, &pending.job),
                        &outcome,
                        &mut queue,
                    );
                    derived.push(pending.into_derived(outcome, replayed));
                    progress.judge_done();
                } else if let Some(waiting) = in_flight.get_mut(&key) {
                    waiting.push(pending);
                } else {
                    in_flight.insert(key, Vec::new());
                    let run = finish(&pending.job, key, false);
                    running.push(
                        async move {
                            let outcome = run.await;
                            Finished::Derived(Box::new(pending), key, outcome)
                        }
                        .boxed_local(),
                    );
                }
            }
            while running.len() < width + in_flight.len() {
                let Some(index) = roots.next() else { break };
                let key = job_key(&jobs[index], endpoints).unwrap_or_default();
                let run = finish(&jobs[index], key, true);
                running.push(async move { Finished::Root(index, run.await) }.boxed_local());
            }
            if running.is_empty() {
                break;
            }
            tokio::select! {
                next = running.next() => match next {
                    Some(Finished::Root(index, outcome)) => {
                        ask(index, Asked::Given(&jobs[index]), &outcome, &mut queue);
                        for &follower in followers_of.get(&index).into_iter().flatten() {
                            ask(follower, Asked::Given(&jobs[follower]), &as_follower(&outcome), &mut queue);
                        }
                        // Asked and judged on: from here on only scoring reads it.
                        kept.put(index, outcome, follower_count(index));
                        letting_go.settled(jobs, index, &kept.marks, followers_of.get(&index));
                    }
                    Some(Finished::Derived(pending, key, outcome)) => {
                        let pending = *pending;
                        for waiting in in_flight.remove(&key).unwrap_or_default() {
                            let copy = as_follower(&outcome);
                            ask(waiting.parent, Asked::Derived(&waiting.tag, &waiting.job), &copy, &mut queue);
                            derived.push(waiting.into_derived(copy, false));
                            progress.judge_done();
                        }
                        ask(pending.parent, Asked::Derived(&pending.tag, &pending.job), &outcome, &mut queue);
                        finished_by_key.insert(key, outcome.clone());
                        derived.push(pending.into_derived(outcome, false));
                        progress.judge_done();
                    }
                    None => break,
                },
                _ = tick.tick(), if !announced => {
                    if watch.stop_requested() {
                        announced = true;
                        eprintln!(
                            "\npromptgate: interrupted; finishing the calls in flight so none is lost \
                             (Ctrl-C again to quit now)"
                        );
                    }
                }
            }
        }
        drop(running);
        progress.finish();
        let interrupted = watch.stop_requested();

        for (follower, leader) in followers {
            kept.follow(leader, follower);
        }
        let (cache_hits, fallbacks, finished, refused) = (kept.cached, kept.fell_back, kept.finished, kept.refused);
        let marks = std::mem::take(&mut kept.marks);
        let (outcomes, stowed) = kept.finish();
        let ran = Ran {
            retries: context.retries.load(Ordering::Relaxed),
            rate_limited: context.rate_limited.load(Ordering::Relaxed),
            cache_hits,
            resumed,
            fallbacks,
            finished,
            refused,
            budget_exhausted: context.budget_exhausted.load(Ordering::Relaxed),
            spent_usd: self.budget.spent(),
            uncertain_usd: self.budget.uncertain(),
            interrupted,
            outcomes,
            derived,
            batches_pending: batched.pending,
            stowed,
            marks,
            remeasured: 0,
            replaced: crate::results::Replaced::default(),
        };
        drop(watch);
        ran
    }
}

/// A derived job waiting to start or to be answered.
struct Pending {
    parent: usize,
    tag: JudgeTag,
    job: Job,
}

impl Pending {
    fn into_derived(self, outcome: Outcome, replayed: bool) -> Derived {
        Derived {
            parent: self.parent,
            tag: self.tag,
            job: self.job,
            outcome,
            replayed,
        }
    }
}

/// The answer an identical job's call gives: nothing was sent for this one.
fn as_follower(leader: &Outcome) -> Outcome {
    let mut outcome = leader.clone();
    outcome.attempts = 0;
    outcome.cached = outcome.result.is_ok();
    outcome
}

/// A job's identity: the SHA-256 of its request's cache key at its provider and its fallback
/// chain. Held as the digest (a run holds one per job); the journal and a batch's `custom_id`
/// spell it in hex.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct JobKey([u8; 32]);

impl JobKey {
    pub(crate) fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The digest's first sixteen bytes: what [`identical`] sorts jobs by.
    fn prefix(&self) -> [u8; 16] {
        let mut first = [0; 16];
        first.copy_from_slice(&self.0[..16]);
        first
    }

    /// The seed a provider's randomness takes for this job: the digest's first eight bytes.
    fn seed(&self) -> u64 {
        let mut first = [0; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }
}

/// The jobs another job of the plan answers, as `(follower, leader)` in the followers' order:
/// jobs alike in their key, the first of them in the plan the leader. A job to be timed in this
/// run (`retime`) is neither. Found by sorting the keys' first sixteen bytes (20 bytes a job
/// while it sorts, where a table of the keys and a map of the leaders held about 70), each
/// match then checked on the whole key.
fn identical(jobs: &[Job], endpoints: &BTreeMap<String, Endpoint>) -> Vec<(usize, usize)> {
    identical_by(jobs, |job| job_key(job, endpoints))
}

/// [`identical`], with jobs keyed by `key`.
fn identical_by(jobs: &[Job], key: impl Fn(&Job) -> Option<JobKey>) -> Vec<(usize, usize)> {
    let mut sorted: Vec<([u8; 16], u32)> = Vec::with_capacity(jobs.len());
    for (index, job) in jobs.iter().enumerate().filter(|(_, job)| !job.retime) {
        if let Some(key) = key(job) {
            sorted.push((key.prefix(), crate::plan::narrow(index)));
        }
    }
    // By prefix, then by index: each run of one prefix starts with its first job in the plan.
    sorted.sort_unstable();
    let mut followers = Vec::new();
    for alike in sorted.chunk_by(|a, b| a.0 == b.0).filter(|run| run.len() > 1) {
        let mut leaders: Vec<(JobKey, usize)> = Vec::new();
        for &(_, index) in alike {
            let index = index as usize;
            let whole = key(&jobs[index]).unwrap_or_default();
            match leaders.iter().find(|(k, _)| *k == whole) {
                Some(&(_, leader)) => followers.push((index, leader)),
                None => leaders.push((whole, index)),
            }
        }
    }
    followers.sort_unstable();
    followers
}

/// Identifies a job: the cache key of its request at its provider, plus its fallback chain.
/// `None` for a job whose prompt did not render.
fn job_key(job: &Job, endpoints: &BTreeMap<String, Endpoint>) -> Option<JobKey> {
    let request = job.request.as_ref().ok()?;
    let identity = endpoints.get(&*job.provider).map_or_else(
        || format!("unconfigured provider {}", job.provider),
        |e| e.cache_identity.clone(),
    );
    let mut h = Sha256::new();
    h.update(cache::key(&identity, request));
    for name in std::iter::once(&job.provider).chain(job.fallbacks.iter()) {
        h.update([0]);
        h.update(name.as_bytes());
    }
    Some(JobKey(h.finalize().into()))
}

/// One batch's view of its runner: the shared state, and what this batch counts.
struct Context<'a> {
    runner: &'a Runner<'a>,
    retries: AtomicUsize,
    rate_limited: AtomicUsize,
    budget_exhausted: AtomicBool,
    /// Ctrl-C: stop sending, and stop waiting to retry.
    watch: &'a interrupt::Watch,
}

/// One endpoint's pace: adaptive concurrency, and its request and token buckets per minute.
struct Throttle {
    concurrency: Adaptive,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl Throttle {
    fn new(e: &Endpoint) -> Self {
        Throttle {
            concurrency: Adaptive::new(e.concurrency),
            requests: e.requests_per_minute.map(Bucket::per_minute),
            tokens: e.tokens_per_minute.map(Bucket::per_minute),
        }
    }
}

/// Runs one job through its providers in order. A job that finished (answered, from the cache,
/// or failed for good) is in the journal before its concurrency slot is given back, so at
/// most the calls in flight can be lost to a kill; one the budget refused or Ctrl-C stopped is
/// not journaled, and a rerun sends it.
async fn run_job(cx: &Context<'_>, job: &Job, key: &JobKey) -> Outcome {
    let runner = cx.runner;
    let Ok(request) = &job.request else {
        return not_sent(not_rendered(job));
    };
    let seed = key.seed();
    let chain: Vec<&crate::results::Name> = std::iter::once(&job.provider).chain(job.fallbacks.iter()).collect();
    let mut reservation: Option<Reservation> = None;
    let mut uncertain = 0.0;
    let mut attempts = 0;
    let mut errors: Vec<(String, CallError)> = Vec::new();
    let mut last_provider = None;
    for (position, &name) in chain.iter().enumerate() {
        let (Some(endpoint), Some(throttle)) = (runner.endpoints.get(&**name), runner.throttles.get(&**name)) else {
            errors.push((
                name.to_string(),
                CallError::NotConfigured {
                    provider: name.to_string(),
                },
            ));
            continue;
        };
        let answered = |result, latency_ms, cached, attempts| Outcome {
            result,
            latency_ms,
            cached,
            attempts,
            provider: Some(name.clone()),
            fell_back: position > 0,
            batched: false,
        };
        let sent = runner.as_sent(request, endpoint);
        let cache_key = cache::key(&endpoint.cache_identity, &sent);
        let cached = if job.retime {
            None
        } else {
            match &runner.cache {
                Some(cache) => cache.get(&cache_key).await,
                None => None,
            }
        };
        // An answer that took longer than this endpoint waits is not this endpoint's to give:
        // here the call would have timed out (a candidate whose only change was a shorter
        // `timeout_ms` was answered from a warm cache and passed, where sent, every call timed
        // out). It is sent instead, and its own outcome stands.
        let within_ms = endpoint.timeout.as_secs_f64() * 1000.0;
        let cached = cached.filter(|(_, latency)| latency.is_none_or(|ms| ms <= within_ms));
        if let Some((response, latency)) = cached {
            if let Some(r) = reservation.take() {
                runner.budget.settle(r, 0.0);
            }
            let outcome = answered(Ok(response), latency, true, attempts);
            runner.record_with_uncertain(&key.hex(), &outcome, 0.0, uncertain);
            return outcome;
        }
        let upper = plan::request_upper_bound_usd(request, runner.prices).unwrap_or(0.0);
        if reservation.is_none() {
            match runner.budget.reserve(upper).await {
                Some(r) => reservation = Some(r),
                // Nothing sent yet: the call is not sent, and a rerun sends it.
                None if attempts == 0 => {
                    cx.budget_exhausted.store(true, Ordering::Relaxed);
                    return not_sent(CallError::BudgetRefused {
                        cap_usd: runner.options.max_usd.unwrap_or(0.0),
                    });
                }
                // A provider before this one was sent the call and timed out (its worst case
                // is held): the call failed with what was tried, and is journaled as such.
                None => {
                    errors.push((
                        name.to_string(),
                        CallError::BudgetRefused {
                            cap_usd: runner.options.max_usd.unwrap_or(0.0),
                        },
                    ));
                    break;
                }
            }
        }
        last_provider = Some(name.clone());
        let mut spending = Spending {
            reservation: &mut reservation,
            upper,
            uncertain: &mut uncertain,
            key,
        };
        match send(cx, endpoint, throttle, &sent, seed, &mut attempts, &mut spending).await {
            Err(SendError::Interrupted) => {
                if let Some(r) = reservation.take() {
                    runner.budget.settle(r, 0.0);
                }
                // Not finished: a rerun sends it again, so it stays out of the journal.
                return not_sent(CallError::Interrupted { waiting_to_retry: true });
            }
            Ok((mut response, latency, permit)) => {
                // Outputs are redacted before they are cached, journaled or recorded: a model or
                // an `exec` program may echo a key it was given.
                if crate::secrets::needs_redaction(&response.text) {
                    response.text = crate::secrets::redact(&response.text);
                }
                let cost = runner.prices.cost(&request.model, &response.usage).unwrap_or(0.0);
                if let Some(r) = reservation.take() {
                    runner.budget.settle(r, cost);
                }
                let outcome = answered(Ok(response), latency, false, attempts);
                // Journaled the moment the answer is here, while the call still holds its slot:
                // a kill from now on loses nothing that was paid for. The cache comes after,
                // as it may wait for the disk.
                runner.record_with_uncertain(&key.hex(), &outcome, cost, uncertain);
                permit.finish(Signal::Success);
                if let (Some(cache), Ok(response)) = (&runner.cache, &outcome.result)
                    && let Err(e) = cache.put(&cache_key, response, latency).await
                    && !runner.cache_warned.swap(true, Ordering::Relaxed)
                {
                    eprintln!("warning: cannot write the response cache: {e}; later runs will call again");
                }
                return outcome;
            }
            Err(SendError::Provider(e)) => errors.push((name.to_string(), CallError::from_provider(&e))),
        }
    }
    if let Some(r) = reservation.take() {
        // A failed call is not billed by the providers we know (a timed-out attempt may be: its
        // reservation was kept as uncertain when it timed out, in `send`).
        runner.budget.settle(r, 0.0);
    }
    let error = if chain.len() > 1 {
        CallError::Fallbacks { failures: errors }
    } else {
        errors.pop().map_or(CallError::NotRun, |(_, e)| e)
    };
    let outcome = Outcome {
        result: Err(error),
        latency_ms: None,
        cached: false,
        attempts,
        provider: last_provider,
        fell_back: false,
        batched: false,
    };
    runner.record_with_uncertain(&key.hex(), &outcome, 0.0, uncertain);
    outcome
}

/// A run lock taken (`Some`); not to be had at all (`None`, once `unlockable` has said why);
/// or held by another run for the whole wait: the error `held` words from the lock's path and
/// the wait, before anything is sent.
fn taken(
    lock: Result<cache::RunLock, cache::LockError>,
    held: impl FnOnce(&std::path::Path, String) -> crate::error::Error,
    unlockable: impl FnOnce(&std::io::Error),
) -> Result<Option<cache::RunLock>, crate::error::Error> {
    match lock {
        Ok(lock) => Ok(Some(lock)),
        Err(cache::LockError::Held { path, waited }) => Err(held(
            &path,
            crate::format::duration(u64::try_from(waited.as_millis()).unwrap_or(u64::MAX)),
        )),
        Err(cache::LockError::Io(e)) => {
            unlockable(&e);
            Ok(None)
        }
    }
}

/// Why [`send`] gave up.
enum SendError {
    /// The provider's last failure.
    Provider(ProviderError),
    /// Ctrl-C while waiting to retry: the call is not finished.
    Interrupted,
}

/// The money a call holds against the cap while [`send`] tries it: one attempt's upper bound,
/// and the upper bounds of its attempts that timed out (journaled with the call).
struct Spending<'r> {
    reservation: &'r mut Option<Reservation>,
    upper: f64,
    uncertain: &'r mut f64,
    /// The job's key, for the journal's note of each attempt sent under a cap.
    key: &'r JobKey,
}

/// Sends `request` to one endpoint until it answers, fails permanently, or runs out of retries.
/// An answer comes with its concurrency slot, which the caller gives back once it has
/// journaled it. An attempt that timed out may still be billed in full: its reservation is kept
/// against the cap for good (`SpendCap::settle_uncertain`), and a retry reserves anew; one the
/// cap has no room for is not sent (the call ends with the timeout).
async fn send<'t>(
    cx: &Context<'_>,
    endpoint: &Endpoint,
    throttle: &'t Throttle,
    request: &Request,
    seed: u64,
    attempts: &mut u32,
    spending: &mut Spending<'_>,
) -> Result<(Response, Option<f64>, limiter::Permit<'t>), SendError> {
    let tokens = crate::tokens::estimate_messages(&request.messages) + plan::estimate_output_tokens(request.max_tokens);
    let mut retries = 0;
    loop {
        let permit = throttle.concurrency.acquire().await;
        if let Some(bucket) = &throttle.requests {
            bucket.take(1.0).await;
        }
        if let Some(bucket) = &throttle.tokens {
            bucket.take(tokens as f64).await;
        }
        *attempts += 1;
        cx.runner.note_attempt(spending.key, *attempts, spending.upper, None);
        let started = tokio::time::Instant::now();
        let call = async {
            if request.embed {
                endpoint.provider.embed(request).await
            } else {
                endpoint.provider.complete(request).await
            }
        };
        let result = tokio::time::timeout(endpoint.timeout, call).await;
        let error = match result {
            Ok(Ok(response)) => {
                let latency = response
                    .latency_ms
                    .unwrap_or_else(|| started.elapsed().as_secs_f64() * 1000.0);
                return Ok((response, Some(latency), permit));
            }
            Ok(Err(e)) => e,
            Err(_) => ProviderError::Timeout {
                after_ms: u64::try_from(endpoint.timeout.as_millis()).unwrap_or(u64::MAX),
            },
        };
        // May be billed in full: a timeout, or an answer that could not be read.
        let timed_out = matches!(error, ProviderError::Timeout { .. } | ProviderError::Unsettled { .. });
        let ended = if timed_out {
            journal::Ended::Timeout
        } else {
            journal::Ended::Failed
        };
        cx.runner
            .note_attempt(spending.key, *attempts, spending.upper, Some(ended));
        if timed_out && let Some(r) = spending.reservation.take() {
            *spending.uncertain += r.usd();
            cx.runner.budget.settle_uncertain(r);
        }
        let rate_limited = retry::is_rate_limit(&error);
        if rate_limited {
            cx.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
        permit.finish(if rate_limited {
            Signal::RateLimited
        } else {
            Signal::Other
        });
        if !retry::is_retryable(&error) || retries >= endpoint.max_retries {
            return Err(SendError::Provider(error));
        }
        if spending.reservation.is_none() {
            match cx.runner.budget.reserve(spending.upper).await {
                Some(r) => *spending.reservation = Some(r),
                // No room for another attempt: the call ends with its timeout (an error the
                // error rate counts), not as a call the cap refused to send.
                None => return Err(SendError::Provider(error)),
            }
        }
        retries += 1;
        cx.retries.fetch_add(1, Ordering::Relaxed);
        let retry_after = match &error {
            ProviderError::Transient { retry_after_ms, .. } | ProviderError::RateLimited { retry_after_ms, .. } => {
                *retry_after_ms
            }
            _ => None,
        };
        let wait = retry::backoff(cx.runner.options.backoff_base, retries, seed, retry_after);
        // A long wait (a provider's `Retry-After`) must not outlast a Ctrl-C.
        let deadline = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < deadline {
            if cx.watch.stop_requested() {
                return Err(SendError::Interrupted);
            }
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + Duration::from_millis(100))).await;
        }
    }
}

/// A call that was never sent, and why.
pub(crate) fn not_sent(error: CallError) -> Outcome {
    Outcome {
        result: Err(error),
        latency_ms: None,
        cached: false,
        attempts: 0,
        provider: None,
        fell_back: false,
        batched: false,
    }
}

/// A job whose prompt did not render: why.
fn not_rendered(job: &Job) -> CallError {
    CallError::NotRendered {
        message: job.request.as_ref().err().cloned().unwrap_or_default(),
    }
}
