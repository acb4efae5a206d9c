//! Calibration harness: simulated pull requests with a known truth, judged by the product's own
//! path — `verdict::judge` on `ExperimentResult`s under a `verdict::Policy`, the function
//! `promptgate run` and `promptgate merge` call; sequential rows loop the looks as
//! `promptgate run` does (`verdict::sequential::Design`, `settled_experiments`) — to check that
//! the error rates are what docs/statistics.md says they are. The simulated PRs are judged
//! without the power plan (`verdict::Plan::VerdictsOnly`: it changes no verdict and costs
//! milliseconds per judgement); the pilot that sets each row's n is judged with it.
//!
//! `cargo bench --bench calibration` (release build). Prints markdown tables; each row is one
//! design at one n and one true change, over many simulated PRs, with one Monte-Carlo standard
//! error beside each rate. Environment:
//! - `PROMPTGATE_CALIBRATION_SIMS`: PRs per row (default 2000; latency rows use a quarter);
//! - `PROMPTGATE_CALIBRATION_ONLY`: run only the designs whose name contains this text.
//!
//! Columns: "judged" is the share of PRs in which the gated metric got a verdict (not "too few
//! cases to judge"); "regression" the share called a regression; "significantly worse" the
//! share where the metric's test rejected on the bad side (regression or minor regression: the
//! false-alarm rate under no change, which must stay at or below α/2 = 2.5% — the bad side of a
//! two-sided test at α = 5% — and the power the planner promises at a true change of the
//! margin); "non-inferior" the share that ended proving non-inferiority (at a true change of
//! the margin a false "safe", which must stay at or below α/2); "calls" the share of the fixed
//! design's calls a sequential run made.
//!
//! n is the product's own plan: a pilot of 20,000 cases (4,000 for latency) simulated under no
//! change is judged, and
//! its `cases_needed` (the one power model of `verdict::decide`: the test's exact power at a
//! change of the margin, from the pilot's spread) is the n of the rows; sequential rows use
//! ⌈R·n⌉ with R from `stats::inflation`.

use std::collections::BTreeMap;

use promptgate::results::{
    ArmInfo, Call, CaseResult, CaseText, Direction, ExperimentNoise, ExperimentResult, ExperimentStatus,
    ExperimentVerdict, MetricResult, MetricVerdict, Score, Scores,
};
use promptgate::stats::{self, Rng};
use promptgate::suite::{GateSpec, Margin};
use promptgate::verdict::{self, Policy, sequential};

const ALPHA: f64 = 0.05;
const POWER: f64 = 0.8;
const LOOKS: u32 = 4;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Sim {
    /// Case i passes with probability πᵢ ~ Beta(4, 1); the candidate's is πᵢ − δ.
    Binary,
    /// True case score μᵢ ~ N(0.6, 0.15²), call noise N(0, 0.1²); candidate μᵢ − δ.
    Score,
    /// Cost per call: baseline bᵢ = 0.002·e^{0.5·Z}; the candidate is 5% cheaper on 85% of the
    /// cases and twice as dear on 15% (the skew of answers that are mostly shorter, a few much
    /// longer), scaled so that the mean rises by δ (relative); ±5% noise per call in both arms.
    SkewedCost,
    /// The mirror image: the candidate is 10% dearer on 85% of the cases and a third of the
    /// price on 15% (it drops rare expensive answers), scaled so that the mean rises by δ: the
    /// differences are left-skewed.
    LeftSkewedCost,
    /// Latency per call: e^{μᵢ + 0.3·Z} ms with μᵢ ~ N(ln 400, 0.4²); candidate × (1 + δ).
    Latency,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    name: &'static str,
    sim: Sim,
    metric: &'static str,
    direction: Direction,
    margin: Margin,
    repeats: u32,
    /// Cases per group, sharing a group effect on the difference (sd `tau`).
    group: Option<(usize, f64)>,
}

impl Scenario {
    /// The margin as a true change δ in the simulation's own terms.
    fn margin_change(&self) -> f64 {
        match self.margin {
            Margin::Absolute(m) | Margin::Relative(m) => m,
        }
    }

