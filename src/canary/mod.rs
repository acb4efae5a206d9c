//! Canary analysis: production logs, traces or metrics of a baseline and a canary version,
//! compared unpaired and anytime-valid, into promote / hold / rollback.
//!
//! `evaluate` is the one path: read the source (`logs`, `otlp`, `prometheus`) into records or
//! series, keep the window asked for (or two windows of one arm for drift), `analyse`, and
//! build `canary.json` ([`result::CanaryResult`]) and the charts' figures. `render` writes
//! `report.md`. `src/commands/canary.rs` only strings these together and watches.

pub mod analyse;
mod jsonline;
pub mod logs;
pub mod otlp;
pub mod prometheus;
pub mod records;
pub mod render;
pub mod result;
pub mod time;

use std::path::Path;
use std::time::Duration;

use analyse::{Data, Series, Settings};
use records::{Costing, ReadNotes, Records};
use result::{ArmInfo, Arms, CanaryResult, SCHEMA_VERSION, Window};

use crate::error::{Diagnostic, Error};
use crate::providers::pricing::PriceTable;
use crate::report::charts::{CanaryFigures, RateSeries, Share};
use crate::stats;
use crate::suite::canary::{CanaryConfig, Source};

/// How a run looks at the data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Options {
    /// Only the last `window` of data (ending at the latest record, or now for Prometheus).
    pub window: Option<Duration>,
    /// Drift: the last `window` of one arm against the window before it.
    pub drift: Option<DriftArm>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftArm {
    Baseline,
    Canary,
}

/// One run's outcome: what `canary.json` says, and the figures its charts draw (none for
/// Prometheus series).
pub struct Evaluation {
    pub result: CanaryResult,
    pub figures: Option<CanaryFigures>,
}

