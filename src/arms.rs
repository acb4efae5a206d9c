//! What each arm calls: provider endpoints built from that arm's own suite.
//!
//! The baseline is everything that produces an output at the merge base — the provider's type,
//! address, timeout, retries, deployment, API version, the `exec` command and the scripts it
//! names, chosen through the experiment's `provider` or `defaults.provider` — and the candidate
//! the same at head. A provider configured identically at both refs is one endpoint both arms
//! share; one that differs gets a second endpoint for the baseline under an internal key, and
//! [`Endpoints::configured_name`] turns that key back into the name the suite uses.
//!
//! An `exec` pipeline runs from its arm's tree: the checkout when it holds exactly that arm's
//! files, else a temporary git worktree of the arm's commit, removed with the [`Endpoints`].
//!
//! The response cache tells answers apart by [`cache_identity`]: everything besides the request
//! that changes the output (type, address, deployment, API version, the `exec` command and the
//! content of every file or folder of the arm's tree its arguments name, and the arm's whole
//! tree, for what the program reads without naming it), never a key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::compare::Side;
use crate::error::Error;
use crate::format::short_sha;
use crate::plan::{Arm, Fallbacks, Job};
use crate::providers;
use crate::results::Name;
use crate::runner::Endpoint;
use crate::suite::{self, ProviderKind, ProviderSpec, Suite};
use crate::workspace::{FileSource, Repo, Worktree};

/// One arm's settings: its suite and the files it was loaded from.
pub struct ArmSource<'a> {
    pub suite: &'a Suite,
    pub side: &'a Side,
}

/// The endpoints of a run, by the key jobs name them with.
pub struct Endpoints {
    pub map: BTreeMap<String, Endpoint>,
    /// Keys that are not a configured name (a baseline's own endpoint) → the configured name.
    renamed: BTreeMap<String, String>,
    /// The folder each commit's commands run from.
    workdirs: BTreeMap<String, PathBuf>,
    /// Kept alive while the endpoints run commands in them; removed on drop.
    worktrees: Vec<Worktree>,
}

impl Endpoints {
    /// The provider name the suite configures for an endpoint key: what calls report.
    pub fn configured_name<'a>(&'a self, key: &'a str) -> &'a str {
        self.renamed.get(key).map_or(key, String::as_str)
    }

    /// The folder holding `side`'s files, for other commands of that tree (the `exec`
    /// scorers run in the head's): the one its `exec` providers use, else the checkout when it
    /// holds exactly those files, else a worktree of its commit, removed with the endpoints.
    pub fn tree_dir(&mut self, repo: &Repo, side: &Side) -> Result<PathBuf, Error> {
        let mut builder = Builder {
            repo,
            workdirs: std::mem::take(&mut self.workdirs),
            worktrees: std::mem::take(&mut self.worktrees),
        };
        let dir = builder.workdir(side);
        self.workdirs = builder.workdirs;
        self.worktrees = builder.worktrees;
        dir
    }

    /// The keys, each with the name it reports as.
    pub fn names(&self) -> BTreeMap<String, String> {
        self.map
            .keys()
            .map(|k| (k.clone(), self.configured_name(k).to_owned()))
            .collect()
    }
}

