//! What a loaded suite is: providers, prices, budget, defaults, gates, experiments and their
//! cases and assertions, as the rest of the program sees them.

use super::*;

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
    /// The model judges call through this provider, unless `defaults.judge_model` names one.
    pub model: Option<String>,
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
    /// The provider and model judge assertions call; `None` when the suite names no judge.
    pub judge: Option<JudgeSettings>,
    /// The provider and model embedding similarities call; `None` when the suite names none.
    pub embedder: Option<EmbedderSettings>,
}

/// Who embeds: `defaults.embedder` and `embedding_model`.
#[derive(Clone, Debug, PartialEq)]
pub struct EmbedderSettings {
    pub provider: String,
    pub model: String,
}

/// Who judges: `defaults.judge`, its model, and how many times each output is judged.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeSettings {
    pub provider: String,
    pub model: String,
    pub repeats: u32,
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
    /// Penalties and stop sequences (OpenAI-compatible providers; Anthropic takes stop
    /// sequences only).
    pub sampling: crate::chat::Sampling,
    /// The recorded results of this version (the baseline contract), e.g. `cost_per_request`.
    pub evaluation_metrics: BTreeMap<String, f64>,
}

#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    /// Cases sharing a group are one unit of inference (see docs/statistics.md, "Clustered
    /// cases").
    pub group: Option<Box<str>>,
    /// Shared: when base's case has the same vars as head's, base's are head's (see
    /// `compare`), so an unchanged dataset's vars are held once, not once an arm.
    pub vars: Vars,
    /// Shared, like `assert_source`, by the cases of a dataset whose assertions are written
    /// alike (see `dataset::Shared`): a run holds every case, and a generated dataset often
    /// gives each the same checks.
    pub asserts: std::sync::Arc<[Assertion]>,
    /// The case's assertions as written (canonical JSON): two versions of a case have the same
    /// assertions when these are equal.
    pub assert_source: std::sync::Arc<str>,
    /// The line of the file the case is written in: its experiment's dataset (`dataset_path`
    /// names it), or a judge check's labels file; 0 when it is not read from a file. A
    /// number, not `path:line`: a run holds every case.
    pub line: u32,
}

impl Case {
    /// The case's `input` var, or its vars as JSON: what the report shows as the question.
    pub fn input_text(&self) -> String {
        match self.vars.get("input") {
            Some(Value::String(s)) => s.clone(),
            _ => Value::Object(self.vars.to_map()).to_string(),
        }
    }
}

/// A case's vars, in the order written: what its template renders and its scorers read. Held
/// as one shared slice of names and values (a clone is a reference count): a run holds every
/// case's vars, and a JSON map (an index map, for the order) costs about 250 bytes and three
/// allocations more for one var. A dataset's cases share their names' text ([`Names`]).
/// Compares as a map (the order of the names does not matter) and serialises as the JSON object
/// it was read from.
#[derive(Clone, Debug)]
pub struct Vars(Arc<[(Arc<str>, Value)]>);

impl Default for Vars {
    fn default() -> Vars {
        Vars(Arc::from([]))
    }
}

/// The var names a dataset's cases share: each distinct name's text is held once.
#[derive(Default)]
pub struct Names(std::collections::HashSet<Arc<str>>);

impl Names {
    /// `map`'s vars, their names shared with the cases read before.
    pub fn vars(&mut self, map: serde_json::Map<String, Value>) -> Vars {
        Vars(
            map.into_iter()
                .map(|(n, v)| {
                    let name = match self.0.get(n.as_str()) {
                        Some(name) => Arc::clone(name),
                        None => {
                            let name: Arc<str> = Arc::from(n);
                            self.0.insert(Arc::clone(&name));
                            name
                        }
                    };
                    (name, v)
                })
                .collect(),
        )
    }
}

impl Vars {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| &**n == name).map(|(_, v)| v)
    }

    /// The names, in the order written.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| &**n)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether these are `other`'s vars held once, not two equal copies.
    pub fn shared_with(&self, other: &Vars) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The vars as a JSON object.
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.0.iter().map(|(n, v)| (n.to_string(), v.clone())).collect()
    }
}

