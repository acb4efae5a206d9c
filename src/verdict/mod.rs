//! Policy → verdicts: every metric's estimate and decision, Holm across the PR's blocking gated
//! metrics, each experiment's verdict and the PR's. Pure: it reads `ExperimentResult`s and a
//! [`Policy`], never the suite or the runner, so `run`, `merge` and the calibration bench all
//! judge through it.

pub mod aa;
mod decide;
mod failure;
pub mod sequential;

pub use failure::{MAX_JUDGE_ERROR_RATE, unproven};
use failure::{arm_failure, describe_failure, judge_failure, judging_failed, p_text};

use std::collections::BTreeMap;

use crate::analyze::{self, Estimate};
use crate::error::Error;
use crate::format;
use crate::metrics;
use crate::results::*;
use crate::stats;
use crate::suite::{self, Suite};

pub use decide::{POWER, accepts_at, adjust, adjust_at, decide, drift, judged, sequential_settled};

/// What the analysis reads of the suite: the gates, α, the seed and the error tolerance.
#[derive(Clone, Debug)]
pub struct Policy {
    pub gates: Vec<suite::GateSpec>,
    /// Gates a pull request adds on metrics the policy in force does not gate: their metrics
    /// are decided with these settings, but never block and stay out of Holm's family.
    pub pending: Vec<suite::GateSpec>,
    pub alpha: f64,
    pub seed: u64,
    /// Share of errored calls (per experiment and arm) beyond which the run is an error.
    pub max_error_rate: f64,
}

impl Policy {
    pub fn of(suite: &Suite) -> Policy {
        Policy {
            gates: suite.gates.clone(),
            pending: Vec::new(),
            alpha: suite.defaults.alpha,
            seed: suite.defaults.seed,
            max_error_rate: suite.defaults.max_error_rate,
        }
    }

    /// The policy a `results.json` recorded.
    pub fn recorded(gates: &[GateRecord], defaults: &AnalysisDefaults) -> Policy {
        Policy {
            gates: gates.iter().filter(|g| !g.pending).map(gate_spec).collect(),
            pending: gates.iter().filter(|g| g.pending).map(gate_spec).collect(),
            alpha: defaults.alpha,
            seed: defaults.seed,
            max_error_rate: defaults.max_error_rate,
        }
    }

    /// The gates as `results.json` records them, pending ones marked.
    pub fn records(&self) -> Vec<GateRecord> {
        let pending = self.pending.iter().map(|g| GateRecord {
            pending: true,
            ..gate_record(g)
        });
        self.gates.iter().map(gate_record).chain(pending).collect()
    }

    fn gate(&self, metric: &str) -> Option<&suite::GateSpec> {
        self.gates.iter().find(|g| g.metric == metric)
    }
}

/// Statistics and verdicts of the compared experiments, from their cases alone: flakiness,
/// every metric's estimate, Holm across the blocking gated metrics of every experiment, each
/// gate's decision, drift from the recorded `evaluation_metrics`, each experiment's verdict
/// (an experiment whose calls failed beyond the policy's tolerance is a run error, never a
/// regression). `run` and `merge` both end here, so a merged matrix is judged exactly as one
/// run.
///
/// `experiments` are the compared (not removed) ones, in plan order: an experiment's position
/// seeds its resampling, and its cases must be in dataset order.
pub fn judge(experiments: &mut [ExperimentResult], policy: &Policy, look: Option<&stats::Look>) {
    judge_with(experiments, policy, look, Plan::Power);
}

/// Whether [`judge_with`] plans the sample size (`mde`, `cases_needed`, `underpowered`): the
/// exact plans take milliseconds per gated metric, and an intermediate sequential look needs
/// only the verdicts to decide whether to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    Power,
    VerdictsOnly,
}

