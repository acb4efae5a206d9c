//! Which experiments a change touches, and why.
//!
//! An experiment is affected when a changed path is one of its dependencies (variant config,
//! prompt, every partial its template read, dataset, assertion files, files its `exec` command
//! names, `depends_on` globs) at base or at head, or when its entry in the suite file changed.
//! Each affected experiment says why in words ("provider `sim`: base_url changed"), and what the
//! change did to its cases.
//!
//! An experiment renamed at head that keeps its variant and dataset is the same experiment
//! (`changed`, "renamed from `old`"), not a new one beside a removed one: a rename must not
//! shed the baseline a regression is measured against.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::results::{DatasetChanges, ExperimentStatus};
use crate::suite::{Experiment, ProviderSpec, Suite};
use crate::workspace::{Change, ChangeKind};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Affected {
    pub name: String,
    pub status: ExperimentStatus,
    /// The changed paths that made it affected; empty for `forced`.
    pub affected_by: Vec<String>,
    /// Why, in words: one line per thing that changed between the arms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    /// Its name at base, when it was renamed at head: the baseline is that experiment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The change's edits to its cases (head's, which both arms are scored on) against base's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dataset_changes: Option<DatasetChanges>,
    /// The metrics the base's assertions of this experiment score (its own and its cases'):
    /// a blocking gate on one that head's no longer score is judged `no_data`, never dropped.
    #[serde(skip)]
    pub base_scored: Vec<String>,
}

impl Affected {
    fn new(name: &str, status: ExperimentStatus, affected_by: Vec<String>) -> Affected {
        Affected {
            name: name.to_owned(),
            status,
            affected_by,
            changes: Vec::new(),
            renamed_from: None,
            dataset_changes: None,
            base_scored: Vec::new(),
        }
    }

