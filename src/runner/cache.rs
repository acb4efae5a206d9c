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
//!
//! Bounded: the cache is kept across CI runs, so it must not grow forever. Each shard holds at
//! most its share of [`DEFAULT_MAX_BYTES`] (or `PROMPTGATE_CACHE_MAX_MB`); when its log passes
//! that, or holds more superseded lines than live ones, it is compacted (rewritten to a new
//! file, renamed into place) keeping the most recently used entries within three quarters of
//! the share. "Used" is the time an entry was written or, at most once a day, read.
//!
//! Each shard has its own lock, and every file operation runs on the blocking thread pool
//! (`spawn_blocking`), so the async tasks of a run never wait on a disk read under a lock.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::providers::{Request, Response};

/// Bumped when the meaning of a key or the entry format changes, so old entries are ignored.
const KEY_VERSION: &str = "promptgate-cache-v1";

/// The whole cache's default size; each of the 256 shards holds a 256th of it.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// An entry read again after this long is marked used (one short line appended).
const TOUCH_AFTER_SECS: u64 = 24 * 3600;

const SHARDS: usize = 256;

/// File operations of the cache running at once on the blocking pool: a run's dozens of calls
/// in flight must not grow the pool to a thread each.
const IO_SLOTS: usize = 4;

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    shards: Arc<Vec<Mutex<Option<ShardLog>>>>,
    max_shard_bytes: u64,
    io: Arc<tokio::sync::Semaphore>,
}

#[derive(Default)]
struct ShardLog {
    entries: HashMap<String, Stored>,
    file: Option<std::fs::File>,
    /// Bytes in the log file, superseded lines included.
    file_bytes: u64,
    /// The log ends in a torn line: start the next entry on a line of its own.
    torn_tail: bool,
}

#[derive(Clone)]
struct Stored {
    response: Response,
    latency_ms: Option<f64>,
    /// Unix seconds of the write or the last recorded use.
    used: u64,
    /// The length of its line.
    bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct LogEntry {
    key: String,
    response: Response,
    latency_ms: Option<f64>,
    /// Unix seconds; absent in entries written before eviction existed.
    #[serde(default)]
    t: u64,
}

/// A later use of an entry.
#[derive(Serialize, Deserialize)]
struct Touch {
    key: String,
    used: u64,
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

/// A run's hold on its cache folder, released when dropped. Two runs in one repository share
/// a cache; without it both would send (and pay for) the same calls at once. With it the second
/// waits for the first, then finds the first's answers in the cache (the cache reads each shard
/// from disk on first use, after the wait), so a rerun of the same plan pays nothing twice.
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file in the cache folder.
const LOCK_FILE: &str = "run.lock";

/// How often a waiting run tries the lock again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// Why [`lock`] returned without the lock.
#[derive(Debug)]
pub enum LockError {
    /// Another run held the lock for the whole wait.
    Held { path: PathBuf, waited: std::time::Duration },
    /// The lock file could not be made or locked at all.
    Io(std::io::Error),
}

/// Takes the cache folder's run lock, waiting (and saying so) while another run holds it, for
/// at most `wait`. The operating system releases a lock when its holder exits, however it
/// exits, so a lock held this long belongs to a run that is still going (or stuck).
pub fn lock(dir: &Path, wait: std::time::Duration) -> Result<RunLock, LockError> {
    crate::output::create_dir(dir).map_err(|e| LockError::Io(std::io::Error::other(e)))?;
    let path = dir.join(LOCK_FILE);
    refuse_link(&path).map_err(LockError::Io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(LockError::Io)?;
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        let waited = started.elapsed();
        if waited >= wait {
            return Err(LockError::Held { path, waited });
        }
        if !std::mem::replace(&mut said, true) {
            eprintln!(
                "promptgate: another promptgate run holds {}; waiting for it to finish (at most {}), to reuse its answers instead of paying for them twice",
                path.display(),
                crate::format::duration(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX))
            );
        }
        std::thread::sleep(LOCK_POLL.min(wait - waited));
    }
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
        let total = std::env::var("PROMPTGATE_CACHE_MAX_MB")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(DEFAULT_MAX_BYTES, |mb| mb << 20);
        Self::with_limit(dir, total)
    }

