//! `promptgate ci` end to end: the built binary, a real `pull_request` payload from
//! `fixtures/github/`, and a fake GitHub API on 127.0.0.1 that records every request.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{Run, TestRepo, fixture};

const REPO: &str = "octo-org/prompts";
const TOKEN: &str = "ghs_FAKE0TOKEN0never0printed0000000000";
const MARKER: &str = "<!-- promptgate:report -->";
const BOT: &str = "github-actions[bot]";
/// The asset branch's head before the run, its tree, and the commit the run creates on it.
const ASSET_BASE: &str = "a55e7ba5e0000000000000000000000000000001";
const ASSET_BASE_TREE: &str = "7ee0000000000000000000000000000000000001";
const ASSET_TREE: &str = "7ee0000000000000000000000000000000000002";
const ASSET_COMMIT: &str = "c0ffee0000000000000000000000000000000002";

/// The Git Data requests that publish the charts on an existing `promptgate-assets` branch.
fn asset_lines(blobs: usize) -> Vec<String> {
    let r = |p: &str| format!("/repos/{REPO}{p}");
    let mut lines = vec![format!("POST {}", r("/git/blobs")); blobs];
    lines.extend([
        format!("GET {}", r("/git/ref/heads/promptgate-assets")),
        format!("GET {}", r(&format!("/git/commits/{ASSET_BASE}"))),
        format!("POST {}", r("/git/trees")),
        format!("POST {}", r("/git/commits")),
        format!("PATCH {}", r("/git/refs/heads/promptgate-assets")),
    ]);
    lines
}

fn blob_count(lines: &[String]) -> usize {
    let blobs = lines.iter().filter(|l| l.ends_with("/git/blobs")).count();
    assert!(blobs >= 2, "the demo draws several charts: {lines:?}");
    blobs
}

/// The demo's base on `main`, the demo's PR tree on `pr`; returns (base, head) SHAs.
fn demo_pr(repo: &TestRepo) -> (String, String) {
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    let head = repo.commit("pr");
    (base, head)
}

/// The fixture payload, pointed at this repository's commits.
fn event(dir: &Path, base: &str, head: &str, labels: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/github/pull_request.synchronize.json"),
    )
    .unwrap();
    let mut payload: Value = serde_json::from_str(&text).unwrap();
    payload["pull_request"]["base"]["sha"] = json!(base);
    payload["pull_request"]["head"]["sha"] = json!(head);
    payload["after"] = json!(head);
    payload["pull_request"]["labels"] = labels.iter().map(|l| json!({"name": l})).collect();
    let path = dir.join(format!("event-{}.json", &head[..8]));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    path
}

struct Ci {
    run: Run,
    output: String,
    summary: String,
}

/// How a `promptgate ci` run is started: the event, and variables besides the Actions ones.
#[derive(Clone)]
struct Env {
    event_name: &'static str,
    vars: Vec<(String, String)>,
}

impl Env {
    fn pull_request() -> Env {
        Env {
            event_name: "pull_request",
            vars: Vec::new(),
        }
    }

    fn named(event_name: &'static str) -> Env {
        Env {
            event_name,
            vars: Vec::new(),
        }
    }

    fn var(mut self, name: &str, value: &str) -> Env {
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Runs `promptgate ci ARGS` in the repository with the Actions environment set.
fn ci(dir: &Path, api: &str, event: &Path, args: &[&str]) -> Ci {
    ci_with(dir, api, event, args, &Env::pull_request())
}

fn ci_with(dir: &Path, api: &str, event: &Path, args: &[&str], env: &Env) -> Ci {
    let scratch = dir.join(".scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let output = scratch.join("github_output");
    let summary = scratch.join("step_summary");
    let _ = std::fs::remove_file(&output);
    let _ = std::fs::remove_file(&summary);
    let mut command = Command::new(env!("CARGO_BIN_EXE_promptgate"));
    command
        .current_dir(dir)
        .arg("ci")
        .args(args)
        .env("NO_COLOR", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_EVENT_NAME", env.event_name)
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", api)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("XDG_CACHE_HOME", crate::support::test_cache_home(dir))
        .env_remove("PROMPTGATE_CACHE_DIR")
        .env_remove("GITHUB_SERVER_URL")
        .env_remove("GITHUB_RUN_ID")
        .env_remove("GITHUB_RUN_ATTEMPT");
    for (name, value) in &env.vars {
        command.env(name, value);
    }
    let out = command.output().expect("the binary runs");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN),
        "the token leaked"
    );
    Ci {
        run,
        output: std::fs::read_to_string(&output).unwrap_or_default(),
        summary: std::fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// Runs the binary on a blocking thread so the fake server keeps answering.
async fn ci_async(repo: &TestRepo, api: String, event: PathBuf, args: &[&str]) -> Ci {
    ci_async_in(repo.path(), api, event, args, Env::pull_request()).await
}

async fn ci_async_in(dir: &Path, api: String, event: PathBuf, args: &[&str], env: Env) -> Ci {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ci_with(&dir, &api, &event, &args, &env)
    })
    .await
    .unwrap()
}

/// An `issue_comment` payload: `login` commented `body` on pull request 7.
fn comment_event(dir: &Path, login: &str, body: &str) -> PathBuf {
    let payload = json!({
        "action": "created",
        "issue": {"number": 7, "pull_request": {"url": format!("https://api.github.com/repos/{REPO}/pulls/7")}},
        "comment": {"id": 80, "body": body, "user": user(login)},
        "repository": {"full_name": REPO},
        "sender": user(login),
    });
    let path = dir.join(format!("comment-event-{}.json", login));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    path
}

/// A `pull_request` `labeled`/`unlabeled` payload for `label`, with `labels` on the PR after it.
fn label_event(dir: &Path, base: &str, head: &str, action: &str, label: &str, labels: &[&str]) -> PathBuf {
    let path = event(dir, base, head, labels);
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    payload["action"] = json!(action);
    payload["label"] = json!({"name": label});
    payload["sender"] = user("maya");
    let path = dir.join(format!("{action}-{}.json", &head[..8]));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    path
}

/// `GET /pulls/7` answers with this pull request.
async fn pr_mock(server: &MockServer, base: &str, head: &str, labels: &[&str]) {
    json_mock(
        server,
        "GET",
        &format!("/repos/{REPO}/pulls/7"),
        200,
        json!({
            "number": 7,
            "base": {"ref": "main", "sha": base, "repo": {"full_name": REPO}},
            "head": {"ref": "tighten-refunds", "sha": head, "repo": {"full_name": REPO}},
            "labels": labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        }),
    )
    .await;
}

/// The body of the last update to our sticky comment (id 42).
async fn last_sticky_body(server: &MockServer) -> String {
    let (_, requests) = sequence(server).await;
    let last = requests
        .iter()
        .rev()
        .find(|q| q.method.as_str() == "PATCH" && q.url.path().ends_with("/issues/comments/42"))
        .expect("the sticky comment was updated");
    body(last)["body"].as_str().unwrap().to_owned()
}

/// When a test's waiver is given: a minute from now, after the results it accepts were
/// published (a waiver given before them accepted earlier ones).
fn given_at() -> String {
    promptgate::ledger::rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
}

fn user(login: &str) -> Value {
    json!({"login": login, "id": login.len(), "type": if login.ends_with("[bot]") { "Bot" } else { "User" }})
}

fn comment_json(id: u64, login: &str, body: &str) -> Value {
    json!({"id": id, "user": user(login), "body": body, "created_at": given_at(), "author_association": "MEMBER"})
}

thread_local! {
    /// How far the fake GitHub's clock (its answers' `Date` header) is from ours, in seconds;
    /// 0 leaves the header to the server (our clock). Read when a mock is made.
    static GITHUB_CLOCK_SECS: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// GitHub's answer with `status`, dated by [`GITHUB_CLOCK_SECS`].
fn reply(status: u16) -> ResponseTemplate {
    let skew = GITHUB_CLOCK_SECS.with(std::cell::Cell::get);
    let template = ResponseTemplate::new(status);
    if skew == 0 {
        return template;
    }
    template.insert_header("date", http_date(skewed(skew)).as_str())
}

/// Now moved by `secs`.
fn skewed(secs: i64) -> std::time::SystemTime {
    let by = std::time::Duration::from_secs(secs.unsigned_abs());
    let now = std::time::SystemTime::now();
    if secs < 0 { now - by } else { now + by }
}

/// An IMF-fixdate, as an HTTP server's `Date` header writes it.
fn http_date(at: std::time::SystemTime) -> String {
    let secs = at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(secs / 86_400 % 7) as usize];
    let rfc = promptgate::ledger::rfc3339(at); // 2026-12-04T23:49:08Z
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][rfc[5..7].parse::<usize>().unwrap() - 1];
    format!("{weekday}, {} {month} {} {} GMT", &rfc[8..10], &rfc[0..4], &rfc[11..19])
}

/// Serves pull request #7 from `base` to `head` on `branch` of `head_repo` (the fork's).
async fn serve_fork_pull(server: &MockServer, base: &str, head: &str, branch: &str, head_repo: Value) {
    let pull = json!({"number": 7, "base": {"ref": "main", "sha": base, "repo": {"full_name": REPO}},
        "head": {"ref": branch, "sha": head, "repo": head_repo}, "labels": []});
    json_mock(server, "GET", &format!("/repos/{REPO}/pulls/7"), 200, pull).await;
}

async fn json_mock(server: &MockServer, verb: &str, route: &str, status: u16, body: Value) {
    Mock::given(method(verb))
        .and(path(route))
        .respond_with(reply(status).set_body_json(body))
        .mount(server)
        .await;
}

/// A fake GitHub: the Actions token cannot read `/user`; the PR has two pages of comments, the
/// second holding our sticky comment; `reviews` is what listing reviews answers.
async fn fake_github(page2_extra: Vec<Value>, reviews: Value, permissions: &[(&str, &str)]) -> MockServer {
    fake_github_with(
        &format!("{MARKER}\n## ✅ promptgate: pass\nold numbers"),
        page2_extra,
        reviews,
        permissions,
    )
    .await
}

/// The pull request's events: `who` added `label` at `at` (event `id`).
async fn label_added(server: &MockServer, id: u64, who: &str, label: &str, at: &str) {
    let events =
        json!([{"id": id, "event": "labeled", "actor": user(who), "label": {"name": label}, "created_at": at}]);
    json_mock(server, "GET", &format!("/repos/{REPO}/issues/7/events"), 200, events).await;
}

/// [`fake_github`] with our sticky comment (id 42) holding `sticky`.
async fn fake_github_with(
    sticky: &str,
    page2_extra: Vec<Value>,
    reviews: Value,
    permissions: &[(&str, &str)],
) -> MockServer {
    fake_github_by(BOT, sticky, page2_extra, reviews, permissions).await
}

/// [`fake_github_with`], the token posting as `bot` (a GitHub App's token posts as `<app>[bot]`).
async fn fake_github_by(
    bot: &str,
    sticky: &str,
    page2_extra: Vec<Value>,
    reviews: Value,
    permissions: &[(&str, &str)],
) -> MockServer {
    let server = MockServer::start().await;
    json_mock(&server, "GET", "/user", 403, json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest/users/users#get-the-authenticated-user"})).await;
    let comments = format!("/repos/{REPO}/issues/7/comments");
    let mut page1: Vec<Value> = (1..=99)
        .map(|i| comment_json(1000 + i, "priya-dev", &format!("note {i}")))
        .collect();
    // A human pasting our marker must not be taken for the report.
    page1.push(comment_json(
        11,
        "mallory",
        &format!("{MARKER}\n## ✅ promptgate: pass"),
    ));
    let mut page2 = vec![comment_json(42, bot, sticky)];
    page2.extend(page2_extra);
    Mock::given(method("GET"))
        .and(path(comments.as_str()))
        .and(query_param("page", "2"))
        .respond_with(reply(200).set_body_json(Value::Array(page2)))
        .with_priority(1)
        .mount(&server)
        .await;
    let link = format!(
        r#"<{0}{comments}?per_page=100&page=2>; rel="next", <{0}{comments}?per_page=100&page=2>; rel="last""#,
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path(comments.as_str()))
        .respond_with(
            reply(200)
                .insert_header("link", link.as_str())
                .set_body_json(Value::Array(page1)),
        )
        .mount(&server)
        .await;
    json_mock(
        &server,
        "PATCH",
        &format!("/repos/{REPO}/issues/comments/42"),
        200,
        comment_json(42, bot, "updated"),
    )
    .await;
    json_mock(
        &server,
        "POST",
        &format!("/repos/{REPO}/check-runs"),
        201,
        json!({"id": 5, "name": "promptgate"}),
    )
    .await;
    json_mock(&server, "GET", &format!("/repos/{REPO}/pulls/7/reviews"), 200, reviews).await;
    json_mock(
        &server,
        "POST",
        &format!("/repos/{REPO}/pulls/7/reviews"),
        200,
        json!({"id": 99, "state": "CHANGES_REQUESTED"}),
    )
    .await;
    json_mock(
        &server,
        "PUT",
        &format!("/repos/{REPO}/pulls/7/reviews/99/dismissals"),
        200,
        json!({"id": 99, "state": "DISMISSED"}),
    )
    .await;
    let git = |p: &str| format!("/repos/{REPO}/git{p}");
    json_mock(
        &server,
        "GET",
        &git("/ref/heads/promptgate-assets"),
        200,
        json!({"ref": "refs/heads/promptgate-assets", "object": {"type": "commit", "sha": ASSET_BASE}}),
    )
    .await;
    json_mock(
        &server,
        "GET",
        &git(&format!("/commits/{ASSET_BASE}")),
        200,
        json!({"sha": ASSET_BASE, "tree": {"sha": ASSET_BASE_TREE}, "parents": []}),
    )
    .await;
    json_mock(
        &server,
        "POST",
        &git("/blobs"),
        201,
        json!({"sha": "b10b000000000000000000000000000000000001"}),
    )
    .await;
    json_mock(
        &server,
        "POST",
        &git("/trees"),
        201,
        json!({"sha": ASSET_TREE, "tree": []}),
    )
    .await;
    json_mock(
        &server,
        "POST",
        &git("/commits"),
        201,
        json!({"sha": ASSET_COMMIT, "tree": {"sha": ASSET_TREE}, "parents": [{"sha": ASSET_BASE}]}),
    )
    .await;
    json_mock(
        &server,
        "PATCH",
        &git("/refs/heads/promptgate-assets"),
        200,
        json!({"ref": "refs/heads/promptgate-assets", "object": {"type": "commit", "sha": ASSET_COMMIT}}),
    )
    .await;
    for (login, role) in permissions {
        let permission = if *role == "maintain" { "write" } else { role };
        json_mock(
            &server,
            "GET",
            &format!("/repos/{REPO}/collaborators/{login}/permission"),
            200,
            json!({"permission": permission, "role_name": role, "user": user(login)}),
        )
        .await;
    }
    server
}

/// "METHOD /path?query" of every request the server received, in order.
/// Each request's method and path, for a failing test's message.
fn sequence_of(requests: &[Request]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect()
}

async fn sequence(server: &MockServer) -> (Vec<String>, Vec<Request>) {
    let requests = server.received_requests().await.unwrap();
    let lines = requests
        .iter()
        .map(|r| match r.url.query() {
            Some(q) => format!("{} {}?{q}", r.method, r.url.path()),
            None => format!("{} {}", r.method, r.url.path()),
        })
        .collect();
    (lines, requests)
}

/// The body of the check run the fake GitHub received.
async fn check_run(server: &MockServer) -> Value {
    let (_, requests) = sequence(server).await;
    requests
        .iter()
        .find(|q| q.url.path().ends_with("/check-runs"))
        .map(body)
        .expect("a check run was created")
}

fn body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ci_updates_the_sticky_comment_fails_the_check_then_a_fixing_push_passes() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let r = |p: &str| format!("/repos/{REPO}{p}");

    // First push: a regression. An old accept comment is not looked at: waivers are bound
    // when given, by their own run, never found by an evaluation.
    let server = fake_github(
        vec![comment_json(77, "tri", "/promptgate accept the judge is flaky")],
        json!([]),
        &[("tri", "admin")],
    )
    .await;
    let first = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--review", "--out", "out"],
    )
    .await;
    first
        .run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stdout_has("::error file=prompts/customer-support.md,line=14,");
    let (lines, requests) = sequence(&server).await;
    let blobs = blob_count(&lines);
    let mut expected = vec![
        "GET /user".to_owned(),
        format!("GET {}?per_page=100", r("/issues/7/comments")),
        format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
        format!("PATCH {}", r("/issues/comments/42")),
        // A failing verdict reads the comments again: a waiver's run may have recorded one.
        format!("GET {}?per_page=100", r("/issues/7/comments")),
        format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
    ];
    expected.extend(asset_lines(blobs));
    expected.extend([
        format!("PATCH {}", r("/issues/comments/42")),
        format!("POST {}", r("/check-runs")),
        format!("GET {}?per_page=100", r("/pulls/7/reviews")),
        format!("POST {}", r("/pulls/7/reviews")),
    ]);
    assert_eq!(lines, expected);
    // The report's PATCH follows the blobs and the five other Git Data requests.
    let k = 6 + blobs + 5;
    assert!(requests.iter().all(|q| {
        q.headers
            .get("authorization")
            .is_some_and(|v| v.to_str().unwrap() == format!("Bearer {TOKEN}"))
    }));
    let progress = body(&requests[3]);
    let progress = progress["body"].as_str().unwrap();
    assert!(
        progress.starts_with(MARKER) && progress.contains("Evaluating 3 experiments, "),
        "{progress}"
    );
    let report = body(&requests[k]);
    let report = report["body"].as_str().unwrap();
    assert!(
        report.starts_with(MARKER) && report.contains("promptgate: regression"),
        "{report}"
    );
    assert!(!report.contains("Regression accepted"));
    let check = body(&requests[k + 1]);
    assert_eq!(check["name"], "promptgate");
    assert_eq!(check["head_sha"], head.as_str());
    assert_eq!(check["status"], "completed");
    assert_eq!(check["conclusion"], "failure");
    // The verdict's word once: "regression: customer-support: …", never "regression:
    // regression in …".
    let title = check["output"]["title"].as_str().unwrap();
    assert!(!title.contains("regression: regression"), "{title}");
    assert!(
        title.starts_with("regression: customer-support") || title.starts_with("regression in customer-support"),
        "{}",
        check["output"]["title"]
    );
    let annotations = check["output"]["annotations"].as_array().unwrap();
    let on = |p: &str| {
        annotations
            .iter()
            .find(|a| a["path"] == p)
            .unwrap_or_else(|| panic!("no annotation on {p}: {annotations:?}"))
    };
    // On the changed lines: the refunds include replaced by three lines, the version bumped.
    let prompt = on("prompts/customer-support.md");
    assert_eq!(prompt["annotation_level"], "failure");
    assert_eq!((&prompt["start_line"], &prompt["end_line"]), (&json!(14), &json!(16)));
    let config = on("configs/customer-support.yaml");
    assert_eq!(config["annotation_level"], "failure");
    assert_eq!(config["start_line"], 2);
    assert_eq!(on("prompts/product-faq.md")["annotation_level"], "notice");
    assert!(
        annotations.iter().all(|a| a["path"] != "prompts/partials/refunds.md"),
        "a deleted file cannot be annotated"
    );
    let review = body(&requests[k + 3]);
    assert_eq!(review["event"], "REQUEST_CHANGES");
    assert_eq!(review["commit_id"], head.as_str());
    assert!(first.output.contains("verdict=fail\n"), "{}", first.output);
    assert!(first.output.contains("experiments-affected=3\n"), "{}", first.output);
    assert!(first.summary.contains("promptgate: regression"), "{}", first.summary);

