//! When to retry and how long to wait.

use std::time::Duration;

use crate::providers::ProviderError;
use crate::stats::Rng;

/// No backoff wait is longer than this (a provider's `retry_after_ms` may ask for more).
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// Whether a failure is a rate limit: the provider said so ([`ProviderError::RateLimited`]: a
/// 429, or a passing failure that names a wait, which asks the same of the client — slow down —
/// and the adaptive limit should hear it).
pub fn is_rate_limit(error: &ProviderError) -> bool {
    matches!(error, ProviderError::RateLimited { .. })
}

/// Whether trying the same call again can help.
pub fn is_retryable(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Transient { .. }
            | ProviderError::RateLimited { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::Unsettled { .. }
    )
}

/// The wait before retry number `retry` (1 for the first retry): exponential backoff with full
/// jitter (a uniform wait in `[0, min(cap, base · 2^(retry-1)))`, the AWS Architecture Blog's
/// "Exponential Backoff and Jitter"), but at least what the provider asked for.
///
/// The jitter is drawn from `seed` and `retry`, so a rerun waits the same.
pub fn backoff(base: Duration, retry: u32, seed: u64, retry_after_ms: Option<u64>) -> Duration {
    let exponent = retry.saturating_sub(1).min(32);
    let ceiling = base.saturating_mul(1u32 << exponent.min(31)).min(BACKOFF_CAP);
    let mut rng = Rng::new(seed ^ u64::from(retry).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let jittered = ceiling.mul_f64(rng.unit());
    jittered.max(Duration::from_millis(retry_after_ms.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(error: ProviderError, rate_limit: bool, retryable: bool) {
        assert_eq!(
            (is_rate_limit(&error), is_retryable(&error)),
            (rate_limit, retryable),
            "{error:?}"
        );
    }

    #[test]
    fn classification() {
        let transient = |m: &str, r| ProviderError::Transient {
            message: m.to_owned(),
            retry_after_ms: r,
        };
        let limited = |m: &str, r| ProviderError::RateLimited {
            message: m.to_owned(),
            retry_after_ms: r,
        };
        check(limited("too many requests", None), true, true);
        check(limited("rate limited", Some(2000)), true, true);
        // The provider's word, not the message's: a transient failure whose text starts with
        // 429 is no rate limit unless the provider said it was one.
        check(transient("429 too many requests", None), false, true);
        check(transient("500 internal server error", None), false, true);
        check(transient("truncated JSON body", None), false, true);
        check(ProviderError::Timeout { after_ms: 10 }, false, true);
        check(
            ProviderError::Permanent {
                message: "429-ish model name".to_owned(),
            },
            false,
            false,
        );
    }

    #[test]
    fn backoff_is_jittered_capped_reproducible_and_honours_retry_after() {
        let base = Duration::from_millis(500);
        for retry in 1..40 {
            let wait = backoff(base, retry, 7, None);
            assert!(wait < BACKOFF_CAP);
            assert!(wait < base * 2u32.pow(retry.min(7) - 1), "retry {retry}: {wait:?}");
            assert_eq!(wait, backoff(base, retry, 7, None));
        }
        assert_ne!(backoff(base, 3, 7, None), backoff(base, 3, 8, None));
        assert!(backoff(base, 1, 7, Some(60_000)) >= Duration::from_secs(60));
    }
}