    /// The experiment's name in the base suite: where its baseline comes from.
    pub fn base_name(&self) -> &str {
        self.renamed_from.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Detection {
    /// To run: changed, new and forced experiments, in suite order.
    pub affected: Vec<Affected>,
    /// At base, gone at head: reported, not run.
    pub removed: Vec<Affected>,
    /// Not touched by the change (and not forced).
    pub unaffected: Vec<String>,
    /// Every path the change touched (renames: both sides).
    pub changed_paths: Vec<String>,
}

/// What detection knows of the base: the suite as far as it loaded (`None` when it has no suite
/// file or the file itself does not load) and the experiments it declares that did not load.
#[derive(Clone, Copy, Default)]
pub struct Base<'a> {
    pub suite: Option<&'a Suite>,
    pub unloaded: &'a [String],
}

/// The metrics an experiment's assertions score (its own and every case's), by name.
fn scored_metrics(experiment: &Experiment) -> Vec<String> {
    let mut names = std::collections::BTreeSet::new();
    let mut seen: std::collections::HashSet<*const [crate::suite::Assertion]> = std::collections::HashSet::new();
    let lists = std::iter::once(experiment.asserts.as_slice()).chain(
        experiment
            .cases
            .iter()
            // Cases written alike share one list: read each once.
            .filter(|c| seen.insert(std::sync::Arc::as_ptr(&c.asserts)))
            .map(|c| &*c.asserts),
    );
    for list in lists {
        for a in list {
            names.extend(a.metrics());
        }
    }
    // Repeats make every case's consistency and flakiness measurable: a change to one repeat
    // leaves their gates with no data (which fails a blocking one), not with nothing to judge.
    if experiment.repeats > 1 {
        names.extend([
            crate::metrics::CONSISTENCY.to_owned(),
            crate::metrics::FLAKY_SHARE.to_owned(),
        ]);
    }
    names.into_iter().collect()
}

/// Decides which experiments of `head` to run. `all` forces every experiment.
pub fn detect(base: Base<'_>, head: &Suite, changes: &[Change], all: bool) -> Detection {
    let changed: BTreeSet<String> = changes
        .iter()
        .flat_map(|c| std::iter::once(c.path.clone()).chain(c.old_path.clone()))
        .collect();
    let mut detection = Detection {
        changed_paths: changed.iter().cloned().collect(),
        ..Detection::default()
    };
    let base_experiments: &[Experiment] = base.suite.map_or(&[], |b| &b.experiments);
    let at_head = |name: &str| head.experiments.iter().any(|h| h.name == name);
    // Base experiments gone from head by name: a head experiment with the same variant and
    // dataset is their rename (each is claimed once, in suite order).
    let mut unclaimed: Vec<&Experiment> = base_experiments.iter().filter(|e| !at_head(&e.name)).collect();

    for experiment in &head.experiments {
        let mut before = base_experiments.iter().find(|e| e.name == experiment.name);
        let mut renamed_from = None;
        if before.is_none()
            && !base.unloaded.contains(&experiment.name)
            && let Some(i) = unclaimed
                .iter()
                .position(|e| e.variant_path == experiment.variant_path && e.dataset_path == experiment.dataset_path)
        {
            let old = unclaimed.remove(i);
            renamed_from = Some(old.name.clone());
            before = Some(old);
        }
        let touched_now = experiment.touched_by(changed.iter().map(String::as_str));
        let Some(before) = before else {
            let mut affected = if base.unloaded.contains(&experiment.name) {
                let mut a = Affected::new(&experiment.name, ExperimentStatus::Changed, touched_now);
                a.changes
                    .push("does not load at base, so it runs candidate-only (see the verdict)".to_owned());
                a
            } else {
                // Declared anew in the suite file: that file's change is what brought it.
                let mut by = touched_now;
                if changed.contains(&head.config_path) && !by.contains(&head.config_path) {
                    by.push(head.config_path.clone());
                }
                Affected::new(&experiment.name, ExperimentStatus::New, by)
            };
            affected.affected_by.sort();
            detection.affected.push(affected);
            continue;
        };
        let mut reasons: BTreeSet<String> = touched_now.into_iter().collect();
        reasons.extend(before.touched_by(changed.iter().map(String::as_str)));
        if before.definition != experiment.definition || renamed_from.is_some() {
            reasons.insert(head.config_path.clone());
        }
        if !reasons.is_empty() {
            let mut affected = Affected::new(
                &experiment.name,
                ExperimentStatus::Changed,
                reasons.iter().cloned().collect(),
            );
            let (base_suite, head_suite) = (base.suite.unwrap_or(head), head);
            if let Some(old) = &renamed_from {
                affected.changes.push(format!("renamed from `{old}`"));
            }
            affected.changes.extend(describe(
                &SuiteExperiment {
                    suite: base_suite,
                    experiment: before,
                },
                &SuiteExperiment {
                    suite: head_suite,
                    experiment,
                },
                changes,
                &reasons,
            ));
            affected.renamed_from = renamed_from;
            affected.dataset_changes = Some(dataset_changes(before, experiment)).filter(|d| !d.is_empty());
            affected.base_scored = scored_metrics(before);
            detection.affected.push(affected);
        } else if all {
            let mut forced = Affected::new(&experiment.name, ExperimentStatus::Forced, Vec::new());
            forced.renamed_from = renamed_from;
            detection.affected.push(forced);
        } else {
            detection.unaffected.push(experiment.name.clone());
        }
    }
    let removed_by = || {
        if changed.contains(&head.config_path) {
            vec![head.config_path.clone()]
        } else {
            Vec::new()
        }
    };
    for e in unclaimed {
        detection
            .removed
            .push(Affected::new(&e.name, ExperimentStatus::Removed, removed_by()));
    }
    for name in base.unloaded.iter().filter(|n| !at_head(n)) {
        detection
            .removed
            .push(Affected::new(name, ExperimentStatus::Removed, removed_by()));
    }
    detection
}

/// One side of the comparison: an experiment and the suite it belongs to.
struct SuiteExperiment<'a> {
    suite: &'a Suite,
    experiment: &'a Experiment,
}

