//! The sticky comment: one per pull request, found by its marker and its author, edited in
//! place on every push.

use serde_json::{Value, json};

use super::CommentMode;
use super::client::{Client, Method, Purpose};
use super::event::PullRequest;
use crate::error::Error;
use crate::plan::PlanFacts;
use crate::report::escape::escape_untrusted;
use crate::report::markdown::REPORT_MARKER;
use crate::results::{Results, Verdict};

const LIST: Purpose = Purpose {
    what: "list the pull request's comments",
    permission: "pull-requests: read",
};
const CREATE: Purpose = Purpose {
    what: "create the promptgate comment",
    permission: "pull-requests: write",
};
const UPDATE: Purpose = Purpose {
    what: "update the promptgate comment",
    permission: "pull-requests: write",
};

/// Every comment on the pull request (all pages).
pub async fn list(client: &Client, pr: &PullRequest) -> Result<Vec<Value>, Error> {
    client
        .get_all(&client.repo_route(&format!("/issues/{}/comments", pr.number)), LIST)
        .await
}

/// Our previous report: the first comment carrying the marker and written by `login`.
pub fn find_sticky(comments: &[Value], login: &str) -> Option<u64> {
    comments
        .iter()
        .find(|c| super::author(c) == login && c["body"].as_str().is_some_and(|b| b.contains(REPORT_MARKER)))
        .and_then(|c| c["id"].as_u64())
}

/// Whether to create a comment when none exists yet. Before the run only `always` and
/// `affected` know they will comment; `regression` waits for the verdict.
pub fn wanted(mode: CommentMode, affected: usize, verdict: Option<Verdict>) -> bool {
    match mode {
        CommentMode::Always => true,
        CommentMode::Affected => affected > 0,
        CommentMode::Regression => verdict == Some(Verdict::Fail) || verdict == Some(Verdict::Waived),
        CommentMode::Off => false,
    }
}

/// The comment while the gate runs, so nobody reads the previous push's numbers.
pub fn progress_body(facts: &PlanFacts, head_sha: &str) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{REPORT_MARKER}\n## ⏳ promptgate: evaluating\n\nEvaluating {}, {} on `{}`… (estimated ${:.4}{}).\n\nThe report replaces this comment when the run finishes.\n",
        plural(facts.experiments, "experiment", "experiments"),
        plural(facts.calls, "call", "calls"),
        short(head_sha),
        facts.estimated_usd,
        if facts.simulated { ", simulated" } else { "" }
    )
}

/// The comment when the gate could not finish: the previous numbers must not stay up.
pub fn failed_body(message: &str, head_sha: &str) -> String {
    format!(
        "{REPORT_MARKER}\n## ⚠️ promptgate: could not finish\n\nThe evaluation of `{}` stopped: {}\n\nSee the workflow run's log for details.\n",
        short(head_sha),
        escape_untrusted(message, 1_000)
    )
}

/// The report, with the waiver recorded under it when a maintainer accepted a regression.
pub fn final_body(results: &Results, report_md: &str) -> String {
    let mut body = report_md.to_owned();
    if let Some(w) = &results.waiver {
        body.push_str(&format!(
            "\n---\n⚠️ **Regression accepted** by {} via {}: {}\n\n<sub>Accepted: {}</sub>\n",
            escape_untrusted(&w.by, 60),
            if w.via == "label" {
                "the `promptgate:accept-regression` label"
            } else {
                "a `/promptgate accept` comment"
            },
            escape_untrusted(&w.reason, 500),
            escape_untrusted(&w.waived, 1_000)
        ));
    }
    body
}

/// Updates the sticky comment, or creates it (and remembers its id) the first time.
pub async fn upsert(client: &Client, pr: &PullRequest, sticky: &mut Option<u64>, body: &str) -> Result<(), Error> {
    let payload = json!({ "body": body });
    match *sticky {
        Some(id) => {
            client
                .send(
                    Method::Patch,
                    &client.repo_route(&format!("/issues/comments/{id}")),
                    Some(&payload),
                    UPDATE,
                )
                .await?;
        }
        None => {
            let created = client
                .send(
                    Method::Post,
                    &client.repo_route(&format!("/issues/{}/comments", pr.number)),
                    Some(&payload),
                    CREATE,
                )
                .await?;
            *sticky = created["id"].as_u64();
        }
    }
    Ok(())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_from_someone_else_is_not_ours() {
        let comments = vec![
            json!({"id": 1, "user": {"login": "mallory"}, "body": format!("{REPORT_MARKER}\nall good")}),
            json!({"id": 2, "user": {"login": "github-actions[bot]"}, "body": "unrelated"}),
            json!({"id": 3, "user": {"login": "github-actions[bot]"}, "body": format!("{REPORT_MARKER}\n## report")}),
        ];
        assert_eq!(find_sticky(&comments, "github-actions[bot]"), Some(3));
        assert_eq!(find_sticky(&comments[..2], "github-actions[bot]"), None);
    }

    #[test]
    fn modes() {
        assert!(wanted(CommentMode::Always, 0, None));
        assert!(wanted(CommentMode::Affected, 2, None));
        assert!(!wanted(CommentMode::Affected, 0, Some(Verdict::Pass)));
        assert!(!wanted(CommentMode::Regression, 2, None));
        assert!(wanted(CommentMode::Regression, 2, Some(Verdict::Fail)));
        assert!(!wanted(CommentMode::Off, 2, Some(Verdict::Fail)));
    }

    #[test]
    fn progress_says_what_runs() {
        let facts = PlanFacts {
            experiments: 3,
            calls: 240,
            estimated_usd: 0.5,
            simulated: false,
        };
        let body = progress_body(&facts, "0123456789abcdef");
        assert!(body.starts_with(REPORT_MARKER));
        assert!(
            body.contains("Evaluating 3 experiments, 240 calls on `0123456789ab`… (estimated $0.5000)"),
            "{body}"
        );
    }
}
