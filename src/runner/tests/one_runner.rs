//! A run's batches through one [`Runner`]: the cap, the journal and its replay are the run's.

use super::*;

/// Sequential looks run batch after batch through one runner: the cap is the run's.
#[tokio::test(start_paused = true)]
async fn the_budget_cap_holds_across_the_batches_of_one_runner() {
    let jobs = jobs(70, &[]);
    let upper = plan::request_upper_bound_usd(jobs[0].request.as_ref().unwrap(), &prices()).unwrap();
    let cap = 25.0 * upper;
    let provider = Fake::new(Behaviour::Healthy);
    let endpoints = one(&provider, 8);
    let prices = prices();
    let runner = Runner::new(
        &endpoints,
        &prices,
        Options {
            max_usd: Some(cap),
            ..options()
        },
    )
    .expect("no other run holds the cache");
    let mut refused = 0;
    for batch in jobs.chunks(14) {
        let ran = runner.run_then(&mut batch.to_vec(), &|_, _, _| Vec::new()).await;
        refused += ran
            .outcomes
            .iter()
            .filter(|o| o.result.as_ref().is_err_and(CallError::is_budget_refusal))
            .count();
        assert!(ran.spent_usd <= cap + 1e-9, "{} > {cap}", ran.spent_usd);
    }
    let cost = call_cost();
    let sent = provider.total_calls() as usize;
    assert!(
        sent as f64 * cost <= cap + 1e-9,
        "{sent} calls sent under a cap of {cap}"
    );
    // Reservations are at the upper bound, settlements at the real cost: at least the calls
    // whose upper bounds fit, and never one that would pass the cap (a cap per batch would
    // have let all 60 through).
    assert!(sent >= 25 && (sent + 1) as f64 * cost > cap - upper, "{sent}");
    assert_eq!(sent + refused, 70 - 70 / 7);
}

/// A resumed run replays the calls of every batch it finished, and their spend counts against
/// the cap from the start.
#[tokio::test(start_paused = true)]
async fn a_resumed_runner_replays_every_batch_and_counts_its_spend() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = jobs(42, &[]);
    let upper = plan::request_upper_bound_usd(jobs[0].request.as_ref().unwrap(), &prices()).unwrap();
    let options = Options {
        journal: Some(dir.path().join("journal.jsonl")),
        run_identity: "whole-plan".to_owned(),
        max_usd: Some(40.0 * upper),
        ..options()
    };
    let prices = prices();
    let first = Fake::new(Behaviour::Healthy);
    let endpoints = one(&first, 4);
    {
        let runner = Runner::new(&endpoints, &prices, options.clone()).expect("no other run holds the cache");
        for batch in jobs[..28].chunks(14) {
            runner.run_then(&mut batch.to_vec(), &|_, _, _| Vec::new()).await;
        }
        // Dropped without `finish`: killed before its outputs were written.
    }
    let paid = first.total_calls() as usize;
    assert_eq!(paid, 24);

    let second = Fake::new(Behaviour::Healthy);
    let endpoints = one(&second, 4);
    let runner = Runner::new(&endpoints, &prices, options.clone()).expect("no other run holds the cache");
    let mut resumed = 0;
    for batch in jobs.chunks(14) {
        resumed += runner
            .run_then(&mut batch.to_vec(), &|_, _, _| Vec::new())
            .await
            .resumed;
    }
    assert_eq!(resumed, paid);
    assert_eq!(
        second.total_calls() as usize,
        42 - 42 / 7 - paid,
        "no finished call is sent again"
    );
    let cost = call_cost();
    assert!(
        (runner.spent_usd() - 36.0 * cost).abs() < 1e-9,
        "{}",
        runner.spent_usd()
    );
    let journal = options.journal.clone().unwrap();
    assert!(journal.exists(), "kept until the outputs are written");
    runner.finish();
    assert!(!journal.exists());
}

/// Watches the journal from the provider's side: at every send, how many calls had been sent
/// and were not yet in the journal (a kill at that moment would have them sent again).
struct JournalWatch {
    inner: Arc<Fake>,
    journal: std::path::PathBuf,
    sent: AtomicUsize,
    worst: AtomicUsize,
}

#[async_trait]
impl Provider for JournalWatch {
    fn kind(&self) -> &'static str {
        "fake"
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
        let sent = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let journaled = std::fs::read_to_string(&self.journal)
            .map(|text| text.lines().count().saturating_sub(1))
            .unwrap_or(0);
        self.worst.fetch_max(sent.saturating_sub(journaled), Ordering::SeqCst);
        self.inner.complete(request).await
    }
}

/// A call is in the journal before its slot goes to the next call, even when the cache write
/// after it waits for the disk: a kill re-sends at most the calls in flight.
#[tokio::test(start_paused = true)]
async fn at_most_the_calls_in_flight_are_unjournaled_with_the_cache_on() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.jsonl");
    let watch = Arc::new(JournalWatch {
        inner: Fake::new(Behaviour::Healthy),
        journal: journal.clone(),
        sent: AtomicUsize::new(0),
        worst: AtomicUsize::new(0),
    });
    let concurrency = 8;
    let endpoints = BTreeMap::from([(
        "p".to_owned(),
        Endpoint {
            provider: watch.clone(),
            ..endpoint(&watch.inner, concurrency)
        },
    )]);
    let options = Options {
        cache_dir: Some(dir.path().join("cache")),
        journal: Some(journal),
        run_identity: "run".to_owned(),
        ..options()
    };
    let ran = run_with(&jobs(120, &[]), endpoints, &options).await;
    assert_eq!(watch.sent.load(Ordering::SeqCst), 120 - 120 / 7);
    assert!(ran.outcomes.iter().filter(|o| o.result.is_ok()).count() > 100);
    let worst = watch.worst.load(Ordering::SeqCst);
    assert!(
        worst <= concurrency,
        "{worst} calls were sent and not journaled at once; {concurrency} can be in flight"
    );
}