/// What changed between the arms of one experiment, in words, most telling first: the suite
/// entry (provider, variant and dataset paths, repeats, assertions), the variant's settings,
/// then each touched file by its role.
fn describe(
    base: &SuiteExperiment<'_>,
    head: &SuiteExperiment<'_>,
    changes: &[Change],
    touched: &BTreeSet<String>,
) -> Vec<String> {
    let (b, h) = (base.experiment, head.experiment);
    let mut out = Vec::new();

    // The provider chain: each position's spec at base against head's.
    out.extend(provider_changes(
        base.suite.providers.get(&b.provider),
        head.suite.providers.get(&h.provider),
        &b.provider,
        &h.provider,
    ));
    if b.fallbacks != h.fallbacks {
        out.push(format!(
            "fallback providers {} → {}",
            names(&b.fallbacks),
            names(&h.fallbacks)
        ));
    } else {
        for name in &h.fallbacks {
            out.extend(provider_changes(
                base.suite.providers.get(name),
                head.suite.providers.get(name),
                name,
                name,
            ));
        }
    }
    if b.variant_path != h.variant_path {
        out.push(format!("variant {} → {}", b.variant_path, h.variant_path));
    }
    if b.dataset_path != h.dataset_path {
        out.push(format!("dataset {} → {}", b.dataset_path, h.dataset_path));
    }
    if b.repeats != h.repeats {
        out.push(format!("repeats {} → {}", b.repeats, h.repeats));
    }
    let definition = |e: &Experiment| serde_json::from_str::<serde_json::Value>(&e.definition).unwrap_or_default();
    let (bd, hd) = (definition(b), definition(h));
    if bd.get("assert") != hd.get("assert") {
        out.push(format!(
            "the experiment's assertions in {} changed",
            head.suite.config_path
        ));
    }
    if bd.get("depends_on") != hd.get("depends_on") {
        out.push(format!("depends_on in {} changed", head.suite.config_path));
    }

    let (bv, hv) = (&b.variant, &h.variant);
    let mut settings = Vec::new();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unset".to_owned());
    for (field, from, to) in [
        ("model", bv.model.clone(), hv.model.clone()),
        ("prompt", bv.prompt_path.clone(), hv.prompt_path.clone()),
        (
            "temperature",
            opt(bv.temperature.map(|t| t.to_string())),
            opt(hv.temperature.map(|t| t.to_string())),
        ),
        (
            "max_tokens",
            opt(bv.max_tokens.map(|t| t.to_string())),
            opt(hv.max_tokens.map(|t| t.to_string())),
        ),
        (
            "top_p",
            opt(bv.top_p.map(|t| t.to_string())),
            opt(hv.top_p.map(|t| t.to_string())),
        ),
        (
            "frequency_penalty",
            opt(bv.sampling.frequency_penalty.map(|t| t.to_string())),
            opt(hv.sampling.frequency_penalty.map(|t| t.to_string())),
        ),
        (
            "presence_penalty",
            opt(bv.sampling.presence_penalty.map(|t| t.to_string())),
            opt(hv.sampling.presence_penalty.map(|t| t.to_string())),
        ),
        (
            "stop",
            opt(bv.sampling.stop.as_ref().map(|s| format!("{s:?}"))),
            opt(hv.sampling.stop.as_ref().map(|s| format!("{s:?}"))),
        ),
        ("version", opt(bv.version.clone()), opt(hv.version.clone())),
    ] {
        if from != to {
            settings.push(field);
            out.push(format!("variant {}: {field} {from} → {to}", h.variant_path));
        }
    }

    let kinds = path_words(changes);
    let word = |path: &str| kinds.get(path).cloned().unwrap_or_else(|| "changed".to_owned());
    // A rename touches both paths; the new one tells it.
    let renamed_away: BTreeSet<&str> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Renamed && touched.contains(&c.path))
        .filter_map(|c| c.old_path.as_deref())
        .collect();
    let mut prompt_text_changed = false;
    for path in touched.iter().filter(|p| !renamed_away.contains(p.as_str())) {
        let p = path.as_str();
        let either = |f: &dyn Fn(&Experiment) -> bool| f(b) || f(h);
        let line = if either(&|e| e.prompt.path() == p) {
            prompt_text_changed = true;
            format!("prompt {p} {}", word(p))
        } else if either(&|e| e.partials.contains(p)) {
            prompt_text_changed = true;
            format!("partial {p} {}", word(p))
        } else if either(&|e| e.dataset_path == p) {
            format!("dataset {p} {}", word(p))
        } else if either(&|e| e.variant_path == p) {
            // Its settings are listed above; say the file changed only when nothing else does
            // (comments, recorded evaluation_metrics).
            if !settings.is_empty() {
                continue;
            }
            format!("variant {p} {}", word(p))
        } else if let Some(provider) = h.command_files.get(p).or_else(|| b.command_files.get(p)) {
            format!("provider `{provider}`: {p} {}", word(p))
        } else if p == head.suite.config_path {
            continue;
        } else if either(&|e| e.dependencies.contains(p)) {
            format!("{p} {}", word(p))
        } else {
            format!("{p} {} (depends_on)", word(p))
        };
        out.push(line);
    }

    // The variant is the versioned unit: what it produces changed, its version did not.
    let output_settings = settings.iter().any(|f| *f != "version");
    if let (Some(from), Some(to)) = (&bv.version, &hv.version)
        && from == to
        && (output_settings || prompt_text_changed)
    {
        out.push(format!(
            "variant {}: what it produces changed but its `version:` is still {to}",
            h.variant_path
        ));
    }
    out
}

