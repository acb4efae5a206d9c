//! Every canary metric's estimate, its anytime-valid interval and p-value, Holm across the
//! blocking metrics, and the verdict: promote, hold (with how much more is needed) or
//! rollback (naming what failed). Pure: data in, decisions out.
//!
//! Each metric reports the quantity its test inverts (`docs/statistics.md`, "Canary"):
//! quantile differences with Maritz–Jarrett standard errors, the Hodges–Lehmann shift for
//! `latency_shift_ms`, Agresti–Caffo differences for rates, the Welch difference for quality,
//! the ratio of means for cost. The estimate and its standard error then go through the
//! normal-mixture confidence sequence, so the same decision rule holds at every look.

use std::collections::BTreeMap;

use super::records::{Record, Records};
use super::result::{ArmCounts, CanaryMetric, CanaryVerdict, MetricVerdict, Needed, Slo};
use crate::format;
use crate::metrics::CanaryMetric as Kind;
use crate::results::Direction;
use crate::stats::{self, Estimate};
use crate::suite::Margin;
use crate::suite::canary::CanaryGate;

mod exact;
use exact::{EXACT_TEST, Route, exact_needs, sequence_of};

/// One metric's per-step values of both arms (Prometheus), each with its time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub baseline: Vec<(f64, f64)>,
    pub canary: Vec<(f64, f64)>,
}

/// What a canary compares: request records, or aggregated series per metric.
pub enum Data<'a> {
    Records(&'a Records),
    Series(&'a BTreeMap<String, Series>),
}

/// The decision's settings.
pub struct Settings<'a> {
    pub gates: &'a [CanaryGate],
    pub min_samples: u64,
    /// Hours the canary's data spans, for "how long until a decision"; `None` without times.
    pub span_hours: Option<f64>,
    /// Where an errored request without a logged latency counts in latency (ms).
    pub timeout_ms: f64,
}

/// The metrics and the verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Analysis {
    pub metrics: Vec<CanaryMetric>,
    pub verdict: CanaryVerdict,
    pub failing: Vec<String>,
    pub needed: Option<Needed>,
    pub reason: String,
    /// Default gates left out because the data does not carry their quantity.
    pub left_out: Vec<String>,
    /// Blocking gates these records cannot measure however many more arrive (a model without
    /// a price, a field an arm's requests never carry), with why: the config's to fix.
    pub unmeasurable: Vec<(String, String)>,
}

/// The scale a metric is tested on: its own unit, or the log of the canary/baseline ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    Identity,
    LogRatio,
}

impl Scale {
    fn to_delta(self, x: f64) -> f64 {
        match self {
            Scale::Identity => x,
            Scale::LogRatio => x.exp() - 1.0,
        }
    }
}

/// A metric measured: both arms' values and the estimate of their difference.
struct Measured {
    baseline: f64,
    canary: f64,
    estimate: Estimate,
    scale: Scale,
    /// Standard error of the canary's own value (for SLOs).
    own_se: Option<f64>,
    n: ArmCounts,
    test: &'static str,
    /// Each arm one value throughout (a synthetic or perfectly steady source): no standard
    /// error describes it, but the difference is exact, with this permutation p-value
    /// (`stats::separation_p`).
    exact_p: Option<f64>,
    /// The canary's values are one value throughout (its objective is then that value's), set
    /// whatever the baseline's are.
    canary_constant: bool,
}

impl Measured {
    /// The change reported: a rate's is the canary's rate less the baseline's, as the two are
    /// shown (its test and interval use Agresti–Caffo's adjusted proportions, whose difference
    /// is a little nearer 0); every other metric's is its test's own estimate.
    fn delta(&self) -> f64 {
        match self.test {
            RATE_TEST => self.canary - self.baseline,
            _ => self.scale.to_delta(self.estimate.estimate),
        }
    }
}

/// The test of a rate's change.
const RATE_TEST: &str = "difference of proportions (Agresti–Caffo)";

/// Compares the two arms on every gate and decides.
pub fn analyse(data: &Data<'_>, settings: &Settings<'_>) -> Analysis {
    // Requests per arm (records; none counted for series): a metric not measured says whether
    // an arm has none yet.
    let requests = match data {
        Data::Records(r) => ArmCounts {
            baseline: r.baseline.len() as u64,
            canary: r.canary.len() as u64,
        },
        Data::Series(_) => ArmCounts::default(),
    };
    let mut metrics = Vec::new();
    let mut left_out = Vec::new();
    let mut measured = Vec::new();
    for gate in settings.gates {
        let Some(kind) = Kind::of(&gate.metric) else { continue };
        let unmeasurable = match data {
            Data::Records(records) => unmeasurable(records, kind),
            Data::Series(_) => None,
        };
        let m = match unmeasurable {
            Some(_) => None,
            None => measure(data, kind, gate, settings.timeout_ms),
        };
        // A default gate is left out only when no record of either arm carries its quantity:
        // one the baseline's requests carry and the canary's do not (none yet, or a field the
        // new version stopped logging) is kept, `no data`, and a blocking one holds.
        if m.is_none() && !gate.explicit && !carried(data, kind) {
            left_out.push(gate.metric.clone());
            continue;
        }
        measured.push((gate, kind, m, unmeasurable));
    }
    for (gate, kind, m, unmeasurable) in &measured {
        let mut metric = first_pass(gate, m.as_ref(), settings.min_samples, requests);
        if let Some(why) = unmeasurable {
            // More traffic cannot measure it: the reason says what to fix.
            metric.reason.clone_from(why);
        } else if let (None, Data::Records(records)) = (m, data) {
            // Values in both arms, too few for the metric's estimate (a tail quantile needs
            // more than a handful of requests): too few, with the real counts.
            let n = value_counts(records, *kind);
            if n.baseline > 0 && n.canary > 0 {
                metric.verdict = MetricVerdict::TooFew;
                metric.n = n;
                metric.reason = format!(
                    "{} baseline and {} canary requests, too few to estimate `{}`",
                    n.baseline, n.canary, gate.metric
                );
            }
        }
        metrics.push(metric);
    }
    // Holm across the blocking metrics that are judged (tested, with enough requests).
    let judged = |m: &CanaryMetric| {
        m.blocking && m.p_value.is_some() && m.n.baseline >= settings.min_samples && m.n.canary >= settings.min_samples
    };
    let blocking: Vec<usize> = (0..metrics.len()).filter(|&i| judged(&metrics[i])).collect();
    let adjusted = stats::holm(
        &blocking
            .iter()
            .map(|&i| metrics[i].p_value.unwrap_or(1.0))
            .collect::<Vec<_>>(),
    );
    for (&i, p) in blocking.iter().zip(adjusted) {
        metrics[i].p_adjusted = Some(p);
    }
    // What the arms' counts count: Prometheus series' steps, or requests.
    let counted = match data {
        Data::Records(_) => "requests",
        Data::Series(_) => "steps",
    };
    for (metric, (gate, _, m, _)) in metrics.iter_mut().zip(&measured) {
        if let Some(m) = m {
            decide(metric, gate, m, settings.min_samples, counted);
        }
    }
    let (verdict, failing, reason) = overall(&metrics);
    let needed = (verdict == CanaryVerdict::Hold).then(|| {
        // Requests per arm so far (the arm with fewer), for a metric not measured yet.
        needed(&metrics, &measured, settings, requests.baseline.min(requests.canary))
    });
    let unmeasurable = (metrics.iter().zip(&measured))
        .filter(|(m, _)| m.blocking)
        .filter_map(|(m, (_, _, _, why))| why.clone().map(|why| (m.name.clone(), why)))
        .collect();
    Analysis {
        metrics,
        verdict,
        failing,
        needed,
        reason,
        left_out,
        unmeasurable,
    }
}

