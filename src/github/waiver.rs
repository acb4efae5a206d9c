//! Waivers: a maintainer accepts a regression with the `promptgate:accept-regression` label or
//! a `/promptgate accept <reason>` comment. Who may waive is checked through the API (the
//! collaborator's `role_name`), never taken from the comment or the payload.
//!
//! A waiver names what it accepts. When it is given, the run it triggers binds it to the
//! results then published: that head commit, and each failing metric with its estimate and
//! interval ([`bind`]). A later push stays waived only while every regression it has is among
//! those and not worse beyond the interval it had ([`cover`]); a new or worse regression fails
//! again and says that the earlier waiver does not cover it.

use serde_json::Value;

use super::client::{Client, Purpose};
use super::event::PullRequest;
use super::state::Published;
use crate::error::Error;
use crate::format::short_sha;
use crate::results::{AcceptedRegression, Direction, ExperimentStatus, ExperimentVerdict, Results, Verdict, Waiver};

pub const LABEL: &str = "promptgate:accept-regression";
pub const COMMAND: &str = "/promptgate accept";

const PERMISSION: Purpose = Purpose {
    what: "read a commenter's permission on the repository",
    permission: "metadata: read",
};
const EVENTS: Purpose = Purpose {
    what: "list the pull request's events (who added a label)",
    permission: "issues: read",
};

/// The roles that may accept a regression or approve a run: the ones that can change branch
/// protection anyway.
const MAINTAINER_ROLES: [&str; 2] = ["admin", "maintain"];

/// A waiver as a maintainer gave it, before it is bound to any results.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Given {
    pub by: String,
    pub reason: String,
    /// `comment` or `label`.
    pub via: String,
    pub at: Option<String>,
    /// The comment's id, or the `labeled` issue event's.
    pub source_id: Option<u64>,
}

/// The waiver this run's own event gave: the `/promptgate accept` comment it created, or the
/// accept label its sender added. A job waits at most a day in GitHub's queue, so a time the
/// API gives such a waiver more than a day before GitHub's clock now cannot be when it was
/// given (a server that dates its fixtures, a mirror's skewed clock): it is taken as given now.
/// Not in a re-run, which is handed its first attempt's event however old.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fresh {
    comment: Option<u64>,
    /// The sender of a `labeled` event for the accept label.
    labeled_by: Option<String>,
}

/// How long after an event GitHub may still deliver it, at most, as this run takes it.
const EVENT_DELAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

impl Fresh {
    pub fn of(trigger: &super::event::Trigger, rerun: bool) -> Fresh {
        use super::event::Trigger;
        if rerun {
            return Fresh::default();
        }
        match trigger {
            Trigger::PullRequestComment { created, .. } => Fresh {
                comment: *created,
                labeled_by: None,
            },
            Trigger::PullRequest { event, .. }
                if event.action == "labeled" && event.label.as_deref() == Some(LABEL) =>
            {
                Fresh {
                    comment: None,
                    labeled_by: Some(event.sender.clone()),
                }
            }
            _ => Fresh::default(),
        }
    }

    /// Whether `given` is the waiver this event gave: the comment it created, or a label its
    /// sender added (the events list may not show the newest adder yet).
    pub fn gave(&self, given: &Given) -> bool {
        match given.via.as_str() {
            "comment" => self.comment.is_some() && given.source_id == self.comment,
            "label" => self
                .labeled_by
                .as_deref()
                .is_some_and(|by| !by.is_empty() && by == given.by),
            _ => false,
        }
    }

    /// When `given` was given, in UTC as the results' time is written (the two compare as
    /// text): its own time, or `now` (GitHub's clock) for this event's waiver whose time is
    /// more than a day before it or missing.
    pub fn given_at(&self, given: &Given, now: &str) -> Option<String> {
        let at = given.at.as_deref().and_then(crate::ledger::parse_rfc3339);
        if !self.gave(given) {
            return at.map(crate::ledger::rfc3339).or_else(|| given.at.clone());
        }
        let plausible = match (at, crate::ledger::parse_rfc3339(now)) {
            (Some(at), Some(now)) => now.duration_since(at).map_or(true, |ago| ago <= EVENT_DELAY),
            _ => false,
        };
        match at {
            Some(at) if plausible => Some(crate::ledger::rfc3339(at)),
            _ => Some(now.to_owned()),
        }
    }
}

