//! Score: the runner's outcomes become the results' calls, scored by the experiment's
//! assertions and grouped by experiment, case and arm. No statistics here: `verdict` judges what
//! this builds.

use std::collections::BTreeMap;

use crate::detect::Detection;
use crate::metrics::DEFAULT_TIMEOUT_MS;
use crate::plan::{self, Arm, Job, Planned};
use crate::providers::pricing::PriceTable;
use crate::results::*;
use crate::runner::{Derived, Outcome};
use crate::scorers;
use crate::suite;

/// What [`experiments`] reads: the plan, its jobs and their outcomes.
pub struct Input<'a> {
    pub planned: &'a [Planned<'a>],
    pub detection: &'a Detection,
    pub jobs: &'a [Job],
    pub outcomes: &'a [Outcome],
    pub prices: &'a PriceTable,
    /// Per planned experiment, its provider's `timeout_ms` in the baseline and the candidate arm.
    pub timeouts: &'a [(u64, u64)],
    /// Only this shard's cases are in `jobs`; the others are left out of the results.
    pub shard: Option<Shard>,
    /// Endpoint keys → the provider names the suite configures (a baseline's own endpoint has
    /// an internal key; its calls report the configured name). Keys not listed are names.
    pub provider_names: &'a BTreeMap<String, String>,
    /// The run's `exec` scorers (they run here, each distinct output once).
    pub exec: &'a scorers::ExecScorers,
    /// The judge calls the outputs asked for (`Derived::parent` indexes `jobs`).
    pub judged: &'a [Derived],
}

