//! `merge`: the results.json of shards run as a CI matrix (`run --shard K/N`) combined into one
//! run's results, judged by the same [`judge`] as `run`, and written as `run` writes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::run::{GateRun, print_outcome};
use crate::cli::MergeArgs;
use crate::error::{Diagnostic, Error};
use crate::report;
use crate::results::*;
use crate::verdict::{Policy, count_calls, judge, overall_verdict, run_error, with_base_error};

pub fn merge(args: &MergeArgs) -> anyhow::Result<u8> {
    let mut shards = Vec::with_capacity(args.shards.len());
    for path in &args.shards {
        shards.push(ShardFile {
            path: path.clone(),
            results: report::read_results(path)?,
        });
    }
    // Shards whose outputs are in their calls.jsonl (schema 2) keep only the shown ones in
    // memory; a schema 1 shard merged with them is spilled the same way, so the merged
    // calls.jsonl is copied from files line by line and no shard's outputs are all held.
    let mut spilled = Vec::new();
    if shards.iter().any(|s| !s.results.outputs_from.is_empty()) {
        crate::output::create_dir(&args.out)?;
        for (i, s) in shards.iter_mut().enumerate() {
            if s.results.outputs_from.is_empty() {
                let path = args
                    .out
                    .join(format!(".merge-shard-{i}.{}.calls.jsonl", std::process::id()));
                spilled.push(path.clone());
                report::calls::spill(&mut s.results, path)?;
            }
        }
    }
    let merged = combine(&shards, args.allow_partial).and_then(|mut results| {
        results.outputs_from = shards.iter().flat_map(|s| s.results.outputs_from.clone()).collect();
        let written = report::write_outputs(&results, &args.out)?;
        Ok((results, written))
    });
    for path in spilled {
        let _ = std::fs::remove_file(path);
    }
    let (results, written) = merged?;
    let run_error = run_error(&results);
    let run = GateRun {
        results,
        written,
        run_error,
    };
    print_outcome(&run);
    run.exit_code()
}

/// One shard's results and the file they came from (for messages).
struct ShardFile {
    path: PathBuf,
    results: Results,
}

impl ShardFile {
    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// An unsharded results.json is the one shard of one.
    fn shard(&self) -> Shard {
        self.results.shard.unwrap_or(Shard { index: 1, count: 1 })
    }
}

const RERUN: &str = "merge the results.json files that `promptgate run --shard K/N` wrote for one commit and one suite";

fn bad(message: String, hint: &str) -> anyhow::Error {
    Error::from(Diagnostic::new(message).hint(hint)).into()
}

