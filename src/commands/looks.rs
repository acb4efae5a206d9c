//! `run`'s sequential design: looks at growing shares of the cases through the run's one
//! runner, each judged at its nominal level, stopping at the first that settles the verdict;
//! and `execute`, which sends one batch through that runner (a look, or a fixed design's plan).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::plan::Job;
use crate::results::Results;
use crate::verdict::{self, sequential};
use crate::{runner, stats, suite};

/// Assembles the results of the jobs run so far, at a sequential look.
pub(super) type AssembleAt<'a> =
    dyn Fn(&[Job], &runner::Ran, Option<&stats::Look>, verdict::Plan) -> anyhow::Result<Results> + 'a;

pub(super) type RunBatch<'a> = dyn Fn(&mut [Job]) -> anyhow::Result<runner::Ran> + 'a;

/// Sequential: looks at equal shares of each experiment's cases in a seeded order, each judged
/// at its nominal level (`verdict::sequential`); stops at the first look that settles every
/// compared experiment's verdict.
pub(super) fn run_sequential(
    jobs: &mut [Job],
    run_batch: &RunBatch<'_>,
    prices: &crate::providers::pricing::PriceTable,
    defaults: &suite::Defaults,
    assemble_at: &AssembleAt<'_>,
) -> anyhow::Result<(Results, runner::Ran)> {
    let design = sequential::Design::new(defaults.alpha, defaults.sequential_looks);
    let mut by_experiment: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for job in jobs.iter() {
        let cases = by_experiment.entry(job.experiment()).or_default();
        if !cases.contains(&job.case()) {
            cases.push(job.case());
        }
    }
    let position = sequential::case_order(&by_experiment, defaults.seed);
    let (mut run_jobs, mut ran): (Vec<Job>, runner::Ran) = (Vec::new(), runner::Ran::default());
    let mut previous = 0.0;
    let looks = design.fractions.len();
    for (k, (&t, &level)) in design.fractions.iter().zip(&design.levels).enumerate() {
        let from = previous;
        let in_look = |j: &Job| {
            let (rank, n) = position[&(j.experiment(), j.case())];
            rank >= sequential::upto(from, n) && rank < sequential::upto(t, n)
        };
        let mut batch: Vec<Job> = jobs.iter().filter(|j| in_look(j)).cloned().collect();
        previous = t;
        eprintln!(
            "promptgate: sequential look {}/{looks}: {} more calls, nominal level {level:.4}",
            k + 1,
            batch.len()
        );
        let mut look_ran = run_batch(&mut batch)?;
        runner::remeasure::measure_again(&mut look_ran, &batch, prices, run_batch)?;
        ran.absorb(look_ran)
            .map_err(|e| anyhow::anyhow!("cannot read back the outcomes the run wrote to {e}"))?;
        // Measured: no later look sends these jobs again, so the plan's and the look's copies
        // let go of their messages (the runner let go of the look's settled ones already).
        for job in jobs.iter_mut().filter(|j| in_look(j)).chain(&mut batch) {
            job.let_go_of_messages();
        }
        run_jobs.extend(batch);
        // Each look needs only the verdicts to decide whether to stop; the look that stops is
        // judged again with its power plan.
        let look = design.look(k);
        let results = assemble_at(&run_jobs, &ran, look.as_ref(), verdict::Plan::VerdictsOnly)?;
        // The budget's cap refused calls of this look: a later look's would be refused too, and
        // the run is no verdict (`run` makes it `error`), so it stops here.
        if sequential::settled(&results, level) || k + 1 == looks || ran.budget_exhausted {
            let mut results = assemble_at(&run_jobs, &ran, look.as_ref(), verdict::Plan::Power)?;
            let cases = by_experiment.iter().map(|(ei, c)| (*ei, c.len())).collect();
            // Made: the calls of the looks run, less those the cap did not let be sent (the
            // outcomes are in memory, in the run jobs' order, once absorbed).
            let sent = |o: Option<&runner::Outcome>| {
                !o.is_some_and(|o| o.result.as_ref().is_err_and(runner::CallError::is_budget_refusal))
            };
            let calls = by_experiment
                .keys()
                .map(|ei| {
                    let made = (run_jobs.iter().enumerate())
                        .filter(|(i, j)| j.experiment() == *ei && sent(ran.outcomes.get(*i)))
                        .count();
                    (*ei, (made, jobs.iter().filter(|j| j.experiment() == *ei).count()))
                })
                .collect();
            sequential::record(&mut results, &design, k + 1, &cases, &calls);
            return Ok((results, ran));
        }
    }
    // Unreachable: the last look always returns. An empty plan has nothing to run.
    Ok((assemble_at(&run_jobs, &ran, None, verdict::Plan::Power)?, ran))
}

/// Runs one batch (the whole plan, a sequential look) through the run's runner. `earlier`
/// holds the calls the batches before it finished and planned, `plan_calls` the plan's.
pub(super) fn execute(
    runtime: &tokio::runtime::Runtime,
    runner: &runner::Runner<'_>,
    jobs: &mut [Job],
    journal: Option<&Path>,
    then: &runner::Then<'_>,
    (earlier, plan_calls): (&std::cell::Cell<(usize, usize)>, usize),
) -> anyhow::Result<runner::Ran> {
    if jobs.is_empty() {
        return Ok(runner::Ran {
            spent_usd: runner.spent_usd(),
            ..runner::Ran::default()
        });
    }
    let ran = runtime.block_on(runner.run_then(jobs, then));
    if ran.interrupted {
        let kept = journal.map_or_else(
            || "no journal was kept (--no-journal?), so a rerun starts over".to_owned(),
            |j| format!("the journal {} keeps them", j.display()),
        );
        let (finished_before, planned_before) = earlier.get();
        return Err(Error::Interrupted {
            message: format!(
                "interrupted: {} of {} calls finished; {kept}",
                finished_before + ran.finished,
                // The whole plan's, though a sequential design's later looks were not started
                // (judge calls and re-measured pairs come on top of it).
                (planned_before + jobs.len()).max(plan_calls)
            ),
            hint: "run the same command again to resume: finished calls are not sent again".to_owned(),
        }
        .into());
    }
    let (finished_before, planned_before) = earlier.get();
    earlier.set((finished_before + ran.finished, planned_before + jobs.len()));
    if !ran.batches_pending.is_empty() {
        return Err(Error::run_with_hint(
            format!(
                "--batch-timeout ran out with {} batch(es) still running: {}",
                ran.batches_pending.len(),
                ran.batches_pending.join(", ")
            ),
            "run the same command again to resume polling them: their ids are recorded in the response cache folder's `batches/` (with --no-cache too), so nothing is submitted twice; rerun it with --batch, or its calls are sent again beside the batches",
        )
        .into());
    }
    if ran.resumed > 0 {
        eprintln!("promptgate: resumed {} finished call(s) from the journal", ran.resumed);
    }
    Ok(ran)
}
