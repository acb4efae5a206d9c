//! The runner against an in-memory provider that injects faults, in tokio's paused time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use super::*;
use crate::plan::Arm;
use crate::providers::{Message, Role, Usage};
use crate::stats::Rng;
use crate::suite::Price;

/// The spending cap, call by call.
mod cap;
/// Which jobs another identical job answers.
mod identical;
/// What the runner lets go of as the calls end.
mod letting_go;
/// One runner across batches, and the journal's bound after a kill.
mod one_runner;

/// `run --batch` against the fake batch APIs.
mod batch;

const TIMEOUT: Duration = Duration::from_secs(10);

/// What the fake provider does.
#[derive(Clone)]
enum Behaviour {
    Healthy,
    /// This share of first attempts fails, in the mix of ways real providers fail.
    Faults(f64),
    /// Every call fails permanently with this message.
    Down(&'static str),
    /// Answers this many calls, then never answers again.
    HangAfter(usize),
    /// Answers 429 to a call that finds more than this many in flight.
    ThrottleAbove(usize),
    /// Answers every call with a body that cannot be read (a 2xx cut short): billed, unread.
    Unreadable,
}

/// An in-memory provider, deterministic by the request's seed, counting what it sees.
struct Fake {
    behaviour: Behaviour,
    delay: Duration,
    /// Sends per request seed.
    calls: Mutex<HashMap<u64, u32>>,
    /// Answers per request seed.
    answered: Mutex<HashMap<u64, u32>>,
    in_flight: AtomicUsize,
    injected: AtomicUsize,
    /// How many answers had been given when each 429 was sent.
    throttled_at: Mutex<Vec<usize>>,
}

impl Fake {
    fn new(behaviour: Behaviour) -> Arc<Fake> {
        Arc::new(Fake {
            behaviour,
            delay: Duration::from_millis(100),
            calls: Mutex::default(),
            answered: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            injected: AtomicUsize::new(0),
            throttled_at: Mutex::default(),
        })
    }

    fn total_calls(&self) -> u32 {
        self.calls.lock().unwrap().values().sum()
    }

    fn total_answered(&self) -> usize {
        self.answered.lock().unwrap().values().sum::<u32>() as usize
    }
}

struct InFlight<'a>(&'a AtomicUsize);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl Provider for Fake {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
        let attempt = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(request.seed).or_default();
            *n += 1;
            *n
        };
        let in_flight = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = InFlight(&self.in_flight);
        let transient = |message: &str, retry_after_ms| {
            Err(ProviderError::Transient {
                message: message.to_owned(),
                retry_after_ms,
            })
        };
        let limited = |message: &str, retry_after_ms| {
            Err(ProviderError::RateLimited {
                message: message.to_owned(),
                retry_after_ms,
            })
        };
        match self.behaviour {
            Behaviour::Healthy => {}
            Behaviour::Faults(share) if attempt == 1 && Rng::new(request.seed).unit() < share => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                return match request.seed % 5 {
                    0 => limited("429 too many requests", Some(1500)),
                    1 => transient("500 internal server error", None),
                    2 => transient("503 service unavailable", None),
                    3 => {
                        tokio::time::sleep(TIMEOUT * 2).await;
                        transient("too late", None)
                    }
                    _ => transient("truncated JSON: EOF while parsing an object", None),
                };
            }
            Behaviour::Faults(_) => {}
            Behaviour::Down(message) => {
                return Err(ProviderError::Permanent {
                    message: message.to_owned(),
                });
            }
            Behaviour::HangAfter(k) if self.total_answered() >= k => std::future::pending::<()>().await,
            Behaviour::HangAfter(_) => {}
            Behaviour::ThrottleAbove(limit) if in_flight > limit => {
                self.throttled_at.lock().unwrap().push(self.total_answered());
                return limited("429 too many requests", None);
            }
            Behaviour::ThrottleAbove(_) => {}
            Behaviour::Unreadable => {
                return Err(ProviderError::Unsettled {
                    message: "fake returned a truncated or invalid JSON body".to_owned(),
                });
            }
        }
        tokio::time::sleep(self.delay).await;
        *self.answered.lock().unwrap().entry(request.seed).or_default() += 1;
        Ok(Response {
            text: format!("answer {}", request.seed),
            usage: Usage {
                input: 10,
                cached_input: 0,
                output: request.max_tokens.map_or(5, u64::from),
            },
            latency_ms: Some((request.seed % 997) as f64),
        })
    }
}

