//! `run --batch` end to end through a [`Runner`], against the fake OpenAI and Anthropic batch
//! APIs of `providers::batch::fake` on 127.0.0.1 (real time, polls every few milliseconds).

use std::path::Path;

use super::*;
use crate::providers::Settings;
use crate::providers::anthropic::AnthropicProvider;
use crate::providers::batch::fake::{ANTHROPIC_KEY, Ending, Fake, OPENAI_KEY};
use crate::providers::http::ApiKey;
use crate::providers::http::tests::spec;
use crate::providers::mock::MockProvider;
use crate::providers::openai::OpenAiProvider;
use crate::runner::batch::BatchOptions;
use crate::suite::ProviderKind;

fn http_endpoint(provider: Arc<dyn Provider>, identity: &str) -> Endpoint {
    Endpoint {
        provider,
        concurrency: 4,
        timeout: TIMEOUT,
        max_retries: 0,
        requests_per_minute: None,
        tokens_per_minute: None,
        cache_identity: identity.to_owned(),
    }
}

/// `p`: the fake's API (OpenAI or Anthropic by the fake); `offline`: the mock.
fn endpoints(fake: &Fake, anthropic: bool) -> BTreeMap<String, Endpoint> {
    let provider: Arc<dyn Provider> = if anthropic {
        let spec = spec(ProviderKind::Anthropic, Some(&fake.server.uri()));
        Arc::new(AnthropicProvider::with_key(&spec, Some(ApiKey::new("ANTHROPIC_API_KEY", ANTHROPIC_KEY))).unwrap())
    } else {
        let spec = spec(ProviderKind::Openai, Some(&format!("{}/v1", fake.server.uri())));
        Arc::new(OpenAiProvider::with_key(&spec, Some(ApiKey::new("OPENAI_API_KEY", OPENAI_KEY))).unwrap())
    };
    BTreeMap::from([
        (
            "p".to_owned(),
            http_endpoint(provider, &format!("fake {}", fake.server.uri())),
        ),
        (
            "offline".to_owned(),
            http_endpoint(Arc::new(MockProvider::new()), "mock"),
        ),
    ])
}

/// Jobs for `p` saying each of `said` (model `model`), then one for the mock.
fn batch_jobs(model: &str, said: &[&str]) -> Vec<Job> {
    let job = |i: usize, provider: &str, content: &str| Job {
        experiment: 0,
        case: crate::plan::narrow(i),
        arm: Arm::Candidate,
        repeat: 0,
        provider: provider.into(),
        fallbacks: Default::default(),
        retime: false,
        request: Ok(Request::new(
            std::sync::Arc::new(Settings {
                // Above the 500 output tokens the fake reports, so the upper bound holds.
                max_tokens: Some(600),
                // The mock's model has no price: the spend is the batch's alone.
                ..Settings::of(if provider == "p" { model } else { "unpriced-mock" })
            }),
            vec![Message {
                role: Role::User,
                content: content.into(),
            }]
            .into(),
            i as u64,
        )),
    };
    let mut jobs: Vec<Job> = said.iter().enumerate().map(|(i, s)| job(i, "p", s)).collect();
    jobs.push(job(said.len(), "offline", "the mock runs as usual"));
    jobs
}

fn batch_options(dir: &Path, timeout: Duration) -> Options {
    Options {
        cache_dir: Some(dir.join("cache")),
        journal: Some(dir.join("out/journal.jsonl")),
        run_identity: "batch-test".to_owned(),
        batch: Some(BatchOptions {
            records_dir: Some(dir.join("cache/batches")),
            first_poll: Duration::from_millis(5),
            max_poll: Duration::from_millis(20),
            timeout,
        }),
        ..options()
    }
}

fn records(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("cache/batches")).map_or(0, |d| d.count())
}

/// What a run of `jobs` through one runner gives; the journal is removed after, as `run` does
/// once its outputs are written, unless the run was cut short.
async fn run_batch(jobs: &[Job], endpoints: &BTreeMap<String, Endpoint>, options: &Options) -> Ran {
    let prices = PriceTable::default();
    run(jobs, endpoints, &prices, options).await.unwrap()
}