    fn gate(&self) -> GateSpec {
        GateSpec {
            metric: self.metric.to_owned(),
            direction: self.direction,
            margin: self.margin,
            alpha: ALPHA,
            blocking: true,
            slo: None,
            require_non_inferiority: false,
            require_equivalence: false,
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            gates: vec![self.gate()],
            pending: Vec::new(),
            alpha: ALPHA,
            seed: 7,
            max_error_rate: 1.0,
        }
    }
}

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        name: "binary, k = 1 (McNemar)",
        sim: Sim::Binary,
        metric: "pass_rate",
        direction: Direction::Higher,
        margin: Margin::Absolute(0.08),
        repeats: 1,
        group: None,
    },
    Scenario {
        name: "score, k = 1 (paired t)",
        sim: Sim::Score,
        metric: "quality",
        direction: Direction::Higher,
        margin: Margin::Absolute(0.03),
        repeats: 1,
        group: None,
    },
    Scenario {
        name: "binary, k = 3 (paired t on per-case means)",
        sim: Sim::Binary,
        metric: "pass_rate",
        direction: Direction::Higher,
        margin: Margin::Absolute(0.05),
        repeats: 3,
        group: None,
    },
    Scenario {
        name: "skewed cost, 10% margin (bootstrap-t)",
        sim: Sim::SkewedCost,
        metric: "cost_per_request",
        direction: Direction::Lower,
        margin: Margin::Relative(0.10),
        repeats: 1,
        group: None,
    },
    Scenario {
        name: "latency p95, 15% margin (sign-flip, bootstrap)",
        sim: Sim::Latency,
        metric: "latency_p95_ms",
        direction: Direction::Lower,
        margin: Margin::Relative(0.15),
        repeats: 1,
        group: None,
    },
    Scenario {
        name: "score in groups of 5, τ = 0.05 (clustered t)",
        sim: Sim::Score,
        metric: "quality",
        direction: Direction::Higher,
        margin: Margin::Absolute(0.03),
        repeats: 1,
        group: Some((5, 0.05)),
    },
    Scenario {
        name: "binary in groups of 5, τ = 0.3 (clustered t)",
        sim: Sim::Binary,
        metric: "pass_rate",
        direction: Direction::Higher,
        margin: Margin::Absolute(0.08),
        repeats: 1,
        group: Some((5, 0.3)),
    },
    // Last, so that adding it left the seeds (and rows) of the designs above unchanged.
    Scenario {
        name: "left-skewed cost, 10% margin (bootstrap-t)",
        sim: Sim::LeftSkewedCost,
        metric: "cost_per_request",
        direction: Direction::Lower,
        margin: Margin::Relative(0.10),
        repeats: 1,
        group: None,
    },
];