/// `n` jobs for provider `p` (falling back to `fallbacks`), one distinct request each; every
/// seventh job has a prompt that did not render.
fn jobs(n: usize, fallbacks: &[&str]) -> Vec<Job> {
    (0..n)
        .map(|i| Job {
            experiment: 0,
            case: crate::plan::narrow(i),
            arm: Arm::Candidate,
            repeat: 0,
            provider: "p".into(),
            fallbacks: fallbacks.iter().map(|f| crate::results::Name::from(*f)).collect(),
            retime: false,
            request: if i % 7 == 6 {
                Err(format!("rendering the candidate prompt failed: case {i}"))
            } else {
                Ok(crate::providers::Request::new(
                    std::sync::Arc::new(crate::providers::Settings {
                        max_tokens: Some(100),
                        ..crate::providers::Settings::of("m")
                    }),
                    vec![Message {
                        role: Role::User,
                        content: format!("case {i}").into(),
                    }]
                    .into(),
                    i as u64,
                ))
            },
        })
        .collect()
}

fn endpoint(provider: &Arc<Fake>, concurrency: usize) -> Endpoint {
    Endpoint {
        provider: provider.clone(),
        concurrency,
        timeout: TIMEOUT,
        max_retries: 3,
        requests_per_minute: None,
        tokens_per_minute: None,
        cache_identity: "fake".to_owned(),
    }
}

fn options() -> Options {
    Options {
        backoff_base: Duration::from_millis(1),
        ..Options::default()
    }
}

fn prices() -> PriceTable {
    // $1 per thousand tokens: a call of 10 + 100 tokens costs $0.11.
    PriceTable::new(&BTreeMap::from([(
        "m".to_owned(),
        Price {
            input: 1000.0,
            cached_input: None,
            output: 1000.0,
        },
    )]))
}

/// What one of the fake's answers (10 tokens in, 100 out) costs at [`prices`].
fn call_cost() -> f64 {
    let usage = Usage {
        input: 10,
        cached_input: 0,
        output: 100,
    };
    prices().cost("m", &usage).unwrap()
}

async fn run_with(jobs: &[Job], endpoints: BTreeMap<String, Endpoint>, options: &Options) -> Ran {
    run(jobs, &endpoints, &prices(), options)
        .await
        .expect("no other run holds the cache")
}

fn one(provider: &Arc<Fake>, concurrency: usize) -> BTreeMap<String, Endpoint> {
    BTreeMap::from([("p".to_owned(), endpoint(provider, concurrency))])
}

/// The parts of outcomes that must not depend on faults, caching or interruptions.
#[track_caller]
fn assert_same_answers(got: &[Outcome], expected: &[Outcome]) {
    assert_eq!(got.len(), expected.len());
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g.result, e.result, "job {i}");
        assert_eq!(g.latency_ms, e.latency_ms, "job {i}");
        assert_eq!((&g.provider, g.fell_back), (&e.provider, e.fell_back), "job {i}");
    }
}

#[tokio::test(start_paused = true)]
async fn injected_faults_are_retried_to_the_fault_free_answers() {
    let jobs = jobs(300, &[]);
    let clean = run_with(&jobs, one(&Fake::new(Behaviour::Healthy), 16), &options()).await;
    let faulty = Fake::new(Behaviour::Faults(0.2));
    let ran = run_with(&jobs, one(&faulty, 16), &options()).await;
    let injected = faulty.injected.load(Ordering::SeqCst);
    assert!((40..80).contains(&injected), "about 20% of ~257 requests: {injected}");
    assert_eq!(ran.retries, injected);
    assert_eq!(clean.retries, 0);
    assert_eq!(
        ran.rate_limited,
        jobs.iter()
            .filter(|j| j
                .request
                .as_ref()
                .is_ok_and(|r| r.seed % 5 == 0 && Rng::new(r.seed).unit() < 0.2))
            .count()
    );
    assert_same_answers(&ran.outcomes, &clean.outcomes);
    let sent: u32 = ran.outcomes.iter().map(|o| o.attempts).sum();
    assert_eq!(sent, faulty.total_calls());
    assert_eq!(
        ran.outcomes.iter().filter(|o| o.result.is_err()).count(),
        300 / 7,
        "only the render errors fail"
    );
    assert!(
        ran.outcomes
            .iter()
            .filter(|o| o.result.is_err())
            .all(|o| o.attempts == 0)
    );
}