/// Reads the configured source under `root` and decides.
pub fn evaluate(root: &Path, config: &CanaryConfig, options: &Options) -> anyhow::Result<Evaluation> {
    let arms = config.source.arms().clone();
    match &config.source {
        Source::Prometheus { url, step, queries, .. } => {
            if options.drift.is_some() {
                return Err(Error::from(
                    Diagnostic::new("--drift reads request logs or traces, not Prometheus")
                        .hint("compare two windows of one version with a jsonl, csv or otlp source"),
                )
                .into());
            }
            if let Some(gate) = config
                .gates
                .iter()
                .find(|g| g.explicit && !queries.contains_key(&g.metric))
            {
                return Err(Error::from(
                    Diagnostic::new(format!("the gate on `{}` has no query", gate.metric))
                        .in_file(&config.config_path)
                        .hint(format!(
                            "add `{}: '<PromQL with $arm>'` under `canary.source.queries`, or remove the gate",
                            gate.metric
                        )),
                )
                .into());
            }
            let window = options.window.unwrap_or(Duration::from_secs(3600));
            let mut fetched = prometheus::fetch(url, *step, window, queries, &arms)?;
            let unusable = prometheus::check_steps(&mut fetched, &arms, config)?;
            let data = Data::Series(&fetched.series);
            let a = analyse::analyse(
                &data,
                &Settings {
                    gates: &config.gates,
                    min_samples: config.min_steps,
                    span_hours: Some(window.as_secs_f64() / 3600.0),
                    timeout_ms: config.timeout_ms,
                },
            );
            let n = |f: fn(&Series) -> usize| fetched.series.values().map(f).max().unwrap_or(0) as u64;
            let arms_info = Arms {
                baseline: ArmInfo {
                    name: arms.baseline.clone(),
                    n: n(|s| s.baseline.len()),
                },
                canary: ArmInfo {
                    name: arms.canary.clone(),
                    n: n(|s| s.canary.len()),
                },
            };
            let mut notes = fetched.notes;
            notes.extend(unusable);
            notes.push(format!(
                "Prometheus series: each {}-step value is one observation; a verdict needs `min_steps` ({}) per arm",
                time::span(step.as_secs_f64()),
                config.min_steps
            ));
            let window = Some(Window {
                from: time::format_utc(fetched.start),
                to: time::format_utc(fetched.end),
            });
            let result = build_result(
                config,
                "canary",
                format!("prometheus {}", prometheus::shown(url)),
                window,
                arms_info,
                a,
                notes,
            );
            return Ok(Evaluation { result, figures: None });
        }
        Source::Logs { .. } | Source::Otlp { .. } => {}
    }

    let (path, label) = match &config.source {
        Source::Logs { path, format, .. } => (
            path.clone(),
            match format {
                crate::suite::canary::LogFormat::Jsonl => "jsonl",
                crate::suite::canary::LogFormat::Csv => "csv",
            },
        ),
        Source::Otlp { path, .. } => (path.clone(), "otlp"),
        Source::Prometheus { .. } => unreachable!("handled above"),
    };
    let (records, notes) = read_file(root, &path, config)?;
    // A quantity the config maps that no record has is a typo in the map when a gate written,
    // or a default that blocks, reads it (bad input); else the logs simply do not carry it
    // yet (a note).
    type Mapped<'a> = Vec<(&'static str, &'a str)>;
    let (explicit, unread): (Mapped<'_>, Mapped<'_>) = match &config.source {
        Source::Logs { fields, .. } => {
            fields
                .explicit
                .iter()
                .map(|q| (*q, field_path(fields, q)))
                .partition(|(q, _)| {
                    // A gate written, or a default that blocks (a default that informs is left out
                    // for want of data, and says so).
                    config
                        .gates
                        .iter()
                        .any(|g| (g.explicit || g.blocking) && gate_reads(&g.metric, q))
                })
        }
        _ => (Vec::new(), Vec::new()),
    };
    records::check_reading(
        &path,
        &records,
        &notes,
        &arms,
        &explicit,
        config.max_bad_share,
        options.drift,
    )?;
    check_gates_have_data(config, &notes, &path)?;

    // Drift reads one arm: the other's absence is no news.
    let compared = options.drift.is_none().then_some(&records);
    let mut reading = records::reading_notes(compared, &notes, &arms);
    for (quantity, path) in unread {
        if notes.present.get(quantity).copied().unwrap_or(0) == 0 {
            reading.push(format!(
                "no record has the field `{path}` (mapped to `{quantity}`); no gate reads it"
            ));
        }
    }
    // A successful request without a latency has none to count: left out of the latency
    // quantiles, and said (only its metric's n showed it).
    for (arm, rows) in [(&arms.baseline, &records.baseline), (&arms.canary, &records.canary)] {
        let unmeasured = rows.iter().filter(|r| !r.error && r.latency_ms.is_none()).count();
        // Logs that carry no latency at all have no quantile to leave them out of.
        if unmeasured > 0 && rows.iter().any(|r| !r.error && r.latency_ms.is_some()) {
            reading.push(format!(
                "{unmeasured} of {} `{arm}` requests succeeded without a latency — left out of the latency quantiles",
                rows.len()
            ));
        }
        // So is one without a cost (no token counts, no logged cost; an unpriced model is
        // said apart): the audit found the cost's n fall with no note.
        let uncosted = rows
            .iter()
            .filter(|r| !r.error && r.cost_usd.is_none() && !r.unpriced)
            .count();
        if uncosted > 0 && rows.iter().any(|r| !r.error && r.cost_usd.is_some()) {
            reading.push(format!(
                "{uncosted} of {} `{arm}` requests succeeded without a cost (no token counts or cost logged) — left out of the cost per request",
                rows.len()
            ));
        }
    }
    let latest = records.latest();
    let needs_time = options.window.is_some() || options.drift.is_some();
    if needs_time && !latest.is_finite() {
        return Err(Error::from(
            Diagnostic::new("--window and --drift need timestamps, and no record has one")
                .in_file(&path)
                .hint("map the timestamp field: `canary.source.fields.timestamp: ts` (RFC 3339 or Unix epoch)"),
        )
        .into());
    }
    if needs_time {
        // A record without a timestamp lies in no window: said, not dropped silently.
        let timeless = (records.baseline.iter().chain(&records.canary))
            .filter(|r| !r.time.is_finite())
            .count();
        if timeless > 0 {
            reading.push(format!(
                "{timeless} records have no timestamp, so no window holds them — not compared"
            ));
        }
    }
    let (mode, compared, window, arms_info) = match (options.drift, options.window) {
        (Some(arm), window) => {
            let w = window
                .ok_or_else(|| {
                    Error::from(
                        Diagnostic::new("--drift needs --window")
                            .hint("e.g. `--drift --window 7d` compares the last 7 days with the 7 days before"),
                    )
                })?
                .as_secs_f64();
            let (name, of_arm) = match arm {
                DriftArm::Baseline => (&arms.baseline, &records.baseline),
                DriftArm::Canary => (&arms.canary, &records.canary),
            };
            let one = Records {
                baseline: of_arm.clone(),
                canary: Vec::new(),
            };
            let previous = one.between(latest - 2.0 * w, latest - w).baseline;
            let current = one.between(latest - w, latest + 1e-6).baseline;
            let span = time::span(w);
            for (which, set) in [("previous", &previous), ("last", &current)] {
                if set.is_empty() {
                    return Err(empty_window(&path, &format!("the {which} {span} of `{name}`"), latest).into());
                }
            }
            let info = Arms {
                baseline: ArmInfo {
                    name: format!("{name}, previous {span}"),
                    n: previous.len() as u64,
                },
                canary: ArmInfo {
                    name: format!("{name}, last {span}"),
                    n: current.len() as u64,
                },
            };
            let window = Window {
                from: time::format_utc(latest - 2.0 * w),
                to: time::format_utc(latest),
            };
            reading.push(format!(
                "drift: the last {span} of `{name}` against the {span} before it; the latest record sets the end"
            ));
            (
                "drift",
                Records {
                    baseline: previous,
                    canary: current,
                },
                Some(window),
                info,
            )
        }
        (None, Some(w)) => {
            let w = w.as_secs_f64();
            let kept = records.between(latest - w, latest + 1e-6);
            let span = time::span(w);
            // The baseline must have traffic in the window; a canary without any holds.
            if kept.baseline.is_empty() {
                return Err(empty_window(&path, &format!("the last {span} of `{}`", arms.baseline), latest).into());
            }
            if kept.canary.is_empty() && !records.canary.is_empty() {
                reading.push(format!(
                    "no record of the canary arm in the last {span}: the canary holds until it has traffic there"
                ));
            }
            let info = arm_info(&arms.baseline, &arms.canary, &kept);
            let window = Window {
                from: time::format_utc(latest - w),
                to: time::format_utc(latest),
            };
            ("canary", kept, Some(window), info)
        }
        (None, None) => {
            let window = latest.is_finite().then(|| Window {
                from: time::format_utc(records.earliest()),
                to: time::format_utc(latest),
            });
            let info = arm_info(&arms.baseline, &arms.canary, &records);
            ("canary", records, window, info)
        }
    };
    let span_hours = {
        let times: Vec<f64> = compared
            .canary
            .iter()
            .map(|r| r.time)
            .filter(|t| t.is_finite())
            .collect();
        let (lo, hi) = times
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &t| (a.min(t), b.max(t)));
        (hi > lo).then(|| (hi - lo) / 3600.0)
    };
    let a = analyse::analyse(
        &Data::Records(&compared),
        &Settings {
            gates: &config.gates,
            min_samples: config.min_samples,
            span_hours,
            timeout_ms: config.timeout_ms,
        },
    );
    // A blocking gate these records cannot measure, however many more arrive, would hold the
    // canary for ever (`--watch` until `--max-duration`): the config's to fix, said now. A
    // rollback the measured gates prove stands: it needs nothing the config lacks.
    if let Some((metric, why)) = a
        .unmeasurable
        .first()
        .filter(|_| a.verdict != result::CanaryVerdict::Rollback)
    {
        return Err(Error::from(
            Diagnostic::new(format!("the blocking gate `{metric}` cannot be measured from these records: {why}"))
                .in_file(&config.config_path)
                .hint(format!(
                    "fix the config as this says, or make the gate informing (`{metric}: {{blocking: false}}` under `canary.gates`) to decide without it"
                )),
        )
        .into());
    }
    let figures = figures(config, &arms_info, &compared);
    let result = build_result(config, mode, format!("{label} {path}"), window, arms_info, a, reading);
    Ok(Evaluation {
        result,
        figures: Some(figures),
    })
}