    // A fixing push: customer-support and help-center are back to the base's files, so only
    // product-faq runs.
    for file in [
        "prompts/customer-support.md",
        "prompts/partials/refunds.md",
        "configs/customer-support.yaml",
        "prompts/help-center.md",
        "configs/help-center.yaml",
    ] {
        repo.write(file, &std::fs::read_to_string(fixture("base").join(file)).unwrap());
    }
    let fixed = repo.commit("restore the refund policy");
    let ours = json!([{"id": 99, "user": user(BOT), "state": "CHANGES_REQUESTED", "body": "<!-- promptgate:review -->\npromptgate found a regression"},
                      {"id": 98, "user": user("maya"), "state": "CHANGES_REQUESTED", "body": "please fix"}]);
    let server = fake_github(vec![], ours, &[]).await;
    let second = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &fixed, &[]),
        &["--review", "--out", "out"],
    )
    .await;
    second.run.expect_code(0).stdout_has("verdict: PASS");
    let (lines, requests) = sequence(&server).await;
    let blobs = blob_count(&lines);
    let mut expected = vec![
        "GET /user".to_owned(),
        format!("GET {}?per_page=100", r("/issues/7/comments")),
        format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
        format!("PATCH {}", r("/issues/comments/42")),
    ];
    expected.extend(asset_lines(blobs));
    expected.extend([
        format!("PATCH {}", r("/issues/comments/42")),
        format!("POST {}", r("/check-runs")),
        format!("GET {}?per_page=100", r("/pulls/7/reviews")),
        format!("PUT {}", r("/pulls/7/reviews/99/dismissals")),
    ]);
    assert_eq!(lines, expected);
    let k = 4 + blobs + 5;
    let check = body(&requests[k + 1]);
    assert_eq!(check["conclusion"], "success");
    assert_eq!(check["head_sha"], fixed.as_str());
    assert_eq!(body(&requests[k + 3])["event"], "DISMISS");
    assert!(second.output.contains("verdict=pass\n"));
}

/// A provider key that must never reach GitHub, an output or a log.
const CANARY_KEY: &str = "sk-canary-KEY-0123456789abcdef";

/// The demo's pull request, evaluated as a regression: the repository, base, head and the
/// sticky comment it left.
async fn regressed_demo() -> (TestRepo, String, String, String) {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let sticky = evaluated_regression(&repo, &base, &head).await;
    (repo, base, head, sticky)
}

