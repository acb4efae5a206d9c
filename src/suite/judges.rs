//! Who judges: `defaults.judge`, `judge_model` and `judge_repeats`, resolved and checked against
//! the judge assertions that need them.

use super::*;

/// Judge repeats above the most advised are refused: each one is another call per output and arm.
use crate::results::MAX_JUDGE_REPEATS;

/// The judge the suite's defaults name, checked against its providers; `None` when it names
/// none (then a judge assertion is an error, see [`check`]).
pub(super) fn settings(
    providers: &BTreeMap<String, ProviderSpec>,
    defaults: Option<&raw::RawDefaults>,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
) -> Result<Option<JudgeSettings>, Error> {
    let Some(defaults) = defaults else { return Ok(None) };
    let repeats = defaults.judge_repeats.as_ref().map_or(1, |r| r.value);
    if let Some(r) = defaults
        .judge_repeats
        .as_ref()
        .filter(|r| !(1..=MAX_JUDGE_REPEATS).contains(&r.value))
    {
        return Err(at(
            r.referenced.line(),
            r.referenced.column(),
            format!("defaults.judge_repeats must be between 1 and {MAX_JUDGE_REPEATS}, got {repeats}"),
        )
        .hint("1 judges each output once; 3 averages a noisy judge")
        .into());
    }
    let Some(judge) = &defaults.judge else {
        let given = defaults
            .judge_model
            .as_ref()
            .map(|m| m.referenced)
            .or(defaults.judge_repeats.as_ref().map(|r| r.referenced));
        if let Some(given) = given {
            return Err(at(
                given.line(),
                given.column(),
                "defaults.judge_model and judge_repeats need defaults.judge".to_owned(),
            )
            .hint("name the provider judges call, e.g. `defaults: {judge: openai, judge_model: gpt-4o-mini}`")
            .into());
        }
        return Ok(None);
    };
    let (line, column) = (judge.referenced.line(), judge.referenced.column());
    let Some(spec) = providers.get(&judge.value) else {
        let hint = check_provider_name(providers, &judge.value).err().unwrap_or_default();
        return Err(at(
            line,
            column,
            format!("unknown judge provider `{}` in defaults", judge.value),
        )
        .hint(hint)
        .into());
    };
    let model = match (defaults.judge_model.as_ref().map(|m| &m.value), &spec.model, spec.kind) {
        (Some(model), _, _) | (None, Some(model), _) => model.clone(),
        // The mock answers judge prompts by itself; its model name is only a label.
        (None, None, ProviderKind::Mock) => "mock-judge".to_owned(),
        (None, None, _) => {
            return Err(at(
                line,
                column,
                format!("the judge provider `{}` has no model", judge.value),
            )
            .hint(format!(
                "set `defaults.judge_model`, or `model:` on provider `{}`",
                judge.value
            ))
            .into());
        }
    };
    Ok(Some(JudgeSettings {
        provider: judge.value.clone(),
        model,
        repeats,
    }))
}

/// A judge assertion needs a judge: the first one in a suite without `defaults.judge` is the
/// error, at the line that names its type in the suite file when it is written there.
pub(super) fn check(source: &dyn FileSource, suite: &Suite) -> Result<(), Error> {
    if suite.defaults.judge.is_some() {
        return Ok(());
    }
    let judged = suite.experiments.iter().find_map(|e| {
        e.asserts
            .iter()
            .chain(e.cases.iter().flat_map(|c| c.asserts.iter()))
            .find(|a| matches!(a.check, Check::Judge(_) | Check::Compare(_)))
            .map(|a| (e, a))
    });
    let Some((experiment, assertion)) = judged else {
        return Ok(());
    };
    let kind = match &assertion.check {
        Check::Judge(JudgeCheck::Rubric(_)) => "llm-rubric",
        Check::Judge(JudgeCheck::Hallucination { .. }) => "hallucination",
        Check::Compare(_) => "llm-compare",
        _ => "relevance",
    };
    let mut diagnostic = Diagnostic::new(format!(
        "experiment `{}` has a `{kind}` assertion but the suite names no judge",
        experiment.name
    ))
    .in_file(&suite.config_path);
    if let Ok(Some(text)) = source.read(&suite.config_path)
        && let Some((line, column)) = text.lines().enumerate().find_map(|(i, l)| {
            let at = l.find(&format!("type: {kind}"))?;
            Some((i as u64 + 1, at as u64 + 1))
        })
    {
        diagnostic = diagnostic.at(&text, line, column);
    }
    Err(diagnostic
        .hint("name the provider judges call: `defaults: {judge: NAME}` (any configured provider; the mock judges offline)")
        .into())
}