/// The merged results: a partial merge can show a regression in the cases it has, but a pass
/// needs every case (it is an `error`, whose hint `verdict::run_error` gives).
fn combine(shards: &[ShardFile], allow_partial: bool) -> anyhow::Result<Results> {
    let first = shards
        .first()
        .ok_or_else(|| bad("no shard to merge".to_owned(), RERUN))?;
    let (gates, defaults) = check_self_sufficient(first)?;
    for s in &shards[1..] {
        check_self_sufficient(s)?;
        check_same_run(first, s)?;
    }
    let merged = check_shards(shards, allow_partial)?;

    // The compared experiments, in plan order (every shard lists them all, cases or none).
    let compared = |r: &Results| -> Vec<String> {
        r.experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .map(|e| e.name.clone())
            .collect()
    };
    let names = compared(&first.results);
    for s in &shards[1..] {
        if compared(&s.results) != names {
            return Err(bad(
                format!(
                    "{} and {} do not compare the same experiments ({} vs {})",
                    first.name(),
                    s.name(),
                    names.join(", "),
                    compared(&s.results).join(", ")
                ),
                RERUN,
            ));
        }
    }
    let mut experiments = Vec::with_capacity(names.len());
    for (ei, name) in names.iter().enumerate() {
        experiments.push(union_cases(shards, ei, name, !merged.missing.is_empty())?);
    }
    judge(&mut experiments, &Policy::recorded(&gates, &defaults), None);

    let mut removed: Vec<ExperimentResult> = Vec::new();
    let mut unaffected: Vec<String> = Vec::new();
    for s in shards {
        for e in s
            .results
            .experiments
            .iter()
            .filter(|e| e.status == ExperimentStatus::Removed)
        {
            if !removed.iter().any(|r| r.name == e.name) {
                removed.push(e.clone());
            }
        }
        for name in &s.results.unaffected {
            if !unaffected.contains(name) {
                unaffected.push(name.clone());
            }
        }
    }
    experiments.extend(removed);

    let all = || shards.iter().map(|s| &s.results.run);
    let mut run = RunFacts {
        cache_hits: all().map(|r| r.cache_hits).sum(),
        estimated_usd: all().map(|r| r.estimated_usd).sum(),
        // A shard that made no call knows no provider: it says nothing about simulation.
        simulated: all().any(|r| r.calls > 0) && all().filter(|r| r.calls > 0).all(|r| r.simulated),
        // The shards ran side by side: the matrix took as long as its slowest shard.
        duration_ms: all().map(|r| r.duration_ms).max().unwrap_or(0),
        retries: all().map(|r| r.retries).sum(),
        fallbacks: all().map(|r| r.fallbacks).sum(),
        rate_limited: all().map(|r| r.rate_limited).sum(),
        resumed: all().map(|r| r.resumed).sum(),
        remeasured: all().map(|r| r.remeasured).sum(),
        ..count_calls(&experiments)
    };
    // What the shards paid for calls their results no longer hold (pairs measured again).
    for r in all() {
        run.add_replaced(r.replaced);
    }
    // A base that did not load fails the merged run as it failed each shard.
    let (verdict, reason) = with_base_error(overall_verdict(&experiments), first.results.base_error.as_deref());
    let mut results = Results::new(ResultParts {
        verdict,
        reason,
        base: first.results.base.clone(),
        head: first.results.head.clone(),
        config: first.results.config.clone(),
        experiments,
        unaffected,
        run,
        requests_per_month: first.results.requests_per_month,
        gates,
        defaults,
        policy_changes: first.results.policy_changes.clone(),
        base_error: first.results.base_error.clone(),
    });
    let missing = (!merged.missing.is_empty()).then(|| {
        let indexes: Vec<String> = merged.missing.iter().map(u32::to_string).collect();
        format!("shard(s) {} of {} missing", indexes.join(", "), merged.count)
    });
    results.merged = Some(merged);
    // Every shard holds the same experiments for a maintainer's approval (the hold depends on
    // the suite, not on the cases): the merged run waits for the same.
    if let Some(needed) = shards.iter().find_map(|s| s.results.trust.approval.clone()) {
        crate::trust::apply(&mut results, needed);
    }
    // The judges no `judge-check` record vouches for are the suite's, alike in every shard: the
    // union, in the first shard's order, keeps the comment's warning the unsharded run shows.
    for s in shards {
        for judge in &s.results.unchecked_judges {
            if !results.unchecked_judges.contains(judge) {
                results.unchecked_judges.push(judge.clone());
            }
        }
    }
    // A shard the budget refused calls of (its cap stopped it, or it refused the run before any
    // call) left its comparison incomplete: as in one run, the merged run is an error, whatever
    // its cases say.
    let stopped: Vec<String> = shards
        .iter()
        .filter(|s| s.results.run.budget_refused > 0)
        .map(|s| match s.results.shard {
            Some(shard) => format!("shard {}/{}", shard.index, shard.count),
            None => s.name(),
        })
        .collect();
    results.run.budget_refused = shards.iter().map(|s| s.results.run.budget_refused).sum();
    if !stopped.is_empty() {
        crate::verdict::stopped_by_cap(
            &mut results.experiments,
            &stopped.join(", "),
            results.run.budget_refused,
        );
        results.verdict = Verdict::Error;
        results.reason = format!(
            "the run failed: {} call(s) were not sent: the budget refused calls of {}",
            results.run.budget_refused,
            stopped.join(", ")
        );
    }
    // Decided after the hold: a pass waiting for a maintainer's approval still says so.
    if let Some(missing) = missing {
        if results.verdict == Verdict::Pass {
            results.verdict = Verdict::Error;
            results.reason = format!(
                "no verdict: partial merge: {missing}, and a pass needs every case (no blocking regression in the cases merged)"
            );
        } else {
            results
                .reason
                .push_str(&format!(" — partial merge: {missing}, their cases are not counted"));
        }
    }
    Ok(results)
}

