//! `run --batch`: the jobs of providers with a batch API (`providers::batch`) go out as
//! batches instead of one call each, at half the price, answered within hours.
//!
//! Per provider, the jobs not answered by the journal or the cache are reserved under the cap
//! at the batch rate, split at the API's limits, and submitted. Each batch's id is recorded in
//! the cache directory under a digest of its content (the endpoint and every entry), so a rerun
//! of the same plan — a CI job restarted after a timeout, a Ctrl-C — finds the batch and polls
//! it instead of paying for it again. The record also names the batch's members (their
//! `custom_id`s): a job still unanswered that a recorded batch holds goes back to that batch,
//! even when the rest of its members were answered since (by the journal after a kill while
//! the results were read back, by the cache another run filled), instead of into a new batch
//! paid for beside it. Before each submission the record holds the intent (the
//! tag, the number of requests, the time): a run stopped between the provider accepting a
//! batch and its id being recorded has it found at the provider (`BatchApi::find`: by the tag
//! for OpenAI, by size and creation time for Anthropic) instead of submitting it again.
//! Polling backs off from `first_poll` to `max_poll`. An ended batch's requests map back to
//! their jobs by `custom_id` (the job's key): an answer is redacted, journaled and cached like
//! any call's; a failed request is that job's [`CallError`]; an expired or cancelled one, or one the batch ended without, is an error too,
//! never dropped. The record goes once every answer is journaled and cached.
//!
//! Ctrl-C stops polling and keeps the records; `timeout` ends polling with the unfinished
//! batches' jobs as [`CallError::BatchPending`] and their ids in [`Batched::pending`], records
//! kept.

mod record;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{CallError, Outcome, Runner, budget::Reservation, cache, interrupt, not_sent};
use crate::plan::{self, Job};
use crate::providers::batch::{BatchApi, Item, Limits, Sought, Status};
use crate::providers::{ProviderError, Request};
use record::{Recorded, attempt_nonce, held, member_keys, read_record, record_keys, write_record};

/// How a batch run polls and where it keeps its batches.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Where each submitted batch's id is recorded: the cache directory's `batches/` (with
    /// `--no-cache` too; beside the journal only without a cache folder). `None` keeps no
    /// record: a rerun submits again.
    pub records_dir: Option<PathBuf>,
    /// The first wait between polls; each wait doubles up to `max_poll`.
    pub first_poll: Duration,
    pub max_poll: Duration,
    /// The longest the run waits for its batches (`--batch-timeout`).
    pub timeout: Duration,
}

impl BatchOptions {
    /// `run --batch`'s: batch records in `records` (the response cache's `batches/`, so a
    /// restarted CI job finds its batches; `commands::run::GateOptions::batch_records`), else
    /// beside the journal.
    pub fn for_run(records: Option<&Path>, journal: Option<&Path>, timeout: Duration) -> Self {
        let records = records
            .map(Path::to_owned)
            .or_else(|| journal.and_then(Path::parent).map(|dir| dir.join("batches")));
        BatchOptions::new(records, timeout)
    }

    /// The command line's: polls from 10 s up to 5 min, records in `records_dir`.
    pub fn new(records_dir: Option<PathBuf>, timeout: Duration) -> Self {
        BatchOptions {
            records_dir,
            first_poll: Duration::from_secs(10),
            max_poll: Duration::from_secs(300),
            timeout,
        }
    }
}

/// What the batches answered: outcomes by job index, and the batches still running when the
/// wait ran out.
#[derive(Default)]
pub(super) struct Batched {
    pub outcomes: Vec<(usize, Outcome)>,
    /// `provider: batch id (status)` of every batch that had not ended in time.
    pub pending: Vec<String>,
    pub budget_exhausted: bool,
}

/// Whether `job` goes through its provider's batch API in a batch run: a completion (not an
/// embedding), not one to be timed, for a provider that has one.
pub fn goes_in_batch(job: &Job, endpoints: &BTreeMap<String, super::Endpoint>) -> bool {
    let Ok(request) = &job.request else { return false };
    !request.embed
        && !job.retime
        && endpoints
            .get(&*job.provider)
            .is_some_and(|e| e.provider.batch().is_some())
}

