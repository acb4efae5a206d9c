//! Where keys go, and what a maintainer must approve before they go there.
//!
//! A provider's key is handed to whatever its settings name: a pull request that moves a
//! keyed provider's `base_url`, renames its key variable, points an Azure `deployment`
//! elsewhere, adds a keyed provider, or changes what an `exec` provider runs would, if
//! evaluated as is, send the key wherever it likes (or run code that reads it). [`review`]
//! compares the providers at base and head and lists every such change; the gate then holds
//! ([`hold`]) the experiments that use a changed provider until a maintainer approves that
//! head commit. A fork's code evaluated without secrets (the fork-safe pair's first half)
//! cannot use any keyed provider at all; its experiments wait for a maintainer's trusted run.
//!
//! Pure but for [`register_keys`], which hands the keys' values to the redactor. The command layer decides the [`KeyPolicy`] (from labels,
//! dispatches and flags) and the gate applies it.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::Planned;
use crate::providers::{anthropic, openai};
use crate::results::{ApprovalNeeded, ProviderChange, Results, Verdict};
use crate::suite::{Check, Experiment, ProviderKind, ProviderSpec, Suite};

/// What the gate may do with keys in this run. The user's own `promptgate run` has none: it
/// runs everything and prints the notice CI would act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// The head is a fork's code run without secrets: no provider that needs a key runs.
    pub untrusted_head: bool,
    /// A maintainer approved this head commit's provider changes.
    pub config_approved: bool,
    /// Above the budget's approval threshold, hold every experiment for a maintainer's
    /// approval (`needs_approval`) instead of ending with a run error.
    pub hold_over_budget: bool,
    /// How a maintainer approves the provider changes, one sentence for the comment.
    pub how_config: String,
    /// How a maintainer approves the cost.
    pub how_cost: String,
}

/// Experiments that do not run, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub providers: BTreeSet<String>,
    /// Experiments held themselves: their `exec` scorers changed.
    pub experiments: BTreeSet<String>,
    pub needed: ApprovalNeeded,
}

/// Whether a provider needs a key: the hosted APIs always, an `openai-compatible` server when
/// it names a key variable, an `exec` program when it is handed variables.
pub fn keyed(spec: &ProviderSpec) -> bool {
    key_variable(spec).is_some() || (spec.kind == ProviderKind::Exec && !spec.env.is_empty())
}

/// The variable a provider's key is read from, as the provider itself resolves it.
pub fn key_variable(spec: &ProviderSpec) -> Option<String> {
    let default = match spec.kind {
        ProviderKind::Openai => openai::Dialect::OpenAi.default_key_env(),
        ProviderKind::AzureOpenai => openai::Dialect::Azure.default_key_env(),
        ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        ProviderKind::OpenaiCompatible | ProviderKind::Exec | ProviderKind::Mock => None,
    };
    spec.api_key_env.clone().or(default.map(str::to_owned))
}

/// Where a provider's calls (and key) go, as the provider resolves it.
fn endpoint(spec: &ProviderSpec) -> Option<String> {
    let default = match spec.kind {
        ProviderKind::Openai => Some(openai::DEFAULT_BASE_URL),
        ProviderKind::Anthropic => Some(anthropic::DEFAULT_BASE_URL),
        _ => None,
    };
    spec.base_url
        .as_deref()
        .or(default)
        .map(|u| u.trim().trim_end_matches('/').to_owned())
}