/// Builds every endpoint the jobs call, each from its arm's suite, and points the baseline's
/// jobs at the baseline's endpoints. `baseline` is `None` when no job has a baseline arm.
pub fn endpoints(
    repo: &Repo,
    jobs: &mut [Job],
    baseline: Option<ArmSource<'_>>,
    candidate: ArmSource<'_>,
) -> Result<Endpoints, Error> {
    let mut builder = Builder {
        repo,
        workdirs: BTreeMap::new(),
        worktrees: Vec::new(),
    };
    let mut defs: BTreeMap<String, Def> = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.arm == Arm::Candidate) {
        for name in std::iter::once(&job.provider).chain(job.fallbacks.iter()) {
            if !defs.contains_key(&**name)
                && let Some(def) = builder.def(&candidate, name)?
            {
                defs.insert(name.to_string(), def);
            }
        }
    }
    // Judges and the embedder score both arms with head's, under their configured names.
    let defaults = &candidate.suite.defaults;
    let scoring = [
        defaults.judge.as_ref().map(|j| &j.provider),
        defaults.embedder.as_ref().map(|e| &e.provider),
    ];
    for name in scoring.into_iter().flatten().filter(|_| !jobs.is_empty()) {
        if !defs.contains_key(name)
            && let Some(def) = builder.def(&candidate, name)?
        {
            defs.insert(name.clone(), def);
        }
    }
    let mut renamed: BTreeMap<String, String> = BTreeMap::new();
    if let Some(baseline) = &baseline {
        // Name at base → the key its endpoint goes by.
        let mut keys: BTreeMap<String, Name> = BTreeMap::new();
        // The renamed fallbacks of the last list renamed: the jobs of an arm share one list, so
        // they share one renamed list too.
        let mut renamed_fallbacks: Option<[Fallbacks; 2]> = None;
        for job in jobs.iter_mut().filter(|j| j.arm == Arm::Baseline) {
            // Names already keyed (every job's but the first few) are not spelled out again.
            for name in std::iter::once(&job.provider).chain(job.fallbacks.iter()) {
                if keys.contains_key(&**name) {
                    continue;
                }
                let name = name.to_string();
                let Some(def) = builder.def(baseline, &name)? else {
                    keys.insert(name.clone(), Name::from(name));
                    continue;
                };
                let shared = match defs.get(&name) {
                    Some(existing) => *existing == def,
                    None => builder.def(&candidate, &name)?.is_some_and(|head| head == def),
                };
                let key = if shared {
                    name.clone()
                } else {
                    let mut key = format!("{name}@base");
                    while candidate.suite.providers.contains_key(&key) || defs.contains_key(&key) {
                        key.push_str("@base");
                    }
                    renamed.insert(key.clone(), name.clone());
                    key
                };
                keys.insert(name, Name::from(&key));
                defs.entry(key).or_insert(def);
            }
            job.provider = key_of(&keys, &job.provider);
            if job.fallbacks.is_empty() {
                continue;
            }
            let fallbacks = match &renamed_fallbacks {
                Some([from, to]) if from.same(&job.fallbacks) => to.clone(),
                _ => {
                    let to: Fallbacks = job.fallbacks.iter().map(|n| key_of(&keys, n)).collect();
                    renamed_fallbacks = Some([job.fallbacks.clone(), to.clone()]);
                    to
                }
            };
            job.fallbacks = fallbacks;
        }
    }
    let mut map = BTreeMap::new();
    for (key, def) in defs {
        map.insert(key, def.endpoint()?);
    }
    Ok(Endpoints {
        map,
        renamed,
        workdirs: builder.workdirs,
        worktrees: builder.worktrees,
    })
}

/// The endpoint of `spec` as the working tree configures it (an `exec` command runs in
/// `workdir`): what `judge-check` calls, outside any comparison of two refs.
pub fn endpoint_at_checkout(
    spec: &ProviderSpec,
    tree: &dyn FileSource,
    workdir: Option<PathBuf>,
) -> Result<Endpoint, Error> {
    Def {
        spec: spec.clone(),
        identity: cache_identity(spec, tree),
        workdir,
    }
    .endpoint()
}

/// What an endpoint is made of; two arms share an endpoint when these are equal.
#[derive(Clone, Debug, PartialEq)]
struct Def {
    spec: ProviderSpec,
    identity: String,
    /// Where an `exec` command runs.
    workdir: Option<PathBuf>,
}

impl Def {
    fn endpoint(&self) -> Result<Endpoint, Error> {
        let spec = &self.spec;
        Ok(Endpoint {
            provider: providers::build_in(spec, self.workdir.as_deref())?,
            concurrency: spec.concurrency,
            timeout: Duration::from_millis(spec.timeout_ms),
            max_retries: spec.max_retries,
            requests_per_minute: spec.requests_per_minute,
            tokens_per_minute: spec.tokens_per_minute,
            cache_identity: self.identity.clone(),
        })
    }
}