/// Evaluates the demo pull request (a regression) and returns the sticky comment it left.
async fn evaluated_regression(repo: &TestRepo, base: &str, head: &str) -> String {
    let server = fake_github(vec![], json!([]), &[]).await;
    ci_async(
        repo,
        server.uri(),
        event(repo.path(), base, head, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await
    .run
    .expect_code(1);
    last_sticky_body(&server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_comment_republishes_the_last_results_without_evaluating() {
    let (_repo, base, head, sticky) = regressed_demo().await;
    assert!(sticky.contains("<!-- promptgate:state "), "{sticky}");

    // The waiver's run: no checkout (an empty folder), a provider key in the environment.
    let empty = tempfile::tempdir().unwrap();
    let extra = vec![comment_json(
        80,
        "maya",
        "/promptgate accept refunds moved to the help center on purpose",
    )];
    let server = fake_github_with(&sticky, extra, json!([]), &[("maya", "admin")]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        comment_event(
            empty.path(),
            "maya",
            "/promptgate accept refunds moved to the help center on purpose",
        ),
        &["--out", "out"],
        Env::named("issue_comment").var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
    assert!(!run.run.stderr.contains("evaluating"), "{}", run.run.stderr);
    assert!(!empty.path().join("out").exists(), "nothing was evaluated or written");
    let (lines, requests) = sequence(&server).await;
    let r = |p: &str| format!("/repos/{REPO}{p}");
    assert_eq!(
        lines,
        [
            format!("GET {}", r("/pulls/7")),
            "GET /user".to_owned(),
            format!("GET {}?per_page=100", r("/issues/7/comments")),
            format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
            format!("GET {}", r("/collaborators/maya/permission")),
            // Whether a gate run wrote the comment while the waiver was looked up.
            format!("GET {}?per_page=100", r("/issues/7/comments")),
            format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
            format!("PATCH {}", r("/issues/comments/42")),
            format!("POST {}", r("/check-runs")),
        ]
    );
    for q in &requests {
        let text = String::from_utf8_lossy(&q.body);
        assert!(!text.contains(CANARY_KEY), "the key was sent: {text}");
        assert!(
            q.headers
                .values()
                .all(|v| !v.to_str().unwrap_or("").contains(CANARY_KEY))
        );
    }
    let check = body(&requests[8]);
    assert_eq!(check["conclusion"], "neutral");
    assert_eq!(check["head_sha"], head.as_str());
    let comment = body(&requests[7]);
    let text = comment["body"].as_str().unwrap();
    assert!(
        text.contains("### ⚠️ promptgate: waived — regression accepted by maya"),
        "{text}"
    );
    assert!(
        text.contains("Regression accepted") && text.contains("refunds moved to the help center on purpose"),
        "{text}"
    );
    // Who, when, which commit and what, recorded for the next push.
    assert!(text.contains(&format!("for `{}`", &head[..12])), "{text}");
    assert!(text.contains("pass_rate in customer-support"), "{text}");
    // In the table's unit: percentage points, not a raw share (it read "Δ -0.318 [-0.464, …]").
    let accepted = text
        .lines()
        .find(|l| l.contains("pass_rate in customer-support"))
        .unwrap();
    assert!(accepted.contains(" pp") && !accepted.contains("Δ -0."), "{accepted}");
    assert!(run.output.contains("verdict=waived\n"), "{}", run.output);
}

/// The waiver run of `comment` (its event created it) on the regressed demo's pull request,
/// its author `login` having `role`: the run and the fake GitHub it spoke to.
async fn accept_comment_run(comment: Value, login: &str, role: &str) -> (Ci, MockServer) {
    let (_repo, base, head, sticky) = regressed_demo().await;
    let empty = tempfile::tempdir().unwrap();
    let body = comment["body"].as_str().unwrap().to_owned();
    let server = fake_github_with(&sticky, vec![comment], json!([]), &[(login, role)]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        comment_event(empty.path(), login, &body),
        &["--out", "out"],
        Env::named("issue_comment"),
    )
    .await;
    (run, server)
}

/// The contract's waiver is "a `/promptgate accept` comment": a bare one waives too, recorded
/// as given without a reason. The comment this run's event created is given now, though the
/// API dates it long before the results (here the date in GitHub's documented example).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_accept_comment_waives_and_says_no_reason_was_given() {
    let mut comment = comment_json(80, "maya", "/promptgate accept");
    comment["created_at"] = json!("2011-04-14T16:00:49Z");
    let (run, server) = accept_comment_run(comment, "maya", "admin").await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
    // The job's outputs and summary say what was re-published.
    assert!(run.output.contains("verdict=waived\n"), "{}", run.output);
    assert!(
        run.summary.contains("re-published #7, nothing evaluated") && run.summary.contains("**WAIVED**"),
        "{}",
        run.summary
    );
    let text = last_sticky_body(&server).await;
    assert!(
        text.contains("regression accepted by maya") && text.contains("`/promptgate accept` (no reason given)"),
        "{text}"
    );
}

/// GitHub names a comment's author, not its last editor: a maintainer's comment edited into
/// `/promptgate accept` (by anyone with write access) is no waiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_comment_edited_after_it_was_written_is_no_waiver() {
    let mut comment = comment_json(80, "maya", "/promptgate accept on purpose");
    comment["updated_at"] = json!(promptgate::ledger::rfc3339(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600)
    ));
    let (run, _) = accept_comment_run(comment, "maya", "admin").await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stderr_has("that was edited after it was written: give the waiver in a new comment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_maintainers_accept_comment_changes_nothing() {
    let comment = comment_json(81, "tri", "/promptgate accept the judge is flaky");
    let (run, server) = accept_comment_run(comment, "tri", "write").await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stderr_has("only admins and maintainers may accept a regression");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
}

/// A maintainer adds the accept label to the pull request whose comment is `sticky`: the
/// waiver's run re-publishes without evaluating and passes. Returns the comment it left.
async fn labeled_by_maintainer(sticky: &str, base: &str, head: &str, event_id: u64, given: &str) -> String {
    let empty = tempfile::tempdir().unwrap();
    let server = fake_github_with(sticky, vec![], json!([]), &[("maya", "maintain")]).await;
    let label = "promptgate:accept-regression";
    pr_mock(&server, base, head, &[label]).await;
    label_added(&server, event_id, "maya", label, given).await;
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        label_event(empty.path(), base, head, "labeled", label, &[label]),
        &["--out", "out"],
        Env::pull_request(),
    )
    .await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
    last_sticky_body(&server).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintainers_label_waives_without_evaluating_and_removing_it_fails_again() {
    let (_repo, base, head, sticky) = regressed_demo().await;
    let empty = tempfile::tempdir().unwrap();
    let label = "promptgate:accept-regression";
    let waived = labeled_by_maintainer(&sticky, &base, &head, 501, &given_at()).await;
    assert!(waived.contains("the `promptgate:accept-regression` label"), "{waived}");

    // The label comes off: the same results fail again, still without evaluating.
    let server = fake_github_with(&waived, vec![], json!([]), &[("maya", "maintain")]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        label_event(empty.path(), &base, &head, "unlabeled", label, &[]),
        &["--out", "out"],
        Env::pull_request(),
    )
    .await;
    run.run.expect_code(1).stdout_has("verdict: FAIL");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
}

/// The results are timed by GitHub's clock (its answers' `Date`), as the waiver is (its
/// `created_at`): on a runner whose clock is an hour ahead of GitHub's, a label given a minute
/// after the results were published still waives them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiver_is_timed_by_githubs_clock_not_the_runners() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    GITHUB_CLOCK_SECS.with(|c| c.set(-3600));
    let before = promptgate::ledger::rfc3339(skewed(-3600 - 1));
    let sticky = evaluated_regression(&repo, &base, &head).await;
    let after = promptgate::ledger::rfc3339(skewed(-3600));
    let at = sticky
        .split("\"at\":\"")
        .nth(1)
        .map(|rest| &rest[..20])
        .unwrap_or_default();
    assert!(
        before.as_str() <= at && at <= after.as_str(),
        "published at {at}, by GitHub's clock from {before} to {after}"
    );
    let given = promptgate::ledger::rfc3339(skewed(-3600 + 60));
    let waived = labeled_by_maintainer(&sticky, &base, &head, 504, &given).await;
    assert!(waived.contains("the `promptgate:accept-regression` label"), "{waived}");
}

/// On a fork's pull request the label comes as `pull_request_target` (the waiver workflow's
/// trigger; a fork's `pull_request` run cannot publish): it re-publishes the same way, and the
/// refusal to evaluate under that event does not stand in its way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maintainers_label_on_a_forks_pull_request_waives_under_pull_request_target() {
    let (_repo, base, head, sticky) = regressed_demo().await;
    let empty = tempfile::tempdir().unwrap();
    let server = fake_github_with(&sticky, vec![], json!([]), &[("maya", "maintain")]).await;
    let label = "promptgate:accept-regression";
    // The pull request as the API has it: a fork's (the results are a maintainer's trusted
    // evaluation of its commit).
    json_mock(
        &server,
        "GET",
        &format!("/repos/{REPO}/pulls/7"),
        200,
        json!({
            "number": 7,
            "base": {"ref": "main", "sha": base, "repo": {"full_name": REPO}},
            "head": {"ref": "tighten-refunds", "sha": head, "repo": {"full_name": "outside-contrib/prompts"}},
            "labels": [{"name": label}],
        }),
    )
    .await;
    label_added(&server, 503, "maya", label, &given_at()).await;
    let event = label_event(empty.path(), &base, &head, "labeled", label, &[label]);
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&event).unwrap()).unwrap();
    payload["pull_request"]["head"]["repo"] = json!({"full_name": "outside-contrib/prompts"});
    std::fs::write(&event, serde_json::to_string(&payload).unwrap()).unwrap();
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        event,
        &["--out", "out"],
        Env::named("pull_request_target"),
    )
    .await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
    assert!(
        last_sticky_body(&server)
            .await
            .contains("the `promptgate:accept-regression` label")
    );
    // Waived is neutral: it lets the merge through a required check.
    assert_eq!(check_run(&server).await["conclusion"], "neutral");
    assert!(!empty.path().join("out/results.json").exists(), "nothing was evaluated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_base_that_does_not_load_is_an_error_until_a_maintainer_waives_it() {
    let repo = TestRepo::with_demo_base();
    repo.edit("promptgate.yaml", "experiments:", "experiments: [");
    let base = repo.commit("break the suite on main");
    repo.checkout_new("pr");
    repo.replace_tree(&fixture("pr"));
    let head = repo.commit("pr, with a working suite");
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(3)
        .stdout_has("verdict: ERROR")
        .stderr_has("a maintainer may accept this run");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
    // The run finished: the check names the base, not a run that could not finish.
    let title = check["output"]["title"].as_str().unwrap();
    assert!(title.starts_with("run error: the suite at base"), "{title}");
    let sticky = last_sticky_body(&server).await;
    assert!(sticky.contains("promptgate.yaml:16:"), "{sticky}");

    // The Action's evaluating half hands the verdict on as 1, for the publishing half (which
    // holds the waivers) to decide; the results say `error`.
    let handed = ci_async(
        &repo,
        "http://127.0.0.1:9".to_owned(),
        event(repo.path(), &base, &head, &[]),
        &["--no-publish", "--out", "evaluated"],
    )
    .await;
    handed.run.expect_code(1).stderr_has("a maintainer may accept this run");
    let evaluated: Value = serde_json::from_str(&repo.read("evaluated/results.json")).unwrap();
    assert_eq!(evaluated["verdict"], "error");

    // A maintainer's label lifts it, without evaluating.
    let label = "promptgate:accept-regression";
    let waived = labeled_by_maintainer(&sticky, &base, &head, 502, &given_at()).await;
    // No metric regressed (the base did not load): a failure accepted, not a regression.
    assert!(
        waived.contains("### ⚠️ promptgate: waived — failure accepted by maya"),
        "{waived}"
    );

    // The next push is evaluated with the label still on: the waiver holds, the run exits 0.
    repo.write("docs/style-guide.md", "# Style\n\nShort sentences.\n");
    let next = repo.commit("docs only");
    let server = fake_github_with(&waived, vec![], json!([]), &[("maya", "maintain")]).await;
    pr_mock(&server, &base, &next, &[label]).await;
    label_added(&server, 502, "maya", label, &given_at()).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &next, &[label]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
    let results: Value = serde_json::from_str(&repo.read("out/results.json")).unwrap();
    assert_eq!(results["verdict"], "waived");
    assert!(
        results["base_error"]
            .as_str()
            .is_some_and(|e| e.contains("promptgate.yaml:16:"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accept_comment_older_than_the_results_does_not_accept_them() {
    let (_repo, base, head, sticky) = regressed_demo().await;
    // A maintainer's accept from before these results (it accepted an earlier push's), still on
    // the pull request when a label is taken off: it is not bound to the results it never saw.
    let old = json!({"id": 79, "user": user("maya"), "body": "/promptgate accept the old regression",
        "created_at": "2020-01-01T00:00:00Z", "author_association": "MEMBER"});
    let server = fake_github_with(&sticky, vec![old], json!([]), &[("maya", "admin")]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let empty = tempfile::tempdir().unwrap();
    let label = "promptgate:accept-regression";
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        label_event(empty.path(), &base, &head, "unlabeled", label, &[]),
        &["--out", "out"],
        Env::pull_request(),
    )
    .await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stderr_has("was given before these results were published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_push_with_a_new_regression_is_not_covered_by_the_old_waiver() {
    let (repo, base, head, sticky) = regressed_demo().await;
    let waiver = comment_json(80, "maya", "/promptgate accept refunds moved on purpose");
    let server = fake_github_with(&sticky, vec![waiver.clone()], json!([]), &[("maya", "admin")]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let empty = tempfile::tempdir().unwrap();
    ci_async_in(
        empty.path(),
        server.uri(),
        comment_event(empty.path(), "maya", "/promptgate accept refunds moved on purpose"),
        &[],
        Env::named("issue_comment"),
    )
    .await
    .run
    .expect_code(0);
    let waived = last_sticky_body(&server).await;

    // A push that keeps the accepted regression and changes nothing else stays waived.
    repo.write("docs/style-guide.md", "# Style\n\nShort sentences.\n");
    let same = repo.commit("docs only");
    let server = fake_github_with(&waived, vec![waiver.clone()], json!([]), &[("maya", "admin")]).await;
    ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &same, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await
    .run
    .expect_code(0)
    .stdout_has("verdict: WAIVED");
    let still = last_sticky_body(&server).await;

    // A push that breaks the FAQ as well: the old waiver does not cover it.
    repo.write(
        "prompts/product-faq.md",
        "# Trailhead product expert\n\nAnswer briefly.\n",
    );
    let broken = repo.commit("shorten the FAQ prompt to nothing");
    let server = fake_github_with(&still, vec![waiver], json!([]), &[("maya", "admin")]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &broken, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stdout_has("does not cover")
        .stdout_has("in product-faq (new)");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
    let results: Value = serde_json::from_str(&repo.read("out/results.json")).unwrap();
    assert_eq!(results["verdict"], "fail");
    assert!(results.get("waiver").is_none());
}

/// The sticky comment's state can be edited by anyone with write access: a waiver it records
/// counts only while GitHub shows it given by that admin or maintainer. A write-access user
/// who points the recorded waiver at an accept comment of their own waives nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiver_planted_in_the_state_waives_nothing() {
    let (repo, base, head, sticky) = regressed_demo().await;
    let text = "/promptgate accept refunds moved on purpose";
    let server = fake_github_with(
        &sticky,
        vec![comment_json(80, "maya", text)],
        json!([]),
        &[("maya", "admin")],
    )
    .await;
    pr_mock(&server, &base, &head, &[]).await;
    let empty = tempfile::tempdir().unwrap();
    ci_async_in(
        empty.path(),
        server.uri(),
        comment_event(empty.path(), "maya", text),
        &[],
        Env::named("issue_comment"),
    )
    .await
    .run
    .expect_code(0);
    let waived = last_sticky_body(&server).await;
    assert!(waived.contains("\"source_id\":80"), "{waived}");

    repo.write("docs/style-guide.md", "# Style\n\nShort sentences.\n");
    let same = repo.commit("docs only");
    let push = |comment: Value, who: &'static str, permission: &'static str| {
        let (repo, waived, base) = (&repo, waived.clone(), base.clone());
        let same = same.clone();
        async move {
            let server = fake_github_with(&waived, vec![comment], json!([]), &[(who, permission)]).await;
            let run = ci_async(
                repo,
                server.uri(),
                event(repo.path(), &base, &same, &[]),
                &["--no-assets", "--out", "out"],
            )
            .await;
            (run, server)
        }
    };
    // Comment 80 is a write-access user's own accept comment (the maintainer's is gone).
    let (run, server) = push(comment_json(80, "tri", text), "tri", "write").await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: FAIL")
        .stderr_has("the waiver by maya no longer counts");
    assert_eq!(check_run(&server).await["conclusion"], "failure");
    // The maintainer's own comment still there: waived, as before.
    let (run, _) = push(comment_json(80, "maya", text), "maya", "admin").await;
    run.run.expect_code(0).stdout_has("verdict: WAIVED");
}

/// Waives the regressed demo with maya's accept comment, then sends the comment's `action`
/// event (its payload changed by `change`) to a GitHub that lists `comments` instead: the
/// re-published check must fail again, the waiver withdrawn.
async fn the_waiver_is_withdrawn_by(action: &str, comments: Vec<Value>, change: impl Fn(&mut Value)) {
    let (_repo, base, head, sticky) = regressed_demo().await;
    let server = fake_github_with(
        &sticky,
        vec![comment_json(80, "maya", ACCEPT)],
        json!([]),
        &[("maya", "admin")],
    )
    .await;
    pr_mock(&server, &base, &head, &[]).await;
    let empty = tempfile::tempdir().unwrap();
    let given = comment_event(empty.path(), "maya", ACCEPT);
    ci_async_in(
        empty.path(),
        server.uri(),
        given.clone(),
        &[],
        Env::named("issue_comment"),
    )
    .await
    .run
    .expect_code(0);
    let waived = last_sticky_body(&server).await;
    let server = fake_github_with(&waived, comments, json!([]), &[("maya", "admin")]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&given).unwrap()).unwrap();
    payload["action"] = json!(action);
    change(&mut payload);
    let path = empty.path().join(format!("{action}.json"));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    let run = ci_async_in(empty.path(), server.uri(), path, &[], Env::named("issue_comment")).await;
    run.run.expect_code(1).stdout_has("verdict: FAIL");
    assert_eq!(check_run(&server).await["conclusion"], "failure");
}

const ACCEPT: &str = "/promptgate accept refunds moved on purpose";

/// Deleting the accept comment withdraws the waiver (the example waiver workflow runs on
/// `deleted` too): GitHub sends the comment's last body, and lists it no more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_accept_comment_withdraws_the_waiver() {
    the_waiver_is_withdrawn_by("deleted", vec![], |_| {}).await;
}

/// Editing the accept comment into something else withdraws the waiver at once: the event's
/// earlier text routes it to a re-publish, which finds no waiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_the_accept_comment_away_withdraws_the_waiver() {
    let mut edited = comment_json(80, "maya", "never mind");
    edited["updated_at"] = json!(promptgate::ledger::rfc3339(std::time::SystemTime::now()));
    the_waiver_is_withdrawn_by("edited", vec![edited], |payload| {
        payload["comment"]["body"] = json!("never mind");
        payload["changes"] = json!({"body": {"from": ACCEPT}});
    })
    .await;
}

/// An edit never gives a waiver: a comment edited into `/promptgate accept` does nothing (no
/// request: nothing listens on the API's port), whoever edited it.
/// An answer whose headers trickle in, a line at a time, each within the read timeout, is
/// still bound by the answer's deadline (the audit's fake held a job 276 s and counting: the
/// deadline covered only the body). The server stops after 60 s, so a regression fails
/// instead of hanging the suite.
#[test]
fn an_answer_whose_headers_trickle_in_stops_at_the_deadline() {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n");
                for _ in 0..200 {
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    if stream.write_all(b"x-trickle: 1\r\n").is_err() {
                        return;
                    }
                }
            });
        }
    });
    let empty = tempfile::tempdir().unwrap();
    let comment = comment_event(empty.path(), "maya", "/promptgate accept on purpose");
    let env = Env::named("issue_comment").var("PROMPTGATE_GITHUB_ANSWER_SECS", "2");
    let run = ci_with(empty.path(), &api, &comment, &[], &env);
    run.run
        .expect_code(3)
        .stderr_has("did not arrive within 2 s")
        .stderr_has("hint:");
}

#[test]
fn a_comment_edited_into_an_accept_command_does_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let path = comment_event(empty.path(), "maya", "/promptgate accept on purpose");
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    payload["action"] = json!("edited");
    payload["changes"] = json!({"body": {"from": "looks good"}});
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    let run = ci_with(
        empty.path(),
        "http://127.0.0.1:9",
        &path,
        &[],
        &Env::named("issue_comment"),
    );
    run.run.expect_code(0).stderr_has("not a `/promptgate accept` command");
}

/// A comment on an issue (not a pull request), or a review comment, gives promptgate nothing
/// to do: exit 0 and no request, as for any other comment or label.
#[test]
fn a_comment_elsewhere_does_nothing() {
    let empty = tempfile::tempdir().unwrap();
    let on_issue = comment_event(empty.path(), "maya", "/promptgate accept on purpose");
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&on_issue).unwrap()).unwrap();
    payload["issue"] = json!({"number": 8});
    std::fs::write(&on_issue, serde_json::to_string(&payload).unwrap()).unwrap();
    for (name, event) in [("issue_comment", &on_issue), ("pull_request_review_comment", &on_issue)] {
        // Nothing listens on port 9: a request would fail the run.
        let run = ci_with(empty.path(), "http://127.0.0.1:9", event, &[], &Env::named(name));
        run.run.expect_code(0).stderr_has("concerns no pull request");
    }
}

/// The job's setup is a usage error (exit 2), however it is wrong: an event file that is not
/// there, an API address that is not one.
#[test]
fn a_missing_event_file_or_a_bad_api_url_is_exit_2() {
    let empty = tempfile::tempdir().unwrap();
    let run = ci_with(
        empty.path(),
        "http://127.0.0.1:9",
        &empty.path().join("no-such-event.json"),
        &[],
        &Env::pull_request(),
    );
    run.run
        .expect_code(2)
        .stderr_has("cannot read the event payload")
        .stderr_has("hint:");
    let comment = comment_event(empty.path(), "maya", "/promptgate accept on purpose");
    for url in ["not a url", "api.github.com"] {
        let run = ci_with(empty.path(), url, &comment, &[], &Env::named("issue_comment"));
        run.run
            .expect_code(2)
            .stderr_has("is not an http(s) URL")
            .stderr_has("hint:");
    }
}

