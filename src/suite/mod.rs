//! The suite: `promptgate.yaml`, the variant configs it names, their prompt templates and the
//! datasets, loaded from one tree and validated once.
//!
//! [`load`] turns the files into a [`Suite`]; the rest of the program never sees raw input.
//! Every problem is a [`Diagnostic`] naming the file, line and column, with a hint.

mod dataset;
mod diag;
mod patterns;
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

pub use diag::yaml_diagnostic;
pub use raw::{Margin, ProviderKind};
pub use template::Prompt;

/// The default suite file, at the repository root.
pub const DEFAULT_CONFIG: &str = "promptgate.yaml";

/// The most cases one dataset may hold: a run's memory grows with cases × repeats × arms.
pub const MAX_CASES: usize = 100_000;

/// The largest prompt template (or partial) read: prompts are rendered once per case.
pub const MAX_PROMPT_BYTES: usize = 1 << 20;

/// Metrics every experiment reports, besides its scorers.
pub const BUILTIN_METRICS: &[&str] = &[
    "pass_rate",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "cost_per_request",
];

/// A validated suite at one tree.
pub struct Suite {
    pub config_path: String,
    pub providers: BTreeMap<String, ProviderSpec>,
    /// USD per million tokens, by model; extends the built-in table.
    pub pricing: BTreeMap<String, Price>,
    pub requests_per_month: Option<u64>,
    pub budget: Budget,
    pub defaults: Defaults,
    pub gates: Vec<GateSpec>,
    pub experiments: Vec<Experiment>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ProviderSpec {
    pub name: String,
    pub kind: ProviderKind,
    pub api_key_env: Option<String>,
    pub base_url: Option<String>,
    pub concurrency: usize,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub timeout_ms: u64,
    pub max_retries: u32,
    pub deployment: Option<String>,
    pub api_version: Option<String>,
    pub command: Option<Vec<String>>,
    /// exec: the environment variables passed through to the program.
    pub env: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    pub input: f64,
    pub cached_input: Option<f64>,
    pub output: f64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budget {
    /// Above this estimated cost a run needs explicit approval.
    pub approve_above_usd: Option<f64>,
    /// Never spend more than this.
    pub max_usd: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Defaults {
    pub repeats: u32,
    pub alpha: f64,
    pub provider: String,
    pub concurrency: usize,
    /// Share of errored calls (per experiment and arm) beyond which the run is a run error.
    pub max_error_rate: f64,
    pub seed: u64,
    /// `sequential: true`: looks at equal shares of the cases, with alpha spending.
    pub sequential: bool,
    pub sequential_looks: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GateSpec {
    pub metric: String,
    pub direction: Direction,
    pub margin: Margin,
    pub alpha: f64,
    pub blocking: bool,
    /// Absolute objective on the candidate (≥ for `higher`, ≤ for `lower`).
    pub slo: Option<f64>,
    pub require_non_inferiority: bool,
    /// `require: equivalence`: fail unless TOST shows the arms equivalent within the margin.
    pub require_equivalence: bool,
}

pub struct Experiment {
    pub name: String,
    pub description: Option<String>,
    pub variant_path: String,
    pub variant: Variant,
    pub prompt: Prompt,
    pub dataset_path: String,
    pub cases: Vec<Case>,
    pub provider: String,
    /// Fallback providers, in order.
    pub fallbacks: Vec<String>,
    pub repeats: u32,
    /// Applied to every case, besides the case's own.
    pub asserts: Vec<Assertion>,
    /// Every file the experiment's outcome depends on: variant, prompt, partials, dataset,
    /// files named by assertions, files named by its `exec` providers' commands.
    pub dependencies: BTreeSet<String>,
    /// The template files the prompt's renders read besides the prompt itself.
    pub partials: BTreeSet<String>,
    /// Files and folders of the tree that its `exec` providers' commands name (an argument
    /// such as `scripts/answer.py`), with the provider naming each.
    pub command_files: BTreeMap<String, String>,
    /// Extra dependencies declared as globs (`depends_on`).
    pub depends_on: GlobSet,
    /// The experiment's entry in the suite file (and its provider), canonicalised: when it
    /// differs between base and head, the experiment is affected by the suite file.
    pub definition: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub version: Option<String>,
    pub model: String,
    pub prompt_path: String,
    pub temperature: Option<f64>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f64>,
    /// The recorded results of this version (the baseline contract), e.g. `cost_per_request`.
    pub evaluation_metrics: BTreeMap<String, f64>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    pub description: Option<String>,
    /// Cases sharing a group are one unit of inference (see docs/statistics.md, "Clustered
    /// cases").
    pub group: Option<String>,
    pub vars: serde_json::Map<String, Value>,
    pub asserts: Vec<Assertion>,
    /// The case's assertions as written (canonical JSON): two versions of a case have the same
    /// assertions when these are equal.
    pub assert_source: String,
    /// Where the case is written: `datasets/x.jsonl:12`.
    pub origin: String,
}

impl Case {
    /// The case's `input` var, or its vars as JSON: what the report shows as the question.
    pub fn input_text(&self) -> String {
        match self.vars.get("input") {
            Some(Value::String(s)) => s.clone(),
            _ => Value::Object(self.vars.clone()).to_string(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Assertion {
    /// The score's name in the results.
    pub metric: String,
    pub check: Check,
}

#[derive(Clone, Debug)]
pub enum Check {
    Equals(String),
    Contains(String),
    IContains(String),
    NotContains(String),
    NotIContains(String),
    StartsWith(String),
    Regex(Regex),
    JsonValid,
    JsonPath {
        path: serde_json_path::JsonPath,
        source: String,
        value: Value,
    },
    MaxLength(usize),
}

/// The assertion types, as written in files.
pub const ASSERTION_TYPES: &[&str] = &[
    "equals",
    "contains",
    "icontains",
    "not-contains",
    "not-icontains",
    "starts-with",
    "regex",
    "json-valid",
    "json-path",
    "max-length",
];

/// Loads and validates the whole suite; the first problem found is the error.
pub fn load(source: Arc<dyn FileSource>, config_path: &str) -> Result<Suite, Error> {
    let (mut suite, decls) = load_config(&*source, config_path)?;
    for decl in &decls {
        suite.experiments.push(load_experiment(&source, &suite, decl)?);
    }
    check_gate_metrics(&*source, &suite)?;
    Ok(suite)
}

/// Loads the suite and reports every problem found, for `validate`.
pub fn lint(source: Arc<dyn FileSource>, config_path: &str) -> Result<Suite, Vec<Error>> {
    let (mut suite, decls) = load_config(&*source, config_path).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    for decl in &decls {
        match load_experiment(&source, &suite, decl) {
            Ok(e) => suite.experiments.push(e),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty()
        && let Err(e) = check_gate_metrics(&*source, &suite)
    {
        errors.push(e);
    }
    if errors.is_empty() { Ok(suite) } else { Err(errors) }
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

/// Reads and validates the suite file alone.
pub fn load_config(source: &dyn FileSource, config_path: &str) -> Result<(Suite, Vec<ExperimentDecl>), Error> {
    let text = source
        .read(config_path)
        .map_err(|e| unreadable(config_path, &e))?
        .ok_or_else(|| {
            Diagnostic::new(format!("no suite file `{config_path}` in {}", source.label()))
                .hint("create one with `promptgate init`, or name it with --config")
        })?;
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

    let defaults_raw = raw.defaults;
    let mut providers = BTreeMap::new();
    for (name, p) in raw.providers {
        for variable in p.api_key_env.iter().chain(&p.env) {
            if let Some(problem) = crate::secrets::refused_variable(variable) {
                let line = text
                    .lines()
                    .position(|l| l.contains(variable.as_str()) && (l.contains("env")))
                    .map_or(0, |i| i as u64 + 1);
                return Err(at(line, 0, format!("provider `{name}`: {problem}"))
                    .hint("the GitHub token is promptgate's own, for publishing; a provider or program never receives it (name a variable of the provider's own key)")
                    .into());
            }
        }
        let concurrency = p
            .concurrency
            .unwrap_or(if p.kind == ProviderKind::Mock { 64 } else { 8 });
        if concurrency == 0 {
            return Err(
                Diagnostic::new(format!("provider `{name}`: concurrency must be at least 1"))
                    .in_file(config_path)
                    .into(),
            );
        }
        providers.insert(
            name.clone(),
            ProviderSpec {
                name,
                kind: p.kind,
                api_key_env: p.api_key_env,
                base_url: p.base_url,
                concurrency,
                requests_per_minute: p.requests_per_minute,
                tokens_per_minute: p.tokens_per_minute,
                timeout_ms: p.timeout_ms.unwrap_or(60_000),
                max_retries: p.max_retries.unwrap_or(4),
                deployment: p.deployment,
                api_version: p.api_version,
                command: p.command,
                env: p.env,
            },
        );
    }
    if providers.is_empty() {
        // A suite without providers runs offline: the mock needs no configuration.
        providers.insert("mock".to_owned(), mock_spec("mock"));
    }

    let default_provider = match defaults_raw.as_ref().and_then(|d| d.provider.as_ref()) {
        Some(p) => {
            check_provider_name(&providers, &p.value).map_err(|hint| {
                at(
                    p.referenced.line(),
                    p.referenced.column(),
                    format!("unknown provider `{}` in defaults", p.value),
                )
                .hint(hint)
            })?;
            p.value.clone()
        }
        None if providers.len() == 1 => providers.keys().next().cloned().unwrap_or_default(),
        None => {
            return Err(
                Diagnostic::new("several providers are configured but none is the default")
                    .in_file(config_path)
                    .hint("set `defaults: {provider: NAME}` or `provider:` on each experiment")
                    .into(),
            );
        }
    };
    let alpha = defaults_raw.as_ref().and_then(|d| d.alpha).unwrap_or(0.05);
    if !(alpha > 0.0 && alpha < 0.5) {
        return Err(
            Diagnostic::new(format!("defaults.alpha must be between 0 and 0.5, got {alpha}"))
                .in_file(config_path)
                .hint("0.05 is the usual choice")
                .into(),
        );
    }
    let max_error_rate = defaults_raw.as_ref().and_then(|d| d.max_error_rate).unwrap_or(0.2);
    if !(0.0..=1.0).contains(&max_error_rate) {
        return Err(Diagnostic::new(format!(
            "defaults.max_error_rate must be between 0 and 1, got {max_error_rate}"
        ))
        .in_file(config_path)
        .into());
    }
    let sequential_looks = defaults_raw.as_ref().and_then(|d| d.sequential_looks).unwrap_or(4);
    if !(2..=10).contains(&sequential_looks) {
        return Err(Diagnostic::new(format!(
            "defaults.sequential_looks must be between 2 and 10, got {sequential_looks}"
        ))
        .in_file(config_path)
        .hint("4 looks (at 25%, 50%, 75% and 100% of the cases) is the usual choice")
        .into());
    }
    let defaults = Defaults {
        repeats: defaults_raw.as_ref().and_then(|d| d.repeats).unwrap_or(1).max(1),
        alpha,
        provider: default_provider,
        concurrency: defaults_raw.as_ref().and_then(|d| d.concurrency).unwrap_or(16).max(1),
        max_error_rate,
        seed: defaults_raw.as_ref().and_then(|d| d.seed).unwrap_or(0),
        sequential: defaults_raw.as_ref().and_then(|d| d.sequential).unwrap_or(false),
        sequential_looks,
    };

    let mut pricing = BTreeMap::new();
    for (model, p) in raw.pricing {
        if !(p.input >= 0.0 && p.output >= 0.0 && p.cached_input.is_none_or(|c| c >= 0.0)) {
            return Err(Diagnostic::new(format!("pricing for `{model}` must not be negative"))
                .in_file(config_path)
                .into());
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

    let budget = raw.budget.map_or(Budget::default(), |b| Budget {
        approve_above_usd: b.approve_above_usd,
        max_usd: b.max_usd,
    });

    let mut gates = Vec::new();
    for (metric, g) in &raw.gates {
        let spec = &g.value;
        let direction = match spec.direction {
            Some(raw::RawDirection::Higher) => Direction::Higher,
            Some(raw::RawDirection::Lower) => Direction::Lower,
            None => default_direction(metric),
        };
        let gate_alpha = spec.alpha.unwrap_or(alpha);
        if !(gate_alpha > 0.0 && gate_alpha < 0.5) {
            return Err(at(
                g.referenced.line(),
                g.referenced.column(),
                format!("gate `{metric}`: alpha must be between 0 and 0.5, got {gate_alpha}"),
            )
            .into());
        }
        gates.push(GateSpec {
            metric: metric.clone(),
            direction,
            margin: spec.margin.unwrap_or(Margin::Absolute(0.0)),
            alpha: gate_alpha,
            blocking: spec.blocking.unwrap_or(default_blocking(metric)),
            slo: spec.slo,
            require_non_inferiority: spec.require == Some(raw::RawRequire::NonInferiority),
            require_equivalence: spec.require == Some(raw::RawRequire::Equivalence),
        });
    }
    if gates.is_empty() {
        gates = default_gates(alpha);
    }

    let mut seen = BTreeMap::new();
    let mut decls = Vec::new();
    for e in raw.experiments {
        let line = e.name.referenced.line();
        if let Some(first) = seen.insert(e.name.value.clone(), line) {
            return Err(at(
                line,
                e.name.referenced.column(),
                format!("duplicate experiment name `{}`", e.name.value),
            )
            .hint(format!(
                "the first `{}` is on line {first}; experiment names must be unique",
                e.name.value
            ))
            .into());
        }
        if e.name.value.trim().is_empty() {
            return Err(at(line, e.name.referenced.column(), "experiment name is empty".to_owned()).into());
        }
        if let Some(p) = &e.provider {
            check_provider_name(&providers, &p.value).map_err(|hint| {
                at(
                    p.referenced.line(),
                    p.referenced.column(),
                    format!("unknown provider `{}`", p.value),
                )
                .hint(hint)
            })?;
        }
        for f in &e.fallback {
            check_provider_name(&providers, &f.value).map_err(|hint| {
                at(
                    f.referenced.line(),
                    f.referenced.column(),
                    format!("unknown fallback provider `{}`", f.value),
                )
                .hint(hint)
            })?;
        }
        if e.repeats == Some(0) {
            return Err(at(
                line,
                0,
                format!("experiment `{}`: repeats must be at least 1", e.name.value),
            )
            .into());
        }
        decls.push(ExperimentDecl { raw: e });
    }
    if decls.is_empty() {
        return Err(Diagnostic::new("the suite has no experiments")
            .in_file(config_path)
            .hint("add one under `experiments:` (see `promptgate init`)")
            .into());
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
    Ok((suite, decls))
}

/// Reads an experiment's variant, prompt and dataset, and renders every case once so that a
/// template error surfaces now rather than mid-run.
pub fn load_experiment(
    source: &Arc<dyn FileSource>,
    suite: &Suite,
    decl: &ExperimentDecl,
) -> Result<Experiment, Error> {
    let config_path = suite.config_path.as_str();
    let config_text = source.read(config_path).ok().flatten().unwrap_or_default();
    let e = &decl.raw;
    let config_dir = parent_dir(config_path);
    let name = e.name.value.clone();

    let resolve = |field: &serde_saphyr::Spanned<String>, what: &str| -> Result<String, Error> {
        let loc = &field.referenced;
        let path = join_in_repo(config_dir, &field.value).map_err(|escape| {
            Diagnostic::new(format!("{what} path {escape}"))
                .in_file(config_path)
                .at(&config_text, loc.line(), loc.column())
                .hint("paths in the suite are relative to the suite file and must stay inside the repository")
        })?;
        Ok(path)
    };
    let variant_path = resolve(&e.variant, "variant")?;
    let dataset_path = resolve(&e.dataset, "dataset")?;

    let mut dependencies = BTreeSet::new();
    dependencies.insert(variant_path.clone());
    dependencies.insert(dataset_path.clone());

    let variant_text = read_required(&**source, &variant_path, || {
        Diagnostic::new(format!("experiment `{name}`: variant file `{variant_path}` not found"))
            .in_file(config_path)
            .at(&config_text, e.variant.referenced.line(), e.variant.referenced.column())
            .hint("paths are relative to the suite file's folder and must name a file")
    })?;
    let rv: raw::RawVariant = serde_saphyr::from_str(&variant_text)
        .map_err(|err| yaml_diagnostic(&variant_path, &variant_text, &err, "a variant config"))?;
    let variant_at = |line: u64, column: u64, message: String| {
        Diagnostic::new(message)
            .in_file(&variant_path)
            .at(&variant_text, line, column)
    };
    for (field, value, range) in [
        ("temperature", &rv.temperature, (0.0, 2.0)),
        ("top_p", &rv.top_p, (0.0, 1.0)),
    ] {
        if let Some(v) = value
            && !(range.0..=range.1).contains(&v.value)
        {
            return Err(variant_at(
                v.referenced.line(),
                v.referenced.column(),
                format!("{field} must be between {} and {}, got {}", range.0, range.1, v.value),
            )
            .hint(format!("providers accept a {field} from {} to {}", range.0, range.1))
            .into());
        }
    }
    let prompt_path = join_in_repo(parent_dir(&variant_path), &rv.prompt.value).map_err(|escape| {
        variant_at(
            rv.prompt.referenced.line(),
            rv.prompt.referenced.column(),
            format!("prompt path {escape}"),
        )
        .hint("the prompt path is relative to the variant file and must stay inside the repository")
    })?;
    if source
        .read(&prompt_path)
        .map_err(|err| unreadable(&prompt_path, &err))?
        .is_none()
    {
        return Err(variant_at(
            rv.prompt.referenced.line(),
            rv.prompt.referenced.column(),
            format!("prompt file `{prompt_path}` not found"),
        )
        .hint(format!(
            "the prompt path is relative to the variant file's folder (`{}/`)",
            parent_dir(&variant_path)
        ))
        .into());
    }
    let variant = Variant {
        version: rv.version.map(|s| s.0),
        model: rv.model,
        prompt_path: prompt_path.clone(),
        temperature: rv.temperature.map(|t| t.value),
        max_tokens: rv.max_tokens,
        top_p: rv.top_p.map(|t| t.value),
        evaluation_metrics: rv.evaluation_metrics.into_iter().map(|(k, v)| (k, v.0)).collect(),
    };
    let prompt = Prompt::load(Arc::clone(source), &prompt_path)?;

    let dataset_text = read_required(&**source, &dataset_path, || {
        Diagnostic::new(format!("experiment `{name}`: dataset `{dataset_path}` not found"))
            .in_file(config_path)
            .at(&config_text, e.dataset.referenced.line(), e.dataset.referenced.column())
            .hint("paths are relative to the suite file's folder and must name a file")
    })?;
    let cases = dataset::parse(&**source, &dataset_path, &dataset_text, &mut dependencies)?;
    if cases.is_empty() {
        return Err(Diagnostic::new(format!("dataset `{dataset_path}` has no cases"))
            .in_file(&dataset_path)
            .hint("an experiment needs at least one case; a few dozen make its statistics meaningful")
            .into());
    }

    let mut asserts = Vec::new();
    for a in &e.assert {
        let loc = &a.referenced;
        let assertion =
            resolve_assertion(&**source, config_dir, &a.value, &mut dependencies).map_err(|(message, hint)| {
                with_hint(
                    Diagnostic::new(message)
                        .in_file(config_path)
                        .at(&config_text, loc.line(), loc.column()),
                    hint,
                )
            })?;
        asserts.push(assertion);
    }

    let mut globs = GlobSetBuilder::new();
    for pattern in &e.depends_on {
        let glob = globset::GlobBuilder::new(&pattern.value)
            .literal_separator(true)
            .build()
            .map_err(|err| {
                Diagnostic::new(format!("invalid glob `{}`: {}", pattern.value, err.kind()))
                    .in_file(config_path)
                    .at(&config_text, pattern.referenced.line(), pattern.referenced.column())
                    .hint("globs match repository-relative paths, e.g. `docs/**/*.md`")
            })?;
        globs.add(glob);
    }
    let mut depends_on = globs
        .build()
        .map_err(|err| Error::run(format!("building globs: {err}")))?;

    // Render every case now: strict undefined variables and missing partials fail validation,
    // and the files the template really reads become dependencies.
    let mut partials = BTreeSet::new();
    for case in &cases {
        let rendered = prompt
            .render(&case.vars)
            .map_err(|d| Error::from(d.hint(format!("while rendering case `{}` ({})", case.id, case.origin))))?;
        partials.extend(rendered.files.into_iter().filter(|f| *f != prompt_path));
    }
    dependencies.insert(prompt_path.clone());
    dependencies.extend(partials.iter().cloned());

    let provider = e
        .provider
        .as_ref()
        .map_or_else(|| suite.defaults.provider.clone(), |p| p.value.clone());
    // An `exec` pipeline's scripts produce the output as much as the prompt does: a command
    // argument naming a file (or folder) of the tree makes the experiment depend on it.
    let mut command_files = BTreeMap::new();
    let chain = std::iter::once(&provider).chain(e.fallback.iter().map(|f| &f.value));
    for spec in chain.filter_map(|name| suite.providers.get(name)) {
        for (path, object) in command_paths(&**source, spec) {
            command_files
                .entry(path)
                .or_insert_with(|| (spec.name.clone(), object.kind));
        }
    }
    let mut depends_on_globs: Vec<String> = e.depends_on.iter().map(|d| d.value.clone()).collect();
    for (path, (_, kind)) in &command_files {
        match kind {
            ObjectKind::File => {
                dependencies.insert(path.clone());
            }
            ObjectKind::Folder => depends_on_globs.push(format!("{path}/**")),
        }
    }
    if depends_on_globs.len() > e.depends_on.len() {
        let mut globs = GlobSetBuilder::new();
        for pattern in &depends_on_globs {
            let glob = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|err| Error::run(format!("building globs: {err}")))?;
            globs.add(glob);
        }
        depends_on = globs
            .build()
            .map_err(|err| Error::run(format!("building globs: {err}")))?;
    }
    let definition = serde_json::json!({
        "assert": e.assert.iter().map(|a| &a.value).collect::<Vec<_>>(),
        "depends_on": e.depends_on.iter().map(|d| &d.value).collect::<Vec<_>>(),
        "variant": variant_path,
        "dataset": dataset_path,
        "repeats": e.repeats.unwrap_or(suite.defaults.repeats),
        "provider": suite.providers.get(&provider),
        "fallback": e.fallback.iter().map(|f| suite.providers.get(&f.value)).collect::<Vec<_>>(),
    })
    .to_string();

    Ok(Experiment {
        name,
        description: e.description.clone(),
        variant_path,
        variant,
        prompt,
        dataset_path,
        cases,
        repeats: e.repeats.unwrap_or(suite.defaults.repeats),
        provider,
        fallbacks: e.fallback.iter().map(|f| f.value.clone()).collect(),
        asserts,
        dependencies,
        partials,
        command_files: command_files
            .into_iter()
            .map(|(path, (provider, _))| (path, provider))
            .collect(),
        depends_on,
        definition,
    })
}

/// The paths of the tree an `exec` provider's command names: arguments (the program included)
/// that are repository-relative paths of a file or folder. The command runs from the root of
/// its arm's tree, so that is what they are relative to.
pub fn command_paths(source: &dyn FileSource, spec: &ProviderSpec) -> Vec<(String, Object)> {
    if spec.kind != ProviderKind::Exec {
        return Vec::new();
    }
    let mut paths = Vec::new();
    for arg in spec.command.iter().flatten() {
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

impl Suite {
    /// One sentence per experiment whose cases are too few for a gated metric's test to judge
    /// (`metrics::Metric::min_units`): such a metric is reported, never gated, so a suite that
    /// looks protected is not. Said up front by `validate`, `init` and `run`.
    pub fn sample_size_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for e in &self.experiments {
            let units = e.units();
            let short: Vec<String> = self
                .gates
                .iter()
                .filter_map(|g| {
                    let min = crate::metrics::Metric::of(&g.metric).min_units();
                    (units < min).then(|| format!("{} needs {min}", g.metric))
                })
                .collect();
            if !short.is_empty() {
                let unit = if units == e.cases.len() {
                    "cases"
                } else {
                    "groups of cases"
                };
                let (them, it) = if short.len() == 1 {
                    ("it", "it")
                } else {
                    ("they", "those gates")
                };
                notes.push(format!(
                    "experiment `{}` has {units} {unit}; {} to be judged, so until then {them} will be reported, not gated: add cases before relying on {it}",
                    e.name,
                    short.join(", ")
                ));
            }
        }
        notes
    }
}

impl Experiment {
    /// Independent units of inference: the dataset's groups, plus every case without one.
    pub fn units(&self) -> usize {
        let groups: BTreeSet<&str> = self.cases.iter().filter_map(|c| c.group.as_deref()).collect();
        groups.len() + self.cases.iter().filter(|c| c.group.is_none()).count()
    }

    /// The changed paths (of `changed`) this experiment depends on.
    pub fn touched_by<'a>(&self, changed: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        changed
            .into_iter()
            .filter(|p| self.dependencies.contains(*p) || self.depends_on.is_match(p))
            .map(str::to_owned)
            .collect()
    }
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

impl ProviderSpec {
    /// A provider with nothing configured but its name and type.
    pub fn new(name: &str, kind: ProviderKind) -> Self {
        ProviderSpec {
            name: name.to_owned(),
            kind,
            api_key_env: None,
            base_url: None,
            concurrency: 8,
            requests_per_minute: None,
            tokens_per_minute: None,
            timeout_ms: 60_000,
            max_retries: 0,
            deployment: None,
            api_version: None,
            command: None,
            env: Vec::new(),
        }
    }
}

/// Higher is better for quality scores; lower for errors, latency and cost.
pub fn default_direction(metric: &str) -> Direction {
    if metric == "error_rate"
        || metric == "flaky_share"
        || metric.starts_with("latency")
        || metric.ends_with("_ms")
        || metric.starts_with("cost")
        || metric.contains("hallucination")
    {
        Direction::Lower
    } else {
        Direction::Higher
    }
}

/// Quality and errors block by default; latency and cost inform unless the suite says so.
fn default_blocking(metric: &str) -> bool {
    metric == "pass_rate" || metric == "error_rate"
}

/// The gates a suite without a `gates:` section gets.
fn default_gates(alpha: f64) -> Vec<GateSpec> {
    let gate = |metric: &str, margin: Margin| GateSpec {
        metric: metric.to_owned(),
        direction: default_direction(metric),
        margin,
        alpha,
        blocking: default_blocking(metric),
        slo: None,
        require_non_inferiority: false,
        require_equivalence: false,
    };
    vec![
        gate("pass_rate", Margin::Absolute(0.0)),
        gate("error_rate", Margin::Absolute(0.0)),
        gate("latency_p95_ms", Margin::Relative(0.10)),
        gate("cost_per_request", Margin::Relative(0.10)),
    ]
}

/// Gate names must be metrics something produces.
fn check_gate_metrics(source: &dyn FileSource, suite: &Suite) -> Result<(), Error> {
    let mut known: BTreeSet<String> = BUILTIN_METRICS.iter().map(|m| (*m).to_owned()).collect();
    known.insert(crate::analyze::FLAKY_SHARE.to_owned());
    for e in &suite.experiments {
        for a in e.asserts.iter().chain(e.cases.iter().flat_map(|c| c.asserts.iter())) {
            known.insert(a.metric.clone());
        }
    }
    for g in &suite.gates {
        if !known.contains(&g.metric) {
            let hint = match did_you_mean(&g.metric, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "known metrics: {}",
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            };
            let d = Diagnostic::new(format!("gate on unknown metric `{}`", g.metric)).in_file(&suite.config_path);
            let d = match gate_key_location(source, &suite.config_path, &g.metric) {
                Some((text, line, column)) => d.at(&text, line, column),
                None => d,
            };
            return Err(d.hint(hint).into());
        }
    }
    Ok(())
}

/// Where a gate's metric is written in the suite file. The resolved gates do not carry it, and
/// it is only needed on this error path, so the file is read again.
fn gate_key_location(source: &dyn FileSource, config_path: &str, metric: &str) -> Option<(String, u64, u64)> {
    #[derive(serde::Deserialize)]
    struct GateKeys {
        #[serde(default)]
        gates: std::collections::HashMap<serde_saphyr::Spanned<String>, serde::de::IgnoredAny>,
    }
    let text = source.read(config_path).ok().flatten()?;
    let keys: GateKeys = serde_saphyr::from_str(&text).ok()?;
    let key = keys.gates.into_keys().find(|k| k.value == metric)?;
    Some((text, key.referenced.line(), key.referenced.column()))
}

/// Turns an assertion as written into a checked one. Errors are `(message, hint)`.
pub(crate) fn resolve_assertion(
    source: &dyn FileSource,
    base_dir: &str,
    raw: &raw::RawAssertion,
    dependencies: &mut BTreeSet<String>,
) -> Result<Assertion, (String, Option<String>)> {
    let kind = raw.kind.as_str();
    if !ASSERTION_TYPES.contains(&kind) {
        return Err((
            format!("unknown assertion type `{kind}`"),
            Some(match did_you_mean(kind, ASSERTION_TYPES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("assertion types: {}", ASSERTION_TYPES.join(", ")),
            }),
        ));
    }
    let value = match &raw.value {
        Some(Value::String(s)) if s.starts_with("file://") => {
            let path =
                join_in_repo(base_dir, &s["file://".len()..]).map_err(|e| (format!("assertion file {e}"), None))?;
            let text = source
                .read(&path)
                .map_err(|e| (format!("reading `{path}`: {e:#}"), None))?
                .ok_or_else(|| {
                    (
                        format!("assertion file `{path}` not found"),
                        Some("file:// paths are relative to the file that names them".to_owned()),
                    )
                })?;
            dependencies.insert(path);
            Some(Value::String(text.trim_end_matches(['\n', '\r']).to_owned()))
        }
        other => other.clone(),
    };
    let text = || -> Result<String, (String, Option<String>)> {
        match &value {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            _ => Err((
                format!("assertion `{kind}` needs a text `value`"),
                Some(format!("e.g. {{type: {kind}, value: \"30 days\"}}")),
            )),
        }
    };
    let check = match kind {
        "equals" => Check::Equals(text()?),
        "contains" => Check::Contains(text()?),
        "icontains" => Check::IContains(text()?.to_lowercase()),
        "not-contains" => Check::NotContains(text()?),
        "not-icontains" => Check::NotIContains(text()?.to_lowercase()),
        "starts-with" => Check::StartsWith(text()?),
        "regex" => Check::Regex(patterns::compiled(&text()?)?),
        "json-valid" => Check::JsonValid,
        "json-path" => {
            let source_path = raw.path.clone().ok_or_else(|| {
                (
                    "assertion `json-path` needs a `path`".to_owned(),
                    Some("e.g. {type: json-path, path: \"$.answer\", value: \"yes\"}".to_owned()),
                )
            })?;
            let path = serde_json_path::JsonPath::parse(&source_path).map_err(|e| {
                (
                    format!("invalid JSONPath `{source_path}`: {e}"),
                    Some("JSONPath as in RFC 9535, e.g. `$.items[0].name`".to_owned()),
                )
            })?;
            let expected = value
                .clone()
                .ok_or_else(|| ("assertion `json-path` needs a `value` to compare with".to_owned(), None))?;
            Check::JsonPath {
                path,
                source: source_path,
                value: expected,
            }
        }
        "max-length" => {
            let n = value.as_ref().and_then(Value::as_u64).ok_or_else(|| {
                (
                    "assertion `max-length` needs a whole number `value`".to_owned(),
                    Some("e.g. {type: max-length, value: 1200} (characters)".to_owned()),
                )
            })?;
            Check::MaxLength(usize::try_from(n).unwrap_or(usize::MAX))
        }
        // ASSERTION_TYPES was checked above; a type listed there but not handled here is ours.
        other => return Err((format!("assertion type `{other}` is not supported"), None)),
    };
    if raw.path.is_some() && kind != "json-path" {
        return Err((
            format!("assertion `{kind}` takes no `path`"),
            Some("`path` belongs to json-path assertions".to_owned()),
        ));
    }
    Ok(Assertion {
        metric: raw.metric.clone().unwrap_or_else(|| kind.to_owned()),
        check,
    })
}
