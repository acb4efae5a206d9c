//! Pairs measured under different conditions, measured again together.
//!
//! A warm response cache answers one arm of a pair without a call (usually the baseline: its
//! prompt ran on an earlier push), so a provider's bad minutes during the run (rate limits,
//! 5xx, timeouts) fall on the other arm alone: 6 candidate calls of 40 failing with 503 read as
//! an `error_rate` regression at p = 0.031, and as `pass_rate` failures, though the change did
//! nothing. Leaving such failures out would hide the ones a change causes every time (a server's
//! 500 on an overflowing context); so instead each pair with one arm failed that way and the
//! other answered without a call is sent again, both arms, at the end of the run: the pair is
//! then measured under one provider, as every pair with both arms sent is.
//!
//! What this costs, and what it cannot do:
//! - For the failed call it is one more round of retries, later: a call fails when every
//!   attempt the run made failed, as with `max_retries`. A failure the change causes every time
//!   fails again and counts; one it causes now and then (a longer prompt timing out on 15% of
//!   its sends) must fail twice, as it must fail every retry, so it weighs less than on a cold
//!   cache, where both arms are sent once. The first failure is in the call's `attempts`.
//! - When nothing is wrong with the change, the choice leans neither way: the provider fails a
//!   re-sent pair in the candidate alone as often as in the baseline alone.
//! - An interrupted run's calls, replayed from its journal on resume, were measured then: a pair
//!   with one of them and one call of this run (either failing) is measured again; a pair whose
//!   two calls that run made is kept, as a pair both of whose calls this run made is.
//! - The re-sent calls are not in the plan's estimate; the budget's cap still holds, and a pair
//!   it refuses keeps its first measurement.
//! - What the replaced calls were paid (a journal-replayed answer, the judge calls on a replaced
//!   output) stays in the run's spend ([`crate::results::Replaced`]); a replaced outcome the
//!   journal gave back is no longer counted as resumed.

use super::{CallError, Job, Outcome, Ran};
use crate::plan::Arm;
use crate::providers::pricing::PriceTable;

/// Answered without a call in this run: from the response cache, or from the journal of an
/// interrupted run.
pub const CACHED: u8 = 1;
/// Failed in a way the provider's state may explain: rate limited, a 5xx or a dropped
/// connection, a timeout (retries exhausted).
pub const MAY_PASS: u8 = 2;
/// This job's outcome was replayed from the journal of an interrupted run: it counts in
/// [`Ran::resumed`] (an identical job following it does not).
pub const REPLAYED: u8 = 4;
/// Answered by a call of this run, or of the interrupted run it resumes.
pub const ANSWERED: u8 = 8;
/// Answered by the response cache: measured by an earlier run.
pub const EARLIER: u8 = 16;
/// Measured by the interrupted run this one resumes (answered, failed, or from the cache then).
pub const INTERRUPTED: u8 = 32;

/// How an outcome put in the run's results was measured: [`CACHED`] and [`EARLIER`] for a
/// cache hit, [`ANSWERED`], [`MAY_PASS`], or 0 (another failure, or not run).
pub fn mark(outcome: &Outcome) -> u8 {
    match &outcome.result {
        Ok(_) if outcome.cached => CACHED | EARLIER,
        Ok(_) => ANSWERED,
        Err(error) if may_pass(error) => MAY_PASS,
        _ => 0,
    }
}

/// The mark of an outcome the journal gave back, from its [`mark`] as the interrupted run
/// measured it: an answer needed no call in this run.
pub fn replayed(mark: u8) -> u8 {
    let answered = if mark & (CACHED | ANSWERED) != 0 { CACHED } else { 0 };
    mark | answered | REPLAYED | INTERRUPTED
}

/// When an outcome was measured: 0 in this run, 1 in an earlier one (the response cache, in
/// this run or the interrupted one), 2 in the interrupted run this one resumes.
fn measured_when(mark: u8) -> u8 {
    if mark & EARLIER != 0 {
        1
    } else if mark & INTERRUPTED != 0 {
        2
    } else {
        0
    }
}