#[test]
fn a_dry_run_on_a_comment_says_what_it_did_not_look_up() {
    let empty = tempfile::tempdir().unwrap();
    let file = empty.path().join("requests.json");
    let run = ci_with(
        empty.path(),
        "http://127.0.0.1:9",
        &comment_event(empty.path(), "maya", "/promptgate accept on purpose"),
        &["--dry-run", file.to_str().unwrap()],
        &Env::named("issue_comment").var("GITHUB_REPOSITORY", ""),
    );
    run.run
        .expect_code(0)
        .stderr_has("were not looked up")
        .stderr_has("nothing was sent");
    assert!(!run.run.stderr.contains("missing field"), "{}", run.run.stderr);
    assert!(!run.run.stderr.contains("published"), "{}", run.run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_and_pull_request_target_are_refused_unless_told() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let fork = fork_event(repo.path(), &base, &head);
    let server = fake_github(vec![], json!([]), &[]).await;
    ci_async(&repo, server.uri(), fork.clone(), &["--out", "out"])
        .await
        .run
        .expect_code(2)
        .stderr_has("refusing to evaluate pull request #7: its head is a fork's code")
        .stderr_has("hint: use the fork-safe pair");
    ci_async_in(
        repo.path(),
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
        Env::named("pull_request_target"),
    )
    .await
    .run
    .expect_code(2)
    .stderr_has("refusing to run under `pull_request_target`");
    let (lines, _) = sequence(&server).await;
    assert!(
        lines.iter().all(|l| !l.starts_with("PATCH") && !l.starts_with("POST")),
        "nothing was published: {lines:?}"
    );
    assert!(!repo.path().join("out/results.json").exists(), "nothing was evaluated");
}

/// The fixture payload as a fork's pull request.
fn fork_event(dir: &Path, base: &str, head: &str) -> PathBuf {
    let path = event(dir, base, head, &[]);
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    payload["pull_request"]["head"]["repo"] = json!({"full_name": "outside-contrib/prompts"});
    let path = dir.join(format!("fork-{}.json", &head[..8]));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_checks_permission_exits_3_naming_it() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = MockServer::start().await;
    json_mock(
        &server,
        "POST",
        &format!("/repos/{REPO}/check-runs"),
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;
    for (verb, route, status, body) in [
        (
            "GET",
            "/user".to_owned(),
            403,
            json!({"message": "Resource not accessible by integration"}),
        ),
        ("GET", format!("/repos/{REPO}/issues/7/comments"), 200, json!([])),
        (
            "POST",
            format!("/repos/{REPO}/issues/7/comments"),
            201,
            json!({"id": 43}),
        ),
        (
            "PATCH",
            format!("/repos/{REPO}/issues/comments/43"),
            200,
            json!({"id": 43}),
        ),
    ] {
        json_mock(&server, verb, &route, status, body).await;
    }
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--comment", "always", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(3)
        .stderr_has("GitHub refused to create the promptgate check run (403")
        .stderr_has("`checks: write`")
        .stderr_has("a personal access token, which GitHub never lets create check runs");
    let (lines, _) = sequence(&server).await;
    // Created once, then updated in place: never a second comment.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.starts_with("POST") && l.ends_with("/comments"))
            .count(),
        1,
        "{lines:?}"
    );
    // The outputs are the evaluation's; the summary says what GitHub refused.
    refused_and_said(&run, "check run (403");
}

/// docs/github.md: the check run is created even when the comment could not be written. A
/// progress comment GitHub refuses ("evaluating…", posted before the first call) once stopped
/// the evaluation itself: nothing was evaluated and the check said "could not finish".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_comment_github_refuses_stops_no_evaluation() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = MockServer::start().await;
    let refused = json!({"message": "Resource not accessible by integration"});
    json_mocks(
        &server,
        vec![
            ("GET", "/user".to_owned(), 403, refused.clone()),
            ("GET", format!("/repos/{REPO}/issues/7/comments"), 200, json!([])),
            ("POST", format!("/repos/{REPO}/issues/7/comments"), 403, refused),
            ("POST", format!("/repos/{REPO}/check-runs"), 201, json!({"id": 9})),
        ],
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--comment", "always", "--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(3)
        .stdout_has("progress comment not written")
        .stderr_has("GitHub refused to create the promptgate comment (403");
    assert!(repo.path().join("out").join("results.json").exists());
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure", "the demo's regression: {check}");
    let title = check["output"]["title"].as_str().unwrap();
    assert!(!title.contains("could not finish"), "{title}");
    refused_and_said(&run, "comment (403");
}

/// The demo's regression, which GitHub refused to publish in part: the outputs keep the
/// evaluation's verdict, and the step summary says what was `refused`.
fn refused_and_said(run: &Ci, refused: &str) {
    assert!(run.output.contains("verdict=fail\n"), "{}", run.output);
    assert!(
        run.summary.contains("promptgate: results not fully published"),
        "{}",
        run.summary
    );
    assert!(run.summary.contains(refused), "{}", run.summary);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secondary_rate_limit_is_retried() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/check-runs")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("retry-after", "0")
                .set_body_json(json!({"message": "You have exceeded a secondary rate limit"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    run.run.expect_code(1).stderr_has("rate limited (403)");
    let (lines, _) = sequence(&server).await;
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("/check-runs")).count(),
        2,
        "{lines:?}"
    );
}

/// A GitHub App's installation token cannot read `GET /user` (403, as the Actions token) and
/// posts as `<app>[bot]`: its sticky comment is found by that bot's marker and updated, not a
/// new one posted on every push. A person's comment with the marker (mallory's, on page 1)
/// is still never taken for ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apps_token_updates_its_own_sticky_comment() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let r = |p: &str| format!("/repos/{REPO}{p}");
    let sticky = format!("{MARKER}\n## ✅ promptgate: pass\nold numbers");
    let server = fake_github_by("promptgate-app[bot]", &sticky, vec![], json!([]), &[]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    run.run.expect_code(1);
    let (lines, _) = sequence(&server).await;
    assert!(
        lines.contains(&format!("PATCH {}", r("/issues/comments/42"))),
        "{lines:?}"
    );
    assert!(
        !lines.contains(&format!("POST {}", r("/issues/7/comments"))),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.ends_with("/issues/comments/11")), "{lines:?}");
}

/// GitHub answers every edit of the fake's sticky comment (42) with `status` and `message`.
async fn edits_of_42_answered(server: &MockServer, status: u16, message: &str) {
    Mock::given(method("PATCH"))
        .and(path(format!("/repos/{REPO}/issues/comments/42")))
        .respond_with(reply(status).set_body_json(json!({ "message": message })))
        .with_priority(1)
        .mount(server)
        .await;
}

/// A comment as GitHub lists it, last updated at `updated_at`.
fn comment_updated(id: u64, login: &str, body: &str, updated_at: &str) -> Value {
    let mut c = comment_json(id, login, body);
    c["updated_at"] = json!(updated_at);
    c
}

/// A repository that moved from the Actions token to an App's (or runs its waiver workflow on
/// the other) has a promptgate comment by each: the App's token, which cannot name itself,
/// edits the latest, and when GitHub refuses (it is the other bot's) edits its own, never
/// posting a new comment on every run (the audit saw two a run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_token_edits_the_tokens_own_comment_and_posts_none() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let r = |p: &str| format!("/repos/{REPO}{p}");
    let app = "promptgate-app[bot]";
    // Each comment's state names whose it is: the run carries on the one it may write.
    let with_state = |whose: &str| {
        format!(
            "{MARKER}\n## ✅ promptgate: pass\nold numbers\n<!-- promptgate:state {} -->",
            json!({"v": 1, "head_sha": base, "results": {"sha": base, "verdict": "pass", "reason": whose, "regressions": []}})
        )
    };
    // The Actions bot's comment (42, the fake's sticky) was updated last, by a waiver's run.
    let server = fake_github_with(
        &with_state("the Actions bot's results"),
        vec![comment_updated(
            77,
            app,
            &with_state("the App's own results"),
            "2026-01-01T00:00:00Z",
        )],
        json!([]),
        &[],
    )
    .await;
    edits_of_42_answered(&server, 403, "Resource not accessible by integration").await;
    json_mock(
        &server,
        "PATCH",
        &r("/issues/comments/77"),
        200,
        comment_json(77, app, "updated"),
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--no-assets"],
    )
    .await;
    run.run.expect_code(1);
    let (lines, requests) = sequence(&server).await;
    let writes: Vec<&String> = lines.iter().filter(|l| !l.starts_with("GET ")).collect();
    assert_eq!(writes[0], &format!("PATCH {}", r("/issues/comments/42")), "{lines:?}");
    // Asked before anything is written: the App's comment's own body goes back unchanged, and
    // the progress written next carries the App's state, not the refused comment's.
    let patched: Vec<String> = requests
        .iter()
        .filter(|q| q.method.as_str() == "PATCH" && q.url.path().ends_with("/comments/77"))
        .map(|q| body(q)["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(patched[0], with_state("the App's own results"));
    assert!(
        patched[1].contains("the App's own results") && !patched[1].contains("the Actions bot's results"),
        "{}",
        patched[1]
    );
    assert!(
        writes[1..]
            .iter()
            .all(|l| *l == &format!("PATCH {}", r("/issues/comments/77"))),
        "after the refusal only the App's own comment is written: {lines:?}"
    );
    assert!(writes.len() >= 3, "progress and report: {lines:?}");
}

/// GitHub failing the question of which comment is the token's is no answer: the run goes on
/// with its guess and still posts its check (a failed probe once stopped the run before it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_question_of_whose_comment_still_leaves_the_check() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let report = format!("{MARKER}\n## ✅ promptgate: pass\nold numbers");
    let server = fake_github_with(
        &report,
        vec![comment_updated(
            77,
            "promptgate-app[bot]",
            &report,
            "2026-01-01T00:00:00Z",
        )],
        json!([]),
        &[],
    )
    .await;
    edits_of_42_answered(&server, 500, "Server Error").await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets"],
    )
    .await;
    run.run
        .stderr_has("could not tell which promptgate comment is this token's");
    assert_eq!(check_run(&server).await["conclusion"], "failure");
}

/// The App's token whose only guess is the Actions bot's comment is refused, posts once, and
/// knows from the post who it is: the rest of the run edits that comment, not the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_guess_posts_once_and_learns_its_login_from_the_post() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let r = |p: &str| format!("/repos/{REPO}{p}");
    let app = "promptgate-app[bot]";
    let server = fake_github(vec![], json!([]), &[]).await;
    edits_of_42_answered(&server, 403, "Resource not accessible by integration").await;
    json_mock(
        &server,
        "POST",
        &r("/issues/7/comments"),
        201,
        comment_json(500, app, "posted"),
    )
    .await;
    json_mock(
        &server,
        "PATCH",
        &r("/issues/comments/500"),
        200,
        comment_json(500, app, "updated"),
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--no-assets"],
    )
    .await;
    run.run.expect_code(1);
    let (lines, _) = sequence(&server).await;
    let posts = lines
        .iter()
        .filter(|l| *l == &format!("POST {}", r("/issues/7/comments")))
        .count();
    assert_eq!(posts, 1, "{lines:?}");
    let refused = lines
        .iter()
        .filter(|l| *l == &format!("PATCH {}", r("/issues/comments/42")))
        .count();
    assert_eq!(refused, 1, "the other bot's comment is not tried again: {lines:?}");
    assert!(
        lines.contains(&format!("PATCH {}", r("/issues/comments/500"))),
        "{lines:?}"
    );
}

/// A second promptgate comment of the token's own (a post GitHub created but answered with an
/// error, sent again while the listing lagged, or two runs posting at once) is removed once the
/// first is up to date: only newer ones, so runs at once never remove each other's and leave
/// none; a reply quoting the report is not promptgate's and stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_comment_of_ones_own_is_removed() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let r = |p: &str| format!("/repos/{REPO}{p}");
    let evaluating = format!("{MARKER}\n## ⏳ promptgate: evaluating");
    let report = format!("{MARKER}\n## ✅ promptgate: pass\nold numbers");
    let server = fake_github_with(
        &evaluating,
        vec![
            comment_updated(43, BOT, &report, "2099-01-01T00:00:00Z"),
            comment_json(
                44,
                BOT,
                &format!("> {MARKER}\n> quoted by a workflow of the repository's own"),
            ),
        ],
        json!([]),
        &[],
    )
    .await;
    Mock::given(method("DELETE"))
        .and(path(r("/issues/comments/43")))
        .respond_with(reply(204))
        .mount(&server)
        .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--no-assets"],
    )
    .await;
    run.run.expect_code(1);
    let (lines, _) = sequence(&server).await;
    let writes: Vec<&String> = lines.iter().filter(|l| !l.starts_with("GET ")).collect();
    assert!(
        writes
            .iter()
            .filter(|l| l.starts_with("PATCH "))
            .all(|l| *l == &format!("PATCH {}", r("/issues/comments/42"))),
        "the oldest is the one kept, as every run at once keeps it: {lines:?}"
    );
    assert_eq!(
        writes.last().unwrap(),
        &&format!("DELETE {}", r("/issues/comments/43")),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.ends_with("/issues/comments/44")), "{lines:?}");
}

/// A re-run of an older push's workflow (its event names the old head) publishes nothing: the
/// comment would show the old commit's numbers and its state go back to them. A first run,
/// which GitHub's lag could mislead, is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_for_a_commit_the_pull_request_moved_on_from_publishes_nothing() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, &base, "4abc275000000000000000000000000000000000", &[]).await;
    let rerun = Env::pull_request().var("GITHUB_RUN_ATTEMPT", "2");
    let run = ci_async_in(
        repo.path(),
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets"],
        rerun,
    )
    .await;
    run.run
        .expect_code(3)
        .stderr_has("pull request #7 has moved on to 4abc275")
        .stderr_has("nothing was published");
    assert!(
        !run.run.stdout.contains("verdict:"),
        "asked before the calls: nothing was evaluated\n{}",
        run.run.stdout
    );
    let (lines, _) = sequence(&server).await;
    assert!(lines.iter().all(|l| l.starts_with("GET ")), "{lines:?}");
    // A first run is not asked: right after a push GitHub may still name the previous head.
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, &base, "4abc275000000000000000000000000000000000", &[]).await;
    let first = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets"],
    )
    .await;
    first.run.expect_code(1);
}

/// A primary rate limit that resets in an hour is not retried before then (GitHub asks not
/// to): the run says when, at once, and exits 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_that_resets_later_than_a_job_waits_fails_at_once() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/check-runs")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str())
                .set_body_json(json!({"message": "API rate limit exceeded for installation"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let started = std::time::Instant::now();
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    run.run.expect_code(3).stderr_has("for another 60 minutes");
    assert!(started.elapsed() < std::time::Duration::from_secs(50), "it waited");
    let (lines, _) = sequence(&server).await;
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("/check-runs")).count(),
        1,
        "{lines:?}"
    );
}

/// The Action's prepare step has not loaded the suite, so it cannot know an experiment is
/// affected: with `--comment affected` and no comment yet it announces nothing (the results
/// say, and comment then); `always` announces.
#[test]
fn the_prepare_step_comments_first_only_when_told_always() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let prepared = repo.path().join(".scratch-prepared.json");
    let sent = |when: &str| {
        let file = repo.path().join(format!("requests-{when}.json"));
        ci(
            repo.path(),
            "http://127.0.0.1:9",
            &event(repo.path(), &base, &head, &[]),
            &[
                "--prepare",
                "--prepared",
                prepared.to_str().unwrap(),
                "--comment",
                when,
                "--dry-run",
                file.to_str().unwrap(),
                "--out",
                "out",
            ],
        )
        .run
        .expect_code(0);
        let sent: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        sent.as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["route"].as_str().unwrap()))
            .collect::<Vec<_>>()
    };
    assert_eq!(sent("affected"), Vec::<String>::new());
    assert_eq!(sent("always"), [format!("POST /repos/{REPO}/issues/7/comments")]);
}

#[test]
fn dry_run_writes_the_requests_instead_of_sending_them() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let file = repo.path().join("requests.json");
    // Nothing listens on this port: a request would fail the run.
    let run = ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--dry-run", file.to_str().unwrap(), "--review", "--out", "out"],
    );
    // It says what it did and did not do, and claims nothing it did not do.
    run.run
        .expect_code(1)
        .stderr_has("dry run: not looked up: the token's identity, the existing comments")
        .stderr_has("dry run: would publish")
        .stderr_has("nothing was sent");
    assert!(!run.run.stderr.contains("published "), "{}", run.run.stderr);
    // The report names the branches, not the commits.
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(report.contains("Base **main**"), "{report}");
    assert!(report.contains("head **tighten-refunds**"), "{report}");
    let sent: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let routes: Vec<String> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["route"].as_str().unwrap()))
        .collect();
    // A dry run reads nothing, so the asset branch looks new: created, not moved.
    let blobs = blob_count(&routes);
    let mut expected = vec![format!("POST /repos/{REPO}/issues/7/comments")];
    expected.extend(vec![format!("POST /repos/{REPO}/git/blobs"); blobs]);
    expected.extend([
        format!("POST /repos/{REPO}/git/trees"),
        format!("POST /repos/{REPO}/git/commits"),
        format!("POST /repos/{REPO}/git/refs"),
        format!("PATCH /repos/{REPO}/issues/comments/0"),
        format!("POST /repos/{REPO}/check-runs"),
        format!("POST /repos/{REPO}/pulls/7/reviews"),
    ]);
    assert_eq!(routes, expected);
    let requests = sent.as_array().unwrap();
    assert_eq!(requests[blobs + 2]["body"]["parents"], json!([]));
    assert_eq!(requests[blobs + 3]["body"]["ref"], "refs/heads/promptgate-assets");
}

/// `ci` opens the repository once: the git processes before the first call are the fixed
/// overhead every pull request pays.
#[cfg(unix)]
#[test]
fn ci_opens_the_repository_once() {
    use std::os::unix::fs::PermissionsExt;
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    // A `git` first on PATH that logs its arguments and runs the real one.
    let real = Command::new("sh").args(["-c", "command -v git"]).output().unwrap();
    let real = String::from_utf8(real.stdout).unwrap().trim().to_owned();
    let bin = repo.path().join(".scratch-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = repo.path().join("git.log");
    let wrapper = bin.join("git");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\necho \"$*\" >> '{}'\nexec '{real}' \"$@\"\n", log.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let file = repo.path().join("requests.json");
    let run = ci_with(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--dry-run", file.to_str().unwrap(), "--out", "out"],
        &Env::pull_request().var("PATH", &path),
    );
    run.run.expect_code(1);
    let log = std::fs::read_to_string(&log).unwrap();
    let opens = log.lines().filter(|l| l.contains("rev-parse --show-toplevel")).count();
    assert_eq!(opens, 1, "{log}");
}

/// A gate that stops before a verdict (here a head whose suite does not parse: exit 2) still
/// writes the `verdict` output and the step summary, besides its failure check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_that_could_not_finish_still_writes_its_outputs() {
    let repo = TestRepo::with_demo_base();
    let (base, _) = demo_pr(&repo);
    repo.edit("promptgate.yaml", "experiments:", "experiments: [");
    let head = repo.commit("break the suite at head");
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run.expect_code(2);
    assert!(
        run.output.contains("verdict=error\nconclusion=failure\n"),
        "{}",
        run.output
    );
    assert!(
        run.summary.contains("could not finish") && run.summary.contains("promptgate.yaml"),
        "{}",
        run.summary
    );
    assert_eq!(check_run(&server).await["conclusion"], "failure");
}