    /// A cache of at most `total_bytes` on disk (give or take a shard's last entry).
    pub fn with_limit(dir: &Path, total_bytes: u64) -> Self {
        Cache {
            dir: dir.to_owned(),
            shards: Arc::new((0..SHARDS).map(|_| Mutex::new(None)).collect()),
            max_shard_bytes: (total_bytes / SHARDS as u64).max(4096),
            io: Arc::new(tokio::sync::Semaphore::new(IO_SLOTS)),
        }
    }

    /// The stored response and latency for `key`, if a readable entry exists.
    pub async fn get(&self, key: &str) -> Option<(Response, Option<f64>)> {
        let _slot = self.io.acquire().await.ok()?;
        let this = self.clone();
        let key = key.to_owned();
        tokio::task::spawn_blocking(move || this.get_blocking(&key))
            .await
            .ok()
            .flatten()
    }

    /// Stores a successful response. A cache that cannot be written only costs a later call, so
    /// failures are reported once by the caller's warning and otherwise ignored.
    pub async fn put(&self, key: &str, response: &Response, latency_ms: Option<f64>) -> std::io::Result<()> {
        let _slot = self.io.acquire().await.map_err(std::io::Error::other)?;
        let this = self.clone();
        let key = key.to_owned();
        let response = response.clone();
        tokio::task::spawn_blocking(move || this.put_blocking(&key, &response, latency_ms))
            .await
            .map_err(std::io::Error::other)?
    }

    fn get_blocking(&self, key: &str) -> Option<(Response, Option<f64>)> {
        let index = shard_index(key);
        let mut slot = self.shards[index].lock().ok()?;
        let shard = slot.get_or_insert_with(|| self.load(index));
        let now = now_secs();
        let stored = shard.entries.get_mut(key)?;
        let found = (stored.response.clone(), stored.latency_ms);
        if now.saturating_sub(stored.used) > TOUCH_AFTER_SECS {
            stored.used = now;
            let line = serde_json::to_vec(&Touch {
                key: key.to_owned(),
                used: now,
            })
            .ok()?;
            // Recording the use is best effort: a lost touch only ages an entry early.
            let _ = self.append(index, shard, line);
        }
        Some(found)
    }

    fn put_blocking(&self, key: &str, response: &Response, latency_ms: Option<f64>) -> std::io::Result<()> {
        let now = now_secs();
        let entry = LogEntry {
            key: key.to_owned(),
            response: response.clone(),
            latency_ms,
            t: now,
        };
        let line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        let index = shard_index(key);
        let mut slot = self.shards[index]
            .lock()
            .map_err(|_| std::io::Error::other("cache lock poisoned"))?;
        let shard = slot.get_or_insert_with(|| self.load(index));
        let bytes = line.len() as u64 + 1;
        self.append(index, shard, line)?;
        shard.entries.insert(
            key.to_owned(),
            Stored {
                response: response.clone(),
                latency_ms,
                used: now,
                bytes,
            },
        );
        let live: u64 = shard.entries.values().map(|s| s.bytes).sum();
        if shard.file_bytes > self.max_shard_bytes || shard.file_bytes > 2 * live + 64 * 1024 {
            self.compact(index, shard)?;
        }
        Ok(())
    }

