//! The chart PNGs, published where GitHub shows them inline: one commit per run on an orphan
//! branch of the repository (`promptgate-assets` by default), made through the Git Data API
//! (blobs, a tree, a commit, the ref) so no checkout or `git push` is needed.
//!
//! Images live at `pr-<number>/<head sha>/<chart>.png`; each commit builds on the branch's
//! previous tree, so earlier pull requests' images stay where their comments point.
//!
//! The URLs are `{server}/{owner}/{repo}/raw/{commit}/{path}`, pinned to the new commit so a
//! later run never changes an older comment's pictures. `raw.githubusercontent.com` is not
//! used: for a private repository it only answers with a short-lived token in the URL, and
//! GitHub Enterprise Server has no such host. `github.com/…/raw/…` authenticates the viewer's
//! own session instead, so the images show for everyone who can read the repository.

use std::collections::BTreeMap;

use super::client::{Client, Purpose};
use super::git_data::{self, Purposes, TreeFile};
use crate::error::Error;

use git_data::valid_branch;

/// The branch the images go to unless `--asset-branch` says otherwise.
pub const DEFAULT_BRANCH: &str = "promptgate-assets";

const WRITE: &str = "contents: write";
const PURPOSES: Purposes = Purposes {
    blob: Purpose {
        what: "upload the chart images",
        permission: WRITE,
    },
    read_ref: Purpose {
        what: "read the asset branch",
        permission: "contents: read",
    },
    read_commit: Purpose {
        what: "read the asset branch's head commit",
        permission: "contents: read",
    },
    read_tree: Purpose {
        what: "read the asset branch's files",
        permission: "contents: read",
    },
    tree: Purpose {
        what: "create the chart images' tree",
        permission: WRITE,
    },
    commit: Purpose {
        what: "commit the chart images",
        permission: WRITE,
    },
    move_ref: Purpose {
        what: "move the asset branch to the chart images' commit",
        permission: WRITE,
    },
};

/// One image to publish: the chart's name (the report links charts by it) and its PNG.
pub struct Image {
    pub name: String,
    pub png: Vec<u8>,
}

/// Where the images went.
#[derive(Debug)]
pub struct PublishedImages {
    pub commit: String,
    /// Chart name → URL pinned to `commit`.
    pub urls: BTreeMap<String, String>,
}

/// The path of a chart's PNG in the asset branch.
pub fn image_path(pr: u64, head_sha: &str, name: &str) -> String {
    format!("pr-{pr}/{head_sha}/{name}.png")
}

/// The URL GitHub serves a file of `commit` at, for viewers who can read the repository.
pub fn raw_url(server_url: &str, repository: &str, commit: &str, path: &str) -> String {
    format!("{}/{repository}/raw/{commit}/{path}", server_url.trim_end_matches('/'))
}

/// Uploads `images` as one commit on `branch` and returns their commit-pinned URLs.
pub async fn publish(
    client: &Client,
    branch: &str,
    server_url: &str,
    pr: u64,
    head_sha: &str,
    images: &[Image],
) -> Result<PublishedImages, Error> {
    if !valid_branch(branch) {
        return Err(Error::run_with_hint(
            format!("`{branch}` is not a usable asset branch name"),
            "use letters, digits, `-`, `_`, `.` and `/`, e.g. `promptgate-assets`",
        ));
    }
    let mut files = Vec::new();
    let mut paths = BTreeMap::new();
    for image in images {
        let path = image_path(pr, head_sha, &image.name);
        let blob = git_data::blob(client, &image.png, &PURPOSES).await?;
        files.push(TreeFile {
            path: path.clone(),
            blob,
        });
        paths.insert(image.name.clone(), path);
    }
    let short = head_sha.get(..12).unwrap_or(head_sha);
    let message = format!("promptgate: charts for #{pr} at {short}");
    let mut attempt = 0;
    let commit = loop {
        attempt += 1;
        let head = git_data::head(client, branch, &PURPOSES).await?;
        match git_data::commit_files(client, branch, head.as_ref(), &files, &message, &PURPOSES).await? {
            Some(commit) => break commit,
            // Another run moved (or created) the branch in between: build on its commit.
            None if attempt < git_data::MAX_REF_ATTEMPTS => {
                eprintln!("promptgate: the asset branch `{branch}` moved meanwhile; retrying");
            }
            None => {
                return Err(Error::run_with_hint(
                    format!("the asset branch `{branch}` kept moving while the chart images were committed"),
                    "another job writes to it at the same time: re-run this one",
                ));
            }
        }
    };
    let urls = paths
        .into_iter()
        .map(|(name, path)| {
            let url = raw_url(server_url, &client.repository, &commit, &path);
            (name, url)
        })
        .collect();
    Ok(PublishedImages { commit, urls })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn urls_are_pinned_to_the_commit() {
        let path = image_path(7, "abc123", "support-quality");
        assert_eq!(path, "pr-7/abc123/support-quality.png");
        assert_eq!(
            raw_url("https://github.example.com/", "o/r", "c0ffee", &path),
            "https://github.example.com/o/r/raw/c0ffee/pr-7/abc123/support-quality.png"
        );
    }

    #[tokio::test]
    async fn a_dry_run_records_the_first_orphan_commit() {
        let client = Client::dry_run("o/r");
        let images = [Image {
            name: "s-quality".into(),
            png: b"\x89PNG".to_vec(),
        }];
        let published = publish(&client, DEFAULT_BRANCH, "https://github.com", 7, "abc", &images)
            .await
            .unwrap();
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
        let recorded = client.recorded();
        assert_eq!(recorded[2]["body"]["parents"], json!([]));
        assert_eq!(recorded[3]["body"]["ref"], "refs/heads/promptgate-assets");
        assert!(recorded[1]["body"].get("base_tree").is_none());
        assert_eq!(
            published.urls["s-quality"],
            format!("https://github.com/o/r/raw/{}/pr-7/abc/s-quality.png", "0".repeat(40))
        );
    }
}
