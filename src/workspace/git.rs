//! The few git operations the gate needs, through the `git` command line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use super::{ObjectKind, join_in_repo, parent_dir};
use crate::error::Error;
use crate::format::short_sha;

/// A local git repository.
#[derive(Clone, Debug)]
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

    /// Whether commit `ancestor` is `descendant` or in its history (both commit names, never
    /// options: the caller passes hexadecimal names only).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        self.git(&["merge-base", "--is-ancestor", ancestor, descendant]).is_ok()
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
        self.with_untracked(self.tracked_changes_to_worktree(from)?)
    }

    /// `tracked` changes and the untracked files git does not ignore, as added.
    pub fn with_untracked(&self, mut tracked: Vec<Change>) -> anyhow::Result<Vec<Change>> {
        tracked.extend(self.untracked()?.into_iter().map(|path| Change {
            kind: ChangeKind::Added,
            path,
            old_path: None,
        }));
        Ok(tracked)
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

    pub(super) fn git(&self, args: &[&str]) -> anyhow::Result<String> {
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

/// Every object a tree reads, through one `git cat-file --batch` process: a suite's reads at a
/// commit (its files, the folders on their paths, the links it follows) cost one process
/// instead of three for each file, and each tree object is read once.
pub(super) struct Objects {
    child: Child,
    /// Closed on drop, which ends the process.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Tree objects already read, by id: every path walks down from the root.
    trees: HashMap<String, Vec<u8>>,
}

/// One object as `git cat-file --batch` answers it.
struct Answer {
    id: String,
    kind: String,
    content: Vec<u8>,
}

impl Objects {
    /// Starts `git cat-file --batch` in `repo`.
    pub(super) fn start(repo: &Path) -> anyhow::Result<Objects> {
        let mut child = git_command()
            .arg("-C")
            .arg(repo)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Only a fatal error is written there (not a repository), and the process then exits.
            .stderr(Stdio::piped())
            .spawn()
            .context("running git cat-file --batch")?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            bail!("git cat-file --batch started without its pipes");
        };
        Ok(Objects {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            trees: HashMap::new(),
        })
    }

    /// The object `name` names (an id, or `SHA^{tree}`), or `None` when there is none. Refuses
    /// one larger than [`super::MAX_FILE_BYTES`] without keeping it in memory.
    fn get(&mut self, name: &str) -> anyhow::Result<Option<Answer>> {
        // A name is one line of the protocol: ids and `^{tree}` never hold a line break.
        if name.contains(['\n', '\r']) {
            bail!("git object name {name:?} holds a line break");
        }
        let stdin = self.stdin.as_mut().context("git cat-file --batch is closed")?;
        let sent = stdin
            .write_all(format!("{name}\n").as_bytes())
            .and_then(|()| stdin.flush());
        if let Err(e) = sent {
            return Err(self.failed(&format!("writing to git cat-file --batch: {e}")));
        }
        let mut header = String::new();
        let read = self
            .stdout
            .read_line(&mut header)
            .map_err(|e| self.failed(&format!("reading from git cat-file --batch: {e}")))?;
        if read == 0 {
            return Err(self.failed("git cat-file --batch ended"));
        }
        let header = header.trim_end_matches('\n');
        // `<name> missing` (no such object), `<name> ambiguous` (a short id): nothing there.
        if header.ends_with(" missing") || header.ends_with(" ambiguous") {
            return Ok(None);
        }
        let mut fields = header.split(' ');
        let (Some(id), Some(kind), Some(size), None) = (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            bail!("git cat-file --batch answered {header:?} for {name}");
        };
        let size: u64 = size
            .parse()
            .with_context(|| format!("git cat-file --batch answered {header:?} for {name}"))?;
        if size > super::MAX_FILE_BYTES {
            // Skip the content (and its line feed) so the next answer is read from its start.
            let skipped = std::io::copy(&mut (&mut self.stdout).take(size + 1), &mut std::io::sink());
            if let Err(e) = skipped {
                return Err(self.failed(&format!("reading from git cat-file --batch: {e}")));
            }
            bail!(
                "the file is {} MiB, larger than the {} MiB promptgate reads",
                size >> 20,
                super::MAX_FILE_BYTES >> 20
            );
        }
        let len = usize::try_from(size).context("object size")?;
        let mut content = vec![0; len + 1];
        self.stdout
            .read_exact(&mut content)
            .map_err(|e| self.failed(&format!("reading from git cat-file --batch: {e}")))?;
        if content.pop() != Some(b'\n') {
            bail!("git cat-file --batch: {name} did not end where its size says");
        }
        Ok(Some(Answer {
            id: id.to_owned(),
            kind: kind.to_owned(),
            content,
        }))
    }

    /// The error for a process that stopped answering, with what git said on the way out.
    fn failed(&mut self, what: &str) -> anyhow::Error {
        drop(self.stdin.take());
        let mut said = String::new();
        if let Some(stderr) = self.child.stderr.as_mut() {
            let _ = stderr.read_to_string(&mut said);
        }
        let _ = self.child.wait();
        anyhow::anyhow!("{what}: {}", said.trim())
    }

    /// The entries of tree `id`, read once.
    fn tree(&mut self, id: &str) -> anyhow::Result<&[u8]> {
        if !self.trees.contains_key(id) {
            let answer = self.get(id)?.with_context(|| format!("git tree {id} is missing"))?;
            if answer.kind != "tree" {
                bail!("git object {id} is a {}, not a tree", answer.kind);
            }
            self.trees.insert(id.to_owned(), answer.content);
        }
        Ok(self.trees.get(id).map_or(&[], Vec::as_slice))
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        // End of input ends `git cat-file --batch`; wait so no zombie is left.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// What `path` names at commit `sha`, following symbolic links whose targets stay inside the
/// repository (as the working tree would); `None` when nothing is there.
pub(super) fn resolve(objects: &mut Objects, sha: &str, path: &str) -> anyhow::Result<Option<TreeEntry>> {
    resolve_along(objects, sha, path, &mut Vec::new())
}

/// [`resolve`], noting in `trail` each link it follows (a link to a file, or a folder on the
/// way) and, when it followed any, the path it ended at.
pub(super) fn resolve_along(
    objects: &mut Objects,
    sha: &str,
    path: &str,
    trail: &mut Vec<String>,
) -> anyhow::Result<Option<TreeEntry>> {
    let mut current = path.to_owned();
    for _ in 0..MAX_LINKS {
        match ls_tree(objects, sha, &current)? {
            Some(raw) if raw.mode == LINK_MODE => {
                trail.push(current.clone());
                current = follow(objects, path, &current, &raw.id, "")?;
            }
            Some(raw) => {
                if !trail.is_empty() {
                    trail.push(current);
                }
                return Ok(Some(raw.entry()));
            }
            None => {
                // A folder on the way may be a link: find the first one and continue from its
                // target (`prompts/shared -> ../common` makes `prompts/shared/x.md` readable).
                let parts: Vec<&str> = current.split('/').collect();
                let mut next = None;
                for i in 1..parts.len() {
                    let prefix = parts[..i].join("/");
                    match ls_tree(objects, sha, &prefix)? {
                        Some(raw) if raw.mode == LINK_MODE => {
                            next = Some(follow(objects, path, &prefix, &raw.id, &parts[i..].join("/"))?);
                            trail.push(prefix);
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
fn follow(objects: &mut Objects, asked: &str, link: &str, id: &str, rest: &str) -> anyhow::Result<String> {
    let target = String::from_utf8(blob(objects, id)?).map_err(|_| super::link_leaves(asked))?;
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

/// The entry `path` names at `sha` itself (a folder is not listed into), or `None`: what
/// `git ls-tree SHA -- path` lists, found by walking the tree objects down from the root, so
/// only a path's exact name matches and a link on the way ends the walk (the caller follows
/// it).
fn ls_tree(objects: &mut Objects, sha: &str, path: &str) -> anyhow::Result<Option<RawEntry>> {
    let Some(root) = objects.get(&format!("{sha}^{{tree}}"))? else {
        // As `git ls-tree` does: a path at a commit the repository lacks is an error.
        if path.is_empty() {
            return Ok(None);
        }
        bail!("git ls-tree {} -- {path} failed: not a tree object", short_sha(sha));
    };
    let mut entry = RawEntry {
        mode: "040000".to_owned(),
        kind: "tree".to_owned(),
        id: root.id,
    };
    if path.is_empty() {
        return Ok(Some(entry));
    }
    for name in path.split('/') {
        if entry.kind != "tree" {
            return Ok(None);
        }
        // The id's length says the hash (SHA-1 or SHA-256) the tree's binary ids are in.
        let id_len = entry.id.len() / 2;
        match tree_entry(objects.tree(&entry.id)?, name.as_bytes(), id_len)? {
            Some(found) => entry = found,
            None => return Ok(None),
        }
    }
    // A submodule ("commit") has no content in this repository.
    Ok((entry.kind != "commit").then_some(entry))
}

/// The entry called `name` in a tree object's content: records of `<mode> <name>\0<id bytes>`
/// (git's `tree` format; a folder's mode is written `40000`, without `ls-tree`'s leading 0).
fn tree_entry(tree: &[u8], name: &[u8], id_len: usize) -> anyhow::Result<Option<RawEntry>> {
    let mut rest = tree;
    while !rest.is_empty() {
        let space = rest.iter().position(|b| *b == b' ').context("a malformed git tree")?;
        let nul = rest.iter().position(|b| *b == 0).context("a malformed git tree")?;
        if nul < space || rest.len() < nul + 1 + id_len {
            bail!("a malformed git tree");
        }
        let (mode, entry_name, id) = (&rest[..space], &rest[space + 1..nul], &rest[nul + 1..nul + 1 + id_len]);
        rest = &rest[nul + 1 + id_len..];
        if entry_name != name {
            continue;
        }
        let mode = format!("{:0>6}", String::from_utf8_lossy(mode));
        let kind = match mode.as_str() {
            "040000" => "tree",
            "160000" => "commit",
            _ => "blob",
        };
        return Ok(Some(RawEntry {
            kind: kind.to_owned(),
            mode,
            id: hex::encode(id),
        }));
    }
    Ok(None)
}

/// The bytes of a blob (refused beyond [`super::MAX_FILE_BYTES`] before it is kept).
pub(super) fn blob(objects: &mut Objects, id: &str) -> anyhow::Result<Vec<u8>> {
    match objects.get(id)? {
        Some(answer) if answer.kind == "blob" => Ok(answer.content),
        Some(answer) => bail!("git object {id} is a {}, not a file", answer.kind),
        None => bail!("git object {id} is missing"),
    }
}

/// The working tree at `root` as it is on disk: the tree of its tracked files as edited (what
/// `git commit -a` would commit, through a copy of the index, so the repository's own index is
/// untouched), as `git-tree:<id>`, and, when there are any, a digest of the files git does not
/// track and does not ignore, by path and content (`+untracked:<sha256>`): a new module a
/// pipeline imports is part of it before it is committed. Left out: the `excluded` folders (a
/// run's own output folder, its journal among them, would make each run, and its resume,
/// another tree) and what tools write beside the code as it runs ([`GENERATED`]: Python's
/// bytecode, editors' swap files, logs), which would do the same. Untracked files are read, not
/// written into the repository's objects. `None` outside git or when git fails.
pub(super) fn working_tree_id(root: &Path, excluded: &[std::path::PathBuf]) -> Option<String> {
    let git = |args: &[&str], index: Option<&Path>| {
        let mut command = git_command();
        command.arg("-C").arg(root).args(args);
        if let Some(index) = index {
            command.env("GIT_INDEX_FILE", index);
        }
        let out = command.output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let real_index = git(&["rev-parse", "--path-format=absolute", "--git-path", "index"], None)?;
    let real_index = std::path::PathBuf::from(real_index.trim());
    let scratch = tempfile::Builder::new().prefix("promptgate-index").tempdir().ok()?;
    let index = scratch.path().join("index");
    // The real index's entries (and their file times) let `add` hash only what changed.
    if real_index.is_file() {
        std::fs::copy(&real_index, &index).ok()?;
    }
    git(&["add", "--update", "--", "."], Some(&index))?;
    let tree = git(&["write-tree"], Some(&index))?.trim().to_owned();
    if tree.is_empty() {
        return None;
    }
    let inside = folders_inside(root, excluded)?;
    // An output folder that is the repository itself leaves no untracked file to read.
    if inside.iter().any(String::is_empty) {
        return Some(format!("git-tree:{tree}"));
    }
    let exclusions: Vec<String> = inside.iter().map(|r| format!(":(exclude,literal){r}")).collect();
    let mut list = vec!["ls-files", "--others", "--exclude-standard", "-z", "--", "."];
    list.extend(exclusions.iter().map(String::as_str));
    let untracked = git(&list, None)?;
    let mut paths: Vec<&str> = untracked
        .split('\0')
        .filter(|path| !path.is_empty() && !generated(path))
        .collect();
    if paths.is_empty() {
        return Some(format!("git-tree:{tree}"));
    }
    paths.sort_unstable();
    let mut digest = Sha256::new();
    for path in paths {
        digest.update(path.as_bytes());
        digest.update([0]);
        // Streamed, whatever its size; a link by where it points (as git keeps one), never
        // followed; a file that cannot be read by its path alone, the same on every run.
        let full = root.join(path);
        match std::fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                if let Ok(target) = std::fs::read_link(&full) {
                    digest.update(target.to_string_lossy().as_bytes());
                }
            }
            _ => {
                if let Some(content) = streamed_digest(&full) {
                    digest.update(content);
                }
            }
        }
        digest.update([0]);
    }
    Some(format!("git-tree:{tree}+untracked:{}", hex::encode(digest.finalize())))
}

/// The SHA-256 of the file at `path`, read a block at a time; `None` when it cannot be read.
fn streamed_digest(path: &Path) -> Option<[u8; 32]> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut digest = Sha256::new();
    let mut block = vec![0; 1 << 16];
    loop {
        match file.read(&mut block) {
            Ok(0) => return Some(digest.finalize().into()),
            Ok(n) => digest.update(&block[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Which of `folders` (absolute, or relative to the current folder) lie inside the repository
/// at `root`, as paths relative to it ("" for the root itself). `None` when `root` cannot be
/// resolved.
pub fn folders_inside(root: &Path, folders: &[impl AsRef<Path>]) -> Option<Vec<String>> {
    let real_root = root.canonicalize().ok()?;
    Some(
        folders
            .iter()
            .filter_map(|folder| {
                let folder = std::env::current_dir().ok()?.join(folder);
                let folder = folder.canonicalize().unwrap_or(folder);
                Some(folder.strip_prefix(&real_root).ok()?.to_str()?.to_owned())
            })
            .collect(),
    )
}

/// Whether `path` (relative to the repository's root) lies in one of `folders` (as
/// [`folders_inside`] gives them).
pub fn in_folders(path: &str, folders: &[String]) -> bool {
    folders.iter().any(|f| {
        f.is_empty()
            || path
                .strip_prefix(f.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Files tools write beside the code as it runs, left out of a working tree's fingerprint
/// when git does not ignore them: folders by name, files by suffix or name.
const GENERATED: &[&str] = &[
    "__pycache__/",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".ipynb_checkpoints/",
    "node_modules/",
    ".pyc",
    ".pyo",
    ".swp",
    ".swo",
    "~",
    ".log",
    ".DS_Store",
];

/// Whether `path` (relative to the repository's root) is one of [`GENERATED`].
pub fn generated(path: &str) -> bool {
    GENERATED.iter().any(|pattern| match pattern.strip_suffix('/') {
        Some(folder) => path.split('/').rev().skip(1).any(|part| part == folder),
        None => path.ends_with(pattern),
    })
}

/// `git`, without the GitHub token or the Actions runtime's credentials in its environment.
pub(super) fn git_command() -> Command {
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