/// Whether any record of either arm carries what `kind` measures (series: never asked).
fn carried(data: &Data<'_>, kind: Kind) -> bool {
    let Data::Records(records) = data else { return false };
    records
        .baseline
        .iter()
        .chain(&records.canary)
        .any(|r| has_value(r, kind, false))
}

/// Whether `r` has a value of `kind`; with `errors_timed`, an errored request without a
/// latency has one (it counts at the timeout).
fn has_value(r: &Record, kind: Kind, errors_timed: bool) -> bool {
    match kind {
        Kind::LatencyQuantile(_) | Kind::LatencyShift => r.latency_ms.is_some() || (errors_timed && r.error),
        Kind::ErrorRate => true,
        Kind::Cost => r.cost_usd.is_some(),
        Kind::ThumbsDownRate => r.thumbs_down.is_some(),
        Kind::Quality => r.quality.is_some(),
        Kind::HallucinationRate => r.hallucination.is_some(),
    }
}

/// Why more traffic cannot measure `kind` on these records, if so: a cost where some requests
/// are of a model without a price (unknown, not free: the priced rest may be the cheap part),
/// or a quantity an arm's requests carry none of (a field to map).
fn unmeasurable(records: &Records, kind: Kind) -> Option<String> {
    if kind == Kind::Cost {
        let unpriced = |arm: &[Record]| arm.iter().filter(|r| r.unpriced).count();
        let (b, c) = (unpriced(&records.baseline), unpriced(&records.canary));
        if b + c > 0 {
            return Some(format!(
                "{b} baseline and {c} canary requests are of a model without a price: what they cost is unknown, not nothing — add the model under `pricing:` (the notes name it)"
            ));
        }
    }
    // Every request has a latency and a cost; feedback, quality and hallucination are sampled
    // (an arm without one yet is too few, not unmeasurable).
    let field = match kind {
        Kind::LatencyQuantile(_) | Kind::LatencyShift => "`latency_ms`",
        Kind::Cost => {
            "`cost_usd`, or `model` with `input_tokens` and `output_tokens` (traces: the spans' `gen_ai.request.model` and `gen_ai.usage` attributes)"
        }
        _ => return None,
    };
    for (name, arm) in [("baseline", &records.baseline), ("canary", &records.canary)] {
        // A failed request may well log neither (a timeout or a 429 has no usage): only an arm
        // with successes none of which carries the quantity is unmeasurable (an arm whose
        // every request failed is measured at the timeout, and has no cost yet).
        let succeeded = arm.iter().any(|r| !r.error);
        if succeeded && !arm.iter().any(|r| has_value(r, kind, false)) {
            return Some(format!(
                "none of the {} {name} requests carries what it measures: map {field} under `canary.source.fields`",
                arm.len()
            ));
        }
    }
    None
}

/// Each arm's requests with a value of `kind` (an errored one without a latency counts at the
/// timeout).
fn value_counts(records: &Records, kind: Kind) -> ArmCounts {
    let has = |r: &&Record| has_value(r, kind, true);
    counts(
        records.baseline.iter().filter(has).count(),
        records.canary.iter().filter(has).count(),
    )
}

/// A request's latency: as logged, else, for an errored one, the timeout (censored: it took at
/// least that long, or failed outright; an error never vanishes from latency).
fn latency_of(r: &Record, timeout_ms: f64) -> Option<f64> {
    r.latency_ms.or(r.error.then_some(timeout_ms))
}

fn measure(data: &Data<'_>, kind: Kind, gate: &CanaryGate, timeout_ms: f64) -> Option<Measured> {
    let confidence = 1.0 - gate.alpha;
    match data {
        Data::Records(records) => measure_records(records, kind, confidence, timeout_ms),
        Data::Series(series) => {
            let s = series.get(kind.name())?;
            let b: Vec<f64> = s.baseline.iter().map(|p| p.1).filter(|v| v.is_finite()).collect();
            let c: Vec<f64> = s.canary.iter().map(|p| p.1).filter(|v| v.is_finite()).collect();
            let test = if kind == Kind::Cost {
                "ratio of per-step means (delta method)"
            } else {
                "difference of per-step means (Welch z)"
            };
            // A rate's series flat at one value says nothing of the requests behind its steps:
            // an error rate of 0 at ten steps of a request each is a canary with 10% errors a
            // third of the time (the review). No exact route for it.
            of_means(&b, &c, kind, confidence, test).map(|m| Measured {
                exact_p: m.exact_p.filter(|_| !kind.is_rate()),
                ..m
            })
        }
    }
}

