//! Score: the runner's outcomes become the results' calls, scored by the experiment's
//! assertions and grouped by experiment, case and arm. No statistics here: `verdict` judges what
//! this builds.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::Context as _;

use crate::allocator::Shrinking;
use crate::detect::Detection;
use crate::metrics::DEFAULT_TIMEOUT_MS;
use crate::plan::{self, Arm, Planned};
use crate::providers::pricing::PriceTable;
use crate::results::*;
use crate::runner::stow::Stowed;
use crate::runner::{Derived, Outcome};
use crate::scorers;
use crate::suite;

/// What [`experiments`] reads: the plan, where its jobs' calls go, and the judge calls.
pub struct Input<'a> {
    pub planned: &'a [Planned<'a>],
    pub detection: &'a Detection,
    pub places: &'a Places,
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
    /// A schema 2 run's spill file (`report::calls`): each case's outputs are written there as
    /// soon as the case is scored, and only the flipped cases the report quotes keep theirs in
    /// memory. The results then name it in `outputs_from`.
    pub spill: Option<&'a crate::output::Scratch>,
}

pub mod cases;
mod places;
pub use places::{Place, Places};

/// The runner's outcomes, in the jobs' order: lent (a sequential look scores them again at the
/// next look) or given (the fixed design: each is dropped once scored, its output moved into
/// its call rather than copied), or, when the runner stowed them in a file as they arrived
/// (`runner::Options::stow`), read back one at a time as they are scored.
pub enum Outcomes<'a> {
    Lent(&'a [Outcome]),
    Given(Vec<Outcome>, Option<Stowed>),
}

impl Outcomes<'_> {
    /// The outcomes in memory (none of the stowed ones).
    fn as_slice(&self) -> &[Outcome] {
        match self {
            Outcomes::Lent(o) => o,
            Outcomes::Given(o, _) => o,
        }
    }

    fn len(&self) -> usize {
        match self {
            Outcomes::Given(_, Some(stowed)) => stowed.len(),
            _ => self.as_slice().len(),
        }
    }
}

