//! The optional review: `REQUEST_CHANGES` while the gate fails, dismissed once a later push
//! passes (or a maintainer accepts the regression).

use serde_json::{Value, json};

use super::client::{Client, Method, Purpose};
use super::event::PullRequest;
use crate::error::Error;
use crate::format::short_sha;
use crate::report::escape::escape_untrusted;
use crate::results::Verdict;

/// Marks our reviews, besides their author.
pub const MARKER: &str = "<!-- promptgate:review -->";

const LIST: Purpose = Purpose {
    what: "list the pull request's reviews",
    permission: "pull-requests: read",
};
const CREATE: Purpose = Purpose {
    what: "request changes on the pull request",
    permission: "pull-requests: write",
};
const DISMISS: Purpose = Purpose {
    what: "dismiss promptgate's earlier review",
    permission: "pull-requests: write",
};

/// Brings the review in line with the verdict.
pub async fn sync(client: &Client, pr: &PullRequest, bot: &str, verdict: Verdict, reason: &str) -> Result<(), Error> {
    let reviews = client
        .get_all(&client.repo_route(&format!("/pulls/{}/reviews", pr.number)), LIST)
        .await?;
    let ours: Vec<&Value> = reviews
        .iter()
        .filter(|r| {
            super::author(r) == bot
                && r["state"] == "CHANGES_REQUESTED"
                && r["body"].as_str().is_some_and(|b| b.contains(MARKER))
        })
        .collect();
    match verdict {
        Verdict::Fail if ours.is_empty() => {
            let body = json!({
                "commit_id": pr.head_sha,
                "event": "REQUEST_CHANGES",
                "body": format!("{MARKER}\npromptgate found a regression: {}\n\nSee the promptgate comment for the evidence. A maintainer can accept it with `/promptgate accept <reason>`.", escape_untrusted(reason, 1_000)),
            });
            client
                .send(
                    Method::Post,
                    &client.repo_route(&format!("/pulls/{}/reviews", pr.number)),
                    Some(&body),
                    CREATE,
                )
                .await?;
        }
        // Changes are already requested; one review is enough. A run error or a run waiting for
        // approval is not a verdict on the change: the review stays as it is.
        Verdict::Fail | Verdict::Error | Verdict::NeedsApproval => {}
        Verdict::Pass | Verdict::Waived => {
            let message = if verdict == Verdict::Pass {
                format!("promptgate passes on {}", short_sha(&pr.head_sha))
            } else {
                "a maintainer accepted the regression".to_owned()
            };
            for review in ours {
                let Some(id) = review["id"].as_u64() else { continue };
                let route = client.repo_route(&format!("/pulls/{}/reviews/{id}/dismissals", pr.number));
                client
                    .send(
                        Method::Put,
                        &route,
                        Some(&json!({ "message": message, "event": "DISMISS" })),
                        DISMISS,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}