/// `--batch`: which jobs go through their provider's batch API. A blocking latency gate
/// cannot be decided on them (a batched call has no latency), so it is refused before
/// anything is sent.
pub fn plan(
    jobs: &[Job],
    endpoints: &BTreeMap<String, super::Endpoint>,
    gates: &[crate::suite::GateSpec],
) -> Result<Vec<bool>, crate::error::Error> {
    // A blocking latency gate has already marked some jobs to be timed (`plan::mark_retimed`), which
    // keeps them out of a batch: whether the plan would batch is asked of the jobs unmarked.
    let would_batch = jobs.iter().any(|j| {
        let unmarked = Job {
            retime: false,
            ..j.clone()
        };
        goes_in_batch(&unmarked, endpoints)
    });
    if would_batch
        && let Some(gate) = gates
            .iter()
            .find(|g| g.blocking && crate::metrics::Metric::of(&g.metric).quantile().is_some())
    {
        return Err(crate::error::Diagnostic::new(format!(
            "--batch cannot decide the blocking gate `{}`: calls sent in a batch have no latency",
            gate.metric
        ))
        .hint("run without --batch to measure latency")
        .hint(format!(
            "or make the gate informative: `{}: {{blocking: false}}` under `gates:`",
            gate.metric
        ))
        .into());
    }
    let batched: Vec<bool> = jobs.iter().map(|j| goes_in_batch(j, endpoints)).collect();
    let count = batched.iter().filter(|b| **b).count();
    if count == 0 {
        eprintln!(
            "promptgate: --batch: no call of this plan goes to a provider with a batch API (types openai and anthropic); running as usual"
        );
        return Ok(batched);
    }
    eprintln!(
        "promptgate: --batch: {count} of {} calls go through batch APIs at the batch rate ({}% of the list price); their latency is not measured",
        jobs.len(),
        crate::providers::pricing::BATCH_DISCOUNT * 100.0
    );
    Ok(batched)
}

/// Which of `jobs` go through a batch API, as [`plan`] decides, without its checks and words:
/// a shard's part of a plan [`plan`] has already announced.
pub fn marks(jobs: &[Job], endpoints: &BTreeMap<String, super::Endpoint>) -> Vec<bool> {
    jobs.iter().map(|j| goes_in_batch(j, endpoints)).collect()
}

/// The plan's estimate with the batched jobs (`batched`, as [`plan`] says) at the batch rate.
pub fn estimate(jobs: &[Job], batched: &[bool], prices: &crate::providers::pricing::PriceTable) -> plan::CostEstimate {
    let (in_batches, one_by_one): (Vec<_>, Vec<_>) = jobs.iter().zip(batched).partition(|(_, b)| **b);
    let owned = |pairs: Vec<(&Job, &bool)>| pairs.into_iter().map(|(j, _)| j.clone()).collect::<Vec<Job>>();
    plan::estimate(&owned(one_by_one), prices).plus(plan::estimate(&owned(in_batches), &prices.at_batch_rate()))
}

/// One job in a batch.
struct Member {
    index: usize,
    key: String,
    cache_key: String,
    request: Request,
    reservation: Reservation,
}

/// One submitted batch and its members.
struct Submitted<'a> {
    provider: &'a str,
    api: &'a dyn BatchApi,
    id: String,
    record: Option<PathBuf>,
    members: Vec<Member>,
    last: Option<(String, u64)>,
}