/// The compared experiments, in plan order, with their scored calls (not yet judged).
pub fn experiments(input: &Input<'_>) -> Vec<ExperimentResult> {
    let vectors = scorers::embeddings::vectors(input.judged);
    let context = |job: &Job| {
        let case = &input.planned[job.experiment].candidate.cases[job.case];
        scorers::Context {
            case_id: &case.id,
            vars: &case.vars,
            exec: input.exec,
            embeddings: &vectors,
        }
    };
    // The `exec` scorers first, several at a time: each call's scoring then reads their
    // outcomes.
    let contexts: Vec<scorers::Context<'_>> = input.jobs.iter().map(context).collect();
    let mut requests = Vec::new();
    for ((job, outcome), cx) in input.jobs.iter().zip(input.outcomes).zip(&contexts) {
        if let Ok(response) = &outcome.result {
            let experiment = input.planned[job.experiment].candidate;
            let assertions = experiment.asserts.iter().chain(&experiment.cases[job.case].asserts);
            requests.extend(scorers::exec_requests(assertions, cx, &response.text));
        }
    }
    input.exec.run(&requests);

    // Calls, grouped by experiment, case and arm.
    let mut grouped: BTreeMap<(usize, usize, Arm), Vec<Call>> = BTreeMap::new();
    let mut judged: BTreeMap<usize, Vec<&Derived>> = BTreeMap::new();
    // What each output's embeddings cost (a reference embedded once is paid once: the
    // outputs that took its answer got it as a cache hit).
    let mut embedding_cost: BTreeMap<usize, f64> = BTreeMap::new();
    let mut compared: BTreeMap<(usize, usize, u32), Vec<&Derived>> = BTreeMap::new();
    for derived in input.judged {
        if scorers::embeddings::is_embedding(derived) {
            if let (Ok(response), Ok(request), false) =
                (&derived.outcome.result, &derived.job.request, derived.outcome.cached)
            {
                *embedding_cost.entry(derived.parent).or_default() +=
                    input.prices.cost(&request.model, &response.usage).unwrap_or(0.0);
            }
            continue;
        }
        // A comparison is the pair's, whichever output arrived second: the candidate's
        // call of its case and repeat carries it.
        if derived.tag.first.is_some() {
            compared
                .entry((derived.job.experiment, derived.job.case, derived.job.repeat))
                .or_default()
                .push(derived);
            continue;
        }
        judged.entry(derived.parent).or_default().push(derived);
    }
    for (index, ((job, outcome), cx)) in input.jobs.iter().zip(input.outcomes).zip(&contexts).enumerate() {
        let experiment = input.planned[job.experiment].candidate;
        let case = &experiment.cases[job.case];
        let assertions: Vec<&suite::Assertion> = experiment.asserts.iter().chain(&case.asserts).collect();
        let mut judgements = judgements(input, judged.get(&index).map_or(&[][..], Vec::as_slice), &assertions);
        let masked = |text: &str| scorers::mask_personal_data(&assertions, text).into_owned();
        for (judgement, _, _) in &mut judgements {
            judgement.reason = judgement.reason.as_deref().map(masked);
        }
        let comparisons = match job.arm {
            Arm::Candidate => comparisons(
                input,
                compared
                    .get(&(job.experiment, job.case, job.repeat))
                    .map_or(&[][..], Vec::as_slice),
                &assertions,
            ),
            Arm::Baseline => Vec::new(),
        };
        let compares: Vec<&suite::Assertion> = assertions
            .iter()
            .copied()
            .filter(|a| matches!(a.check, suite::Check::Compare(_)))
            .collect();
        let model = job.request.as_ref().map(|r| r.model.as_str()).unwrap_or_default();
        let provider = outcome
            .provider
            .as_ref()
            .map(|key| Name::new(input.provider_names.get(key).unwrap_or(key)));
        let call = match &outcome.result {
            Ok(response) => {
                let mut scored = scorers::score(assertions.iter().copied(), &response.text, cx);
                let replies: Vec<_> = judgements.iter().map(|(_, a, r)| (*a, r.as_ref())).collect();
                scorers::judge::apply(&mut scored.scores, &mut scored.failures, &replies);
                // The baseline compared with itself is a tie: 0, so the paired difference is
                // the candidate's preference (`scorers::compare`).
                if job.arm == Arm::Baseline && input.planned[job.experiment].baseline.is_some() {
                    for a in &compares {
                        scored.scores.insert(&a.metric, Score::Number(0.0));
                    }
                }
                let preferences: Vec<_> = comparisons
                    .iter()
                    .map(|(_, a, repeat, first, p)| (*a, *repeat, *first, *p))
                    .collect();
                scorers::compare::apply(&mut scored.scores, &preferences);
                let usage = response.usage;
                Call {
                    repeat: job.repeat,
                    output: Some(masked(&response.text)),
                    error: None,
                    latency_ms: outcome.latency_ms,
                    tokens: Tokens {
                        input: usage.input,
                        cached_input: usage.cached_input,
                        output: usage.output,
                    },
                    // A cache hit costs nothing; its list price still feeds cost_per_request, so a
                    // warm cache cannot make one arm look cheaper. A batched call costs the batch
                    // rate, and its list price feeds cost_per_request for the same reason: an arm
                    // answered from an earlier batch's cache compares at the same price.
                    cost_usd: if outcome.cached {
                        0.0
                    } else if outcome.batched {
                        input.prices.at_batch_rate().cost(model, &usage).unwrap_or(0.0)
                    } else {
                        input.prices.cost(model, &usage).unwrap_or(0.0)
                    },
                    list_cost_usd: input.prices.cost(model, &usage).unwrap_or(0.0),
                    cached: outcome.cached,
                    attempts: outcome.attempts,
                    provider: provider.clone(),
                    fell_back: outcome.fell_back,
                    batch: outcome.batched,
                    scores: scored.scores,
                    failures: scored.failures,
                    scorer_errors: scored.scorer_errors,
                    judgements: judgements
                        .drain(..)
                        .map(|(j, _, _)| j)
                        .chain(comparisons.into_iter().map(|(j, ..)| j))
                        .collect(),
                    embedding_cost_usd: embedding_cost.get(&index).copied().unwrap_or(0.0),
                }
            }
            Err(error) => {
                let error = error.to_string();
                let scored = scorers::errored(assertions.iter().copied(), &error);
                Call {
                    repeat: job.repeat,
                    output: None,
                    error: Some(error),
                    latency_ms: None,
                    tokens: Tokens::default(),
                    cost_usd: 0.0,
                    list_cost_usd: 0.0,
                    cached: false,
                    attempts: outcome.attempts,
                    provider: provider.clone(),
                    fell_back: outcome.fell_back,
                    batch: outcome.batched,
                    scores: scored.scores,
                    failures: scored.failures,
                    scorer_errors: scored.scorer_errors,
                    judgements: Vec::new(),
                    embedding_cost_usd: 0.0,
                }
            }
        };
        // Sized for the case's repeats: a default `Vec` grows to four calls, which at one
        // repeat is four times the memory of every call a large run holds.
        grouped
            .entry((job.experiment, job.case, job.arm))
            .or_insert_with(|| Vec::with_capacity(experiment.repeats.max(1) as usize))
            .push(call);
    }

    let mut experiments: Vec<ExperimentResult> = Vec::new();
    for (ei, planned) in input.planned.iter().enumerate() {
        let head = planned.candidate;
        // `planned` holds the affected experiments found at head, in detection order; match by
        // name rather than position, so a plan that skipped one cannot shift the others.
        let detected = input.detection.affected.iter().find(|a| a.name == head.name);
        let (status, affected_by) = detected.map_or((ExperimentStatus::Forced, Vec::new()), |a| {
            (a.status, a.affected_by.clone())
        });
        let changed = detected.map_or_else(ChangeFacts::default, |a| ChangeFacts {
            changes: a.changes.clone(),
            dataset_changes: a.dataset_changes.clone(),
        });
        let cases: Vec<CaseResult> = head
            .cases
            .iter()
            .enumerate()
            .filter(|(_, case)| {
                input
                    .shard
                    .is_none_or(|s| plan::shard_of(&head.name, &case.id, s.count) == s.index)
            })
            .map(|(ci, case)| {
                let mut baseline = grouped.remove(&(ei, ci, Arm::Baseline)).unwrap_or_default();
                let mut candidate = grouped.remove(&(ei, ci, Arm::Candidate)).unwrap_or_default();
                baseline.sort_by_key(|c| c.repeat);
                candidate.sort_by_key(|c| c.repeat);
                if head.repeats > 1 {
                    add_consistency(&mut baseline);
                    add_consistency(&mut candidate);
                }
                let flip = flip(&baseline, &candidate);
                CaseResult {
                    group: case.group.clone(),
                    id: case.id.clone(),
                    input: case.input_text(),
                    baseline,
                    candidate,
                    flip,
                }
            })
            .collect();
        experiments.push(ExperimentResult {
            name: head.name.clone(),
            status,
            affected_by,
            verdict: ExperimentVerdict::Pass,
            reason: String::new(),
            provider: head.provider.clone(),
            baseline: planned
                .baseline
                .map(|b| arm_info(b, input.timeouts.get(ei).map_or(DEFAULT_TIMEOUT_MS, |t| t.0))),
            candidate: Some(arm_info(
                head,
                input.timeouts.get(ei).map_or(DEFAULT_TIMEOUT_MS, |t| t.1),
            )),
            repeats: head.repeats,
            metrics: Vec::new(),
            cases,
            dataset_cases: match input.shard {
                Some(_) => head.cases.iter().map(|c| c.id.clone()).collect(),
                None => Vec::new(),
            },
            noise: ExperimentNoise::default(),
            changed,
        });
    }
    experiments
}

