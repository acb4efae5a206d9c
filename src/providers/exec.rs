//! The `exec` provider: a program of the team's own stands in for the model, so a whole
//! pipeline (retrieval, tools, post-processing — e.g. a RAG app) is what gets A/B-tested.
//!
//! Protocol, one process per call:
//! - `command` is an argv list, run without a shell, from the root of its arm's tree (the
//!   baseline's from a checkout of the merge base, so its scripts are the base's), with a
//!   minimal environment: `PATH`, `HOME`, the locale and the temporary folder
//!   (`secrets::CHILD_BASE_ENV`), plus the variables the provider's `env:` lists. Nothing else
//!   is inherited, the GitHub token least of all; the listed values are redacted from every
//!   output.
//! - stdin receives the request as one JSON object:
//!   `{"model", "messages": [{"role", "content"}], "temperature", "max_tokens", "top_p", "seed"}`
//!   (absent settings are `null`), plus `frequency_penalty`, `presence_penalty` and `stop`
//!   when the variant sets them.
//! - stdout is either a JSON object with an `output` string,
//!   `{"output": "…", "tokens": {"input": N, "output": N, "cached_input": N}, "latency_ms": X}`
//!   (`tokens`, `cached_input` and `latency_ms` optional), or anything else, which is taken
//!   whole (trimmed) as the output. Without `tokens`, usage is estimated at one token per four
//!   characters (plus four per message), the mock's rule; without `latency_ms` the runner
//!   measures the process's wall-clock time.
//! - exit 0 is success; exit 75 (`EX_TEMPFAIL`) a transient failure worth retrying; any other
//!   exit a permanent failure, reported with the end of stderr.
//! - stdout is read up to [`MAX_STDOUT`] bytes (more is a failure and the process is killed);
//!   of stderr only the last [`STDERR_KEPT`] bytes are kept.
//!
//! A runner timeout drops the call, which kills the process.

use std::fmt;
use std::process::Stdio;

use async_trait::async_trait;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{Provider, ProviderError, Request, Response, Usage};
use crate::error::{Diagnostic, Error};
use crate::suite::ProviderSpec;
use crate::tokens;

/// The exit code that asks for a retry (`EX_TEMPFAIL` from `sysexits.h`).
pub const EXIT_TEMPFAIL: i32 = 75;

/// How much of stderr a failure reports.
const STDERR_LINES: usize = 5;

/// The most stdout an answer may have: far beyond any model output, well below what would
/// exhaust memory with a few calls in flight.
pub const MAX_STDOUT: usize = 16 << 20;

/// The end of stderr kept for the failure message (the rest is read and dropped).
pub const STDERR_KEPT: usize = 64 << 10;

/// A program of the team's own, run the `exec` way: an argv list without a shell, from a
/// folder of the arm's tree, with a minimal environment (`secrets::child_env` of the listed
/// variables), its input on stdin, stdout read up to [`MAX_STDOUT`], the end of stderr kept for
/// the failure message. Dropping a run kills the process. `exec` scorers (`scorers::exec`) run
/// their commands through this too.
#[derive(Clone)]
pub struct Program {
    program: String,
    args: Vec<String>,
    /// The variables passed through (besides the harmless base set).
    env: Vec<String>,
    /// Where the command runs; `None`: promptgate's working directory.
    dir: Option<std::path::PathBuf>,
}

/// Why a program's run failed, in words, and whether trying again may help (exit 75).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramFailure {
    pub message: String,
    pub transient: bool,
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Arguments are the user's to choose; one might carry a token.
        let args: Vec<String> = self.args.iter().map(|a| crate::secrets::redact(a)).collect();
        f.debug_struct("Program")
            .field("program", &self.program)
            .field("args", &args)
            .field("dir", &self.dir)
            .finish()
    }
}

impl Program {
    /// `command` is the program and its arguments (not empty); `env` the variables it gets.
    pub fn new(command: &[String], env: &[String]) -> Option<Program> {
        match command {
            [program, args @ ..] if !program.trim().is_empty() => Some(Program {
                program: program.clone(),
                args: args.to_vec(),
                env: env.to_vec(),
                dir: None,
            }),
            _ => None,
        }
    }

