//! Assertions as written, turned into checked ones.

use super::*;

/// An error of one assertion: the message and a hint. The caller adds where it is written.
type Problem = (String, Option<String>);

/// Turns an assertion as written into a checked one. Errors are `(message, hint)`.
/// `similarity`: the method of a `similarity` that names none (embeddings when the suite has
/// an embedder, else ROUGE-L).
pub(crate) fn resolve_assertion(
    source: &dyn FileSource,
    base_dir: &str,
    raw: &raw::RawAssertion,
    dependencies: &mut BTreeSet<String>,
    similarity_default: SimilarityMethod,
) -> Result<Assertion, Problem> {
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
            let path = join_in_repo(base_dir, &s["file://".len()..]).map_err(|e| {
                (
                    format!("assertion file {e}"),
                    Some(
                        "file:// paths are relative to the file that names them and stay inside the repository"
                            .to_owned(),
                    ),
                )
            })?;
            let text = source
                .read(&path)
                .map_err(|e| {
                    (
                        format!("reading `{path}`: {e:#}"),
                        Some("name a readable file of the repository".to_owned()),
                    )
                })?
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
    let text = || -> Result<String, Problem> {
        match &value {
            Some(Value::String(s)) => Ok(s.clone()),
            // A whole number reads back as written (`value: 42` is "42"); a fraction or an
            // exponent does not (`1.50` is 1.5, `1e3` is 1000.0), nor does a YAML boolean
            // (`no`, `off` and `yes` are false and true): the text checked would not be the
            // text written.
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
            Some(Value::Number(n)) => Err((
                format!(
                    "assertion `{kind}` needs a text `value`, but it was read as the number {n}, whose text may differ from what was written"
                ),
                Some(format!("quote it, e.g. {{type: {kind}, value: \"1.50\"}}")),
            )),
            Some(Value::Bool(b)) => Err((
                format!(
                    "assertion `{kind}` needs a text `value`, but it was read as the boolean {b} (YAML reads an unquoted no, off, yes or on as one)"
                ),
                Some(format!("quote it, e.g. {{type: {kind}, value: \"no\"}}")),
            )),
            _ => Err((
                format!("assertion `{kind}` needs a text `value`"),
                Some(format!("e.g. {{type: {kind}, value: \"30 days\"}}")),
            )),
        }
    };
    let check = match kind {
        "equals" => Check::Equals(text()?),
        "contains" => Check::Contains(text()?),
        "icontains" => Check::IContains(fold_case(&text()?)),
        "not-contains" => Check::NotContains(text()?),
        "not-icontains" => Check::NotIContains(fold_case(&text()?)),
        "starts-with" => Check::StartsWith(text()?),
        "regex" => Check::Regex(patterns::compiled(&text()?)?),
        "json-valid" if value.is_some() => {
            return Err((
                "assertion `json-valid` takes no `value`".to_owned(),
                Some("write {type: json-valid}; to check the JSON's shape use {type: json-schema, value: {type: object, required: [answer]}}".to_owned()),
            ));
        }
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
        "pii" => {
            let mut detectors = pii_detectors(value.as_ref())?;
            detectors.allow = raw.allow.clone().unwrap_or_default();
            if detectors.allow.iter().any(|a| !a.chars().any(char::is_alphanumeric)) {
                return Err((
                    "an `allow` entry of a pii assertion is empty".to_owned(),
                    Some("list the addresses and numbers that are no leak, e.g. allow: [privacy@example.com, 1-800-555-0142]".to_owned()),
                ));
            }
            Check::Pii(Arc::new(detectors))
        }
        "forbidden-terms" => forbidden_terms(value.as_ref())?,
        "json-schema" => Check::JsonSchema(json_schema(value.as_ref(), raw)?),
        "refusal" | "not-refusal" => {
            if value.is_some() {
                return Err((
                    format!("assertion `{kind}` takes no `value`"),
                    Some(format!(
                        "write {{type: {kind}}}: the refusal detector needs no settings"
                    )),
                ));
            }
            Check::Refusal {
                expected: kind == "refusal",
            }
        }
        "similarity" => similarity(value.as_ref(), raw, similarity_default)?,
        "exec" => exec(value.as_ref(), raw)?,
        "llm-rubric" => Check::Judge(JudgeCheck::Rubric(
            text()
                .ok()
                .filter(|rubric| !rubric.trim().is_empty())
                .ok_or_else(|| {
                    (
                        "assertion `llm-rubric` needs the rubric as its `value` (a judge asked an empty rubric judges nothing)"
                            .to_owned(),
                        Some(
                            "e.g. {type: llm-rubric, value: \"States the refund window.\", metric: relevance}".to_owned(),
                        ),
                    )
                })?,
        )),
        "relevance" => Check::Judge(JudgeCheck::Relevance),
        "llm-compare" => Check::Compare(text().map_err(|_| {
            (
                "assertion `llm-compare` needs the rubric the outputs are compared on as its `value`".to_owned(),
                Some("e.g. {type: llm-compare, value: \"Answers the question correctly and concisely.\", metric: preference}".to_owned()),
            )
        })?),
        "hallucination" => Check::Judge(JudgeCheck::Hallucination {
            context_var: raw.context_var.clone().unwrap_or_else(|| "context".to_owned()),
        }),
        // ASSERTION_TYPES was checked above; a type listed there but not handled here is ours.
        other => return Err((format!("assertion type `{other}` is not supported"), None)),
    };
    for (key, given, owner) in [
        ("path", raw.path.is_some(), "json-path"),
        ("threshold", raw.threshold.is_some(), "similarity"),
        ("method", raw.method.is_some(), "similarity"),
        ("command", raw.command.is_some(), "exec"),
        ("allow", raw.allow.is_some(), "pii"),
        ("context_var", raw.context_var.is_some(), "hallucination"),
    ] {
        if given && kind != owner {
            return Err((
                format!("assertion `{kind}` takes no `{key}`"),
                Some(format!("`{key}` belongs to {owner} assertions")),
            ));
        }
    }
    // A value these judges have no use for is a rubric written in the wrong place: said, not
    // dropped (the judge would grade by its default rubric without a word).
    if matches!(kind, "relevance" | "hallucination") && value.is_some() {
        return Err((
            format!("assertion `{kind}` takes no `value`: it judges by its own rubric"),
            Some(format!(
                "for a rubric of your own write {{type: llm-rubric, value: \"…\", metric: {}}}",
                if kind == "relevance" {
                    "relevance"
                } else {
                    "hallucination_rate"
                }
            )),
        ));
    }
    let metric = metric_name(kind, raw)?;
    if matches!(check, Check::Pii(_)) && crate::metrics::Metric::of(&metric).default_direction() != Direction::Lower {
        return Err((
            format!(
                "the `pii` score is 1 when personal data is found, so its metric `{metric}` must read lower-is-better"
            ),
            Some("name it as a leak, e.g. `metric: email_leak_rate` (the default is `pii_leak_rate`)".to_owned()),
        ));
    }
    let metric = match &check {
        Check::Exec { scores, .. } => scores.join(", "),
        _ => metric,
    };
    Ok(Assertion { metric, check })
}