/// The newest waiver a maintainer gave on the pull request: the newest `/promptgate accept`
/// comment or accept label (while the label is on the pull request) whose author is an admin or
/// maintainer. `comments` are the PR's comments in API order (oldest first).
pub async fn find(client: &Client, pr: &PullRequest, comments: &[Value], bot: &str) -> Result<Option<Given>, Error> {
    let mut candidates: Vec<Given> = Vec::new();
    for c in comments {
        let who = super::author(c);
        let Some(reason) = c["body"].as_str().and_then(parse_command) else {
            continue;
        };
        if who.is_empty() || who == bot {
            continue;
        }
        // GitHub names a comment's author, not who edited it last, and anyone with write access
        // may edit another's comment: an edited one could put a waiver in a maintainer's name.
        if edited(c) {
            eprintln!(
                "promptgate: ignoring `{COMMAND}` in a comment by {} that was edited after it was written: give the waiver in a new comment",
                super::actions::inert(who)
            );
            continue;
        }
        // The contract's waiver is "a `/promptgate accept` comment": a reason is asked for and
        // recorded, and a bare command is a waiver all the same, recorded as given without one.
        let reason = if reason.is_empty() {
            format!("`{COMMAND}` (no reason given)")
        } else {
            reason
        };
        candidates.push(Given {
            by: who.to_owned(),
            reason,
            via: "comment".to_owned(),
            at: c["created_at"].as_str().map(str::to_owned),
            source_id: c["id"].as_u64(),
        });
    }
    if pr.labels.iter().any(|l| l == LABEL)
        && let Some(event) = labeled_event(client, pr, LABEL).await?
    {
        candidates.push(Given {
            by: event.by,
            reason: format!("label `{LABEL}`"),
            via: "label".to_owned(),
            at: event.at,
            source_id: Some(event.id),
        });
    }
    // Newest first: RFC 3339 UTC times, as GitHub writes them, sort as text.
    candidates.sort_by(|a, b| b.at.cmp(&a.at));
    for given in candidates {
        if is_maintainer(client, &given.by).await? {
            return Ok(Some(given));
        }
        eprintln!(
            "promptgate: ignoring the waiver ({}) by {}: only admins and maintainers may accept a regression",
            given.via,
            super::actions::inert(&given.by)
        );
    }
    Ok(None)
}

/// Whether a comment was edited after it was written: `updated_at` more than two seconds after
/// `created_at` (GitHub may touch a new comment's `updated_at` a second or so after it is
/// written, and a server's two clock reads differ by microseconds; neither is an edit). The
/// slack was a minute, inside which a collaborator could edit a maintainer's fresh comment into
/// a waiver (the audit: edited 55 s after, it was taken as the maintainer's).
fn edited(comment: &Value) -> bool {
    let time = |key: &str| comment[key].as_str().and_then(crate::ledger::parse_rfc3339);
    match (time("created_at"), time("updated_at")) {
        (Some(created), Some(updated)) => updated.duration_since(created).is_ok_and(|later| later > EDIT_SLACK),
        _ => false,
    }
}

/// How much later than `created_at` a comment's `updated_at` may be without an edit.
const EDIT_SLACK: std::time::Duration = std::time::Duration::from_secs(2);

/// Who added `label` last, when, and the event's id.
pub struct Labeled {
    pub by: String,
    pub at: Option<String>,
    pub id: u64,
}

/// The pull request's issue events (labels added and removed, …), oldest first.
pub async fn issue_events(client: &Client, pr: &PullRequest) -> Result<Vec<Value>, Error> {
    client
        .get_all(&client.repo_route(&format!("/issues/{}/events", pr.number)), EVENTS)
        .await
}