#[test]
fn fork_pair_hands_the_pull_request_to_the_trusted_job() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let run = ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--no-publish", "--out", "out"],
    );
    run.run.expect_code(1);
    let pr: Value = serde_json::from_str(&repo.read("out/pr.json")).unwrap();
    assert_eq!(pr["number"], 7);
    assert_eq!(pr["head_sha"], head.as_str());
    assert_eq!(pr["repository"], REPO);
}

#[test]
fn ci_shards_evaluate_without_publishing_for_a_merge() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let event = event(repo.path(), &base, &head, &[]);
    // A shard's partial verdict must not become the pull request's comment and check.
    ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event,
        &["--shard", "1/2", "--out", "out"],
    )
    .run
    .expect_code(2)
    .stderr_has("partial verdict")
    .stderr_has("hint: add --no-publish");
    let run = ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event,
        &["--shard", "1/2", "--no-publish", "--out", "out"],
    );
    assert!(matches!(run.run.code, 0 | 1), "{:?}", run.run);
    let results: Value = serde_json::from_str(&repo.read("out/results.json")).unwrap();
    assert_eq!(results["shard"], json!({"index": 1, "count": 2}));
    assert!(repo.path().join("out/pr.json").is_file());
    // Nor can the trusted half publish one shard: it needs the merge.
    ci(repo.path(), "http://127.0.0.1:9", &event, &["--publish-only", "out"])
        .run
        .expect_code(2)
        .stderr_has("holds shard 1/2 only")
        .stderr_has("hint: run `promptgate merge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_pngs_are_committed_to_the_asset_branch_and_shown_inline() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--out", "out"],
    )
    .await;
    run.run.expect_code(1).stderr_has("published ");
    let (lines, requests) = sequence(&server).await;
    let blobs = blob_count(&lines);
    let first = lines.iter().position(|l| l.ends_with("/git/blobs")).unwrap();
    assert_eq!(lines[first..first + blobs + 5], asset_lines(blobs)[..], "{lines:?}");
    assert_eq!(lines.len(), first + blobs + 6, "the report comes last: {lines:?}");
    for blob in &requests[first..first + blobs] {
        let blob = body(blob);
        assert_eq!(blob["encoding"], "base64");
        assert!(blob["content"].as_str().unwrap().starts_with("iVBOR"), "not a PNG");
    }
    let tree = body(&requests[first + blobs + 2]);
    assert_eq!(tree["base_tree"], ASSET_BASE_TREE, "earlier pull requests' images stay");
    let entries = tree["tree"].as_array().unwrap();
    assert_eq!(entries.len(), blobs);
    let prefix = format!("pr-7/{head}/");
    for entry in entries {
        let path = entry["path"].as_str().unwrap();
        assert!(path.starts_with(&prefix) && path.ends_with(".png"), "{path}");
        assert_eq!(entry["mode"], "100644");
        assert_eq!(entry["type"], "blob");
    }
    let commit = body(&requests[first + blobs + 3]);
    assert_eq!(commit["tree"], ASSET_TREE);
    assert_eq!(commit["parents"], json!([ASSET_BASE]));
    let moved = body(&requests[first + blobs + 4]);
    assert_eq!(moved["sha"], ASSET_COMMIT);
    assert_eq!(moved["force"], false);
    let report = body(requests.last().unwrap());
    let report = report["body"].as_str().unwrap();
    let pinned = format!("](https://github.com/{REPO}/raw/{ASSET_COMMIT}/{prefix}");
    assert!(report.contains("![") && report.contains(&pinned), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_asset_upload_warns_and_keeps_the_text_charts() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/git/blobs")))
        .respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"message": "Resource not accessible by integration"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    // The regression's exit code, not GitHub's (3).
    run.run
        .expect_code(1)
        .stdout_has("::warning title=promptgate: chart images not published::")
        .stdout_has("`contents: write`");
    let (lines, requests) = sequence(&server).await;
    let r = |p: &str| format!("/repos/{REPO}{p}");
    assert_eq!(
        lines[3..],
        [
            format!("PATCH {}", r("/issues/comments/42")),
            format!("GET {}?per_page=100", r("/issues/7/comments")),
            format!("GET {}?per_page=100&page=2", r("/issues/7/comments")),
            format!("POST {}", r("/git/blobs")),
            format!("PATCH {}", r("/issues/comments/42")),
            format!("POST {}", r("/check-runs")),
        ],
        "{lines:?}"
    );
    let report = body(&requests[7]);
    let report = report["body"].as_str().unwrap();
    assert!(
        report.starts_with(MARKER) && report.contains("promptgate: regression"),
        "{report}"
    );
    assert!(!report.contains("![") && !report.contains("/raw/"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_upload_creates_the_asset_branch_as_an_orphan() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    let git = |p: &str| format!("/repos/{REPO}/git{p}");
    Mock::given(method("GET"))
        .and(path(git("/ref/heads/charts")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "Not Found"})))
        .mount(&server)
        .await;
    json_mock(&server, "POST", &git("/refs"), 201, json!({"ref": "refs/heads/charts"})).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--asset-branch", "charts", "--out", "out"],
    )
    .await;
    run.run.expect_code(1);
    let (lines, requests) = sequence(&server).await;
    let blobs = blob_count(&lines);
    let first = lines.iter().position(|l| l.ends_with("/git/blobs")).unwrap();
    let mut expected = vec![format!("POST {}", git("/blobs")); blobs];
    expected.extend([
        format!("GET {}", git("/ref/heads/charts")),
        format!("POST {}", git("/trees")),
        format!("POST {}", git("/commits")),
        format!("POST {}", git("/refs")),
    ]);
    assert_eq!(lines[first..first + blobs + 4], expected[..], "{lines:?}");
    assert!(body(&requests[first + blobs + 1]).get("base_tree").is_none());
    assert_eq!(body(&requests[first + blobs + 2])["parents"], json!([]));
    let created = body(&requests[first + blobs + 3]);
    assert_eq!(created["ref"], "refs/heads/charts");
    assert_eq!(created["sha"], ASSET_COMMIT);
    let report = body(requests.last().unwrap());
    assert!(
        report["body"]
            .as_str()
            .unwrap()
            .contains(&format!("/raw/{ASSET_COMMIT}/pr-7/{head}/")),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_names_its_login_and_updates_its_own_comment() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    // An App's installation token posts as `<slug>[bot]` and cannot read `/user`.
    let app = "promptgate-app[bot]";
    let server = fake_github(
        vec![comment_json(
            77,
            app,
            &format!("{MARKER}\n## ✅ promptgate: pass\nold numbers"),
        )],
        json!([]),
        &[],
    )
    .await;
    json_mock(
        &server,
        "PATCH",
        &format!("/repos/{REPO}/issues/comments/77"),
        200,
        comment_json(77, app, "updated"),
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-check", "--no-assets", "--bot-login", app],
    )
    .await;
    run.run.expect_code(1);
    let (lines, _) = sequence(&server).await;
    assert!(
        !lines.iter().any(|l| l.starts_with("GET /user")),
        "no need to ask: {lines:?}"
    );
    let patched: Vec<&String> = lines.iter().filter(|l| l.starts_with("PATCH ")).collect();
    assert!(!patched.is_empty(), "{lines:?}");
    assert!(
        patched.iter().all(|l| l.ends_with("/issues/comments/77")),
        "only the App's own comment is edited, never github-actions[bot]'s: {lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l.starts_with("POST ") && l.ends_with("/comments")),
        "{lines:?}"
    );
}

/// Every file under `dir`, recursively (the outputs, the journal, the response cache, the
/// Actions side channels).
fn every_file(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "objects") {
                continue;
            }
            files.extend(every_file(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A suite whose models echo what they can reach: an `exec` program given the key (which also
/// reads its parent's environment, where the GitHub token is), and an OpenAI-compatible server
/// that puts the key in its answers and its errors.
fn echoing_suite(repo: &TestRepo, api: &str) {
    repo.write(
        "promptgate.yaml",
        &format!(
            r#"version: 1
providers:
  echo: {{type: exec, command: [sh, tools/echo.sh], env: [OPENAI_API_KEY]}}
  http: {{type: openai-compatible, base_url: "{api}/v1", api_key_env: OPENAI_API_KEY, max_retries: 0}}
defaults: {{provider: echo, max_error_rate: 0.6}}
experiments:
  - {{name: exec-echo, variant: configs/a.yaml, dataset: data/cases.jsonl, provider: echo}}
  - {{name: http-echo, variant: configs/b.yaml, dataset: data/cases.jsonl, provider: http}}
"#
        ),
    );
    repo.write(
        "tools/echo.sh",
        r#"input="$(cat)"
parent=""
[ -r "/proc/$PPID/environ" ] && parent="$(tr '\0' ' ' < "/proc/$PPID/environ")"
echo "stderr: key $OPENAI_API_KEY parent $parent" >&2
case "$input" in
  *"question 3"*) echo "auth failed for $OPENAI_API_KEY (parent $parent)" >&2; exit 1 ;;
esac
echo "key $OPENAI_API_KEY parent $parent"
"#,
    );
    repo.write("configs/a.yaml", "model: m\nprompt: ../prompts/a.md\n");
    repo.write("configs/b.yaml", "model: m\nprompt: ../prompts/b.md\n");
    repo.write("prompts/a.md", "Answer.\n");
    repo.write("prompts/b.md", "Answer.\n");
    let cases: String = (1..=5)
        .map(|i| format!("{{\"id\": \"c{i}\", \"vars\": {{\"input\": \"question {i}\"}}, \"assert\": [{{\"type\": \"icontains\", \"value\": \"nothing\"}}]}}\n"))
        .collect();
    repo.write("data/cases.jsonl", &cases);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_key_and_token_echoed_by_providers_appear_in_no_output() {
    // The provider: answers with the key it was sent, and fails one case quoting it.
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::body_string_contains("question 3"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"message": format!("invalid key {CANARY_KEY} for this project"), "type": "invalid_request_error"}}),
        ))
        .with_priority(1)
        .mount(&provider)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": format!("you sent {CANARY_KEY} and Bearer {CANARY_KEY}")}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5}
        })))
        .mount(&provider)
        .await;

    let repo = TestRepo::new();
    echoing_suite(&repo, &provider.uri());
    let base = repo.commit("base");
    repo.checkout_new("pr");
    repo.write("prompts/a.md", "Answer briefly.\n");
    repo.write("prompts/b.md", "Answer briefly.\n");
    let head = repo.commit("pr");

    let github = fake_github(vec![], json!([]), &[]).await;
    let run = ci_keyed(&repo, &github, &base, &head).await;
    // The calls happened: the echo reached the outputs, with the secrets taken out.
    let results = crate::support::results(&repo.path().join("out"));
    let outputs: Vec<String> = results["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["cases"].as_array().unwrap().iter())
        .flat_map(|c| c["candidate"].as_array().unwrap().iter())
        .filter_map(|call| call["output"].as_str().map(str::to_owned))
        .collect();
    assert!(outputs.iter().any(|o| o.contains("key [redacted]")), "{outputs:?}");
    assert!(outputs.iter().any(|o| o.contains("you sent [redacted]")), "{outputs:?}");
    if cfg!(target_os = "linux") {
        // The program read the token from promptgate's own environment (/proc/PPID/environ):
        // it reached the output, and the redactor took it out.
        assert!(
            outputs.iter().any(|o| o.contains("GITHUB_TOKEN=[redacted]")),
            "{outputs:?}"
        );
    }
    let errors = results.to_string();
    assert!(
        errors.contains("invalid key [redacted]"),
        "the error was recorded, redacted"
    );

    for (what, text) in [("stdout", &run.run.stdout), ("stderr", &run.run.stderr)] {
        assert!(!text.contains(CANARY_KEY), "{what} holds the key:\n{text}");
        assert!(!text.contains(TOKEN), "{what} holds the token");
    }
    let files = every_file(repo.path());
    assert!(files.iter().any(|f| f.ends_with("results.json")));
    assert!(
        files.iter().any(|f| f.to_string_lossy().contains("test-cache")),
        "the response cache was written: {files:?}"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(CANARY_KEY), "{} holds the key", file.display());
        assert!(!text.contains(TOKEN), "{} holds the token", file.display());
    }
    let (_, requests) = sequence(&github).await;
    assert!(requests.iter().any(|q| q.url.path().ends_with("/check-runs")));
    for q in requests {
        let text = String::from_utf8_lossy(&q.body);
        assert!(!text.contains(CANARY_KEY), "{} {} sent the key", q.method, q.url.path());
        assert!(!text.contains(TOKEN), "{} {} sent the token", q.method, q.url.path());
    }
}

/// An OpenAI-compatible server that answers every chat completion with `answer`.
async fn model_server(answer: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": answer}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3}
        })))
        .mount(&server)
        .await;
    server
}

/// A small suite whose one experiment calls the keyed provider `llm` at `url`.
fn keyed_suite(repo: &TestRepo, url: &str) {
    repo.write(
        "promptgate.yaml",
        &format!(
            r#"version: 1
providers:
  llm: {{type: openai-compatible, base_url: "{url}/v1", api_key_env: OPENAI_API_KEY, max_retries: 0}}
  offline: {{type: mock}}
defaults: {{provider: offline}}
experiments:
  - {{name: keyed, variant: configs/a.yaml, dataset: data/cases.jsonl, provider: llm}}
  - {{name: offline, variant: configs/b.yaml, dataset: data/cases.jsonl}}
"#
        ),
    );
    repo.write("configs/a.yaml", "model: m\nprompt: ../prompts/a.md\n");
    repo.write("configs/b.yaml", "model: m\nprompt: ../prompts/b.md\n");
    repo.write("prompts/a.md", "Answer.\n");
    repo.write("prompts/b.md", "Refunds take 30 days.\n");
    let cases: String = (1..=6)
        .map(|i| format!("{{\"id\": \"c{i}\", \"vars\": {{\"input\": \"refund {i}?\"}}, \"assert\": [{{\"type\": \"icontains\", \"value\": \"30 days\"}}]}}\n"))
        .collect();
    repo.write("data/cases.jsonl", &cases);
}