/// The keys re-analysis needs (returned), and a design it can reproduce.
fn check_self_sufficient(s: &ShardFile) -> anyhow::Result<(Vec<GateRecord>, AnalysisDefaults)> {
    let hint = "re-run the shards with this version of promptgate, which records them";
    let Some(defaults) = &s.results.defaults else {
        return Err(bad(
            format!("{} has no `defaults`: it was written by an older promptgate", s.name()),
            hint,
        ));
    };
    let Some(gates) = &s.results.gates else {
        return Err(bad(
            format!("{} has no `gates`: it was written by an older promptgate", s.name()),
            hint,
        ));
    };
    if defaults.sequential || defaults.aa {
        let what = if defaults.aa {
            "an A/A check"
        } else {
            "a sequential run"
        };
        return Err(bad(
            format!("{} is {what}; merge re-analyzes fixed designs only", s.name()),
            "use `promptgate report` to re-render it",
        ));
    }
    Ok((gates.clone(), defaults.clone()))
}

/// Shards of one run share the commits, the suite and its analysis.
fn check_same_run(first: &ShardFile, s: &ShardFile) -> anyhow::Result<()> {
    let (a, b) = (&first.results, &s.results);
    let differ = |what: &str, x: &str, y: &str| {
        bad(
            format!(
                "{} and {} are not shards of one run: {what} {x} vs {y}",
                first.name(),
                s.name()
            ),
            RERUN,
        )
    };
    if a.head.sha != b.head.sha {
        return Err(differ("head", &a.head.sha, &b.head.sha));
    }
    // A working tree's candidate is its uncommitted files, which the commit does not name:
    // shards of it cannot be told to have gated the same edits.
    for shard in [first, s] {
        if shard.results.head.dirty {
            return Err(bad(
                format!(
                    "{} gated the working tree (`--head WORKTREE`): its candidate is uncommitted, so nothing shows the shards gated the same files",
                    shard.name()
                ),
                "commit the edits and run every shard at that commit",
            ));
        }
    }
    if a.base.sha != b.base.sha {
        return Err(differ("base", &a.base.sha, &b.base.sha));
    }
    if a.config != b.config {
        return Err(differ("suite file", &a.config, &b.config));
    }
    if a.gates != b.gates {
        let metrics = |r: &Results| -> String {
            let names: Vec<&str> = r.gates.iter().flatten().map(|g| g.metric.as_str()).collect();
            format!("[{}]", names.join(", "))
        };
        return Err(differ("the suite's gates differ:", &metrics(a), &metrics(b)));
    }
    if a.defaults != b.defaults {
        let show = |r: &Results| serde_json::to_string(&r.defaults).unwrap_or_default();
        return Err(differ("the suite's defaults differ:", &show(a), &show(b)));
    }
    Ok(())
}

/// One count N, distinct indexes, and every index of 1..=N unless a partial merge is allowed.
fn check_shards(shards: &[ShardFile], allow_partial: bool) -> anyhow::Result<MergeFacts> {
    let count = shards[0].shard().count;
    let mut seen: BTreeMap<u32, &ShardFile> = BTreeMap::new();
    for s in shards {
        let shard = s.shard();
        if shard.count != count {
            return Err(bad(
                format!(
                    "{} is shard {}/{} but {} is shard {}/{}: the shard counts differ",
                    shards[0].name(),
                    shards[0].shard().index,
                    count,
                    s.name(),
                    shard.index,
                    shard.count
                ),
                "merge the shards of one matrix, all run with the same --shard K/N's N",
            ));
        }
        if let Some(other) = seen.insert(shard.index, s) {
            return Err(bad(
                format!(
                    "{} and {} are both shard {}/{count}",
                    other.name(),
                    s.name(),
                    shard.index
                ),
                "pass each shard's results.json once",
            ));
        }
    }
    let missing: Vec<u32> = (1..=count).filter(|k| !seen.contains_key(k)).collect();
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|k| format!("{k}/{count}")).collect();
        if !allow_partial {
            return Err(bad(
                format!(
                    "shard(s) {} missing: the merge would not cover every case",
                    list.join(", ")
                ),
                "pass every shard's results.json, or --allow-partial to merge what is there (the report states the gap)",
            ));
        }
        eprintln!(
            "warning: partial merge: shard(s) {} missing; their cases are not in the merged results",
            list.join(", ")
        );
    }
    Ok(MergeFacts {
        count,
        shards: seen.keys().copied().collect(),
        missing,
    })
}

