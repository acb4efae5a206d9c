//! Runs jobs through their providers with bounded concurrency, accounting for every one.
//!
//! Each job ends as a [`Outcome`]: a response or an error. Nothing is dropped: a render error,
//! a timeout and a provider failure are all outcomes the report counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::plan::Job;
use crate::providers::{Provider, ProviderError, Response};

/// A provider ready to call, with its limits.
pub struct Endpoint {
    pub provider: Arc<dyn Provider>,
    pub concurrency: usize,
    pub timeout: Duration,
    /// Retries after the first attempt, for transient failures.
    pub max_retries: u32,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    /// What identifies this endpoint's answers in the cache besides the request: the
    /// provider type and its address (never its key).
    pub cache_identity: String,
}

/// How one job ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub result: Result<Response, String>,
    /// Measured around the call when the provider does not report its own.
    pub latency_ms: Option<f64>,
    pub cached: bool,
    /// Attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// The endpoint that produced the result.
    pub provider: Option<String>,
    pub fell_back: bool,
}

/// Runs every job; the outcomes are in the jobs' order.
pub async fn run(jobs: &[Job], endpoints: &BTreeMap<String, Endpoint>, progress: &dyn Fn(usize, usize)) -> Vec<Outcome> {
    let limits: BTreeMap<&str, Arc<Semaphore>> = endpoints.iter().map(|(name, e)| (name.as_str(), Arc::new(Semaphore::new(e.concurrency)))).collect();
    let total_concurrency: usize = endpoints.values().map(|e| e.concurrency).sum::<usize>().max(1);
    let done = AtomicUsize::new(0);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; jobs.len()];
    let mut stream = futures::stream::iter(jobs.iter().enumerate())
        .map(|(index, job)| {
            let limits = &limits;
            let done = &done;
            async move {
                let outcome = run_one(job, endpoints, limits).await;
                let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(finished, jobs.len());
                (index, outcome)
            }
        })
        .buffer_unordered(total_concurrency);
    while let Some((index, outcome)) = stream.next().await {
        outcomes[index] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome { result: Err("job was not run".to_owned()), latency_ms: None, cached: false, attempts: 0, provider: None, fell_back: false }))
        .collect()
}

async fn run_one(job: &Job, endpoints: &BTreeMap<String, Endpoint>, limits: &BTreeMap<&str, Arc<Semaphore>>) -> Outcome {
    let failed = |message: String| Outcome { result: Err(message), latency_ms: None, cached: false, attempts: 0, provider: None, fell_back: false };
    let request = match &job.request {
        Ok(r) => r,
        Err(e) => return failed(e.clone()),
    };
    let (Some(endpoint), Some(limit)) = (endpoints.get(&job.provider), limits.get(job.provider.as_str())) else {
        return failed(format!("provider `{}` is not configured", job.provider));
    };
    let Ok(_permit) = limit.acquire().await else {
        return failed("the runner shut down".to_owned());
    };
    let started = Instant::now();
    let result = tokio::time::timeout(endpoint.timeout, endpoint.provider.complete(request)).await;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(Ok(response)) => {
            let latency = response.latency_ms.unwrap_or(elapsed);
            Outcome { result: Ok(response), latency_ms: Some(latency), cached: false, attempts: 1, provider: Some(job.provider.clone()), fell_back: false }
        }
        Ok(Err(e)) => Outcome { attempts: 1, provider: Some(job.provider.clone()), ..failed(describe(&e)) },
        Err(_) => Outcome { attempts: 1, provider: Some(job.provider.clone()), ..failed(describe(&ProviderError::Timeout { after_ms: endpoint.timeout.as_millis() as u64 })) },
    }
}

fn describe(e: &ProviderError) -> String {
    match e {
        ProviderError::Transient { message, .. } => format!("transient provider error: {message}"),
        ProviderError::Permanent { message } => format!("provider error: {message}"),
        ProviderError::Timeout { after_ms } => format!("timed out after {after_ms} ms"),
    }
}
