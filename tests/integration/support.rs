//! A temporary git repository and the `promptgate` binary run inside it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A throwaway git repository on branch `main`.
pub struct TestRepo {
    dir: tempfile::TempDir,
}

/// What a run of the binary printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n--- stdout\n{}",
            self.stdout
        );
        self
    }
}

impl TestRepo {
    pub fn new() -> TestRepo {
        let repo = TestRepo {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// A repository holding the demo's base tree, committed on `main`.
    pub fn with_demo_base() -> TestRepo {
        let repo = TestRepo::new();
        repo.copy_tree(&fixture("base"));
        repo.commit("base");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, path: &str, text: &str) -> &Self {
        let full = self.path().join(path);
        std::fs::create_dir_all(full.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
        self
    }

    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.path().join(path)).expect("read")
    }

    pub fn remove(&self, path: &str) -> &Self {
        std::fs::remove_file(self.path().join(path)).expect("remove");
        self
    }

    /// Replaces `from` with `to` in a file, which must contain it.
    #[track_caller]
    pub fn edit(&self, path: &str, from: &str, to: &str) -> &Self {
        let text = self.read(path);
        assert!(text.contains(from), "{path} does not contain {from:?}");
        self.write(path, &text.replacen(from, to, 1))
    }

    /// Copies a folder's files into the repository root.
    pub fn copy_tree(&self, from: &Path) {
        for entry in walk(from) {
            let relative = entry.strip_prefix(from).expect("under root");
            let dest = self.path().join(relative);
            std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
            std::fs::copy(&entry, dest).expect("copy");
        }
    }

    /// Replaces everything but `.git` with the files of `from`.
    pub fn replace_tree(&self, from: &Path) {
        for entry in std::fs::read_dir(self.path()).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(path).expect("remove dir");
            } else {
                std::fs::remove_file(path).expect("remove file");
            }
        }
        self.copy_tree(from);
    }

    /// Commits everything and returns the new commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"]).trim().to_owned()
    }

    pub fn checkout_new(&self, branch: &str) -> &Self {
        self.git(&["checkout", "-q", "-b", branch]);
        self
    }

    pub fn checkout(&self, branch: &str) -> &Self {
        self.git(&["checkout", "-q", branch]);
        self
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(self.path())
            .args([
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `promptgate ARGS` in the repository.
    pub fn promptgate(&self, args: &[&str]) -> Run {
        promptgate_in(self.path(), args)
    }
}

/// The response cache's home for a test run in `dir`: its repository's own (inside `.git`,
/// which nothing reads; found from any folder of the repository), so tests never share
/// answers or touch the user's cache.
pub fn test_cache_home(dir: &Path) -> PathBuf {
    match dir.ancestors().find(|d| d.join(".git").is_dir()) {
        Some(root) => root.join(".git").join("test-cache"),
        None => dir.join(".test-cache"),
    }
}

pub fn promptgate_in(dir: &Path, args: &[&str]) -> Run {
    promptgate_env(dir, args, &[])
}

/// `run --base main --head pr --no-cache --out OUT`, then `extra`, with `vars` in its
/// environment.
pub fn run_pr_uncached(dir: &Path, out: &Path, extra: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut args = vec![
        "run",
        "--base",
        "main",
        "--head",
        "pr",
        "--no-cache",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    promptgate_env(dir, &args, vars)
}

/// [`promptgate_in`] with environment variables set.
pub fn promptgate_env(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_promptgate"))
        .current_dir(dir)
        .args(args)
        // The machine's own token, or running on Actions, must not turn a local test into a
        // GitHub one.
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITHUB_ACTIONS")
        .envs(vars.iter().copied())
        .env("XDG_CACHE_HOME", test_cache_home(dir))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `fixtures/demo/<name>` in this repository.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join("demo")
        .join(name)
}

/// Reads `results.json` from an output folder.
pub fn results(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json was written");
    serde_json::from_str(&text).expect("results.json is JSON")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// `cases` refund questions as JSON lines (`q0`, `q1`, …), each asserting "30 days".
pub fn refund_cases(cases: usize) -> String {
    (0..cases)
        .map(|n| {
            serde_json::json!({"id": format!("q{n}"), "vars": {"input": format!("question {n}: how long do refunds take?")},
                   "assert": [{"type": "icontains", "value": "30 days"}]})
            .to_string()
                + "\n"
        })
        .collect()
}

/// A case's calls in `results.json`: the baseline's, then the candidate's.
pub fn case_calls(case: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    case["baseline"]
        .as_array()
        .unwrap()
        .iter()
        .chain(case["candidate"].as_array().unwrap())
}

/// `experiments` of a `results.json` with every call's `output` taken out: what a schema 2
/// file holds of the same run.
pub fn without_outputs(experiments: &serde_json::Value) -> serde_json::Value {
    let mut experiments = experiments.clone();
    for e in experiments.as_array_mut().into_iter().flatten() {
        for c in e["cases"].as_array_mut().into_iter().flatten() {
            for arm in ["baseline", "candidate"] {
                for call in c[arm].as_array_mut().into_iter().flatten() {
                    if let Some(call) = call.as_object_mut() {
                        call.remove("output");
                    }
                }
            }
        }
    }
    experiments
}

/// Sends SIGINT to `child`, as a terminal's Ctrl-C does.
#[cfg(unix)]
pub fn interrupt(child: &std::process::Child) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// [`interrupt`], then `child`'s end, waited for off the async runtime (its fake servers keep
/// answering): exit 130, as a shell reports SIGINT; its stderr.
#[cfg(unix)]
pub async fn interrupted(child: std::process::Child) -> String {
    interrupt(&child);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    stderr
}
