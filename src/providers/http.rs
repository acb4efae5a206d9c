//! What the HTTP providers share: the client, the API key, one POST with failure
//! classification, `Retry-After` and rate-limit header parsing, and key redaction.
//!
//! A provider makes one attempt per call; the runner retries. So everything here is about
//! saying precisely *how* an attempt failed: [`ProviderError::Transient`] (with the wait the
//! server asked for) when another attempt may succeed, [`ProviderError::Permanent`] (with the
//! provider's own message) when it cannot.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;

use super::ProviderError;
use crate::error::{Diagnostic, Error};
use crate::suite::ProviderSpec;

/// The largest response body read from a provider.
pub const MAX_BODY: usize = 16 << 20;

/// The longest wait a provider's `Retry-After` or rate-limit reset header is taken at (a wait
/// of days, or `1e400` seconds, would hang the run).
pub const MAX_RETRY_AFTER_MS: u64 = 120_000;

/// An API key read from the environment. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    value: String,
    /// The environment variable it came from, for hints.
    pub env: String,
}

impl ApiKey {
    pub fn new(env: impl Into<String>, value: impl Into<String>) -> Self {
        ApiKey {
            value: value.into(),
            env: env.into(),
        }
    }

    /// The key as a header value (`prefix` e.g. `"Bearer "`), marked sensitive so `http` never
    /// prints it either.
    fn header_value(&self, prefix: &str) -> Result<HeaderValue, Error> {
        let mut value = HeaderValue::from_str(&format!("{prefix}{}", self.value)).map_err(|_| {
            Diagnostic::new(format!(
                "the API key in `{}` is not a valid HTTP header value",
                self.env
            ))
            .hint("check the variable for stray newlines or quotes")
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}=[redacted])", self.env)
    }
}

/// Reads the key named by the spec's `api_key_env`, else `default_env`.
///
/// `Ok(None)` only when neither names a variable (an `openai-compatible` server without auth).
/// A named variable that is unset or empty is an input error: the run cannot succeed.
pub fn api_key(spec: &ProviderSpec, default_env: Option<&str>) -> Result<Option<ApiKey>, Error> {
    let Some(env) = spec.api_key_env.as_deref().or(default_env) else {
        return Ok(None);
    };
    if let Some(problem) = crate::secrets::refused_variable(env) {
        return Err(Diagnostic::new(format!("provider `{}`: {problem}", spec.name))
            .hint("name the variable that holds the provider's own key in `api_key_env`")
            .into());
    }
    match std::env::var(env) {
        Ok(value) if !value.trim().is_empty() => {
            crate::secrets::register(env, &value);
            Ok(Some(ApiKey::new(env, value.trim())))
        }
        _ => Err(Diagnostic::new(format!(
            "provider `{}` (type {}) needs an API key, but the environment variable `{env}` is not set",
            spec.name,
            spec.kind.as_str()
        ))
        .hint(format!(
            "export {env}=… (in GitHub Actions: `env: {{{env}: ${{{{ secrets.{env} }}}}}}`)"
        ))
        .hint("or name another variable with `api_key_env:` in the provider's entry")
        .into()),
    }
}

/// The connection to one API: a client, the header that authenticates, and what errors say.
pub struct Api {
    /// The provider type, as errors name it.
    pub kind: &'static str,
    client: reqwest::Client,
    auth: Option<(HeaderName, HeaderValue)>,
    key: Option<ApiKey>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("kind", &self.kind)
            .field("key_env", &self.key.as_ref().map(|k| k.env.as_str()))
            .finish_non_exhaustive()
    }
}

impl Api {
    /// An API authenticated by `header: {prefix}{key}` when there is a key.
    pub fn new(kind: &'static str, key: Option<ApiKey>, header: &'static str, prefix: &str) -> Result<Self, Error> {
        let auth = match &key {
            Some(key) => Some((HeaderName::from_static(header), key.header_value(prefix)?)),
            None => None,
        };
        Ok(Api {
            kind,
            client: client()?,
            auth,
            key,
        })
    }