impl From<serde_json::Map<String, Value>> for Vars {
    fn from(map: serde_json::Map<String, Value>) -> Vars {
        Vars(map.into_iter().map(|(n, v)| (Arc::from(n), v)).collect())
    }
}

/// As maps: the same names with equal values, in any order (names are unique, as in the JSON
/// object they were read from). Vars in the same order, the usual case, compare in one pass;
/// only others name by name.
impl PartialEq for Vars {
    fn eq(&self, other: &Vars) -> bool {
        // `Arc`'s equality is true at once for vars held once (their values are `Eq`).
        self.0 == other.0 || (self.len() == other.len() && self.0.iter().all(|(n, v)| other.get(n) == Some(v)))
    }
}

impl serde::Serialize for Vars {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0.iter() {
            map.serialize_entry(&**name, value)?;
        }
        map.end()
    }
}

#[derive(Clone, Debug)]
pub struct Assertion {
    /// The score's name in the results.
    pub metric: String,
    pub check: Check,
}

/// `text` with its case folded, as `icontains` and `not-icontains` compare: each character
/// lowercased on its own (`str::to_lowercase` writes a Greek capital sigma at a word's end as
/// the final `ς`, so the value `ΟΔΟΣ` lowercased would not be found in `ΟΔΟΣΑ` lowercased), then
/// the final sigma as `σ` and `ß` as `ss`, as Unicode's full case folding has them. The Turkish
/// dotted `İ` folds to `i` and a combining dot, as Unicode has it, not to `i`.
pub fn fold_case(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'ς' => folded.push('σ'),
            'ß' => folded.push_str("ss"),
            c => folded.push(c),
        }
    }
    folded
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
    /// Personal data in the output: its score is 1 when some is found (a leak), and the call
    /// then fails.
    Pii(Arc<PiiDetectors>),
    /// None of these terms, as whole words in any case. `regex` matches any of them.
    ForbiddenTerms {
        terms: Vec<String>,
        regex: Regex,
    },
    /// The output is JSON valid against the schema.
    JsonSchema(Arc<jsonschema::Validator>),
    /// The output declines to answer (`refusal`), or does not (`not-refusal`).
    Refusal {
        expected: bool,
    },
    /// Lexical similarity to a reference answer, a score in [0, 1]; with a threshold, also a
    /// pass/fail.
    Similarity {
        reference: Reference,
        threshold: Option<f64>,
        method: SimilarityMethod,
    },
    /// A command of the team's own scores the output: `scores` are the names it returns.
    Exec {
        command: Vec<String>,
        scores: Vec<String>,
    },
    /// Asked of the suite's judge, not checked on the text (see `scorers::judge`).
    Judge(JudgeCheck),
    /// `llm-compare`: the judge compares the baseline's and the candidate's outputs of a case
    /// against the rubric, in both orders (see `scorers::judge`).
    Compare(String),
}

/// What a judge is asked about an output.
#[derive(Clone, Debug, PartialEq)]
pub enum JudgeCheck {
    /// `llm-rubric`: the output meets the rubric.
    Rubric(String),
    /// `relevance`: the output answers the input.
    Relevance,
    /// `hallucination`: every claim of the output is supported by the case's `context_var`.
    Hallucination { context_var: String },
}

/// What a `pii` assertion looks for.
#[derive(Debug)]
pub struct PiiDetectors {
    pub builtin: Vec<PiiKind>,
    /// Configured patterns (national ids and the like), by name.
    pub custom: Vec<(String, Regex)>,
    /// Findings that are no leak, as written (`privacy@example.com`, `1-800-555-0142`): a
    /// finding is allowed when its letters, digits and `@` equal an entry's, in any case.
    pub allow: Vec<String>,
}

/// The built-in personal-data detectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PiiKind {
    Email,
    Phone,
    Iban,
    Card,
}

