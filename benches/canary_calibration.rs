//! Calibration of the canary's anytime-valid verdicts: a simulated week of hourly looks, with
//! no change (how often is a good canary rolled back?) and with a true regression of the
//! margin's size (how soon is it caught?), against a fixed-horizon test read at every look
//! ("peeking") and read once at the end. The table is in docs/statistics.md ("Canary").
//!
//! ```text
//! cargo bench --bench canary_calibration                  # 400 weeks per scenario
//! cargo bench --bench canary_calibration -- --weeks 100
//! ```

use promptgate::canary::analyse::{Data, Settings, analyse};
use promptgate::canary::records::{Record, Records};
use promptgate::canary::result::CanaryVerdict;
use promptgate::metrics::CanaryMetric;
use promptgate::results::Direction;
use promptgate::stats::{self, Rng};
use promptgate::suite::Margin;
use promptgate::suite::canary::CanaryGate;

const HOURS: usize = 168;
const PER_HOUR: usize = 60;
const ALPHA: f64 = 0.05;

#[derive(Clone, Copy)]
struct Scenario {
    metric: &'static str,
    /// Baseline error rate, or median latency in ms.
    base: f64,
    margin: Margin,
    /// The canary's true change: + on the error rate, × on latency.
    change: f64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let weeks: usize = args
        .iter()
        .position(|a| a == "--weeks")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    println!(
        "{weeks} simulated weeks per row; {PER_HOUR} requests per arm per hour, a look every hour for {HOURS} hours, α = {ALPHA}"
    );
    println!(
        "| metric | true change | anytime: rolled back | anytime: median hours to roll back | fixed test read hourly: rolled back | fixed test once at 168 h: rolled back | significantly worse at some look: anytime | same: fixed test read hourly |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let scenarios = [
        (
            "error_rate 2%, margin 1 pp",
            "none",
            Scenario {
                metric: "error_rate",
                base: 0.02,
                margin: Margin::Absolute(0.01),
                change: 0.0,
            },
        ),
        (
            "error_rate 2%, margin 1 pp",
            "+1 pp (the margin)",
            Scenario {
                metric: "error_rate",
                base: 0.02,
                margin: Margin::Absolute(0.01),
                change: 0.01,
            },
        ),
        (
            "error_rate 2%, margin 1 pp",
            "+2 pp",
            Scenario {
                metric: "error_rate",
                base: 0.02,
                margin: Margin::Absolute(0.01),
                change: 0.02,
            },
        ),
        (
            "latency_p95_ms, margin 10%",
            "none",
            Scenario {
                metric: "latency_p95_ms",
                base: 400.0,
                margin: Margin::Relative(0.10),
                change: 1.0,
            },
        ),
        (
            "latency_p95_ms, margin 10%",
            "+10% (the margin)",
            Scenario {
                metric: "latency_p95_ms",
                base: 400.0,
                margin: Margin::Relative(0.10),
                change: 1.10,
            },
        ),
        (
            "latency_p95_ms, margin 10%",
            "+20%",
            Scenario {
                metric: "latency_p95_ms",
                base: 400.0,
                margin: Margin::Relative(0.10),
                change: 1.20,
            },
        ),
    ];
    for (name, change, scenario) in scenarios {
        let mut anytime = 0usize;
        let mut hours_to_detect = Vec::new();
        let mut peeking = 0usize;
        let mut once = 0usize;
        let (mut anytime_alarms, mut peeking_alarms) = (0usize, 0usize);
        for week in 0..weeks {
            let outcome = simulate(scenario, 1_000 + week as u64);
            if let Some(h) = outcome.anytime {
                anytime += 1;
                hours_to_detect.push(h as f64);
            }
            peeking += usize::from(outcome.peeking);
            once += usize::from(outcome.once);
            anytime_alarms += usize::from(outcome.anytime_alarm);
            peeking_alarms += usize::from(outcome.peeking_alarm);
        }
        let share = |k: usize| format!("{:.1}%", 100.0 * k as f64 / weeks as f64);
        let median = stats::quantile(&hours_to_detect, 0.5).map_or("—".to_owned(), |h| format!("{h:.0}"));
        println!(
            "| {name} | {change} | {} | {median} | {} | {} | {} | {} |",
            share(anytime),
            share(peeking),
            share(once),
            share(anytime_alarms),
            share(peeking_alarms)
        );
    }
}