/// Every change between `base` and `head` that moves where a key goes, by provider and
/// setting. `base` is `None` when the suite does not load at base (every provider is new).
/// `changed_paths` are the paths the pull request changed: an `exec` provider whose command
/// names one of them (or a file in the same folder) runs changed code.
pub fn review(
    base: Option<&BTreeMap<String, ProviderSpec>>,
    head: &BTreeMap<String, ProviderSpec>,
    changed_paths: &[String],
) -> Vec<ProviderChange> {
    let mut changes = Vec::new();
    for (name, h) in head {
        let b = base.and_then(|b| b.get(name));
        let mut change = |field: &str, base: Option<String>, head: Option<String>| {
            changes.push(ProviderChange {
                provider: name.clone(),
                field: field.to_owned(),
                base,
                head,
                experiment: None,
            });
        };
        let Some(b) = b else {
            if h.kind == ProviderKind::Exec {
                change("new provider", None, h.command.as_ref().map(|c| c.join(" ")));
            } else if keyed(h) {
                change("new provider", None, Some(describe_provider(h)));
            }
            continue;
        };
        if h.kind == ProviderKind::Exec {
            if b.kind != ProviderKind::Exec {
                change("type", Some(b.kind.as_str().to_owned()), Some("exec".to_owned()));
            }
            if b.command != h.command {
                change(
                    "command",
                    b.command.as_ref().map(|c| c.join(" ")),
                    h.command.as_ref().map(|c| c.join(" ")),
                );
            }
            if b.env != h.env {
                change("env", Some(b.env.join(", ")), Some(h.env.join(", ")));
            }
            for path in code_changes(h.command.as_deref().unwrap_or(&[]), changed_paths) {
                change("code", None, Some(path));
            }
            continue;
        }
        if !keyed(h) {
            // No key to misdirect.
            continue;
        }
        if b.kind != h.kind {
            change(
                "type",
                Some(b.kind.as_str().to_owned()),
                Some(h.kind.as_str().to_owned()),
            );
        }
        // An endpoint is compared as written and shown without the credentials it may carry
        // (the notice, the log and the comment would repeat a password in it).
        let (before, after) = (endpoint(b), endpoint(h));
        if before != after {
            let (shown_before, shown_after) = (
                before.as_deref().map(crate::secrets::url_shown),
                after.as_deref().map(crate::secrets::url_shown),
            );
            let shown_after = match shown_before == shown_after {
                true => shown_after.map(|u| format!("{u} (its credentials changed)")),
                false => shown_after,
            };
            change("base_url", shown_before, shown_after);
        }
        let pairs = [
            ("api_key_env", key_variable(b), key_variable(h)),
            ("deployment", b.deployment.clone(), h.deployment.clone()),
        ];
        for (field, before, after) in pairs {
            if before != after {
                change(field, before, after);
            }
        }
    }
    changes
}

/// Every change between `base` and `head` in what an experiment's `exec` scorers run: a
/// command the experiment did not have at base, or a file a command names (or one beside it)
/// that the pull request changed. A scorer receives no key, but it is the pull request's code
/// running where keys are, like an `exec` provider's, so the experiment waits for the same
/// approval. `base` is `None` when the suite does not load at base (every command is new).
pub fn review_scorers(base: Option<&Suite>, head: &Suite, changed_paths: &[String]) -> Vec<ProviderChange> {
    let commands = |e: &Experiment| -> BTreeSet<Vec<String>> {
        e.asserts
            .iter()
            .chain(e.cases.iter().flat_map(|c| c.asserts.iter()))
            .filter_map(|a| match &a.check {
                Check::Exec { command, .. } => Some(command.clone()),
                _ => None,
            })
            .collect()
    };
    let mut changes = Vec::new();
    for e in &head.experiments {
        let now = commands(e);
        if now.is_empty() {
            continue;
        }
        let before = base
            .and_then(|b| b.experiments.iter().find(|x| x.name == e.name))
            .map(commands)
            .unwrap_or_default();
        let mut change = |field: &str, head: String| {
            changes.push(ProviderChange {
                provider: format!("{} (exec scorer)", e.name),
                field: field.to_owned(),
                base: None,
                head: Some(head),
                experiment: Some(e.name.clone()),
            });
        };
        for command in &now {
            if !before.contains(command) {
                change("scorer command", command.join(" "));
            }
            for path in code_changes(command, changed_paths) {
                change("scorer code", path);
            }
        }
    }
    changes
}

/// The changed paths an `exec` command runs: each argument that names a path (as the
/// repository sees it) watches that file and, when it is in a folder, the whole folder, since
/// a script imports its neighbours. Code the command reaches otherwise (a module installed
/// elsewhere) is not seen.
fn code_changes(command: &[String], changed_paths: &[String]) -> Vec<String> {
    let mut hits = BTreeSet::new();
    for arg in command {
        let arg = arg.trim_start_matches("./");
        if arg.is_empty() || arg.starts_with('-') || arg.starts_with('/') || arg.contains("..") {
            continue;
        }
        let folder = arg.rsplit_once('/').map(|(dir, _)| format!("{dir}/"));
        for path in changed_paths {
            if path == arg || folder.as_deref().is_some_and(|f| path.starts_with(f)) {
                hits.insert(path.clone());
            }
        }
    }
    hits.into_iter().collect()
}

