//! `run`: the gate end to end — refs → suites → detection → plan → run → score → verdict →
//! report. This file strings the stages together and nothing else.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::GateFlags;
use crate::detect::{self, Detection};
use crate::error::{Error, exit};
use crate::format::short_sha;
use crate::plan::{self, Arm, Job, PlanFacts, Planned};
use crate::providers::pricing::PriceTable;
use crate::results::*;
use crate::runner;
use crate::suite::Suite;
use crate::verdict::{self, Policy};
use crate::workspace::Repo;
use crate::{arms, assemble, compare, report, scorers, stats, trust};

use super::budget;
use super::looks::{execute, run_sequential};

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
    /// What may receive keys (`crate::trust`): set by `ci`. `None` (the user's own checkout)
    /// runs everything and prints the notice CI would act on.
    pub trust: Option<trust::KeyPolicy>,
    /// The names shown for base and head (a pull request's branch names) instead of the refs.
    pub ref_names: Option<(String, String)>,
    /// `--batch`: send the calls of providers with a batch API through it, waiting at most
    /// this long (`runner::batch`).
    pub batch: Option<Duration>,
    /// Where `--batch` records its batches: the cache folder's `batches/` whether or not
    /// `--no-cache` is given (a rerun that flips the flag must find a killed run's batch, or it
    /// pays for the same calls again); `None` keeps them beside the journal.
    pub batch_records: Option<PathBuf>,
}

impl GateOptions {
    /// The options the command line gives: the cache in the user's cache folder (see
    /// `runner::cache_dir`) unless `--no-cache`, the journal beside the outputs.
    pub fn from_flags(
        repo_root: &Path,
        base: String,
        head: String,
        config: &str,
        out: &Path,
        flags: &GateFlags,
    ) -> Self {
        // Worked out once: it warns of a cache inside the checkout, which said it twice.
        let cache_dir = runner::cache_dir(repo_root, flags.cache_dir.as_deref());
        GateOptions {
            base,
            head,
            config: config.to_owned(),
            all: flags.all,
            approve_cost: flags.approve_cost,
            out: out.to_owned(),
            cache_dir: cache_dir.clone().filter(|_| !flags.no_cache),
            journal: Some(out.join("journal.jsonl")),
            batch_records: cache_dir.map(|dir| dir.join("batches")),
            aa: false,
            shard: flags.shard,
            trust: None,
            ref_names: None,
            batch: None,
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
            Verdict::Fail | Verdict::NeedsApproval => exit::FAIL,
            Verdict::Error => exit::RUN,
        })
    }

    /// The code of a job that hands its results to a publishing one (`ci --no-publish`), which
    /// holds the waivers: an error that is only the base's is a verdict a maintainer may still
    /// waive there, so it leaves as one (1, as a regression does), not as a run that could not
    /// finish (3); the publishing job exits 3 for it unless waived.
    pub fn handed_on_exit_code(self) -> anyhow::Result<u8> {
        if crate::verdict::base_error_only(&self.results) {
            if let Some(e) = &self.run_error {
                eprintln!("{}", crate::output::inert(&crate::secrets::redact(&e.to_string())));
            }
            return Ok(exit::FAIL);
        }
        self.exit_code()
    }
}

pub fn run_gate(repo_dir: &Path, options: &GateOptions) -> anyhow::Result<GateRun> {
    run_gate_with(&Repo::open(repo_dir)?, options, None)
}

/// Called with the plan's facts before the first call (the Action's progress comment).
pub type OnPlan<'a> = dyn Fn(&PlanFacts) -> anyhow::Result<()> + 'a;

