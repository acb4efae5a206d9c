//! The repository: files at a git ref, the working tree, and the paths a change touched.
//!
//! Everything reads through [`FileSource`], so the suite loader works the same on a commit, on
//! the working tree, and on an in-memory tree in tests. Git is driven through its command line
//! (one `git cat-file --batch` per tree read, `git diff`), which is on every CI runner and needs no C library; nothing
//! outside this module runs git.
//!
//! Symbolic links are decided here, once, for every tree: a link is followed when its target
//! stays inside the repository (a committed link reads as the file it points to, as on disk),
//! and reading through a link that leaves it is an error naming the path.

mod branch;
mod git;
mod paths;
mod scratch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::format::short_sha;
use sha2::{Digest, Sha256};

pub use branch::Committed;
pub use git::{Change, ChangeKind, Repo, folders_inside, generated, in_folders};
pub use paths::{PathEscape, join_in_repo, parent_dir};
pub use scratch::{ScratchDir, Worktree};

/// The largest file any tree reads: beyond it a read is an error, not an allocation. The suite
/// holds its own, smaller limits per kind of file (`suite::MAX_PROMPT_BYTES`, …).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Read-only access to the files of one tree, by repository-relative path with `/` separators.
pub trait FileSource: Send + Sync {
    /// The file's text, or `None` when the tree has no such file.
    fn read(&self, path: &str) -> anyhow::Result<Option<String>>;

    /// What `path` names in this tree, links followed: a file or a folder with a fingerprint of
    /// its content, or `None` when nothing is there. A file's fingerprint is the SHA-256 of its
    /// bytes in every tree, so a file unchanged between a commit and the working tree keeps it.
    fn object(&self, path: &str) -> anyhow::Result<Option<Object>>;

    /// The symbolic links a read of `path` follows (the link itself, or a folder on its way)
    /// and the path it ends at; empty when it follows none. A change to any of them changes
    /// what `path` reads, so each is a dependency of whatever reads `path`.
    fn links_through(&self, _path: &str) -> Vec<String> {
        Vec::new()
    }

    /// How this tree is named in messages: a short SHA, "working tree", …
    fn label(&self) -> String;

    /// A fingerprint of the whole tree, in the scheme of a commit's root tree where it can be
    /// (a clean working tree has its commit's); `None` when it cannot be known cheaply.
    fn whole(&self) -> Option<String> {
        None
    }
}

/// A file or folder of a tree, identified by its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub kind: ObjectKind,
    /// Equal fingerprints mean equal content (`sha256:…` for files; folders carry their
    /// tree's scheme, so a folder at a commit and on disk never compare equal by accident).
    pub fingerprint: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    File,
    Folder,
}

/// The message every tree gives for a link whose target is outside the repository, or for a
/// path written to climb out of it (`../suite.yaml`), which is no link.
fn link_leaves(path: &str) -> anyhow::Error {
    let climbs = Path::new(path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir | std::path::Component::RootDir));
    match climbs {
        true => anyhow::anyhow!("{path} is outside the repository"),
        false => anyhow::anyhow!("{path} is a link that leaves the repository"),
    }
}

