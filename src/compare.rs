//! Two refs compared: the one place `run`, `ci` and `detect` start from.
//!
//! [`compare`] resolves the refs and their merge base, lists the changed paths, loads the suite
//! at head (the candidate) and at the merge base (the baseline, as far as it loads, with its
//! error), detects the affected experiments with their reasons, and settles the policy in force:
//! the base's gates, α, seed, error tolerance, design, budget and prices — a pull request is
//! judged by the rules it may be trying to change. What the pull request changes in them is
//! listed, and takes effect after merge.
//!
//! `--head WORKTREE` makes the working tree the candidate (uncommitted edits and untracked,
//! non-ignored files included); otherwise edits not committed at head are listed, since they
//! are not part of the comparison.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::detect::{self, Detection};
use crate::format::short_sha;
use crate::providers::pricing::PriceTable;
use crate::results::GitRef;
use crate::suite::{self, Budget, Defaults, GateSpec, Margin, Price, Suite};
use crate::workspace::{Change, ChangeKind, DirTree, FileSource, GitTree, Repo, parent_dir};

/// `--head WORKTREE`: the working tree, as it is on disk, is the candidate.
pub const WORKTREE: &str = "WORKTREE";

/// What to compare: two refs, the suite file, and whether every experiment or only the affected.
pub struct Scope<'a> {
    pub base: &'a str,
    pub head: &'a str,
    pub config: &'a str,
    /// Every experiment, affected or not (`--all`).
    pub all: bool,
    /// The folders the run writes in (its outputs, its response cache): left out of the
    /// working tree's fingerprint (an `exec` pipeline's cache identity), which they would
    /// change on every run.
    pub written: &'a [&'a std::path::Path],
}

/// One side of the comparison: the files it reads, and the commit they are at.
pub struct Side {
    pub tree: Arc<dyn FileSource>,
    /// The commit (for `WORKTREE`, the commit the working tree is on).
    pub sha: String,
    /// The files on disk are exactly this side's (the working tree, or the checked-out commit
    /// without tracked edits): an `exec` pipeline of this side can run from the checkout.
    pub at_checkout: bool,
}

/// Everything `run`, `ci` and `detect` need to know about two refs before running anything.
pub struct Comparison {
    pub repo: Repo,
    /// The base as named, at the commit it names (`base.sha` in results is the merge base).
    pub base_ref: GitRef,
    /// The head as named; `dirty` for a working tree that differs from its commit.
    pub head_ref: GitRef,
    pub merge_base: String,
    pub changes: Vec<Change>,
    /// The candidate's files and suite.
    pub head: Side,
    pub head_suite: Suite,
    /// The baseline's files (the merge base) and suite, as far as it loads: `None` when the
    /// base has no suite file, or its suite file does not load.
    pub base: Side,
    pub base_suite: Option<Suite>,
    /// Why the suite at base does not (entirely) load, one line per problem with file:line.
    pub base_errors: Vec<String>,
    pub detection: Detection,
    pub policy: PolicyInForce,
    /// Uncommitted edits of the working tree that the comparison does not read (head is the
    /// checked-out commit, not `WORKTREE`), limited to the files the suite could be reading.
    pub not_compared: Vec<Change>,
}

/// The policy a pull request is judged by: the base's. A suite new at head brings its own (there
/// is nothing to protect).
#[derive(Clone, Debug)]
pub struct PolicyInForce {
    pub gates: Vec<GateSpec>,
    /// Gates the pull request adds on metrics the base does not gate: decided with head's
    /// settings, not blocking, outside Holm's family until merged.
    pub pending: Vec<GateSpec>,
    /// Head's defaults with the base's α, seed, error tolerance and sequential design.
    pub defaults: Defaults,
    pub budget: Budget,
    /// The base's price overrides, plus head's for models neither the base nor the built-in
    /// table prices.
    pub pricing: BTreeMap<String, Price>,
    /// What the pull request changes in all of the above, one sentence each.
    pub changes: Vec<String>,
}

impl Comparison {
    /// Drops the cases of the suite at base, and gives the memory they held back to the system
    /// (`allocator::release`): the largest that reading the suites leaves.
    pub fn let_go_of_base_cases(&mut self) {
        for experiment in self.base_suite.iter_mut().flat_map(|s| &mut s.experiments) {
            experiment.cases = Vec::new();
        }
        crate::allocator::release();
    }