/// The embedder the suite's defaults name, checked against its providers: its type must have
/// an embeddings endpoint (no silent fallback to another method), and a model (the mock needs
/// none). `None` when it names none (then an embedding similarity is an error, see
/// [`check_embedder`]).
pub(super) fn embedder(
    providers: &BTreeMap<String, ProviderSpec>,
    defaults: Option<&raw::RawDefaults>,
    at: &dyn Fn(u64, u64, String) -> Diagnostic,
) -> Result<Option<EmbedderSettings>, Error> {
    let Some(defaults) = defaults else { return Ok(None) };
    let Some(embedder) = &defaults.embedder else {
        if let Some(model) = &defaults.embedding_model {
            return Err(at(
                model.referenced.line(),
                model.referenced.column(),
                "defaults.embedding_model needs defaults.embedder".to_owned(),
            )
            .hint("name the provider that embeds, e.g. `defaults: {embedder: openai, embedding_model: text-embedding-3-small}`")
            .into());
        }
        return Ok(None);
    };
    let (line, column) = (embedder.referenced.line(), embedder.referenced.column());
    let Some(spec) = providers.get(&embedder.value) else {
        let hint = check_provider_name(providers, &embedder.value)
            .err()
            .unwrap_or_default();
        return Err(at(
            line,
            column,
            format!("unknown embedder provider `{}` in defaults", embedder.value),
        )
        .hint(hint)
        .into());
    };
    if !spec.kind.has_embeddings() {
        return Err(at(
            line,
            column,
            format!(
                "the embedder `{}` has type `{}`, which has no embeddings endpoint",
                embedder.value,
                spec.kind.as_str()
            ),
        )
        .hint("embed through an `openai` or `openai-compatible` provider (POST /v1/embeddings), or the `mock` offline; or use `method: rouge-l`, which needs no model")
        .into());
    }
    let model = match (defaults.embedding_model.as_ref().map(|m| &m.value), spec.kind) {
        (Some(model), _) => model.clone(),
        // The mock embeds by itself; its model name is only a label.
        (None, ProviderKind::Mock) => "mock-embedding".to_owned(),
        (None, _) => {
            return Err(at(
                line,
                column,
                format!("the embedder `{}` has no embedding model", embedder.value),
            )
            .hint("set `defaults.embedding_model`, e.g. `text-embedding-3-small`")
            .into());
        }
    };
    Ok(Some(EmbedderSettings {
        provider: embedder.value.clone(),
        model,
    }))
}

/// A similarity with `method: embeddings` needs an embedder: the first one in a suite without
/// `defaults.embedder` is the error, at the line that names the method in the suite file when
/// it is written there.
pub(super) fn check_embedder(source: &dyn FileSource, suite: &Suite) -> Result<(), Error> {
    if suite.defaults.embedder.is_some() {
        return Ok(());
    }
    let embedded = suite.experiments.iter().find(|e| {
        e.asserts
            .iter()
            .chain(e.cases.iter().flat_map(|c| c.asserts.iter()))
            .any(|a| {
                matches!(
                    a.check,
                    Check::Similarity {
                        method: SimilarityMethod::Embeddings,
                        ..
                    }
                )
            })
    });
    let Some(experiment) = embedded else {
        return Ok(());
    };
    let mut diagnostic = Diagnostic::new(format!(
        "experiment `{}` has a similarity with `method: embeddings` but the suite names no embedder",
        experiment.name
    ))
    .in_file(&suite.config_path);
    if let Ok(Some(text)) = source.read(&suite.config_path)
        && let Some((line, column)) = text.lines().enumerate().find_map(|(i, l)| {
            let at = l.find("method: embeddings")?;
            Some((i as u64 + 1, at as u64 + 1))
        })
    {
        diagnostic = diagnostic.at(&text, line, column);
    }
    Err(diagnostic
        .hint("name the provider that embeds: `defaults: {embedder: NAME, embedding_model: MODEL}` (openai or openai-compatible; the mock embeds offline)")
        .into())
}
