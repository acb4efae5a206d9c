//! The spending cap, call by call: what each call reserves, and what it is sent with.

use super::*;

/// `n` jobs alike but for their request's seed (so none is identical to another), and the upper
/// bound of one's cost.
fn distinct_jobs(n: u64) -> (Vec<Job>, f64) {
    let template = jobs(1, &[]).remove(0);
    let jobs: Vec<Job> = (0..n)
        .map(|seed| {
            let mut job = template.clone();
            job.request.as_mut().unwrap().seed = seed;
            job
        })
        .collect();
    let upper = plan::request_upper_bound_usd(jobs[0].request.as_ref().unwrap(), &prices()).unwrap();
    (jobs, upper)
}

#[tokio::test(start_paused = true)]
async fn the_budget_cap_holds_under_full_concurrency() {
    let (jobs, upper) = distinct_jobs(200);
    let cap = 50.0 * upper;
    let provider = Fake::new(Behaviour::Healthy);
    let ran = run_with(
        &jobs,
        one(&provider, 64),
        &Options {
            max_usd: Some(cap),
            ..options()
        },
    )
    .await;
    let sent = provider.total_calls() as usize;
    let spend = sent as f64 * call_cost();
    assert!(
        spend <= cap + 1e-9 && (ran.spent_usd - spend).abs() < 1e-9,
        "{spend} > {cap}"
    );
    assert!((50..200).contains(&sent), "{sent}");
    assert!(ran.budget_exhausted);
    let refused: Vec<&Outcome> = ran.outcomes.iter().filter(|o| o.result.is_err()).collect();
    assert_eq!(refused.len(), 200 - sent);
    assert!(
        refused
            .iter()
            .all(|o| o.result.as_ref().unwrap_err() == &CallError::BudgetRefused { cap_usd: cap } && o.attempts == 0)
    );
}

/// Under a cap, a request that sets no output limit is sent with the limit its reservation
/// assumed (a provider would otherwise let a long answer cost more than was reserved); without
/// a cap, or with a limit of its own, it goes as written.
#[tokio::test]
async fn under_a_cap_a_request_without_an_output_limit_is_sent_with_the_one_it_reserved() {
    /// The limits it was sent; its own default for a request without one (Anthropic's).
    #[derive(Default)]
    struct Limits(Mutex<Vec<Option<u32>>>, Option<u32>);
    #[async_trait::async_trait]
    impl Provider for Limits {
        fn kind(&self) -> &'static str {
            "limits"
        }
        fn default_output_limit(&self) -> Option<u32> {
            self.1
        }
        async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
            self.0.lock().unwrap().push(request.max_tokens);
            Ok(Response {
                text: "ok".to_owned(),
                usage: Usage {
                    input: 10,
                    cached_input: 0,
                    output: 100,
                },
                latency_ms: Some(1.0),
            })
        }
    }
    let mut jobs = jobs(1, &[]);
    // A provider with a default of its own (Anthropic's 1,024) applies it, capped or not.
    for (own_limit, max_usd, default, sent) in [
        (None, Some(100.0), None, Some(plan::UNBOUNDED_OUTPUT_TOKENS)),
        (None, None, None, None),
        (Some(300), Some(100.0), None, Some(300)),
        (None, Some(100.0), Some(1024), None),
    ] {
        jobs[0].request.as_mut().unwrap().max_tokens = own_limit;
        let provider = Arc::new(Limits(Mutex::default(), default));
        let endpoints = BTreeMap::from([(
            "p".to_owned(),
            Endpoint {
                provider: provider.clone(),
                ..endpoint(&Fake::new(Behaviour::Healthy), 1)
            },
        )]);
        run_with(&jobs, endpoints, &Options { max_usd, ..options() }).await;
        assert_eq!(
            *provider.0.lock().unwrap(),
            vec![sent],
            "own limit {own_limit:?}, cap {max_usd:?}"
        );
    }
}

