//! What the benchmarks share: running the release binary and measuring it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

/// The binary measured: `PROMPTGATE_BENCH_BINARY`, else the release build.
pub fn binary() -> PathBuf {
    let binary = std::env::var_os("PROMPTGATE_BENCH_BINARY").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/promptgate"),
        PathBuf::from,
    );
    assert!(
        binary.is_file(),
        "build the release binary first: cargo build --release"
    );
    binary
}

/// Runs the gate and returns (wall seconds, peak RSS in KiB, CPU seconds as last seen).
pub fn measure(binary: &Path, repo: &Path, out: &str) -> (f64, u64, f64) {
    let m = measure_span(binary, repo, out);
    (m.wall(), m.peak_kib, m.cpu_secs)
}

/// One measured run of the gate: when the process was started and when it had exited, on the
/// same clock as a simulator's own timestamps.
pub struct Span {
    pub started: Instant,
    pub exited: Instant,
    pub peak_kib: u64,
    pub cpu_secs: f64,
}

impl Span {
    pub fn wall(&self) -> f64 {
        (self.exited - self.started).as_secs_f64()
    }
}

/// Runs the gate as [`measure`] does, keeping the instants it started and exited.
pub fn measure_span(binary: &Path, repo: &Path, out: &str) -> Span {
    let started = Instant::now();
    let mut child = Command::new(binary)
        .current_dir(repo)
        .args(["run", "--base", "main", "--head", "pr", "--out", out])
        .args(
            std::env::var("PROMPTGATE_BENCH_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        )
        .env("CI", "1")
        // The response cache of this throwaway repository, not the user's.
        .env("XDG_CACHE_HOME", repo.join(".cache"))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn promptgate");
    let status_path = format!("/proc/{}/status", child.id());
    let stat_path = format!("/proc/{}/stat", child.id());
    let ticks = 100.0; // USER_HZ on Linux
    let mut peak = 0;
    let mut cpu = 0.0;
    loop {
        // utime and stime are fields 14 and 15, counted after the command name's parenthesis.
        if let Some(fields) = std::fs::read_to_string(&stat_path)
            .ok()
            .and_then(|t| t.rsplit_once(')').map(|(_, r)| r.to_owned()))
        {
            let f: Vec<&str> = fields.split_whitespace().collect();
            if let (Some(u), Some(s)) = (
                f.get(11).and_then(|v| v.parse::<f64>().ok()),
                f.get(12).and_then(|v| v.parse::<f64>().ok()),
            ) {
                cpu = (u + s) / ticks;
            }
        }
        let peak_now = std::fs::read_to_string(&status_path).ok().and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        peak = peak.max(peak_now.unwrap_or(0));
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.code().is_some_and(|c| c <= 1), "promptgate failed: {status}");
            break;
        }
        // The moment of exit is known to within this poll.
        std::thread::sleep(Duration::from_millis(5));
    }
    Span {
        started,
        exited: Instant::now(),
        peak_kib: peak,
        cpu_secs: cpu,
    }
}

/// Runs git in `dir` (a throwaway repository), failing the benchmark if it fails.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// Writes `text` to `path` under `dir`, creating its folders.
pub fn write(dir: &Path, path: &str, text: &str) {
    let full = dir.join(path);
    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
    std::fs::write(full, text).expect("write");
}

/// The benchmarks' repository in `dir`: `suite` as promptgate.yaml, a variant of `model`, a
/// prompt and `cases` cases (`extra` is appended inside each case's JSON object), committed on
/// `main`, then a `pr` branch that rewords the prompt.
pub fn bench_repo(dir: &Path, suite: &str, model: &str, cases: usize, extra: &str) {
    let git = |args: &[&str]| git(dir, args);
    let write = |path: &str, text: &str| write(dir, path, text);
    git(&["init", "-q", "-b", "main"]);
    write("promptgate.yaml", suite);
    write(
        "variant.yaml",
        &format!("model: {model}\nprompt: prompt.md\ntemperature: 0.7\nmax_tokens: 64\n"),
    );
    write(
        "prompt.md",
        "You are a support assistant. Refunds are available within 30 days.\n",
    );
    let dataset: String = (0..cases)
        .map(|i| {
            format!("{{\"id\": \"c{i}\", \"vars\": {{\"input\": \"question number {i} about refunds\"}}{extra}}}\n")
        })
        .collect();
    write("cases.jsonl", &dataset);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "base"]);
    git(&["checkout", "-q", "-b", "pr"]);
    write(
        "prompt.md",
        "You are a concise support assistant. Refunds are available within 30 days.\n",
    );
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "pr"]);
}

/// A [`bench_repo`] whose one experiment calls the simulator at `base_url` through an
/// `openai-compatible` provider of `concurrency` calls, `repeats` times a case, at a suite price.
pub fn priced_sim_repo(dir: &Path, base_url: &str, cases: usize, concurrency: usize, repeats: usize) {
    let suite = format!(
        "version: 1\nproviders:\n  sim: {{type: openai-compatible, base_url: \"{base_url}/v1\", concurrency: {concurrency}, max_retries: 0}}\n\
             pricing:\n  sim-model: {{input: 0.1, output: 0.4}}\ndefaults: {{repeats: {repeats}, provider: sim}}\n\
             experiments:\n  - name: bench\n    variant: variant.yaml\n    dataset: cases.jsonl\n"
    );
    bench_repo(
        dir,
        &suite,
        "sim-model",
        cases,
        ", \"assert\": [{\"type\": \"icontains\", \"value\": \"30 days\"}]",
    );
}

/// Cases to run: `PROMPTGATE_BENCH_CASES`, else `default`.
pub fn cases(default: usize) -> usize {
    std::env::var("PROMPTGATE_BENCH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The simulator's runtime: two workers, as many as the CI machine has cores.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// When the simulator received its first and its last request: a run's own span is from the
/// first request to the last response, so the simulator's overhead is not counted against it.
pub type Arrivals = Arc<Mutex<Option<(Instant, Instant)>>>;

/// Notes a request's arrival now.
pub fn arrived(arrivals: &Arrivals) {
    let now = Instant::now();
    if let Ok(mut a) = arrivals.lock() {
        *a = Some(a.map_or((now, now), |(first, _)| (first, now)));
    }
}

/// An OpenAI-compatible chat endpoint answering every call with `content` (`completion_tokens`
/// of output, 120 of input) after `latency`, noting the first and last arrival.
#[allow(
    dead_code,
    reason = "judged.rs serves generation and judging from one simulator of its own"
)]
pub async fn simulator(content: &str, completion_tokens: u64, latency: Duration) -> (MockServer, Arrivals) {
    struct Simulator {
        body: serde_json::Value,
        latency: Duration,
        arrivals: Arrivals,
    }
    impl Respond for Simulator {
        fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
            arrived(&self.arrivals);
            ResponseTemplate::new(200)
                .set_body_json(self.body.clone())
                .set_delay(self.latency)
        }
    }
    let server = MockServer::builder().disable_request_recording().start().await;
    let body = serde_json::json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "sim-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": completion_tokens, "total_tokens": 120 + completion_tokens}
    });
    let arrivals: Arrivals = Arc::new(Mutex::new(None));
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Simulator {
            body,
            latency,
            arrivals: Arc::clone(&arrivals),
        })
        .mount(&server)
        .await;
    (server, arrivals)
}