    /// The base's load errors as one sentence for a verdict line, or `None` when it loaded.
    pub fn base_error(&self) -> Option<String> {
        (!self.base_errors.is_empty()).then(|| {
            format!(
                "the suite at base ({}) does not load: {}",
                short_sha(&self.merge_base),
                self.base_errors.join("; ")
            )
        })
    }

    /// What a user must know before trusting the comparison, one message each, for stderr:
    /// what the candidate is, edits it does not read, a base that does not load, policy
    /// changes that wait for the merge.
    pub fn notices(&self) -> Vec<String> {
        let mut notices = self.tree_notices();
        if let Some(error) = self.base_error() {
            notices.push(format!(
                "warning: {error}\nhint: the experiments it does not load run candidate-only and the verdict is an error unless a maintainer waives it; fix the suite on the base branch"
            ));
        }
        if !self.policy.changes.is_empty() {
            let mut text =
                "promptgate: this change edits the gate policy; the base's stays in force until it is merged:"
                    .to_owned();
            for c in &self.policy.changes {
                text.push_str(&format!("\n  {c}"));
            }
            notices.push(text);
        }
        notices
    }

    /// The notices about the working tree: edits the comparison does not read, or the working
    /// tree as the candidate.
    pub fn tree_notices(&self) -> Vec<String> {
        let mut notices = Vec::new();
        if !self.not_compared.is_empty() {
            let mut text = format!(
                "warning: {} uncommitted change(s) the suite may read are not part of this comparison, which reads the commit {} ({}):",
                self.not_compared.len(),
                self.head_ref.name,
                short_sha(&self.head_ref.sha)
            );
            for c in &self.not_compared {
                text.push_str(&format!("\n  {} {}", uncommitted_word(c.kind), c.path));
            }
            text.push_str("\nhint: commit them, or gate the working tree as the candidate with `--head WORKTREE`");
            notices.push(text);
        }
        if self.head_ref.name == WORKTREE {
            notices.push(format!(
                "promptgate: the candidate is the working tree on {}{}",
                short_sha(&self.head_ref.sha),
                if self.head_ref.dirty {
                    ", uncommitted edits and untracked files included"
                } else {
                    " (no uncommitted edits)"
                }
            ));
        }
        notices
    }

    /// The `results.json` refs: the base's commit is the merge base evaluated.
    pub fn result_refs(&self) -> (GitRef, GitRef) {
        (
            GitRef {
                name: self.base_ref.name.clone(),
                sha: self.base_ref.sha.clone(),
                dirty: false,
            },
            self.head_ref.clone(),
        )
    }
}

/// Compares `scope.base` and `scope.head` in the repository containing `dir`.
pub fn compare(dir: &std::path::Path, scope: &Scope<'_>) -> anyhow::Result<Comparison> {
    compare_in(Repo::open(dir)?, scope)
}

