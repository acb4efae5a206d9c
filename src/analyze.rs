//! Per metric: paired values → an estimate, its interval and a p-value, by the test that fits
//! the quantity the metric reports (`metrics::Metric::test`). The test is the inversion of the
//! interval of that quantity, so the two never tell different stories:
//!
//! - binary, one value per case (`pass_rate` with one repeat, `error_rate`, `flaky_share`):
//!   exact McNemar decides, the Newcombe interval of the difference of proportions is shown and
//!   decides the margin comparisons;
//! - means — per-case means of repeats, scores and judge scores: the paired t-test with its t
//!   interval, cluster-robust when cases are grouped; a relative margin ("10%") is judged on
//!   Fieller's interval of `mean(candidate) / mean(baseline) − 1`, the inversion of the same
//!   test; skewed amounts (cost, custom `…_usd`/`…_ms` means): the same statistic calibrated
//!   by the studentized bootstrap, from 40 cases (`metrics::MIN_UNITS_AMOUNT`);
//! - quantiles (latency p50/p95): `Q(candidate calls) − Q(baseline calls)` over every call, the
//!   sign-flip permutation test over cases (exact up to 2^16 arrangements), and the bootstrap
//!   over whole cases with their repeats for the interval (Hesterberg's expanded percentile).
//!
//! Cases are the unit of inference; a dataset's `group` makes groups the unit. Each arm's own
//! value (`baseline`, `candidate`, and the candidate's interval for SLOs) is computed on that
//! arm's own calls; `delta` and its interval on the cases both arms have. Latency is compared
//! only between calls timed in this run: a cached call has no latency, an errored one counts at
//! its provider's timeout.

use std::collections::HashMap;

use crate::metrics::{DataShape, Estimand, Kind, Metric, Test};
use crate::results::{Call, CaseResult, JudgeAdvice, JudgeVariance, MAX_JUDGE_REPEATS};
use crate::stats;

mod agree;
mod own;
use agree::{Agreeing, agreeing_interval};
use own::{own_interval, own_value};

/// Bootstrap resamples for every interval: enough that the Monte-Carlo error of a 95% bound is
/// small next to its width, cheap enough for thousands of cases.
pub const RESAMPLES: usize = 4000;

/// Random sign flips when there are too many cases to enumerate them all.
pub const PERMUTATIONS: usize = 10_000;

pub use crate::metrics::FLAKY_SHARE;

/// The statistics of one metric in one experiment, before the gate's policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub metric: String,
    pub test: Test,
    pub estimand: Estimand,
    /// Each arm's value on its own calls.
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    /// The estimate of the test's quantity on the compared units, in the metric's unit.
    pub delta: Option<f64>,
    /// Its (1 − α) interval; the (1 − 2α) one for equivalence (TOST).
    pub ci: Option<[f64; 2]>,
    pub ci_equivalence: Option<[f64; 2]>,
    /// `candidate / baseline − 1` and its intervals (Fieller for means, the bootstrap for
    /// quantiles): what a relative margin is judged on.
    pub relative_delta: Option<f64>,
    pub relative_ci: Option<[f64; 2]>,
    pub relative_ci_equivalence: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    /// Units compared: cases, or groups of cases.
    pub n: usize,
    /// Cases compared (equals `n` without groups).
    pub cases: usize,
    /// Cases with a value in only one arm, left out of the comparison (a cached latency).
    pub left_out: usize,
    /// Whether the cases were grouped into clusters.
    pub grouped: bool,
    /// The fewest units the test judges (see `metrics::Metric::min_units`).
    pub min_units: usize,
    /// The per-unit standard deviation of the difference the test saw: what planning starts
    /// from.
    pub unit_sd: Option<f64>,
    /// McNemar: the share of discordant cases.
    pub discordance: Option<f64>,
    /// Quantiles: the bootstrap variances of the baseline's and the candidate's quantile and
    /// their covariance, for planning a relative margin (a slowdown scales the candidate's
    /// spread too).
    pub quantile_variances: Option<[f64; 3]>,
    /// Every value is 0/1 (an assertion, a pass or an error flag), however they are averaged.
    pub binary: bool,
    /// Calls per unit in the baseline arm (repeats × cases per group): how much a per-call
    /// variance is averaged down in a unit's mean, for planning under a drop.
    pub calls_per_unit: f64,
    /// (1 − α) interval of the candidate's own value, for SLOs.
    pub candidate_ci: Option<[f64; 2]>,
    /// Variance components over cases and repeats, averaged over the arms.
    pub between_var: Option<f64>,
    pub within_var: Option<f64>,
    /// A metric judged more than once per output: case, generation and judge variance.
    pub variance_components: Option<JudgeVariance>,
    /// The α the intervals are at (the gate's α, or a sequential look's nominal level).
    pub ci_alpha: f64,
}

impl Estimate {
    fn empty(metric: &Metric, ci_alpha: f64) -> Self {
        Estimate {
            metric: metric.name.clone(),
            test: Test::None,
            estimand: metric.estimand(Test::None),
            baseline: None,
            candidate: None,
            delta: None,
            ci: None,
            ci_equivalence: None,
            relative_delta: None,
            relative_ci: None,
            relative_ci_equivalence: None,
            p_value: None,
            n: 0,
            cases: 0,
            left_out: 0,
            grouped: false,
            min_units: metric.min_units(),
            unit_sd: None,
            discordance: None,
            quantile_variances: None,
            binary: false,
            calls_per_unit: 1.0,
            candidate_ci: None,
            between_var: None,
            within_var: None,
            variance_components: None,
            ci_alpha,
        }
    }
}

/// Estimates `name` over the cases. `paired` is false for a new experiment (candidate only).
/// `timeouts` are the baseline's and the candidate's provider timeouts (ms), where errored calls
/// count in latency.
pub fn estimate(name: &str, cases: &[CaseResult], paired: bool, alpha: f64, seed: u64, timeouts: [u64; 2]) -> Estimate {
    estimate_with(name, cases, paired, alpha, seed, timeouts, Intervals::Reported)
}

/// Whether an estimate's intervals are reported (and a quantile's made to agree with its
/// test), or the estimate is for a verdict only, whose interval nobody reads (the A/A
/// permutations, which ask hundreds of times whether a gate would alarm): then a quantile's
/// interval stays the bootstrap's even where it disagrees with the test, and is not inverted.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    Reported,
    Unread,
}

