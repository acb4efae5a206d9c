//! The Actions environment and the webhook payload in `GITHUB_EVENT_PATH`.
//!
//! Only the fields promptgate uses are read; payloads carry many more.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Diagnostic, Error};

/// The pull request a run is about: what `promptgate ci` gates, and what the fork-safe pair
/// hands from the untrusted job to the trusted one (`pr.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    /// `owner/name` of the base repository.
    pub repository: String,
    pub number: u64,
    pub base_ref: String,
    pub base_sha: String,
    pub head_ref: String,
    pub head_sha: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// The head lives in another repository (a fork): no secrets in `pull_request` runs.
    #[serde(default)]
    pub fork: bool,
}

/// What triggered the workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `pull_request` or `pull_request_target`.
    PullRequest(PullRequest),
    /// A comment on a pull request (`issue_comment`): the PR is fetched through the API.
    PullRequestComment {
        number: u64,
    },
    /// The trusted half of the fork-safe pair: the evaluated run's head commit.
    WorkflowRun {
        head_sha: String,
        pull_requests: Vec<u64>,
    },
    Other(String),
}

/// The variables Actions sets, read once.
#[derive(Clone, Debug)]
pub struct ActionsEnv {
    pub event_name: String,
    pub event_path: Option<PathBuf>,
    pub repository: Option<String>,
    pub api_url: String,
    pub token: Option<String>,
    pub sha: Option<String>,
    pub output: Option<PathBuf>,
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_SERVER_URL/REPO/actions/runs/ID`, for the check run's details link.
    pub run_url: Option<String>,
    /// `GITHUB_SERVER_URL` (GitHub Enterprise's own host), else `https://github.com`.
    pub server_url: String,
}

impl ActionsEnv {
    pub fn from_env() -> ActionsEnv {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let repository = var("GITHUB_REPOSITORY");
        let run_url = match (var("GITHUB_SERVER_URL"), &repository, var("GITHUB_RUN_ID")) {
            (Some(server), Some(repo), Some(id)) => {
                Some(format!("{}/{repo}/actions/runs/{id}", server.trim_end_matches('/')))
            }
            _ => None,
        };
        ActionsEnv {
            event_name: var("GITHUB_EVENT_NAME").unwrap_or_default(),
            event_path: var("GITHUB_EVENT_PATH").map(PathBuf::from),
            repository,
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".to_owned()),
            token: var("GITHUB_TOKEN"),
            sha: var("GITHUB_SHA"),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            run_url,
            server_url: var("GITHUB_SERVER_URL")
                .map(|s| s.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| "https://github.com".to_owned()),
        }
    }

    /// The event payload, parsed into the trigger promptgate acts on.
    pub fn trigger(&self) -> Result<Trigger, Error> {
        let Some(path) = &self.event_path else {
            return Err(Diagnostic::new("GITHUB_EVENT_PATH is not set")
                .hint(
                    "`promptgate ci` runs inside GitHub Actions; elsewhere use `promptgate run --base REF --head REF`",
                )
                .into());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::run(format!("cannot read the event payload {}: {e}", path.display())))?;
        parse_trigger(&self.event_name, &text, path, self.repository.as_deref())
    }

    /// `owner/name`, required to publish.
    pub fn require_repository(&self) -> Result<&str, Error> {
        self.repository.as_deref().ok_or_else(|| {
            Diagnostic::new("GITHUB_REPOSITORY is not set")
                .hint("it is set by GitHub Actions; set it to `owner/name` elsewhere")
                .into()
        })
    }
}

/// Parses a webhook payload. `event_name` is `GITHUB_EVENT_NAME`; when empty, the payload's
/// shape decides.
pub fn parse_trigger(event_name: &str, text: &str, path: &Path, repository: Option<&str>) -> Result<Trigger, Error> {
    let payload: Payload = serde_json::from_str(text).map_err(|e| {
        Error::from(
            Diagnostic::new(format!("the event payload is not a webhook payload: {e}"))
                .in_file(path.display().to_string())
                .at(text, e.line() as u64, e.column() as u64),
        )
    })?;
    let name = match event_name {
        "" if payload.pull_request.is_some() => "pull_request",
        "" if payload.workflow_run.is_some() => "workflow_run",
        "" if payload.issue.is_some() => "issue_comment",
        name => name,
    };
    let repository = payload
        .repository
        .as_ref()
        .map(|r| r.full_name.clone())
        .or(repository.map(str::to_owned))
        .unwrap_or_default();
    match name {
        "pull_request" | "pull_request_target" => {
            let Some(pr) = payload.pull_request else {
                return Err(Diagnostic::new(format!("a `{name}` payload without `pull_request`"))
                    .in_file(path.display().to_string())
                    .into());
            };
            Ok(Trigger::PullRequest(pr.into_pull_request(&repository)))
        }
        "issue_comment" => match payload.issue {
            Some(Issue {
                number,
                pull_request: Some(_),
            }) => Ok(Trigger::PullRequestComment { number }),
            _ => Ok(Trigger::Other("issue_comment on an issue".to_owned())),
        },
        "workflow_run" => {
            let Some(run) = payload.workflow_run else {
                return Err(Diagnostic::new("a `workflow_run` payload without `workflow_run`")
                    .in_file(path.display().to_string())
                    .into());
            };
            Ok(Trigger::WorkflowRun {
                head_sha: run.head_sha,
                pull_requests: run.pull_requests.iter().map(|p| p.number).collect(),
            })
        }
        other => Ok(Trigger::Other(other.to_owned())),
    }
}

