//! The sticky comment: one per pull request, found by its marker and its author, edited in
//! place on every push.

use serde_json::{Value, json};

use super::CommentMode;
use super::client::{Client, Method, Purpose, UNANSWERED, refused};
use super::event::PullRequest;
use crate::error::Error;
use crate::format::short_sha;
use crate::plan::PlanFacts;
use crate::report::escape::escape_untrusted;
use crate::report::markdown::REPORT_MARKER;
use crate::results::{Results, Verdict, Waiver};

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

/// Our previous report: the first comment carrying the marker and written by `login`, else
/// the first of `login`'s carrying promptgate's state (a person editing the comment may have
/// taken the marker line out; the state under it is still ours, and a second comment would
/// leave the first one's numbers and waiver up). The first is the oldest: a second one is
/// removed once the first is up to date (`remove_newer`), and runs at once keep the same one.
pub fn find_sticky(comments: &[Value], login: &str) -> Option<u64> {
    let ours = |marker: &str| {
        comments
            .iter()
            .find(|c| super::author(c) == login && c["body"].as_str().is_some_and(|b| b.contains(marker)))
            .and_then(|c| c["id"].as_u64())
    };
    ours(REPORT_MARKER).or_else(|| ours(super::state::STATE_OPEN))
}

const REMOVE: Purpose = Purpose {
    what: "remove a second promptgate comment",
    permission: "pull-requests: write (or issues: write)",
};

/// Removes `login`'s promptgate comments newer than `keep`: a second one is left when GitHub
/// created a comment but answered the post with an error while its listing lagged behind (the
/// post was sent again), or when two runs posted at once, and its numbers would stay up beside
/// the kept one's. Only newer ones: runs at once each keep the oldest they wrote or found, so
/// the oldest survives whatever order their removals take (each removing the other's would
/// leave none). Only comments promptgate wrote (`github::written_by_promptgate`), never one
/// quoting it. A removal GitHub refuses is reported and left.
pub async fn remove_newer(client: &Client, comments: &[Value], login: &str, keep: u64) {
    let newer = comments.iter().filter(|c| {
        super::author(c) == login
            && c["id"].as_u64().is_some_and(|id| id > keep)
            && c["body"].as_str().is_some_and(super::written_by_promptgate)
    });
    for c in newer {
        let Some(id) = c["id"].as_u64() else { continue };
        let route = client.repo_route(&format!("/issues/comments/{id}"));
        match client.try_send(Method::Delete, &route, None, REMOVE).await {
            Ok(Ok(_)) => eprintln!("promptgate: removed a second promptgate comment ({id}); {keep} is kept"),
            Ok(Err(refusal)) => eprintln!(
                "promptgate: could not remove a second promptgate comment ({id}): {} {}",
                refusal.status, refusal.message
            ),
            Err(e) => eprintln!("promptgate: could not remove a second promptgate comment ({id}): {e}"),
        }
    }
}

/// Which of `logins` (bots with a promptgate comment, the likeliest first) the token posts as:
/// the first whose comment GitHub lets it edit, asked by writing the comment's own body back
/// (nothing changes). Only when a pull request has promptgate comments by more than one bot (a
/// repository that changed tokens, or gave its waiver workflow another): the state carried on
/// is then that of the comment the run will write, and no other bot's comment is written over.
/// `None` when the token may edit none of them (it posts its own), or GitHub would not say.
pub async fn own_among(client: &Client, comments: &[Value], logins: &[String]) -> Option<String> {
    for login in logins {
        let Some(id) = find_sticky(comments, login) else {
            continue;
        };
        let Some(body) = comments
            .iter()
            .find(|c| c["id"].as_u64() == Some(id))
            .and_then(|c| c["body"].as_str())
        else {
            continue;
        };
        let route = client.repo_route(&format!("/issues/comments/{id}"));
        match client
            .try_send(Method::Patch, &route, Some(&json!({ "body": body })), UPDATE)
            .await
        {
            Ok(Ok(_)) => return Some(login.clone()),
            // Another bot's (403), or deleted since it was listed (404): the next.
            Ok(Err(refusal)) if matches!(refusal.status, 403 | 404) => {}
            // GitHub failing is no answer: the run goes on with its guess, and its check is
            // posted whatever the comment's fate (a failed probe once left none).
            Ok(Err(refusal)) => {
                eprintln!(
                    "promptgate: could not tell which promptgate comment is this token's (GitHub answered {} {} for comment {id}); going on with {}'s",
                    refusal.status, refusal.message, logins[0]
                );
                return None;
            }
            Err(e) => {
                eprintln!(
                    "promptgate: could not tell which promptgate comment is this token's ({e}); going on with {}'s",
                    logins[0]
                );
                return None;
            }
        }
    }
    eprintln!(
        "promptgate: the pull request has promptgate comments by {}, none of which this token may edit; it posts its own (give every promptgate workflow the same `github-token`, or set `bot-login`)",
        logins.join(", ")
    );
    None
}

