//! The Prometheus source against a real Prometheus: series written as OpenMetrics, turned into
//! TSDB blocks by `promtool tsdb create-blocks-from openmetrics`, served by `prometheus` on a
//! free port of 127.0.0.1, and read by `promptgate canary` through `query_range`. `.ci/run`
//! installs Debian's `prometheus` package; without the binaries the test says plainly that it
//! did not run, and why.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::promptgate_in;

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// Stops the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minute-by-minute hour and a half of two versions' p95 latency and error ratio, ending
/// five minutes ago: the canary's p95 is 30% higher, its errors the same.
fn openmetrics(now: u64) -> String {
    let mut text = String::new();
    let start = now - 95 * 60;
    let wobble = |i: u64, k: u64| ((i * 7919 + k * 104_729) % 97) as f64 / 97.0 - 0.5;
    let _ = writeln!(text, "# TYPE llm_latency_p95_ms gauge");
    for (k, (version, level)) in [("v1.2.3", 600.0), ("v1.3.0", 780.0)].into_iter().enumerate() {
        for i in 0..90 {
            let value = level + 40.0 * wobble(i, k as u64);
            let _ = writeln!(
                text,
                "llm_latency_p95_ms{{version=\"{version}\"}} {value:.1} {}",
                start + i * 60
            );
        }
    }
    let _ = writeln!(text, "# TYPE llm_error_ratio gauge");
    for (k, version) in ["v1.2.3", "v1.3.0"].into_iter().enumerate() {
        for i in 0..90 {
            let value = 0.01 + 0.004 * wobble(i, 3 + k as u64);
            let _ = writeln!(
                text,
                "llm_error_ratio{{version=\"{version}\"}} {value:.5} {}",
                start + i * 60
            );
        }
    }
    text.push_str("# EOF\n");
    text
}

const CONFIG: &str = "version: 1
experiments: []
canary:
  source:
    type: prometheus
    url: \"http://127.0.0.1:PORT\"
    step: 60s
    baseline: v1.2.3
    canary: v1.3.0
    queries:
      latency_p95_ms: 'llm_latency_p95_ms{version=\"$arm\"}'
      error_rate: 'llm_error_ratio{version=\"$arm\"}'
  min_samples: 500
  gates:
    latency_p95_ms: {margin: \"10%\", blocking: true}
    error_rate: {margin: 0.01, blocking: true}
";

#[test]
fn a_real_prometheus_serves_the_canary_its_series() {
    let (Some(prometheus), Some(promtool)) = (on_path("prometheus"), on_path("promtool")) else {
        eprintln!(
            "prometheus test DID NOT RUN: `prometheus` and `promtool` are not both on PATH. \
             Install Debian's `prometheus` package (`.ci/run` does) to run it."
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let om = dir.path().join("series.om");
    std::fs::write(&om, openmetrics(now)).unwrap();
    let data = dir.path().join("data");
    let status = Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "promtool could not create the blocks");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1h\n").unwrap();
    let port = free_port();
    let _server = Server(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_ready(port);

    let repo = dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::fs::write(repo.join("promptgate.yaml"), CONFIG.replace("PORT", &port.to_string())).unwrap();
    let run = promptgate_in(&repo, &["canary", "--window", "2h", "--out", "out"]);
    run.expect_code(1).stdout_has("roll back: latency_p95_ms worse");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo.join("out/canary.json")).unwrap()).unwrap();
    let metric = |name: &str| {
        json["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap()
            .clone()
    };
    // `min_samples` counts requests, which series do not have: `min_steps` (10) applies.
    assert_eq!(json["min_samples"], 10, "{json}");
    let latency = metric("latency_p95_ms");
    // 90 samples, and Prometheus's five minutes of look-back after the last one.
    let n = latency["n"]["baseline"].as_u64().unwrap();
    assert!((90..=96).contains(&n), "{latency}");
    let (b, c) = (
        latency["baseline"].as_f64().unwrap(),
        latency["canary"].as_f64().unwrap(),
    );
    assert!((b - 600.0).abs() < 10.0 && (c - 780.0).abs() < 10.0, "{latency}");
    assert_eq!(metric("error_rate")["verdict"], "no_change");
    assert!(
        json["source"]
            .as_str()
            .unwrap()
            .starts_with("prometheus http://127.0.0.1:")
    );

    // A query that is not PromQL is the config's fault: exit 2 with Prometheus's reason.
    std::fs::write(
        repo.join("promptgate.yaml"),
        CONFIG.replace("PORT", &port.to_string()).replace(
            "llm_error_ratio{version=\"$arm\"}",
            "rate(llm_error_ratio{version=\"$arm\"}",
        ),
    )
    .unwrap();
    promptgate_in(&repo, &["canary", "--window", "2h", "--out", "out"])
        .expect_code(2)
        .stderr_has("Prometheus rejects the query");
}

/// Polls `/-/ready` until the server answers (it loads the blocks first).
fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read as _, Write as _};
            let _ = stream.write_all(b"GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut answer = String::new();
            let _ = stream.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200") {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("prometheus did not become ready on 127.0.0.1:{port} within 30 s");
}

/// A Prometheus answering `query_range` from a closure of the arm its query selects and whether
/// it asks for latency: each step's value as Prometheus writes it, or none.
struct Steps(fn(&str, bool) -> Vec<String>);

impl wiremock::Respond for Steps {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let query = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "query")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let arm = if query.contains("v1.3.0") { "v1.3.0" } else { "v1.2.3" };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let values: Vec<serde_json::Value> = (self.0)(arm, query.contains("latency"))
            .into_iter()
            .enumerate()
            .map(|(i, v)| serde_json::json!([now - 3600 + 60 * i as u64, v]))
            .collect();
        let result = if values.is_empty() {
            serde_json::json!([])
        } else {
            serde_json::json!([{"metric": {"version": arm}, "values": values}])
        };
        wiremock::ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    }
}