/// [`estimate`], its intervals reported or not.
pub fn estimate_with(
    name: &str,
    cases: &[CaseResult],
    paired: bool,
    alpha: f64,
    seed: u64,
    timeouts: [u64; 2],
    intervals: Intervals,
) -> Estimate {
    let metric = Metric::of(name);
    let confidence = 1.0 - alpha;
    let mut result = Estimate::empty(&metric, alpha);
    // Each metric its own random stream, stable across processes and releases.
    let metric_seed = seed ^ stats::fnv1a(name.bytes());
    let base = Ragged::of(cases, |c, out| metric.values_into(&c.baseline, timeouts[0], out));
    let cand = Ragged::of(cases, |c, out| metric.values_into(&c.candidate, timeouts[1], out));
    let unit_ids = unit_ids(cases);
    result.grouped = cases.iter().any(|c| c.group().is_some());

    let arms: Vec<&Ragged> = if paired { vec![&base, &cand] } else { vec![&cand] };
    (result.between_var, result.within_var) = components(&arms);
    result.variance_components = judge_variance(name, cases, paired);
    result.candidate = own_value(&metric, &cand);
    // For a quantile the candidate's own interval resamples its calls as much as the
    // comparison does: the two take a core each. When both resample the same units (the
    // baseline has a value wherever the candidate has one), the comparison's bootstrap draws it
    // too, the candidate's quantile in each of its resamples. Other metrics' intervals are
    // formulas.
    let drawn_together =
        paired && metric.quantile().is_some() && (0..cases.len()).all(|i| cand[i].is_empty() || !base[i].is_empty());
    std::thread::scope(|scope| {
        let interval = || own_interval(&metric, &cand, &unit_ids, confidence, metric_seed);
        let own =
            (metric.quantile().is_some() && side_by_side(cases) && !drawn_together).then(|| scope.spawn(interval));
        let mut own_drawn = None;
        let mut result = 'compared: {
            if !paired {
                result.n = count_units(&unit_ids, result.grouped, cand.iter().map(|v| !v.is_empty()));
                result.cases = cand.iter().filter(|v| !v.is_empty()).count();
                break 'compared result;
            }
            result.baseline = own_value(&metric, &base);

            // The compared cases: a value in both arms.
            let both: Vec<usize> = (0..cases.len())
                .filter(|&i| !base[i].is_empty() && !cand[i].is_empty())
                .collect();
            // Left out: a value in one arm only, or, for a latency, none in either because
            // both arms' calls came from the cache (they have no latency of this run): the
            // report says how many cases the comparison rests on.
            let cached_both = |i: usize| {
                let cached = |calls: &[Call]| calls.iter().any(|c| c.cached);
                metric.quantile().is_some() && cached(&cases[i].baseline) && cached(&cases[i].candidate)
            };
            result.left_out = (0..cases.len())
                .filter(|&i| {
                    base[i].is_empty() != cand[i].is_empty()
                        || (base[i].is_empty() && cand[i].is_empty() && cached_both(i))
                })
                .count();
            result.cases = both.len();
            // Each compared case's unit, read only by a grouped metric's tests (its clusters);
            // without groups every compared case is a unit of its own.
            let (units, n): (Vec<usize>, usize) = match result.grouped {
                true => {
                    let units: Vec<usize> = both.iter().map(|&i| unit_ids[i]).collect();
                    let n = count_units(&units, true, std::iter::repeat(true));
                    (units, n)
                }
                false => (Vec::new(), both.len()),
            };
            result.n = n;
            if both.is_empty() {
                break 'compared result;
            }
            result.binary = metric.is_binary(cases);
            // Repeats that agree in every case and arm are each case's one outcome, repeated
            // (a suite that passes every call in both arms, run with repeats): McNemar on the
            // cases judges them as one repeat's data. Their means have no spread, and the paired
            // t's interval of zero width proves nothing, so a `require` gate failed on three
            // repeats of data that one repeat passes (the audit: 100 cases, every call passing).
            let uniform = |v: &[f64]| v.windows(2).all(|w| w[0] == w[1]);
            let single = both.iter().all(|&i| base[i].len() == 1 && cand[i].len() == 1)
                || (result.binary && !result.grouped && both.iter().all(|&i| uniform(&base[i]) && uniform(&cand[i])));
            result.calls_per_unit = both.iter().map(|&i| base[i].len()).sum::<usize>() as f64 / result.n.max(1) as f64;
            // A skewed amount below the bootstrap-t's minimum is too few to judge: no test of a
            // mean is calibrated there (`metrics::MIN_UNITS_AMOUNT`).
            let test = metric.test(DataShape {
                binary: result.binary,
                single,
                grouped: result.grouped,
            });
            result.test = test;
            result.estimand = metric.estimand(test);
            result.min_units = metric.min_units_for(test);
            let clusters = result.grouped.then_some(units.as_slice());

            match test {
                Test::SignFlip => {
                    let q = metric.quantile().unwrap_or(0.5);
                    // Whole units, each with every call of its cases in both arms: a case of one
                    // call an arm gives its two values (16 bytes a unit), another case that is its
                    // own unit lends its calls (two slices, 32 bytes); a group's are copied
                    // together.
                    let together = side_by_side(cases);
                    let how = (q, metric_seed, alpha, together, intervals);
                    let (g, (test, draws), inverted) = if result.grouped {
                        let mut grouped: Vec<(Vec<f64>, Vec<f64>)> = Vec::new();
                        let mut index: HashMap<usize, usize> = HashMap::new();
                        for &i in &both {
                            let slot = *index.entry(unit_ids[i]).or_insert_with(|| {
                                grouped.push((Vec::new(), Vec::new()));
                                grouped.len() - 1
                            });
                            grouped[slot].0.extend_from_slice(&base[i]);
                            grouped[slot].1.extend_from_slice(&cand[i]);
                        }
                        quantile_compared(&grouped, how)
                    } else if single {
                        let pairs: Vec<([f64; 1], [f64; 1])> =
                            both.iter().map(|&i| ([base[i][0]], [cand[i][0]])).collect();
                        quantile_compared(&pairs, how)
                    } else {
                        let lent: Vec<(&[f64], &[f64])> = both.iter().map(|&i| (&base[i], &cand[i])).collect();
                        quantile_compared(&lent, how)
                    };
                    if let Some(test) = test {
                        result.delta = Some(test.estimate);
                        result.p_value = Some(test.p_value);
                    }
                    if let Some(draws) = draws {
                        let (diff, ratio) = (&draws.difference, draws.ratio.as_ref());
                        result.quantile_variances = Some([draws.var_baseline, draws.var_candidate, draws.covariance]);
                        let level = |a: f64| stats::expanded_alpha(a, g).map(|e| 1.0 - e);
                        let at = |draws: &stats::Draws, a: f64| level(a).and_then(|c| draws.summary(c)).map(|b| b.ci);
                        result.ci = inverted.difference.or_else(|| at(diff, alpha));
                        result.ci_equivalence = at(diff, 2.0 * alpha);
                        result.unit_sd = diff.standard_error().map(|se| se * (g as f64).sqrt());
                        if drawn_together {
                            own_drawn = at(&draws.candidate, alpha);
                        }
                        if let Some(ratio) = ratio {
                            result.relative_delta = ratio.summary(0.5).map(|b| b.estimate);
                            result.relative_ci = inverted.ratio.or_else(|| at(ratio, alpha));
                            result.relative_ci_equivalence = at(ratio, 2.0 * alpha);
                        }
                    }
                }
                Test::McnemarExact => {
                    let mut counts = stats::PairedCounts::default();
                    for &i in &both {
                        match (base[i][0] > 0.5, cand[i][0] > 0.5) {
                            (true, true) => counts.both += 1,
                            (true, false) => counts.baseline_only += 1,
                            (false, true) => counts.candidate_only += 1,
                            (false, false) => counts.neither += 1,
                        }
                    }
                    result.delta = counts.difference();
                    result.p_value = Some(stats::mcnemar_exact(counts.baseline_only, counts.candidate_only));
                    result.ci = stats::newcombe_paired(counts, confidence);
                    result.ci_equivalence = stats::newcombe_paired(counts, 1.0 - 2.0 * alpha);
                    let n = counts.n() as f64;
                    result.discordance = Some((counts.baseline_only + counts.candidate_only) as f64 / n);
                    let diffs: Vec<f64> = both.iter().map(|&i| cand[i][0] - base[i][0]).collect();
                    result.unit_sd = stats::std_dev(&diffs);
                    relative_of_means(&mut result, &base, &cand, &both, None, alpha);
                    // Shown only (the Newcombe interval decides): one of zero width, where neither
                    // arm's outcomes vary, is none ([0, 0] beside a difference's ±4.7 pp misled).
                    let spread = |ci: Option<[f64; 2]>| ci.filter(|[lo, hi]| hi > lo);
                    result.relative_ci = spread(result.relative_ci);
                    result.relative_ci_equivalence = spread(result.relative_ci_equivalence);
                }
                Test::BootstrapT | Test::PairedT | Test::None => {
                    let b: Vec<f64> = both.iter().filter_map(|&i| stats::mean(&base[i])).collect();
                    let c: Vec<f64> = both.iter().filter_map(|&i| stats::mean(&cand[i])).collect();
                    let diffs: Vec<f64> = c.iter().zip(&b).map(|(c, b)| c - b).collect();
                    let studentized = (test == Test::BootstrapT)
                        .then(|| stats::studentized_mean(&diffs, clusters, PERMUTATIONS, metric_seed))
                        .flatten();
                    if let Some(s) = &studentized {
                        result.delta = Some(s.estimate);
                        result.p_value = Some(s.p_value(0.0));
                        result.ci = s.interval(confidence);
                        result.ci_equivalence = s.interval(1.0 - 2.0 * alpha);
                        result.unit_sd = Some(s.se * (result.n as f64).sqrt());
                        if let Some(r) = stats::studentized_ratio(&b, &c, clusters, PERMUTATIONS, metric_seed ^ 3) {
                            result.relative_delta = Some(r.estimate);
                            result.relative_ci = r.interval(confidence);
                            result.relative_ci_equivalence = r.interval(1.0 - 2.0 * alpha);
                        }
                        break 'compared result;
                    }
                    if test == Test::BootstrapT {
                        // No spread to resample (every case moved alike, or one unit): the t-test's
                        // exact answer for that case, from as many units as the bootstrap-t needs
                        // (the cases not in the sample may still move otherwise).
                        result.test = Test::PairedT;
                    }
                    if let Some(t) = stats::paired_t(&diffs, clusters) {
                        result.delta = Some(t.estimate);
                        result.p_value = Some(t.p_value);
                        result.ci = t.interval(confidence);
                        result.ci_equivalence = t.interval(1.0 - 2.0 * alpha);
                        result.unit_sd = Some(t.unit_sd());
                    } else {
                        result.delta = stats::mean(&diffs);
                    }
                    relative_of_means(&mut result, &base, &cand, &both, clusters, alpha);
                }
            }
            result
        };
        result.candidate_ci = match own {
            Some(own) => own.join().unwrap_or_else(|e| std::panic::resume_unwind(e)),
            None => own_drawn.or_else(interval),
        };
        if result.binary || matches!(metric.kind, Kind::Pass | Kind::Error | Kind::Flaky | Kind::Consistency) {
            within_unit_range(&mut result);
        }
        result
    })
}

