//! A small REST client over octocrab's raw requests: our own error messages (which permission a
//! 403 lacks), our own retry on secondary rate limits, `Link` pagination, and a dry-run mode
//! that records every write instead of sending it.
//!
//! octocrab's typed helpers are bypassed on purpose: `update_comment` sends POST where GitHub
//! documents PATCH, and its errors drop the response headers a rate-limit retry needs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::service::middleware::retry::RetryConfig;
use serde_json::{Value, json};

use crate::error::{Diagnostic, Error};

/// Attempts per request when GitHub answers with a rate limit or a server error.
const MAX_ATTEMPTS: u32 = 4;
/// Never wait longer than this for one retry, whatever `retry-after` says.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Pages followed at most when listing (100 items each).
const MAX_PAGES: usize = 50;
/// The most GitHub's clock (its answers' `Date`) is believed to differ from ours.
const MAX_SKEW: Duration = Duration::from_secs(24 * 3600);
/// The largest answer read from the API: a page of 100 comments of 65,536 characters each
/// is about 26 MB of JSON.
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// The longest an answer may take to arrive, its headers and its body, unless
/// `PROMPTGATE_GITHUB_ANSWER_SECS` sets another (whole seconds, 1 to 86,400; another value is
/// not read).
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);

/// [`ANSWER_DEADLINE`], or the variable's.
fn answer_deadline() -> Duration {
    std::env::var("PROMPTGATE_GITHUB_ANSWER_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&secs| (1..=86_400).contains(&secs))
        .map_or(ANSWER_DEADLINE, Duration::from_secs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// What a request is for, in words, and the workflow permission it needs: both go into the
/// error message when GitHub refuses.
#[derive(Clone, Copy, Debug)]
pub struct Purpose {
    pub what: &'static str,
    pub permission: &'static str,
}

/// A [`Refusal`]'s status when no answer came (the connection failed): only
/// [`Client::try_create`] gives it back, for its caller to look before posting again.
pub const UNANSWERED: u16 = 0;

/// Whether a request a server error (5xx) answered is sent again: `Return` for one that may
/// have taken effect before the error and would show twice (see [`Client::try_create`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ServerError {
    Retry,
    Return,
}

/// An answer GitHub gave with a status other than success, kept when the caller handles it.
#[derive(Debug)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

pub struct Client {
    transport: Transport,
    /// `owner/name`.
    pub repository: String,
    /// Pagination links are followed only under this prefix, so the token never leaves it.
    api_url: String,
    /// GitHub's clock less ours, in whole seconds, from the `Date` header of its last answer:
    /// what [`Client::now`] adds to ours. `i64::MIN` until an answer carried one.
    skew_secs: AtomicI64,
}

enum Transport {
    Live(Box<Octocrab>),
    /// Writes are recorded here, reads answer as if nothing existed.
    DryRun(Mutex<Vec<Value>>),
}

impl Client {
    /// A client for `api_url` (GitHub, GitHub Enterprise's `/api/v3`, or a test server). Must be
    /// called inside a tokio runtime: octocrab spawns its connection worker there.
    pub fn live(api_url: &str, token: String, repository: &str) -> Result<Client, Error> {
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(Diagnostic::new(format!("GITHUB_API_URL `{api_url}` is not an http(s) URL"))
                .hint("unset it to use https://api.github.com, or give the whole address, e.g. https://github.example.com/api/v3")
                .into());
        }
        let crab = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| {
                Error::from(
                    Diagnostic::new(format!("GITHUB_API_URL `{api_url}` is not a URL: {e}"))
                        .hint("unset it to use https://api.github.com"),
                )
            })?
            .personal_token(token)
            // The media type GitHub's REST documentation asks every request to accept.
            .add_header(reqwest::header::ACCEPT, "application/vnd.github+json".to_owned())
            // Retries are ours (below): octocrab's default would retry 429s without waiting.
            .add_retry_config(RetryConfig::None)
            .set_connect_timeout(Some(Duration::from_secs(20)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| Error::run(format!("cannot build the GitHub client: {e}")))?;
        Ok(Client {
            transport: Transport::Live(Box::new(crab)),
            repository: repository.to_owned(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            skew_secs: AtomicI64::new(i64::MIN),
        })
    }

    pub fn dry_run(repository: &str) -> Client {
        Client {
            transport: Transport::DryRun(Mutex::new(Vec::new())),
            repository: repository.to_owned(),
            api_url: String::new(),
            skew_secs: AtomicI64::new(i64::MIN),
        }
    }

    /// Now by GitHub's clock (RFC 3339, UTC, whole seconds), as far as its answers' `Date`
    /// headers told it; ours before any answer (and in a dry run). Instants compared with
    /// GitHub's own (a waiver's `created_at`) are taken by this, so a runner whose clock is off
    /// does not order them wrongly.
    pub fn now(&self) -> String {
        let ours = std::time::SystemTime::now();
        let at = match self.skew_secs.load(Ordering::Relaxed) {
            i64::MIN => ours,
            skew if skew >= 0 => ours + Duration::from_secs(skew.unsigned_abs()),
            skew => ours
                .checked_sub(Duration::from_secs(skew.unsigned_abs()))
                .unwrap_or(ours),
        };
        crate::ledger::rfc3339(at)
    }

    /// Notes GitHub's clock from an answer's `Date` header (an IMF-fixdate).
    fn note_date(&self, date: &str) {
        let Some(theirs) = crate::providers::http::parse_http_date(date) else {
            return;
        };
        let ours = std::time::SystemTime::now();
        let skew = match theirs.duration_since(ours) {
            Ok(ahead) => i64::try_from(ahead.as_secs()).unwrap_or(i64::MAX),
            Err(behind) => -i64::try_from(behind.duration().as_secs()).unwrap_or(i64::MAX),
        };
        // More than a day apart is a broken header, not a clock: ours is nearer the truth.
        if skew.unsigned_abs() <= MAX_SKEW.as_secs() {
            self.skew_secs.store(skew, Ordering::Relaxed);
        }
    }

    pub fn is_dry_run(&self) -> bool {
        matches!(self.transport, Transport::DryRun(_))
    }

    /// The requests a dry run would have sent, in order.
    pub fn recorded(&self) -> Vec<Value> {
        match &self.transport {
            Transport::DryRun(log) => log.lock().map(|l| l.clone()).unwrap_or_default(),
            Transport::Live(_) => Vec::new(),
        }
    }

    /// The dry run's requests as `METHOD /route` lines, for tests to compare in one assertion.
    #[cfg(test)]
    pub fn recorded_routes(&self) -> Vec<String> {
        self.recorded()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["method"].as_str().unwrap_or(""),
                    r["route"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// `/repos/{owner}/{name}` followed by `rest`.
    pub fn repo_route(&self, rest: &str) -> String {
        format!("/repos/{}{rest}", self.repository)
    }

    pub async fn get(&self, route: &str, purpose: Purpose) -> Result<Value, Error> {
        self.send(Method::Get, route, None, purpose).await
    }

    /// A GET whose refusal the caller handles (e.g. `GET /user` with an Actions token).
    pub async fn try_get(&self, route: &str, purpose: Purpose) -> Result<Result<Value, Refusal>, Error> {
        match &self.transport {
            Transport::DryRun(_) => Ok(Ok(Value::Null)),
            Transport::Live(crab) => Ok(self
                .exchange(crab, Method::Get, route, None, purpose, ServerError::Retry)
                .await?
                .map(|(v, _)| v)),
        }
    }

    /// Every item of a list endpoint, following `Link: rel="next"` (100 per page).
    pub async fn get_all(&self, route: &str, purpose: Purpose) -> Result<Vec<Value>, Error> {
        let Transport::Live(crab) = &self.transport else {
            return Ok(Vec::new());
        };
        let separator = if route.contains('?') { '&' } else { '?' };
        let mut next = Some(format!("{route}{separator}per_page=100"));
        let mut items = Vec::new();
        let mut pages = 0;
        while let Some(route) = next.take() {
            pages += 1;
            let (value, link) = self
                .exchange(crab, Method::Get, &route, None, purpose, ServerError::Retry)
                .await?
                .map_err(|r| refused(Method::Get, &route, purpose, r))?;
            match value {
                Value::Array(page) => items.extend(page),
                _ => {
                    return Err(Error::run(format!(
                        "GitHub answered {route} with something other than a list"
                    )));
                }
            }
            next = link.as_deref().and_then(next_link);
            // A list read in part would decide on what it left out (an older label event taken
            // for the newest one): more pages than the cap, or a next page off the API, is an
            // error, never a silent end.
            if let Some(more) = &next
                && (pages >= MAX_PAGES || !more.starts_with(&format!("{}/", self.api_url)))
            {
                return Err(Error::run_with_hint(
                    format!(
                        "GitHub's list {route} goes on past what promptgate reads ({MAX_PAGES} pages of 100, under {})",
                        self.api_url
                    ),
                    "nothing was decided on part of the list; if the pull request really has that many comments or events, publish from a fresh pull request",
                ));
            }
        }
        Ok(items)
    }

    pub async fn send(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
        purpose: Purpose,
    ) -> Result<Value, Error> {
        // The last line of defence: whatever promptgate publishes carries no secret it knows.
        let redacted = body.map(|b| {
            let mut b = b.clone();
            crate::secrets::redact_json(&mut b);
            b
        });
        let body = redacted.as_ref();
        match &self.transport {
            Transport::DryRun(log) => {
                if method != Method::Get {
                    let mut log = log.lock().map_err(|_| Error::run("dry-run log poisoned"))?;
                    log.push(json!({"method": method.as_str(), "route": route, "purpose": purpose.what, "body": body}));
                }
                Ok(json!({"id": 0}))
            }
            Transport::Live(crab) => {
                let answer = self
                    .exchange(crab, method, route, body, purpose, ServerError::Retry)
                    .await?;
                answer.map(|(v, _)| v).map_err(|r| refused(method, route, purpose, r))
            }
        }
    }

    /// A request whose refusal the caller handles (e.g. a ref update that is no longer a
    /// fast-forward). A dry run records it like [`Client::send`].
    pub async fn try_send(
        &self,
        method: Method,
        route: &str,
        body: Option<&Value>,
        purpose: Purpose,
    ) -> Result<Result<Value, Refusal>, Error> {
        let redacted = body.map(|b| {
            let mut b = b.clone();
            crate::secrets::redact_json(&mut b);
            b
        });
        let body = redacted.as_ref();
        match &self.transport {
            Transport::DryRun(_) => self.send(method, route, body, purpose).await.map(Ok),
            Transport::Live(crab) => Ok(self
                .exchange(crab, method, route, body, purpose, ServerError::Retry)
                .await?
                .map(|(v, _)| v)),
        }
    }

    /// A POST that creates something a second copy of would show (a comment), sent once: a
    /// server error (5xx), or a connection that failed ([`UNANSWERED`]), may come after GitHub
    /// created it, so it is returned as a refusal for the caller to look before sending again. A rate limit, which GitHub answers before
    /// doing anything, is waited out and retried as for any request. A dry run records it like
    /// [`Client::send`].
    pub async fn try_create(
        &self,
        route: &str,
        body: &Value,
        purpose: Purpose,
    ) -> Result<Result<Value, Refusal>, Error> {
        let Transport::Live(crab) = &self.transport else {
            return self.send(Method::Post, route, Some(body), purpose).await.map(Ok);
        };
        let mut body = body.clone();
        crate::secrets::redact_json(&mut body);
        Ok(self
            .exchange(crab, Method::Post, route, Some(&body), purpose, ServerError::Return)
            .await?
            .map(|(v, _)| v))
    }

    /// One request with retries. `Ok(Err(refusal))` is a final non-success answer.
    async fn exchange(
        &self,
        crab: &Octocrab,
        method: Method,
        route: &str,
        body: Option<&Value>,
        purpose: Purpose,
        server_error: ServerError,
    ) -> Result<Result<(Value, Option<String>), Refusal>, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            // One deadline for the whole answer, its headers and its body: the read timeout is
            // per read, and an answer trickled a byte (or a header line) at a time — a proxy, a
            // struggling GitHub Enterprise — would hold the job for hours.
            let within = answer_deadline();
            let deadline = tokio::time::Instant::now() + within;
            let late = || {
                Error::run_with_hint(
                    format!(
                        "GitHub's answer to {} {route} did not arrive within {} s",
                        method.as_str(),
                        within.as_secs()
                    ),
                    "re-run the job; if it persists, check GitHub's status page (githubstatus.com) and any proxy in between",
                )
            };
            let send = async {
                match method {
                    Method::Get => crab._get(route).await,
                    Method::Post => crab._post(route, body).await,
                    Method::Patch => crab._patch(route, body).await,
                    Method::Put => crab._put(route, body).await,
                    Method::Delete => crab._delete(route, body).await,
                }
            };
            let Ok(sent) = tokio::time::timeout_at(deadline, send).await else {
                return Err(late());
            };
            let response = match sent {
                Ok(r) => r,
                // The request may have reached GitHub before the connection failed: the caller
                // of a post not to repeat looks before sending it again.
                Err(e) if server_error == ServerError::Return => {
                    return Ok(Err(Refusal {
                        status: UNANSWERED,
                        message: one_line(&e.to_string()),
                    }));
                }
                Err(e) if attempt < MAX_ATTEMPTS => {
                    eprintln!(
                        "promptgate: GitHub unreachable ({}), retrying",
                        one_line(&e.to_string())
                    );
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::run_with_hint(
                        format!(
                            "GitHub is unreachable ({} {route} to {}): {}",
                            method.as_str(),
                            purpose.what,
                            one_line(&e.to_string())
                        ),
                        "check GITHUB_API_URL and the runner's network",
                    ));
                }
            };
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok());
            let remaining = header("x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
            let reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
            let link = header("link");
            let date = header("date");
            // Read at most MAX_RESPONSE_BYTES: an endless answer is an error, not an abort.
            let limited = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE_BYTES);
            let collected = tokio::time::timeout_at(deadline, http_body_util::BodyExt::collect(limited)).await;
            let text = match collected {
                Ok(Ok(collected)) => String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
                Err(_) => return Err(late()),
                Ok(Err(e)) => {
                    let why = if e.is::<http_body_util::LengthLimitError>() {
                        format!("it is larger than {} MiB", MAX_RESPONSE_BYTES >> 20)
                    } else {
                        one_line(&e.to_string())
                    };
                    return Err(Error::run_with_hint(
                        format!(
                            "GitHub's answer to {} {route} could not be read: {why}",
                            method.as_str()
                        ),
                        "re-run the job; if it persists, check GitHub's status page (githubstatus.com)",
                    ));
                }
            };
            if (200..300).contains(&status) {
                // GitHub's clock, from an answer it gave (not a refusal or a retried failure,
                // which a proxy in front of it may have dated).
                if let Some(date) = date {
                    self.note_date(&date);
                }
                let value = if text.trim().is_empty() {
                    Value::Null
                } else {
                    serde_json::from_str(&text)
                        .map_err(|e| Error::run(format!("GitHub answered {route} with invalid JSON: {e}")))?
                };
                return Ok(Ok((value, link)));
            }
            let message = github_message(&text);
            let rate_limited = status == 429
                || (status == 403
                    && (retry_after.is_some() || remaining == Some(0) || {
                        let message = message.to_lowercase();
                        // GitHub's older wording for a secondary rate limit.
                        message.contains("rate limit") || message.contains("abuse detection")
                    }));
            let retryable = rate_limited || (status >= 500 && server_error == ServerError::Retry);
            if retryable && attempt < MAX_ATTEMPTS {
                let asked = wait_before_retry(rate_limited, retry_after, remaining, reset, attempt, now_unix());
                // GitHub asks not to retry before the limit resets: when that is further off
                // than a job should sleep, say when, now.
                if rate_limited && asked > MAX_WAIT {
                    return Err(Error::run_with_hint(
                        format!(
                            "GitHub rate-limited {} {route} ({status} {message}) for another {} minutes, longer than promptgate waits ({} s)",
                            method.as_str(),
                            asked.as_secs().div_ceil(60),
                            MAX_WAIT.as_secs()
                        ),
                        "re-run the job once the limit has reset; the token's hourly limit is shared by every workflow using it",
                    ));
                }
                let wait = asked.min(MAX_WAIT);
                let why = if rate_limited { "rate limited" } else { "server error" };
                eprintln!(
                    "promptgate: GitHub {why} ({status}) on {} {route}; retrying in {}s",
                    method.as_str(),
                    wait.as_secs()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            if rate_limited {
                return Err(Error::run_with_hint(
                    format!(
                        "GitHub kept rate-limiting {} {route} ({status} {message}) after {MAX_ATTEMPTS} attempts",
                        method.as_str()
                    ),
                    "secondary rate limits clear within minutes: re-run the job",
                ));
            }
            return Ok(Err(Refusal { status, message }));
        }
    }
}

/// The user-facing error for a refused request: which permission a 403 lacks, what a 404 means.
pub fn refused(method: Method, route: &str, purpose: Purpose, refusal: Refusal) -> Error {
    let Refusal { status, message } = refusal;
    let head = format!(
        "GitHub refused to {} ({status} {message}; {} {route})",
        purpose.what,
        method.as_str()
    );
    let hint = match status {
        401 => "the token was rejected: pass a valid token as GITHUB_TOKEN (the action's `github-token` input)".to_owned(),
        403 => format!(
            "the token lacks the `{}` permission: add it under `permissions:` in the workflow job (see docs/github.md)",
            purpose.permission
        ),
        404 => "check GITHUB_REPOSITORY and the pull request number; a token without access to a private repository also gets 404".to_owned(),
        422 => "GitHub could not process the request: the pull request's head commit may be unknown to GitHub (was it pushed?)".to_owned(),
        _ => "re-run the job; if it persists, check GitHub's status page (githubstatus.com)".to_owned(),
    };
    Error::run_with_hint(head, hint)
}

/// GitHub's `message`, plus the first validation error's text for a 422.
fn github_message(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return one_line(text).chars().take(200).collect();
    };
    let mut message = value["message"].as_str().unwrap_or("").to_owned();
    if let Some(first) = value["errors"].as_array().and_then(|e| e.first()) {
        let detail = first["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| first.to_string());
        message = format!("{message}: {detail}");
    }
    one_line(&message).chars().take(300).collect()
}

/// The `rel="next"` target of a `Link` header, as a route octocrab resolves against its base.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        Some(target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << attempt.min(5))
}

/// How long to wait before sending a refused request again, as GitHub's REST documentation
/// asks ("Best practices: handle rate limit errors appropriately"): the `retry-after` seconds;
/// else, with `x-ratelimit-remaining: 0`, until `x-ratelimit-reset`; else, for a (secondary)
/// rate limit, a minute (GitHub says at least one, and longer as it persists: no wait here
/// passes [`MAX_WAIT`], a minute, so each retry waits that); a server error backs off from 2 s.
/// `attempt` counts from 1.
fn wait_before_retry(
    rate_limited: bool,
    retry_after: Option<u64>,
    remaining: Option<u64>,
    reset: Option<u64>,
    attempt: u32,
    now: u64,
) -> Duration {
    match (retry_after, remaining, reset) {
        (Some(secs), _, _) => Duration::from_secs(secs),
        (None, Some(0), Some(reset)) => Duration::from_secs(reset.saturating_sub(now).max(1)),
        _ if rate_limited => MAX_WAIT,
        _ => backoff(attempt),
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The waits GitHub's REST documentation asks for ("Best practices for using the REST API":
    /// retry-after, then x-ratelimit-reset when none remain, else at least a minute).
    #[test]
    fn a_refused_request_waits_as_github_asks() {
        let now = 1_700_000_000;
        let wait = |rate_limited, retry_after, remaining, reset, attempt| {
            wait_before_retry(rate_limited, retry_after, remaining, reset, attempt, now).as_secs()
        };
        assert_eq!(wait(true, Some(7), Some(0), Some(now + 900), 1), 7);
        assert_eq!(wait(true, None, Some(0), Some(now + 900), 1), 900);
        assert_eq!(wait(true, None, Some(0), Some(now - 5), 1), 1, "a reset already past");
        // A secondary rate limit without either header: a minute, each time, not 2-4-8 s.
        assert_eq!(wait(true, None, Some(4_000), None, 1), 60);
        assert_eq!(wait(true, None, None, None, 3), 60);
        assert_eq!(
            (wait(false, None, None, None, 1), wait(false, None, None, None, 2)),
            (2, 4)
        );
    }

    /// A list read in part would be decided on without what it left out: past the page cap, or
    /// with a next page off the API (where the token must not go), it is an error.
    #[tokio::test]
    async fn a_list_longer_than_is_read_or_paged_off_the_api_is_an_error() {
        use wiremock::matchers::{method, path};
        use wiremock::{Mock, MockServer, ResponseTemplate};
        let purpose = Purpose {
            what: "read the pull request's events",
            permission: "issues: read",
        };
        let server = MockServer::start().await;
        let endless = format!("<{}/repos/o/r/issues/7/events?page=2>; rel=\"next\"", server.uri());
        Mock::given(method("GET"))
            .and(path("/repos/o/r/issues/7/events"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("link", endless.as_str())
                    .set_body_json(serde_json::json!([{"id": 1}])),
            )
            .mount(&server)
            .await;
        let offsite = "<https://elsewhere.example/repos/o/r/issues/8/events?page=2>; rel=\"next\"";
        Mock::given(method("GET"))
            .and(path("/repos/o/r/issues/8/events"))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("link", offsite)
                    .set_body_json(serde_json::json!([{"id": 1}])),
            )
            .mount(&server)
            .await;
        let client = Client::live(&server.uri(), "token".to_owned(), "o/r").unwrap();
        let err = client.get_all("/repos/o/r/issues/7/events", purpose).await.unwrap_err();
        assert!(err.to_string().contains("goes on past what promptgate reads"), "{err}");
        assert_eq!(server.received_requests().await.unwrap().len(), MAX_PAGES);
        let err = client.get_all("/repos/o/r/issues/8/events", purpose).await.unwrap_err();
        assert!(err.to_string().contains("goes on past what promptgate reads"), "{err}");
        assert_eq!(server.received_requests().await.unwrap().len(), MAX_PAGES + 1);
    }

    #[test]
    fn now_is_githubs_clock_as_its_last_answers_date_header_gave_it() {
        let client = Client::dry_run("o/r");
        let parse = |t: &str| crate::providers::http::parse_rfc3339(t).unwrap();
        let ours = std::time::SystemTime::now();
        let gap = |a: std::time::SystemTime, b: std::time::SystemTime| {
            a.duration_since(b).unwrap_or_else(|e| e.duration()).as_secs()
        };
        assert!(gap(parse(&client.now()), ours) <= 2, "ours before any answer");
        // An answer dated an hour ago: GitHub's clock is behind ours by that, and stays so.
        let hour_ago = ours - Duration::from_secs(3600);
        client.note_date(&imf_fixdate(hour_ago));
        assert!(gap(parse(&client.now()), hour_ago) <= 2, "{}", client.now());
        // A header that is not a date, or dated more than a day off, changes nothing.
        for broken in [
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sat, 06 Nov 99999 08:49:37 GMT",
        ] {
            client.note_date(broken);
            assert!(gap(parse(&client.now()), hour_ago) <= 2, "{broken}: {}", client.now());
        }
        // A later answer replaces the skew: ten minutes ahead.
        let ahead = ours + Duration::from_secs(600);
        client.note_date(&imf_fixdate(ahead));
        assert!(gap(parse(&client.now()), ahead) <= 2, "{}", client.now());
    }

    /// `at` as an HTTP `Date` header writes it (the weekday is not read back).
    fn imf_fixdate(at: std::time::SystemTime) -> String {
        let rfc = crate::ledger::rfc3339(at);
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][rfc[5..7].parse::<usize>().unwrap() - 1];
        format!("Mon, {} {month} {} {} GMT", &rfc[8..10], &rfc[0..4], &rfc[11..19])
    }

    #[test]
    fn next_link_is_found_among_others() {
        let link = r#"<https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2>; rel="next", <https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(link).as_deref(),
            Some("https://api.github.com/repositories/1/issues/7/comments?per_page=100&page=2")
        );
        assert_eq!(
            next_link(r#"<https://x/a?page=1>; rel="prev", <https://x/a?page=1>; rel="first""#),
            None
        );
    }

    #[test]
    fn messages_name_the_permission() {
        let purpose = Purpose {
            what: "create the check run",
            permission: "checks: write",
        };
        let e = refused(
            Method::Post,
            "/repos/o/r/check-runs",
            purpose,
            Refusal {
                status: 403,
                message: "Resource not accessible by integration".into(),
            },
        );
        let text = e.to_string();
        assert!(text.contains("`checks: write`"), "{text}");
        assert!(
            text.starts_with("error: GitHub refused to create the check run (403"),
            "{text}"
        );
    }

    #[test]
    fn validation_errors_are_summarised() {
        let body = r#"{"message":"Validation Failed","errors":[{"resource":"CheckRun","code":"invalid","field":"head_sha","message":"No commit found for SHA: abc"}]}"#;
        assert_eq!(github_message(body), "Validation Failed: No commit found for SHA: abc");
    }
}