/// `n` simulated cases at true change `change` (worse by δ: lower quality, dearer, slower).
fn simulate(s: &Scenario, rng: &mut Rng, n: usize, change: f64) -> Vec<CaseResult> {
    let k = s.repeats;
    let mut group_effect = 0.0;
    (0..n)
        .map(|i| {
            let group = s.group.map(|(size, tau)| {
                if i % size == 0 {
                    group_effect = tau * normal(rng);
                }
                format!("g{}", i / size)
            });
            let (baseline, candidate): (Vec<Call>, Vec<Call>) = match s.sim {
                Sim::Binary if s.group.is_some() => {
                    // The group effect pushes the arms apart symmetrically around a case's
                    // chance p ~ U(0.25, 0.75), where clamping at 0 or 1 almost never bites: a
                    // true null, not a drop disguised by the clamp.
                    let p = 0.25 + 0.5 * rng.unit();
                    let (pb, pc) = (
                        (p + group_effect / 2.0).clamp(0.0, 1.0),
                        (p - group_effect / 2.0 - change).clamp(0.0, 1.0),
                    );
                    (0..k)
                        .map(|r| (pass_call(r, rng.unit() < pb), pass_call(r, rng.unit() < pc)))
                        .unzip()
                }
                Sim::Binary => {
                    let p = beta41(rng);
                    let q = (p - change).clamp(0.0, 1.0);
                    (0..k)
                        .map(|r| (pass_call(r, rng.unit() < p), pass_call(r, rng.unit() < q)))
                        .unzip()
                }
                Sim::Score => {
                    let mu = 0.6 + 0.15 * normal(rng);
                    (0..k)
                        .map(|r| {
                            (
                                score_call(r, mu + 0.1 * normal(rng)),
                                score_call(r, mu - change - group_effect + 0.1 * normal(rng)),
                            )
                        })
                        .unzip()
                }
                Sim::SkewedCost | Sim::LeftSkewedCost => {
                    let b = 0.002 * (0.5 * normal(rng)).exp();
                    // 0.85·0.95 + 0.15·2 = 1.1075 (0.85·1.1 + 0.15/3 = 0.985): scale so the mean
                    // factor is 1 + δ.
                    let (most, few, mean) = match s.sim {
                        Sim::SkewedCost => (0.95, 2.0, 1.1075),
                        _ => (1.1, 1.0 / 3.0, 0.985),
                    };
                    let factor = if rng.unit() < 0.85 { most } else { few } * (1.0 + change) / mean;
                    (0..k)
                        .map(|r| {
                            let noise = |rng: &mut Rng| 1.0 + 0.05 * normal(rng);
                            (cost_call(r, b * noise(rng)), cost_call(r, b * factor * noise(rng)))
                        })
                        .unzip()
                }
                Sim::Latency => {
                    let mu = 400f64.ln() + 0.4 * normal(rng);
                    (0..k)
                        .map(|r| {
                            let b = (mu + 0.3 * normal(rng)).exp();
                            let c = (mu + 0.3 * normal(rng)).exp() * (1.0 + change);
                            (latency_call(r, b), latency_call(r, c))
                        })
                        .unzip()
                }
            };
            CaseResult {
                text: CaseText::new(&format!("c{i}"), group.as_deref(), ""),
                baseline,
                candidate,
                flip: None,
            }
        })
        .collect()
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

fn pass_call(repeat: u32, passed: bool) -> Call {
    call(repeat, Scores::from([("pass", Score::Bool(passed))]))
}

fn score_call(repeat: u32, score: f64) -> Call {
    call(
        repeat,
        Scores::from([("pass", Score::Bool(true)), ("quality", Score::Number(score))]),
    )
}

fn cost_call(repeat: u32, cost: f64) -> Call {
    Call {
        cost_usd: cost,
        list_cost_usd: cost,
        ..pass_call(repeat, true)
    }
}

fn latency_call(repeat: u32, ms: f64) -> Call {
    Call {
        latency_ms: Some(ms).into(),
        ..pass_call(repeat, true)
    }
}

/// A call with scores and nothing else: no latency and no cost, so the metrics the scenario
/// does not study cost the harness nothing.
fn call(repeat: u32, scores: Scores) -> Call {
    Call {
        repeat,
        attempts: 1,
        scores,
        ..Call::default()
    }
}

fn arm() -> ArmInfo {
    ArmInfo {
        variant: "v.yaml".to_owned(),
        version: None,
        model: "m".to_owned(),
        prompt: "p.md".to_owned(),
        temperature: None,
        max_tokens: None,
        top_p: None,
        sampling: promptgate::chat::Sampling::default(),
        evaluation_metrics: BTreeMap::new(),
        timeout_ms: promptgate::results::DEFAULT_TIMEOUT_MS,
    }
}

fn experiment(s: &Scenario, cases: Vec<CaseResult>) -> ExperimentResult {
    ExperimentResult {
        name: s.name.to_owned(),
        status: ExperimentStatus::Changed,
        affected_by: Vec::new(),
        verdict: ExperimentVerdict::Pass,
        reason: String::new(),
        provider: String::new(),
        baseline: Some(arm()),
        candidate: Some(arm()),
        repeats: s.repeats,
        metrics: Vec::new(),
        cases,
        dataset_cases: Vec::new(),
        noise: ExperimentNoise::default(),
        changed: Default::default(),
    }
}

/// The gated metric's decision on `cases`, through `verdict::judge` (at a sequential `look`
/// when given), with its groups or without them (`ignore_groups`, to show what clustering
/// buys).
fn judge(
    s: &Scenario,
    cases: &[CaseResult],
    look: Option<&stats::Look>,
    ignore_groups: bool,
    plan: verdict::Plan,
) -> MetricResult {
    let mut cases = cases.to_vec();
    if ignore_groups {
        for c in &mut cases {
            c.text = CaseText::new(c.id(), None, c.input());
        }
    }
    let mut experiments = [experiment(s, cases)];
    verdict::judge_with(&mut experiments, &s.policy(), look, plan);
    let [e] = experiments;
    e.metrics
        .into_iter()
        .find(|m| m.name == s.metric)
        .expect("the gated metric is judged")
}

/// The product's plan for a true change of the margin, from a pilot of 4,000 cases under no
/// change (what a team has before a PR: an A/A run, or a PR that changed nothing).
/// In cases: the plan counts units, which are groups when the dataset groups its cases.
fn plan(s: &Scenario) -> usize {
    // A large pilot, so that the row measures the planner and not one pilot's luck (a
    // quantile's pilot is smaller: each of its resamples sorts every call).
    let size = if s.sim == Sim::Latency { 4000 } else { 20_000 };
    let mut rng = Rng::new(0x9e37_79b9);
    let pilot = simulate(s, &mut rng, size, 0.0);
    let units = judge(s, &pilot, None, false, verdict::Plan::Power)
        .details
        .cases_needed
        .expect("the pilot plans a number of cases");
    units * s.group.map_or(1, |(size, _)| size)
}

#[derive(Default)]
struct Tally {
    sims: usize,
    judged: usize,
    regression: usize,
    worse: usize,
    non_inferior: usize,
    calls: usize,
}

impl Tally {
    fn add(&mut self, m: &MetricResult, calls: usize) {
        self.sims += 1;
        self.judged += usize::from(!matches!(m.verdict, MetricVerdict::TooFew | MetricVerdict::NoData));
        self.regression += usize::from(m.verdict == MetricVerdict::Regression);
        self.worse += usize::from(matches!(
            m.verdict,
            MetricVerdict::Regression | MetricVerdict::MinorRegression
        ));
        self.non_inferior += usize::from(m.non_inferior);
        self.calls += calls;
    }

    fn rate(&self, count: usize) -> String {
        let p = count as f64 / self.sims.max(1) as f64;
        format!("{p:.4} ± {:.4}", (p * (1.0 - p) / self.sims.max(1) as f64).sqrt())
    }
}

/// `sims` PRs of `n` cases at true change `change`, fixed or sequential (looks at equal shares,
/// stopping when `settled_experiments` says so, as `promptgate run` does).
fn run(s: &Scenario, n: usize, change: f64, sims: usize, sequential: bool, ignore_groups: bool, seed: u64) -> Tally {
    let design = sequential.then(|| sequential::Design::new(ALPHA, LOOKS));
    let mut tally = Tally::default();
    for sim in 0..sims {
        let mut rng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(sim as u64));
        let cases = simulate(s, &mut rng, n, change);
        let Some(design) = &design else {
            tally.add(&judge(s, &cases, None, ignore_groups, verdict::Plan::VerdictsOnly), n);
            continue;
        };
        for k in 0..design.fractions.len() {
            let m = sequential::upto(design.fractions[k], n);
            let look = design.look(k);
            let mut experiments = [experiment(s, cases[..m].to_vec())];
            verdict::judge_with(
                &mut experiments,
                &s.policy(),
                look.as_ref(),
                verdict::Plan::VerdictsOnly,
            );
            let last = k + 1 == design.fractions.len();
            if sequential::settled_experiments(&experiments, design.levels[k]) || last {
                let [e] = experiments;
                let metric = e.metrics.into_iter().find(|x| x.name == s.metric).expect("judged");
                tally.add(&metric, m);
                break;
            }
        }
    }
    tally
}

