//! Calibration harness: simulated pull requests with a known truth, run through the gate's
//! own code (`analyze::estimate` → `gate::decide`), to check that the error rates are what
//! docs/statistics.md says they are.
//!
//! `cargo bench --bench calibration` (release build; ~minutes on two cores). Prints a markdown
//! table: for each design, the share of simulated PRs the gate called a regression, with its
//! Monte-Carlo standard error, and the share of the fixed design's planned calls a run made.
//! `PROMPTGATE_CALIBRATION_SIMS` overrides the number of PRs per row (default 2000);
//! `PROMPTGATE_CALIBRATION_R` the sequential inflation factor (default: `stats::inflation`).
//!
//! Designs (each simulated PR draws fresh cases):
//! - binary, one repeat: case i passes with probability πᵢ ~ Beta(4, 1) (mean 0.8) in the
//!   baseline and πᵢ − δ in the candidate; McNemar + Newcombe.
//! - continuous, one repeat: true case score μᵢ ~ N(0.6, 0.15²), call noise N(0, 0.1²);
//!   candidate μᵢ − δ. Wilcoxon + paired bootstrap.
//! - binary, three repeats: as the binary design with three calls per case and arm; per-case
//!   means, Wilcoxon + paired bootstrap (repeats are clusters).
//!
//! n is planned for a drop equal to the margin with 80% power at two-sided α, from the truth
//! **under that drop** (what a pilot run at that effect would show), not under no change — a
//! real drop adds discordant pairs, so the no-change spread underplans:
//! - binary, k = 1 (McNemar): the smallest n at which the exact test's power reaches 80% (and
//!   stays there over the next 2%), with ψ the discordant-pair probability under the drop
//!   (`stats::cases_needed_mcnemar_exact`; Connor's 1987 closed form underplans by ~5%);
//! - continuous and binary k = 3 (per-case means, Wilcoxon): the normal-approximation paired
//!   formula `n = ((z₁₋α/₂ + z₀.₈)·σ_d / δ)²` divided by the signed-rank test's efficiency 3/π,
//!   σ_d the sd of the per-case (mean) differences under the drop
//!   (`stats::cases_needed_signed_rank`).
//!
//! Sequential rows plan `n_seq = R·n` with R the inflation factor of the product's design
//! (two-sided Lan–DeMets boundaries with O'Brien–Fleming-type spending, four equal looks, each
//! look's test at the boundary's nominal level), `stats::inflation`: R = 1.031 (Jennison &
//! Turnbull 2000, §2.6 and Table 2.3 give 1.024 for exact O'Brien–Fleming boundaries). One
//! gated metric, so the product's repeated p-value is below α exactly when the p-value is below
//! the look's nominal level; the harness compares with the nominal level directly.

use std::collections::BTreeMap;

use promptgate::analyze;
use promptgate::results::{Call, CaseResult, Direction, MetricResult, MetricVerdict, Score, Tokens};
use promptgate::stats::{self, Rng};
use promptgate::suite::{GateSpec, Margin};
use promptgate::verdict as gate;

const ALPHA: f64 = 0.05;
/// Power the plan is for.
const POWER: f64 = 0.8;
/// Looks of the sequential design, as fractions of the planned cases.
const LOOKS: [f64; 4] = [0.25, 0.5, 0.75, 1.0];

#[derive(Clone, Copy, Debug)]
enum Design {
    Binary,
    Continuous,
    Repeated,
}

impl Design {
    fn name(self) -> &'static str {
        match self {
            Design::Binary => "binary, k = 1",
            Design::Continuous => "continuous, k = 1",
            Design::Repeated => "binary, k = 3",
        }
    }
    fn repeats(self) -> u32 {
        match self {
            Design::Repeated => 3,
            _ => 1,
        }
    }
    fn margin(self) -> f64 {
        match self {
            Design::Binary => 0.08,
            Design::Continuous => 0.03,
            Design::Repeated => 0.05,
        }
    }
    fn metric(self) -> &'static str {
        match self {
            Design::Continuous => "quality",
            _ => "pass_rate",
        }
    }
}

