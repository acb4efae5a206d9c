//! The gate end to end: refs → suites → detection → plan → run → score → analyze → gate →
//! report.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::analyze::{self, Estimate};
use crate::cli::GateFlags;
use crate::detect::{self, Detection};
use crate::error::{Diagnostic, Error, exit};
use crate::gate;
use crate::plan::{self, Arm, Job, Planned};
use crate::providers::{self, pricing::PriceTable};
use crate::report::{self, results::*};
use crate::runner::{self, Endpoint, Outcome};
use crate::scorers;
use crate::stats;
use crate::suite::{self, Suite};
use crate::workspace::{FileSource, GitTree, Repo};

pub struct GateOptions {
    pub base: String,
    pub head: String,
    pub config: String,
    pub all: bool,
    pub approve_cost: Option<f64>,
    pub out: PathBuf,
    /// The response cache; `None` sends every call (`--no-cache`).
    pub cache_dir: Option<PathBuf>,
    /// The journal an interrupted run resumes from; `None` keeps none.
    pub journal: Option<PathBuf>,
    /// A/A: every experiment at `base` compared with itself, to measure the suite's noise.
    pub aa: bool,
    /// Run only this shard of every experiment's cases (`--shard K/N`).
    pub shard: Option<Shard>,
}

impl GateOptions {
    /// The options the command line gives: the cache at `<repo>/.promptgate/cache` unless
    /// `--no-cache`, the journal beside the outputs.
    pub fn from_flags(
        repo_root: &Path,
        base: String,
        head: String,
        config: &str,
        out: &Path,
        flags: &GateFlags,
    ) -> Self {
        GateOptions {
            base,
            head,
            config: config.to_owned(),
            all: flags.all,
            approve_cost: flags.approve_cost,
            out: out.to_owned(),
            cache_dir: (!flags.no_cache).then(|| repo_root.join(".promptgate").join("cache")),
            journal: Some(out.join("journal.jsonl")),
            aa: false,
            shard: flags.shard,
        }
    }
}

/// A finished gate: the results, where they were written, and any run error to exit with.
pub struct GateRun {
    pub results: Results,
    pub written: Vec<PathBuf>,
    pub run_error: Option<Error>,
}

impl GateRun {
    pub fn exit_code(self) -> anyhow::Result<u8> {
        if let Some(e) = self.run_error {
            return Err(e.into());
        }
        Ok(match self.results.verdict {
            Verdict::Pass | Verdict::Waived => exit::PASS,
            Verdict::Fail => exit::FAIL,
        })
    }
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

pub fn run_gate(repo_dir: &Path, options: &GateOptions) -> anyhow::Result<GateRun> {
    run_gate_with(repo_dir, options, &|_| Ok(()))
}

/// [`run_gate`], calling `on_plan` once the plan is known and the budget accepted, before the
/// first call; an error from it stops the gate before anything is spent.
pub fn run_gate_with(
    repo_dir: &Path,
    options: &GateOptions,
    on_plan: &dyn Fn(&PlanFacts) -> anyhow::Result<()>,
) -> anyhow::Result<GateRun> {
    let started = Instant::now();
    let repo = Repo::open(repo_dir)?;
    let base_sha = repo.resolve(&options.base)?;
    let head_sha = repo.resolve(&options.head)?;
    let merge_base = repo.merge_base(&base_sha, &head_sha)?;
    let changes = repo.changes(&merge_base, &head_sha)?;

    let head_tree: Arc<dyn FileSource> = Arc::new(GitTree::new(repo.root(), &head_sha));
    let head = suite::load(head_tree, &options.config)?;
    let base = load_base(Arc::new(GitTree::new(repo.root(), &merge_base)), &options.config);
    // A/A compares the suite at base with itself: that suite plays the head's role throughout.
    let (head, base, detection) = if options.aa {
        let Some(base) = base else {
            return Err(Error::run_with_hint(
                format!(
                    "--aa needs the suite at {} ({}), and it does not load there",
                    options.base,
                    short(&merge_base)
                ),
                "run the A/A check against a ref where the suite exists",
            )
            .into());
        };
        let detection = aa_detection(&base);
        let twin = load_base(Arc::new(GitTree::new(repo.root(), &merge_base)), &options.config);
        (base, twin, detection)
    } else {
        let detection = detect::detect(base.as_ref(), &head, &changes, options.all);
        (head, base, detection)
    };
    eprintln!(
        "promptgate: {} changed path(s) between {} and {}; {} experiment(s) affected, {} removed, {} unaffected",
        detection.changed_paths.len(),
        short(&merge_base),
        short(&head_sha),
        detection.affected.len(),
        detection.removed.len(),
        detection.unaffected.len()
    );

    if let Some(shard) = options.shard {
        refuse_shard(shard, options.aa, head.defaults.sequential)?;
    }

    let planned: Vec<Planned<'_>> = detection
        .affected
        .iter()
        .filter_map(|a| {
            let candidate = head.experiments.iter().find(|e| e.name == a.name)?;
            let baseline = match a.status {
                ExperimentStatus::New => None,
                _ => base
                    .as_ref()
                    .and_then(|b| b.experiments.iter().find(|e| e.name == a.name)),
            };
            Some(Planned { candidate, baseline })
        })
        .collect();
    let mut jobs = plan::jobs(&planned, head.defaults.seed);
    if let Some(shard) = options.shard {
        // Same jobs, seeds and requests as the full run, so shards union to it call for call.
        jobs.retain(|j| {
            let e = planned[j.experiment].candidate;
            plan::shard_of(&e.name, &e.cases[j.case].id, shard.count) == shard.index
        });
        eprintln!(
            "promptgate: shard {}/{}: {} of the plan's calls",
            shard.index,
            shard.count,
            jobs.len()
        );
    }
    if options.aa {
        // Independent seeds for the second arm, or a seeded provider would answer identically
        // and the A/A would measure nothing.
        for job in jobs.iter_mut().filter(|j| j.arm == Arm::Candidate) {
            if let Ok(request) = &mut job.request {
                request.seed = request.seed.rotate_left(17) ^ 0x5851_f42d_4c95_7f2d;
            }
        }
    }
    let prices = PriceTable::new(&head.pricing);
    let endpoints = endpoints(&head, base.as_ref(), &jobs)?;
    let simulated = !endpoints.is_empty() && endpoints.values().all(|e| e.provider.simulated());
    let estimate = plan::estimate(&jobs, &prices);
    if !jobs.is_empty() {
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
            "warning: model `{model}` has no price; its calls are counted at $0 (add it under `pricing:` in {})",
            head.config_path
        );
    }
    plan::check_budget(&estimate, &head.budget, options.approve_cost, simulated)?;
    on_plan(&PlanFacts {
        experiments: planned.len(),
        calls: jobs.len(),
        estimated_usd: estimate.usd,
        simulated,
    })?;