fn file_fingerprint(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The largest file a [`GitTree`] keeps after reading it: at least the largest prompt or
/// partial (`suite::MAX_PROMPT_BYTES`, asserted there), which every case's render reads again.
/// A dataset of 100,000 cases is several megabytes, read once.
pub const REMEMBERED_MAX: usize = 1 << 20;

/// The files of one commit.
pub struct GitTree {
    repo: PathBuf,
    sha: String,
    // Templates and partials are read once per render, so remember what was read (up to
    // `REMEMBERED_MAX` bytes a file: a large dataset is read once, and would be held for the run).
    cache: Mutex<HashMap<String, Option<String>>>,
    // One `git cat-file --batch` for every read, started at the first one (a tree never read
    // starts no process) and again after a failure.
    objects: Mutex<Option<git::Objects>>,
}

impl GitTree {
    pub fn new(repo: &Path, sha: &str) -> Self {
        GitTree {
            repo: repo.to_owned(),
            sha: sha.to_owned(),
            cache: Mutex::new(HashMap::new()),
            objects: Mutex::new(None),
        }
    }

    /// Runs `read` on this tree's object reader, starting it when needed; after an error the
    /// process is dropped, so a later read starts a fresh one.
    fn with_objects<T>(&self, read: impl FnOnce(&mut git::Objects) -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut slot = self
            .objects
            .lock()
            .map_err(|_| anyhow::anyhow!("git object reader poisoned"))?;
        let objects = match slot.as_mut() {
            Some(objects) => objects,
            None => slot.insert(git::Objects::start(&self.repo)?),
        };
        let result = read(objects);
        if result.is_err() {
            *slot = None;
        }
        result
    }
}

impl FileSource for GitTree {
    fn read(&self, path: &str) -> anyhow::Result<Option<String>> {
        if let Some(hit) = self
            .cache
            .lock()
            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
            .get(path)
        {
            return Ok(hit.clone());
        }
        let bytes = self.with_objects(|objects| match git::resolve(objects, &self.sha, path)? {
            Some(entry) if entry.kind == ObjectKind::File => git::blob(objects, &entry.id).map(Some),
            _ => Ok(None),
        })?;
        let text = match bytes {
            Some(bytes) => Some(
                String::from_utf8(bytes)
                    .map_err(|_| anyhow::anyhow!("{path} at {} is not UTF-8 text", short_sha(&self.sha)))?,
            ),
            None => None,
        };
        if text.as_ref().is_none_or(|t| t.len() <= REMEMBERED_MAX) {
            self.cache
                .lock()
                .map_err(|_| anyhow::anyhow!("cache poisoned"))?
                .insert(path.to_owned(), text.clone());
        }
        Ok(text)
    }

    fn object(&self, path: &str) -> anyhow::Result<Option<Object>> {
        self.with_objects(|objects| {
            Ok(match git::resolve(objects, &self.sha, path)? {
                Some(entry) if entry.kind == ObjectKind::File => Some(Object {
                    kind: ObjectKind::File,
                    fingerprint: file_fingerprint(&git::blob(objects, &entry.id)?),
                }),
                Some(entry) => Some(Object {
                    kind: ObjectKind::Folder,
                    fingerprint: format!("git-tree:{}", entry.id),
                }),
                None => None,
            })
        })
    }

    fn links_through(&self, path: &str) -> Vec<String> {
        let mut trail = Vec::new();
        // A read that fails says so when it is read; here it only has no links to name.
        let _ = self.with_objects(|objects| git::resolve_along(objects, &self.sha, path, &mut trail));
        trail
    }

    fn label(&self) -> String {
        short_sha(&self.sha).to_owned()
    }

    fn whole(&self) -> Option<String> {
        self.object("").ok().flatten().map(|root| root.fingerprint)
    }
}

/// The files on disk under a root (the working tree), for `validate` and `--head WORKTREE`.
pub struct DirTree {
    root: PathBuf,
    /// Folders left out of [`FileSource::whole`]: the run's own output folder.
    excluded: Vec<PathBuf>,
    /// [`FileSource::whole`], asked of git once.
    whole: std::sync::OnceLock<Option<String>>,
}

impl DirTree {
    pub fn new(root: &Path) -> Self {
        DirTree::excluding(root, &[])
    }

    /// The tree at `root` whose fingerprint leaves out `excluded` (folders a run writes in,
    /// such as its output folder: each run would otherwise be another tree).
    pub fn excluding(root: &Path, excluded: &[&Path]) -> Self {
        DirTree {
            root: root.to_owned(),
            excluded: excluded.iter().map(|p| p.to_path_buf()).collect(),
            whole: std::sync::OnceLock::new(),
        }
    }

    /// The real path of `path`, or `None` when nothing is there; an error for a link that
    /// leaves the root.
    fn locate(&self, path: &str) -> anyhow::Result<Option<PathBuf>> {
        let full = self.root.join(path);
        // A symlink may point outside the repository even when the path does not.
        match (full.canonicalize(), self.root.canonicalize()) {
            (Ok(real), Ok(root)) if !real.starts_with(&root) => Err(link_leaves(path)),
            (Ok(real), _) => Ok(Some(real)),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling link is judged by where it points, as in a commit's tree: outside
                // the repository is an error, inside it is a missing file.
                if let Ok(target) = std::fs::read_link(&full) {
                    let target = target.to_string_lossy();
                    if join_in_repo(parent_dir(path), &target).is_err() {
                        return Err(link_leaves(path));
                    }
                }
                Ok(None)
            }
            (Err(e), _) => Err(anyhow::Error::new(e).context(format!("reading {path}"))),
        }
    }
}