    /// POSTs `body` as JSON to `url` with `headers` (and the auth header), and decodes a 2xx
    /// answer as `T`. One attempt; every failure is classified.
    pub async fn post_json<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: &serde_json::Value,
    ) -> Result<T, ProviderError> {
        let bytes = self.send(self.client.post(url).json(body), headers, MAX_BODY).await?;
        decode(self.kind, &bytes).map_err(|e| self.redacted(e))
    }

    /// GETs `url` with `headers` (and the auth header) and decodes a 2xx answer as `T`.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<T, ProviderError> {
        let bytes = self.send(self.client.get(url), headers, MAX_BODY).await?;
        decode(self.kind, &bytes).map_err(|e| self.redacted(e))
    }

    /// [`Api::get_json`], with `None` for a 404: the thing asked for is not there (a batch the
    /// provider does not know), which the caller tells from every other refusal.
    pub async fn get_json_if_found<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Option<T>, ProviderError> {
        match self
            .send_unless_missing(self.client.get(url), headers, MAX_BODY)
            .await?
        {
            Some(bytes) => decode(self.kind, &bytes).map(Some).map_err(|e| self.redacted(e)),
            None => Ok(None),
        }
    }

    /// GETs `url` and returns the 2xx body as it is, up to `max` bytes (a batch's results file
    /// is larger than any one answer).
    pub async fn get_bytes(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        max: usize,
    ) -> Result<Vec<u8>, ProviderError> {
        self.send(self.client.get(url), headers, max).await
    }

    /// POSTs a `multipart/form-data` body — text `fields`, then one file part named `file` —
    /// and decodes a 2xx answer as `T` (an upload such as OpenAI's `POST /files`).
    pub async fn post_file<T: DeserializeOwned>(
        &self,
        url: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        file: &[u8],
    ) -> Result<T, ProviderError> {
        let (content_type, body) = multipart(fields, file_name, file);
        let request = self.client.post(url).header("content-type", content_type).body(body);
        let bytes = self.send(request, &[], MAX_BODY).await?;
        decode(self.kind, &bytes).map_err(|e| self.redacted(e))
    }

    /// Sends one request with the auth header and `headers`; a 2xx body up to `max` bytes, or
    /// the classified failure.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        headers: &[(&'static str, &str)],
        max: usize,
    ) -> Result<Vec<u8>, ProviderError> {
        let (status, response_headers, bytes) = self.exchange(request, headers, max).await?;
        if !status.is_success() {
            return Err(self.status_error(status, &response_headers, &bytes));
        }
        Ok(bytes)
    }

    /// [`Api::send`], with `None` for a 404.
    async fn send_unless_missing(
        &self,
        request: reqwest::RequestBuilder,
        headers: &[(&'static str, &str)],
        max: usize,
    ) -> Result<Option<Vec<u8>>, ProviderError> {
        let (status, response_headers, bytes) = self.exchange(request, headers, max).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(status, &response_headers, &bytes));
        }
        Ok(Some(bytes))
    }

    /// Sends the request with the credentials and `headers`: the answer's status, headers and
    /// body (up to `max` bytes), whatever the status.
    async fn exchange(
        &self,
        mut request: reqwest::RequestBuilder,
        headers: &[(&'static str, &str)],
        max: usize,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), ProviderError> {
        if let Some((name, value)) = &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        // Unless it never connected, the request may have reached the provider, which may
        // bill it.
        let response = request
            .send()
            .await
            .map_err(|e| self.transport_error(&e, !e.is_connect()))?;
        let status = response.status();
        let response_headers = response.headers().clone();
        let bytes = self.read_body(response, max).await?;
        Ok((status, response_headers, bytes))
    }

    /// The response body, read up to `max` bytes: an endless or huge body is a permanent
    /// failure, never an out-of-memory abort.
    async fn read_body(&self, mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, ProviderError> {
        let too_large = || ProviderError::Permanent {
            message: format!(
                "{} returned a response body larger than {} MiB; promptgate reads at most that much",
                self.kind,
                max >> 20
            ),
        };
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        // A body cut short after a refusal (a 429, a 503) was no answer: nothing to bill.
        let answered = response.status().is_success();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport_error(&e, answered))? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Classifies a non-2xx answer.
    pub fn status_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ProviderError {
        // The key out before anything is cut short: a body cut through an echoed key would keep
        // most of it, which no redaction of the shortened text then finds.
        let body = self.redact(&String::from_utf8_lossy(body));
        let error = ErrorBody::parse(body.as_bytes());
        let mut message = format!("{} returned HTTP {}", self.kind, status.as_u16());
        if let Some(kind) = &error.kind {
            message.push_str(&format!(" {kind}"));
        }
        message.push_str(": ");
        // Without its final period, so the hint below reads as one sentence.
        message.push_str(error.message.trim_end().trim_end_matches('.'));
        let env = self.key.as_ref().map_or("the API key variable", |k| k.env.as_str());
        match status.as_u16() {
            401 => message.push_str(&format!("; check that {env} holds a valid key for this endpoint")),
            403 => message.push_str(&format!("; check that the key in {env} may use this model or endpoint")),
            404 => message.push_str("; check the model (or deployment) name and base_url"),
            300..=399 => message.push_str(
                "; promptgate follows no redirect (it would send the key to another address): \
                 set base_url to the address the server points to",
            ),
            _ => {}
        }
        let message = self.redact(&message);
        if !is_transient_status(status) || error.is_out_of_quota() {
            return ProviderError::Permanent { message };
        }
        let retry_after_ms = retry_after_ms(status, headers, SystemTime::now());
        if status == StatusCode::TOO_MANY_REQUESTS || retry_after_ms.is_some() {
            ProviderError::RateLimited {
                message,
                retry_after_ms,
            }
        } else {
            ProviderError::Transient {
                message,
                retry_after_ms: None,
            }
        }
    }

    /// `billable`: the provider may have produced (and may bill) an answer, so a failure is
    /// [`ProviderError::Unsettled`], held against the cap as billed.
    fn transport_error(&self, e: &reqwest::Error, billable: bool) -> ProviderError {
        // Connection refused or reset, DNS hiccups, a body cut short: all worth another try.
        // The chain of sources says what actually happened ("connection refused").
        let message = self.redact(&format!("{}: {}", self.kind, with_causes(e)));
        match billable {
            false => ProviderError::Transient {
                message,
                retry_after_ms: None,
            },
            true => ProviderError::Unsettled { message },
        }
    }

    fn redacted(&self, e: ProviderError) -> ProviderError {
        match e {
            ProviderError::Transient {
                message,
                retry_after_ms,
            } => ProviderError::Transient {
                message: self.redact(&message),
                retry_after_ms,
            },
            ProviderError::RateLimited {
                message,
                retry_after_ms,
            } => ProviderError::RateLimited {
                message: self.redact(&message),
                retry_after_ms,
            },
            ProviderError::Permanent { message } => ProviderError::Permanent {
                message: self.redact(&message),
            },
            ProviderError::Unsettled { message } => ProviderError::Unsettled {
                message: self.redact(&message),
            },
            other => other,
        }
    }

    /// `text` without this API's key or anything that looks like a key.
    pub fn redact(&self, text: &str) -> String {
        redact(text, self.key.as_ref().map(|k| k.value.as_str()))
    }
}

/// A `multipart/form-data` body (RFC 7578): its content type and bytes. The boundary is
/// chosen so it occurs in no part.
fn multipart(fields: &[(&str, &str)], file_name: &str, file: &[u8]) -> (String, Vec<u8>) {
    let mut n = 0u32;
    let boundary = loop {
        let candidate = format!("promptgate-boundary-{n:08x}");
        let needle = candidate.as_bytes();
        let inside = |text: &[u8]| text.windows(needle.len()).any(|w| w == needle);
        if !inside(file) && !fields.iter().any(|(_, v)| inside(v.as_bytes())) {
            break candidate;
        }
        n += 1;
    };
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\ncontent-type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A client for one provider: ring for TLS, a 10 s connect timeout and no overall timeout
/// (the runner enforces the latency budget around each call), and no redirect followed: a
/// redirect would carry `x-api-key` or `api-key` (reqwest drops only `Authorization` when
/// the host changes) to an address no reviewer approved, and take its answer as the model's.
/// A 3xx is the call's error.
pub fn client() -> Result<reqwest::Client, Error> {
    client_with(reqwest::redirect::Policy::none())
}

/// [`client`] following redirects as reqwest does by default (at most 10, dropping
/// `Authorization` when the host changes): for a server the user names by its address and
/// reaches with no key of a provider's, such as a Prometheus behind an ingress that sends
/// `http://` on to `https://`.
pub fn client_following_redirects() -> Result<reqwest::Client, Error> {
    client_with(reqwest::redirect::Policy::default())
}

fn client_with(redirects: reqwest::redirect::Policy) -> Result<reqwest::Client, Error> {
    // Fails only when a provider is already installed, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(redirects)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("promptgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::run(format!("cannot set up the HTTP client: {e}")))
}

/// `e` and the chain of its causes, each after a colon: what happened ("connection refused"),
/// not only that a request was not sent.
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Statuses another attempt may fix: timeouts, conflicts, rate limits, server trouble
/// (529 is Anthropic's "overloaded").
pub fn is_transient_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 409 | 425 | 429 | 500 | 502 | 503 | 504 | 529)
        || (status.is_server_error() && !matches!(status.as_u16(), 501 | 505))
}

/// Decodes a successful body. A body that is not JSON at all was cut short or mangled on the
/// way (transient); JSON of the wrong shape means we talk to the wrong kind of server
/// (permanent).
pub fn decode<T: DeserializeOwned>(kind: &str, body: &[u8]) -> Result<T, ProviderError> {
    // The provider answered, and may bill the answer it sent.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ProviderError::Unsettled {
        message: format!("{kind} returned a truncated or invalid JSON body ({e})"),
    })?;
    serde_json::from_value(value).map_err(|e| {
        let error = ErrorBody::parse(body);
        let detail = if error.from_json { error.message } else { e.to_string() };
        ProviderError::Permanent {
            message: format!("{kind} returned an unexpected response: {detail}"),
        }
    })
}