/// The `ei`-th compared experiment with every shard's cases, in dataset order; its metrics
/// and verdict are left for [`judge`].
fn union_cases(shards: &[ShardFile], ei: usize, name: &str, partial: bool) -> anyhow::Result<ExperimentResult> {
    let nth = |s: &ShardFile| -> ExperimentResult {
        s.results
            .experiments
            .iter()
            .filter(|e| e.status != ExperimentStatus::Removed)
            .nth(ei)
            .cloned()
            .expect("every shard lists the same experiments")
    };
    let mut merged = nth(&shards[0]);
    merged.cases.clear();
    let mut from: BTreeMap<String, &Path> = BTreeMap::new();
    let mut cases: Vec<CaseResult> = Vec::new();
    for s in shards {
        let e = nth(s);
        // Candidate-only: a new experiment, or one whose base did not load (no case has a
        // baseline call).
        let repeats = e.repeats as usize;
        let no_baseline = e.status == ExperimentStatus::New || e.cases.iter().all(|c| c.baseline.is_empty());
        for case in e.cases {
            // A run records every call it planned, errored or refused ones too: one per repeat
            // in each arm it ran. Fewer or more is a file edited or cut, whose merge would
            // count what was never measured.
            let expected = [if no_baseline { 0 } else { repeats }, repeats];
            let counted = [case.baseline.len(), case.candidate.len()];
            if counted != expected {
                return Err(bad(
                    format!(
                        "case `{}` of experiment `{name}` in {} has {} baseline and {} candidate calls; its {} repeat(s) make {} and {}",
                        case.id(),
                        s.name(),
                        counted[0],
                        counted[1],
                        repeats,
                        expected[0],
                        expected[1]
                    ),
                    RERUN,
                ));
            }
            if let Some(other) = from.insert(case.id().to_string(), &s.path) {
                return Err(bad(
                    format!(
                        "case `{}` of experiment `{name}` is in both {} and {}",
                        case.id(),
                        other.display(),
                        s.name()
                    ),
                    "each case belongs to one shard: merge shards of one matrix, each once",
                ));
            }
            cases.push(case);
        }
    }
    // Dataset order, as the full run has them: the bootstrap resamples by position. An
    // unsharded results.json has no list and is in that order already.
    let order = std::mem::take(&mut merged.dataset_cases);
    if !order.is_empty() {
        let position: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        if let Some(stray) = cases.iter().find(|c| !position.contains_key(c.id())) {
            return Err(bad(
                format!(
                    "case `{}` of experiment `{name}` in {} is not in the dataset {} lists",
                    stray.id(),
                    from[stray.id()].display(),
                    shards[0].name()
                ),
                RERUN,
            ));
        }
        cases.sort_by_key(|c| position[c.id()]);
        let uncovered: Vec<&str> = order
            .iter()
            .map(String::as_str)
            .filter(|id| !from.contains_key(*id))
            .collect();
        if !uncovered.is_empty() {
            if !partial {
                return Err(bad(
                    format!(
                        "{} case(s) of experiment `{name}` are in no shard, e.g. `{}`",
                        uncovered.len(),
                        uncovered[0]
                    ),
                    "the shards were partitioned differently: run every shard with the same promptgate version",
                ));
            }
            // A partial merge keeps the list, so its results still say which cases are absent.
            merged.dataset_cases = order;
        }
    }
    merged.cases = cases;
    merged.metrics.clear();
    merged.noise = ExperimentNoise::default();
    Ok(merged)
}
