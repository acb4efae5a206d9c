//! The `canary:` section: where production data is and how to judge it.
//!
//! `promptgate canary` reads only `canary:`, `pricing:` and, when `canary.gates` is not
//! written (it overrides `gates:` as a whole), the canary metrics' entries of `gates:`, so a canary-only config may have
//! `experiments: []` and no providers. [`load_canary`] resolves the raw section into a
//! [`CanaryConfig`] once; `src/canary/` never sees raw input.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::raw::{RawGate, RawPrice};
use super::{Margin, Price, yaml_diagnostic};
use crate::error::{Diagnostic, Error, did_you_mean};
use crate::metrics::CanaryMetric;
use crate::results::Direction;
use crate::workspace::{FileSource, join_in_repo, parent_dir};

/// The metrics a canary measures, in the order reports list them (`metrics::CanaryMetric`).
pub const CANARY_METRICS: &[&str] = &[
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_shift_ms",
    "error_rate",
    "cost_per_request",
    "thumbs_down_rate",
    "quality",
    "hallucination_rate",
];

pub(super) fn default_direction(metric: &str) -> Direction {
    CanaryMetric::of(metric).map_or(Direction::Lower, CanaryMetric::default_direction)
}

/// The seed's alert rules, ready to switch on by name (`canary.presets`).
pub const PRESETS: &[&str] = &["quality-floor", "hallucination-ceiling", "p99-ceiling", "daily-cost"];

/// Prometheus steps per arm before a verdict, unless `canary.min_steps` says otherwise: the
/// default hour at one-minute steps holds 61.
pub const DEFAULT_MIN_STEPS: u64 = 10;

/// Above this share of unusable lines a canary run stops with exit 2.
pub const DEFAULT_MAX_BAD_SHARE: f64 = 0.01;

/// Records whose timestamp is earlier than the latest seen by more than this are out of order.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// `canary:` in the suite file, as written. `promptgate validate` and `run` parse it too, so an
/// unknown key is reported wherever the file is read.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub source: Spanned<RawSource>,
    /// The experiment this canary ships and its version, for `ledger record --canary` (the
    /// version defaults to the canary arm's value).
    pub experiment: Option<String>,
    pub version: Option<String>,
    pub min_samples: Option<Spanned<u64>>,
    /// Prometheus: steps per arm before any verdict (its values are steps, not requests).
    pub min_steps: Option<Spanned<u64>>,
    pub alpha: Option<Spanned<f64>>,
    pub max_bad_share: Option<Spanned<f64>>,
    pub max_clock_skew: Option<Spanned<String>>,
    /// Where an errored request the logs give no latency counts in latency quantiles.
    pub timeout_ms: Option<Spanned<f64>>,
    #[serde(default)]
    pub presets: Vec<Spanned<String>>,
    pub budget: Option<Spanned<RawCanaryBudget>>,
    #[serde(default)]
    pub gates: BTreeMap<String, Spanned<RawGate>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanaryBudget {
    pub daily_usd: f64,
    pub requests_per_day: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    #[serde(rename = "type")]
    pub kind: SourceKind,
    pub path: Option<Spanned<String>>,
    pub arm_field: Option<String>,
    pub arm_attribute: Option<String>,
    pub baseline: Option<String>,
    pub canary: Option<String>,
    pub fields: Option<RawFields>,
    pub url: Option<String>,
    pub step: Option<String>,
    #[serde(default)]
    pub queries: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Jsonl,
    Csv,
    Otlp,
    Prometheus,
}

/// Where each quantity is in a log record: a dotted path into a JSON line, a CSV column name.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawFields {
    pub timestamp: Option<String>,
    pub model: Option<String>,
    pub latency_ms: Option<String>,
    pub input_tokens: Option<String>,
    pub output_tokens: Option<String>,
    pub cached_input_tokens: Option<String>,
    pub cost_usd: Option<String>,
    pub error: Option<String>,
    pub thumbs_up: Option<String>,
    pub thumbs_down: Option<String>,
    pub quality: Option<String>,
    pub hallucination: Option<String>,
}