/// One case's calls in both arms, with the candidate's truth shifted by `-drop`.
fn simulate_case(design: Design, rng: &mut Rng, drop: f64, id: usize) -> CaseResult {
    let k = design.repeats();
    let (base, cand): (Vec<Call>, Vec<Call>) = match design {
        Design::Binary | Design::Repeated => {
            let p = beta41(rng);
            let q = (p - drop).clamp(0.0, 1.0);
            (0..k)
                .map(|r| (bool_call(r, rng.unit() < p), bool_call(r, rng.unit() < q)))
                .unzip()
        }
        Design::Continuous => {
            let mu = 0.6 + 0.15 * normal(rng);
            (0..k)
                .map(|r| {
                    (
                        score_call(r, mu + 0.1 * normal(rng)),
                        score_call(r, mu - drop + 0.1 * normal(rng)),
                    )
                })
                .unzip()
        }
    };
    CaseResult {
        id: format!("c{id}"),
        input: String::new(),
        baseline: base,
        candidate: cand,
        flip: None,
    }
}

/// Beta(4, 1) by inversion: F(x) = x⁴.
fn beta41(rng: &mut Rng) -> f64 {
    rng.unit().powf(0.25)
}

/// Standard normal by Box–Muller.
fn normal(rng: &mut Rng) -> f64 {
    let u = 1.0 - rng.unit();
    let v = rng.unit();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn bool_call(repeat: u32, passed: bool) -> Call {
    call(repeat, BTreeMap::from([("pass".to_owned(), Score::Bool(passed))]))
}

fn score_call(repeat: u32, score: f64) -> Call {
    call(
        repeat,
        BTreeMap::from([
            ("pass".to_owned(), Score::Bool(true)),
            ("quality".to_owned(), Score::Number(score)),
        ]),
    )
}

fn call(repeat: u32, scores: BTreeMap<String, Score>) -> Call {
    Call {
        repeat,
        output: None,
        error: None,
        latency_ms: Some(100.0),
        tokens: Tokens::default(),
        cost_usd: 0.0,
        list_cost_usd: 0.0,
        cached: false,
        attempts: 1,
        provider: None,
        fell_back: false,
        scores,
        failures: Vec::new(),
    }
}

fn gate_spec(design: Design, alpha: f64) -> GateSpec {
    blocking_gate(design.metric(), design.margin(), alpha)
}

/// A blocking "higher is better" gate with an absolute margin.
fn blocking_gate(metric: &str, margin: f64, alpha: f64) -> GateSpec {
    GateSpec {
        metric: metric.to_owned(),
        direction: Direction::Higher,
        margin: Margin::Absolute(margin),
        alpha,
        blocking: true,
        slo: None,
        require_non_inferiority: false,
        require_equivalence: false,
    }
}

/// The gate's verdict, and whether its test found a significant drop (p < α, evidence on the
/// bad side: the gate's definition of "significant").
fn decide(design: Design, cases: &[CaseResult], alpha: f64, seed: u64) -> (MetricResult, bool) {
    let e = analyze::estimate(design.metric(), cases, true, alpha, seed);
    let significant_drop = e.p_value.is_some_and(|p| p < alpha) && e.shift.is_some_and(|s| s < 0.0);
    (
        gate::decide(&e, Some(&gate_spec(design, alpha)), None, alpha),
        significant_drop,
    )
}

/// The truth under a drop of `drop`, by simulation: the sd of the per-case (mean) differences
/// and the discordant-pair probability (share of cases whose per-case values differ).
struct Truth {
    sd: f64,
    discordance: f64,
}

fn truth(design: Design, drop: f64) -> Truth {
    let mut rng = Rng::new(12345);
    let diffs: Vec<f64> = (0..200_000)
        .map(|i| {
            let c = simulate_case(design, &mut rng, drop, i);
            let m = |calls: &[Call]| analyze::per_case(design.metric(), calls).unwrap_or(0.0);
            m(&c.candidate) - m(&c.baseline)
        })
        .collect();
    Truth {
        sd: stats::std_dev(&diffs).unwrap_or(0.0),
        discordance: diffs.iter().filter(|d| **d != 0.0).count() as f64 / diffs.len() as f64,
    }
}

/// Fixed-design n for a drop equal to the margin at 80% power, from the truth under that drop.
fn plan_fixed(design: Design) -> usize {
    let m = design.margin();
    let t = truth(design, m);
    match design {
        Design::Binary => stats::cases_needed_mcnemar_exact(t.discordance, m, ALPHA, POWER),
        _ => stats::cases_needed_signed_rank(t.sd, m, ALPHA, POWER),
    }
    .expect("a plan")
}

struct Row {
    /// Share of runs that ended proving non-inferiority (at a drop of the margin: a false
    /// "safe", which must stay at or below α/2).
    non_inferior: f64,
    regression: f64,
    detected: f64,
    calls_share: f64,
}

/// Runs `sims` simulated PRs; `sequential` uses the O'Brien–Fleming looks.
/// `calls_share` is relative to `reference` (the fixed design's n).
fn run(design: Design, n: usize, reference: usize, drop: f64, sims: usize, sequential: bool, seed: u64) -> Row {
    let looks: Vec<(usize, f64)> = if sequential {
        let alphas = stats::nominal_levels(ALPHA, &LOOKS).expect("valid looks");
        LOOKS
            .iter()
            .zip(alphas)
            .map(|(t, a)| (((n as f64) * t).ceil() as usize, a))
            .collect()
    } else {
        vec![(n, ALPHA)]
    };
    let (mut regressions, mut detected, mut non_inferior, mut calls) = (0usize, 0usize, 0usize, 0usize);
    for sim in 0..sims {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(sim as u64));
        let cases: Vec<CaseResult> = (0..n).map(|i| simulate_case(design, &mut rng, drop, i)).collect();
        let (mut used, mut found, mut last) = (n, false, None);
        for &(m, alpha) in &looks {
            let (r, significant_drop) = decide(design, &cases[..m], alpha, sim as u64);
            used = m;
            found |= significant_drop;
            // The product's stopping rule: a regression, or non-inferiority where the look's
            // level allows accepting. A significant drop inside the margin runs on.
            let stop = gate::sequential_settled(std::slice::from_ref(&r), gate::accepts_at(alpha));
            last = Some(r);
            if stop {
                break;
            }
        }
        let last = last.expect("at least one look");
        regressions += usize::from(last.verdict == MetricVerdict::Regression);
        non_inferior += usize::from(last.non_inferior);
        detected += usize::from(found);
        calls += used;
    }
    Row {
        non_inferior: non_inferior as f64 / sims as f64,
        regression: regressions as f64 / sims as f64,
        detected: detected as f64 / sims as f64,
        calls_share: calls as f64 / (sims * reference) as f64,
    }
}