/// The metric an assertion's score is recorded under: `metric:`, else its type's default.
fn metric_name(kind: &str, raw: &raw::RawAssertion) -> Result<String, Problem> {
    let names = match &raw.metric {
        None if kind == "pii" => return Ok(crate::metrics::PII_LEAK_RATE.to_owned()),
        None if kind == "hallucination" => return Ok("hallucination_rate".to_owned()),
        None if kind == "llm-compare" => return Ok("preference".to_owned()),
        None => return Ok(kind.to_owned()),
        Some(names) => &names.0,
    };
    if kind == "exec" {
        // Checked with the scorer's command.
        return Ok(names.join(", "));
    }
    match names.as_slice() {
        [one] => check_metric_name(one).map(|()| one.clone()),
        _ => Err((
            format!("assertion `{kind}` records one score: `metric` takes one name"),
            Some("several names belong to exec scorers, one per score their command returns".to_owned()),
        )),
    }
}

/// The share of judge calls that failed: a run's own figure (`run.judge_error_rate`).
const JUDGE_ERROR_RATE: &str = "judge_error_rate";

fn check_metric_name(name: &str) -> Result<(), Problem> {
    if name.trim().is_empty() || name.trim() != name {
        return Err((
            format!("metric name {name:?} is empty or has spaces around it"),
            Some("name a metric with letters, digits and `_`, e.g. `tone`".to_owned()),
        ));
    }
    // The call's own `pass`, and what promptgate computes from the calls (cost, latency, the
    // error rate…): an assertion's score under that name would be read as neither.
    if RESERVED_METRICS.contains(&name) || crate::metrics::Metric::of(name).is_computed() || name == JUDGE_ERROR_RATE {
        return Err((
            format!("`{name}` is promptgate's own metric; an assertion cannot take its name"),
            Some(format!("name it differently, e.g. `metric: {name}_check`")),
        ));
    }
    Ok(())
}