fn arm_info(baseline: &str, canary: &str, records: &Records) -> Arms {
    Arms {
        baseline: ArmInfo {
            name: baseline.to_owned(),
            n: records.baseline.len() as u64,
        },
        canary: ArmInfo {
            name: canary.to_owned(),
            n: records.canary.len() as u64,
        },
    }
}

fn empty_window(path: &str, what: &str, latest: f64) -> Error {
    Diagnostic::new(format!("no record in {what}"))
        .in_file(path)
        .hint(format!(
            "the latest record is at {}; widen --window, or check that the logs cover it",
            time::format_utc(latest)
        ))
        .into()
}

fn build_result(
    config: &CanaryConfig,
    mode: &str,
    source: String,
    window: Option<Window>,
    arms: Arms,
    a: analyse::Analysis,
    mut notes: Vec<String>,
) -> CanaryResult {
    for metric in &a.left_out {
        notes.push(format!(
            "`{metric}` (a default gate) is not compared: the data carries nothing it measures"
        ));
    }
    notes.push(format!("gates from {}", config.gates_from));
    CanaryResult {
        schema_version: SCHEMA_VERSION,
        verdict: a.verdict,
        mode: mode.to_owned(),
        experiment: config.experiment.clone(),
        version: config.version.clone(),
        source,
        window,
        arms,
        alpha: config.alpha,
        // The minimum the verdict applied: steps for Prometheus series.
        min_samples: match config.source {
            Source::Prometheus { .. } => config.min_steps,
            _ => config.min_samples,
        },
        metrics: a.metrics,
        failing: a.failing,
        needed: a.needed,
        reason: a.reason,
        notes,
    }
}