/// Whether to create a comment when none exists yet. Before the run only `always` and
/// `affected` know they will comment; `regression` waits for the verdict (and comments on a
/// regression, a waived one, an error, or a run waiting for approval: whatever blocks the merge
/// or was lifted by a maintainer, and a waivable error needs the comment its waiver is bound to).
pub fn wanted(mode: CommentMode, affected: usize, verdict: Option<Verdict>) -> bool {
    match mode {
        CommentMode::Always => true,
        CommentMode::Affected => affected > 0,
        // A run waiting for a maintainer needs the comment that says what to approve.
        CommentMode::Regression => matches!(
            verdict,
            Some(Verdict::Fail | Verdict::Waived | Verdict::Error | Verdict::NeedsApproval)
        ),
        CommentMode::Off => false,
    }
}

/// The comment while the gate runs, so nobody reads the previous push's numbers. Without the
/// plan's facts (the Action announces the run before evaluating, without loading the suite)
/// it names the commit only.
pub fn progress_body(facts: Option<&PlanFacts>, head_sha: &str) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let what = match facts {
        Some(facts) => format!(
            "Evaluating {}, {} on `{}`… (estimated {}{}).",
            plural(facts.experiments, "experiment", "experiments"),
            plural(facts.calls, "call", "calls"),
            short_sha(head_sha),
            crate::plan::usd(facts.estimated_usd),
            if facts.simulated { ", simulated" } else { "" }
        ),
        None => format!("Evaluating `{}`…", short_sha(head_sha)),
    };
    format!(
        "{REPORT_MARKER}\n## ⏳ promptgate: evaluating\n\n{what}\n\nThe report replaces this comment when the run finishes.\n"
    )
}

/// The comment when the gate could not finish: the previous numbers must not stay up.
pub fn failed_body(message: &str, head_sha: &str) -> String {
    format!(
        "{REPORT_MARKER}\n## ⚠️ promptgate: could not finish\n\nThe evaluation of `{}` stopped: {}\n\nSee the workflow run's log for details.\n",
        short_sha(head_sha),
        escape_untrusted(message, 1_000)
    )
}

/// promptgate's notes under the report: what waits for a maintainer's approval, whether
/// untrusted code produced the results, and the waiver in force.
pub fn notes(results: &Results) -> String {
    let mut notes = String::new();
    if results.trust.untrusted {
        notes.push_str("\n🔓 **Evaluated without secrets by untrusted code** (a fork's change, run by the fork-safe workflow). A maintainer can run the trusted evaluation once they have reviewed the change; until then this check waits for it (action required): a required check is never satisfied by untrusted code's word.\n");
    }
    if let Some(a) = &results.trust.approval {
        notes.push_str(&approval_note(a));
    }
    if let Some(w) = &results.waiver {
        notes.push_str(&waiver_note(w));
    }
    notes
}

fn approval_note(a: &crate::results::ApprovalNeeded) -> String {
    let mut text = format!("\n⏸️ **{}**\n\n", escape_untrusted(&a.reason, 300));
    if !a.changes.is_empty() {
        text.push_str("| provider | setting | base | head |\n|---|---|---|---|\n");
        for c in a.changes.iter().take(50) {
            let cell = |v: &Option<String>| v.as_deref().map_or("—".to_owned(), |v| escape_untrusted(v, 200));
            text.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                escape_untrusted(&c.provider, 80),
                escape_untrusted(&c.field, 40),
                cell(&c.base),
                cell(&c.head)
            ));
        }
        text.push('\n');
    }
    if !a.experiments.is_empty() {
        let names: Vec<String> = a.experiments.iter().take(50).map(|n| escape_untrusted(n, 80)).collect();
        text.push_str(&format!("Not run until then: {}.\n\n", names.join(", ")));
    }
    text.push_str(&format!("{}\n", escape_untrusted(&a.how, 600)));
    text
}

