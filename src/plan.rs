//! The job list: cases × {baseline, candidate} × repeats, with a cost estimate and the budget
//! check, all before a single call is made.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::chat::Message;
use crate::error::Error;
use crate::providers::pricing::PriceTable;
use crate::providers::{Request, Settings};
use crate::results::Name;
use crate::stats;
use crate::suite::{Budget, Case, Experiment};

pub use crate::results::Arm;

/// One model call to make.
#[derive(Clone, Debug)]
pub struct Job {
    /// Index into the plan's experiments.
    pub experiment: u32,
    /// Index into the experiment's (head) cases.
    pub case: u32,
    pub arm: Arm,
    pub repeat: u32,
    pub provider: Name,
    /// Providers to try, in order, when `provider` fails persistently.
    pub fallbacks: Fallbacks,
    /// The request, or why the prompt could not be rendered for this case (then the job is
    /// recorded as errored, never dropped).
    pub request: Result<Request, String>,
    /// Send it even when the cache holds its answer, and never share an identical job's call:
    /// a blocking latency gate needs calls timed in this run (see [`retimed`]).
    pub retime: bool,
}

/// The providers a job tries, in order, when its own fails persistently: none for most jobs
/// (nothing allocated), else one list every job of an experiment's arm shares. One word, as a
/// run holds every job until it is sent; reads as the slice of names.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fallbacks(Option<Arc<Box<[Name]>>>);

impl Fallbacks {
    /// The very same list (a renamed copy of a shared list is made once).
    pub fn same(&self, other: &Fallbacks) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl std::ops::Deref for Fallbacks {
    type Target = [Name];
    fn deref(&self) -> &[Name] {
        self.0.as_deref().map_or(&[], |names| names)
    }
}

impl FromIterator<Name> for Fallbacks {
    fn from_iter<I: IntoIterator<Item = Name>>(names: I) -> Fallbacks {
        let names: Box<[Name]> = names.into_iter().collect();
        Fallbacks((!names.is_empty()).then(|| Arc::new(names)))
    }
}

/// An index of the plan (an experiment's, a case's) as a [`Job`] holds it: 32 bits, as a run
/// holds every job until it is sent, and no plan comes near four billion.
pub fn narrow(index: usize) -> u32 {
    debug_assert!(u32::try_from(index).is_ok(), "a plan's index {index} past u32");
    u32::try_from(index).unwrap_or(u32::MAX)
}

impl Job {
    /// Index into the plan's experiments.
    pub fn experiment(&self) -> usize {
        self.experiment as usize
    }

    /// Index into the experiment's (head) cases.
    pub fn case(&self) -> usize {
        self.case as usize
    }

    /// Lets go of the rendered messages (the runner, once the job is settled: see
    /// `runner::remeasure::LettingGo`); the job keeps its place, model and settings, all that
    /// scoring and the results read of it. Every job let go of shares one empty list.
    pub fn let_go_of_messages(&mut self) {
        static NONE: std::sync::LazyLock<Arc<[Message]>> = std::sync::LazyLock::new(|| Arc::from([]));
        if let Ok(request) = &mut self.request {
            request.messages = Arc::clone(&NONE);
        }
    }

    /// The model the job asks for; empty when its prompt could not be rendered.
    pub fn model(&self) -> &str {
        self.request.as_ref().map(|r| r.model.as_str()).unwrap_or_default()
    }

    /// Whether the job embeds a text (an embedding similarity's call) rather than completing.
    pub fn embeds(&self) -> bool {
        self.request.as_ref().is_ok_and(|r| r.embed)
    }
}

/// Which judgement of an output a judge job is: the assertion (its index among the call's
/// assertions, the experiment's first), the judge repeat, and the attempt (1 is the retry of a
/// reply that was not the asked-for JSON object).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JudgeTag {
    pub assertion: usize,
    pub repeat: u32,
    pub attempt: u32,
    /// For an `llm-compare` judgement: which arm's output the judge was shown first (as "A").
    /// `None` for every other derived job.
    pub first: Option<Arm>,
}

/// What a run will cost, before it runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CostEstimate {
    pub calls: usize,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub usd: f64,
    /// Models without a price: their calls are counted at $0 and the run warns.
    pub unpriced_models: BTreeSet<String>,
    /// Whether every input count came from the model's own tokenizer (else four characters a
    /// token, an estimate).
    pub tokens_exact: bool,
}

/// What the plan will run, reported before any call is made (the PR comment says
/// "evaluating 3 experiments, 240 calls…" while the gate runs).
#[derive(Clone, Debug)]
pub struct PlanFacts {
    pub experiments: usize,
    pub calls: usize,
    pub estimated_usd: f64,
    pub simulated: bool,
}

/// One experiment to run: the candidate (head) and, unless it is new, the baseline (base).
pub struct Planned<'a> {
    pub candidate: &'a Experiment,
    pub baseline: Option<&'a Experiment>,
}