/// Runs `indices` (jobs with [`batchable`] true) through their providers' batch APIs.
pub(super) async fn run(
    runner: &Runner<'_>,
    options: &BatchOptions,
    watch: &interrupt::Watch,
    jobs: &[Job],
    indices: &[usize],
) -> Batched {
    let batch_prices = runner.prices.at_batch_rate();
    let mut done = Batched::default();
    // Answered by the cache first (a call is never paid for twice), then reserved under the cap.
    let mut by_provider: BTreeMap<&str, Vec<Member>> = BTreeMap::new();
    // The calls the cache did not answer, each with its worst case at the batch rate.
    let mut unreserved = Vec::new();
    for &index in indices {
        let job = &jobs[index];
        let (Ok(request), Some(key), Some(endpoint)) = (
            &job.request,
            super::job_key(job, runner.endpoints),
            runner.endpoints.get(&*job.provider),
        ) else {
            continue;
        };
        let sent = runner.as_sent(request, endpoint);
        let cache_key = cache::key(&endpoint.cache_identity, &sent);
        if let Some(cache) = &runner.cache
            && let Some((response, latency)) = cache.get(&cache_key).await
        {
            let outcome = Outcome {
                result: Ok(response),
                latency_ms: latency,
                cached: true,
                attempts: 0,
                provider: Some(job.provider.clone()),
                fell_back: false,
                batched: false,
            };
            runner.record(&key.hex(), &outcome, 0.0);
            done.outcomes.push((index, outcome));
            continue;
        }
        let upper = plan::request_upper_bound_usd(request, &batch_prices).unwrap_or(0.0);
        unreserved.push((
            upper,
            index,
            job.provider.as_str(),
            key.hex(),
            cache_key,
            sent.into_owned(),
        ));
    }
    // A batch reserves every call's worst case at once (its `max_tokens` written out), several
    // times the estimate the plan's check passed for short answers: when that cannot fit under
    // the cap, no call is sent, rather than a part of them paid for in a run that then stops
    // at the cap (the audit: exit 3 with $0.185 of $1.00 spent).
    let worst_case: f64 = unreserved.iter().map(|(upper, ..)| upper).sum();
    let room = runner.budget.room();
    let fits = room.is_none_or(|room| worst_case <= room);
    if let Some(room) = room.filter(|_| !fits) {
        eprintln!(
            "promptgate: --batch: the {} batched calls' worst case, {} (each call's `max_tokens` at the batch rate, reserved at once), does not fit the {} the budget's hard cap leaves: none is sent\nhint: lower `max_tokens` in the variants, raise `budget.max_usd`, or run without --batch (calls sent one by one reserve only what is in flight)",
            unreserved.len(),
            plan::usd(worst_case),
            plan::usd(room.max(0.0)),
        );
    }
    for (upper, index, provider, key, cache_key, request) in unreserved {
        let Some(reservation) = fits.then(|| runner.budget.try_reserve(upper)).flatten() else {
            done.budget_exhausted = true;
            done.outcomes.push((
                index,
                not_sent(CallError::BudgetRefused {
                    cap_usd: runner.options.max_usd.unwrap_or(0.0),
                }),
            ));
            continue;
        };
        by_provider.entry(provider).or_default().push(Member {
            index,
            key,
            cache_key,
            request,
            reservation,
        });
    }

    // Submit (or find the recorded batch of) each chunk.
    let mut running: Vec<Submitted<'_>> = Vec::new();
    for (provider, members) in by_provider {
        let Some(endpoint) = runner.endpoints.get(provider) else {
            continue;
        };
        let Some(api) = endpoint.provider.batch() else { continue };
        // Jobs a recorded batch holds go back to it, even when others of its members were
        // answered since (by the journal, the cache, another run): a chunk of the rest would
        // be a new batch, paid for beside the one still running.
        let recorded = options
            .records_dir
            .as_deref()
            .map(|dir| held(dir, provider))
            .unwrap_or_default();
        let (members, resumed): (Vec<Member>, Vec<Member>) = members
            .into_iter()
            .partition(|m| !recorded.batches.contains_key(&m.key));
        let mut by_batch: BTreeMap<&(PathBuf, String), Vec<Member>> = BTreeMap::new();
        for m in resumed {
            by_batch.entry(&recorded.batches[&m.key]).or_default().push(m);
        }
        for ((path, id), members) in by_batch {
            say(
                runner,
                &format!("resuming batch {id} of `{provider}` ({} of its calls)", members.len()),
            );
            running.push(Submitted {
                provider,
                api,
                id: id.clone(),
                record: Some(path.clone()),
                members,
                last: None,
            });
        }
        // Jobs a stopped run was submitting in a batch of other content (a narrower or wider
        // plan): that batch may be at the provider, so it is looked for first; found, they are
        // read from it, else they are submitted with the rest.
        let (mut members, intended): (Vec<Member>, Vec<Member>) = members
            .into_iter()
            .partition(|m| !recorded.intents.contains_key(&m.key));
        let mut by_intent: BTreeMap<&PathBuf, Vec<Member>> = BTreeMap::new();
        for m in intended {
            by_intent.entry(&recorded.intents[&m.key]).or_default().push(m);
        }
        for (path, group) in by_intent {
            let sought = match read_record(path, provider) {
                Some(Recorded::Submitting(intent)) if api.can_find(&intent.as_sought()) => intent,
                _ => {
                    members.extend(group);
                    continue;
                }
            };
            match find(api, &sought.as_sought(), options.first_poll).await {
                Ok(Some(id)) => {
                    write_record(path, provider, &id, "", record_keys(path));
                    say(
                        runner,
                        &format!(
                            "found batch {id} of `{provider}` ({} of its calls), submitted by a run that stopped before recording it",
                            group.len()
                        ),
                    );
                    running.push(Submitted {
                        provider,
                        api,
                        id,
                        record: Some(path.clone()),
                        members: group,
                        last: None,
                    });
                }
                Ok(None) => {
                    // Not at the provider: its record is no use to anyone.
                    record::forget(path);
                    members.extend(group);
                }
                Err(e) => {
                    let error = lost_batch_error(provider, &e, Some(path));
                    for m in group {
                        runner.budget.settle_uncertain(m.reservation);
                        done.outcomes.push((m.index, failed(provider, error.clone(), 0)));
                    }
                }
            }
        }
        let size = |m: &Member| api.entry(&m.key, &m.request).to_string().len() + 1;
        for chunk in split(members, api.limits(), size) {
            let entries: Vec<serde_json::Value> = chunk.iter().map(|m| api.entry(&m.key, &m.request)).collect();
            let digest = digest(&endpoint.cache_identity, &entries);
            let record = options
                .records_dir
                .as_deref()
                .map(|dir| dir.join(format!("{digest}.json")));
            let recorded = record.as_deref().and_then(|path| read_record(path, provider));
            // A run stopped (or refused) after writing its intent and before recording the id:
            // the provider may hold that attempt's batch, found by its tag, or its size and time.
            let found = match &recorded {
                Some(Recorded::Submitting(sought)) if api.can_find(&sought.as_sought()) => {
                    find(api, &sought.as_sought(), options.first_poll)
                        .await
                        .map(|found| (found, true))
                }
                _ => Ok((None, false)),
            };
            let id = match (recorded, found) {
                (Some(Recorded::Batch(id)), _) => {
                    say(
                        runner,
                        &format!("resuming batch {id} of `{provider}` ({} calls)", chunk.len()),
                    );
                    id
                }
                (_, Ok((Some(id), _))) => {
                    if let Some(path) = &record {
                        write_record(path, provider, &id, "", member_keys(&chunk));
                    }
                    say(
                        runner,
                        &format!(
                            "found batch {id} of `{provider}` ({} calls), submitted by a run that stopped before recording it",
                            chunk.len()
                        ),
                    );
                    id
                }
                // Submitting again could pay twice for a batch the provider holds: these jobs
                // fail, and a rerun looks again.
                (_, Err(e)) => {
                    let error = lost_batch_error(provider, &e, record.as_deref());
                    for m in chunk {
                        runner.budget.settle_uncertain(m.reservation);
                        done.outcomes.push((m.index, failed(provider, error.clone(), 0)));
                    }
                    continue;
                }
                (recorded, Ok((None, searched))) => {
                    if matches!(recorded, Some(Recorded::Submitting(_))) {
                        let why = if searched {
                            "none was found at the provider"
                        } else {
                            "the record holds nothing to find it by"
                        };
                        say(
                            runner,
                            &format!(
                                "a batch of `{provider}` was being submitted when a run stopped or was refused, and {why}: submitting again"
                            ),
                        );
                    }
                    // This attempt's own tag: a batch an earlier attempt left at the provider
                    // (answered, expired) is never taken for it.
                    let tag = format!("{digest}-{}", attempt_nonce());
                    if let Some(path) = &record {
                        write_record(path, provider, "", &tag, member_keys(&chunk));
                    }
                    match api.submit(&entries, &tag).await {
                        Ok(id) => {
                            if let Some(path) = &record {
                                write_record(path, provider, &id, "", member_keys(&chunk));
                            }
                            say(
                                runner,
                                &format!("submitted batch {id} to `{provider}` ({} calls)", chunk.len()),
                            );
                            id
                        }
                        Err(e) => {
                            // Refused, so nothing is paid or journaled. The intent stays: a refusal
                            // the provider had in fact accepted (a timeout, an answer that could
                            // not be read) is found by the rerun, and held as billed meanwhile.
                            let error = CallError::from_provider(&e);
                            for m in chunk {
                                if matches!(e, ProviderError::Timeout { .. } | ProviderError::Unsettled { .. }) {
                                    runner.budget.settle_uncertain(m.reservation);
                                } else {
                                    runner.budget.settle(m.reservation, 0.0);
                                }
                                done.outcomes.push((m.index, failed(provider, error.clone(), 0)));
                            }
                            continue;
                        }
                    }
                }
            };
            running.push(Submitted {
                provider,
                api,
                id,
                record,
                members: chunk,
                last: None,
            });
        }
    }

    // Poll until every batch ended, Ctrl-C, or the wait runs out.
    let started = tokio::time::Instant::now();
    let deadline = started + options.timeout;
    let mut wait = options.first_poll;
    while !running.is_empty() {
        let mut still = Vec::new();
        for mut batch in running {
            match batch.api.status(&batch.id).await {
                Ok(Some(status)) => {
                    let now = (status.status.clone(), status.done);
                    if batch.last.as_ref() != Some(&now) {
                        say(
                            runner,
                            &format!(
                                "batch {} of `{}`: {}, {}/{} done, {} failed",
                                status.id,
                                batch.provider,
                                status.status,
                                status.done,
                                status.total,
                                status.failed_requests
                            ),
                        );
                        batch.last = Some(now);
                    }
                    if status.ended {
                        finish(runner, &batch_prices, batch, &status, &mut done).await;
                    } else {
                        still.push(batch);
                    }
                }
                // A poll that failed for a while (a network blip, a 5xx) is asked again.
                Err(
                    ProviderError::Transient { .. }
                    | ProviderError::RateLimited { .. }
                    | ProviderError::Timeout { .. }
                    | ProviderError::Unsettled { .. },
                ) => still.push(batch),
                Ok(None) => {
                    // The provider does not know the batch (HTTP 404: deleted, or submitted
                    // under another account): the record is no use to a rerun either.
                    if let Some(path) = &batch.record {
                        record::forget(path);
                    }
                    let error = CallError::from_provider(&ProviderError::Permanent {
                        message: format!(
                            "`{}` does not know batch {} (HTTP 404): it was deleted, or submitted with another account's key",
                            batch.provider, batch.id
                        ),
                    });
                    for m in batch.members {
                        runner.budget.settle(m.reservation, 0.0);
                        done.outcomes.push((m.index, failed(batch.provider, error.clone(), 1)));
                    }
                }
                Err(e) => {
                    // Any other refusal (a rotated or narrower key's 401 or 403, a body of
                    // another shape) says nothing of the batch, which may well still run and
                    // be billed: its record stays and its jobs end pending, so a run with a
                    // working key polls it instead of paying for its calls again.
                    let status = format!("not polled: {e}");
                    done.pending
                        .push(format!("`{}`: {} ({status})", batch.provider, batch.id));
                    for m in batch.members {
                        runner.budget.settle_uncertain(m.reservation);
                        let error = CallError::BatchPending {
                            batch_id: batch.id.clone(),
                            status: status.clone(),
                        };
                        done.outcomes.push((m.index, failed(batch.provider, error, 0)));
                    }
                }
            }
        }
        running = still;
        if running.is_empty() {
            break;
        }
        // Sleep in short steps, so Ctrl-C is heard at once.
        let until = (tokio::time::Instant::now() + wait).min(deadline);
        while tokio::time::Instant::now() < until && !watch.stop_requested() {
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + Duration::from_millis(100))).await;
        }
        wait = (wait * 2).min(options.max_poll);
        let interrupted = watch.stop_requested();
        if interrupted || tokio::time::Instant::now() >= deadline {
            // The batches go on at the provider; their records stay, so a rerun polls them.
            for batch in running {
                let status = batch.last.as_ref().map_or("submitted", |(s, _)| s.as_str()).to_owned();
                if !interrupted {
                    done.pending
                        .push(format!("`{}`: {} ({status})", batch.provider, batch.id));
                }
                for m in batch.members {
                    runner.budget.settle_uncertain(m.reservation);
                    let error = if interrupted {
                        CallError::Interrupted {
                            waiting_to_retry: false,
                        }
                    } else {
                        CallError::BatchPending {
                            batch_id: batch.id.clone(),
                            status: status.clone(),
                        }
                    };
                    done.outcomes.push((m.index, failed(batch.provider, error, 0)));
                }
            }
            break;
        }
    }
    done
}

