//! `detect`, `validate` and `report`: the commands that look without running models.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;

use crate::cli::DetectArgs;
use crate::error::{Error, exit};
use crate::workspace::{DirTree, FileSource, GitTree, Repo};
use crate::{compare, report, suite};

pub fn detect(repo_dir: &Path, config: &str, args: &DetectArgs) -> anyhow::Result<u8> {
    let mut out: Vec<u8> = Vec::new();
    let code = detect_into(repo_dir, config, args, &mut out)?;
    // Names, paths and versions a pull request chose: redacted, and on a terminal inert (a
    // workflow command or an escape sequence prints as text); JSON escapes its own.
    let text = crate::secrets::redact(&String::from_utf8_lossy(&out));
    let text = if args.json { text } else { crate::output::inert(&text) };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(code)
}

fn detect_into(repo_dir: &Path, config: &str, args: &DetectArgs, out: &mut Vec<u8>) -> anyhow::Result<u8> {
    let cmp = compare::compare(
        repo_dir,
        &compare::Scope {
            base: &args.base,
            head: &args.head,
            config,
            all: args.all,
            written: &[],
        },
    )?;
    // The base's errors and the policy changes are part of what detect reports, on stdout.
    for notice in cmp.tree_notices() {
        eprintln!("{notice}");
    }
    let detection = &cmp.detection;
    if args.json {
        // Every experiment the change touches, removed ones too (`status: removed`), as the
        // text lists them and results.json's experiments hold them; `removed` repeats those.
        let affected: Vec<&crate::detect::Affected> = detection.affected.iter().chain(&detection.removed).collect();
        let json = serde_json::json!({
            "base": cmp.base_ref,
            "head": cmp.head_ref,
            "merge_base": cmp.merge_base,
            "changes": cmp.changes,
            "affected": affected,
            "removed": detection.removed,
            "unaffected": detection.unaffected,
            "policy_changes": cmp.policy.changes,
            "base_error": cmp.base_error(),
            "not_compared": cmp.not_compared,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&json)?)?;
        return Ok(exit::PASS);
    }
    if let Some(error) = cmp.base_error() {
        writeln!(out, "base does not load: {error}")?;
    }
    if detection.affected.is_empty() && detection.removed.is_empty() {
        writeln!(
            out,
            "no experiment is affected ({} changed path(s))",
            detection.changed_paths.len()
        )?;
    }
    for a in detection.affected.iter().chain(&detection.removed) {
        let status = serde_json::to_value(a.status)?.as_str().unwrap_or_default().to_owned();
        if a.affected_by.is_empty() {
            writeln!(out, "{}\t{status}", a.name)?;
        } else {
            writeln!(out, "{}\t{status}\t{}", a.name, a.affected_by.join(", "))?;
        }
        for change in &a.changes {
            writeln!(out, "  - {change}")?;
        }
        if let Some(d) = &a.dataset_changes {
            writeln!(out, "  - cases: {}", dataset_sentence(d))?;
        }
    }
    for name in &detection.unaffected {
        writeln!(out, "{name}\tunaffected")?;
    }
    for change in &cmp.policy.changes {
        writeln!(out, "policy (takes effect after merge): {change}")?;
    }
    Ok(exit::PASS)
}

/// "2 removed (a, b), 1 added, assertions changed: c".
fn dataset_sentence(d: &crate::results::DatasetChanges) -> String {
    let mut parts = Vec::new();
    if d.experiment_assertions_changed {
        parts.push("the experiment's assert: (every case's) changed".to_owned());
    }
    if !d.removed.is_empty() {
        parts.push(format!("{} removed ({})", d.removed.len(), d.removed.join(", ")));
    }
    if d.added > 0 {
        parts.push(format!("{} added", d.added));
    }
    if !d.assertions_changed.is_empty() {
        parts.push(format!("assertions changed: {}", d.assertions_changed.join(", ")));
    }
    if !d.vars_changed.is_empty() {
        parts.push(format!("vars changed: {}", d.vars_changed.join(", ")));
    }
    if !d.groups_changed.is_empty() {
        parts.push(format!("group changed: {}", d.groups_changed.join(", ")));
    }
    parts.join(", ")
}