/// Whether any experiment runs `exec` scorers: they take every answer before any call is scored.
fn runs_exec(planned: &[Planned<'_>], feed: &cases::Feed<'_>) -> bool {
    let exec = |a: &suite::Assertion| matches!(a.check, suite::Check::Exec { .. });
    planned.iter().any(|p| p.candidate.asserts.iter().any(exec)) || feed.any_assertion(exec)
}

/// The compared experiments, in plan order, with their scored calls (not yet judged). Fails
/// only when the spill file cannot be written.
pub fn experiments(
    input: &Input<'_>,
    mut outcomes: Outcomes<'_>,
    given: Option<cases::Given>,
) -> anyhow::Result<Vec<ExperimentResult>> {
    let places = &input.places.places;
    debug_assert_eq!(places.len(), outcomes.len());
    // Stowed outcomes come back as each call is scored; all at once for `exec` scorers.
    let unreadable = |stowed: &Stowed| {
        format!(
            "cannot read back {}, where the run wrote its calls' outcomes as they ended; rerun: the journal in the output folder and the response cache replay the calls already paid for",
            stowed.describe()
        )
    };
    let feed = match given {
        Some(given) => cases::Feed::given(input.planned, given)?,
        None => cases::Feed::lent(input.planned),
    };
    let exec_scorers = runs_exec(input.planned, &feed);
    if let Outcomes::Given(given, stowed) = &mut outcomes
        && exec_scorers
        && let Some(mut all) = stowed.take()
    {
        *given = all.take_all().with_context(|| unreadable(&all))?;
    }
    let vectors = scorers::embeddings::vectors(input.judged);
    fn context<'c>(
        case: &'c suite::Case,
        input: &'c Input<'_>,
        vectors: &'c scorers::embeddings::Vectors,
    ) -> scorers::Context<'c> {
        scorers::Context {
            case_id: &case.id,
            vars: &case.vars,
            exec: input.exec,
            embeddings: vectors,
        }
    }
    let mut cases = Finisher::new(input, feed)?;
    // The `exec` scorers first, several at a time: each call's scoring then reads their
    // outcomes (and every answered case is read back before the first is scored).
    let mut requests = Vec::new();
    let answered = || {
        places
            .iter()
            .zip(outcomes.as_slice())
            .filter(|(_, o)| exec_scorers && o.result.is_ok())
    };
    for (place, _) in answered() {
        cases.feed.load(place.experiment(), place.case())?;
    }
    for (place, outcome) in answered() {
        if let Ok(response) = &outcome.result {
            let experiment = input.planned[place.experiment()].candidate;
            let case = cases.feed.case(place.experiment(), place.case())?;
            let assertions = experiment.asserts.iter().chain(case.asserts.iter());
            requests.extend(scorers::exec_requests(
                assertions,
                &context(case, input, &vectors),
                &response.text,
            ));
        }
    }
    input.exec.run(&requests);
    drop(requests);

    let mut judged: BTreeMap<usize, Vec<&Derived>> = BTreeMap::new();
    // What each output's embeddings cost (a reference embedded once is paid once: the
    // outputs that took its answer got it as a cache hit).
    let mut embedding_cost: BTreeMap<usize, f64> = BTreeMap::new();
    let mut compared: BTreeMap<(usize, usize, u32), Vec<&Derived>> = BTreeMap::new();
    for derived in input.judged {
        if scorers::embeddings::is_embedding(derived) {
            *embedding_cost.entry(derived.parent).or_default() += paid_for(input, derived);
            continue;
        }
        // A comparison is the pair's, whichever output arrived second: the candidate's
        // call of its case and repeat carries it.
        if derived.tag.first.is_some() {
            compared
                .entry((derived.job.experiment(), derived.job.case(), derived.job.repeat))
                .or_default()
                .push(derived);
            continue;
        }
        judged.entry(derived.parent).or_default().push(derived);
    }
    // Whether each pair's baseline answered, from its scoring until its candidate's (a case's
    // jobs run baseline then candidate, repeat by repeat): a comparison with an answer that
    // never came is decided without a judge (`scorers::compare::unanswered`).
    let mut baseline_answered: HashMap<(usize, usize, u32), bool> = HashMap::new();
    let outcomes: Box<dyn Iterator<Item = anyhow::Result<Cow<'_, Outcome>>>> = match outcomes {
        Outcomes::Lent(o) => Box::new(o.iter().map(|o| Ok(Cow::Borrowed(o)))),
        Outcomes::Given(_, Some(stowed)) => {
            let described = unreadable(&stowed);
            Box::new(
                stowed
                    .into_outcomes()
                    .map(move |outcome| Ok(Cow::Owned(outcome.with_context(|| described.clone())?))),
            )
        }
        Outcomes::Given(o, None) => Box::new(Shrinking::new(o).map(|o| Ok(Cow::Owned(o)))),
    };
    for (index, (place, outcome)) in places.iter().zip(outcomes).enumerate() {
        let mut outcome = outcome?;
        let experiment = input.planned[place.experiment()].candidate;
        cases.feed.load(place.experiment(), place.case())?;
        let case = cases.feed.case(place.experiment(), place.case())?;
        let cx = context(case, input, &vectors);
        let assertions: Vec<&suite::Assertion> = experiment.asserts.iter().chain(case.asserts.iter()).collect();
        let mut judgements = judgements(input, judged.get(&index).map_or(&[][..], Vec::as_slice), &assertions);
        let masked = |text: &str| scorers::mask_personal_data(&assertions, text).into_owned();
        // The reason a judge's `pass: false` puts among the call's failures too, which the
        // comment's case table shows.
        for (judgement, _, reply) in &mut judgements {
            judgement.reason = judgement.reason.as_deref().map(masked);
            if let Some(reply) = reply {
                reply.reason = masked(&reply.reason);
            }
        }
        let mut comparisons = match place.arm {
            Arm::Candidate => comparisons(
                input,
                compared
                    .get(&(place.experiment(), place.case(), place.repeat()))
                    .map_or(&[][..], Vec::as_slice),
                &assertions,
            ),
            Arm::Baseline => Vec::new(),
        };
        for (judgement, ..) in &mut comparisons {
            judgement.reason = judgement.reason.as_deref().map(masked);
        }
        let compares: Vec<&suite::Assertion> = assertions
            .iter()
            .copied()
            .filter(|a| matches!(a.check, suite::Check::Compare(_)))
            .collect();
        let model = input.places.model(place);
        let provider = outcome
            .provider
            .as_ref()
            .map(|key| match input.provider_names.get(key.as_str()) {
                Some(configured) => Name::new(configured),
                None => key.clone(),
            });
        // The baseline compared with itself is a tie: 0, so the paired difference is the
        // candidate's preference (`scorers::compare`); an answer beats one that never came.
        let pair = (place.experiment(), place.case(), place.repeat());
        let compared_pair = !compares.is_empty() && input.planned[place.experiment()].baseline.is_some();
        let pair_value = match place.arm {
            _ if !compared_pair => None,
            Arm::Baseline => {
                baseline_answered.insert(pair, outcome.result.is_ok());
                Some(0.0)
            }
            Arm::Candidate => baseline_answered
                .remove(&pair)
                .and_then(|baseline| scorers::compare::unanswered(outcome.result.is_ok(), baseline)),
        };
        let pair_scores = |scores: &mut Scores| {
            if let Some(value) = pair_value {
                for a in &compares {
                    scores.insert(&a.metric, Score::Number(value));
                }
            }
        };
        let call = match &outcome.result {
            Ok(response) => {
                let mut scored = scorers::score(assertions.iter().copied(), &response.text, &cx);
                let replies: Vec<_> = judgements.iter().map(|(_, a, r)| (*a, r.as_ref())).collect();
                scorers::judge::apply(&mut scored.scores, &mut scored.failures, &replies);
                pair_scores(&mut scored.scores);
                let preferences: Vec<_> = comparisons
                    .iter()
                    .map(|(_, a, repeat, first, p)| (*a, *repeat, *first, *p))
                    .collect();
                scorers::compare::apply(&mut scored.scores, &preferences);
                let usage = response.usage;
                let list_cost = input.prices.cost(model, &usage);
                // The output as the results keep it: masked where an assertion asks, else the
                // response's own text, moved out of a given outcome rather than copied.
                let masked = match scorers::mask_personal_data(&assertions, &response.text) {
                    Cow::Owned(masked) => Some(masked),
                    Cow::Borrowed(_) => None,
                };
                let output = masked.unwrap_or_else(|| match &mut outcome {
                    Cow::Owned(given) => given
                        .result
                        .as_mut()
                        .map(|r| std::mem::take(&mut r.text))
                        .unwrap_or_default(),
                    Cow::Borrowed(lent) => lent.result.as_ref().map(|r| r.text.clone()).unwrap_or_default(),
                });
                Call {
                    repeat: place.repeat(),
                    output: Some(output.into()),
                    latency_ms: outcome.latency_ms.into(),
                    tokens: Tokens::new(usage.input, usage.cached_input, usage.output),
                    // A cache hit costs nothing; its list price still feeds cost_per_request, so a
                    // warm cache cannot make one arm look cheaper. A batched call costs the batch
                    // rate, and its list price feeds cost_per_request for the same reason: an arm
                    // answered from an earlier batch's cache compares at the same price.
                    cost_usd: outcome.paid(input.prices, model),
                    list_cost_usd: list_cost.unwrap_or(0.0),
                    unpriced: list_cost.is_none(),
                    cached: outcome.cached,
                    attempts: outcome.attempts,
                    provider,
                    fell_back: outcome.fell_back,
                    batch: outcome.batched,
                    scores: scored.scores,
                    evaluation: Evaluation {
                        error: None,
                        failures: scored.failures,
                        scorer_errors: scored.scorer_errors,
                        judgements: judgements
                            .drain(..)
                            .map(|(j, _, _)| j)
                            .chain(comparisons.into_iter().map(|(j, ..)| j))
                            .collect(),
                        embedding_cost_usd: embedding_cost.get(&index).copied().unwrap_or(0.0),
                    }
                    .into(),
                }
            }
            Err(error) => {
                let error = error.to_string();
                let mut scored = scorers::errored(assertions.iter().copied(), &error);
                pair_scores(&mut scored.scores);
                Call {
                    repeat: place.repeat(),
                    output: None,
                    latency_ms: Latency::NONE,
                    tokens: Tokens::default(),
                    cost_usd: 0.0,
                    list_cost_usd: 0.0,
                    unpriced: false,
                    cached: false,
                    attempts: outcome.attempts,
                    provider,
                    fell_back: outcome.fell_back,
                    batch: outcome.batched,
                    scores: scored.scores,
                    evaluation: Evaluation {
                        error: Some(error.into()),
                        failures: scored.failures,
                        scorer_errors: scored.scorer_errors,
                        ..Evaluation::default()
                    }
                    .into(),
                }
            }
        };
        drop(outcome);
        cases.add(place, call)?;
    }
    let (mut cases, mut dataset_cases) = cases.finish()?;

    let experiments = input
        .planned
        .iter()
        .enumerate()
        .map(|(ei, planned)| ExperimentResult {
            cases: std::mem::take(&mut cases[ei]),
            dataset_cases: std::mem::take(&mut dataset_cases[ei]),
            ..entry(planned, input.detection, input.timeouts.get(ei).copied())
        })
        .collect();
    Ok(experiments)
}