/// What an error body says, from the shapes APIs use: `{"error": {"message", "type", "code"}}`
/// (OpenAI, Azure, Anthropic inside `{"type": "error", …}`, llama.cpp, LiteLLM),
/// `{"error": "…"}` (Ollama), `{"message": …}` (older vLLM), `{"detail": …}` (FastAPI).
struct ErrorBody {
    message: String,
    /// `error.type`, else `error.code`.
    kind: Option<String>,
    code: Option<String>,
    /// Anthropic's `error.details.error_code`.
    detail_code: Option<String>,
    from_json: bool,
}

impl ErrorBody {
    fn parse(body: &[u8]) -> Self {
        let value: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let text = |v: Option<&serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        if let Some(value) = &value {
            let error = value.get("error").filter(|e| e.is_object()).unwrap_or(value);
            let message = text(error.get("message"))
                .or_else(|| text(value.get("error")))
                .or_else(|| text(value.get("detail")));
            if let Some(message) = message {
                let code = text(error.get("code"));
                return ErrorBody {
                    message,
                    kind: text(error.get("type"))
                        .filter(|t| t != "error")
                        .or_else(|| code.clone()),
                    code,
                    detail_code: text(error.pointer("/details/error_code")),
                    from_json: true,
                };
            }
        }
        let raw = String::from_utf8_lossy(body);
        let raw = raw.trim();
        ErrorBody {
            message: if raw.is_empty() {
                "(empty body)".to_owned()
            } else {
                shorten(raw, 300)
            },
            kind: None,
            code: None,
            detail_code: None,
            from_json: false,
        }
    }

