//! The few git operations the gate needs, through the `git` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{ObjectKind, join_in_repo, parent_dir};
use crate::error::Error;
use crate::format::short_sha;

/// A local git repository.
pub struct Repo {
    root: PathBuf,
}

/// A path changed between two commits.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: String,
    /// For renames and copies: where the file came from.
    pub old_path: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    TypeChanged,
}

impl Repo {
    /// Opens the repository containing `dir`, at its top level.
    pub fn open(dir: &Path) -> Result<Repo, Error> {
        let out = git_command()
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--show-toplevel"])
            .output()
            .map_err(|e| {
                Error::run_with_hint(
                    format!("cannot run git: {e}"),
                    "install git and make sure it is on PATH",
                )
            })?;
        if !out.status.success() {
            return Err(Error::from(
                crate::error::Diagnostic::new(format!(
                    "{} is not inside a git repository",
                    dir.canonicalize().unwrap_or_else(|_| dir.to_owned()).display()
                ))
                .hint("run promptgate from your prompt repository, or pass --repo DIR"),
            ));
        }
        let top = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(Repo {
            root: PathBuf::from(top),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The commit a ref names (`main`, `origin/main`, a SHA, `HEAD~1`).
    pub fn resolve(&self, reference: &str) -> Result<String, Error> {
        let out = self.git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")]);
        match out {
            Ok(sha) if !sha.trim().is_empty() => Ok(sha.trim().to_owned()),
            _ => Err(Error::from(
                crate::error::Diagnostic::new(format!("unknown git ref `{reference}`"))
                    .hint("fetch it first (`git fetch origin <branch>`), or check the spelling; shallow CI checkouts need `fetch-depth: 0`"),
            )),
        }
    }

    /// The best common ancestor of two commits: where a PR's diff starts.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<String, Error> {
        match self.git(&["merge-base", a, b]) {
            Ok(sha) if !sha.trim().is_empty() => Ok(sha.trim().to_owned()),
            _ => Err(Error::run_with_hint(
                format!("commits {} and {} share no history", short_sha(a), short_sha(b)),
                "in a shallow clone, fetch more history (`git fetch --unshallow`)",
            )),
        }
    }

    /// Paths changed from `from` to `to`, with renames detected, as a PR's diff shows them.
    pub fn changes(&self, from: &str, to: &str) -> anyhow::Result<Vec<Change>> {
        let raw = self.git(&["diff", "--name-status", "-z", "-M", from, to])?;
        parse_name_status(&raw)
    }

    /// Whether the commit is present locally (a shallow CI checkout may lack the PR's base).
    pub fn has_commit(&self, sha: &str) -> bool {
        self.git(&["cat-file", "-e", &format!("{sha}^{{commit}}")]).is_ok()
    }

    /// Fetches commits from `origin` (`git fetch --no-tags origin SHA…`). A shallow clone is
    /// deepened as well, since the merge base needs the history between base and head.
    pub fn fetch_commits(&self, shas: &[&str]) -> Result<(), Error> {
        let shallow = self
            .git(&["rev-parse", "--is-shallow-repository"])
            .is_ok_and(|s| s.trim() == "true");
        let mut args = vec!["fetch", "--no-tags", "--quiet"];
        if shallow {
            args.push("--unshallow");
        }
        args.push("origin");
        args.extend_from_slice(shas);
        self.git(&args).map(drop).map_err(|e| {
            Error::run_with_hint(
                format!("cannot fetch the pull request's commits: {e:#}"),
                "check out with `fetch-depth: 0` (actions/checkout) so base and head are present",
            )
        })
    }

    /// The commit checked out (`HEAD`).
    pub fn head_sha(&self) -> Result<String, Error> {
        self.resolve("HEAD")
    }

    /// Paths changed from `from` to the working tree: tracked edits (staged or not) with
    /// renames, and untracked files git does not ignore, as added.
    pub fn changes_to_worktree(&self, from: &str) -> anyhow::Result<Vec<Change>> {
        let mut changes = self.tracked_changes_to_worktree(from)?;
        changes.extend(self.untracked()?.into_iter().map(|path| Change {
            kind: ChangeKind::Added,
            path,
            old_path: None,
        }));
        Ok(changes)
    }

    /// Tracked paths changed from `from` to the working tree (staged or not), with renames.
    pub fn tracked_changes_to_worktree(&self, from: &str) -> anyhow::Result<Vec<Change>> {
        let raw = self.git(&["diff", "--name-status", "-z", "-M", from])?;
        parse_name_status(&raw)
    }

    /// What the working tree holds that the checked-out commit does not: tracked edits and
    /// untracked, non-ignored files.
    pub fn uncommitted(&self) -> anyhow::Result<Vec<Change>> {
        self.changes_to_worktree("HEAD")
    }

    fn untracked(&self) -> anyhow::Result<Vec<String>> {
        let raw = self.git(&["ls-files", "--others", "--exclude-standard", "-z"])?;
        Ok(raw.split('\0').filter(|p| !p.is_empty()).map(str::to_owned).collect())
    }

    /// Checks out `sha` into a temporary folder (a detached `git worktree`), removed with the
    /// returned value, also when the run stops on an error. The repository's hooks do not run.
    pub fn worktree(&self, sha: &str) -> anyhow::Result<super::Worktree> {
        let scratch = super::ScratchDir::create("worktree")?;
        let dir = scratch.path().join("tree");
        let dir_text = dir.to_string_lossy().into_owned();
        self.git(&[
            "-c",
            "core.hooksPath=/dev/null",
            "worktree",
            "add",
            "--detach",
            "--quiet",
            &dir_text,
            sha,
        ])
        .with_context(|| format!("checking out {} into a temporary worktree", short_sha(sha)))?;
        Ok(super::Worktree::new(self.root.clone(), dir, scratch))
    }

    /// Removes a worktree made by [`Repo::worktree`]; git forgets it even when its folder is
    /// already gone.
    pub(super) fn remove_worktree(root: &Path, dir: &Path) {
        let dir_text = dir.to_string_lossy().into_owned();
        let repo = Repo { root: root.to_owned() };
        if repo.git(&["worktree", "remove", "--force", &dir_text]).is_err() {
            let _ = std::fs::remove_dir_all(dir);
            let _ = repo.git(&["worktree", "prune"]);
        }
    }

    /// Starts a repository in `dir` on `branch`, for the demo's throwaway repository.
    pub fn init(dir: &Path, branch: &str) -> anyhow::Result<Repo> {
        let repo = Repo { root: dir.to_owned() };
        repo.scripted(&["init", "-q", "-b", branch])?;
        Ok(repo)
    }

    /// Commits everything in the working tree with a fixed identity and no user configuration
    /// (hooks, signing), so it works on any machine.
    pub fn commit_all(&self, message: &str) -> anyhow::Result<()> {
        self.scripted(&["add", "-A"])?;
        self.scripted(&["commit", "-q", "-m", message])
    }

    /// Creates `branch` at the current commit and checks it out.
    pub fn switch_new(&self, branch: &str) -> anyhow::Result<()> {
        self.scripted(&["checkout", "-q", "-b", branch])
    }

    /// Git with a fixed identity and without the user's or the system's configuration.
    fn scripted(&self, args: &[&str]) -> anyhow::Result<()> {
        let out = git_command()
            .arg("-C")
            .arg(&self.root)
            .args([
                "-c",
                "user.name=promptgate",
                "-c",
                "user.email=promptgate@promptgate.invalid",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .context("running git (it must be on PATH)")?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = git_command()
            .arg("-C")
            .arg(&self.root)
            .args(args)
            .output()
            .context("running git")?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// An entry of a commit's tree, links followed.
pub(super) struct TreeEntry {
    pub kind: ObjectKind,
    /// The git object id of the blob or tree.
    pub id: String,
}

/// Links followed before giving up (a cycle, or a chain no one means).
const MAX_LINKS: usize = 40;

/// What `path` names at commit `sha`, following symbolic links whose targets stay inside the
/// repository (as the working tree would); `None` when nothing is there.
pub(super) fn resolve(repo: &Path, sha: &str, path: &str) -> anyhow::Result<Option<TreeEntry>> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match ls_tree(repo, sha, &current)? {
            Some(raw) if raw.mode == LINK_MODE => current = follow(repo, path, &current, &raw.id, "")?,
            Some(raw) => return Ok(Some(raw.entry())),
            None => {
                // A folder on the way may be a link: find the first one and continue from its
                // target (`prompts/shared -> ../common` makes `prompts/shared/x.md` readable).
                let parts: Vec<&str> = current.split('/').collect();
                let mut next = None;
                for i in 1..parts.len() {
                    let prefix = parts[..i].join("/");
                    match ls_tree(repo, sha, &prefix)? {
                        Some(raw) if raw.mode == LINK_MODE => {
                            next = Some(follow(repo, path, &prefix, &raw.id, &parts[i..].join("/"))?);
                            break;
                        }
                        Some(raw) if raw.kind == "tree" => continue,
                        _ => return Ok(None),
                    }
                }
                match next {
                    Some(n) => current = n,
                    None => return Ok(None),
                }
            }
        }
    }
    bail!("{path}: more than {MAX_LINKS} symbolic links to follow (a cycle?)")
}

/// The path a link at `link` (blob `id`) points to, with `rest` below it; an error naming
/// `asked` when it leaves the repository.
fn follow(repo: &Path, asked: &str, link: &str, id: &str, rest: &str) -> anyhow::Result<String> {
    let target = String::from_utf8(blob(repo, id)?).map_err(|_| super::link_leaves(asked))?;
    let joined = join_in_repo(parent_dir(link), &target).map_err(|_| super::link_leaves(asked))?;
    Ok(if rest.is_empty() {
        joined
    } else if joined.is_empty() {
        rest.to_owned()
    } else {
        format!("{joined}/{rest}")
    })
}

/// The mode git records for a symbolic link.
const LINK_MODE: &str = "120000";

struct RawEntry {
    mode: String,
    kind: String,
    id: String,
}

impl RawEntry {
    fn entry(self) -> TreeEntry {
        TreeEntry {
            kind: if self.kind == "tree" {
                ObjectKind::Folder
            } else {
                ObjectKind::File
            },
            id: self.id,
        }
    }
}

/// `git ls-tree SHA -- path`: the entry itself (a folder is not listed into), or `None`.
fn ls_tree(repo: &Path, sha: &str, path: &str) -> anyhow::Result<Option<RawEntry>> {
    if path.is_empty() {
        let out = git_output(repo, &["rev-parse", "--verify", "--quiet", &format!("{sha}^{{tree}}")])?;
        let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        return Ok((out.status.success() && !id.is_empty()).then(|| RawEntry {
            mode: "040000".to_owned(),
            kind: "tree".to_owned(),
            id,
        }));
    }
    // Literal pathspecs: a file named `*.md` is that file, not a glob.
    let out = git_output(repo, &["--literal-pathspecs", "ls-tree", "-z", sha, "--", path])?;
    if !out.status.success() {
        bail!(
            "git ls-tree {} -- {path} failed: {}",
            short_sha(sha),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let listing = String::from_utf8_lossy(&out.stdout);
    for record in listing.split('\0').filter(|r| !r.is_empty()) {
        let Some((meta, name)) = record.split_once('\t') else {
            continue;
        };
        if name != path {
            continue;
        }
        let mut fields = meta.split(' ');
        let (Some(mode), Some(kind), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        // A submodule ("commit") has no content in this repository.
        if kind == "commit" {
            return Ok(None);
        }
        return Ok(Some(RawEntry {
            mode: mode.to_owned(),
            kind: kind.to_owned(),
            id: id.to_owned(),
        }));
    }
    Ok(None)
}

/// The bytes of a blob.
pub(super) fn blob(repo: &Path, id: &str) -> anyhow::Result<Vec<u8>> {
    // A file of the suite is read whole into memory: refuse an absurd one before reading it.
    let size = git_output(repo, &["cat-file", "-s", id])?;
    let bytes: u64 = String::from_utf8_lossy(&size.stdout).trim().parse().unwrap_or(0);
    if bytes > super::MAX_FILE_BYTES {
        bail!(
            "the file is {} MiB, larger than the {} MiB promptgate reads",
            bytes >> 20,
            super::MAX_FILE_BYTES >> 20
        );
    }
    let out = git_output(repo, &["cat-file", "blob", id])?;
    if !out.status.success() {
        bail!(
            "git cat-file blob {id} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn git_output(repo: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    git_command()
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .context("running git")
}

/// `git`, without the GitHub token or the Actions runtime's credentials in its environment.
fn git_command() -> Command {
    let mut command = Command::new("git");
    for name in crate::secrets::SCRUBBED {
        command.env_remove(name);
    }
    command
}

/// Parses `git diff --name-status -z` output: `STATUS\0path\0` or `Rnnn\0old\0new\0`.
fn parse_name_status(raw: &str) -> anyhow::Result<Vec<Change>> {
    let mut fields = raw.split('\0').filter(|f| !f.is_empty());
    let mut changes = Vec::new();
    while let Some(status) = fields.next() {
        let mut next = || fields.next().map(str::to_owned).context("truncated git diff output");
        let change = match status.chars().next() {
            Some('A') => Change {
                kind: ChangeKind::Added,
                path: next()?,
                old_path: None,
            },
            Some('M') => Change {
                kind: ChangeKind::Modified,
                path: next()?,
                old_path: None,
            },
            Some('D') => Change {
                kind: ChangeKind::Deleted,
                path: next()?,
                old_path: None,
            },
            Some('T') => Change {
                kind: ChangeKind::TypeChanged,
                path: next()?,
                old_path: None,
            },
            Some(c @ ('R' | 'C')) => {
                let old = next()?;
                let new = next()?;
                Change {
                    kind: if c == 'R' {
                        ChangeKind::Renamed
                    } else {
                        ChangeKind::Copied
                    },
                    path: new,
                    old_path: Some(old),
                }
            }
            _ => bail!("unexpected git diff status `{status}`"),
        };
        changes.push(change);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_status_with_renames() {
        let raw = "M\0prompts/a.md\0R087\0old/b.md\0new/b.md\0A\0c.jsonl\0D\0d.yaml\0";
        let changes = parse_name_status(raw).unwrap();
        assert_eq!(changes.len(), 4);
        assert_eq!(changes[1].kind, ChangeKind::Renamed);
        assert_eq!(changes[1].path, "new/b.md");
        assert_eq!(changes[1].old_path.as_deref(), Some("old/b.md"));
        assert_eq!(changes[3].kind, ChangeKind::Deleted);
    }

    #[test]
    fn truncated_output_is_an_error() {
        assert!(parse_name_status("R100\0only-old\0").is_err());
    }
}