/// Every provider entry a run would build (one an experiment, a fallback, the judge or the
/// embedder names) checked as the run builds it (`providers::check`), each error pointed at the
/// entry's line in the config. An entry nothing names is not built, by a run or here.
fn providers_build(suite: suite::Suite, source: &dyn FileSource, config: &str) -> Result<suite::Suite, Vec<Error>> {
    let errors = provider_errors(&suite, source, config, &|_| true);
    if errors.is_empty() { Ok(suite) } else { Err(errors) }
}

/// The providers a run of the experiments `runs` takes builds: theirs, their fallbacks', the
/// judge's and the embedder's.
fn named_providers<'s>(suite: &'s suite::Suite, runs: &dyn Fn(&str) -> bool) -> std::collections::BTreeSet<&'s str> {
    suite
        .experiments
        .iter()
        .filter(|e| runs(&e.name))
        .flat_map(|e| std::iter::once(&e.provider).chain(&e.fallbacks))
        .chain(suite.defaults.judge.as_ref().map(|j| &j.provider))
        .chain(suite.defaults.embedder.as_ref().map(|e| &e.provider))
        .map(String::as_str)
        .collect()
}

/// A note for each provider entry nothing names (no experiment, fallback, judge or
/// embedder) that a run could not build as written: not an error, as no run builds it, but
/// not a silent "ok" either (a spare entry left half written).
fn unused_provider_notes(suite: &suite::Suite) -> Vec<String> {
    let named = named_providers(suite, &|_| true);
    (suite.providers.values())
        .filter(|spec| !named.contains(spec.name.as_str()))
        .filter_map(|spec| {
            let e = crate::providers::check(spec).err()?;
            let why = match &e {
                Error::Input(d) => d.message.clone(),
                other => other.summary(),
            };
            Some(format!(
                "provider `{}` is used by nothing (no experiment, fallback, judge or embedder names it), and a run could not build it as written: {why}",
                spec.name
            ))
        })
        .collect()
}

/// What `providers::build` would refuse in the entries of the providers a run of `suite`'s
/// experiments that `runs` builds (theirs, their fallbacks', the judge's and the embedder's),
/// each at its entry in `config`; no key is read. `validate` reports them all, `run` the
/// first of the experiments it runs, before any call.
pub(super) fn provider_errors(
    suite: &suite::Suite,
    source: &dyn FileSource,
    config: &str,
    runs: &dyn Fn(&str) -> bool,
) -> Vec<Error> {
    let text = source.read(config).ok().flatten().unwrap_or_default();
    let named = named_providers(suite, runs);
    suite
        .providers
        .values()
        .filter(|spec| named.contains(spec.name.as_str()))
        .filter_map(|spec| crate::providers::check(spec).err().map(|e| (spec, e)))
        .map(|(spec, e)| match e {
            Error::Input(d) => {
                let (line, column) = provider_line(&text, &spec.name);
                Error::Input(Box::new(d.in_file(config).at(&text, line, column)))
            }
            other => other,
        })
        .collect()
}

/// The line and column (1-based, the column in characters; 0 when not found) of provider
/// `name`'s entry under `providers:`: a key at the indentation of the section's first entry,
/// or a key of its flow mapping on the same line (not one nested in an entry's own mapping).
fn provider_line(text: &str, name: &str) -> (u64, u64) {
    let is_key = |s: &str| {
        let s = s.trim_start_matches(['"', '\'']);
        s.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start_matches(['"', '\'']).starts_with(':'))
    };
    let mut inside = false;
    let mut indent = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let depth = line.len() - trimmed.len();
        if depth == 0 {
            inside = trimmed.starts_with("providers:");
            let flow = trimmed.trim_start_matches("providers:").trim_start();
            if inside && flow.starts_with('{') {
                // The keys of the outer mapping: after its `{` and each `,` at depth 1.
                let start = line.len() - flow.len();
                let mut depth = 0;
                for (at, c) in flow.char_indices() {
                    match c {
                        '{' | '[' => depth += 1,
                        '}' | ']' => depth -= 1,
                        _ => {}
                    }
                    if depth == 1 && matches!(c, '{' | ',') {
                        let rest = &flow[at + 1..];
                        let key = rest.trim_start();
                        if is_key(key) {
                            let byte = start + at + 1 + (rest.len() - key.len());
                            return (i as u64 + 1, line[..byte].chars().count() as u64 + 1);
                        }
                    }
                }
            }
            continue;
        }
        if inside && *indent.get_or_insert(depth) == depth && is_key(trimmed) {
            return (i as u64 + 1, line[..depth].chars().count() as u64 + 1);
        }
    }
    (0, 0)
}

