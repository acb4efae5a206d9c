//! The suite: `promptgate.yaml`, the variant configs it names, their prompt templates and the
//! datasets, loaded from one tree and validated once.
//!
//! [`load`] turns the files into a [`Suite`]; the rest of the program never sees raw input.
//! Every problem is a [`Diagnostic`] naming the file, line and column, with a hint.

mod assertions;
pub mod canary;
mod canary_gate;
mod dataset;
mod diag;
mod experiment;
mod gates;
mod judges;
mod model;
mod patterns;
mod probe;
mod problems;
pub mod raw;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use globset::{GlobSet, GlobSetBuilder};
use regex::Regex;
use serde_json::Value;

use crate::error::{Diagnostic, Error, did_you_mean};
use crate::results::Direction;
use crate::workspace::{FileSource, Object, ObjectKind, join_in_repo, parent_dir};

pub use dataset::QuoteScan;
pub use diag::yaml_diagnostic;
pub use raw::{Margin, ProviderKind};
pub use template::Prompt;

pub(crate) use assertions::resolve_assertion;
pub use experiment::{load_base_experiment, load_experiment};
pub use gates::default_direction;
use gates::{check_gate_metrics, default_blocking, default_gates};
pub use model::*;

/// The default suite file, at the repository root.
pub const DEFAULT_CONFIG: &str = "promptgate.yaml";

/// The most cases one dataset may hold: a run's memory grows with cases × repeats × arms.
pub const MAX_CASES: usize = 100_000;

/// The most repeats of a case: each is a call per arm, and a plan holds every call's job.
pub const MAX_REPEATS: u32 = 100;

/// The largest prompt template (or partial) read: prompts are rendered once per case.
pub const MAX_PROMPT_BYTES: usize = 1 << 20;
// A commit's reader keeps every prompt and partial it read: a render reads them for every case.
const _: () = assert!(MAX_PROMPT_BYTES <= crate::workspace::REMEMBERED_MAX);

/// Metrics every experiment reports, besides its scorers.
pub const BUILTIN_METRICS: &[&str] = &[
    "pass_rate",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "cost_per_request",
];

/// Loads and validates the whole suite; the first problem found is the error.
pub fn load(source: Arc<dyn FileSource>, config_path: &str) -> Result<Suite, Error> {
    let (mut suite, decls) = load_config(&*source, config_path)?;
    for decl in &decls {
        suite.experiments.push(load_experiment(&source, &suite, decl)?);
    }
    check_gate_metrics(&*source, &suite).map_err(problems::first)?;
    judges::check(&*source, &suite)?;
    judges::check_embedder(&*source, &suite)?;
    Ok(suite)
}

/// Loads the suite and reports every problem found, for `validate`.
pub fn lint(source: Arc<dyn FileSource>, config_path: &str) -> Result<Suite, Vec<Error>> {
    let (mut suite, decls, mut errors) = match load_config(&*source, config_path) {
        Ok((suite, decls)) => (suite, decls, Vec::new()),
        Err(first) => settings_problems(&*source, config_path, first)?,
    };
    let mut loaded = true;
    for decl in &decls {
        match experiment::load_experiment_all(&source, &suite, decl, None) {
            Ok(e) => suite.experiments.push(e),
            Err(es) => {
                loaded = false;
                errors.extend(es);
            }
        }
    }
    // The gates and judges are checked against what the experiments measure: once they all
    // loaded (a gate on a metric only a failed experiment feeds is not unknown).
    if loaded {
        errors.extend(check_gate_metrics(&*source, &suite).err().into_iter().flatten());
        let judges = judges::check(&*source, &suite).and_then(|()| judges::check_embedder(&*source, &suite));
        errors.extend(judges.err());
    }
    if errors.is_empty() {
        Ok(suite)
    } else {
        Err(problems::distinct(errors))
    }
}