/// The newest `labeled` event for `label` on the pull request.
pub async fn labeled_event(client: &Client, pr: &PullRequest, label: &str) -> Result<Option<Labeled>, Error> {
    Ok(newest_labeled(&issue_events(client, pr).await?, label))
}

/// The newest `labeled` event for `label` among `events`.
pub fn newest_labeled(events: &[Value], label: &str) -> Option<Labeled> {
    let event = events
        .iter()
        .rev()
        .find(|e| e["event"] == "labeled" && e["label"]["name"] == label)?;
    Some(Labeled {
        by: event["actor"]["login"].as_str()?.to_owned(),
        at: event["created_at"].as_str().map(str::to_owned),
        id: event["id"].as_u64().unwrap_or(0),
    })
}

/// Whether `events` (oldest first, as the API lists them) hold the `labeled` event `id` for
/// `label`, by `by`, with no `unlabeled` event for `label` after it: a label removed and added
/// again by someone else does not bring back what the first adder gave. A recorded id of 0 (an
/// event listed without one) stands for the newest `labeled` event by `by`.
pub fn label_event_stands(events: &[Value], label: &str, id: u64, by: &str) -> bool {
    let labeled_by = |e: &Value| e["event"] == "labeled" && e["label"]["name"] == label && e["actor"]["login"] == by;
    let at = if id == 0 {
        events.iter().rposition(labeled_by)
    } else {
        events
            .iter()
            .position(|e| labeled_by(e) && e["id"].as_u64() == Some(id))
    };
    let Some(at) = at else {
        return false;
    };
    !events[at + 1..]
        .iter()
        .any(|e| e["event"] == "unlabeled" && e["label"]["name"] == label)
}

/// Whether a waiver the sticky comment's state records is confirmed by GitHub now: it is still
/// given ([`still_given`]), its source (the comment, or the label's `labeled` event) is by the
/// admin or maintainer it names, and they still are one. The state is a comment anyone with
/// write access can edit; this makes a planted waiver need a maintainer's real comment or label.
pub async fn confirmed(client: &Client, pr: &PullRequest, comments: &[Value], waiver: &Waiver) -> Result<bool, Error> {
    if !still_given(waiver, pr, comments) {
        return Ok(false);
    }
    let by_source = match (waiver.via.as_str(), waiver.source_id) {
        ("label", Some(id)) => label_event_stands(&issue_events(client, pr).await?, LABEL, id, &waiver.by),
        ("label", None) => false,
        _ => comments.iter().any(|c| {
            c["id"].as_u64().is_some() && c["id"].as_u64() == waiver.source_id && super::author(c) == waiver.by
        }),
    };
    Ok(by_source && is_maintainer(client, &waiver.by).await?)
}

/// The reason of a `/promptgate accept <reason>` comment (its first line), or `None`.
pub fn parse_command(body: &str) -> Option<String> {
    let first = body.trim_start().lines().next()?.trim();
    let rest = first.strip_prefix(COMMAND)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    let reason = rest.trim();
    // The reason is recorded in the comment, whose length GitHub limits: a long one is cut.
    Some(match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((end, _)) => format!("{}…", reason[..end].trim_end()),
        None => reason.to_owned(),
    })
}

/// The most characters of a waiver's reason the comment records.
const MAX_REASON_CHARS: usize = 500;

/// Whether `login` is an admin or maintainer of the repository, by the API's `role_name`.
pub async fn is_maintainer(client: &Client, login: &str) -> Result<bool, Error> {
    if client.is_dry_run() {
        return Ok(false);
    }
    let route = client.repo_route(&format!("/collaborators/{login}/permission"));
    match client.try_get(&route, PERMISSION).await? {
        Ok(answer) => {
            let role = answer["role_name"]
                .as_str()
                .or(answer["permission"].as_str())
                .unwrap_or("none");
            Ok(MAINTAINER_ROLES.contains(&role))
        }
        // Not a collaborator at all.
        Err(refusal) if refusal.status == 404 => Ok(false),
        Err(refusal) => Err(super::client::refused(
            super::client::Method::Get,
            &route,
            PERMISSION,
            refusal,
        )),
    }
}

