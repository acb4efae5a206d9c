//! Publishing to GitHub: the sticky PR comment, the check run, the optional review, waivers,
//! and the Actions side channels. This module only publishes what `report` rendered; it never
//! computes a statistic.
//!
//! Async because the network is here; `commands::ci` drives it from a small runtime between
//! the synchronous stages of the gate.

pub mod actions;
pub mod approval;
pub mod assets;
pub mod check;
pub mod client;
pub mod comment;
pub mod event;
pub mod git_data;
pub mod ledger;
pub mod lines;
pub mod publish;
pub mod review;
pub mod route;
pub mod state;
pub mod waiver;

use serde_json::Value;

use crate::error::Error;
use client::{Client, Purpose};

/// The login the Actions token (`GITHUB_TOKEN`) posts as.
pub const ACTIONS_BOT: &str = "github-actions[bot]";

/// When to post the sticky comment. An existing one is always updated, whatever the mode, so
/// a reviewer never reads the numbers of an older push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentMode {
    /// On every run.
    Always,
    /// When at least one experiment is affected.
    Affected,
    /// Only when the verdict blocks the merge or a maintainer lifted it: a regression, an
    /// error, a run waiting for approval, a waiver.
    Regression,
    /// Never.
    Off,
}

/// Who the token is, when GitHub says: comments and reviews by anyone else are never taken for
/// ours, so a person cannot plant a fake report. `GET /user` answers for a personal token; an
/// installation token (the Actions token, a GitHub App's) gets 403 there: `None`, and
/// [`login_among`] tells from the comments which bot the token posts as.
pub async fn identity(client: &Client) -> Result<Option<String>, Error> {
    const PURPOSE: Purpose = Purpose {
        what: "read the token's identity",
        permission: "none (any token can read itself)",
    };
    if client.is_dry_run() {
        return Ok(None);
    }
    match client.try_get("/user", PURPOSE).await? {
        Ok(user) => Ok(user["login"].as_str().map(str::to_owned)),
        Err(refusal) if matches!(refusal.status, 403 | 404) => Ok(None),
        Err(refusal) => Err(client::refused(client::Method::Get, "/user", PURPOSE, refusal)),
    }
}

/// The login an installation token posts as, told from the pull request's comments: the first
/// of [`logins_among`].
pub fn login_among(comments: &[Value]) -> String {
    logins_among(comments).swap_remove(0)
}

/// The logins an installation token may post as, told from the pull request's comments, the
/// likeliest first: the bots whose promptgate comment was updated most recently first (a
/// GitHub App's token posts as `<app>[bot]`, the Actions token as `github-actions[bot]`; only
/// an App installed on the repository can post as a bot, so no person can plant one), else
/// `github-actions[bot]` alone. A repository that moved from one token to another has a
/// promptgate comment by each: the one its runs keep up to date is the latest, and the token's
/// own is the first of them GitHub lets it edit (`comment::own_among`). Without this an App's
/// token found no comment of its own and posted a new one on every push.
pub fn logins_among(comments: &[Value]) -> Vec<String> {
    let mut bots: Vec<&Value> = comments
        .iter()
        .filter(|c| c["user"]["type"] == "Bot" && c["body"].as_str().is_some_and(written_by_promptgate))
        .collect();
    // Stable: comments updated at the same second keep the listing's order.
    bots.sort_by(|a, b| updated_at(b).cmp(updated_at(a)));
    let mut logins: Vec<String> = Vec::new();
    for c in bots {
        let login = author(c);
        if !login.is_empty() && !logins.iter().any(|l| l == login) {
            logins.push(login.to_owned());
        }
    }
    if logins.is_empty() {
        logins.push(ACTIONS_BOT.to_owned());
    }
    logins
}

/// A comment's last update (ISO 8601, which sorts as text), else its creation.
fn updated_at(c: &Value) -> &str {
    c["updated_at"]
        .as_str()
        .or_else(|| c["created_at"].as_str())
        .unwrap_or("")
}

/// Whether a body is one promptgate wrote: its marker opens it, or its state stands at the start
/// of a line. A reply quoting a promptgate comment has both after `> `.
pub(crate) fn written_by_promptgate(body: &str) -> bool {
    body.trim_start().starts_with(crate::report::markdown::REPORT_MARKER)
        || body.starts_with(state::STATE_OPEN)
        || body.contains(&format!("\n{}", state::STATE_OPEN))
}

/// The author login of a comment or review.
pub(crate) fn author(item: &Value) -> &str {
    item["user"]["login"].as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A token that cannot name itself takes the Actions bot's promptgate comment first, else
    /// another bot's; never a person's, whatever it carries.
    #[test]
    fn an_installation_token_is_told_from_the_comments() {
        let marker = crate::report::markdown::REPORT_MARKER;
        let by = |login: &str, kind: &str, body: &str| json!({"user": {"login": login, "type": kind}, "body": body});
        let mallory = by("mallory", "User", marker);
        let app = by("promptgate-app[bot]", "Bot", &format!("{marker}\n## report"));
        let actions = by(ACTIONS_BOT, "Bot", &format!("{marker}\n## report"));
        let other_bot = by("dependabot[bot]", "Bot", "Bumps serde");
        assert_eq!(
            login_among(&[mallory.clone(), other_bot.clone(), app.clone()]),
            "promptgate-app[bot]"
        );
        assert_eq!(login_among(&[app.clone(), actions.clone()]), "promptgate-app[bot]");
        assert_eq!(login_among(&[actions.clone(), app.clone()]), ACTIONS_BOT);
        assert_eq!(login_among(&[mallory, other_bot]), ACTIONS_BOT);
        assert_eq!(login_among(&[]), ACTIONS_BOT);
        // The most recently updated first; a bot quoting promptgate's comment is not one.
        let at = |mut c: Value, when: &str| {
            c["updated_at"] = json!(when);
            c
        };
        let actions = at(actions, "2026-12-01T10:00:00Z");
        let app = at(app, "2026-12-02T09:00:00Z");
        assert_eq!(
            logins_among(&[actions.clone(), app.clone()]),
            ["promptgate-app[bot]", ACTIONS_BOT]
        );
        let quoting = at(
            by("summarizer[bot]", "Bot", &format!("> {marker}\n> ## report")),
            "2026-12-03T09:00:00Z",
        );
        assert_eq!(
            logins_among(&[quoting, actions, app]),
            ["promptgate-app[bot]", ACTIONS_BOT]
        );
    }
}