/// The largest log file read, so a mistaken path (a disk image) fails fast.
const MAX_LOG_BYTES: u64 = 20 << 30;

fn read_file(root: &Path, path: &str, config: &CanaryConfig) -> anyhow::Result<(Records, ReadNotes)> {
    let full = root.join(path);
    let unreadable = |why: String| -> anyhow::Error {
        Error::from(
            Diagnostic::new(format!("cannot read `{path}`: {why}"))
                .in_file(&config.config_path)
                .hint("`canary.source.path` is relative to the config file's folder, inside the repository"),
        )
        .into()
    };
    // A link may point outside the repository even when the path does not.
    let real = full.canonicalize().map_err(|e| unreadable(e.to_string()))?;
    let real_root = root.canonicalize().map_err(|e| unreadable(e.to_string()))?;
    if !real.starts_with(&real_root) {
        return Err(unreadable("it is a link that leaves the repository".to_owned()));
    }
    // There, but not to be read (a folder, no permission, a failing disk): a run error (exit
    // 3, docs/canary.md), not a mistake in the config.
    let file = std::fs::File::open(&real)
        .and_then(|f| match f.metadata() {
            Ok(m) if m.is_dir() => Err(std::io::Error::other("it is a folder, not a file")),
            _ => Ok(f),
        })
        .map_err(|e| {
            Error::run_with_hint(
                format!("cannot read `{path}`: {e}"),
                "check the file's permissions, or the path under `canary.source`",
            )
        })?;
    if file.metadata().is_ok_and(|m| m.len() > MAX_LOG_BYTES) {
        return Err(unreadable("larger than 20 GiB".to_owned()));
    }
    let input = std::io::BufReader::with_capacity(1 << 20, file);
    let prices = PriceTable::new(&config.pricing);
    let costing = Costing { prices: &prices };
    let read = match &config.source {
        Source::Logs {
            format, arms, fields, ..
        } => logs::read_logs(
            input,
            &logs::LogSpec {
                format: *format,
                arms,
                fields,
                costing,
                max_clock_skew: config.max_clock_skew.as_secs_f64(),
            },
        ),
        Source::Otlp { arms, .. } => otlp::read_otlp(input, arms, &costing),
        Source::Prometheus { .. } => unreachable!("Prometheus is not a file"),
    };
    read.map_err(|e| unreadable(e.to_string()))
}