/// Builds every job. Both arms of a case and repeat share one seed, so the only difference
/// between them is the change under test.
///
/// Each arm renders a case once for all its repeats, and a message equal to the same message
/// of the other arm's render or of the arm's previous case is that message, shared: a plan
/// holds every call's request until the run ends, and most contents repeat (the system prompt
/// of every case; the user message both arms send), so a large plan holds each text once.
pub fn jobs(experiments: &[Planned<'_>], seed: u64) -> Vec<Job> {
    let cases = experiments.iter().map(|p| p.candidate.cases.iter().collect()).collect();
    match jobs_from(experiments, seed, cases, |_, _| Ok::<(), std::convert::Infallible>(())) {
        Ok(jobs) => jobs,
        Err(never) => match never {},
    }
}

/// The most calls one run plans: a plan holds every call's job until it is sent (a shard's
/// run plans the whole matrix's before it keeps its share).
pub const MAX_CALLS: usize = 10_000_000;

/// The calls `experiments` plan: their cases' and repeats' jobs, both arms.
pub fn calls(experiments: &[Planned<'_>]) -> usize {
    experiments
        .iter()
        .map(|p| p.candidate.cases.len() * p.candidate.repeats as usize * (1 + usize::from(p.baseline.is_some())))
        .sum()
}

/// [`jobs`] of `cases` (one list per planned experiment, in its dataset's order), each case
/// handed to `rendered` once its jobs are made: a run that gives its cases away renders each
/// and lets it go before the next (`assemble::cases::plan_giving`).
pub fn jobs_from<C: std::borrow::Borrow<Case>, E>(
    experiments: &[Planned<'_>],
    seed: u64,
    cases: Vec<Vec<C>>,
    mut rendered: impl FnMut(usize, C) -> Result<(), E>,
) -> Result<Vec<Job>, E> {
    // Sized exactly: a vector grown by doubling holds up to twice the jobs a large plan has.
    let count = experiments
        .iter()
        .zip(&cases)
        .map(|(p, cases)| cases.len() * p.candidate.repeats as usize * (1 + usize::from(p.baseline.is_some())))
        .sum();
    let mut jobs = Vec::with_capacity(count);
    for ((ei, planned), cases) in experiments.iter().enumerate().zip(cases) {
        let head = planned.candidate;
        let arms = [(Arm::Baseline, planned.baseline), (Arm::Candidate, Some(head))];
        // What every job of an arm names, shared by them all.
        let named = arms.map(|(_, experiment)| {
            experiment.map(|e| {
                let fallbacks: Fallbacks = e.fallbacks.iter().map(Name::from).collect();
                let settings = Settings {
                    temperature: e.variant.temperature,
                    max_tokens: e.variant.max_tokens,
                    top_p: e.variant.top_p,
                    sampling: e.variant.sampling.clone().shared(),
                    ..Settings::of(&e.variant.model)
                };
                (Arc::new(settings), Name::new(&e.provider), fallbacks)
            })
        });
        let mut previous: [Arc<[Message]>; 2] = [Arc::from([]), Arc::from([])];
        for (ci, given) in cases.into_iter().enumerate() {
            let case: &Case = given.borrow();
            let mut renders: [Option<Result<Arc<[Message]>, String>>; 2] = [None, None];
            for (slot, (arm, experiment)) in arms.iter().enumerate() {
                let Some(experiment) = experiment else { continue };
                let result = experiment
                    .prompt
                    .render(&case.vars)
                    .map(|r| r.messages)
                    .map_err(|d| format!("rendering the {} prompt failed: {}", arm.name(), d.message));
                renders[slot] = Some(result.map(|mut messages| {
                    let other = match &renders[0] {
                        Some(Ok(baseline)) if slot == 1 => &baseline[..],
                        _ => &[],
                    };
                    share_contents(&mut messages, &[other, &previous[slot]]);
                    let messages: Arc<[Message]> = messages.into();
                    previous[slot] = Arc::clone(&messages);
                    messages
                }));
            }
            for repeat in 0..head.repeats {
                let call_seed = derive_seed(seed, &head.name, &case.id, repeat);
                for (slot, (arm, _)) in arms.iter().enumerate() {
                    let (Some(messages), Some((settings, provider, fallbacks))) = (&renders[slot], &named[slot]) else {
                        continue;
                    };
                    let request = messages
                        .clone()
                        .map(|messages| Request::new(Arc::clone(settings), messages, call_seed));
                    jobs.push(Job {
                        experiment: narrow(ei),
                        case: narrow(ci),
                        arm: *arm,
                        repeat,
                        provider: provider.clone(),
                        fallbacks: fallbacks.clone(),
                        request,
                        retime: false,
                    });
                }
            }
            rendered(ei, given)?;
        }
    }
    debug_assert_eq!(jobs.len(), count);
    Ok(jobs)
}

/// Makes each message whose content equals the same message (same position) of one of
/// `others` share that content.
fn share_contents(messages: &mut [Message], others: &[&[Message]]) {
    for (i, message) in messages.iter_mut().enumerate() {
        let same = others
            .iter()
            .filter_map(|other| other.get(i))
            .find(|o| o.content == message.content);
        if let Some(same) = same {
            message.content = std::sync::Arc::clone(&same.content);
        }
    }
}

/// Per planned experiment and case, whether its jobs are timed again (`mark_retimed`):
/// both arms of `units` units of every experiment (a new one has only its candidate's) to be
/// timed in this run, cache or not: latency is only ever compared between calls timed in the
/// same run, a blocking latency gate needs at least its minimum number of such units, and a
/// new experiment's SLO is judged on its own timed calls.
/// A unit is a case, or every case of a `group` (the test resamples groups whole, and its
/// minimum n counts groups). The units are a sample, not the dataset's first: those whose
/// mixed FNV-1a of experiment name and unit name is smallest ([`timing_key`]) — the same in every
/// run (the cache keeps their answers warm or not alike), whatever the dataset's order (a
/// dataset sorted by topic would otherwise time its first topic only), and a unit keeps its
/// place in the sample when others are added or removed.
/// Read from the cases before they are given away.
pub fn retimed(planned: &[Planned<'_>], units: usize) -> Vec<Vec<bool>> {
    planned
        .iter()
        .map(|p| {
            let name = &p.candidate.name;
            let keys: Vec<u64> = p.candidate.cases.iter().map(|case| timing_key(name, case)).collect();
            let mut smallest = keys.clone();
            smallest.sort_unstable();
            smallest.dedup();
            let Some(&last) = smallest.get(units.saturating_sub(1)).or(smallest.last()) else {
                return Vec::new();
            };
            keys.iter().map(|&key| units > 0 && key <= last).collect()
        })
        .collect()
}

/// The key a case's unit is sampled by for timing ([`retimed`]): FNV-1a of the experiment's
/// name and the unit's (its group's, or its own id), a group's and a case's told apart.
fn timing_key(experiment: &str, case: &crate::suite::Case) -> u64 {
    let (kind, unit) = match case.group.as_deref() {
        Some(group) => (b'g', group),
        None => (b'c', case.id.as_str()),
    };
    // Mixed: FNV-1a's high bits hardly depend on a name's last bytes, so ids that share a
    // prefix (`billing-001`, `billing-002`, …) would sort together, one topic's first.
    stats::mix64(stats::fnv1a(experiment.bytes().chain([0, kind]).chain(unit.bytes())))
}

/// Marks the jobs of the cases [`retimed`] says to be timed in this run.
pub fn mark_retimed(jobs: &mut [Job], timed: &[Vec<bool>]) {
    for job in jobs.iter_mut() {
        if timed
            .get(job.experiment())
            .and_then(|cases| cases.get(job.case()))
            .copied()
            == Some(true)
        {
            job.retime = true;
        }
    }
}

/// A stable seed per (experiment, case, repeat).
fn derive_seed(seed: u64, experiment: &str, case: &str, repeat: u32) -> u64 {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(experiment.as_bytes());
    h.update([0]);
    h.update(case.as_bytes());
    h.update(repeat.to_le_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(bytes)
}

/// The shard (1-based, of `count`) a case belongs to: FNV-1a (64-bit) of
/// `experiment + "\0" + case id`, mod `count`. A pure function of the names, so every matrix
/// job agrees on the partition and a case keeps its shard when others are added or removed.
pub fn shard_of(experiment: &str, case: &str, count: u32) -> u32 {
    let hash = stats::fnv1a(experiment.bytes().chain([0]).chain(case.bytes()));
    // The remainder is below `count`, a u32.
    (hash % u64::from(count.max(1))) as u32 + 1
}

/// Per planned experiment and case, whether the case is in `shard` ([`shard_of`]): read from
/// the cases before they are given away.
pub fn shard_cases(planned: &[Planned<'_>], shard: crate::results::Shard) -> Vec<Vec<bool>> {
    planned
        .iter()
        .map(|p| {
            let e = p.candidate;
            e.cases
                .iter()
                .map(|c| shard_of(&e.name, &c.id, shard.count) == shard.index)
                .collect()
        })
        .collect()
}

/// Output tokens are unknown before the call: assume a quarter of `max_tokens`, between 64 and
/// 512 tokens (1024 when unset), and never more than `max_tokens`. The budget's hard cap is
/// enforced again on actual spend.
pub fn estimate_output_tokens(max_tokens: Option<u32>) -> u64 {
    let limit = u64::from(max_tokens.unwrap_or(1024));
    // Never more than the request lets the model write: an estimate above the worst case
    // refused plans that could not reach the cap (`max_tokens: 20` estimated at 64).
    (limit / 4).clamp(64, 512).min(limit)
}

/// Output tokens assumed for the budget's upper bound when a request sets no `max_tokens`.
/// Under a cap such a request is sent with this limit (`Runner::as_sent`), so the bound holds.
pub const UNBOUNDED_OUTPUT_TOKENS: u32 = 4096;

/// The most a request can cost, for the runner's hard cap: every byte of every message counted
/// as a token (a token is at least one byte with the BPE tokenizers vendors use), plus framing,
/// and the full `max_tokens` of output (or [`UNBOUNDED_OUTPUT_TOKENS`]). `None` when the model
/// has no price.
pub fn request_upper_bound_usd(request: &Request, prices: &PriceTable) -> Option<f64> {
    let input = request.messages.iter().map(|m| m.content.len() as u64 + 8).sum::<u64>() + 16;
    let output = u64::from(request.max_tokens.unwrap_or(UNBOUNDED_OUTPUT_TOKENS));
    prices.cost(
        &request.model,
        &crate::providers::Usage {
            input,
            cached_input: 0,
            output,
        },
    )
}

pub fn estimate(jobs: &[Job], prices: &PriceTable) -> CostEstimate {
    let mut counter = crate::tokens::Counter::new();
    estimate_with(&priced(jobs), prices, |p| counter.messages(&p.model, &p.messages))
}

/// At least [`estimate`], without loading a tokenizer table: a model with a tokenizer has every
/// byte of its messages counted as a token ([`crate::tokens::messages_bound`]). A budget this
/// passes, [`estimate`] passes too.
pub fn estimate_bound(jobs: &[Job], prices: &PriceTable) -> CostEstimate {
    priced(jobs).bound(prices)
}

/// What the estimate reads of a request: its model, messages and `max_tokens`.
struct Priced {
    model: Name,
    messages: Arc<[Message]>,
    max_tokens: Option<u32>,
}

/// The plan's requests as the estimate reads them: each distinct [`Priced`] once (a case's
/// repeats share one), and the plan's order as a byte a request (see [`PricedPlan::indices`]).
/// The estimate's thread holds this while the first calls go out: a byte a call and 32 bytes
/// a case and arm, not a copy of every request.
pub struct PricedPlan {
    /// The jobs, a render error's included.
    calls: usize,
    distinct: Vec<Priced>,
    /// Each request in the plan's order: 0 for the next distinct one, met here first; `k` for
    /// the one `k` before that next one (at most [`LOOKBACK`]).
    order: Vec<u8>,
}

impl PricedPlan {
    /// Each request's index in `distinct`, in the plan's order.
    fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        let mut met = 0;
        self.order.iter().map(move |&back| {
            if back == 0 {
                met += 1;
                met - 1
            } else {
                met - usize::from(back)
            }
        })
    }

    /// [`estimate_bound`] of the jobs this was made of.
    pub fn bound(&self, prices: &PriceTable) -> CostEstimate {
        estimate_with(self, prices, |p| crate::tokens::messages_bound(&p.model, &p.messages))
    }
}

/// A plan's jobs are in case, repeat, arm order: a request is alike with one of the last few
/// distinct ones or with none before it.
const LOOKBACK: usize = 4;
// `PricedPlan::order` holds how far back, in a byte.
const _: () = assert!(LOOKBACK <= u8::MAX as usize);

/// The jobs' requests as the estimates read them: one made for the bound serves the count.
pub fn priced(jobs: &[Job]) -> PricedPlan {
    let mut plan = PricedPlan {
        calls: jobs.len(),
        distinct: Vec::new(),
        order: Vec::new(),
    };
    for request in jobs.iter().filter_map(|j| j.request.as_ref().ok()) {
        let alike = |p: &Priced| {
            Arc::ptr_eq(&p.messages, &request.messages)
                && p.model == request.model
                && p.max_tokens == request.max_tokens
        };
        let met = plan.distinct.len();
        let from = met.saturating_sub(LOOKBACK);
        let back = match plan.distinct[from..].iter().position(alike) {
            // At most LOOKBACK back: a byte.
            Some(at) => (met - (from + at)) as u8,
            None => {
                plan.distinct.push(Priced {
                    model: request.model.clone(),
                    messages: request.messages.clone(),
                    max_tokens: request.max_tokens,
                });
                0
            }
        };
        plan.order.push(back);
    }
    plan.distinct.shrink_to_fit();
    plan.order.shrink_to_fit();
    plan
}

fn estimate_with(
    plan: &PricedPlan,
    prices: &PriceTable,
    mut input_tokens: impl FnMut(&Priced) -> crate::tokens::Count,
) -> CostEstimate {
    let mut e = CostEstimate {
        calls: plan.calls,
        tokens_exact: true,
        ..CostEstimate::default()
    };
    // Each distinct request counted and priced once, when first met; a request alike with
    // one met before is one of the last LOOKBACK met, whose figures (input tokens, output
    // tokens, cost) are kept by index in a ring of LOOKBACK.
    type Figures = (u64, u64, Option<f64>);
    let mut figures: [Option<(usize, Figures)>; LOOKBACK] = [None; LOOKBACK];
    for index in plan.indices() {
        let kept = &mut figures[index % LOOKBACK];
        let (input, output, usd) = match kept {
            Some((at, figures)) if *at == index => *figures,
            _ => {
                let p = &plan.distinct[index];
                let count = input_tokens(p);
                e.tokens_exact &= count.exact;
                let usage = crate::providers::Usage {
                    input: count.tokens,
                    cached_input: 0,
                    output: estimate_output_tokens(p.max_tokens),
                };
                let usd = prices.cost(&p.model, &usage);
                if usd.is_none() {
                    e.unpriced_models.insert(p.model.to_string());
                }
                *kept = Some((index, (usage.input, usage.output, usd)));
                (usage.input, usage.output, usd)
            }
        };
        // Added a request at a time in the plan's order, as the sum always was: the same
        // figure to the last bit.
        e.input_tokens += input;
        e.output_tokens += output;
        if let Some(usd) = usd {
            e.usd += usd;
        }
    }
    e
}

/// The plan's cost on stderr, and each model it could not price.
pub fn announce(estimate: &CostEstimate, simulated: bool, config: &str) {
    if estimate.calls > 0 {
        eprintln!(
            "promptgate: plan: {} calls, {} input tokens ({}) + ~{} output tokens, estimated ${:.4}{}",
            estimate.calls,
            estimate.input_tokens,
            if estimate.tokens_exact {
                "tokenizer"
            } else {
                "estimated at 4 characters a token"
            },
            estimate.output_tokens,
            estimate.usd,
            if simulated {
                " (simulated: offline mock provider)"
            } else {
                ""
            }
        );
    }
    for model in &estimate.unpriced_models {
        eprintln!(
            "warning: model `{model}` has no price; its calls are counted at $0 in the spend and have no cost_per_request (add it under `pricing:` in {config})"
        );
    }
}

/// The plan's estimate: counted, or being counted on its own thread while the first calls go
/// out (counting waits for the models' tokenizer tables, a noticeable part of a second).
pub struct Estimating {
    counted: Option<CostEstimate>,
    counting: Option<std::thread::JoinHandle<CostEstimate>>,
}

impl Estimating {
    pub fn counted(estimate: CostEstimate) -> Estimating {
        Estimating {
            counted: Some(estimate),
            counting: None,
        }
    }

    /// Counts the jobs `plan` was made of, and `judged` (the judge calls planned), on a
    /// thread, which hands the estimate to `then` (to print it) as soon as it has it.
    pub fn start(
        plan: PricedPlan,
        judged: Vec<Job>,
        prices: &PriceTable,
        then: impl FnOnce(&CostEstimate) + Send + 'static,
    ) -> std::io::Result<Estimating> {
        // The requests' texts are shared (`Arc`): the thread holds each distinct request's
        // model and messages once, and the plan's order, not a copy of every request.
        let prices = prices.clone();
        let count = move || {
            let mut counter = crate::tokens::Counter::new();
            let e = estimate_with(&plan, &prices, |p| counter.messages(&p.model, &p.messages))
                .plus(estimate(&judged, &prices));
            then(&e);
            e
        };
        let handle = std::thread::Builder::new().name("estimate".to_owned()).spawn(count)?;
        Ok(Estimating {
            counted: None,
            counting: Some(handle),
        })
    }

    /// The estimate, waiting for its thread if it is still counting.
    pub fn get(&mut self) -> &CostEstimate {
        if let Some(handle) = self.counting.take() {
            self.counted = Some(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        self.counted.get_or_insert_default()
    }
}

impl Drop for Estimating {
    /// A run that stops early still prints its estimate, whole, before the process exits.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.get();
        }
    }
}

impl CostEstimate {
    /// This estimate and `other`'s as one: generation and judging, which the budget sees
    /// together.
    #[must_use]
    pub fn plus(mut self, other: CostEstimate) -> CostEstimate {
        self.calls += other.calls;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.usd += other.usd;
        self.unpriced_models.extend(other.unpriced_models);
        self.tokens_exact &= other.tokens_exact || other.calls == 0;
        self
    }
}

/// What raises the hard cap, in every message of a run it stopped: the budget in force is the
/// base's when the base has a suite (DESIGN.md, Decisions; else the head's), so a pull
/// request's own raise applies only once merged.
pub const RAISE_MAX_USD: &str = "raise `budget.max_usd` in the base's promptgate.yaml (the budget in force is the base's when the base has a suite: a pull request's own raise then applies once merged)";

/// Refuses a run whose estimate exceeds the hard cap, or the approval threshold without an
/// approval at least as large as the estimate.
pub fn check_budget(
    estimate: &CostEstimate,
    budget: &Budget,
    approved_usd: Option<f64>,
    simulated: bool,
) -> Result<(), Error> {
    check_budget_of(estimate, budget, approved_usd, simulated, "estimated cost")
}

/// [`check_budget`], its messages calling the estimate `what` (a shard checks the whole run's).
pub fn check_budget_of(
    estimate: &CostEstimate,
    budget: &Budget,
    approved_usd: Option<f64>,
    simulated: bool,
    what: &str,
) -> Result<(), Error> {
    // Offline mock calls cost nothing real, but their simulated cost is what the run would
    // cost at its model's price: the budget holds for it too (a dry run of the budget), and
    // says so.
    let what = if simulated {
        format!("{what} (simulated: offline mock provider)")
    } else {
        what.to_owned()
    };
    if let Some(max) = budget.max_usd.filter(|max| estimate.usd > *max) {
        return Err(Error::run_with_hint(
            format!(
                "{what} {} exceeds the budget's hard cap of {}",
                usd(estimate.usd),
                usd(max)
            ),
            format!("lower repeats or cases, or {RAISE_MAX_USD}"),
        ));
    }
    let approved = approved_usd.is_some_and(|a| a >= estimate.usd);
    if let Some(threshold) = budget.approve_above_usd.filter(|t| estimate.usd > *t && !approved) {
        let amount = approval_amount(estimate.usd);
        return Err(Error::run_with_hint(
            format!(
                "{what} {} is above the approval threshold of {}",
                usd(estimate.usd),
                usd(threshold)
            ),
            format!(
                "approve it with --approve-cost {amount} (the action's `approve-cost: {amount}` input, or in a pull request a maintainer's `promptgate:approve-cost` label)"
            ),
        ));
    }
    Ok(())
}

/// A dollar amount with the digits it needs: cents from a dollar up, and below that two
/// significant digits (at least cents), so a threshold of 0.001 reads `$0.001`, never `$0.00`.
pub fn usd(x: f64) -> String {
    if !x.is_finite() {
        return format!("${x}");
    }
    let magnitude = x.abs();
    let decimals = if magnitude == 0.0 || magnitude >= 1.0 {
        2
    } else {
        // Two significant digits: 0.0034 → 4 decimals, 0.5 → 2.
        ((-magnitude.log10()).ceil() as usize + 1).clamp(2, 10)
    };
    let text = format!("{x:.decimals$}");
    // Trailing zeros past the cents say nothing.
    let text = if decimals > 2 {
        let trimmed = text.trim_end_matches('0');
        let cents_at = trimmed.find('.').map_or(trimmed.len(), |dot| dot + 3);
        if trimmed.len() < cents_at {
            text[..cents_at].to_owned()
        } else {
            trimmed.to_owned()
        }
    } else {
        text
    };
    match text.strip_prefix('-') {
        Some(rest) => format!("-${rest}"),
        None => format!("${text}"),
    }
}

/// The smallest whole-cent amount that covers `estimate`: what `--approve-cost` needs.
pub fn approval_amount(estimate: f64) -> String {
    let mut cents = (estimate * 100.0).ceil();
    // Floating point: 0.07 * 100 is 7.000000000000001; never ask for a cent too many, never
    // one too few.
    if (cents - 1.0) / 100.0 >= estimate {
        cents -= 1.0;
    }
    if cents / 100.0 < estimate {
        cents += 1.0;
    }
    format!("{:.2}", cents.max(1.0) / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan holds a job a call until the calls end.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn a_job_is_at_most_64_bytes() {
        // Its experiment's and case's indices are 32 bits, as a place's are; its fallbacks one
        // word.
        assert!(std::mem::size_of::<Job>() <= 64, "{}", std::mem::size_of::<Job>());
    }

    #[test]
    fn no_fallbacks_hold_nothing_and_a_list_reads_as_its_names_in_order() {
        let none: Fallbacks = std::iter::empty().collect();
        assert!(none.0.is_none() && none.is_empty() && none == Fallbacks::default());
        assert!(none.same(&Fallbacks::default()));
        let names: Fallbacks = ["spare", "backup"].into_iter().map(Name::from).collect();
        assert_eq!(names.iter().map(|n| &**n).collect::<Vec<_>>(), ["spare", "backup"]);
        let copy = names.clone();
        assert!(copy.same(&names) && !copy.same(&none));
        let equal: Fallbacks = ["spare", "backup"].into_iter().map(Name::from).collect();
        assert!(equal == names && !equal.same(&names), "equal, but another list");
    }

    fn suite(prompt: &str, dataset: &str) -> crate::suite::Suite {
        let files = [
            (
                "promptgate.yaml",
                "version: 1\ndefaults: {repeats: 2}\nexperiments:\n  - {name: support, variant: v.yaml, dataset: d.jsonl}\n",
            ),
            ("v.yaml", "model: m\nprompt: p.md\n"),
            ("p.md", prompt),
            ("d.jsonl", dataset),
        ];
        let tree = crate::workspace::MemTree::new(files);
        crate::suite::load(std::sync::Arc::new(tree), "promptgate.yaml").unwrap()
    }

    /// A latency gate's minimum n counts groups: the first units in dataset order are timed,
    /// each group whole (its later cases too), an ungrouped case being a unit of its own.
    #[test]
    fn retiming_takes_whole_groups_as_units() {
        let line = |id: &str, group: Option<&str>| match group {
            Some(g) => format!("{{\"id\": \"{id}\", \"group\": \"{g}\", \"vars\": {{\"input\": \"{id}\"}}}}\n"),
            None => format!("{{\"id\": \"{id}\", \"vars\": {{\"input\": \"{id}\"}}}}\n"),
        };
        let dataset: String = [
            ("a", Some("g1")),
            ("b", Some("g1")),
            ("c", Some("g2")),
            ("d", None),
            ("e", Some("g1")),
            ("f", Some("g3")),
            ("g", None),
        ]
        .iter()
        .map(|(id, g)| line(id, *g))
        .collect();
        let base = suite("Answer.", &dataset);
        let head = suite("Answer briefly.", &dataset);
        let planned = [Planned {
            candidate: &head.experiments[0],
            baseline: Some(&base.experiments[0]),
        }];
        let mut all = jobs(&planned, 7);
        // Three units of the five (g1: a, b, e; g2: c; d; g3: f; g), those whose keys are the
        // smallest, a group whole.
        mark_retimed(&mut all, &retimed(&planned, 3));
        let timed: std::collections::BTreeSet<&str> = all
            .iter()
            .filter(|j| j.retime)
            .map(|j| head.experiments[0].cases[j.case()].id.as_str())
            .collect();
        let name = &head.experiments[0].name;
        let unit_key =
            |kind: u8, unit: &str| stats::mix64(stats::fnv1a(name.bytes().chain([0, kind]).chain(unit.bytes())));
        let mut units = [
            (unit_key(b'g', "g1"), &["a", "b", "e"][..]),
            (unit_key(b'g', "g2"), &["c"][..]),
            (unit_key(b'c', "d"), &["d"][..]),
            (unit_key(b'g', "g3"), &["f"][..]),
            (unit_key(b'c', "g"), &["g"][..]),
        ];
        units.sort();
        let expected: std::collections::BTreeSet<&str> =
            units[..3].iter().flat_map(|(_, ids)| ids.iter().copied()).collect();
        assert_eq!(timed, expected);
        // Both arms and every repeat of a timed case.
        assert_eq!(all.iter().filter(|j| j.retime).count(), expected.len() * 2 * 2);
        // The same sample whatever the dataset's order.
        let reversed: String = dataset.lines().rev().map(|l| format!("{l}\n")).collect();
        let (base_r, head_r) = (suite("Answer.", &reversed), suite("Answer briefly.", &reversed));
        let planned_r = [Planned {
            candidate: &head_r.experiments[0],
            baseline: Some(&base_r.experiments[0]),
        }];
        let timed_r: std::collections::BTreeSet<&str> = retimed(&planned_r, 3)[0]
            .iter()
            .zip(&head_r.experiments[0].cases)
            .filter(|(t, _)| **t)
            .map(|(_, c)| c.id.as_str())
            .collect();
        assert_eq!(timed_r, timed);
        // More units asked for than there are: every case; none asked for: none.
        assert!(retimed(&planned, 9)[0].iter().all(|t| *t));
        assert!(retimed(&planned, 0)[0].iter().all(|t| !*t));
        // A dataset sorted by topic, ids sharing each topic's prefix: the sample spreads over
        // the topics (unmixed, FNV-1a's smallest keys were one topic's 30 cases).
        let topics = ["billing", "shipping", "returns", "accounts", "technical"];
        let sorted: String = topics
            .iter()
            .flat_map(|t| {
                (1..=40).map(move |i| format!("{{\"id\": \"{t}-{i:03}\", \"vars\": {{\"input\": \"q\"}}}}\n"))
            })
            .collect();
        let (base_t, head_t) = (suite("Answer.", &sorted), suite("Answer briefly.", &sorted));
        let planned_t = [Planned {
            candidate: &head_t.experiments[0],
            baseline: Some(&base_t.experiments[0]),
        }];
        let sample = &retimed(&planned_t, 30)[0];
        assert_eq!(sample.iter().filter(|t| **t).count(), 30);
        for (topic, cases) in topics.iter().zip(sample.chunks(40)) {
            let timed = cases.iter().filter(|t| **t).count();
            // Binomial-like spread around 6 a topic; each topic has some, none has most.
            assert!((1..=15).contains(&timed), "{topic}: {timed} of the 30 timed");
        }
        // A new experiment (no baseline) is timed too: a blocking latency SLO judges its own
        // calls, which a warm cache would leave without a latency.
        let new = [Planned {
            candidate: &head.experiments[0],
            baseline: None,
        }];
        let mut alone = jobs(&new, 7);
        mark_retimed(&mut alone, &retimed(&new, 3));
        assert_eq!(alone.iter().filter(|j| j.retime).count(), expected.len() * 2);
    }

    #[test]
    fn equal_message_contents_are_held_once_across_cases_arms_and_repeats() {
        let dataset =
            "{\"id\": \"a\", \"vars\": {\"input\": \"q1\"}}\n{\"id\": \"b\", \"vars\": {\"input\": \"q2\"}}\n";
        let base = suite("Answer.", dataset);
        let head = suite("Answer briefly.", dataset);
        let planned = [Planned {
            candidate: &head.experiments[0],
            baseline: Some(&base.experiments[0]),
        }];
        let jobs = jobs(&planned, 7);
        // 2 cases × 2 repeats × 2 arms, in case, repeat, arm order.
        assert_eq!(jobs.len(), 8);
        let messages = |i: usize| &jobs[i].request.as_ref().unwrap().messages;
        let same = |a: &Message, b: &Message| std::sync::Arc::ptr_eq(&a.content, &b.content);
        assert_eq!((jobs[0].arm, jobs[1].arm), (Arm::Baseline, Arm::Candidate));
        assert_eq!(&*messages(0)[0].content, "Answer.");
        assert_eq!(&*messages(1)[0].content, "Answer briefly.");
        assert_eq!(&*messages(0)[1].content, "q1");
        // Both arms send the same user message: one allocation.
        assert!(same(&messages(0)[1], &messages(1)[1]));
        // The system prompt of every case and repeat of an arm: one allocation.
        for i in [2, 4, 6] {
            assert!(same(&messages(0)[0], &messages(i)[0]), "job {i}");
            assert!(same(&messages(1)[0], &messages(i + 1)[0]), "job {}", i + 1);
        }
        // Repeats share their case's render; the next case's question is its own.
        assert!(same(&messages(0)[1], &messages(2)[1]));
        assert_eq!(&*messages(4)[1].content, "q2");
        assert!(!same(&messages(0)[1], &messages(4)[1]));
        // Repeats differ by seed only; both arms of a repeat share one.
        assert_eq!(
            jobs[0].request.as_ref().unwrap().seed,
            jobs[1].request.as_ref().unwrap().seed
        );
        assert_ne!(
            jobs[0].request.as_ref().unwrap().seed,
            jobs[2].request.as_ref().unwrap().seed
        );
    }

    /// A candidate-only plan of `dataset` (2 repeats) with the seed, its model an OpenAI one:
    /// counted with its tokenizer, priced by the built-in table.
    fn openai_jobs(dataset: &str, seed: u64) -> Vec<Job> {
        let head = suite("Answer in one sentence, citing the policy.", dataset);
        let planned = [Planned {
            candidate: &head.experiments[0],
            baseline: None,
        }];
        let mut jobs = jobs(&planned, seed);
        for request in jobs.iter_mut().filter_map(|j| j.request.as_mut().ok()) {
            request.model = "gpt-4o-mini".into();
        }
        jobs
    }

    #[test]
    fn the_bound_covers_the_estimate_and_the_count_on_a_thread_is_the_estimate() {
        let dataset = "{\"id\": \"a\", \"vars\": {\"input\": \"Can I get a refund after 45 days?\"}}\n\
                       {\"id\": \"b\", \"vars\": {\"input\": \"Rückerstattung — ¿cuándo? ✓\"}}\n";
        let (jobs, judged) = (openai_jobs(dataset, 7), openai_jobs(dataset, 8));
        let prices = PriceTable::new(&std::collections::BTreeMap::new());
        let exact = estimate(&jobs, &prices).plus(estimate(&judged, &prices));
        let bound = estimate_bound(&jobs, &prices).plus(estimate_bound(&judged, &prices));
        assert!(exact.tokens_exact && bound.tokens_exact);
        assert!(
            bound.input_tokens > exact.input_tokens && bound.usd > exact.usd,
            "{bound:?} vs {exact:?}"
        );
        assert_eq!((bound.calls, bound.output_tokens), (exact.calls, exact.output_tokens));
        // A budget between the two: the bound is refused, so the run waits for the count.
        let between = Budget {
            max_usd: Some((exact.usd + bound.usd) / 2.0),
            approve_above_usd: None,
        };
        assert!(check_budget(&bound, &between, None, false).is_err());
        assert!(check_budget(&exact, &between, None, false).is_ok());

        let (sent, received) = std::sync::mpsc::channel();
        let mut counting =
            Estimating::start(priced(&jobs), judged, &prices, move |e| sent.send(e.clone()).unwrap()).unwrap();
        assert_eq!(counting.get(), &exact);
        assert_eq!(received.recv().unwrap(), exact, "`then` saw the same estimate");
        assert_eq!(Estimating::counted(exact.clone()).get(), &exact);
    }

    #[test]
    fn a_cases_repeats_are_counted_once_and_priced_each() {
        let dataset = "{\"id\": \"a\", \"vars\": {\"input\": \"Can I get a refund after 45 days?\"}}\n\
                       {\"id\": \"b\", \"vars\": {\"input\": \"And without the receipt?\"}}\n";
        let (base, head) = (suite("Answer.", dataset), suite("Answer briefly.", dataset));
        let planned = [Planned {
            candidate: &head.experiments[0],
            baseline: Some(&base.experiments[0]),
        }];
        let mut jobs = jobs(&planned, 7);
        for request in jobs.iter_mut().filter_map(|j| j.request.as_mut().ok()) {
            request.model = "gpt-4o-mini".into();
        }
        // 2 cases × 2 repeats × 2 arms, the arms interleaved; the last job asks for less output,
        // so it is a request of its own.
        assert_eq!(jobs.len(), 8);
        jobs[7].request.as_mut().unwrap().max_tokens = Some(100);
        let plan = priced(&jobs);
        assert_eq!(plan.distinct.len(), 5);
        assert_eq!(plan.indices().collect::<Vec<_>>(), [0, 1, 0, 1, 2, 3, 2, 4]);

        // The reference: every request counted and priced on its own, in the plan's order.
        let prices = PriceTable::new(&std::collections::BTreeMap::new());
        let mut counter = crate::tokens::Counter::new();
        let (mut input, mut output, mut usd) = (0, 0, 0.0);
        for request in jobs.iter().map(|j| j.request.as_ref().unwrap()) {
            let usage = crate::providers::Usage {
                input: counter.messages(&request.model, &request.messages).tokens,
                cached_input: 0,
                output: estimate_output_tokens(request.max_tokens),
            };
            (input, output) = (input + usage.input, output + usage.output);
            usd += prices.cost(&request.model, &usage).unwrap();
        }
        let e = estimate(&jobs, &prices);
        assert_eq!((e.calls, e.input_tokens, e.output_tokens), (8, input, output));
        assert_eq!(e.usd.to_bits(), usd.to_bits(), "{} vs {usd}", e.usd);
        let counted = Estimating::start(priced(&jobs), Vec::new(), &prices, |_| {})
            .unwrap()
            .get()
            .clone();
        assert_eq!(counted, e);
    }

    /// A request alike with one met up to LOOKBACK distinct requests before is priced with
    /// that one's figures, kept in the ring; every distinct request is counted once.
    #[test]
    fn a_request_alike_with_one_lookback_back_is_counted_once_and_priced_as_it() {
        let priced = |max_tokens: u32| Priced {
            model: "gpt-4o-mini".into(),
            messages: Arc::from(Vec::new()),
            max_tokens: Some(max_tokens),
        };
        // Six distinct requests; the later ones refer back 1 to LOOKBACK.
        let order = [0, 0, 0, 0, 4, 1, 0, 4, 3, 2, 1, 0, 1, 4];
        let plan = PricedPlan {
            calls: order.len(),
            distinct: (1..=6).map(|i| priced(i * 10)).collect(),
            order: order.to_vec(),
        };
        let indices: Vec<usize> = plan.indices().collect();
        assert_eq!(indices, [0, 1, 2, 3, 0, 3, 4, 1, 2, 3, 4, 5, 5, 2]);
        let prices = PriceTable::new(&std::collections::BTreeMap::new());
        let mut counted = Vec::new();
        let tokens = |p: &Priced| 7 * u64::from(p.max_tokens.unwrap());
        let e = estimate_with(&plan, &prices, |p| {
            counted.push(p.max_tokens.unwrap());
            crate::tokens::Count {
                tokens: tokens(p),
                exact: true,
            }
        });
        assert_eq!(counted, [10, 20, 30, 40, 50, 60]);
        // The reference: each request on its own, in the plan's order.
        let (mut input, mut output, mut usd) = (0, 0, 0.0);
        for p in indices.iter().map(|&i| &plan.distinct[i]) {
            let usage = crate::providers::Usage {
                input: tokens(p),
                cached_input: 0,
                output: estimate_output_tokens(p.max_tokens),
            };
            (input, output) = (input + usage.input, output + usage.output);
            usd += prices.cost(&p.model, &usage).unwrap();
        }
        assert_eq!((e.calls, e.input_tokens, e.output_tokens), (14, input, output));
        assert_eq!(e.usd.to_bits(), usd.to_bits());
    }

    #[test]
    fn amounts_keep_their_digits() {
        assert_eq!(usd(0.001), "$0.001");
        assert_eq!(usd(0.0034), "$0.0034");
        assert_eq!(usd(0.00123456), "$0.0012");
        assert_eq!(usd(0.5), "$0.50");
        assert_eq!(usd(0.0123), "$0.012");
        assert_eq!(usd(0.07), "$0.07");
        assert_eq!(usd(12.345), "$12.35");
        assert_eq!(usd(0.0), "$0.00");
        assert_eq!(usd(0.0100), "$0.01");
        assert_eq!(approval_amount(0.0234), "0.03");
        assert_eq!(approval_amount(0.07), "0.07");
        assert_eq!(approval_amount(0.03), "0.03");
        assert_eq!(approval_amount(0.0004), "0.01");
        assert_eq!(approval_amount(1.001), "1.01");
    }

    #[test]
    fn the_approval_message_shows_the_threshold_and_an_amount_that_covers() {
        let estimate = CostEstimate {
            calls: 10,
            usd: 0.0234,
            ..CostEstimate::default()
        };
        let budget = Budget {
            approve_above_usd: Some(0.001),
            max_usd: None,
        };
        let e = check_budget(&estimate, &budget, None, false).unwrap_err().to_string();
        assert!(
            e.contains("estimated cost $0.023 is above the approval threshold of $0.001"),
            "{e}"
        );
        assert!(e.contains("--approve-cost 0.03"), "{e}");
        assert!(check_budget(&estimate, &budget, Some(0.03), false).is_ok());
    }

    // Reference values from an independent FNV-1a in Python (`fnv` beside
    // `stats::fnv1a`'s test): fnv(e.encode() + b"\0" + c.encode()) % n + 1
    #[test]
    fn shard_of_is_stable() {
        let check = |experiment: &str, case: &str, count: u32, expected: u32| {
            assert_eq!(
                shard_of(experiment, case, count),
                expected,
                "{experiment}/{case} of {count}"
            );
        };
        check("customer-support", "refund-late", 3, 3);
        check("customer-support", "refund-late", 4, 3);
        check("product-faq", "shipping-time", 3, 3);
        check("x", "", 2, 2);
        check("customer-support", "c1", 7, 2);
        check("anything", "at-all", 1, 1);
    }

    #[test]
    fn shard_of_separates_experiment_from_case() {
        // "ab" + "c" and "a" + "bc" differ only by where the separator falls.
        assert_ne!(stats::fnv1a(*b"ab\0c"), stats::fnv1a(*b"a\0bc"));
        for n in 1..10 {
            for i in 0..50 {
                let k = shard_of("e", &format!("case-{i}"), n);
                assert!((1..=n).contains(&k));
            }
        }
    }

    fn est(usd: f64) -> CostEstimate {
        CostEstimate {
            usd,
            ..CostEstimate::default()
        }
    }

    #[test]
    fn budget() {
        let b = Budget {
            approve_above_usd: Some(0.5),
            max_usd: Some(5.0),
        };
        assert!(check_budget(&est(0.4), &b, None, false).is_ok());
        assert!(check_budget(&est(0.6), &b, None, false).is_err());
        assert!(check_budget(&est(0.6), &b, Some(0.59), false).is_err());
        assert!(check_budget(&est(0.6), &b, Some(0.6), false).is_ok());
        assert!(check_budget(&est(6.0), &b, Some(10.0), false).is_err());
        // A simulated (mock) run's cost is what the run would cost: the budget holds for it,
        // and says it is simulated.
        let simulated = check_budget(&est(6.0), &b, None, true).unwrap_err().to_string();
        assert!(
            simulated.contains(
                "estimated cost (simulated: offline mock provider) $6.00 exceeds the budget's hard cap of $5.00"
            ),
            "{simulated}"
        );
        assert!(check_budget(&est(0.4), &b, None, true).is_ok());
        assert_eq!(check_budget(&est(0.6), &b, None, false).unwrap_err().exit_code(), 3);
    }

    #[test]
    fn output_estimate_bounds() {
        assert_eq!(estimate_output_tokens(None), 256);
        assert_eq!(estimate_output_tokens(Some(100)), 64);
        assert_eq!(estimate_output_tokens(Some(20)), 20, "never above the limit");
        assert_eq!(estimate_output_tokens(Some(0)), 0);
        assert_eq!(estimate_output_tokens(Some(100_000)), 512);
    }

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(derive_seed(0, "e", "c", 0), derive_seed(0, "e", "c", 0));
        assert_ne!(derive_seed(0, "e", "c", 0), derive_seed(0, "e", "c", 1));
        assert_ne!(derive_seed(0, "e", "c", 0), derive_seed(1, "e", "c", 0));
    }
}