/// What fails in `results`: a base that does not load, each failing metric of each failing
/// experiment, with its estimate and interval, or `*` for an experiment that fails as a whole.
pub fn regressions(results: &Results) -> Vec<AcceptedRegression> {
    let mut out = Vec::new();
    // Running without (part of) the baseline is accepted by name too: a waiver given for a
    // regression before the base broke does not cover it.
    if let Some(error) = &results.base_error {
        out.push(AcceptedRegression::base_not_loading(error));
    }
    for e in results
        .experiments
        .iter()
        .filter(|e| e.verdict == ExperimentVerdict::Fail)
    {
        let failing: Vec<AcceptedRegression> = e
            .metrics
            .iter()
            .filter(|m| m.fails_gate)
            .map(|m| AcceptedRegression {
                experiment: e.name.clone(),
                metric: m.name.clone(),
                direction: m.direction,
                estimate: m.delta,
                ci: m.ci,
            })
            .collect();
        if failing.is_empty() {
            out.push(AcceptedRegression {
                experiment: e.name.clone(),
                metric: if e.status == ExperimentStatus::Removed {
                    "*".to_owned()
                } else {
                    format!("* ({})", e.reason)
                },
                direction: Direction::Higher,
                estimate: None,
                ci: None,
            });
        } else {
            out.extend(failing);
        }
    }
    out
}

/// `regressions` as a waiver bound to untrusted results holds them: names, not numbers.
pub fn names_only(regressions: &[AcceptedRegression]) -> Vec<AcceptedRegression> {
    regressions
        .iter()
        .map(|a| AcceptedRegression {
            estimate: None,
            ci: None,
            ..a.clone()
        })
        .collect()
}

/// The waiver `given` for the results last published: it accepts exactly their regressions.
/// Results of untrusted code (a fork's artifact) lend it their regressions' names only: their
/// estimates and intervals are that code's word, and a bound taken from them would let a later
/// trusted evaluation's regression through, so nothing measured is covered by it.
pub fn bind(given: Given, published: &Published) -> Waiver {
    let accepted = published.regressions_to_waive();
    Waiver {
        by: given.by,
        reason: given.reason,
        via: given.via,
        waived: published.reason.clone(),
        at: given.at,
        commit: Some(published.sha.clone()),
        accepted,
        source_id: given.source_id,
    }
}

/// Whether `waiver` covers every regression of `now`: each must be among the accepted ones, in
/// the same direction, and not worse than the accepted interval's bad end (the estimate then,
/// without an interval). One accepted without a bound (a metric with no data then) covers only
/// a regression that still has no estimate. `Err` lists, one line each, what it does not cover.
pub fn cover(waiver: &Waiver, now: &[AcceptedRegression]) -> Result<(), Vec<String>> {
    let mut uncovered = Vec::new();
    for r in now {
        let Some(accepted) = waiver
            .accepted
            .iter()
            .find(|a| a.experiment == r.experiment && a.metric == r.metric)
        else {
            uncovered.push(format!("{} in {} (new)", r.metric, r.experiment));
            continue;
        };
        if r.direction != accepted.direction {
            uncovered.push(format!("{} in {} (its direction changed)", r.metric, r.experiment));
            continue;
        }
        if let (None, Some(_)) = (r.estimate, bad_end(accepted)) {
            uncovered.push(format!(
                "{} in {} (no data now; accepted as measured)",
                r.metric, r.experiment
            ));
            continue;
        }
        if let (Some(estimate), None) = (r.estimate, bad_end(accepted)) {
            uncovered.push(format!(
                "{} in {} (now measured at {}; accepted without an estimate)",
                r.metric,
                r.experiment,
                number(estimate)
            ));
            continue;
        }
        if let (Some(estimate), Some(bound)) = (r.estimate, bad_end(accepted)) {
            let worse = match accepted.direction {
                Direction::Higher => estimate < bound,
                Direction::Lower => estimate > bound,
            };
            if worse {
                uncovered.push(format!(
                    "{} in {} (worse: {} beyond the accepted {})",
                    r.metric,
                    r.experiment,
                    number(estimate),
                    number(bound)
                ));
            }
        }
    }
    if uncovered.is_empty() { Ok(()) } else { Err(uncovered) }
}