/// `pii`: the built-in detectors (all of them without a `value`, or with patterns of your own
/// only), and named patterns.
fn pii_detectors(value: Option<&Value>) -> Result<PiiDetectors, Problem> {
    let shape = || {
        Some(
            "e.g. {type: pii, value: [email, phone, iban, card, {us-ssn: '\\b\\d{3}-\\d{2}-\\d{4}\\b'}]}: built-in kinds by name, your own patterns as {name: regex}"
                .to_owned(),
        )
    };
    let items: Vec<&Value> = match value {
        None => {
            return Ok(PiiDetectors {
                builtin: PiiKind::ALL.to_vec(),
                custom: Vec::new(),
                allow: Vec::new(),
            });
        }
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(one @ (Value::String(_) | Value::Object(_))) => vec![one],
        Some(_) => {
            return Err((
                "assertion `pii` needs a list of kinds as its `value`".to_owned(),
                shape(),
            ));
        }
    };
    let names: Vec<&str> = PiiKind::ALL.iter().map(|k| k.as_str()).collect();
    let mut detectors = PiiDetectors {
        builtin: Vec::new(),
        custom: Vec::new(),
        allow: Vec::new(),
    };
    let mut seen = BTreeSet::new();
    for item in items {
        match item {
            Value::String(name) => {
                let Some(kind) = PiiKind::ALL.into_iter().find(|k| k.as_str() == name) else {
                    let hint = match did_you_mean(name, names.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "built-in kinds: {}; a pattern of your own is written {{{name}: 'regex'}}",
                            names.join(", ")
                        ),
                    };
                    return Err((format!("unknown kind of personal data `{name}`"), Some(hint)));
                };
                if seen.insert(name.clone()) {
                    detectors.builtin.push(kind);
                }
            }
            Value::Object(map) if map.len() == 1 => {
                let (name, pattern) = map.iter().next().expect("one entry");
                let Value::String(pattern) = pattern else {
                    return Err((format!("pattern `{name}` must be a regex, as text"), shape()));
                };
                if names.contains(&name.as_str()) {
                    return Err((
                        format!("`{name}` is a built-in detector; a pattern of your own needs another name"),
                        Some(format!("write `{name}` alone in the list to use the built-in one")),
                    ));
                }
                if name.trim().is_empty() || !seen.insert(name.clone()) {
                    return Err((format!("pattern name {name:?} is empty or used twice"), shape()));
                }
                detectors.custom.push((name.clone(), patterns::compiled(pattern)?));
            }
            _ => {
                return Err((
                    "each entry of a `pii` list is a kind or {name: regex}".to_owned(),
                    shape(),
                ));
            }
        }
    }
    // Patterns of your own alone add to every built-in detector: a national id's pattern does
    // not mean e-mail addresses and card numbers stopped counting. Naming kinds picks them.
    if detectors.builtin.is_empty() {
        detectors.builtin = PiiKind::ALL.to_vec();
    }
    Ok(detectors)
}

