//! Commits to a branch of the repository through the Git Data API (blobs, trees, commits,
//! refs), so no checkout or `git push` is needed: the chart images (`assets`) and the ledger
//! (`ledger`) are written this way.
//!
//! A commit is built on the branch's head as read, and the ref is moved without force. When
//! another run moved (or created) the branch in between, GitHub refuses the move (422, or 409
//! for a conflicting ref) and [`move_branch`] says so, so the caller re-reads the head and
//! builds again on it: nothing another run wrote is ever overwritten.

use serde_json::{Value, json};

use super::client::{Client, Method, Purpose};
use crate::error::Error;

/// Attempts at moving a branch when another run moved it first.
pub const MAX_REF_ATTEMPTS: u32 = 3;

/// What each request of a commit is for, in the words and permissions its errors name.
#[derive(Clone, Copy, Debug)]
pub struct Purposes {
    pub blob: Purpose,
    pub read_ref: Purpose,
    pub read_commit: Purpose,
    pub read_tree: Purpose,
    pub tree: Purpose,
    pub commit: Purpose,
    pub move_ref: Purpose,
}

/// A branch's head commit and that commit's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    pub commit: String,
    pub tree: Option<String>,
}

/// A file of the new commit: its path and the blob holding its bytes.
pub struct TreeFile {
    pub path: String,
    pub blob: String,
}

/// Whether `name` is a branch name promptgate is willing to write to and put in a URL.
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

/// The branch's head, or `None` when the branch does not exist yet.
pub async fn head(client: &Client, branch: &str, purposes: &Purposes) -> Result<Option<Head>, Error> {
    let route = client.repo_route(&format!("/git/ref/heads/{branch}"));
    let commit = match client.try_get(&route, purposes.read_ref).await? {
        Ok(value) => value["object"]["sha"].as_str().map(str::to_owned),
        Err(refusal) if refusal.status == 404 => None,
        Err(refusal) => return Err(super::client::refused(Method::Get, &route, purposes.read_ref, refusal)),
    };
    let Some(commit) = commit else {
        return Ok(None);
    };
    let route = client.repo_route(&format!("/git/commits/{commit}"));
    let parent = client.get(&route, purposes.read_commit).await?;
    let tree = parent["tree"]["sha"].as_str().map(str::to_owned);
    Ok(Some(Head { commit, tree }))
}

/// Uploads `bytes` as a blob and returns its SHA.
pub async fn blob(client: &Client, bytes: &[u8], purposes: &Purposes) -> Result<String, Error> {
    let created = client
        .send(
            Method::Post,
            &client.repo_route("/git/blobs"),
            Some(&json!({"content": base64(bytes), "encoding": "base64"})),
            purposes.blob,
        )
        .await?;
    sha(client, &created, purposes.blob)
}

/// The bytes of the file at `path` (at the tree's top level) in `tree`, or `None` when the tree
/// has no such file.
pub async fn read_top_level_file(
    client: &Client,
    tree: &str,
    path: &str,
    purposes: &Purposes,
) -> Result<Option<Vec<u8>>, Error> {
    let listing = client
        .get(&client.repo_route(&format!("/git/trees/{tree}")), purposes.read_tree)
        .await?;
    let entry = listing["tree"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["path"] == path && e["type"] == "blob");
    let Some(blob_sha) = entry.and_then(|e| e["sha"].as_str()) else {
        return Ok(None);
    };
    let blob = client
        .get(
            &client.repo_route(&format!("/git/blobs/{blob_sha}")),
            purposes.read_tree,
        )
        .await?;
    let content = blob["content"].as_str().unwrap_or("");
    match blob["encoding"].as_str() {
        Some("base64") => unbase64(content).map(Some).ok_or_else(|| {
            Error::run(format!(
                "GitHub answered the blob of `{path}` with content that is not base64"
            ))
        }),
        Some("utf-8") => Ok(Some(content.as_bytes().to_vec())),
        other => Err(Error::run(format!(
            "GitHub answered the blob of `{path}` in an encoding promptgate does not read ({})",
            other.unwrap_or("none")
        ))),
    }
}

/// Creates a commit of `files` on top of `head` (or an orphan commit when the branch is new)
/// and moves the branch to it. `Ok(None)`: the branch moved meanwhile; read its head again.
pub async fn commit_files(
    client: &Client,
    branch: &str,
    head: Option<&Head>,
    files: &[TreeFile],
    message: &str,
    purposes: &Purposes,
) -> Result<Option<String>, Error> {
    let entries: Vec<Value> = files
        .iter()
        .map(|f| json!({"path": f.path, "mode": "100644", "type": "blob", "sha": f.blob}))
        .collect();
    let mut tree_body = json!({"tree": entries});
    if let Some(tree) = head.and_then(|h| h.tree.as_deref()) {
        tree_body["base_tree"] = json!(tree);
    }
    let tree = client
        .send(
            Method::Post,
            &client.repo_route("/git/trees"),
            Some(&tree_body),
            purposes.tree,
        )
        .await?;
    let parents: Vec<&str> = head.iter().map(|h| h.commit.as_str()).collect();
    let created = client
        .send(
            Method::Post,
            &client.repo_route("/git/commits"),
            Some(&json!({"message": message, "tree": sha(client, &tree, purposes.tree)?, "parents": parents})),
            purposes.commit,
        )
        .await?;
    let commit = sha(client, &created, purposes.commit)?;
    let (method, route, body) = match head {
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
    match client.try_send(method, &route, Some(&body), purposes.move_ref).await? {
        Ok(_) => Ok(Some(commit)),
        // Not a fast-forward any more, or the ref was created by another run: build again.
        Err(refusal) if matches!(refusal.status, 409 | 422) => Ok(None),
        Err(refusal) => Err(super::client::refused(method, &route, purposes.move_ref, refusal)),
    }
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
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 as the blobs endpoint answers it: padded, with line breaks every 60
/// characters. `None` for anything else.
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(symbols).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648, section 10.
    const VECTORS: [(&str, &str); 7] = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (input, expected) in VECTORS {
            assert_eq!(base64(input.as_bytes()), expected);
            assert_eq!(unbase64(expected).unwrap(), input.as_bytes(), "{expected}");
        }
        assert!(base64(b"\x89PNG\r\n\x1a\n").starts_with("iVBOR"));
    }

    #[test]
    fn unbase64_reads_githubs_wrapped_lines_and_refuses_the_rest() {
        // GitHub wraps blob content at 60 characters with "\n".
        let text: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let wrapped: String = base64(&text)
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(unbase64(&wrapped).unwrap(), text);
        for bad in ["Zg=", "Zg==Zm8=", "Z===", "Zm9*", "Zg"] {
            assert_eq!(unbase64(bad), None, "{bad}");
        }
    }

    #[test]
    fn branch_names() {
        assert!(valid_branch("promptgate-assets"));
        assert!(valid_branch("ci/promptgate_charts.v2"));
        for bad in ["", "-x", "a..b", "a b", "a/", "x.lock", "a?b", "/a", "a//b"] {
            assert!(!valid_branch(bad), "{bad}");
        }
    }
}
