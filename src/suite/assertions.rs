//! Assertions as written, turned into checked ones.

use super::*;

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
        "llm-rubric" => Check::Judge(JudgeCheck::Rubric(text().map_err(|_| {
            (
                "assertion `llm-rubric` needs the rubric as its `value`".to_owned(),
                Some("e.g. {type: llm-rubric, value: \"States the refund window.\", metric: relevance}".to_owned()),
            )
        })?)),
        "relevance" => Check::Judge(JudgeCheck::Relevance),
        "hallucination" => Check::Judge(JudgeCheck::Hallucination {
            context_var: raw.context_var.clone().unwrap_or_else(|| "context".to_owned()),
        }),
        // ASSERTION_TYPES was checked above; a type listed there but not handled here is ours.
        other => return Err((format!("assertion type `{other}` is not supported"), None)),
    };
    if raw.path.is_some() && kind != "json-path" {
        return Err((
            format!("assertion `{kind}` takes no `path`"),
            Some("`path` belongs to json-path assertions".to_owned()),
        ));
    }
    if raw.context_var.is_some() && kind != "hallucination" {
        return Err((
            format!("assertion `{kind}` takes no `context_var`"),
            Some("`context_var` belongs to hallucination assertions".to_owned()),
        ));
    }
    let default_metric = match kind {
        "hallucination" => "hallucination_rate",
        other => other,
    };
    Ok(Assertion {
        metric: raw.metric.clone().unwrap_or_else(|| default_metric.to_owned()),
        check,
    })
}