/// A planned experiment's entry in the results before any call of it is scored: its status
/// and what made it affected, its arms, no metric and no case yet.
fn entry(planned: &Planned<'_>, detection: &Detection, timeouts: Option<(u64, u64)>) -> ExperimentResult {
    let head = planned.candidate;
    // `planned` holds the affected experiments found at head, in detection order; match by
    // name rather than position, so a plan that skipped one cannot shift the others.
    let detected = detection.affected.iter().find(|a| a.name == head.name);
    let (status, affected_by) = detected.map_or((ExperimentStatus::Forced, Vec::new()), |a| {
        (a.status, a.affected_by.clone())
    });
    let changed = detected.map_or_else(ChangeFacts::default, |a| ChangeFacts {
        changes: a.changes.clone(),
        dataset_changes: a.dataset_changes.clone(),
        base_scored: a.base_scored.clone(),
    });
    let (base_timeout, head_timeout) = timeouts.unwrap_or((DEFAULT_TIMEOUT_MS, DEFAULT_TIMEOUT_MS));
    ExperimentResult {
        name: head.name.clone(),
        status,
        affected_by,
        verdict: ExperimentVerdict::Pass,
        reason: String::new(),
        provider: head.provider.clone(),
        baseline: planned.baseline.map(|b| arm_info(b, base_timeout)),
        candidate: Some(arm_info(head, head_timeout)),
        repeats: head.repeats,
        metrics: Vec::new(),
        cases: Vec::new(),
        dataset_cases: Vec::new(),
        noise: ExperimentNoise::default(),
        changed,
    }
}