/// Maps an ended batch's results back to its members: each is journaled (and an answer
/// cached) before the record goes.
async fn finish(
    runner: &Runner<'_>,
    batch_prices: &crate::providers::pricing::PriceTable,
    batch: Submitted<'_>,
    status: &Status,
    done: &mut Batched,
) {
    let items = match batch.api.results(status).await {
        Ok(items) => items,
        Err(e) => {
            // The batch ran but its results could not be read: the record stays, so a rerun
            // reads them without paying again. (Not even a permanent refusal drops it: a
            // narrower key's 403, an oversized file or a gateway's results address fail alike
            // on every read, and dropping the record would pay for the batch again each time.)
            // Only a record kept for others after its results were read once goes: refused
            // for good now, they are gone at the provider, and its calls are submitted anew.
            // The batch ran and is billed: its reservations stay held against the cap.
            if let (ProviderError::Permanent { .. }, Some(path)) = (&e, &batch.record)
                && record::was_read(path)
            {
                record::forget(path);
            }
            let error = CallError::from_provider(&e);
            for m in batch.members {
                runner.budget.settle_uncertain(m.reservation);
                done.outcomes.push((m.index, failed(batch.provider, error.clone(), 1)));
            }
            return;
        }
    };
    let mut by_id: HashMap<String, Item> = items.into_iter().collect();
    let mut cache_failed = false;
    let mut claimed: Vec<String> = batch.members.iter().map(|m| m.key.clone()).collect();
    for m in batch.members {
        let result = match by_id.remove(&m.key) {
            Some(Item::Answered(body)) => batch
                .api
                .response(&m.request, body)
                .map_err(|e| CallError::from_provider(&e)),
            Some(Item::Failed(e)) => Err(CallError::from_provider(&e)),
            Some(Item::Expired) => Err(CallError::BatchExpired {
                batch_id: batch.id.clone(),
            }),
            Some(Item::Canceled) => Err(CallError::BatchCanceled {
                batch_id: batch.id.clone(),
            }),
            None => Err(missing(&batch.id, status)),
        };
        let (result, cost) = match result {
            Ok(mut response) => {
                if crate::secrets::needs_redaction(&response.text) {
                    response.text = crate::secrets::redact(&response.text);
                }
                let cost = batch_prices.cost(&m.request.model, &response.usage).unwrap_or(0.0);
                (within_output_limit(response), cost)
            }
            Err(e) => (Err(e), 0.0),
        };
        runner.budget.settle(m.reservation, cost);
        let outcome = Outcome {
            result,
            latency_ms: None,
            cached: false,
            attempts: 1,
            provider: Some(batch.provider.into()),
            fell_back: false,
            batched: true,
        };
        runner.record(&m.key, &outcome, cost);
        if let (Some(cache), Ok(response)) = (&runner.cache, &outcome.result)
            && let Err(e) = cache.put(&m.cache_key, response, None).await
        {
            cache_failed = true;
            if !runner.cache_warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
                eprintln!("warning: cannot write the response cache: {e}; later runs will call again");
            }
        }
        done.outcomes.push((m.index, outcome));
    }
    // Members no run has taken that the batch did not answer (failed, expired, canceled) have
    // nothing to keep: a run that needs them submits them anew.
    claimed.extend(
        by_id
            .into_iter()
            .filter(|(_, item)| !matches!(item, Item::Answered(_)))
            .map(|(key, _)| key),
    );
    // Every answer is journaled and cached: the batch has served this run. Its record goes once
    // no other member waits for it (if the cache failed, it is kept, so a rerun reads the
    // results again rather than paying).
    if let Some(path) = &batch.record
        && !cache_failed
    {
        let claimed = claimed.iter().map(String::as_str).collect();
        let others = record::release(path, &claimed);
        if others > 0 {
            say(
                runner,
                &format!(
                    "batch {} of `{}` ended: its record is kept for the {others} of its calls this run did not need",
                    batch.id, batch.provider
                ),
            );
        }
    }
}

