//! The hard spending cap: reserve a call's upper-bound cost before sending, settle to the actual
//! cost after. Spent plus reserved never passes the cap, so neither does spend, however many
//! calls run at once. An attempt whose cost cannot be known (it timed out, or a batch ran whose
//! results could not be read: the provider may bill it in full) keeps its reservation for good,
//! as `uncertain`: counted against the cap, never reported as spent.

use std::sync::Mutex;

use tokio::sync::Notify;

/// The run's spend held against the suite budget's hard cap (`suite::Budget::max_usd`).
pub struct SpendCap {
    cap: Option<f64>,
    state: Mutex<Ledger>,
    settled: Notify,
}

#[derive(Clone, Copy, Debug, Default)]
struct Ledger {
    spent: f64,
    reserved: f64,
    /// Upper bounds of attempts that may have been billed, unknown.
    uncertain: f64,
    /// Whether a call has cost more than its reservation (said once).
    overran: bool,
}

impl Ledger {
    /// What the cap holds: spent, possibly spent, and set aside.
    fn held(&self) -> f64 {
        self.spent + self.uncertain + self.reserved
    }
}

/// Money set aside for one call; settle it with [`SpendCap::settle`].
#[derive(Debug)]
pub struct Reservation(f64);

impl Reservation {
    /// The money set aside.
    pub fn usd(&self) -> f64 {
        self.0
    }
}

impl SpendCap {
    /// `already_spent` and `already_uncertain` are those of an interrupted run being resumed
    /// (its journal's): the cap is for the run.
    pub fn new(cap: Option<f64>, already_spent: f64, already_uncertain: f64) -> Self {
        SpendCap {
            cap,
            state: Mutex::new(Ledger {
                spent: already_spent,
                reserved: 0.0,
                uncertain: already_uncertain,
                overran: false,
            }),
            settled: Notify::new(),
        }
    }

    /// Sets `upper_bound` aside, waiting while calls in flight hold the money it needs (they may
    /// settle for less). `None` when it cannot fit even once they have: then the call is not sent.
    pub async fn reserve(&self, upper_bound: f64) -> Option<Reservation> {
        let Some(cap) = self.cap else {
            return Some(Reservation(upper_bound));
        };
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            {
                let mut l = self.lock();
                if l.held() + upper_bound <= cap {
                    l.reserved += upper_bound;
                    return Some(Reservation(upper_bound));
                }
                // Spend only grows: once it alone leaves no room, waiting cannot help.
                if l.spent + l.uncertain + upper_bound > cap || l.reserved <= 0.0 {
                    return None;
                }
            }
            settled.await;
        }
    }

    /// What the cap leaves to set aside now (`None` without a cap).
    pub fn room(&self) -> Option<f64> {
        let cap = self.cap?;
        Some(cap - self.lock().held())
    }

    /// Sets `upper_bound` aside if it fits now, without waiting: a batch reserves all its
    /// calls before it is submitted, so nothing it holds could be settled by waiting.
    pub fn try_reserve(&self, upper_bound: f64) -> Option<Reservation> {
        let Some(cap) = self.cap else {
            return Some(Reservation(upper_bound));
        };
        let mut l = self.lock();
        if l.held() + upper_bound <= cap {
            l.reserved += upper_bound;
            Some(Reservation(upper_bound))
        } else {
            None
        }
    }

    /// Replaces the reservation by what the call really cost (0 for a failure that was not billed).
    pub fn settle(&self, reservation: Reservation, actual: f64) {
        {
            let mut l = self.lock();
            l.reserved = (l.reserved - reservation.0).max(0.0);
            l.spent += actual;
            // The reservation is the call's worst case by its `max_tokens`: a provider that
            // bills output beyond it (reasoning tokens an OpenAI-compatible server counts apart)
            // spends what the cap could not hold. Said, not hidden: the spend is the bill's.
            if self.cap.is_some() && actual > reservation.0 * (1.0 + 1e-9) + 1e-12 && !l.overran {
                l.overran = true;
                eprintln!(
                    "warning: a call cost ${actual:.6}, more than the ${:.6} its request's max_tokens allows (the provider billed output beyond max_tokens): the hard cap holds each call to its max_tokens, so spend can pass the cap by such overruns",
                    reservation.0
                );
            }
        }
        self.settled.notify_waiters();
    }

    /// An attempt whose cost cannot be known: its reservation stays held against the cap for
    /// the rest of the run, and is not reported as spent.
    pub fn settle_uncertain(&self, reservation: Reservation) {
        {
            let mut l = self.lock();
            l.reserved = (l.reserved - reservation.0).max(0.0);
            l.uncertain += reservation.0;
        }
        self.settled.notify_waiters();
    }

    pub fn spent(&self) -> f64 {
        self.lock().spent
    }

    /// The upper bounds of the attempts whose cost could not be known ([`settle_uncertain`]).
    ///
    /// [`settle_uncertain`]: SpendCap::settle_uncertain
    pub fn uncertain(&self) -> f64 {
        self.lock().uncertain
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_never_pass_the_cap() {
        let b = SpendCap::new(Some(1.0), 0.25, 0.0);
        let first = b.reserve(0.5).await.expect("fits");
        // 0.25 spent + 0.5 reserved: 0.5 more would pass the cap, but may fit after settling.
        let waiting = b.reserve(0.5);
        b.settle(first, 0.1);
        let second = waiting.await.expect("fits after the first settled low");
        b.settle(second, 0.5);
        assert!((b.spent() - 0.85).abs() < 1e-12);
        assert!(b.reserve(0.2).await.is_none());
        assert!(SpendCap::new(None, 0.0, 0.0).reserve(1e9).await.is_some());
    }

    #[tokio::test]
    async fn an_attempt_of_unknown_cost_holds_its_reservation_against_the_cap_for_good() {
        let b = SpendCap::new(Some(1.0), 0.0, 0.0);
        let timed_out = b.reserve(0.4).await.expect("fits");
        b.settle_uncertain(timed_out);
        // Not spent, as far as anyone knows; but the cap keeps room for it having been billed.
        assert_eq!((b.spent(), b.uncertain()), (0.0, 0.4));
        let next = b.reserve(0.4).await.expect("0.8 of 1.0 held");
        assert!(b.try_reserve(0.3).is_none(), "0.4 + 0.4 + 0.3 would pass the cap");
        b.settle_uncertain(next);
        // With nothing in flight to wait for, a call that does not fit is refused at once.
        assert!(b.reserve(0.3).await.is_none());
        assert!(b.reserve(0.2).await.is_some());
    }
}