/// Every problem of a suite file that did not load (`first`, its first): each experiment
/// declaration's, when the settings themselves read; else each unknown key (the file read
/// again without it finds the next: serde stops at the first) and each section and entry read
/// on its own. When unknown keys were all that stopped it, the suite read without them, to
/// check on (its experiments' files and gates, whose problems a misspelt key hid), with them.
fn settings_problems(source: &dyn FileSource, config_path: &str, first: Error) -> Result<Parts, Vec<Error>> {
    let text = source.read(config_path).ok().flatten();
    if let Some(Ok((_, _, problems))) = text.clone().map(|t| settings_parts(config_path, t))
        && !problems.is_empty()
    {
        return Err(problems::in_file_order(problems));
    }
    let (mut errors, clean) = problems::unknown_keys_after(first, config_path, text.clone(), |masked| {
        settings_from(config_path, masked).err()
    });
    if let Some(text) = &text {
        let shapes = probe::suite_errors(text);
        errors.extend(
            shapes
                .iter()
                .map(|e| yaml_diagnostic(config_path, text, e, "a promptgate suite").into()),
        );
    }
    let unknown_keys_only = errors
        .iter()
        .all(|e| matches!(e, Error::Input(d) if d.message.starts_with("unknown key `")));
    let Some(blanked) = clean.filter(|_| unknown_keys_only) else {
        return Err(problems::in_file_order(problems::distinct(errors)));
    };
    // The file without its unknown keys: its settings' own problems (a review's `alpha: 0.5`
    // beside a misspelt key showed only the key), then, when it loads, what lies behind. A
    // field missing is the blanking's own doing (its key was the misspelt one): not another.
    match settings_parts(config_path, blanked) {
        Ok((suite, decls, more)) => {
            errors.extend(more);
            let errors = problems::in_file_order(problems::distinct(errors));
            if decls.is_empty() {
                Err(errors)
            } else {
                Ok((suite, decls, errors))
            }
        }
        Err(e) => {
            if !matches!(&e, Error::Input(d) if d.message.starts_with("missing field")) {
                errors.push(e);
            }
            Err(problems::in_file_order(problems::distinct(errors)))
        }
    }
}

/// An experiment as declared in the suite file, before its files are read.
pub struct ExperimentDecl {
    raw: raw::RawExperiment,
}

impl ExperimentDecl {
    pub fn name(&self) -> &str {
        &self.raw.name.value
    }
}

/// Whether the suite file is a canary-only config: a `canary:` section and no experiments
/// (`experiments: []`, or none), which `promptgate canary` reads and a gate run refuses.
pub fn canary_only(source: &dyn FileSource, config_path: &str) -> bool {
    let Some(config) = top_level(source, config_path) else {
        return false;
    };
    let no_experiments = match config.get("experiments") {
        None | Some(serde_json::Value::Null) => true,
        Some(serde_json::Value::Array(experiments)) => experiments.is_empty(),
        Some(_) => false,
    };
    config.contains_key("canary") && no_experiments
}

/// Whether the suite file has a `canary:` section.
pub fn has_canary(source: &dyn FileSource, config_path: &str) -> bool {
    top_level(source, config_path).is_some_and(|config| config.contains_key("canary"))
}

/// The suite file's top-level mapping, if it reads as one.
fn top_level(source: &dyn FileSource, config_path: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = source.read(config_path).ok()??;
    match serde_saphyr::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(config)) => Some(config),
        _ => None,
    }
}

/// Reads and validates the suite file alone.
pub fn load_config(source: &dyn FileSource, config_path: &str) -> Result<(Suite, Vec<ExperimentDecl>), Error> {
    let (suite, decls) = load_settings(source, config_path)?;
    if decls.is_empty() {
        return Err(Diagnostic::new("the suite has no experiments")
            .in_file(config_path)
            .hint("add one under `experiments:` (see `promptgate init`)")
            .into());
    }
    Ok((suite, decls))
}

/// The suite's settings and gates, with or without experiments: what `ledger show` reads for
/// its gates' margins (a canary-only config has `experiments: []`).
pub fn load_gates(source: &dyn FileSource, config_path: &str) -> Result<Suite, Error> {
    load_settings(source, config_path).map(|(suite, _)| suite)
}