/// A share (values in [0, 1]) cannot move by more than 100 points, nor fall below zero: a t
/// interval over few, unequal groups can reach past both (−112 pp for a pass rate measured on
/// one group of 12 cases and 11 single ones). Its intersection with the possible values covers
/// the true difference exactly as often, and reads as what it is.
fn within_unit_range(result: &mut Estimate) {
    let clamp = |ci: &mut Option<[f64; 2]>, low: f64, high: f64| {
        if let Some([a, b]) = ci {
            *a = a.clamp(low, high);
            *b = b.clamp(low, high);
        }
    };
    clamp(&mut result.ci, -1.0, 1.0);
    clamp(&mut result.ci_equivalence, -1.0, 1.0);
    clamp(&mut result.candidate_ci, 0.0, 1.0);
    // mean(candidate) / mean(baseline) − 1 of shares is never below −100%.
    clamp(&mut result.relative_ci, -1.0, f64::INFINITY);
    clamp(&mut result.relative_ci_equivalence, -1.0, f64::INFINITY);
}

/// Calls up to which a quantile's resamplings run side by side (and the metrics of an
/// experiment, `verdict::estimate_all`): each holds its own sorted copy of every call, so
/// beyond this the extra memory (about 0.5 KB a call at 100,000 calls, against a peak the run
/// is meant to keep flat) outweighs the time, which the calls dwarf.
const SIDE_BY_SIDE_CALLS: usize = 20_000;

pub fn side_by_side(cases: &[CaseResult]) -> bool {
    cases
        .iter()
        .map(|c| c.baseline.len() + c.candidate.len())
        .sum::<usize>()
        <= SIDE_BY_SIDE_CALLS
}

/// Fieller's intervals of the ratio of the arms' means over the compared cases.
fn relative_of_means(
    result: &mut Estimate,
    base: &Ragged,
    cand: &Ragged,
    both: &[usize],
    clusters: Option<&[usize]>,
    alpha: f64,
) {
    let b: Vec<f64> = both.iter().filter_map(|&i| stats::mean(&base[i])).collect();
    let c: Vec<f64> = both.iter().filter_map(|&i| stats::mean(&cand[i])).collect();
    if let Some(r) = stats::paired_ratio(&b, &c, clusters, 1.0 - alpha) {
        result.relative_delta = Some(r.estimate);
        result.relative_ci = r.ci;
        result.relative_ci_equivalence = stats::paired_ratio(&b, &c, clusters, 1.0 - 2.0 * alpha).and_then(|r| r.ci);
    }
}

/// Per case, one arm's values (a value per call, or one for the case), held flat: a large run
/// has a case per unit, and a `Vec` each would hold five times the bytes of its values.
struct Ragged {
    values: Vec<f64>,
    /// Where each case's values end in `values` (32 bits: a run holds fewer calls).
    ends: Vec<u32>,
}

impl Ragged {
    fn of(cases: &[CaseResult], mut fill: impl FnMut(&CaseResult, &mut Vec<f64>)) -> Ragged {
        // Sized for a value a case (most metrics of a single-repeat run): grown by doubling
        // from empty, the values took up to twice their room before the shrink.
        let mut values = Vec::with_capacity(cases.len());
        let ends = cases
            .iter()
            .map(|c| {
                fill(c, &mut values);
                u32::try_from(values.len()).expect("a run holds fewer than 2^32 calls")
            })
            .collect();
        values.shrink_to_fit();
        Ragged { values, ends }
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[f64]> {
        (0..self.len()).map(|i| &self[i])
    }
}

impl std::ops::Index<usize> for Ragged {
    type Output = [f64];

    fn index(&self, i: usize) -> &[f64] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.values[start..self.ends[i] as usize]
    }
}

/// Between- and within-case variance of each arm's values, averaged over the arms given.
fn components(arms: &[&Ragged]) -> (Option<f64>, Option<f64>) {
    let per_arm: Vec<stats::VarianceComponents> = arms
        .iter()
        .filter_map(|arm| {
            let refs: Vec<&[f64]> = arm.iter().collect();
            stats::variance_components(&refs)
        })
        .collect();
    if per_arm.is_empty() {
        return (None, None);
    }
    let k = per_arm.len() as f64;
    let between = per_arm.iter().map(|v| v.between).sum::<f64>() / k;
    let within: Option<Vec<f64>> = per_arm.iter().map(|v| v.within).collect();
    (Some(between), within.map(|w| w.iter().sum::<f64>() / k))
}

/// Where the noise of a metric judged `k ≥ 2` times per output comes from: per arm, the
/// nested components of the judgements' values over the complete cases (every output judged
/// `k` times, every case with the run's `r` outputs; a failed judgement leaves its case out),
/// averaged over the arms; then whether more judge repeats or more cases pay, weighing this
/// run's mean cost of an output against a judgement's. Judge repeats are already averaged
/// like generation repeats (one mean per case): this only says how the noise splits.
fn judge_variance(name: &str, cases: &[CaseResult], paired: bool) -> Option<JudgeVariance> {
    fn arm_calls(c: &CaseResult, candidate: bool) -> &[Call] {
        if candidate { &c.candidate } else { &c.baseline }
    }
    let arms: &[bool] = if paired { &[false, true] } else { &[true] };
    let judged = |call: &Call| -> Vec<f64> {
        call.evaluation
            .judgements()
            .iter()
            .filter(|j| j.metric == name)
            .filter_map(|j| j.value)
            .collect()
    };
    let per_arm: Vec<stats::NestedComponents> = arms
        .iter()
        .filter_map(|&candidate| {
            let data: Vec<Vec<Vec<f64>>> = cases
                .iter()
                .map(|c| arm_calls(c, candidate).iter().map(judged).collect())
                .collect();
            // The design: the most outputs a case has and the most judgements an output has.
            let r = data.iter().map(Vec::len).max()?;
            let k = data.iter().flatten().map(Vec::len).max()?;
            let complete: Vec<Vec<Vec<f64>>> = data
                .into_iter()
                .filter(|outputs| outputs.len() == r && outputs.iter().all(|j| j.len() == k))
                .collect();
            stats::nested_components(&complete)
        })
        .collect();
    let first = per_arm.first()?;
    if per_arm
        .iter()
        .any(|v| (v.repeats, v.judgements) != (first.repeats, first.judgements))
    {
        return None;
    }
    let arms_n = per_arm.len() as f64;
    let average = |f: &dyn Fn(&stats::NestedComponents) -> f64| per_arm.iter().map(f).sum::<f64>() / arms_n;
    let generation = per_arm.iter().map(|v| v.generation).collect::<Option<Vec<f64>>>();
    let v = stats::NestedComponents {
        case: average(&|v| v.case),
        generation: generation.map(|g| g.iter().sum::<f64>() / arms_n),
        judge: average(&|v| v.judge),
        cases: per_arm.iter().map(|v| v.cases).min()?,
        repeats: first.repeats,
        judgements: first.judgements,
    };
    // What this run paid per output and per judgement (cache hits paid nothing and failures
    // answered nothing, so both are left out); with no price known both count as one call.
    let calls = cases.iter().flat_map(|c| c.baseline.iter().chain(&c.candidate));
    let paid = |costs: Vec<f64>| stats::mean(&costs).filter(|c| *c > 0.0);
    let generation_cost = paid(
        calls
            .clone()
            .filter(|c| !c.cached && c.error().is_none())
            .map(|c| c.cost_usd)
            .collect(),
    );
    let judge_cost = paid(
        calls
            .flat_map(|c| c.evaluation.judgements())
            .filter(|j| j.metric == name && !j.cached && j.error.is_none())
            .map(|j| j.cost_usd)
            .collect(),
    );
    let (c_g, c_j) = match (generation_cost, judge_cost) {
        (Some(g), Some(j)) => (g, j),
        _ => (1.0, 1.0),
    };
    let (n, r, k) = (v.cases as f64, v.repeats as f64, v.judgements as f64);
    let variance_of_mean = v.variance_of_mean(n, r, k);
    let best = v.best_judge_repeats(c_g, c_j);
    let best_judge_repeats = if best.is_finite() {
        (best.round() as u32).clamp(1, MAX_JUDGE_REPEATS)
    } else {
        MAX_JUDGE_REPEATS
    };
    let current = v.judgements as u32;
    Some(JudgeVariance {
        cases: v.cases,
        repeats: v.repeats,
        judge_repeats: v.judgements,
        case: v.case,
        generation: v.generation,
        judge: v.judge,
        variance_of_mean,
        judge_share: if variance_of_mean > 0.0 {
            v.judge / (n * r * k) / variance_of_mean
        } else {
            0.0
        },
        generation_cost_usd: generation_cost.unwrap_or(0.0),
        judge_cost_usd: judge_cost.unwrap_or(0.0),
        best_judge_repeats,
        advice: match best_judge_repeats.cmp(&current) {
            std::cmp::Ordering::Greater => JudgeAdvice::MoreJudgeRepeats,
            std::cmp::Ordering::Less => JudgeAdvice::MoreCases,
            std::cmp::Ordering::Equal => JudgeAdvice::Balanced,
        },
    })
}