fn row(name: &str, n: usize, change: f64, s: &Scenario, stopping: &str, t: &Tally, reference: usize) {
    let change_text = if change == 0.0 {
        "none".to_owned()
    } else {
        let relative = matches!(s.margin, Margin::Relative(_));
        let size = change / s.margin_change();
        if relative {
            format!("+{:.0}% ({size}× margin)", change * 100.0)
        } else {
            format!("−{change:.2} ({size}× margin)")
        }
    };
    println!(
        "| {name} | {n} | {change_text} | {stopping} | {:.3} | {} | {} | {:.4} | {:.0}% |",
        t.judged as f64 / t.sims.max(1) as f64,
        t.rate(t.regression),
        t.rate(t.worse),
        t.non_inferior as f64 / t.sims.max(1) as f64,
        100.0 * t.calls as f64 / (t.sims.max(1) * reference) as f64
    );
}

fn main() {
    let sims: usize = std::env::var("PROMPTGATE_CALIBRATION_SIMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let only = std::env::var("PROMPTGATE_CALIBRATION_ONLY").ok();
    let inflation =
        stats::inflation(ALPHA, &sequential::Design::new(ALPHA, LOOKS).fractions, POWER).expect("valid looks");
    println!(
        "α = {ALPHA}; {sims} simulated PRs per row ({} for latency); ± is one Monte-Carlo standard error; \
         n is the product's plan for a change of the margin; sequential n = ⌈R·n⌉, R = {inflation:.3}.\n",
        sims / 4
    );
    println!(
        "| design | n | true change | stopping | judged | regression | significantly worse | non-inferior | calls |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (si, s) in SCENARIOS.iter().enumerate() {
        if only.as_deref().is_some_and(|o| !s.name.contains(o)) {
            continue;
        }
        let sims = if s.sim == Sim::Latency { sims / 4 } else { sims };
        let m = s.margin_change();
        let n = plan(s);
        let n_seq = ((n as f64) * inflation).ceil() as usize;
        let seed = |r: usize| (si * 100 + r) as u64;
        for (ri, change) in [0.0, m, 2.0 * m].into_iter().enumerate() {
            row(
                s.name,
                n,
                change,
                s,
                "fixed",
                &run(s, n, change, sims, false, false, seed(ri)),
                n,
            );
            if matches!(s.sim, Sim::Binary | Sim::Score) && s.group.is_none() {
                let t = run(s, n_seq, change, sims, true, false, seed(10 + ri));
                row(s.name, n_seq, change, s, "sequential (4 looks)", &t, n);
            }
            if s.group.is_some() && change == 0.0 {
                let t = run(s, n, change, sims, false, true, seed(ri));
                row(s.name, n, change, s, "fixed, groups ignored", &t, n);
            }
        }
        // Small samples: below the minimum n no verdict; at and above it, the error rates hold.
        let small: &[usize] = match s.sim {
            Sim::Latency => &[20, 50, 100],
            Sim::SkewedCost | Sim::LeftSkewedCost => &[3, 5, 10, 20, 30, 40, 50],
            _ => &[3, 5, 10, 20],
        };
        if s.group.is_none() {
            for &few in small {
                for (ri, change) in [0.0, m].into_iter().enumerate() {
                    let t = run(s, few, change, sims, false, false, seed(20 + few + ri));
                    row(s.name, few, change, s, "fixed, small n", &t, few);
                }
            }
        }
    }
    if only.is_none() {
        family_wise(sims);
    }
}

/// Several gated metrics under no change, through `verdict::judge`: `pass` (one call,
/// McNemar) and a continuous `quality` (paired t), independent, both blocking with margin 0 so
/// that any significant change is a verdict; Holm across them, on repeated p-values at each look
/// when sequential. The share of PRs with some metric called changed (regression, minor
/// regression or improvement: two-sided) must stay at or below α.
fn family_wise(sims: usize) {
    let n = 300;
    let gate = |metric: &str| GateSpec {
        metric: metric.to_owned(),
        direction: Direction::Higher,
        margin: Margin::Absolute(0.0),
        alpha: ALPHA,
        blocking: true,
        slo: None,
        require_non_inferiority: false,
        require_equivalence: false,
    };
    let policy = Policy {
        gates: vec![gate("pass_rate"), gate("quality")],
        pending: Vec::new(),
        alpha: ALPHA,
        seed: 7,
        max_error_rate: 1.0,
    };
    let s = SCENARIOS[1];
    println!(
        "\nSeveral metrics, no change ({sims} simulated PRs of {n} cases; `pass_rate` (McNemar) and `quality` \
         (paired t) both blocking, margin 0; Holm across them, on repeated p-values when sequential):\n"
    );
    println!("| stopping | some metric called changed (family-wise, two-sided) |");
    println!("|---|---|");
    for sequential in [false, true] {
        let design = sequential::Design::new(ALPHA, if sequential { LOOKS } else { 1 });
        let mut alarms = 0usize;
        for sim in 0..sims {
            let mut rng = Rng::new(0xfa11_u64.wrapping_mul(1_000_003).wrapping_add(sim as u64));
            let cases: Vec<CaseResult> = (0..n)
                .map(|i| {
                    let p = beta41(&mut rng);
                    let mu = 0.6 + 0.15 * normal(&mut rng);
                    let mut one = || {
                        let passed = rng.unit() < p;
                        let quality = mu + 0.1 * normal(&mut rng);
                        call(
                            0,
                            Scores::from([("pass", Score::Bool(passed)), ("quality", Score::Number(quality))]),
                        )
                    };
                    let (baseline, candidate) = (vec![one()], vec![one()]);
                    CaseResult {
                        text: CaseText::new(&format!("c{i}"), None, ""),
                        baseline,
                        candidate,
                        flip: None,
                    }
                })
                .collect();
            let mut alarm = false;
            for k in 0..design.fractions.len() {
                let m = sequential::upto(design.fractions[k], n);
                let look = if sequential { design.look(k) } else { None };
                let mut experiments = [experiment(&s, cases[..m].to_vec())];
                verdict::judge_with(&mut experiments, &policy, look.as_ref(), verdict::Plan::VerdictsOnly);
                alarm |= experiments[0].metrics.iter().filter(|x| x.gated).any(|x| {
                    matches!(
                        x.verdict,
                        MetricVerdict::Regression | MetricVerdict::MinorRegression | MetricVerdict::Improvement
                    )
                });
                if sequential::settled_experiments(&experiments, design.levels[k]) {
                    break;
                }
            }
            alarms += usize::from(alarm);
        }
        let rate = alarms as f64 / sims as f64;
        println!(
            "| {} | {rate:.4} ± {:.4} |",
            if sequential { "sequential (4 looks)" } else { "fixed" },
            (rate * (1.0 - rate) / sims as f64).sqrt()
        );
    }
}