/// An attempt that timed out may be billed in full (the provider may have answered after we
/// stopped waiting): it is held against the cap at its upper bound for good, a retry reserves
/// anew, and the attempts sent never pass what the cap pays for. None is reported as spent.
#[tokio::test(start_paused = true)]
async fn an_attempt_that_timed_out_is_held_against_the_cap_as_if_billed() {
    let (jobs, upper) = distinct_jobs(40);
    let cap = 10.5 * upper;
    let provider = Fake::new(Behaviour::HangAfter(0));
    let mut endpoints = one(&provider, 4);
    let endpoint = endpoints.get_mut("p").unwrap();
    (endpoint.timeout, endpoint.max_retries) = (Duration::from_secs(1), 2);
    let ran = run_with(
        &jobs,
        endpoints,
        &Options {
            max_usd: Some(cap),
            ..options()
        },
    )
    .await;
    // Without the hold: 40 jobs × 3 attempts = 120 sent against room for 10.
    assert_eq!(provider.total_calls(), 10);
    assert_eq!(ran.spent_usd, 0.0);
    assert!((ran.uncertain_usd - 10.0 * upper).abs() < 1e-9, "{}", ran.uncertain_usd);
    assert!(ran.budget_exhausted);
    // Every job is accounted for: timed out (its last attempt found no room to retry) or not sent.
    let (timed_out, refused): (Vec<&Outcome>, Vec<&Outcome>) = ran
        .outcomes
        .iter()
        .partition(|o| matches!(o.result, Err(CallError::Timeout { .. })));
    assert_eq!(timed_out.len() + refused.len(), 40);
    assert!(
        refused
            .iter()
            .all(|o| o.result.as_ref().unwrap_err().is_budget_refusal())
    );
    assert_eq!(timed_out.iter().map(|o| o.attempts).sum::<u32>(), 10);

    // Every job sent, some retry without room: those calls end with their timeout (errors the
    // error rate counts), and no call counts as one the cap refused to send.
    let provider = Fake::new(Behaviour::HangAfter(0));
    let mut endpoints = one(&provider, 4);
    let endpoint = endpoints.get_mut("p").unwrap();
    (endpoint.timeout, endpoint.max_retries) = (Duration::from_secs(1), 2);
    let ran = run_with(
        &jobs[..4],
        endpoints,
        &Options {
            max_usd: Some(cap),
            ..options()
        },
    )
    .await;
    assert_eq!(provider.total_calls(), 10, "4 first attempts and 6 of the 8 retries");
    assert!(!ran.budget_exhausted && ran.refused == 0);
    assert!(
        ran.outcomes
            .iter()
            .all(|o| matches!(o.result, Err(CallError::Timeout { .. })))
    );
    assert_eq!(ran.outcomes.iter().map(|o| o.attempts).sum::<u32>(), 10);
}

/// An answer that could not be read (a 2xx whose body was cut short) was produced, and may be
/// billed, as a timed-out attempt may: it is held against the cap the same way. It was retried
/// under the first attempt's reservation, and a run whose every answer came back unreadable
/// sent 300 attempts, billed $5.95, under a cap of $4.
#[tokio::test(start_paused = true)]
async fn an_answer_that_could_not_be_read_is_held_against_the_cap_as_if_billed() {
    let (jobs, upper) = distinct_jobs(40);
    let provider = Fake::new(Behaviour::Unreadable);
    let mut endpoints = one(&provider, 4);
    endpoints.get_mut("p").unwrap().max_retries = 2;
    let ran = run_with(
        &jobs,
        endpoints,
        &Options {
            max_usd: Some(10.5 * upper),
            ..options()
        },
    )
    .await;
    assert_eq!(provider.total_calls(), 10, "room for 10 worst cases");
    assert_eq!(ran.spent_usd, 0.0);
    assert!((ran.uncertain_usd - 10.0 * upper).abs() < 1e-9, "{}", ran.uncertain_usd);
    assert!(ran.budget_exhausted);
    let unread = ran
        .outcomes
        .iter()
        .filter(|o| matches!(&o.result, Err(CallError::Transient { message }) if message.contains("truncated")))
        .count();
    let refused = ran
        .outcomes
        .iter()
        .filter(|o| o.result.as_ref().is_err_and(CallError::is_budget_refusal))
        .count();
    assert_eq!(unread + refused, 40);
}