    /// Runs the command in `dir` (relative program paths such as `./run.sh` resolve there).
    pub fn in_dir(mut self, dir: Option<&std::path::Path>) -> Self {
        self.dir = dir.map(std::path::Path::to_owned);
        self
    }

    /// Runs the program with `input` on stdin; its stdout when it exits with status 0.
    pub async fn run(&self, input: &[u8]) -> Result<Vec<u8>, ProgramFailure> {
        let permanent = |message: String| ProgramFailure {
            message,
            transient: false,
        };
        // A relative program path (`./run.sh`, `.venv/bin/python`) names a file of the arm's
        // tree; std leaves open whether it resolves against the parent's or the child's
        // directory, so it is made absolute here.
        let program = match &self.dir {
            Some(dir) if self.program.contains('/') && std::path::Path::new(&self.program).is_relative() => {
                dir.join(&self.program).into_os_string()
            }
            _ => self.program.clone().into(),
        };
        let mut command = tokio::process::Command::new(program);
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        let mut child = command
            .args(&self.args)
            .env_clear()
            .envs(crate::secrets::child_env(&self.env))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| permanent(format!("exec: cannot run `{}`: {e}", self.program)))?;
        let stdin = child.stdin.take();
        // Written while the output is read: a program that answers before it has read all of
        // its input must not deadlock on a full pipe.
        let write = async move {
            if let Some(mut stdin) = stdin {
                // A program may exit without reading stdin; its exit status tells the story.
                let _ = stdin.write_all(input).await;
                let _ = stdin.shutdown().await;
            }
        };
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let ((), stdout, stderr) = tokio::join!(write, read_capped(stdout), read_tail(stderr));
        let stdout = match stdout {
            Ok(bytes) => bytes,
            Err(Overflow) => {
                let _ = child.kill().await;
                return Err(permanent(format!(
                    "exec: `{}` wrote more than {} MiB on stdout; an answer must be smaller",
                    self.program,
                    MAX_STDOUT >> 20
                )));
            }
        };
        let status = child.wait().await.map_err(|e| ProgramFailure {
            message: format!("exec: waiting for `{}` failed: {e}", self.program),
            transient: true,
        })?;
        if !status.success() {
            let stderr = stderr_tail(&stderr);
            let how = match status.code() {
                Some(code) => format!("exited with status {code}"),
                None => format!("was killed ({status})"),
            };
            return Err(ProgramFailure {
                message: format!("exec: `{}` {how}{stderr}", self.program),
                transient: status.code() == Some(EXIT_TEMPFAIL),
            });
        }
        Ok(stdout)
    }

    /// [`Program::run`] from synchronous code, ending (and killing) the program after
    /// `timeout`.
    pub fn run_blocking(&self, input: &[u8], timeout: std::time::Duration) -> Result<Vec<u8>, ProgramFailure> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ProgramFailure {
                message: format!("exec: cannot start `{}`: {e}", self.program),
                transient: true,
            })?;
        runtime.block_on(async {
            match tokio::time::timeout(timeout, self.run(input)).await {
                Ok(result) => result,
                Err(_) => Err(ProgramFailure {
                    message: format!(
                        "exec: `{}` did not finish within {} s and was stopped",
                        self.program,
                        timeout.as_secs_f64()
                    ),
                    transient: false,
                }),
            }
        })
    }
}

/// The `exec` provider type.
#[derive(Clone, Debug)]
pub struct ExecProvider {
    program: Program,
}

impl ExecProvider {
    pub fn from_spec(spec: &ProviderSpec) -> Result<Self, Error> {
        match spec.command.as_deref().and_then(|c| Program::new(c, &spec.env)) {
            Some(program) => Ok(ExecProvider { program }),
            None => Err(Diagnostic::new(format!(
                "provider `{}` (type exec) needs `command`: the program and its arguments",
                spec.name
            ))
            .hint("e.g. `command: [python3, scripts/answer.py]`; it reads the request as JSON on stdin and prints the answer")
            .into()),
        }
    }

    /// Runs the command in `dir` (relative program paths such as `./run.sh` resolve there).
    pub fn in_dir(mut self, dir: Option<&std::path::Path>) -> Self {
        self.program = self.program.in_dir(dir);
        self
    }
}