/// The suite's providers, defaults, pricing and gates, checked as a gate loads them, and its
/// experiments' declarations, unread: what `judge-check` reads, which needs a judge, not an
/// experiment (a config may have `experiments: []`).
pub fn load_judges(source: &dyn FileSource, config_path: &str) -> Result<Suite, Error> {
    let (suite, _) = load_settings(source, config_path)?;
    judges::check(source, &suite)?;
    Ok(suite)
}

/// [`load_config`] without requiring an experiment.
fn load_settings(source: &dyn FileSource, config_path: &str) -> Result<(Suite, Vec<ExperimentDecl>), Error> {
    let text = source
        .read(config_path)
        .map_err(|e| unreadable(config_path, &e))?
        .ok_or_else(|| {
            Diagnostic::new(format!("no suite file `{config_path}` in {}", source.label()))
                .hint("create one with `promptgate init`, or name it with --config")
        })?;
    settings_from(config_path, text)
}

/// [`load_settings`] of the suite file's `text`.
fn settings_from(config_path: &str, text: String) -> Result<(Suite, Vec<ExperimentDecl>), Error> {
    let (suite, decls, problems) = settings_parts(config_path, text)?;
    match problems.into_iter().next() {
        Some(first) => Err(first),
        None => Ok((suite, decls)),
    }
}

/// [`settings_from`], the experiments' declarations checked whole: the settings and the sound
/// declarations, and every problem of the others (a setting's own error stops it, as before).
type Parts = (Suite, Vec<ExperimentDecl>, Vec<Error>);

