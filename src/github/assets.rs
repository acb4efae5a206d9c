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

use serde_json::{Value, json};

use super::client::{Client, Method, Purpose};
use crate::error::Error;

/// The branch the images go to unless `--asset-branch` says otherwise.
pub const DEFAULT_BRANCH: &str = "promptgate-assets";

/// Attempts at moving the branch when another run moved it first.
const MAX_REF_ATTEMPTS: u32 = 3;

const WRITE: &str = "contents: write";
const BLOB: Purpose = Purpose {
    what: "upload the chart images",
    permission: WRITE,
};
const READ_REF: Purpose = Purpose {
    what: "read the asset branch",
    permission: "contents: read",
};
const READ_COMMIT: Purpose = Purpose {
    what: "read the asset branch's head commit",
    permission: "contents: read",
};
const TREE: Purpose = Purpose {
    what: "create the chart images' tree",
    permission: WRITE,
};
const COMMIT: Purpose = Purpose {
    what: "commit the chart images",
    permission: WRITE,
};
const REF: Purpose = Purpose {
    what: "move the asset branch to the chart images' commit",
    permission: WRITE,
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

/// Whether `name` is a branch name promptgate is willing to put in a URL.
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['/', '-', '.'])
        && !name.ends_with(['/', '.'])
        && !name.contains("..")
        && !name.contains("//")
        && !name.ends_with(".lock")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'))
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
    let mut entries = Vec::new();
    let mut paths = BTreeMap::new();
    for image in images {
        let blob = client
            .send(
                Method::Post,
                &client.repo_route("/git/blobs"),
                Some(&json!({"content": base64(&image.png), "encoding": "base64"})),
                BLOB,
            )
            .await?;
        let path = image_path(pr, head_sha, &image.name);
        entries.push(json!({"path": path, "mode": "100644", "type": "blob", "sha": sha(client, &blob, BLOB)?}));
        paths.insert(image.name.clone(), path);
    }
    let short = head_sha.get(..12).unwrap_or(head_sha);
    let message = format!("promptgate: charts for #{pr} at {short}");
    let ref_route = client.repo_route(&format!("/git/ref/heads/{branch}"));
    let mut attempt = 0;
    let commit = loop {
        attempt += 1;
        let head = match client.try_get(&ref_route, READ_REF).await? {
            Ok(value) => value["object"]["sha"].as_str().map(str::to_owned),
            Err(refusal) if refusal.status == 404 => None,
            Err(refusal) => return Err(super::client::refused(Method::Get, &ref_route, READ_REF, refusal)),
        };
        let mut tree_body = json!({"tree": entries});
        if let Some(head) = &head {
            let route = client.repo_route(&format!("/git/commits/{head}"));
            let parent = client.get(&route, READ_COMMIT).await?;
            if let Some(tree) = parent["tree"]["sha"].as_str() {
                tree_body["base_tree"] = json!(tree);
            }
        }
        let tree = client
            .send(Method::Post, &client.repo_route("/git/trees"), Some(&tree_body), TREE)
            .await?;
        let parents: Vec<&str> = head.iter().map(String::as_str).collect();
        let created = client
            .send(
                Method::Post,
                &client.repo_route("/git/commits"),
                Some(&json!({"message": message, "tree": sha(client, &tree, TREE)?, "parents": parents})),
                COMMIT,
            )
            .await?;
        let commit = sha(client, &created, COMMIT)?;
        let (method, route, body) = match &head {
            Some(_) => (
                Method::Patch,
                client.repo_route(&format!("/git/refs/heads/{branch}")),
                json!({"sha": commit, "force": false}),
            ),
            None => (
                Method::Post,
                client.repo_route("/git/refs"),
                json!({"ref": format!("refs/heads/{branch}"), "sha": commit}),
            ),
        };
        match client.try_send(method, &route, Some(&body), REF).await? {
            Ok(_) => break commit,
            // Another run moved (or created) the branch in between: build on its commit.
            Err(refusal) if refusal.status == 422 && attempt < MAX_REF_ATTEMPTS => {
                eprintln!("promptgate: the asset branch `{branch}` moved meanwhile; retrying");
            }
            Err(refusal) => return Err(super::client::refused(method, &route, REF, refusal)),
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

/// The `sha` GitHub answered with; a dry run, which answers nothing, gets a placeholder.
fn sha(client: &Client, value: &Value, purpose: Purpose) -> Result<String, Error> {
    match value["sha"].as_str() {
        Some(sha) => Ok(sha.to_owned()),
        None if client.is_dry_run() => Ok("0".repeat(40)),
        None => Err(Error::run(format!(
            "GitHub answered the request to {} without a `sha`",
            purpose.what
        ))),
    }
}

/// Standard base64 with padding, as the blobs endpoint expects.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
        assert!(base64(b"\x89PNG\r\n\x1a\n").starts_with("iVBOR"));
    }

    #[test]
    fn urls_are_pinned_to_the_commit() {
        let path = image_path(7, "abc123", "support-quality");
        assert_eq!(path, "pr-7/abc123/support-quality.png");
        assert_eq!(
            raw_url("https://github.example.com/", "o/r", "c0ffee", &path),
            "https://github.example.com/o/r/raw/c0ffee/pr-7/abc123/support-quality.png"
        );
    }

    #[test]
    fn branch_names() {
        assert!(valid_branch("promptgate-assets"));
        assert!(valid_branch("ci/promptgate_charts.v2"));
        for bad in ["", "-x", "a..b", "a b", "a/", "x.lock", "a?b", "/a", "a//b"] {
            assert!(!valid_branch(bad), "{bad}");
        }
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
        let routes: Vec<String> = client
            .recorded()
            .iter()
            .map(|r| format!("{} {}", r["method"].as_str().unwrap(), r["route"].as_str().unwrap()))
            .collect();
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