#[tokio::test(start_paused = true)]
async fn permanent_failures_fail_fast_or_fall_back() {
    let jobs = jobs(30, &[]);
    let down = Fake::new(Behaviour::Down("401 invalid api key"));
    let ran = run_with(&jobs, one(&down, 4), &options()).await;
    for (job, outcome) in jobs.iter().zip(&ran.outcomes) {
        let Ok(request) = &job.request else { continue };
        assert_eq!(
            outcome.result,
            Err(CallError::Permanent {
                message: "401 invalid api key".to_owned()
            })
        );
        assert_eq!(
            outcome.result.as_ref().unwrap_err().to_string(),
            "provider error: 401 invalid api key"
        );
        assert_eq!(outcome.attempts, 1, "a permanent error is sent once");
        assert_eq!(down.calls.lock().unwrap()[&request.seed], 1);
    }
    assert_eq!(ran.retries, 0);

    let jobs = self::jobs(30, &["backup"]);
    let down = Fake::new(Behaviour::Down("503 region unavailable"));
    let backup = Fake::new(Behaviour::Healthy);
    let endpoints = BTreeMap::from([
        ("p".to_owned(), endpoint(&down, 4)),
        ("backup".to_owned(), endpoint(&backup, 4)),
    ]);
    let ran = run_with(&jobs, endpoints, &options()).await;
    let answered: Vec<&Outcome> = ran.outcomes.iter().filter(|o| o.result.is_ok()).collect();
    assert_eq!(answered.len(), 30 - 30 / 7);
    assert!(
        answered
            .iter()
            .all(|o| o.fell_back && o.provider.as_deref() == Some("backup") && o.attempts == 2)
    );
    assert_eq!(ran.fallbacks, answered.len());
}

#[tokio::test(start_paused = true)]
async fn transient_failures_exhaust_retries_then_fall_back() {
    let jobs = jobs(6, &["backup"]);
    let flaky = Fake::new(Behaviour::Faults(1.1)); // every first attempt fails
    let mut endpoints = one(&flaky, 2);
    endpoints.get_mut("p").unwrap().max_retries = 0;
    endpoints.insert("backup".to_owned(), endpoint(&Fake::new(Behaviour::Healthy), 2));
    let ran = run_with(&jobs, endpoints, &options()).await;
    assert!(
        ran.outcomes
            .iter()
            .all(|o| o.result.is_ok() && o.fell_back && o.attempts == 2)
    );
    assert_eq!((ran.fallbacks, ran.retries), (6, 0));
}

/// `jobs`, then each again as the baseline's: the same request, so the same call.
fn with_twins(mut jobs: Vec<Job>) -> Vec<Job> {
    let twins: Vec<Job> = jobs
        .iter()
        .cloned()
        .map(|j| Job {
            arm: Arm::Baseline,
            ..j
        })
        .collect();
    jobs.extend(twins);
    jobs
}

#[tokio::test(start_paused = true)]
async fn identical_jobs_are_sent_once() {
    let jobs = with_twins(jobs(6, &[]));
    let provider = Fake::new(Behaviour::Healthy);
    let ran = run_with(&jobs, one(&provider, 4), &options()).await;
    assert_eq!(provider.total_calls(), 6);
    assert_eq!(ran.cache_hits, 6);
    assert_same_answers(&ran.outcomes[6..], &ran.outcomes[..6]);
}

