//! A settled job's messages are let go of; a job the run may send again keeps them.

use super::*;

/// `jobs` through a runner of their own with the response cache in `cache`, each call sent
/// once (a fault is its outcome).
async fn run_cached(provider: &Arc<Fake>, cache: &std::path::Path, jobs: &mut [Job]) -> Ran {
    let endpoints = BTreeMap::from([(
        "p".to_owned(),
        Endpoint {
            max_retries: 0,
            ..endpoint(provider, 4)
        },
    )]);
    let options = Options {
        cache_dir: Some(cache.to_owned()),
        ..options()
    };
    let prices = prices();
    let runner = Runner::new(&endpoints, &prices, options).expect("no other run holds the cache");
    let ran = runner.run_then(jobs, &|_, _, _| Vec::new()).await;
    runner.finish();
    ran
}

/// Per job, how many messages it still holds (`None`: its prompt did not render).
fn held(jobs: &[Job]) -> Vec<Option<usize>> {
    jobs.iter()
        .map(|j| j.request.as_ref().ok().map(|r| r.messages.len()))
        .collect()
}

/// Once a job's outcome is settled (answered by a call, or failed for good) its messages are let
/// go of; a job the run may send again to measure its pair under one provider keeps them: one
/// the cache answered, or one that failed in a way a later send may pass.
#[tokio::test(start_paused = true)]
async fn a_settled_jobs_messages_are_let_go_of_and_one_that_may_be_sent_again_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = async |provider: &Arc<Fake>| {
        let mut jobs = jobs(14, &[]);
        run_cached(provider, dir.path(), &mut jobs).await;
        held(&jobs)
    };
    let rendered = |count: usize| (0..14).map(|i| (i % 7 != 6).then_some(count)).collect::<Vec<_>>();
    // Failed for good (a rejected key): nothing to send again.
    assert_eq!(
        run(&Fake::new(Behaviour::Down("401 invalid api key"))).await,
        rendered(0)
    );
    // Failed in a way that may pass (rate limited, a 5xx, a timeout): its pair may be measured
    // again.
    assert_eq!(run(&Fake::new(Behaviour::Faults(1.1))).await, rendered(1));
    // Answered by a call of this run.
    assert_eq!(run(&Fake::new(Behaviour::Healthy)).await, rendered(0));
    // Answered by the cache, measured earlier.
    let idle = Fake::new(Behaviour::Healthy);
    assert_eq!(run(&idle).await, rendered(1));
    assert_eq!(idle.total_calls(), 0);

    // A run that replays an interrupted run's journal keeps every job's, those its own calls
    // answered too: a pair one of whose calls that run made is measured again whatever this
    // run's call did.
    let journaled = Options {
        journal: Some(dir.path().join("journal.jsonl")),
        run_identity: "plan".to_owned(),
        ..options()
    };
    let provider = Fake::new(Behaviour::Healthy);
    let endpoints = one(&provider, 4);
    let prices = prices();
    let mut first = jobs(14, &[]);
    let mut second = jobs(14, &[]);
    // Killed before its outputs were written: dropped without `finish`, its journal kept.
    let runner = Runner::new(&endpoints, &prices, journaled.clone()).expect("no other run holds the cache");
    runner.run_then(&mut first[..7], &|_, _, _| Vec::new()).await;
    drop(runner);
    let runner = Runner::new(&endpoints, &prices, journaled).expect("no other run holds the cache");
    let ran = runner.run_then(&mut second, &|_, _, _| Vec::new()).await;
    assert_eq!(ran.resumed, 6);
    assert_eq!(
        provider.total_calls(),
        12,
        "six calls of the first run, six of this one"
    );
    assert!(
        second
            .iter()
            .filter_map(|j| j.request.as_ref().ok())
            .all(|r| r.messages.len() == 1)
    );
}

/// A pair whose baseline the cache answered is sent again only when its candidate fails in a
/// way that may pass: once the candidate is answered, both go; once it fails so, both stay.
#[tokio::test(start_paused = true)]
async fn a_call_the_cache_answered_goes_with_the_other_of_its_pair() {
    let dir = tempfile::tempdir().unwrap();
    // Baseline then candidate of each case, as a plan puts them; the baseline's prompt differs.
    let pairs = || -> Vec<Job> {
        jobs(6, &[])
            .into_iter()
            .flat_map(|candidate| {
                let mut baseline = Job {
                    arm: Arm::Baseline,
                    ..candidate.clone()
                };
                if let Ok(request) = &mut baseline.request {
                    request.messages = vec![Message {
                        role: Role::User,
                        content: format!("base {}", candidate.case).into(),
                    }]
                    .into();
                }
                [baseline, candidate]
            })
            .collect()
    };
    let run = async |provider: &Arc<Fake>, jobs: &mut Vec<Job>| {
        let ran = run_cached(provider, dir.path(), jobs).await;
        let held: Vec<usize> = held(jobs).into_iter().map(Option::unwrap_or_default).collect();
        (ran, held)
    };
    // The baselines alone, into the cache.
    let mut baselines: Vec<Job> = pairs().into_iter().filter(|j| j.arm == Arm::Baseline).collect();
    run(&Fake::new(Behaviour::Healthy), &mut baselines).await;

    // Candidates failed in a way that may pass: both calls of each pair stay, to be sent again.
    let mut again = pairs();
    let (ran, held) = run(&Fake::new(Behaviour::Faults(1.1)), &mut again).await;
    assert_eq!(ran.cache_hits, 6);
    assert_eq!(remeasure::uneven(&again, &ran.marks).len(), 6);
    assert_eq!(held, vec![1; 12]);

    // Candidates answered: every pair's two calls go (the baselines when their candidate came).
    let (ran, held) = run(&Fake::new(Behaviour::Healthy), &mut pairs()).await;
    assert_eq!(ran.cache_hits, 6);
    assert_eq!(held, vec![0; 12]);
}