/// Several gated metrics under no change, through the product's own path: repeated p-values at
/// each look (`stats::Look`), Holm across the metrics (`gate::adjust_at`), each gate's
/// decision and the stopping rule. Each case has a binary `pass` (Beta(4, 1) truth, one call)
/// and a continuous `quality` (as the continuous design), independent; both gated with
/// margin 0 so that a significant change is a verdict. Returns the share of PRs in which some
/// metric was called a regression or an improvement at some look (the family-wise error
/// rate, two-sided: must stay at or below α), and the share of calls made.
fn family_wise(n: usize, sims: usize, sequential: bool) -> (f64, f64) {
    let gates: Vec<GateSpec> = ["pass", "quality"]
        .iter()
        .map(|m| blocking_gate(m, 0.0, ALPHA))
        .collect();
    let fractions: Vec<f64> = if sequential { LOOKS.to_vec() } else { vec![1.0] };
    let (mut alarms, mut calls) = (0usize, 0usize);
    for sim in 0..sims {
        let mut rng = Rng::new(0xfa11_u64.wrapping_mul(1_000_003).wrapping_add(sim as u64));
        let cases: Vec<CaseResult> = (0..n)
            .map(|i| {
                let p = beta41(&mut rng);
                let mu = 0.6 + 0.15 * normal(&mut rng);
                let mut arm = || {
                    let passed = rng.unit() < p;
                    let quality = mu + 0.1 * normal(&mut rng);
                    call(
                        0,
                        BTreeMap::from([
                            ("pass".to_owned(), Score::Bool(passed)),
                            ("quality".to_owned(), Score::Number(quality)),
                        ]),
                    )
                };
                let (baseline, candidate) = (vec![arm()], vec![arm()]);
                CaseResult {
                    id: format!("c{i}"),
                    input: String::new(),
                    baseline,
                    candidate,
                    flip: None,
                }
            })
            .collect();
        let (mut alarm, mut used) = (false, n);
        for k in 0..fractions.len() {
            let m = ((n as f64) * fractions[k]).ceil() as usize;
            let look = sequential.then(|| stats::Look::new(fractions[..=k].to_vec()).expect("valid looks"));
            let level = look.as_ref().map_or(ALPHA, |l| l.nominal(ALPHA));
            let estimates: Vec<_> = gates
                .iter()
                .map(|g| analyze::estimate(&g.metric, &cases[..m], true, level, sim as u64))
                .collect();
            let flags: Vec<_> = estimates.iter().map(|e| (e, true)).collect();
            let adjusted = gate::adjust_at(&flags, look.as_ref());
            let results: Vec<MetricResult> = estimates
                .iter()
                .zip(&gates)
                .zip(adjusted)
                .map(|((e, g), p)| gate::decide(e, Some(g), p, ALPHA))
                .collect();
            used = m;
            alarm |= results.iter().any(|r| r.verdict != MetricVerdict::NoChange);
            if gate::sequential_settled(&results, gate::accepts_at(level)) {
                break;
            }
        }
        alarms += usize::from(alarm);
        calls += used;
    }
    (alarms as f64 / sims as f64, calls as f64 / (sims * n) as f64)
}