/// [`run_gate`], calling `on_plan` once the plan is known and the budget accepted, before the
/// first call; an error from it stops the gate before anything is spent.
pub fn run_gate_with(repo: &Repo, options: &GateOptions, on_plan: Option<&OnPlan<'_>>) -> anyhow::Result<GateRun> {
    let started = Instant::now();
    // The scratch files a run killed outright left in the output folder.
    crate::output::sweep_scratch(&options.out);
    let mut cmp = compare::compare_in(
        repo.clone(),
        &compare::Scope {
            base: &options.base,
            head: &options.head,
            config: &options.config,
            all: options.all,
            written: &[Some(options.out.as_path()), options.cache_dir.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>(),
        },
    )?;
    let key_changes = key_changes(&cmp, options.aa);
    if !options.aa {
        // Both arms run head's cases: the base's were read for what the pull request changed
        // in them (`detect`) and in their scorers (above), and are not held through the run.
        cmp.let_go_of_base_cases();
    }
    // A/A compares the suite at base with itself: it plays both arms, under its own policy.
    let aa_detection_holder;
    let aa_policy;
    let (candidate_suite, candidate_side, baseline_suite, detection, policy_in_force) = if options.aa {
        let Some(base) = cmp.base_suite.as_ref() else {
            return Err(Error::run_with_hint(
                format!(
                    "--aa needs the suite at {} ({}), and it does not load there",
                    options.base,
                    short_sha(&cmp.merge_base)
                ),
                "run the A/A check against a ref where the suite exists",
            )
            .into());
        };
        aa_detection_holder = aa_detection(base);
        aa_policy = compare::policy_in_force(Some(base), base);
        (base, &cmp.base, Some(base), &aa_detection_holder, &aa_policy)
    } else {
        for notice in cmp.notices() {
            eprintln!("{notice}");
        }
        (
            &cmp.head_suite,
            &cmp.head,
            cmp.base_suite.as_ref(),
            &cmp.detection,
            &cmp.policy,
        )
    };
    // The estimate counts tokens with the models' own tables: they load while the plan renders.
    crate::tokens::preload(
        detection
            .affected
            .iter()
            .flat_map(|a| {
                let candidate = candidate_suite.experiments.iter().find(|e| e.name == a.name);
                let baseline = baseline_suite.and_then(|b| b.experiments.iter().find(|e| e.name == a.base_name()));
                candidate.into_iter().chain(baseline)
            })
            .map(|e| e.variant.model.as_str())
            .chain(candidate_suite.defaults.judge.as_ref().map(|j| j.model.as_str())),
    );
    let defaults = &policy_in_force.defaults;
    eprintln!(
        "promptgate: {} changed path(s) between {} and {}; {} experiment(s) affected, {} removed, {} unaffected",
        detection.changed_paths.len(),
        short_sha(&cmp.merge_base),
        head_label(&cmp),
        detection.affected.len(),
        detection.removed.len(),
        detection.unaffected.len()
    );

    // Say up front when an experiment is too small for a gate: its metrics will be reported,
    // not gated.
    for note in candidate_suite.sample_size_notes() {
        if detection
            .affected
            .iter()
            .any(|a| note.starts_with(&format!("experiment `{}` ", a.name)))
        {
            eprintln!("note: {note}");
        }
    }
    if let Some(shard) = options.shard {
        budget::refuse_shard(shard, options.aa, defaults.sequential)?;
    }

    // --- Keys (src/trust.rs): experiments using a provider this run may not give a key to
    // wait for a maintainer. The rest of the gate sees them as not planned.
    for suite in std::iter::once(candidate_suite).chain(baseline_suite) {
        trust::register_keys(&suite.providers);
    }
    let held = match &options.trust {
        Some(policy) => trust::hold(policy, &key_changes, &candidate_suite.providers),
        None => {
            if let Some(notice) = trust::notice(&key_changes) {
                eprintln!("{}", crate::output::inert(&notice));
            }
            None
        }
    };
    // --- end of keys

    let (mut base_ref, mut head_ref) = cmp.result_refs();
    if let Some((base_name, head_name)) = &options.ref_names {
        base_ref.name = base_name.clone();
        head_ref.name = head_name.clone();
    }
    let base_error = if options.aa { None } else { cmp.base_error() };
    let planned: Vec<Planned<'_>> = detection
        .affected
        .iter()
        .filter_map(|a| {
            let candidate = candidate_suite.experiments.iter().find(|e| e.name == a.name)?;
            let baseline = match a.status {
                ExperimentStatus::New => None,
                _ => baseline_suite.and_then(|b| b.experiments.iter().find(|e| e.name == a.base_name())),
            };
            Some(Planned { candidate, baseline })
        })
        .collect();
    let scorer_providers = trust::ScorerProviders {
        judge: candidate_suite.defaults.judge.as_ref().map(|j| j.provider.as_str()),
        embedder: candidate_suite.defaults.embedder.as_ref().map(|e| e.provider.as_str()),
    };
    let (planned, mut held) = trust::withhold(planned, held, scorer_providers);
    // A blocking latency gate compares calls timed in this run only: its minimum number of
    // units (cases, or whole groups) is sent again even when the cache has their answers.
    let retimed = policy_in_force
        .gates
        .iter()
        .filter(|g| g.blocking && crate::metrics::Metric::of(&g.metric).quantile().is_some())
        .map(|g| crate::metrics::Metric::of(&g.metric).min_units())
        .max()
        .map(|units| plan::retimed(&planned, units));
    // An entry no provider can be built from is the suite file's error, at the entry (as
    // `validate` says it), not a bare message once the endpoints are built; said before any
    // case is written out.
    let runs = |name: &str| planned.iter().any(|p| p.candidate.name == name);
    let config_path = &candidate_suite.config_path;
    if let Some(e) = super::inspect::provider_errors(candidate_suite, &*candidate_side.tree, config_path, &runs)
        .into_iter()
        .next()
    {
        return Err(e.into());
    }
    let calls = plan::calls(&planned);
    if calls > plan::MAX_CALLS {
        return Err(crate::error::Error::from(
            crate::error::Diagnostic::new(format!(
                "the run plans {calls} calls (cases × repeats × arms); promptgate runs at most {} in one run",
                plan::MAX_CALLS
            ))
            .in_file(config_path.to_owned())
            .hint("lower `repeats` or the number of cases: a few hundred cases at 3 to 5 repeats measure most changes"),
        )
        .into());
    }
    let shard_cases = options
        .shard
        .map_or_else(Vec::new, |shard| plan::shard_cases(&planned, shard));
    // A fixed-design run whose cases nothing reads before scoring (no judge, no embedding, no
    // `exec` scorer) writes each case to a scratch file as its jobs are rendered, and scoring
    // reads them back: the dataset is not held through the run.
    let (planned, candidate_suite, baseline_suite, mut jobs, spilled) =
        if !options.aa && !defaults.sequential && assemble::cases::unread_before_scoring(candidate_suite, &planned) {
            let found = assemble::cases::Found::of(&planned);
            let (head, base) = (&mut cmp.head_suite, cmp.base_suite.as_mut());
            let given = assemble::cases::plan_giving(&options.out, found, defaults.seed, head, base)?;
            (given.planned, given.head, given.base, given.jobs, Some(given.spilled))
        } else {
            let jobs = plan::jobs(&planned, defaults.seed);
            (planned, candidate_suite, baseline_suite, jobs, None)
        };
    if let Some(timed) = &retimed {
        plan::mark_retimed(&mut jobs, timed);
    }
    let prices = PriceTable::new(&policy_in_force.pricing);
    // Judges and rubrics are head's, for both arms; their calls count in the estimate.
    let judge = candidate_suite.defaults.judge.as_ref();
    let embedder = candidate_suite.defaults.embedder.as_ref();
    // A shard's budget is the matrix's: the whole run's estimate, and the shard's share of it.
    // Without --batch the shard is kept before the endpoints are built (it needs only its own).
    let mut shard_budget = match (options.shard, options.batch) {
        (Some(shard), None) => {
            let judged = crate::scorers::judge::planned_jobs(&planned, judge, embedder, &jobs);
            Some(budget::keep_shard(
                shard,
                &shard_cases,
                &mut jobs,
                None,
                &judged,
                &prices,
            ))
        }
        _ => None,
    };
    if options.aa {
        // Independent seeds for the second arm, or a seeded provider would answer identically
        // and the A/A would measure nothing.
        for job in jobs.iter_mut().filter(|j| j.arm == Arm::Candidate) {
            if let Ok(request) = &mut job.request {
                request.seed = request.seed.rotate_left(17) ^ 0x5851_f42d_4c95_7f2d;
            }
        }
    }
    let baseline_arm = baseline_suite.map(|suite| arms::ArmSource { suite, side: &cmp.base });
    let candidate_arm = arms::ArmSource {
        suite: candidate_suite,
        side: candidate_side,
    };
    let mut endpoints = arms::endpoints(&cmp.repo, &mut jobs, baseline_arm, candidate_arm)?;
    // Under --batch, which calls go through a batch API is the whole plan's endpoints' to say
    // (said once, of the whole plan; the shard's jobs keep their marks).
    let mut shard_batched = None;
    if let (Some(shard), Some(_)) = (options.shard, options.batch) {
        let judged = crate::scorers::judge::planned_jobs(&planned, judge, embedder, &jobs);
        let batched = runner::batch::plan(&jobs, &endpoints.map, &policy_in_force.gates)?;
        shard_budget = Some(budget::keep_shard(
            shard,
            &shard_cases,
            &mut jobs,
            Some(&batched),
            &judged,
            &prices,
        ));
        shard_batched = Some(runner::batch::marks(&jobs, &endpoints.map));
    }
    // `exec` scorers come from head for both arms, and run in the head's tree.
    let scores_with_commands = planned.iter().any(|p| p.candidate.has_exec_scorer());
    let scorer_dir = if scores_with_commands {
        Some(endpoints.tree_dir(&cmp.repo, candidate_side)?)
    } else {
        None
    };
    let exec_scorers = scorers::ExecScorers::new(scorer_dir.as_deref());
    let provider_names = endpoints.names();
    let simulated = !endpoints.map.is_empty() && endpoints.map.values().all(|e| e.provider.simulated());
    // `--batch`: which jobs go through a batch API, priced at its rate.
    let batch_jobs = match (options.batch, shard_batched) {
        (Some(_), None) => Some(runner::batch::plan(&jobs, &endpoints.map, &policy_in_force.gates)?),
        (_, marks) => marks,
    };
    let judged = crate::scorers::judge::planned_jobs(&planned, judge, embedder, &jobs);
    if let Some(cap) = policy_in_force.budget.max_usd {
        budget::unpriced_under_cap(
            jobs.iter().chain(&judged),
            &endpoints.map,
            &prices,
            cap,
            &candidate_suite.config_path,
        )?;
    }
    let approve = |e: &plan::CostEstimate| match &shard_budget {
        None => plan::check_budget(e, &policy_in_force.budget, options.approve_cost, simulated),
        Some(s) => plan::check_budget_of(
            &s.whole,
            &policy_in_force.budget,
            options.approve_cost,
            simulated,
            &format!("the whole run's estimated cost (all {} shards)", s.shard.count),
        ),
    };
    // Offline mock spend is simulated, and capped as a real one would be (`plan::check_budget`).
    let cap = budget::Cap::of(policy_in_force.budget.max_usd, shard_budget.as_ref());
    let progress = runner::ProgressMode::detect();
    let announce = {
        let config = candidate_suite.config_path.clone();
        move |e: &plan::CostEstimate| plan::announce(e, simulated, &config)
    };
    // Counting tokens waits for the tokenizer tables. When nothing before the first call
    // needs the count (no comment announcing it, no bar it would print across, a budget its
    // upper bound passes), it is counted while the calls go out.
    let deferred =
        (on_plan.is_none() && batch_jobs.is_none() && shard_budget.is_none() && progress != runner::ProgressMode::Bar)
            .then(|| plan::priced(&jobs))
            .filter(|priced| approve(&priced.bound(&prices).plus(plan::estimate_bound(&judged, &prices))).is_ok());
    let (estimating, approved) = match deferred {
        Some(priced) => (plan::Estimating::start(priced, judged, &prices, announce)?, Ok(())),
        None => {
            let estimate = match &batch_jobs {
                None => plan::estimate(&jobs, &prices),
                Some(batched) => runner::batch::estimate(&jobs, batched, &prices),
            }
            .plus(plan::estimate(&judged, &prices));
            announce(&estimate);
            if let Some(shard_budget) = &shard_budget {
                eprintln!("{}", shard_budget.words(cap));
            }
            let approved = approve(&estimate);
            (plan::Estimating::counted(estimate), approved)
        }
    };
    let mut estimating = std::cell::RefCell::new(estimating);
    let mut refused = None;
    // Each arm's provider timeout, from that arm's suite: errored calls count there in latency.
    let timeout_of = |suite: Option<&Suite>, provider: &str| {
        suite
            .and_then(|s| s.providers.get(provider))
            .map_or(crate::metrics::DEFAULT_TIMEOUT_MS, |p| p.timeout_ms)
    };
    let timeouts: Vec<(u64, u64)> = planned
        .iter()
        .map(|p| {
            let base_timeout = p.baseline.map_or(crate::metrics::DEFAULT_TIMEOUT_MS, |b| {
                timeout_of(baseline_suite.or(Some(candidate_suite)), &b.provider)
            });
            (base_timeout, timeout_of(Some(candidate_suite), &p.candidate.provider))
        })
        .collect();
    // Above the hard cap no approval lets a run go: refused, never held for a maintainer.
    // Asked only of a refusal, whose estimate is counted: an accepted run's count may still be
    // going on, alongside the first calls.
    let over_cap = |estimating: &std::cell::RefCell<plan::Estimating>| {
        let usd = shard_budget
            .as_ref()
            .map_or_else(|| estimating.borrow_mut().get().usd, |s| s.whole.usd);
        policy_in_force.budget.max_usd.is_some_and(|max| usd > max)
    };
    let (planned, mut jobs) = match approved {
        Ok(()) => (planned, jobs),
        // In CI a cost above the approval threshold waits for a maintainer, like a key.
        Err(refusal) if !over_cap(&estimating) && options.trust.as_ref().is_some_and(|p| p.hold_over_budget) => {
            let how = options.trust.as_ref().map(|p| p.how_cost.clone()).unwrap_or_default();
            held = Some(trust::hold_for_cost(planned, held.take(), &refusal, &how));
            estimating = std::cell::RefCell::new(plan::Estimating::counted(plan::CostEstimate::default()));
            (Vec::new(), Vec::new())
        }
        // Refused before any call: the results say so, every affected experiment in them as
        // not run, and the run exits with the refusal (3).
        Err(refusal) => {
            let (message, hint) = match &refusal {
                Error::Run { message, hint } => (message.clone(), hint.clone()),
                other => (other.to_string(), None),
            };
            // Each experiment's reason carries what to do (the comment quotes it).
            let why = hint.map_or_else(|| message.clone(), |hint| format!("{message}; {hint}"));
            refused = Some((
                assemble::refused(&planned, detection, &timeouts, &why),
                // Every call the plan would make, its judges' too: none was.
                estimating.get_mut().get().calls,
                message,
                refusal,
            ));
            (Vec::new(), Vec::new())
        }
    };
    if let Some(on_plan) = on_plan {
        on_plan(&PlanFacts {
            experiments: planned.len(),
            calls: jobs.len(),
            estimated_usd: estimating.get_mut().get().usd,
            simulated,
        })?;
    }

    // Of the experiments that run (none when held for cost), read from the cases' assertions
    // now: the cases are not held through the analysis.
    let unchecked_judges =
        crate::scorers::agreement::unchecked_judges(&planned, judge, &policy_in_force.gates, &*candidate_side.tree);
    // One runtime and one runner for the whole run: every sequential look and A/A batch goes
    // through the same cap, cache, journal and limits, so the cap is the run's, not a look's,
    // and a resumed run replays every look's calls.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let sequential = defaults.sequential && !options.aa && !jobs.is_empty();
    // A run written as schema 2 (the fixed design; a sequential look scores every answer again)
    // writes each outcome to a scratch file in the output folder as its call ends, and each
    // case's outputs to another as it is scored, instead of holding them to the end. Both are
    // made before any call: a folder they cannot be written to fails the run now, not after
    // every call is paid for. The runner holds the outcomes' file weakly: it lives here until
    // the calls are done, then in `Ran::stowed` until scoring has read them back.
    let (stow, spill) = if !sequential && report::calls::in_file_at(jobs.len()) {
        crate::output::create_dir(&options.out)?;
        let answers = crate::output::Scratch::unnamed(&options.out, "the answers")
            .map_err(|e| e.context("no scratch file for the answers as they arrive"))?;
        let outputs = crate::output::Scratch::create(&options.out, report::calls::CALLS_FILE)
            .map_err(|e| e.context("no scratch file for the outputs as they are scored"))?;
        (Some(std::sync::Arc::new(answers)), Some(outputs))
    } else {
        (None, None)
    };
    let runner = {
        let _entered = runtime.enter();
        runner::Runner::new(
            &endpoints.map,
            &prices,
            runner::Options {
                cache_dir: options.cache_dir.clone(),
                journal: options.journal.clone(),
                run_identity: runner::run_identity(&jobs, &endpoints.map),
                max_usd: cap.map(|c| c.usd),
                progress,
                backoff_base: Duration::from_millis(500),
                interruptible: true,
                batch: options.batch.map(|timeout| {
                    runner::batch::BatchOptions::for_run(
                        options.batch_records.as_deref(),
                        options.journal.as_deref(),
                        timeout,
                    )
                }),
                lock_wait: runner::lock_wait(&jobs, &endpoints.map),
                stow: stow.as_ref().map(std::sync::Arc::downgrade),
            },
        )
    }?;
    // The calls earlier batches (a sequential design's looks) finished and planned: an
    // interruption counts the run's, not its look's.
    let earlier = std::cell::Cell::new((0, 0));
    let plan_calls = jobs.len();
    let run_batch = |batch: &mut [Job]| {
        execute(
            &runtime,
            &runner,
            batch,
            options.journal.as_deref(),
            &crate::scorers::judge::follow_up(&planned, judge, embedder),
            (&earlier, plan_calls),
        )
    };
    let policy = Policy {
        gates: policy_in_force.gates.clone(),
        pending: policy_in_force.pending.clone(),
        alpha: defaults.alpha,
        seed: defaults.seed,
        max_error_rate: defaults.max_error_rate,
    };
    let config_path = candidate_suite.config_path.clone();
    let requests_per_month = candidate_suite.requests_per_month;
    // `planned` and its cases are the caller's: a fixed-design run gives scoring the cases,
    // taken out of the suites, to let go of as it goes.
    let score = |planned: &[Planned<'_>],
                 cases: Option<assemble::cases::Given>,
                 places: &assemble::Places,
                 outcomes: assemble::Outcomes<'_>,
                 judged: &[runner::Derived],
                 spill: Option<&crate::output::Scratch>| {
        assemble::experiments(
            &assemble::Input {
                planned,
                detection,
                places,
                prices: &prices,
                timeouts: &timeouts,
                shard: options.shard,
                provider_names: &provider_names,
                exec: &exec_scorers,
                judged,
                spill,
            },
            outcomes,
            cases,
        )
    };
    let judge_at =
        |mut experiments: Vec<ExperimentResult>, ran: &runner::Ran, look: Option<&stats::Look>, plan: verdict::Plan| {
            verdict::judge_with(&mut experiments, &policy, look, plan);
            let mut removed = assemble::removed(detection);
            verdict::judge_removed(&mut removed, &policy);
            experiments.extend(removed);
            let mut run = RunFacts {
                cache_hits: ran.cache_hits,
                estimated_usd: estimating.borrow_mut().get().usd,
                simulated,
                duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                retries: ran.retries,
                fallbacks: ran.fallbacks,
                rate_limited: ran.rate_limited,
                resumed: ran.resumed,
                remeasured: ran.remeasured,
                ..verdict::count_calls(&experiments)
            };
            run.add_replaced(ran.replaced);
            let (verdict, reason) =
                verdict::with_base_error(verdict::overall_verdict(&experiments), base_error.as_deref());
            let mut results = Results::new(ResultParts {
                verdict,
                reason,
                base: GitRef {
                    // The commit evaluated is the merge base (what the pull request's diff is
                    // computed from).
                    sha: cmp.merge_base.clone(),
                    ..base_ref.clone()
                },
                head: head_ref.clone(),
                config: config_path.clone(),
                experiments,
                unaffected: detection.unaffected.clone(),
                run,
                requests_per_month,
                gates: policy.records(),
                defaults: AnalysisDefaults {
                    alpha: defaults.alpha,
                    seed: defaults.seed,
                    max_error_rate: defaults.max_error_rate,
                    sequential: look.is_some(),
                    aa: false,
                },
                policy_changes: if options.aa {
                    Vec::new()
                } else {
                    policy_in_force.changes.clone()
                },
                base_error: base_error.clone(),
            });
            results.shard = options.shard;
            results
        };
    let assemble_at = |jobs: &[Job], ran: &runner::Ran, look: Option<&stats::Look>, plan: verdict::Plan| {
        let places = assemble::Places::of(jobs);
        let lent = assemble::Outcomes::Lent(&ran.outcomes);
        let experiments = score(&planned, None, &places, lent, &ran.derived, None)?;
        Ok(judge_at(experiments, ran, look, plan))
    };
    let (mut results, cap_reached) = if sequential {
        let (results, ran) = run_sequential(&mut jobs, &run_batch, &prices, defaults, &assemble_at)?;
        (results, budget::cap_reached(&ran, cap))
    } else {
        crate::allocator::release();
        let mut ran = run_batch(&mut jobs)?;
        runner::remeasure::measure_again(&mut ran, &jobs, &prices, &run_batch)?;
        drop(stow);
        runner.unload_cache();
        crate::allocator::release();
        let cap_reached = budget::cap_reached(&ran, cap);
        // Sent: scoring reads a job's place and model, not the request it sent, so the jobs
        // are given back first; each outcome goes as soon as it is scored, its output moved
        // into its call; and a schema 2 run's outputs go to a file case by case (the report
        // keeps the ones it quotes). The analysis then holds only the scored calls.
        let places = assemble::Places::of(&jobs);
        drop(jobs);
        let outcomes = assemble::Outcomes::Given(std::mem::take(&mut ran.outcomes), ran.stowed.take());
        // Scoring is the last to read the cases, and the analysis reads the calls only: the
        // planned experiments' cases are taken out of the suites and given to scoring, which
        // lets each go once its result is built (the arms played head's, or base's in A/A;
        // the other suite's are gone or unread).
        let (planned, given) = match spilled {
            // Written out as the jobs were rendered: the suites hold no case.
            Some(spilled) => (planned, assemble::cases::Given::Spilled(spilled)),
            None => {
                let found = assemble::cases::Found::of(&planned);
                let held = found.take_cases(&mut cmp.head_suite, cmp.base_suite.as_mut());
                let planned = found.again(&cmp.head_suite, cmp.base_suite.as_ref())?;
                (planned, assemble::cases::Given::Held(held))
            }
        };
        let experiments = score(&planned, Some(given), &places, outcomes, &ran.derived, spill.as_ref())?;
        drop(places);
        ran.derived = Vec::new();
        let mut results = judge_at(experiments, &ran, None, verdict::Plan::Power);
        results.outputs_from = spill.iter().map(|s| s.path().to_owned()).collect();
        (results, cap_reached)
    };
    // A run the cap stopped judges no experiment: marked before the A/A summaries, which
    // leave an experiment without a verdict out.
    if let (None, Some(reached)) = (&refused, &cap_reached) {
        verdict::stopped_by_cap(&mut results.experiments, "the run", reached.refused);
    }
    if options.aa {
        verdict::aa::add_summaries(&mut results, &policy.gates, defaults.alpha, defaults.seed);
        if let Some(d) = &mut results.defaults {
            d.aa = true;
        }
    }
    if let Some(held) = held {
        trust::apply(&mut results, held.needed);
    }
    results.unchecked_judges = unchecked_judges;
    // A run that could not finish is never a verdict on the change: the budget's refusals and
    // an arm's failed calls (judged in `verdict`) make the verdict `error`, with what to do.
    let run_error = match (refused, cap_reached) {
        (Some((experiments, calls, message, refusal)), _) => {
            results.experiments.splice(0..0, experiments);
            results.verdict = Verdict::Error;
            results.reason = message;
            results.run.budget_refused = calls;
            Some(refusal)
        }
        (None, Some(reached)) => {
            results.verdict = Verdict::Error;
            results.reason = reached.message.clone();
            results.run.budget_refused = reached.refused;
            Some(Error::run_with_hint(reached.message, reached.hint))
        }
        (None, None) => verdict::run_error(&results),
    };
    crate::allocator::release();
    let written = report::write_outputs(&results, &options.out)?;
    if let Some(spill) = spill {
        // The outputs are in the calls.jsonl just written: a later rewrite (`ci`'s waiver)
        // copies them from there, and the spill file goes.
        results.outputs_from = vec![options.out.join(report::calls::CALLS_FILE)];
        drop(spill);
    }
    // The outputs are on disk: only now may the journal go (a failed write keeps it, so the
    // rerun replays every call instead of paying again).
    runner.finish();
    drop(runtime);
    drop(endpoints);
    Ok(GateRun {
        results,
        written,
        run_error,
    })
}

/// The head as the messages name it: a short SHA, or the working tree.
fn head_label(cmp: &compare::Comparison) -> String {
    if cmp.head_ref.name == compare::WORKTREE {
        format!("the working tree (on {})", short_sha(&cmp.head_ref.sha))
    } else {
        short_sha(&cmp.head_ref.sha).to_owned()
    }
}

/// What the pull request changes in where keys go and which commands score: its providers, and
/// the `exec` scorers of its experiments and cases (an A/A run compares the base with itself).
fn key_changes(cmp: &compare::Comparison, aa: bool) -> Vec<ProviderChange> {
    let (baseline, candidate, changed_paths) = if aa {
        match &cmp.base_suite {
            Some(base) => (Some(base), base, &[][..]),
            None => return Vec::new(),
        }
    } else {
        (
            cmp.base_suite.as_ref(),
            &cmp.head_suite,
            cmp.detection.changed_paths.as_slice(),
        )
    };
    let mut changes = trust::review(baseline.map(|b| &b.providers), &candidate.providers, changed_paths);
    changes.extend(trust::review_scorers(baseline, candidate, changed_paths));
    changes
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
                changes: Vec::new(),
                renamed_from: None,
                dataset_changes: None,
                base_scored: Vec::new(),
            })
            .collect(),
        ..Detection::default()
    }
}

/// The verdict and the files, on stdout.
pub fn print_outcome(run: &GateRun) {
    use std::io::Write as _;
    let text = crate::report::terminal::render(&run.results, run.run_error.is_some(), &run.written);
    // Names and reasons come from the suite and the models: in a CI log neither a secret nor a
    // workflow command may get through.
    let text = crate::output::inert(&crate::secrets::redact(&text));
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}