struct Builder<'r> {
    repo: &'r Repo,
    /// The folder each commit's `exec` commands run from.
    workdirs: BTreeMap<String, PathBuf>,
    worktrees: Vec<Worktree>,
}

impl Builder<'_> {
    fn def(&mut self, arm: &ArmSource<'_>, name: &str) -> Result<Option<Def>, Error> {
        let Some(spec) = arm.suite.providers.get(name) else {
            return Ok(None);
        };
        let workdir = match spec.kind {
            ProviderKind::Exec => Some(self.workdir(arm.side)?),
            _ => None,
        };
        Ok(Some(Def {
            spec: spec.clone(),
            identity: cache_identity(spec, &*arm.side.tree),
            workdir,
        }))
    }

    /// The checkout when it holds the side's files, else a worktree of its commit (one per
    /// commit, made when first needed).
    fn workdir(&mut self, side: &Side) -> Result<PathBuf, Error> {
        if side.at_checkout {
            return Ok(self.repo.root().to_owned());
        }
        if let Some(dir) = self.workdirs.get(&side.sha) {
            return Ok(dir.clone());
        }
        let worktree = self.repo.worktree(&side.sha).map_err(|e| {
            Error::run_with_hint(
                format!("cannot check out {} for its exec pipeline: {e:#}", short_sha(&side.sha)),
                "an exec provider's baseline runs from a git worktree of the merge base; check that `git worktree add` works here",
            )
        })?;
        let dir = worktree.path().to_owned();
        self.worktrees.push(worktree);
        self.workdirs.insert(side.sha.clone(), dir.clone());
        Ok(dir)
    }
}

/// What identifies a provider's answers in the cache besides the request (see the module
/// documentation). An `exec` command's files are fingerprinted in `tree`, the arm's own, so an
/// edited pipeline script is a new identity even when the command line is the same; and so is
/// the whole tree, as a program reads more than its command names (the modules it imports, its
/// data): an arm whose pipeline changed anywhere is never answered with the other arm's output.
pub fn cache_identity(spec: &ProviderSpec, tree: &dyn FileSource) -> String {
    // The first three fields keep the form earlier versions wrote, so a warm cache of an HTTP
    // provider stays warm.
    let mut identity = format!(
        "{}|{}|{}",
        spec.kind.as_str(),
        spec.base_url.as_deref().unwrap_or(""),
        spec.deployment.as_deref().unwrap_or("")
    );
    if let Some(version) = &spec.api_version {
        identity.push_str(&format!("|api_version={version}"));
    }
    // The variable the key is read from (its name, never its value): another variable is
    // another account, whose key may not work; answered from a warm cache filled with the
    // other's, a candidate whose key was refused passed (the audit's). A rotated key in the
    // same variable keeps the cache.
    if let Some(variable) = &spec.api_key_env {
        identity.push_str(&format!("|key_env={variable}"));
    }
    if spec.kind == ProviderKind::Exec {
        // The values of the variables the config passes to the program (a model name, an
        // index version, a feature flag change its answers), as a digest: a secret among them
        // is never written into the cache's keys.
        if !spec.env.is_empty() {
            use sha2::{Digest, Sha256};
            let mut digest = Sha256::new();
            for name in &spec.env {
                digest.update(name.as_bytes());
                digest.update([0]);
                match std::env::var_os(name) {
                    Some(value) => {
                        digest.update([1]);
                        digest.update(value.as_encoded_bytes());
                    }
                    None => digest.update([2]),
                }
                digest.update([0]);
            }
            identity.push_str(&format!("|env={}", hex::encode(digest.finalize())));
        }
        identity.push_str(&format!(
            "|command={}",
            serde_json::to_string(&spec.command).unwrap_or_default()
        ));
        for (path, object) in suite::command_paths(tree, spec) {
            identity.push_str(&format!("|{path}={}", object.fingerprint));
        }
        match tree.whole() {
            Some(whole) => identity.push_str(&format!("|tree={whole}")),
            // A tree outside git cannot be fingerprinted whole cheaply: its pipeline's answers
            // are this run's own, never reused by another.
            None => identity.push_str(&format!("|tree=uncommitted:{}", *RUN_NONCE)),
        }
    }
    identity
}

