//! Approvals a maintainer gives from GitHub: the `promptgate:trust-config` label lets a change
//! to where a key goes (see `crate::trust`) receive the key, and `promptgate:approve-cost` lets
//! a run above the budget's approval threshold spend (the hard cap still holds).
//!
//! An approval is for the head commit the label was added at: the `pull_request: labeled` run
//! it starts is where it is granted (the adder's role checked through the API, as for
//! waivers), and the sticky comment's state remembers it for that commit only. A later push
//! needs a new approval: remove the label and add it again.

use super::client::Client;
use super::event::{PullRequest, PullRequestEvent};
use super::state::{Approval, State};
use super::waiver;
use crate::error::Error;

pub const TRUST_CONFIG: &str = "promptgate:trust-config";
pub const APPROVE_COST: &str = "promptgate:approve-cost";

/// The approvals in force for the pull request's head commit: who gave each.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approvals {
    pub config: Option<String>,
    pub cost: Option<String>,
}

/// Whether `label` is one of the approval labels.
pub fn is_approval_label(label: &str) -> bool {
    label == TRUST_CONFIG || label == APPROVE_COST
}

/// The approvals for `pr.head_sha`. A `labeled` event for an approval label grants it when
/// the label's adder (read from the issue events, not the payload) is an admin or maintainer
/// and the event was for this head commit; the grant is recorded in `state`. Otherwise an
/// approval recorded for this head commit holds while its label is still on.
pub async fn find(
    client: &Client,
    pr: &PullRequest,
    event: Option<&PullRequestEvent>,
    state: &mut State,
) -> Result<Approvals, Error> {
    // The issue events, read once for the grant and the checks of what the state records.
    let mut events: Option<Vec<serde_json::Value>> = None;
    if let Some(event) = event
        && event.action == "labeled"
        && let Some(label) = event.label.as_deref().filter(|l| is_approval_label(l))
        && let Some(labeled) = waiver::newest_labeled(events.insert(waiver::issue_events(client, pr).await?), label)
    {
        if !event.sender.is_empty() && labeled.by != event.sender {
            // The newest `labeled` event the API lists is not this one (an older one, or the
            // list lags the event): its adder is not the one who asks now. Fail closed.
            eprintln!(
                "promptgate: ignoring the `{label}` label: the newest `labeled` event GitHub lists is by {}, not by {} who added it now; remove and add it again",
                super::actions::inert(&labeled.by),
                super::actions::inert(&event.sender)
            );
        } else if waiver::is_maintainer(client, &labeled.by).await? {
            state.approve(Approval {
                label: label.to_owned(),
                sha: pr.head_sha.clone(),
                by: labeled.by,
                event_id: labeled.id,
            });
        } else {
            eprintln!(
                "promptgate: ignoring the `{label}` label added by {}: only admins and maintainers may approve",
                super::actions::inert(&labeled.by)
            );
        }
    }
    Ok(Approvals {
        config: holds(client, pr, state, TRUST_CONFIG, &mut events).await?,
        cost: holds(client, pr, state, APPROVE_COST, &mut events).await?,
    })
}

/// Who approved `label` for this head commit, when the state records it and GitHub confirms it:
/// the label is on, the `labeled` event recorded is listed, by the one recorded, with no removal
/// of the label since, and they are still an admin or maintainer. (The state is a comment anyone with write access can edit; the
/// commit an approval is recorded for is the state's word.)
/// `events` are the issue events, when read already (else read here, once).
async fn holds(
    client: &Client,
    pr: &PullRequest,
    state: &State,
    label: &str,
    events: &mut Option<Vec<serde_json::Value>>,
) -> Result<Option<String>, Error> {
    let Some(approval) = state
        .approval(label, &pr.head_sha)
        .filter(|_| pr.labels.iter().any(|l| l == label))
    else {
        return Ok(None);
    };
    let events = match events {
        Some(events) => events,
        None => events.insert(waiver::issue_events(client, pr).await?),
    };
    let confirmed = waiver::label_event_stands(events, label, approval.event_id, &approval.by)
        && waiver::is_maintainer(client, &approval.by).await?;
    if !confirmed {
        eprintln!(
            "promptgate: the `{label}` approval by {} no longer counts: GitHub lists no such label event by them, the label was removed since, or they are no longer an admin or maintainer; a maintainer may add the label again",
            super::actions::inert(&approval.by)
        );
    }
    Ok(confirmed.then(|| approval.by.clone()))
}
