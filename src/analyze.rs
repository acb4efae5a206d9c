//! Per metric: paired per-case values → effect, confidence interval, p-value.
//!
//! Repeats are clusters: they are averaged per case first (repeats measure non-determinism,
//! cases are the unit of inference), and their spread is reported as the within-case variance.
//! The test and interval follow the metric's type:
//!
//! - binary, one value per case (`pass_rate` with one repeat, `flaky_share`): McNemar's exact
//!   test, Newcombe's paired interval of the difference of proportions;
//! - ordinal (integer judge scores): Wilcoxon signed-rank, Hodges–Lehmann shift and interval;
//! - continuous or per-case means (binary with repeats): Wilcoxon signed-rank, paired
//!   bootstrap interval of the mean difference;
//! - quantiles (latency p50/p95): paired bootstrap of the quantile difference;
//! - ratio metrics (`cost…`): the mean difference as above, plus a bootstrap interval of the
//!   relative change.
//!
//! Every estimate also carries the (1 − 2α) interval for equivalence (TOST), the candidate's
//! own interval (for SLOs) and the variance components.

use crate::results::{Call, CaseResult, Score};
use crate::stats;

/// Bootstrap resamples for every interval: enough that the Monte-Carlo error of a 95% bound is
/// small next to its width, cheap enough for thousands of cases.
pub const RESAMPLES: usize = 4000;

/// The built-in metric counting cases whose repeats disagree on `pass`.
pub const FLAKY_SHARE: &str = "flaky_share";

/// The statistics of one metric in one experiment, before the gate's policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub metric: String,
    pub baseline: Option<f64>,
    pub candidate: Option<f64>,
    pub delta: Option<f64>,
    pub ci: Option<[f64; 2]>,
    pub p_value: Option<f64>,
    pub test: &'static str,
    /// Paired cases used.
    pub n: usize,
    /// Smallest effect detectable at this n (two-sided α, 80% power), from the CI's width.
    pub mde: Option<f64>,
    /// What `delta` and `ci` estimate (see `MetricDetails::estimand`).
    pub estimand: &'static str,
    /// The same interval at level 1 − 2α: inside ±margin means equivalent (TOST).
    pub ci_equivalence: Option<[f64; 2]>,
    /// `candidate / baseline − 1` and its interval, for ratio metrics.
    pub relative_delta: Option<f64>,
    pub relative_ci: Option<[f64; 2]>,
    /// (1 − α) interval of the candidate's own value.
    pub candidate_ci: Option<[f64; 2]>,
    /// Variance components over cases and repeats, averaged over the arms.
    pub between_var: Option<f64>,
    pub within_var: Option<f64>,
    /// The α the intervals are at (the gate's α, or a sequential look's nominal level).
    pub ci_alpha: f64,
    /// The side the test's evidence points to: positive when the candidate is higher (for
    /// McNemar `c − b`, for Wilcoxon `W⁺ − E[W⁺]`, for the bootstrap the estimate itself).
    /// A significant test counts for the side it points to, whatever the mean does.
    pub shift: Option<f64>,
}

impl Estimate {
    fn empty(metric: &str, ci_alpha: f64) -> Self {
        Estimate {
            metric: metric.to_owned(),
            baseline: None,
            candidate: None,
            delta: None,
            ci: None,
            p_value: None,
            test: "none",
            n: 0,
            mde: None,
            estimand: "none",
            ci_equivalence: None,
            relative_delta: None,
            relative_ci: None,
            candidate_ci: None,
            between_var: None,
            within_var: None,
            ci_alpha,
            shift: None,
        }
    }
}