fn may_pass(error: &CallError) -> bool {
    match error {
        CallError::RateLimited { .. } | CallError::Transient { .. } | CallError::Timeout { .. } => true,
        CallError::Fallbacks { failures } => failures.iter().all(|(_, e)| may_pass(e)),
        _ => false,
    }
}

/// Lets go of each job's rendered messages once nothing may send it again (the runner's
/// part of a run's memory: the messages are the largest thing a planned job holds), and gives
/// the freed pages back every tenth of the jobs (at least [`LettingGo::RELEASE_EVERY`]): the
/// calls' buffers are made on the runtime's threads, in heaps of their own, and would not reuse
/// them. Each release walks the whole heap, so a larger run releases as often, not more.
pub(super) struct LettingGo {
    /// Per job, whether its outcome is in and did not fail in a way that may pass; empty when
    /// an outcome was replayed from a journal, and then nothing is let go of. Without one, a
    /// pair is sent again only when one call came from the cache and the other failed in a way
    /// that may pass ([`uneven`]): a job the cache answered waits for the other call of its
    /// pair (the job beside it in the plan, `plan::jobs`), and goes with it.
    done: Vec<bool>,
    every: usize,
    since_release: usize,
}

impl LettingGo {
    const RELEASE_EVERY: usize = 10_000;

    pub(super) fn new(nothing_replayed: bool, jobs: usize) -> Self {
        LettingGo {
            done: if nothing_replayed {
                vec![false; jobs]
            } else {
                Vec::new()
            },
            every: (jobs / 10).max(Self::RELEASE_EVERY),
            since_release: 0,
        }
    }

    /// Job `index` (and its `followers`, measured as it was) settled; `marks` are the jobs'.
    pub(super) fn settled(&mut self, jobs: &mut [Job], index: usize, marks: &[u8], followers: Option<&Vec<usize>>) {
        let mark = marks.get(index).copied().unwrap_or(MAY_PASS);
        if self.done.is_empty() || mark & MAY_PASS != 0 {
            return;
        }
        self.done[index] = true;
        let partner = pair_of(jobs, index).filter(|&p| self.done[p]);
        if let Some(p) = partner
            && marks[p] & CACHED != 0
        {
            // It waited for this one, which did not fail in a way that may pass.
            self.let_go(jobs, p, None);
        }
        if mark & CACHED == 0 || partner.is_some() {
            self.let_go(jobs, index, followers);
        }
    }

    fn let_go(&mut self, jobs: &mut [Job], index: usize, followers: Option<&Vec<usize>>) {
        for &i in std::iter::once(&index).chain(followers.into_iter().flatten()) {
            if let Some(job) = jobs.get_mut(i) {
                job.let_go_of_messages();
            }
        }
        self.since_release += 1;
        if self.since_release == self.every {
            self.since_release = 0;
            crate::allocator::release();
        }
    }
}

/// The other call of job `index`'s pair when it is beside it, as a plan puts them: the same
/// experiment, case and repeat, the other arm.
fn pair_of(jobs: &[Job], index: usize) -> Option<usize> {
    let job = jobs.get(index)?;
    let beside = [index.checked_sub(1), index.checked_add(1)];
    beside.into_iter().flatten().find(|&i| {
        jobs.get(i).is_some_and(|other| {
            (other.experiment, other.case, other.repeat) == (job.experiment, job.case, job.repeat)
                && other.arm != job.arm
        })
    })
}