/// `forbidden-terms`: one regex matching any of the terms as whole words, in any case.
fn forbidden_terms(value: Option<&Value>) -> Result<Check, Problem> {
    let shape = || Some("e.g. {type: forbidden-terms, value: [guarantee, \"legal advice\"]}".to_owned());
    let terms: Vec<String> = match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err((format!("forbidden term {other} is not text"), shape())),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err((
                "assertion `forbidden-terms` needs a list of terms as its `value`".to_owned(),
                shape(),
            ));
        }
    };
    let terms: Vec<String> = terms.iter().map(|t| t.trim().to_owned()).collect();
    if terms.iter().any(String::is_empty) {
        return Err(("a forbidden term is empty".to_owned(), shape()));
    }
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let alternatives: Vec<String> = terms
        .iter()
        .map(|t| {
            // `\b` only where the term itself starts or ends with a word character: `C++`
            // ends in punctuation, after which there is no word boundary to require.
            format!(
                "{}{}{}",
                if word(t.chars().next()) { r"\b" } else { "" },
                regex::escape(t),
                if word(t.chars().last()) { r"\b" } else { "" }
            )
        })
        .collect();
    let regex = patterns::compiled(&format!("(?i)(?:{})", alternatives.join("|")))?;
    Ok(Check::ForbiddenTerms { terms, regex })
}

/// `json-schema`: an inline schema, or a schema file (`file://…`, JSON or YAML).
fn json_schema(value: Option<&Value>, raw: &raw::RawAssertion) -> Result<Arc<jsonschema::Validator>, Problem> {
    let shape = || {
        Some(
            "e.g. {type: json-schema, value: {type: object, required: [answer]}} or value: file://schemas/answer.json"
                .to_owned(),
        )
    };
    let schema = match value {
        Some(v @ (Value::Object(_) | Value::Bool(_))) => v.clone(),
        Some(Value::String(text)) => {
            let yaml = matches!(&raw.value, Some(Value::String(s)) if s.ends_with(".yaml") || s.ends_with(".yml"));
            let parsed = if yaml {
                serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
            } else {
                serde_json::from_str::<Value>(text).map_err(|e| e.to_string())
            };
            parsed.map_err(|e| {
                (
                    format!("the schema is not valid {}: {e}", if yaml { "YAML" } else { "JSON" }),
                    shape(),
                )
            })?
        }
        _ => {
            return Err((
                "assertion `json-schema` needs a schema as its `value`".to_owned(),
                shape(),
            ));
        }
    };
    compiled_schema(&schema)
}

/// A schema compiled once however many cases name it (a dataset whose every case points at
/// `file://schema.json` would otherwise compile and keep one validator per case).
fn compiled_schema(schema: &Value) -> Result<Arc<jsonschema::Validator>, Problem> {
    const MAX_SCHEMAS: usize = 1_000;
    static COMPILED: std::sync::LazyLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<jsonschema::Validator>>>,
    > = std::sync::LazyLock::new(Default::default);
    let key = schema.to_string();
    let mut compiled = COMPILED
        .lock()
        .map_err(|_| ("the schema cache is unusable".to_owned(), None))?;
    if let Some(validator) = compiled.get(&key) {
        return Ok(Arc::clone(validator));
    }
    if compiled.len() >= MAX_SCHEMAS {
        return Err((
            format!("more than {MAX_SCHEMAS} distinct JSON Schemas"),
            Some("write the schemas the cases share once, in files they name with file://".to_owned()),
        ));
    }
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        let hint = if matches!(e.kind(), jsonschema::error::ValidationErrorKind::Referencing(_)) {
            "promptgate resolves no `$ref` outside the schema itself: put the referenced part under `$defs`"
        } else {
            "the schema must itself be valid JSON Schema (draft 2020-12 unless `$schema` says otherwise)"
        };
        (format!("invalid JSON Schema: {e}"), Some(hint.to_owned()))
    })?;
    let validator = Arc::new(validator);
    compiled.insert(key, Arc::clone(&validator));
    Ok(validator)
}

