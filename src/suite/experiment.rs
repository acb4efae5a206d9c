//! One experiment's files: its variant, prompt, partials and dataset, read and checked.

use super::*;

/// The most stop sequences a variant may give (OpenAI's limit; Anthropic takes more).
const MAX_STOP: usize = 4;

/// Reads an experiment's variant, prompt and dataset, and renders every case once so that a
/// template error surfaces now rather than mid-run. The first error, where
/// [`load_experiment_all`] gives every one.
pub fn load_experiment(
    source: &Arc<dyn FileSource>,
    suite: &Suite,
    decl: &ExperimentDecl,
) -> Result<Experiment, Error> {
    load_experiment_all(source, suite, decl, None).map_err(super::problems::first)
}

/// [`load_experiment`] of the suite at base, `head` loaded before it: a case whose vars equal
/// head's same case's (same dataset path, same id) holds head's as it is read. Both arms render
/// head's cases (see `plan::jobs`), and base's are read only to detect what changed, so a large
/// unchanged dataset is held once, never once an arm (at 50,000 cases, 8 MB). Only the vars: a
/// case's assertions resolve against its own suite (a `pii` assertion takes its suite's
/// detectors), so they stay base's.
pub fn load_base_experiment(
    source: &Arc<dyn FileSource>,
    suite: &Suite,
    decl: &ExperimentDecl,
    head: &Suite,
) -> Result<Experiment, Error> {
    load_experiment_all(source, suite, decl, Some(head)).map_err(super::problems::first)
}