impl PiiKind {
    pub const ALL: [PiiKind; 4] = [PiiKind::Email, PiiKind::Phone, PiiKind::Iban, PiiKind::Card];

    /// The name in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Iban => "iban",
            PiiKind::Card => "card",
        }
    }
}

/// The answer a similarity is measured against.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// Written in the assertion (`value`).
    Text(String),
    /// The case's `expected` var.
    Expected,
}

/// The case var a similarity assertion without a `value` compares with.
pub const EXPECTED_VAR: &str = "expected";

/// How a similarity is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimilarityMethod {
    /// ROUGE-L F-measure over words (see `scorers::similarity`).
    RougeL,
    /// Cosine of the embeddings of output and reference, from `defaults.embedder` (see
    /// `scorers::embeddings`).
    Embeddings,
}

impl SimilarityMethod {
    pub const NAMES: &[&str] = &["rouge-l", "embeddings"];
}

impl Assertion {
    /// Every score name this assertion records (an `exec` scorer's several, a similarity's
    /// pass/fail beside its score).
    pub fn metrics(&self) -> Vec<String> {
        match &self.check {
            Check::Exec { scores, .. } => scores.clone(),
            Check::Similarity { threshold: Some(_), .. } => vec![self.metric.clone(), pass_name(&self.metric)],
            _ => vec![self.metric.clone()],
        }
    }
}

/// The name of a similarity's pass/fail score beside its `metric`.
pub fn pass_name(metric: &str) -> String {
    format!("{metric}_pass")
}

/// Score names no assertion may take: `pass` is the call's own, `consistency` the agreement
/// between a case's repeats.
pub const RESERVED_METRICS: &[&str] = &["pass", "consistency"];

/// The assertion types, as written in files (their home is `metrics`, which reads the score
/// each records by default).
pub use crate::metrics::ASSERTION_TYPES;