/// `similarity`: to `value`, or to the case's `expected` var.
fn similarity(value: Option<&Value>, raw: &raw::RawAssertion, default: SimilarityMethod) -> Result<Check, Problem> {
    let reference = match value {
        None => Reference::Expected,
        Some(Value::String(s)) => Reference::Text(s.clone()),
        Some(_) => {
            return Err((
                "assertion `similarity` compares with a text `value`".to_owned(),
                Some(format!(
                    "e.g. {{type: similarity, value: \"Refunds are accepted within 30 days.\", threshold: 0.5}}, or leave `value` out to compare with the case's `{EXPECTED_VAR}` var"
                )),
            ));
        }
    };
    if let Some(t) = raw.threshold
        && !(t.is_finite() && (0.0..=1.0).contains(&t))
    {
        return Err((
            format!("similarity threshold must be between 0 and 1, got {t}"),
            Some("the score is a ROUGE-L F-measure in [0, 1]; 0.5 is a loose paraphrase, 0.8 close wording".to_owned()),
        ));
    }
    let method = match raw.method.as_deref() {
        None => default,
        Some("rouge-l") => SimilarityMethod::RougeL,
        Some("embeddings") => SimilarityMethod::Embeddings,
        Some(other) => {
            let hint = match did_you_mean(other, SimilarityMethod::NAMES.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "methods: {} (rouge-l is lexical and needs no model; embeddings call `defaults.embedder`)",
                    SimilarityMethod::NAMES.join(", ")
                ),
            };
            return Err((format!("unknown similarity method `{other}`"), Some(hint)));
        }
    };
    Ok(Check::Similarity {
        reference,
        threshold: raw.threshold,
        method,
    })
}

/// `exec`: a command and the names of the scores it returns.
fn exec(value: Option<&Value>, raw: &raw::RawAssertion) -> Result<Check, Problem> {
    let example = || {
        Some("e.g. {type: exec, command: [python3, scripts/score.py], metric: tone}: the command reads the case and output as JSON on stdin and prints {\"scores\": {\"tone\": 0.8}}".to_owned())
    };
    if value.is_some() {
        return Err(("assertion `exec` takes no `value`".to_owned(), example()));
    }
    let command = match raw.command.as_deref() {
        Some(command @ [program, ..]) if !program.trim().is_empty() => command.to_vec(),
        _ => {
            return Err((
                "assertion `exec` needs `command`: the program and its arguments".to_owned(),
                example(),
            ));
        }
    };
    let scores = match &raw.metric {
        Some(names) if !names.0.is_empty() => names.0.clone(),
        Some(_) => return Err(("an exec scorer's `metric` list is empty".to_owned(), example())),
        None => vec!["exec".to_owned()],
    };
    let mut seen = BTreeSet::new();
    for name in &scores {
        check_metric_name(name)?;
        if !seen.insert(name) {
            return Err((format!("score `{name}` is named twice"), example()));
        }
    }
    Ok(Check::Exec { command, scores })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Patterns of one's own alone keep every built-in detector (a national id's pattern once
    /// silently turned off e-mail, phone, IBAN and card); naming kinds picks them.
    #[test]
    fn a_pii_pattern_of_ones_own_adds_to_the_built_in_detectors() {
        let own: Value = serde_json::json!([{"us-ssn": r"\b\d{3}-\d{2}-\d{4}\b"}]);
        let detectors = pii_detectors(Some(&own)).unwrap();
        assert_eq!(detectors.builtin, PiiKind::ALL.to_vec());
        assert_eq!(detectors.custom.len(), 1);
        let picked: Value = serde_json::json!(["email", {"us-ssn": r"\b\d{3}-\d{2}-\d{4}\b"}]);
        let detectors = pii_detectors(Some(&picked)).unwrap();
        assert_eq!(detectors.builtin, vec![PiiKind::Email]);
        assert_eq!(pii_detectors(None).unwrap().builtin, PiiKind::ALL.to_vec());
    }

    /// The metric each assertion type records by default is one whose direction the metrics
    /// know (an `exec` script's scores are the only ones they cannot): `metrics::direction_known`
    /// keeps up with the types.
    #[test]
    fn every_own_assertions_default_metric_has_a_known_direction() {
        for kind in ASSERTION_TYPES.iter().filter(|k| **k != "exec") {
            let raw: raw::RawAssertion = serde_json::from_value(serde_json::json!({"type": kind})).unwrap();
            let metric = metric_name(kind, &raw).unwrap();
            assert!(
                crate::metrics::Metric::of(&metric).direction_known(),
                "{kind} records {metric}"
            );
        }
        assert!(!crate::metrics::Metric::of("toxicity").direction_known());
        // A name that reads lower-is-better is still a guess for a script's score.
        assert!(!crate::metrics::Metric::of("hallucination_free_rate").direction_known());
        assert!(crate::metrics::Metric::of("hallucination_rate").direction_known());
    }
}