/// Sends each pair's calls in an order of its own: `to_run` (job indices in the plan's order,
/// where a pair's baseline comes just before its candidate) with the two calls of each pair
/// swapped when its request's seed is odd — a coin the plan already tossed (a SHA-256 of the
/// experiment, case and repeat), the same in every run. A provider that serves the second of
/// two alike requests faster or cheaper (a warm prefix cache, a reused connection, a queue)
/// then favours neither arm; sent always baseline first, the candidate took that advantage
/// in every pair. Outcomes stay in the jobs' order, so nothing downstream sees the swap.
pub fn alternate(jobs: &[Job], to_run: &mut [u32]) {
    let mut at = 0;
    while at + 1 < to_run.len() {
        let (first, second) = (to_run[at] as usize, to_run[at + 1] as usize);
        let paired = second == first + 1 && pair_of(jobs, first) == Some(second);
        if paired {
            if jobs[first].request.as_ref().is_ok_and(|r| r.seed & 1 == 1) {
                to_run.swap(at, at + 1);
            }
            at += 2;
        } else {
            at += 1;
        }
    }
}

/// The pairs, as `[baseline, candidate]` job indices, one of whose calls failed in a way that
/// may pass while the other was answered, measured at another time: one from the cache or an
/// interrupted run's journal, the other in this run; or one from the cache, the other from the
/// journal. Two calls an interrupted run made, or two this run made, were measured together.
///
/// Only a pair with a call that may pass can be uneven, and in a run that goes well such calls
/// are few: only their places are looked up (a table of every baseline was about 30 MB at a
/// million calls, and that run's peak). When most calls failed so (an outage), the places and
/// the table together hold about twice what the table alone did.
pub fn uneven(jobs: &[Job], marks: &[u8]) -> Vec<[usize; 2]> {
    let answered = |m: u8| m & (CACHED | ANSWERED) != 0;
    let failed = |m: u8| m & MAY_PASS != 0;
    let place = |job: &Job| (job.experiment, job.case, job.repeat);
    let failing: std::collections::HashSet<_> = jobs
        .iter()
        .zip(marks)
        .filter(|&(_, &m)| failed(m))
        .map(|(job, _)| place(job))
        .collect();
    if failing.is_empty() {
        return Vec::new();
    }
    let mut baselines = std::collections::HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        if job.arm == Arm::Baseline && failing.contains(&place(job)) {
            baselines.insert(place(job), index);
        }
    }
    let mut pairs = Vec::new();
    for (index, job) in jobs.iter().enumerate() {
        if job.arm != Arm::Candidate {
            continue;
        }
        let Some(&baseline) = baselines.get(&place(job)) else {
            continue;
        };
        let (Some(&b), Some(&c)) = (marks.get(baseline), marks.get(index)) else {
            continue;
        };
        let one_failed = (failed(b) && answered(c)) || (answered(b) && failed(c));
        if one_failed && measured_when(b) != measured_when(c) {
            pairs.push([baseline, index]);
        }
    }
    pairs
}

/// The jobs measuring `pairs` again: each pair's baseline then candidate, both sent (never
/// answered from the cache or by an identical job).
pub fn again(jobs: &[Job], pairs: &[[usize; 2]]) -> Vec<Job> {
    pairs
        .iter()
        .flatten()
        .map(|&index| Job {
            retime: true,
            ..jobs[index].clone()
        })
        .collect()
}

