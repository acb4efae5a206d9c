//! The response cache seen from the runner: a warm cache answers, a corrupt one is called
//! again, and a cached answer slower than the endpoint now waits is sent again.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_warm_cache_makes_no_calls_and_survives_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        cache_dir: Some(dir.path().to_owned()),
        ..options()
    };
    let jobs = jobs(40, &[]);
    let first = Fake::new(Behaviour::Healthy);
    let cold = run_with(&jobs, one(&first, 8), &options).await;
    assert_eq!(cold.cache_hits, 0);

    let second = Fake::new(Behaviour::Healthy);
    let warm = run_with(&jobs, one(&second, 8), &options).await;
    assert_eq!(second.total_calls(), 0);
    assert_eq!(warm.cache_hits, 40 - 40 / 7);
    assert!(
        warm.outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .all(|o| o.cached && o.attempts == 0)
    );
    assert_same_answers(&warm.outcomes, &cold.outcomes);

    // Corrupt every shard log: each entry is a miss, called again and rewritten.
    for shard in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::write(shard.unwrap().path(), b"{not json").unwrap();
    }
    let third = Fake::new(Behaviour::Healthy);
    let rewritten = run_with(&jobs, one(&third, 8), &options).await;
    assert_eq!(third.total_calls() as usize, 40 - 40 / 7);
    assert_same_answers(&rewritten.outcomes, &cold.outcomes);
    let fourth = Fake::new(Behaviour::Healthy);
    run_with(&jobs, one(&fourth, 8), &options).await;
    assert_eq!(fourth.total_calls(), 0);
}

/// A cached answer slower than the endpoint now waits is not given: there the call would have
/// timed out, so it is sent (the audit's candidate, whose only change was a shorter
/// `timeout_ms`, was answered from a warm cache and passed). The fake reports `seed % 997` ms.
#[tokio::test]
async fn a_cached_answer_slower_than_the_timeout_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        cache_dir: Some(dir.path().to_owned()),
        ..options()
    };
    let jobs = jobs(40, &[]);
    let cold = run_with(&jobs, one(&Fake::new(Behaviour::Healthy), 8), &options).await;
    // The timeout now: the median of what the sent calls took.
    let mut took: Vec<f64> = cold
        .outcomes
        .iter()
        .filter(|o| o.result.is_ok() && !o.cached)
        .filter_map(|o| o.latency_ms)
        .collect();
    took.sort_by(f64::total_cmp);
    let within = took[took.len() / 2];
    let slow = took.iter().filter(|&&ms| ms > within).count();
    assert!(slow > 0 && slow < took.len(), "{took:?}");
    let second = Fake::new(Behaviour::Healthy);
    let mut endpoints = one(&second, 8);
    let endpoint = endpoints.get_mut("p").unwrap();
    endpoint.timeout = Duration::from_secs_f64(within / 1000.0);
    // Each sent once (the fake may now answer after the timeout, and a retry would count).
    endpoint.max_retries = 0;
    let warm = run_with(&jobs, endpoints, &options).await;
    assert_eq!(second.total_calls() as usize, slow);
    assert!(
        warm.outcomes
            .iter()
            .filter(|o| o.cached && o.attempts == 0)
            .all(|o| o.latency_ms.is_none_or(|ms| ms <= within))
    );
}