/// Sends every request on to the same path without `/moved` (an ingress's redirect).
struct MovedOn;

impl wiremock::Respond for MovedOn {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        // A relative location, as an ingress writes one: the same host, the path moved.
        let path = request.url.path().replacen("/moved", "", 1);
        let to = match request.url.query() {
            Some(query) => format!("{path}?{query}"),
            None => path,
        };
        wiremock::ResponseTemplate::new(308).insert_header("location", to.as_str())
    }
}

async fn canary_against(steps: fn(&str, bool) -> Vec<String>, extra: &str) -> crate::support::Run {
    canary_at(steps, extra, "").await
}

/// [`canary_against`] with the config's URL given `prefix` as its path.
async fn canary_at(steps: fn(&str, bool) -> Vec<String>, extra: &str, prefix: &str) -> crate::support::Run {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/api/v1/query_range"))
        .respond_with(Steps(steps))
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::path("/moved/api/v1/query_range"))
        .respond_with(MovedOn)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = CONFIG
        .replace("http://127.0.0.1:PORT", &format!("{}{prefix}", server.uri()))
        .replace("  min_samples: 500\n", &format!("  min_samples: 500\n{extra}"));
    std::fs::write(dir.path().join("promptgate.yaml"), config).unwrap();
    let repo = dir.path().to_owned();
    let run = tokio::task::spawn_blocking(move || promptgate_in(&repo, &["canary", "--window", "1h", "--out", "out"]))
        .await
        .unwrap();
    drop(dir);
    run
}

/// Equal arms of 61 steps, the canary's first `n_bad` latency steps written as `bad`.
fn level(arm: &str, latency: bool, n_bad: usize, bad: &str) -> Vec<String> {
    (0..61)
        .map(|i| match arm {
            "v1.3.0" if latency && i < n_bad => bad.to_owned(),
            _ => format!("{:.1}", 600.0 + (i % 7) as f64 * 3.0),
        })
        .collect()
}