/// Whether a gate on `metric` reads a record's `quantity`.
fn gate_reads(metric: &str, quantity: &str) -> bool {
    crate::metrics::CanaryMetric::of(metric).is_some_and(|kind| reads(kind).contains(&quantity))
}

/// The quantities of a record a gate on `kind` reads.
fn reads(kind: crate::metrics::CanaryMetric) -> &'static [&'static str] {
    use crate::metrics::CanaryMetric as Kind;
    match kind {
        Kind::LatencyQuantile(_) | Kind::LatencyShift => &["latency_ms"],
        Kind::ErrorRate => &["error"],
        Kind::Cost => &[
            "cost_usd",
            "model",
            "input_tokens",
            "output_tokens",
            "cached_input_tokens",
        ],
        Kind::ThumbsDownRate => &["thumbs_up", "thumbs_down"],
        Kind::Quality => &["quality"],
        Kind::HallucinationRate => &["hallucination"],
    }
}

fn field_path<'a>(fields: &'a crate::suite::canary::Fields, quantity: &str) -> &'a str {
    match quantity {
        "timestamp" => &fields.timestamp,
        "model" => &fields.model,
        "latency_ms" => &fields.latency_ms,
        "input_tokens" => &fields.input_tokens,
        "output_tokens" => &fields.output_tokens,
        "cached_input_tokens" => &fields.cached_input_tokens,
        "cost_usd" => &fields.cost_usd,
        "error" => &fields.error,
        "thumbs_up" => &fields.thumbs_up,
        "thumbs_down" => &fields.thumbs_down,
        "quality" => &fields.quality,
        _ => &fields.hallucination,
    }
}

/// A gate the user wrote on a quantity no record carries is a config mistake, not a hold that
/// never ends.
fn check_gates_have_data(config: &CanaryConfig, notes: &ReadNotes, path: &str) -> Result<(), Error> {
    use crate::metrics::CanaryMetric as Kind;
    let has = |q: &str| notes.present.get(q).copied().unwrap_or(0) > 0;
    for gate in config.gates.iter().filter(|g| g.explicit) {
        let Some(kind) = Kind::of(&gate.metric) else { continue };
        let (ok, needs) = match kind {
            // A request without an error is a success: every record carries it.
            Kind::ErrorRate => (true, "error".to_owned()),
            Kind::Cost => (
                has("cost_usd") || (has("input_tokens") && has("output_tokens")),
                "cost_usd, or model with input_tokens and output_tokens".to_owned(),
            ),
            _ => (reads(kind).iter().any(|q| has(q)), reads(kind).join(" or ")),
        };
        if !ok {
            return Err(Diagnostic::new(format!(
                "the gate on `{}` has no data: no record carries {needs}",
                gate.metric
            ))
            .in_file(path)
            .hint(format!(
                "map the field under `canary.source.fields` (e.g. `{}: path.in.record`), or remove the gate",
                needs.split(',').next().unwrap_or(&needs)
            ))
            .into());
        }
    }
    Ok(())
}

