//! What promptgate remembers between runs on one pull request, kept in its own sticky comment
//! (a hidden HTML comment at its end): the commit the comment is about, the verdict last
//! published and its regressions, the waiver in force, and the approvals maintainers gave.
//!
//! The comment is the one place both kinds of run can reach without a checkout: a waiver
//! (`/promptgate accept`, the accept label) re-publishes from it without evaluating anything,
//! and the next evaluation reads from it which regressions the waiver accepted. Only a comment
//! written by the bot's own login is read (see `comment::find_sticky`), but anyone with write
//! access can edit that comment: so the waiver and the approvals it records count only while
//! GitHub confirms them on use (the comment or label event recorded is still there, by the same
//! admin or maintainer: `Publisher::apply_waiver`, `approval::find`).

use serde::{Deserialize, Serialize};

use crate::results::{AcceptedRegression, Results, Verdict, Waiver};

/// Starts the hidden state; the JSON follows, then ` -->`.
pub(super) const STATE_OPEN: &str = "<!-- promptgate:state ";
const STATE_CLOSE: &str = " -->";
/// Separates the rendered report from promptgate's notes (approvals, waiver) under it.
pub const NOTES_MARKER: &str = "<!-- promptgate:notes -->";

/// Version of the state's shape; a state of another version is ignored (read as none).
const VERSION: u32 = 1;

/// At most this many regressions are remembered (a waiver beyond it accepts the first ones).
const MAX_REGRESSIONS: usize = 200;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub v: u32,
    /// The head commit the comment is about (being evaluated, or evaluated).
    pub head_sha: String,
    /// The last results published, before any waiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Published>,
    /// The waiver in force, bound to the regressions it accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<Waiver>,
    /// Approval labels maintainers added, each for the head commit it was added at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

/// A verdict as published, without any waiver applied: what a waiver re-publishes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Published {
    pub sha: String,
    pub verdict: Verdict,
    pub reason: String,
    #[serde(default)]
    pub untrusted: bool,
    #[serde(default)]
    pub regressions: Vec<AcceptedRegression>,
    /// The verdict is `error` only because the base's suite does not load: a waiver lifts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub base_error: bool,
    /// A merge with shards missing: no waiver lifts it (`verdict::waivable`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// When these results were published (RFC 3339, UTC): a waiver given before them accepted
    /// earlier results and is not bound to these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Whether a metric regressed (not only a proof, an objective or data missing): the word a
    /// re-published failure is headed with. Absent in state written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regressed: Option<bool>,
}

/// A maintainer's approval label, valid for one head commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub label: String,
    pub sha: String,
    pub by: String,
    /// The `labeled` issue event.
    pub event_id: u64,
}

impl State {
    pub fn new(head_sha: &str) -> State {
        State {
            v: VERSION,
            head_sha: head_sha.to_owned(),
            ..State::default()
        }
    }

    /// The approval for `label` at `sha`, if a maintainer gave one.
    pub fn approval(&self, label: &str, sha: &str) -> Option<&Approval> {
        self.approvals.iter().find(|a| a.label == label && a.sha == sha)
    }

    /// Remembers an approval, replacing an older one for the same label and commit.
    pub fn approve(&mut self, approval: Approval) {
        self.approvals
            .retain(|a| !(a.label == approval.label && a.sha == approval.sha));
        // Approvals of other commits can never apply again; keep the list short. The one given
        // now stays though the state has not announced its commit yet (a label added to a
        // head no run has published: the pull request's head as this run sees it).
        let (head, given) = (self.head_sha.clone(), approval.sha.clone());
        self.approvals.push(approval);
        self.approvals.retain(|a| a.sha == head || a.sha == given);
    }
}

impl Published {
    /// The results as evaluated (`verdict` and `reason` before any waiver), published `at`
    /// (GitHub's clock: `Client::now`).
    pub fn of(results: &Results, verdict: Verdict, reason: &str, at: String) -> Published {
        let mut regressions = super::waiver::regressions(results);
        regressions.truncate(MAX_REGRESSIONS);
        Published {
            sha: results.head.sha.clone(),
            verdict,
            reason: reason.to_owned(),
            untrusted: results.trust.untrusted,
            regressions,
            // Waivable only without a hold, as `verdict::waivable` says.
            base_error: crate::verdict::error_is_the_bases(verdict, reason, results)
                && results.trust.approval.is_none(),
            partial: crate::verdict::partial(results),
            at: Some(at),
            regressed: Some(crate::report::words::regressed(results)),
        }
    }

    /// Whether a metric of these results regressed (`report::words::regressed`); so taken when
    /// the state, written before it was kept, does not say.
    pub fn any_regression(&self) -> bool {
        self.regressed != Some(false)
    }

