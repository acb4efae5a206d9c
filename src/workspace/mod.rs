//! The repository: files at a git ref, the working tree, and the paths a change touched.
//!
//! Everything reads through [`FileSource`], so the suite loader works the same on a commit, on
//! the working tree, and on an in-memory tree in tests. Git is driven through its command line
//! (`git show`, `git diff`), which is on every CI runner and needs no C library.

mod git;
mod paths;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use git::{Change, ChangeKind, Repo};
pub use paths::{PathEscape, join_in_repo, parent_dir};

/// The largest file any tree reads: beyond it a read is an error, not an allocation. The suite
/// holds its own, smaller limits per kind of file (`suite::MAX_PROMPT_BYTES`, …).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Read-only access to the files of one tree, by repository-relative path with `/` separators.
pub trait FileSource: Send + Sync {
    /// The file's text, or `None` when the tree has no such file.
    fn read(&self, path: &str) -> anyhow::Result<Option<String>>;

    /// How this tree is named in messages: a short SHA, "working tree", …
    fn label(&self) -> String;
}

/// The files of one commit.
pub struct GitTree {
    repo: PathBuf,
    sha: String,
    // `git show` is a process per file; templates and partials are read once per render, so
    // remember what was read.
    cache: Mutex<HashMap<String, Option<String>>>,
}

impl GitTree {
    pub fn new(repo: &Path, sha: &str) -> Self {
        GitTree {
            repo: repo.to_owned(),
            sha: sha.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
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
        let text = git::show(&self.repo, &self.sha, path)?;
        self.cache
            .lock()
            .map_err(|_| anyhow::anyhow!("cache poisoned"))?
            .insert(path.to_owned(), text.clone());
        Ok(text)
    }

    fn label(&self) -> String {
        self.sha.chars().take(12).collect()
    }
}

/// The files on disk under a root (the working tree), for `validate`.
pub struct DirTree {
    root: PathBuf,
}

impl DirTree {
    pub fn new(root: &Path) -> Self {
        DirTree { root: root.to_owned() }
    }
}

impl FileSource for DirTree {
    fn read(&self, path: &str) -> anyhow::Result<Option<String>> {
        let full = self.root.join(path);
        // A symlink may point outside the repository even when the path does not.
        match (full.canonicalize(), self.root.canonicalize()) {
            (Ok(real), Ok(root)) if !real.starts_with(&root) => {
                anyhow::bail!("{path} is a link that leaves the repository")
            }
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            _ => {}
        }
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

    fn label(&self) -> String {
        "memory".to_owned()
    }
}