impl Ran {
    /// Puts what `batch` (the jobs [`again`] made of `pairs`) measured in place of the pairs'
    /// outcomes and of the judge calls on them. A re-sent call's attempts add to the first
    /// measurement's, so every send is counted; what the replaced calls were paid (at `prices`;
    /// `jobs` are the run's) stays in [`Ran::replaced`]. A pair the batch could not measure
    /// whole (the budget's cap refused a call; the run ended first) keeps its first
    /// measurement, and the run is not stopped by the cap for it: nothing of the run's own was
    /// refused. Fails only when stowed outcomes cannot be read.
    pub fn remeasured(
        &mut self,
        pairs: &[[usize; 2]],
        mut batch: Ran,
        jobs: &[Job],
        prices: &PriceTable,
    ) -> std::io::Result<()> {
        batch.unstow()?;
        let unmeasured = |o: &Outcome| {
            matches!(
                o.result,
                Err(CallError::BudgetRefused { .. } | CallError::Interrupted { .. } | CallError::NotRun)
            )
        };
        // Per position in the batch, the run's index it replaces (`None`: kept as it was).
        let mut at: Vec<Option<usize>> = Vec::with_capacity(2 * pairs.len());
        let mut new = batch.outcomes.into_iter().zip(batch.marks);
        for pair in pairs {
            let (Some(b), Some(c)) = (new.next(), new.next()) else {
                break;
            };
            if unmeasured(&b.0) || unmeasured(&c.0) {
                at.extend([None, None]);
                continue;
            }
            at.extend(pair.map(Some));
            for (index, (mut outcome, mark)) in pair.iter().copied().zip([b, c]) {
                let old = match &mut self.stowed {
                    Some(stowed) => stowed.take(index)?,
                    None => std::mem::replace(&mut self.outcomes[index], super::not_sent(CallError::NotRun)),
                };
                self.cache_hits = self.cache_hits.saturating_sub(usize::from(old.cached));
                self.fallbacks = self.fallbacks.saturating_sub(usize::from(old.fell_back));
                self.cache_hits += usize::from(outcome.cached);
                self.fallbacks += usize::from(outcome.fell_back);
                let replayed = self.marks.get(index).is_some_and(|m| m & REPLAYED != 0);
                self.resumed = self.resumed.saturating_sub(usize::from(replayed));
                self.replaced.generation_usd += jobs.get(index).map_or(0.0, |j| old.paid(prices, j.model()));
                outcome.attempts += old.attempts;
                match &mut self.stowed {
                    Some(stowed) => stowed.hold(index, outcome),
                    None => self.outcomes[index] = outcome,
                }
                if let Some(m) = self.marks.get_mut(index) {
                    *m = mark;
                }
            }
        }
        // The judge calls on a replaced outcome go with it; the new ones take their place.
        let replaced: std::collections::HashSet<usize> = at.iter().flatten().copied().collect();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.derived)
            .into_iter()
            .partition(|d| replaced.contains(&d.parent));
        self.derived = kept;
        for d in gone {
            self.resumed = self.resumed.saturating_sub(usize::from(d.replayed));
            let paid = d.outcome.paid(prices, d.job.model());
            if d.job.embeds() {
                self.replaced.embedding_usd += paid;
            } else {
                self.replaced.judge_usd += paid;
            }
        }
        self.derived.extend(batch.derived.into_iter().filter_map(|mut d| {
            d.parent = (*at.get(d.parent)?)?;
            // A judge call on a new outcome the cap refused stops the run as any refusal does.
            if d.outcome.result.as_ref().is_err_and(CallError::is_budget_refusal) {
                self.refused += 1;
                self.budget_exhausted = true;
            }
            Some(d)
        }));
        let kept_first = at.iter().filter(|a| a.is_none()).count() / 2;
        if kept_first > 0 {
            eprintln!(
                "promptgate: {kept_first} pair(s) could not be measured again (the budget's cap, or the run ended) and keep their first measurement"
            );
        }
        self.remeasured += replaced.len() / 2;
        self.replaced.add(batch.replaced);
        self.retries += batch.retries;
        self.rate_limited += batch.rate_limited;
        self.resumed += batch.resumed;
        self.interrupted |= batch.interrupted;
        self.batches_pending.extend(batch.batches_pending);
        // The runner's spend is the run's so far, every earlier batch included.
        self.spent_usd = batch.spent_usd;
        Ok(())
    }
}

