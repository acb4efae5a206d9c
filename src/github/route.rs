//! What an event asks of promptgate. An evaluation runs the pull request's prompts (and any
//! `exec` program) with the job's keys and spends money, so only the events that change what
//! is evaluated start one: a push (`opened`, `synchronize`, `reopened`), an approval label, a
//! maintainer's dispatch. Waivers (the accept label, `/promptgate accept`) never evaluate: they
//! re-publish the last results with the waiver applied. Every other event does nothing.

use super::approval;
use super::event::Trigger;
use super::waiver;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Run the gate on the pull request's head.
    Evaluate,
    /// Re-publish the last results with the waivers now in force; nothing is evaluated.
    Republish,
    /// Nothing to do, and why.
    Skip(String),
    /// The event cannot be handled by this command, and why (with a hint).
    Unsupported(String, &'static str),
}

/// Comment and label events that are not a pull request's command (`event::parse_trigger`
/// names a comment on an issue `issue_comment on an issue`).
const ELSEWHERE: &[&str] = &[
    "issue_comment on an issue",
    "pull_request_review_comment",
    "pull_request_review",
    "pull_request_review_thread",
    "commit_comment",
    "discussion_comment",
    "issues",
    "label",
];

pub fn route(trigger: &Trigger) -> Route {
    match trigger {
        Trigger::PullRequest { event, .. } => match event.action.as_str() {
            "" | "opened" | "synchronize" | "reopened" | "ready_for_review" => Route::Evaluate,
            "labeled" | "unlabeled" => {
                let label = event.label.as_deref().unwrap_or("");
                if label == waiver::LABEL {
                    Route::Republish
                } else if event.action == "labeled" && approval::is_approval_label(label) {
                    Route::Evaluate
                } else if approval::is_approval_label(label) {
                    Route::Skip(format!(
                        "removing `{label}` changes nothing now; the next push needs its own approval"
                    ))
                } else {
                    Route::Skip(format!("the label `{label}` does not concern promptgate"))
                }
            }
            other => Route::Skip(format!(
                "a pull request `{other}` event changes nothing promptgate evaluates"
            )),
        },
        Trigger::PullRequestComment { body, .. } => {
            if waiver::parse_command(body).is_some() {
                Route::Republish
            } else {
                Route::Skip(format!("the comment is not a `{}` command", waiver::COMMAND))
            }
        }
        Trigger::Dispatch { .. } => Route::Evaluate,
        Trigger::WorkflowRun { .. } => Route::Unsupported(
            "a `workflow_run` event carries no checkout to evaluate".to_owned(),
            "in the trusted workflow, download the results artifact and run `promptgate ci --publish-only DIR`",
        ),
        // A comment or label elsewhere (an issue, a review, a commit, the label list) gives no
        // command to a pull request: nothing to do, as for any other comment or label.
        Trigger::Other(name) if ELSEWHERE.contains(&name.as_str()) => Route::Skip(format!(
            "the event (`{name}`) concerns no pull request promptgate gates"
        )),
        // A push is what a workflow on `pull_request` and `push` also gets: no pull request to
        // gate, and no failure either (it failed every push to the default branch).
        Trigger::Other(name) if name == "push" => Route::Skip(
            "a push has no pull request to gate; to warm the response cache on pushes to the default branch, use the Action's `mode: warm` (`promptgate run --all --base HEAD --head HEAD`)".to_owned(),
        ),
        Trigger::Other(name) => Route::Unsupported(
            format!("`promptgate ci` gates pull requests; this run was triggered by `{name}`"),
            "trigger the workflow on `pull_request` (see docs/github.md), or use `promptgate run --base REF --head REF`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::event::{PullRequest, PullRequestEvent};

    /// The waiver this run's own event gave (the comment it created, the accept label it
    /// added) is given now, whatever date the API gives it; no other is.
    #[test]
    fn the_waiver_a_runs_own_event_gave_is_given_now() {
        use crate::github::waiver::{Fresh, Given};
        let given = |via: &str, id| Given {
            by: "maya".to_owned(),
            reason: "on purpose".to_owned(),
            via: via.to_owned(),
            at: Some("2011-04-14T16:00:49Z".to_owned()),
            source_id: Some(id),
        };
        let comment = |created| Trigger::PullRequestComment {
            number: 7,
            body: "/promptgate accept".to_owned(),
            created,
        };
        let created = Fresh::of(&comment(Some(80)), false);
        assert!(created.gave(&given("comment", 80)));
        assert!(!created.gave(&given("comment", 79)), "an older comment");
        assert!(!created.gave(&given("label", 5)));
        assert!(!Fresh::of(&comment(None), false).gave(&given("comment", 80)), "an edit");
        let label = Fresh::of(&pr_event("labeled", Some("promptgate:accept-regression")), false);
        assert!(label.gave(&given("label", 5)) && !label.gave(&given("comment", 80)));
        // The newest adder the API lists is someone else's (the list lags the event): not this
        // event's label.
        let by_another = Given {
            by: "mallory".to_owned(),
            ..given("label", 5)
        };
        assert!(!label.gave(&by_another));
        // This event's waiver keeps a date GitHub's clock finds plausible (so a waiver queued
        // behind newer results does not accept them); a date more than a day old, or none, is
        // a fixture's or a skewed clock's: it was given now.
        let now = "2026-12-05T12:00:00Z";
        let at = |at: Option<&str>| Given {
            at: at.map(str::to_owned),
            ..given("comment", 80)
        };
        let recent = at(Some("2026-12-05T09:30:00Z"));
        assert_eq!(created.given_at(&recent, now).as_deref(), Some("2026-12-05T09:30:00Z"));
        assert_eq!(
            created.given_at(&at(Some("2011-04-14T16:00:49Z")), now).as_deref(),
            Some(now)
        );
        assert_eq!(created.given_at(&at(None), now).as_deref(), Some(now));
        // A re-run is handed its first attempt's event, however old: its waiver keeps its date.
        let rerun = Fresh::of(&comment(Some(80)), true);
        assert_eq!(
            rerun.given_at(&at(Some("2011-04-14T16:00:49Z")), now).as_deref(),
            Some("2011-04-14T16:00:49Z")
        );
        // Dates compare as UTC text: an offset is read, not compared as written.
        assert_eq!(
            created.given_at(&at(Some("2026-12-05T11:30:00+02:00")), now).as_deref(),
            Some("2026-12-05T09:30:00Z")
        );
        let other = Fresh::of(&comment(Some(81)), false);
        assert_eq!(
            other.given_at(&at(Some("2011-04-14T16:00:49Z")), now).as_deref(),
            Some("2011-04-14T16:00:49Z"),
            "another comment keeps its own date"
        );
        for other in [
            pr_event("unlabeled", Some("promptgate:accept-regression")),
            pr_event("labeled", Some("documentation")),
            pr_event("synchronize", None),
        ] {
            assert!(!Fresh::of(&other, false).gave(&given("label", 5)), "{other:?}");
        }
    }

    fn pr_event(action: &str, label: Option<&str>) -> Trigger {
        Trigger::PullRequest {
            pr: PullRequest::for_tests(),
            event: PullRequestEvent {
                target: false,
                action: action.to_owned(),
                label: label.map(str::to_owned),
                sender: "maya".to_owned(),
            },
        }
    }

    #[track_caller]
    fn check(trigger: Trigger, expected: &str) {
        let got = match route(&trigger) {
            Route::Evaluate => "evaluate",
            Route::Republish => "republish",
            Route::Skip(_) => "skip",
            Route::Unsupported(..) => "unsupported",
        };
        assert_eq!(got, expected, "{trigger:?}");
    }

    #[test]
    fn only_pushes_approvals_and_dispatches_evaluate() {
        check(pr_event("synchronize", None), "evaluate");
        check(pr_event("opened", None), "evaluate");
        check(pr_event("labeled", Some("promptgate:trust-config")), "evaluate");
        check(pr_event("labeled", Some("promptgate:approve-cost")), "evaluate");
        check(pr_event("labeled", Some("promptgate:accept-regression")), "republish");
        check(pr_event("unlabeled", Some("promptgate:accept-regression")), "republish");
        check(pr_event("unlabeled", Some("promptgate:trust-config")), "skip");
        check(pr_event("labeled", Some("documentation")), "skip");
        check(pr_event("edited", None), "skip");
        let comment = |body: &str| Trigger::PullRequestComment {
            number: 7,
            body: body.to_owned(),
            created: Some(80),
        };
        check(comment("/promptgate accept on purpose"), "republish");
        check(comment("/promptgate accept"), "republish");
        check(comment("looks good"), "skip");
        check(
            Trigger::Dispatch {
                pr: Some(7),
                sha: Some("h".to_owned()),
                actor: "maya".to_owned(),
            },
            "evaluate",
        );
        // A push gates nothing and fails nothing (the audit: exit 2 on every push).
        check(Trigger::Other("push".to_owned()), "skip");
        check(Trigger::Other("schedule".to_owned()), "unsupported");
        // Any other comment or label does nothing (exit 0), never an error.
        for elsewhere in [
            "issue_comment on an issue",
            "pull_request_review_comment",
            "issues",
            "label",
        ] {
            check(Trigger::Other(elsewhere.to_owned()), "skip");
        }
    }
}