impl FileSource for DirTree {
    fn links_through(&self, path: &str) -> Vec<String> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut trail: Vec<String> = (1..=parts.len())
            .map(|i| parts[..i].join("/"))
            .filter(|prefix| {
                std::fs::symlink_metadata(self.root.join(prefix)).is_ok_and(|m| m.file_type().is_symlink())
            })
            .collect();
        if !trail.is_empty()
            && let (Ok(Some(real)), Ok(root)) = (self.locate(path), self.root.canonicalize())
            && let Ok(inside) = real.strip_prefix(&root)
        {
            trail.push(inside.to_string_lossy().replace(std::path::MAIN_SEPARATOR, "/"));
        }
        trail
    }

    fn object(&self, path: &str) -> anyhow::Result<Option<Object>> {
        let Some(real) = self.locate(path)? else {
            return Ok(None);
        };
        if !real.is_dir() {
            let bytes = std::fs::read(&real).map_err(|e| anyhow::Error::new(e).context(format!("reading {path}")))?;
            return Ok(Some(Object {
                kind: ObjectKind::File,
                fingerprint: file_fingerprint(&bytes),
            }));
        }
        // Every file below, by relative path and content; `.git` is not content.
        let mut files = Vec::new();
        let mut pending = vec![real.clone()];
        while let Some(dir) = pending.pop() {
            for entry in
                std::fs::read_dir(&dir).map_err(|e| anyhow::Error::new(e).context(format!("reading {path}")))?
            {
                let entry_path = entry?.path();
                if entry_path.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                if entry_path.is_dir() {
                    pending.push(entry_path);
                } else if let Ok(bytes) = std::fs::read(&entry_path) {
                    let relative = entry_path.strip_prefix(&real).unwrap_or(&entry_path);
                    files.push((relative.to_string_lossy().replace('\\', "/"), file_fingerprint(&bytes)));
                }
            }
        }
        files.sort();
        let mut h = Sha256::new();
        for (name, fingerprint) in &files {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(fingerprint.as_bytes());
            h.update([0]);
        }
        Ok(Some(Object {
            kind: ObjectKind::Folder,
            fingerprint: format!("dir:{}", hex::encode(h.finalize())),
        }))
    }

    fn read(&self, path: &str) -> anyhow::Result<Option<String>> {
        let Some(full) = self.locate(path)? else {
            return Ok(None);
        };
        if full.is_dir() {
            return Ok(None);
        }
        if let Ok(meta) = std::fs::metadata(&full)
            && meta.len() > MAX_FILE_BYTES
        {
            anyhow::bail!(
                "{path} is {} MiB, larger than the {} MiB promptgate reads",
                meta.len() >> 20,
                MAX_FILE_BYTES >> 20
            );
        }
        match std::fs::read(&full) {
            Ok(bytes) => Ok(Some(
                String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{path} is not UTF-8 text"))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::Error::new(e).context(format!("reading {path}"))),
        }
    }

    fn label(&self) -> String {
        "working tree".to_owned()
    }

    /// The tree of its files as they are on disk, untracked ones among them
    /// (`git::working_tree_id`).
    fn whole(&self) -> Option<String> {
        self.whole
            .get_or_init(|| git::working_tree_id(&self.root, &self.excluded))
            .clone()
    }
}

/// An in-memory tree, for tests and for the demo's fixture trees.
#[derive(Default)]
pub struct MemTree {
    files: BTreeMap<String, String>,
}

impl MemTree {
    pub fn new<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        MemTree {
            files: files.into_iter().map(|(p, t)| (p.to_owned(), t.to_owned())).collect(),
        }
    }
}