/// The bad end of an accepted regression's interval: the lowest plausible change for a
/// higher-is-better metric, the highest for a lower-is-better one.
fn bad_end(a: &AcceptedRegression) -> Option<f64> {
    match (a.ci, a.direction) {
        (Some([low, _]), Direction::Higher) => Some(low),
        (Some([_, high]), Direction::Lower) => Some(high),
        (None, _) => a.estimate,
    }
}

fn number(x: f64) -> String {
    let text = format!("{x:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

/// Whether what gave `waiver` is still there: the label on the pull request, or the comment.
pub fn still_given(waiver: &Waiver, pr: &PullRequest, comments: &[Value]) -> bool {
    match waiver.via.as_str() {
        "label" => pr.labels.iter().any(|l| l == LABEL),
        // The comment is still there, still says `/promptgate accept …`, and was not edited
        // since (an edit is no one's waiver: see `find`).
        _ => comments.iter().any(|c| {
            c["id"].as_u64().is_some()
                && c["id"].as_u64() == waiver.source_id
                && c["body"].as_str().and_then(parse_command).is_some()
                && !edited(c)
        }),
    }
}

/// Takes back a waiver results carry (an untrusted job's, which cannot waive its own verdict):
/// `waived` is again the verdict and reason its experiments give (`fail`, or `error` for a base
/// that does not load), so a waiver of ours can lift it as it would have the evaluation's.
/// Results whose experiments give neither were never waived by an evaluation: they `fail`.
pub fn withdraw(results: &mut Results) {
    results.waiver = None;
    if results.verdict == Verdict::Waived {
        let (verdict, reason) = crate::verdict::with_base_error(
            crate::verdict::overall_verdict(&results.experiments),
            results.base_error.as_deref(),
        );
        results.verdict = Verdict::Fail;
        if matches!(verdict, Verdict::Fail | Verdict::Error) {
            (results.verdict, results.reason) = (verdict, reason);
        }
    }
}

/// Applies a waiver to failing results (or to an `error` that is only the base's: its suite
/// does not load): `waived` when it covers them, else the verdict stays and the reason says what
/// the waiver does not cover.
pub fn apply(results: &mut Results, waiver: &Waiver) {
    if !crate::verdict::waivable(results) {
        return;
    }
    let commit = waiver.commit.as_deref().map_or("?", short_sha);
    // "failure accepted" when no metric regressed (a proof its gate requires was missing).
    let accepted = crate::report::words::accepted(crate::report::words::regressed(results));
    match cover(waiver, &regressions(results)) {
        Ok(()) => {
            eprintln!(
                "promptgate: {accepted} by {} ({}, for {commit})",
                super::actions::inert(&waiver.by),
                waiver.via
            );
            results.verdict = Verdict::Waived;
            results.reason = format!("{accepted} by {}: {}", waiver.by, waiver.reason);
            results.waiver = Some(waiver.clone());
        }
        Err(uncovered) => {
            results.reason = format!(
                "{}; the waiver by {} for {commit} does not cover {}",
                results.reason,
                waiver.by,
                uncovered.join(", ")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(body: &str, expected: Option<&str>) {
        assert_eq!(parse_command(body).as_deref(), expected);
    }

    #[test]
    fn commands() {
        check(
            "/promptgate accept judge is flaky on refunds",
            Some("judge is flaky on refunds"),
        );
        check(
            "  /promptgate accept   latency is fine\nmore text",
            Some("latency is fine"),
        );
        check("/promptgate accept", Some(""));
        let long = format!("/promptgate accept {}", "é".repeat(2_000));
        let reason = parse_command(&long).unwrap();
        assert_eq!(
            reason,
            format!("{}…", "é".repeat(MAX_REASON_CHARS)),
            "cut to fit a comment"
        );
        check("/promptgate accepted", None);
        check("I think /promptgate accept is wrong here", None);
        check("", None);
    }

    fn regression(
        experiment: &str,
        metric: &str,
        direction: Direction,
        estimate: f64,
        ci: [f64; 2],
    ) -> AcceptedRegression {
        AcceptedRegression {
            experiment: experiment.to_owned(),
            metric: metric.to_owned(),
            direction,
            estimate: Some(estimate),
            ci: Some(ci),
        }
    }

    fn waiver(accepted: Vec<AcceptedRegression>) -> Waiver {
        Waiver {
            by: "maya".to_owned(),
            reason: "on purpose".to_owned(),
            via: "comment".to_owned(),
            waived: String::new(),
            at: None,
            commit: Some("a".repeat(40)),
            accepted,
            source_id: Some(80),
        }
    }

    /// A regression accepted without a bound (no data then), or in the other direction, covers
    /// nothing measured later; untrusted results lend a waiver names, not bounds.
    #[test]
    fn a_waiver_without_a_bound_or_in_another_direction_covers_nothing_measured() {
        let unmeasured = AcceptedRegression {
            estimate: None,
            ci: None,
            ..regression("faq", "relevance", Direction::Higher, 0.0, [0.0, 0.0])
        };
        let measured = regression("faq", "relevance", Direction::Higher, -0.5, [-0.6, -0.4]);
        assert_eq!(
            cover(&waiver(vec![unmeasured.clone()]), std::slice::from_ref(&unmeasured)),
            Ok(())
        );
        // Accepted as measured, with no data now (its scorer renamed away): not that either.
        assert_eq!(
            cover(&waiver(vec![measured.clone()]), std::slice::from_ref(&unmeasured)),
            Err(vec!["relevance in faq (no data now; accepted as measured)".to_owned()])
        );
        assert_eq!(
            cover(&waiver(vec![unmeasured]), std::slice::from_ref(&measured)),
            Err(vec![
                "relevance in faq (now measured at -0.5; accepted without an estimate)".to_owned()
            ])
        );
        // Accepted as a small rise of a lower-is-better metric: a drop later is not that.
        let forged = regression("faq", "pass_rate", Direction::Lower, -0.01, [-0.02, 0.0]);
        let drop = regression("faq", "pass_rate", Direction::Higher, -0.3, [-0.4, -0.2]);
        assert_eq!(
            cover(&waiver(vec![forged.clone()]), &[drop]),
            Err(vec!["pass_rate in faq (its direction changed)".to_owned()])
        );
        // Bound to untrusted results: the names only.
        let published = Published {
            sha: "a".repeat(40),
            verdict: Verdict::Fail,
            reason: "regression in faq".to_owned(),
            untrusted: true,
            regressions: vec![measured.clone(), forged],
            base_error: false,
            partial: false,
            at: None,
            regressed: None,
        };
        let given = Given {
            by: "maya".to_owned(),
            reason: "ok".to_owned(),
            via: "comment".to_owned(),
            at: None,
            source_id: Some(1),
        };
        let bound = bind(given, &published);
        assert!(bound.accepted.iter().all(|a| a.estimate.is_none() && a.ci.is_none()));
        // It covers those results, matched by name as they are re-published, and nothing a
        // later (trusted) evaluation measures.
        assert_eq!(cover(&bound, &names_only(&published.regressions[..1])), Ok(()));
        assert!(cover(&bound, &[measured]).is_err());
    }

    /// An accept comment edited after it was written is no one's waiver, when it is found and
    /// when a later push checks the waiver recorded from it; `updated_at` a second after
    /// `created_at` (GitHub touching a new comment) is no edit.
    #[test]
    fn an_edited_accept_comment_is_no_waiver_and_a_touched_one_is() {
        let comment = |updated: &str| {
            serde_json::json!({"id": 80, "user": {"login": "maya"}, "body": "/promptgate accept on purpose",
                               "created_at": "2026-12-05T10:00:00Z", "updated_at": updated})
        };
        assert!(!edited(&comment("2026-12-05T10:00:00Z")));
        assert!(
            !edited(&comment("2026-12-05T10:00:01.250Z")),
            "touched as it was written"
        );
        assert!(edited(&comment("2026-12-05T10:05:00Z")));
        assert!(
            edited(&comment("2026-12-05T10:00:55Z")),
            "an edit inside the first minute"
        );
        assert!(edited(&comment("2026-12-05T10:00:02.500Z")));
        assert!(
            !edited(&serde_json::json!({"created_at": "2026-12-05T10:00:00Z"})),
            "no updated_at"
        );
        let pr = PullRequest::for_tests();
        let recorded = waiver(vec![]);
        assert!(still_given(&recorded, &pr, &[comment("2026-12-05T10:00:01Z")]));
        assert!(!still_given(&recorded, &pr, &[comment("2026-12-05T10:05:00Z")]));
    }

    #[test]
    fn a_waiver_covers_what_it_accepted_and_nothing_new_or_worse() {
        let pass_rate = regression("support", "pass_rate", Direction::Higher, -0.3, [-0.45, -0.15]);
        let latency = regression("support", "latency_p95_ms", Direction::Lower, 120.0, [60.0, 180.0]);
        let w = waiver(vec![pass_rate.clone(), latency.clone()]);
        // The same regressions, or milder ones, or a worse estimate still inside the interval.
        assert_eq!(cover(&w, &[pass_rate.clone(), latency.clone()]), Ok(()));
        assert_eq!(
            cover(
                &w,
                &[regression(
                    "support",
                    "pass_rate",
                    Direction::Higher,
                    -0.44,
                    [-0.6, -0.3]
                )]
            ),
            Ok(())
        );
        assert_eq!(cover(&w, &[]), Ok(()));
        // Worse beyond the interval, in either direction of goodness.
        assert_eq!(
            cover(
                &w,
                &[regression(
                    "support",
                    "pass_rate",
                    Direction::Higher,
                    -0.85,
                    [-0.95, -0.7]
                )]
            ),
            Err(vec![
                "pass_rate in support (worse: -0.85 beyond the accepted -0.45)".to_owned()
            ])
        );
        assert_eq!(
            cover(
                &w,
                &[regression(
                    "support",
                    "latency_p95_ms",
                    Direction::Lower,
                    400.0,
                    [300.0, 500.0]
                )]
            ),
            Err(vec![
                "latency_p95_ms in support (worse: 400 beyond the accepted 180)".to_owned()
            ])
        );
        // A regression of another experiment is new.
        assert_eq!(
            cover(
                &w,
                &[regression("faq", "pass_rate", Direction::Higher, -0.85, [-0.95, -0.7])]
            ),
            Err(vec!["pass_rate in faq (new)".to_owned()])
        );
    }

    #[test]
    fn a_base_that_does_not_load_is_accepted_by_name_and_an_older_waiver_does_not_cover_it() {
        let broken = "the suite at base (main) does not load: promptgate.yaml:16:3: …";
        let (verdict, reason) =
            crate::verdict::with_base_error((Verdict::Pass, "no blocking regression".to_owned()), Some(broken));
        let mut results = Results::new(crate::results::ResultParts {
            verdict,
            reason,
            base_error: Some(broken.to_owned()),
            ..crate::results::test_parts()
        });
        let now = regressions(&results);
        assert_eq!(now.len(), 1);
        // A waiver given for a regression before the base broke: not this.
        let older = waiver(vec![regression(
            "support",
            "pass_rate",
            Direction::Higher,
            -0.3,
            [-0.45, -0.15],
        )]);
        assert_eq!(
            cover(&older, &now),
            Err(vec![format!("does not load ({}) in the base (new)", &broken[40..])])
        );
        apply(&mut results, &older);
        assert_eq!(results.verdict, Verdict::Error);
        assert!(
            results
                .reason
                .contains("does not cover does not load (promptgate.yaml:16:3"),
            "{}",
            results.reason
        );
        // A waiver given for these results lifts it.
        let mut results = Results::new(crate::results::ResultParts {
            verdict,
            reason: results.reason.split("; the waiver").next().unwrap().to_owned(),
            base_error: Some(broken.to_owned()),
            ..crate::results::test_parts()
        });
        apply(&mut results, &waiver(now.clone()));
        assert_eq!(results.verdict, Verdict::Waived);
        // Another breakage of the base later: the waiver given for the first does not cover it.
        let other = "the suite at base (main) does not load: experiment `faq`: configs/faq.yaml:5:1: unknown field";
        let later = regressions(&Results::new(crate::results::ResultParts {
            base_error: Some(other.to_owned()),
            ..crate::results::test_parts()
        }));
        assert!(cover(&waiver(now), &later).is_err());
        // A waiver that names no regression, or the base, covers every experiment in the ledger.
        assert!(AcceptedRegression::base_not_loading(other).is_base());
    }

    /// An untrusted job's waiver is taken back to the evaluation's own verdict and reason, so
    /// the publisher's waiver can lift it again (the base's error is still recognised as such).
    #[test]
    fn a_withdrawn_waiver_leaves_the_evaluations_verdict_and_reason_to_waive_again() {
        let broken = "the suite at base (main) does not load: promptgate.yaml:16:3: …";
        // No experiment ran (`test_parts`): the verdict is the base's error alone.
        let evaluated = (
            Verdict::Error,
            format!("{broken}; the experiments ran candidate-only (no experiment is affected by this change)"),
        );
        let mut results = Results::new(crate::results::ResultParts {
            verdict: evaluated.0,
            reason: evaluated.1.clone(),
            base_error: Some(broken.to_owned()),
            ..crate::results::test_parts()
        });
        let accepted = waiver(regressions(&results));
        apply(&mut results, &accepted);
        assert_eq!(results.verdict, Verdict::Waived);
        // No metric regressed (the base did not load): a failure accepted, not a regression.
        assert!(results.reason.starts_with("failure accepted by"), "{}", results.reason);
        withdraw(&mut results);
        assert_eq!((results.verdict, results.reason.clone()), evaluated);
        assert_eq!(results.waiver, None);
        assert!(crate::verdict::base_error_only(&results));
        apply(&mut results, &accepted);
        assert_eq!(results.verdict, Verdict::Waived);

        // `waived` on results whose experiments pass (no evaluation writes that): `fail`.
        let mut forged = Results::new(crate::results::ResultParts {
            verdict: Verdict::Waived,
            reason: "regression accepted by someone".to_owned(),
            ..crate::results::test_parts()
        });
        withdraw(&mut forged);
        assert_eq!(forged.verdict, Verdict::Fail);
    }

    /// A recorded label event stands until the label is removed after it, whoever adds it again.
    #[test]
    fn a_label_event_stands_until_the_label_is_removed() {
        let event = |id: u64, kind: &str, who: &str| serde_json::json!({"id": id, "event": kind, "actor": {"login": who}, "label": {"name": LABEL}});
        let added = vec![event(100, "labeled", "maya")];
        assert!(label_event_stands(&added, LABEL, 100, "maya"));
        assert!(!label_event_stands(&added, LABEL, 100, "tri"), "by the one recorded");
        assert!(!label_event_stands(&added, LABEL, 101, "maya"), "the event recorded");
        assert!(!label_event_stands(&added, "other", 100, "maya"), "for its label");
        let readded = vec![
            event(100, "labeled", "maya"),
            event(150, "unlabeled", "maya"),
            event(200, "labeled", "tri"),
        ];
        assert!(
            !label_event_stands(&readded, LABEL, 100, "maya"),
            "withdrawn, then added by another"
        );
        assert!(label_event_stands(&readded, LABEL, 200, "tri"));
        // Events listed without ids (recorded as 0): the newest by the one recorded.
        let unnumbered: Vec<Value> = readded
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("id");
                e
            })
            .collect();
        assert!(label_event_stands(&unnumbered, LABEL, 0, "tri"));
        assert!(!label_event_stands(&unnumbered, LABEL, 0, "maya"), "withdrawn since");
        assert!(label_event_stands(&unnumbered[..1], LABEL, 0, "maya"));
    }
}