/// The resolved `canary:` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryConfig {
    pub config_path: String,
    pub source: Source,
    pub experiment: Option<String>,
    pub version: Option<String>,
    /// Requests per arm before any verdict, for logs and traces.
    pub min_samples: u64,
    /// Steps per arm before any verdict, for Prometheus series (each step's value is one
    /// observation, an aggregate of many requests).
    pub min_steps: u64,
    pub alpha: f64,
    pub max_bad_share: f64,
    pub max_clock_skew: Duration,
    /// An errored request without a logged latency counts at this many milliseconds in the
    /// latency quantiles (censored: it took at least that long, or failed outright), as an
    /// errored call counts at its provider's timeout in a gate.
    pub timeout_ms: f64,
    pub gates: Vec<CanaryGate>,
    /// `pricing:`: prices for logs that carry tokens and a model but no cost.
    pub pricing: BTreeMap<String, Price>,
    /// Where the gates came from, for the report ("defaults", "gates:", "canary.gates").
    pub gates_from: String,
}

/// One canary metric's rule: the shape of a PR gate, plus whether the user wrote it (a default
/// gate on a quantity the logs do not carry is left out rather than held forever).
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryGate {
    pub metric: String,
    pub direction: Direction,
    pub margin: Margin,
    pub alpha: f64,
    pub blocking: bool,
    /// Absolute objective on the canary's own value (≥ for `higher`, ≤ for `lower`).
    pub slo: Option<f64>,
    pub explicit: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// JSON lines or CSV request logs.
    Logs {
        format: LogFormat,
        path: String,
        arms: ArmSelector,
        fields: Box<Fields>,
    },
    /// OTLP JSON trace exports, one `ExportTraceServiceRequest` per line.
    Otlp { path: String, arms: ArmSelector },
    Prometheus {
        url: String,
        step: Duration,
        arms: ArmSelector,
        /// Metric name → PromQL with `$arm` standing for the arm's value.
        queries: BTreeMap<String, String>,
    },
}

impl Source {
    pub fn arms(&self) -> &ArmSelector {
        match self {
            Source::Logs { arms, .. } | Source::Otlp { arms, .. } | Source::Prometheus { arms, .. } => arms,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Jsonl,
    Csv,
}

/// Which field or attribute names the arm, and the values of each arm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmSelector {
    pub field: String,
    pub baseline: String,
    pub canary: String,
}

/// The resolved field map: every quantity's path, split at dots for JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub timestamp: String,
    pub model: String,
    pub latency_ms: String,
    pub input_tokens: String,
    pub output_tokens: String,
    pub cached_input_tokens: String,
    pub cost_usd: String,
    pub error: String,
    pub thumbs_up: String,
    pub thumbs_down: String,
    pub quality: String,
    pub hallucination: String,
    /// The quantities the config named: one of these in no record is an error (a typo in the
    /// map) when a gate reads it, where a default name in no record only means the logs do not
    /// carry it.
    pub explicit: Vec<&'static str>,
}

