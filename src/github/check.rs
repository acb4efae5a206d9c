//! The `promptgate` check run: its conclusion carries the verdict (a required check then blocks
//! the merge), its output the summary, and annotations mark the changed prompt and config files.

use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Client, Method, Purpose};
use crate::error::Error;
use crate::results::{ExperimentStatus, ExperimentVerdict, Results, Verdict};

pub const NAME: &str = "promptgate";
/// GitHub takes at most 50 annotations per request.
const MAX_ANNOTATIONS: usize = 50;
/// GitHub's limit on `output.summary` and `output.text`.
const MAX_OUTPUT_CHARS: usize = 65_000;
const MAX_TITLE_CHARS: usize = 120;

const CREATE: Purpose = Purpose {
    what: "create the promptgate check run",
    permission: "checks: write",
};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub annotation_level: &'static str,
    pub title: String,
    pub message: String,
}

/// The check's conclusion for a verdict: a waived regression is neutral, a run waiting for a
/// maintainer `action_required` (fail closed). Results of untrusted code (a fork's artifact)
/// are never a success, nor neutral, which a required check lets through as it does a
/// success: their pass (or waived regression) waits for a maintainer's trusted evaluation,
/// `action_required`.
pub fn conclusion_for(verdict: Verdict, untrusted: bool) -> &'static str {
    match verdict {
        Verdict::Pass | Verdict::Waived if untrusted => "action_required",
        Verdict::Pass => "success",
        Verdict::Fail | Verdict::Error => "failure",
        Verdict::Waived => "neutral",
        Verdict::NeedsApproval => "action_required",
    }
}

pub fn conclusion_of(results: &Results) -> &'static str {
    conclusion_for(results.verdict, results.trust.untrusted)
}

/// The check's title: the verdict's word, then the reason (without saying the word twice:
/// "regression in faq: …", not "regression: regression in faq: …"). `regressed`: a metric
/// regressed (`report::words::regressed`), else a failure is "fail".
pub fn title_for(verdict: Verdict, regressed: bool, reason: &str, untrusted: bool) -> String {
    let word = match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => crate::report::words::fail_word(regressed),
        Verdict::Waived => crate::report::words::accepted(regressed),
        Verdict::Error => "run error",
        Verdict::NeedsApproval => "needs approval",
    };
    let mut title = if reason.to_lowercase().starts_with(word) {
        reason.to_owned()
    } else {
        format!("{word}: {reason}")
    };
    if untrusted {
        title = format!("evaluated without secrets by untrusted code — {title}");
    }
    truncate(&crate::secrets::redact(&title), MAX_TITLE_CHARS)
}

pub fn title(results: &Results) -> String {
    title_for(
        results.verdict,
        crate::report::words::regressed(results),
        &results.reason,
        results.trust.untrusted,
    )
}

/// Annotations on the changed lines (`changed`: 1-based ranges at head) of each file that
/// affected an experiment, on files present at head (`exists`): failure for a regressed
/// experiment of a failing gate, warning for one that fails otherwise (waived), notice for the
/// rest. A file without changed lines (renamed, say) is annotated on its first line.
pub fn annotations(
    results: &Results,
    exists: &dyn Fn(&str) -> bool,
    changed: &dyn Fn(&str) -> Vec<(u32, u32)>,
) -> Vec<Annotation> {
    let mut out: Vec<Annotation> = Vec::new();
    // Failures first: with GitHub's cap of 50, the lines that explain a regression come first.
    let mut experiments: Vec<_> = results
        .experiments
        .iter()
        .filter(|e| e.status != ExperimentStatus::Removed)
        .collect();
    experiments.sort_by_key(|e| e.verdict != ExperimentVerdict::Fail);
    for e in experiments {
        let failing = e.verdict == ExperimentVerdict::Fail;
        for path in e.affected_by.iter().filter(|p| exists(p)) {
            let level = if failing && results.verdict == Verdict::Fail {
                "failure"
            } else if failing {
                "warning"
            } else {
                "notice"
            };
            let title = truncate(
                &format!(
                    "promptgate: {} {}",
                    e.name,
                    if failing { "regressed" } else { "passed" }
                ),
                200,
            );
            let message = truncate(
                &crate::secrets::redact(&format!("This change affects experiment `{}`: {}", e.name, e.reason)),
                1_000,
            );
            let mut ranges = changed(path);
            if ranges.is_empty() {
                ranges.push((1, 1));
            }
            for (start, end) in ranges.into_iter().take(5) {
                out.push(Annotation {
                    path: path.clone(),
                    start_line: start,
                    end_line: end,
                    annotation_level: level,
                    title: title.clone(),
                    message: message.clone(),
                });
            }
        }
    }
    out.truncate(MAX_ANNOTATIONS);
    out
}