#[tokio::test(start_paused = true)]
async fn retimed_jobs_are_sent_though_cached_or_identical() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        cache_dir: Some(dir.path().to_owned()),
        ..options()
    };
    let provider = Fake::new(Behaviour::Healthy);
    // Warm the cache with six answers.
    run_with(&jobs(6, &[]), one(&provider, 4), &options).await;
    let warm = provider.total_calls();
    // The same six, plus identical twins, all to be timed in this run: twelve calls, none
    // served from the cache or shared, each with a latency of its own.
    let mut retimed = jobs(6, &[]);
    let twins: Vec<Job> = retimed
        .iter()
        .cloned()
        .map(|j| Job {
            arm: Arm::Baseline,
            ..j
        })
        .collect();
    retimed.extend(twins);
    for job in &mut retimed {
        job.retime = true;
    }
    let ran = run_with(&retimed, one(&provider, 4), &options).await;
    let sendable = retimed.iter().filter(|j| j.request.is_ok()).count() as u32;
    assert_eq!(provider.total_calls() - warm, sendable);
    assert_eq!(ran.cache_hits, 0);
    assert!(ran.outcomes.iter().all(|o| !o.cached));
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_run_resumes_without_repeating_a_finished_call() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        journal: Some(dir.path().join("journal.jsonl")),
        run_identity: "run-1".to_owned(),
        ..options()
    };
    let jobs = jobs(60, &[]);
    let uninterrupted = run_with(&jobs, one(&Fake::new(Behaviour::Healthy), 8), &Options::default()).await;

    let hanging = Fake::new(Behaviour::HangAfter(20));
    let mut endpoints = one(&hanging, 8);
    endpoints.get_mut("p").unwrap().timeout = Duration::from_secs(24 * 3600);
    let aborted = tokio::time::timeout(Duration::from_secs(3600), run_with(&jobs, endpoints, &options)).await;
    assert!(aborted.is_err(), "the run hangs and is dropped");
    let journal_path = options.journal.clone().unwrap();
    let interrupted_journal = std::fs::read_to_string(&journal_path).unwrap();
    let finished = hanging.total_answered();
    assert!((20..28).contains(&finished), "{finished}");

    let working = Fake::new(Behaviour::Healthy);
    let resumed = run_with(&jobs, one(&working, 8), &options).await;
    assert_eq!(resumed.resumed, finished);
    // The replayed answers were measured by the interrupted run, not this one: a pair with one
    // of them and a call this run failed is measured again (`remeasure`).
    use super::remeasure::{ANSWERED, CACHED, INTERRUPTED, REPLAYED};
    let replayed = resumed
        .marks
        .iter()
        .filter(|&&m| m == ANSWERED | CACHED | REPLAYED | INTERRUPTED)
        .count();
    assert_eq!(replayed, finished);
    for (seed, _) in hanging.answered.lock().unwrap().iter() {
        assert!(
            !working.calls.lock().unwrap().contains_key(seed),
            "request {seed} was finished and sent again"
        );
    }
    assert_eq!(working.total_calls() as usize, 60 - 60 / 7 - finished);
    assert_same_answers(&resumed.outcomes, &uninterrupted.outcomes);
    assert!(!journal_path.exists(), "a finished run removes its journal");

    // A journal of another run, or garbage, is replaced: everything runs.
    let torn_header = "{\"promptgate_journal\": 1, \"run_identity\": \"run-1\"\n{half a line";
    for (content, identity) in [
        (interrupted_journal.as_str(), "run-2"),
        (torn_header, "run-1"),
        ("garbage\n", "run-1"),
    ] {
        std::fs::write(&journal_path, content).unwrap();
        let options = Options {
            run_identity: identity.to_owned(),
            ..options.clone()
        };
        let provider = Fake::new(Behaviour::Healthy);
        let ran = run_with(&jobs, one(&provider, 8), &options).await;
        assert_eq!(
            (ran.resumed, provider.total_calls() as usize),
            (0, 60 - 60 / 7),
            "{content:?}"
        );
        assert_same_answers(&ran.outcomes, &uninterrupted.outcomes);
    }
}

#[tokio::test(start_paused = true)]
async fn a_journal_with_a_torn_last_line_replays_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let options = Options {
        journal: Some(path.clone()),
        run_identity: "r".to_owned(),
        ..options()
    };
    let jobs = jobs(10, &[]); // nine requests
    let hanging = Fake::new(Behaviour::HangAfter(5));
    let mut endpoints = one(&hanging, 1);
    endpoints.get_mut("p").unwrap().timeout = Duration::from_secs(24 * 3600);
    let aborted = tokio::time::timeout(Duration::from_secs(3600), run_with(&jobs, endpoints, &options)).await;
    assert!(aborted.is_err());
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.truncate(text.len() - 20); // as if killed mid-write
    std::fs::write(&path, text).unwrap();
    let provider = Fake::new(Behaviour::Healthy);
    let ran = run_with(&jobs, one(&provider, 2), &options).await;
    assert_eq!((ran.resumed, provider.total_calls()), (4, 5));
}