impl Fields {
    pub fn resolve(raw: Option<&RawFields>) -> Fields {
        let raw = raw.cloned().unwrap_or_default();
        let explicit = [
            ("timestamp", raw.timestamp.is_some()),
            ("model", raw.model.is_some()),
            ("latency_ms", raw.latency_ms.is_some()),
            ("input_tokens", raw.input_tokens.is_some()),
            ("output_tokens", raw.output_tokens.is_some()),
            ("cached_input_tokens", raw.cached_input_tokens.is_some()),
            ("cost_usd", raw.cost_usd.is_some()),
            ("error", raw.error.is_some()),
            ("thumbs_up", raw.thumbs_up.is_some()),
            ("thumbs_down", raw.thumbs_down.is_some()),
            ("quality", raw.quality.is_some()),
            ("hallucination", raw.hallucination.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        let or = |v: Option<String>, default: &str| v.unwrap_or_else(|| default.to_owned());
        Fields {
            timestamp: or(raw.timestamp, "timestamp"),
            model: or(raw.model, "model"),
            latency_ms: or(raw.latency_ms, "latency_ms"),
            input_tokens: or(raw.input_tokens, "input_tokens"),
            output_tokens: or(raw.output_tokens, "output_tokens"),
            cached_input_tokens: or(raw.cached_input_tokens, "cached_input_tokens"),
            cost_usd: or(raw.cost_usd, "cost_usd"),
            error: or(raw.error, "error"),
            thumbs_up: or(raw.thumbs_up, "thumbs_up"),
            thumbs_down: or(raw.thumbs_down, "thumbs_down"),
            quality: or(raw.quality, "quality"),
            hallucination: or(raw.hallucination, "hallucination"),
            explicit,
        }
    }
}

/// The part of a suite file `canary` reads; every other key is left to `promptgate validate`.
#[derive(Debug, Deserialize)]
struct CanaryFile {
    canary: Option<Spanned<RawCanary>>,
    #[serde(default)]
    pricing: BTreeMap<String, Spanned<RawPrice>>,
    #[serde(default)]
    gates: BTreeMap<String, Spanned<RawGate>>,
    /// Only their names: the one experiment of a file is the one its canary ships, unless
    /// `canary.experiment` says otherwise.
    #[serde(default)]
    experiments: Option<Vec<NamedExperiment>>,
}

#[derive(Debug, Deserialize)]
struct NamedExperiment {
    #[serde(default)]
    name: Option<String>,
}

/// Reads and resolves the `canary:` section of the suite file at `config_path`.
pub fn load_canary(source: &dyn FileSource, config_path: &str) -> Result<CanaryConfig, Error> {
    let text = source
        .read(config_path)
        .map_err(|e| {
            Error::from(
                Diagnostic::new(format!("cannot read `{config_path}`: {e:#}"))
                    .in_file(config_path)
                    .hint("name the file with --config; it must be UTF-8 text inside the repository"),
            )
        })?
        .ok_or_else(|| {
            Diagnostic::new(format!("no config file `{config_path}` in {}", source.label()))
                .hint("name it with --config FILE (a promptgate.yaml with a `canary:` section)")
        })?;
    let file: CanaryFile =
        serde_saphyr::from_str(&text).map_err(|e| yaml_diagnostic(config_path, &text, &e, "a canary config"))?;
    let at =
        |line: u64, column: u64, message: String| Diagnostic::new(message).in_file(config_path).at(&text, line, column);
    let Some(canary) = file.canary else {
        return Err(Diagnostic::new("the config has no `canary:` section")
            .in_file(config_path)
            .hint("add `canary: {source: {type: jsonl, path: logs/requests.jsonl, arm_field: variant, baseline: v1, canary: v2}}` (docs/canary.md)")
            .into());
    };
    let (line, column) = (canary.referenced.line(), canary.referenced.column());
    let raw = canary.value;
    let config_dir = parent_dir(config_path);

    // Each setting's problem is placed at the setting (it was placed at `canary:`'s first key).
    let place = |spanned: Option<(u64, u64)>| spanned.unwrap_or((line, column));
    let alpha = raw.alpha.as_ref().map_or(0.05, |a| a.value);
    if !(alpha > 0.0 && alpha < 0.5) {
        let (l, c) = place(raw.alpha.as_ref().map(spot));
        return Err(at(l, c, format!("canary.alpha must be between 0 and 0.5, got {alpha}"))
            .hint("alpha is the chance of calling a change that is not there: 0.05 is usual, 0.01 stricter")
            .into());
    }
    let max_bad_share = raw.max_bad_share.as_ref().map_or(DEFAULT_MAX_BAD_SHARE, |s| s.value);
    if !(0.0..=1.0).contains(&max_bad_share) {
        let (l, c) = place(raw.max_bad_share.as_ref().map(spot));
        return Err(at(
            l,
            c,
            format!("canary.max_bad_share must be a share between 0 and 1, got {max_bad_share}"),
        )
        .hint("0.01 stops the run when more than 1% of the lines cannot be used")
        .into());
    }
    let max_clock_skew = match &raw.max_clock_skew {
        None => DEFAULT_MAX_CLOCK_SKEW,
        Some(text_value) => parse_duration(&text_value.value).map_err(|why| {
            let (l, c) = spot(text_value);
            at(l, c, format!("canary.max_clock_skew: {why}")).hint(DURATION_HINT)
        })?,
    };
    let min_samples = raw.min_samples.as_ref().map_or(500, |s| s.value);
    if min_samples < 2 {
        let (l, c) = place(raw.min_samples.as_ref().map(spot));
        return Err(at(l, c, "canary.min_samples must be at least 2".to_owned())
            .hint("a verdict needs a spread in each arm; 500 requests per arm is a common start")
            .into());
    }
    let min_steps = raw.min_steps.as_ref().map_or(DEFAULT_MIN_STEPS, |s| s.value);
    if min_steps < 2 {
        let (l, c) = place(raw.min_steps.as_ref().map(spot));
        return Err(at(l, c, "canary.min_steps must be at least 2".to_owned())
            .hint(format!(
                "a verdict needs a spread in each arm; the default is {DEFAULT_MIN_STEPS} steps"
            ))
            .into());
    }

    let source_at = (raw.source.referenced.line(), raw.source.referenced.column());
    // A path that climbs out of the repository is placed at `path:` itself.
    if let Some(path) = &raw.source.value.path
        && let Err(e) = join_in_repo(config_dir, &path.value)
    {
        let (l, c) = spot(path);
        return Err(at(l, c, format!("source path {e}"))
            .hint("logs are read from inside the repository (copy or download them there first)")
            .into());
    }
    let src = resolve_source(&raw.source.value, config_dir).map_err(|(message, hint)| {
        let d = at(source_at.0, source_at.1, message);
        match hint {
            Some(h) => d.hint(h),
            None => d,
        }
    })?;

    // Gates: `canary.gates` when written (it overrides `gates:` as a whole: the canary is
    // judged on the gates its own section names, no more), else the canary metrics of
    // `gates:`, else the defaults; then presets.
    let mut written: BTreeMap<String, Spanned<RawGate>> = BTreeMap::new();
    let mut from = Vec::new();
    if raw.gates.is_empty() {
        let shared: Vec<_> = file
            .gates
            .into_iter()
            .filter(|(m, _)| CANARY_METRICS.contains(&m.as_str()))
            .collect();
        if !shared.is_empty() {
            from.push("gates:");
        }
        written.extend(shared);
    } else {
        from.push("canary.gates");
    }
    for (metric, gate) in raw.gates {
        if !CANARY_METRICS.contains(&metric.as_str()) {
            let hint = match did_you_mean(&metric, CANARY_METRICS.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("canary metrics: {}", CANARY_METRICS.join(", ")),
            };
            return Err(at(
                gate.referenced.line(),
                gate.referenced.column(),
                format!("canary gate on unknown metric `{metric}`"),
            )
            .hint(hint)
            .into());
        }
        written.insert(metric, gate);
    }
    let mut gates = Vec::new();
    for (metric, gate) in &written {
        gates.push(super::canary_gate::resolve(metric, gate, alpha, &at)?);
    }
    if gates.is_empty() {
        from.push("defaults");
        gates = default_canary_gates(alpha);
    }

    // Presets: the seed's alert rules as SLOs on the canary's own value.
    let presets: Vec<Spanned<String>> = if raw.presets.iter().any(|p| p.value == "seed") {
        PRESETS
            .iter()
            .map(|p| Spanned {
                value: (*p).to_owned(),
                referenced: raw.presets[0].referenced,
                defined: raw.presets[0].defined,
            })
            .collect()
    } else {
        raw.presets.clone()
    };
    for preset in &presets {
        let (l, c) = (preset.referenced.line(), preset.referenced.column());
        let (metric, slo) = match preset.value.as_str() {
            "quality-floor" => ("quality", 0.80),
            "hallucination-ceiling" => ("hallucination_rate", 0.05),
            "p99-ceiling" => ("latency_p99_ms", 2000.0),
            "daily-cost" => {
                let Some(spanned) = &raw.budget else {
                    return Err(at(l, c, "the `daily-cost` preset needs `canary.budget`".to_owned())
                        .hint("add `budget: {daily_usd: 120, requests_per_day: 50000}`: the alert fires above 120% of the daily budget")
                        .into());
                };
                let budget = &spanned.value;
                if !(budget.daily_usd > 0.0 && budget.requests_per_day > 0.0) {
                    let (bl, bc) = spot(spanned);
                    return Err(at(
                        bl,
                        bc,
                        format!(
                            "canary.budget needs positive `daily_usd` and `requests_per_day`, got {} and {}",
                            budget.daily_usd, budget.requests_per_day
                        ),
                    )
                    .hint("the service's daily spend and requests, e.g. `budget: {daily_usd: 120, requests_per_day: 50000}`")
                    .into());
                }
                ("cost_per_request", 1.2 * budget.daily_usd / budget.requests_per_day)
            }
            other => {
                let hint = match did_you_mean(other, PRESETS.iter().copied().chain(["seed"])) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("presets: seed (all four), {}", PRESETS.join(", ")),
                };
                return Err(at(l, c, format!("unknown canary preset `{other}`")).hint(hint).into());
            }
        };
        match gates.iter_mut().find(|g| g.metric == metric) {
            Some(g) => {
                g.slo = Some(g.slo.map_or(slo, |s| match g.direction {
                    Direction::Lower => s.min(slo),
                    Direction::Higher => s.max(slo),
                }));
                g.blocking = true;
                g.explicit = true;
            }
            None => gates.push(CanaryGate {
                metric: metric.to_owned(),
                direction: default_direction(metric),
                margin: default_margin(metric),
                alpha,
                blocking: true,
                slo: Some(slo),
                explicit: true,
            }),
        }
    }
    if !presets.is_empty() {
        from.push("presets");
    }
    // A difference in error rates is always shown: gates that leave `error_rate` out get it,
    // informing (where the data carries errors: logs and traces always do).
    // Prometheus series carry only the metrics queried.
    let carries_errors = match &src {
        Source::Prometheus { queries, .. } => queries.contains_key("error_rate"),
        _ => true,
    };
    if !gates.iter().any(|g| g.metric == "error_rate") && carries_errors {
        gates.push(CanaryGate {
            blocking: false,
            ..default_gate("error_rate", alpha)
        });
    }
    gates.sort_by_key(|g| CANARY_METRICS.iter().position(|m| *m == g.metric));
    let timeout_ms = match &raw.timeout_ms {
        None => crate::metrics::DEFAULT_TIMEOUT_MS as f64,
        Some(t) if t.value.is_finite() && t.value > 0.0 => t.value,
        Some(t) => {
            return Err(at(
                t.referenced.line(),
                t.referenced.column(),
                format!("canary.timeout_ms must be a positive number of milliseconds, got {}", t.value),
            )
            .hint("the time after which your service gives up on a request, e.g. `timeout_ms: 30000`; 60,000 when left out")
            .into());
        }
    };

    let pricing = super::prices(file.pricing, &at)?;

    let canary_arm = src.arms().canary.clone();
    Ok(CanaryConfig {
        config_path: config_path.to_owned(),
        source: src,
        experiment: raw.experiment.or_else(|| match file.experiments.as_deref() {
            Some([only]) => only.name.clone(),
            _ => None,
        }),
        // The canary arm's value is its version in most logs (`v1.3.0`); `version:` says
        // otherwise when the logs name a deployment instead.
        version: raw.version.or(Some(canary_arm)),
        min_samples,
        min_steps,
        alpha,
        max_bad_share,
        max_clock_skew,
        timeout_ms,
        gates,
        pricing,
        gates_from: from.join(" + "),
    })
}

const DURATION_HINT: &str = "write a duration such as `90s`, `15m`, `24h` or `7d`";

/// `90s`, `15m`, `24h`, `7d` (also `500ms`, `2w`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        "w" => value * 7.0 * 86_400.0,
        "" => return Err(format!("`{text}` has no unit")),
        other => return Err(format!("`{other}` is not a unit of time")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Where a setting is written: its line and column.
fn spot<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

fn resolve_source(raw: &RawSource, config_dir: &str) -> Result<Source, (String, Option<String>)> {
    let need = |value: &Option<String>, key: &str, example: &str| {
        value.clone().ok_or_else(|| {
            (
                format!("the {} source needs `{key}`", kind_name(raw.kind)),
                Some(format!("e.g. `{key}: {example}`")),
            )
        })
    };
    let baseline = need(&raw.baseline, "baseline", "v1.2.3")?;
    let canary = need(&raw.canary, "canary", "v1.3.0")?;
    if baseline == canary {
        return Err((
            format!("`baseline` and `canary` are both `{baseline}`"),
            Some("name the version serving the baseline and the one under test".to_owned()),
        ));
    }
    let path = |value: &Option<Spanned<String>>| -> Result<String, (String, Option<String>)> {
        let p = need(&value.as_ref().map(|v| v.value.clone()), "path", "logs/requests.jsonl")?;
        join_in_repo(config_dir, &p).map_err(|e| {
            (
                format!("source path {e}"),
                Some("logs are read from inside the repository (copy or download them there first)".to_owned()),
            )
        })
    };
    let reject = |present: bool, key: &str| {
        if present {
            Err((
                format!("`{key}` does not apply to a {} source", kind_name(raw.kind)),
                Some("remove it".to_owned()),
            ))
        } else {
            Ok(())
        }
    };
    Ok(match raw.kind {
        SourceKind::Jsonl | SourceKind::Csv => {
            reject(raw.arm_attribute.is_some(), "arm_attribute")?;
            reject(raw.url.is_some(), "url")?;
            reject(!raw.queries.is_empty(), "queries")?;
            Source::Logs {
                format: if raw.kind == SourceKind::Jsonl {
                    LogFormat::Jsonl
                } else {
                    LogFormat::Csv
                },
                path: path(&raw.path)?,
                arms: ArmSelector {
                    field: need(&raw.arm_field, "arm_field", "variant")?,
                    baseline,
                    canary,
                },
                fields: Box::new(Fields::resolve(raw.fields.as_ref())),
            }
        }
        SourceKind::Otlp => {
            reject(raw.fields.is_some(), "fields")?;
            reject(raw.arm_field.is_some(), "arm_field")?;
            reject(raw.url.is_some(), "url")?;
            Source::Otlp {
                path: path(&raw.path)?,
                arms: ArmSelector {
                    field: need(&raw.arm_attribute, "arm_attribute", "service.version")?,
                    baseline,
                    canary,
                },
            }
        }
        SourceKind::Prometheus => {
            reject(raw.fields.is_some(), "fields")?;
            reject(raw.path.is_some(), "path")?;
            let url = need(&raw.url, "url", "\"http://127.0.0.1:9090\"")?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err((
                    format!("`{url}` is not an http(s) URL"),
                    Some("e.g. `url: \"http://prometheus:9090\"`".to_owned()),
                ));
            }
            let step = match &raw.step {
                None => Duration::from_secs(60),
                Some(s) => parse_duration(s).map_err(|why| (format!("step: {why}"), Some(DURATION_HINT.to_owned())))?,
            };
            if raw.queries.is_empty() {
                return Err((
                    "the prometheus source needs `queries`".to_owned(),
                    Some("map a canary metric to PromQL with `$arm`, e.g. `queries: {error_rate: 'sum(rate(llm_errors_total{version=\"$arm\"}[5m])) / sum(rate(llm_requests_total{version=\"$arm\"}[5m]))'}`".to_owned()),
                ));
            }
            for (metric, query) in &raw.queries {
                if !CANARY_METRICS.contains(&metric.as_str()) || metric == "latency_shift_ms" {
                    let hint = match did_you_mean(metric, CANARY_METRICS.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("canary metrics: {}", CANARY_METRICS.join(", ")),
                    };
                    return Err((format!("query for unknown metric `{metric}`"), Some(hint)));
                }
                if !query.contains("$arm") {
                    return Err((
                        format!("the query for `{metric}` does not mention `$arm`"),
                        Some("write `$arm` where the version goes, e.g. `{version=\"$arm\"}`, so each arm gets its own series".to_owned()),
                    ));
                }
            }
            Source::Prometheus {
                url: url.trim_end_matches('/').to_owned(),
                step,
                arms: ArmSelector {
                    field: raw.arm_field.clone().unwrap_or_else(|| "$arm".to_owned()),
                    baseline,
                    canary,
                },
                queries: raw.queries.clone(),
            }
        }
    })
}

fn kind_name(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Jsonl => "jsonl",
        SourceKind::Csv => "csv",
        SourceKind::Otlp => "otlp",
        SourceKind::Prometheus => "prometheus",
    }
}