    // Offline mock spend is simulated: reported, not capped (as in `plan::check_budget`).
    let max_usd = head.budget.max_usd.filter(|_| !simulated);
    let run_batch = |batch: &[Job]| {
        execute(
            batch,
            &endpoints,
            &prices,
            max_usd,
            options.cache_dir.clone(),
            options.journal.clone(),
        )
    };
    let assemble_at = |jobs: &[Job], report: &runner::Report, look: Option<&stats::Look>| {
        assemble(&AssembleInput {
            head: &head,
            planned: &planned,
            detection: &detection,
            jobs,
            outcomes: &report.outcomes,
            runner: report,
            prices: &prices,
            base_ref: GitRef {
                name: options.base.clone(),
                sha: base_sha.clone(),
            },
            head_ref: GitRef {
                name: options.head.clone(),
                sha: head_sha.clone(),
            },
            estimate_usd: estimate.usd,
            simulated,
            started,
            look,
            shard: options.shard,
        })
    };
    let (mut results, report) = if head.defaults.sequential && !options.aa && !jobs.is_empty() {
        run_sequential(&jobs, &run_batch, &head.defaults, &assemble_at)?
    } else {
        let report = run_batch(&jobs)?;
        (assemble_at(&jobs, &report, None), report)
    };
    if options.aa {
        add_aa_summaries(&mut results, &head);
        if let Some(d) = &mut results.defaults {
            d.aa = true;
        }
    }
    let run_error =
        budget_cap_reached(&report, max_usd).or_else(|| error_budget_exceeded(&results, head.defaults.max_error_rate));
    let written = report::write_outputs(&results, &options.out)?;
    Ok(GateRun {
        results,
        written,
        run_error,
    })
}

/// A shard is a fixed share of the cases; the designs that need every case refuse it.
fn refuse_shard(shard: Shard, aa: bool, sequential: bool) -> Result<(), Error> {
    let why = if aa {
        "--aa compares every case with itself and estimates the suite's noise from all of them"
    } else if sequential {
        "a sequential design looks at shares of all the cases in one order, which a shard cannot see"
    } else {
        return Ok(());
    };
    Err(Diagnostic::new(format!(
        "--shard {}/{} cannot be used here: {why}",
        shard.index, shard.count
    ))
    .hint(if aa {
        "run the A/A check without --shard"
    } else {
        "run without --shard, or set `defaults.sequential: false` in the suite to shard a fixed design"
    })
    .into())
}

/// The suite at base, as far as it loads. A missing suite means every experiment is new; an
/// experiment that does not load at base runs candidate-only, with a warning.
fn load_base(tree: Arc<dyn FileSource>, config: &str) -> Option<Suite> {
    match tree.read(config) {
        Ok(Some(_)) => {}
        _ => return None,
    }
    let (mut suite, decls) = match suite::load_config(&*tree, config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: the suite does not load at base, so every experiment runs candidate-only:\n{e}");
            return None;
        }
    };
    for decl in &decls {
        match suite::load_experiment(&tree, &suite, decl) {
            Ok(e) => suite.experiments.push(e),
            Err(e) => eprintln!(
                "warning: experiment `{}` does not load at base; it runs candidate-only:\n{e}",
                decl.name()
            ),
        }
    }
    Some(suite)
}