/// The planned experiments the budget refused before any call: each is in the results as an
/// error, with the refusal as its reason, so every experiment the change affects is accounted
/// for though none ran.
pub fn refused(
    planned: &[Planned<'_>],
    detection: &Detection,
    timeouts: &[(u64, u64)],
    reason: &str,
) -> Vec<ExperimentResult> {
    planned
        .iter()
        .enumerate()
        .map(|(ei, p)| ExperimentResult {
            verdict: ExperimentVerdict::Error,
            reason: format!("not run: {reason}"),
            ..entry(p, detection, timeouts.get(ei).copied())
        })
        .collect()
}

/// Builds each case's result as soon as its last call is scored, in the results' order (a
/// case's jobs are consecutive in the plan, so at most one case is open at a time), and in a
/// schema 2 run writes its outputs to the spill file, keeping in memory only those of the
/// flipped cases the report quotes: the first [`SHOWN_FLIPS`] of each direction, exactly
/// `report::calls::shown_cases`.
struct Finisher<'a> {
    input: &'a Input<'a>,
    /// The cases, each let go once its result is built.
    feed: cases::Feed<'a>,
    /// Per experiment, every case's id in the dataset's order, when the run is a shard's
    /// (`ExperimentResult::dataset_cases`).
    dataset_cases: Vec<Vec<String>>,
    /// Per experiment and case: the calls still to be scored.
    left: Vec<Vec<u32>>,
    /// The calls of cases with calls still to come: baseline, candidate.
    open: HashMap<(usize, usize), [Vec<Call>; 2]>,
    /// The next case of the results' order: (experiment, case).
    next: (usize, usize),
    /// Per experiment, its finished cases.
    done: Vec<Vec<CaseResult>>,
    spill: Option<Spill<'a>>,
}

struct Spill<'a> {
    path: &'a Path,
    out: std::io::BufWriter<std::fs::File>,
    /// Per experiment, the flipped cases kept so far: pass → fail, fail → pass.
    shown: Vec<[usize; 2]>,
    line: Vec<u8>,
}

