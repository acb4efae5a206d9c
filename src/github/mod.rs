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

/// Who the token is: comments and reviews by anyone else are never taken for ours, so a human
/// cannot plant a fake report. `GET /user` answers for a personal token; the Actions token gets
/// 403 there and posts as `github-actions[bot]`.
pub async fn identity(client: &Client) -> Result<String, Error> {
    const PURPOSE: Purpose = Purpose {
        what: "read the token's identity",
        permission: "none (any token can read itself)",
    };
    if client.is_dry_run() {
        return Ok(ACTIONS_BOT.to_owned());
    }
    match client.try_get("/user", PURPOSE).await? {
        Ok(user) => Ok(user["login"].as_str().unwrap_or(ACTIONS_BOT).to_owned()),
        Err(refusal) if matches!(refusal.status, 403 | 404) => Ok(ACTIONS_BOT.to_owned()),
        Err(refusal) => Err(client::refused(client::Method::Get, "/user", PURPOSE, refusal)),
    }
}

/// The author login of a comment or review.
pub(crate) fn author(item: &Value) -> &str {
    item["user"]["login"].as_str().unwrap_or("")
}
