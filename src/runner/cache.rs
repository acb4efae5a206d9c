//! The response cache: content-addressed files on disk, one per successful call.
//!
//! The key is a SHA-256 over the endpoint's `cache_identity` and the canonical JSON of the
//! request (model, messages, temperature, max_tokens, top_p and the seed, which encodes the
//! repeat), so the same call to the same endpoint is answered once, across runs and branches.
//! Layout: `<dir>/<first 2 hex>/<64 hex>.json`. Writes go to a temporary file renamed into
//! place, so a reader never sees half a file; a file that does not parse is a miss.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::providers::{Request, Response};

/// Bumped when the meaning of a key or the entry format changes, so old entries are ignored.
const KEY_VERSION: &str = "promptgate-cache-v1";

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    response: Response,
    latency_ms: Option<f64>,
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
        Cache { dir: dir.to_owned() }
    }

    /// The stored response and latency for `key`, if a readable entry exists.
    pub fn get(&self, key: &str) -> Option<(Response, Option<f64>)> {
        let bytes = std::fs::read(self.path(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key).then_some((entry.response, entry.latency_ms))
    }

    /// Stores a successful response. A cache that cannot be written only costs a later call, so
    /// failures are reported once by the caller's warning and otherwise ignored.
    pub fn put(&self, key: &str, response: &Response, latency_ms: Option<f64>) -> std::io::Result<()> {
        let path = self.path(key);
        let folder = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(folder)?;
        let entry = Entry {
            key: key.to_owned(),
            response: response.clone(),
            latency_ms,
        };
        let mut tmp = tempfile_in(folder, key)?;
        tmp.1
            .write_all(&serde_json::to_vec(&entry).map_err(std::io::Error::other)?)?;
        tmp.1.flush()?;
        drop(tmp.1);
        std::fs::rename(&tmp.0, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp.0);
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2.min(key.len())]).join(format!("{key}.json"))
    }
}

/// A new file beside the target, unique to this process and moment, so concurrent writers of
/// the same key (two runs, or two identical jobs) never write into one temporary file.
fn tempfile_in(folder: &Path, key: &str) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let path = folder.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
    let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    Ok((path, file))
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
        let file = dir.path().join(&key[..2]).join(format!("{key}.json"));
        assert!(file.is_file());
        assert_eq!(cache.get(&key), Some((response.clone(), Some(12.5))));
        std::fs::write(&file, b"{\"key\": \"trunc").unwrap();
        assert!(cache.get(&key).is_none(), "a corrupt entry is a miss");
        cache.put(&key, &response, None).unwrap();
        assert_eq!(cache.get(&key), Some((response, None)));
        let leftovers = std::fs::read_dir(file.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files are left behind");
    }
}