/// [`compare`] in a repository already opened (`ci` opens it first, to fetch the PR's commits).
pub fn compare_in(repo: Repo, scope: &Scope<'_>) -> anyhow::Result<Comparison> {
    let worktree = scope.head == WORKTREE;
    // What the working tree holds uncommitted is read beside the refs and the PR's changes:
    // independent git processes, each a few milliseconds before the first call.
    let (uncommitted, resolved) = std::thread::scope(|threads| {
        let uncommitted = threads.spawn(|| -> anyhow::Result<(Vec<Change>, bool)> {
            let tracked = repo.tracked_changes_to_worktree("HEAD")?;
            let tracked_edits = !tracked.is_empty();
            Ok((repo.with_untracked(tracked)?, tracked_edits))
        });
        let resolved = (|| -> anyhow::Result<_> {
            let checked_out = repo.head_sha()?;
            let base_sha = repo.resolve(scope.base)?;
            let head_sha = if worktree {
                checked_out.clone()
            } else {
                repo.resolve(scope.head)?
            };
            let merge_base = repo.merge_base(&base_sha, &head_sha)?;
            let changes = if worktree {
                repo.changes_to_worktree(&merge_base)?
            } else {
                repo.changes(&merge_base, &head_sha)?
            };
            Ok((checked_out, base_sha, head_sha, merge_base, changes))
        })();
        let uncommitted = uncommitted.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
        (uncommitted, resolved)
    });
    // A ref that does not resolve is the error to report, before the working tree's state.
    let (checked_out, base_sha, head_sha, merge_base, changes) = resolved?;
    let (uncommitted, tracked_edits) = uncommitted?;
    // The checkout holds a commit's files exactly when nothing is edited and nothing is added
    // beside them (the run's own folders and tools' by-products aside): an exec pipeline run
    // there reads them, and its answers are cached under the commit's tree.
    // An output folder that is the repository itself (`--out .`) cannot tell the run's files
    // from others: every untracked file then counts.
    let own: Vec<String> = crate::workspace::folders_inside(repo.root(), scope.written)
        .unwrap_or_default()
        .into_iter()
        .filter(|f| !f.is_empty())
        .collect();
    let as_committed = !tracked_edits
        && uncommitted
            .iter()
            .all(|c| crate::workspace::generated(&c.path) || crate::workspace::in_folders(&c.path, &own));
    let head_tree: Arc<dyn FileSource> = if worktree {
        Arc::new(DirTree::excluding(repo.root(), scope.written))
    } else {
        Arc::new(GitTree::new(repo.root(), &head_sha))
    };
    let head_suite = suite::load(Arc::clone(&head_tree), scope.config)?;
    let base_tree: Arc<dyn FileSource> = Arc::new(GitTree::new(repo.root(), &merge_base));
    let loaded = load_base(&base_tree, scope.config, &head_suite);
    let detection = detect::detect(
        detect::Base {
            suite: loaded.suite.as_ref(),
            unloaded: &loaded.unloaded,
        },
        &head_suite,
        &changes,
        scope.all,
    );
    let policy = policy_in_force(loaded.suite.as_ref(), &head_suite);
    let not_compared = if !worktree && head_sha == checked_out {
        relevant(&uncommitted, &head_suite, loaded.suite.as_ref())
    } else {
        Vec::new()
    };
    let base_suite = loaded.suite;
    Ok(Comparison {
        base_ref: GitRef {
            name: scope.base.to_owned(),
            sha: base_sha,
            dirty: false,
        },
        head_ref: GitRef {
            name: scope.head.to_owned(),
            sha: head_sha.clone(),
            dirty: worktree && !uncommitted.is_empty(),
        },
        changes,
        head: Side {
            tree: head_tree,
            at_checkout: worktree || (head_sha == checked_out && as_committed),
            sha: head_sha,
        },
        head_suite,
        base: Side {
            tree: base_tree,
            at_checkout: merge_base == checked_out && as_committed,
            sha: merge_base.clone(),
        },
        base_suite,
        base_errors: loaded.errors,
        detection,
        policy,
        not_compared,
        merge_base,
        repo,
    })
}

/// The suite at base as far as it loads.
struct LoadedBase {
    suite: Option<Suite>,
    /// Experiments it declares that do not load.
    unloaded: Vec<String>,
    errors: Vec<String>,
}

/// Loads the suite at base experiment by experiment: a suite file that does not load, or an
/// experiment that does not, is recorded (the run fails on it unless waived), and the rest
/// still serves as baseline. A base without a suite file has nothing to load.
fn load_base(tree: &Arc<dyn FileSource>, config: &str, head: &Suite) -> LoadedBase {
    let mut loaded = LoadedBase {
        suite: None,
        unloaded: Vec::new(),
        errors: Vec::new(),
    };
    match tree.read(config) {
        Ok(Some(_)) => {}
        Ok(None) => return loaded,
        Err(e) => {
            loaded.errors.push(format!("{config}: {e:#}"));
            return loaded;
        }
    }
    let (mut suite, decls) = match suite::load_config(&**tree, config) {
        Ok(s) => s,
        Err(e) => {
            loaded.errors.push(e.summary());
            return loaded;
        }
    };
    for decl in &decls {
        match suite::load_base_experiment(tree, &suite, decl, head) {
            Ok(e) => suite.experiments.push(e),
            Err(e) => {
                loaded.unloaded.push(decl.name().to_owned());
                loaded
                    .errors
                    .push(format!("experiment `{}`: {}", decl.name(), e.summary()));
            }
        }
    }
    loaded.suite = Some(suite);
    loaded
}