fn describe_provider(spec: &ProviderSpec) -> String {
    let mut parts = vec![spec.kind.as_str().to_owned()];
    if let Some(url) = endpoint(spec) {
        parts.push(crate::secrets::url_shown(&url));
    }
    if let Some(variable) = key_variable(spec) {
        parts.push(format!("key from {variable}"));
    }
    parts.join(", ")
}

/// The providers this run may not use, given the policy and the changes, and the approval
/// the comment asks for. `None` when everything may run.
pub fn hold(policy: &KeyPolicy, changes: &[ProviderChange], head: &BTreeMap<String, ProviderSpec>) -> Option<Hold> {
    if policy.untrusted_head {
        let keyed: Vec<&ProviderSpec> = head.values().filter(|s| keyed(s)).collect();
        if keyed.is_empty() {
            return None;
        }
        return Some(Hold {
            providers: keyed.iter().map(|s| s.name.clone()).collect(),
            experiments: BTreeSet::new(),
            needed: ApprovalNeeded {
                reason: "a maintainer must approve to run with keys".to_owned(),
                changes: keyed
                    .iter()
                    .map(|s| ProviderChange {
                        provider: s.name.clone(),
                        field: "key".to_owned(),
                        base: None,
                        head: Some(
                            key_variable(s)
                                .map(|v| format!("needs {v}"))
                                .unwrap_or_else(|| format!("needs {}", s.env.join(", "))),
                        ),
                        experiment: None,
                    })
                    .collect(),
                experiments: Vec::new(),
                how: policy.how_config.clone(),
            },
        });
    }
    if policy.config_approved || changes.is_empty() {
        return None;
    }
    Some(Hold {
        providers: changes
            .iter()
            .filter(|c| c.experiment.is_none())
            .map(|c| c.provider.clone())
            .collect(),
        experiments: changes.iter().filter_map(|c| c.experiment.clone()).collect(),
        needed: ApprovalNeeded {
            reason: "a maintainer must approve where a key goes before this change gets it".to_owned(),
            changes: changes.to_vec(),
            experiments: Vec::new(),
            how: policy.how_config.clone(),
        },
    })
}

/// The providers a suite's scorers call for every experiment that asks them: the judge
/// (`defaults.judge`) and the embedder (`defaults.embedder`), as the run's suite names them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScorerProviders<'a> {
    pub judge: Option<&'a str>,
    pub embedder: Option<&'a str>,
}

/// The planned experiments that may run, and the hold of those that may not (their provider
/// chain, at base or head, uses a held provider, or they ask a judge or an embedder that is
/// held: a judge's calls carry its provider's key as a generation's do). A hold that holds no
/// experiment is none: a provider nothing uses gets no key. The hold lists only the changes of
/// providers its experiments use.
pub fn withhold<'a>(
    planned: Vec<Planned<'a>>,
    hold: Option<Hold>,
    scorers: ScorerProviders<'_>,
) -> (Vec<Planned<'a>>, Option<Hold>) {
    let Some(mut hold) = hold else {
        return (planned, None);
    };
    let mut kept = Vec::with_capacity(planned.len());
    let mut used: BTreeSet<String> = BTreeSet::new();
    for p in planned {
        let judge = scorers.judge.filter(|_| p.candidate.asks_judge());
        let embedder = scorers.embedder.filter(|_| p.candidate.embeds());
        let chain: Vec<String> = std::iter::once(&p.candidate.provider)
            .chain(&p.candidate.fallbacks)
            .chain(
                p.baseline
                    .into_iter()
                    .flat_map(|b| std::iter::once(&b.provider).chain(&b.fallbacks)),
            )
            .cloned()
            .chain(judge.into_iter().chain(embedder).map(str::to_owned))
            .collect();
        let held: Vec<String> = chain.into_iter().filter(|name| hold.providers.contains(name)).collect();
        let scorer_held = hold.experiments.contains(&p.candidate.name);
        if held.is_empty() && !scorer_held {
            kept.push(p);
        } else {
            used.extend(held);
            hold.needed.experiments.push(p.candidate.name.clone());
        }
    }
    if hold.needed.experiments.is_empty() {
        return (kept, None);
    }
    let waiting = hold.needed.experiments.clone();
    hold.needed.changes.retain(|c| match &c.experiment {
        Some(e) => waiting.contains(e),
        None => used.contains(&c.provider),
    });
    (kept, Some(hold))
}