fn endpoints(head: &Suite, base: Option<&Suite>, jobs: &[Job]) -> Result<BTreeMap<String, Endpoint>, Error> {
    let mut endpoints = BTreeMap::new();
    for name in jobs
        .iter()
        .flat_map(|job| std::iter::once(&job.provider).chain(&job.fallbacks))
    {
        if endpoints.contains_key(name) {
            continue;
        }
        let spec = head
            .providers
            .get(name)
            .or_else(|| base.and_then(|b| b.providers.get(name)));
        let Some(spec) = spec else { continue };
        endpoints.insert(
            name.clone(),
            Endpoint {
                provider: providers::build(spec)?,
                concurrency: spec.concurrency,
                timeout: Duration::from_millis(spec.timeout_ms),
                max_retries: spec.max_retries,
                requests_per_minute: spec.requests_per_minute,
                tokens_per_minute: spec.tokens_per_minute,
                cache_identity: format!(
                    "{}|{}|{}",
                    spec.kind.as_str(),
                    spec.base_url.as_deref().unwrap_or(""),
                    spec.deployment.as_deref().unwrap_or("")
                ),
            },
        );
    }
    Ok(endpoints)
}

fn execute(
    jobs: &[Job],
    endpoints: &BTreeMap<String, Endpoint>,
    prices: &PriceTable,
    max_usd: Option<f64>,
    cache_dir: Option<PathBuf>,
    journal: Option<PathBuf>,
) -> anyhow::Result<runner::Report> {
    if jobs.is_empty() {
        return Ok(runner::Report::default());
    }
    let options = runner::Options {
        cache_dir,
        journal,
        run_identity: runner::run_identity(jobs, endpoints),
        max_usd,
        progress: runner::ProgressMode::detect(),
        backoff_base: Duration::from_millis(500),
        interruptible: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(runner::run(jobs, endpoints, prices, &options));
    if report.interrupted {
        let finished = report.outcomes.iter().filter(|o| o.attempts > 0 || o.cached).count();
        let kept = options.journal.as_ref().map_or_else(
            || "no journal was kept (--no-journal?), so a rerun starts over".to_owned(),
            |j| format!("the journal {} keeps them", j.display()),
        );
        return Err(Error::Interrupted {
            message: format!("interrupted: {finished} of {} calls finished; {kept}", jobs.len()),
            hint: "run the same command again to resume: finished calls are not sent again".to_owned(),
        }
        .into());
    }
    if report.resumed > 0 {
        eprintln!(
            "promptgate: resumed {} finished call(s) from the journal",
            report.resumed
        );
    }
    Ok(report)
}

/// Calls the budget refused leave the comparison incomplete: a run error (exit 3).
fn budget_cap_reached(report: &runner::Report, max_usd: Option<f64>) -> Option<Error> {
    let cap = max_usd.filter(|_| report.budget_exhausted)?;
    let refused = report
        .outcomes
        .iter()
        .filter(|o| {
            o.attempts == 0
                && !o.cached
                && o.result
                    .as_ref()
                    .is_err_and(|e| e.starts_with("not sent: the budget cap"))
        })
        .count();
    Some(Error::run_with_hint(
        format!(
            "{refused} call(s) were not sent: the budget's hard cap of ${cap:.2} would have been exceeded (spent ${:.4})",
            report.spent_usd
        ),
        "the results were written; raise `budget.max_usd` in promptgate.yaml, or lower repeats or cases",
    ))
}

struct AssembleInput<'a> {
    head: &'a Suite,
    planned: &'a [Planned<'a>],
    detection: &'a Detection,
    jobs: &'a [Job],
    outcomes: &'a [Outcome],
    runner: &'a runner::Report,
    prices: &'a PriceTable,
    base_ref: GitRef,
    head_ref: GitRef,
    estimate_usd: f64,
    simulated: bool,
    started: Instant,
    /// A sequential run's current look: intervals at its nominal level, p-values made
    /// repeated p-values before Holm. `None` for a fixed design.
    look: Option<&'a stats::Look>,
    /// Only this shard's cases are in `jobs`; the others are left out of the results.
    shard: Option<Shard>,
}