#[track_caller]
fn assert_close(got: f64, expected: f64) {
    assert!((got - expected).abs() < 1e-12, "{got} != {expected}");
}

#[track_caller]
fn text(outcome: &Outcome) -> &str {
    match &outcome.result {
        Ok(response) => &response.text,
        Err(e) => panic!("expected an answer, got {e}"),
    }
}

/// gpt-4o lists $2.50 in and $10 out per million tokens; the fake reports 1000 in and 500 out,
/// so a batched answer costs (1000 × 2.50 + 500 × 10) / 1e6 / 2 = $0.00375.
const GPT_4O_BATCH_CALL: f64 = (1000.0 * 2.50 + 500.0 * 10.0) / 1e6 / 2.0;

#[tokio::test]
async fn openai_jobs_go_out_as_one_batch_at_the_batch_rate_and_are_cached() {
    let fake = Fake::openai(Ending::Completed, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let endpoints = endpoints(&fake, false);
    let jobs = batch_jobs("gpt-4o", &["one", "two", "three"]);
    let ran = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;

    assert_eq!(fake.state().creates, 1);
    assert!(fake.state().polls >= 3, "in_progress twice, then completed");
    for (i, said) in ["one", "two", "three"].iter().enumerate() {
        let o = &ran.outcomes[i];
        assert_eq!(text(o), format!("answer to: {said}"));
        assert!(o.batched && !o.cached);
        assert_eq!((o.latency_ms, o.attempts, o.provider.as_deref()), (None, 1, Some("p")));
    }
    // The mock's job ran the normal way in the same run.
    let mock = &ran.outcomes[3];
    assert!(mock.result.is_ok() && !mock.batched && mock.latency_ms.is_some());
    assert_close(ran.spent_usd, 3.0 * GPT_4O_BATCH_CALL);
    assert_eq!(records(dir.path()), 0, "a finished batch's record is removed");

    // The answers are in the cache: a second run submits nothing.
    let again = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
    assert_eq!(fake.state().creates, 1);
    assert!(again.outcomes[..3].iter().all(|o| o.cached && o.result.is_ok()));
    assert_close(again.spent_usd, 0.0);
}

#[tokio::test]
async fn per_request_errors_become_their_jobs_errors_without_the_key() {
    let fake = Fake::anthropic(Ending::Completed, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = batch_jobs("claude-3-5-haiku", &["fine", "a bad request", "also fine"]);
    let ran = run_batch(
        &jobs,
        &endpoints(&fake, true),
        &batch_options(dir.path(), Duration::from_secs(10)),
    )
    .await;

    assert_eq!(text(&ran.outcomes[0]), "answer to: fine");
    assert_eq!(text(&ran.outcomes[2]), "answer to: also fine");
    match &ran.outcomes[1].result {
        Err(CallError::Permanent { message }) => {
            assert!(message.contains("invalid_request_error"), "{message}");
            assert!(!message.contains(ANTHROPIC_KEY), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // claude-3-5-haiku lists $0.80 in, $4 out: two answers at half price.
    assert_close(ran.spent_usd, 2.0 * (1000.0 * 0.80 + 500.0 * 4.0) / 1e6 / 2.0);
}

#[tokio::test]
async fn an_expired_batch_keeps_its_answers_and_errors_the_requests_that_did_not_run() {
    let fake = Fake::openai(Ending::Expired, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = batch_jobs("gpt-4o", &["quick", "slow one", "quick too"]);
    let ran = run_batch(
        &jobs,
        &endpoints(&fake, false),
        &batch_options(dir.path(), Duration::from_secs(10)),
    )
    .await;

    assert_eq!(text(&ran.outcomes[0]), "answer to: quick");
    assert_eq!(text(&ran.outcomes[2]), "answer to: quick too");
    assert_eq!(
        ran.outcomes[1].result,
        Err(CallError::BatchExpired {
            batch_id: "batch_1".to_owned()
        })
    );
    assert_close(ran.spent_usd, 2.0 * GPT_4O_BATCH_CALL);
}

#[tokio::test]
async fn a_failed_batch_fails_each_of_its_jobs_with_the_reason() {
    let fake = Fake::openai(Ending::Failed, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let jobs = batch_jobs("gpt-4o", &["one", "two"]);
    let ran = run_batch(
        &jobs,
        &endpoints(&fake, false),
        &batch_options(dir.path(), Duration::from_secs(10)),
    )
    .await;
    for o in &ran.outcomes[..2] {
        let error = o.result.as_ref().unwrap_err();
        assert_eq!(
            error.to_string(),
            "batch batch_1 failed: line 1: The model `gpt-5-imaginary` does not exist"
        );
        assert!(o.batched);
    }
    assert_close(ran.spent_usd, 0.0);
    assert_eq!(records(dir.path()), 0);
}

/// A fake of either API whose batches run until the test ends them, a folder for the cache and
/// the journal, the endpoints, and two jobs for `p` (and one for the mock).
async fn never_ending(anthropic: bool) -> (Fake, tempfile::TempDir, BTreeMap<String, Endpoint>, Vec<Job>) {
    let fake = if anthropic {
        Fake::anthropic(Ending::Never, 0).await
    } else {
        Fake::openai(Ending::Never, 0).await
    };
    let endpoints = endpoints(&fake, anthropic);
    let jobs = batch_jobs(if anthropic { "claude-3-5-haiku" } else { "gpt-4o" }, &["one", "two"]);
    (fake, tempfile::tempdir().unwrap(), endpoints, jobs)
}

/// A CI job that ran out of time leaves its batch running; the rerun polls the recorded batch
/// instead of paying for a new one.
#[tokio::test]
async fn a_rerun_resumes_polling_the_recorded_batch_without_creating_another() {
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        let id = if anthropic { "msgbatch_001" } else { "batch_1" };

        let first = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        assert_eq!(first.batches_pending, vec![format!("`p`: {id} (in_progress)")]);
        for o in &first.outcomes[..2] {
            assert_eq!(
                o.result,
                Err(CallError::BatchPending {
                    batch_id: id.to_owned(),
                    status: "in_progress".to_owned()
                })
            );
        }
        assert_close(first.spent_usd, 0.0);
        assert_eq!(records(dir.path()), 1, "the batch's record is kept");

        fake.state().ending = Some(Ending::Completed);
        let second = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(fake.state().creates, 1, "resumed, not submitted again");
        assert!(second.batches_pending.is_empty());
        assert_eq!(text(&second.outcomes[0]), "answer to: one");
        assert_eq!(text(&second.outcomes[1]), "answer to: two");
        assert_eq!(records(dir.path()), 0);
    }
}

/// A job a recorded batch holds goes back to that batch even when the rest of its members were
/// answered another way since (the cache, the journal, another run): submitted with a new
/// chunk, it would be paid for twice.
#[tokio::test]
async fn a_job_of_a_running_batch_is_polled_there_when_its_fellow_members_were_answered_elsewhere_and_vice_versa() {
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        let id = if anthropic { "msgbatch_001" } else { "batch_1" };
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        assert_eq!((fake.state().creates, records(dir.path())), (1, 1));

        fake.state().ending = Some(Ending::Completed);
        let one = run_batch(
            &jobs[..1],
            &endpoints,
            &batch_options(dir.path(), Duration::from_secs(10)),
        )
        .await;
        assert_eq!(fake.state().creates, 1, "polled in {id}, not submitted in a new batch");
        assert_eq!(text(&one.outcomes[0]), "answer to: one");
        // The batch answered "two" as well, which this run did not need: its record stays for
        // the run that does, holding only that call.
        assert_eq!(records(dir.path()), 1, "kept for the member no run has taken");

        let both = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(fake.state().creates, 1, "\"two\" is read from {id}, not paid for again");
        assert!(both.outcomes[0].cached, "\"one\" is in the cache");
        assert_eq!(text(&both.outcomes[1]), "answer to: two");
        assert!(both.outcomes[1].batched && !both.outcomes[1].cached);
        assert_eq!(records(dir.path()), 0, "every member taken: the record goes");
    }
}

/// A poll refused for another reason than "no such batch" (a rotated key's 401) says nothing of
/// the batch, which still runs and is billed: its record stays and its jobs end pending, and a
/// rerun with a working key polls it, submitting nothing again. A batch the provider does not
/// know (a 404: deleted) is let go, its record with it.
#[tokio::test]
async fn a_refused_poll_keeps_the_batch_for_a_rerun_and_a_forgotten_batch_is_let_go() {
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        let id = if anthropic { "msgbatch_001" } else { "batch_1" };
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        assert_eq!(records(dir.path()), 1);

        fake.state().poll_refusals = 1;
        let refused = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(refused.batches_pending.len(), 1, "{:?}", refused.batches_pending);
        assert!(refused.batches_pending[0].contains("not polled") && refused.batches_pending[0].contains("401"));
        for o in &refused.outcomes[..2] {
            assert!(
                matches!(&o.result, Err(CallError::BatchPending { batch_id, .. }) if batch_id == id),
                "{:?}",
                o.result
            );
        }
        assert_eq!(records(dir.path()), 1, "the batch's record is kept");
        assert_close(refused.spent_usd, 0.0);

        fake.state().ending = Some(Ending::Completed);
        let resumed = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(fake.state().creates, 1, "polled again, not submitted again");
        assert_eq!(text(&resumed.outcomes[0]), "answer to: one");
        assert_eq!(records(dir.path()), 0);
    }
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        fake.forget_batches();
        let forgotten = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert!(forgotten.batches_pending.is_empty());
        for o in &forgotten.outcomes[..2] {
            let Err(error) = &o.result else {
                panic!("{:?}", o.result)
            };
            assert!(error.to_string().contains("does not know batch"), "{error}");
        }
        assert_eq!(
            records(dir.path()),
            0,
            "the record of a batch the provider does not know goes"
        );
        assert_eq!(fake.state().creates, 1);
    }
}

/// A run killed after the provider accepted its batch and before the id was recorded leaves
/// the record saying it was submitting: the rerun finds the batch instead of paying for it
/// again, by its tag (OpenAI keeps the tag as metadata) or, as Anthropic's batches carry no
/// label, by its size and the time it was created.
#[tokio::test]
async fn a_batch_submitted_by_a_run_killed_before_recording_it_is_found_not_paid_again() {
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        assert_eq!(fake.state().creates, 1);
        assert_eq!(
            fake.state().create_bodies[0]["metadata"][crate::providers::batch::TAG_KEY].is_null(),
            anthropic,
            "Anthropic is sent no tag"
        );
        lose_the_id(&fake, dir.path());

        fake.state().ending = Some(Ending::Completed);
        let rerun = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(text(&rerun.outcomes[0]), "answer to: one");
        assert_eq!(text(&rerun.outcomes[1]), "answer to: two");
        assert_eq!(records(dir.path()), 0);
        let state = fake.state();
        assert_eq!((state.creates, state.lists), (1, 1), "found, not submitted again");
    }
}

/// The same, when the rerun needs only some of the lost batch's jobs (a narrower plan, whose
/// chunk has other content): the batch is still looked for by the record that holds those
/// jobs, and read, not paid for again; the rest stay recorded for the run that needs them.
#[tokio::test]
async fn a_narrower_rerun_finds_the_batch_a_killed_run_did_not_record() {
    for anthropic in [false, true] {
        let (fake, dir, endpoints, jobs) = never_ending(anthropic).await;
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        lose_the_id(&fake, dir.path());
        fake.state().ending = Some(Ending::Completed);
        let one = run_batch(
            &jobs[..1],
            &endpoints,
            &batch_options(dir.path(), Duration::from_secs(10)),
        )
        .await;
        assert_eq!(text(&one.outcomes[0]), "answer to: one");
        assert_eq!(fake.state().creates, 1, "found, not submitted again");
        assert_eq!(records(dir.path()), 1, "kept for \"two\"");
        let both = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        assert_eq!(text(&both.outcomes[1]), "answer to: two");
        assert_eq!((fake.state().creates, records(dir.path())), (1, 0));
    }
}

/// Two Anthropic batches of the lost one's size created since the attempt: the rerun cannot
/// tell which is its, so the jobs fail saying so and which record to delete to submit anew,
/// and nothing is submitted.
#[tokio::test]
async fn two_anthropic_batches_that_could_be_the_lost_one_fail_the_jobs_without_submitting() {
    let (fake, dir, endpoints, jobs) = never_ending(true).await;
    run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
    let record = lose_the_id(&fake, dir.path());
    // Another run's batch of two, in the same minute.
    let other = batch_jobs("claude-3-5-haiku", &["three", "four"]);
    let other_dir = tempfile::tempdir().unwrap();
    run_batch(
        &other,
        &endpoints,
        &batch_options(other_dir.path(), Duration::from_millis(40)),
    )
    .await;
    fake.state().ending = Some(Ending::Completed);
    let rerun = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
    assert_eq!(fake.state().creates, 2, "nothing submitted by the rerun");
    let error = rerun.outcomes[0].result.as_ref().unwrap_err().to_string();
    assert!(error.contains("2 batches of 2 requests"), "{error}");
    assert!(error.contains(&record.display().to_string()), "{error}");
    assert!(!error.contains(ANTHROPIC_KEY), "{error}");
    assert!(record.exists(), "the record stays");
}

/// A record saying a batch was being submitted, when the provider never got it (the kill came
/// first): the batch an earlier run of the same plan left at the provider (answered, its
/// answers no longer cached) has another attempt's tag and is not taken for it; the batch is
/// submitted once.
#[tokio::test]
async fn a_submission_the_provider_never_got_is_submitted_after_looking_for_it() {
    let fake = Fake::openai(Ending::Completed, 0).await;
    let dir = tempfile::tempdir().unwrap();
    let endpoints = endpoints(&fake, false);
    let jobs = batch_jobs("gpt-4o", &["one"]);
    let first = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
    assert_eq!(text(&first.outcomes[0]), "answer to: one");
    let first_tag = fake.state().create_bodies[0]["metadata"][crate::providers::batch::TAG_KEY]
        .as_str()
        .unwrap()
        .to_owned();
    let (digest, _) = first_tag.split_once('-').unwrap();
    // The same plan again (so the same record), its answer no longer cached, and the intent of
    // a later attempt the provider never received.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    std::fs::create_dir_all(dir.path().join("cache/batches")).unwrap();
    std::fs::write(
        dir.path().join(format!("cache/batches/{digest}.json")),
        intent(&format!("{digest}-lost"), 1),
    )
    .unwrap();
    let rerun = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
    assert_eq!(text(&rerun.outcomes[0]), "answer to: one");
    let state = fake.state();
    assert_eq!((state.lists, state.creates), (1, 2));
    assert_ne!(state.create_bodies[1]["metadata"], state.create_bodies[0]["metadata"]);
}

/// Looking for a lost batch is tried three times over transient failures; when every try
/// fails, the jobs end with the error and the record to delete, and nothing is submitted.
#[tokio::test]
async fn a_failing_search_for_a_lost_batch_is_retried_then_fails_the_jobs_without_submitting() {
    for (failures, found) in [(2, true), (3, false)] {
        let (fake, dir, endpoints, jobs) = never_ending(false).await;
        run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_millis(40))).await;
        let record = lose_the_id(&fake, dir.path());
        {
            let mut state = fake.state();
            state.ending = Some(Ending::Completed);
            state.list_failures = failures;
        }
        let rerun = run_batch(&jobs, &endpoints, &batch_options(dir.path(), Duration::from_secs(10))).await;
        let state = fake.state();
        assert_eq!((state.creates, state.lists), (1, 3));
        if found {
            assert_eq!(text(&rerun.outcomes[0]), "answer to: one");
        } else {
            let error = rerun.outcomes[0].result.as_ref().unwrap_err().to_string();
            assert!(error.contains("cannot look for the batch of `p`"), "{error}");
            assert!(error.contains(&record.display().to_string()), "{error}");
            assert!(!error.contains(OPENAI_KEY), "{error}");
            assert!(record.exists(), "the record stays for the rerun");
        }
    }
}

