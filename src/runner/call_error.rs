//! Why a job ended without a response: a typed error, so what counts failures (budget refusals,
//! rate limits, timeouts) matches a variant and never a message. Each renders to the text
//! `results.json` has always carried in a call's `error`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::providers::ProviderError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallError {
    /// The prompt did not render; the message says why. Nothing was sent.
    NotRendered { message: String },
    /// The job names a provider no suite configures.
    NotConfigured { provider: String },
    /// The provider did not answer within the endpoint's timeout, retries included.
    Timeout { after_ms: u64 },
    /// The provider kept answering with a rate limit (see `retry::is_rate_limit`).
    RateLimited { message: String },
    /// A failure that may pass (a 5xx, a dropped connection, a torn body), retries exhausted.
    Transient { message: String },
    /// A failure trying again cannot fix (a 4xx other than 429, a refused request).
    Permanent { message: String },
    /// Not sent: the budget's hard cap would have been exceeded.
    BudgetRefused { cap_usd: f64 },
    /// Ctrl-C stopped it before it was sent, or while it waited to retry; a rerun sends it.
    Interrupted { waiting_to_retry: bool },
    /// The run ended before this job was started.
    NotRun,
    /// Every provider of its fallback chain failed: each one's failure, in order.
    Fallbacks { failures: Vec<(String, CallError)> },
    /// Its batch's completion window closed before the request ran (`run --batch`).
    BatchExpired { batch_id: String },
    /// Its batch was cancelled before the request ran.
    BatchCanceled { batch_id: String },
    /// Its batch failed as a whole (the provider refused the input): why.
    BatchFailed { batch_id: String, message: String },
    /// Its batch had not ended when `--batch-timeout` ran out, or could not be polled (a
    /// refused key: `status` says why); the batch goes on, and a rerun resumes polling it.
    BatchPending { batch_id: String, status: String },
}

impl CallError {
    /// A provider's last failure; its message redacted, as it may echo a key.
    pub fn from_provider(error: &ProviderError) -> CallError {
        let redacted = |message: &str| crate::secrets::redact(message);
        match error {
            ProviderError::Timeout { after_ms } => CallError::Timeout { after_ms: *after_ms },
            ProviderError::RateLimited { message, .. } => CallError::RateLimited {
                message: redacted(message),
            },
            ProviderError::Transient { message, .. } | ProviderError::Unsettled { message } => CallError::Transient {
                message: redacted(message),
            },
            ProviderError::Permanent { message } => CallError::Permanent {
                message: redacted(message),
            },
        }
    }

    /// Whether the budget refused it (here or at any provider of its chain).
    pub fn is_budget_refusal(&self) -> bool {
        matches!(self, CallError::BudgetRefused { .. })
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::NotRendered { message } => f.write_str(message),
            CallError::NotConfigured { provider } => write!(f, "provider `{provider}` is not configured"),
            CallError::Timeout { after_ms } => write!(f, "timed out after {after_ms} ms"),
            CallError::RateLimited { message } | CallError::Transient { message } => {
                write!(f, "transient provider error: {message}")
            }
            CallError::Permanent { message } => write!(f, "provider error: {message}"),
            CallError::BudgetRefused { cap_usd } => {
                write!(
                    f,
                    "not sent: the budget cap of {} would be exceeded",
                    crate::plan::usd(*cap_usd)
                )
            }
            CallError::Interrupted {
                waiting_to_retry: false,
            } => f.write_str("interrupted before it was sent"),
            CallError::Interrupted { waiting_to_retry: true } => f.write_str("interrupted while waiting to retry"),
            CallError::NotRun => f.write_str("job was not run"),
            CallError::BatchExpired { batch_id } => {
                write!(f, "batch {batch_id} expired before this request ran")
            }
            CallError::BatchCanceled { batch_id } => {
                write!(f, "batch {batch_id} was cancelled before this request ran")
            }
            CallError::BatchFailed { batch_id, message } => write!(f, "batch {batch_id} failed: {message}"),
            CallError::BatchPending { batch_id, status } => {
                write!(
                    f,
                    "batch {batch_id} had not ended ({status}) when the run stopped waiting for it"
                )
            }
            CallError::Fallbacks { failures } => {
                for (i, (provider, error)) in failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    match error {
                        // It names its provider already.
                        CallError::NotConfigured { .. } => write!(f, "{error}")?,
                        _ => write!(f, "`{provider}`: {error}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `results.json` keeps the words a call's `error` always had.
    #[test]
    fn each_error_renders_to_the_text_results_json_carried() {
        #[track_caller]
        fn check(error: CallError, expected: &str) {
            assert_eq!(error.to_string(), expected);
        }
        check(
            CallError::from_provider(&ProviderError::Timeout { after_ms: 1000 }),
            "timed out after 1000 ms",
        );
        let limited = CallError::from_provider(&ProviderError::RateLimited {
            message: "429 too many requests".to_owned(),
            retry_after_ms: None,
        });
        assert!(matches!(limited, CallError::RateLimited { .. }));
        check(limited, "transient provider error: 429 too many requests");
        let busy = CallError::from_provider(&ProviderError::Transient {
            message: "500 internal server error".to_owned(),
            retry_after_ms: None,
        });
        assert!(matches!(busy, CallError::Transient { .. }));
        check(busy, "transient provider error: 500 internal server error");
        check(
            CallError::from_provider(&ProviderError::Permanent {
                message: "401 invalid api key".to_owned(),
            }),
            "provider error: 401 invalid api key",
        );
        check(
            CallError::BudgetRefused { cap_usd: 0.045 },
            "not sent: the budget cap of $0.045 would be exceeded",
        );
        // A shard's share of a cap is printed with the digits it needs, not all of a float's.
        check(
            CallError::BudgetRefused {
                cap_usd: 0.06 / 3.0 * 2.0,
            },
            "not sent: the budget cap of $0.04 would be exceeded",
        );
        check(
            CallError::Interrupted { waiting_to_retry: true },
            "interrupted while waiting to retry",
        );
        check(
            CallError::Fallbacks {
                failures: vec![
                    ("a".to_owned(), CallError::Timeout { after_ms: 5 }),
                    (
                        "b".to_owned(),
                        CallError::NotConfigured {
                            provider: "b".to_owned(),
                        },
                    ),
                    (
                        "c".to_owned(),
                        CallError::Permanent {
                            message: "down".to_owned(),
                        },
                    ),
                ],
            },
            "`a`: timed out after 5 ms; provider `b` is not configured; `c`: provider error: down",
        );
    }
}