/// Estimates `metric` over the cases. `paired` is false for a new experiment (candidate only).
pub fn estimate(metric: &str, cases: &[CaseResult], paired: bool, alpha: f64, seed: u64) -> Estimate {
    let confidence = 1.0 - alpha;
    let quantile = quantile_of(metric);
    let mut result = Estimate::empty(metric, alpha);
    let metric_seed = seed ^ fnv1a(metric.as_bytes());

    // Arms by flag (true: candidate), averaged.
    let components = |arms: &[bool]| -> (Option<f64>, Option<f64>) {
        let per_arm: Vec<stats::VarianceComponents> = arms
            .iter()
            .filter_map(|&candidate| {
                let groups: Vec<Vec<f64>> = cases
                    .iter()
                    .map(|c| call_values(metric, if candidate { &c.candidate } else { &c.baseline }))
                    .collect();
                let refs: Vec<&[f64]> = groups.iter().map(Vec::as_slice).collect();
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
    };

    if !paired {
        let values: Vec<f64> = cases.iter().filter_map(|c| per_case(metric, &c.candidate)).collect();
        result.n = values.len();
        result.candidate = match quantile {
            Some(q) => stats::quantile(&values, q),
            None => stats::mean(&values),
        };
        result.candidate_ci = own_interval(&values, quantile, confidence, metric_seed);
        (result.between_var, result.within_var) = components(&[true]);
        return result;
    }

    let mut base = Vec::new();
    let mut cand = Vec::new();
    let mut repeats_one = true;
    for case in cases {
        if let (Some(b), Some(c)) = (per_case(metric, &case.baseline), per_case(metric, &case.candidate)) {
            base.push(b);
            cand.push(c);
            repeats_one &= case.baseline.len() <= 1 && case.candidate.len() <= 1;
        }
    }
    result.n = base.len();
    (result.between_var, result.within_var) = components(&[false, true]);
    if base.is_empty() {
        return result;
    }
    result.candidate_ci = own_interval(&cand, quantile, confidence, metric_seed);
    let kind = if quantile.is_some() {
        Kind::Quantile
    } else if is_binary(metric, cases) && (repeats_one || metric == FLAKY_SHARE) {
        Kind::Binary
    } else if is_ordinal(metric, cases) {
        Kind::Ordinal
    } else {
        Kind::Continuous
    };
    let diffs: Vec<f64> = cand.iter().zip(&base).map(|(c, b)| c - b).collect();

    match (kind, quantile) {
        (Kind::Quantile, Some(q)) => {
            result.baseline = stats::quantile(&base, q);
            result.candidate = stats::quantile(&cand, q);
            // One set of draws serves both levels (the same draws the one-level function makes).
            let draws = stats::paired_bootstrap_quantile_draws(&base, &cand, q, RESAMPLES, metric_seed);
            let main = draws.as_ref().and_then(|d| d.summary(confidence));
            result.p_value = main.as_ref().map(|b| b.p_value);
            result.ci = main.map(|b| b.ci);
            result.ci_equivalence = draws.and_then(|d| d.summary(1.0 - 2.0 * alpha)).map(|b| b.ci);
            result.test = "paired-bootstrap";
            result.estimand = "quantile-difference";
            result.shift = result.candidate.zip(result.baseline).map(|(c, b)| c - b);
        }
        (Kind::Binary, _) => {
            result.baseline = stats::mean(&base);
            result.candidate = stats::mean(&cand);
            let mut counts = stats::PairedCounts::default();
            for (b, c) in base.iter().zip(&cand) {
                match (*b > 0.5, *c > 0.5) {
                    (true, true) => counts.both += 1,
                    (true, false) => counts.baseline_only += 1,
                    (false, true) => counts.candidate_only += 1,
                    (false, false) => counts.neither += 1,
                }
            }
            result.p_value = Some(stats::mcnemar_exact(counts.baseline_only, counts.candidate_only));
            result.shift = Some(counts.candidate_only as f64 - counts.baseline_only as f64);
            result.ci = stats::newcombe_paired(counts, confidence);
            result.ci_equivalence = stats::newcombe_paired(counts, 1.0 - 2.0 * alpha);
            result.test = "mcnemar-exact";
            result.estimand = "proportion-difference";
        }
        (Kind::Ordinal, _) => {
            result.baseline = stats::mean(&base);
            result.candidate = stats::mean(&cand);
            let w = stats::wilcoxon_signed_rank(&diffs, stats::ZeroMethod::Wilcox);
            (result.p_value, result.shift) = (Some(w.p_value), Some(signed_rank_shift(&w)));
            let hl = stats::hodges_lehmann(&diffs, confidence);
            result.ci = hl.as_ref().map(|h| h.ci);
            result.ci_equivalence = stats::hodges_lehmann(&diffs, 1.0 - 2.0 * alpha).map(|h| h.ci);
            result.test = "wilcoxon-signed-rank";
            result.estimand = "hodges-lehmann-shift";
            result.delta = hl.map(|h| h.estimate);
        }
        _ => {
            result.baseline = stats::mean(&base);
            result.candidate = stats::mean(&cand);
            let w = stats::wilcoxon_signed_rank(&diffs, stats::ZeroMethod::Wilcox);
            (result.p_value, result.shift) = (Some(w.p_value), Some(signed_rank_shift(&w)));
            let draws = stats::paired_bootstrap_mean_draws(&base, &cand, RESAMPLES, metric_seed);
            result.ci = draws.as_ref().and_then(|d| d.summary(confidence)).map(|b| b.ci);
            result.ci_equivalence = draws.and_then(|d| d.summary(1.0 - 2.0 * alpha)).map(|b| b.ci);
            result.test = "wilcoxon-signed-rank";
            result.estimand = "mean-difference";
            if is_ratio(metric)
                && let Some(r) = stats::paired_bootstrap_ratio(&base, &cand, confidence, RESAMPLES, metric_seed)
            {
                result.relative_delta = Some(r.estimate);
                result.relative_ci = Some(r.ci);
            }
        }
    }
    if result.delta.is_none()
        && let (Some(b), Some(c)) = (result.baseline, result.candidate)
    {
        result.delta = Some(c - b);
    }
    if let Some(ci) = result.ci {
        result.mde = mde_from_ci(ci, result.n, alpha);
    }
    result
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Binary,
    Ordinal,
    Continuous,
    Quantile,
}

/// The per-case value of `metric` for one arm's calls: the mean over repeats, or for
/// [`FLAKY_SHARE`] whether the repeats disagree on `pass` (needs two repeats).
pub fn per_case(metric: &str, calls: &[Call]) -> Option<f64> {
    if metric == FLAKY_SHARE {
        return is_flaky(calls).map(|f| f64::from(u8::from(f)));
    }
    stats::mean(&call_values(metric, calls))
}

/// Whether a case's repeats disagree on `pass`; `None` with fewer than two repeats.
pub fn is_flaky(calls: &[Call]) -> Option<bool> {
    if calls.len() < 2 {
        return None;
    }
    let passed = calls.iter().filter(|c| c.passed()).count();
    Some(passed != 0 && passed != calls.len())
}

/// Share of (case, arm) pairs with repeats that disagree on `pass`, and the flaky case ids.
pub fn flaky_share(cases: &[CaseResult]) -> (Option<f64>, Vec<String>) {
    let mut groups = 0usize;
    let mut flaky = 0usize;
    let mut ids = Vec::new();
    for case in cases {
        let mut any = false;
        for arm in [&case.baseline, &case.candidate] {
            if let Some(f) = is_flaky(arm) {
                groups += 1;
                flaky += usize::from(f);
                any |= f;
            }
        }
        if any {
            ids.push(case.id.clone());
        }
    }
    ((groups > 0).then(|| flaky as f64 / groups as f64), ids)
}

fn call_values(metric: &str, calls: &[Call]) -> Vec<f64> {
    if metric == FLAKY_SHARE {
        return per_case(metric, calls).into_iter().collect();
    }
    calls.iter().filter_map(|c| call_value(metric, c)).collect()
}

/// The (1 − α) interval of one arm's own value (mean or quantile), by bootstrap over cases.
fn own_interval(values: &[f64], quantile: Option<f64>, confidence: f64, seed: u64) -> Option<[f64; 2]> {
    let zeros = vec![0.0; values.len()];
    let boot = match quantile {
        Some(q) => stats::paired_bootstrap_quantile(&zeros, values, q, confidence, RESAMPLES, seed ^ 1),
        None => stats::paired_bootstrap_mean(&zeros, values, confidence, RESAMPLES, seed ^ 1),
    };
    boot.map(|b| b.ci)
}

/// The value a call contributes to `metric`, if any. Errored calls fail `pass_rate`, count in
/// `error_rate`, and have no latency or cost.
pub fn call_value(metric: &str, call: &Call) -> Option<f64> {
    let ok = call.error.is_none();
    match metric {
        "pass_rate" => Some(if call.passed() { 1.0 } else { 0.0 }),
        "error_rate" => Some(if ok { 0.0 } else { 1.0 }),
        "cost_per_request" => ok.then_some(call.list_cost_usd),
        m if quantile_of(m).is_some() => call.latency_ms.filter(|_| ok),
        m => call.scores.get(m).map(|s| s.as_f64()),
    }
}

/// `latency_p95_ms` → 0.95.
pub fn quantile_of(metric: &str) -> Option<f64> {
    let p = metric.strip_prefix("latency_p")?.strip_suffix("_ms")?;
    let q: f64 = p.parse().ok()?;
    (q > 0.0 && q < 100.0).then_some(q / 100.0)
}

/// Ratio metrics get an interval of their relative change: a "10%" margin on cost means
/// candidate / baseline − 1.
fn is_ratio(metric: &str) -> bool {
    metric.starts_with("cost")
}

fn is_binary(metric: &str, cases: &[CaseResult]) -> bool {
    match metric {
        "pass_rate" | "error_rate" | FLAKY_SHARE => true,
        "cost_per_request" => false,
        m => cases
            .iter()
            .flat_map(|c| c.baseline.iter().chain(&c.candidate))
            .filter_map(|call| call.scores.get(m))
            .all(|s| matches!(s, Score::Bool(_))),
    }
}

/// A scorer metric whose every value is a whole number (a 1–5 judge score), not all 0/1
/// booleans: ranks, not means, are what such a scale supports.
fn is_ordinal(metric: &str, cases: &[CaseResult]) -> bool {
    if matches!(metric, "pass_rate" | "error_rate" | "cost_per_request" | FLAKY_SHARE) {
        return false;
    }
    let mut values = cases
        .iter()
        .flat_map(|c| c.baseline.iter().chain(&c.candidate))
        .filter_map(|call| call.scores.get(metric))
        .peekable();
    values.peek().is_some() && values.all(|s| matches!(s, Score::Number(x) if x.fract() == 0.0 && x.abs() < 1e6))
}

/// `W⁺ − E[W⁺]` with `E[W⁺] = n(n + 1)/4` over the non-zero differences: positive when the
/// candidate's differences rank higher.
fn signed_rank_shift(w: &stats::Wilcoxon) -> f64 {
    let n = w.n as f64;
    w.w_plus - n * (n + 1.0) / 4.0
}

/// The standard error implied by a CI's width, turned into the effect a test at this n would
/// detect with 80% power.
fn mde_from_ci(ci: [f64; 2], n: usize, alpha: f64) -> Option<f64> {
    let sd = sd_from_ci(ci, n, alpha)?;
    stats::mde_paired(sd, n, alpha, 0.8)
}

/// The per-case standard deviation a CI of this width implies: `width / (2·z₁₋α/₂) · √n`. Works
/// for every interval type (bootstrap, Newcombe, Hodges–Lehmann) alike.
pub fn sd_from_ci(ci: [f64; 2], n: usize, alpha: f64) -> Option<f64> {
    let z = statrs_z(1.0 - alpha / 2.0)?;
    let se = (ci[1] - ci[0]) / (2.0 * z);
    if se <= 0.0 || n == 0 {
        return None;
    }
    Some(se * (n as f64).sqrt())
}

fn statrs_z(p: f64) -> Option<f64> {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).ok().map(|n| n.inverse_cdf(p))
}

/// FNV-1a: a stable hash to give each metric its own bootstrap stream.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::results::Tokens;

    #[test]
    fn quantile_names() {
        assert_eq!(quantile_of("latency_p95_ms"), Some(0.95));
        assert_eq!(quantile_of("latency_p50_ms"), Some(0.5));
        assert_eq!(quantile_of("latency_p100_ms"), None);
        assert_eq!(quantile_of("cost_per_request"), None);
    }

    fn call(repeat: u32, passed: bool, score: Option<f64>, cost: f64) -> Call {
        let mut scores = BTreeMap::from([("pass".to_owned(), Score::Bool(passed))]);
        if let Some(s) = score {
            scores.insert("judge".to_owned(), Score::Number(s));
        }
        Call {
            repeat,
            output: Some(String::new()),
            error: None,
            latency_ms: Some(100.0 + f64::from(repeat)),
            tokens: Tokens::default(),
            cost_usd: cost,
            list_cost_usd: cost,
            cached: false,
            attempts: 1,
            provider: None,
            fell_back: false,
            scores,
            failures: Vec::new(),
        }
    }

    fn case(id: usize, baseline: Vec<Call>, candidate: Vec<Call>) -> CaseResult {
        CaseResult {
            id: format!("c{id}"),
            input: String::new(),
            baseline,
            candidate,
            flip: None,
        }
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
        let e = estimate("pass_rate", &cases, true, 0.05, 1);
        assert_eq!(
            (e.test, e.estimand, e.n),
            ("mcnemar-exact", "proportion-difference", 50)
        );
        assert!((e.p_value.unwrap() - 0.109_375).abs() < 1e-12, "{e:?}");
        let ci = e.ci.unwrap();
        assert!(
            (ci[0] + 0.242_597_144_764_299_08).abs() < 1e-12 && (ci[1] - 0.006_408_365_545_708_255_6).abs() < 1e-12
        );
        assert!((e.delta.unwrap() + 0.12).abs() < 1e-12);
        let eq = e.ci_equivalence.unwrap();
        assert!(eq[0] > ci[0] && eq[1] < ci[1], "the 90% interval is inside the 95% one");
    }

    #[test]
    fn repeats_are_clusters_with_variance_components_and_flaky_cases() {
        // Three repeats per case; case 0 is flaky in the candidate.
        let cases = vec![
            case(
                0,
                vec![
                    call(0, true, None, 0.01),
                    call(1, true, None, 0.01),
                    call(2, true, None, 0.01),
                ],
                vec![
                    call(0, true, None, 0.01),
                    call(1, false, None, 0.01),
                    call(2, true, None, 0.01),
                ],
            ),
            case(
                1,
                vec![
                    call(0, false, None, 0.01),
                    call(1, false, None, 0.01),
                    call(2, false, None, 0.01),
                ],
                vec![
                    call(0, false, None, 0.01),
                    call(1, false, None, 0.01),
                    call(2, false, None, 0.01),
                ],
            ),
            case(
                2,
                vec![
                    call(0, true, None, 0.01),
                    call(1, true, None, 0.01),
                    call(2, true, None, 0.01),
                ],
                vec![
                    call(0, true, None, 0.01),
                    call(1, true, None, 0.01),
                    call(2, true, None, 0.01),
                ],
            ),
        ];
        let e = estimate("pass_rate", &cases, true, 0.05, 1);
        assert_eq!((e.test, e.n), ("wilcoxon-signed-rank", 3));
        // Within: baseline arm 0; candidate arm pooled SS = 2/3 over N − a = 6 -> 1/9; mean 1/18.
        assert!((e.within_var.unwrap() - 1.0 / 18.0).abs() < 1e-12, "{e:?}");
        assert_eq!(flaky_share(&cases), (Some(1.0 / 6.0), vec!["c0".to_owned()]));
        let f = estimate(FLAKY_SHARE, &cases, true, 0.05, 1);
        assert_eq!((f.test, f.baseline), ("mcnemar-exact", Some(0.0)));
        assert!((f.candidate.unwrap() - 1.0 / 3.0).abs() < 1e-15, "{f:?}");
    }

    #[test]
    fn ordinal_scores_use_hodges_lehmann_and_cost_gets_a_relative_interval() {
        // Judge scores 1..5: baseline s, candidate s + 1 on every other case.
        let cases: Vec<CaseResult> = (0..20)
            .map(|i| {
                let s = f64::from(i % 5 + 1);
                let bump = f64::from(i % 2);
                case(
                    i as usize,
                    vec![call(0, true, Some(s), 0.010)],
                    vec![call(0, true, Some((s + bump).min(5.0)), 0.012)],
                )
            })
            .collect();
        let e = estimate("judge", &cases, true, 0.05, 1);
        assert_eq!((e.test, e.estimand), ("wilcoxon-signed-rank", "hodges-lehmann-shift"));
        let [lo, hi] = e.ci.unwrap();
        assert!(lo <= e.delta.unwrap() && e.delta.unwrap() <= hi, "{e:?}");
        let c = estimate("cost_per_request", &cases, true, 0.05, 1);
        // Every case costs 20% more: the relative change is exactly 0.2 in every resample.
        assert!((c.relative_delta.unwrap() - 0.2).abs() < 1e-9, "{c:?}");
        let [lo, hi] = c.relative_ci.unwrap();
        assert!((lo - 0.2).abs() < 1e-9 && (hi - 0.2).abs() < 1e-9);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

        /// Identical arms give "no detectable change" for every metric type, and swapping the
        /// arms mirrors the effect and its interval.
        #[test]
        fn identical_arms_give_no_change_and_swaps_mirror(
            rows in proptest::collection::vec((proptest::bool::ANY, 1u8..=5, 0u8..=4, proptest::bool::ANY, 1u8..=5), 2..25),
            k in 1usize..=3,
        ) {
            let cases: Vec<CaseResult> = rows
                .iter()
                .enumerate()
                .map(|(i, (pb, sb, cost, pc, sc))| {
                    let b: Vec<Call> = (0..k).map(|r| call(r as u32, *pb, Some(f64::from(*sb)), 0.01 + f64::from(*cost) / 256.0)).collect();
                    let c: Vec<Call> = (0..k).map(|r| call(r as u32, *pc ^ (r == 1), Some(f64::from(*sc)), 0.01 + f64::from(*cost) / 128.0)).collect();
                    case(i, b, c)
                })
                .collect();
            let same: Vec<CaseResult> = cases.iter().map(|c| CaseResult { candidate: c.baseline.clone(), ..c.clone() }).collect();
            let swapped: Vec<CaseResult> = cases.iter().map(|c| CaseResult { baseline: c.candidate.clone(), candidate: c.baseline.clone(), ..c.clone() }).collect();
            for metric in ["pass_rate", "judge", "cost_per_request", "latency_p95_ms"] {
                let e = estimate(metric, &same, true, 0.05, 3);
                let m = crate::verdict::decide(&e, None, None, 0.05);
                proptest::prop_assert_eq!(m.verdict, crate::results::MetricVerdict::NoChange, "{:?}", e);
                proptest::prop_assert!(e.p_value.is_none_or(|p| (0.0..=1.0).contains(&p)));
                let (f, s) = (estimate(metric, &cases, true, 0.05, 3), estimate(metric, &swapped, true, 0.05, 3));
                if let (Some(df), Some(ds)) = (f.delta, s.delta) {
                    proptest::prop_assert!((df + ds).abs() < 1e-9, "{metric}: {df} vs {ds}");
                }
                if f.test != "paired-bootstrap" && f.estimand != "mean-difference" {
                    // Closed-form intervals mirror exactly; bootstrap ones up to their resampling.
                    if let (Some(cf), Some(cs)) = (f.ci, s.ci) {
                        proptest::prop_assert!((cf[0] + cs[1]).abs() < 1e-9 && (cf[1] + cs[0]).abs() < 1e-9, "{metric}: {cf:?} vs {cs:?}");
                    }
                }
                proptest::prop_assert_eq!(f.p_value, s.p_value, "{}", metric);
                // The test's evidence points the other way, so a regression becomes an
                // improvement and vice versa.
                if let (Some(hf), Some(hs)) = (f.shift, s.shift) {
                    proptest::prop_assert!((hf + hs).abs() < 1e-9, "{metric}: shift {hf} vs {hs}");
                }
                let (vf, vs) = (crate::verdict::decide(&f, None, None, 0.05).verdict, crate::verdict::decide(&s, None, None, 0.05).verdict);
                let mirrored = match vf {
                    crate::results::MetricVerdict::Regression => crate::results::MetricVerdict::Improvement,
                    crate::results::MetricVerdict::Improvement => crate::results::MetricVerdict::Regression,
                    v => v,
                };
                proptest::prop_assert_eq!(vs, mirrored, "{}", metric);
            }
        }
    }
}
