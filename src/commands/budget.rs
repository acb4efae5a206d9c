//! The run's budget as `run` holds it: the hard cap this process may spend, a shard's share of
//! it, and what the run says when the cap refused calls.
//!
//! A CI matrix runs one process a shard, and each holds its own cap. So that the shards
//! together spend what one unsharded run may, a shard checks the whole run's estimate (what the
//! unsharded run would ask to approve, the same figure in every shard) and holds itself to its
//! share of `max_usd`: its own estimate's part of the whole, so the shares add up to the cap.

use crate::format::dollars;
use crate::plan::{self, CostEstimate, Job};
use crate::providers::pricing::PriceTable;
use crate::results::Shard;
use crate::runner;

/// The hard cap this process holds its spend to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cap {
    pub usd: f64,
    /// A shard's cap: the budget's `max_usd` it is a share of, and the shard.
    pub share_of: Option<(f64, Shard)>,
}

impl Cap {
    /// The budget's cap, or `shard`'s share of it.
    pub fn of(max_usd: Option<f64>, shard: Option<&ShardBudget>) -> Option<Cap> {
        let max = max_usd?;
        Some(match shard {
            Some(s) => Cap {
                usd: max * s.share,
                share_of: Some((max, s.shard)),
            },
            None => Cap {
                usd: max,
                share_of: None,
            },
        })
    }

    /// "the budget's hard cap of $5.00", or a shard's share of it.
    pub fn words(&self) -> String {
        match self.share_of {
            None => format!("the budget's hard cap of {}", dollars(self.usd)),
            Some((max, shard)) => format!(
                "shard {}/{}'s share ({}) of the budget's hard cap of {}",
                shard.index,
                shard.count,
                dollars(self.usd),
                dollars(max)
            ),
        }
    }
}

/// What a shard's budget reads of the whole run.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardBudget {
    pub shard: Shard,
    /// The whole run's estimate at list prices: every shard's calls, and their judging.
    pub whole: CostEstimate,
    /// This shard's own estimate at list prices, in dollars.
    pub part_usd: f64,
    /// This shard's part of `whole`, from 0 to 1: its estimate's share of the whole's dollars
    /// (of its calls when nothing is priced).
    pub share: f64,
}

impl ShardBudget {
    /// `whole` is the whole run's estimate and `part` this shard's, both at list prices.
    pub fn new(shard: Shard, whole: CostEstimate, part: &CostEstimate) -> ShardBudget {
        let share = if whole.usd > 0.0 {
            part.usd / whole.usd
        } else if whole.calls > 0 {
            part.calls as f64 / whole.calls as f64
        } else {
            0.0
        };
        ShardBudget {
            shard,
            whole,
            part_usd: part.usd,
            share: share.clamp(0.0, 1.0),
        }
    }

    /// Of the whole run's `jobs` and `judged` (the judge calls they plan), with `in_shard` saying
    /// which are this shard's.
    pub fn of(
        shard: Shard,
        jobs: &[Job],
        judged: &[Job],
        prices: &PriceTable,
        in_shard: impl Fn(&Job) -> bool,
    ) -> ShardBudget {
        let whole = plan::estimate(jobs, prices).plus(plan::estimate(judged, prices));
        let mine = |all: &[Job]| all.iter().filter(|j| in_shard(j)).cloned().collect::<Vec<Job>>();
        let part = plan::estimate(&mine(jobs), prices).plus(plan::estimate(&mine(judged), prices));
        ShardBudget::new(shard, whole, &part)
    }

    /// The estimate the budget checks: the whole run's, at the rates this shard's `estimate` is
    /// priced at (a batch API's lower ones), so it is the figure the unsharded run would check.
    pub fn whole_at_rates_of(&self, estimate: &CostEstimate) -> CostEstimate {
        let rate = if self.part_usd > 0.0 {
            estimate.usd / self.part_usd
        } else {
            1.0
        };
        CostEstimate {
            usd: self.whole.usd * rate,
            ..self.whole.clone()
        }
    }

    /// What the run prints after the shard's own estimate.
    pub fn words(&self, cap: Option<Cap>) -> String {
        let mut line = format!(
            "promptgate: shard {}/{}: the whole run (all {} shards) is estimated at {}; approval and the hard cap read that figure",
            self.shard.index,
            self.shard.count,
            self.shard.count,
            plan::usd(self.whole.usd)
        );
        if let Some(Cap {
            usd,
            share_of: Some((max, _)),
        }) = cap
        {
            line.push_str(&format!(
                "; this shard may spend {}, its share of the budget's hard cap of {}",
                dollars(usd),
                dollars(max)
            ));
        }
        line
    }
}

