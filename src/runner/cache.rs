//! The response cache: content-addressed entries on disk, one per successful call.
//!
//! The key is a SHA-256 over the endpoint's `cache_identity` and the canonical JSON of the
//! request (model, messages, temperature, max_tokens, top_p and the seed, which encodes the
//! repeat), so the same call to the same endpoint is answered once, across runs and branches.
//!
//! Layout: 256 append-only shard logs, `<dir>/<first 2 hex of the key>.jsonl`, one JSON entry a
//! line. A file per entry cost more CPU in the file system than the calls themselves at 12,000
//! calls a run; an append to an open file costs one `write`. Each entry is written with a single
//! `write` on an `O_APPEND` file, so concurrent runs do not interleave lines; a line that does
//! not parse (a torn write after a crash) is skipped, and a later entry for a key wins.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::providers::{Request, Response};

/// Bumped when the meaning of a key or the entry format changes, so old entries are ignored.
const KEY_VERSION: &str = "promptgate-cache-v1";

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    /// Shards read so far (by their two-hex prefix), and the open append handles.
    shards: Arc<Mutex<HashMap<String, Shard>>>,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<String, (Response, Option<f64>)>,
    file: Option<std::fs::File>,
    /// The log ends in a torn line: start the next entry on a line of its own.
    torn_tail: bool,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    response: Response,
    latency_ms: Option<f64>,
}

/// Where the response cache of the repository at `repo_root` lives: `explicit` (`--cache-dir`,
/// `PROMPTGATE_CACHE_DIR`), else `$XDG_CACHE_HOME/promptgate/<repo-id>`, else
/// `$HOME/.cache/promptgate/<repo-id>`; `None` (no cache, with a warning) when there is no home.
///
/// Never inside the checkout by default: a pull request could commit a `.promptgate/cache` of
/// forged answers, and a gate that read it would pass whatever the models say.
pub fn cache_dir(repo_root: &Path, explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(dir) = explicit {
        if let (Ok(dir), Ok(root)) = (dir.canonicalize(), repo_root.canonicalize())
            && dir.starts_with(&root)
        {
            eprintln!(
                "warning: the response cache {} is inside the checkout: a pull request could commit answers into it",
                dir.display()
            );
        }
        return Some(dir.to_owned());
    }
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".cache")));
    let Some(base) = base else {
        eprintln!(
            "warning: no cache folder ($XDG_CACHE_HOME and $HOME are unset): every call is sent; pass --cache-dir DIR to keep answers"
        );
        return None;
    };
    Some(base.join("promptgate").join(repo_id(repo_root)))
}

/// A folder name for a repository: its folder's name and a digest of its full path, so two
/// clones never share a cache by accident and the name still says whose it is.
fn repo_id(repo_root: &Path) -> String {
    let root = repo_root.canonicalize().unwrap_or_else(|_| repo_root.to_owned());
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = hex::encode(Sha256::digest(root.to_string_lossy().as_bytes()));
    format!("{name}-{}", &digest[..12])
}

/// The cache key of `request` sent to the endpoint `cache_identity` identifies.
pub fn key(cache_identity: &str, request: &Request) -> String {
    let mut h = Sha256::new();
    h.update(KEY_VERSION.as_bytes());
    h.update([0]);
    h.update(cache_identity.as_bytes());
    h.update([0]);
    // Serializing a struct writes its fields in declaration order, so this JSON is canonical.
    h.update(serde_json::to_vec(request).unwrap_or_default());
    hex::encode(h.finalize())
}

impl Cache {
    pub fn new(dir: &Path) -> Self {
        Cache {
            dir: dir.to_owned(),
            shards: Arc::default(),
        }
    }

    /// The stored response and latency for `key`, if a readable entry exists.
    pub fn get(&self, key: &str) -> Option<(Response, Option<f64>)> {
        let mut shards = self.shards.lock().ok()?;
        let shard = shards
            .entry(shard_of(key).to_owned())
            .or_insert_with(|| self.load(shard_of(key)));
        shard.entries.get(key).cloned()
    }

