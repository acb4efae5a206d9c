//! Prometheus through its HTTP API (`/api/v1/query_range`): each configured query is asked
//! once per arm with `$arm` replaced by the arm's value, and the answer — one series per arm —
//! becomes that metric's per-step values. Aggregated series are what teams that run Kayenta
//! already have; they compare as per-step means (each step one observation), not requests.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use super::analyse::Series;
use crate::error::{Diagnostic, Error};
use crate::suite::canary::{ArmSelector, CanaryConfig};

/// The series of every queried metric, the notes on what came back, and the range asked for.
pub struct Fetched {
    pub series: BTreeMap<String, Series>,
    pub notes: Vec<String>,
    pub start: f64,
    pub end: f64,
}

/// Answers above this size are refused: a query that returns every series of a cluster.
const MAX_BODY: usize = 64 << 20;

/// Asks `url` for the last `window` at `step` of every query, for both arms.
pub fn fetch(
    url: &str,
    step: Duration,
    window: Duration,
    queries: &BTreeMap<String, String>,
    arms: &ArmSelector,
) -> anyhow::Result<Fetched> {
    register_credentials(url);
    let end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64().floor();
    let start = end - window.as_secs_f64();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = crate::providers::http::client_following_redirects()?;
    let mut series = BTreeMap::new();
    let mut notes = Vec::new();
    for (metric, query) in queries {
        let mut s = Series::default();
        for (is_canary, arm) in [(false, &arms.baseline), (true, &arms.canary)] {
            let q = query.replace("$arm", arm);
            let values = runtime.block_on(query_range(&client, url, &q, start, end, step))?;
            if values.is_empty() {
                notes.push(format!("the query for `{metric}` returned no data for `{arm}`"));
            }
            if is_canary {
                s.canary = values;
            } else {
                s.baseline = values;
            }
        }
        series.insert(metric.clone(), s);
    }
    Ok(Fetched {
        series,
        notes,
        start,
        end,
    })
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Matrix>,
    #[serde(rename = "errorType")]
    error_type: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<SeriesAnswer>,
}