pub fn validate(repo_dir: &Path, config: &str, at_ref: Option<&str>) -> anyhow::Result<u8> {
    let source: Arc<dyn FileSource> = match at_ref {
        Some(r) => {
            let repo = Repo::open(repo_dir)?;
            let sha = repo.resolve(r)?;
            Arc::new(GitTree::new(repo.root(), &sha))
        }
        None => {
            // The working tree: the repository root when inside git, else the folder itself.
            let root = Repo::open(repo_dir)
                .map(|r| r.root().to_owned())
                .unwrap_or_else(|_| repo_dir.to_owned());
            Arc::new(DirTree::new(&root))
        }
    };
    // A suite with a `canary:` section is checked as `canary` reads that section, too.
    let canary = || match suite::has_canary(&*source, config) {
        true => suite::canary::load_canary(&*source, config).err(),
        false => None,
    };
    let errors = match suite::lint(source.clone(), config).and_then(|s| providers_build(s, &*source, config)) {
        Ok(_) if let Some(e) = canary() => vec![e],
        Ok(s) => {
            let cases: usize = s.experiments.iter().map(|e| e.cases.len()).sum();
            println!(
                "ok: {} experiment(s), {cases} case(s), {} gate(s)",
                s.experiments.len(),
                s.gates.len()
            );
            for note in s.sample_size_notes() {
                eprintln!("note: {note}");
            }
            for note in unused_provider_notes(&s) {
                eprintln!("note: {note}");
            }
            return Ok(exit::PASS);
        }
        // A canary-only config, which a suite refuses for having no experiments, is what
        // `canary` reads: checked as `canary` loads it.
        Err(_) if suite::canary_only(&*source, config) => match suite::canary::load_canary(&*source, config) {
            Ok(canary) => {
                println!("ok: a canary-only config, {} gate(s)", canary.gates.len());
                return Ok(exit::PASS);
            }
            Err(e) => vec![e],
        },
        Err(mut errors) => {
            // The suite's own reading checks the section's keys too: one error at one place
            // is said once.
            let at = |e: &Error| match e {
                Error::Input(d) => d.location(),
                _ => None,
            };
            if let Some(e) = canary()
                && !errors.iter().any(|seen| at(seen).is_some() && at(seen) == at(&e))
            {
                errors.push(e);
            }
            errors
        }
    };
    let mut code = exit::USAGE;
    for e in &errors {
        eprintln!("{}\n", crate::output::inert(&crate::secrets::redact(&e.to_string())));
        if let Error::Run { .. } = e {
            code = exit::RUN;
        }
    }
    eprintln!("{} error(s)", errors.len());
    Ok(code)
}

pub fn report(results_path: &Path, out: &Path) -> anyhow::Result<u8> {
    let results = report::read_results(results_path)?;
    for path in report::write_outputs(&results, out)? {
        println!("wrote {}", path.display());
    }
    Ok(exit::PASS)
}

#[cfg(test)]
mod tests {
    use super::provider_line;

    #[test]
    fn a_provider_entry_is_found_at_its_own_indentation() {
        let text = "version: 1\nproviders:\n  judge: {type: openai, model: gpt}\n  model:\n    type: mock\ndefaults: {provider: model}\n";
        assert_eq!(provider_line(text, "judge"), (3, 3));
        assert_eq!(provider_line(text, "model"), (4, 3), "not the judge's `model:` key");
        assert_eq!(provider_line(text, "type"), (0, 0));
        assert_eq!(
            provider_line("providers: {a: {type: mock}, b: {type: exec}}\n", "b"),
            (1, 30)
        );
        assert_eq!(
            provider_line("providers: {a: {type: mock}, b: {type: exec}}\n", "a"),
            (1, 13)
        );
        // Not a key of an entry's own mapping; columns in characters.
        let nested = "providers: {a: {type: x, model: y}, model: {type: mock}}\n";
        assert_eq!(provider_line(nested, "model"), (1, 37));
        assert_eq!(
            provider_line("providers: {é: {type: x}, b: {type: mock}}\n", "b"),
            (1, 27)
        );
    }
}