/// Why a job of a batch a stopped run submitted fails when that batch cannot be looked for:
/// submitting again could pay twice for a batch the provider holds.
fn lost_batch_error(provider: &str, e: &ProviderError, record: Option<&Path>) -> CallError {
    CallError::from_provider(&ProviderError::Transient {
        message: format!(
            "cannot look for the batch of `{provider}` a stopped run submitted ({e}); a rerun looks again, or delete {} to submit it anew",
            record.map_or_else(String::new, |p| p.display().to_string())
        ),
        retry_after_ms: None,
    })
}

/// A batch's answer no longer than one call's can be (`results::LONGEST_OUTPUT`, what
/// `calls.jsonl` is sized to read back): a results file is read whole, up to far more. A longer
/// one is the call's failure (it is still paid for).
fn within_output_limit(response: crate::providers::Response) -> Result<crate::providers::Response, CallError> {
    if response.text.len() as u64 <= crate::results::LONGEST_OUTPUT {
        return Ok(response);
    }
    Err(CallError::Permanent {
        message: format!(
            "the batch's answer is {} bytes, longer than the {} MiB one call may return",
            response.text.len(),
            crate::results::LONGEST_OUTPUT >> 20
        ),
    })
}

/// Why a member has no result in an ended batch.
fn missing(batch_id: &str, status: &Status) -> CallError {
    let batch_id = batch_id.to_owned();
    if let Some(message) = &status.failed {
        return CallError::BatchFailed {
            batch_id,
            message: message.clone(),
        };
    }
    match status.status.as_str() {
        "expired" => CallError::BatchExpired { batch_id },
        "cancelled" | "canceled" => CallError::BatchCanceled { batch_id },
        other => CallError::Permanent {
            message: format!("batch {batch_id} ended ({other}) without a result for this request"),
        },
    }
}