#[derive(Deserialize)]
struct SeriesAnswer {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// `url` as outputs show it, without the credentials it may carry
/// ([`crate::secrets::url_shown`]).
pub(super) fn shown(url: &str) -> String {
    crate::secrets::url_shown(url)
}

/// Steps whose value is no number are never dropped silently. `NaN` is a step without
/// requests (`0/0` in a rate): no observation, left out, and the notes say how many. `+Inf`
/// is an observation: `histogram_quantile` answers it when the quantile lies above the highest
/// bucket, as a canary slower than every bucket reads, so leaving it out would favour the
/// slower arm. Above `max_bad_share` of an arm's steps for a metric it is bad input (exit 2:
/// the buckets cannot measure what the verdict would rest on); below it, each counts at the
/// largest finite value either arm has for that metric (a floor of its true value), and the
/// notes say so. A baseline that no query returns data for is a selector that matches
/// nothing (exit 2), as in the logs; a canary with no data yet holds. Returns the notes to add.
pub fn check_steps(fetched: &mut Fetched, arms: &ArmSelector, config: &CanaryConfig) -> Result<Vec<String>, Error> {
    if !fetched.series.is_empty() && fetched.series.values().all(|s| s.baseline.is_empty()) {
        return Err(Diagnostic::new(format!(
            "no query returned data for the baseline `{}`",
            arms.baseline
        ))
        .in_file(&config.config_path)
        .hint("check `canary.source.baseline` against the label values the queries' `$arm` selects (try a query in Prometheus's expression browser)")
        .into());
    }
    let mut notes = Vec::new();
    for (metric, series) in &mut fetched.series {
        let largest = series
            .baseline
            .iter()
            .chain(&series.canary)
            .map(|(_, v)| *v)
            .filter(|v| v.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        for (arm, steps) in [
            (&arms.baseline, &mut series.baseline),
            (&arms.canary, &mut series.canary),
        ] {
            let total = steps.len();
            let nan = steps.iter().filter(|(_, v)| v.is_nan()).count();
            if nan > 0 {
                steps.retain(|(_, v)| !v.is_nan());
                notes.push(format!(
                    "{nan} of {total} steps of `{metric}` for `{arm}` had no value (NaN: no requests in the step) and are left out"
                ));
            }
            let inf = steps.iter().filter(|(_, v)| v.is_infinite()).count();
            if inf == 0 {
                continue;
            }
            let share = inf as f64 / total as f64;
            if share > config.max_bad_share || !largest.is_finite() {
                return Err(Diagnostic::new(format!(
                    "{inf} of {total} steps of `{metric}` for `{arm}` are infinite, {:.1}%, above the limit of {}%",
                    share * 100.0,
                    config.max_bad_share * 100.0
                ))
                .in_file(&config.config_path)
                .hint("+Inf from `histogram_quantile` means the quantile lies above the highest bucket: add buckets above the slowest requests")
                .hint("or raise `canary.max_bad_share` if such steps are expected (each then counts at the largest value measured)")
                .into());
            }
            for (_, v) in steps.iter_mut().filter(|(_, v)| v.is_infinite()) {
                *v = if *v > 0.0 { largest } else { -largest };
            }
            notes.push(format!(
                "{inf} of {total} steps of `{metric}` for `{arm}` were infinite (above the highest bucket) and count at the largest value measured, {largest}: a floor of their true value"
            ));
        }
    }
    Ok(notes)
}

/// The credentials `url` carries are secrets ([`crate::secrets::register_url_credentials`]).
fn register_credentials(url: &str) {
    crate::secrets::register_url_credentials("the password in canary.source.url", url);
}

async fn query_range(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    start: f64,
    end: f64,
    step: Duration,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let unreachable = |why: String| -> anyhow::Error {
        Error::run_with_hint(
            format!("cannot query Prometheus at {}: {why}", shown(url)),
            "check `canary.source.url` and that Prometheus is up (`curl URL/-/ready`)",
        )
        .into()
    };
    let mut endpoint = reqwest::Url::parse(&format!("{url}/api/v1/query_range"))
        .map_err(|e| unreachable(format!("not a URL: {e}")))?;
    endpoint
        .query_pairs_mut()
        .append_pair("query", query)
        .append_pair("start", &format!("{start}"))
        .append_pair("end", &format!("{end}"))
        .append_pair("step", &format!("{}s", step.as_secs_f64()));
    let response = client
        .get(endpoint)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| unreachable(crate::providers::http::with_causes(&e.without_url())))?;
    let status = response.status();
    let mut body: Vec<u8> = Vec::new();
    let mut response = response;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e: reqwest::Error| unreachable(e.to_string()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            return Err(unreachable("the answer is larger than 64 MiB".to_owned()));
        }
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
        unreachable(format!(
            "HTTP {status}, not a Prometheus API answer: {}",
            // The URL's credentials out before the cut: a page that echoes them, cut through
            // them, kept most of a password.
            crate::providers::http::shorten(&crate::secrets::redact(&String::from_utf8_lossy(&body)), 200)
        ))
    })?;
    if answer.status != "success" {
        let why = answer.error.unwrap_or_default();
        if answer.error_type.as_deref() == Some("bad_data") {
            return Err(Error::from(
                Diagnostic::new(format!("Prometheus rejects the query `{query}`: {why}"))
                    .hint("fix the PromQL under `canary.source.queries`; try it in Prometheus's expression browser"),
            )
            .into());
        }
        return Err(unreachable(format!("HTTP {status}: {why}")));
    }
    let Some(matrix) = answer.data.filter(|d| d.result_type == "matrix") else {
        return Err(unreachable("the answer is not a range of series (matrix)".to_owned()));
    };
    match matrix.result.as_slice() {
        [] => Ok(Vec::new()),
        // Prometheus writes every sample as a number's text (`NaN` and `+Inf` included): one
        // that is no number is a broken answer, never a step without requests.
        [one] => one
            .values
            .iter()
            .map(|(t, v)| match v.parse::<f64>() {
                Ok(x) => Ok((*t, x)),
                Err(_) => Err(unreachable(format!(
                    "the series of `{query}` holds `{}` at {t}, which is no number",
                    crate::providers::http::shorten(&crate::secrets::redact(v), 40)
                ))),
            })
            .collect(),
        many => {
            let labels: Vec<String> = many.iter().take(3).map(|s| format!("{:?}", s.metric)).collect();
            Err(Error::from(
                Diagnostic::new(format!(
                    "the query `{query}` returns {} series for one arm, expected one",
                    many.len()
                ))
                .hint(format!(
                    "aggregate it to one series per arm, e.g. `sum(...)` or `sum by () (...)`; series: {}",
                    labels.join(", ")
                )),
            )
            .into())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_shown_without_its_credentials() {
        assert_eq!(
            super::shown("https://reader:s3cret-token@prom.example:9090"),
            "https://prom.example:9090"
        );
        assert_eq!(super::shown("http://127.0.0.1:9090"), "http://127.0.0.1:9090");
    }

    #[test]
    fn the_credentials_a_url_carries_are_redacted_wherever_they_are_repeated() {
        super::register_credentials("https://reader:prom%2Dtoken%2F0123456789@prom.example:9090");
        // An error body that echoes the password, as written or decoded.
        let echoed = "HTTP 500: bad auth prom%2Dtoken%2F0123456789 / prom-token/0123456789";
        let redacted = crate::secrets::redact(echoed);
        assert!(!redacted.contains("0123456789"), "{redacted}");
        // A token given as the user name alone is one too.
        super::register_credentials("https://tok-user-9876543210abc@prom.example");
        assert!(!crate::secrets::redact("denied tok-user-9876543210abc").contains("9876543210"));
        assert_eq!(crate::secrets::percent_decoded("a%41%zz%4"), "aA%zz%4");
    }
}