    /// A 429 that no wait cures: credit or spend limits (OpenAI's `insufficient_quota` and
    /// billing codes, Anthropic's `enforced_spend_limit_reached`).
    fn is_out_of_quota(&self) -> bool {
        const CODES: &[&str] = &[
            "insufficient_quota",
            "credit_balance_exhausted",
            "organization_spend_limit_exceeded",
            "project_spend_limit_exceeded",
            "organization_usage_limit_exceeded",
            "enforced_spend_limit_reached",
        ];
        [&self.kind, &self.code, &self.detail_code]
            .into_iter()
            .flatten()
            .any(|c| CODES.contains(&c.as_str()))
    }
}

/// How long the server asked us to wait, in milliseconds, from the first of:
/// `retry-after-ms` (OpenAI, Azure), `Retry-After` (seconds or an HTTP-date),
/// OpenAI's `x-ratelimit-reset-{requests,tokens}` (Go durations such as `6m0s`) and
/// Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339 instants). Of several reset headers,
/// the ones whose limit is exhausted (`…-remaining…: 0`) count, and the longest wait wins.
pub fn retry_after_ms(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    requested_wait_ms(status, headers, now).map(|ms| ms.min(MAX_RETRY_AFTER_MS))
}

/// What the answer asks the client to wait: `retry-after-ms`, `Retry-After`, else the reset of
/// a limit its rate-limit headers say is spent. OpenAI and Anthropic send those headers with
/// every answer: a reset is a wait asked for only when its limit is spent, or, on a 429 that
/// names none spent, the longest of them (a 500 carrying `x-ratelimit-reset-tokens: 6m0s`
/// beside 149,984 tokens remaining waited two minutes).
fn requested_wait_ms(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<u64> {
    let limited = status == StatusCode::TOO_MANY_REQUESTS;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|ms| *ms >= 0.0)
    {
        // `as` saturates: `1e400` (infinity) becomes the longest wait, then the cap.
        return Some(ms.ceil() as u64);
    }
    if let Some(value) = get("retry-after") {
        if let Ok(seconds) = value.parse::<f64>()
            && seconds >= 0.0
        {
            return Some((seconds * 1000.0).ceil() as u64);
        }
        if let Some(at) = parse_http_date(value) {
            return Some(millis_until(at, now));
        }
    }
    let openai = ["requests", "tokens"].map(|limit| {
        let reset = get(&format!("x-ratelimit-reset-{limit}")).and_then(parse_go_duration_ms);
        (reset, get(&format!("x-ratelimit-remaining-{limit}")) == Some("0"))
    });
    if let Some(ms) = longest_relevant(&openai, limited) {
        return Some(ms);
    }
    let anthropic = ["requests", "tokens", "input-tokens", "output-tokens"].map(|limit| {
        let reset = get(&format!("anthropic-ratelimit-{limit}-reset"))
            .and_then(parse_rfc3339)
            .map(|at| millis_until(at, now));
        (
            reset,
            get(&format!("anthropic-ratelimit-{limit}-remaining")) == Some("0"),
        )
    });
    longest_relevant(&anthropic, limited)
}