fn failed(provider: &str, error: CallError, attempts: u32) -> Outcome {
    Outcome {
        result: Err(error),
        latency_ms: None,
        cached: false,
        attempts,
        provider: Some(provider.into()),
        fell_back: false,
        batched: true,
    }
}

/// Splits `items` into batches within `limits`, in order; `size` is an item's bytes in the
/// batch (its JSONL line and newline; Anthropic's JSON array adds a comma, as small).
fn split<T>(items: Vec<T>, limits: Limits, size: impl Fn(&T) -> usize) -> Vec<Vec<T>> {
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_size = size(&item);
        let full = chunks
            .last()
            .is_none_or(|c| c.len() >= limits.max_requests || (bytes + item_size > limits.max_bytes && !c.is_empty()));
        if full {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += item_size;
        if let Some(chunk) = chunks.last_mut() {
            chunk.push(item);
        }
    }
    chunks
}

/// [`BatchApi::find`], tried three times over a transient failure (a rate limit, a 5xx), `wait`
/// and then twice that apart.
async fn find(api: &dyn BatchApi, sought: &Sought<'_>, wait: Duration) -> Result<Option<String>, ProviderError> {
    let mut wait = wait;
    for _ in 0..2 {
        match api.find(sought).await {
            Err(
                ProviderError::Transient { .. } | ProviderError::RateLimited { .. } | ProviderError::Unsettled { .. },
            ) => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            done => return done,
        }
    }
    api.find(sought).await
}