impl<'a> Finisher<'a> {
    fn new(input: &'a Input<'a>, feed: cases::Feed<'a>) -> anyhow::Result<Self> {
        let mut left: Vec<Vec<u32>> = (0..input.planned.len()).map(|ei| vec![0; feed.count(ei)]).collect();
        for place in &input.places.places {
            left[place.experiment()][place.case()] += 1;
        }
        let spill = input
            .spill
            .map(|scratch| -> anyhow::Result<Spill<'a>> {
                let path = scratch.path();
                let file = scratch.file().try_clone().with_context(|| {
                    format!(
                        "cannot open {}, where the outputs are written as they are scored",
                        path.display()
                    )
                })?;
                Ok(Spill {
                    path,
                    out: std::io::BufWriter::with_capacity(1 << 16, file),
                    shown: vec![[0; 2]; input.planned.len()],
                    line: Vec::new(),
                })
            })
            .transpose()?;
        Ok(Finisher {
            input,
            feed,
            dataset_cases: vec![Vec::new(); input.planned.len()],
            open: HashMap::new(),
            next: (0, 0),
            // Sized for the cases that have calls (a shard's): a vector grown by doubling
            // holds up to twice the results a large run has.
            done: left
                .iter()
                .map(|cases| Vec::with_capacity(cases.iter().filter(|&&calls| calls > 0).count()))
                .collect(),
            left,
            spill,
        })
    }

    fn add(&mut self, place: &Place, call: Call) -> anyhow::Result<()> {
        let repeats = self.input.planned[place.experiment()].candidate.repeats.max(1) as usize;
        let calls = &mut self.open.entry((place.experiment(), place.case())).or_default()[place.arm as usize];
        // Sized for the case's repeats: a default `Vec` grows to four calls.
        if calls.capacity() == 0 {
            calls.reserve_exact(repeats);
        }
        calls.push(call);
        let left = &mut self.left[place.experiment()][place.case()];
        *left = left.saturating_sub(1);
        if *left == 0 {
            self.advance(false)?;
        }
        Ok(())
    }

    /// Finishes the cases from `next` on whose calls are all scored (`all`: every case).
    fn advance(&mut self, all: bool) -> anyhow::Result<()> {
        let planned = self.input.planned;
        while let Some(p) = planned.get(self.next.0) {
            let (ei, ci) = self.next;
            let head = p.candidate;
            if ci >= self.feed.count(ei) {
                self.next = (ei + 1, 0);
                continue;
            }
            if !all && self.left[ei][ci] > 0 {
                break;
            }
            self.next.1 += 1;
            self.feed.load(ei, ci)?;
            let case = self.feed.case(ei, ci)?;
            if let Some(shard) = self.input.shard {
                self.dataset_cases[ei].push(case.id.clone());
                if plan::shard_of(&head.name, &case.id, shard.count) != shard.index {
                    self.feed.let_go_through(ei, ci);
                    continue;
                }
            }
            let [mut baseline, mut candidate] = self.open.remove(&(ei, ci)).unwrap_or_default();
            baseline.sort_by_key(|c| c.repeat);
            candidate.sort_by_key(|c| c.repeat);
            if head.repeats > 1 {
                add_consistency(&mut baseline);
                add_consistency(&mut candidate);
            }
            // Final: calls scored alike hold one list.
            for call in baseline.iter_mut().chain(candidate.iter_mut()) {
                call.scores = std::mem::take(&mut call.scores).shared();
            }
            let flip = crate::metrics::flip(&baseline, &candidate);
            let mut result = CaseResult {
                text: CaseText::new(&case.id, case.group.as_deref(), &case.input_text()),
                baseline,
                candidate,
                flip,
            };
            self.feed.let_go_through(ei, ci);
            if let Some(spill) = &mut self.spill {
                spill.write(&head.name, &mut result, ei).with_context(|| {
                    format!(
                        "cannot write {}, where the outputs are written as they are scored",
                        spill.path.display()
                    )
                })?;
            }
            self.done[ei].push(result);
        }
        Ok(())
    }

    /// Every case's result, per experiment, and in a shard's run every case's id; the spill
    /// file written to its end.
    #[allow(
        clippy::type_complexity,
        reason = "two per-experiment lists, named where they are taken apart"
    )]
    fn finish(mut self) -> anyhow::Result<(Vec<Vec<CaseResult>>, Vec<Vec<String>>)> {
        self.advance(true)?;
        if let Some(spill) = self.spill.take() {
            let path = spill.path;
            spill
                .out
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)
                .and_then(|file| file.sync_data())
                .with_context(|| {
                    format!(
                        "cannot write {}, where the outputs are written as they are scored",
                        path.display()
                    )
                })?;
        }
        Ok((self.done, self.dataset_cases))
    }
}