/// "changed", "added", "removed", "renamed from …" for every path a change touched.
fn path_words(changes: &[Change]) -> BTreeMap<String, String> {
    let mut words = BTreeMap::new();
    for c in changes {
        let word = match (c.kind, &c.old_path) {
            (ChangeKind::Added, _) => "added".to_owned(),
            (ChangeKind::Modified, _) => "changed".to_owned(),
            (ChangeKind::Deleted, _) => "removed".to_owned(),
            (ChangeKind::TypeChanged, _) => "changed type".to_owned(),
            (ChangeKind::Renamed, Some(old)) => {
                words.insert(old.clone(), format!("renamed to {}", c.path));
                format!("renamed from {old}")
            }
            (ChangeKind::Copied, Some(old)) => format!("copied from {old}"),
            (ChangeKind::Renamed | ChangeKind::Copied, None) => "changed".to_owned(),
        };
        words.insert(c.path.clone(), word);
    }
    words
}

/// What differs between the provider an arm calls at base and the one it calls at head. URLs,
/// deployments and commands are named, not shown: they may carry what a log should not.
fn provider_changes(
    base: Option<&ProviderSpec>,
    head: Option<&ProviderSpec>,
    base_name: &str,
    head_name: &str,
) -> Vec<String> {
    if base_name != head_name {
        return vec![format!("provider `{base_name}` → `{head_name}`")];
    }
    let (Some(b), Some(h)) = (base, head) else {
        return Vec::new();
    };
    let shown = |v: Option<String>| v.unwrap_or_else(|| "unset".to_owned());
    let mut fields: Vec<String> = Vec::new();
    if b.kind != h.kind {
        fields.push(format!("type {} → {}", b.kind.as_str(), h.kind.as_str()));
    }
    for (field, differs) in [
        ("base_url", b.base_url != h.base_url),
        ("deployment", b.deployment != h.deployment),
        ("command", b.command != h.command),
    ] {
        if differs {
            fields.push(format!("{field} changed"));
        }
    }
    for (field, from, to) in [
        (
            "api_key_env",
            shown(b.api_key_env.clone()),
            shown(h.api_key_env.clone()),
        ),
        (
            "api_version",
            shown(b.api_version.clone()),
            shown(h.api_version.clone()),
        ),
        ("timeout_ms", b.timeout_ms.to_string(), h.timeout_ms.to_string()),
        ("max_retries", b.max_retries.to_string(), h.max_retries.to_string()),
        ("concurrency", b.concurrency.to_string(), h.concurrency.to_string()),
        (
            "requests_per_minute",
            shown(b.requests_per_minute.map(|n| n.to_string())),
            shown(h.requests_per_minute.map(|n| n.to_string())),
        ),
        (
            "tokens_per_minute",
            shown(b.tokens_per_minute.map(|n| n.to_string())),
            shown(h.tokens_per_minute.map(|n| n.to_string())),
        ),
    ] {
        if from != to {
            fields.push(format!("{field} {from} → {to}"));
        }
    }
    fields
        .into_iter()
        .map(|f| format!("provider `{head_name}`: {f}"))
        .collect()
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_owned()
    } else {
        list.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
    }
}

/// A case's unit of inference: its group, else the case alone.
fn unit_of(case: &crate::suite::Case) -> (bool, &str) {
    match &case.group {
        Some(group) => (true, &**group),
        None => (false, case.id.as_str()),
    }
}