/// The digest of the endpoint and every entry: the record's name (`{dir}/{digest}.json`) and the
/// start of the batch's tag at the provider. The same plan finds the same record, a changed one
/// submits its own.
fn digest(cache_identity: &str, entries: &[serde_json::Value]) -> String {
    let mut h = Sha256::new();
    h.update(cache_identity.as_bytes());
    for entry in entries {
        h.update([0]);
        h.update(entry.to_string().as_bytes());
    }
    hex::encode(h.finalize())
}

/// A progress line on stderr (not in quiet mode).
fn say(runner: &Runner<'_>, line: &str) {
    if runner.options.progress != super::ProgressMode::Quiet {
        eprintln!("promptgate: {}", crate::output::inert(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The intent a run records before submitting holds the time it was about to (what a
    /// batch API without labels finds the batch by); a batch's id, once known, replaces it.
    #[test]
    fn a_records_intent_holds_its_time_and_size_and_the_id_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("batches/digest.json");
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let before = now();
        let three = || vec!["k1".to_owned(), "k2".to_owned(), "k3".to_owned()];
        write_record(&path, "p", "", "digest-nonce", three());
        let after = now();
        let Some(Recorded::Submitting(intent)) = read_record(&path, "p") else {
            panic!("an intent");
        };
        assert_eq!((intent.tag.as_str(), intent.calls), ("digest-nonce", 3));
        assert!(
            (before..=after).contains(&intent.since),
            "{before} ≤ {} ≤ {after}",
            intent.since
        );
        let sought = intent.as_sought();
        assert_eq!(
            sought.since,
            Some(std::time::UNIX_EPOCH + Duration::from_secs(intent.since))
        );
        assert!(read_record(&path, "q").is_none(), "another provider's record");

        write_record(&path, "p", "msgbatch_7", "", three());
        assert!(matches!(read_record(&path, "p"), Some(Recorded::Batch(id)) if id == "msgbatch_7"));
        // Each member is found by its key, in the record of its batch.
        let batches = held(&dir.path().join("batches"), "p").batches;
        assert_eq!(batches.len(), 3);
        assert_eq!(batches["k2"], (path.clone(), "msgbatch_7".to_owned()));
        assert!(held(&dir.path().join("batches"), "q").batches.is_empty());
        // The id replaced the intent's tag; the time is now when the id was recorded (the
        // record expires by it).
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("\"tag\"") && text.contains("\"since\""), "{text}");
    }

    #[test]
    fn an_answer_longer_than_one_call_may_return_is_the_calls_failure() {
        let answer = |bytes: u64| crate::providers::Response {
            text: "x".repeat(bytes as usize),
            usage: crate::providers::Usage::default(),
            latency_ms: None,
        };
        let limit = crate::results::LONGEST_OUTPUT;
        assert_eq!(within_output_limit(answer(limit)).unwrap().text.len() as u64, limit);
        let Err(CallError::Permanent { message }) = within_output_limit(answer(limit + 1)) else {
            panic!("a longer answer passed");
        };
        assert!(message.contains("longer than the 16 MiB"), "{message}");
    }

    /// `--batch` sends the jobs of providers with a batch API that are completions, and
    /// refuses before anything is sent when a blocking latency gate would need their latency.
    #[test]
    fn batch_plan_picks_batchable_jobs_and_refuses_a_blocking_latency_gate() {
        use crate::providers::http::{ApiKey, tests::spec};
        use crate::suite::{GateSpec, Margin, ProviderKind};
        let endpoint = |provider: std::sync::Arc<dyn crate::providers::Provider>| super::super::Endpoint {
            provider,
            concurrency: 1,
            timeout: Duration::from_secs(1),
            max_retries: 0,
            requests_per_minute: None,
            tokens_per_minute: None,
            cache_identity: String::new(),
        };
        let openai = crate::providers::openai::OpenAiProvider::with_key(
            &spec(ProviderKind::Openai, Some("http://127.0.0.1:9/v1")),
            Some(ApiKey::new("OPENAI_API_KEY", "sk-test-0123456789")),
        )
        .unwrap();
        let endpoints = BTreeMap::from([
            ("openai".to_owned(), endpoint(std::sync::Arc::new(openai))),
            (
                "offline".to_owned(),
                endpoint(std::sync::Arc::new(crate::providers::mock::MockProvider::new())),
            ),
        ]);
        let job = |provider: &str, embed: bool| Job {
            experiment: 0,
            case: 0,
            arm: crate::plan::Arm::Candidate,
            repeat: 0,
            provider: provider.into(),
            fallbacks: Default::default(),
            request: Ok(if embed {
                crate::providers::Request::embedding("text-embedding-3-small", "x")
            } else {
                crate::providers::http::tests::request()
            }),
            retime: false,
        };
        let jobs = [job("openai", false), job("offline", false), job("openai", true)];
        let latency = |blocking| GateSpec {
            metric: "latency_p95_ms".to_owned(),
            direction: crate::results::Direction::Lower,
            margin: Margin::Relative(0.1),
            alpha: 0.05,
            blocking,
            slo: None,
            require_non_inferiority: false,
            require_equivalence: false,
        };
        assert_eq!(
            plan(&jobs, &endpoints, &[latency(false)]).unwrap(),
            vec![true, false, false]
        );
        let refused = plan(&jobs, &endpoints, &[latency(true)]).unwrap_err();
        // Also when the gate has marked the jobs to be timed in this run.
        let retimed: Vec<Job> = jobs
            .iter()
            .map(|j| Job {
                retime: true,
                ..j.clone()
            })
            .collect();
        assert!(plan(&retimed, &endpoints, &[latency(true)]).is_err());
        assert_eq!(refused.exit_code(), crate::error::exit::USAGE);
        let text = refused.to_string();
        assert!(text.contains("blocking gate `latency_p95_ms`"), "{text}");
        // Nothing batchable: a blocking latency gate is no obstacle, and nothing is batched.
        assert_eq!(plan(&jobs[1..2], &endpoints, &[latency(true)]).unwrap(), vec![false]);
    }

    /// Batches stop at the request limit and before the byte limit; one item larger than the
    /// byte limit still goes (alone), for the API to refuse it with its own words.
    #[test]
    fn split_respects_the_request_and_byte_limits_in_order() {
        #[track_caller]
        fn check(sizes: &[usize], max_requests: usize, max_bytes: usize, expected: &[&[usize]]) {
            let limits = Limits {
                max_requests,
                max_bytes,
            };
            let got = split(sizes.to_vec(), limits, |s| *s);
            let expected: Vec<Vec<usize>> = expected.iter().map(|c| c.to_vec()).collect();
            assert_eq!(got, expected);
        }
        check(&[1, 1, 1, 1, 1], 2, 100, &[&[1, 1], &[1, 1], &[1]]);
        check(&[40, 40, 40], 10, 100, &[&[40, 40], &[40]]);
        check(&[50, 50, 1], 10, 100, &[&[50, 50], &[1]]);
        check(&[150, 10], 10, 100, &[&[150], &[10]]);
        check(&[], 10, 100, &[]);
    }
}
