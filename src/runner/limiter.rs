//! Client-side limits for one endpoint: adaptive concurrency (AIMD) and token buckets for
//! requests and tokens per minute. All waiting is async on tokio's clock, so tests run in
//! paused time.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Successes needed above the last level that drew a 429 before probing one step higher.
/// Below that level the limit grows by one per window (one success per permit); at or above it,
/// this slowly, so a provider at its limit sees an occasional probe rather than a storm.
const PROBE_SUCCESSES: usize = 32;

/// Adaptive concurrency: additive increase, multiplicative decrease.
///
/// A 429 halves the effective limit (never below 1), at most once per window: permits record
/// the epoch they were taken in, and a 429 from an earlier epoch (sent before the last decrease)
/// is already accounted for. Successes grow the limit back by one per window, up to the
/// configured maximum, slowly once the level that last drew a 429 is reached.
pub struct Adaptive {
    max: usize,
    state: Mutex<AdaptiveState>,
    changed: Notify,
}

struct AdaptiveState {
    limit: usize,
    in_flight: usize,
    successes: usize,
    epoch: u64,
    /// The limit at which the last 429 arrived: growth slows from one below it.
    ceiling: usize,
}

/// How a call went, for the adaptive limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Success,
    RateLimited,
    /// Any other failure: says nothing about the provider's capacity.
    Other,
}

/// One call's slot; give it back with [`Permit::finish`] (dropping it counts as [`Signal::Other`]).
pub struct Permit<'a> {
    owner: &'a Adaptive,
    epoch: u64,
    done: bool,
}

impl Adaptive {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Adaptive {
            max,
            state: Mutex::new(AdaptiveState {
                limit: max,
                in_flight: 0,
                successes: 0,
                epoch: 0,
                ceiling: usize::MAX,
            }),
            changed: Notify::new(),
        }
    }

    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            // Register for a wake-up before looking, so a release between the look and the
            // wait is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.in_flight < s.limit {
                    s.in_flight += 1;
                    return Permit {
                        owner: self,
                        epoch: s.epoch,
                        done: false,
                    };
                }
            }
            changed.await;
        }
    }

    /// The effective limit now.
    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.lock().limit
    }

    fn release(&self, epoch: u64, signal: Signal) {
        {
            let mut s = self.lock();
            s.in_flight -= 1;
            match signal {
                Signal::RateLimited if epoch == s.epoch => {
                    s.ceiling = s.limit;
                    s.limit = (s.limit / 2).max(1);
                    s.successes = 0;
                    s.epoch += 1;
                }
                Signal::Success if s.limit < self.max => {
                    s.successes += 1;
                    let needed = if s.limit + 1 >= s.ceiling {
                        PROBE_SUCCESSES.max(s.limit)
                    } else {
                        s.limit
                    };
                    if s.successes >= needed {
                        s.limit += 1;
                        s.successes = 0;
                    }
                }
                _ => {}
            }
        }
        self.changed.notify_waiters();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AdaptiveState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Permit<'_> {
    pub fn finish(mut self, signal: Signal) {
        self.done = true;
        self.owner.release(self.epoch, signal);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.owner.release(self.epoch, Signal::Other);
        }
    }
}

/// A token bucket refilled continuously at `per_minute / 60` per second, holding at most one
/// second's worth (at least one request's worth), so a limit of 60 a minute means one a second,
/// not a burst of 60 followed by a minute of silence.
///
/// Takers reserve immediately and may drive the balance below zero; each then waits until the
/// refill has paid its share. That makes waiting first come, first served without a loop.
pub struct Bucket {
    rate_per_sec: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn per_minute(per_minute: u32) -> Self {
        let rate_per_sec = f64::from(per_minute.max(1)) / 60.0;
        let capacity = rate_per_sec.max(1.0);
        Bucket {
            rate_per_sec,
            capacity,
            state: Mutex::new((capacity, Instant::now())),
        }
    }

    /// Waits until `amount` may be spent. An amount larger than the bucket waits for a full
    /// bucket and then overdraws it, so an oversized request is slowed, never stuck.
    pub async fn take(&self, amount: f64) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (tokens, last) = *state;
            let tokens =
                (tokens + now.saturating_duration_since(last).as_secs_f64() * self.rate_per_sec).min(self.capacity);
            let needed = amount.min(self.capacity);
            let wait = if tokens >= needed {
                0.0
            } else {
                (needed - tokens) / self.rate_per_sec
            };
            *state = (tokens - amount, now);
            wait
        };
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests_evenly() {
        let bucket = Bucket::per_minute(60);
        let start = Instant::now();
        for _ in 0..10 {
            bucket.take(1.0).await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        assert!((9.0..9.1).contains(&elapsed), "{elapsed}");
    }

    #[tokio::test(start_paused = true)]
    async fn oversized_take_waits_for_a_full_bucket() {
        let bucket = Bucket::per_minute(600); // 10 a second, capacity 10
        bucket.take(25.0).await; // full bucket: goes at once, overdraws to -15
        let start = Instant::now();
        bucket.take(1.0).await; // needs 16 tokens of refill
        assert!((start.elapsed().as_secs_f64() - 1.6).abs() < 0.01);
    }

    #[test]
    fn aimd_halves_once_per_window_and_recovers() {
        let a = Adaptive::new(16);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let permits: Vec<_> = futures::future::join_all((0..16).map(|_| a.acquire())).await;
            for p in permits {
                p.finish(Signal::RateLimited);
            }
            assert_eq!(a.limit(), 8, "sixteen 429s from one window halve once");
            for _ in 0..8 {
                a.acquire().await.finish(Signal::Success);
            }
            assert_eq!(a.limit(), 9);
        });
    }
}
