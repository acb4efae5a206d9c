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

/// A shard is a fixed share of the cases; the designs that need every case refuse it.
pub fn refuse_shard(shard: Shard, aa: bool, sequential: bool) -> Result<(), crate::error::Error> {
    let why = if aa {
        "--aa compares every case with itself and estimates the suite's noise from all of them"
    } else if sequential {
        "a sequential design looks at shares of all the cases in one order, which a shard cannot see"
    } else {
        return Ok(());
    };
    Err(crate::error::Diagnostic::new(format!(
        "--shard {}/{} cannot be used here: {why}",
        shard.index, shard.count
    ))
    .hint(if aa {
        "run the A/A check without --shard"
    } else {
        "run without --shard; the design in force is the base's (`defaults.sequential` at the base branch): a pull request that makes it fixed shards once that is merged"
    })
    .into())
}

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
    /// The whole run's estimate: every shard's calls, and their judging.
    pub whole: CostEstimate,
    /// This shard's part of `whole`, from 0 to 1: its estimate's share of the whole's dollars
    /// (of its calls when nothing is priced).
    pub share: f64,
}

impl ShardBudget {
    /// `whole` is the whole run's estimate and `part` this shard's, at the same rates.
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
            share: share.clamp(0.0, 1.0),
        }
    }

    /// Of the whole run's `jobs` (with which go through a batch API, under `--batch`) and
    /// `judged` (the judge calls they plan), with `in_shard` saying which are this shard's. Both
    /// estimates are at the rates the calls are sent at, so every shard checks the same whole.
    pub fn of(
        shard: Shard,
        jobs: &[Job],
        batched: Option<&[bool]>,
        judged: &[Job],
        prices: &PriceTable,
        in_shard: impl Fn(&Job) -> bool,
    ) -> ShardBudget {
        let estimate = |jobs: &[Job], batched: Option<&[bool]>| match batched {
            Some(batched) => runner::batch::estimate(jobs, batched, prices),
            None => plan::estimate(jobs, prices),
        };
        let whole = estimate(jobs, batched).plus(plan::estimate(judged, prices));
        let mine: Vec<usize> = (0..jobs.len()).filter(|&i| in_shard(&jobs[i])).collect();
        let my_jobs: Vec<Job> = mine.iter().map(|&i| jobs[i].clone()).collect();
        let my_batched: Option<Vec<bool>> = batched.map(|b| mine.iter().map(|&i| b[i]).collect());
        let my_judged: Vec<Job> = judged.iter().filter(|j| in_shard(j)).cloned().collect();
        let part = estimate(&my_jobs, my_batched.as_deref()).plus(plan::estimate(&my_judged, prices));
        ShardBudget::new(shard, whole, &part)
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

/// Keeps `shard`'s jobs of the whole run's `jobs` (same jobs, seeds and requests as the full
/// run, so the shards union to it call for call), and returns the budget it holds to: of the
/// whole run's jobs, `batched` (under `--batch`) and `judged` (the judge calls they plan).
/// `cases` says which cases are the shard's (`plan::shard_cases`).
pub fn keep_shard(
    shard: Shard,
    cases: &[Vec<bool>],
    jobs: &mut Vec<Job>,
    batched: Option<&[bool]>,
    judged: &[Job],
    prices: &PriceTable,
) -> ShardBudget {
    let in_shard = |j: &Job| cases.get(j.experiment()).and_then(|c| c.get(j.case())).copied() == Some(true);
    let budget = ShardBudget::of(shard, jobs, batched, judged, prices, in_shard);
    jobs.retain(in_shard);
    jobs.shrink_to_fit();
    eprintln!(
        "promptgate: shard {}/{}: {} of the plan's calls",
        shard.index,
        shard.count,
        jobs.len()
    );
    budget
}

/// A run the budget's cap stopped: the calls it refused, what to say and what to do.
pub struct CapReached {
    pub refused: usize,
    pub message: String,
    pub hint: String,
}

/// Calls the budget refused leave the comparison incomplete: a run error (exit 3).
pub fn cap_reached(ran: &runner::Ran, cap: Option<Cap>) -> Option<CapReached> {
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
    Some(CapReached {
        refused,
        message: format!(
            "the run failed: {refused} call(s) were not sent: {} would have been exceeded (spent {}{})",
            cap.words(),
            dollars(ran.spent_usd),
            if ran.uncertain_usd > 0.0 {
                format!(
                    ", and up to {} more in attempts a provider may bill in full: timed out, answered but unreadable, or in flight when an earlier run of this plan was stopped",
                    dollars(ran.uncertain_usd)
                )
            } else {
                String::new()
            }
        ),
        hint: match cap.share_of {
            None => format!(
                "the results were written; {}, or lower repeats or cases",
                crate::plan::RAISE_MAX_USD
            ),
            // Each call reserves its most (full `max_tokens`) while the share follows the
            // estimate: a shard has less room at its end than the whole run has.
            Some(_) => format!(
                "the results were written; a shard may spend only its share of `budget.max_usd` (its part of the whole run's estimate): {}, or lower repeats or cases",
                crate::plan::RAISE_MAX_USD
            ),
        },
    })
}

/// A hard cap holds only calls whose price is known: a call to a model no price table in force
/// prices reserves nothing and is counted at $0, so the cap would not stop it (an audit's pull
/// request switched to an unpriced model and sent 40 calls past a cap the baseline stopped at).
/// Bad input, before any call: the model needs a price. `exec` programs and the offline mock
/// bill nobody, and are not asked.
pub(super) fn unpriced_under_cap<'a>(
    jobs: impl Iterator<Item = &'a plan::Job>,
    endpoints: &std::collections::BTreeMap<String, runner::Endpoint>,
    prices: &PriceTable,
    cap: f64,
    config_path: &str,
) -> Result<(), crate::error::Error> {
    let mut unpriced: Vec<&str> = Vec::new();
    // The plan's few models, each looked up in the price tables once (not once a job: a plan
    // holds up to ten million).
    let mut priced: Vec<&str> = Vec::new();
    for job in jobs {
        let Ok(request) = &job.request else { continue };
        let model = request.model.as_ref();
        if unpriced.contains(&model) || priced.contains(&model) {
            continue;
        }
        if prices.price(model).is_some() {
            priced.push(model);
            continue;
        }
        // Its fallbacks are sent the same model, and priced as it is.
        let billed = std::iter::once(&job.provider)
            .chain(job.fallbacks.iter())
            .any(|provider| {
                endpoints
                    .get(provider.as_ref())
                    .is_some_and(|e| !matches!(e.provider.kind(), "exec" | "mock"))
            });
        if billed {
            unpriced.push(model);
        }
    }
    if unpriced.is_empty() {
        return Ok(());
    }
    let models = unpriced.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
    Err(crate::error::Error::from(
        crate::error::Diagnostic::new(format!(
            "{models} {} no price, and `budget.max_usd` caps the run at {}: a call whose price is unknown cannot be held under the cap",
            if unpriced.len() == 1 { "has" } else { "have" },
            plan::usd(cap)
        ))
        .in_file(config_path.to_owned())
        .hint(format!(
            "add {} under `pricing:` in dollars per million tokens, e.g. `pricing: {{{}: {{input: 0.15, output: 0.60}}}}` (a model that costs nothing: `{{input: 0, output: 0}}`); a price the pull request adds counts only for a model the base's table does not price",
            if unpriced.len() == 1 { "it" } else { "them" },
            unpriced[0]
        )),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Arm, JudgeTag};
    use crate::runner::{CallError, Derived, Outcome};

    fn refused(cap_usd: f64) -> Outcome {
        runner::not_sent(CallError::BudgetRefused { cap_usd })
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
                    replayed: false,
                })
                .collect(),
            budget_exhausted: true,
            spent_usd: 0.99,
            ..runner::Ran::default()
        };
        let CapReached { refused, message, .. } =
            cap_reached(&ran, Cap::of(Some(1.0), None)).expect("the cap was reached");
        assert!(
            message.starts_with("the run failed: 4 call(s) were not sent"),
            "{message}"
        );
        assert_eq!(refused, 4, "recorded in the results, for a merge of shards");
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

        let unpriced = ShardBudget::new(SHARD, estimate(0.0, 100), &estimate(0.0, 40));
        assert!((unpriced.share - 0.4).abs() < 1e-12);
        let empty = ShardBudget::new(SHARD, estimate(0.0, 0), &estimate(0.0, 0));
        assert_eq!(empty.share, 0.0);
    }

    /// Jobs of model `m` ($1 per thousand tokens in and out), case `i` of each.
    fn priced_jobs(cases: usize) -> (Vec<Job>, PriceTable) {
        use crate::chat::{Message, Role};
        let jobs = (0..cases)
            .map(|i| Job {
                experiment: 0,
                case: crate::plan::narrow(i),
                arm: Arm::Candidate,
                repeat: 0,
                provider: "p".into(),
                fallbacks: Default::default(),
                retime: false,
                request: Ok(crate::providers::Request::new(
                    std::sync::Arc::new(crate::providers::Settings {
                        max_tokens: Some(256),
                        ..crate::providers::Settings::of("m")
                    }),
                    vec![Message {
                        role: Role::User,
                        content: format!("case {i}").into(),
                    }]
                    .into(),
                    i as u64,
                )),
            })
            .collect();
        let price = crate::suite::Price {
            input: 1000.0,
            cached_input: None,
            output: 1000.0,
        };
        (
            jobs,
            PriceTable::new(&std::collections::BTreeMap::from([("m".to_owned(), price)])),
        )
    }

    /// Every shard computes the same whole, at the rates its calls are sent at (a batch API's
    /// half price for the batched ones), and the shards' shares add up to one.
    #[test]
    fn the_whole_is_the_same_in_every_shard_batched_or_not() {
        let (jobs, prices) = priced_jobs(10);
        // Half the jobs go through a batch API.
        let batched: Vec<bool> = (0..10).map(|i| i < 5).collect();
        let shard = |index: u32, batched: Option<&[bool]>| {
            ShardBudget::of(Shard { index, count: 2 }, &jobs, batched, &[], &prices, |j| {
                j.case % 2 + 1 == index
            })
        };
        let listed = plan::estimate(&jobs, &prices).usd;
        for batched in [None, Some(&batched[..])] {
            let (one, two) = (shard(1, batched), shard(2, batched));
            assert_eq!(one.whole, two.whole);
            assert!((one.share + two.share - 1.0).abs() < 1e-12);
            let expected = match batched {
                None => listed,
                // Five of ten calls, alike in size, at half price.
                Some(_) => listed * 0.75,
            };
            assert!(
                (one.whole.usd - expected).abs() < 1e-9 * expected,
                "{} vs {expected}",
                one.whole.usd
            );
        }
    }

    /// A provider of a kind, answering nothing (the check reads only the kind).
    struct Kind(&'static str);

    #[async_trait::async_trait]
    impl crate::providers::Provider for Kind {
        fn kind(&self) -> &'static str {
            self.0
        }

        async fn complete(
            &self,
            _request: &crate::providers::Request,
        ) -> Result<crate::providers::Response, crate::providers::ProviderError> {
            unreachable!("the check sends nothing")
        }
    }

    /// Under a cap, a model no table prices is refused when any provider that bills it would
    /// be sent it: the job's own, or one of its fallbacks (sent the same model, priced as it
    /// is: a reviewer's failing `exec` fell back to a billed server, uncapped). `exec` and
    /// `mock` alone bill nobody.
    #[test]
    fn an_unpriced_model_a_billed_provider_or_fallback_may_be_sent_is_refused() {
        let endpoint = |kind: &'static str| runner::Endpoint {
            provider: std::sync::Arc::new(Kind(kind)),
            concurrency: 1,
            timeout: std::time::Duration::from_secs(1),
            max_retries: 0,
            requests_per_minute: None,
            tokens_per_minute: None,
            cache_identity: kind.to_owned(),
        };
        let endpoints: std::collections::BTreeMap<String, runner::Endpoint> =
            [("local", "exec"), ("offline", "mock"), ("sim", "openai-compatible")]
                .into_iter()
                .map(|(name, kind)| (name.to_owned(), endpoint(kind)))
                .collect();
        let job = |provider: &str, fallbacks: &[&str], model: &str| Job {
            experiment: 0,
            case: 0,
            arm: Arm::Candidate,
            repeat: 0,
            provider: provider.into(),
            fallbacks: fallbacks.iter().map(|f| crate::results::Name::from(*f)).collect(),
            retime: false,
            request: Ok(crate::providers::Request::new(
                std::sync::Arc::new(crate::providers::Settings::of(model)),
                Vec::new().into(),
                0,
            )),
        };
        let prices = PriceTable::new(&Default::default());
        let check = |jobs: &[Job]| unpriced_under_cap(jobs.iter(), &endpoints, &prices, 0.05, "promptgate.yaml");
        assert!(check(&[job("local", &[], "llama-3-70b"), job("offline", &[], "llama-3-70b")]).is_ok());
        assert!(check(&[job("sim", &[], "gpt-4o-mini")]).is_ok(), "a priced model");
        for jobs in [
            vec![job("sim", &[], "llama-3-70b")],
            vec![job("local", &["sim"], "llama-3-70b")],
        ] {
            let message = check(&jobs).expect_err("unpriced under a cap").to_string();
            assert!(
                message.contains("`llama-3-70b` has no price, and `budget.max_usd` caps the run at $0.05"),
                "{message}"
            );
        }
    }
}