/// The waiver in force, under the report: who accepted what, when, for which commit, and why.
pub fn waiver_note(w: &Waiver) -> String {
    let accepted: Vec<String> = w
        .accepted
        .iter()
        .take(20)
        .map(|a| {
            // In the metric's unit, as the table shows it (−22.5 pp, not -0.225; a cost's
            // −$0.0000150, not -0.000).
            let unit = crate::format::unit(&a.metric);
            let estimate = a
                .estimate
                .map_or(String::new(), |e| format!(" Δ {}", unit.delta(e, None)));
            let ci =
                a.ci.map_or(String::new(), |[lo, hi]| format!(" {}", unit.interval(lo, hi)));
            escape_untrusted(&format!("{} in {}{estimate}{ci}", a.metric, a.experiment), 200)
        })
        .collect();
    format!(
        "\n---\n⚠️ **Regression accepted** by {} via {}{}{}: {}\n\n<sub>Accepted: {}</sub>\n",
        escape_untrusted(&w.by, 60),
        if w.via == "label" {
            "the `promptgate:accept-regression` label"
        } else {
            "a `/promptgate accept` comment"
        },
        w.at.as_deref()
            .map_or(String::new(), |at| format!(" at {}", escape_untrusted(at, 40))),
        w.commit.as_deref().map_or(String::new(), |c| format!(
            " for `{}`",
            short_sha(c).chars().filter(char::is_ascii_hexdigit).collect::<String>()
        )),
        escape_untrusted(&w.reason, 500),
        if accepted.is_empty() {
            escape_untrusted(&w.waived, 1_000)
        } else {
            accepted.join("; ")
        }
    )
}

/// The report's heading line, as the template writes it, for a verdict re-published without
/// re-rendering the report (a waiver given or withdrawn).
/// `regressed`: a metric regressed (`report::words::regressed`), which a failure's word says.
pub fn heading(verdict: Verdict, regressed: bool, reason: &str) -> String {
    let (symbol, word) = match verdict {
        Verdict::Pass => ("✅", "pass"),
        Verdict::Fail => ("❌", crate::report::words::fail_word(regressed)),
        Verdict::Waived => ("⚠️", "waived"),
        Verdict::Error => ("⛔", "run error"),
        Verdict::NeedsApproval => ("⏸️", "needs approval"),
    };
    format!("### {symbol} promptgate: {word} — {}", escape_untrusted(reason, 500))
}

/// `report` with its first heading line replaced by `heading`.
pub fn with_heading(report: &str, heading: &str) -> String {
    let mut out = Vec::new();
    let mut replaced = false;
    for line in report.lines() {
        if !replaced && line.starts_with("### ") {
            out.push(heading);
            replaced = true;
        } else {
            out.push(line);
        }
    }
    out.join("\n")
}

/// How many times a comment is posted when GitHub answers the post with a server error
/// (looking for it in between: the error may have come after GitHub created it).
const CREATE_TRIES: u32 = 3;