    /// Appends one line with a single write (see the module documentation).
    fn append(&self, index: usize, shard: &mut ShardLog, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        if std::mem::take(&mut shard.torn_tail) {
            line.insert(0, b'\n');
        }
        if shard.file.is_none() {
            crate::output::create_dir(&self.dir).map_err(std::io::Error::other)?;
            let path = self.path(index);
            refuse_link(&path)?;
            shard.file = Some(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
        }
        if let Some(file) = shard.file.as_mut() {
            file.write_all(&line)?;
            shard.file_bytes += line.len() as u64;
        }
        Ok(())
    }

    /// Rewrites a shard with its live entries, the most recently used first, within three
    /// quarters of its share; the rest are evicted.
    fn compact(&self, index: usize, shard: &mut ShardLog) -> std::io::Result<()> {
        let mut entries: Vec<(String, Stored)> = shard.entries.drain().collect();
        entries.sort_by(|a, b| b.1.used.cmp(&a.1.used).then_with(|| a.0.cmp(&b.0)));
        let budget = self.max_shard_bytes / 4 * 3;
        let mut text = Vec::new();
        let mut kept = HashMap::new();
        for (key, stored) in entries {
            let line = serde_json::to_vec(&LogEntry {
                key: key.clone(),
                response: stored.response.clone(),
                latency_ms: stored.latency_ms,
                t: stored.used,
            })
            .map_err(std::io::Error::other)?;
            if text.len() as u64 + line.len() as u64 + 1 > budget {
                continue;
            }
            let bytes = line.len() as u64 + 1;
            text.extend_from_slice(&line);
            text.push(b'\n');
            kept.insert(key, Stored { bytes, ..stored });
        }
        let path = self.path(index);
        let tmp = path.with_extension(format!("jsonl.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        {
            let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            out.write_all(&text)?;
            out.sync_data()?;
        }
        std::fs::rename(&tmp, &path)?;
        shard.entries = kept;
        shard.file_bytes = text.len() as u64;
        shard.torn_tail = false;
        // Appends go to the new file from now on (another process appending to the old one
        // at this moment loses that entry, which only costs a later call).
        shard.file = None;
        Ok(())
    }

    fn load(&self, index: usize) -> ShardLog {
        let mut shard = ShardLog::default();
        let path = self.path(index);
        if refuse_link(&path).is_err() {
            return shard;
        }
        let Ok(bytes) = std::fs::read(path) else {
            return shard;
        };
        shard.file_bytes = bytes.len() as u64;
        shard.torn_tail = bytes.last().is_some_and(|b| *b != b'\n');
        for line in bytes.split(|b| *b == b'\n') {
            if let Ok(entry) = serde_json::from_slice::<LogEntry>(line) {
                shard.entries.insert(
                    entry.key,
                    Stored {
                        response: entry.response,
                        latency_ms: entry.latency_ms,
                        used: entry.t,
                        bytes: line.len() as u64 + 1,
                    },
                );
            } else if let Ok(touch) = serde_json::from_slice::<Touch>(line)
                && let Some(stored) = shard.entries.get_mut(&touch.key)
            {
                stored.used = stored.used.max(touch.used);
            }
        }
        shard
    }

    fn path(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("{shard:02x}.jsonl"))
    }
}

fn refuse_link(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(format!(
            "{} is a symbolic link; the cache never writes through one",
            path.display()
        )));
    }
    Ok(())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn shard_index(key: &str) -> usize {
    usize::from_str_radix(shard_of(key), 16).unwrap_or(0) % SHARDS
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
            json: false,
            json_schema: None,
            embed: false,
        }
    }

    fn response(text: &str) -> Response {
        Response {
            text: text.into(),
            usage: Usage {
                input: 3,
                cached_input: 0,
                output: 1,
            },
            latency_ms: Some(12.5),
        }
    }

    #[tokio::test]
    async fn round_trip_layout_and_corruption() {
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
        assert!(cache.get(&key).await.is_none());
        let response = response("hello");
        cache.put(&key, &response, Some(12.5)).await.unwrap();
        let file = dir.path().join(format!("{}.jsonl", &key[..2]));
        assert!(file.is_file());
        assert_eq!(cache.get(&key).await, Some((response.clone(), Some(12.5))));
        // A new reader (a later run) sees it too.
        assert_eq!(
            Cache::new(dir.path()).get(&key).await,
            Some((response.clone(), Some(12.5)))
        );
        // A torn line (a crash mid-write) is skipped; the entries before it survive.
        let mut log = std::fs::read(&file).unwrap();
        log.extend_from_slice(b"{\"key\": \"trunc");
        std::fs::write(&file, &log).unwrap();
        assert_eq!(
            Cache::new(dir.path()).get(&key).await,
            Some((response.clone(), Some(12.5)))
        );
        // Writing after a torn line starts a new line, so the new entry is readable.
        let after_tear = Cache::new(dir.path());
        let _ = after_tear.get(&key).await;
        after_tear.put(&key, &response, Some(1.0)).await.unwrap();
        assert_eq!(
            Cache::new(dir.path()).get(&key).await,
            Some((response.clone(), Some(1.0))),
            "a later entry wins"
        );
        // Garbage only: a miss, then a rewrite that a later run reads.
        std::fs::write(&file, b"not json\n").unwrap();
        let fresh = Cache::new(dir.path());
        assert!(fresh.get(&key).await.is_none(), "a corrupt entry is a miss");
        fresh.put(&key, &response, None).await.unwrap();
        assert_eq!(Cache::new(dir.path()).get(&key).await, Some((response, None)));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "one shard file, nothing else"
        );
    }

    #[tokio::test]
    async fn the_cache_stays_under_its_size_by_evicting_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        // 256 shards of 8 KiB: 2 MiB in all.
        let limit = 256 * 8 * 1024;
        let cache = Cache::with_limit(dir.path(), limit);
        let big = "x".repeat(1_000);
        let keys: Vec<String> = (0..4_000).map(|i| key("e|", &request(i))).collect();
        for k in &keys {
            cache.put(k, &response(&big), None).await.unwrap();
        }
        let on_disk: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= limit, "{on_disk} bytes on disk for a {limit}-byte cache");
        // Four million bytes went in: most were evicted, the newest of each shard stayed.
        let reader = Cache::with_limit(dir.path(), limit);
        let mut hits = 0;
        for k in &keys {
            hits += usize::from(reader.get(k).await.is_some());
        }
        assert!((500..2_100).contains(&hits), "{hits} entries kept");
        assert!(reader.get(keys.last().unwrap()).await.is_some(), "the newest stays");
    }

    #[tokio::test]
    async fn superseded_lines_are_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::with_limit(dir.path(), DEFAULT_MAX_BYTES);
        let k = key("e|", &request(7));
        for i in 0..2_000 {
            cache
                .put(&k, &response(&format!("answer {i} {}", "y".repeat(100))), None)
                .await
                .unwrap();
        }
        let file = dir.path().join(format!("{}.jsonl", &k[..2]));
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size < 100 * 1024, "{size} bytes for one live entry");
        let (last, _) = Cache::new(dir.path()).get(&k).await.unwrap();
        assert!(last.text.starts_with("answer 1999 "), "{}", &last.text[..20]);
    }

    #[test]
    fn a_waiting_run_gets_the_lock_the_moment_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path(), std::time::Duration::ZERO).expect("a free lock");
        let Err(LockError::Held { path, .. }) = lock(dir.path(), std::time::Duration::ZERO) else {
            panic!("a held lock was taken twice");
        };
        assert_eq!(path, dir.path().join(LOCK_FILE));
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        });
        let started = std::time::Instant::now();
        assert!(lock(dir.path(), std::time::Duration::from_secs(30)).is_ok());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        release.join().unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_linked_shard_is_neither_read_nor_written() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let k = key("e|", &request(9));
        let target = elsewhere.path().join("victim");
        std::fs::write(&target, "keep\n").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(format!("{}.jsonl", &k[..2]))).unwrap();
        let cache = Cache::new(dir.path());
        assert!(cache.put(&k, &response("x"), None).await.is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
    }
}