/// Points per latency curve: enough for a smooth CDF, few enough for a small SVG.
const CURVE_POINTS: usize = 400;
/// Time buckets of the rates-over-time charts.
const BUCKETS: usize = 12;

fn figures(config: &CanaryConfig, arms: &Arms, records: &Records) -> CanaryFigures {
    let sorted = |arm: &[records::Record]| {
        let mut v: Vec<f64> = arm
            .iter()
            .filter_map(|r| r.latency_ms)
            .filter(|x| x.is_finite())
            .collect();
        v.sort_unstable_by(f64::total_cmp);
        v
    };
    let lat = [sorted(&records.baseline), sorted(&records.canary)];
    let thin = |v: &Vec<f64>| -> Vec<f64> {
        if v.len() <= CURVE_POINTS {
            return v.clone();
        }
        (1..=CURVE_POINTS)
            .map(|i| v[(i * v.len() / CURVE_POINTS).min(v.len()) - 1])
            .collect()
    };
    let marks = |v: &Vec<f64>| [0.5, 0.95, 0.99].map(|q| stats::quantile_sorted(v, q).unwrap_or(f64::NAN));
    let start = records.earliest();
    let end = records.latest();
    let mut rates = Vec::new();
    if start.is_finite() && end > start {
        let width = (end - start) / BUCKETS as f64;
        let hours: Vec<f64> = (0..BUCKETS).map(|b| (b as f64 + 0.5) * width / 3600.0).collect();
        type Flag = fn(&records::Record) -> Option<bool>;
        let kinds: [(&str, Flag); 3] = [
            ("error_rate", |r| Some(r.error)),
            ("thumbs_down_rate", |r| r.thumbs_down),
            ("hallucination_rate", |r| r.hallucination),
        ];
        for (metric, flag) in kinds {
            let per_arm = |arm: &[records::Record]| -> Vec<Option<Share>> {
                let mut tally = vec![(0u64, 0u64); BUCKETS];
                for r in arm {
                    if let (Some(f), true) = (flag(r), r.time.is_finite()) {
                        let b = (((r.time - start) / width) as usize).min(BUCKETS - 1);
                        tally[b].0 += u64::from(f);
                        tally[b].1 += 1;
                    }
                }
                tally
                    .into_iter()
                    .map(|(k, n)| stats::wilson_interval(k, n, 0.95).map(|ci| (k as f64 / n as f64, ci)))
                    .collect()
            };
            let series = [per_arm(&records.baseline), per_arm(&records.canary)];
            if series.iter().flatten().any(Option::is_some) {
                rates.push(RateSeries {
                    metric: metric.to_owned(),
                    hours: hours.clone(),
                    arms: series,
                });
            }
        }
    }
    let cost_of = |arm: &[records::Record]| -> Option<(f64, [f64; 2])> {
        let v: Vec<f64> = arm.iter().filter_map(|r| r.cost_usd).collect();
        if v.len() < 2 {
            return None;
        }
        let (m, var) = stats::mean_var(&v);
        let half = 1.959_963_984_540_054 * (var / v.len() as f64).sqrt();
        Some((m, [m - half, m + half]))
    };
    let cost = match (cost_of(&records.baseline), cost_of(&records.canary)) {
        (Some(b), Some(c)) => Some([b, c]),
        _ => None,
    };
    CanaryFigures {
        name: config.experiment.clone().unwrap_or_else(|| "canary".to_owned()),
        arms: [arms.baseline.name.clone(), arms.canary.name.clone()],
        latency: [thin(&lat[0]), thin(&lat[1])],
        latency_marks: [marks(&lat[0]), marks(&lat[1])],
        rates,
        cost,
    }
}