/// Holds every planned experiment because the estimated cost needs a maintainer's approval;
/// `refusal` is the budget's message. An earlier hold (keys) keeps its changes.
pub fn hold_for_cost(
    planned: Vec<Planned<'_>>,
    earlier: Option<Hold>,
    refusal: &crate::error::Error,
    how: &str,
) -> Hold {
    let message = match refusal {
        crate::error::Error::Run { message, .. } => message.clone(),
        other => other.to_string(),
    };
    let mut hold = earlier.unwrap_or_else(|| Hold {
        providers: BTreeSet::new(),
        experiments: BTreeSet::new(),
        needed: ApprovalNeeded {
            reason: String::new(),
            changes: Vec::new(),
            experiments: Vec::new(),
            how: String::new(),
        },
    });
    hold.needed
        .experiments
        .extend(planned.iter().map(|p| p.candidate.name.clone()));
    hold.needed.reason = if hold.needed.reason.is_empty() {
        format!("a maintainer must approve the cost: {message}")
    } else {
        format!(
            "{}; and a maintainer must approve the cost: {message}",
            hold.needed.reason
        )
    };
    hold.needed.how = [hold.needed.how.as_str(), how]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    hold
}

/// Registers every key the suite's providers would read (and every variable an `exec`
/// provider is handed) with the redactor, whether or not this run uses it.
pub fn register_keys(providers: &BTreeMap<String, ProviderSpec>) {
    crate::secrets::register_env(crate::secrets::DEFAULT_KEY_VARIABLES.iter().copied());
    for spec in providers.values() {
        if let Some(url) = &spec.base_url {
            crate::secrets::register_url_credentials(
                &format!("the credentials in provider {}'s base_url", spec.name),
                url,
            );
        }
        if let Some(variable) = key_variable(spec) {
            crate::secrets::register_env([variable.as_str()]);
        }
        crate::secrets::register_env(spec.env.iter().map(String::as_str));
    }
}

/// What waits for a maintainer, as plain text for the log.
pub fn describe(needed: &ApprovalNeeded) -> String {
    let mut text = format!("promptgate: waiting for a maintainer: {}", needed.reason);
    for c in &needed.changes {
        text.push_str(&format!(
            "\n  {} {}: {} → {}",
            c.provider,
            c.field,
            c.base.as_deref().unwrap_or("(none)"),
            c.head.as_deref().unwrap_or("(none)")
        ));
    }
    if !needed.experiments.is_empty() {
        text.push_str(&format!("\n  not run: {}", needed.experiments.join(", ")));
    }
    text.push_str(&format!("\n  {}", needed.how));
    text
}

/// The notice a local run prints for changes CI would hold.
pub fn notice(changes: &[ProviderChange]) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let lines: Vec<String> = changes
        .iter()
        .map(|c| {
            format!(
                "  {} {}: {} → {}",
                c.provider,
                c.field,
                c.base.as_deref().unwrap_or("(none)"),
                c.head.as_deref().unwrap_or("(none)")
            )
        })
        .collect();
    Some(format!(
        "notice: this change moves where a key goes; in CI those experiments wait for a maintainer's approval (the `promptgate:trust-config` label) before they get the key:\n{}",
        lines.join("\n")
    ))
}