impl FileSource for MemTree {
    fn read(&self, path: &str) -> anyhow::Result<Option<String>> {
        Ok(self.files.get(path).cloned())
    }

    fn object(&self, path: &str) -> anyhow::Result<Option<Object>> {
        if let Some(text) = self.files.get(path) {
            return Ok(Some(Object {
                kind: ObjectKind::File,
                fingerprint: file_fingerprint(text.as_bytes()),
            }));
        }
        let prefix = format!("{path}/");
        let mut h = Sha256::new();
        let mut any = false;
        for (name, text) in self
            .files
            .range(prefix.clone()..)
            .take_while(|(n, _)| n.starts_with(&prefix))
        {
            any = true;
            h.update(name.as_bytes());
            h.update([0]);
            h.update(file_fingerprint(text.as_bytes()).as_bytes());
            h.update([0]);
        }
        Ok(any.then(|| Object {
            kind: ObjectKind::Folder,
            fingerprint: format!("mem:{}", hex::encode(h.finalize())),
        }))
    }

    fn label(&self) -> String {
        "memory".to_owned()
    }

    fn whole(&self) -> Option<String> {
        let mut h = Sha256::new();
        for (name, text) in &self.files {
            h.update(name.as_bytes());
            h.update([0]);
            h.update(file_fingerprint(text.as_bytes()).as_bytes());
            h.update([0]);
        }
        Some(format!("mem:{}", hex::encode(h.finalize())))
    }
}