    /// Whether a waiver given at `given_at` may be bound to these results: given after they
    /// were published (RFC 3339 UTC times sort as text), or results from before the time was kept.
    pub fn accepts_waiver_given_at(&self, given_at: Option<&str>) -> bool {
        match (&self.at, given_at) {
            (None, _) => true,
            (Some(at), Some(given)) => given >= at.as_str(),
            (Some(_), None) => false,
        }
    }

    /// The regressions as a waiver binds and covers them: untrusted results' by name only
    /// (their numbers are the evaluated code's word).
    pub fn regressions_to_waive(&self) -> Vec<AcceptedRegression> {
        if self.untrusted {
            super::waiver::names_only(&self.regressions)
        } else {
            self.regressions.clone()
        }
    }

    /// Whether a waiver may lift the published verdict (as [`crate::verdict::waivable`]).
    pub fn waivable(&self) -> bool {
        !self.partial && (self.verdict == Verdict::Fail || (self.verdict == Verdict::Error && self.base_error))
    }
}

/// The hidden state at the end of a comment body.
pub fn render(state: &State) -> String {
    let json = serde_json::to_string(state).unwrap_or_else(|_| "{}".to_owned());
    // `<` and `>` only ever occur inside JSON strings, where `\u003c` means the same: so the
    // HTML comment cannot be closed early (`-->`) by a name or a reason.
    let json = json.replace('<', "\\u003c").replace('>', "\\u003e");
    format!("{STATE_OPEN}{json}{STATE_CLOSE}")
}

/// The state in a comment body, if it holds one of this version.
pub fn parse(body: &str) -> Option<State> {
    let start = body.rfind(STATE_OPEN)? + STATE_OPEN.len();
    let end = start + body[start..].find(STATE_CLOSE)?;
    let state: State = serde_json::from_str(&body[start..end]).ok()?;
    (state.v == VERSION).then_some(state)
}