/// Of `(wait, exhausted)` pairs: the longest wait among exhausted limits, else, when the answer
/// is a rate limit (`limited`), among all.
fn longest_relevant(resets: &[(Option<u64>, bool)], limited: bool) -> Option<u64> {
    let exhausted = resets.iter().filter(|(_, e)| *e).filter_map(|(ms, _)| *ms).max();
    exhausted.or_else(|| limited.then(|| resets.iter().filter_map(|(ms, _)| *ms).max()).flatten())
}

fn millis_until(at: SystemTime, now: SystemTime) -> u64 {
    at.duration_since(now)
        .map_or(0, |d| d.as_millis().try_into().unwrap_or(u64::MAX))
}

/// A Go `time.Duration` string as OpenAI sends it (`1s`, `6m0s`, `20ms`, `1h2m3.5s`), in
/// milliseconds rounded up.
pub fn parse_go_duration_ms(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total_ms = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let per_unit_ms = match &rest[..unit_len] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            "us" | "µs" | "μs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += number * per_unit_ms;
    }
    Some(total_ms.ceil() as u64)
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 requires of senders.
pub fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u32 + 1;
    let (h, m, s) = parse_clock(time)?;
    instant(year.parse().ok()?, month, day.parse().ok()?, h, m, s, 0.0)
}

/// An RFC 3339 instant (`2025-06-01T12:00:30Z`, `…30.5+02:00`): `crate::time`'s reading.
pub use crate::time::parse_rfc3339_instant as parse_rfc3339;

fn parse_clock(text: &str) -> Option<(u32, u32, u32)> {
    let mut fields = text.split(':');
    let clock = (
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
        fields.next()?.parse().ok()?,
    );
    fields.next().is_none().then_some(clock)
}

/// The instant of a UTC civil date and time.
fn instant(year: i64, month: u32, day: u32, h: u32, m: u32, s: u32, fraction: f64) -> Option<SystemTime> {
    // Years of four digits: a larger one is no date a server means, and would overflow below.
    if !(1..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || h > 23
        || m > 59
        || s > 60
    {
        return None;
    }
    let days = crate::time::days_from_civil(year, i64::from(month), i64::from(day));
    let seconds = days * 86_400 + i64::from(h * 3600 + m * 60 + s);
    let seconds = u64::try_from(seconds).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(seconds as f64 + fraction))
}

/// `text` with `key` (when given and long enough to be a key, not a common word), every other
/// secret promptgate knows, and anything shaped like a credential replaced by `[redacted]`
/// (see `crate::secrets`).
pub fn redact(text: &str, key: Option<&str>) -> String {
    let text = match key {
        Some(key) if key.len() >= crate::secrets::MIN_LEN => text.replace(key, crate::secrets::REDACTED),
        _ => text.to_owned(),
    };
    crate::secrets::redact(&text)
}

/// At most `max` characters of `text`, with `…` when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Whether `base_url` is an absolute http(s) URL; the provider's error otherwise.
pub fn check_base_url(spec: &ProviderSpec, base_url: &str) -> Result<String, Error> {
    let trimmed = base_url.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(trimmed.to_owned()),
        _ => Err(Diagnostic::new(format!(
            "provider `{}`: `base_url` {base_url:?} is not an http(s) URL",
            spec.name
        ))
        .hint("write it like `https://api.example.com/v1`")
        .into()),
    }
}

#[cfg(test)]
pub mod tests {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::providers::{Message, Provider, Request, Role};
    use crate::suite::ProviderKind;