/// A key the interrupted run finished twice (its first measurement, failed, then the pair
/// measured again) replays oldest first: the resumed run meets the first measurement where
/// the first run did, and the second where it was measured again; nothing is sent.
#[tokio::test(start_paused = true)]
async fn a_key_journaled_twice_replays_in_the_order_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let mut job = jobs(1, &[]).remove(0);
    job.retime = true;
    let provider = Fake::new(Behaviour::Healthy);
    let endpoints = one(&provider, 1);
    let key = job_key(&job, &endpoints).unwrap().hex();
    {
        let (journal, _) = journal::Journal::open(&path, "r").unwrap();
        let failed = not_sent(CallError::Transient {
            message: "HTTP 503".to_owned(),
        });
        journal
            .append(&key, &Outcome { attempts: 4, ..failed }, 0.0, 0.0)
            .unwrap();
        journal
            .append(&key, &Outcome::answered("measured again", "p"), 0.11, 0.0)
            .unwrap();
    }
    let options = Options {
        journal: Some(path),
        run_identity: "r".to_owned(),
        ..options()
    };
    let ran = run_with(&[job.clone(), job], endpoints, &options).await;
    let text = |o: &Outcome| o.result.as_ref().map(|r| r.text.clone()).map_err(ToString::to_string);
    assert_eq!(
        ran.outcomes.iter().map(text).collect::<Vec<_>>(),
        [
            Err("transient provider error: HTTP 503".to_owned()),
            Ok("measured again".to_owned())
        ]
    );
    assert_eq!((ran.resumed, provider.total_calls()), (2, 0));
}

/// A run that keeps its outcomes in a file gives back, outcome for outcome and count for
/// count, what the same run keeps in memory: identical jobs, render errors and the cap's
/// refusals included.
#[tokio::test(start_paused = true)]
async fn a_stowed_run_gives_back_what_a_run_in_memory_keeps() {
    let jobs = with_twins(jobs(14, &[]));
    let upper = plan::request_upper_bound_usd(jobs[0].request.as_ref().unwrap(), &prices()).unwrap();
    let run = |stow: Option<std::sync::Weak<crate::output::Scratch>>| {
        let jobs = &jobs;
        async move {
            // One at a time: the cap refuses the same jobs in both runs.
            let options = Options {
                max_usd: Some(8.5 * upper),
                stow,
                ..options()
            };
            run_with(jobs, one(&Fake::new(Behaviour::Healthy), 1), &options).await
        }
    };
    let in_memory = run(None).await;
    let dir = tempfile::tempdir().unwrap();
    let scratch = Arc::new(crate::output::Scratch::create(dir.path(), "outcomes").unwrap());
    let mut stowed = run(Some(Arc::downgrade(&scratch))).await;
    assert!(stowed.outcomes.is_empty(), "every outcome is in the file");
    let whole = stowed.clone();
    let mut file = stowed.stowed.take().expect("the outcomes' file");
    let read: Vec<Outcome> = (0..jobs.len()).map(|i| file.take(i).unwrap()).collect();
    assert_same_answers(&read, &in_memory.outcomes);
    for (i, (s, m)) in read.iter().zip(&in_memory.outcomes).enumerate() {
        assert_eq!(
            (s.cached, s.attempts, s.batched),
            (m.cached, m.attempts, m.batched),
            "job {i}"
        );
    }
    // The counts each run reports are the ones its outcomes give.
    for (ran, outcomes) in [(&in_memory, &in_memory.outcomes[..]), (&stowed, &read[..])] {
        let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
        assert_eq!(ran.cache_hits, count(|o| o.cached));
        assert_eq!(ran.fallbacks, count(|o| o.fell_back));
        assert_eq!(ran.finished, count(|o| o.attempts > 0 || o.cached));
        assert_eq!(
            ran.refused,
            count(|o| o.result.as_ref().is_err_and(CallError::is_budget_refusal))
        );
    }
    assert!(
        in_memory.refused >= 4 && in_memory.cache_hits >= 8 && in_memory.finished >= 16,
        "the cap refused some jobs and their twins, and the twins of the rest shared their answers: {:?}",
        (in_memory.refused, in_memory.cache_hits, in_memory.finished)
    );
    // A stowed run that absorbs a later batch, or is absorbed, reads its outcomes back first,
    // and keeps them in their place: the batch in memory is cut short, so the order shows.
    let mut short = in_memory.clone();
    short.outcomes.truncate(5);
    let (n, counts) = (jobs.len(), |ran: &Ran| (ran.cache_hits, ran.finished, ran.refused));
    let sum = (in_memory.cache_hits * 2, in_memory.finished * 2, in_memory.refused * 2);
    let mut absorbing = whole.clone();
    absorbing.absorb(short.clone()).unwrap();
    assert!(absorbing.stowed.is_none());
    assert_same_answers(&absorbing.outcomes[..n], &read);
    assert_same_answers(&absorbing.outcomes[n..], &in_memory.outcomes[..5]);
    assert_eq!(counts(&absorbing), sum);
    let mut absorbed = short;
    absorbed.absorb(whole).unwrap();
    assert!(absorbed.stowed.is_none());
    assert_same_answers(&absorbed.outcomes[..5], &in_memory.outcomes[..5]);
    assert_same_answers(&absorbed.outcomes[5..], &read);
    assert_eq!(counts(&absorbed), sum);
}