/// Per metric that only some cases' own assertions score (at base or at head), how many units
/// score it at each: `[base, head]`. A metric the experiment's assertions score is scored by
/// every unit, like `pass_rate`, latency and cost, and is not listed.
fn metric_units(base: &Experiment, head: &Experiment) -> BTreeMap<String, [usize; 2]> {
    /// Each metric's units, by [`unit_of`].
    type Units<'a> = BTreeMap<String, BTreeSet<(bool, &'a str)>>;
    /// The metrics every case scores (the experiment's assertions'), and each other metric's
    /// units.
    fn scored(e: &Experiment) -> (BTreeSet<String>, Units<'_>) {
        let mut units: Units<'_> = BTreeMap::new();
        for case in &e.cases {
            for metric in case.asserts.iter().flat_map(|a| a.metrics()) {
                units.entry(metric).or_default().insert(unit_of(case));
            }
        }
        (e.asserts.iter().flat_map(|a| a.metrics()).collect(), units)
    }
    let sides = [(base, scored(base)), (head, scored(head))];
    let names: BTreeSet<&String> = sides
        .iter()
        .flat_map(|(_, (everywhere, units))| everywhere.iter().chain(units.keys()))
        .collect();
    let count = |name: &str, (e, (everywhere, units)): &(&Experiment, _)| -> usize {
        let (everywhere, units): (&BTreeSet<String>, &Units<'_>) = (everywhere, units);
        if everywhere.contains(name) {
            e.cases.iter().map(unit_of).collect::<BTreeSet<_>>().len()
        } else {
            units.get(name).map_or(0, BTreeSet::len)
        }
    };
    names
        .into_iter()
        .filter(|name| !sides.iter().all(|(_, (everywhere, _))| everywhere.contains(*name)))
        .map(|name| (name.clone(), [count(name, &sides[0]), count(name, &sides[1])]))
        .collect()
}

/// The experiment's own `assert:` list, as its definition records it.
fn assert_list(e: &Experiment) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(&e.definition)
        .ok()
        .and_then(|d| d.get("assert").cloned())
}