fn main() {
    let sims: usize = std::env::var("PROMPTGATE_CALIBRATION_SIMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    // `PROMPTGATE_CALIBRATION_R` overrides the inflation factor; `PROMPTGATE_CALIBRATION_POWER_ONLY`
    // runs only the sequential rows at drop = margin (to check a candidate R quickly).
    let inflation = std::env::var("PROMPTGATE_CALIBRATION_R")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| stats::inflation(ALPHA, &LOOKS, POWER).expect("valid looks"));
    let power_only = std::env::var_os("PROMPTGATE_CALIBRATION_POWER_ONLY").is_some();
    // `PROMPTGATE_CALIBRATION_FAMILY_ONLY` runs only the several-metrics check.
    let family_only = std::env::var_os("PROMPTGATE_CALIBRATION_FAMILY_ONLY").is_some();
    if family_only {
        print_family_wise(sims);
        return;
    }
    println!(
        "α = {ALPHA}; {sims} simulated PRs per no-change and 1× margin row, {} per 2× margin row; ± is one Monte-Carlo standard error; \
         sequential n = ⌈R·n⌉ with R = {inflation:.3}; calls made are a share of the fixed design's n.\n",
        sims / 2
    );
    println!(
        "| design | n (planned) | true drop | stopping | regression verdicts | significant drop | non-inferior | calls made |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (di, design) in [Design::Binary, Design::Continuous, Design::Repeated]
        .into_iter()
        .enumerate()
    {
        let m = design.margin();
        let n_fixed = plan_fixed(design);
        let n_seq = ((n_fixed as f64) * inflation).ceil() as usize;
        let rows = [
            (0.0, false),
            (0.0, true),
            (m, false),
            (m, true),
            (2.0 * m, false),
            (2.0 * m, true),
        ];
        for (ri, (drop, sequential)) in rows.into_iter().enumerate() {
            if power_only && !(sequential && drop == m) {
                continue;
            }
            // The no-change rows carry the error-rate claim and the drop = margin rows the power
            // claim: every simulated PR (a standard error of 0.9% at 80%). The 2× rows measure
            // savings, and half as many do.
            let sims = if drop > m { sims / 2 } else { sims };
            let se = |p: f64| (p * (1.0 - p) / sims as f64).sqrt();
            let n = if sequential { n_seq } else { n_fixed };
            let r = run(design, n, n_fixed, drop, sims, sequential, (di * 10 + ri) as u64);
            println!(
                "| {} | {n} | {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.4} | {:.0}% |",
                design.name(),
                if drop == 0.0 {
                    "none".to_owned()
                } else {
                    format!("{:.2} ({}× margin)", drop, drop / m)
                },
                if sequential { "sequential (4 looks)" } else { "fixed" },
                r.regression,
                se(r.regression),
                r.detected,
                se(r.detected),
                r.non_inferior,
                100.0 * r.calls_share
            );
        }
    }
    if !power_only {
        print_family_wise(sims);
    }
}

fn print_family_wise(sims: usize) {
    let n = 300;
    println!(
        "\nSeveral metrics, no change ({sims} simulated PRs of {n} cases; `pass` (McNemar) and `quality` \
         (Wilcoxon) both gated, margin 0; Holm across them, on repeated p-values when sequential):\n"
    );
    println!("| stopping | some metric called changed (family-wise, two-sided) | calls made |");
    println!("|---|---|---|");
    for sequential in [false, true] {
        let (rate, share) = family_wise(n, sims, sequential);
        println!(
            "| {} | {rate:.4} ± {:.4} | {:.0}% |",
            if sequential { "sequential (4 looks)" } else { "fixed" },
            (rate * (1.0 - rate) / sims as f64).sqrt(),
            100.0 * share
        );
    }
}
