//! The ledger on its own branch of the repository (`promptgate-ledger` by default), written
//! through the Git Data API like the chart images (`git_data`), so the history is versioned
//! with the prompts and needs no server.
//!
//! An append reads the file at the branch's head, adds the lines, and commits on that head.
//! When another job appended in between, the ref no longer fast-forwards and GitHub refuses
//! (422 or 409): the file is read again at the new head and the lines appended to it, so two
//! deployments recording at once both land, in some order, and neither loses the other's.

use super::client::{Client, Purpose};
use super::git_data::{self, Purposes, TreeFile};
use crate::error::Error;

const WRITE: &str = "contents: write";
const PURPOSES: Purposes = Purposes {
    blob: Purpose {
        what: "upload the ledger",
        permission: WRITE,
    },
    read_ref: Purpose {
        what: "read the ledger branch",
        permission: "contents: read",
    },
    read_commit: Purpose {
        what: "read the ledger branch's head commit",
        permission: "contents: read",
    },
    read_tree: Purpose {
        what: "read the ledger file",
        permission: "contents: read",
    },
    tree: Purpose {
        what: "create the ledger's tree",
        permission: WRITE,
    },
    commit: Purpose {
        what: "commit the ledger",
        permission: WRITE,
    },
    move_ref: Purpose {
        what: "move the ledger branch to the new ledger commit",
        permission: WRITE,
    },
};

/// Where the ledger went.
#[derive(Debug)]
pub struct Appended {
    pub commit: String,
    /// Whether the branch was created by this append.
    pub created: bool,
    /// Attempts made (more than one: another job moved the branch meanwhile).
    pub attempts: u32,
    /// The file already held every line (`join` added none): no commit was made, and `commit`
    /// is the branch's head.
    pub unchanged: bool,
}

/// The text of `file` at the head of `branch`; `None` when the branch or the file does not
/// exist yet.
pub async fn read(client: &Client, branch: &str, file: &str) -> Result<Option<String>, Error> {
    check_branch(branch)?;
    let Some(head) = git_data::head(client, branch, &PURPOSES).await? else {
        return Ok(None);
    };
    read_at(client, &head, file).await
}

/// Appends `lines` (each ending in a newline) to `file` on `branch`, creating the branch (an
/// orphan) and the file when missing. `append` joins the existing text and the lines.
pub async fn append(
    client: &Client,
    branch: &str,
    file: &str,
    lines: &str,
    message: &str,
    join: impl Fn(&str, &str) -> Result<String, Error>,
) -> Result<Appended, Error> {
    check_branch(branch)?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let head = git_data::head(client, branch, &PURPOSES).await?;
        let existing = match &head {
            Some(head) => read_at(client, head, file).await?.unwrap_or_default(),
            None => String::new(),
        };
        let text = join(&existing, lines)?;
        if let Some(head) = head.as_ref().filter(|_| text.trim_end() == existing.trim_end()) {
            return Ok(Appended {
                commit: head.commit.clone(),
                created: false,
                attempts,
                unchanged: true,
            });
        }
        let blob = git_data::blob(client, text.as_bytes(), &PURPOSES).await?;
        let files = [TreeFile {
            path: file.to_owned(),
            blob,
        }];
        match git_data::commit_files(client, branch, head.as_ref(), &files, message, &PURPOSES).await? {
            Some(commit) => {
                return Ok(Appended {
                    commit,
                    created: head.is_none(),
                    attempts,
                    unchanged: false,
                });
            }
            None if attempts < git_data::MAX_REF_ATTEMPTS => {
                eprintln!("promptgate: the ledger branch `{branch}` moved meanwhile; appending to its new head");
            }
            None => {
                return Err(Error::run_with_hint(
                    format!("the ledger branch `{branch}` moved {attempts} times while promptgate appended to it"),
                    "other jobs record at the same moment: re-run this one (its lines were not written)",
                ));
            }
        }
    }
}