/// What an experiment's variant file gives it.
struct LoadedVariant {
    variant: Variant,
    prompt: Prompt,
    prompt_path: String,
    text: String,
    /// Where each setting Anthropic refuses is written (what, line, column).
    anthropic_refuses: Vec<(&'static str, u64, u64)>,
}

/// [`load_experiment`], reporting every error it finds (for `validate`): the variant's, the
/// dataset's (each case's), the experiment's assertions', and the cases' renderings, each part
/// checked whether or not another failed, as far as it does not need the failed one.
pub fn load_experiment_all(
    source: &Arc<dyn FileSource>,
    suite: &Suite,
    decl: &ExperimentDecl,
    head: Option<&Suite>,
) -> Result<Experiment, Vec<Error>> {
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
    let (variant_path, dataset_path) = match (resolve(&e.variant, "variant"), resolve(&e.dataset, "dataset")) {
        (Ok(variant), Ok(dataset)) => (variant, dataset),
        (variant, dataset) => return Err(variant.err().into_iter().chain(dataset.err()).collect()),
    };

    let mut dependencies = BTreeSet::new();
    dependencies.insert(variant_path.clone());
    dependencies.insert(dataset_path.clone());

    let mut errors = Vec::new();
    let loaded = load_variant(source, (config_path, &config_text), e, &variant_path)
        .map_err(|es| errors.extend(es))
        .ok();

    let dataset_text = read_required(&**source, &dataset_path, || {
        Diagnostic::new(format!("experiment `{name}`: dataset `{dataset_path}` not found"))
            .in_file(config_path)
            .at(&config_text, e.dataset.referenced.line(), e.dataset.referenced.column())
            .hint("paths are relative to the suite file's folder and must name a file")
    })
    .map_err(|e| errors.push(e))
    .ok();
    // A similarity that names no method uses the suite's embedder when it has one ("embeddings,
    // else ROUGE-L"); one that names a method gets it, with no fallback.
    let similarity = if suite.defaults.embedder.is_some() {
        super::SimilarityMethod::Embeddings
    } else {
        super::SimilarityMethod::RougeL
    };
    let (cases, unread) = match &dataset_text {
        Some(text) => {
            let heads = head
                .and_then(|h| h.experiments.iter().find(|x| x.dataset_path == dataset_path))
                .map_or(&[][..], |x| &x.cases[..]);
            dataset::parse_like(&**source, &dataset_path, text, &mut dependencies, similarity, heads)
        }
        None => (Vec::new(), Vec::new()),
    };
    // A dataset that was not found, or did not parse, has no cases to speak of.
    if dataset_text.is_some() && cases.is_empty() && unread.is_empty() {
        errors.push(
            Diagnostic::new(format!("dataset `{dataset_path}` has no cases"))
                .in_file(&dataset_path)
                .hint("an experiment needs at least one case; a few dozen make its statistics meaningful")
                .into(),
        );
    }
    let dataset_text = dataset_text.unwrap_or_default();
    errors.extend(unread);

    let mut asserts = Vec::new();
    for a in &e.assert {
        let loc = &a.referenced;
        match resolve_assertion(&**source, config_dir, &a.value, &mut dependencies, similarity) {
            Ok(assertion) => asserts.push(assertion),
            Err((message, hint)) => errors.push(
                with_hint(
                    Diagnostic::new(message)
                        .in_file(config_path)
                        .at(&config_text, loc.line(), loc.column()),
                    hint,
                )
                .into(),
            ),
        }
    }

    // A similarity without a `value` compares with the case's `expected` var, and a
    // hallucination check judges against its `context_var`: every case they apply to must
    // have the var, or the score would mean nothing (or fail only at run time, as a judge
    // error).
    // Each var an assertion needs and a case lacks: one error at the first such case, naming
    // the others (a similarity added to a dataset without references lacks it in every case).
    let mut lacking: Vec<(String, Diagnostic, Vec<&str>)> = Vec::new();
    for case in &cases {
        let has = |var: &str| match case.vars.get(var) {
            Some(Value::String(s)) => !s.trim().is_empty(),
            Some(Value::Null) | None => false,
            Some(_) => true,
        };
        let missing = asserts.iter().chain(case.asserts.iter()).find_map(|a| match &a.check {
            Check::Similarity {
                reference: Reference::Expected,
                ..
            } if !has(EXPECTED_VAR) => Some((
                format!(
                    "case `{}` has no `{EXPECTED_VAR}` var for its similarity assertion to compare with",
                    case.id
                ),
                format!(
                    "add the reference answer to the case's vars (\"{EXPECTED_VAR}\": \"…\"), or give the similarity assertion a `value`"
                ),
            )),
            Check::Judge(JudgeCheck::Hallucination { context_var }) if !has(context_var) => Some((
                format!(
                    "case `{}` has no `{context_var}` var for its hallucination assertion to judge against",
                    case.id
                ),
                format!(
                    "add the grounding text to the case's vars (\"{context_var}\": \"…\"), or name the var that holds it with `context_var`"
                ),
            )),
            _ => None,
        });
        let Some((message, hint)) = missing else { continue };
        // The message names the case first: what follows it is what it lacks.
        let what = message
            .split_once("` has ")
            .map_or(&*message, |(_, what)| what)
            .to_owned();
        match lacking.iter_mut().find(|(lacks, ..)| *lacks == what) {
            Some((_, _, others)) => others.push(&case.id),
            None => {
                let line = u64::from(case.line);
                let d = Diagnostic::new(message)
                    .in_file(&dataset_path)
                    .at(&dataset_text, line, dataset::key_column(&dataset_text, line, "vars"))
                    .hint(hint);
                lacking.push((what, d, Vec::new()));
            }
        }
    }
    for (_, d, others) in lacking {
        errors.push(match others.as_slice() {
            [] => d.into(),
            _ => d
                .hint(format!(
                    "{} more case(s) lack it too: {}{}",
                    others.len(),
                    others
                        .iter()
                        .take(5)
                        .map(|id| format!("`{id}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if others.len() > 5 { ", …" } else { "" }
                ))
                .into(),
        });
    }

    let mut globs = GlobSetBuilder::new();
    for pattern in &e.depends_on {
        match globset::GlobBuilder::new(&pattern.value)
            .literal_separator(true)
            .build()
        {
            Ok(glob) => {
                globs.add(glob);
            }
            Err(err) => errors.push(
                Diagnostic::new(format!("invalid glob `{}`: {}", pattern.value, err.kind()))
                    .in_file(config_path)
                    .at(&config_text, pattern.referenced.line(), pattern.referenced.column())
                    .hint("globs match repository-relative paths, e.g. `docs/**/*.md`")
                    .into(),
            ),
        }
    }

    // Render every case now: strict undefined variables and missing partials fail validation,
    // and the files the template really reads become dependencies.
    let mut partials = BTreeSet::new();
    let mut unrendered = super::problems::Capped::new(&dataset_path);
    let mut in_template = std::collections::HashSet::new();
    let renders = loaded.as_ref().map(|l| (&l.prompt, &l.prompt_path));
    for (case, (prompt, prompt_path)) in cases.iter().filter_map(|case| Some((case, renders?))) {
        let rendered = prompt.render(&case.vars).map_err(|d| match d.file {
            // The template's own error points into the template, once: the first case it
            // failed is named below, and every other case fails the same way.
            Some(_) if !in_template.insert((d.file.clone(), d.line, d.column, d.message.clone())) => None,
            Some(_) => Some(Error::from(d.hint(format!(
                "while rendering case `{}` ({dataset_path}:{})",
                case.id, case.line
            )))),
            // An error of the case itself (a var it lacks) points at the case.
            None => Some(Error::from(Diagnostic {
                line: Some(case.line as u64).filter(|l| *l > 0),
                ..d.in_file(dataset_path.as_str()).hint(format!("in case `{}`", case.id))
            })),
        });
        match rendered {
            Ok(rendered) => partials.extend(rendered.files.into_iter().filter(|f| f != prompt_path)),
            Err(Some(e)) => unrendered.push(e),
            Err(None) => {}
        }
    }
    errors.extend(unrendered.into_vec());

    let provider = e
        .provider
        .as_ref()
        .map_or_else(|| suite.defaults.provider.clone(), |p| p.value.clone());
    // An `exec` pipeline's scripts produce the output as much as the prompt does: a command
    // argument naming a file (or folder) of the tree makes the experiment depend on it.
    let mut command_files = BTreeMap::new();
    let chain = std::iter::once(&provider).chain(e.fallback.iter().map(|f| &f.value));
    // Anthropic's Messages API has no penalties: a variant that sets one cannot be sent there
    // as written (every call would be refused).
    if let Some(loaded) = &loaded
        && let Some((field, line, column)) = loaded.anthropic_refuses.first()
        && let Some(spec) = chain
            .clone()
            .filter_map(|name| suite.providers.get(name))
            .find(|spec| spec.kind == super::ProviderKind::Anthropic)
    {
        errors.push(
            Diagnostic::new(format!(
                "{field} is refused by the `{}` provider (anthropic), which experiment `{name}` calls",
                spec.name
            ))
            .in_file(&variant_path)
            .at(&loaded.text, *line, *column)
            .hint("Anthropic's Messages API takes temperature, top_p, max_tokens and stop sequences with some non-whitespace; leave it out, or call an OpenAI-compatible provider")
            .into(),
        );
    }
    let (Some(loaded), true) = (loaded, errors.is_empty()) else {
        return Err(errors);
    };
    let LoadedVariant {
        variant,
        prompt,
        prompt_path,
        ..
    } = loaded;
    dependencies.insert(prompt_path.clone());
    dependencies.extend(partials.iter().cloned());
    let mut depends_on = globs
        .build()
        .map_err(|err| vec![Error::run(format!("building globs: {err}"))])?;
    for spec in chain.filter_map(|name| suite.providers.get(name)) {
        for (path, object) in command_paths(&**source, spec) {
            command_files
                .entry(path)
                .or_insert_with(|| (spec.name.clone(), object.kind));
        }
    }
    let mut depends_on_globs: Vec<String> = e.depends_on.iter().map(|d| d.value.clone()).collect();
    // An `exec` scorer's scripts decide the scores as much as its command line does.
    let scorer_commands = asserts
        .iter()
        .chain(cases.iter().flat_map(|c| c.asserts.iter()))
        .filter_map(|a| match &a.check {
            Check::Exec { command, .. } => Some(command),
            _ => None,
        });
    let mut scorer_files = BTreeMap::new();
    for command in scorer_commands {
        for (path, object) in paths_named(&**source, command) {
            scorer_files.entry(path).or_insert(object.kind);
        }
    }
    for (path, kind) in &scorer_files {
        match kind {
            ObjectKind::File => {
                dependencies.insert(path.clone());
            }
            ObjectKind::Folder => depends_on_globs.push(format!("{path}/**")),
        }
    }
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
                .map_err(|err| vec![Error::run(format!("building globs: {err}"))])?;
            globs.add(glob);
        }
        depends_on = globs
            .build()
            .map_err(|err| vec![Error::run(format!("building globs: {err}"))])?;
    }
    // A dependency read through a link depends on the link and on where it points too: a PR
    // that edits only the target (or points the link elsewhere) changes what the experiment reads.
    let through_links: Vec<String> = dependencies.iter().flat_map(|d| source.links_through(d)).collect();
    dependencies.extend(through_links);
    let definition = serde_json::json!({
        "assert": e.assert.iter().map(|a| &a.value).collect::<Vec<_>>(),
        "depends_on": e.depends_on.iter().map(|d| &d.value).collect::<Vec<_>>(),
        "variant": variant_path,
        "dataset": dataset_path,
        "repeats": e.repeats.as_ref().map_or(suite.defaults.repeats, |r| r.value),
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
        repeats: e.repeats.as_ref().map_or(suite.defaults.repeats, |r| r.value),
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

/// An experiment's variant file, its prompt and the prompt's template, every error found.
fn load_variant(
    source: &Arc<dyn FileSource>,
    (config_path, config_text): (&str, &str),
    e: &raw::RawExperiment,
    variant_path: &str,
) -> Result<LoadedVariant, Vec<Error>> {
    let name = &e.name.value;
    let variant_text = read_required(&**source, variant_path, || {
        Diagnostic::new(format!("experiment `{name}`: variant file `{variant_path}` not found"))
            .in_file(config_path)
            .at(config_text, e.variant.referenced.line(), e.variant.referenced.column())
            .hint("paths are relative to the suite file's folder and must name a file")
    })
    .map_err(|e| vec![e])?;
    let rv: raw::RawVariant = serde_saphyr::from_str(&variant_text)
        .map_err(|err| vec![yaml_diagnostic(variant_path, &variant_text, &err, "a variant config").into()])?;
    let mut errors: Vec<Error> = Vec::new();
    let variant_at = |line: u64, column: u64, message: String| {
        Diagnostic::new(message)
            .in_file(variant_path)
            .at(&variant_text, line, column)
    };
    for (field, value, range) in [
        ("temperature", &rv.temperature, (0.0, 2.0)),
        ("top_p", &rv.top_p, (0.0, 1.0)),
        ("frequency_penalty", &rv.frequency_penalty, (-2.0, 2.0)),
        ("presence_penalty", &rv.presence_penalty, (-2.0, 2.0)),
    ] {
        if let Some(v) = value
            && !(range.0..=range.1).contains(&v.value)
        {
            errors.push(
                variant_at(
                    v.referenced.line(),
                    v.referenced.column(),
                    format!("{field} must be between {} and {}, got {}", range.0, range.1, v.value),
                )
                .hint(format!("providers accept a {field} from {} to {}", range.0, range.1))
                .into(),
            );
        }
    }
    // The stop sequences, read once, with where they are written.
    let stop = rv.stop.map(|s| (s.value.into_vec(), s.referenced));
    if let Some((sequences, at)) = &stop {
        let problem = if sequences.is_empty() || sequences.len() > MAX_STOP {
            Some(format!("stop takes 1 to {MAX_STOP} sequences, got {}", sequences.len()))
        } else {
            sequences
                .iter()
                .any(String::is_empty)
                .then(|| "a stop sequence is empty".to_owned())
        };
        if let Some(problem) = problem {
            errors.push(
                variant_at(at.line(), at.column(), problem)
                    .hint(format!(
                        "give up to {MAX_STOP} non-empty strings, e.g. `stop: [\"###\"]` (the providers' limit)"
                    ))
                    .into(),
            );
        }
    }
    // Where each setting Anthropic refuses is written, for the provider check below: a
    // penalty, or a stop sequence of whitespace only ("each stop sequence must contain
    // non-whitespace").
    let anthropic_refuses: Vec<(&str, u64, u64)> = [
        (
            "frequency_penalty",
            rv.frequency_penalty.as_ref().map(|v| &v.referenced),
        ),
        ("presence_penalty", rv.presence_penalty.as_ref().map(|v| &v.referenced)),
        (
            "a stop sequence of whitespace only",
            stop.as_ref()
                .filter(|(sequences, _)| sequences.iter().any(|s| s.trim().is_empty()))
                .map(|(_, at)| at),
        ),
    ]
    .into_iter()
    .filter_map(|(field, at)| at.map(|at| (field, at.line(), at.column())))
    .collect();
    if rv.model.value.trim().is_empty() {
        errors.push(
            variant_at(
                rv.model.referenced.line(),
                rv.model.referenced.column(),
                "model is empty".to_owned(),
            )
            .hint("name the model the provider serves, e.g. `model: gpt-4o-mini`")
            .into(),
        );
    }
    if let Some(m) = rv.max_tokens.as_ref().filter(|m| m.value == 0) {
        errors.push(
            variant_at(
                m.referenced.line(),
                m.referenced.column(),
                "max_tokens must be at least 1, got 0".to_owned(),
            )
            .hint("leave `max_tokens` out for the provider's default, or give the longest answer in tokens")
            .into(),
        );
    }
    // The prompt: its path, its file, its template.
    let prompt = join_in_repo(parent_dir(variant_path), &rv.prompt.value)
        .map_err(|escape| {
            variant_at(
                rv.prompt.referenced.line(),
                rv.prompt.referenced.column(),
                format!("prompt path {escape}"),
            )
            .hint("the prompt path is relative to the variant file and must stay inside the repository")
            .into()
        })
        .and_then(|prompt_path| match source.read(&prompt_path) {
            Err(err) => Err(unreadable(&prompt_path, &err)),
            Ok(None) => Err(variant_at(
                rv.prompt.referenced.line(),
                rv.prompt.referenced.column(),
                format!("prompt file `{prompt_path}` not found"),
            )
            .hint(format!(
                "the prompt path is relative to the variant file's folder (`{}/`)",
                parent_dir(variant_path)
            ))
            .into()),
            Ok(Some(_)) => Ok(prompt_path),
        })
        .and_then(|prompt_path| Ok((Prompt::load(Arc::clone(source), &prompt_path)?, prompt_path)));
    let (prompt, prompt_path) = match prompt {
        Ok(prompt) if errors.is_empty() => prompt,
        Ok(_) => return Err(errors),
        Err(e) => {
            errors.push(e);
            return Err(errors);
        }
    };
    let variant = Variant {
        version: rv.version.map(|s| s.0),
        model: rv.model.value,
        prompt_path: prompt_path.clone(),
        temperature: rv.temperature.map(|t| t.value),
        max_tokens: rv.max_tokens.map(|m| m.value),
        top_p: rv.top_p.map(|t| t.value),
        sampling: crate::chat::Sampling {
            frequency_penalty: rv.frequency_penalty.map(|p| p.value),
            presence_penalty: rv.presence_penalty.map(|p| p.value),
            stop: stop.map(|(sequences, _)| sequences),
        },
        evaluation_metrics: rv.evaluation_metrics.into_iter().map(|(k, v)| (k, v.0)).collect(),
    };
    Ok(LoadedVariant {
        variant,
        prompt,
        prompt_path,
        text: variant_text,
        anthropic_refuses,
    })
}