/// 40 distinct jobs, the upper bound of one, and options that journal them in `dir` under a
/// cap of 10.5 worst cases: the resumed runs' setting.
fn journaled_under_a_cap(dir: &std::path::Path) -> (Vec<Job>, f64, Options) {
    let (jobs, upper) = distinct_jobs(40);
    let options = Options {
        max_usd: Some(10.5 * upper),
        journal: Some(dir.join("journal.jsonl")),
        run_identity: "plan".to_owned(),
        ..options()
    };
    (jobs, upper, options)
}

/// The run again, every call answered at once: what it ran, and how many calls it sent.
async fn rerun_against_a_healthy_provider(jobs: &[Job], options: Options) -> (Ran, u32) {
    let healthy = Fake::new(Behaviour::Healthy);
    let (endpoints, prices) = (one(&healthy, 4), prices());
    let runner = Runner::new(&endpoints, &prices, options).expect("no other run holds the cache");
    let ran = runner.run_then(&mut jobs.to_vec(), &|_, _, _| Vec::new()).await;
    (ran, healthy.total_calls())
}

/// A resumed run's cap holds what the interrupted run's timed-out attempts may have cost, as
/// it holds what its calls did cost: the journal carries both.
#[tokio::test(start_paused = true)]
async fn a_resumed_run_holds_the_interrupted_runs_timed_out_attempts_against_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, upper, options) = journaled_under_a_cap(dir.path());
    let prices = prices();
    let hanging = Fake::new(Behaviour::HangAfter(0));
    let mut endpoints = one(&hanging, 4);
    let endpoint = endpoints.get_mut("p").unwrap();
    (endpoint.timeout, endpoint.max_retries) = (Duration::from_secs(1), 0);
    // Four calls time out, then the run is killed before its outputs are written.
    let runner = Runner::new(&endpoints, &prices, options.clone()).expect("no other run holds the cache");
    let ran = runner.run_then(&mut jobs[..4].to_vec(), &|_, _, _| Vec::new()).await;
    assert!((ran.uncertain_usd - 4.0 * upper).abs() < 1e-9, "{}", ran.uncertain_usd);
    drop(runner);

    let (ran, sent) = rerun_against_a_healthy_provider(&jobs, options).await;
    assert_eq!(ran.resumed, 4);
    // Room for 10.5 worst cases, four of them held already: 6.5 worst cases, and the calls
    // settle below theirs, which makes room for a seventh. Twelve without the journal's hold.
    assert_eq!(sent, 7);
    assert!(ran.spent_usd + ran.uncertain_usd <= 10.5 * upper + 1e-12);
    assert!((ran.uncertain_usd - 4.0 * upper).abs() < 1e-9, "{}", ran.uncertain_usd);
    assert!(ran.budget_exhausted);
}

/// Calls in flight when a run is killed may be billed though no answer was journaled: each
/// attempt sent under a cap is noted in the journal first, and the rerun holds those its
/// journal never settled against the cap.
#[tokio::test(start_paused = true)]
async fn a_resumed_run_holds_the_calls_in_flight_at_the_kill_against_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let (jobs, upper, options) = journaled_under_a_cap(dir.path());
    let prices = prices();
    let hanging = Fake::new(Behaviour::HangAfter(0));
    let mut endpoints = one(&hanging, 4);
    endpoints.get_mut("p").unwrap().timeout = Duration::from_secs(24 * 3600);
    // Four calls in flight, then the run is killed (its future dropped mid-call).
    let runner = Runner::new(&endpoints, &prices, options.clone()).expect("no other run holds the cache");
    let killed = tokio::time::timeout(
        Duration::from_secs(60),
        runner.run_then(&mut jobs.clone(), &|_, _, _| Vec::new()),
    )
    .await;
    assert!(killed.is_err());
    assert_eq!(hanging.total_calls(), 4);
    drop(runner);

    let (ran, sent) = rerun_against_a_healthy_provider(&jobs, options).await;
    assert_eq!(ran.resumed, 0);
    // As after four timeouts: 6.5 worst cases of room, and a seventh as the calls settle low.
    // Twelve without the notes.
    assert_eq!(sent, 7);
    assert!((ran.uncertain_usd - 4.0 * upper).abs() < 1e-9, "{}", ran.uncertain_usd);
}