/// Steps whose value is no number are never dropped silently: `histogram_quantile` answers
/// +Inf when the canary's p95 lies above the highest bucket, and leaving those steps out
/// promoted a canary slower than every bucket (audit: 40 of 61 steps +Inf, promoted, exit 0).
/// Above `max_bad_share` they stop the canary (exit 2); below it they count at the largest
/// value measured. NaN (no requests in a step) is no observation: left out and said.
/// A baseline no query returns data for is a selector that matches nothing (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_that_are_no_number_are_never_dropped_silently() {
    canary_against(|arm, latency| level(arm, latency, 40, "+Inf"), "")
        .await
        .expect_code(2)
        .stderr_has("40 of 61 steps of `latency_p95_ms` for `v1.3.0` are infinite, 65.6%, above the limit of 1%")
        .stderr_has("hint: +Inf from `histogram_quantile` means the quantile lies above the highest bucket");
    // Below the limit an infinite step counts at the largest value measured (618 here).
    let run = canary_against(|arm, latency| level(arm, latency, 2, "+Inf"), "  max_bad_share: 0.05\n").await;
    assert_ne!(run.code, 2, "{}", run.stderr);
    run.stdout_has("2 of 61 steps of `latency_p95_ms` for `v1.3.0` were infinite (above the highest bucket) and count at the largest value measured, 618");
    // NaN is a step without requests: no observation, left out and said, at any share.
    let run = canary_against(|arm, latency| level(arm, latency, 30, "NaN"), "").await;
    assert_ne!(run.code, 2, "{}", run.stderr);
    run.stdout_has(
        "30 of 61 steps of `latency_p95_ms` for `v1.3.0` had no value (NaN: no requests in the step) and are left out",
    );
    // A value that is no number's text is a broken answer (exit 3): it read as NaN, "no
    // requests in the step", and was left out.
    canary_against(|arm, latency| level(arm, latency, 1, "abc"), "")
        .await
        .expect_code(3)
        .stderr_has("holds `abc` at")
        .stderr_has("which is no number");
    canary_against(
        |arm, latency| {
            if arm == "v1.2.3" {
                Vec::new()
            } else {
                level(arm, latency, 0, "")
            }
        },
        "",
    )
    .await
    .expect_code(2)
    .stderr_has("no query returned data for the baseline `v1.2.3`");
}

/// A Prometheus behind a redirect (an ingress sending `http://` on to `https://`) is followed,
/// as it was before the providers stopped following redirects (a review's catch): the canary
/// reads the same steps as at the address itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_behind_a_redirect_is_followed() {
    let direct = canary_at(|arm, latency| level(arm, latency, 0, ""), "", "").await;
    let moved = canary_at(|arm, latency| level(arm, latency, 0, ""), "", "/moved").await;
    assert_eq!(moved.code, direct.code, "{}", moved.stderr);
    assert!(!moved.stderr.contains("HTTP 308"), "{}", moved.stderr);
}

/// Prometheus series count steps, not requests: a canary with too few of them says so in
/// those words (it said "too few requests" of steps).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_few_steps_are_called_steps() {
    let run = canary_against(
        |_, _| (0..5).map(|i| format!("{:.1}", 600.0 + f64::from(i))).collect(),
        "",
    )
    .await;
    run.expect_code(4)
        .stdout_has("too few steps")
        .stdout_has(" steps per arm");
    assert!(!run.stdout.contains("requests"), "{}", run.stdout);
    // How many more: the 5 steps it has count (a series has no requests; it said all of them
    // were still needed, and no time).
    let needed = run
        .stdout
        .lines()
        .find(|l| l.contains("steps per arm ("))
        .unwrap_or_default();
    let number = |after: &str| -> u64 {
        let rest = &needed[needed.find(after).unwrap() + after.len()..];
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(number("about ") - number("steps per arm ("), 5, "{needed}");
    assert!(needed.contains(" h at the current traffic"), "{needed}");
}