/// Calls the budget refused leave the comparison incomplete: a run error (exit 3). The message
/// and what to do.
pub fn cap_reached(ran: &runner::Ran, cap: Option<Cap>) -> Option<(String, &'static str)> {
    let cap = cap.filter(|_| ran.budget_exhausted)?;
    // Judge calls the cap refused are calls not sent too.
    let refused = ran.refused
        + (ran.derived.iter())
            .filter(|d| {
                d.outcome
                    .result
                    .as_ref()
                    .is_err_and(runner::CallError::is_budget_refusal)
            })
            .count();
    Some((
        format!(
            "the run failed: {refused} call(s) were not sent: {} would have been exceeded (spent {})",
            cap.words(),
            dollars(ran.spent_usd)
        ),
        "the results were written; raise `budget.max_usd` in promptgate.yaml, or lower repeats or cases",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Arm, JudgeTag};
    use crate::runner::{CallError, Derived, Outcome};

    fn refused(cap_usd: f64) -> Outcome {
        Outcome {
            result: Err(CallError::BudgetRefused { cap_usd }),
            latency_ms: None,
            cached: false,
            attempts: 0,
            provider: None,
            fell_back: false,
            batched: false,
        }
    }

    /// Refusals are counted by their kind, never by their words, and a judge call the cap
    /// refused is a call not sent too.
    #[test]
    fn budget_refusals_are_counted_by_kind_judge_calls_included() {
        let other = Outcome {
            result: Err(CallError::Permanent {
                message: "not sent: the budget cap, says the provider".to_owned(),
            }),
            attempts: 1,
            ..refused(1.0)
        };
        let job = Job {
            experiment: 0,
            case: 0,
            arm: Arm::Candidate,
            repeat: 0,
            provider: "p".into(),
            fallbacks: Default::default(),
            request: Err("not rendered".to_owned()),
            retime: false,
        };
        let ran = runner::Ran {
            outcomes: vec![refused(1.0), other, refused(1.0)],
            refused: 2,
            derived: (0..2)
                .map(|repeat| Derived {
                    parent: 0,
                    tag: JudgeTag {
                        assertion: 0,
                        repeat,
                        attempt: 0,
                        first: None,
                    },
                    job: job.clone(),
                    outcome: refused(1.0),
                })
                .collect(),
            budget_exhausted: true,
            spent_usd: 0.99,
            ..runner::Ran::default()
        };
        let (message, _) = cap_reached(&ran, Cap::of(Some(1.0), None)).expect("the cap was reached");
        assert!(
            message.starts_with("the run failed: 4 call(s) were not sent"),
            "{message}"
        );
        assert!(cap_reached(&ran, None).is_none());
    }

    fn estimate(usd: f64, calls: usize) -> CostEstimate {
        CostEstimate {
            usd,
            calls,
            ..CostEstimate::default()
        }
    }

    const SHARD: Shard = Shard { index: 2, count: 4 };

    /// The share is of the dollars, or of the calls when nothing is priced; the cap is that
    /// share of `max_usd`, and the whole run's estimate is read at the shard's own rates.
    #[test]
    fn a_shard_holds_its_share_of_the_cap() {
        let s = ShardBudget::new(SHARD, estimate(0.08, 100), &estimate(0.02, 40));
        assert!((s.share - 0.25).abs() < 1e-12);
        let cap = Cap::of(Some(1.0), Some(&s)).unwrap();
        assert!((cap.usd - 0.25).abs() < 1e-12);
        assert_eq!(
            cap.words(),
            "shard 2/4's share ($0.250) of the budget's hard cap of $1.00"
        );
        assert_eq!(Cap::of(None, Some(&s)), None);
        assert_eq!(
            Cap::of(Some(1.0), None).unwrap().words(),
            "the budget's hard cap of $1.00"
        );
        // A batch API at half price: the whole run is checked at half its list estimate.
        assert!((s.whole_at_rates_of(&estimate(0.01, 40)).usd - 0.04).abs() < 1e-12);
        assert!((s.whole_at_rates_of(&estimate(0.02, 40)).usd - 0.08).abs() < 1e-12);

        let unpriced = ShardBudget::new(SHARD, estimate(0.0, 100), &estimate(0.0, 40));
        assert!((unpriced.share - 0.4).abs() < 1e-12);
        assert!((unpriced.whole_at_rates_of(&estimate(0.0, 40)).usd).abs() < 1e-12);
        let empty = ShardBudget::new(SHARD, estimate(0.0, 0), &estimate(0.0, 0));
        assert_eq!(empty.share, 0.0);
    }
}