/// The uncommitted edits the suite could be reading: the suite file, every experiment's files
/// and `depends_on` matches, at base or head, and anything in a folder (other than the root)
/// that holds one of them.
fn relevant(uncommitted: &[Change], head: &Suite, base: Option<&Suite>) -> Vec<Change> {
    let experiments: Vec<&suite::Experiment> = head
        .experiments
        .iter()
        .chain(base.into_iter().flat_map(|b| &b.experiments))
        .collect();
    let mut files: BTreeSet<&str> = experiments
        .iter()
        .flat_map(|e| e.dependencies.iter().chain(e.command_files.keys()))
        .map(String::as_str)
        .collect();
    files.insert(&head.config_path);
    let folders: BTreeSet<&str> = files.iter().map(|f| parent_dir(f)).filter(|d| !d.is_empty()).collect();
    uncommitted
        .iter()
        .filter(|c| {
            let paths = std::iter::once(c.path.as_str()).chain(c.old_path.as_deref());
            paths.into_iter().any(|p| {
                files.contains(p)
                    || experiments.iter().any(|e| e.depends_on.is_match(p))
                    || folders.iter().any(|d| p.starts_with(&format!("{d}/")))
            })
        })
        .cloned()
        .collect()
}

/// The base's policy, with what head changes in it listed (see [`PolicyInForce`]).
pub fn policy_in_force(base: Option<&Suite>, head: &Suite) -> PolicyInForce {
    let Some(base) = base else {
        return PolicyInForce {
            gates: head.gates.clone(),
            pending: Vec::new(),
            defaults: head.defaults.clone(),
            budget: head.budget,
            pricing: head.pricing.clone(),
            changes: Vec::new(),
        };
    };
    let mut changes = Vec::new();
    let mut pending = Vec::new();
    for g in &head.gates {
        match base.gates.iter().find(|b| b.metric == g.metric) {
            Some(b) => {
                // A gate without its own α follows `defaults.alpha`, whose change is listed once.
                let follows_defaults = b.alpha == base.defaults.alpha && g.alpha == head.defaults.alpha;
                changes.extend(gate_changes(b, g, follows_defaults));
            }
            None => {
                changes.push(format!(
                    "gate {} added ({}): reported, not blocking until merged",
                    g.metric,
                    describe_gate(g)
                ));
                pending.push(g.clone());
            }
        }
    }
    for b in base
        .gates
        .iter()
        .filter(|b| !head.gates.iter().any(|g| g.metric == b.metric))
    {
        changes.push(format!("gate {} removed (it stays in force until merged)", b.metric));
    }

    let (bd, hd) = (&base.defaults, &head.defaults);
    let mut defaults = hd.clone();
    defaults.alpha = bd.alpha;
    defaults.seed = bd.seed;
    defaults.max_error_rate = bd.max_error_rate;
    defaults.sequential = bd.sequential;
    defaults.sequential_looks = bd.sequential_looks;
    for (field, from, to) in [
        ("alpha", number(bd.alpha), number(hd.alpha)),
        ("seed", bd.seed.to_string(), hd.seed.to_string()),
        ("max_error_rate", number(bd.max_error_rate), number(hd.max_error_rate)),
        ("sequential", bd.sequential.to_string(), hd.sequential.to_string()),
        (
            "sequential_looks",
            bd.sequential_looks.to_string(),
            hd.sequential_looks.to_string(),
        ),
    ] {
        if from != to {
            changes.push(format!("defaults.{field} {from} → {to}"));
        }
    }
    // The judge grades both arms from head (DESIGN: scoring is head's, so both are scored
    // alike): a pull request that picks its own grader says so where the reviewer looks.
    let judge = |j: &Option<crate::suite::JudgeSettings>| {
        j.as_ref().map_or_else(
            || "none".to_owned(),
            |j| format!("{}/{} × {}", j.provider, j.model, j.repeats),
        )
    };
    if bd.judge != hd.judge {
        changes.push(format!(
            "judge {} → {} (applies now: the judge grades both arms)",
            judge(&bd.judge),
            judge(&hd.judge)
        ));
    } else if let Some(j) = &hd.judge
        && grader(base.providers.get(&j.provider)) != grader(head.providers.get(&j.provider))
    {
        changes.push(format!(
            "judge provider {}'s endpoint changed (applies now: the judge grades both arms)",
            j.provider
        ));
    }
    let embedder = |e: &Option<crate::suite::EmbedderSettings>| {
        e.as_ref()
            .map_or_else(|| "none".to_owned(), |e| format!("{}/{}", e.provider, e.model))
    };
    let embedder_changed = bd.embedder != hd.embedder
        || hd
            .embedder
            .as_ref()
            .is_some_and(|e| grader(base.providers.get(&e.provider)) != grader(head.providers.get(&e.provider)));
    if embedder_changed {
        changes.push(format!(
            "embedder {} → {} (applies now: it scores both arms' similarity)",
            embedder(&bd.embedder),
            embedder(&hd.embedder)
        ));
    }
    for (field, from, to) in [
        (
            "approve_above_usd",
            base.budget.approve_above_usd,
            head.budget.approve_above_usd,
        ),
        ("max_usd", base.budget.max_usd, head.budget.max_usd),
    ] {
        if from != to {
            let shown = |v: Option<f64>| v.map_or_else(|| "unset".to_owned(), number);
            changes.push(format!("budget.{field} {} → {}", shown(from), shown(to)));
        }
    }

    let (pricing, price_changes) = prices_in_force(&base.pricing, &head.pricing);
    changes.extend(price_changes);
    PolicyInForce {
        gates: base.gates.clone(),
        pending,
        defaults,
        budget: base.budget,
        pricing,
        changes,
    }
}