/// What tells this process's uncommitted trees apart from any other's in the cache.
static RUN_NONCE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}-{}", std::process::id(), now.as_nanos())
});

/// The key a provider named `name` at base goes by (`keys`: name → key).
fn key_of(keys: &BTreeMap<String, Name>, name: &Name) -> Name {
    keys.get(&**name).map_or_else(|| name.clone(), Name::clone)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use std::path::Path;

    use super::*;
    use crate::providers::Request;
    use crate::workspace::MemTree;

    fn spec(kind: ProviderKind) -> ProviderSpec {
        ProviderSpec::new("p", kind)
    }

    /// Files under `dir`, however deep.
    fn walk_count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| if e.path().is_dir() { walk_count(&e.path()) } else { 1 })
                .sum()
        })
    }

    #[test]
    fn the_cache_identity_covers_what_changes_the_output_and_no_key() {
        let tree = MemTree::new([("scripts/answer.sh", "echo 30 days"), ("lib/a.py", "x = 1")]);
        let edited = MemTree::new([("scripts/answer.sh", "echo no idea"), ("lib/a.py", "x = 1")]);
        let mut http = spec(ProviderKind::OpenaiCompatible);
        http.base_url = Some("http://127.0.0.1:1/v1".to_owned());
        http.api_key_env = Some("SECRET_KEY_VARIABLE".to_owned());
        let identity = cache_identity(&http, &tree);
        assert_eq!(
            identity,
            "openai-compatible|http://127.0.0.1:1/v1||key_env=SECRET_KEY_VARIABLE"
        );
        let mut moved = http.clone();
        moved.base_url = Some("http://127.0.0.1:2/v1".to_owned());
        assert_ne!(cache_identity(&moved, &tree), identity);
        let mut versioned = http.clone();
        versioned.api_version = Some("2024-10-21".to_owned());
        assert_ne!(cache_identity(&versioned, &tree), identity);
        // A timeout does not change what the model answers (a cached answer slower than the
        // endpoint waits is not given: the runner sends the call); the key's variable, another
        // account's key, may: its name is in, never its value.
        let mut slower = http.clone();
        slower.timeout_ms = 1;
        assert_eq!(cache_identity(&slower, &tree), identity);
        let mut other_key = http.clone();
        other_key.api_key_env = Some("OTHER".to_owned());
        assert_ne!(cache_identity(&other_key, &tree), identity);
        assert!(!identity.contains("sk-") && identity.ends_with("|key_env=SECRET_KEY_VARIABLE"));

        let mut exec = spec(ProviderKind::Exec);
        exec.command = Some(vec![
            "/bin/sh".to_owned(),
            "scripts/answer.sh".to_owned(),
            "lib".to_owned(),
        ]);
        let at_base = cache_identity(&exec, &tree);
        assert!(
            at_base.starts_with("exec|||command=[\"/bin/sh\",\"scripts/answer.sh\",\"lib\"]|scripts/answer.sh=sha256:"),
            "{at_base}"
        );
        assert!(at_base.contains("|lib=mem:"), "{at_base}");
        // The same command over an edited script is another pipeline, and so is the same script
        // over an edited module it imports without naming it.
        assert_ne!(cache_identity(&exec, &edited), at_base);
        let imported = MemTree::new([("scripts/answer.sh", "echo 30 days"), ("lib/b.py", "x = 2")]);
        exec.command = Some(vec!["/bin/sh".to_owned(), "scripts/answer.sh".to_owned()]);
        assert_ne!(cache_identity(&exec, &imported), cache_identity(&exec, &tree));
        // A folder outside git is not fingerprinted whole: its answers are this run's only.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("scripts")).unwrap();
        std::fs::write(dir.path().join("scripts/answer.sh"), "echo 30 days").unwrap();
        let working = crate::workspace::DirTree::new(dir.path());
        let uncommitted = cache_identity(&exec, &working);
        assert!(
            uncommitted.contains(&format!("|tree=uncommitted:{}-", std::process::id())),
            "{uncommitted}"
        );
        assert_eq!(cache_identity(&exec, &working), uncommitted, "the same within a run");
        // A working tree is fingerprinted by its files as they are on disk: clean, as its
        // commit's tree (another process, a rerun, finds the same); an edited file makes
        // another, and so does a new module git does not track yet (a pipeline may import
        // it); the run's output folder, the files git ignores and what tools write as the
        // pipeline runs (bytecode, swap files) do not.
        let git = |args: &[&str]| crate::workspace::test_git(dir.path(), args);
        git(&["init", "-q"]);
        std::fs::write(dir.path().join(".gitignore"), "*.tmp\n").unwrap();
        git(&["add", "-A"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]);
        let commit = git(&["rev-parse", "HEAD"]);
        let at_commit = cache_identity(&exec, &crate::workspace::GitTree::new(dir.path(), commit.trim()));
        let out = dir.path().join("promptgate-out");
        let working = || crate::workspace::DirTree::excluding(dir.path(), &[out.as_path()]);
        let clean = cache_identity(&exec, &working());
        assert_eq!(clean, at_commit);
        std::fs::create_dir(&out).unwrap();
        std::fs::write(out.join("journal.jsonl"), "{}").unwrap();
        std::fs::write(dir.path().join("scripts/scratch.tmp"), "ignored").unwrap();
        std::fs::create_dir(dir.path().join("scripts/__pycache__")).unwrap();
        std::fs::write(
            dir.path().join("scripts/__pycache__/helper.cpython-312.pyc"),
            "compiled",
        )
        .unwrap();
        std::fs::write(dir.path().join("scripts/.answer.sh.swp"), "editor").unwrap();
        assert_eq!(
            cache_identity(&exec, &working()),
            clean,
            "the run's outputs, ignored files and what tools write are not part of the tree"
        );
        std::fs::write(dir.path().join("scripts/helper.py"), "ANSWER = 30").unwrap();
        let new_module = cache_identity(&exec, &working());
        assert_ne!(new_module, clean, "an untracked module is part of the tree");
        assert!(new_module.contains("+untracked:"), "{new_module}");
        std::fs::write(dir.path().join("scripts/helper.py"), "ANSWER = 31").unwrap();
        assert_ne!(cache_identity(&exec, &working()), new_module, "and so is its edit");
        std::fs::remove_file(dir.path().join("scripts/helper.py")).unwrap();
        assert_eq!(cache_identity(&exec, &working()), clean);
        // An untracked link counts by where it points, never by what it points at.
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("scripts/data")).unwrap();
        let linked = cache_identity(&exec, &working());
        assert_ne!(linked, clean);
        std::fs::write(outside.path(), "a large file elsewhere").unwrap();
        assert_eq!(cache_identity(&exec, &working()), linked);
        std::fs::remove_file(dir.path().join("scripts/data")).unwrap();
        std::fs::write(dir.path().join("scripts/answer.sh"), "echo 31 days").unwrap();
        let edited = cache_identity(&exec, &working());
        assert_ne!(edited, clean);
        assert_eq!(
            git(&["status", "--porcelain"]).trim(),
            "M scripts/answer.sh\n?? promptgate-out/\n?? scripts/.answer.sh.swp\n?? scripts/__pycache__/",
            "the repository's own index is untouched"
        );
        let objects = |dir: &std::path::Path| walk_count(&dir.join(".git/objects"));
        let before = objects(dir.path());
        std::fs::write(dir.path().join("scripts/new.py"), "X = 1").unwrap();
        let _ = cache_identity(&exec, &working());
        assert_eq!(
            objects(dir.path()),
            before,
            "untracked files are read, not written into git's objects"
        );
        let mut other_command = exec.clone();
        other_command.command = Some(vec!["/bin/sh".to_owned(), "scripts/other.sh".to_owned()]);
        assert_ne!(cache_identity(&other_command, &tree), at_base);
    }

    fn side(files: &[(&str, &str)]) -> Side {
        Side {
            tree: Arc::new(MemTree::new(files.iter().copied())),
            sha: "0".repeat(40),
            at_checkout: true,
        }
    }

    fn suite_with(providers: &str) -> Suite {
        let files = [
            (
                "promptgate.yaml".to_owned(),
                format!(
                    "version: 1\nproviders:\n{providers}defaults: {{provider: sim}}\nexperiments:\n  - {{name: e, variant: v.yaml, dataset: d.jsonl}}\n"
                ),
            ),
            ("v.yaml".to_owned(), "model: m\nprompt: p.md\n".to_owned()),
            ("p.md".to_owned(), "Hi".to_owned()),
            (
                "d.jsonl".to_owned(),
                "{\"id\": \"a\", \"vars\": {\"input\": \"x\"}}\n".to_owned(),
            ),
        ];
        let tree = MemTree::new(files.iter().map(|(p, t)| (p.as_str(), t.as_str())));
        crate::suite::load(Arc::new(tree), "promptgate.yaml").unwrap()
    }

    fn job(arm: Arm) -> Job {
        Job {
            experiment: 0,
            case: 0,
            arm,
            repeat: 0,
            provider: "sim".into(),
            fallbacks: [Name::from("spare")].into_iter().collect(),
            retime: false,
            request: Ok(Request::chat("m", Arc::from([]))),
        }
    }

    /// Builds the endpoints of one baseline and one candidate job, returning the keys each arm
    /// calls and the endpoints' identities by key.
    fn build(base: &Suite, head: &Suite) -> (Vec<String>, Vec<String>, BTreeMap<String, String>) {
        let repo = Repo::open(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (base_side, head_side) = (side(&[]), side(&[]));
        // Two baseline jobs holding one fallback list, as a plan's jobs of an arm do.
        let baseline = job(Arm::Baseline);
        let mut jobs = vec![baseline.clone(), baseline, job(Arm::Candidate)];
        let endpoints = endpoints(
            &repo,
            &mut jobs,
            Some(ArmSource {
                suite: base,
                side: &base_side,
            }),
            ArmSource {
                suite: head,
                side: &head_side,
            },
        )
        .unwrap();
        let keys = |j: &Job| {
            std::iter::once(&j.provider)
                .chain(j.fallbacks.iter())
                .map(|n| n.to_string())
                .collect()
        };
        let names = endpoints.names();
        // Renamed or not, the baseline's jobs still share one list.
        assert!(jobs[0].fallbacks.same(&jobs[1].fallbacks));
        (keys(&jobs[0]), keys(&jobs[2]), names)
    }

    #[test]
    fn each_arm_calls_its_own_ref_s_provider_and_identical_ones_are_shared() {
        let spare = "  spare: {type: mock}\n";
        let base = suite_with(&format!(
            "  sim: {{type: openai-compatible, base_url: \"http://127.0.0.1:1/v1\"}}\n{spare}"
        ));
        let same = suite_with(&format!(
            "  sim: {{type: openai-compatible, base_url: \"http://127.0.0.1:1/v1\"}}\n{spare}"
        ));
        let (baseline, candidate, names) = build(&base, &same);
        assert_eq!(baseline, ["sim", "spare"]);
        assert_eq!(candidate, ["sim", "spare"]);
        assert_eq!(names.len(), 2);

        let moved = suite_with(&format!(
            "  sim: {{type: openai-compatible, base_url: \"http://127.0.0.1:2/v1\"}}\n{spare}"
        ));
        let (baseline, candidate, names) = build(&base, &moved);
        assert_eq!(baseline, ["sim@base", "spare"]);
        assert_eq!(candidate, ["sim", "spare"]);
        // Calls through the baseline's own endpoint report the configured name.
        assert_eq!(names["sim@base"], "sim");
        assert_eq!(names["sim"], "sim");
        // A timeout is the arm's own too, though the cache may share answers across it.
        let slower = suite_with(&format!(
            "  sim: {{type: openai-compatible, base_url: \"http://127.0.0.1:1/v1\", timeout_ms: 5}}\n{spare}"
        ));
        assert_eq!(build(&base, &slower).0, ["sim@base", "spare"]);
    }
}