/// The check run for `head_sha`, completed.
pub fn body(
    head_sha: &str,
    conclusion: &str,
    title: &str,
    summary: &str,
    annotations: &[Annotation],
    details_url: Option<&str>,
) -> Value {
    let mut body = json!({
        "name": NAME,
        "head_sha": head_sha,
        "status": "completed",
        "conclusion": conclusion,
        "output": {
            "title": truncate(title, MAX_TITLE_CHARS),
            "summary": truncate(summary, MAX_OUTPUT_CHARS),
            "annotations": annotations,
        },
    });
    if let Some(url) = details_url {
        body["details_url"] = json!(url);
    }
    body
}

/// Creates the check run. GitHub lets only an App's token (the Actions token is one) create
/// check runs: a 403 says so besides the missing permission, as a personal token gets one with
/// every permission it can hold.
pub async fn create(client: &Client, body: &Value) -> Result<(), Error> {
    let route = client.repo_route("/check-runs");
    match client.try_send(Method::Post, &route, Some(body), CREATE).await? {
        Ok(_) => Ok(()),
        Err(refusal) if refusal.status == 403 => Err(Error::run_with_hint(
            format!(
                "GitHub refused to {} (403 {}; POST {route})",
                CREATE.what, refusal.message
            ),
            "the token lacks the `checks: write` permission (add it under `permissions:` in the workflow job), or it is a personal access token, which GitHub never lets create check runs: publish with the Actions token (`${{ github.token }}`) or a GitHub App's, or pass `--no-check` (the action's `check: false`)",
        )),
        Err(refusal) => Err(super::client::refused(Method::Post, &route, CREATE, refusal)),
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((i, _)) if text.chars().count() > max => format!("{}…", &text[..i]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcd", 4), "abcd");
        assert_eq!(truncate("ééééé", 3), "éé…");
    }

    #[test]
    fn conclusions() {
        assert_eq!(conclusion_for(Verdict::Pass, false), "success");
        assert_eq!(conclusion_for(Verdict::Fail, false), "failure");
        assert_eq!(conclusion_for(Verdict::Waived, false), "neutral");
        assert_eq!(conclusion_for(Verdict::NeedsApproval, false), "action_required");
        assert_eq!(conclusion_for(Verdict::Error, false), "failure");
        // Untrusted code's pass is never a success, nor a neutral a required check lets through.
        assert_eq!(conclusion_for(Verdict::Pass, true), "action_required");
        assert_eq!(conclusion_for(Verdict::Waived, true), "action_required");
        assert_eq!(conclusion_for(Verdict::Fail, true), "failure");
        assert_eq!(conclusion_for(Verdict::NeedsApproval, true), "action_required");
    }

    #[test]
    fn titles_do_not_repeat_the_verdict() {
        assert_eq!(
            title_for(Verdict::Fail, true, "regression in faq: pass_rate fell", false),
            "regression in faq: pass_rate fell"
        );
        assert_eq!(
            title_for(Verdict::Pass, true, "no blocking regression in 2 experiments", false),
            "pass: no blocking regression in 2 experiments"
        );
        assert_eq!(
            title_for(
                Verdict::NeedsApproval,
                true,
                "a maintainer must approve to run with keys",
                true
            ),
            "evaluated without secrets by untrusted code — needs approval: a maintainer must approve to run with keys"
        );
        // A failure no metric regressed for (a proof a gate requires) is no "regression", and
        // its waiver accepts a failure.
        assert_eq!(
            title_for(Verdict::Fail, false, "faq: pass_rate is not proven non-inferior", false),
            "fail: faq: pass_rate is not proven non-inferior"
        );
        assert_eq!(
            title_for(
                Verdict::Waived,
                false,
                "faq: pass_rate is not proven non-inferior",
                false
            ),
            "failure accepted: faq: pass_rate is not proven non-inferior"
        );
    }
}