/// A `pull_request` object as the REST API and webhooks return it.
pub fn pull_request_from_api(value: &serde_json::Value, repository: &str) -> Result<PullRequest, Error> {
    let raw: RawPullRequest = serde_json::from_value(value.clone())
        .map_err(|e| Error::run(format!("GitHub returned a pull request promptgate cannot read: {e}")))?;
    Ok(raw.into_pull_request(repository))
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    pull_request: Option<RawPullRequest>,
    #[serde(default)]
    issue: Option<Issue>,
    #[serde(default)]
    workflow_run: Option<WorkflowRun>,
    #[serde(default)]
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct RawPullRequest {
    number: u64,
    base: Branch,
    head: Branch,
    #[serde(default)]
    labels: Vec<Label>,
}

impl RawPullRequest {
    fn into_pull_request(self, repository: &str) -> PullRequest {
        let base_repo = self
            .base
            .repo
            .as_ref()
            .map(|r| r.full_name.clone())
            .unwrap_or_else(|| repository.to_owned());
        // A deleted fork shows as `head.repo: null`: treat it as a fork.
        let fork = self.head.repo.as_ref().is_none_or(|r| r.full_name != base_repo);
        PullRequest {
            repository: base_repo,
            number: self.number,
            base_ref: self.base.r#ref,
            base_sha: self.base.sha,
            head_ref: self.head.r#ref,
            head_sha: self.head.sha,
            labels: self.labels.into_iter().map(|l| l.name).collect(),
            fork,
        }
    }
}

#[derive(Deserialize)]
struct Branch {
    r#ref: String,
    sha: String,
    #[serde(default)]
    repo: Option<Repository>,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    #[serde(default)]
    pull_request: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct WorkflowRun {
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<Number>,
}

#[derive(Deserialize)]
struct Number {
    number: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/github").join(name)).unwrap()
    }

    #[test]
    fn pull_request_payload() {
        let trigger = parse_trigger(
            "pull_request",
            &fixture("pull_request.synchronize.json"),
            Path::new("e.json"),
            None,
        )
        .unwrap();
        let Trigger::PullRequest(pr) = trigger else {
            panic!("{trigger:?}")
        };
        assert_eq!(pr.repository, "octo-org/prompts");
        assert_eq!(pr.number, 7);
        assert_eq!(pr.base_ref, "main");
        assert_eq!(pr.head_ref, "tighten-refunds");
        assert!(!pr.fork);
        assert_eq!(pr.labels, vec!["prompts".to_owned()]);
    }

    #[test]
    fn fork_pull_request_payload() {
        let Trigger::PullRequest(pr) =
            parse_trigger("", &fixture("pull_request.fork.json"), Path::new("e.json"), None).unwrap()
        else {
            panic!()
        };
        assert!(pr.fork);
    }

    #[test]
    fn workflow_run_payload() {
        let trigger = parse_trigger(
            "workflow_run",
            &fixture("workflow_run.completed.json"),
            Path::new("e.json"),
            None,
        )
        .unwrap();
        assert_eq!(
            trigger,
            Trigger::WorkflowRun {
                head_sha: "7d2c9a51b3e04f6a8c1d2e3f4a5b6c7d8e9f0a1b".to_owned(),
                pull_requests: vec![]
            }
        );
    }

    #[test]
    fn comment_on_a_pull_request() {
        let text = r#"{"action":"created","issue":{"number":7,"pull_request":{"url":"x"}},"comment":{"body":"/promptgate accept x"},"repository":{"full_name":"o/r"}}"#;
        assert_eq!(
            parse_trigger("issue_comment", text, Path::new("e.json"), None).unwrap(),
            Trigger::PullRequestComment { number: 7 }
        );
    }

    #[test]
    fn broken_payload_points_at_the_file() {
        let e = parse_trigger("pull_request", "{\"pull_request\": 3}", Path::new("e.json"), None).unwrap_err();
        assert!(e.to_string().contains("e.json"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