#[tokio::test(start_paused = true)]
async fn requests_per_minute_spaces_calls() {
    let jobs = jobs(11, &[]); // ten requests and one render error
    let provider = Fake::new(Behaviour::Healthy);
    let mut endpoints = one(&provider, 10);
    endpoints.get_mut("p").unwrap().requests_per_minute = Some(60);
    let start = tokio::time::Instant::now();
    run_with(&jobs, endpoints, &options()).await;
    let elapsed = start.elapsed().as_secs_f64();
    assert!((9.0..10.0).contains(&elapsed), "{elapsed} s");
}

#[tokio::test(start_paused = true)]
async fn adaptive_concurrency_settles_below_the_providers_limit() {
    let jobs = jobs(466, &[]); // 400 requests
    let provider = Fake::new(Behaviour::ThrottleAbove(4));
    let mut endpoints = one(&provider, 32);
    endpoints.get_mut("p").unwrap().max_retries = 10;
    let start = tokio::time::Instant::now();
    let ran = run_with(&jobs, endpoints, &options()).await;
    let elapsed = start.elapsed().as_secs_f64();
    let failed: Vec<_> = ran
        .outcomes
        .iter()
        .filter_map(|o| {
            o.result
                .as_ref()
                .err()
                .filter(|e| !matches!(e, CallError::NotRendered { .. }))
                .map(|e| (e, o.attempts))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}; {} 429s",
        failed.len(),
        &failed[..failed.len().min(3)],
        ran.rate_limited
    );
    let throttled = provider.throttled_at.lock().unwrap().clone();
    let late = throttled.iter().filter(|&&answered| answered >= 100).count();
    assert!(
        late <= 12,
        "{late} 429s after adapting, of {}: {throttled:?}",
        throttled.len()
    );
    assert_eq!(ran.rate_limited, throttled.len());
    // At 4 in flight and 100 ms a call, 400 calls need 10 s; thrashing would take far longer.
    assert!(elapsed < 14.0, "{elapsed} s");
}

/// A judge job on job `parent`'s output, at provider `j`: `seed` picks the request, so equal
/// seeds are identical jobs.
fn judge_job(parent: usize, seed: u64) -> (JudgeTag, Job) {
    let mut job = jobs(1, &[]).remove(0);
    job.case = crate::plan::narrow(parent);
    job.provider = "j".into();
    if let Ok(request) = &mut job.request {
        request.seed = seed;
        request.json = true;
    }
    let tag = JudgeTag {
        assertion: 0,
        repeat: 0,
        attempt: 0,
        first: None,
    };
    (tag, job)
}