/// Margins a canary gate gets when the config gives none: relative for amounts, absolute
/// shares for rates and scores.
pub(super) fn default_margin(metric: &str) -> Margin {
    match metric {
        "latency_p50_ms" | "latency_p95_ms" | "cost_per_request" => Margin::Relative(0.10),
        "latency_p99_ms" => Margin::Relative(0.20),
        "latency_shift_ms" => Margin::Absolute(50.0),
        "quality" | "thumbs_down_rate" => Margin::Absolute(0.02),
        _ => Margin::Absolute(0.01),
    }
}

/// Errors, tails and hallucinations hold a canary back by default; the rest inform.
pub(super) fn default_blocking(metric: &str) -> bool {
    matches!(
        metric,
        "latency_p95_ms" | "latency_p99_ms" | "error_rate" | "hallucination_rate"
    )
}

/// The gates of a canary config that names none. Each applies only where the logs carry its
/// quantity (`explicit: false`).
fn default_canary_gates(alpha: f64) -> Vec<CanaryGate> {
    [
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
        "error_rate",
        "cost_per_request",
        "thumbs_down_rate",
        "quality",
        "hallucination_rate",
    ]
    .iter()
    .map(|m| default_gate(m, alpha))
    .collect()
}

/// `metric`'s gate as the defaults have it: applied only where the logs carry its quantity.
fn default_gate(metric: &str, alpha: f64) -> CanaryGate {
    CanaryGate {
        metric: metric.to_owned(),
        direction: default_direction(metric),
        margin: default_margin(metric),
        alpha,
        blocking: default_blocking(metric),
        slo: None,
        explicit: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::MemTree;

    #[track_caller]
    fn load(text: &str) -> Result<CanaryConfig, String> {
        let tree = MemTree::new([("promptgate.yaml", text)]);
        load_canary(&tree, "promptgate.yaml").map_err(|e| e.to_string())
    }

    const SOURCE: &str =
        "canary:\n  source: {type: jsonl, path: logs/r.jsonl, arm_field: variant, baseline: a, canary: b}\n";

    #[test]
    fn a_canary_only_config_needs_no_experiments() {
        let config = load(&format!("version: 1\nexperiments: []\n{SOURCE}")).unwrap();
        assert_eq!(config.gates_from, "defaults");
        assert_eq!(config.min_samples, 500);
        let Source::Logs { path, fields, .. } = &config.source else {
            panic!("logs expected")
        };
        assert_eq!(path, "logs/r.jsonl");
        assert_eq!(fields.latency_ms, "latency_ms");
    }

    #[test]
    fn a_timeout_that_is_no_positive_number_of_milliseconds_is_bad_input() {
        assert_eq!(
            load(&format!("{SOURCE}  timeout_ms: 30000\n")).unwrap().timeout_ms,
            30_000.0
        );
        assert_eq!(load(SOURCE).unwrap().timeout_ms, 60_000.0);
        for bad in ["0", "-5", ".inf"] {
            let e = load(&format!("{SOURCE}  timeout_ms: {bad}\n")).unwrap_err().to_string();
            assert!(
                e.contains("canary.timeout_ms must be a positive number of milliseconds") || bad == ".inf",
                "{e}"
            );
            assert!(e.contains("hint:"), "{e}");
        }
    }

    /// Each setting's problem is placed at the setting (the audit: `min_samples: 0` on line 4
    /// was reported at `canary:`'s first key, a budget's without a hint, a climbing path at
    /// `type:`).
    #[test]
    fn a_settings_problem_is_placed_at_the_setting() {
        let base = "version: 1\nexperiments: []\ncanary:\n  source:\n    type: jsonl\n    path: logs/r.jsonl\n    arm_field: variant\n    baseline: a\n    canary: b\n";
        for (extra, message, at) in [
            (
                "  min_samples: 0\n",
                "canary.min_samples must be at least 2",
                "promptgate.yaml:10:16",
            ),
            (
                "  min_steps: 1\n",
                "canary.min_steps must be at least 2",
                "promptgate.yaml:10:14",
            ),
            (
                "  max_bad_share: 2\n",
                "canary.max_bad_share must be a share",
                "promptgate.yaml:10:18",
            ),
            (
                "  alpha: 0.7\n",
                "canary.alpha must be between 0 and 0.5",
                "promptgate.yaml:10:10",
            ),
            (
                "  max_clock_skew: soon\n",
                "canary.max_clock_skew",
                "promptgate.yaml:10:19",
            ),
            (
                "  presets: [daily-cost]\n  budget: {daily_usd: -40, requests_per_day: 100}\n",
                "canary.budget needs positive `daily_usd` and `requests_per_day`, got -40 and 100",
                "promptgate.yaml:11:11",
            ),
        ] {
            let e = load(&format!("{base}{extra}")).unwrap_err();
            assert!(
                e.contains(message) && e.contains(at) && e.contains("hint:"),
                "{extra:?}: {e}"
            );
        }
        let e = load(&base.replace("logs/r.jsonl", "../../etc/passwd")).unwrap_err();
        assert!(e.contains("source path") && e.contains("promptgate.yaml:6:11"), "{e}");
    }

    #[test]
    fn canary_gates_override_shared_gates_as_a_whole() {
        let shared = "gates:\n  pass_rate: {margin: 0.02}\n  latency_p95_ms: {margin: \"15%\"}\n  cost_per_request: {margin: \"10%\", blocking: true}\n";
        let config = load(&format!("{shared}{SOURCE}  gates:\n    error_rate: {{margin: 0.01}}\n")).unwrap();
        let names: Vec<(&str, Margin)> = config.gates.iter().map(|g| (g.metric.as_str(), g.margin)).collect();
        assert_eq!(names, [("error_rate", Margin::Absolute(0.01))]);
        assert_eq!(config.gates_from, "canary.gates");
        // Without `canary.gates`, the canary metrics of `gates:` are the canary's.
        let config = load(&format!("{shared}{SOURCE}")).unwrap();
        let names: Vec<&str> = config.gates.iter().map(|g| g.metric.as_str()).collect();
        // ...with `error_rate` informing: a difference in error rates is always shown.
        assert_eq!(names, ["latency_p95_ms", "error_rate", "cost_per_request"]);
        assert!(!config.gates[1].blocking && !config.gates[1].explicit);
        assert_eq!(config.gates_from, "gates:");
    }

    #[test]
    fn the_files_one_experiment_is_the_canarys_unless_named() {
        let one = "experiments:\n  - {name: support, variant: v.yaml, dataset: d.jsonl}\n";
        assert_eq!(
            load(&format!("{one}{SOURCE}")).unwrap().experiment.as_deref(),
            Some("support")
        );
        let named = format!("{one}{SOURCE}  experiment: billing\n");
        assert_eq!(load(&named).unwrap().experiment.as_deref(), Some("billing"));
        let two = format!("{one}  - {{name: billing, variant: w.yaml, dataset: e.jsonl}}\n{SOURCE}");
        assert_eq!(load(&two).unwrap().experiment, None);
        assert_eq!(load(&format!("experiments: []\n{SOURCE}")).unwrap().experiment, None);
    }

    #[test]
    fn presets_become_slos() {
        let text = format!("{SOURCE}  presets: [seed]\n  budget: {{daily_usd: 100, requests_per_day: 10000}}\n");
        let config = load(&text).unwrap();
        let slo = |m: &str| config.gates.iter().find(|g| g.metric == m).and_then(|g| g.slo);
        assert_eq!(slo("quality"), Some(0.80));
        assert_eq!(slo("hallucination_rate"), Some(0.05));
        assert_eq!(slo("latency_p99_ms"), Some(2000.0));
        assert!((slo("cost_per_request").unwrap() - 0.012).abs() < 1e-12);
    }

    #[test]
    fn config_errors_point_and_hint() {
        let e = load(&format!("{SOURCE}  gates:\n    latncy_p95_ms: {{margin: \"10%\"}}\n")).unwrap_err();
        assert!(
            e.contains("unknown metric `latncy_p95_ms`") && e.contains("did you mean `latency_p95_ms`?"),
            "{e}"
        );
        let e = load(&format!("{SOURCE}  gates:\n    error_rate: {{margin: 0}}\n")).unwrap_err();
        assert!(e.contains("zero margin"), "{e}");
        // A direction against the metric's, and a rate's margin of its whole range (a review
        // of the gates' own checks found the canary's had neither).
        let e = load(&format!(
            "{SOURCE}  gates:\n    latency_p95_ms: {{direction: higher}}\n"
        ))
        .unwrap_err();
        assert!(e.contains("`direction: higher` contradicts the metric"), "{e}");
        let e = load(&format!("{SOURCE}  gates:\n    error_rate: {{margin: 2}}\n")).unwrap_err();
        assert!(
            e.contains("a margin of 2 is a rate's whole range") && e.contains("`2` looks meant as `0.02`"),
            "{e}"
        );
        assert!(
            load(&format!(
                "{SOURCE}  gates:\n    quality: {{direction: higher, margin: 2}}\n"
            ))
            .is_ok()
        );
        let e = load(&format!("{SOURCE}  presets: [daily-cost]\n")).unwrap_err();
        assert!(e.contains("needs `canary.budget`"), "{e}");
        let e = load("version: 1\n").unwrap_err();
        assert!(e.contains("no `canary:` section"), "{e}");
        let e = load("canary:\n  source: {type: jsonl, path: ../x.jsonl, arm_field: v, baseline: a, canary: b}\n")
            .unwrap_err();
        assert!(e.contains("leaves the repository"), "{e}");
        let e = load("canary:\n  source: {type: prometheus, url: \"http://x\", baseline: a, canary: b, queries: {error_rate: 'up'}}\n")
            .unwrap_err();
        assert!(e.contains("does not mention `$arm`"), "{e}");
        let e = load(&format!("{SOURCE}  min_sample: 3\n")).unwrap_err();
        assert!(e.contains("min_samples"), "{e}");
        for key in ["min_samples", "min_steps"] {
            let e = load(&format!("{SOURCE}  {key}: 1\n")).unwrap_err();
            assert!(e.contains(&format!("canary.{key} must be at least 2")), "{e}");
        }
        assert_eq!(load(SOURCE).unwrap().min_steps, DEFAULT_MIN_STEPS);
        assert_eq!(load(&format!("{SOURCE}  min_steps: 30\n")).unwrap().min_steps, 30);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
    }
}
