//! The few git operations the gate needs, through the `git` command line.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::error::Error;

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
                format!("commits {} and {} share no history", short(a), short(b)),
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

/// `git show SHA:path`, or `None` when the path does not exist (or is not a file) at that
/// commit.
pub(super) fn show(repo: &Path, sha: &str, path: &str) -> anyhow::Result<Option<String>> {
    let spec = format!("{sha}:{path}");
    // `cat-file -t` distinguishes "no such path" (failure) and folders ("tree") from files.
    let kind = cat_file(repo, &["-t", &spec])?;
    if !kind.status.success() || String::from_utf8_lossy(&kind.stdout).trim() != "blob" {
        return Ok(None);
    }
    // A file of the suite is read whole into memory: refuse an absurd one before reading it.
    let size = cat_file(repo, &["-s", &spec])?;
    let bytes: u64 = String::from_utf8_lossy(&size.stdout).trim().parse().unwrap_or(0);
    if bytes > super::MAX_FILE_BYTES {
        bail!(
            "{path} at {} is {} MiB, larger than the {} MiB promptgate reads",
            short(sha),
            bytes >> 20,
            super::MAX_FILE_BYTES >> 20
        );
    }
    let out = cat_file(repo, &["blob", &spec])?;
    if !out.status.success() {
        bail!(
            "git cat-file {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout)
        .map(Some)
        .map_err(|_| anyhow::anyhow!("{path} at {} is not UTF-8 text", short(sha)))
}

fn cat_file(repo: &Path, args: &[&str]) -> anyhow::Result<std::process::Output> {
    git_command()
        .arg("-C")
        .arg(repo)
        .arg("cat-file")
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

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
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