fn settings_parts(config_path: &str, text: String) -> Result<Parts, Error> {
    if text.trim().is_empty() {
        return Err(Diagnostic::new("the suite file is empty")
            .in_file(config_path)
            .hint("`promptgate init` writes a starting point")
            .into());
    }
    let raw: raw::RawSuite =
        serde_saphyr::from_str(&text).map_err(|e| yaml_diagnostic(config_path, &text, &e, "a promptgate suite"))?;
    let at =
        |line: u64, column: u64, message: String| Diagnostic::new(message).in_file(config_path).at(&text, line, column);

    if raw.version.value != 1 {
        return Err(at(
            raw.version.referenced.line(),
            raw.version.referenced.column(),
            format!("unsupported suite version {}", raw.version.value),
        )
        .hint("this promptgate reads `version: 1`")
        .into());
    }

    // Each setting's problem is kept and the check goes on, so `validate` reports them all (a
    // run stops at the first: `settings_from`).
    let mut problems: Vec<Error> = Vec::new();
    let defaults_raw = raw.defaults;
    let mut providers = BTreeMap::new();
    for (name, p) in raw.providers {
        for variable in p.api_key_env.iter().chain(&p.env) {
            if let Some(problem) = crate::secrets::refused_variable(variable) {
                // The provider's own entry: its name's line, then the first line from there
                // that names the variable (two providers may name the same one).
                let entry = text
                    .lines()
                    .position(|l| {
                        let l = l.trim_start().trim_start_matches(['"', '\'']);
                        l.strip_prefix(name.as_str())
                            .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
                    })
                    .unwrap_or(0);
                let (line, column) = text
                    .lines()
                    .enumerate()
                    .skip(entry)
                    .find(|(_, l)| l.contains(variable.as_str()) && (l.contains("env")))
                    .and_then(|(i, l)| Some((i as u64 + 1, l[..l.find(variable.as_str())?].chars().count() as u64 + 1)))
                    .unwrap_or((0, 0));
                problems.push(at(line, column, format!("provider `{name}`: {problem}"))
                    .hint("the GitHub token is promptgate's own, for publishing; a provider or program never receives it (name a variable of the provider's own key)")
                    .into());
            }
        }
        let concurrency = p
            .concurrency
            .as_ref()
            .map_or(if p.kind == ProviderKind::Mock { 64 } else { 8 }, |c| c.value);
        if let Some(c) = p.concurrency.as_ref().filter(|c| c.value == 0) {
            problems.push(
                at(
                    c.referenced.line(),
                    c.referenced.column(),
                    format!("provider `{name}`: concurrency must be at least 1"),
                )
                .hint("leave `concurrency` out for the provider's default (8; the mock 64), or give a positive number")
                .into(),
            );
        }
        // A limit of 0 would never let a call go (the run would wait for ever), a timeout of 0
        // fail every call before it is sent.
        let zero = |field: &str, at: Option<&serde_saphyr::Location>, hint: &str| -> Result<(), Error> {
            match at {
                Some(loc) => Err(
                    Diagnostic::new(format!("provider `{name}`: {field} must be at least 1, got 0"))
                        .in_file(config_path)
                        .at(&text, loc.line(), loc.column())
                        .hint(hint.to_owned())
                        .into(),
                ),
                None => Ok(()),
            }
        };
        let limit_hint = "leave it out for no limit, or give the provider's limit per minute";
        fn zero_at(value: Option<(u64, &serde_saphyr::Location)>) -> Option<&serde_saphyr::Location> {
            value.filter(|(v, _)| *v == 0).map(|(_, at)| at)
        }
        for (field, at, hint) in [
            (
                "requests_per_minute",
                zero_at(
                    p.requests_per_minute
                        .as_ref()
                        .map(|r| (u64::from(r.value), &r.referenced)),
                ),
                limit_hint,
            ),
            (
                "tokens_per_minute",
                zero_at(
                    p.tokens_per_minute
                        .as_ref()
                        .map(|r| (u64::from(r.value), &r.referenced)),
                ),
                limit_hint,
            ),
            (
                "timeout_ms",
                zero_at(p.timeout_ms.as_ref().map(|t| (t.value, &t.referenced))),
                "leave it out for 60,000 ms, or give the longest a call may take in milliseconds",
            ),
        ] {
            problems.extend(zero(field, at, hint).err());
        }
        providers.insert(
            name.clone(),
            ProviderSpec {
                name,
                kind: p.kind,
                api_key_env: p.api_key_env,
                base_url: p.base_url,
                concurrency,
                requests_per_minute: p.requests_per_minute.map(|r| r.value),
                tokens_per_minute: p.tokens_per_minute.map(|r| r.value),
                timeout_ms: p.timeout_ms.map_or(60_000, |t| t.value),
                max_retries: p.max_retries.unwrap_or(4),
                deployment: p.deployment,
                api_version: p.api_version,
                command: p.command,
                env: p.env,
                model: p.model,
            },
        );
    }
    if providers.is_empty() {
        // A suite without providers runs offline: the mock needs no configuration.
        providers.insert("mock".to_owned(), mock_spec("mock"));
    }

    // A provider named where none is configured: the error at the name, with the names there are.
    let unknown = |name: &serde_saphyr::Spanned<String>, what: &str, place: &str| -> Option<Error> {
        check_provider_name(&providers, &name.value).err().map(|hint| {
            at(
                name.referenced.line(),
                name.referenced.column(),
                format!("unknown {what} `{}`{place}", name.value),
            )
            .hint(hint)
            .into()
        })
    };
    let default_provider = match defaults_raw.as_ref().and_then(|d| d.provider.as_ref()) {
        Some(p) => {
            problems.extend(unknown(p, "provider", " in defaults"));
            p.value.clone()
        }
        None if providers.len() == 1 => providers.keys().next().cloned().unwrap_or_default(),
        // Several and none the default: each experiment names its own (checked with it).
        None => String::new(),
    };
    // A default's value and where it is written (the file's start when it is left out).
    fn given<T: Copy>(value: Option<&serde_saphyr::Spanned<T>>, default: T) -> (T, u64, u64) {
        value.map_or((default, 0, 0), |s| {
            (s.value, s.referenced.line(), s.referenced.column())
        })
    }
    let d = defaults_raw.as_ref();
    let (alpha, line, column) = given(d.and_then(|d| d.alpha.as_ref()), 0.05);
    if !(alpha > 0.0 && alpha < 0.5) {
        problems.push(
            at(
                line,
                column,
                format!("defaults.alpha must be between 0 and 0.5, got {alpha}"),
            )
            .hint("0.05 is the usual choice")
            .into(),
        );
    }
    let (max_error_rate, line, column) = given(d.and_then(|d| d.max_error_rate.as_ref()), 0.2);
    if !(0.0..=1.0).contains(&max_error_rate) {
        problems.push(
            at(
                line,
                column,
                format!("defaults.max_error_rate must be between 0 and 1, got {max_error_rate}"),
            )
            .hint("0.2 (the default) lets a fifth of an arm's calls fail before the run is an error")
            .into(),
        );
    }
    let (sequential_looks, line, column) = given(d.and_then(|d| d.sequential_looks.as_ref()), 4);
    if !(2..=10).contains(&sequential_looks) {
        problems.push(
            at(
                line,
                column,
                format!("defaults.sequential_looks must be between 2 and 10, got {sequential_looks}"),
            )
            .hint("4 looks (at 25%, 50%, 75% and 100% of the cases) is the usual choice")
            .into(),
        );
    }
    let (repeats, line, column) = given(d.and_then(|d| d.repeats.as_ref()), 1);
    let zero = (repeats == 0).then_some(("repeats", line, column));
    if repeats > MAX_REPEATS {
        problems.push(too_many_repeats("defaults.repeats", repeats, line, column, &at));
    }
    let (concurrency, line, column) = given(d.and_then(|d| d.concurrency.as_ref()), 16);
    for (key, line, column) in zero
        .into_iter()
        .chain((concurrency == 0).then_some(("concurrency", line, column)))
    {
        problems.push(
            at(line, column, format!("defaults.{key} must be at least 1, got 0"))
                .hint(format!("leave `{key}` out for its default, or give a positive number"))
                .into(),
        );
    }
    let defaults = Defaults {
        repeats,
        alpha,
        provider: default_provider,
        concurrency,
        max_error_rate,
        seed: d.and_then(|d| d.seed).unwrap_or(0),
        sequential: d.and_then(|d| d.sequential).unwrap_or(false),
        sequential_looks,
        judge: judges::settings(&providers, d, &at).unwrap_or_else(|e| {
            problems.push(e);
            None
        }),
        embedder: judges::embedder(&providers, d, &at).unwrap_or_else(|e| {
            problems.push(e);
            None
        }),
    };

    let (pricing, wrong_prices) = all_prices(raw.pricing, &at);
    problems.extend(wrong_prices);

    let budget = raw.budget.unwrap_or_default();
    for (name, usd) in [
        ("max_usd", &budget.max_usd),
        ("approve_above_usd", &budget.approve_above_usd),
    ] {
        if let Some(usd) = usd.as_ref().filter(|usd| !(usd.value.is_finite() && usd.value >= 0.0)) {
            problems.push(
                at(
                    usd.referenced.line(),
                    usd.referenced.column(),
                    format!(
                        "budget.{name} must be an amount of dollars, 0 or more, got {}",
                        usd.value
                    ),
                )
                .hint("for example `budget: {max_usd: 5.00}` stops the run before it spends more than $5")
                .into(),
            );
        }
    }
    let budget = Budget {
        approve_above_usd: budget.approve_above_usd.map(|s| s.value),
        max_usd: budget.max_usd.map(|s| s.value),
    };

    let mut gates = Vec::new();
    for (metric, g) in &raw.gates {
        let spec = &g.value;
        let direction = match spec.direction {
            Some(raw::RawDirection::Higher) => Direction::Higher,
            Some(raw::RawDirection::Lower) => Direction::Lower,
            None => default_direction(metric),
        };
        problems.extend(
            gates::contradictions(metric, spec.direction.is_some(), direction, spec.margin)
                .into_iter()
                .map(|(message, hint)| {
                    at(g.referenced.line(), g.referenced.column(), message)
                        .hint(hint)
                        .into()
                }),
        );
        let gate_alpha = spec.alpha.unwrap_or(alpha);
        // A gate without its own alpha takes the suite's, whose problem is reported once.
        if spec.alpha.is_some() && !(gate_alpha > 0.0 && gate_alpha < 0.5) {
            problems.push(
                at(
                    g.referenced.line(),
                    g.referenced.column(),
                    format!("gate `{metric}`: alpha must be between 0 and 0.5, got {gate_alpha}"),
                )
                .hint("alpha is the chance of calling a change that is not there: 0.05 is usual, 0.01 stricter")
                .into(),
            );
        }
        let slo = spec.slo.map(|s| s.resolve(metric)).transpose().unwrap_or_else(|e| {
            problems.push(
                at(g.referenced.line(), g.referenced.column(), e)
                    .hint("e.g. `slo: 800` for latency in ms, `slo: \"5%\"` or `slo: 0.05` for a rate")
                    .into(),
            );
            None
        });
        gates.push(GateSpec {
            metric: metric.clone(),
            direction,
            margin: spec.margin.unwrap_or(Margin::Absolute(0.0)),
            alpha: gate_alpha,
            blocking: spec.blocking.unwrap_or(default_blocking(metric)),
            slo,
            require_non_inferiority: spec.require == Some(raw::RawRequire::NonInferiority),
            require_equivalence: spec.require == Some(raw::RawRequire::Equivalence),
        });
    }
    if gates.is_empty() {
        gates = default_gates(alpha);
    }

    let mut seen = BTreeMap::new();
    let mut decls = Vec::new();
    // Each experiment's declaration is checked whole, every problem kept: `validate` reports
    // them all, a run the first.
    for e in raw.experiments {
        let line = e.name.referenced.line();
        let before = problems.len();
        if let Some(first) = seen.insert(e.name.value.clone(), line) {
            problems.push(
                at(
                    line,
                    e.name.referenced.column(),
                    format!("duplicate experiment name `{}`", e.name.value),
                )
                .hint(format!(
                    "the first `{}` is on line {first}; experiment names must be unique",
                    e.name.value
                ))
                .into(),
            );
        }
        if e.name.value.trim().is_empty() {
            problems.push(
                at(line, e.name.referenced.column(), "experiment name is empty".to_owned())
                    .hint("name it as the comment and results should call it, e.g. `name: customer-support`")
                    .into(),
            );
        }
        if e.provider.is_none() && defaults.provider.is_empty() {
            problems.push(
                at(
                    line,
                    e.name.referenced.column(),
                    format!(
                        "experiment `{}` names no provider, and several are configured with none the default",
                        e.name.value
                    ),
                )
                .hint(format!(
                    "set `provider:` on this experiment, or `defaults: {{provider: NAME}}` (one of {})",
                    providers
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .into(),
            );
        }
        let named =
            (e.provider.iter().map(|p| (p, "provider"))).chain(e.fallback.iter().map(|f| (f, "fallback provider")));
        for (name, what) in named {
            problems.extend(unknown(name, what, ""));
        }
        if let Some(r) = e.repeats.as_ref().filter(|r| r.value == 0) {
            problems.push(at(
                r.referenced.line(),
                r.referenced.column(),
                format!("experiment `{}`: repeats must be at least 1", e.name.value),
            )
            .hint("leave `repeats` out for the suite's default, or give how many times each case is sent (3 to 5 measure how steady the outputs are)")
            .into());
        }
        if let Some(r) = e.repeats.as_ref().filter(|r| r.value > MAX_REPEATS) {
            let what = format!("experiment `{}`: repeats", e.name.value);
            problems.push(too_many_repeats(
                &what,
                r.value,
                r.referenced.line(),
                r.referenced.column(),
                &at,
            ));
        }
        if problems.len() == before {
            decls.push(ExperimentDecl { raw: e });
        }
    }
    let suite = Suite {
        config_path: config_path.to_owned(),
        providers,
        pricing,
        requests_per_month: raw.traffic.map(|t| t.requests_per_month),
        budget,
        defaults,
        gates,
        experiments: Vec::new(),
    };
    Ok((suite, decls, problems))
}

/// The paths of the tree an `exec` provider's command names: arguments (the program included)
/// that are repository-relative paths of a file or folder. The command runs from the root of
/// its arm's tree, so that is what they are relative to.
pub fn command_paths(source: &dyn FileSource, spec: &ProviderSpec) -> Vec<(String, Object)> {
    if spec.kind != ProviderKind::Exec {
        return Vec::new();
    }
    paths_named(source, spec.command.as_deref().unwrap_or_default())
}

/// The files and folders of the tree a command's arguments name, relative to the root of the
/// tree it runs from (an `exec` provider's or scorer's).
pub fn paths_named(source: &dyn FileSource, command: &[String]) -> Vec<(String, Object)> {
    let mut paths = Vec::new();
    for arg in command {
        if arg.is_empty() || arg.starts_with('-') {
            continue;
        }
        let Ok(path) = join_in_repo("", arg) else { continue };
        if path.is_empty() {
            continue;
        }
        // A link leaving the repository is not a file of the tree: nothing of ours to track.
        if let Ok(Some(object)) = source.object(&path) {
            paths.push((path, object));
        }
    }
    paths
}

/// `what` (a `repeats` setting) asks for more repeats than [`MAX_REPEATS`].
fn too_many_repeats(
    what: &str,
    repeats: u32,
    line: u64,
    column: u64,
    at: &impl Fn(u64, u64, String) -> Diagnostic,
) -> Error {
    at(line, column, format!("{what} must be at most {MAX_REPEATS}, got {repeats}"))
        .hint("each repeat is one more call per case and arm: 3 to 5 measure how steady the outputs are; for more evidence add cases")
        .into()
}

fn with_hint(d: Diagnostic, hint: Option<String>) -> Diagnostic {
    match hint {
        Some(h) => d.hint(h),
        None => d,
    }
}

fn read_required(source: &dyn FileSource, path: &str, missing: impl FnOnce() -> Diagnostic) -> Result<String, Error> {
    match source.read(path) {
        Ok(Some(text)) => Ok(text),
        Ok(None) => Err(missing().into()),
        Err(e) => Err(unreadable(path, &e)),
    }
}

/// A file the suite names exists but cannot be used: not UTF-8, a link leaving the repository.
/// That is the user's input, not a run failure.
fn unreadable(path: &str, err: &anyhow::Error) -> Error {
    let message = format!("cannot read `{path}`: {err:#}");
    let hint = if message.contains("UTF-8") {
        "promptgate reads prompts, configs and datasets as UTF-8 text; re-save the file as UTF-8"
    } else {
        "suite files must be readable files inside the repository"
    };
    Diagnostic::new(message).in_file(path).hint(hint).into()
}

fn check_provider_name(providers: &BTreeMap<String, ProviderSpec>, name: &str) -> Result<(), String> {
    if providers.contains_key(name) {
        return Ok(());
    }
    Err(match did_you_mean(name, providers.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "configured providers: {}",
            providers.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    })
}

fn mock_spec(name: &str) -> ProviderSpec {
    ProviderSpec {
        concurrency: 64,
        ..ProviderSpec::new(name, ProviderKind::Mock)
    }
}

/// The `pricing:` table, each price checked non-negative (shared by the suite and the canary's
/// config).
pub(crate) fn prices(
    raw: BTreeMap<String, serde_saphyr::Spanned<raw::RawPrice>>,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
) -> Result<BTreeMap<String, Price>, Error> {
    let (pricing, wrong) = all_prices(raw, at);
    match wrong.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(pricing),
    }
}

/// The prices, and each one's problem.
fn all_prices(
    raw: BTreeMap<String, serde_saphyr::Spanned<raw::RawPrice>>,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
) -> (BTreeMap<String, Price>, Vec<Error>) {
    let mut pricing = BTreeMap::new();
    let mut wrong = Vec::new();
    for (model, p) in raw {
        let (line, column) = (p.referenced.line(), p.referenced.column());
        let p = p.value;
        if !(p.input >= 0.0 && p.output >= 0.0 && p.cached_input.is_none_or(|c| c >= 0.0)) {
            wrong.push(
                at(line, column, format!("pricing for `{model}` must not be negative"))
                    .hint("prices are USD per million tokens, e.g. `gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}`")
                    .into(),
            );
            continue;
        }
        pricing.insert(
            model,
            Price {
                input: p.input,
                cached_input: p.cached_input,
                output: p.output,
            },
        );
    }
    (pricing, wrong)
}