    /// A provider entry of `kind` with nothing but defaults (and `base_url`).
    pub fn spec(kind: ProviderKind, base_url: Option<&str>) -> ProviderSpec {
        ProviderSpec {
            concurrency: 1,
            base_url: base_url.map(str::to_owned),
            ..ProviderSpec::new("test", kind)
        }
    }

    /// A request with every optional field set.
    pub fn request() -> Request {
        crate::providers::Request::new(
            std::sync::Arc::new(crate::providers::Settings {
                temperature: Some(0.5),
                max_tokens: Some(256),
                top_p: Some(0.9),
                ..crate::providers::Settings::of("gpt-4o-mini")
            }),
            vec![
                Message {
                    role: Role::System,
                    content: "You are the Acme support assistant.".into(),
                },
                Message {
                    role: Role::User,
                    content: "Can I get a refund after 45 days?".into(),
                },
            ]
            .into(),
            12345,
        )
    }

    /// How a call is expected to fail: its class and a fragment of its message.
    #[derive(Debug)]
    pub enum Expect {
        Transient(Option<u64>, &'static str),
        RateLimited(Option<u64>, &'static str),
        Permanent(&'static str),
        /// Answered but unreadable: retried, and held against the cap as billed.
        Unsettled(&'static str),
    }

    /// Answers any request with `answer` and checks the provider's failure: its class, the
    /// wait it carries, a fragment of its message, and that no key leaks into it.
    #[track_caller]
    pub fn check_failure<P: Provider>(
        make: impl Fn(&MockServer) -> P,
        answer: ResponseTemplate,
        expected: Expect,
    ) -> impl Future<Output = ()> {
        let caller = std::panic::Location::caller();
        async move {
            let server = MockServer::start().await;
            Mock::given(any()).respond_with(answer).mount(&server).await;
            let result = make(&server).complete(&request()).await;
            let (message, matches) = match (&result, &expected) {
                (
                    Err(ProviderError::Transient {
                        message,
                        retry_after_ms,
                    }),
                    Expect::Transient(wait, fragment),
                ) => (message, retry_after_ms == wait && message.contains(fragment)),
                (
                    Err(ProviderError::RateLimited {
                        message,
                        retry_after_ms,
                    }),
                    Expect::RateLimited(wait, fragment),
                ) => (message, retry_after_ms == wait && message.contains(fragment)),
                (Err(ProviderError::Permanent { message }), Expect::Permanent(fragment))
                | (Err(ProviderError::Unsettled { message }), Expect::Unsettled(fragment)) => {
                    (message, message.contains(fragment))
                }
                _ => panic!("{caller}: expected {expected:?}, got {result:?}"),
            };
            assert!(matches, "{caller}: expected {expected:?}, got {result:?}");
            assert!(!message.contains("SECRET"), "{caller}: the key leaked: {message}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    /// 2025-06-01T12:00:00Z.
    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_748_779_200)
    }

    /// The wait a 429 with these headers asks for.
    #[track_caller]
    fn check_retry_after(pairs: &[(&'static str, &str)], expected: Option<u64>) {
        let limited = StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(retry_after_ms(limited, &headers(pairs), now()), expected, "{pairs:?}");
    }

    /// Another status asks for a wait by `Retry-After` or a spent limit alone: OpenAI and
    /// Anthropic send their rate-limit headers with every answer, and a reset beside a limit
    /// far from spent is no request to wait (the audit's 500 waited two minutes on
    /// `x-ratelimit-reset-tokens: 6m0s` with 149,984 tokens left; a 529, 54 s).
    #[test]
    fn a_passing_failure_waits_for_a_spent_limit_only() {
        let wait = |status: u16, pairs: &[(&'static str, &str)]| {
            retry_after_ms(StatusCode::from_u16(status).unwrap(), &headers(pairs), now())
        };
        let docs_example = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-limit-tokens", "150000"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-remaining-tokens", "149984"),
            ("x-ratelimit-reset-requests", "1s"),
            ("x-ratelimit-reset-tokens", "6m0s"),
        ];
        assert_eq!(wait(500, &docs_example), None);
        assert_eq!(wait(429, &docs_example), Some(MAX_RETRY_AFTER_MS.min(360_000)));
        let anthropic = [
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2025-06-01T12:00:55Z"),
        ];
        assert_eq!(wait(529, &anthropic), None);
        assert_eq!(wait(529, &[("retry-after", "3")]), Some(3000));
        let spent = [
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-tokens", "4s"),
            ("x-ratelimit-reset-requests", "6m0s"),
        ];
        assert_eq!(wait(503, &spent), Some(4000));
    }

    #[test]
    fn retry_after_sources_in_order() {
        check_retry_after(&[], None);
        check_retry_after(&[("retry-after", "2")], Some(2000));
        check_retry_after(&[("retry-after", "0.5")], Some(500));
        check_retry_after(&[("retry-after", "Sun, 01 Jun 2025 12:00:30 GMT")], Some(30_000));
        // A date in the past means "now".
        check_retry_after(&[("retry-after", "Sun, 01 Jun 2025 11:00:00 GMT")], Some(0));
        check_retry_after(&[("retry-after", "soon")], None);
        // Absurd waits are capped, never taken at their word.
        check_retry_after(&[("retry-after", "999999999")], Some(MAX_RETRY_AFTER_MS));
        check_retry_after(&[("retry-after", "1e400")], Some(MAX_RETRY_AFTER_MS));
        check_retry_after(&[("retry-after-ms", "1e400")], Some(MAX_RETRY_AFTER_MS));
        check_retry_after(&[("x-ratelimit-reset-requests", "99999h")], Some(MAX_RETRY_AFTER_MS));
        check_retry_after(&[("retry-after-ms", "1500"), ("retry-after", "9")], Some(1500));
        check_retry_after(
            &[("retry-after", "3"), ("x-ratelimit-reset-requests", "6m0s")],
            Some(3000),
        );
        // OpenAI: the exhausted limit's reset, else the longest.
        check_retry_after(&[("x-ratelimit-reset-requests", "20ms")], Some(20));
        check_retry_after(
            &[
                ("x-ratelimit-reset-requests", "6m0s"),
                ("x-ratelimit-reset-tokens", "1s"),
                ("x-ratelimit-remaining-tokens", "0"),
            ],
            Some(1000),
        );
        check_retry_after(
            &[
                ("x-ratelimit-reset-requests", "1s"),
                ("x-ratelimit-reset-tokens", "90s"),
            ],
            Some(90_000),
        );
        // Anthropic: RFC 3339 instants.
        check_retry_after(
            &[("anthropic-ratelimit-requests-reset", "2025-06-01T12:00:07Z")],
            Some(7000),
        );
        check_retry_after(
            &[
                ("anthropic-ratelimit-requests-reset", "2025-06-01T12:01:00Z"),
                ("anthropic-ratelimit-tokens-reset", "2025-06-01T14:00:02.5+02:00"),
                ("anthropic-ratelimit-tokens-remaining", "0"),
            ],
            Some(2500),
        );
    }

    #[track_caller]
    fn check_duration(text: &str, expected: Option<u64>) {
        assert_eq!(parse_go_duration_ms(text), expected, "{text:?}");
    }

    #[test]
    fn go_durations() {
        check_duration("1s", Some(1000));
        check_duration("6m0s", Some(360_000));
        check_duration("20ms", Some(20));
        check_duration("1h2m3.5s", Some(3_723_500));
        check_duration("0.4ms", Some(1));
        check_duration("17.372s", Some(17_372));
        check_duration("", None);
        check_duration("5", None);
        check_duration("5 parsecs", None);
    }

    #[test]
    fn dates() {
        let at = |s| parse_rfc3339(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64());
        assert_eq!(at("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(at("2025-06-01T12:00:00Z"), Some(1_748_779_200.0));
        assert_eq!(at("2000-03-01T00:00:00.25Z"), Some(951_868_800.25));
        assert_eq!(at("2025-06-01T08:00:00-04:00"), Some(1_748_779_200.0));
        assert_eq!(at("2025-13-01T00:00:00Z"), None);
        assert_eq!(at("yesterday"), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777))
        );
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), None);
    }

    #[track_caller]
    fn check_redact(text: &str, key: Option<&str>, expected: &str) {
        assert_eq!(redact(text, key), expected);
    }

    #[test]
    fn redacts_keys_and_key_shapes() {
        check_redact("bad key abc123xyz", Some("abc123xyz"), "bad key [redacted]");
        check_redact(
            "Incorrect API key provided: sk-test-*******ET-42.",
            None,
            "Incorrect API key provided: [redacted].",
        );
        check_redact(
            "sent Authorization: Bearer eyJhbGciOi.x-y",
            None,
            "sent Authorization: [redacted]",
        );
        check_redact("anthropic sk-ant-api03-AbC_d-e", None, "anthropic [redacted]");
        // Short "keys" (a local server's placeholder) would eat ordinary words.
        check_redact("no auth", Some("no"), "no auth");
        check_redact("ask-me and risk-free", None, "ask-me and risk-free");
    }

    /// A body that echoes the key far in is cut short only after the key is out: cut first,
    /// an Azure-style key (no `sk-` shape to find) kept 28 of its 32 characters in every output.
    #[test]
    fn a_long_error_body_loses_the_key_before_it_is_cut() {
        let key = "3f9a1c7e5b2d48a6901fe4c3b7d25a8e";
        let api = Api::new(
            "azure-openai",
            Some(ApiKey::new("AZURE_OPENAI_API_KEY", key)),
            "api-key",
            "",
        )
        .unwrap();
        let body = format!(
            "<html><body>{} subscription key {key} is not valid</body></html>",
            "x".repeat(240)
        );
        let error = api.status_error(StatusCode::UNAUTHORIZED, &HeaderMap::new(), body.as_bytes());
        let ProviderError::Permanent { message } = error else {
            panic!("{error:?}")
        };
        assert!(
            !message.contains(&key[..8]) && message.contains("[redacted]"),
            "{message}"
        );
    }

    #[track_caller]
    fn check_status(status: u16, pairs: &[(&'static str, &str)], body: &str, expected: ProviderError) {
        let api = Api::new(
            "openai",
            Some(ApiKey::new("OPENAI_API_KEY", "sk-test-SECRET-42")),
            "authorization",
            "Bearer ",
        )
        .unwrap();
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(api.status_error(status, &headers(pairs), body.as_bytes()), expected);
    }

    #[test]
    fn status_classification() {
        let transient = |message: &str, retry_after_ms| ProviderError::Transient {
            message: message.to_owned(),
            retry_after_ms,
        };
        let permanent = |message: &str| ProviderError::Permanent {
            message: message.to_owned(),
        };
        let limited = |message: &str, retry_after_ms| ProviderError::RateLimited {
            message: message.to_owned(),
            retry_after_ms,
        };
        check_status(
            429,
            &[("retry-after", "2")],
            r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#,
            limited("openai returned HTTP 429 requests: Rate limit reached", Some(2000)),
        );
        // A 429 that names no wait is a rate limit still (it was a plain transient failure:
        // counted nowhere, and the adaptive concurrency did not halve).
        check_status(
            429,
            &[],
            r#"{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}"#,
            limited("openai returned HTTP 429 requests: Rate limit reached", None),
        );
        // A 503 naming a wait asks the same of the client; one that names none is passing trouble.
        check_status(
            503,
            &[("retry-after", "1")],
            "",
            limited("openai returned HTTP 503: (empty body)", Some(1000)),
        );
        check_status(503, &[], "", transient("openai returned HTTP 503: (empty body)", None));
        check_status(
            429,
            &[],
            r#"{"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}"#,
            permanent("openai returned HTTP 429 insufficient_quota: You exceeded your current quota"),
        );
        check_status(
            429,
            &[],
            r#"{"type": "error", "error": {"type": "rate_limit_error", "message": "spend cap", "details": {"error_code": "enforced_spend_limit_reached"}}}"#,
            permanent("openai returned HTTP 429 rate_limit_error: spend cap"),
        );
        check_status(
            502,
            &[],
            "<html>Bad Gateway</html>",
            transient("openai returned HTTP 502: <html>Bad Gateway</html>", None),
        );
        check_status(520, &[], "", transient("openai returned HTTP 520: (empty body)", None));
        check_status(501, &[], "", permanent("openai returned HTTP 501: (empty body)"));
        check_status(
            413,
            &[],
            r#"{"error": "request too large"}"#,
            permanent("openai returned HTTP 413: request too large"),
        );
        check_status(
            422,
            &[],
            r#"{"detail": "field required"}"#,
            permanent("openai returned HTTP 422: field required"),
        );
        check_status(
            401,
            &[],
            r#"{"error": {"message": "Incorrect API key provided: sk-test-SECRET-42.", "type": "invalid_request_error", "code": "invalid_api_key"}}"#,
            permanent(
                "openai returned HTTP 401 invalid_request_error: Incorrect API key provided: [redacted]; check that OPENAI_API_KEY holds a valid key for this endpoint",
            ),
        );
    }

    #[test]
    fn debug_output_hides_the_key() {
        let key = ApiKey::new("OPENAI_API_KEY", "sk-test-SECRET-42");
        let api = Api::new("openai", Some(key.clone()), "authorization", "Bearer ").unwrap();
        for debug in [format!("{key:?}"), format!("{api:?}")] {
            assert!(!debug.contains("SECRET"), "{debug}");
            assert!(debug.contains("OPENAI_API_KEY"), "{debug}");
        }
    }
}