/// The pull request GitHub associates with `sha` (the one that merged it, else the first
/// listed), for a ledger recorded on a push to the default branch. `None` when there is none.
pub async fn pull_request_of_commit(client: &Client, sha: &str) -> Result<Option<u64>, Error> {
    const PURPOSE: Purpose = Purpose {
        what: "find the pull request of the commit",
        permission: "pull-requests: read",
    };
    let route = client.repo_route(&format!("/commits/{sha}/pulls"));
    let listed = client.get(&route, PURPOSE).await?;
    let pulls = listed.as_array().map(Vec::as_slice).unwrap_or_default();
    let merged = pulls.iter().find(|p| p["merge_commit_sha"] == sha);
    Ok(merged.or(pulls.first()).and_then(|p| p["number"].as_u64()))
}

/// The waiver in force on pull request `number`, as promptgate's own sticky comment remembers it
/// (`state`): on a push, the merged pull request's waiver is no part of the results. Only a
/// comment written by `login` (else the token's own identity) is read, so nobody else can
/// plant a waiver.
pub async fn waiver_of_pull_request(
    client: &Client,
    number: u64,
    login: Option<&str>,
) -> Result<Option<crate::results::Waiver>, Error> {
    const PURPOSE: Purpose = Purpose {
        what: "read the pull request's comments",
        permission: "pull-requests: read",
    };
    let known = match login {
        Some(login) => Some(login.to_owned()),
        None => super::identity(client).await?,
    };
    let comments = client
        .get_all(&client.repo_route(&format!("/issues/{number}/comments")), PURPOSE)
        .await?;
    let login = known.unwrap_or_else(|| super::login_among(&comments));
    let Some(id) = super::comment::find_sticky(&comments, &login) else {
        return Ok(None);
    };
    Ok(comments
        .iter()
        .find(|c| c["id"].as_u64() == Some(id))
        .and_then(|c| c["body"].as_str())
        .and_then(super::state::parse)
        .and_then(|state| state.waiver))
}

async fn read_at(client: &Client, head: &git_data::Head, file: &str) -> Result<Option<String>, Error> {
    let Some(tree) = &head.tree else {
        return Ok(None);
    };
    let Some(bytes) = git_data::read_top_level_file(client, tree, file, &PURPOSES).await? else {
        return Ok(None);
    };
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| Error::run(format!("`{file}` on the ledger branch is not UTF-8 text")))
}

fn check_branch(branch: &str) -> Result<(), Error> {
    if git_data::valid_branch(branch) {
        Ok(())
    } else {
        Err(
            crate::error::Diagnostic::new(format!("`{branch}` is not a usable ledger branch name"))
                .hint("use letters, digits, `-`, `_`, `.` and `/`, e.g. `promptgate-ledger`")
                .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_dry_run_creates_the_branch_with_the_lines() {
        let client = Client::dry_run("o/r");
        let appended = append(&client, "promptgate-ledger", "ledger.jsonl", "{}\n", "m", |a, b| {
            Ok(format!("{a}{b}"))
        })
        .await
        .unwrap();
        assert!(appended.created);
        let recorded = client.recorded();
        let routes = client.recorded_routes();
        assert_eq!(
            routes,
            [
                "POST /repos/o/r/git/blobs",
                "POST /repos/o/r/git/trees",
                "POST /repos/o/r/git/commits",
                "POST /repos/o/r/git/refs"
            ]
        );
        assert_eq!(recorded[0]["body"]["content"], git_data::base64(b"{}\n"));
        assert_eq!(recorded[3]["body"]["ref"], "refs/heads/promptgate-ledger");
    }

    #[tokio::test]
    async fn a_branch_name_that_could_leave_the_ref_namespace_is_refused() {
        let client = Client::dry_run("o/r");
        let err = read(&client, "../main", "ledger.jsonl").await.unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(client.recorded().is_empty());
    }
}