/// A quantile's comparison over whole units, whatever holds their calls.
type Compared = (usize, (Option<stats::SignFlip>, Option<stats::QuantileDraws>), Agreeing);

/// A quantile's comparison over `units`, each unit's calls in both arms (held as values, lent
/// slices or copied groups): their number, the test and the draws, and the interval made to
/// agree with the test when it is reported. `(q, seed, alpha, together, intervals)`.
fn quantile_compared<U: AsRef<[f64]> + Sync>(
    units: &[(U, U)],
    (q, seed, alpha, together, intervals): (f64, u64, f64, bool, Intervals),
) -> Compared {
    let drawn = quantile_draws(units, q, seed, together);
    let inverted = match intervals {
        Intervals::Reported => agreeing_interval(units, q, seed, alpha, &drawn),
        Intervals::Unread => Agreeing::default(),
    };
    (units.len(), drawn, inverted)
}

/// A quantile's sign-flip test and its bootstrap draws over whole units. The two are
/// independent draws, each a good part of the run's own time after the last call: they take a
/// core each when `together` (up to `SIDE_BY_SIDE_CALLS`).
fn quantile_draws<U: AsRef<[f64]> + Sync>(
    units: &[(U, U)],
    q: f64,
    seed: u64,
    together: bool,
) -> (Option<stats::SignFlip>, Option<stats::QuantileDraws>) {
    let test = || stats::sign_flip_quantile(units, q, PERMUTATIONS, seed);
    std::thread::scope(|scope| {
        let spawned = together.then(|| scope.spawn(test));
        let draws = stats::unit_bootstrap_quantile(units, q, RESAMPLES, seed ^ 2);
        let test = spawned.map_or_else(test, |t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        (test, draws)
    })
}

/// Each case's unit: its group's index, or its own (after every group) when it has none.
fn unit_ids(cases: &[CaseResult]) -> Vec<usize> {
    let mut groups: HashMap<&str, usize> = HashMap::new();
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| match &c.group() {
            Some(g) => {
                let next = groups.len();
                cases.len() + *groups.entry(&**g).or_insert(next)
            }
            None => i,
        })
        .collect()
}

/// The distinct units among the cases kept. Without groups every case is its own unit, and
/// they are counted without a set (at 50,000 cases a set of them was about 1 MB).
fn count_units(ids: &[usize], grouped: bool, keep: impl Iterator<Item = bool>) -> usize {
    let kept = ids.iter().zip(keep).filter(|(_, k)| *k).map(|(id, _)| *id);
    match grouped {
        false => kept.count(),
        true => kept.collect::<std::collections::HashSet<_>>().len(),
    }
}

/// The per-case value of `metric` for one arm's calls, the mean over repeats (what the report's
/// per-case views show). Latency here is the measured one; the comparison's censoring at the
/// timeout lives in [`estimate`].
pub fn per_case(metric: &str, calls: &[Call]) -> Option<f64> {
    stats::mean(&Metric::of(metric).values(calls, crate::metrics::DEFAULT_TIMEOUT_MS))
}

/// Share of (case, arm) pairs with repeats that disagree on `pass`, and the flaky case ids.
pub fn flaky_share(cases: &[CaseResult]) -> (Option<f64>, Vec<String>) {
    let mut groups = 0usize;
    let mut flaky = 0usize;
    let mut ids = Vec::new();
    for case in cases {
        let mut any = false;
        for arm in [&case.baseline, &case.candidate] {
            if let Some(f) = crate::metrics::is_flaky(arm) {
                groups += 1;
                flaky += usize::from(f);
                any |= f;
            }
        }
        if any {
            ids.push(case.id().to_string());
        }
    }
    ((groups > 0).then(|| flaky as f64 / groups as f64), ids)
}

/// Per `llm-compare` metric of the cases' candidate calls, the judge's position bias: of the
/// judgements that preferred one output, those that preferred the one shown first, with the
/// share's 95% Wilson interval (`scorers::compare`).
pub fn position_bias(cases: &[CaseResult]) -> Vec<crate::results::PositionBias> {
    let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
    for judgement in cases
        .iter()
        .flat_map(|c| &c.candidate)
        .flat_map(|call| call.evaluation.judgements())
    {
        let Some(first) = judgement.first else { continue };
        let entry = counts.entry(judgement.metric.as_str()).or_default();
        if let Some(preferred) = judgement.preferred {
            entry.0 += 1;
            entry.1 += usize::from(preferred == first);
        }
    }
    counts
        .into_iter()
        .map(|(metric, (decisive, first_wins))| crate::results::PositionBias {
            metric: metric.to_owned(),
            decisive,
            first_wins,
            share: (decisive > 0).then(|| first_wins as f64 / decisive as f64),
            ci: crate::stats::wilson_interval(first_wins as u64, decisive as u64, 0.95),
        })
        .collect()
}

/// Cases listed as least consistent.
pub const LEAST_CONSISTENT_SHOWN: usize = 5;

