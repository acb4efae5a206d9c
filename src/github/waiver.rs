//! Waivers: a maintainer accepts a regression with the `promptgate:accept-regression` label or
//! a `/promptgate accept <reason>` comment. Who may waive is checked through the API, never
//! taken from the comment or the payload.

use serde_json::Value;

use super::client::{Client, Purpose};
use super::event::PullRequest;
use crate::error::Error;
use crate::results::Waiver;

pub const LABEL: &str = "promptgate:accept-regression";
pub const COMMAND: &str = "/promptgate accept";

const PERMISSION: Purpose = Purpose {
    what: "read a commenter's permission on the repository",
    permission: "metadata: read",
};
const EVENTS: Purpose = Purpose {
    what: "list the pull request's events (who added the label)",
    permission: "issues: read",
};

/// The roles that may accept a regression: the ones that can change branch protection anyway.
const MAINTAINER_ROLES: [&str; 2] = ["admin", "maintain"];

/// The newest valid waiver: a `/promptgate accept` comment by a maintainer, else the label when
/// a maintainer added it. `comments` are the PR's comments in API order (oldest first).
pub async fn find(client: &Client, pr: &PullRequest, comments: &[Value], bot: &str) -> Result<Option<Waiver>, Error> {
    for c in comments.iter().rev() {
        let who = super::author(c);
        let Some(reason) = c["body"].as_str().and_then(parse_command) else {
            continue;
        };
        if who.is_empty() || who == bot {
            continue;
        }
        if reason.is_empty() {
            eprintln!("promptgate: ignoring `{COMMAND}` by {who}: it needs a reason (`{COMMAND} <reason>`)");
            continue;
        }
        if is_maintainer(client, who).await? {
            return Ok(Some(Waiver {
                by: who.to_owned(),
                reason,
                via: "comment".to_owned(),
                waived: String::new(),
            }));
        }
        eprintln!("promptgate: ignoring `{COMMAND}` by {who}: only admins and maintainers may accept a regression");
    }
    if pr.labels.iter().any(|l| l == LABEL) {
        let events = client
            .get_all(&client.repo_route(&format!("/issues/{}/events", pr.number)), EVENTS)
            .await?;
        let labeler = events
            .iter()
            .rev()
            .find(|e| e["event"] == "labeled" && e["label"]["name"] == LABEL)
            .and_then(|e| e["actor"]["login"].as_str());
        match labeler {
            Some(who) if is_maintainer(client, who).await? => {
                return Ok(Some(Waiver {
                    by: who.to_owned(),
                    reason: format!("label `{LABEL}`"),
                    via: "label".to_owned(),
                    waived: String::new(),
                }));
            }
            Some(who) => eprintln!(
                "promptgate: ignoring the `{LABEL}` label added by {who}: only admins and maintainers may accept a regression"
            ),
            None => eprintln!("promptgate: ignoring the `{LABEL}` label: nobody is recorded as having added it"),
        }
    }
    Ok(None)
}

/// The reason of a `/promptgate accept <reason>` comment (its first line), or `None`.
pub fn parse_command(body: &str) -> Option<String> {
    let first = body.trim_start().lines().next()?.trim();
    let rest = first.strip_prefix(COMMAND)?;
    if !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return None;
    }
    Some(rest.trim().to_owned())
}

async fn is_maintainer(client: &Client, login: &str) -> Result<bool, Error> {
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
        check("/promptgate accepted", None);
        check("I think /promptgate accept is wrong here", None);
        check("", None);
    }
}
