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
    /// `owner/name` of the head's repository, and its id (which a rename keeps); `None` when
    /// GitHub does not say (a deleted fork).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_repository_id: Option<u64>,
}

/// What triggered the workflow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// `pull_request` or `pull_request_target`.
    PullRequest {
        pr: PullRequest,
        event: PullRequestEvent,
    },
    /// A comment on a pull request (`issue_comment`): the PR is fetched through the API.
    PullRequestComment {
        number: u64,
        /// The comment's text, which decides whether it concerns promptgate at all.
        body: String,
        /// The comment's id when this event is its creation (not an edit): a waiver it gives is
        /// given now, whatever time the API later says it was written.
        created: Option<u64>,
    },
    /// The trusted half of the fork-safe pair: the evaluated run's head commit and how it ended.
    WorkflowRun {
        head_sha: String,
        pull_requests: Vec<u64>,
        /// `success`, `failure`, `cancelled`, …; `None` when the payload does not say.
        conclusion: Option<String>,
        /// The repository (`owner/name`) and branch whose head the run evaluated: the pull
        /// request published to must have its head there, not only at the same commit.
        head_repository: Option<String>,
        head_repository_id: Option<u64>,
        head_branch: Option<String>,
    },
    /// A maintainer's `workflow_dispatch` evaluating pull request `pr` pinned to `sha` (the way
    /// a fork's change gets evaluated with keys).
    Dispatch {
        pr: Option<u64>,
        sha: Option<String>,
        /// Who started it (`sender.login`); their permission is checked through the API.
        actor: String,
    },
    Other(String),
}

#[cfg(test)]
impl PullRequest {
    /// Pull request 7 of `o/r`, branch `x` (`h`) onto `main` (`b`), from the same repository.
    pub(crate) fn for_tests() -> PullRequest {
        PullRequest {
            repository: "o/r".to_owned(),
            number: 7,
            base_ref: "main".to_owned(),
            base_sha: "b".to_owned(),
            head_ref: "x".to_owned(),
            head_sha: "h".to_owned(),
            labels: vec![],
            fork: false,
            head_repository: None,
            head_repository_id: None,
        }
    }
}