/// Records what did not run in the results: the overall verdict becomes `needs_approval`
/// unless something that ran already fails (or errs), which stays the verdict.
pub fn apply(results: &mut Results, needed: ApprovalNeeded) {
    if matches!(results.verdict, Verdict::Pass) {
        results.verdict = Verdict::NeedsApproval;
        results.reason = format!("{}: {}", needed.reason, needed.experiments.join(", "));
    } else {
        results.reason = format!(
            "{}; also, {} ({})",
            results.reason,
            needed.reason,
            needed.experiments.join(", ")
        );
    }
    results.trust.approval = Some(needed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, kind: ProviderKind) -> ProviderSpec {
        ProviderSpec::new(name, kind)
    }

    fn suite(specs: Vec<ProviderSpec>) -> BTreeMap<String, ProviderSpec> {
        specs.into_iter().map(|s| (s.name.clone(), s)).collect()
    }

    #[track_caller]
    fn check(base: Vec<ProviderSpec>, head: Vec<ProviderSpec>, changed: &[&str], expected: &[(&str, &str)]) {
        let changed: Vec<String> = changed.iter().map(|s| (*s).to_owned()).collect();
        let got: Vec<(String, String)> = review(Some(&suite(base)), &suite(head), &changed)
            .into_iter()
            .map(|c| (c.provider, c.field))
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(p, f)| ((*p).to_owned(), (*f).to_owned()))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn moving_a_keyed_endpoint_or_key_is_a_change() {
        let openai = provider("openai", ProviderKind::Openai);
        let mut moved = openai.clone();
        moved.base_url = Some("https://collector.example/v1".to_owned());
        check(vec![openai.clone()], vec![moved], &[], &[("openai", "base_url")]);
        // The default written out is the same endpoint.
        let mut explicit = openai.clone();
        explicit.base_url = Some("https://api.openai.com/v1/".to_owned());
        check(vec![openai.clone()], vec![explicit], &[], &[]);
        let mut other_key = openai.clone();
        other_key.api_key_env = Some("PROD_OPENAI_KEY".to_owned());
        check(vec![openai.clone()], vec![other_key], &[], &[("openai", "api_key_env")]);
        let mut azure = provider("az", ProviderKind::AzureOpenai);
        azure.base_url = Some("https://r.openai.azure.com".to_owned());
        azure.deployment = Some("gpt4o".to_owned());
        let mut elsewhere = azure.clone();
        elsewhere.deployment = Some("theirs".to_owned());
        check(vec![azure], vec![elsewhere], &[], &[("az", "deployment")]);
        // Concurrency or timeouts move nothing.
        let mut tuned = openai.clone();
        tuned.concurrency = 64;
        tuned.timeout_ms = 5_000;
        check(vec![openai], vec![tuned], &[], &[]);
    }

    /// A password in an endpoint is never shown: the notice and the comment listed it (the
    /// audit: `http://u:sk-URLSECRET…@host` printed whole on stderr).
    #[test]
    fn an_endpoints_credentials_are_compared_but_never_shown() {
        let mut local = provider("local", ProviderKind::OpenaiCompatible);
        local.api_key_env = Some("OPENAI_API_KEY".to_owned());
        local.base_url = Some("http://127.0.0.1:11434/v1".to_owned());
        let mut moved = local.clone();
        moved.base_url = Some("http://u:hunter2-password-value@collector.example:8080/v1".to_owned());
        let changes = review(Some(&suite(vec![local.clone()])), &suite(vec![moved.clone()]), &[]);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].head.as_deref(), Some("http://collector.example:8080/v1"));
        let notice = notice(&changes).unwrap();
        assert!(!notice.contains("hunter2"), "{notice}");
        // Only the credentials changed: still a change, said so, and still not shown.
        let mut repassworded = moved.clone();
        repassworded.base_url = Some("http://u:other-password-value@collector.example:8080/v1".to_owned());
        let changes = review(Some(&suite(vec![moved])), &suite(vec![repassworded.clone()]), &[]);
        assert_eq!(
            changes[0].head.as_deref(),
            Some("http://collector.example:8080/v1 (its credentials changed)")
        );
        // And registered: an error that echoes the password is redacted.
        register_keys(&suite(vec![repassworded]));
        assert!(!crate::secrets::redact("401 for other-password-value").contains("other-password-value"));
    }

    #[test]
    fn new_keyed_providers_and_keys_given_to_keyless_servers_are_changes() {
        let mut local = provider("local", ProviderKind::OpenaiCompatible);
        local.base_url = Some("http://127.0.0.1:11434/v1".to_owned());
        check(vec![], vec![local.clone()], &[], &[]);
        check(
            vec![],
            vec![provider("claude", ProviderKind::Anthropic)],
            &[],
            &[("claude", "new provider")],
        );
        let mut keyed_local = local.clone();
        keyed_local.api_key_env = Some("OPENAI_API_KEY".to_owned());
        check(vec![local], vec![keyed_local], &[], &[("local", "api_key_env")]);
        check(vec![], vec![provider("mock", ProviderKind::Mock)], &[], &[]);
    }

    #[test]
    fn every_exec_change_is_a_change() {
        let mut exec = provider("rag", ProviderKind::Exec);
        exec.command = Some(vec!["python3".to_owned(), "pipelines/rag/answer.py".to_owned()]);
        check(vec![], vec![exec.clone()], &[], &[("rag", "new provider")]);
        let mut other = exec.clone();
        other.command = Some(vec!["sh".to_owned(), "-c".to_owned(), "env".to_owned()]);
        check(vec![exec.clone()], vec![other], &[], &[("rag", "command")]);
        let mut with_env = exec.clone();
        with_env.env = vec!["OPENAI_API_KEY".to_owned()];
        check(vec![exec.clone()], vec![with_env], &[], &[("rag", "env")]);
        // The script, or a module beside it, changed in the pull request.
        check(
            vec![exec.clone()],
            vec![exec.clone()],
            &["pipelines/rag/retrieve.py", "prompts/a.md"],
            &[("rag", "code")],
        );
        check(vec![exec.clone()], vec![exec], &["prompts/a.md"], &[]);
    }

    /// A suite in memory whose one experiment is scored by `assert`, with `more` files.
    fn scored_suite(assert: &str, more: &[(&str, &str)]) -> Suite {
        let mut files = vec![
            (
                "promptgate.yaml",
                format!(
                    "version: 1\nexperiments:\n  - {{name: support, variant: v.yaml, dataset: d.jsonl, assert: [{assert}]}}\n"
                ),
            ),
            ("v.yaml", "model: m\nprompt: p.md\n".to_owned()),
            ("p.md", "Answer.".to_owned()),
            ("d.jsonl", "{\"id\": \"a\", \"vars\": {\"input\": \"q\"}}\n".to_owned()),
        ];
        files.extend(more.iter().map(|(p, t)| (*p, (*t).to_owned())));
        let tree = crate::workspace::MemTree::new(files.iter().map(|(p, t)| (*p, t.as_str())));
        crate::suite::load(std::sync::Arc::new(tree), "promptgate.yaml").unwrap()
    }

    #[test]
    fn a_new_or_edited_exec_scorer_holds_its_experiment() {
        let script = [("scripts/tone.py", "print(1)")];
        let plain = scored_suite("{type: max-length, value: 10}", &script);
        let scored = scored_suite(
            "{type: exec, command: [python3, scripts/tone.py], metric: tone}",
            &script,
        );
        let fields = |changes: Vec<ProviderChange>| -> Vec<(String, String, Option<String>)> {
            changes
                .into_iter()
                .map(|c| (c.provider, c.field, c.experiment))
                .collect()
        };
        assert_eq!(
            fields(review_scorers(Some(&plain), &scored, &[])),
            vec![(
                "support (exec scorer)".to_owned(),
                "scorer command".to_owned(),
                Some("support".to_owned())
            )]
        );
        assert!(review_scorers(Some(&scored), &scored, &["prompts/a.md".to_owned()]).is_empty());
        let edited = review_scorers(Some(&scored), &scored, &["scripts/tone.py".to_owned()]);
        assert_eq!(edited[0].field, "scorer code");
        assert_eq!(edited[0].head.as_deref(), Some("scripts/tone.py"));
        assert!(review_scorers(Some(&plain), &plain, &["scripts/tone.py".to_owned()]).is_empty());

        // The experiment waits until a maintainer approves; the change is listed with it.
        let held = hold(&KeyPolicy::default(), &edited, &scored.providers).unwrap();
        assert_eq!(held.experiments, BTreeSet::from(["support".to_owned()]));
        assert!(held.providers.is_empty());
        let planned = vec![Planned {
            candidate: &scored.experiments[0],
            baseline: Some(&scored.experiments[0]),
        }];
        let (kept, held) = withhold(planned, Some(held), ScorerProviders::default());
        assert!(kept.is_empty());
        let needed = held.unwrap().needed;
        assert_eq!(needed.experiments, vec!["support"]);
        assert_eq!(needed.changes.len(), 1);
        let approved = KeyPolicy {
            config_approved: true,
            ..KeyPolicy::default()
        };
        assert!(hold(&approved, &edited, &scored.providers).is_none());
    }

    #[test]
    fn untrusted_runs_hold_every_keyed_provider() {
        let head = suite(vec![
            provider("openai", ProviderKind::Openai),
            provider("mock", ProviderKind::Mock),
        ]);
        let policy = KeyPolicy {
            untrusted_head: true,
            ..KeyPolicy::default()
        };
        let held = hold(&policy, &[], &head).unwrap();
        assert_eq!(held.providers, BTreeSet::from(["openai".to_owned()]));
        assert_eq!(held.needed.reason, "a maintainer must approve to run with keys");
        assert_eq!(held.needed.changes[0].head.as_deref(), Some("needs OPENAI_API_KEY"));
        // Same repository: only what changed waits, and only until approved.
        let changes = review(None, &head, &[]);
        assert!(hold(&KeyPolicy::default(), &changes, &head).is_some());
        let approved = KeyPolicy {
            config_approved: true,
            ..KeyPolicy::default()
        };
        assert!(hold(&approved, &changes, &head).is_none());
        assert!(hold(&KeyPolicy::default(), &[], &head).is_none());
    }
}
