//! One experiment's files: its variant, prompt, partials and dataset, read and checked.

use super::*;

/// The most stop sequences a variant may give (OpenAI's limit; Anthropic takes more).
const MAX_STOP: usize = 4;

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
        ("frequency_penalty", &rv.frequency_penalty, (-2.0, 2.0)),
        ("presence_penalty", &rv.presence_penalty, (-2.0, 2.0)),
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
            return Err(variant_at(at.line(), at.column(), problem)
                .hint(format!(
                    "give up to {MAX_STOP} non-empty strings, e.g. `stop: [\"###\"]` (the providers' limit)"
                ))
                .into());
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
        return Err(variant_at(
            rv.model.referenced.line(),
            rv.model.referenced.column(),
            "model is empty".to_owned(),
        )
        .hint("name the model the provider serves, e.g. `model: gpt-4o-mini`")
        .into());
    }
    if let Some(m) = rv.max_tokens.as_ref().filter(|m| m.value == 0) {
        return Err(variant_at(
            m.referenced.line(),
            m.referenced.column(),
            "max_tokens must be at least 1, got 0".to_owned(),
        )
        .hint("leave `max_tokens` out for the provider's default, or give the longest answer in tokens")
        .into());
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
    let prompt = Prompt::load(Arc::clone(source), &prompt_path)?;

    let dataset_text = read_required(&**source, &dataset_path, || {
        Diagnostic::new(format!("experiment `{name}`: dataset `{dataset_path}` not found"))
            .in_file(config_path)
            .at(&config_text, e.dataset.referenced.line(), e.dataset.referenced.column())
            .hint("paths are relative to the suite file's folder and must name a file")
    })?;
    // A similarity that names no method uses the suite's embedder when it has one ("embeddings,
    // else ROUGE-L"); one that names a method gets it, with no fallback.
    let similarity = if suite.defaults.embedder.is_some() {
        super::SimilarityMethod::Embeddings
    } else {
        super::SimilarityMethod::RougeL
    };
    let cases = dataset::parse(&**source, &dataset_path, &dataset_text, &mut dependencies, similarity)?;
    if cases.is_empty() {
        return Err(Diagnostic::new(format!("dataset `{dataset_path}` has no cases"))
            .in_file(&dataset_path)
            .hint("an experiment needs at least one case; a few dozen make its statistics meaningful")
            .into());
    }

    let mut asserts = Vec::new();
    for a in &e.assert {
        let loc = &a.referenced;
        let assertion = resolve_assertion(&**source, config_dir, &a.value, &mut dependencies, similarity).map_err(
            |(message, hint)| {
                with_hint(
                    Diagnostic::new(message)
                        .in_file(config_path)
                        .at(&config_text, loc.line(), loc.column()),
                    hint,
                )
            },
        )?;
        asserts.push(assertion);
    }

    // A similarity without a `value` compares with the case's `expected` var, and a
    // hallucination check judges against its `context_var`: every case they apply to must
    // have the var, or the score would mean nothing (or fail only at run time, as a judge
    // error).
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
        if let Some((message, hint)) = missing {
            let line = u64::from(case.line);
            return Err(Diagnostic::new(message)
                .in_file(&dataset_path)
                .at(&dataset_text, line, dataset::key_column(&dataset_text, line, "vars"))
                .hint(hint)
                .into());
        }
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
        let rendered = prompt.render(&case.vars).map_err(|d| match d.file {
            // The template's own error points into the template; the case is named below.
            Some(_) => Error::from(d.hint(format!(
                "while rendering case `{}` ({dataset_path}:{})",
                case.id, case.line
            ))),
            // An error of the case itself (a var it lacks) points at the case.
            None => Error::from(Diagnostic {
                line: Some(case.line as u64).filter(|l| *l > 0),
                ..d.in_file(dataset_path.as_str()).hint(format!("in case `{}`", case.id))
            }),
        })?;
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
    // Anthropic's Messages API has no penalties: a variant that sets one cannot be sent there
    // as written (every call would be refused).
    if let Some((field, line, column)) = anthropic_refuses.first()
        && let Some(spec) = chain
            .clone()
            .filter_map(|name| suite.providers.get(name))
            .find(|spec| spec.kind == super::ProviderKind::Anthropic)
    {
        return Err(Diagnostic::new(format!(
            "{field} is refused by the `{}` provider (anthropic), which experiment `{name}` calls",
            spec.name
        ))
        .in_file(&variant_path)
        .at(&variant_text, *line, *column)
        .hint("Anthropic's Messages API takes temperature, top_p, max_tokens and stop sequences with some non-whitespace; leave it out, or call an OpenAI-compatible provider")
        .into());
    }
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