struct Outcome {
    /// The hour of the first rollback by promptgate's anytime-valid verdict.
    anytime: Option<usize>,
    /// A fixed-horizon test read every hour rolled back at some look.
    peeking: bool,
    /// The fixed-horizon test read once, at the end of the week.
    once: bool,
    /// Significantly worse (of any size) at some look: anytime-valid, and fixed-horizon.
    anytime_alarm: bool,
    peeking_alarm: bool,
}

fn simulate(s: Scenario, seed: u64) -> Outcome {
    let mut rng = Rng::new(seed);
    let gate = CanaryGate {
        metric: s.metric.to_owned(),
        direction: Direction::Lower,
        margin: s.margin,
        alpha: ALPHA,
        blocking: true,
        slo: None,
        explicit: true,
    };
    let gates = [gate];
    let mut records = Records::default();
    let mut outcome = Outcome {
        anytime: None,
        peeking: false,
        once: false,
        anytime_alarm: false,
        peeking_alarm: false,
    };
    for hour in 1..=HOURS {
        for _ in 0..PER_HOUR {
            records.baseline.push(request(&mut rng, s, false));
            records.canary.push(request(&mut rng, s, true));
        }
        let a = analyse(
            &Data::Records(&records),
            &Settings {
                gates: &gates,
                min_samples: 100,
                span_hours: Some(hour as f64),
                timeout_ms: 60_000.0,
            },
        );
        if outcome.anytime.is_none() && a.verdict == CanaryVerdict::Rollback {
            outcome.anytime = Some(hour);
        }
        let m = &a.metrics[0];
        outcome.anytime_alarm |= m.p_adjusted.is_some_and(|p| p < ALPHA) && m.delta.is_some_and(|d| d > 0.0);
        let (fixed, alarm) = fixed_horizon_rollback(&records, s);
        outcome.peeking |= fixed;
        outcome.peeking_alarm |= alarm;
        if hour == HOURS {
            outcome.once = fixed;
        }
    }
    outcome
}

fn request(rng: &mut Rng, s: Scenario, canary: bool) -> Record {
    let (u, v) = (1.0 - rng.unit(), rng.unit());
    let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
    let (rate, scale) = match (s.metric, canary) {
        ("error_rate", true) => (s.base + s.change, 1.0),
        ("error_rate", false) => (s.base, 1.0),
        (_, true) => (0.01, s.change),
        (_, false) => (0.01, 1.0),
    };
    let median = if s.metric == "error_rate" { 400.0 } else { s.base };
    Record {
        time: 0.0,
        latency_ms: Some(median * scale * (0.35 * z).exp()),
        error: rng.unit() < rate,
        ..Record::default()
    }
}

/// The same estimate and margin, judged by its fixed-horizon 95% interval: rolled back when the
/// interval excludes zero on the worse side and the estimate passes the margin; and whether it
/// was significantly worse at all.
fn fixed_horizon_rollback(records: &Records, s: Scenario) -> (bool, bool) {
    let z = 1.959_963_984_540_054;
    match CanaryMetric::of(s.metric) {
        Some(CanaryMetric::ErrorRate) => {
            let count = |arm: &[Record]| arm.iter().filter(|r| r.error).count() as u64;
            let (nb, nc) = (records.baseline.len() as u64, records.canary.len() as u64);
            let Some(e) = stats::agresti_caffo(count(&records.canary), nc, count(&records.baseline), nb, 0.95) else {
                return (false, false);
            };
            let margin = match s.margin {
                Margin::Absolute(m) => m,
                Margin::Relative(r) => r * count(&records.baseline) as f64 / nb as f64,
            };
            (e.ci[0] > 0.0 && e.estimate > margin, e.ci[0] > 0.0)
        }
        _ => {
            let sorted = |arm: &[Record]| {
                let mut v: Vec<f64> = arm.iter().filter_map(|r| r.latency_ms).collect();
                v.sort_unstable_by(f64::total_cmp);
                v
            };
            let (b, c) = (sorted(&records.baseline), sorted(&records.canary));
            let (Some(qb), Some(qc), Some(sb), Some(sc)) = (
                stats::quantile_sorted(&b, 0.95),
                stats::quantile_sorted(&c, 0.95),
                stats::maritz_jarrett_se(&b, 0.95),
                stats::maritz_jarrett_se(&c, 0.95),
            ) else {
                return (false, false);
            };
            let d = qc - qb;
            let margin = match s.margin {
                Margin::Absolute(m) => m,
                Margin::Relative(r) => r * qb,
            };
            let significant = d - z * sb.hypot(sc) > 0.0;
            (significant && d > margin, significant)
        }
    }
}