/// [`judge`], planning only when `plan` says so. The verdicts are the same either way.
pub fn judge_with(experiments: &mut [ExperimentResult], policy: &Policy, look: Option<&stats::Look>, plan: Plan) {
    let mut estimates: Vec<(usize, Estimate)> = Vec::new();
    // Each metric's intervals at its own gate's α (the suite's for ungated metrics), and in a
    // sequential run at the look's nominal level for that α: repeated confidence intervals
    // (J&T §9.1), so non-inferiority, equivalence and SLOs proven at a look keep the gate's α.
    let mut levels: BTreeMap<u64, f64> = BTreeMap::new();
    // A pending gate is looked up after the gates in force, and never blocks.
    let pending: Vec<suite::GateSpec> = policy
        .pending
        .iter()
        .filter(|p| !policy.gates.iter().any(|g| g.metric == p.metric))
        .map(|g| suite::GateSpec {
            blocking: false,
            ..g.clone()
        })
        .collect();
    let all_gates: Vec<suite::GateSpec> = policy.gates.iter().chain(&pending).cloned().collect();
    let gate_of = |metric: &str| {
        policy
            .gate(metric)
            .or_else(|| pending.iter().find(|g| g.metric == metric))
    };
    for a in std::iter::once(policy.alpha).chain(all_gates.iter().map(|g| g.alpha)) {
        levels
            .entry(a.to_bits())
            .or_insert_with(|| look.map_or(a, |l| l.nominal(a)));
    }
    let interval_alpha = |metric: &str| {
        let a = gate_of(metric).map_or(policy.alpha, |g| g.alpha);
        levels.get(&a.to_bits()).copied().unwrap_or(a)
    };
    for (ei, e) in experiments.iter_mut().enumerate() {
        let (flaky_share, flaky_cases) = analyze::flaky_share(&e.cases);
        e.noise.flaky_share = flaky_share;
        e.noise.flaky_cases = flaky_cases;
        e.noise.least_consistent = analyze::least_consistent(&e.cases);
        e.noise.position_bias = analyze::position_bias(&e.cases);
        let mut names = metric_names(&all_gates, &e.cases, &e.changed.base_scored);
        if e.repeats > 1 && !names.iter().any(|n| n == metrics::FLAKY_SHARE) {
            names.push(metrics::FLAKY_SHARE.to_owned());
        }
        let seed = policy.seed ^ (ei as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let paired = e.baseline.is_some();
        let timeouts = [
            e.baseline.as_ref().map_or(DEFAULT_TIMEOUT_MS, |a| a.timeout_ms),
            e.candidate.as_ref().map_or(DEFAULT_TIMEOUT_MS, |a| a.timeout_ms),
        ];
        estimates.extend(
            estimate_all(&names, &e.cases, paired, &interval_alpha, seed, timeouts)
                .into_iter()
                .map(|est| (ei, est)),
        );
    }

    // Holm's family: the blocking gated metrics the run can judge. Informational metrics are
    // compared with α alone: they decide nothing, and adding them must not weaken a gate.
    let errored: Vec<bool> = experiments
        .iter()
        .map(|e| {
            arm_failure(e, policy.max_error_rate)
                .or_else(|| judge_failure(e))
                .is_some()
        })
        .collect();
    let in_family: Vec<bool> = estimates
        .iter()
        .map(|(ei, e)| {
            !errored[*ei]
                && experiments[*ei].baseline.is_some()
                && gate_of(&e.metric).is_some_and(|g| g.blocking)
                && judged(e)
        })
        .collect();
    let family = in_family.iter().filter(|f| **f).count();
    let flags: Vec<(&Estimate, bool)> = estimates
        .iter()
        .map(|(_, e)| e)
        .zip(in_family.iter().copied())
        .collect();
    let largest_alpha = all_gates.iter().map(|g| g.alpha).fold(policy.alpha, f64::max);
    let adjusted = decide::adjust_at_for(&flags, look, (plan == Plan::VerdictsOnly).then_some(largest_alpha));
    for (((ei, estimate), p_adjusted), member) in estimates.iter().zip(adjusted).zip(&in_family) {
        let size = if *member { family } else { 1 };
        let mut metric = decide::decide_with(
            estimate,
            gate_of(&estimate.metric),
            p_adjusted,
            policy.alpha,
            size,
            plan == Plan::Power,
        );
        let recorded = experiments[*ei]
            .candidate
            .as_ref()
            .and_then(|c| c.evaluation_metrics.get(&estimate.metric))
            .copied();
        metric.details.drift = drift(recorded, estimate);
        if experiments[*ei].baseline.is_none() {
            // A candidate-only experiment has nothing to compare: its metrics say so, and only
            // an objective on the candidate's own value can fail it (a blocking gate's SLO it
            // misses, over at least the metric's minimum n).
            metric.verdict = MetricVerdict::NoData;
            metric.non_inferior = false;
            metric.fails_gate = metric.blocking
                && metric.n >= metric.details.min_n.unwrap_or(1).max(1)
                && metric.slo.as_ref().is_some_and(|s| !s.met);
        } else if metric.verdict == MetricVerdict::NoData && metric.blocking && !experiments[*ei].cases.is_empty() {
            // A blocking metric the comparison could not measure fails closed. An experiment
            // without a case has nothing to measure and nothing hidden: a shard that got none
            // of its cases (a dataset without one does not load); the merge judges it.
            metric.fails_gate = true;
        } else if metric.verdict == MetricVerdict::TooFew && metric.blocking {
            // Too few cases only because the pull request removed some, or took units from the
            // metric (regrouped its cases into fewer units, removed its assertion from cases):
            // a PR may not escape its gate by shrinking its own test.
            let min = metric.details.min_n.unwrap_or(0);
            if let Some(d) = &experiments[*ei].changed.dataset_changes {
                // Units the PR took from the metric (removed cases among them; a case removed
                // from a group of several, or one that never scored the metric, takes none):
                // back, they would have reached the minimum.
                let [base_units, head_units] = d.units_of(&metric.name);
                let taken = base_units.saturating_sub(head_units);
                if taken > 0 && metric.n + taken >= min {
                    metric.fails_gate = true;
                }
            }
        }
        if errored[*ei] {
            not_judged(&mut metric);
        }
        experiments[*ei].metrics.push(metric);
    }
    for e in experiments.iter_mut() {
        let (verdict, reason) = match arm_failure(e, policy.max_error_rate).or_else(|| judge_failure(e)) {
            Some(failure) => (ExperimentVerdict::Error, failure),
            None => experiment_verdict(e),
        };
        e.verdict = verdict;
        e.reason = reason;
    }
}

/// A failed run is not evidence about the change: no verdict, no objective missed.
fn not_judged(metric: &mut MetricResult) {
    metric.verdict = MetricVerdict::NoData;
    metric.fails_gate = false;
    metric.non_inferior = false;
    metric.slo = None;
    metric.details.slo_proven = None;
    metric.details.underpowered = false;
}

/// A run the budget's hard cap stopped is no verdict on any experiment it ran
/// (docs/statistics.md): the calls the cap refused are not answers, and the ones sent may be
/// any share of the cases. Each experiment with cases becomes `error`, saying the cap stopped
/// `what` (the run, a shard) with `refused` calls not sent, every metric `no_data` with no numbers; one already
/// `error` keeps its own reason.
pub fn stopped_by_cap(experiments: &mut [ExperimentResult], what: &str, refused: usize) {
    let reason = format!("not judged: the budget's hard cap stopped {what} ({refused} call(s) not sent)");
    for e in experiments.iter_mut().filter(|e| !e.cases.is_empty()) {
        for m in &mut e.metrics {
            not_judged(m);
            // Its numbers counted the refused calls, which never ran, as answers (a refused
            // call's latency at the timeout: p95 60,000 ms beside `no_data`): none are kept.
            (m.baseline, m.candidate, m.delta, m.ci) = (None, None, None, None);
            (m.p_value, m.p_adjusted, m.mde) = (None, None, None);
            m.details = Default::default();
        }
        if e.verdict != ExperimentVerdict::Error {
            e.verdict = ExperimentVerdict::Error;
            e.reason = reason.clone();
        }
    }
}

/// Estimates every metric of one experiment, in order. The metrics are independent and their
/// resampling dominates the run's own time on large suites, so they share the cores. Each
/// worker takes the next metric not yet taken, so the two heavy quantile metrics (p50, p95
/// latency) run side by side instead of waiting on one worker that drew both; every estimate
/// is seeded by its metric's name alone, so the numbers do not depend on who computed them.
/// Beyond [`analyze::side_by_side`]'s size the metrics take turns: each quantile's resampling
/// holds several copies of every call (side by side, the two raised the peak of a 100,000-call
/// run by 3.7 MB, for 0.26 s of its 8.5).
fn estimate_all(
    names: &[String],
    cases: &[CaseResult],
    paired: bool,
    alpha: &(dyn Fn(&str) -> f64 + Sync),
    seed: u64,
    timeouts: [u64; 2],
) -> Vec<Estimate> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let cores = match analyze::side_by_side(cases) {
        true => std::thread::available_parallelism().map_or(1, usize::from),
        false => 1,
    };
    let threads = cores.min(names.len()).max(1);
    let estimate = |m: &String| analyze::estimate(m, cases, paired, alpha(m), seed, timeouts);
    if threads == 1 {
        // Taking turns, on this thread: a worker of its own would take its buffers from another
        // of glibc's heaps (one a core), whose pages the calls' end gave back, and raised the
        // peak of a 100,000-call run by up to 2 MB that this thread's heap did not.
        return names.iter().map(estimate).collect();
    }
    let next = AtomicUsize::new(0);
    let mut estimates: Vec<(usize, Estimate)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(m) = names.get(i) else { break };
                        mine.push((i, estimate(m)));
                    }
                    mine
                })
            })
            .collect();
        // A panic in a worker is a bug; re-raise it rather than lose a metric.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    estimates.sort_by_key(|(i, _)| *i);
    estimates.into_iter().map(|(_, e)| e).collect()
}