/// Measures again, both arms at once, the pairs [`uneven`] finds in `ran` (what `jobs` ran),
/// through `run`: the run's runner, so its budget, journal and limits hold. Nothing when the run
/// was interrupted or stopped by the budget (its verdict is an error already).
pub fn measure_again(
    ran: &mut Ran,
    jobs: &[Job],
    prices: &PriceTable,
    run: &dyn Fn(&mut [Job]) -> anyhow::Result<Ran>,
) -> anyhow::Result<()> {
    if ran.interrupted || ran.budget_exhausted {
        return Ok(());
    }
    let pairs = uneven(jobs, &ran.marks);
    if pairs.is_empty() {
        return Ok(());
    }
    eprintln!(
        "promptgate: {} pair(s) had one call fail with a rate limit, a server error or a timeout while the other came from the cache: sending both again, so each pair is measured under one provider",
        pairs.len()
    );
    let batch = run(&mut again(jobs, &pairs))?;
    ran.remeasured(&pairs, batch, jobs, prices)
        .map_err(|e| anyhow::anyhow!("cannot read back the outcomes the run wrote to {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::JudgeTag;

    fn job(case: usize, arm: Arm) -> Job {
        Job {
            experiment: 0,
            case: crate::plan::narrow(case),
            arm,
            repeat: 0,
            provider: "sim".into(),
            fallbacks: Default::default(),
            request: Err("not needed".to_owned()),
            retime: false,
        }
    }

    /// Cases 0–3, each a baseline then its candidate.
    fn pairs_of(cases: usize) -> Vec<Job> {
        (0..cases)
            .flat_map(|c| [job(c, Arm::Baseline), job(c, Arm::Candidate)])
            .collect()
    }

    /// Each pair goes out in its own order, by its seed's coin, the same in every run; a job
    /// without its pair beside it (a new experiment's candidate, a follower sent by its leader)
    /// keeps its place.
    #[test]
    fn each_pair_goes_out_in_the_order_its_seed_says() {
        let request = |seed: u64| {
            Ok(crate::providers::Request::new(
                std::sync::Arc::new(crate::providers::Settings::of("m")),
                std::sync::Arc::from([]),
                seed,
            ))
        };
        // Cases 0..200 in pairs, seeds as the plan derives them (uniform bits); then a lone
        // candidate (case 200).
        let mut jobs = pairs_of(200);
        for job in &mut jobs {
            // SplitMix64 of the case: bits as uniform as the plan's SHA-256.
            job.request = request(crate::stats::SplitMix64::new(u64::from(job.case)).next_u64());
        }
        jobs.push(Job {
            request: request(1),
            ..job(200, Arm::Candidate)
        });
        let mut to_run: Vec<u32> = (0..jobs.len() as u32).collect();
        // Case 7's baseline came from the cache: its candidate is alone in `to_run`.
        to_run.retain(|&i| i != 14);
        alternate(&jobs, &mut to_run);
        let first = |case: usize| {
            to_run
                .iter()
                .position(|&i| jobs[i as usize].case as usize == case)
                .unwrap()
        };
        let mut candidate_first = 0;
        for case in (0..200).filter(|&c| c != 7) {
            let at = first(case);
            let (a, b) = (to_run[at] as usize, to_run[at + 1] as usize);
            assert_eq!((jobs[a].case, jobs[b].case), (case as u32, case as u32));
            let odd = jobs[a].request.as_ref().unwrap().seed & 1 == 1;
            assert_eq!(jobs[a].arm == Arm::Candidate, odd, "case {case}");
            candidate_first += usize::from(odd);
        }
        // About half each way: 199 fair coins fall within 70..130 but for p < 1e-4.
        assert!((70..130).contains(&candidate_first), "{candidate_first} of 199");
        assert_eq!(to_run[first(7)], 15, "a lone candidate keeps its place");
        assert_eq!(*to_run.last().unwrap() as usize, jobs.len() - 1);
    }

    fn failed(error: CallError) -> Outcome {
        Outcome {
            attempts: 3,
            ..super::super::not_sent(error)
        }
    }

    fn cached(text: &str) -> Outcome {
        Outcome {
            cached: true,
            attempts: 0,
            ..Outcome::answered(text, "sim")
        }
    }

    /// Case 0's uneven pair as the run first measured it: the baseline from the cache, the
    /// candidate failed with a 503 after three attempts.
    fn uneven_pair() -> [Outcome; 2] {
        [
            cached("base 0"),
            failed(CallError::Transient {
                message: "HTTP 503".to_owned(),
            }),
        ]
    }

    /// Case 0's pair measured again, both answered.
    fn measured_again() -> Vec<Outcome> {
        vec![
            Outcome::answered("base 0 again", "sim"),
            Outcome::answered("cand 0", "sim"),
        ]
    }

    #[test]
    fn a_failure_the_provider_may_explain_is_marked_and_one_the_request_causes_is_not() {
        let transient = CallError::Transient {
            message: "HTTP 503".to_owned(),
        };
        assert_eq!(mark(&cached("a")), CACHED | EARLIER);
        assert_eq!(mark(&Outcome::answered("a", "sim")), ANSWERED, "measured in this run");
        assert_eq!(mark(&failed(transient.clone())), MAY_PASS);
        assert_eq!(mark(&failed(CallError::Timeout { after_ms: 1 })), MAY_PASS);
        assert_eq!(
            mark(&failed(CallError::RateLimited {
                message: "429".to_owned()
            })),
            MAY_PASS
        );
        let permanent = CallError::Permanent {
            message: "maximum context length exceeded".to_owned(),
        };
        assert_eq!(mark(&failed(permanent.clone())), 0);
        assert_eq!(mark(&failed(CallError::BudgetRefused { cap_usd: 1.0 })), 0);
        let chain = |second: CallError| CallError::Fallbacks {
            failures: vec![("a".to_owned(), transient.clone()), ("b".to_owned(), second)],
        };
        assert_eq!(mark(&failed(chain(transient.clone()))), MAY_PASS);
        assert_eq!(mark(&failed(chain(permanent))), 0);
    }

    /// Only a pair with one arm answered and the other failed that way, measured at different
    /// times, is uneven: two calls sent in this run (failed or not), or two an interrupted run
    /// made, were measured under one provider.
    #[test]
    fn only_pairs_measured_under_different_conditions_are_chosen() {
        let hit = CACHED | EARLIER;
        // (baseline, candidate), and whether the pair is measured again.
        let pairs = [
            ((hit, MAY_PASS), true),                           // a warm baseline, a failed candidate
            ((MAY_PASS, hit), true),                           // and the other way round
            ((ANSWERED, MAY_PASS), false),                     // both sent in this run
            ((hit, hit), false),                               // both from the cache
            ((hit, ANSWERED), false),                          // both answered
            ((hit, 0), false),                                 // failed for its request's sake
            ((replayed(ANSWERED), MAY_PASS), true),            // the interrupted run's answer
            ((replayed(MAY_PASS), ANSWERED), true),            // the interrupted run's failure
            ((replayed(ANSWERED), replayed(MAY_PASS)), false), // both the interrupted run's
            ((hit, replayed(MAY_PASS)), true),                 // the cache's, the interrupted run's
            ((replayed(0), MAY_PASS), false),                  // its other failure
            ((replayed(hit), replayed(MAY_PASS)), true),       // its cache hit and its failure
            ((replayed(ANSWERED) & !REPLAYED, replayed(MAY_PASS)), false), // following a replayed job
        ];
        let jobs = pairs_of(pairs.len());
        let marks: Vec<u8> = pairs.iter().flat_map(|((b, c), _)| [*b, *c]).collect();
        let expected: Vec<[usize; 2]> = (0..pairs.len())
            .filter(|&i| pairs[i].1)
            .map(|i| [2 * i, 2 * i + 1])
            .collect();
        assert_eq!(uneven(&jobs, &marks), expected);
        // Found wherever the plan puts a pair's calls: here every baseline first.
        let split: Vec<usize> = (0..jobs.len()).step_by(2).chain((1..jobs.len()).step_by(2)).collect();
        let split_jobs: Vec<Job> = split.iter().map(|&i| jobs[i].clone()).collect();
        let split_marks: Vec<u8> = split.iter().map(|&i| marks[i]).collect();
        let split_expected: Vec<[usize; 2]> = expected.iter().map(|[b, c]| [b / 2, pairs.len() + c / 2]).collect();
        assert_eq!(uneven(&split_jobs, &split_marks), split_expected);
        let again = again(&jobs, &[[2, 3]]);
        assert_eq!(again.len(), 2);
        assert!(again.iter().all(|j| j.retime));
        assert_eq!(
            (again[0].case, again[0].arm, again[1].arm),
            (1, Arm::Baseline, Arm::Candidate)
        );
    }

    /// The new measurement takes the old one's place, with the judge calls on it; the attempts
    /// of both are counted, and a baseline no longer from the cache is no cache hit.
    #[test]
    fn a_pair_measured_again_replaces_its_outcomes_and_their_judge_calls() {
        let derived = |parent: usize, text: &str| super::super::Derived {
            parent,
            tag: JudgeTag::default(),
            job: job(parent / 2, Arm::Candidate),
            outcome: Outcome::answered(text, "judge"),
            replayed: false,
        };
        let mut ran = Ran {
            outcomes: [
                uneven_pair().to_vec(),
                vec![cached("base 1"), Outcome::answered("cand 1", "sim")],
            ]
            .concat(),
            marks: vec![CACHED, MAY_PASS, CACHED, 0],
            cache_hits: 2,
            derived: vec![derived(0, "old judgement of base 0"), derived(3, "kept")],
            ..Ran::default()
        };
        let batch = Ran {
            outcomes: measured_again(),
            marks: vec![0, 0],
            derived: vec![derived(0, "new judgement of base 0"), derived(1, "judgement of cand 0")],
            retries: 1,
            ..Ran::default()
        };
        ran.remeasured(&[[0, 1]], batch, &pairs_of(1), &PriceTable::default())
            .unwrap();
        let text = |o: &Outcome| o.result.as_ref().map(|r| r.text.clone()).unwrap_or_default();
        assert_eq!(
            ran.outcomes.iter().map(text).collect::<Vec<_>>(),
            ["base 0 again", "cand 0", "base 1", "cand 1"]
        );
        assert_eq!(ran.outcomes[1].attempts, 1 + 3);
        assert_eq!((ran.cache_hits, ran.remeasured, ran.retries), (1, 1, 1));
        assert_eq!(ran.marks, [0, 0, CACHED, 0]);
        assert_eq!(ran.outcomes[0].attempts, 1, "the baseline was not sent before");
        let judged: Vec<(usize, String)> = ran.derived.iter().map(|d| (d.parent, text(&d.outcome))).collect();
        assert_eq!(
            judged,
            [
                (3, "kept".to_owned()),
                (0, "new judgement of base 0".to_owned()),
                (1, "judgement of cand 0".to_owned())
            ]
        );
    }

    /// A pair whose baseline the journal of an interrupted run gave back (paid then, with a
    /// judge call and an embedding on it): measured again, its replaced calls are no longer
    /// resumed ones, and what they were paid stays in the run's spend.
    #[test]
    fn what_a_replaced_replayed_measurement_was_paid_stays_in_the_spend() {
        use crate::providers::{Response, Usage};
        use crate::suite::Price;
        // $1 a million input tokens, $2 a million output: 1,000 in and 500 out cost $0.002.
        let prices = PriceTable::new(&std::collections::BTreeMap::from([(
            "gpt-4o-mini".to_owned(),
            Price {
                input: 1.0,
                cached_input: None,
                output: 2.0,
            },
        )]));
        let priced = |arm| Job {
            request: Ok(crate::providers::http::tests::request()),
            ..job(0, arm)
        };
        let jobs = [priced(Arm::Baseline), priced(Arm::Candidate)];
        let paid = |text: &str| Outcome {
            result: Ok(Response {
                text: text.to_owned(),
                usage: Usage {
                    input: 1_000,
                    cached_input: 0,
                    output: 500,
                },
                latency_ms: None,
            }),
            ..Outcome::answered(text, "sim")
        };
        let on_baseline = |embed: bool| {
            let mut job = priced(Arm::Baseline);
            if let Ok(request) = &mut job.request {
                request.embed = embed;
            }
            super::super::Derived {
                parent: 0,
                tag: JudgeTag::default(),
                job,
                outcome: paid("judged"),
                replayed: true,
            }
        };
        let [_, failed] = uneven_pair();
        let marks = vec![replayed(ANSWERED), MAY_PASS];
        assert_eq!(
            uneven(&jobs, &marks),
            [[0, 1]],
            "a replayed answer was not measured in this run"
        );
        let mut ran = Ran {
            outcomes: vec![paid("base 0 from the journal"), failed],
            marks,
            resumed: 3,
            derived: vec![on_baseline(false), on_baseline(true)],
            ..Ran::default()
        };
        let batch = Ran {
            outcomes: measured_again(),
            marks: vec![0, 0],
            ..Ran::default()
        };
        ran.remeasured(&[[0, 1]], batch, &jobs, &prices).unwrap();
        assert_eq!((ran.remeasured, ran.resumed), (1, 0));
        let cents = |usd: f64| (usd * 1e5).round() / 1e3;
        assert_eq!(
            [
                ran.replaced.generation_usd,
                ran.replaced.judge_usd,
                ran.replaced.embedding_usd
            ]
            .map(cents),
            [0.2, 0.2, 0.2]
        );
        let mut facts = crate::results::RunFacts {
            spend_usd: 1.0,
            ..Default::default()
        };
        facts.add_replaced(ran.replaced);
        assert_eq!(facts.replaced, ran.replaced, "recorded, for a merge to add up");
        assert_eq!(
            [facts.spend_usd, facts.judge_spend_usd, facts.embedding_spend_usd].map(cents),
            [100.6, 0.2, 0.2]
        );
    }

    /// A pair the budget's cap did not let be sent again keeps its first measurement, and the
    /// run is not stopped for it.
    #[test]
    fn a_pair_the_cap_refuses_keeps_its_first_measurement() {
        let mut ran = Ran {
            outcomes: uneven_pair().to_vec(),
            marks: vec![CACHED, MAY_PASS],
            cache_hits: 1,
            ..Ran::default()
        };
        let batch = Ran {
            outcomes: vec![
                Outcome::answered("base 0 again", "sim"),
                super::super::not_sent(CallError::BudgetRefused { cap_usd: 1.0 }),
            ],
            marks: vec![0, 0],
            refused: 1,
            budget_exhausted: true,
            ..Ran::default()
        };
        ran.remeasured(&[[0, 1]], batch, &pairs_of(1), &PriceTable::default())
            .unwrap();
        assert!(ran.outcomes[0].cached && ran.outcomes[1].result.is_err());
        assert_eq!(ran.outcomes[1].attempts, 3);
        assert_eq!(
            (ran.remeasured, ran.refused, ran.budget_exhausted, ran.cache_hits),
            (0, 0, false, 1)
        );
    }

    /// A judge call on a new outcome that the cap refused stops the run, as any refusal does.
    #[test]
    fn a_judge_call_the_cap_refuses_on_a_new_outcome_still_stops_the_run() {
        let mut ran = Ran {
            outcomes: uneven_pair().to_vec(),
            marks: vec![CACHED, MAY_PASS],
            ..Ran::default()
        };
        let batch = Ran {
            outcomes: measured_again(),
            marks: vec![0, 0],
            derived: vec![super::super::Derived {
                parent: 1,
                tag: JudgeTag::default(),
                job: job(0, Arm::Candidate),
                outcome: super::super::not_sent(CallError::BudgetRefused { cap_usd: 1.0 }),
                replayed: false,
            }],
            ..Ran::default()
        };
        ran.remeasured(&[[0, 1]], batch, &pairs_of(1), &PriceTable::default())
            .unwrap();
        assert_eq!((ran.remeasured, ran.refused, ran.budget_exhausted), (1, 1, true));
    }
}