impl Suite {
    /// One sentence per experiment whose cases are too few for a gated metric's test to judge
    /// (`metrics::Metric::min_units`): such a metric is reported, never gated, so a suite that
    /// looks protected is not. Said up front by `validate`, `init` and `run`.
    pub fn sample_size_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for e in &self.experiments {
            let units = e.units();
            let unit = if units == e.cases.len() {
                "cases"
            } else {
                "groups of cases"
            };
            // A gate that requires a proof is never merely reported: below the units that can
            // prove it (a skewed amount: the bootstrap-t's 40), it fails.
            let proof = |g: &&GateSpec| g.require_non_inferiority || g.require_equivalence;
            let proves_from = |g: &GateSpec| {
                let metric = crate::metrics::Metric::of(&g.metric);
                match metric.is_skewed_amount() {
                    true => crate::metrics::MIN_UNITS_AMOUNT,
                    false => metric.min_units(),
                }
            };
            for g in self.gates.iter().filter(proof) {
                let min = proves_from(g);
                if units < min {
                    notes.push(format!(
                        "experiment `{}` has {units} {unit}; the `{}` gate requires a proof, which needs {min}: it fails until then",
                        e.name, g.metric
                    ));
                }
            }
            let short: Vec<String> = self
                .gates
                .iter()
                .filter(|g| !proof(g))
                .filter_map(|g| {
                    let min = crate::metrics::Metric::of(&g.metric).min_units();
                    (units < min).then(|| format!("{} needs {min}", g.metric))
                })
                .collect();
            if !short.is_empty() {
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

    /// Whether a case of this experiment is scored by an `exec` scorer's command.
    pub fn has_exec_scorer(&self) -> bool {
        self.all_asserts().any(|a| matches!(a.check, Check::Exec { .. }))
    }

    /// Whether a case of this experiment asks the suite's judge (`defaults.judge`): a judge
    /// assertion or an `llm-compare`.
    pub fn asks_judge(&self) -> bool {
        self.all_asserts()
            .any(|a| matches!(a.check, Check::Judge(_) | Check::Compare(_)))
    }

    /// Whether a case of this experiment embeds through the suite's embedder
    /// (`defaults.embedder`): a `similarity` with `method: embeddings`.
    pub fn embeds(&self) -> bool {
        self.all_asserts().any(|a| {
            matches!(
                a.check,
                Check::Similarity {
                    method: SimilarityMethod::Embeddings,
                    ..
                }
            )
        })
    }

    fn all_asserts(&self) -> impl Iterator<Item = &Assertion> {
        self.asserts
            .iter()
            .chain(self.cases.iter().flat_map(|c| c.asserts.iter()))
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
            model: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(json: &str) -> Vars {
        serde_json::from_str::<serde_json::Map<String, Value>>(json)
            .unwrap()
            .into()
    }

    #[test]
    fn vars_read_and_write_as_the_json_object_they_came_from_and_compare_as_maps() {
        let written = r#"{"input":"Can I return boots?","expected":"Within 30 days.","n":3,"tags":["a","b"],"ctx":{"z":1,"a":2}}"#;
        let v = vars(written);
        assert_eq!(v.len(), 5);
        assert_eq!(v.get("input"), Some(&Value::from("Can I return boots?")));
        assert_eq!(v.get("n"), Some(&Value::from(3)));
        assert_eq!(v.get("missing"), None);
        assert_eq!(v.names().collect::<Vec<_>>(), ["input", "expected", "n", "tags", "ctx"]);
        // Serialised in the order written, byte for byte what the map wrote.
        assert_eq!(serde_json::to_string(&v).unwrap(), written);
        assert_eq!(Value::Object(v.to_map()).to_string(), written);
        // The same names and values in another order are the same vars; a value or a name
        // more or less is not.
        assert_eq!(
            v,
            vars(
                r#"{"ctx":{"a":2,"z":1},"tags":["a","b"],"n":3,"expected":"Within 30 days.","input":"Can I return boots?"}"#
            )
        );
        assert_ne!(v, vars(r#"{"input":"Can I return boots?"}"#));
        assert_ne!(vars(r#"{"a":1}"#), vars(r#"{"a":2}"#));
        assert_ne!(vars(r#"{"a":1}"#), vars(r#"{"b":1}"#));
        assert_eq!(Vars::default(), vars("{}"));
        // A case whose input is not a string shows its vars as JSON.
        let case = Case {
            id: "c".to_owned(),
            group: None,
            vars: vars(r#"{"input":{"q":"x"},"k":1}"#),
            asserts: std::sync::Arc::from([]),
            assert_source: std::sync::Arc::from("[]"),
            line: 0,
        };
        assert_eq!(case.input_text(), r#"{"input":{"q":"x"},"k":1}"#);
    }

    #[test]
    fn a_datasets_cases_hold_each_var_name_once_and_their_vars_are_as_read() {
        // A run holds every case: its line is a number, its vars a pointer and a length.
        assert!(std::mem::size_of::<Case>() <= 96, "{}", std::mem::size_of::<Case>());
        let map = |text: &str| serde_json::from_str::<serde_json::Map<String, Value>>(text).unwrap();
        let mut names = Names::default();
        let first = names.vars(map(r#"{"input":"a","expected":"b"}"#));
        let second = names.vars(map(r#"{"expected":"c","input":"d","extra":1}"#));
        assert_eq!(first, vars(r#"{"input":"a","expected":"b"}"#));
        assert_eq!(second, vars(r#"{"expected":"c","input":"d","extra":1}"#));
        // One text for `input`, one for `expected`, whichever case named it first.
        assert!(Arc::ptr_eq(&first.0[0].0, &second.0[1].0));
        assert!(Arc::ptr_eq(&first.0[1].0, &second.0[0].0));
        assert_eq!(names.0.len(), 3);
        // Equal vars read twice are equal, not one: sharing them is `compare`'s to decide.
        let again = names.vars(map(r#"{"input":"a","expected":"b"}"#));
        assert_eq!(again, first);
        assert!(!again.shared_with(&first));
        assert!(first.clone().shared_with(&first));
    }
}
