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

/// Where a branch's next commit starts: the local branch, or the branch as it was fetched from
/// `origin` when the local one is behind it or missing (a fresh clone), else nowhere (the
/// first commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchTip {
    /// The local branch's commit: the compare-and-swap's expected value (absent: it must not
    /// exist yet).
    pub local: Option<String>,
    /// The commit the next one builds on and the file is read from.
    pub start: Option<String>,
    /// `origin`'s commit, when the local branch and the one fetched from `origin` each have
    /// commits the other lacks: a commit on the local one could not be pushed.
    pub diverged_from: Option<String>,
}

impl Repo {
    /// Where `branch` stands (see [`BranchTip`]).
    pub fn branch_tip(&self, branch: &str) -> anyhow::Result<BranchTip> {
        let valid = git_command()
            .arg("-C")
            .arg(self.root())
            .args(["check-ref-format", &format!("refs/heads/{branch}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !valid || branch.starts_with('-') {
            bail!("`{branch}` is not a valid branch name");
        }
        let local = self.commit_of(&format!("refs/heads/{branch}"));
        let origin = self.commit_of(&format!("refs/remotes/origin/{branch}"));
        let mut diverged_from = None;
        let start = match (&local, origin) {
            (Some(local), Some(origin)) if *local != origin => match self.common_ancestor(local, &origin)? {
                // Behind what was fetched from `origin`: build on that, a fast-forward of both.
                Some(base) if base == *local => Some(origin),
                // Ahead of it: the push is a fast-forward.
                Some(base) if base == origin => Some(local.clone()),
                // Each has commits the other lacks (or no common one).
                _ => {
                    diverged_from = Some(origin);
                    Some(local.clone())
                }
            },
            (Some(local), _) => Some(local.clone()),
            (None, origin) => origin,
        };
        Ok(BranchTip {
            local,
            start,
            diverged_from,
        })
    }

    /// The text of `path` at the top of `tip`'s commit; `None` when there is none, or no such file.
    pub fn read_at(&self, tip: &BranchTip, path: &str) -> anyhow::Result<Option<String>> {
        let Some(start) = &tip.start else { return Ok(None) };
        let Some(id) = self.entry_of(start, path)? else {
            return Ok(None);
        };
        let bytes = self.git_bytes(&["cat-file", "blob", &id], None)?;
        String::from_utf8(bytes)
            .map(Some)
            .with_context(|| format!("`{path}` is not UTF-8 text"))
    }

    /// The text of `path` at the top of `branch` (or of `origin`'s, when there is no local one).
    pub fn read_on_branch(&self, branch: &str, path: &str) -> anyhow::Result<Option<String>> {
        self.read_at(&self.branch_tip(branch)?, path)
    }

    /// Commits `text` as `path` on `branch`, on top of `tip` (as [`Repo::branch_tip`] gave it
    /// when the text was read; its other files kept), with `message`. When the branch moved
    /// since, nothing is written and the error says to run again. The branch checked out is
    /// refused: moving it would leave the work tree behind.
    pub fn commit_on_branch(
        &self,
        branch: &str,
        tip: &BranchTip,
        path: &str,
        text: &str,
        message: &str,
    ) -> anyhow::Result<Committed> {
        if path.is_empty() || path.contains('/') || path.contains('\0') {
            bail!("`{path}` is not a file name at the top of a tree");
        }
        let reference = format!("refs/heads/{branch}");
        let checked_out = self.git(&["worktree", "list", "--porcelain"]).is_ok_and(|list| {
            list.lines()
                .any(|l| l.strip_prefix("branch ") == Some(reference.as_str()))
        });
        if checked_out {
            bail!("`{branch}` is checked out in a work tree: the ledger needs a branch of its own");
        }
        let blob = self.git_bytes(&["hash-object", "-w", "--stdin"], Some(text.as_bytes()))?;
        let blob = String::from_utf8_lossy(&blob).trim().to_owned();
        // The start's top-level entries, `path` replaced (or added).
        let mut listing = Vec::new();
        if let Some(start) = &tip.start {
            let entries = self.git_bytes(&["ls-tree", "-z", start], None)?;
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
        if let Some(start) = &tip.start {
            args.extend(["-p", start.as_str()]);
        }
        let commit = self.git_bytes(&args, None)?;
        let commit = String::from_utf8_lossy(&commit).trim().to_owned();
        // Compare-and-swap: the branch must still be where it was read (or still absent).
        self.git_bytes(
            &[
                "update-ref",
                "-m",
                message,
                &reference,
                &commit,
                tip.local.as_deref().unwrap_or(""),
            ],
            None,
        )
        .with_context(|| format!("`{branch}` moved while the ledger was written: run again"))?;
        Ok(Committed {
            commit,
            created: tip.start.is_none(),
        })
    }

    /// The commit `reference` names, if it names one.
    /// The best common ancestor of two commits; `None` when they have none (exit 1), an error
    /// when git cannot tell (a missing object, a shallow clone's cut history).
    fn common_ancestor(&self, a: &str, b: &str) -> anyhow::Result<Option<String>> {
        let out = git_command()
            .arg("-C")
            .arg(self.root())
            .args(["merge-base", a, b])
            .output()
            .context("running git")?;
        match out.status.code() {
            Some(0) => Ok(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())),
            Some(1) if out.stderr.is_empty() => Ok(None),
            _ => bail!(
                "git merge-base {a} {b} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }
    }

    fn commit_of(&self, reference: &str) -> Option<String> {
        self.git(&["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
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

    use crate::workspace::test_git as git;

    #[test]
    fn a_file_is_committed_on_a_branch_without_touching_the_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::init(dir.path(), "main").unwrap();
        std::fs::write(dir.path().join("promptgate.yaml"), "version: 1\n").unwrap();
        repo.commit_all("suite").unwrap();
        let head = git(dir.path(), &["rev-parse", "HEAD"]);
        let ledger = "promptgate-ledger";
        assert_eq!(repo.read_on_branch(ledger, "ledger.jsonl").unwrap(), None);

        let tip = repo.branch_tip(ledger).unwrap();
        let first = repo
            .commit_on_branch(ledger, &tip, "ledger.jsonl", "{\"a\":1}\n", "one")
            .unwrap();
        assert!(first.created);
        let tip = repo.branch_tip(ledger).unwrap();
        let second = repo
            .commit_on_branch(ledger, &tip, "ledger.jsonl", "{\"a\":1}\n{\"b\":2}\n", "two")
            .unwrap();
        assert!(!second.created);
        assert_eq!(
            repo.read_on_branch(ledger, "ledger.jsonl").unwrap().as_deref(),
            Some("{\"a\":1}\n{\"b\":2}\n")
        );
        // Git sees the same: two commits, the second the first's child, one file.
        assert_eq!(
            git(dir.path(), &["rev-parse", "promptgate-ledger^"]).trim(),
            first.commit
        );
        assert_eq!(git(dir.path(), &["ls-tree", "--name-only", ledger]), "ledger.jsonl\n");
        assert_eq!(git(dir.path(), &["log", "-1", "--format=%s", ledger]), "two\n");
        // The checkout is where it was, clean, on main.
        assert_eq!(git(dir.path(), &["rev-parse", "HEAD"]), head);
        assert_eq!(git(dir.path(), &["status", "--porcelain"]), "");
        assert_eq!(git(dir.path(), &["branch", "--show-current"]), "main\n");

        // A writer that read before another committed: refused, the other's line kept.
        let stale = tip;
        let err = repo
            .commit_on_branch(ledger, &stale, "ledger.jsonl", "{\"a\":1}\n{\"c\":3}\n", "three")
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("moved while the ledger was written"),
            "{err:#}"
        );
        assert_eq!(git(dir.path(), &["rev-parse", ledger]).trim(), second.commit);

        // A branch with other files keeps them; the checked-out branch and bad names are refused.
        git(dir.path(), &["branch", "notes", "main"]);
        let tip = repo.branch_tip("notes").unwrap();
        repo.commit_on_branch("notes", &tip, "ledger.jsonl", "x\n", "ledger")
            .unwrap();
        assert_eq!(
            git(dir.path(), &["ls-tree", "--name-only", "notes"]),
            "ledger.jsonl\npromptgate.yaml\n"
        );
        let tip = repo.branch_tip("main").unwrap();
        assert!(repo.commit_on_branch("main", &tip, "ledger.jsonl", "x", "m").is_err());
        // Nor one checked out in a linked work tree.
        let linked = tempfile::tempdir().unwrap();
        let at = linked.path().join("w");
        git(
            dir.path(),
            &["worktree", "add", "-q", "-b", "elsewhere", at.to_str().unwrap()],
        );
        let tip = repo.branch_tip("elsewhere").unwrap();
        let err = repo
            .commit_on_branch("elsewhere", &tip, "ledger.jsonl", "x", "m")
            .unwrap_err();
        assert!(err.to_string().contains("checked out"), "{err:#}");
        assert!(repo.commit_on_branch("notes", &tip, "a/b", "x", "m").is_err());
        for bad in ["x~1", "a..b", "-x", "", "@{-1}", "a b"] {
            assert!(repo.branch_tip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fresh_clone_builds_on_origins_ledger() {
        let origin = tempfile::tempdir().unwrap();
        let repo = Repo::init(origin.path(), "main").unwrap();
        std::fs::write(origin.path().join("a.txt"), "a\n").unwrap();
        repo.commit_all("a").unwrap();
        let tip = repo.branch_tip("promptgate-ledger").unwrap();
        let shared = repo
            .commit_on_branch("promptgate-ledger", &tip, "ledger.jsonl", "1\n", "one")
            .unwrap();

        let clone = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("git")
            .args(["clone", "-q"])
            .arg(origin.path())
            .arg(clone.path())
            .output()
            .unwrap();
        assert!(out.status.success());
        let cloned = Repo::open(clone.path()).unwrap();
        let tip = cloned.branch_tip("promptgate-ledger").unwrap();
        assert_eq!(
            (tip.local.as_deref(), tip.start.as_deref()),
            (None, Some(shared.commit.as_str()))
        );
        assert_eq!(cloned.read_at(&tip, "ledger.jsonl").unwrap().as_deref(), Some("1\n"));
        let next = cloned
            .commit_on_branch("promptgate-ledger", &tip, "ledger.jsonl", "1\n2\n", "two")
            .unwrap();
        assert!(!next.created);
        // A fast-forward of origin's: `git push` takes it.
        assert_eq!(
            git(clone.path(), &["rev-parse", "promptgate-ledger^"]).trim(),
            shared.commit
        );

        // Origin moves on (another clone recorded) and is fetched: the local branch, behind it,
        // builds on what was fetched, keeping every line.
        git(clone.path(), &["push", "-q", "origin", "promptgate-ledger"]);
        let tip = repo.branch_tip("promptgate-ledger").unwrap();
        let third = repo
            .commit_on_branch("promptgate-ledger", &tip, "ledger.jsonl", "1\n2\n3\n", "three")
            .unwrap();
        git(clone.path(), &["fetch", "-q", "origin"]);
        let tip = cloned.branch_tip("promptgate-ledger").unwrap();
        assert_eq!(tip.start.as_deref(), Some(third.commit.as_str()));
        assert_eq!(
            cloned.read_at(&tip, "ledger.jsonl").unwrap().as_deref(),
            Some("1\n2\n3\n")
        );
        let fourth = cloned
            .commit_on_branch("promptgate-ledger", &tip, "ledger.jsonl", "1\n2\n3\n4\n", "four")
            .unwrap();
        assert_eq!(
            git(clone.path(), &["rev-parse", "promptgate-ledger^"]).trim(),
            third.commit
        );
        assert_eq!(
            git(clone.path(), &["rev-parse", "promptgate-ledger"]).trim(),
            fourth.commit
        );
        // Ahead of origin (not pushed yet): builds on the local branch, not diverged.
        let tip = cloned.branch_tip("promptgate-ledger").unwrap();
        assert_eq!(
            (tip.start.as_deref(), tip.diverged_from.as_deref()),
            (Some(fourth.commit.as_str()), None)
        );

        // Both move on apart (the clone did not push; origin took another line) and origin is
        // fetched: the tip says they diverged, so the ledger can refuse to write.
        let tip = repo.branch_tip("promptgate-ledger").unwrap();
        let fifth = repo
            .commit_on_branch("promptgate-ledger", &tip, "ledger.jsonl", "1\n2\n3\n5\n", "five")
            .unwrap();
        git(clone.path(), &["fetch", "-q", "origin"]);
        let tip = cloned.branch_tip("promptgate-ledger").unwrap();
        assert_eq!(tip.diverged_from.as_deref(), Some(fifth.commit.as_str()));
        assert_eq!(tip.start.as_deref(), Some(fourth.commit.as_str()));
    }
}