/// `ci` on the pull request from `base` to `head` of `repo`, with the model key set and GitHub
/// at `github`; outputs in `out`, no chart images.
async fn ci_keyed(repo: &TestRepo, github: &MockServer, base: &str, head: &str) -> Ci {
    ci_async_in(
        repo.path(),
        github.uri(),
        event(repo.path(), base, head, &[]),
        &["--out", "out", "--no-assets"],
        Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await
}

/// Requests `server` received that carry `key` in a header.
async fn requests_with_key(server: &MockServer, key: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.headers.values().any(|v| v.to_str().unwrap_or("").contains(key)))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_moving_a_keyed_endpoint_gets_no_key_until_a_maintainer_approves_that_commit() {
    let trusted = model_server("Refunds take 30 days.").await;
    let collector = model_server("Refunds take 30 days.").await;
    let repo = TestRepo::new();
    keyed_suite(&repo, &trusted.uri());
    let base = repo.commit("base");
    repo.checkout_new("pr");
    repo.write("prompts/a.md", "Answer briefly.\n");
    repo.edit("promptgate.yaml", &trusted.uri(), &collector.uri());
    let head = repo.commit("move the endpoint");

    // A local run is the user's own checkout: it runs, and says what CI would hold.
    let local = crate::support::promptgate_env(
        repo.path(),
        &["run", "--base", "main", "--head", "pr", "--out", "local", "--no-cache"],
        &[("OPENAI_API_KEY", CANARY_KEY)],
    );
    local
        .expect_code(0)
        .stderr_has("notice: this change moves where a key goes")
        .stderr_has("llm base_url");

    // In CI, before approval: the keyed experiment waits; not one request reaches the new
    // endpoint, let alone one with the key.
    let collector_before = collector.received_requests().await.unwrap().len();
    let with_key_before = requests_with_key(&collector, CANARY_KEY).await;
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_keyed(&repo, &server, &base, &head).await;
    run.run.expect_code(1).stdout_has("verdict: NEEDS APPROVAL");
    assert_eq!(collector.received_requests().await.unwrap().len(), collector_before);
    assert_eq!(requests_with_key(&collector, CANARY_KEY).await, with_key_before);
    let results = crate::support::results(&repo.path().join("out"));
    assert_eq!(results["verdict"], "needs_approval");
    assert_eq!(results["approval"]["experiments"], json!(["keyed"]));
    // The experiment waiting is one the change affected, though it did not run; the report
    // says so too (it said "no experiments affected").
    assert!(run.output.contains("experiments-affected=1\n"), "{}", run.output);
    let report = std::fs::read_to_string(repo.path().join("out/report.md")).unwrap();
    assert!(
        report.contains("1 waiting for approval") && !report.contains("no experiments affected"),
        "{report}"
    );
    assert_eq!(results["approval"]["changes"][0]["provider"], "llm");
    assert_eq!(results["approval"]["changes"][0]["field"], "base_url");
    let (_, requests) = sequence(&server).await;
    let check = requests
        .iter()
        .find(|q| q.url.path().ends_with("/check-runs"))
        .map(body)
        .unwrap();
    assert_eq!(check["conclusion"], "action_required");
    let comment = last_sticky_body(&server).await;
    assert!(
        comment.contains("a maintainer must approve where a key goes"),
        "{comment}"
    );
    assert!(comment.contains("promptgate:trust-config"), "{comment}");
    assert!(
        comment.contains(&collector.uri().replace("://", ":\u{200D}//")),
        "the new endpoint is listed: {comment}"
    );

    // A collaborator adds the label while the newest `labeled` event GitHub lists is an older
    // one of a maintainer's: that is not taken for theirs, and nothing is approved.
    let label = "promptgate:trust-config";
    let server = fake_github_with(&comment, vec![], json!([]), &[("maya", "admin"), ("mallory", "write")]).await;
    label_added(&server, 600, "maya", label, &given_at()).await;
    let event = label_event(repo.path(), &base, &head, "labeled", label, &[label]);
    let mut payload: Value = serde_json::from_str(&std::fs::read_to_string(&event).unwrap()).unwrap();
    payload["sender"] = user("mallory");
    std::fs::write(&event, payload.to_string()).unwrap();
    let run = ci_async_in(
        repo.path(),
        server.uri(),
        event,
        &["--out", "out", "--no-assets"],
        Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await;
    run.run
        .expect_code(1)
        .stdout_has("verdict: NEEDS APPROVAL")
        .stderr_has("is by maya, not by mallory who added it now");
    assert_eq!(
        requests_with_key(&collector, CANARY_KEY).await,
        with_key_before,
        "not approved: no call with the key"
    );

    // A maintainer adds the label at this commit: the keyed experiment runs, with the key.
    let server = fake_github_with(&comment, vec![], json!([]), &[("maya", "admin")]).await;
    label_added(&server, 601, "maya", label, &given_at()).await;
    let run = ci_async_in(
        repo.path(),
        server.uri(),
        label_event(repo.path(), &base, &head, "labeled", label, &[label]),
        &["--out", "out", "--no-assets"],
        Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await;
    run.run.expect_code(0).stdout_has("verdict: PASS");
    assert!(
        requests_with_key(&collector, CANARY_KEY).await > with_key_before,
        "approved: the calls went out"
    );
    let results = crate::support::results(&repo.path().join("out"));
    assert!(results.get("approval").is_none());
}

/// A judge's calls carry its provider's key as a generation's do: moving the judge's endpoint
/// holds the experiments that ask it (the audit: the hold named the change, held no experiment,
/// was dropped, and every judge call went to the new endpoint with the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_moving_the_judges_endpoint_holds_the_experiments_it_judges() {
    let trusted = model_server(r#"{"score": 5, "reason": "on topic"}"#).await;
    let collector = model_server(r#"{"score": 5, "reason": "on topic"}"#).await;
    let repo = TestRepo::new();
    let suite = |url: &str| {
        format!(
            r#"version: 1
providers:
  judge: {{type: openai-compatible, base_url: "{url}/v1", api_key_env: OPENAI_API_KEY, max_retries: 0}}
  offline: {{type: mock}}
defaults: {{provider: offline, judge: judge, judge_model: m}}
experiments:
  - {{name: judged, variant: configs/a.yaml, dataset: data/cases.jsonl, assert: [{{type: relevance}}]}}
  - {{name: plain, variant: configs/b.yaml, dataset: data/cases.jsonl}}
"#
        )
    };
    keyed_suite(&repo, &trusted.uri());
    repo.write("promptgate.yaml", &suite(&trusted.uri()));
    let base = repo.commit("base");
    repo.checkout_new("pr");
    repo.write("prompts/a.md", "Answer briefly.\n");
    repo.write("prompts/b.md", "Refunds take 30 days, always.\n");
    repo.write("promptgate.yaml", &suite(&collector.uri()));
    let head = repo.commit("move the judge");

    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_keyed(&repo, &server, &base, &head).await;
    run.run.expect_code(1).stdout_has("verdict: NEEDS APPROVAL");
    assert_eq!(
        collector.received_requests().await.unwrap().len(),
        0,
        "no judge call reached the moved endpoint"
    );
    let results = crate::support::results(&repo.path().join("out"));
    assert_eq!(results["verdict"], "needs_approval");
    assert_eq!(results["approval"]["experiments"], json!(["judged"]));
    assert_eq!(results["approval"]["changes"][0]["provider"], "judge");
    assert_eq!(results["approval"]["changes"][0]["field"], "base_url");
    // The experiment the judge does not score runs.
    let ran: Vec<&str> = results["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(ran, ["plain"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forks_keyed_suite_waits_for_a_maintainer_through_the_fork_safe_pair() {
    let provider = model_server("Refunds take 30 days.").await;
    let repo = TestRepo::new();
    keyed_suite(&repo, &provider.uri());
    let base = repo.commit("base");
    repo.checkout_new("pr");
    repo.write("prompts/a.md", "Answer briefly.\n");
    repo.write("prompts/b.md", "Refunds take 30 days, always.\n");
    let head = repo.commit("fork change");
    let fork = fork_event(repo.path(), &base, &head);

    // Half 1: the fork's code without secrets (no key is set) and without a token.
    let evaluate = ci_with(
        repo.path(),
        "http://127.0.0.1:9",
        &fork,
        &["--no-publish", "--out", "artifact"],
        &Env::pull_request().var("GITHUB_TOKEN", "").var("OPENAI_API_KEY", ""),
    );
    evaluate.run.expect_code(1).stdout_has("verdict: NEEDS APPROVAL");
    assert!(provider.received_requests().await.unwrap().is_empty(), "no keyed call");
    let results = crate::support::results(&repo.path().join("artifact"));
    assert_eq!(
        results["approval"]["reason"],
        "a maintainer must approve to run with keys"
    );
    assert_eq!(results["untrusted"], true);
    assert!(repo.path().join("artifact/pr.json").is_file());

    // Half 2: the trusted publish job, on `workflow_run`.
    let server = fake_github(vec![], json!([]), &[]).await;
    let mut pr = json!({
        "number": 7,
        "base": {"ref": "main", "sha": base, "repo": {"full_name": REPO}},
        "head": {"ref": "tighten-refunds", "sha": head, "repo": {"full_name": "outside-contrib/prompts"}},
        "labels": [],
    });
    json_mock(&server, "GET", &format!("/repos/{REPO}/pulls/7"), 200, pr.take()).await;
    let workflow_run = workflow_run_event(repo.path(), &head, "success");
    let publish = ci_async_in(
        repo.path(),
        server.uri(),
        workflow_run.clone(),
        &["--publish-only", "artifact", "--out", "published", "--no-assets"],
        Env::named("workflow_run"),
    )
    .await;
    publish.run.expect_code(1);
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "action_required");
    let title = check["output"]["title"].as_str().unwrap();
    assert!(title.contains("a maintainer must approve to run with keys"), "{title}");
    let comment = last_sticky_body(&server).await;
    assert!(
        comment.contains("a maintainer must approve to run with keys"),
        "{comment}"
    );
    assert!(comment.contains("promptgate (trusted)"), "{comment}");
}

/// `ci --publish-only promptgate-out` in `repo` on `event`, publishing to `server`.
async fn publish_only(repo: &TestRepo, server: &MockServer, event: PathBuf, env: Env) -> Ci {
    ci_async_in(
        repo.path(),
        server.uri(),
        event,
        &["--publish-only", "promptgate-out", "--out", "published", "--no-assets"],
        env,
    )
    .await
}

/// [`publish_only`] on the pull request's own event, with a fake GitHub that has it.
async fn published_on_its_event(repo: &TestRepo, base: &str, head: &str) -> (MockServer, Ci) {
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, base, head, &[]).await;
    let run = publish_only(repo, &server, event(repo.path(), base, head, &[]), Env::pull_request()).await;
    (server, run)
}

/// The Action's publishing step runs in the evaluating job's checkout: `--publish-only`
/// annotates the changed lines there, as the direct path does, and skips deleted files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_only_annotates_the_changed_lines_in_a_checkout() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let evaluated = ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--no-publish", "--out", "promptgate-out"],
    );
    evaluated.run.expect_code(1);
    let (server, published) = published_on_its_event(&repo, &base, &head).await;
    published.run.expect_code(1);
    let check = check_run(&server).await;
    let annotations = check["output"]["annotations"].as_array().unwrap();
    let prompt = annotations
        .iter()
        .find(|a| a["path"] == "prompts/customer-support.md")
        .unwrap_or_else(|| panic!("{annotations:?}"));
    assert_eq!((&prompt["start_line"], &prompt["end_line"]), (&json!(14), &json!(16)));
    assert!(
        annotations.iter().all(|a| a["path"] != "prompts/partials/refunds.md"),
        "a deleted file cannot be annotated"
    );
}

/// The Action's publishing step, like the one-step `ci`: a check run GitHub refuses keeps the
/// evaluation's verdict in the outputs and says in the step summary what was refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_only_says_what_github_refused_in_the_step_summary() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--no-publish", "--out", "promptgate-out"],
    )
    .run
    .expect_code(1);
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, &base, &head, &[]).await;
    Mock::given(method("POST"))
        .and(path(format!("/repos/{REPO}/check-runs")))
        .respond_with(reply(403).set_body_json(json!({"message": "Resource not accessible by integration"})))
        .with_priority(1)
        .mount(&server)
        .await;
    let run = publish_only(
        &repo,
        &server,
        event(repo.path(), &base, &head, &[]),
        Env::pull_request(),
    )
    .await;
    run.run
        .expect_code(3)
        .stderr_has("GitHub refused to create the promptgate check run (403");
    refused_and_said(&run, "check run (403");
}

/// The Action's `head` input names another commit than the pull request's head (its merge
/// commit, say): the publishing step publishes that evaluation for the pull request, its check
/// on the head. A fork's evaluation handed on by a `workflow_run` may not name another commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_head_input_evaluates_another_commit_and_still_publishes() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    repo.write("NOTES.md", "merged\n");
    let merged = repo.commit("merge");
    let evaluated = ci(
        repo.path(),
        "http://127.0.0.1:9",
        &event(repo.path(), &base, &head, &[]),
        &["--no-publish", "--out", "promptgate-out", "--head", &merged],
    );
    evaluated.run.expect_code(1);
    let handoff: Value =
        serde_json::from_str(&std::fs::read_to_string(repo.path().join("promptgate-out/pr.json")).unwrap()).unwrap();
    assert_eq!(
        handoff["head"]["sha"].as_str().or(handoff["head_sha"].as_str()),
        Some(head.as_str())
    );
    assert_eq!(handoff["evaluated"], merged.as_str());
    let (server, published) = published_on_its_event(&repo, &base, &head).await;
    published.run.expect_code(1);
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(check["head_sha"], head.as_str());

    // In one step (`ci` evaluating and publishing), the check is on the head as well.
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let one_step = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "one-step", "--no-assets", "--head", &merged],
    )
    .await;
    one_step.run.expect_code(1);
    assert_eq!(check_run(&server).await["head_sha"], head.as_str());
    assert_eq!(
        crate::support::results(&repo.path().join("one-step"))["head"]["sha"],
        merged.as_str(),
        "the results say which commit was evaluated"
    );

    // A pr.json naming a commit that does not hold the head (the evaluation's word, written
    // after the pull request's code ran) is refused.
    let unrelated = repo.git(&["commit-tree", "-m", "unrelated", &format!("{merged}^{{tree}}")]);
    let mut claimed = handoff.clone();
    claimed["evaluated"] = json!(unrelated.trim());
    std::fs::write(
        repo.path().join("promptgate-out/pr.json"),
        serde_json::to_string(&claimed).unwrap(),
    )
    .unwrap();
    let (_, refused) = published_on_its_event(&repo, &base, &head).await;
    refused
        .run
        .expect_code(3)
        .stderr_has("nor a commit of this checkout built on it");
    std::fs::write(
        repo.path().join("promptgate-out/pr.json"),
        serde_json::to_string(&handoff).unwrap(),
    )
    .unwrap();

    // A fork's untrusted evaluation may not name another commit: refused before any call, and
    // the publishing job hears why.
    let fork = fork_event(repo.path(), &base, &head);
    let untrusted = ci_with(
        repo.path(),
        "http://127.0.0.1:9",
        &fork,
        &["--no-publish", "--out", "fork-out", "--head", &merged],
        &Env::pull_request().var("GITHUB_TOKEN", ""),
    );
    untrusted
        .run
        .expect_code(2)
        .stderr_has("a fork's untrusted evaluation evaluates the head");
    assert!(repo.path().join("fork-out/error.json").is_file());

    // The same files handed on by a `workflow_run` are refused.
    let server = fake_github(vec![], json!([]), &[]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let run = publish_only(
        &repo,
        &server,
        workflow_run_event(repo.path(), &head, "success"),
        Env::named("workflow_run"),
    )
    .await;
    run.run
        .expect_code(3)
        .stderr_has(&format!("pr.json says commit {} was evaluated", &merged[..12]));
}

