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

pub fn conclusion(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "success",
        Verdict::Fail | Verdict::Error => "failure",
        Verdict::Waived => "neutral",
        Verdict::NeedsApproval => "action_required",
    }
}

pub fn title(results: &Results) -> String {
    let word = match results.verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "regression",
        Verdict::Waived => "regression accepted",
        Verdict::Error => "run error",
        Verdict::NeedsApproval => "needs approval",
    };
    truncate(&format!("{word}: {}", results.reason), MAX_TITLE_CHARS)
}

/// One annotation per changed file that affected an experiment, on files present at head
/// (`exists`): failure for a failing experiment, notice otherwise.
pub fn annotations(results: &Results, exists: &dyn Fn(&str) -> bool) -> Vec<Annotation> {
    let mut out: Vec<Annotation> = Vec::new();
    for e in results
        .experiments
        .iter()
        .filter(|e| e.status != ExperimentStatus::Removed)
    {
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
                &format!("This change affects experiment `{}`: {}", e.name, e.reason),
                1_000,
            );
            out.push(Annotation {
                path: path.clone(),
                start_line: 1,
                end_line: 1,
                annotation_level: level,
                title,
                message,
            });
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
            "title": title,
            "summary": truncate(summary, MAX_OUTPUT_CHARS),
            "annotations": annotations,
        },
    });
    if let Some(url) = details_url {
        body["details_url"] = json!(url);
    }
    body
}

pub async fn create(client: &Client, body: &Value) -> Result<(), Error> {
    client
        .send(Method::Post, &client.repo_route("/check-runs"), Some(body), CREATE)
        .await
        .map(drop)
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
        assert_eq!(conclusion(Verdict::Pass), "success");
        assert_eq!(conclusion(Verdict::Fail), "failure");
        assert_eq!(conclusion(Verdict::Waived), "neutral");
    }
}