    /// Stores a successful response. A cache that cannot be written only costs a later call, so
    /// failures are reported once by the caller's warning and otherwise ignored.
    pub fn put(&self, key: &str, response: &Response, latency_ms: Option<f64>) -> std::io::Result<()> {
        let entry = Entry {
            key: key.to_owned(),
            response: response.clone(),
            latency_ms,
        };
        let mut line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut shards = self
            .shards
            .lock()
            .map_err(|_| std::io::Error::other("cache lock poisoned"))?;
        let name = shard_of(key);
        let shard = shards.entry(name.to_owned()).or_insert_with(|| self.load(name));
        if std::mem::take(&mut shard.torn_tail) {
            line.insert(0, b'\n');
        }
        if shard.file.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            shard.file = Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.path(name))?,
            );
        }
        if let Some(file) = shard.file.as_mut() {
            // One write per entry: appends from concurrent runs stay whole lines.
            file.write_all(&line)?;
        }
        shard.entries.insert(key.to_owned(), (response.clone(), latency_ms));
        Ok(())
    }

    fn load(&self, name: &str) -> Shard {
        let mut shard = Shard::default();
        let Ok(bytes) = std::fs::read(self.path(name)) else {
            return shard;
        };
        shard.torn_tail = bytes.last().is_some_and(|b| *b != b'\n');
        for line in bytes.split(|b| *b == b'\n') {
            if let Ok(entry) = serde_json::from_slice::<Entry>(line) {
                shard.entries.insert(entry.key, (entry.response, entry.latency_ms));
            }
        }
        shard
    }

    fn path(&self, shard: &str) -> PathBuf {
        self.dir.join(format!("{shard}.jsonl"))
    }
}

fn shard_of(key: &str) -> &str {
    key.get(..2).unwrap_or("00")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Message, Role, Usage};

    fn request(seed: u64) -> Request {
        Request {
            model: "m".into(),
            messages: vec![Message {
                role: Role::User,
                content: "hi".into(),
            }],
            temperature: Some(0.5),
            max_tokens: None,
            top_p: None,
            seed,
        }
    }

    #[test]
    fn round_trip_layout_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let key = key("openai|", &request(1));
        assert_eq!(key.len(), 64);
        assert_ne!(
            key,
            super::key("openai|", &request(2)),
            "the seed (repeat) is part of the key"
        );
        assert_ne!(
            key,
            super::key("azure|", &request(1)),
            "the endpoint is part of the key"
        );
        assert!(cache.get(&key).is_none());
        let response = Response {
            text: "hello".into(),
            usage: Usage {
                input: 3,
                cached_input: 0,
                output: 1,
            },
            latency_ms: Some(12.5),
        };
        cache.put(&key, &response, Some(12.5)).unwrap();
        let file = dir.path().join(format!("{}.jsonl", &key[..2]));
        assert!(file.is_file());
        assert_eq!(cache.get(&key), Some((response.clone(), Some(12.5))));
        // A new reader (a later run) sees it too.
        assert_eq!(Cache::new(dir.path()).get(&key), Some((response.clone(), Some(12.5))));
        // A torn line (a crash mid-write) is skipped; the entries before it survive.
        let mut log = std::fs::read(&file).unwrap();
        log.extend_from_slice(b"{\"key\": \"trunc");
        std::fs::write(&file, &log).unwrap();
        assert_eq!(Cache::new(dir.path()).get(&key), Some((response.clone(), Some(12.5))));
        // Writing after a torn line starts a new line, so the new entry is readable.
        let other = super::key("openai|", &request(3));
        let after_tear = Cache::new(dir.path());
        let _ = after_tear.get(&key);
        if other[..2] == key[..2] {
            after_tear.put(&other, &response, None).unwrap();
            assert_eq!(Cache::new(dir.path()).get(&other), Some((response.clone(), None)));
        }
        after_tear.put(&key, &response, Some(1.0)).unwrap();
        assert_eq!(
            Cache::new(dir.path()).get(&key),
            Some((response.clone(), Some(1.0))),
            "a later entry wins"
        );
        // Garbage only: a miss, then a rewrite that a later run reads.
        std::fs::write(&file, b"not json\n").unwrap();
        let fresh = Cache::new(dir.path());
        assert!(fresh.get(&key).is_none(), "a corrupt entry is a miss");
        fresh.put(&key, &response, None).unwrap();
        assert_eq!(Cache::new(dir.path()).get(&key), Some((response, None)));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "one shard file, nothing else"
        );
    }
}