impl Spill<'_> {
    /// Writes the case's outputs as `calls.jsonl` lines (baseline then candidate, by repeat, as
    /// `report::calls::write_calls` does) and drops them unless the report quotes the case.
    fn write(&mut self, experiment: &str, case: &mut CaseResult, ei: usize) -> std::io::Result<()> {
        use std::io::Write as _;
        let keep = case.flip.is_some_and(|flip| {
            let shown = &mut self.shown[ei][flip as usize];
            *shown += 1;
            *shown <= SHOWN_FLIPS
        });
        for (arm, calls) in [
            (Arm::Baseline, &mut case.baseline),
            (Arm::Candidate, &mut case.candidate),
        ] {
            for call in calls.iter_mut() {
                let Some(output) = &call.output else { continue };
                self.line.clear();
                let line = CallLine {
                    experiment: experiment.into(),
                    case: case.text.id().into(),
                    arm,
                    repeat: call.repeat,
                    output: (&**output).into(),
                };
                serde_json::to_writer(&mut self.line, &line).map_err(std::io::Error::other)?;
                self.line.push(b'\n');
                self.out.write_all(&self.line)?;
                if !keep {
                    call.output = None;
                }
            }
        }
        Ok(())
    }
}

/// What a judge call cost this run: nothing when it was not sent (a cache hit, an identical
/// call's answer) or failed, else its price. A judgement's cost is every attempt's: the first,
/// malformed reply was paid for too.
fn paid_for(input: &Input<'_>, d: &Derived) -> f64 {
    d.outcome.paid(input.prices, d.job.model())
}