#[async_trait]
impl Provider for ExecProvider {
    fn kind(&self) -> &'static str {
        "exec"
    }

    async fn complete(&self, request: &Request) -> Result<Response, ProviderError> {
        let permanent = |message: String| ProviderError::Permanent { message };
        let input =
            serde_json::to_vec(request).map_err(|e| permanent(format!("exec: cannot encode the request: {e}")))?;
        let stdout = self.program.run(&input).await.map_err(|failure| {
            if failure.transient {
                ProviderError::Transient {
                    message: failure.message,
                    retry_after_ms: None,
                }
            } else {
                ProviderError::Permanent {
                    message: failure.message,
                }
            }
        })?;
        parse_stdout(request, &String::from_utf8_lossy(&stdout)).map_err(permanent)
    }
}

/// stdout went past [`MAX_STDOUT`].
struct Overflow;

/// All of `pipe`, unless it exceeds [`MAX_STDOUT`].
async fn read_capped(pipe: Option<tokio::process::ChildStdout>) -> Result<Vec<u8>, Overflow> {
    use tokio::io::AsyncReadExt as _;
    let Some(mut pipe) = pipe else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ok(out),
            Ok(n) if out.len() + n > MAX_STDOUT => return Err(Overflow),
            Ok(n) => out.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The last [`STDERR_KEPT`] bytes of `pipe`, read to its end so the program never blocks on it.
async fn read_tail(pipe: Option<tokio::process::ChildStderr>) -> Vec<u8> {
    use tokio::io::AsyncReadExt as _;
    let Some(mut pipe) = pipe else {
        return Vec::new();
    };
    let mut tail: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    loop {
        match pipe.read(&mut chunk).await {
            Ok(0) | Err(_) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * STDERR_KEPT {
                    tail.drain(..tail.len() - STDERR_KEPT);
                }
            }
        }
    }
}

/// The usage of a call whose provider reports none: one token per four characters, plus
/// four per message for roles and separators (the mock's rule).
pub fn estimate_usage(request: &Request, output: &str) -> Usage {
    Usage {
        input: tokens::estimate_messages(&request.messages),
        cached_input: 0,
        output: tokens::estimate(output),
    }
}

#[derive(Deserialize)]
struct ExecOutput {
    output: String,
    tokens: Option<ExecTokens>,
    latency_ms: Option<f64>,
}

#[derive(Deserialize)]
struct ExecTokens {
    input: u64,
    output: u64,
    #[serde(default)]
    cached_input: u64,
}

/// Reads the program's answer. A JSON object with an `output` key is the structured form and
/// must be well-formed; anything else (prose, or JSON the pipeline itself answers with) is the
/// output as it stands.
fn parse_stdout(request: &Request, stdout: &str) -> Result<Response, String> {
    let text = stdout.trim();
    let value = serde_json::from_str::<serde_json::Value>(text).ok();
    let Some(value) = value.filter(|v| v.get("output").is_some()) else {
        return Ok(Response {
            text: text.to_owned(),
            usage: estimate_usage(request, text),
            latency_ms: None,
        });
    };
    let parsed: ExecOutput = serde_json::from_value(value)
        .map_err(|e| format!("exec: stdout is a JSON object with `output` but not of the documented shape: {e}"))?;
    let usage = match parsed.tokens {
        Some(t) => Usage {
            input: t.input,
            cached_input: t.cached_input,
            output: t.output,
        },
        None => estimate_usage(request, &parsed.output),
    };
    Ok(Response {
        text: parsed.output,
        usage,
        latency_ms: parsed.latency_ms.filter(|ms| ms.is_finite() && *ms >= 0.0),
    })
}