/// What of a provider decides what a judge or an embedder answers: its kind and where it is
/// (not its concurrency, limits, timeout or retries, which a rate-limit tweak changes).
fn grader(spec: Option<&crate::suite::ProviderSpec>) -> Option<Grader<'_>> {
    spec.map(|s| {
        (
            s.kind,
            s.base_url.as_deref(),
            s.deployment.as_deref(),
            s.command.as_deref(),
        )
    })
}

/// A provider's kind, base URL, deployment and command.
type Grader<'a> = (
    crate::suite::ProviderKind,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a [String]>,
);

/// The base's prices, plus head's for models neither the base nor the built-in table prices
/// (flagged): a pull request cannot make its own run look cheap, nor lift the budget's caps by
/// pricing a model at 0.
fn prices_in_force(
    base: &BTreeMap<String, Price>,
    head: &BTreeMap<String, Price>,
) -> (BTreeMap<String, Price>, Vec<String>) {
    let table = PriceTable::new(base);
    let mut pricing = base.clone();
    let mut changes = Vec::new();
    for (model, price) in head {
        match table.price(model) {
            None => {
                changes.push(format!(
                    "pricing {model}: {} added (applies now: neither the base nor the built-in table prices it)",
                    price_text(price)
                ));
                pricing.insert(model.clone(), *price);
            }
            Some(known) if known == *price => {}
            Some(known) => {
                let lower = price.input < known.input
                    || price.output < known.output
                    || price.cached_input.unwrap_or(price.input) < known.cached_input.unwrap_or(known.input);
                changes.push(format!(
                    "pricing {model}: {} → {} (ignored: {})",
                    price_text(&known),
                    price_text(price),
                    if lower {
                        "a PR may not lower a price"
                    } else {
                        "prices come from the base until merged"
                    }
                ));
            }
        }
    }
    for (model, price) in base.iter().filter(|(m, _)| !head.contains_key(*m)) {
        changes.push(format!(
            "pricing {model}: {} removed (ignored: prices come from the base until merged)",
            price_text(price)
        ));
    }
    (pricing, changes)
}

/// "$0.15 in / $0.6 out per million tokens".
fn price_text(p: &Price) -> String {
    format!("${} in / ${} out per million tokens", number(p.input), number(p.output))
}

fn gate_changes(b: &GateSpec, h: &GateSpec, alpha_follows_defaults: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |what: String| out.push(format!("gate {}: {what}", h.metric));
    if b.direction != h.direction {
        field(format!(
            "direction {} → {}",
            direction(b.direction),
            direction(h.direction)
        ));
    }
    if b.margin != h.margin {
        field(format!("margin {} → {}", margin(b.margin), margin(h.margin)));
    }
    if b.alpha != h.alpha && !alpha_follows_defaults {
        field(format!("alpha {} → {}", number(b.alpha), number(h.alpha)));
    }
    if b.blocking != h.blocking {
        let word = |blocking: bool| if blocking { "blocking" } else { "not blocking" };
        field(format!("{} → {}", word(b.blocking), word(h.blocking)));
    }
    if b.slo != h.slo {
        let shown = |v: Option<f64>| v.map_or_else(|| "unset".to_owned(), number);
        field(format!("slo {} → {}", shown(b.slo), shown(h.slo)));
    }
    if (b.require_non_inferiority, b.require_equivalence) != (h.require_non_inferiority, h.require_equivalence) {
        field(format!("require {} → {}", require(b), require(h)));
    }
    out
}