/// The cases whose repeats agree least: `consistency` below 1 in either arm, ordered by the
/// lower of the two (then by case order), at most [`LEAST_CONSISTENT_SHOWN`].
pub fn least_consistent(cases: &[CaseResult]) -> Vec<crate::results::CaseConsistency> {
    let metric = Metric::of(crate::metrics::CONSISTENCY);
    let value = |calls: &[Call]| {
        metric
            .values(calls, crate::metrics::DEFAULT_TIMEOUT_MS)
            .first()
            .copied()
    };
    let mut listed: Vec<(f64, crate::results::CaseConsistency)> = cases
        .iter()
        .filter_map(|c| {
            let (baseline, candidate) = (value(&c.baseline), value(&c.candidate));
            let lowest = baseline.into_iter().chain(candidate).fold(f64::INFINITY, f64::min);
            (lowest < 1.0).then(|| {
                (
                    lowest,
                    crate::results::CaseConsistency {
                        id: c.id().to_string(),
                        baseline,
                        candidate,
                    },
                )
            })
        })
        .collect();
    // A stable sort keeps case order among ties.
    listed.sort_by(|a, b| a.0.total_cmp(&b.0));
    listed
        .into_iter()
        .take(LEAST_CONSISTENT_SHOWN)
        .map(|(_, c)| c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A case of one call an arm gives a quantile's comparison its two values; the test, the
    /// draws and the agreeing interval are those of the same calls lent, to the bit.
    #[test]
    fn a_quantile_compares_units_of_one_call_as_when_their_calls_are_lent() {
        let mut rng = stats::Rng::new(7);
        let values: Vec<(f64, f64)> = (0..300)
            .map(|_| {
                let b = 100.0 + (rng.next_u64() % 1000) as f64 / 10.0;
                (b, b * 0.9 + (rng.next_u64() % 200) as f64 / 10.0)
            })
            .collect();
        let pairs: Vec<([f64; 1], [f64; 1])> = values.iter().map(|&(b, c)| ([b], [c])).collect();
        let lent: Vec<(&[f64], &[f64])> = pairs.iter().map(|(b, c)| (&b[..], &c[..])).collect();
        for q in [0.5, 0.95] {
            let (g, drawn, agreeing) = quantile_compared(&pairs, (q, 11, 0.05, false, Intervals::Reported));
            let (g_lent, drawn_lent, agreeing_lent) =
                quantile_compared(&lent, (q, 11, 0.05, false, Intervals::Reported));
            assert_eq!((g, &drawn), (g_lent, &drawn_lent));
            assert_eq!(
                (agreeing.difference, agreeing.ratio),
                (agreeing_lent.difference, agreeing_lent.ratio)
            );
            assert!(drawn.0.is_some() && drawn.1.is_some());
        }
    }

    use crate::results::{CaseText, Score, Scores};

    const NO_TIMEOUT: [u64; 2] = [60_000; 2];

    fn call(repeat: u32, passed: bool, score: Option<f64>, cost: f64) -> Call {
        let mut scores = Scores::from([("pass", Score::Bool(passed))]);
        if let Some(s) = score {
            scores.insert("judge", Score::Number(s));
        }
        Call {
            repeat,
            output: Some("".into()),
            latency_ms: Some(100.0 + f64::from(repeat)).into(),
            cost_usd: cost,
            list_cost_usd: cost,
            attempts: 1,
            scores,
            ..Call::default()
        }
    }

    fn timed(repeat: u32, latency: f64) -> Call {
        Call {
            latency_ms: Some(latency).into(),
            ..call(repeat, true, None, 0.0)
        }
    }

    fn case(id: usize, baseline: Vec<Call>, candidate: Vec<Call>) -> CaseResult {
        CaseResult {
            text: CaseText::new(&format!("c{id}"), None, ""),
            baseline,
            candidate,
            flip: None,
        }
    }

    #[track_caller]
    fn close(got: Option<f64>, expected: f64, tol: f64) {
        let got = got.expect("a value");
        assert!((got - expected).abs() < tol, "{got} vs {expected}");
    }

    #[test]
    fn binary_single_repeat_uses_mcnemar_and_newcombe() {
        // 30 both pass, 8 only baseline, 2 only candidate, 10 neither: the table of
        // stats::proportion's first reference, so the interval is Newcombe's
        // (-0.24259714476429908, 0.0064083655457082556) and p = mcnemar([[30, 8], [2, 10]],
        // exact=True).pvalue = 0.109375.
        let mut cases = Vec::new();
        for (i, (b, c)) in [(true, true); 30]
            .into_iter()
            .chain([(true, false); 8])
            .chain([(false, true); 2])
            .chain([(false, false); 10])
            .enumerate()
        {
            cases.push(case(i, vec![call(0, b, None, 0.01)], vec![call(0, c, None, 0.01)]));
        }
        let e = estimate("pass_rate", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(
            (e.test, e.estimand, e.n, e.min_units),
            (Test::McnemarExact, Estimand::ProportionDifference, 50, 10)
        );
        close(e.p_value, 0.109_375, 1e-12);
        let ci = e.ci.unwrap();
        assert!(
            (ci[0] + 0.242_597_144_764_299_08).abs() < 1e-12 && (ci[1] - 0.006_408_365_545_708_255_6).abs() < 1e-12
        );
        close(e.delta, -0.12, 1e-12);
        close(e.discordance, 0.2, 1e-12);
        let eq = e.ci_equivalence.unwrap();
        assert!(eq[0] > ci[0] && eq[1] < ci[1], "the 90% interval is inside the 95% one");
        // The candidate's own interval is Wilson's for 32 of 50: statsmodels
        // proportion_confint(32, 50, 0.05, "wilson") -> (0.5014101687611268, 0.7586125034815325)
        let own = e.candidate_ci.unwrap();
        assert!((own[0] - 0.501_410_168_761_126_8).abs() < 1e-12 && (own[1] - 0.758_612_503_481_532_5).abs() < 1e-12);
    }

    /// Repeats that agree in every case and arm are judged as one repeat's cases: the same
    /// table as above with each call three times gives the same exact p and Newcombe interval
    /// (mcnemar([[30, 8], [2, 10]], exact=True).pvalue = 0.109375), where the paired t over the
    /// cases' means gave a different test, and, on a suite passing every call, a zero-width
    /// interval that proved nothing.
    #[test]
    fn repeats_that_agree_in_every_case_are_judged_as_one_repeat() {
        let table = || {
            [(true, true); 30]
                .into_iter()
                .chain([(true, false); 8])
                .chain([(false, true); 2])
                .chain([(false, false); 10])
                .enumerate()
        };
        let thrice = |pass: bool| (0..3).map(|r| call(r, pass, None, 0.01)).collect::<Vec<_>>();
        let cases: Vec<CaseResult> = table().map(|(i, (b, c))| case(i, thrice(b), thrice(c))).collect();
        let e = estimate("pass_rate", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.n), (Test::McnemarExact, 50));
        close(e.p_value, 0.109_375, 1e-12);
        let ci = e.ci.unwrap();
        assert!(
            (ci[0] + 0.242_597_144_764_299_08).abs() < 1e-12 && (ci[1] - 0.006_408_365_545_708_255_6).abs() < 1e-12
        );
        // Every call passing in both arms, 100 cases: Newcombe's interval for a table of 100
        // concordant pairs, ±0.036994 (Newcombe 1998, method 10; the audit's reference gave
        // [-3.7, +3.7] pp), not a paired t's [0, 0]; and no relative interval of zero width.
        let perfect: Vec<CaseResult> = (0..100).map(|i| case(i, thrice(true), thrice(true))).collect();
        let e = estimate("pass_rate", &perfect, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(e.test, Test::McnemarExact);
        let ci = e.ci.unwrap();
        assert!(
            (ci[0] + 0.036_994).abs() < 1e-5 && (ci[1] - 0.036_994).abs() < 1e-5,
            "{ci:?}"
        );
        assert_eq!(e.relative_ci, None);
        // One case whose repeats disagree: the cases' means, by the paired t.
        let mut mixed = perfect;
        mixed[0].candidate[1] = call(1, false, None, 0.01);
        assert_eq!(
            estimate("pass_rate", &mixed, true, 0.05, 1, NO_TIMEOUT).test,
            Test::PairedT
        );
    }

    /// A score that is 0 or 1 on every call (a hallucination flag) has Wilson's interval as a
    /// pass rate has: 0 of 30 was the t interval [0, 0], which proved a 5% objective.
    #[test]
    fn a_binary_scores_own_interval_is_wilsons() {
        let flagged = |i: usize, flag: bool| {
            let mut c = call(0, true, None, 0.01);
            c.scores
                .insert("hallucination_rate", Score::Number(f64::from(u8::from(flag))));
            case(i, vec![c.clone()], vec![c])
        };
        // statsmodels proportion_confint(k, 30, 0.05, "wilson"):
        // k = 0 -> (0.0, 0.1135133931739688); k = 8 -> (0.1418266331959632, 0.44447961695188887)
        for (k, expected) in [
            (0, [0.0, 0.113_513_393_173_968_8]),
            (8, [0.141_826_633_195_963_2, 0.444_479_616_951_888_87]),
        ] {
            let cases: Vec<CaseResult> = (0..30).map(|i| flagged(i, i < k)).collect();
            let own = estimate("hallucination_rate", &cases, true, 0.05, 1, NO_TIMEOUT)
                .candidate_ci
                .unwrap();
            assert!(
                (own[0] - expected[0]).abs() < 1e-12 && (own[1] - expected[1]).abs() < 1e-12,
                "{k}: {own:?}"
            );
        }
        // Over repeats, none flagged: Wilson's over the 30 cases, not a zero-width t interval.
        let repeated: Vec<CaseResult> = (0..30)
            .map(|i| {
                let mut c = call(0, true, None, 0.01);
                c.scores.insert("hallucination_rate", Score::Number(0.0));
                let calls = vec![c.clone(), Call { repeat: 1, ..c }];
                case(i, calls.clone(), calls)
            })
            .collect();
        let own = estimate("hallucination_rate", &repeated, true, 0.05, 1, NO_TIMEOUT)
            .candidate_ci
            .unwrap();
        assert!(
            own[0] == 0.0 && (own[1] - 0.113_513_393_173_968_8).abs() < 1e-12,
            "{own:?}"
        );
        // A share of flaky cases is a binary outcome per case too: none flaky of 44 is
        // proportion_confint(0, 44, 0.05, "wilson") -> (0.0, 0.0802956037584807), not [0, 0].
        let steady: Vec<CaseResult> = (0..44)
            .map(|i| {
                let calls: Vec<Call> = (0..3).map(|r| call(r, true, None, 0.01)).collect();
                case(i, calls.clone(), calls)
            })
            .collect();
        let own = estimate("flaky_share", &steady, true, 0.05, 1, NO_TIMEOUT)
            .candidate_ci
            .unwrap();
        assert!(
            own[0] == 0.0 && (own[1] - 0.080_295_603_758_480_7).abs() < 1e-12,
            "{own:?}"
        );
        // A cost of $0 on every call (a free model) is no binary outcome: no Wilson interval.
        let free: Vec<CaseResult> = (0..30)
            .map(|i| case(i, vec![call(0, true, None, 0.0)], vec![call(0, true, None, 0.0)]))
            .collect();
        let own = estimate("cost_per_request", &free, true, 0.05, 1, NO_TIMEOUT).candidate_ci;
        assert!(own.is_none_or(|ci| ci[1] < 0.01), "{own:?}");
    }

    /// A pass rate over one group of 12 cases (all passing at base, failing at head) and 11
    /// single cases (passing in both): the cluster-robust t interval of the difference reaches
    /// about −112 pp, below any possible difference; it is cut at −100 pp, the rest unchanged.
    #[test]
    fn a_share_s_interval_stays_within_what_a_share_can_move() {
        let grouped = |i: usize, b: bool, c: bool, group: Option<&str>| CaseResult {
            text: CaseText::new(&format!("c{i}"), group, ""),
            ..case(i, vec![call(0, b, None, 0.01)], vec![call(0, c, None, 0.01)])
        };
        let cases: Vec<CaseResult> = (0..12)
            .map(|i| grouped(i, true, false, Some("all")))
            .chain((12..23).map(|i| grouped(i, true, true, None)))
            .collect();
        let e = estimate("pass_rate", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.n), (Test::PairedT, 12));
        let ci = e.ci.unwrap();
        assert_eq!(ci[0], -1.0, "{ci:?}");
        assert!(ci[1] > 0.0 && ci[1] < 1.0, "{ci:?}");
        let eq = e.ci_equivalence.unwrap();
        assert!(eq[0] >= -1.0 && eq[1] <= 1.0, "{eq:?}");
        let own = e.candidate_ci.unwrap();
        assert!(own[0] >= 0.0 && own[1] <= 1.0, "{own:?}");
        assert!(e.relative_ci.is_none_or(|r| r[0] >= -1.0), "{:?}", e.relative_ci);
    }

    /// Most cases 5% cheaper, 3 in 20 twice as dear: the mean rises 10%, although most
    /// differences are negative (a signed-rank test calls it cheaper, p = 1e-4).
    /// base_i = 0.001 + 0.00002*(i % 50); cand_i = 2*base_i if i % 20 < 3 else 0.95*base_i.
    fn skewed_cases(metric: &str) -> Vec<CaseResult> {
        (0..100)
            .map(|i| {
                let b = 0.001 + 0.00002 * (i % 50) as f64;
                let c = if i % 20 < 3 { 2.0 * b } else { 0.95 * b };
                let arm = |x: f64| {
                    let mut call = call(0, true, None, x);
                    call.scores.insert(metric.to_owned(), Score::Number(x));
                    vec![call]
                };
                case(i, arm(b), arm(c))
            })
            .collect()
    }

    #[test]
    fn a_mean_is_judged_on_the_mean_it_reports() {
        // As a plain score: scipy.stats.ttest_rel(cand, base): pvalue 0.007667094577391629,
        // confidence_interval (4.042852340591449e-05, 0.00025787147659408533); the ratio of
        // means − 1 is 0.10010067114093957 and Fieller's interval, by brentq on
        // ttest_1samp(cand − ρ·base), [0.027078041876041015, 0.17368004199315923].
        let e = estimate("score", &skewed_cases("score"), true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.estimand), (Test::PairedT, Estimand::MeanDifference));
        close(e.p_value, 0.007_667_094_577_391_629, 1e-12);
        let ci = e.ci.unwrap();
        assert!(
            (ci[0] - 4.042_852_340_591_449e-5).abs() < 1e-15 && (ci[1] - 0.000_257_871_476_594_085_33).abs() < 1e-15
        );
        close(e.relative_delta, 0.100_100_671_140_939_57, 1e-12);
        let rel = e.relative_ci.unwrap();
        assert!((rel[0] - 0.027_078_041_876_041_015).abs() < 1e-9 && (rel[1] - 0.173_680_041_993_159_23).abs() < 1e-9);
        assert!(e.delta.unwrap() > 0.0, "the mean rose: the evidence points up");
    }

    #[test]
    fn cost_is_a_skewed_amount_judged_by_the_bootstrap_t() {
        let cases = skewed_cases("unused");
        let e = estimate("cost_per_request", &cases, true, 0.05, 1, NO_TIMEOUT);
        let t = estimate("unused", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(e.test, Test::BootstrapT);
        // The same estimate and relative change as the t-test, significant, with intervals that
        // lean toward the long tail (up) where the t interval is symmetric.
        close(e.delta, t.delta.unwrap(), 1e-15);
        close(e.relative_delta, t.relative_delta.unwrap(), 1e-12);
        assert!(e.p_value.unwrap() < 0.05);
        let ([lo, hi], [tlo, thi]) = (e.ci.unwrap(), t.ci.unwrap());
        assert!(hi > thi && lo > tlo, "[{lo}, {hi}] vs [{tlo}, {thi}]");
        let ([lo, hi], [tlo, thi]) = (e.relative_ci.unwrap(), t.relative_ci.unwrap());
        assert!(hi > thi && lo > tlo, "[{lo}, {hi}] vs [{tlo}, {thi}]");
        // Every case 24.5% cheaper: no spread to resample, so the t-test's exact answer.
        let flat: Vec<CaseResult> = (0..20)
            .map(|i| case(i, vec![call(0, true, None, 0.002)], vec![call(0, true, None, 0.00151)]))
            .collect();
        let e = estimate("cost_per_request", &flat, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.p_value), (Test::PairedT, Some(2.0 / f64::from(1 << 20))));
    }

    #[test]
    fn cost_below_the_bootstrap_t_minimum_is_too_few_to_judge() {
        // 20 cases whose calls became three times dearer: no test of a skewed mean is
        // calibrated below 40 cases (docs/statistics.md), so the estimate is the bootstrap-t's
        // and its minimum is 40, which the verdict reads as "too few".
        let cases: Vec<CaseResult> = (0..20)
            .map(|i| {
                let b = 0.001 + 0.00005 * (i % 7) as f64;
                let c = 3.0 * b + 0.00001 * (i % 3) as f64;
                case(i, vec![call(0, true, None, b)], vec![call(0, true, None, c)])
            })
            .collect();
        let e = estimate("cost_per_request", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(
            (e.test, e.n, e.min_units),
            (Test::BootstrapT, 20, crate::metrics::MIN_UNITS_AMOUNT)
        );
        // b = [0.001 + 0.00005 * (i % 7)], c = [3 * b[i] + 0.00001 * (i % 3)], i in 0..20;
        // numpy: (c - b).mean() = 0.0022945
        close(e.delta, 0.002_294_5, 1e-15);
        // From 40 cases on, the bootstrap-t.
        let forty: Vec<CaseResult> = (0..40)
            .map(|i| {
                case(
                    i,
                    vec![call(0, true, None, 0.001 + 0.00005 * (i % 7) as f64)],
                    vec![call(0, true, None, 0.003 + 0.00001 * (i % 3) as f64)],
                )
            })
            .collect();
        let e = estimate("cost_per_request", &forty, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(
            (e.test, e.min_units),
            (Test::BootstrapT, crate::metrics::MIN_UNITS_AMOUNT)
        );
    }

    #[test]
    fn ordinal_scores_use_the_mean_difference() {
        // 38 judge scores, 8 drop one point: the median shift is 0 but the mean falls.
        // scipy.stats.ttest_rel(c, b): pvalue 0.003304311117605965, mean −0.21052631578947367,
        // confidence_interval(0.95) (−0.34632696862970613, −0.07472566294924118)
        let b = [
            4., 5., 3., 4., 5., 4., 3., 5., 4., 4., 5., 3., 4., 5., 4., 3., 4., 5., 4., 4., 3., 5., 4., 4., 5., 3., 4.,
            5., 4., 3., 4., 5., 4., 4., 3., 5., 4., 4.,
        ];
        let dropped = [0, 3, 7, 11, 15, 20, 26, 33];
        let cases: Vec<CaseResult> = b
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                let c = if dropped.contains(&i) { s - 1.0 } else { s };
                case(i, vec![call(0, true, Some(s), 0.0)], vec![call(0, true, Some(c), 0.0)])
            })
            .collect();
        let e = estimate("judge", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!(e.test, Test::PairedT);
        close(e.p_value, 0.003_304_311_117_605_965, 1e-12);
        close(e.delta, -0.210_526_315_789_473_67, 1e-12);
        let ci = e.ci.unwrap();
        assert!((ci[0] + 0.346_326_968_629_706_13).abs() < 1e-12 && (ci[1] + 0.074_725_662_949_241_18).abs() < 1e-12);
    }

    /// DESIGN: "each metric's test is the inversion of the interval of the quantity it
    /// reports". A quantile's interval is the bootstrap's, which may disagree with the sign-flip
    /// test about zero; there it is the test's own inversion, so a significant p-value never
    /// stands beside an interval holding 0, nor the reverse. Random small suites of skewed
    /// latencies, with and without a shift, many of which disagreed before.
    #[test]
    fn a_quantile_s_interval_excludes_zero_exactly_when_its_test_rejects() {
        let mut rng = crate::stats::Rng::new(11);
        let mut disagreed_before = 0;
        for trial in 0..30 {
            let n = 12 + trial % 30;
            let shift = [0.0, 8.0, 25.0][trial % 3];
            // Every other suite in whole tens of milliseconds: ties, where the accepted shifts
            // may end exactly at 0.
            let grain = if trial % 2 == 1 { 10.0 } else { 1e-9 };
            let at = |ms: f64| timed(0, (ms / grain).round() * grain);
            let cases: Vec<CaseResult> = (0..n)
                .map(|i| {
                    let base = 50.0 + 400.0 * rng.unit().powi(3);
                    let b = vec![
                        at(base),
                        Call {
                            repeat: 1,
                            ..at(base + 30.0 * rng.unit())
                        },
                    ];
                    let c = vec![
                        at(base + shift + 20.0 * (rng.unit() - 0.5)),
                        Call {
                            repeat: 1,
                            ..at(base + shift + 60.0 * rng.unit())
                        },
                    ];
                    case(i, b, c)
                })
                .collect();
            for metric in ["latency_p50_ms", "latency_p95_ms"] {
                let e = estimate(metric, &cases, true, 0.05, trial as u64, NO_TIMEOUT);
                let (Some(p), Some(ci)) = (e.p_value, e.ci) else {
                    continue;
                };
                let excludes_zero = ci[0] > 0.0 || ci[1] < 0.0;
                assert_eq!(
                    p < 0.05,
                    excludes_zero,
                    "{metric}, trial {trial}: p {p}, interval {ci:?}"
                );
                // The relative change's too (a relative margin's table shows it).
                if let Some(r) = e.relative_ci {
                    let excludes_zero = r[0] > 0.0 || r[1] < 0.0;
                    assert_eq!(
                        p < 0.05,
                        excludes_zero,
                        "{metric}, trial {trial}: p {p}, relative {r:?}"
                    );
                }
                // Where they agree, the interval is still the bootstrap's; count the others.
                let q = if metric == "latency_p50_ms" { 0.5 } else { 0.95 };
                let units: Vec<(Vec<f64>, Vec<f64>)> = cases
                    .iter()
                    .map(|c| {
                        let arm = |calls: &[Call]| calls.iter().filter_map(|c| c.latency_ms.get()).collect();
                        (arm(&c.baseline), arm(&c.candidate))
                    })
                    .collect();
                let seed = trial as u64 ^ crate::stats::fnv1a(metric.bytes());
                let drawn = quantile_draws(&units, q, seed, false);
                let agreeing = agreeing_interval(&units, q, seed, 0.05, &drawn);
                disagreed_before += usize::from(agreeing.difference.is_some());
                disagreed_before += usize::from(agreeing.ratio.is_some());
            }
        }
        assert!(
            disagreed_before > 0,
            "no trial had the bootstrap and the test disagree: the test proves nothing"
        );
    }

    #[test]
    fn quantiles_are_over_calls_and_errors_count_at_the_timeout() {
        // Two repeats per case: one fast call and one slow one. The p95 of per-case means would
        // hide the slow calls; over calls it sees them.
        let cases: Vec<CaseResult> = (0..20)
            .map(|i| {
                let b = vec![timed(0, 100.0 + i as f64), timed(1, 1000.0 + i as f64)];
                let c = vec![timed(0, 100.0 + i as f64), timed(1, 1000.0 + i as f64)];
                case(i, b, c)
            })
            .collect();
        let e = estimate("latency_p95_ms", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.estimand), (Test::SignFlip, Estimand::QuantileDifference));
        // numpy.quantile([100+i for i in range(20)] + [1000+i for i in range(20)], 0.95) = 1017.05
        close(e.baseline, 1017.05, 1e-9);
        close(e.delta, 0.0, 1e-12);
        assert_eq!(e.min_units, 100);
        // An errored candidate call counts at the candidate's timeout (here 30 s), so a faster
        // candidate that times out on its slowest calls is not called faster.
        let mut with_errors = cases.clone();
        for c in with_errors.iter_mut().take(2) {
            c.candidate[1].set_error(Some("timed out after 30000 ms".into()));
            c.candidate[1].latency_ms = crate::results::Latency::NONE;
        }
        let e = estimate("latency_p95_ms", &with_errors, true, 0.05, 1, [60_000, 30_000]);
        // numpy.quantile([100+i for i in range(20)] + [1000+i for i in range(2, 20)] + [30000]*2,
        // 0.95) = 2468.0499999999174
        close(e.candidate, 2468.05, 1e-6);
        assert!(e.delta.unwrap() > 0.0);
    }

    #[test]
    fn cached_calls_have_no_latency_of_this_run() {
        let cases: Vec<CaseResult> = (0..12)
            .map(|i| {
                let mut b = timed(0, 300.0);
                b.cached = i < 4;
                case(i, vec![b], vec![timed(0, 350.0)])
            })
            .collect();
        let e = estimate("latency_p50_ms", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.n, e.left_out), (8, 4));
        // Cached in both arms (a warm cache, the re-timed cases only sent): left out too, so
        // the report says the comparison rests on the cases timed.
        let mut both = cases.clone();
        for c in &mut both[4..7] {
            c.baseline[0].cached = true;
            c.candidate[0].cached = true;
        }
        let e = estimate("latency_p50_ms", &both, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.n, e.left_out), (5, 7));
        // Cost still counts cached calls (at list price): a warm cache cannot make an arm look
        // cheaper.
        assert_eq!(estimate("cost_per_request", &cases, true, 0.05, 1, NO_TIMEOUT).n, 12);
    }

    #[test]
    fn groups_are_the_unit_of_inference() {
        // Ten cases in five groups of two; the differences are those of stats::ttest's
        // reference, so the clustered test is statsmodels' cluster-robust t (p 0.0394).
        let b = [1.2, 0.8, 1.5, 2.0, 0.9, 1.1, 1.7, 1.3, 0.6, 1.0];
        let c = [1.4, 0.7, 1.9, 2.6, 1.0, 1.0, 2.2, 1.5, 0.8, 1.3];
        let groups = ["a", "a", "b", "b", "b", "c", "d", "d", "e", "e"];
        let cases: Vec<CaseResult> = (0..10)
            .map(|i| CaseResult {
                text: CaseText::new(&format!("c{i}"), Some(groups[i]), ""),
                ..case(
                    i,
                    vec![call(0, true, Some(b[i]), 0.0)],
                    vec![call(0, true, Some(c[i]), 0.0)],
                )
            })
            .collect();
        let e = estimate("judge", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.n, e.cases, e.grouped), (5, 10, true));
        close(e.p_value, 0.039_386_952_156_984_914, 1e-12);
        // Binary outcomes in groups are clustered means, not McNemar.
        assert_eq!(
            estimate("pass_rate", &cases, true, 0.05, 1, NO_TIMEOUT).test,
            Test::PairedT
        );
    }

    #[test]
    fn candidate_only_and_empty_metrics() {
        let cases: Vec<CaseResult> = (0..5)
            .map(|i| case(i, vec![], vec![call(0, true, None, 0.01)]))
            .collect();
        let e = estimate("pass_rate", &cases, false, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.n, e.candidate), (Test::None, 5, Some(1.0)));
        let e = estimate("judge", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.n, e.delta), (Test::None, 0, None));
    }

    #[test]
    fn least_consistent_cases_come_first_and_fully_consistent_ones_are_not_listed() {
        let with = |c: f64| {
            let mut call = call(0, true, None, 0.0);
            call.scores
                .insert(crate::metrics::CONSISTENCY.to_owned(), Score::Number(c));
            call
        };
        let case = |id: &str, base: &[f64], cand: &[f64]| CaseResult {
            text: CaseText::new(id, None, ""),
            baseline: base.iter().map(|c| with(*c)).collect(),
            candidate: cand.iter().map(|c| with(*c)).collect(),
            flip: None,
        };
        let cases = vec![
            case("steady", &[1.0, 1.0], &[1.0, 1.0]),
            case("drifts", &[1.0, 1.0], &[0.4, 0.6]),
            case("noisy", &[0.2, 0.2], &[0.9, 0.9]),
            case("mild", &[0.9, 0.9], &[0.8, 0.8]),
        ];
        let listed: Vec<(String, Option<f64>, Option<f64>)> = least_consistent(&cases)
            .into_iter()
            .map(|c| (c.id, c.baseline, c.candidate))
            .collect();
        assert_eq!(
            listed,
            vec![
                ("noisy".to_owned(), Some(0.2), Some(0.9)),
                ("drifts".to_owned(), Some(1.0), Some(0.5)),
                ("mild".to_owned(), Some(0.9), Some(0.8)),
            ]
        );
    }

    #[test]
    fn repeats_are_clusters_with_variance_components_and_flaky_cases() {
        let three = |p: [bool; 3]| -> Vec<Call> { (0..3).map(|r| call(r, p[r as usize], None, 0.01)).collect() };
        let cases = vec![
            case(0, three([true; 3]), three([true, false, true])),
            case(1, three([false; 3]), three([false; 3])),
            case(2, three([true; 3]), three([true; 3])),
        ];
        let e = estimate("pass_rate", &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((e.test, e.n), (Test::PairedT, 3));
        // Within: baseline arm 0; candidate arm pooled SS = 2/3 over N − a = 6 -> 1/9; mean 1/18.
        close(e.within_var, 1.0 / 18.0, 1e-12);
        assert_eq!(flaky_share(&cases), (Some(1.0 / 6.0), vec!["c0".to_owned()]));
        let f = estimate(FLAKY_SHARE, &cases, true, 0.05, 1, NO_TIMEOUT);
        assert_eq!((f.test, f.baseline), (Test::McnemarExact, Some(0.0)));
        close(f.candidate, 1.0 / 3.0, 1e-15);
    }

    /// `judged` judgements of `metric` per call, each at `value`, costing `cost` each.
    fn judged_call(repeat: u32, metric: &str, values: &[f64], cost: f64) -> Call {
        let judgements = values
            .iter()
            .enumerate()
            .map(|(r, v)| crate::results::Judgement {
                metric: metric.into(),
                repeat: r as u32,
                value: Some(*v),
                cost_usd: cost,
                ..Default::default()
            })
            .collect();
        Call {
            evaluation: crate::results::Evaluation {
                judgements,
                ..crate::results::Evaluation::default()
            }
            .into(),
            ..call(repeat, true, None, 0.01)
        }
    }

    #[test]
    fn judge_repeats_split_the_noise_into_case_generation_and_judge() {
        // The balanced design of `stats::variance`'s test (5 cases × 2 outputs × 3
        // judgements) in both arms, so the averaged components are its statsmodels REML ones:
        // case 0.06302077981302498, generation 0.011111077483283733, judge 0.020833345784025847.
        let data = [
            [[1.00, 0.75, 1.00], [0.75, 0.75, 0.50]],
            [[0.25, 0.50, 0.25], [0.50, 0.50, 0.75]],
            [[0.75, 1.00, 1.00], [1.00, 1.00, 0.75]],
            [[0.00, 0.25, 0.25], [0.50, 0.25, 0.25]],
            [[0.50, 0.75, 0.50], [0.25, 0.50, 0.50]],
        ];
        let arm = |outputs: &[[f64; 3]; 2]| -> Vec<Call> {
            (0..2)
                .map(|r| judged_call(r, "relevance", &outputs[r as usize], 0.001))
                .collect()
        };
        let mut cases: Vec<CaseResult> = data.iter().enumerate().map(|(i, o)| case(i, arm(o), arm(o))).collect();
        let v = estimate("relevance", &cases, true, 0.05, 1, NO_TIMEOUT)
            .variance_components
            .expect("judged three times");
        assert_eq!((v.cases, v.repeats, v.judge_repeats), (5, 2, 3));
        close(Some(v.case), 0.063_020_779_813_024_98, 1e-6);
        close(v.generation, 0.011_111_077_483_283_733, 1e-6);
        close(Some(v.judge), 0.020_833_345_784_025_847, 1e-6);
        // From those (python): V = c/5 + g/10 + j/30 -> 0.014409708570400899, and the judge's
        // share j/30/V -> 0.04819284554401004.
        close(Some(v.variance_of_mean), 0.014_409_708_570_400_899, 1e-7);
        close(Some(v.judge_share), 0.048_192_845_544_010_04, 1e-6);
        // An output costs ten judgements: k* = √((judge/2)·10 / (case + generation/2)) = 1.23,
        // so one judge repeat and more cases buy more precision than three.
        assert_eq!((v.best_judge_repeats, v.advice), (1, JudgeAdvice::MoreCases));
        assert_eq!((v.generation_cost_usd, v.judge_cost_usd), (0.01, 0.001));

        // A failed judgement leaves its case out of the balanced design, not the analysis.
        cases[0].candidate[1]
            .evaluation
            .change(|e| e.judgements[2].value = None);
        let v = estimate("relevance", &cases, true, 0.05, 1, NO_TIMEOUT)
            .variance_components
            .unwrap();
        assert_eq!(v.cases, 4);
        // Judged once per output, a metric has no judge variance to report.
        let once: Vec<CaseResult> = (0..5)
            .map(|i| {
                let one = vec![judged_call(0, "relevance", &[0.25 * i as f64], 0.001)];
                case(i, one.clone(), one)
            })
            .collect();
        assert_eq!(
            estimate("relevance", &once, true, 0.05, 1, NO_TIMEOUT).variance_components,
            None
        );
    }

    #[test]
    fn a_noisy_judge_next_to_steady_cases_asks_for_judge_repeats() {
        // Cases far apart would say "more cases"; here each output's two judgements disagree
        // by 0.5 while case means sit close: judge variance 0.125, case ≈ 0 — judge again.
        let arm = |offset: f64| vec![judged_call(0, "relevance", &[0.25 + offset, 0.75 + offset], 0.001)];
        let cases: Vec<CaseResult> = (0..6)
            .map(|i| {
                let offset = if i % 2 == 0 { 0.0 } else { 0.05 };
                case(i, arm(offset), arm(offset))
            })
            .collect();
        let v = estimate("relevance", &cases, true, 0.05, 1, NO_TIMEOUT)
            .variance_components
            .unwrap();
        assert_eq!(v.generation, None, "one output per case");
        assert_eq!(
            (v.best_judge_repeats, v.advice),
            (MAX_JUDGE_REPEATS, JudgeAdvice::MoreJudgeRepeats)
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Identical arms give no significant change for every metric type, and swapping the
        /// arms mirrors the effect, keeps the p-value, and mirrors the verdict.
        #[test]
        fn identical_arms_give_no_change_and_swaps_mirror(
            rows in proptest::collection::vec((proptest::bool::ANY, 1u8..=5, 0u8..=4, proptest::bool::ANY, 1u8..=5, 0u16..500), 2..13),
            k in 1usize..=3,
        ) {
            use crate::results::MetricVerdict;
            let cases: Vec<CaseResult> = rows
                .iter()
                .enumerate()
                .map(|(i, (pb, sb, cost, pc, sc, lat))| {
                    let b: Vec<Call> = (0..k).map(|r| Call { latency_ms: Some(100.0 + f64::from(*lat) + r as f64).into(), ..call(r as u32, *pb, Some(f64::from(*sb)), 0.01 + f64::from(*cost) / 256.0) }).collect();
                    let c: Vec<Call> = (0..k).map(|r| Call { latency_ms: Some(90.0 + f64::from(*lat) * 1.5).into(), ..call(r as u32, *pc ^ (r == 1), Some(f64::from(*sc)), 0.01 + f64::from(*cost) / 128.0) }).collect();
                    case(i, b, c)
                })
                .collect();
            let same: Vec<CaseResult> = cases.iter().map(|c| CaseResult { candidate: c.baseline.clone(), ..c.clone() }).collect();
            let swapped: Vec<CaseResult> = cases.iter().map(|c| CaseResult { baseline: c.candidate.clone(), candidate: c.baseline.clone(), ..c.clone() }).collect();
            for metric in ["pass_rate", "judge", "cost_per_request", "latency_p50_ms"] {
                let e = estimate(metric, &same, true, 0.05, 3, NO_TIMEOUT);
                let m = crate::verdict::decide(&e, None, None, 0.05, 1);
                proptest::prop_assert!(matches!(m.verdict, MetricVerdict::NoChange | MetricVerdict::TooFew), "{:?}", e);
                proptest::prop_assert!(e.p_value.is_none_or(|p| (0.0..=1.0).contains(&p)));
                let (f, s) = (estimate(metric, &cases, true, 0.05, 3, NO_TIMEOUT), estimate(metric, &swapped, true, 0.05, 3, NO_TIMEOUT));
                if let (Some(df), Some(ds)) = (f.delta, s.delta) {
                    proptest::prop_assert!((df + ds).abs() < 1e-9, "{metric}: {df} vs {ds}");
                }
                if f.test != Test::SignFlip {
                    // Closed-form intervals mirror exactly; bootstrap ones up to their resampling.
                    if let (Some(cf), Some(cs)) = (f.ci, s.ci) {
                        proptest::prop_assert!((cf[0] + cs[1]).abs() < 1e-9 && (cf[1] + cs[0]).abs() < 1e-9, "{metric}: {cf:?} vs {cs:?}");
                    }
                }
                let same_p = match (f.p_value, s.p_value) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-12,
                    (a, b) => a == b,
                };
                proptest::prop_assert!(same_p, "{metric}: {:?} vs {:?}", f.p_value, s.p_value);
                let (vf, vs) = (crate::verdict::decide(&f, None, None, 0.05, 1).verdict, crate::verdict::decide(&s, None, None, 0.05, 1).verdict);
                let mirrored = match vf {
                    MetricVerdict::Regression => MetricVerdict::Improvement,
                    MetricVerdict::Improvement => MetricVerdict::Regression,
                    v => v,
                };
                proptest::prop_assert_eq!(vs, mirrored, "{}", metric);
            }
        }
    }
}