/// Git in `dir` for a test, its output; the test fails when git does.
#[cfg(test)]
pub(crate) fn test_git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A repository with one commit holding `files` and the symbolic links `links` (path,
    /// target), and the trees of that commit and of the working tree.
    fn repo_with(files: &[(&str, &str)], links: &[(&str, &str)]) -> (tempfile::TempDir, GitTree, DirTree) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        std::fs::create_dir_all(&root).unwrap();
        let repo = Repo::init(&root, "main").unwrap();
        for (path, text) in files {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, text).unwrap();
        }
        for (path, target) in links {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, full).unwrap();
        }
        repo.commit_all("tree").unwrap();
        let sha = repo.head_sha().unwrap();
        let git = GitTree::new(repo.root(), &sha);
        let disk = DirTree::new(repo.root());
        (dir, git, disk)
    }

    /// What `path` reads as: its text, `None`, or the error message.
    fn read(tree: &dyn FileSource, path: &str) -> Result<Option<String>, String> {
        tree.read(path).map_err(|e| e.to_string())
    }

    #[test]
    fn a_link_reads_the_same_in_a_commit_and_on_disk() {
        let (_dir, git, disk) = repo_with(
            &[
                ("docs/refunds.md", "Refunds within 30 days."),
                ("common/tone.md", "Be calm."),
                ("outside.txt", "x"),
            ],
            &[
                ("prompts/partials/refunds.md", "../../docs/refunds.md"),
                ("prompts/shared", "../common"),
                ("prompts/chain.md", "partials/refunds.md"),
                ("prompts/dangling.md", "missing.md"),
                ("prompts/escape.md", "../../outside-of-the-repo.txt"),
                ("prompts/absolute.md", "/etc/hostname"),
                ("prompts/loop.md", "loop.md"),
            ],
        );
        for tree in [&git as &dyn FileSource, &disk] {
            let label = tree.label();
            assert_eq!(
                read(tree, "prompts/partials/refunds.md"),
                Ok(Some("Refunds within 30 days.".to_owned())),
                "{label}"
            );
            assert_eq!(
                read(tree, "prompts/chain.md"),
                Ok(Some("Refunds within 30 days.".to_owned())),
                "{label}"
            );
            assert_eq!(
                read(tree, "prompts/shared/tone.md"),
                Ok(Some("Be calm.".to_owned())),
                "{label}"
            );
            assert_eq!(read(tree, "prompts/dangling.md"), Ok(None), "{label}");
            for leaving in ["prompts/escape.md", "prompts/absolute.md"] {
                assert_eq!(
                    read(tree, leaving),
                    Err(format!("{leaving} is a link that leaves the repository")),
                    "{label}"
                );
            }
            assert!(read(tree, "prompts/loop.md").is_err(), "{label}");
            assert_eq!(
                tree.object("prompts/shared").unwrap().map(|o| o.kind),
                Some(ObjectKind::Folder),
                "{label}"
            );
        }
        // A file's fingerprint is its content's, whichever tree it is read from.
        assert_eq!(
            git.object("docs/refunds.md").unwrap(),
            disk.object("prompts/partials/refunds.md").unwrap()
        );
    }

    /// Small files are read from git once; a file above [`REMEMBERED_MAX`] (a large dataset) is
    /// not kept after it is read, and reads the same every time.
    #[test]
    fn a_commit_keeps_the_small_files_it_read_and_not_the_large_ones() {
        let large = "{\"id\": \"c\", \"vars\": {\"input\": \"x\"}}\n".repeat(REMEMBERED_MAX / 20);
        assert!(large.len() > REMEMBERED_MAX);
        let (_dir, git, _disk) = repo_with(&[("prompt.txt", "hello"), ("cases.jsonl", &large)], &[]);
        for _ in 0..2 {
            assert_eq!(read(&git, "prompt.txt"), Ok(Some("hello".to_owned())));
            assert_eq!(read(&git, "cases.jsonl"), Ok(Some(large.clone())));
        }
        let kept = git.cache.lock().unwrap();
        assert_eq!(kept.get("prompt.txt"), Some(&Some("hello".to_owned())));
        assert!(!kept.contains_key("cases.jsonl"));
    }

    #[test]
    fn a_worktree_of_another_commit_is_removed_when_dropped() {
        let (dir, _git, _disk) = repo_with(&[("a.txt", "first")], &[]);
        let root = dir.path().join("repo");
        let repo = Repo::open(&root).unwrap();
        let first = repo.head_sha().unwrap();
        std::fs::write(root.join("a.txt"), "second").unwrap();
        repo.commit_all("second").unwrap();
        let worktree = repo.worktree(&first).unwrap();
        let checkout = worktree.path().to_owned();
        assert_eq!(std::fs::read_to_string(checkout.join("a.txt")).unwrap(), "first");
        drop(worktree);
        assert!(!checkout.exists());
        let listed = std::process::Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["worktree", "list", "--porcelain"])
            .output()
            .unwrap();
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert_eq!(listed.matches("worktree ").count(), 1, "{listed}");
    }

    #[test]
    fn uncommitted_edits_and_untracked_files_are_listed() {
        let (dir, _git, _disk) = repo_with(&[("a.txt", "one"), (".gitignore", "ignored/\n")], &[]);
        let root = dir.path().join("repo");
        let repo = Repo::open(&root).unwrap();
        std::fs::write(root.join("a.txt"), "two").unwrap();
        std::fs::create_dir_all(root.join("ignored")).unwrap();
        std::fs::write(root.join("ignored/x"), "x").unwrap();
        std::fs::write(root.join("new.txt"), "new").unwrap();
        let listed: Vec<(ChangeKind, String)> = repo
            .uncommitted()
            .unwrap()
            .into_iter()
            .map(|c| (c.kind, c.path))
            .collect();
        assert_eq!(
            listed,
            [
                (ChangeKind::Modified, "a.txt".to_owned()),
                (ChangeKind::Added, "new.txt".to_owned())
            ]
        );
        assert_eq!(repo.tracked_changes_to_worktree("HEAD").unwrap().len(), 1);
    }

    /// A commit's files are found by walking its tree objects, whose binary ids are 20 bytes
    /// (SHA-1) or 32 (SHA-256): both read the same, only an exact path matches, and a folder's
    /// fingerprint is the tree id git itself gives (`git rev-parse SHA:path`).
    #[test]
    fn commits_read_the_same_in_sha1_and_sha256_repositories() {
        for format in ["sha1", "sha256"] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let git = |args: &[&str]| test_git(root, args).trim().to_owned();
            git(&["init", "-q", "-b", "main", &format!("--object-format={format}")]);
            for (path, text) in [
                ("promptgate.yaml", "version: 1\n"),
                ("prompts/a.md", "Be calm."),
                ("prompts/ab.md", "Be brief."),
                ("deep/x/y.txt", "deep"),
                ("empty.txt", ""),
            ] {
                std::fs::create_dir_all(root.join(path).parent().unwrap()).unwrap();
                std::fs::write(root.join(path), text).unwrap();
            }
            let repo = Repo::open(root).unwrap();
            repo.commit_all("tree").unwrap();
            let sha = repo.head_sha().unwrap();
            let tree = GitTree::new(repo.root(), &sha);
            for (path, expected) in [
                ("prompts/a.md", Some("Be calm.")),
                ("prompts/ab.md", Some("Be brief.")),
                ("deep/x/y.txt", Some("deep")),
                ("empty.txt", Some("")),
                ("promptgate.yaml", Some("version: 1\n")),
                // A folder is not a file; a prefix, a path below a file, and an untidy path
                // name nothing.
                ("prompts", None),
                ("prompts/a", None),
                ("prompts/a.md/x", None),
                ("prompts//a.md", None),
                ("prompts/", None),
                ("missing/a.md", None),
            ] {
                assert_eq!(read(&tree, path), Ok(expected.map(str::to_owned)), "{format}: {path}");
            }
            assert_eq!(
                tree.object("deep/x").unwrap(),
                Some(Object {
                    kind: ObjectKind::Folder,
                    fingerprint: format!("git-tree:{}", git(&["rev-parse", &format!("{sha}:deep/x")])),
                }),
                "{format}"
            );
            assert_eq!(
                tree.object("prompts/a.md").unwrap().map(|o| o.fingerprint),
                Some(file_fingerprint(b"Be calm.")),
                "{format}"
            );
            assert_eq!(tree.object("deep/y.txt").unwrap(), None, "{format}");
            // A commit that does not exist is an error, and the tree still reads afterwards.
            let missing = GitTree::new(repo.root(), &"0".repeat(sha.len()));
            assert!(read(&missing, "prompts/a.md").is_err(), "{format}");
            assert_eq!(read(&tree, "deep/x/y.txt"), Ok(Some("deep".to_owned())), "{format}");
        }
    }

    /// The architecture's rule: git is driven from `workspace` alone.
    #[test]
    fn only_workspace_runs_git() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut pending = vec![src.clone()];
        let mut offenders = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    if path != src.join("workspace") {
                        pending.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (i, line) in text.lines().enumerate() {
                        if line.contains(concat!("Command::new(", "\"git\")")) {
                            offenders.push(format!("{}:{}: {}", path.display(), i + 1, line.trim()));
                        }
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "git run outside src/workspace:\n{}",
            offenders.join("\n")
        );
    }
}