fn describe_gate(g: &GateSpec) -> String {
    let mut parts = vec![
        direction(g.direction).to_owned(),
        format!("margin {}", margin(g.margin)),
    ];
    if g.blocking {
        parts.push("blocking".to_owned());
    }
    if let Some(slo) = g.slo {
        parts.push(format!("slo {}", number(slo)));
    }
    parts.join(", ")
}

fn direction(d: crate::results::Direction) -> &'static str {
    match d {
        crate::results::Direction::Higher => "higher",
        crate::results::Direction::Lower => "lower",
    }
}

fn margin(m: Margin) -> String {
    match m {
        Margin::Absolute(x) => number(x),
        Margin::Relative(r) => format!("{}%", number(r * 100.0)),
    }
}

fn require(g: &GateSpec) -> &'static str {
    match (g.require_non_inferiority, g.require_equivalence) {
        (true, _) => "non-inferiority",
        (_, true) => "equivalence",
        _ => "none",
    }
}

/// A number as written in the suite: `0.05`, `5`, not `5.0` or `0.05000000000000000277`.
fn number(x: f64) -> String {
    let text = format!("{x}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

fn uncommitted_word(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Added => "new",
        ChangeKind::Deleted => "deleted",
        ChangeKind::Renamed => "renamed",
        _ => "modified",
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::workspace::MemTree;

    const SUITE: &str = "version: 1
providers:
  offline: {type: mock}
pricing:
  house-model: {input: 1.0, output: 2.0}
budget: {approve_above_usd: 0.5, max_usd: 5}
defaults: {alpha: 0.05, provider: offline}
experiments:
  - {name: e, variant: v.yaml, dataset: d.jsonl}
gates:
  pass_rate:        {direction: higher, margin: 0.02, blocking: true}
  error_rate:       {direction: lower, blocking: true}
";

    fn suite(text: &str) -> Suite {
        let tree = MemTree::new([
            ("promptgate.yaml", text),
            ("v.yaml", "model: gpt-4o-mini\nprompt: p.md\n"),
            ("p.md", "Hi"),
            ("d.jsonl", "{\"id\": \"a\", \"vars\": {\"input\": \"x\"}}\n"),
        ]);
        crate::suite::load(Arc::new(tree), "promptgate.yaml").unwrap()
    }

    #[test]
    fn base_cases_with_head_s_vars_share_them_as_read_and_edited_ones_do_not() {
        let tree = |dataset: &str| -> Arc<dyn FileSource> {
            Arc::new(MemTree::new([
                ("promptgate.yaml", SUITE),
                ("v.yaml", "model: gpt-4o-mini\nprompt: p.md\n"),
                ("p.md", "Hi"),
                ("d.jsonl", dataset),
            ]))
        };
        let head = crate::suite::load(
            tree("{\"id\": \"a\", \"vars\": {\"input\": \"x\"}}\n{\"id\": \"b\", \"vars\": {\"input\": \"edited\"}}\n{\"id\": \"c\", \"vars\": {\"input\": \"z\"}}\n"),
            "promptgate.yaml",
        )
        .unwrap();
        // Base lists `c` before `b`: its namesake is found by id, not only at its own place.
        let base = load_base(
            &tree(
                "{\"id\": \"a\", \"vars\": {\"input\": \"x\"}}\n{\"id\": \"c\", \"vars\": {\"input\": \"z\"}}\n{\"id\": \"b\", \"vars\": {\"input\": \"y\"}}\n",
            ),
            "promptgate.yaml",
            &head,
        );
        assert!(base.errors.is_empty(), "{:?}", base.errors);
        let base = base.suite.unwrap();
        let (b, h) = (&base.experiments[0].cases, &head.experiments[0].cases);
        assert_eq!(b.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
        assert!(b[0].vars.shared_with(&h[0].vars));
        assert!(b[1].vars.shared_with(&h[2].vars));
        assert!(!b[2].vars.shared_with(&h[1].vars));
        assert_eq!(b[2].vars.get("input").unwrap(), "y");
    }

    #[track_caller]
    fn gate<'a>(p: &'a PolicyInForce, metric: &str) -> &'a GateSpec {
        p.gates.iter().find(|g| g.metric == metric).unwrap()
    }

    /// The policy in force when head's suite is base's with `from` replaced by `to`.
    fn in_force(from: &str, to: &str) -> PolicyInForce {
        assert!(SUITE.contains(from), "{from}");
        policy_in_force(Some(&suite(SUITE)), &suite(&SUITE.replacen(from, to, 1)))
    }

    #[test]
    fn gates_stay_the_base_s_and_their_changes_are_listed() {
        let p = in_force("margin: 0.02, blocking: true", "margin: 0.5, blocking: true");
        assert_eq!(p.changes, ["gate pass_rate: margin 0.02 → 0.5"]);
        assert_eq!(gate(&p, "pass_rate").margin, Margin::Absolute(0.02));
        let p = in_force(
            "{direction: lower, blocking: true}",
            "{direction: lower, blocking: false}",
        );
        assert_eq!(p.changes, ["gate error_rate: blocking → not blocking"]);
        assert!(p.gates.iter().all(|g| g.blocking));
        let p = in_force("alpha: 0.05", "alpha: 0.1");
        assert_eq!(p.changes, ["defaults.alpha 0.05 → 0.1"]);
        assert_eq!(p.defaults.alpha, 0.05);
        // A PR cannot fish for a favourable draw of the seeded resampling either.
        let p = in_force("alpha: 0.05,", "alpha: 0.05, seed: 7, sequential: true,");
        assert_eq!(p.changes, ["defaults.seed 0 → 7", "defaults.sequential false → true"]);
        assert_eq!((p.defaults.seed, p.defaults.sequential), (0, false));
        let p = in_force("max_usd: 5", "max_usd: 500");
        assert_eq!(p.changes, ["budget.max_usd 5 → 500"]);
        assert_eq!(p.budget.max_usd, Some(5.0));
        let p = in_force("  error_rate:       {direction: lower, blocking: true}\n", "");
        assert_eq!(p.changes, ["gate error_rate removed (it stays in force until merged)"]);
        assert_eq!(p.gates.len(), 2);
    }

    #[test]
    fn a_gate_new_at_head_is_pending() {
        let p = in_force(
            "gates:\n",
            "gates:\n  latency_p95_ms: {direction: lower, margin: \"15%\", slo: 800, blocking: true}\n",
        );
        assert_eq!(
            p.changes,
            ["gate latency_p95_ms added (lower, margin 15%, blocking, slo 800): reported, not blocking until merged"]
        );
        assert_eq!(p.gates.len(), 2);
        assert_eq!(
            p.pending.iter().map(|g| g.metric.as_str()).collect::<Vec<_>>(),
            ["latency_p95_ms"]
        );
    }

    #[test]
    fn a_pr_may_price_a_new_model_but_not_lower_a_known_price() {
        // gpt-4o-mini is in the built-in table ($0.15 / $0.60 per million tokens).
        let p = in_force(
            "pricing:\n",
            "pricing:\n  gpt-4o-mini: {input: 0, output: 0}\n  my-model: {input: 3, output: 4}\n",
        );
        assert_eq!(
            p.changes,
            [
                "pricing gpt-4o-mini: $0.15 in / $0.6 out per million tokens → $0 in / $0 out per million tokens (ignored: a PR may not lower a price)",
                "pricing my-model: $3 in / $4 out per million tokens added (applies now: neither the base nor the built-in table prices it)",
            ]
        );
        let table = PriceTable::new(&p.pricing);
        assert_eq!(table.price("gpt-4o-mini").map(|p| p.input), Some(0.15));
        assert_eq!(table.price("my-model").map(|p| p.output), Some(4.0));
        let p = in_force(
            "house-model: {input: 1.0, output: 2.0}",
            "house-model: {input: 0.5, output: 2.0}",
        );
        assert_eq!(
            p.changes,
            [
                "pricing house-model: $1 in / $2 out per million tokens → $0.5 in / $2 out per million tokens (ignored: a PR may not lower a price)"
            ]
        );
        assert_eq!(
            PriceTable::new(&p.pricing).price("house-model").map(|p| p.input),
            Some(1.0)
        );
    }

    #[test]
    fn a_suite_new_at_head_brings_its_own_policy() {
        let head = suite(&SUITE.replace("margin: 0.02", "margin: 0.5"));
        let p = policy_in_force(None, &head);
        assert!(p.changes.is_empty());
        assert_eq!(gate(&p, "pass_rate").margin, Margin::Absolute(0.5));
    }
}