/// What happened to a pull request (`pull_request` and `pull_request_target` payloads).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PullRequestEvent {
    /// Under `pull_request_target` the workflow runs with the base repository's secrets and a
    /// write token, whoever opened the pull request.
    pub target: bool,
    /// `opened`, `synchronize`, `labeled`, …; empty when the payload carries none.
    pub action: String,
    /// The label a `labeled` or `unlabeled` event is about.
    pub label: Option<String>,
    /// Who caused the event (`sender.login`).
    pub sender: String,
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
    /// `GITHUB_RUN_ATTEMPT` above 1: this run is a re-run, handed its first attempt's event.
    pub rerun: bool,
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
            rerun: var("GITHUB_RUN_ATTEMPT")
                .and_then(|a| a.parse::<u32>().ok())
                .is_some_and(|a| a > 1),
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
        // A payload that is not there is the job's setup, like an unset variable: exit 2.
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::from(
                Diagnostic::new(format!("cannot read the event payload {}: {e}", path.display()))
                    .hint("GITHUB_EVENT_PATH names the event's JSON file, which GitHub Actions writes for each job"),
            )
        })?;
        parse_trigger(&self.event_name, &text, path, self.repository.as_deref())
    }

    /// `owner/name`, required to publish: the event's repository, else `GITHUB_REPOSITORY`.
    pub fn require_repository(&self) -> Result<String, Error> {
        let from_event = self
            .event_path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| serde_json::from_str::<Payload>(&text).ok())
            .and_then(|p| p.repository)
            .map(|r| r.full_name)
            .filter(|name| !name.is_empty());
        from_event.or_else(|| self.repository.clone()).ok_or_else(|| {
            Diagnostic::new("neither the event payload nor GITHUB_REPOSITORY names the repository")
                .hint("it is set by GitHub Actions; set GITHUB_REPOSITORY to `owner/name` elsewhere")
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
    let sender = payload.sender.as_ref().map(|s| s.login.clone()).unwrap_or_default();
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
            Ok(Trigger::PullRequest {
                pr: pr.into_pull_request(&repository),
                event: PullRequestEvent {
                    target: name == "pull_request_target",
                    action: payload.action.unwrap_or_default(),
                    label: payload.label.map(|l| l.name),
                    sender,
                },
            })
        }
        "issue_comment" => match payload.issue {
            Some(Issue {
                number,
                pull_request: Some(_),
            }) => {
                let comment = payload.comment.unwrap_or_default();
                // An edit never gives a waiver (an accept comment counts as its author wrote it),
                // but an edited accept comment concerns the waiver it gave: its earlier text
                // routes it to a re-publish, which finds the waiver gone (or, edited within the
                // minute GitHub's timestamps allow, as it was). Any other edit does nothing.
                let earlier = payload.changes.and_then(|c| c.body).map(|b| b.from);
                let body = match (payload.action.as_deref() == Some("edited"), earlier) {
                    (true, Some(from)) if super::waiver::parse_command(&from).is_some() => from,
                    (true, _) => String::new(),
                    (false, _) => comment.body,
                };
                Ok(Trigger::PullRequestComment {
                    number,
                    body,
                    created: comment.id.filter(|_| payload.action.as_deref() == Some("created")),
                })
            }
            _ => Ok(Trigger::Other("issue_comment on an issue".to_owned())),
        },
        "workflow_dispatch" => {
            let input = |key: &str| {
                payload
                    .inputs
                    .as_ref()
                    .and_then(|i| i.get(key))
                    .and_then(|v| match v {
                        serde_json::Value::String(s) => Some(s.trim().to_owned()),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .filter(|s| !s.is_empty())
            };
            Ok(Trigger::Dispatch {
                pr: input("pr").and_then(|n| n.trim_start_matches('#').parse().ok()),
                sha: input("sha"),
                actor: sender,
            })
        }
        "workflow_run" => {
            let Some(run) = payload.workflow_run else {
                return Err(Diagnostic::new("a `workflow_run` payload without `workflow_run`")
                    .in_file(path.display().to_string())
                    .into());
            };
            Ok(Trigger::WorkflowRun {
                head_sha: run.head_sha,
                pull_requests: run.pull_requests.iter().map(|p| p.number).collect(),
                conclusion: run.conclusion,
                head_repository_id: run.head_repository.as_ref().and_then(|r| r.id),
                head_repository: run.head_repository.map(|r| r.full_name),
                head_branch: run.head_branch,
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
    action: Option<String>,
    #[serde(default)]
    label: Option<Label>,
    #[serde(default)]
    comment: Option<Comment>,
    #[serde(default)]
    sender: Option<Login>,
    #[serde(default)]
    inputs: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pull_request: Option<RawPullRequest>,
    #[serde(default)]
    issue: Option<Issue>,
    #[serde(default)]
    workflow_run: Option<WorkflowRun>,
    #[serde(default)]
    repository: Option<Repository>,
    /// An `edited` comment's earlier text (`changes.body.from`).
    #[serde(default)]
    changes: Option<Changes>,
}

#[derive(Default, Deserialize)]
struct Changes {
    #[serde(default)]
    body: Option<Earlier>,
}

#[derive(Deserialize)]
struct Earlier {
    #[serde(default)]
    from: String,
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
            .flatten()
            .map(|r| r.full_name)
            .unwrap_or_else(|| repository.to_owned());
        // A deleted fork shows as `head.repo: null`: treat it as a fork. GitHub always writes
        // the key; a payload without it (one written by hand) is the base repository's.
        let fork = match &self.head.repo {
            None => false,
            Some(head) => head.as_ref().is_none_or(|r| r.full_name != base_repo),
        };
        let head_repo = self.head.repo.flatten();
        PullRequest {
            repository: base_repo,
            number: self.number,
            base_ref: self.base.r#ref,
            base_sha: self.base.sha,
            head_ref: self.head.r#ref,
            head_sha: self.head.sha,
            labels: self.labels.into_iter().map(|l| l.name).collect(),
            fork,
            head_repository_id: head_repo.as_ref().and_then(|r| r.id),
            head_repository: head_repo.map(|r| r.full_name),
        }
    }
}

#[derive(Deserialize)]
struct Branch {
    r#ref: String,
    sha: String,
    /// `None` when the key is absent, `Some(None)` when it is `null` (a deleted fork).
    #[serde(default, deserialize_with = "present")]
    repo: Option<Option<Repository>>,
}

/// A key that is present, `null` or not: absent keys take the field's default (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    id: Option<u64>,
}

#[derive(Deserialize)]
struct Label {
    name: String,
}

#[derive(Default, Deserialize)]
struct Comment {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct Login {
    login: String,
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
    #[serde(default)]
    conclusion: Option<String>,
    #[serde(default)]
    head_repository: Option<Repository>,
    #[serde(default)]
    head_branch: Option<String>,
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
        let Trigger::PullRequest { pr, event } = trigger else {
            panic!("{trigger:?}")
        };
        assert_eq!(event.action, "synchronize");
        assert!(!event.target);
        assert_eq!(pr.repository, "octo-org/prompts");
        assert_eq!(pr.number, 7);
        assert_eq!(pr.base_ref, "main");
        assert_eq!(pr.head_ref, "tighten-refunds");
        assert!(!pr.fork);
        assert_eq!(pr.labels, vec!["prompts".to_owned()]);
    }

    #[test]
    fn fork_pull_request_payload() {
        let Trigger::PullRequest { pr, event } =
            parse_trigger("", &fixture("pull_request.fork.json"), Path::new("e.json"), None).unwrap()
        else {
            panic!()
        };
        assert!(pr.fork);
        assert_eq!(event.sender, "outside-contrib");
        let Trigger::PullRequest { event, .. } = parse_trigger(
            "pull_request_target",
            &fixture("pull_request.fork.json"),
            Path::new("e.json"),
            None,
        )
        .unwrap() else {
            panic!()
        };
        assert!(event.target);
    }

    /// GitHub writes `head.repo` on every pull request: `null` for a deleted fork (a fork), and a
    /// payload without the key (written by hand) is the base repository's own branch.
    #[test]
    fn a_head_repository_that_is_null_is_a_fork_and_one_left_out_is_not() {
        let payload = |head_repo: &str| {
            format!(
                r#"{{"action":"opened","number":7,"pull_request":{{"number":7,"base":{{"ref":"main","sha":"b","repo":{{"full_name":"o/r"}}}},"head":{{"ref":"x","sha":"h"{head_repo}}}}},"repository":{{"full_name":"o/r"}}}}"#
            )
        };
        let fork = |head_repo: &str| match parse_trigger("pull_request", &payload(head_repo), Path::new("e.json"), None)
        {
            Ok(Trigger::PullRequest { pr, .. }) => (pr.fork, pr.head_repository),
            other => panic!("{other:?}"),
        };
        assert_eq!(fork(""), (false, None));
        assert_eq!(fork(r#","repo":null"#), (true, None));
        assert_eq!(fork(r#","repo":{"full_name":"o/r"}"#), (false, Some("o/r".to_owned())));
        assert_eq!(
            fork(r#","repo":{"full_name":"someone/r"}"#),
            (true, Some("someone/r".to_owned()))
        );
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
                pull_requests: vec![],
                conclusion: Some("failure".to_owned()),
                head_repository: Some("outside-contrib/prompts".to_owned()),
                head_repository_id: Some(990_022_334),
                head_branch: Some("tighten-refunds".to_owned()),
            }
        );
    }

    #[test]
    fn comment_on_a_pull_request() {
        let text = r#"{"action":"created","issue":{"number":7,"pull_request":{"url":"x"}},"comment":{"id":80,"body":"/promptgate accept x"},"repository":{"full_name":"o/r"}}"#;
        assert_eq!(
            parse_trigger("issue_comment", text, Path::new("e.json"), None).unwrap(),
            Trigger::PullRequestComment {
                number: 7,
                body: "/promptgate accept x".to_owned(),
                created: Some(80),
            }
        );
        let edited = text.replace(r#""action":"created""#, r#""action":"edited""#);
        assert!(matches!(
            parse_trigger("issue_comment", &edited, Path::new("e.json"), None).unwrap(),
            Trigger::PullRequestComment { created: None, .. }
        ));
    }

    #[test]
    fn labels_and_dispatches() {
        let text = r#"{"action":"labeled","label":{"name":"promptgate:trust-config"},"sender":{"login":"maya"},
            "pull_request":{"number":7,"base":{"ref":"main","sha":"b"},"head":{"ref":"x","sha":"h"}},"repository":{"full_name":"o/r"}}"#;
        let Trigger::PullRequest { event, .. } =
            parse_trigger("pull_request", text, Path::new("e.json"), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(event.label.as_deref(), Some("promptgate:trust-config"));
        assert_eq!(event.sender, "maya");
        let text =
            r##"{"inputs":{"pr":"#7","sha":" abc "},"sender":{"login":"maya"},"repository":{"full_name":"o/r"}}"##;
        assert_eq!(
            parse_trigger("workflow_dispatch", text, Path::new("e.json"), None).unwrap(),
            Trigger::Dispatch {
                pr: Some(7),
                sha: Some("abc".to_owned()),
                actor: "maya".to_owned()
            }
        );
    }

    #[test]
    fn broken_payload_points_at_the_file() {
        let e = parse_trigger("pull_request", "{\"pull_request\": 3}", Path::new("e.json"), None).unwrap_err();
        assert!(e.to_string().contains("e.json"), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