/// The judgements of one output, with the assertion each answers and the judge's reply: per
/// assertion and judge repeat, its last attempt (a retry replaces a malformed first reply).
fn judgements<'a>(
    input: &Input<'_>,
    derived: &[&Derived],
    assertions: &[&'a suite::Assertion],
) -> Vec<(Judgement, &'a suite::Assertion, Option<scorers::judge::Reply>)> {
    let mut last: BTreeMap<(usize, u32), &Derived> = BTreeMap::new();
    for d in derived {
        let key = (d.tag.assertion, d.tag.repeat);
        if last.get(&key).is_none_or(|kept| kept.tag.attempt < d.tag.attempt) {
            last.insert(key, d);
        }
    }
    last.into_iter()
        .filter_map(|((assertion, repeat), d)| {
            let assertion = *assertions.get(assertion)?;
            let model = d.job.request.as_ref().map(|r| r.model.as_str()).unwrap_or_default();
            let cost = match &d.outcome.result {
                Ok(response) => input.prices.cost(model, &response.usage).unwrap_or(0.0),
                Err(_) => 0.0,
            };
            let (mut judgement, reply) = scorers::judge::judgement(&assertion.metric, repeat, &d.outcome, cost);
            if let (suite::Check::Judge(check), Some(reply)) = (&assertion.check, &reply) {
                judgement.value = Some(scorers::judge::value(check, reply));
            }
            Some((judgement, assertion, reply))
        })
        .collect()
}