/// Head's cases against base's, by id.
pub fn dataset_changes(base: &Experiment, head: &Experiment) -> DatasetChanges {
    let before: BTreeMap<&str, &crate::suite::Case> = base.cases.iter().map(|c| (c.id.as_str(), c)).collect();
    let after: BTreeSet<&str> = head.cases.iter().map(|c| c.id.as_str()).collect();
    // A case without a group is a unit of its own.
    let units = |e: &Experiment| -> usize { e.cases.iter().map(unit_of).collect::<BTreeSet<_>>().len() };
    let mut changes = DatasetChanges {
        removed: base
            .cases
            .iter()
            .filter(|c| !after.contains(c.id.as_str()))
            .map(|c| c.id.clone())
            .collect(),
        base_units: units(base),
        head_units: units(head),
        metric_units: metric_units(base, head),
        experiment_assertions_changed: assert_list(base) != assert_list(head),
        ..DatasetChanges::default()
    };
    for case in &head.cases {
        match before.get(case.id.as_str()) {
            None => changes.added += 1,
            Some(old) => {
                if old.assert_source != case.assert_source {
                    changes.assertions_changed.push(case.id.clone());
                }
                if old.vars != case.vars {
                    changes.vars_changed.push(case.id.clone());
                }
                if old.group != case.group {
                    changes.groups_changed.push(case.id.clone());
                }
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workspace::MemTree;

    const SUITE: &str = "version: 1
providers:
  sim: {type: openai-compatible, base_url: \"http://127.0.0.1:1/v1\"}
  pipe: {type: exec, command: [/bin/sh, scripts/answer.sh]}
defaults: {provider: sim}
experiments:
  - name: support
    variant: configs/support.yaml
    dataset: data/support.jsonl
  - name: faq
    variant: configs/faq.yaml
    dataset: data/faq.jsonl
    provider: pipe
";
    const VARIANT: &str = "version: v1\nmodel: gpt-4o\nprompt: ../prompts/support.md\ntemperature: 0.2\n";
    const FAQ_VARIANT: &str = "version: v3\nmodel: gpt-4o\nprompt: ../prompts/faq.md\n";
    const DATA: &str =
        "{\"id\": \"a\", \"vars\": {\"input\": \"one\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"x\"}]}
{\"id\": \"b\", \"vars\": {\"input\": \"two\"}}
{\"id\": \"c\", \"vars\": {\"input\": \"three\"}}
";

    fn files() -> BTreeMap<&'static str, String> {
        BTreeMap::from([
            ("promptgate.yaml", SUITE.to_owned()),
            ("configs/support.yaml", VARIANT.to_owned()),
            ("configs/faq.yaml", FAQ_VARIANT.to_owned()),
            (
                "prompts/support.md",
                "Be kind. {% include \"partials/tone.md\" %}".to_owned(),
            ),
            ("prompts/partials/tone.md", "Calm.".to_owned()),
            ("prompts/faq.md", "Answer.".to_owned()),
            ("data/support.jsonl", DATA.to_owned()),
            ("data/faq.jsonl", DATA.to_owned()),
            ("scripts/answer.sh", "echo 30 days".to_owned()),
        ])
    }

    fn load(files: &BTreeMap<&'static str, String>) -> Suite {
        let tree = MemTree::new(files.iter().map(|(p, t)| (*p, t.as_str())));
        crate::suite::load(Arc::new(tree), "promptgate.yaml").unwrap()
    }

    /// Every score name the base's assertions record, its own and its cases', once each: a
    /// similarity's pass beside its score, every name an `exec` scorer gives.
    #[test]
    fn the_base_scores_what_its_assertions_and_cases_record() {
        let mut files = files();
        files.insert(
            "promptgate.yaml",
            SUITE.replace(
                "    dataset: data/support.jsonl\n",
                "    dataset: data/support.jsonl\n    assert: [{type: similarity, value: '{{ input }}', threshold: 0.8, metric: closeness}, {type: exec, command: [/bin/true], metric: [tone, depth]}]\n",
            ),
        );
        let mut suite = load(&files);
        assert_eq!(
            scored_metrics(&suite.experiments[0]),
            ["closeness", "closeness_pass", "contains", "depth", "tone"]
        );
        // Repeats measure consistency and flakiness too.
        suite.experiments[0].repeats = 3;
        assert_eq!(
            scored_metrics(&suite.experiments[0]),
            [
                "closeness",
                "closeness_pass",
                "consistency",
                "contains",
                "depth",
                "flaky_share",
                "tone"
            ]
        );
    }

    fn modified(paths: &[&str]) -> Vec<Change> {
        paths
            .iter()
            .map(|p| Change {
                kind: ChangeKind::Modified,
                path: (*p).to_owned(),
                old_path: None,
            })
            .collect()
    }

    /// Edits the base files with `edit`, detects, and returns the affected entry `name`.
    #[track_caller]
    fn check(edit: impl Fn(&mut BTreeMap<&'static str, String>), changed: &[&str], name: &str, expected: &[&str]) {
        let base_files = files();
        let mut head_files = base_files.clone();
        edit(&mut head_files);
        let (base, head) = (load(&base_files), load(&head_files));
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &[],
            },
            &head,
            &modified(changed),
            false,
        );
        let affected = detection
            .affected
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("{name} not affected: {detection:?}"));
        assert_eq!(affected.changes, expected, "{affected:?}");
    }

    fn replace(files: &mut BTreeMap<&'static str, String>, path: &'static str, from: &str, to: &str) {
        let text = files[path].clone();
        assert!(text.contains(from), "{path} lacks {from}");
        files.insert(path, text.replacen(from, to, 1));
    }

    #[test]
    fn a_moved_base_url_is_named_without_its_value() {
        check(
            |f| replace(f, "promptgate.yaml", "127.0.0.1:1", "127.0.0.1:2"),
            &["promptgate.yaml"],
            "support",
            &["provider `sim`: base_url changed"],
        );
        check(
            |f| {
                replace(
                    f,
                    "promptgate.yaml",
                    "defaults: {provider: sim}",
                    "defaults: {provider: pipe}",
                )
            },
            &["promptgate.yaml"],
            "support",
            &["provider `sim` → `pipe`"],
        );
    }

    #[test]
    fn a_variant_setting_is_named_with_both_values_and_an_unbumped_version_is_flagged() {
        check(
            |f| replace(f, "configs/support.yaml", "model: gpt-4o", "model: gpt-4o-mini"),
            &["configs/support.yaml"],
            "support",
            &[
                "variant configs/support.yaml: model gpt-4o → gpt-4o-mini",
                "variant configs/support.yaml: what it produces changed but its `version:` is still v1",
            ],
        );
        check(
            |f| {
                replace(f, "configs/support.yaml", "temperature: 0.2", "temperature: 0.7");
                replace(f, "configs/support.yaml", "version: v1", "version: v2");
            },
            &["configs/support.yaml"],
            "support",
            &[
                "variant configs/support.yaml: temperature 0.2 → 0.7",
                "variant configs/support.yaml: version v1 → v2",
            ],
        );
        // Penalties and stop sequences are settings too (the seed's "frequency penalties").
        check(
            |f| {
                replace(
                    f,
                    "configs/support.yaml",
                    "temperature: 0.2",
                    "temperature: 0.2\nfrequency_penalty: 0.5\nstop: \"###\"",
                );
                replace(f, "configs/support.yaml", "version: v1", "version: v2");
            },
            &["configs/support.yaml"],
            "support",
            &[
                "variant configs/support.yaml: frequency_penalty unset → 0.5",
                "variant configs/support.yaml: stop unset → [\"###\"]",
                "variant configs/support.yaml: version v1 → v2",
            ],
        );
    }

    #[test]
    fn prompt_and_partial_edits_are_named_by_role() {
        check(
            |f| replace(f, "prompts/partials/tone.md", "Calm.", "Calm and brief."),
            &["prompts/partials/tone.md"],
            "support",
            &[
                "partial prompts/partials/tone.md changed",
                "variant configs/support.yaml: what it produces changed but its `version:` is still v1",
            ],
        );
        check(
            |f| replace(f, "prompts/faq.md", "Answer.", "Answer briefly."),
            &["prompts/faq.md"],
            "faq",
            &[
                "prompt prompts/faq.md changed",
                "variant configs/faq.yaml: what it produces changed but its `version:` is still v3",
            ],
        );
    }

    #[test]
    fn an_exec_script_is_a_dependency_of_the_experiments_that_call_it() {
        let edit = |f: &mut BTreeMap<&'static str, String>| replace(f, "scripts/answer.sh", "30 days", "no idea");
        check(
            edit,
            &["scripts/answer.sh"],
            "faq",
            &["provider `pipe`: scripts/answer.sh changed"],
        );
        let mut head_files = files();
        edit(&mut head_files);
        let (base, head) = (load(&files()), load(&head_files));
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &[],
            },
            &head,
            &modified(&["scripts/answer.sh"]),
            false,
        );
        assert_eq!(detection.unaffected, ["support"]);
    }

    #[test]
    fn a_renamed_experiment_keeps_its_baseline() {
        let base = load(&files());
        let mut head_files = files();
        replace(&mut head_files, "promptgate.yaml", "name: support", "name: support-v2");
        let head = load(&head_files);
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &[],
            },
            &head,
            &modified(&["promptgate.yaml"]),
            false,
        );
        let renamed = &detection.affected[0];
        assert_eq!(
            (
                renamed.name.as_str(),
                renamed.status,
                renamed.renamed_from.as_deref(),
                renamed.base_name()
            ),
            ("support-v2", ExperimentStatus::Changed, Some("support"), "support")
        );
        assert_eq!(renamed.changes, ["renamed from `support`"]);
        assert!(detection.removed.is_empty(), "{detection:?}");
        // A different dataset makes it another experiment: new, and the old one removed.
        replace(
            &mut head_files,
            "promptgate.yaml",
            "data/support.jsonl",
            "data/faq.jsonl",
        );
        let head = load(&head_files);
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &[],
            },
            &head,
            &modified(&["promptgate.yaml"]),
            false,
        );
        assert_eq!(detection.affected[0].status, ExperimentStatus::New);
        // DESIGN: `affected_by: [paths]`. The suite file declared it, so its change is what
        // brought the new experiment (before, a new experiment was affected by nothing).
        assert_eq!(detection.affected[0].affected_by, vec!["promptgate.yaml".to_owned()]);
        assert_eq!(detection.removed[0].name, "support");
    }

    #[test]
    fn dataset_changes_are_counted_by_case_id() {
        let base = load(&files());
        let mut head_files = files();
        let edited = DATA
            .replace("\"value\": \"x\"", "\"value\": \"y\"")
            .replace("\"input\": \"two\"", "\"input\": \"TWO\"")
            .replace(
                "{\"id\": \"c\", \"vars\": {\"input\": \"three\"}}\n",
                "{\"id\": \"d\", \"vars\": {\"input\": \"four\"}}\n",
            );
        head_files.insert("data/support.jsonl", edited);
        let head = load(&head_files);
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &[],
            },
            &head,
            &modified(&["data/support.jsonl"]),
            false,
        );
        let support = &detection.affected[0];
        assert_eq!(support.changes, ["dataset data/support.jsonl changed"]);
        assert_eq!(
            support.dataset_changes,
            Some(DatasetChanges {
                removed: vec!["c".to_owned()],
                added: 1,
                assertions_changed: vec!["a".to_owned()],
                vars_changed: vec!["b".to_owned()],
                groups_changed: Vec::new(),
                base_units: 3,
                head_units: 3,
                metric_units: [("contains".to_owned(), [1, 1])].into(),
                experiment_assertions_changed: false,
            })
        );
    }

    /// A metric only some cases score is counted in its own units at each side; one every
    /// case scores (the experiment's assertions', `pass_rate`) is not listed.
    #[test]
    fn a_metric_some_cases_score_is_counted_in_its_own_units() {
        let mut base_files = files();
        base_files.insert(
            "promptgate.yaml",
            SUITE.replace(
                "    dataset: data/support.jsonl\n",
                "    dataset: data/support.jsonl\n    assert: [{type: max-length, value: 500}]\n",
            ),
        );
        let base = load(&base_files);
        let mut head_files = base_files.clone();
        // Every case now scores `contains`, two of them in one group: 2 units (base: 1).
        let head_data = "{\"id\": \"a\", \"group\": \"g\", \"vars\": {\"input\": \"one\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"x\"}]}
{\"id\": \"b\", \"group\": \"g\", \"vars\": {\"input\": \"two\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"x\"}]}
{\"id\": \"c\", \"vars\": {\"input\": \"three\"}, \"assert\": [{\"type\": \"contains\", \"value\": \"x\"}]}
";
        head_files.insert("data/support.jsonl", head_data.to_owned());
        let head = load(&head_files);
        let changes = dataset_changes(&base.experiments[0], &head.experiments[0]);
        assert_eq!((changes.base_units, changes.head_units), (3, 2));
        assert_eq!(changes.metric_units, [("contains".to_owned(), [1, 2])].into());
        assert_eq!(changes.units_of("contains"), [1, 2]);
        assert_eq!(changes.units_of("max-length"), [3, 2]);
        assert_eq!(changes.units_of("pass_rate"), [3, 2]);
        // A metric's units taken by the experiment's assertions alone (the dataset untouched)
        // are a change of the cases it is judged on, so the too-few rule sees them.
        let only_units = DatasetChanges {
            metric_units: [("icontains".to_owned(), [30, 4])].into(),
            ..DatasetChanges::default()
        };
        assert!(!only_units.is_empty());
        let grown = DatasetChanges {
            metric_units: [("icontains".to_owned(), [4, 30])].into(),
            ..DatasetChanges::default()
        };
        assert!(grown.is_empty());
    }

    #[test]
    fn an_experiment_that_does_not_load_at_base_runs_candidate_only_and_says_so() {
        let head = load(&files());
        let mut base_files = files();
        base_files.remove("configs/faq.yaml");
        base_files.insert(
            "promptgate.yaml",
            SUITE.replace(
                "experiments:\n",
                "experiments:\n  - name: gone\n    variant: configs/gone.yaml\n    dataset: data/faq.jsonl\n",
            ),
        );
        let tree: Arc<dyn crate::workspace::FileSource> =
            Arc::new(MemTree::new(base_files.iter().map(|(p, t)| (*p, t.as_str()))));
        let (mut base, decls) = crate::suite::load_config(&*tree, "promptgate.yaml").unwrap();
        let mut unloaded = Vec::new();
        for decl in &decls {
            match crate::suite::load_experiment(&tree, &base, decl) {
                Ok(e) => base.experiments.push(e),
                Err(_) => unloaded.push(decl.name().to_owned()),
            }
        }
        assert_eq!(unloaded, ["gone", "faq"]);
        let detection = detect(
            Base {
                suite: Some(&base),
                unloaded: &unloaded,
            },
            &head,
            &modified(&["configs/faq.yaml", "promptgate.yaml"]),
            false,
        );
        let faq = detection.affected.iter().find(|a| a.name == "faq").unwrap();
        assert_eq!(faq.status, ExperimentStatus::Changed);
        assert_eq!(
            faq.changes,
            ["does not load at base, so it runs candidate-only (see the verdict)"]
        );
        assert_eq!(
            detection.removed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["gone"]
        );
    }
}