#[tokio::test(start_paused = true)]
async fn judge_calls_start_when_their_output_arrives_so_judging_overlaps_generation() {
    let generator = Fake::new(Behaviour::Healthy);
    let judge = Fake::new(Behaviour::Healthy);
    let jobs = jobs(10, &[]);
    let endpoints = BTreeMap::from([
        ("p".to_owned(), endpoint(&generator, 1)),
        ("j".to_owned(), endpoint(&judge, 1)),
    ]);
    let then = |parent: usize, asked: Asked<'_>, outcome: &Outcome| match asked {
        Asked::Given(_) if outcome.result.is_ok() => vec![judge_job(parent, 1000 + parent as u64)],
        _ => Vec::new(),
    };
    let started = tokio::time::Instant::now();
    let ran = run_then(&jobs, &endpoints, &prices(), &options(), &then)
        .await
        .expect("no other run holds the cache");
    let elapsed = started.elapsed();
    // Nine outputs (job 6 did not render) at 100 ms each, one at a time, and a judge call of
    // 100 ms on each: in sequence 1.8 s, overlapped the last output's judging only.
    assert_eq!(generator.total_calls(), 9);
    assert_eq!(judge.total_calls(), 9);
    assert!(elapsed <= Duration::from_millis(1050), "{elapsed:?}");
    let mut parents: Vec<usize> = ran.derived.iter().map(|d| d.parent).collect();
    parents.sort_unstable();
    assert_eq!(parents, vec![0, 1, 2, 3, 4, 5, 7, 8, 9]);
    for d in &ran.derived {
        assert_eq!(
            d.outcome.result.as_ref().unwrap().text,
            format!("answer {}", 1000 + d.parent)
        );
    }
    // Judging is spend like any call: 9 outputs and 9 judgements of $0.11 each.
    assert!((ran.spent_usd - 18.0 * 0.11).abs() < 1e-9, "{}", ran.spent_usd);
}

#[tokio::test(start_paused = true)]
async fn identical_judge_calls_are_sent_once_and_a_derived_job_can_ask_for_its_retry() {
    let generator = Fake::new(Behaviour::Healthy);
    let judge = Fake::new(Behaviour::Healthy);
    let jobs = jobs(6, &[]);
    let endpoints = BTreeMap::from([
        ("p".to_owned(), endpoint(&generator, 4)),
        ("j".to_owned(), endpoint(&judge, 4)),
    ]);
    // Outputs pair up on one judge request each; job 0's judgement asks once for a retry.
    let then = |parent: usize, asked: Asked<'_>, _: &Outcome| match asked {
        Asked::Given(_) => vec![judge_job(parent, 2000 + (parent / 2) as u64)],
        Asked::Derived(tag, _) if parent == 0 && tag.attempt == 0 => {
            let (mut again, job) = judge_job(parent, 3000);
            again.attempt = 1;
            vec![(again, job)]
        }
        Asked::Derived(..) => Vec::new(),
    };
    let ran = run_then(&jobs, &endpoints, &prices(), &options(), &then)
        .await
        .expect("no other run holds the cache");
    assert_eq!(ran.derived.len(), 7, "six judgements and one retry");
    assert_eq!(judge.total_calls(), 4, "three distinct judge requests and the retry");
    let shared = ran.derived.iter().filter(|d| d.outcome.cached).count();
    assert_eq!(shared, 3, "the second of each pair took the first's answer");
    let retry = ran.derived.iter().find(|d| d.tag.attempt == 1).expect("the retry ran");
    assert_eq!(retry.parent, 0);
    assert_eq!(retry.outcome.result.as_ref().unwrap().text, "answer 3000");
}

#[test]
fn a_job_key_spells_its_digest_in_hex_and_seeds_from_its_first_sixteen_digits() {
    // The journal and a batch's custom_id spell the key in hex, as before the key was held as
    // its digest; the seed is what parsing the first 16 hex digits gave.
    let mut digest = [0u8; 32];
    for (i, b) in digest.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(5);
    }
    let key = JobKey(digest);
    let hex = key.hex();
    assert_eq!(hex.len(), 64);
    assert_eq!(hex, digest.iter().map(|b| format!("{b:02x}")).collect::<String>());
    assert_eq!(key.seed(), u64::from_str_radix(&hex[..16], 16).unwrap());
}

mod cache;