/// A matrix whose shards all crashed before writing anything: its merge job, on the pull
/// request's own event, has no pr.json, and publishes from the event that the evaluation could
/// not finish. The fork-safe publisher (`workflow_run`) still needs the evaluation's word. And
/// the hand-off files are the evaluated code's word: a pr.json naming another pull request or
/// commit, an error.json with markdown or past 64 KiB, and an event naming no evaluation are
/// refused or escaped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matrix_whose_shards_wrote_nothing_still_gets_its_error_check() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    std::fs::create_dir_all(repo.path().join("promptgate-out")).unwrap();
    let (server, published) = published_on_its_event(&repo, &base, &head).await;
    published
        .run
        .expect_code(3)
        .stderr_has("the evaluation of #7 could not finish")
        .stderr_has("results.json is missing");
    // A later step keyed on the action's outputs sees the error, and the job's summary says it.
    assert!(published.output.contains("verdict=error\n"), "{}", published.output);
    assert!(published.summary.contains("could not finish"), "{}", published.summary);
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(check["head_sha"], head);
    assert!(
        check["output"]["title"].as_str().unwrap().contains("could not finish"),
        "{check}"
    );

    // A pr.json is the evaluation's word, and the evaluation ran the pull request's code: one
    // naming another pull request (or another commit) is refused on this one's event.
    for (number, sha) in [(8, head.as_str()), (7, base.as_str())] {
        let handoff = json!({"repository": REPO, "number": number, "base_ref": "main", "base_sha": base,
            "head_ref": "x", "head_sha": sha, "labels": [], "fork": false});
        std::fs::write(repo.path().join("promptgate-out/pr.json"), handoff.to_string()).unwrap();
        let server = fake_github(vec![], json!([]), &[]).await;
        publish_only(
            &repo,
            &server,
            event(repo.path(), &base, &head, &[]),
            Env::pull_request(),
        )
        .await
        .run
        .expect_code(3)
        .stderr_has(&format!("names pull request #{number}"))
        .stderr_has("but this job's event is about #7");
        let (lines, _) = sequence(&server).await;
        assert!(
            lines.iter().all(|l| !l.starts_with("PATCH") && !l.starts_with("POST")),
            "{lines:?}"
        );
    }
    std::fs::remove_file(repo.path().join("promptgate-out/pr.json")).unwrap();

    // The evaluation's error.json is its code's word too: escaped in the check, and a long one
    // cut in the title (GitHub refuses a long title, and the pull request would get no check).
    let long = format!("![look](https://evil.example/x.png) <b>pwned</b> {}", "x".repeat(500));
    std::fs::write(
        repo.path().join("promptgate-out/error.json"),
        json!({ "message": long }).to_string(),
    )
    .unwrap();
    let (server, published) = published_on_its_event(&repo, &base, &head).await;
    published.run.expect_code(3);
    let check = check_run(&server).await;
    let summary = check["output"]["summary"].as_str().unwrap();
    assert!(!summary.contains("![look]") && !summary.contains("<b>"), "{summary}");
    assert!(
        check["output"]["title"].as_str().unwrap().chars().count() <= 120,
        "{check}"
    );

    // An error.json past 64 KiB is not read (the evaluation may have written anything there).
    std::fs::write(
        repo.path().join("promptgate-out/error.json"),
        format!("{{\"message\": \"{}\"}}", "x".repeat(70_000)),
    )
    .unwrap();
    let (_server, published) = published_on_its_event(&repo, &base, &head).await;
    published
        .run
        .expect_code(3)
        .stderr_has("error.json that cannot be read: larger than 64 KiB");
    std::fs::remove_file(repo.path().join("promptgate-out/error.json")).unwrap();

    // An event that names no evaluation (a comment) publishes none, whatever pr.json says.
    let handoff = json!({"repository": REPO, "number": 7, "base_ref": "main", "base_sha": base,
        "head_ref": "x", "head_sha": head, "labels": [], "fork": false});
    std::fs::write(repo.path().join("promptgate-out/pr.json"), handoff.to_string()).unwrap();
    let server = fake_github(vec![], json!([]), &[]).await;
    publish_only(
        &repo,
        &server,
        comment_event(repo.path(), "mallory", "/promptgate accept"),
        Env::named("issue_comment"),
    )
    .await
    .run
    .expect_code(2)
    .stderr_has("--publish-only publishes an evaluation for the event that ran it");
    std::fs::remove_file(repo.path().join("promptgate-out/pr.json")).unwrap();

    let server = fake_github(vec![], json!([]), &[]).await;
    publish_only(
        &repo,
        &server,
        workflow_run_event(repo.path(), &head, "failure"),
        Env::named("workflow_run"),
    )
    .await
    .run
    .expect_code(2)
    .stderr_has("pr.json");
}

/// A fork's pull request that passes (only a docs file changes, the same answers), evaluated by
/// the fork-safe pair's untrusted half into `artifact/`: the repository, base and head.
fn fork_artifact() -> (TestRepo, String, String) {
    let repo = TestRepo::with_demo_base();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.checkout_new("pr");
    repo.write("docs/style-guide.md", "# Style\n\nShort sentences.\n");
    let head = repo.commit("docs");
    let fork = fork_event(repo.path(), &base, &head);
    ci_with(
        repo.path(),
        "http://127.0.0.1:9",
        &fork,
        &["--no-publish", "--out", "artifact", "--all"],
        &Env::pull_request().var("GITHUB_TOKEN", ""),
    )
    .run
    .expect_code(0);
    (repo, base, head)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_results_are_never_a_success_and_a_failed_evaluation_is_reported() {
    let (repo, base, head) = fork_artifact();
    // The fork controls the artifact: an experiment name that would be a workflow command.
    let results_path = repo.path().join("artifact/results.json");
    let forged = std::fs::read_to_string(&results_path).unwrap().replace(
        "\"name\": \"product-faq\"",
        "\"name\": \"::add-mask::x\\n  ::set-output name=verdict::pass\"",
    );
    std::fs::write(&results_path, forged).unwrap();
    let server = fake_github(vec![], json!([]), &[]).await;
    serve_fork_pull(
        &server,
        &base,
        &head,
        "tighten-refunds",
        json!({"full_name": "outside-contrib/prompts"}),
    )
    .await;
    let published = publish_artifact(repo.path(), server.uri(), &head, "success").await;
    published.run.expect_code(0);
    for line in published.run.stdout.lines().chain(published.run.stderr.lines()) {
        assert!(
            !line.trim_start().starts_with("::add-mask") && !line.trim_start().starts_with("::set-output"),
            "a workflow command got through: {line:?}"
        );
    }
    assert!(
        published.run.stdout.contains("add-mask"),
        "the name is still shown: {}",
        published.run.stdout
    );
    let (_, requests) = sequence(&server).await;
    let check = requests
        .iter()
        .find(|q| q.url.path().ends_with("/check-runs"))
        .map(body)
        .unwrap();
    // Not neutral: a required check lets a neutral through as it does a success.
    assert_eq!(check["conclusion"], "action_required");
    assert!(
        check["output"]["title"]
            .as_str()
            .unwrap()
            .starts_with("evaluated without secrets by untrusted code"),
        "{}",
        check["output"]["title"]
    );
    // Nor in the comment's heading, which a reviewer reads first: the fork's own verdict
    // under its own ✅ was the audit's catch (the 🔓 note stood at the comment's end).
    let comment = requests
        .iter()
        .rfind(|q| q.url.path().contains("/comments") && matches!(q.method.as_str(), "POST" | "PATCH"))
        .map(body)
        .unwrap_or_else(|| panic!("{:?}", sequence_of(&requests)));
    let heading = comment["body"]
        .as_str()
        .unwrap()
        .lines()
        .find(|l| l.starts_with("### "))
        .unwrap();
    assert!(
        heading.starts_with("### 🔓 promptgate: untrusted code's ") && heading.contains(", not yet verified"),
        "{heading}"
    );
    // Nor in an experiment's heading, nor unmarked in the log (a review's catch).
    let text = comment["body"].as_str().unwrap();
    assert!(!text.lines().any(|l| l.starts_with("### ✅")), "{text}");
    published.run.stdout_has("untrusted code's results");

    // The evaluating run failed (no results): the publish job says so instead of failing blind.
    std::fs::remove_file(repo.path().join("artifact/results.json")).unwrap();
    let server = fake_github(vec![], json!([]), &[]).await;
    serve_fork_pull(
        &server,
        &base,
        &head,
        "tighten-refunds",
        json!({"full_name": "outside-contrib/prompts"}),
    )
    .await;
    publish_artifact(repo.path(), server.uri(), &head, "failure")
        .await
        .run
        .expect_code(3)
        .stderr_has("the evaluating workflow run concluded `failure`");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
}

/// A fork's pull request closed and reopened runs the fork-safe pair again on a commit a
/// maintainer's run already evaluated with secrets: the untrusted results are not published
/// over the trusted ones (the comment, its state and the check stay the maintainer's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_results_are_not_published_over_a_trusted_evaluation_of_the_same_commit() {
    let (repo, base, head) = fork_artifact();
    let state = json!({"v": 1, "head_sha": head, "results": {"sha": head, "verdict": "pass",
        "reason": "evaluated by a maintainer", "untrusted": false, "regressions": []}});
    let sticky = format!("{MARKER}\n## ✅ promptgate: pass\ntrusted numbers\n\n<!-- promptgate:state {state} -->\n");
    let serve_pull = |server| {
        serve_fork_pull(
            server,
            &base,
            &head,
            "tighten-refunds",
            json!({"full_name": "outside-contrib/prompts"}),
        )
    };
    let server = fake_github_with(&sticky, vec![], json!([]), &[]).await;
    serve_pull(&server).await;
    let published = publish_artifact(repo.path(), server.uri(), &head, "success").await;
    published
        .run
        .stderr_has("already has results evaluated with secrets (pass)")
        .stderr_has("is not published over them");
    // The outputs give the check as it stays (the audit: `action_required` beside `success`).
    assert!(
        published.output.contains("conclusion=success") && published.output.contains("verdict=pass"),
        "{}",
        published.output
    );
    assert_eq!(published.run.code, 0, "the step follows the check that stands");
    assert!(
        published.summary.contains("**Not published:**"),
        "{}",
        published.summary
    );
    let (_, requests) = sequence(&server).await;
    let writes: Vec<String> = requests
        .iter()
        .filter(|q| q.method.as_str() != "GET")
        .map(|q| format!("{} {}", q.method, q.url.path()))
        .collect();
    assert!(
        writes.is_empty(),
        "nothing is written over the trusted results: {writes:?}"
    );

    // Nor a failed re-run (cancelled, say) of the untrusted evaluation.
    let server = fake_github_with(&sticky, vec![], json!([]), &[]).await;
    serve_pull(&server).await;
    let dir = repo.path().to_owned();
    publish_artifact(&dir, server.uri(), &head, "cancelled")
        .await
        .run
        .expect_code(3)
        .stderr_has("is not published over them");
    let (_, requests) = sequence(&server).await;
    assert!(
        requests.iter().all(|q| q.method.as_str() == "GET"),
        "nothing is written over the trusted results"
    );

    // Trusted results of another commit are no reason: these are published as always.
    let other = sticky.replace(&head, &"0".repeat(40));
    let server = fake_github_with(&other, vec![], json!([]), &[]).await;
    serve_pull(&server).await;
    publish_artifact(repo.path(), server.uri(), &head, "success")
        .await
        .run
        .expect_code(0);
    assert_eq!(check_run(&server).await["conclusion"], "action_required");
}

/// A fork can push another pull request's commit to a branch of its own and name that pull
/// request in its `pr.json`: the run is published only to a pull request whose head is the
/// repository and branch the run evaluated, not merely the same commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_run_publishes_only_to_the_pull_request_whose_head_it_evaluated() {
    let (repo, base, head) = fork_artifact();
    // The run evaluated outside-contrib/prompts:tighten-refunds (the fixture's head).
    for (owner, branch) in [
        ("someone-else/prompts", "tighten-refunds"),
        ("outside-contrib/prompts", "main"),
    ] {
        let server = fake_github(vec![], json!([]), &[]).await;
        serve_fork_pull(&server, &base, &head, branch, json!({"full_name": owner})).await;
        for conclusion in ["success", "failure"] {
            let dir = repo.path().to_owned();
            publish_artifact(&dir, server.uri(), &head, conclusion).await
            .run
            .expect_code(3)
            .stderr_has(&format!(
                "the evaluating workflow run was for outside-contrib/prompts:tighten-refunds, but pull request #7's head is {owner}:{branch}"
            ));
        }
        let (_, requests) = sequence(&server).await;
        assert!(
            requests.iter().all(|q| q.method.as_str() == "GET"),
            "nothing was published"
        );
    }
    // A deleted fork names no repository: bound by its branch and commit, with a warning.
    let server = fake_github(vec![], json!([]), &[]).await;
    serve_fork_pull(&server, &base, &head, "tighten-refunds", Value::Null).await;
    publish_artifact(repo.path(), server.uri(), &head, "success")
        .await
        .run
        .expect_code(0)
        .stderr_has("does not name its head's repository or branch; bound to the pull request by commit only");
    // A fork renamed since the run keeps its id: the same head, published.
    let server = fake_github(vec![], json!([]), &[]).await;
    let renamed = json!({"full_name": "outside-contrib/renamed", "id": 990_022_334});
    serve_fork_pull(&server, &base, &head, "tighten-refunds", renamed).await;
    publish_artifact(repo.path(), server.uri(), &head, "success")
        .await
        .run
        .expect_code(0);
    assert_eq!(check_run(&server).await["conclusion"], "action_required");
}

/// The fork-safe pair's publishing half: `ci --publish-only artifact` in `dir` on the
/// `workflow_run` of `head`'s evaluation, which concluded `conclusion`.
async fn publish_artifact(dir: &Path, api: String, head: &str, conclusion: &str) -> Ci {
    ci_async_in(
        dir,
        api,
        workflow_run_event(dir, head, conclusion),
        &["--publish-only", "artifact", "--out", "published", "--no-assets"],
        Env::named("workflow_run"),
    )
    .await
}

/// A `workflow_run` payload for the evaluation of `head`, which concluded `conclusion`.
fn workflow_run_event(dir: &Path, head: &str, conclusion: &str) -> PathBuf {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/github/workflow_run.completed.json"),
    )
    .unwrap();
    let mut payload: Value = serde_json::from_str(&text).unwrap();
    payload["workflow_run"]["head_sha"] = json!(head);
    payload["workflow_run"]["conclusion"] = json!(conclusion);
    payload["repository"] = json!({"full_name": REPO});
    let path = dir.join(format!("workflow-run-{conclusion}.json"));
    std::fs::write(&path, serde_json::to_string(&payload).unwrap()).unwrap();
    path
}

/// A keyed suite priced so its six cases (both arms) cost well under a cent, under `budget`,
/// with a pull request changing its prompt: (the model server, the repository, base, head).
async fn costly_pr(budget: &str) -> (MockServer, TestRepo, String, String) {
    let provider = model_server("Refunds take 30 days.").await;
    let repo = TestRepo::new();
    keyed_suite(&repo, &provider.uri());
    repo.edit(
        "promptgate.yaml",
        "defaults: {provider: offline}",
        &format!("defaults: {{provider: offline}}\npricing: {{m: {{input: 2, output: 2}}}}\n{budget}"),
    );
    let base = repo.commit("base");
    repo.checkout_new("pr");
    repo.write("prompts/a.md", "Answer briefly.\n");
    let head = repo.commit("pr");
    (provider, repo, base, head)
}