/// Updates the sticky comment, or creates it (and remembers its id) the first time. A sticky
/// comment deleted since it was found is created again. A post GitHub answers with a server
/// error, or whose connection failed, is not sent again blindly: after a pause the comments
/// are listed, and `login`'s comment found there (created before the error) is updated
/// instead. Only a comment the listing does not show yet (it can lag) is posted a second time.
///
/// `login` is who the token posts as; an installation token's is a guess from the comments
/// (`github::logins_among`), which a comment it posts corrects.
pub async fn upsert(
    client: &Client,
    pr: &PullRequest,
    login: &mut String,
    sticky: &mut Option<u64>,
    body: &str,
) -> Result<(), Error> {
    let payload = json!({ "body": body });
    let update = |id: u64| client.repo_route(&format!("/issues/comments/{id}"));
    if let Some(id) = *sticky {
        match client
            .try_send(Method::Patch, &update(id), Some(&payload), UPDATE)
            .await?
        {
            Ok(_) => return Ok(()),
            Err(refusal) if refusal.status == 404 => {
                eprintln!("promptgate: the promptgate comment ({id}) is gone; posting it again");
                *sticky = None;
            }
            // Not ours to edit after all (a token that cannot name itself took another bot's
            // comment for its own: `github::login_among`): post promptgate's own. A token that
            // may not comment at all is refused that post too, and says so.
            // (A rate limit never arrives here: the client retries it, then fails the run.)
            Err(refusal) if refusal.status == 403 => {
                eprintln!("promptgate: GitHub refused to edit comment {id} (403); posting promptgate's own comment");
                *sticky = None;
            }
            Err(refusal) => return Err(refused(Method::Patch, &update(id), UPDATE, refusal)),
        }
    }
    let create = client.repo_route(&format!("/issues/{}/comments", pr.number));
    let mut tries = 0;
    loop {
        tries += 1;
        match client.try_create(&create, &payload, CREATE).await? {
            Ok(created) => {
                *sticky = created["id"].as_u64();
                if let Some(author) = created["user"]["login"].as_str().filter(|a| !a.is_empty()) {
                    author.clone_into(login);
                }
                return Ok(());
            }
            Err(refusal) if (refusal.status >= 500 || refusal.status == UNANSWERED) && tries < CREATE_TRIES => {
                let what = match refusal.status {
                    UNANSWERED => format!("unreachable ({})", refusal.message),
                    status => format!("server error ({status})"),
                };
                eprintln!(
                    "promptgate: GitHub {what} posting the promptgate comment; looking for it before posting again"
                );
                tokio::time::sleep(std::time::Duration::from_secs(2 * u64::from(tries))).await;
                if let Some(id) = find_sticky(&list(client, pr).await?, login.as_str()) {
                    client.send(Method::Patch, &update(id), Some(&payload), UPDATE).await?;
                    *sticky = Some(id);
                    return Ok(());
                }
            }
            Err(refusal) if refusal.status == UNANSWERED => {
                return Err(Error::run_with_hint(
                    format!(
                        "GitHub is unreachable (POST {create} to {}): {}",
                        CREATE.what, refusal.message
                    ),
                    "check GITHUB_API_URL and the runner's network",
                ));
            }
            Err(refusal) => return Err(refused(Method::Post, &create, CREATE, refusal)),
        }
    }
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

    /// A person who takes the marker line out of our comment leaves the state under it: the
    /// comment is still found (a second one would leave its numbers and waiver up), but
    /// someone else's comment carrying a state block is not.
    #[test]
    fn our_comment_without_its_marker_line_is_found_by_its_state() {
        let state = "<!-- promptgate:state {\"v\": 1} -->";
        let comments = vec![
            json!({"id": 1, "user": {"login": "mallory"}, "body": format!("## report\n{state}")}),
            json!({"id": 2, "user": {"login": "github-actions[bot]"}, "body": format!("## report, edited\n{state}")}),
        ];
        assert_eq!(find_sticky(&comments, "github-actions[bot]"), Some(2));
        assert_eq!(find_sticky(&comments[..1], "github-actions[bot]"), None);
        // The marker, where there is one, decides first.
        let mut both = comments.clone();
        both.push(
            json!({"id": 3, "user": {"login": "github-actions[bot]"}, "body": format!("{REPORT_MARKER}\n## report")}),
        );
        assert_eq!(find_sticky(&both, "github-actions[bot]"), Some(3));
    }

    #[test]
    fn modes() {
        assert!(wanted(CommentMode::Always, 0, None));
        assert!(wanted(CommentMode::Affected, 2, None));
        assert!(!wanted(CommentMode::Affected, 0, Some(Verdict::Pass)));
        assert!(!wanted(CommentMode::Regression, 2, None));
        assert!(wanted(CommentMode::Regression, 2, Some(Verdict::Fail)));
        assert!(wanted(CommentMode::Regression, 2, Some(Verdict::Error)));
        assert!(!wanted(CommentMode::Regression, 2, Some(Verdict::Pass)));
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
        let body = progress_body(Some(&facts), "0123456789abcdef");
        assert!(body.starts_with(REPORT_MARKER));
        assert!(
            body.contains("Evaluating 3 experiments, 240 calls on `0123456789ab`… (estimated $0.50)"),
            "{body}"
        );
        assert!(progress_body(None, "0123456789abcdef").contains("Evaluating `0123456789ab`…"));
    }
}