/// The judgements of one output, with the assertion each answers and the judge's reply: per
/// assertion and judge repeat, its last attempt (a retry replaces a malformed first reply).
fn judgements<'a>(
    input: &Input<'_>,
    derived: &[&Derived],
    assertions: &[&'a suite::Assertion],
) -> Vec<(Judgement, &'a suite::Assertion, Option<scorers::judge::Reply>)> {
    let mut last: BTreeMap<(usize, u32), (&Derived, f64)> = BTreeMap::new();
    for d in derived {
        let key = (d.tag.assertion, d.tag.repeat);
        let (kept, paid) = last.entry(key).or_insert((d, 0.0));
        *paid += paid_for(input, d);
        if kept.tag.attempt < d.tag.attempt {
            *kept = d;
        }
    }
    last.into_iter()
        .filter_map(|((assertion, repeat), (d, paid))| {
            let assertion = *assertions.get(assertion)?;
            let (mut judgement, reply) = scorers::judge::judgement(&assertion.metric, repeat, &d.outcome, paid);
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
    let mut last: BTreeMap<(usize, u32, Arm), (&Derived, f64)> = BTreeMap::new();
    for d in derived {
        let Some(first) = d.tag.first else { continue };
        let (kept, paid) = last.entry((d.tag.assertion, d.tag.repeat, first)).or_insert((d, 0.0));
        *paid += paid_for(input, d);
        if kept.tag.attempt < d.tag.attempt {
            *kept = d;
        }
    }
    last.into_iter()
        .filter_map(|((assertion, repeat, first), (d, paid))| {
            let assertion = *assertions.get(assertion)?;
            let (judgement, preferred) =
                scorers::compare::judgement(&assertion.metric, repeat, first, &d.outcome, paid);
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
        sampling: e.variant.sampling.clone(),
        evaluation_metrics: e.variant.evaluation_metrics.clone(),
    }
}

/// Each answered repeat's `consistency`: its mean agreement with the case's other answered
/// repeats in the same arm (`scorers::similarity::consistency`). Errored repeats have none.
fn add_consistency(calls: &mut [Call]) {
    let outputs: Vec<&str> = calls
        .iter()
        .filter(|c| c.error().is_none())
        .filter_map(|c| c.output.as_deref())
        .collect();
    let mut values = scorers::similarity::consistency(&outputs).into_iter();
    for call in calls.iter_mut().filter(|c| c.error().is_none() && c.output.is_some()) {
        if let Some(Some(value)) = values.next() {
            call.scores.insert(crate::metrics::CONSISTENCY, Score::Number(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(repeat: u32, output: Option<String>) -> Call {
        let mut call = Call {
            repeat,
            ..Call::default()
        };
        call.set_error(output.is_none().then(|| "timed out".into()));
        call.output = output.map(Into::into);
        call
    }

    /// A case of two repeats per arm, the candidate's second errored (no output, no line).
    fn case(id: String, flip: Option<Flip>) -> CaseResult {
        CaseResult {
            baseline: vec![call(0, Some(format!("{id} b0"))), call(1, Some(format!("{id} b1")))],
            candidate: vec![call(0, Some(format!("{id} \"c0\"\n"))), call(1, None)],
            text: CaseText::new(&id, None, ""),
            flip,
        }
    }

    #[test]
    fn a_spill_writes_every_output_in_order_and_keeps_only_the_flips_the_report_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.jsonl");
        let mut spill = Spill {
            path: &path,
            out: std::io::BufWriter::new(std::fs::File::create(&path).unwrap()),
            shown: vec![[0; 2]; 2],
            line: Vec::new(),
        };
        // Experiment 0: 30 cases failing at head, 25 passing at head, 10 unchanged, mixed;
        // experiment 1: 3 of each, counted on their own.
        let flips = |i: usize| match i % 3 {
            0 if i < 90 => Some(Flip::PassToFail),
            1 if i < 75 => Some(Flip::FailToPass),
            _ => None,
        };
        let mut experiments: Vec<ExperimentResult> = Vec::new();
        for (ei, (name, count)) in [("support", 95), ("faq", 9)].into_iter().enumerate() {
            let mut cases = Vec::new();
            for i in 0..count {
                let mut case = case(format!("{name}-{i}"), flips(i));
                spill.write(name, &mut case, ei).unwrap();
                cases.push(case);
            }
            experiments.push(ExperimentResult {
                name: name.to_owned(),
                status: ExperimentStatus::Forced,
                affected_by: Vec::new(),
                verdict: ExperimentVerdict::Pass,
                reason: String::new(),
                provider: String::new(),
                baseline: None,
                candidate: None,
                repeats: 2,
                metrics: Vec::new(),
                cases,
                dataset_cases: Vec::new(),
                noise: ExperimentNoise::default(),
                changed: ChangeFacts::default(),
            });
        }
        spill.out.into_inner().unwrap().sync_data().unwrap();
        let written = std::fs::read_to_string(&path).unwrap();

        // Every output, in results order, as `calls.jsonl` writes them from memory.
        let mut all = experiments.clone();
        for e in &mut all {
            for c in &mut e.cases {
                for (arm, calls) in [("b", &mut c.baseline), ("c", &mut c.candidate)] {
                    for call in calls.iter_mut().filter(|call| call.error().is_none()) {
                        call.output = Some(match arm {
                            "b" => format!("{} b{}", c.text.id(), call.repeat).into(),
                            _ => format!("{} \"c0\"\n", c.text.id()).into(),
                        });
                    }
                }
            }
        }
        let mut results = crate::report::markdown::test_fixtures::demo_results();
        results.experiments = all;
        let mut expected = Vec::new();
        crate::report::calls::write_calls(&results, &mut expected).unwrap();
        assert_eq!(written, String::from_utf8(expected).unwrap());
        assert_eq!(written.lines().count(), (95 + 9) * 3);

        // In memory: exactly the cases `report::calls::shown_cases` names keep their outputs.
        results.experiments = experiments;
        let shown = crate::report::calls::shown_cases(&results);
        assert_eq!(shown.len(), 20 + 20 + 3 + 3);
        for (ei, e) in results.experiments.iter().enumerate() {
            for (ci, c) in e.cases.iter().enumerate() {
                let kept = c
                    .baseline
                    .iter()
                    .chain(&c.candidate)
                    .filter(|call| call.output.is_some())
                    .count();
                let expected = if shown.contains(&(ei, ci)) { 3 } else { 0 };
                assert_eq!(kept, expected, "{}", c.id());
            }
        }
    }
}