/// Turns outcomes into calls, scores them, estimates every metric, applies the gates.
fn assemble(input: &AssembleInput<'_>) -> Results {
    // Calls, grouped by experiment, case and arm.
    let mut grouped: BTreeMap<(usize, usize, Arm), Vec<Call>> = BTreeMap::new();
    for (job, outcome) in input.jobs.iter().zip(input.outcomes) {
        let experiment = input.planned[job.experiment].candidate;
        let case = &experiment.cases[job.case];
        let assertions = experiment.asserts.iter().chain(&case.asserts);
        let model = job.request.as_ref().map(|r| r.model.as_str()).unwrap_or_default();
        let call = match &outcome.result {
            Ok(response) => {
                let scored = scorers::score(assertions, &response.text);
                let usage = response.usage;
                Call {
                    repeat: job.repeat,
                    output: Some(response.text.clone()),
                    error: None,
                    latency_ms: outcome.latency_ms,
                    tokens: Tokens {
                        input: usage.input,
                        cached_input: usage.cached_input,
                        output: usage.output,
                    },
                    // A cache hit costs nothing; its list price still feeds cost_per_request, so a
                    // warm cache cannot make one arm look cheaper.
                    cost_usd: if outcome.cached {
                        0.0
                    } else {
                        input.prices.cost(model, &usage).unwrap_or(0.0)
                    },
                    list_cost_usd: input.prices.cost(model, &usage).unwrap_or(0.0),
                    cached: outcome.cached,
                    attempts: outcome.attempts,
                    provider: outcome.provider.clone(),
                    fell_back: outcome.fell_back,
                    scores: scored.scores,
                    failures: scored.failures,
                }
            }
            Err(error) => {
                let scored = scorers::errored(assertions, error);
                Call {
                    repeat: job.repeat,
                    output: None,
                    error: Some(error.clone()),
                    latency_ms: None,
                    tokens: Tokens::default(),
                    cost_usd: 0.0,
                    list_cost_usd: 0.0,
                    cached: false,
                    attempts: outcome.attempts,
                    provider: outcome.provider.clone(),
                    fell_back: outcome.fell_back,
                    scores: scored.scores,
                    failures: scored.failures,
                }
            }
        };
        grouped
            .entry((job.experiment, job.case, job.arm))
            .or_default()
            .push(call);
    }

    let mut experiments: Vec<ExperimentResult> = Vec::new();
    for (ei, planned) in input.planned.iter().enumerate() {
        let head = planned.candidate;
        // `planned` holds the affected experiments found at head, in detection order; match by
        // name rather than position, so a plan that skipped one cannot shift the others.
        let (status, affected_by) = input
            .detection
            .affected
            .iter()
            .find(|a| a.name == head.name)
            .map_or((ExperimentStatus::Forced, Vec::new()), |a| {
                (a.status, a.affected_by.clone())
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
                let flip = flip(&baseline, &candidate);
                CaseResult {
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
            baseline: planned.baseline.map(arm_info),
            candidate: Some(arm_info(head)),
            repeats: head.repeats,
            metrics: Vec::new(),
            cases,
            dataset_cases: match input.shard {
                Some(_) => head.cases.iter().map(|c| c.id.clone()).collect(),
                None => Vec::new(),
            },
            noise: ExperimentNoise::default(),
        });
    }
    let policy = Policy::of(input.head);
    judge(&mut experiments, &policy, input.look);

    for removed in &input.detection.removed {
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
        });
    }

    let run = RunFacts {
        cache_hits: input.runner.cache_hits,
        estimated_usd: input.estimate_usd,
        simulated: input.simulated,
        duration_ms: u64::try_from(input.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        retries: input.runner.retries,
        fallbacks: input.runner.fallbacks,
        rate_limited: input.runner.rate_limited,
        resumed: input.runner.resumed,
        ..count_calls(&experiments)
    };
    let (verdict, reason) = overall_verdict(&experiments);
    Results {
        shard: input.shard,
        merged: None,
        gates: Some(input.head.gates.iter().map(gate_record).collect()),
        defaults: Some(AnalysisDefaults {
            alpha: input.head.defaults.alpha,
            seed: input.head.defaults.seed,
            max_error_rate: input.head.defaults.max_error_rate,
            sequential: input.look.is_some(),
            aa: false,
        }),
        schema_version: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        verdict,
        reason,
        base: input.base_ref.clone(),
        head: input.head_ref.clone(),
        config: input.head.config_path.clone(),
        experiments,
        unaffected: input.detection.unaffected.clone(),
        run,
        requests_per_month: input.head.requests_per_month,
        waiver: None,
    }
}

/// What the analysis reads of the suite: the gates, α and the seed.
pub(super) struct Policy {
    pub gates: Vec<suite::GateSpec>,
    pub alpha: f64,
    pub seed: u64,
}

impl Policy {
    fn of(suite: &Suite) -> Policy {
        Policy {
            gates: suite.gates.clone(),
            alpha: suite.defaults.alpha,
            seed: suite.defaults.seed,
        }
    }

    /// The policy a `results.json` recorded.
    pub(super) fn recorded(gates: &[GateRecord], defaults: &AnalysisDefaults) -> Policy {
        Policy {
            gates: gates.iter().map(gate_spec).collect(),
            alpha: defaults.alpha,
            seed: defaults.seed,
        }
    }
}