/// A metric compared by its means: cost as their ratio, anything else (quality, a Prometheus
/// series' steps) as their difference.
fn of_means(b: &[f64], c: &[f64], kind: Kind, confidence: f64, test: &'static str) -> Option<Measured> {
    let (scale, estimate) = if kind == Kind::Cost {
        (Scale::LogRatio, stats::mean_ratio(b, c, confidence)?)
    } else {
        (Scale::Identity, stats::welch_z(b, c, confidence)?)
    };
    let (mb, _) = stats::mean_var(b);
    let (mc, vc) = stats::mean_var(c);
    Some(Measured {
        baseline: mb,
        canary: mc,
        estimate,
        scale,
        own_se: Some((vc / c.len() as f64).sqrt()),
        n: counts(b.len(), c.len()),
        test,
        exact_p: stats::separation_p(b, c),
        canary_constant: stats::one_value(c),
    })
}

fn counts(b: usize, c: usize) -> ArmCounts {
    ArmCounts {
        baseline: b as u64,
        canary: c as u64,
    }
}

fn measure_records(records: &Records, kind: Kind, confidence: f64, timeout_ms: f64) -> Option<Measured> {
    let values = |arm: &[Record], f: &dyn Fn(&Record) -> Option<f64>| -> Vec<f64> {
        arm.iter().filter_map(f).filter(|v| v.is_finite()).collect()
    };
    let sorted = |mut v: Vec<f64>| {
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let latency = &|r: &Record| latency_of(r, timeout_ms);
    match kind {
        Kind::LatencyQuantile(q) => {
            let p = f64::from(q) / 100.0;
            let b = sorted(values(&records.baseline, latency));
            let c = sorted(values(&records.canary, latency));
            let (qb, qc) = (stats::quantile_sorted(&b, p)?, stats::quantile_sorted(&c, p)?);
            let (sb, sc) = (stats::maritz_jarrett_se(&b, p)?, stats::maritz_jarrett_se(&c, p)?);
            let se = sb.hypot(sc);
            let z = normal_z(confidence);
            let estimate = qc - qb;
            Some(Measured {
                baseline: qb,
                canary: qc,
                estimate: Estimate {
                    estimate,
                    se,
                    ci: [estimate - z * se, estimate + z * se],
                },
                scale: Scale::Identity,
                own_se: Some(sc),
                n: counts(b.len(), c.len()),
                test: "difference of quantiles (Maritz–Jarrett)",
                exact_p: stats::separation_p(&b, &c),
                canary_constant: stats::one_value(&c),
            })
        }
        Kind::LatencyShift => {
            let b = sorted(values(&records.baseline, latency));
            let c = sorted(values(&records.canary, latency));
            let estimate = stats::hodges_lehmann_shift(&b, &c, confidence)?;
            Some(Measured {
                baseline: stats::quantile_sorted(&b, 0.5)?,
                canary: stats::quantile_sorted(&c, 0.5)?,
                estimate,
                scale: Scale::Identity,
                own_se: stats::maritz_jarrett_se(&c, 0.5),
                n: counts(b.len(), c.len()),
                test: "Hodges–Lehmann shift (Mann–Whitney)",
                exact_p: stats::separation_p(&b, &c),
                canary_constant: stats::one_value(&c),
            })
        }
        Kind::ErrorRate | Kind::ThumbsDownRate | Kind::HallucinationRate => {
            let flag = |r: &Record| -> Option<bool> {
                match kind {
                    Kind::ErrorRate => Some(r.error),
                    Kind::ThumbsDownRate => r.thumbs_down,
                    _ => r.hallucination,
                }
            };
            let tally = |arm: &[Record]| {
                arm.iter()
                    .filter_map(flag)
                    .fold((0u64, 0u64), |(k, n), f| (k + u64::from(f), n + 1))
            };
            let ((kb, nb), (kc, nc)) = (tally(&records.baseline), tally(&records.canary));
            let estimate = stats::agresti_caffo(kc, nc, kb, nb, confidence)?;
            let pc = (kc as f64 + 1.0) / (nc as f64 + 2.0);
            Some(Measured {
                baseline: kb as f64 / nb as f64,
                canary: kc as f64 / nc as f64,
                estimate,
                scale: Scale::Identity,
                own_se: Some((pc * (1.0 - pc) / (nc as f64 + 2.0)).sqrt()),
                n: counts(nb as usize, nc as usize),
                test: RATE_TEST,
                // Agresti–Caffo's standard error is never zero.
                exact_p: None,
                canary_constant: false,
            })
        }
        Kind::Quality => {
            let b = values(&records.baseline, &|r| r.quality);
            let c = values(&records.canary, &|r| r.quality);
            of_means(&b, &c, kind, confidence, "difference of means (Welch z)")
        }
        Kind::Cost => {
            let b = values(&records.baseline, &|r| r.cost_usd);
            let c = values(&records.canary, &|r| r.cost_usd);
            of_means(&b, &c, kind, confidence, "ratio of means (delta method)")
        }
    }
}

fn normal_z(confidence: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::standard().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// The margin on the scale the metric is tested on.
fn margin_on_scale(margin: Margin, scale: Scale, baseline: f64) -> f64 {
    match (margin, scale) {
        (Margin::Relative(r), Scale::Identity) => r * baseline.abs(),
        (Margin::Relative(r), Scale::LogRatio) => r.ln_1p(),
        (Margin::Absolute(a), Scale::Identity) => a,
        (Margin::Absolute(a), Scale::LogRatio) if baseline > 0.0 => (a / baseline).ln_1p(),
        (Margin::Absolute(_), Scale::LogRatio) => 0.0,
    }
}

/// The mixture's scale: the margin (the effect that matters is detected fastest), or without
/// one the standard error at `min_samples` per arm.
fn tau(margin: f64, m: &Measured, min_samples: u64) -> f64 {
    if margin > 0.0 {
        return margin;
    }
    let n = m.n.baseline.min(m.n.canary).max(1) as f64;
    m.estimate.se * (n / min_samples as f64).sqrt()
}

fn sign(direction: Direction) -> f64 {
    match direction {
        Direction::Lower => 1.0,
        Direction::Higher => -1.0,
    }
}

/// The metric before Holm: values, interval, raw p-value.
fn first_pass(gate: &CanaryGate, m: Option<&Measured>, min_samples: u64, requests: ArmCounts) -> CanaryMetric {
    let without = match (requests.baseline, requests.canary) {
        (0, 0) => None,
        (0, _) => Some("baseline"),
        (_, 0) => Some("canary"),
        _ => None,
    };
    let empty = CanaryMetric {
        name: gate.metric.clone(),
        direction: gate.direction,
        blocking: gate.blocking,
        baseline: None,
        canary: None,
        delta: None,
        ci: None,
        p_value: None,
        p_adjusted: None,
        test: String::new(),
        verdict: MetricVerdict::NoData,
        n: if without.is_some() {
            requests
        } else {
            ArmCounts::default()
        },
        margin: None,
        non_inferior: false,
        slo: gate.slo.map(|value| Slo {
            value,
            ci: None,
            met: None,
        }),
        reason: match without {
            Some(arm) => format!("the {arm} arm has no request yet"),
            None => format!("no request carries what `{}` measures", gate.metric),
        },
    };
    let Some(m) = m else { return empty };
    let margin = margin_on_scale(gate.margin, m.scale, m.baseline);
    let (sequence, route) = sequence_of(m, tau(margin, m, min_samples), gate.alpha);
    let test = match route {
        Route::Exact | Route::ExactTooFew => EXACT_TEST.to_owned(),
        _ => format!("{}, normal-mixture confidence sequence", m.test),
    };
    CanaryMetric {
        baseline: Some(m.baseline),
        canary: Some(m.canary),
        delta: Some(m.delta()),
        ci: sequence.map(|s| s.ci.map(|x| m.scale.to_delta(x))),
        p_value: sequence.map(|s| s.p_value),
        p_adjusted: sequence.map(|s| s.p_value),
        test,
        n: m.n,
        margin: Some(m.scale.to_delta(margin)),
        ..empty
    }
}

/// The metric's verdict from its interval, its Holm-adjusted p-value and its margin and SLO.
fn decide(metric: &mut CanaryMetric, gate: &CanaryGate, m: &Measured, min_samples: u64, counted: &str) {
    let unit = format::unit(&gate.metric);
    let s = sign(gate.direction);
    let margin = margin_on_scale(gate.margin, m.scale, m.baseline);
    let worse = s * m.estimate.estimate;
    if m.n.baseline < min_samples || m.n.canary < min_samples {
        metric.verdict = MetricVerdict::TooFew;
        metric.reason = format!(
            "{} baseline and {} canary {counted}, fewer than the {min_samples} per arm a verdict needs",
            m.n.baseline, m.n.canary
        );
        return;
    }
    let (sequence, route) = sequence_of(m, tau(margin, m, min_samples), gate.alpha);
    let Some(sequence) = sequence else {
        metric.verdict = MetricVerdict::NoData;
        metric.reason = match route {
            Route::ExactTooFew => format!(
                "each arm is one value throughout: too few to tell the arms apart, or alike, by the exact test, which needs {} per arm",
                exact_needs(gate.alpha)
            ),
            _ => "no spread in the data: an interval of zero width proves nothing".to_owned(),
        };
        return;
    };
    let worst = if s > 0.0 { sequence.ci[1] } else { -sequence.ci[0] };
    metric.non_inferior = worst < margin;
    let p = metric.p_adjusted.unwrap_or(sequence.p_value);
    let significant = p < gate.alpha;
    let shown_margin = unit_text(unit, m.scale, margin);
    (metric.verdict, metric.reason) = if significant && worse > margin {
        (
            MetricVerdict::Regression,
            format!("significantly worse, beyond the margin of {shown_margin}"),
        )
    } else if significant && worse > 0.0 {
        (
            MetricVerdict::MinorRegression,
            format!("significantly worse, within the margin of {shown_margin}"),
        )
    } else if significant {
        (MetricVerdict::Improvement, "significantly better".to_owned())
    } else if metric.non_inferior {
        (
            MetricVerdict::NoChange,
            format!("no significant change; proven no worse than the margin of {shown_margin}"),
        )
    } else {
        (
            MetricVerdict::NoChange,
            format!("no significant change yet; not yet proven within the margin of {shown_margin}"),
        )
    };
    if let (Some(slo), Some(own_se)) = (gate.slo, m.own_se) {
        // A canary of one value throughout is that value: every request met the objective, or
        // none did.
        let own = stats::mixture_sequence(m.canary, own_se, slo_tau(margin, m, slo), gate.alpha).or_else(|| {
            (m.canary_constant && own_se == 0.0).then_some(stats::Sequential {
                ci: [m.canary, m.canary],
                p_value: 1.0,
            })
        });
        let met = own.and_then(|o| {
            let (above, below) = (o.ci[0] > slo, o.ci[1] < slo);
            match gate.direction {
                Direction::Lower if below => Some(true),
                Direction::Lower if above => Some(false),
                Direction::Higher if above => Some(true),
                Direction::Higher if below => Some(false),
                _ => None,
            }
        });
        metric.slo = Some(Slo {
            value: slo,
            ci: own.map(|o| o.ci),
            met,
        });
        let bound = match gate.direction {
            Direction::Lower => "at most",
            Direction::Higher => "at least",
        };
        let slo_text = unit.value(slo);
        match met {
            Some(false) => {
                metric.verdict = MetricVerdict::Regression;
                metric.reason = format!(
                    "the canary breaks its objective ({bound} {slo_text}); {}",
                    metric.reason
                );
            }
            None => metric.reason = format!("{}; not yet proven {bound} {slo_text}", metric.reason),
            Some(true) => {}
        }
    }
}

/// The mixture scale for an SLO: the distance that matters is the margin, else a tenth of
/// the objective.
fn slo_tau(margin: f64, m: &Measured, slo: f64) -> f64 {
    if m.scale == Scale::Identity && margin > 0.0 {
        margin
    } else {
        (slo.abs() / 10.0).max(f64::MIN_POSITIVE)
    }
}

fn unit_text(unit: format::Unit, scale: Scale, margin: f64) -> String {
    match scale {
        Scale::LogRatio => format!("{:.1}%", scale.to_delta(margin) * 100.0),
        Scale::Identity => unit.magnitude(margin),
    }
}

fn ready(m: &CanaryMetric) -> bool {
    m.non_inferior && m.slo.as_ref().is_none_or(|s| s.met == Some(true))
}

fn overall(metrics: &[CanaryMetric]) -> (CanaryVerdict, Vec<String>, String) {
    let failing: Vec<String> = metrics
        .iter()
        .filter(|m| m.blocking && m.verdict == MetricVerdict::Regression)
        .map(|m| m.name.clone())
        .collect();
    if !failing.is_empty() {
        let reason = format!("roll back: {} worse", failing.join(", "));
        return (CanaryVerdict::Rollback, failing, reason);
    }
    let blocking: Vec<&CanaryMetric> = metrics.iter().filter(|m| m.blocking).collect();
    if blocking.is_empty() {
        return (
            CanaryVerdict::Hold,
            failing,
            "hold: no blocking metric has data to decide on".to_owned(),
        );
    }
    let open: Vec<&str> = blocking.iter().filter(|m| !ready(m)).map(|m| m.name.as_str()).collect();
    if open.is_empty() {
        (
            CanaryVerdict::Promote,
            failing,
            "promote: every blocking metric is proven no worse than its margin".to_owned(),
        )
    } else {
        (
            CanaryVerdict::Hold,
            failing,
            format!("hold: not enough evidence yet on {}", open.join(", ")),
        )
    }
}

/// How many requests per arm would let every open blocking metric decide, if its estimate and
/// spread stay as they are: its standard error shrinks as 1/√n until the interval clears the
/// nearest decision boundary (the margin for promotion, zero and the margin for rollback). A
/// metric not measured yet needs at least the minimum per arm. Every hold says how much more.
fn needed(
    metrics: &[CanaryMetric],
    measured: &[(&CanaryGate, Kind, Option<Measured>, Option<String>)],
    settings: &Settings<'_>,
    fewest: u64,
) -> Needed {
    let mut target = 0u64;
    let mut open = Vec::new();
    let mut current = fewest;
    for (metric, (gate, _, m, _)) in metrics.iter().zip(measured) {
        if !metric.blocking || ready(metric) {
            continue;
        }
        let Some(m) = m else {
            // Not measured: an arm without records yet (or without the metric's field). The
            // least it takes is the minimum per arm.
            open.push(metric.name.clone());
            target = target.max(settings.min_samples);
            continue;
        };
        open.push(metric.name.clone());
        let n_now = m.n.baseline.min(m.n.canary).max(1);
        // A field only some requests carry (a rating, a judged hallucination) takes that many
        // requests a value; what is needed is counted in requests, at the share seen so far.
        let requests_per_value = (fewest as f64 / n_now as f64).max(1.0);
        // A series counts no requests (`fewest` is 0): its steps are what it has so far.
        // The fewest of any open metric, as the arm with fewer requests is taken for records.
        if fewest == 0 {
            current = match current {
                0 => n_now,
                c => c.min(n_now),
            };
        }
        let margin = margin_on_scale(gate.margin, m.scale, m.baseline);
        if m.exact_p.is_some() && m.estimate.se == 0.0 {
            // Arms each of one value throughout: the exact test's own count, not a spread's.
            let values = exact_needs(gate.alpha).max(settings.min_samples) as f64;
            target = target.max((values * requests_per_value).ceil() as u64);
            continue;
        }
        let worse = sign(gate.direction) * m.estimate.estimate;
        let t = tau(margin, m, settings.min_samples);
        let decided = |k: f64| -> bool {
            let se = m.estimate.se / k.sqrt();
            let Some(r) = stats::mixture_radius(se, t, gate.alpha) else {
                return false;
            };
            let delta_ok = if worse < margin {
                worse + r < margin
            } else {
                worse - r > 0.0
            };
            let slo_ok = match (gate.slo, m.own_se) {
                (Some(slo), Some(own)) => stats::mixture_radius(own / k.sqrt(), slo_tau(margin, m, slo), gate.alpha)
                    .is_some_and(|r| (m.canary - slo).abs() > r),
                _ => true,
            };
            delta_ok && slo_ok
        };
        // Look up to a thousandfold the traffic; beyond, the estimate sits on the boundary.
        let mut k = 1.0_f64;
        while k < 1000.0 && !decided(k) {
            k *= 1.25;
        }
        let values = (n_now as f64 * k).max(settings.min_samples as f64);
        target = target.max((values * requests_per_value).ceil() as u64);
    }
    if open.is_empty() {
        // No blocking metric has data: every one is a default gate the data does not carry
        // yet. The least it takes is the minimum per arm.
        open = metrics.iter().filter(|m| m.blocking).map(|m| m.name.clone()).collect();
        target = settings.min_samples.max(current);
    }
    let more = target.saturating_sub(current);
    // At the rate the arm with fewer requests has had them; none without any yet.
    let hours = settings
        .span_hours
        .filter(|h| *h > 0.0 && current > 0)
        .map(|h| more as f64 / (current as f64 / h));
    Needed {
        requests_per_arm: target,
        more_requests_per_arm: more,
        hours,
        metrics: open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Rng;

    fn gate(metric: &str, margin: Margin, blocking: bool) -> CanaryGate {
        CanaryGate {
            metric: metric.to_owned(),
            direction: Kind::of(metric).unwrap().default_direction(),
            margin,
            alpha: 0.05,
            blocking,
            slo: None,
            explicit: true,
        }
    }

    /// A standard normal draw (Box–Muller).
    pub(crate) fn normal(rng: &mut Rng) -> f64 {
        let (u, v) = (1.0 - rng.unit(), rng.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Lognormal latencies (ms) of one arm, errors at `error_rate`; `tail` stretches the
    /// slowest 2% by that factor.
    fn arm(rng: &mut Rng, n: usize, median: f64, error_rate: f64, tail: f64) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let z = normal(rng);
                let mut latency = median * (0.4 * z).exp();
                if z > 2.054 {
                    latency *= tail;
                }
                Record {
                    time: i as f64,
                    latency_ms: Some(latency),
                    cost_usd: Some(0.002 * (1.0 + 0.1 * normal(rng))),
                    error: rng.unit() < error_rate,
                    ..Record::default()
                }
            })
            .collect()
    }

    fn run(records: &Records, gates: &[CanaryGate]) -> Analysis {
        analyse(
            &Data::Records(records),
            &Settings {
                gates,
                min_samples: 500,
                span_hours: Some(10.0),
                timeout_ms: 60_000.0,
            },
        )
    }

    /// An arm whose every request took `latency_ms` and cost `cost_usd`.
    fn steady(n: usize, latency_ms: f64, cost_usd: f64) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                time: i as f64,
                latency_ms: Some(latency_ms),
                cost_usd: Some(cost_usd),
                ..Record::default()
            })
            .collect()
    }

    /// Arms each of one value throughout (a synthetic log, a steady source) held for ever as
    /// "no spread in the data", though the canary took 900 ms on every request against 500.
    #[test]
    fn arms_each_of_one_value_are_decided_exactly() {
        let gates = [
            gate("latency_p95_ms", Margin::Relative(0.10), true),
            gate("latency_shift_ms", Margin::Relative(0.10), true),
            gate("cost_per_request", Margin::Relative(0.10), true),
            gate("error_rate", Margin::Absolute(0.01), true),
        ];
        // `n` requests an arm, the baseline's each `b` ms and the canary's `c`.
        let both = |n, b, c| {
            run(
                &Records {
                    baseline: steady(n, b, 0.002),
                    canary: steady(n, c, 0.002),
                },
                &gates,
            )
        };
        let worse = both(600, 500.0, 900.0);
        assert_eq!(worse.verdict, CanaryVerdict::Rollback, "{:#?}", worse.metrics);
        assert_eq!(worse.failing, ["latency_p95_ms", "latency_shift_ms"]);
        let p95 = &worse.metrics[0];
        assert_eq!((p95.delta, p95.ci), (Some(400.0), Some([400.0, 400.0])));
        assert!(p95.p_adjusted.unwrap() < 1e-300, "{p95:#?}");
        // The same value in both arms is no difference, proven: promote.
        let same = both(600, 500.0, 500.0);
        assert_eq!(same.verdict, CanaryVerdict::Promote, "{:#?}", same.metrics);
        assert!(same.metrics.iter().all(|m| m.non_inferior), "{:#?}", same.metrics);
        // Below `min_samples` it is still too few, however steady.
        let few = both(100, 500.0, 900.0);
        assert_eq!(few.verdict, CanaryVerdict::Hold, "{:#?}", few.metrics);
        // Nor does an exact test of three requests an arm prove anything, whatever
        // `min_samples` allows (the review: it promoted): 2·2/C(6, 3) = 0.2 > α; from 2·2/C(10,
        // 5) = 0.016 on it decides, and the hold says how many it needs.
        let settings = |min_samples| Settings {
            gates: &gates,
            min_samples,
            span_hours: Some(10.0),
            timeout_ms: 60_000.0,
        };
        let three = Records {
            baseline: steady(3, 500.0, 0.002),
            canary: steady(3, 500.0, 0.002),
        };
        let a = analyse(&Data::Records(&three), &settings(2));
        assert_eq!(a.verdict, CanaryVerdict::Hold, "{:#?}", a.metrics);
        let cost = a.metrics.iter().find(|m| m.name == "cost_per_request").unwrap();
        assert!(
            cost.reason.contains("by the exact test, which needs 5 per arm"),
            "{cost:#?}"
        );
        let five = Records {
            baseline: steady(5, 500.0, 0.002),
            canary: steady(5, 900.0, 0.002),
        };
        let a = analyse(&Data::Records(&five), &settings(2));
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert_eq!(a.failing, ["latency_shift_ms"]);
        let shift = &a.metrics[1];
        assert_eq!(shift.test, EXACT_TEST);
        // scipy's permutation_test for 5 against 5 gives 2/252; doubled for every look.
        assert!((shift.p_value.unwrap() - 4.0 / 252.0).abs() < 1e-12, "{shift:#?}");
    }

    /// A canary of one value throughout meets (or breaks) its objective by that value, whatever
    /// the baseline's spread (the review: it held for ever, "not yet proven at most 800 ms").
    #[test]
    fn a_steady_canary_meets_its_objective_by_its_value() {
        let mut rng = Rng::new(3);
        let mut p95 = gate("latency_p95_ms", Margin::Relative(0.10), true);
        p95.slo = Some(800.0);
        let a = run(
            &Records {
                baseline: arm(&mut rng, 600, 500.0, 0.0, 1.0),
                canary: steady(600, 500.0, 0.002),
            },
            std::slice::from_ref(&p95),
        );
        let slo = a.metrics[0].slo.as_ref().unwrap();
        assert_eq!(
            (slo.met, slo.ci),
            (Some(true), Some([500.0, 500.0])),
            "{:#?}",
            a.metrics[0]
        );
    }

    /// A Prometheus series of one value at every step: a fake server's, or an error rate of 0
    /// throughout, which held a healthy canary for ever.
    #[test]
    fn steady_series_are_decided_exactly() {
        let flat = |v: f64| (0..61).map(|i| (f64::from(i) * 60.0, v)).collect::<Vec<_>>();
        let series = |b: f64, c: f64| Series {
            baseline: flat(b),
            canary: flat(c),
        };
        let gates = [
            gate("latency_p95_ms", Margin::Relative(0.10), true),
            gate("error_rate", Margin::Absolute(0.01), true),
        ];
        let settings = Settings {
            gates: &gates,
            min_samples: 30,
            span_hours: Some(1.0),
            timeout_ms: 60_000.0,
        };
        let healthy = BTreeMap::from([
            ("latency_p95_ms".to_owned(), series(650.0, 660.0)),
            ("error_rate".to_owned(), series(0.0, 0.0)),
        ]);
        // A rate flat at 0 in both arms is no proof of anything (the review: ten steps of a
        // request each show a canary with 10% errors at 0 a third of the time): it holds.
        let a = analyse(&Data::Series(&healthy), &settings);
        assert_eq!(a.verdict, CanaryVerdict::Hold, "{:#?}", a.metrics);
        assert!(
            a.metrics[0].non_inferior,
            "the steady latency is decided: {:#?}",
            a.metrics[0]
        );
        let slow = BTreeMap::from([
            ("latency_p95_ms".to_owned(), series(650.0, 1200.0)),
            ("error_rate".to_owned(), series(0.0, 0.0)),
        ]);
        let a = analyse(&Data::Series(&slow), &settings);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert_eq!(a.failing, ["latency_p95_ms"]);
    }

    #[test]
    fn a_doubled_p99_with_a_stable_median_rolls_back() {
        let mut rng = Rng::new(11);
        let records = Records {
            baseline: arm(&mut rng, 20_000, 400.0, 0.01, 1.0),
            canary: arm(&mut rng, 20_000, 400.0, 0.01, 2.0),
        };
        let gates = [
            gate("latency_p50_ms", Margin::Relative(0.10), true),
            gate("latency_p99_ms", Margin::Relative(0.20), true),
        ];
        let a = run(&records, &gates);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert_eq!(a.failing, ["latency_p99_ms"]);
        assert_eq!(a.metrics[0].verdict, MetricVerdict::NoChange, "{:#?}", a.metrics[0]);
        assert!(a.metrics[0].non_inferior, "the median is proven within 10%");
    }

    #[test]
    fn the_same_distribution_promotes_with_enough_traffic_and_holds_without() {
        let mut rng = Rng::new(5);
        let gates = [
            gate("latency_p95_ms", Margin::Relative(0.10), true),
            gate("error_rate", Margin::Absolute(0.01), true),
            gate("cost_per_request", Margin::Relative(0.10), false),
        ];
        let records = Records {
            baseline: arm(&mut rng, 30_000, 400.0, 0.002, 1.0),
            canary: arm(&mut rng, 30_000, 400.0, 0.002, 1.0),
        };
        let a = run(&records, &gates);
        assert_eq!(a.verdict, CanaryVerdict::Promote, "{:#?}", a.metrics);
        assert!(a.needed.is_none());

        let few = Records {
            baseline: records.baseline[..600].to_vec(),
            canary: records.canary[..600].to_vec(),
        };
        let a = run(&few, &gates);
        assert_eq!(a.verdict, CanaryVerdict::Hold, "{:#?}", a.metrics);
        let needed = a.needed.expect("a hold says how much more");
        assert!(needed.requests_per_arm > 600, "{needed:?}");
        assert!(needed.hours.is_some_and(|h| h > 0.0), "{needed:?}");
    }

    /// A metric only some requests carry counts its values, not requests: what a hold needs is
    /// in requests, at the share that carried one (it said samples, and called them requests).
    #[test]
    fn a_hold_on_a_metric_few_requests_carry_needs_requests_at_that_share() {
        let mut rng = Rng::new(5);
        let gates = [gate("latency_p95_ms", Margin::Relative(0.10), true)];
        let all = Records {
            baseline: arm(&mut rng, 600, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 600, 400.0, 0.0, 1.0),
        };
        let a = run(&all, &gates);
        assert_eq!(a.verdict, CanaryVerdict::Hold, "{:#?}", a.metrics);
        let every = a.needed.unwrap();
        // The same 600 values in each arm, among 2,000 requests (the rest carry none).
        let unmeasured = Record {
            latency_ms: None,
            ..Record::default()
        };
        let sparse = Records {
            baseline: [all.baseline.clone(), vec![unmeasured; 1400]].concat(),
            canary: [all.canary.clone(), vec![unmeasured; 1400]].concat(),
        };
        let a = run(&sparse, &gates);
        assert_eq!(a.metrics[0].n.canary, 600, "{:#?}", a.metrics);
        let some = a.needed.unwrap();
        let scaled = every.requests_per_arm as f64 * 2000.0 / 600.0;
        assert!(
            (some.requests_per_arm as f64 - scaled).abs() <= 4.0,
            "{some:?} against {every:?}"
        );
        assert_eq!(some.more_requests_per_arm, some.requests_per_arm - 2000);
    }

    #[test]
    fn too_few_requests_hold_and_say_so() {
        let mut rng = Rng::new(2);
        let records = Records {
            baseline: arm(&mut rng, 100, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 100, 400.0, 0.0, 1.0),
        };
        let a = run(&records, &[gate("error_rate", Margin::Absolute(0.01), true)]);
        assert_eq!(a.verdict, CanaryVerdict::Hold);
        assert_eq!(a.metrics[0].verdict, MetricVerdict::TooFew);
        // No errors in 100 requests each: the interval needs more than the minimum to clear 1 pp.
        assert!(a.needed.unwrap().requests_per_arm > 500);
    }

    #[test]
    fn sparse_errors_are_judged_not_ignored() {
        // 0 errors in 5,000 against 40 in 5,000: a mostly-zero series that must roll back.
        let mut rng = Rng::new(3);
        let mut records = Records {
            baseline: arm(&mut rng, 5_000, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 5_000, 400.0, 0.0, 1.0),
        };
        for r in records.canary.iter_mut().step_by(125) {
            r.error = true;
        }
        let a = run(&records, &[gate("error_rate", Margin::Absolute(0.002), true)]);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        // DESIGN: a rate reports the proportion difference, the canary's 40/5000 less the
        // baseline's 0/5000 (the test's adjusted proportions, 41/5002 − 1/5002, were reported).
        assert_eq!(a.metrics[0].delta, Some(40.0 / 5000.0));
        // And no errors on either side proves the canary within the margin.
        for r in &mut records.canary {
            r.error = false;
        }
        let a = run(&records, &[gate("error_rate", Margin::Absolute(0.002), true)]);
        assert_eq!(a.verdict, CanaryVerdict::Promote, "{:#?}", a.metrics);
    }

    /// DESIGN: errored and timed-out requests never vanish; they count at the timeout in
    /// latency. 8% of the canary's requests timing out without a logged latency was a promote.
    #[test]
    fn timed_out_requests_without_a_latency_count_at_the_timeout() {
        let mut rng = Rng::new(21);
        let mut records = Records {
            baseline: arm(&mut rng, 4_000, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 4_000, 400.0, 0.0, 1.0),
        };
        let p95 = [gate("latency_p95_ms", Margin::Relative(0.10), true)];
        assert_eq!(run(&records, &p95).verdict, CanaryVerdict::Promote);
        for r in records.canary.iter_mut().step_by(12) {
            (r.error, r.latency_ms) = (true, None);
        }
        let a = run(&records, &p95);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert_eq!(a.metrics[0].n.canary, 4_000);
        assert_eq!(a.metrics[0].canary, Some(60_000.0));
    }

    /// A cost where some requests are of a model without a price is unknown, not the priced
    /// rest's: no data, with why, and named as a blocking gate these records cannot measure
    /// however many more arrive (the command stops on it: bad input, the config's to fix).
    #[test]
    fn a_cost_with_unpriced_requests_cannot_be_measured() {
        let mut rng = Rng::new(22);
        let mut records = Records {
            baseline: arm(&mut rng, 4_000, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 4_000, 400.0, 0.0, 1.0),
        };
        let cost = [gate("cost_per_request", Margin::Relative(0.10), true)];
        let a = run(&records, &cost);
        assert_eq!((a.verdict, a.unmeasurable.len()), (CanaryVerdict::Promote, 0));
        for r in records.canary.iter_mut().step_by(2) {
            (r.cost_usd, r.unpriced) = (None, true);
        }
        let a = run(&records, &cost);
        assert_ne!(a.verdict, CanaryVerdict::Promote, "{:#?}", a.metrics);
        assert_eq!(a.metrics[0].verdict, MetricVerdict::NoData);
        let why = "0 baseline and 2000 canary requests are of a model without a price";
        assert!(a.metrics[0].reason.contains(why), "{}", a.metrics[0].reason);
        assert_eq!(a.unmeasurable[0].0, "cost_per_request");
        assert!(a.unmeasurable[0].1.contains(why));
        // A canary whose requests carry no cost at all (the model field unmapped) says which
        // field to map.
        for r in &mut records.canary {
            (r.cost_usd, r.unpriced) = (None, false);
        }
        let a = run(&records, &cost);
        assert!(
            a.unmeasurable[0].1.contains("map `cost_usd`, or `model`"),
            "{:?}",
            a.unmeasurable
        );
        // An informing gate is no data with the same reason, and stops nothing.
        let a = run(&records, &[gate("cost_per_request", Margin::Relative(0.10), false)]);
        assert!(a.unmeasurable.is_empty());
        assert!(
            a.metrics[0].reason.contains("map `cost_usd`"),
            "{}",
            a.metrics[0].reason
        );
    }

    /// Every request of the canary failed without a logged latency: each counts at the timeout
    /// and the canary rolls back (it held for ever as "cannot be measured"). Sampled quantities
    /// an arm has none of yet are too few, not unmeasurable.
    #[test]
    fn a_canary_whose_every_request_failed_rolls_back_on_latency() {
        let mut rng = Rng::new(24);
        let mut records = Records {
            baseline: arm(&mut rng, 1_000, 400.0, 0.01, 1.0),
            canary: arm(&mut rng, 1_000, 400.0, 0.0, 1.0),
        };
        for r in &mut records.canary {
            (r.error, r.latency_ms) = (true, None);
        }
        let a = run(&records, &[gate("latency_p95_ms", Margin::Relative(0.10), true)]);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert!(a.unmeasurable.is_empty());
        for r in records.baseline.iter_mut().step_by(100) {
            r.quality = Some(0.8);
        }
        let a = run(&records, &[gate("quality", Margin::Absolute(0.02), true)]);
        assert!(a.unmeasurable.is_empty(), "{:?}", a.unmeasurable);
        assert!(a.needed.is_some());
    }

    /// Failed requests carry no cost (a timeout or a 429 has no usage): a canary whose every
    /// request failed is no data on cost, not unmeasurable (it stopped as bad input), and its
    /// latency at the timeout rolls it back. A rollback stands beside an unmeasurable cost.
    #[test]
    fn failed_requests_without_a_cost_are_no_data_and_a_rollback_stands() {
        let mut rng = Rng::new(25);
        let mut records = Records {
            baseline: arm(&mut rng, 1_000, 400.0, 0.01, 1.0),
            canary: arm(&mut rng, 600, 400.0, 0.0, 1.0),
        };
        for r in &mut records.canary {
            (r.error, r.latency_ms, r.cost_usd) = (true, None, None);
        }
        let gates = [
            gate("latency_p95_ms", Margin::Relative(0.10), true),
            gate("cost_per_request", Margin::Relative(0.10), true),
        ];
        let a = run(&records, &gates);
        assert!(a.unmeasurable.is_empty(), "{:?}", a.unmeasurable);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        // An unpriced canary that is also far slower: the rollback is the verdict, with the
        // cost named unmeasurable beside it (the command stops on it only for a hold).
        for r in &mut records.canary {
            (r.error, r.latency_ms, r.unpriced) = (false, Some(3_000.0), true);
        }
        let a = run(&records, &gates);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert_eq!(a.unmeasurable[0].0, "cost_per_request");
    }

    /// A tail quantile of a handful of requests cannot be estimated: too few, with the counts,
    /// not "no request carries" it.
    #[test]
    fn a_quantile_of_a_handful_of_requests_is_too_few_with_its_counts() {
        let mut rng = Rng::new(23);
        let records = Records {
            baseline: arm(&mut rng, 8, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 8, 400.0, 0.0, 1.0),
        };
        let a = run(&records, &[gate("latency_p99_ms", Margin::Relative(0.10), true)]);
        assert_eq!(a.metrics[0].verdict, MetricVerdict::TooFew, "{:#?}", a.metrics);
        assert_eq!((a.metrics[0].n.baseline, a.metrics[0].n.canary), (8, 8));
        assert!(a.needed.is_some());
    }

    #[test]
    fn an_slo_breach_rolls_back_even_without_a_difference() {
        let mut rng = Rng::new(9);
        let records = Records {
            baseline: arm(&mut rng, 5_000, 3000.0, 0.0, 1.0),
            canary: arm(&mut rng, 5_000, 3000.0, 0.0, 1.0),
        };
        let mut g = gate("latency_p99_ms", Margin::Relative(0.2), true);
        g.slo = Some(2000.0);
        let a = run(&records, &[g]);
        assert_eq!(a.verdict, CanaryVerdict::Rollback, "{:#?}", a.metrics);
        assert!(
            a.metrics[0].reason.contains("breaks its objective (at most 2000 ms)"),
            "{}",
            a.metrics[0].reason
        );
    }

    #[test]
    fn default_gates_without_data_are_left_out_explicit_ones_are_no_data() {
        let mut rng = Rng::new(1);
        let records = Records {
            baseline: arm(&mut rng, 600, 400.0, 0.0, 1.0),
            canary: arm(&mut rng, 600, 400.0, 0.0, 1.0),
        };
        let mut implicit = gate("quality", Margin::Absolute(0.02), false);
        implicit.explicit = false;
        let explicit = gate("hallucination_rate", Margin::Absolute(0.01), true);
        let a = run(&records, &[implicit, explicit]);
        assert_eq!(a.left_out, ["quality"]);
        assert_eq!(a.metrics.len(), 1);
        assert_eq!(a.metrics[0].verdict, MetricVerdict::NoData);
        assert_eq!(a.verdict, CanaryVerdict::Hold);
    }
}