/// `ci` on the pull request of [`costly_pr`], with the provider's key, nothing approved.
async fn costly_ci(repo: &TestRepo, server: &MockServer, base: &str, head: &str) -> Ci {
    ci_async_in(
        repo.path(),
        server.uri(),
        event(repo.path(), base, head, &[]),
        &["--out", "out", "--no-assets"],
        Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await
}

/// Above the hard cap no maintainer's approval lets a run go: in CI it is not held for an
/// approve-cost label (which could never clear it) but refused, an error whose results say
/// what to change, and nothing is spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_over_the_hard_cap_is_refused_in_ci_not_held_for_approval() {
    let (provider, repo, base, head) = costly_pr("budget: {max_usd: 0.0001}").await;
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = costly_ci(&repo, &server, &base, &head).await;
    run.run.expect_code(3).stderr_has("exceeds the budget's hard cap");
    assert!(
        provider.received_requests().await.unwrap().is_empty(),
        "nothing was spent"
    );
    let results = crate::support::results(&repo.path().join("out"));
    assert_eq!(results["verdict"], "error");
    assert!(results.get("approval").is_none(), "{results}");
    let reason = results["experiments"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("raise `budget.max_usd`"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_costly_run_waits_for_the_approve_cost_label_and_names_amounts_with_their_digits() {
    let (provider, repo, base, head) = costly_pr("budget: {approve_above_usd: 0.001}").await;

    // Locally: a run error that says how much, with digits, and what to approve.
    let local = crate::support::promptgate_env(
        repo.path(),
        &["run", "--base", "main", "--head", "pr", "--out", "local"],
        &[("OPENAI_API_KEY", CANARY_KEY)],
    );
    local
        .expect_code(3)
        .stderr_has("is above the approval threshold of $0.001")
        .stderr_has("hint: approve it with --approve-cost 0.");
    assert!(!local.stderr.contains("$0.00 "), "{}", local.stderr);

    // In CI: nothing is spent, the check asks for a maintainer.
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = costly_ci(&repo, &server, &base, &head).await;
    run.run.expect_code(1).stdout_has("verdict: NEEDS APPROVAL");
    assert!(
        provider.received_requests().await.unwrap().is_empty(),
        "nothing was spent"
    );
    let results = crate::support::results(&repo.path().join("out"));
    let reason = results["approval"]["reason"].as_str().unwrap();
    assert!(reason.contains("above the approval threshold of $0.001"), "{reason}");
    assert!(
        results["approval"]["how"]
            .as_str()
            .unwrap()
            .contains("promptgate:approve-cost")
    );
    let comment = last_sticky_body(&server).await;

    // A maintainer's label approves the cost of this commit: the run spends.
    let label = "promptgate:approve-cost";
    let server = fake_github_with(&comment, vec![], json!([]), &[("maya", "maintain")]).await;
    label_added(&server, 701, "maya", label, &given_at()).await;
    let run = ci_async_in(
        repo.path(),
        server.uri(),
        label_event(repo.path(), &base, &head, "labeled", label, &[label]),
        &["--out", "out", "--no-assets"],
        Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
    )
    .await;
    run.run.expect_code(0).stderr_has("cost approved by maya");
    assert!(!provider.received_requests().await.unwrap().is_empty());
    let approved = last_sticky_body(&server).await;
    assert!(approved.contains("\"event_id\":701"), "{approved}");

    // The next run of this commit (the label still on) holds to the recorded approval while
    // GitHub confirms it; one a write-access user planted in the state, for a label event of
    // their own, does not count.
    // A re-run of this commit (the label still on), the state `sticky`, GitHub listing `events`.
    let rerun = |sticky: String, permissions: &'static [(&'static str, &'static str)], events: Value| {
        let (repo, base, head) = (&repo, base.clone(), head.clone());
        async move {
            let server = fake_github_with(&sticky, vec![], json!([]), permissions).await;
            json_mock(&server, "GET", &format!("/repos/{REPO}/issues/7/events"), 200, events).await;
            ci_async_in(
                repo.path(),
                server.uri(),
                event(repo.path(), &base, &head, &[label]),
                &["--out", "out", "--no-assets"],
                Env::pull_request().var("OPENAI_API_KEY", CANARY_KEY),
            )
            .await
        }
    };
    let labeled = |id: u64, kind: &str, who: &str| json!({"id": id, "event": kind, "actor": user(who), "label": {"name": label}, "created_at": given_at()});
    rerun(
        approved.clone(),
        &[("maya", "maintain")],
        json!([labeled(701, "labeled", "maya")]),
    )
    .await
    .run
    .expect_code(0)
    .stderr_has("cost approved by maya");
    let planted = approved.replace("\"by\":\"maya\",\"event_id\":701", "\"by\":\"tri\",\"event_id\":702");
    assert_ne!(planted, approved);
    rerun(planted, &[("tri", "write")], json!([labeled(702, "labeled", "tri")]))
        .await
        .run
        .expect_code(1)
        .stdout_has("verdict: NEEDS APPROVAL")
        .stderr_has("the `promptgate:approve-cost` approval by tri no longer counts");

    // Withdrawn: the maintainer removed the label, and someone who may only label added it again.
    let withdrawn = json!([
        labeled(701, "labeled", "maya"),
        labeled(702, "unlabeled", "maya"),
        labeled(703, "labeled", "tri")
    ]);
    rerun(approved, &[("maya", "maintain"), ("tri", "triage")], withdrawn)
        .await
        .run
        .expect_code(1)
        .stdout_has("verdict: NEEDS APPROVAL")
        .stderr_has("the label was removed since");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_error_is_annotated_on_its_line() {
    let repo = TestRepo::with_demo_base();
    let base = repo.git(&["rev-parse", "HEAD"]).trim().to_owned();
    repo.checkout_new("pr");
    repo.edit("promptgate.yaml", "provider: offline,", "provider: ofline,");
    let head = repo.commit("typo");
    let server = fake_github(vec![], json!([]), &[]).await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    run.run
        .expect_code(2)
        .stdout_has("::error file=promptgate.yaml,line=")
        .stdout_has("title=promptgate%3A configuration error::unknown provider `ofline` in defaults");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_actions_three_steps_keep_the_token_and_the_pull_requests_code_apart() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let event = event(repo.path(), &base, &head, &[]);
    let prepared = repo.path().join(".scratch-prepared.json");
    let prepared_arg = prepared.to_str().unwrap().to_owned();
    let r = |p: &str| format!("/repos/{REPO}{p}");

    // 1. prepare: the token, no pull-request code; announces the run.
    let server = fake_github(vec![], json!([]), &[]).await;
    let step = ci_async(
        &repo,
        server.uri(),
        event.clone(),
        &["--prepare", "--prepared", &prepared_arg, "--out", "out"],
    )
    .await;
    step.run.expect_code(0);
    assert!(step.output.contains("route=evaluate\n"), "{}", step.output);
    let (lines, _) = sequence(&server).await;
    assert_eq!(lines.last().unwrap(), &format!("PATCH {}", r("/issues/comments/42")));
    let announced = last_sticky_body(&server).await;
    assert!(announced.contains("promptgate: evaluating"), "{announced}");
    assert!(!repo.path().join("out/results.json").exists(), "nothing evaluated yet");

    // 2. evaluate: no token, no API (nothing listens there): the gate from the prepared file.
    let step = ci_async_in(
        repo.path(),
        "http://127.0.0.1:9".to_owned(),
        event.clone(),
        &["--no-publish", "--prepared", &prepared_arg, "--out", "out"],
        Env::pull_request().var("GITHUB_TOKEN", ""),
    )
    .await;
    step.run.expect_code(1).stdout_has("verdict: FAIL");
    assert!(repo.path().join("out/pr.json").is_file());

    // 3. publish: the token again; it evaluates nothing.
    let server = fake_github_with(&announced, vec![], json!([]), &[]).await;
    pr_mock(&server, &base, &head, &[]).await;
    let step = ci_async(
        &repo,
        server.uri(),
        event,
        &["--publish-only", "out", "--out", "out", "--no-assets"],
    )
    .await;
    step.run.expect_code(1);
    assert!(
        !step.run.stderr.contains("promptgate: plan:"),
        "publishing evaluated: {}",
        step.run.stderr
    );
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure");
    assert_eq!(check["head_sha"], head.as_str());
    let report = last_sticky_body(&server).await;
    assert!(report.contains("promptgate: regression"), "{report}");
}

/// How many comments the requests `lines` ([`sequence`]) posted.
fn comment_posts(lines: &[String]) -> usize {
    lines
        .iter()
        .filter(|l| l.starts_with("POST") && l.ends_with("/comments"))
        .count()
}

/// Each `(method, route, status, body)` answered by the fake GitHub.
async fn json_mocks(server: &MockServer, mocks: Vec<(&str, String, u16, Value)>) {
    for (verb, route, status, body) in mocks {
        json_mock(server, verb, &route, status, body).await;
    }
}

/// A fake GitHub that creates the comment a post asks for, then answers the post with a 502
/// (as a proxy timing out after GitHub did the work): the listing shows the comment from then on.
struct CreatedThen502 {
    created: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl wiremock::Respond for CreatedThen502 {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.created.store(true, std::sync::atomic::Ordering::SeqCst);
        reply(502).set_body_json(json!({"message": "Server Error"}))
    }
}

struct CommentsList {
    created: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl wiremock::Respond for CommentsList {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let comments = if self.created.load(std::sync::atomic::Ordering::SeqCst) {
            json!([comment_json(
                43,
                BOT,
                &format!("{MARKER}\n## ⏳ promptgate: evaluating")
            )])
        } else {
            json!([])
        };
        reply(200).set_body_json(comments)
    }
}

/// The pull request's comments, the sticky one's body `first` on the first listing and `then`
/// on every later one (a gate run wrote it in between).
struct ChangingSticky {
    calls: std::sync::atomic::AtomicUsize,
    first: String,
    then: String,
    accept: Value,
}

impl wiremock::Respond for ChangingSticky {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let call = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body = if call == 0 { &self.first } else { &self.then };
        reply(200).set_body_json(json!([comment_json(42, BOT, body), self.accept.clone()]))
    }
}

/// A gate run that writes the comment while a waiver's run looks the waiver up (its permission
/// lookups take seconds) is not written over with what the waiver's run read before: it starts
/// over from the comment as it is now (an audit's waiver run put the older commit back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiver_run_starts_over_when_the_comment_changed_while_it_looked() {
    let (_repo, base, head, sticky) = regressed_demo().await;
    let empty = tempfile::tempdir().unwrap();
    let text = "/promptgate accept refunds moved to the help center on purpose";
    let accept = comment_json(80, "maya", text);
    let newer = sticky.replacen("<!-- promptgate:state ", "newer numbers\n<!-- promptgate:state ", 1);
    let server = fake_github_with(&sticky, vec![], json!([]), &[("maya", "admin")]).await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/issues/7/comments")))
        .respond_with(ChangingSticky {
            calls: std::sync::atomic::AtomicUsize::new(0),
            first: sticky.clone(),
            then: newer,
            accept,
        })
        .with_priority(2)
        .mount(&server)
        .await;
    pr_mock(&server, &base, &head, &[]).await;
    let run = ci_async_in(
        empty.path(),
        server.uri(),
        comment_event(empty.path(), "maya", text),
        &["--out", "out"],
        Env::named("issue_comment"),
    )
    .await;
    run.run
        .expect_code(0)
        .stderr_has("the promptgate comment changed while the waiver was looked up; starting over from it");
    let written = last_sticky_body(&server).await;
    assert!(written.contains("newer numbers"), "{written}");
    assert!(written.contains("Regression accepted"), "{written}");
}

/// DESIGN: "One sticky comment per PR … never a new comment per push". A post that GitHub
/// answers with a server error may have created the comment: it is looked for before posting
/// again, and the one found is updated — never a second comment left saying "evaluating".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_created_before_a_server_error_is_updated_not_posted_twice() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = MockServer::start().await;
    let created = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    json_mock(
        &server,
        "GET",
        "/user",
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;
    let comments = format!("/repos/{REPO}/issues/7/comments");
    Mock::given(method("GET"))
        .and(path(comments.as_str()))
        .respond_with(CommentsList {
            created: created.clone(),
        })
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(comments.as_str()))
        .respond_with(CreatedThen502 {
            created: created.clone(),
        })
        .mount(&server)
        .await;
    json_mocks(
        &server,
        vec![
            (
                "PATCH",
                format!("/repos/{REPO}/issues/comments/43"),
                200,
                json!({"id": 43}),
            ),
            ("POST", format!("/repos/{REPO}/check-runs"), 201, json!({"id": 5})),
        ],
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--comment", "always", "--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(1)
        .stderr_has("server error (502) posting the promptgate comment; looking for it before posting again");
    let (lines, requests) = sequence(&server).await;
    let posts = comment_posts(&lines);
    assert_eq!(posts, 1, "posted once, never again: {lines:?}");
    let patches: Vec<&Request> = requests
        .iter()
        .filter(|r| r.method.as_str() == "PATCH" && r.url.path().ends_with("/issues/comments/43"))
        .collect();
    assert_eq!(
        patches.len(),
        2,
        "the progress, then the report, into the one comment: {lines:?}"
    );
    assert!(
        body(patches[1])["body"]
            .as_str()
            .unwrap()
            .contains("promptgate: regression")
    );
    assert_eq!(check_run(&server).await["conclusion"], "failure");
}

/// Our comment as the first listing shows it, gone from every later one (deleted meanwhile).
struct ListedOnce {
    listed: std::sync::atomic::AtomicBool,
}

impl wiremock::Respond for ListedOnce {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let comments = if self.listed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            json!([])
        } else {
            json!([comment_json(
                42,
                BOT,
                &format!("{MARKER}\n## ✅ promptgate: pass\nold numbers")
            )])
        };
        reply(200).set_body_json(comments)
    }
}

/// A sticky comment deleted while the run goes (its PATCH answers 404) is posted again,
/// rather than the run failing with the report nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sticky_comment_is_posted_again() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = MockServer::start().await;
    json_mock(
        &server,
        "GET",
        "/user",
        403,
        json!({"message": "Resource not accessible by integration"}),
    )
    .await;
    Mock::given(method("GET"))
        .and(path(format!("/repos/{REPO}/issues/7/comments")))
        .respond_with(ListedOnce {
            listed: std::sync::atomic::AtomicBool::new(false),
        })
        .mount(&server)
        .await;
    json_mocks(
        &server,
        vec![
            (
                "PATCH",
                format!("/repos/{REPO}/issues/comments/42"),
                404,
                json!({"message": "Not Found"}),
            ),
            (
                "POST",
                format!("/repos/{REPO}/issues/7/comments"),
                201,
                json!({"id": 44}),
            ),
            (
                "PATCH",
                format!("/repos/{REPO}/issues/comments/44"),
                200,
                json!({"id": 44}),
            ),
            ("POST", format!("/repos/{REPO}/check-runs"), 201, json!({"id": 5})),
        ],
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(1)
        .stderr_has("the promptgate comment (42) is gone; posting it again");
    let (lines, requests) = sequence(&server).await;
    // Every request accepts the media type GitHub's REST documentation names.
    for request in &requests {
        let accept: Vec<&str> = (request.headers.get_all("accept").iter())
            .filter_map(|v| v.to_str().ok())
            .collect();
        assert_eq!(
            accept,
            ["application/vnd.github+json"],
            "{} {}",
            request.method,
            request.url
        );
    }
    let posts = comment_posts(&lines);
    assert_eq!(posts, 1, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("PATCH /repos/{REPO}/issues/comments/44")),
        "{lines:?}"
    );
    assert_eq!(check_run(&server).await["conclusion"], "failure");
}

/// DESIGN: "A check run whose conclusion carries the verdict". A report GitHub refuses to take
/// as the comment (too long, say) still leaves the check with the verdict, and the run says
/// what failed, exit 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_github_refuses_still_leaves_the_check_with_the_verdict() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = fake_github(vec![], json!([]), &[]).await;
    let update = format!("/repos/{REPO}/issues/comments/42");
    // The "evaluating" update goes through; the report's is refused.
    Mock::given(method("PATCH"))
        .and(path(update.as_str()))
        .respond_with(reply(200).set_body_json(comment_json(42, BOT, "evaluating")))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(update.as_str()))
        .respond_with(reply(422).set_body_json(json!({"message": "Validation Failed", "errors": [{"resource": "IssueComment", "code": "custom", "field": "body", "message": "body is too long (maximum is 65536 characters)"}]})))
        .with_priority(2)
        .mount(&server)
        .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--no-assets", "--out", "out"],
    )
    .await;
    run.run
        .expect_code(3)
        .stderr_has("GitHub refused to update the promptgate comment (422");
    let check = check_run(&server).await;
    assert_eq!(check["conclusion"], "failure", "the demo's regression: {check}");
    assert!(run.output.contains("verdict=fail\n"), "{}", run.output);
}

/// docs/github.md: "A run that could not finish writes `verdict=error` and
/// `conclusion=failure` and puts the error in the step summary" — also when GitHub stops it
/// before anything is evaluated (the comments cannot be listed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_github_stops_before_the_evaluation_still_writes_its_outputs() {
    let repo = TestRepo::with_demo_base();
    let (base, head) = demo_pr(&repo);
    let server = MockServer::start().await;
    json_mocks(
        &server,
        vec![
            (
                "GET",
                "/user".to_owned(),
                403,
                json!({"message": "Resource not accessible by integration"}),
            ),
            (
                "GET",
                format!("/repos/{REPO}/issues/7/comments"),
                404,
                json!({"message": "Not Found"}),
            ),
        ],
    )
    .await;
    let run = ci_async(
        &repo,
        server.uri(),
        event(repo.path(), &base, &head, &[]),
        &["--out", "out"],
    )
    .await;
    run.run.expect_code(3).stderr_has("(404 Not Found");
    assert!(
        run.output.contains("verdict=error\nconclusion=failure\n"),
        "{}",
        run.output
    );
    assert_eq!(run.output.matches("verdict=").count(), 1, "{}", run.output);
    assert!(run.summary.contains("promptgate: could not finish"), "{}", run.summary);
    assert!(run.summary.contains("404"), "{}", run.summary);
}