/// Rewrites the one batch record under `dir` as a kill after the provider accepted the batch
/// and before its id was recorded leaves it: the first create's tag, no id. Its path.
fn lose_the_id(fake: &Fake, dir: &Path) -> std::path::PathBuf {
    let record = std::fs::read_dir(dir.join("cache/batches"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let state = fake.state();
    let sent = state.create_bodies[0]["metadata"][crate::providers::batch::TAG_KEY].clone();
    // The attempt's time, by a clock that agrees with the fake's (Anthropic finds by it).
    let since = crate::providers::http::parse_rfc3339(&state.created_at)
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut record_text: serde_json::Value =
        serde_json::from_str(&intent(sent.as_str().unwrap_or("not sent"), 2)).unwrap();
    record_text["since"] = since.into();
    // The members, as the run wrote them with its intent.
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    record_text["keys"] = written["keys"].clone();
    std::fs::write(&record, record_text.to_string()).unwrap();
    record
}

/// The record a run writes before submitting a batch: `p`'s batch tagged `tag` of `calls` calls
/// (without the time, as a record written before it was kept).
fn intent(tag: &str, calls: usize) -> String {
    serde_json::json!({"provider": "p", "batch_id": "", "calls": calls, "tag": tag}).to_string()
}

/// Batched calls are reserved under the cap at the batch rate, all at once: a cap that holds
/// four calls' upper bounds at half price (not at list price) sends all four; one that holds
/// three and a half sends none, rather than three paid for in a run the cap then stops (the
/// audit: exit 3 with $0.185 of $1.00 spent).
#[tokio::test]
async fn the_cap_reserves_batched_calls_at_the_batch_rate_all_or_none() {
    let fake = Fake::openai(Ending::Completed, 0).await;
    let dir = tempfile::tempdir().unwrap();
    // Prompts of over 1000 characters: the upper bound counts a token a character, above the
    // 1000 input tokens the fake reports.
    let long: Vec<String> = ["a", "b", "c", "d"].iter().map(|c| c.repeat(1000)).collect();
    let said: Vec<&str> = long.iter().map(String::as_str).collect();
    let jobs = batch_jobs("gpt-4o", &said);
    let request = jobs[0].request.clone().unwrap();
    let list = plan::request_upper_bound_usd(&request, &PriceTable::default()).unwrap();
    let batch_rate = plan::request_upper_bound_usd(&request, &PriceTable::default().at_batch_rate()).unwrap();
    assert_close(batch_rate, list / 2.0);

    let short = 3.5 * batch_rate;
    let options = Options {
        max_usd: Some(short),
        ..batch_options(dir.path(), Duration::from_secs(10))
    };
    let ran = run_batch(&jobs, &endpoints(&fake, false), &options).await;
    assert!(
        ran.outcomes[..4]
            .iter()
            .all(|o| matches!(o.result, Err(CallError::BudgetRefused { .. })))
    );
    assert!(
        ran.outcomes[4].result.is_ok(),
        "the mock's call, not batched, runs as usual"
    );
    assert!(ran.budget_exhausted);
    assert_eq!(ran.spent_usd, 0.0);
    assert_eq!(fake.state().creates, 0, "no batch submitted");

    let enough = 4.5 * batch_rate;
    assert!(4.0 * list > enough);
    let options = Options {
        max_usd: Some(enough),
        ..batch_options(dir.path(), Duration::from_secs(10))
    };
    let ran = run_batch(&jobs, &endpoints(&fake, false), &options).await;
    assert!(ran.outcomes.iter().all(|o| o.result.is_ok()));
    assert!(!ran.budget_exhausted);
    assert!(ran.spent_usd <= enough);
}