/// The built-in metrics, every gated scorer metric some call produced or the base's assertions
/// score (`base_scored`: one head's no longer score is then `no_data`, and a blocking one fails
/// closed), and every numeric score (a similarity, an `exec` scorer's number, `consistency`)
/// or rate (`…_rate`) gated or not: `pass_rate` sums up the assertions, but nothing else would show a number a
/// scorer measured.
fn metric_names(gates: &[suite::GateSpec], cases: &[CaseResult], base_scored: &[String]) -> Vec<String> {
    let mut names: Vec<String> = metrics::BUILTIN.iter().map(|m| (*m).to_owned()).collect();
    let calls = || cases.iter().flat_map(|c| c.baseline.iter().chain(&c.candidate));
    for gate in gates {
        let produced = base_scored.contains(&gate.metric) || calls().any(|call| call.scores.contains_key(&gate.metric));
        if !names.contains(&gate.metric) && produced {
            names.push(gate.metric.clone());
        }
    }
    // And every rate a scorer feeds (`hallucination_rate`, `pii_leak_rate`, a `metric:` named
    // as one), true/false a call or not: DESIGN's quality metrics are reported gated or not.
    let numeric: std::collections::BTreeSet<&str> = calls()
        .flat_map(|call| &call.scores)
        .filter(|(name, score)| matches!(score, Score::Number(_)) || name.ends_with("_rate"))
        .map(|(name, _)| name)
        .collect();
    for name in numeric {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

pub fn experiment_verdict(e: &ExperimentResult) -> (ExperimentVerdict, String) {
    let failing: Vec<&MetricResult> = e.metrics.iter().filter(|m| m.fails_gate).collect();
    if !failing.is_empty() {
        let what: Vec<String> = failing.iter().map(|m| describe_failure(m)).collect();
        return (ExperimentVerdict::Fail, what.join("; "));
    }
    let improved: Vec<&str> = e
        .metrics
        .iter()
        .filter(|m| m.verdict == MetricVerdict::Improvement && !metrics::direction_assumed(m))
        .map(|m| m.name.as_str())
        .collect();
    // A significant change of a metric whose direction nothing set, in words that do not say
    // whether it is better.
    let moved: Vec<String> = e
        .metrics
        .iter()
        .filter_map(|m| metrics::assumed_change(m).map(|way| format!("{} significantly {way}", m.name)))
        .collect();
    // What a reviewer should see without failing the gate: regressions of informational gates,
    // minor regressions, missed objectives, and any significant rise in errors (gated or not).
    let attention: Vec<String> = e
        .metrics
        .iter()
        .filter_map(|m| {
            let errors_rose = m.name == metrics::ERROR_RATE
                && matches!(m.verdict, MetricVerdict::Regression | MetricVerdict::MinorRegression);
            if m.verdict == MetricVerdict::MinorRegression && (m.gated || errors_rose) {
                let (baseline, candidate) = format::values(&m.name, m.baseline, m.candidate);
                return Some(format!(
                    "{} slightly worse ({baseline} → {candidate}, {}), within its margin",
                    m.name,
                    p_text(m)
                ));
            }
            if let Some(unclear) = worse_but_unproven(m) {
                return Some(unclear);
            }
            let missed = m.slo.as_ref().is_some_and(|s| !s.met) && m.verdict != MetricVerdict::TooFew;
            ((m.gated || errors_rose) && (m.verdict == MetricVerdict::Regression || missed))
                .then(|| describe_failure(m) + if m.blocking { "" } else { " (non-blocking)" })
        })
        .collect();
    let too_few: Vec<String> = e
        .metrics
        .iter()
        .filter(|m| m.gated && m.blocking && m.verdict == MetricVerdict::TooFew)
        .map(|m| {
            format!(
                "{} needs at least {} {} to be judged (has {})",
                m.name,
                m.details.min_n.unwrap_or(0),
                m.units_word(),
                m.n
            )
        })
        .collect();
    let mut parts = Vec::new();
    if e.status == ExperimentStatus::New {
        parts.push("new at head: candidate only, no baseline".to_owned());
    }
    if !improved.is_empty() {
        parts.push(format!("{} improved", improved.join(", ")));
    }
    if !moved.is_empty() {
        parts.push(format!("{} (no gate sets its direction)", moved.join(", ")));
    }
    if !attention.is_empty() {
        parts.push(format!("needs attention: {}", attention.join("; ")));
    }
    if !too_few.is_empty() {
        parts.push(format!("not gated: {}", too_few.join("; ")));
    }
    if parts.is_empty() {
        parts.push(NO_BLOCKING_REGRESSION.to_owned());
    }
    (ExperimentVerdict::Pass, parts.join("; "))
}

const NO_BLOCKING_REGRESSION: &str = "no blocking regression";

/// A blocking gate's metric that looks worse than its margin without being significantly
/// worse: it passes, but a reviewer must see that the suite could not tell (DESIGN: "an
/// underpowered suite is visible, not silently green"). A pass rate falling 41.7 pp on twelve
/// cases read "no blocking regression" alone, the power note folded away below.
pub fn worse_but_unproven(m: &MetricResult) -> Option<String> {
    let d = m.details.decision.as_ref()?;
    let worse_by = match m.direction {
        crate::results::Direction::Higher => -d.estimate,
        crate::results::Direction::Lower => d.estimate,
    };
    let unproven = m.verdict == MetricVerdict::NoChange && !m.non_inferior && m.details.equivalent != Some(true);
    // A gate whose margin is 0 makes no change material but a significant one: a dip that is
    // not significant is what its table says, no significant change.
    if !(m.gated && m.blocking && unproven && d.margin > 0.0 && worse_by > d.margin) {
        return None;
    }
    let (baseline, candidate) = format::values(&m.name, m.baseline, m.candidate);
    let detects = match (m.details.underpowered, format::finite(m.mde)) {
        (true, Some(mde)) => format!("; this suite can detect about {}", format::unit(&m.name).magnitude(mde)),
        _ => String::new(),
    };
    Some(format!(
        "{} worse beyond its margin but not significantly ({baseline} → {candidate}, {}): too few cases to tell{detects}",
        m.name,
        p_text(m)
    ))
}

/// The PR's verdict and its one-sentence reason. A run error wins over everything: a run that
/// could not finish says what failed, never "regression".
pub fn overall_verdict(experiments: &[ExperimentResult]) -> (Verdict, String) {
    let errored: Vec<String> = experiments
        .iter()
        .filter(|e| e.verdict == ExperimentVerdict::Error)
        .map(|e| format!("{}: {}", e.name, e.reason))
        .collect();
    if !errored.is_empty() {
        return (Verdict::Error, errored.join(" | "));
    }
    let failed: Vec<String> = experiments
        .iter()
        .filter(|e| e.verdict == ExperimentVerdict::Fail)
        .map(|e| format!("{}: {}", e.name, e.reason))
        .collect();
    if !failed.is_empty() {
        return (Verdict::Fail, failed.join(" | "));
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
        .filter(|e| e.reason != NO_BLOCKING_REGRESSION)
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

/// Experiments the pull request removed, judged by the policy in force: while it has a blocking
/// gate, removing an experiment removes that protection, so it fails the gate unless waived.
pub fn judge_removed(experiments: &mut [ExperimentResult], policy: &Policy) {
    let blocking: Vec<&str> = policy
        .gates
        .iter()
        .filter(|g| g.blocking)
        .map(|g| g.metric.as_str())
        .collect();
    if blocking.is_empty() {
        return;
    }
    for e in experiments.iter_mut().filter(|e| e.status == ExperimentStatus::Removed) {
        e.verdict = ExperimentVerdict::Fail;
        e.reason = format!(
            "removed at head while the base's gates on {} block: removing it needs a waiver",
            blocking.join(", ")
        );
    }
}

/// A suite at base that does not load leaves the comparison without (part of) its baseline:
/// the verdict is `error`, naming why, unless a maintainer waives it ([`waivable`]). A run that
/// could not finish keeps its own error.
pub fn with_base_error((verdict, reason): (Verdict, String), base_error: Option<&str>) -> (Verdict, String) {
    match base_error {
        Some(error) if matches!(verdict, Verdict::Pass | Verdict::Fail) => {
            (Verdict::Error, base_error_reason(error, &reason))
        }
        _ => (verdict, reason),
    }
}

/// What follows the base's error in the reason of a verdict that is `error` because of it.
const RAN_CANDIDATE_ONLY: &str = "; the experiments ran candidate-only (";

fn base_error_reason(error: &str, reason: &str) -> String {
    format!("{error}{RAN_CANDIDATE_ONLY}{reason})")
}

/// Whether the results' `error` is only the base's: its suite does not load, and the run itself
/// finished (no experiment errored, the budget did not stop it: either has its own reason).
pub fn base_error_only(results: &Results) -> bool {
    error_is_the_bases(results.verdict, &results.reason, results)
}

/// [`base_error_only`] for a verdict and reason given apart from the results (those evaluated,
/// before a waiver changed them).
pub fn error_is_the_bases(verdict: Verdict, reason: &str, results: &Results) -> bool {
    verdict == Verdict::Error
        && results
            .base_error
            .as_deref()
            .and_then(|error| reason.strip_prefix(error))
            .is_some_and(|rest| rest.starts_with(RAN_CANDIDATE_ONLY))
        && results
            .experiments
            .iter()
            .all(|e| e.verdict != ExperimentVerdict::Error)
}

/// Whether a maintainer's waiver may lift the results' verdict: a regression (`fail`), or an
/// `error` that is only the base's, unless experiments wait for a maintainer's approval (they
/// did not run: approving them, not a waiver, comes first). A run that could not finish is
/// never waived, nor a merge with shards missing (their cases may hold regressions no one saw).
pub fn waivable(results: &Results) -> bool {
    results.trust.approval.is_none()
        && !partial(results)
        && (results.verdict == Verdict::Fail || base_error_only(results))
}

/// A merge of a CI matrix with shards missing (`merge --allow-partial`).
pub fn partial(results: &Results) -> bool {
    results.merged.as_ref().is_some_and(|m| !m.missing.is_empty())
}

/// An `error` that is only a partial merge's: every experiment was judged, and the merge would
/// pass but for the shards missing (`promptgate merge`).
pub fn error_is_missing_shards(results: &Results) -> bool {
    results.verdict == Verdict::Error
        && partial(results)
        && results.run.budget_refused == 0
        && results
            .experiments
            .iter()
            .all(|e| e.verdict != ExperimentVerdict::Error)
}

/// The run error a results' verdict stands for, with what to do: `run`, `merge` and `ci` exit
/// with it (code 3).
pub fn run_error(results: &Results) -> Option<Error> {
    if base_error_only(results) {
        let hint = if partial(results) {
            "the results were written, the experiments judged candidate-only. Fix the suite on the base branch, and merge every shard's results.json: a merge with shards missing is not waivable"
        } else if results.trust.approval.is_some() {
            "the results were written, the experiments judged candidate-only. Fix the suite on the base branch; experiments wait for a maintainer's approval, and until they have run no waiver lifts this"
        } else {
            "the results were written, the experiments judged candidate-only. Fix the suite on the base branch, or a maintainer may accept this run (the `promptgate:accept-regression` label, or a `/promptgate accept <reason>` comment)"
        };
        return Some(Error::run_with_hint(results.reason.clone(), hint));
    }
    (results.verdict == Verdict::Error).then(|| {
        Error::run_with_hint(
            results.reason.clone(),
            if error_is_missing_shards(results) {
                "the results were written; merge every shard's results.json: shards missing can show a regression, never pass the change".to_owned()
            } else if results.run.budget_refused > 0 {
                format!(
                    "the results were written; {} (a shard may spend only its share of it), or lower repeats or cases",
                    crate::plan::RAISE_MAX_USD
                )
            } else if judging_failed(results) {
                "the results were written; the judged metrics were not judged. Fix the judge provider (`defaults.judge`: its key, its model, a content filter or context limit on these outputs); the limit on failed judge calls is fixed, as `defaults.max_error_rate` is for the calls themselves".to_owned()
            } else {
                "the results were written; no metric was judged. Fix the provider (or raise `defaults.max_error_rate` if these failures are expected) and run again".to_owned()
            },
        )
    })
}

/// The run facts the calls themselves say: cases, calls, completed, errored, spend.
pub fn count_calls(experiments: &[ExperimentResult]) -> RunFacts {
    let calls: Vec<&Call> = experiments
        .iter()
        .flat_map(|e| e.cases.iter())
        .flat_map(|c| c.baseline.iter().chain(&c.candidate))
        .collect();
    let judgements: Vec<&Judgement> = calls.iter().flat_map(|c| c.evaluation.judgements()).collect();
    let judge_spend_usd = judgements.iter().map(|j| j.cost_usd).sum::<f64>() + 0.0;
    let embedding_spend_usd = calls.iter().map(|c| c.evaluation.embedding_cost_usd()).sum::<f64>() + 0.0;
    let judge_errors = judgements.iter().filter(|j| j.error.is_some()).count();
    RunFacts {
        // Cases evaluated: a sequential run that stopped early lists every case of its plan,
        // and reported all 300 beside the 150 calls of the 75 it ran.
        cases: experiments
            .iter()
            .flat_map(|e| &e.cases)
            .filter(|c| !c.baseline.is_empty() || !c.candidate.is_empty())
            .count(),
        calls: calls.len(),
        completed: calls.iter().filter(|c| c.error().is_none()).count(),
        errored: calls.iter().filter(|c| c.error().is_some()).count(),
        // `+ 0.0`: an empty sum is −0.0, which would print as "$-0.0000". Judging is part of
        // what the evaluation spent.
        spend_usd: calls.iter().filter(|c| !c.cached).map(|c| c.cost_usd).sum::<f64>()
            + judge_spend_usd
            + embedding_spend_usd
            + 0.0,
        judge_calls: judgements.len(),
        judge_errors,
        judge_error_rate: (!judgements.is_empty()).then(|| judge_errors as f64 / judgements.len() as f64),
        judge_spend_usd,
        embedding_spend_usd,
        ..RunFacts::default()
    }
}

pub fn gate_record(g: &suite::GateSpec) -> GateRecord {
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
        pending: false,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A new experiment's metric has no baseline to compare with; when it fails on its own
    /// value's objective, the reason says so ("has no data to compare" read as nothing
    /// measured).
    #[test]
    fn a_new_experiments_missed_objective_is_the_reason() {
        let mut m: MetricResult = serde_json::from_value(serde_json::json!({"name": "pass_rate",
            "direction": "higher", "blocking": true, "gated": true, "baseline": null, "candidate": 0.955,
            "delta": null, "ci": null, "p_value": null, "p_adjusted": null, "test": "none", "n": 44,
            "verdict": "no_data", "non_inferior": false, "mde": null, "slo": {"target": 0.99, "met": false}}))
        .unwrap();
        assert_eq!(describe_failure(&m), "pass_rate misses its objective (95.5% vs 99.0%)");
        m.slo = None;
        assert_eq!(describe_failure(&m), "pass_rate has no data to compare");
    }

    /// A blocking gate's metric worse beyond its margin but not significantly passes, and its
    /// reason says the suite could not tell (a 41.7 pp fall read "no blocking regression").
    #[test]
    fn a_fall_beyond_the_margin_too_noisy_to_prove_is_said() {
        let m = |estimate: f64, non_inferior: bool| -> MetricResult {
            serde_json::from_value(serde_json::json!({"name": "pass_rate",
                "direction": "higher", "blocking": true, "gated": true, "baseline": 1.0, "candidate": 1.0 + estimate,
                "delta": estimate, "ci": [estimate - 0.3, estimate + 0.3], "p_value": 0.125, "p_adjusted": 0.125,
                "test": "mcnemar-exact", "n": 12, "verdict": "no_change", "non_inferior": non_inferior, "mde": 0.578,
                "margin": 0.05, "underpowered": true,
                "decision": {"relative": false, "estimate": estimate, "ci": [estimate - 0.3, estimate + 0.3], "margin": 0.05}}))
            .unwrap()
        };
        assert_eq!(
            worse_but_unproven(&m(-0.417, false)).unwrap(),
            "pass_rate worse beyond its margin but not significantly (100.0% → 58.3%, p = 0.125): too few cases to tell; this suite can detect about 57.8 pp"
        );
        // Within the margin, better, or proven non-inferior: nothing to say; nor with a margin
        // of 0, where only a significant change is material.
        assert_eq!(worse_but_unproven(&m(-0.03, false)), None);
        let mut no_margin = m(-0.417, false);
        no_margin.details.decision.as_mut().unwrap().margin = 0.0;
        assert_eq!(worse_but_unproven(&no_margin), None);
        assert_eq!(worse_but_unproven(&m(0.2, false)), None);
        assert_eq!(worse_but_unproven(&m(-0.417, true)), None);
        let mut e = changed_faq(12, passing);
        e.metrics = vec![m(-0.417, false)];
        let (verdict, reason) = experiment_verdict(&e);
        assert_eq!(verdict, ExperimentVerdict::Pass);
        assert!(
            reason.starts_with("needs attention: pass_rate worse beyond its margin"),
            "{reason}"
        );
    }

    fn results(verdict: Verdict, reason: &str, base_error: Option<&str>) -> Results {
        let (verdict, reason) = with_base_error((verdict, reason.to_owned()), base_error);
        Results::new(ResultParts {
            verdict,
            reason,
            base_error: base_error.map(str::to_owned),
            ..crate::results::test_parts()
        })
    }

    fn arm() -> ArmInfo {
        ArmInfo {
            variant: "v".to_owned(),
            version: None,
            model: "m".to_owned(),
            prompt: "p".to_owned(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            sampling: crate::chat::Sampling::default(),
            evaluation_metrics: Default::default(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// A changed experiment `faq` whose cases each hold these calls in both arms.
    fn changed_faq(cases: usize, calls: impl Fn(usize) -> (Vec<Call>, Vec<Call>)) -> ExperimentResult {
        ExperimentResult {
            name: "faq".to_owned(),
            status: ExperimentStatus::Changed,
            affected_by: Vec::new(),
            verdict: ExperimentVerdict::Pass,
            reason: String::new(),
            provider: String::new(),
            baseline: Some(arm()),
            candidate: Some(arm()),
            repeats: 1,
            metrics: Vec::new(),
            cases: (0..cases)
                .map(|i| {
                    let (baseline, candidate) = calls(i);
                    CaseResult {
                        text: CaseText::new(&format!("c{i}"), None, ""),
                        baseline,
                        candidate,
                        flip: None,
                    }
                })
                .collect(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        }
    }

    /// One passing call in each arm.
    fn passing(_: usize) -> (Vec<Call>, Vec<Call>) {
        let mut call = Call::default();
        call.scores.insert("pass", Score::Bool(true));
        (vec![call.clone()], vec![call])
    }

    /// A policy of these blocking gates (higher is better, margin 0).
    fn blocking(metrics: &[&str]) -> Policy {
        Policy {
            gates: metrics
                .iter()
                .map(|metric| suite::GateSpec {
                    metric: (*metric).to_owned(),
                    direction: Direction::Higher,
                    margin: suite::Margin::Absolute(0.0),
                    alpha: 0.05,
                    blocking: true,
                    slo: None,
                    require_non_inferiority: false,
                    require_equivalence: false,
                })
                .collect(),
            pending: Vec::new(),
            alpha: 0.05,
            seed: 1,
            max_error_rate: 0.2,
        }
    }

    #[test]
    fn a_base_that_does_not_load_is_an_error_a_waiver_may_lift_and_nothing_else_is() {
        let broken = "the suite at base (main) does not load: promptgate.yaml:16:3: expected a sequence";
        for evaluated in [Verdict::Pass, Verdict::Fail] {
            let r = results(evaluated, "regression in faq", Some(broken));
            assert_eq!(r.verdict, Verdict::Error);
            assert!(
                r.reason.starts_with(broken) && r.reason.ends_with("(regression in faq)"),
                "{}",
                r.reason
            );
            assert!(base_error_only(&r) && waivable(&r));
            let error = run_error(&r).expect("an error").to_string();
            assert!(error.contains("promptgate.yaml:16:3"), "{error}");
        }
        // Without a base error: a regression is waivable, a run error is not.
        let fail = results(Verdict::Fail, "regression in faq", None);
        assert!(waivable(&fail) && !base_error_only(&fail) && run_error(&fail).is_none());
        // A merge with a shard missing: its cases may hold regressions no one saw.
        let mut partial_fail = fail.clone();
        partial_fail.merged = Some(MergeFacts {
            count: 3,
            shards: vec![1, 3],
            missing: vec![2],
        });
        assert!(!waivable(&partial_fail));
        // One that would pass is an error, whose hint is to merge every shard.
        let mut partial_pass = results(Verdict::Error, "no verdict: partial merge", None);
        partial_pass.merged = partial_fail.merged.clone();
        let hint = run_error(&partial_pass).expect("a run error").to_string();
        assert!(hint.contains("merge every shard's results.json"), "{hint}");
        let error = results(Verdict::Error, "faq: 12 of 20 calls failed", Some(broken));
        assert_eq!(
            error.reason, "faq: 12 of 20 calls failed",
            "a run error keeps its own reason"
        );
        assert!(!waivable(&error));
        // Experiments waiting for a maintainer's approval did not run: nothing is waived first.
        let mut held = results(Verdict::Pass, "no blocking regression", Some(broken));
        held.trust.approval = Some(crate::results::ApprovalNeeded {
            reason: "a keyed endpoint moved".to_owned(),
            changes: Vec::new(),
            experiments: vec!["faq".to_owned()],
            how: "the trust-config label".to_owned(),
        });
        assert!(base_error_only(&held) && !waivable(&held));
        assert!(run_error(&held).unwrap().to_string().contains("no waiver lifts this"));
        // The budget stopped the run (its reason replaces the verdict's): never waived.
        let mut capped = results(Verdict::Pass, "no blocking regression", Some(broken));
        capped.reason = "the budget's cap of $1.00 was reached".to_owned();
        assert!(!waivable(&capped));
        // An experiment that errored keeps the run's error, even with the base's reason.
        let mut errored = results(Verdict::Pass, "no blocking regression", Some(broken));
        errored.experiments.push(ExperimentResult {
            name: "faq".to_owned(),
            status: ExperimentStatus::Changed,
            affected_by: Vec::new(),
            verdict: ExperimentVerdict::Error,
            reason: "12 of 20 calls failed".to_owned(),
            provider: String::new(),
            baseline: None,
            candidate: None,
            repeats: 1,
            metrics: Vec::new(),
            cases: Vec::new(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        });
        assert!(!waivable(&errored));
    }

    /// A judge that fails on one arm's outputs stops the run even when the arms together stay
    /// under the limit: 7 of 20 candidate judgements failed (35%), none of the baseline's
    /// (17.5% of all 40). So does one that fails one metric's question only: 7 of 20
    /// hallucination judgements failed, none of 40 others on the same outputs (11.7% of all 60).
    #[test]
    fn judge_failures_are_counted_per_arm_and_per_metric() {
        let judged = |metric: &str, failed: bool| Judgement {
            metric: crate::results::Name::new(metric),
            error: failed.then(|| "content filter".to_owned()),
            ..Judgement::default()
        };
        let calls = |failed: usize, others: &[&str]| -> Vec<Call> {
            (0..20)
                .map(|i| Call {
                    evaluation: Evaluation {
                        judgements: std::iter::once(judged("hallucination_rate", i < failed))
                            .chain(others.iter().map(|m| judged(m, false)))
                            .collect(),
                        ..Evaluation::default()
                    }
                    .into(),
                    ..Call::default()
                })
                .collect()
        };
        let experiment = |baseline_failed: usize, candidate_failed: usize, others: &[&str]| {
            changed_faq(1, |_| (calls(baseline_failed, others), calls(candidate_failed, others)))
        };
        let reason = judge_failure(&experiment(0, 7, &[])).expect("the candidate's judging failed");
        assert!(
            reason.contains("7 of 20 judge calls on the candidate's outputs failed (35.0%, more than 20.0% allowed"),
            "{reason}"
        );
        assert!(
            judge_failure(&experiment(7, 0, &[]))
                .unwrap()
                .contains("on the baseline's outputs")
        );
        assert!(
            judge_failure(&experiment(4, 4, &[])).is_none(),
            "20% in each arm is allowed"
        );
        let reason = judge_failure(&experiment(0, 7, &["politeness", "relevance"]))
            .expect("one metric's judging failed, pooled or not");
        assert!(reason.contains("7 of 20 `hallucination_rate` judge calls"), "{reason}");
        assert!(judge_failure(&experiment(4, 4, &["politeness", "relevance"])).is_none());
        // A metric of too few calls to be gated is held to the pooled limit only: one failure
        // in its three calls is no evidence (the reviewer: that made a whole run an error).
        let with_tone: Vec<Call> = (0..20)
            .map(|i| Call {
                evaluation: Evaluation {
                    judgements: std::iter::once(judged("hallucination_rate", false))
                        .chain((i < 3).then(|| judged("tone", i == 0)))
                        .collect(),
                    ..Evaluation::default()
                }
                .into(),
                ..Call::default()
            })
            .collect();
        let few = changed_faq(1, |_| (calls(0, &[]), with_tone.clone()));
        assert!(judge_failure(&few).is_none(), "1 of 3 `tone` calls, 1 of 23 in all");
    }

    /// A pull request that cuts the repeats to one leaves a blocking consistency gate no data:
    /// it fails closed, as a removed scorer's gate does, rather than vanish.
    #[test]
    fn a_gate_the_base_measured_and_head_cannot_fails_closed() {
        let mut experiments = vec![ExperimentResult {
            changed: ChangeFacts {
                base_scored: vec![metrics::CONSISTENCY.to_owned(), metrics::FLAKY_SHARE.to_owned()],
                ..ChangeFacts::default()
            },
            ..changed_faq(30, passing)
        }];
        let policy = blocking(&[metrics::CONSISTENCY, metrics::FLAKY_SHARE]);
        judge(&mut experiments, &policy, None);
        for name in [metrics::CONSISTENCY, metrics::FLAKY_SHARE] {
            let m = experiments[0].metrics.iter().find(|m| m.name == name).expect(name);
            assert_eq!((m.verdict, m.fails_gate), (MetricVerdict::NoData, true), "{name}");
        }
        assert_eq!(experiments[0].verdict, ExperimentVerdict::Fail);
    }

    /// A shard that got none of an experiment's cases has nothing of it to judge: its blocking
    /// gates are `no_data` and do not fail the shard (an audit: two of six shards of a
    /// four-case experiment failed, exit 1, while their merge passed).
    #[test]
    fn an_experiment_without_a_case_in_a_shard_fails_no_gate() {
        let mut experiments = vec![changed_faq(0, passing)];
        judge(&mut experiments, &blocking(&["pass_rate"]), None);
        let m = experiments[0].metrics.iter().find(|m| m.name == "pass_rate").unwrap();
        assert_eq!((m.verdict, m.fails_gate), (MetricVerdict::NoData, false));
        assert_eq!(experiments[0].verdict, ExperimentVerdict::Pass);
    }

    /// Regrouping fails a gate only when it took away the units the gate needed: renaming a
    /// group (as many units as before) leaves a gate too few as it was.
    #[test]
    fn regrouping_fails_a_gate_only_when_it_merged_the_units_it_needed() {
        let verdict = |base_units: usize, head_units: usize| {
            let mut experiments = vec![ExperimentResult {
                changed: ChangeFacts {
                    dataset_changes: Some(DatasetChanges {
                        groups_changed: vec!["c0".to_owned()],
                        base_units,
                        head_units,
                        ..DatasetChanges::default()
                    }),
                    ..ChangeFacts::default()
                },
                ..changed_faq(8, passing)
            }];
            let policy = blocking(&["pass_rate"]);
            judge(&mut experiments, &policy, None);
            let m = experiments[0].metrics.iter().find(|m| m.name == "pass_rate").unwrap();
            (m.verdict, m.fails_gate)
        };
        // 8 units of 10 needed, as many as the base had: too few, as before the change.
        assert_eq!(verdict(8, 8), (MetricVerdict::TooFew, false));
        // 12 units at base, 4 merged away: the regrouping took the gate below its minimum.
        assert_eq!(verdict(12, 8), (MetricVerdict::TooFew, true));
    }

    /// A rate a scorer feeds is reported though no gate names it and each call's value is true
    /// or false (`pii_leak_rate`; `hallucination_rate` with one judge repeat); an assertion's
    /// own true/false is summed up in `pass_rate` instead.
    #[test]
    fn a_quality_rate_is_reported_ungated() {
        let leaking = |i: usize| {
            let mut call = Call::default();
            call.scores.insert("pass", Score::Bool(true));
            call.scores.insert("icontains", Score::Bool(true));
            call.scores.insert("pii_leak_rate", Score::Bool(false));
            let mut leaked = call.clone();
            leaked.scores.insert("pii_leak_rate", Score::Bool(i.is_multiple_of(4)));
            (vec![call], vec![leaked])
        };
        let mut experiments = vec![changed_faq(20, leaking)];
        judge(&mut experiments, &blocking(&[]), None);
        let names: Vec<&str> = experiments[0].metrics.iter().map(|m| m.name.as_str()).collect();
        assert!(names.contains(&"pii_leak_rate"), "{names:?}");
        assert!(!names.contains(&"icontains"), "{names:?}");
        let leak = experiments[0]
            .metrics
            .iter()
            .find(|m| m.name == "pii_leak_rate")
            .unwrap();
        assert_eq!((leak.test.as_str(), leak.gated), ("mcnemar-exact", false));
        assert!((leak.candidate.unwrap() - 0.25).abs() < 1e-12, "{:?}", leak.candidate);
    }

    /// `require: non-inferiority` fails unless the interval proves it: eight cases prove
    /// nothing, and the experiment's reason says why.
    #[test]
    fn a_gate_that_requires_a_proof_fails_on_too_few_cases() {
        let mut experiments = vec![changed_faq(8, passing)];
        let mut policy = blocking(&["pass_rate"]);
        policy.gates[0].require_non_inferiority = true;
        judge(&mut experiments, &policy, None);
        let m = experiments[0].metrics.iter().find(|m| m.name == "pass_rate").unwrap();
        assert_eq!((m.verdict, m.fails_gate), (MetricVerdict::TooFew, true));
        assert_eq!(experiments[0].verdict, ExperimentVerdict::Fail);
        assert_eq!(
            experiments[0].reason,
            "pass_rate is not proven non-inferior within its margin, as its gate requires: too few cases to be judged (8 of 10)"
        );
    }

    /// A metric only some cases score counts its own units: a PR that keeps the dataset's unit
    /// count (merging the cases that score it, adding cases that do not) still took them.
    #[test]
    fn a_gate_too_few_because_the_pr_took_its_metric_s_units_fails() {
        let verdict = |metric_units: [usize; 2], removed: usize| {
            let mut experiments = vec![ExperimentResult {
                changed: ChangeFacts {
                    dataset_changes: Some(DatasetChanges {
                        removed: (0..removed).map(|i| format!("other{i}")).collect(),
                        groups_changed: vec!["c0".to_owned()],
                        added: 4,
                        base_units: 30,
                        head_units: 30 - removed,
                        metric_units: [("pass_rate".to_owned(), metric_units)].into(),
                        ..DatasetChanges::default()
                    }),
                    ..ChangeFacts::default()
                },
                ..changed_faq(8, passing)
            }];
            judge(&mut experiments, &blocking(&["pass_rate"]), None);
            let m = experiments[0].metrics.iter().find(|m| m.name == "pass_rate").unwrap();
            (m.verdict, m.fails_gate)
        };
        assert_eq!(verdict([12, 8], 0), (MetricVerdict::TooFew, true));
        // As many of its units as the base had: too few, as before the change.
        assert_eq!(verdict([8, 8], 0), (MetricVerdict::TooFew, false));
        // Nor is removing cases that never scored it: they took none of its units.
        assert_eq!(verdict([8, 8], 3), (MetricVerdict::TooFew, false));
    }

    /// A new experiment runs candidate-only: nothing to compare, but a blocking gate's SLO on
    /// its own value still fails it, once the metric has its minimum n.
    #[test]
    fn a_new_experiment_fails_a_blocking_slo_it_misses_and_nothing_else() {
        let experiment = |cases: usize, passing: usize| ExperimentResult {
            name: "faq".to_owned(),
            status: ExperimentStatus::New,
            affected_by: Vec::new(),
            verdict: ExperimentVerdict::Pass,
            reason: String::new(),
            provider: "mock".to_owned(),
            baseline: None,
            candidate: Some(arm()),
            repeats: 1,
            metrics: Vec::new(),
            cases: (0..cases)
                .map(|i| {
                    let mut call = Call::default();
                    call.scores.insert("pass", Score::Bool(i < passing));
                    CaseResult {
                        text: CaseText::new(&format!("c{i}"), None, ""),
                        baseline: Vec::new(),
                        candidate: vec![call],
                        flip: None,
                    }
                })
                .collect(),
            dataset_cases: Vec::new(),
            noise: ExperimentNoise::default(),
            changed: ChangeFacts::default(),
        };
        let policy = |slo: Option<f64>| Policy {
            gates: vec![suite::GateSpec {
                metric: "pass_rate".to_owned(),
                direction: Direction::Higher,
                margin: suite::Margin::Absolute(0.0),
                alpha: 0.05,
                blocking: true,
                slo,
                require_non_inferiority: false,
                require_equivalence: false,
            }],
            pending: Vec::new(),
            alpha: 0.05,
            seed: 1,
            max_error_rate: 0.2,
        };
        let verdict = |cases: usize, passing: usize, slo: Option<f64>| {
            let mut experiments = vec![experiment(cases, passing)];
            judge(&mut experiments, &policy(slo), None);
            let pass_rate = experiments[0]
                .metrics
                .iter()
                .find(|m| m.name == "pass_rate")
                .unwrap()
                .clone();
            (experiments[0].verdict, pass_rate.verdict, pass_rate.fails_gate)
        };
        // 20 of 40 pass against an objective of 90%: the experiment fails.
        assert_eq!(
            verdict(40, 20, Some(0.9)),
            (ExperimentVerdict::Fail, MetricVerdict::NoData, true)
        );
        // 38 of 40 meet it; without an objective nothing can fail it.
        assert!(!verdict(40, 38, Some(0.9)).2);
        assert_eq!(
            verdict(40, 20, None),
            (ExperimentVerdict::Pass, MetricVerdict::NoData, false)
        );
        // Below the metric's minimum n the objective is not gated.
        assert!(!verdict(3, 0, Some(0.9)).2);
    }
}
