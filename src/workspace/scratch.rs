//! Temporary folders: a scratch folder removed on drop, and a git worktree of another commit
//! (the baseline's `exec` pipeline runs from one) removed with it.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// A fresh folder under the system's temporary directory, removed (with its content) on drop.
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// `purpose` names the folder, so a leftover one (after a kill) says whose it was.
    pub fn create(purpose: &str) -> anyhow::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("promptgate-{purpose}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A commit checked out in a temporary folder (see [`super::Repo::worktree`]). Dropping it
/// removes the checkout and git's record of it.
pub struct Worktree {
    repo: PathBuf,
    dir: PathBuf,
    // Dropped after the worktree is removed: the folder that held it.
    _scratch: ScratchDir,
}

impl Worktree {
    pub(super) fn new(repo: PathBuf, dir: PathBuf, scratch: ScratchDir) -> Worktree {
        Worktree {
            repo,
            dir,
            _scratch: scratch,
        }
    }

    /// The checkout's root.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Worktree {
    fn drop(&mut self) {
        super::Repo::remove_worktree(&self.repo, &self.dir);
    }
}

impl std::fmt::Debug for Worktree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worktree").field("dir", &self.dir).finish()
    }
}