/// A candidate call's comparisons with its baseline pair: per assertion, judge repeat and
/// order, its last attempt, with what it preferred (`None`: the judge failed).
#[expect(clippy::type_complexity, reason = "a private hand-off to the caller's two uses")]
fn comparisons<'a>(
    input: &Input<'_>,
    derived: &[&Derived],
    assertions: &[&'a suite::Assertion],
) -> Vec<(Judgement, &'a suite::Assertion, u32, Arm, Option<Option<Arm>>)> {
    let mut last: BTreeMap<(usize, u32, Arm), &Derived> = BTreeMap::new();
    for d in derived {
        let Some(first) = d.tag.first else { continue };
        let key = (d.tag.assertion, d.tag.repeat, first);
        if last.get(&key).is_none_or(|kept| kept.tag.attempt < d.tag.attempt) {
            last.insert(key, d);
        }
    }
    last.into_iter()
        .filter_map(|((assertion, repeat, first), d)| {
            let assertion = *assertions.get(assertion)?;
            let model = d.job.request.as_ref().map(|r| r.model.as_str()).unwrap_or_default();
            let cost = match &d.outcome.result {
                Ok(response) => input.prices.cost(model, &response.usage).unwrap_or(0.0),
                Err(_) => 0.0,
            };
            let (judgement, preferred) =
                scorers::compare::judgement(&assertion.metric, repeat, first, &d.outcome, cost);
            Some((judgement, assertion, repeat, first, preferred))
        })
        .collect()
}

/// The experiments the change removed: reported, not run.
pub fn removed(detection: &Detection) -> Vec<ExperimentResult> {
    let mut experiments = Vec::new();
    for removed in &detection.removed {
        experiments.push(ExperimentResult {
            name: removed.name.clone(),
            status: ExperimentStatus::Removed,
            affected_by: removed.affected_by.clone(),
            verdict: ExperimentVerdict::Pass,
            reason: "removed at head: not run".to_owned(),
            provider: String::new(),
            baseline: None,
            candidate: None,
            repeats: 0,
            metrics: Vec::new(),
            cases: Vec::new(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        });
    }

    experiments
}

/// What one arm ran; `timeout_ms` is its provider's.
pub fn arm_info(e: &suite::Experiment, timeout_ms: u64) -> ArmInfo {
    ArmInfo {
        timeout_ms,
        variant: e.variant_path.clone(),
        version: e.variant.version.clone(),
        model: e.variant.model.clone(),
        prompt: e.prompt.path().to_owned(),
        temperature: e.variant.temperature,
        max_tokens: e.variant.max_tokens,
        top_p: e.variant.top_p,
        evaluation_metrics: e.variant.evaluation_metrics.clone(),
    }
}

/// Each answered repeat's `consistency`: its mean agreement with the case's other answered
/// repeats in the same arm (`scorers::similarity::consistency`). Errored repeats have none.
fn add_consistency(calls: &mut [Call]) {
    let outputs: Vec<&str> = calls
        .iter()
        .filter(|c| c.error.is_none())
        .filter_map(|c| c.output.as_deref())
        .collect();
    let mut values = scorers::similarity::consistency(&outputs).into_iter();
    for call in calls.iter_mut().filter(|c| c.error.is_none() && c.output.is_some()) {
        if let Some(Some(value)) = values.next() {
            call.scores.insert(crate::metrics::CONSISTENCY, Score::Number(value));
        }
    }
}

/// A case flips when its majority outcome over the repeats changes.
fn flip(baseline: &[Call], candidate: &[Call]) -> Option<Flip> {
    let majority = |calls: &[Call]| -> Option<bool> {
        if calls.is_empty() {
            return None;
        }
        Some(2 * calls.iter().filter(|c| c.passed()).count() > calls.len())
    };
    match (majority(baseline)?, majority(candidate)?) {
        (true, false) => Some(Flip::PassToFail),
        (false, true) => Some(Flip::FailToPass),
        _ => None,
    }
}