/// Twins retimed in this run are two sends of one request: both are journaled, and both replay.
#[tokio::test(start_paused = true)]
async fn retimed_twins_both_replay_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        journal: Some(dir.path().join("journal.jsonl")),
        run_identity: "twins".to_owned(),
        ..options()
    };
    let mut twins = jobs(6, &[]);
    twins.extend(twins.clone().into_iter().map(|j| Job {
        arm: Arm::Baseline,
        ..j
    }));
    for job in &mut twins {
        job.retime = true;
    }
    let prices = prices();
    let first = Fake::new(Behaviour::Healthy);
    let endpoints = one(&first, 4);
    // Killed before its outputs were written: dropped without `finish`.
    Runner::new(&endpoints, &prices, options.clone())
        .expect("no other run holds the cache")
        .run_then(&mut twins.clone(), &|_, _, _| Vec::new())
        .await;
    assert_eq!(first.total_calls(), 12);

    let second = Fake::new(Behaviour::Healthy);
    let endpoints = one(&second, 4);
    let ran = Runner::new(&endpoints, &prices, options)
        .expect("no other run holds the cache")
        .run_then(&mut twins.clone(), &|_, _, _| Vec::new())
        .await;
    assert_eq!(ran.resumed, 12);
    assert_eq!(second.total_calls(), 0, "a finished twin was sent again");
}

/// A second run waits for the first's hold on the cache, but not forever: past its bound it
/// fails before sending anything, naming the lock file and what to do.
#[test]
fn a_run_waits_for_the_cache_lock_at_most_its_bound_then_fails_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let provider = Fake::new(Behaviour::Healthy);
    let endpoints = one(&provider, 4);
    let prices = prices();
    let options = Options {
        cache_dir: Some(cache.clone()),
        lock_wait: Duration::from_millis(150),
        ..options()
    };
    let first = Runner::new(&endpoints, &prices, options.clone()).expect("the cache is free");
    let started = std::time::Instant::now();
    let Err(crate::error::Error::Run { message, hint }) = Runner::new(&endpoints, &prices, options.clone()) else {
        panic!("a second run got the lock the first holds");
    };
    let waited = started.elapsed();
    assert!(
        (Duration::from_millis(150)..Duration::from_secs(5)).contains(&waited),
        "{waited:?}"
    );
    let lock = cache.join("run.lock");
    assert!(message.contains(&lock.display().to_string()), "{message}");
    assert!(message.contains("this run sent nothing"), "{message}");
    let hint = hint.unwrap_or_default();
    assert!(hint.contains("--no-cache") && hint.contains("--cache-dir"), "{hint}");
    assert_eq!(provider.total_calls(), 0);
    // Once the first run is over, the next one takes the lock.
    first.finish();
    assert!(Runner::new(&endpoints, &prices, options).is_ok());
}

/// Two runs into one output folder would share its journal, and the first to finish would
/// remove it from under the other (an audit: 701 requests for 400 calls). Without a cache
/// (`--no-cache`) no cache lock keeps them apart: the folder's own does.
#[test]
fn a_second_run_into_the_same_output_folder_waits_then_fails_naming_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let provider = Fake::new(Behaviour::Healthy);
    let endpoints = one(&provider, 4);
    let prices = prices();
    let options = Options {
        journal: Some(out.join("journal.jsonl")),
        run_identity: "plan".to_owned(),
        lock_wait: Duration::from_millis(150),
        ..options()
    };
    assert!(options.cache_dir.is_none());
    let first = Runner::new(&endpoints, &prices, options.clone()).expect("the folder is free");
    let Err(crate::error::Error::Run { message, hint }) = Runner::new(&endpoints, &prices, options.clone()) else {
        panic!("a second run got the output folder the first holds");
    };
    assert!(
        message.contains(&format!("the output folder {}", out.display())),
        "{message}"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "the journal, and no lock file"
    );
    assert!(message.contains("this run sent nothing"), "{message}");
    assert!(hint.unwrap_or_default().contains("another --out"));
    // Another folder is free; and once the first run is over, the next one takes this one.
    let elsewhere = Options {
        journal: Some(dir.path().join("other/journal.jsonl")),
        ..options.clone()
    };
    assert!(Runner::new(&endpoints, &prices, elsewhere).is_ok());
    first.finish();
    assert!(Runner::new(&endpoints, &prices, options).is_ok());
}

/// The bound is ten minutes, or what a plan like this one takes when every call runs to its
/// timeout: per endpoint, its calls in waves of its concurrency.
#[test]
fn the_lock_wait_is_ten_minutes_or_the_plan_at_its_timeouts() {
    let provider = Fake::new(Behaviour::Healthy);
    // 4 concurrent calls of a 10 s timeout: 100 calls (6 of them unrendered, still jobs of
    // the provider) are 25 waves, 250 s: under ten minutes.
    assert_eq!(lock_wait(&jobs(100, &[]), &one(&provider, 4)), MIN_LOCK_WAIT);
    // 1,000 calls one at a time: 1,000 waves of 10 s.
    assert_eq!(
        lock_wait(&jobs(1000, &[]), &one(&provider, 1)),
        Duration::from_secs(10_000)
    );
    // 1,000 calls at 3 at once: 334 waves.
    assert_eq!(
        lock_wait(&jobs(1000, &[]), &one(&provider, 3)),
        Duration::from_secs(3_340)
    );
    assert_eq!(lock_wait(&[], &one(&provider, 3)), MIN_LOCK_WAIT);
}
