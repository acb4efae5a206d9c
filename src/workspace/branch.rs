//! One file on a branch of the local repository, read and committed without a checkout: the
//! ledger's home when no GitHub API is at hand (`promptgate ledger` outside Actions). The work
//! tree, the index and `HEAD` are never touched; the branch moves by compare-and-swap, so two
//! writers cannot lose each other's commit.

use std::io::Write as _;
use std::process::Stdio;

use anyhow::{Context, bail};

use super::Repo;
use super::git::git_command;

/// A commit made on a branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub commit: String,
    /// The branch did not exist and was created (as a commit with no parent).
    pub created: bool,
}

impl Repo {
    /// The text of `path` at the top of `branch`; `None` when the branch or the file is not there.
    pub fn read_on_branch(&self, branch: &str, path: &str) -> anyhow::Result<Option<String>> {
        let Some(tip) = self.branch_tip(branch)? else {
            return Ok(None);
        };
        let Some(id) = self.entry_of(&tip, path)? else {
            return Ok(None);
        };
        let bytes = self.git_bytes(&["cat-file", "blob", &id], None)?;
        String::from_utf8(bytes)
            .map(Some)
            .with_context(|| format!("{branch}:{path} is not UTF-8 text"))
    }

    /// Commits `text` as `path` at the top of `branch` (created when missing, its other files
    /// kept), with `message`. When the branch moved while this ran, nothing is written and the
    /// error says to run again.
    pub fn commit_on_branch(&self, branch: &str, path: &str, text: &str, message: &str) -> anyhow::Result<Committed> {
        if path.is_empty() || path.contains('/') || path.contains('\0') {
            bail!("`{path}` is not a file name at the top of a tree");
        }
        let tip = self.branch_tip(branch)?;
        let blob = self.git_bytes(&["hash-object", "-w", "--stdin"], Some(text.as_bytes()))?;
        let blob = String::from_utf8_lossy(&blob).trim().to_owned();
        // The tip's top-level entries, `path` replaced (or added).
        let mut listing = Vec::new();
        if let Some(tip) = &tip {
            let entries = self.git_bytes(&["ls-tree", "-z", tip], None)?;
            for entry in entries.split(|b| *b == 0).filter(|e| !e.is_empty()) {
                let name = entry.split(|b| *b == b'\t').nth(1).unwrap_or_default();
                if name != path.as_bytes() {
                    listing.extend_from_slice(entry);
                    listing.push(0);
                }
            }
        }
        listing.extend_from_slice(format!("100644 blob {blob}\t{path}").as_bytes());
        listing.push(0);
        let tree = self.git_bytes(&["mktree", "-z"], Some(&listing))?;
        let tree = String::from_utf8_lossy(&tree).trim().to_owned();
        let mut args = vec!["commit-tree", tree.as_str(), "-m", message];
        if let Some(tip) = &tip {
            args.extend(["-p", tip.as_str()]);
        }
        let commit = self.git_bytes(&args, None)?;
        let commit = String::from_utf8_lossy(&commit).trim().to_owned();
        let reference = format!("refs/heads/{branch}");
        // Compare-and-swap: the branch must still be where it was read (or still absent).
        self.git_bytes(
            &[
                "update-ref",
                "-m",
                message,
                &reference,
                &commit,
                tip.as_deref().unwrap_or(""),
            ],
            None,
        )
        .with_context(|| format!("`{branch}` moved while the ledger was written: run again"))?;
        Ok(Committed {
            commit,
            created: tip.is_none(),
        })
    }

    /// The commit at the top of `branch`, if there is one.
    fn branch_tip(&self, branch: &str) -> anyhow::Result<Option<String>> {
        if branch.is_empty() || branch.starts_with('-') {
            bail!("`{branch}` is not a branch name");
        }
        let reference = format!("refs/heads/{branch}");
        Ok(self
            .git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()))
    }

    /// The blob id of `path` at the top of `commit`'s tree.
    fn entry_of(&self, commit: &str, path: &str) -> anyhow::Result<Option<String>> {
        let listing = self.git_bytes(&["ls-tree", "-z", commit, "--", path], None)?;
        let entry = listing.split(|b| *b == 0).find(|e| !e.is_empty());
        Ok(entry.and_then(|e| {
            let text = String::from_utf8_lossy(e);
            let (meta, _) = text.split_once('\t')?;
            let mut fields = meta.split(' ');
            (fields.nth(1) == Some("blob")).then(|| fields.next().map(str::to_owned))?
        }))
    }

    /// Git's output as bytes, `input` on its standard input. A commit takes the user's identity
    /// when git knows one, else promptgate's; hooks and signing are not run for it.
    fn git_bytes(&self, args: &[&str], input: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
        let mut command = git_command();
        command.arg("-C").arg(self.root());
        if args.first() == Some(&"commit-tree") {
            command.args(["-c", "commit.gpgsign=false"]);
            if !git_command()
                .arg("-C")
                .arg(self.root())
                .args(["var", "GIT_COMMITTER_IDENT"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                command.args([
                    "-c",
                    "user.name=promptgate",
                    "-c",
                    "user.email=promptgate@promptgate.invalid",
                ]);
            }
        }
        let mut child = command
            .args(args)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running git (it must be on PATH)")?;
        if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
            stdin.write_all(input).context("writing to git")?;
        }
        let out = child.wait_with_output().context("running git")?;
        if !out.status.success() {
            bail!(
                "git {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
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
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn a_file_is_committed_on_a_branch_without_touching_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path(), "main").unwrap();
        std::fs::write(dir.path().join("promptgate.yaml"), "version: 1\n").unwrap();
        repo.commit_all("suite").unwrap();
        let head = git(dir.path(), &["rev-parse", "HEAD"]);
        assert_eq!(repo.read_on_branch("promptgate-ledger", "ledger.jsonl").unwrap(), None);

        let first = repo
            .commit_on_branch("promptgate-ledger", "ledger.jsonl", "{\"a\":1}\n", "one")
            .unwrap();
        assert!(first.created);
        let second = repo
            .commit_on_branch("promptgate-ledger", "ledger.jsonl", "{\"a\":1}\n{\"b\":2}\n", "two")
            .unwrap();
        assert!(!second.created);
        assert_eq!(
            repo.read_on_branch("promptgate-ledger", "ledger.jsonl")
                .unwrap()
                .as_deref(),
            Some("{\"a\":1}\n{\"b\":2}\n")
        );
        // Git sees the same: two commits, the second the first's child, one file.
        assert_eq!(
            git(dir.path(), &["rev-parse", "promptgate-ledger^"]).trim(),
            first.commit
        );
        assert_eq!(
            git(dir.path(), &["ls-tree", "--name-only", "promptgate-ledger"]),
            "ledger.jsonl\n"
        );
        assert_eq!(
            git(dir.path(), &["log", "-1", "--format=%s", "promptgate-ledger"]),
            "two\n"
        );
        // The checkout is where it was, clean, on main.
        assert_eq!(git(dir.path(), &["rev-parse", "HEAD"]), head);
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
        assert_eq!(git(dir.path(), &["branch", "--show-current"]), "main\n");
        // A branch with other files keeps them.
        git(dir.path(), &["branch", "notes", "main"]);
        repo.commit_on_branch("notes", "ledger.jsonl", "x\n", "ledger").unwrap();
        assert_eq!(
            git(dir.path(), &["ls-tree", "--name-only", "notes"]),
            "ledger.jsonl\npromptgate.yaml\n"
        );
        assert!(repo.commit_on_branch("notes", "a/b", "x", "m").is_err());
    }
}