/// `: <the last lines of stderr>`, redacted and bounded, or nothing when stderr is empty.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    let tail = crate::secrets::redact(&tail);
    // Keep the end, where the actual error usually is.
    let chars = tail.chars().count();
    let tail = if chars > 1000 {
        format!("…{}", tail.chars().skip(chars - 1000).collect::<String>())
    } else {
        tail
    };
    // Already at most 1000 characters (and the "…" that says it was cut at the front).
    format!(": {tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::http::tests::{request, spec};
    use crate::suite::ProviderKind;

    fn sh(script: &str) -> ExecProvider {
        let mut spec = spec(ProviderKind::Exec, None);
        spec.command = Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), script.to_owned()]);
        ExecProvider::from_spec(&spec).unwrap()
    }

    /// Runs `script` through `/bin/sh -c` as the provider and checks what the call returns.
    #[track_caller]
    fn check(script: &str, expected: Result<Response, ProviderError>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(sh(script).complete(&request()));
        assert_eq!(result, expected, "script: {script}");
    }

    /// What the request of [`request`] is estimated at: 35 and 33 characters, two messages.
    const ESTIMATED_INPUT: u64 = 9 + 4 + 9 + 4;

    #[test]
    fn reads_structured_and_plain_stdout() {
        check(
            r#"cat >/dev/null; echo '{"output": "Within 30 days.", "tokens": {"input": 120, "output": 5, "cached_input": 100}, "latency_ms": 812.5}'"#,
            Ok(Response {
                text: "Within 30 days.".to_owned(),
                usage: Usage {
                    input: 120,
                    cached_input: 100,
                    output: 5,
                },
                latency_ms: Some(812.5),
            }),
        );
        check(
            r#"echo '{"output": "Within 30 days.", "sources": ["policy.md"]}'"#,
            Ok(Response {
                text: "Within 30 days.".to_owned(),
                usage: Usage {
                    input: ESTIMATED_INPUT,
                    cached_input: 0,
                    output: 4,
                },
                latency_ms: None,
            }),
        );
        // Plain text, and JSON the pipeline answers with, are the output as they stand.
        check(
            "printf '\\n  Refunds take 30 days.  \\n\\n'",
            Ok(Response {
                text: "Refunds take 30 days.".to_owned(),
                usage: Usage {
                    input: ESTIMATED_INPUT,
                    cached_input: 0,
                    output: 6,
                },
                latency_ms: None,
            }),
        );
        check(
            r#"echo '{"answer": "yes"}'"#,
            Ok(Response {
                text: r#"{"answer": "yes"}"#.to_owned(),
                usage: Usage {
                    input: ESTIMATED_INPUT,
                    cached_input: 0,
                    output: 5,
                },
                latency_ms: None,
            }),
        );
    }

    #[test]
    fn receives_the_request_as_json_on_stdin() {
        // Echo stdin back as the output: the request, exactly as documented.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(sh("cat").complete(&request())).unwrap();
        let value: serde_json::Value = serde_json::from_str(&response.text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "model": "gpt-4o-mini",
                "messages": [
                    {"role": "system", "content": "You are the Acme support assistant."},
                    {"role": "user", "content": "Can I get a refund after 45 days?"}
                ],
                "temperature": 0.5,
                "max_tokens": 256,
                "top_p": 0.9,
                "seed": 12345
            })
        );
    }

    #[test]
    fn failures_report_the_end_of_stderr() {
        let permanent = |message: &str| {
            Err(ProviderError::Permanent {
                message: message.to_owned(),
            })
        };
        check(
            "echo 'loading index' >&2; echo 'Traceback: KeyError sk-live-SECRET-42' >&2; exit 1",
            permanent("exec: `/bin/sh` exited with status 1: loading index\nTraceback: KeyError [redacted]"),
        );
        check("exit 3", permanent("exec: `/bin/sh` exited with status 3"));
        check(
            "for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 2",
            permanent("exec: `/bin/sh` exited with status 2: line 3\nline 4\nline 5\nline 6\nline 7"),
        );
        check(
            "echo 'vector store busy' >&2; exit 75",
            Err(ProviderError::Transient {
                message: "exec: `/bin/sh` exited with status 75: vector store busy".to_owned(),
                retry_after_ms: None,
            }),
        );
        check(
            r#"echo '{"output": 42}'"#,
            permanent(
                "exec: stdout is a JSON object with `output` but not of the documented shape: invalid type: integer `42`, expected a string",
            ),
        );
        // Exiting without reading a large stdin is not a write error.
        check(
            "exit 0",
            Ok(Response {
                text: String::new(),
                usage: Usage {
                    input: ESTIMATED_INPUT,
                    cached_input: 0,
                    output: 0,
                },
                latency_ms: None,
            }),
        );
    }

    #[test]
    fn the_program_gets_only_its_listed_variables_and_no_token() {
        // `env` prints what the program received: only the harmless base set and what the
        // config lists (unset here, so absent), whatever this test process has (a token, say).
        let mut spec = spec(ProviderKind::Exec, None);
        spec.command = Some(vec!["/usr/bin/env".to_owned()]);
        spec.env = vec!["PROMPTGATE_TEST_LISTED".to_owned()];
        let provider = ExecProvider::from_spec(&spec).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let out = runtime.block_on(provider.complete(&request())).unwrap().text;
        let names: Vec<&str> = out.lines().filter_map(|l| l.split_once('=').map(|(n, _)| n)).collect();
        for name in &names {
            assert!(
                crate::secrets::CHILD_BASE_ENV.contains(name) || *name == "PROMPTGATE_TEST_LISTED",
                "`{name}` was inherited: {names:?}"
            );
        }
        assert!(!names.contains(&"GITHUB_TOKEN"));
    }

    #[test]
    fn endless_output_is_cut_off_with_a_clear_error() {
        check(
            "cat /dev/zero",
            Err(ProviderError::Permanent {
                message: "exec: `/bin/sh` wrote more than 16 MiB on stdout; an answer must be smaller".to_owned(),
            }),
        );
        // A flood on stderr is read and dropped, keeping its end.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let flood = sh("head -c 3000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo 'the real error' >&2; exit 1");
        match runtime.block_on(flood.complete(&request())) {
            Err(ProviderError::Permanent { message }) => {
                assert!(message.ends_with("\nthe real error"), "{message}");
                assert!(message.chars().count() < 1_100, "{}", message.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_permanent_and_a_timeout_kills_the_process() {
        let mut spec = spec(ProviderKind::Exec, None);
        spec.command = Some(vec!["/nonexistent/promptgate-pipeline".to_owned()]);
        let missing = ExecProvider::from_spec(&spec).unwrap();
        match missing.complete(&request()).await {
            Err(ProviderError::Permanent { message }) => {
                assert!(
                    message.starts_with("exec: cannot run `/nonexistent/promptgate-pipeline`: "),
                    "{message}"
                );
            }
            other => panic!("expected a permanent error, got {other:?}"),
        }

        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("finished");
        let slow = sh(&format!("sleep 2; touch '{}'", marker.display()));
        let started = std::time::Instant::now();
        let request = request();
        let result = tokio::time::timeout(std::time::Duration::from_millis(200), slow.complete(&request)).await;
        assert!(result.is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        // Dropping the call killed the shell before it could finish.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        assert!(!marker.exists());
    }

    #[test]
    fn runs_in_its_arm_s_folder_with_relative_paths_resolved_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scripts")).unwrap();
        std::fs::write(
            dir.path().join("scripts/answer.sh"),
            "cat >/dev/null; echo from-the-arm; pwd",
        )
        .unwrap();
        let mut spec = spec(ProviderKind::Exec, None);
        spec.command = Some(vec!["/bin/sh".to_owned(), "scripts/answer.sh".to_owned()]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let provider = ExecProvider::from_spec(&spec).unwrap().in_dir(Some(dir.path()));
        let response = runtime.block_on(provider.complete(&request())).unwrap();
        let real = dir.path().canonicalize().unwrap();
        assert_eq!(response.text, format!("from-the-arm\n{}", real.display()));

        let script = dir.path().join("scripts/run");
        std::fs::write(&script, "#!/bin/sh\ncat >/dev/null\necho relative program\n").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        spec.command = Some(vec!["./scripts/run".to_owned()]);
        let provider = ExecProvider::from_spec(&spec).unwrap().in_dir(Some(dir.path()));
        let response = runtime.block_on(provider.complete(&request())).unwrap();
        assert_eq!(response.text, "relative program");
    }

    #[test]
    fn configuration_and_debug() {
        let error = ExecProvider::from_spec(&spec(ProviderKind::Exec, None)).unwrap_err();
        assert_eq!(error.exit_code(), crate::error::exit::USAGE);
        assert!(error.to_string().contains("needs `command`"), "{error}");
        let mut empty = spec(ProviderKind::Exec, None);
        empty.command = Some(Vec::new());
        assert!(ExecProvider::from_spec(&empty).is_err());
        let debug = format!("{:?}", sh("curl -H 'Authorization: Bearer sk-live-SECRET-42' http://x"));
        assert!(!debug.contains("SECRET"), "{debug}");
        assert_eq!(sh("true").kind(), "exec");
    }
}