/// The part of a comment body above promptgate's notes and state: the rendered report (or the
/// progress message).
pub fn report_part(body: &str) -> &str {
    let cut = [body.find(NOTES_MARKER), body.find(STATE_OPEN)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(body.len());
    body[..cut].trim_end()
}

/// A comment body: the report, the notes under it (when any), and the state.
pub fn body(report: &str, notes: &str, state: &State) -> String {
    // The notes and the state leave at least `MIN_REPORT` characters to the report: past that
    // the state forgets its last remembered regressions (a waiver then does not cover them: it
    // fails closed) and the notes' end gives way.
    let limit = MAX_BODY_CHARS - MIN_REPORT - CUT.chars().count() - CLOSING - 2;
    let state = fitted(state, limit);
    let mut tail = String::new();
    if !notes.trim().is_empty() {
        let room = limit.saturating_sub(state.chars().count() + NOTES_MARKER.len() + NOTES_CUT.chars().count() + 4);
        let notes = notes.trim_end();
        tail.push_str(NOTES_MARKER);
        tail.push('\n');
        if notes.chars().count() <= room {
            tail.push_str(notes);
        } else {
            let end = notes.char_indices().nth(room).map_or(notes.len(), |(i, _)| i);
            let kept = &notes[..end];
            tail.push_str(kept.rfind('\n').map_or(kept, |line| &kept[..line]).trim_end());
            tail.push_str(NOTES_CUT);
        }
        tail.push_str("\n\n");
    }
    tail.push_str(&state);
    tail.push('\n');
    // GitHub refuses a longer comment. The report is rendered to fit with room to spare; the
    // notes and the state (long reasons, many regressions) can still take that room, and then
    // the report's end gives way: the state must stay whole to be read back.
    let room = MAX_BODY_CHARS.saturating_sub(tail.chars().count() + CUT.chars().count() + CLOSING + 2);
    let report = report.trim_end();
    let mut body = if report.chars().count() <= room {
        report.to_owned()
    } else {
        let end = report.char_indices().nth(room).map_or(report.len(), |(i, _)| i);
        let kept = &report[..end];
        let kept = kept.rfind('\n').map_or(kept, |line| &kept[..line]).trim_end();
        format!("{kept}{}{CUT}", closing(kept))
    };
    body.push_str("\n\n");
    body.push_str(&tail);
    body
}

/// The most characters GitHub takes in a comment.
pub const MAX_BODY_CHARS: usize = 65_536;

/// The least of the report a comment keeps, however long its notes and state.
const MIN_REPORT: usize = 4_000;

/// What ends notes cut to fit.
const NOTES_CUT: &str = "\n\n… (the notes did not fit in a comment: the run's results hold them)";

/// The state rendered in at most `limit` characters: whole when it fits (it always does but
/// for hundreds of long-named regressions or very long reasons), else with its remembered and
/// its waiver's accepted regressions halved, then its reasons cut, then its approvals halved,
/// until it does. Each step fails closed: a regression not remembered is not waived, an
/// approval not kept is asked for again.
fn fitted(state: &State, limit: usize) -> String {
    let mut text = render(state);
    let mut state = state.clone();
    let cut = |text: &mut String| {
        let long = text.chars().count() > 1_000;
        if long {
            *text = text.chars().take(1_000).collect();
        }
        long
    };
    while text.chars().count() > limit {
        let halve = |n: usize| n / 2;
        let shrank = match (&mut state.results, &mut state.waiver) {
            (Some(r), _) if !r.regressions.is_empty() => {
                r.regressions.truncate(halve(r.regressions.len()));
                true
            }
            (_, Some(w)) if !w.accepted.is_empty() => {
                w.accepted.truncate(halve(w.accepted.len()));
                true
            }
            (results, waiver) => {
                results.as_mut().is_some_and(|r| cut(&mut r.reason))
                    || waiver.as_mut().is_some_and(|w| cut(&mut w.waived) | cut(&mut w.reason))
                    || (!state.approvals.is_empty() && {
                        state.approvals.truncate(halve(state.approvals.len()));
                        true
                    })
            }
        };
        if !shrank {
            break;
        }
        text = render(&state);
    }
    text
}

/// Room kept for [`closing`]'s text.
const CLOSING: usize = 200;

/// What closes the blocks a cut report leaves open (a code fence, collapsed sections), so the
/// cut's note and the notes below it render as text.
fn closing(kept: &str) -> String {
    let mut close = String::new();
    if kept.lines().filter(|l| l.trim_start().starts_with("```")).count() % 2 == 1 {
        close.push_str("\n```");
    }
    let open = kept
        .matches("<details")
        .count()
        .saturating_sub(kept.matches("</details>").count());
    for _ in 0..open.min(10) {
        close.push_str("\n</details>");
    }
    close
}

/// Where the report was cut to fit.
const CUT: &str = "\n\n… (the rest of the report did not fit in a comment: it is in the run's `report.md`)";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Direction;

    /// A merge with shards missing is published as such, and no waiver lifts it.
    #[test]
    fn a_partial_merge_is_not_waivable() {
        let mut results = Results::new(crate::results::test_parts());
        results.merged = Some(crate::results::MergeFacts {
            count: 3,
            shards: vec![1, 3],
            missing: vec![2],
        });
        let published = Published::of(&results, Verdict::Fail, "regression in faq", String::new());
        assert!(published.partial && !published.waivable());
        results.merged = None;
        let whole = Published::of(&results, Verdict::Fail, "regression in faq", String::new());
        assert!(!whole.partial && whole.waivable());
    }

    #[test]
    fn a_state_survives_the_comment_and_cannot_close_it_early() {
        let mut state = State::new("abc");
        state.results = Some(Published {
            sha: "abc".to_owned(),
            verdict: Verdict::Fail,
            reason: "regression in x --> <!-- promptgate:state {} -->".to_owned(),
            untrusted: false,
            regressions: vec![AcceptedRegression {
                experiment: "faq-->".to_owned(),
                metric: "pass_rate".to_owned(),
                direction: Direction::Higher,
                estimate: Some(-0.25),
                ci: Some([-0.4, -0.1]),
            }],
            base_error: false,
            partial: false,
            at: None,
            regressed: None,
        });
        let body = body("report\n", "notes", &state);
        let hidden = &body[body.find(STATE_OPEN).unwrap()..];
        assert_eq!(hidden.matches("-->").count(), 1, "{hidden}");
        assert_eq!(parse(&body), Some(state));
        assert_eq!(report_part(&body), "report");
    }

    /// A report that fits its own cap, with notes and a state that take the room left: the
    /// report's end gives way, the comment fits GitHub's limit and its state reads back whole.
    #[test]
    fn a_comment_that_would_be_too_long_cuts_the_report_never_the_state() {
        let mut state = State::new("abc");
        state.results = Some(Published {
            sha: "abc".to_owned(),
            verdict: Verdict::Fail,
            reason: "ü".repeat(4_000),
            untrusted: false,
            regressions: Vec::new(),
            base_error: false,
            partial: false,
            at: None,
            regressed: None,
        });
        let report = "| a row of the report |\n".repeat(60_000 / 23);
        let notes = "a note\n".repeat(500);
        let body = body(&report, &notes, &state);
        assert!(body.chars().count() <= MAX_BODY_CHARS, "{}", body.chars().count());
        assert_eq!(parse(&body).as_ref(), Some(&state));
        let shown = report_part(&body);
        assert!(
            shown.ends_with("it is in the run's `report.md`)"),
            "{}",
            &shown[shown.len() - 200..]
        );
        assert!(
            shown
                .lines()
                .rev()
                .nth(2)
                .is_some_and(|l| l == "| a row of the report |"),
            "cut at a line"
        );
        assert!(body.contains(notes.trim_end()));
        // A cut inside a collapsed section's code block closes both before its note.
        let blocks = format!(
            "<details><summary>charts</summary>\n\n```text\n{}",
            "a chart line\n".repeat(6_000)
        );
        let cut = self::body(&blocks, &notes, &state);
        assert!(cut.chars().count() <= MAX_BODY_CHARS);
        let shown = report_part(&cut);
        assert!(
            shown.contains("a chart line\n```\n</details>\n\n… (the rest of the report"),
            "{}",
            &shown[shown.len() - 300..]
        );
        // Notes and a state that would take the whole comment: the state forgets its last
        // regressions and the notes' end gives way, and some of the report stays.
        let mut crowded = state.clone();
        crowded.results.as_mut().unwrap().regressions = (0..200)
            .map(|i| crate::results::AcceptedRegression {
                experiment: format!("{i}-{}", "e".repeat(300)),
                metric: "pass_rate".to_owned(),
                direction: crate::results::Direction::Higher,
                estimate: Some(-0.25),
                ci: Some([-0.3, -0.2]),
            })
            .collect();
        // A waiver bound to as many, with the failing reason at length.
        let accepted = crowded.results.as_ref().unwrap().regressions.clone();
        crowded.waiver = Some(crate::results::Waiver {
            by: "maintainer".to_owned(),
            reason: "accepted".to_owned(),
            via: "comment".to_owned(),
            waived: "x".repeat(20_000),
            at: None,
            commit: None,
            accepted,
            source_id: Some(7),
        });
        let long_notes = "| a row of the approvals' table |\n".repeat(3_000);
        let body = self::body(&report, &long_notes, &crowded);
        assert!(body.chars().count() <= MAX_BODY_CHARS, "{}", body.chars().count());
        let read = parse(&body).expect("the state reads back");
        let kept = &read.results.as_ref().unwrap().regressions;
        assert!(kept.len() < 200, "{}", kept.len());
        assert_eq!(kept[..], crowded.results.as_ref().unwrap().regressions[..kept.len()]);
        let waiver = read.waiver.as_ref().unwrap();
        assert!(!waiver.accepted.is_empty() && waiver.accepted.len() < 200);
        assert_eq!(
            waiver.accepted[..],
            crowded.waiver.as_ref().unwrap().accepted[..waiver.accepted.len()]
        );
        assert!(body.contains("the notes did not fit in a comment"));
        assert!(report_part(&body).chars().count() >= 3_000);
        // One that fits is left whole.
        let short = self::body("report\n", "notes", &State::new("abc"));
        assert!(!short.contains("did not fit"));
    }

    #[test]
    fn a_body_without_state_or_of_another_version_has_none() {
        assert_eq!(parse("## report"), None);
        assert_eq!(
            parse("<!-- promptgate:state {\"v\": 99, \"head_sha\": \"x\"} -->"),
            None
        );
        assert_eq!(parse("<!-- promptgate:state not json -->"), None);
        assert_eq!(report_part("## report\n"), "## report");
    }

    #[test]
    fn approvals_are_kept_for_the_head_commit_only() {
        let mut state = State::new("new");
        let approval = |sha: &str, by: &str| Approval {
            label: "promptgate:trust-config".to_owned(),
            sha: sha.to_owned(),
            by: by.to_owned(),
            event_id: 1,
        };
        state.approvals.push(approval("old", "maya"));
        state.approve(approval("new", "maya"));
        state.approve(approval("new", "omar"));
        assert_eq!(state.approvals, vec![approval("new", "omar")]);
        assert!(state.approval("promptgate:trust-config", "new").is_some());
        assert!(state.approval("promptgate:trust-config", "old").is_none());
        // A label added at a head the state has not announced yet: kept for that head, with the
        // announced head's; a third commit's goes.
        state.approvals.push(approval("older", "maya"));
        state.approve(approval("newer", "maya"));
        assert!(state.approval("promptgate:trust-config", "newer").is_some());
        assert!(state.approval("promptgate:trust-config", "new").is_some());
        assert!(state.approval("promptgate:trust-config", "older").is_none());
    }
}