/// Statistics and verdicts of the compared experiments, from their cases alone: flakiness,
/// every metric's estimate, Holm across every gated metric of every experiment, each gate's
/// decision, drift from the recorded `evaluation_metrics`, and each experiment's verdict.
/// `run` and `merge` both end here, so a merged matrix is judged exactly as one run.
///
/// `experiments` are the compared (not removed) ones, in plan order: an experiment's position
/// seeds its bootstraps, and its cases must be in dataset order.
pub(super) fn judge(experiments: &mut [ExperimentResult], policy: &Policy, look: Option<&stats::Look>) {
    let mut estimates: Vec<(usize, Estimate)> = Vec::new();
    // Each metric's intervals at its own gate's α (the suite's for ungated metrics), and in a
    // sequential run at the look's nominal level for that α: repeated confidence intervals
    // (J&T §9.1), so non-inferiority, equivalence and SLOs proven at a look keep the gate's α.
    let mut levels: BTreeMap<u64, f64> = BTreeMap::new();
    for a in std::iter::once(policy.alpha).chain(policy.gates.iter().map(|g| g.alpha)) {
        levels
            .entry(a.to_bits())
            .or_insert_with(|| look.map_or(a, |l| l.nominal(a)));
    }
    let interval_alpha = |metric: &str| {
        let a = policy
            .gates
            .iter()
            .find(|g| g.metric == metric)
            .map_or(policy.alpha, |g| g.alpha);
        levels.get(&a.to_bits()).copied().unwrap_or(a)
    };
    for (ei, e) in experiments.iter_mut().enumerate() {
        let (flaky_share, flaky_cases) = analyze::flaky_share(&e.cases);
        e.noise.flaky_share = flaky_share;
        e.noise.flaky_cases = flaky_cases;
        let mut names = metric_names(&policy.gates, &e.cases);
        if e.repeats > 1 && !names.iter().any(|n| n == analyze::FLAKY_SHARE) {
            names.push(analyze::FLAKY_SHARE.to_owned());
        }
        let seed = policy.seed ^ (ei as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let paired = e.baseline.is_some();
        estimates.extend(
            estimate_all(&names, &e.cases, paired, &interval_alpha, seed)
                .into_iter()
                .map(|est| (ei, est)),
        );
    }

    let gate_of = |metric: &str| policy.gates.iter().find(|g| g.metric == metric);
    let flags: Vec<(&Estimate, bool)> = estimates
        .iter()
        .map(|(_, e)| (e, gate_of(&e.metric).is_some()))
        .collect();
    let adjusted = gate::adjust_at(&flags, look);
    for ((ei, estimate), p_adjusted) in estimates.iter().zip(adjusted) {
        let mut metric = gate::decide(estimate, gate_of(&estimate.metric), p_adjusted, policy.alpha);
        let recorded = experiments[*ei]
            .candidate
            .as_ref()
            .and_then(|c| c.evaluation_metrics.get(&estimate.metric))
            .copied();
        metric.details.drift = gate::drift(recorded, estimate);
        experiments[*ei].metrics.push(metric);
    }
    for e in experiments.iter_mut() {
        let (verdict, reason) = experiment_verdict(e);
        e.verdict = verdict;
        e.reason = reason;
    }
}

fn gate_record(g: &suite::GateSpec) -> GateRecord {
    let (margin, relative) = match g.margin {
        suite::Margin::Absolute(m) => (m, false),
        suite::Margin::Relative(r) => (r, true),
    };
    GateRecord {
        metric: g.metric.clone(),
        direction: g.direction,
        margin,
        relative,
        alpha: g.alpha,
        blocking: g.blocking,
        slo: g.slo,
        require_non_inferiority: g.require_non_inferiority,
        require_equivalence: g.require_equivalence,
    }
}

fn gate_spec(g: &GateRecord) -> suite::GateSpec {
    suite::GateSpec {
        metric: g.metric.clone(),
        direction: g.direction,
        margin: if g.relative {
            suite::Margin::Relative(g.margin)
        } else {
            suite::Margin::Absolute(g.margin)
        },
        alpha: g.alpha,
        blocking: g.blocking,
        slo: g.slo,
        require_non_inferiority: g.require_non_inferiority,
        require_equivalence: g.require_equivalence,
    }
}

/// The run facts the calls themselves say: cases, calls, completed, errored, spend.
pub(super) fn count_calls(experiments: &[ExperimentResult]) -> RunFacts {
    let calls: Vec<&Call> = experiments
        .iter()
        .flat_map(|e| e.cases.iter())
        .flat_map(|c| c.baseline.iter().chain(&c.candidate))
        .collect();
    RunFacts {
        cases: experiments.iter().map(|e| e.cases.len()).sum(),
        calls: calls.len(),
        completed: calls.iter().filter(|c| c.error.is_none()).count(),
        errored: calls.iter().filter(|c| c.error.is_some()).count(),
        // `+ 0.0`: an empty sum is −0.0, which would print as "$-0.0000".
        spend_usd: calls.iter().filter(|c| !c.cached).map(|c| c.cost_usd).sum::<f64>() + 0.0,
        ..RunFacts::default()
    }
}

/// Every experiment of the suite, forced: what an A/A run compares with itself.
fn aa_detection(suite: &Suite) -> Detection {
    Detection {
        affected: suite
            .experiments
            .iter()
            .map(|e| detect::Affected {
                name: e.name.clone(),
                status: ExperimentStatus::Forced,
                affected_by: Vec::new(),
            })
            .collect(),
        ..Detection::default()
    }
}

/// Arm-swap permutations per A/A experiment for the false-alarm estimate.
const AA_PERMUTATIONS: usize = 200;

/// The suite's noise and the design it needs, from an A/A run.
fn add_aa_summaries(results: &mut Results, suite: &Suite) {
    for (ei, e) in results.experiments.iter_mut().enumerate() {
        if e.cases.is_empty() {
            continue;
        }
        let seed = suite.defaults.seed ^ (ei as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let false_alarm_rate =
            gate::aa_false_alarm_rate(&e.cases, &suite.gates, suite.defaults.alpha, seed, AA_PERMUTATIONS);
        let recommendations = e
            .metrics
            .iter()
            .filter(|m| m.gated && m.margin > 0.0)
            .map(|m| gate::aa_recommendation(m, e.cases.len(), e.repeats))
            .collect();
        e.noise.aa = Some(AaSummary {
            false_alarm_rate,
            permutations: AA_PERMUTATIONS,
            recommendations,
        });
    }
}

/// Assembles the results of the jobs run so far, at a sequential look or for the fixed design.
type AssembleAt<'a> = dyn Fn(&[Job], &runner::Report, Option<&stats::Look>) -> Results + 'a;
type RunBatch<'a> = dyn Fn(&[Job]) -> anyhow::Result<runner::Report> + 'a;

/// Sequential: each experiment's cases in a seeded random order, looks at equal shares of them,
/// every look judged against two-sided Lan–DeMets O'Brien–Fleming-type boundaries (intervals at
/// the look's nominal level, p-values made repeated p-values before Holm; see
/// docs/statistics.md). Stops at the first look where every compared experiment's verdict is
/// settled.
fn run_sequential(
    jobs: &[Job],
    run_batch: &RunBatch<'_>,
    defaults: &suite::Defaults,
    assemble_at: &AssembleAt<'_>,
) -> anyhow::Result<(Results, runner::Report)> {
    let looks = defaults.sequential_looks.max(1);
    let fractions: Vec<f64> = (1..=looks).map(|k| f64::from(k) / f64::from(looks)).collect();
    let levels =
        stats::nominal_levels(defaults.alpha, &fractions).unwrap_or_else(|| vec![defaults.alpha; fractions.len()]);
    let inflation = stats::inflation(defaults.alpha, &fractions, 0.8);
    // Position of each case in its experiment's seeded order.
    let mut by_experiment: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for job in jobs {
        let cases = by_experiment.entry(job.experiment).or_default();
        if !cases.contains(&job.case) {
            cases.push(job.case);
        }
    }
    let mut position: BTreeMap<(usize, usize), (usize, usize)> = BTreeMap::new();
    for (ei, cases) in &mut by_experiment {
        let mut rng = stats::Rng::new(defaults.seed ^ (*ei as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9));
        // Fisher–Yates with our own generator, so the order never changes with a dependency.
        for i in (1..cases.len()).rev() {
            cases.swap(i, rng.below(i + 1));
        }
        for (rank, case) in cases.iter().enumerate() {
            position.insert((*ei, *case), (rank, cases.len()));
        }
    }
    let upto = |t: f64, n: usize| (t * n as f64).ceil() as usize;
    let (mut run_jobs, mut report): (Vec<Job>, runner::Report) = (Vec::new(), runner::Report::default());
    let mut previous = 0.0;
    for (k, (&t, &level)) in fractions.iter().zip(&levels).enumerate() {
        let batch: Vec<Job> = jobs
            .iter()
            .filter(|j| {
                let (rank, n) = position[&(j.experiment, j.case)];
                rank >= upto(previous, n) && rank < upto(t, n)
            })
            .cloned()
            .collect();
        previous = t;
        eprintln!(
            "promptgate: sequential look {}/{looks}: {} more calls, nominal level {level:.4}",
            k + 1,
            batch.len()
        );
        absorb(&mut report, run_batch(&batch)?);
        run_jobs.extend(batch);
        let look = stats::Look::new(fractions[..=k].to_vec());
        let mut results = assemble_at(&run_jobs, &report, look.as_ref());
        let compared = || {
            results
                .experiments
                .iter()
                .filter(|e| e.baseline.is_some() && e.status != ExperimentStatus::Removed)
        };
        // Without a baseline there is nothing to settle: run every case.
        let settled = compared().next().is_some()
            && compared().all(|e| gate::sequential_settled(&e.metrics, gate::accepts_at(level)));
        let last = k + 1 == fractions.len();
        if settled || last {
            for (ei, e) in results.experiments.iter_mut().enumerate() {
                let Some(cases) = by_experiment.get(&ei) else { continue };
                let n = cases.len();
                for m in &mut e.metrics {
                    // The fixed design's plan needs R times the cases to keep its power with looks.
                    if let Some(r) = inflation {
                        m.details.cases_needed = m.details.cases_needed.map(|c| (c as f64 * r).ceil() as usize);
                    }
                    // A metric settled at an early look was seen well enough: its smallest
                    // detectable effect describes that look's few cases, not a weak suite.
                    if !last && (m.non_inferior || m.verdict == MetricVerdict::Regression) {
                        m.details.underpowered = false;
                    }
                }
                e.noise.sequential = Some(SequentialSummary {
                    looks: fractions[..=k].iter().map(|&t| upto(t, n)).collect(),
                    look_alphas: levels[..=k].to_vec(),
                    inflation,
                    stopped_early: !last,
                    calls_made: run_jobs.iter().filter(|j| j.experiment == ei).count(),
                    calls_planned: jobs.iter().filter(|j| j.experiment == ei).count(),
                });
            }
            return Ok((results, report));
        }
    }
    // Unreachable: the last look always returns. An empty plan has nothing to run.
    Ok((assemble_at(&run_jobs, &report, None), report))
}

/// Adds one batch's report to the run's.
fn absorb(total: &mut runner::Report, batch: runner::Report) {
    total.outcomes.extend(batch.outcomes);
    total.retries += batch.retries;
    total.rate_limited += batch.rate_limited;
    total.cache_hits += batch.cache_hits;
    total.resumed += batch.resumed;
    total.fallbacks += batch.fallbacks;
    total.budget_exhausted |= batch.budget_exhausted;
    total.spent_usd += batch.spent_usd;
}

/// Estimates every metric of one experiment, in order. The metrics are independent and their
/// bootstraps dominate the run's own time on large suites, so they share the cores.
fn estimate_all(
    names: &[String],
    cases: &[CaseResult],
    paired: bool,
    alpha: &(dyn Fn(&str) -> f64 + Sync),
    seed: u64,
) -> Vec<Estimate> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(names.len())
        .max(1);
    let chunk = names.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|m| analyze::estimate(m, cases, paired, alpha(m), seed))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A panic in a worker is a bug; re-raise it rather than lose a metric.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The built-in metrics, plus every gated scorer metric some call produced.
fn metric_names(gates: &[suite::GateSpec], cases: &[CaseResult]) -> Vec<String> {
    let mut names: Vec<String> = suite::BUILTIN_METRICS.iter().map(|m| (*m).to_owned()).collect();
    for gate in gates {
        let produced = cases
            .iter()
            .flat_map(|c| c.baseline.iter().chain(&c.candidate))
            .any(|call| call.scores.contains_key(&gate.metric));
        if !names.contains(&gate.metric) && produced {
            names.push(gate.metric.clone());
        }
    }
    names
}

fn arm_info(e: &suite::Experiment) -> ArmInfo {
    ArmInfo {
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

fn experiment_verdict(e: &ExperimentResult) -> (ExperimentVerdict, String) {
    let failing: Vec<&MetricResult> = e.metrics.iter().filter(|m| m.fails_gate).collect();
    if !failing.is_empty() {
        let what: Vec<String> = failing.iter().map(|m| describe_failure(m)).collect();
        return (ExperimentVerdict::Fail, what.join("; "));
    }
    let improved: Vec<&str> = e
        .metrics
        .iter()
        .filter(|m| m.verdict == MetricVerdict::Improvement)
        .map(|m| m.name.as_str())
        .collect();
    let attention: Vec<String> = e
        .metrics
        .iter()
        .filter(|m| m.gated && (m.verdict == MetricVerdict::Regression || m.slo.as_ref().is_some_and(|s| !s.met)))
        .map(|m| describe_failure(m) + " (non-blocking)")
        .collect();
    let mut parts = Vec::new();
    if e.status == ExperimentStatus::New {
        parts.push("new at head: candidate only, no baseline".to_owned());
    }
    if !improved.is_empty() {
        parts.push(format!("{} improved", improved.join(", ")));
    }
    if !attention.is_empty() {
        parts.push(format!("needs attention: {}", attention.join("; ")));
    }
    if parts.is_empty() {
        parts.push("no blocking regression".to_owned());
    }
    (ExperimentVerdict::Pass, parts.join("; "))
}

fn describe_failure(m: &MetricResult) -> String {
    if m.verdict == MetricVerdict::Regression {
        let p = m
            .p_adjusted
            .or(m.p_value)
            .map(|p| format!(", {}", format_p(p)))
            .unwrap_or_default();
        return format!(
            "{} regressed ({} → {}{p})",
            m.name,
            format_value(&m.name, m.baseline),
            format_value(&m.name, m.candidate)
        );
    }
    if let Some(slo) = m.slo.as_ref().filter(|s| !s.met) {
        return format!(
            "{} misses its objective ({} vs {})",
            m.name,
            format_value(&m.name, m.candidate),
            format_value(&m.name, Some(slo.target))
        );
    }
    format!("{} is not proven non-inferior within its margin", m.name)
}

pub(super) fn overall_verdict(experiments: &[ExperimentResult]) -> (Verdict, String) {
    let failed: Vec<String> = experiments
        .iter()
        .filter(|e| e.verdict == ExperimentVerdict::Fail)
        .map(|e| format!("{}: {}", e.name, e.reason))
        .collect();
    if !failed.is_empty() {
        return (Verdict::Fail, format!("regression in {}", failed.join(" | ")));
    }
    let run: Vec<&ExperimentResult> = experiments
        .iter()
        .filter(|e| e.status != ExperimentStatus::Removed)
        .collect();
    if run.is_empty() {
        return (
            Verdict::Pass,
            if experiments.is_empty() {
                "no experiment is affected by this change".to_owned()
            } else {
                "experiments were removed; nothing to run".to_owned()
            },
        );
    }
    let notes: Vec<String> = run
        .iter()
        .filter(|e| e.reason != "no blocking regression")
        .map(|e| format!("{}: {}", e.name, e.reason))
        .collect();
    let head = format!(
        "no blocking regression in {} experiment{}",
        run.len(),
        if run.len() == 1 { "" } else { "s" }
    );
    if notes.is_empty() {
        (Verdict::Pass, head)
    } else {
        (Verdict::Pass, format!("{head} ({})", notes.join(" | ")))
    }
}

pub(crate) fn format_value(metric: &str, value: Option<f64>) -> String {
    let Some(v) = value else { return "–".to_owned() };
    if metric.ends_with("_rate") {
        format!("{:.1}%", v * 100.0)
    } else if metric.ends_with("_ms") {
        format!("{v:.0} ms")
    } else if metric.starts_with("cost") {
        format!("${v:.6}")
    } else {
        format!("{v:.3}")
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".to_owned()
    } else {
        format!("p = {p:.3}")
    }
}

/// Too many failed calls make the comparison meaningless: that is a run error (exit 3).
pub(super) fn error_budget_exceeded(results: &Results, max_error_rate: f64) -> Option<Error> {
    for e in &results.experiments {
        for (arm, calls) in [
            ("baseline", e.cases.iter().flat_map(|c| &c.baseline).collect::<Vec<_>>()),
            ("candidate", e.cases.iter().flat_map(|c| &c.candidate).collect()),
        ] {
            if calls.is_empty() {
                continue;
            }
            let errored = calls.iter().filter(|c| c.error.is_some()).count();
            if errored as f64 / calls.len() as f64 > max_error_rate {
                let example = calls.iter().find_map(|c| c.error.clone()).unwrap_or_default();
                return Some(Error::run_with_hint(
                    format!(
                        "{errored} of {} {arm} calls of experiment `{}` failed (more than {:.0}% allowed); first error: {example}",
                        calls.len(),
                        e.name,
                        max_error_rate * 100.0
                    ),
                    "the results were written; fix the provider or raise `defaults.max_error_rate`",
                ));
            }
        }
    }
    None
}

/// The verdict and the files, on stdout.
pub fn print_outcome(run: &GateRun) {
    let mut out = std::io::stdout().lock();
    let r = &run.results;
    let word = match r.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Waived => "WAIVED",
    };
    if run.run_error.is_some() {
        // The statistics of a broken run are not a verdict; the error follows on stderr.
        let _ = writeln!(
            out,
            "verdict: none: the run failed (the results were written; see the error)"
        );
    } else {
        let _ = writeln!(out, "verdict: {word}: {}", r.reason);
    }
    for e in &r.experiments {
        let _ = writeln!(out, "  {} [{}]: {}", e.name, status_word(e.status), e.reason);
        for m in e
            .metrics
            .iter()
            .filter(|m| m.gated || m.verdict != MetricVerdict::NoChange)
        {
            let _ = writeln!(
                out,
                "    {:<18} {:>12} → {:<12} {}{}",
                m.name,
                format_value(&m.name, m.baseline),
                format_value(&m.name, m.candidate),
                match m.verdict {
                    MetricVerdict::Regression => "regression",
                    MetricVerdict::Improvement => "improvement",
                    MetricVerdict::NoChange => "no detectable change",
                },
                m.p_adjusted
                    .or(m.p_value)
                    .map(|p| format!(" ({})", format_p(p)))
                    .unwrap_or_default()
            );
        }
    }
    for e in &r.experiments {
        if let Some(aa) = &e.noise.aa {
            let _ = writeln!(
                out,
                "  {} A/A: false-alarm rate {:.1}% over {} arm swaps",
                e.name,
                aa.false_alarm_rate * 100.0,
                aa.permutations
            );
            for rec in &aa.recommendations {
                let cases = rec.cases.map_or("–".to_owned(), |c| c.to_string());
                let repeats = rec.repeats.map_or("–".to_owned(), |k| k.to_string());
                let _ = writeln!(
                    out,
                    "    {:<18} margin {}: {cases} cases × {repeats} repeats for 80% power",
                    rec.metric,
                    format_value(&rec.metric, Some(rec.margin))
                );
            }
        }
        if let Some(s) = &e.noise.sequential {
            let saved = 1.0 - s.calls_made as f64 / s.calls_planned.max(1) as f64;
            let _ = writeln!(
                out,
                "  {} sequential: {} look(s), {}; {} of {} calls ({:.0}% saved)",
                e.name,
                s.looks.len(),
                if s.stopped_early {
                    "stopped early"
                } else {
                    "ran to the end"
                },
                s.calls_made,
                s.calls_planned,
                saved * 100.0
            );
        }
    }
    let _ = writeln!(
        out,
        "run: {} cases, {} calls ({} errored, {} cached), spend ${:.4}{}",
        r.run.cases,
        r.run.calls,
        r.run.errored,
        r.run.cache_hits,
        r.run.spend_usd,
        if r.run.simulated { " (simulated)" } else { "" }
    );
    for path in &run.written {
        let _ = writeln!(out, "wrote {}", path.display());
    }
}

fn status_word(s: ExperimentStatus) -> &'static str {
    match s {
        ExperimentStatus::Changed => "changed",
        ExperimentStatus::New => "new",
        ExperimentStatus::Removed => "removed",
        ExperimentStatus::Forced => "forced",
    }
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
