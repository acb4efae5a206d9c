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
//! Only an index is kept in memory: per key (eight bytes of its digest), where its latest line lies in the
//! log and what eviction needs, about 30 bytes an entry however long the answer (`cache/index.rs`). A hit reads
//! its one line back with a positional read and parses it, so a run of a million calls, or a
//! long-lived cache of a big repository, does not hold every answer in memory. A line read back
//! is trusted only if it parses and names the key asked for; anything else is a miss.
//!
//! Another process may use the same folder (the run lock makes that rare, not impossible).
//! A shard's log is read on its first use and its file stays open: another process's later
//! appends are not seen (they cost at most a call), and its compaction, which renames a new file
//! into place, leaves this process reading and appending to the file it indexed, so an entry it
//! loaded or wrote is answered for the rest of its run (its later appends are then lost to
//! others, which again costs at most a call).
//!
//! Bounded: the cache is kept across CI runs, so it must not grow forever. Each shard holds at
//! most its share of [`DEFAULT_MAX_BYTES`] (or `PROMPTGATE_CACHE_MAX_MB`); when its log passes
//! that, or holds more superseded lines than live ones, it is compacted (its live lines copied
//! to a new file, renamed into place) keeping the most recently used entries within three
//! quarters of the share. "Used" is the time an entry was written or, at most once a day, read.
//!
//! Each shard has its own lock, and every file operation runs on the blocking thread pool
//! (`spawn_blocking`), so the async tasks of a run never wait on a disk read under a lock.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead as _, Seek as _, Write as _};
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

/// A key as read and written: the SHA-256 itself, half the size of its hex.
type Id = [u8; 32];

/// A key as the index holds it: the eight bytes of the SHA-256 after the first (which picks
/// the shard), a quarter of the digest; a shard indexes every entry it holds, so this is most
/// of what a large cache costs in memory (24 bytes an entry with its [`Slot`], against 56 for
/// the whole digest and a 64-bit use time).
///
/// Every hit is read back and its line's full key checked, so two keys with the same eight
/// bytes cannot answer for each other: the later put takes the slot, and the earlier key is a
/// miss. That any two of a shard's n entries share them has a chance of about n²/2⁶⁵: one in
/// 37 million for a shard of a million entries.
type Short = u64;

fn short(id: &Id) -> Short {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&id[1..9]);
    u64::from_be_bytes(bytes)
}

/// One shard as this process knows it: where each key's latest line is in `file`.
#[derive(Default)]
struct ShardLog {
    index: index::Index,
    /// The log this index points into, read and appended through this one handle, so the
    /// offsets stay true whatever another process renames into its place.
    file: Option<File>,
    /// `file` was opened for appending (else it is read-only, or absent).
    writable: bool,
    /// Bytes in the log file, superseded lines and other processes' appends included.
    file_bytes: u64,
    /// The lengths of the indexed lines, kept as they change rather than summed on every put.
    live_bytes: u64,
    /// The log ends in a torn line: start the next entry on a line of its own.
    torn_tail: bool,
}

/// Where a key's latest line is, and when the entry was last used.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Slot {
    offset: u64,
    /// The line's length without its newline.
    len: u32,
    /// Unix seconds of the write or the last recorded use ([`secs`]: until 2106).
    used: u32,
}

/// Unix seconds as a [`Slot`] holds them, the latest representable for a later time.
fn secs(t: u64) -> u32 {
    u32::try_from(t).unwrap_or(u32::MAX)
}

impl Slot {
    /// What the line takes in the log, its newline included.
    fn bytes(self) -> u64 {
        u64::from(self.len) + 1
    }
}

/// One line of a log. Borrowed when written, owned when read back.
#[derive(Serialize, Deserialize)]
struct LogEntry<'a> {
    key: Cow<'a, str>,
    response: Cow<'a, Response>,
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
    lock_in(
        dir,
        LOCK_FILE,
        wait,
        "to reuse its answers instead of paying for them twice",
    )
}

/// [`lock`] of the file `name` in `dir`; `why` says in the waiting message why it waits.
pub fn lock_in(dir: &Path, name: &str, wait: std::time::Duration, why: &str) -> Result<RunLock, LockError> {
    crate::output::create_dir(dir).map_err(|e| LockError::Io(std::io::Error::other(e)))?;
    let path = dir.join(name);
    refuse_link(&path).map_err(LockError::Io)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(LockError::Io)?;
    hold(file, path, wait, why)
}

/// [`lock`] of the folder `dir` itself (a run's output folder: no file is left in it).
pub fn lock_folder(dir: &Path, wait: std::time::Duration, why: &str) -> Result<RunLock, LockError> {
    crate::output::create_dir(dir).map_err(|e| LockError::Io(std::io::Error::other(e)))?;
    let file = std::fs::File::open(dir).map_err(LockError::Io)?;
    hold(file, dir.to_owned(), wait, why)
}

/// Takes the lock on `file` (at `path`), waiting as [`lock`] says.
fn hold(file: std::fs::File, path: PathBuf, wait: std::time::Duration, why: &str) -> Result<RunLock, LockError> {
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
                "promptgate: another promptgate run holds {}; waiting for it to finish (at most {}), {why}",
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

    /// Lets go of every shard's index and file: a run whose calls are done reads nothing more
    /// from the cache, and its index grows with the calls (about 30 bytes each). A later `get`
    /// or `put` loads its shard again.
    pub fn unload(&self) {
        for shard in self.shards.iter() {
            // A poisoned shard is dropped with the cache; its index is not read again here.
            if let Ok(mut shard) = shard.lock() {
                *shard = None;
            }
        }
    }

    /// The stored response and latency for `key`, if a readable entry exists.
    pub async fn get(&self, key: &str) -> Option<(Response, Option<f64>)> {
        let id = id_of(key)?;
        let _slot = self.io.acquire().await.ok()?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.get_blocking(&id))
            .await
            .ok()
            .flatten()
    }

    /// Stores a successful response. A cache that cannot be written only costs a later call, so
    /// failures are reported once by the caller's warning and otherwise ignored.
    pub async fn put(&self, key: &str, response: &Response, latency_ms: Option<f64>) -> std::io::Result<()> {
        let id = id_of(key).ok_or_else(|| std::io::Error::other(format!("{key:?} is not a cache key")))?;
        let now = now_secs();
        // Serialized here, so the blocking task takes the line and not a copy of the response.
        let line = serde_json::to_vec(&LogEntry {
            key: Cow::Borrowed(key),
            response: Cow::Borrowed(response),
            latency_ms,
            t: now,
        })
        .map_err(std::io::Error::other)?;
        let _slot = self.io.acquire().await.map_err(std::io::Error::other)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.put_blocking(&id, line, now))
            .await
            .map_err(std::io::Error::other)?
    }

    fn get_blocking(&self, id: &Id) -> Option<(Response, Option<f64>)> {
        let index = usize::from(id[0]);
        let mut slot = self.shards[index].lock().ok()?;
        let shard = slot.get_or_insert_with(|| self.load(index));
        let entry = shard.read(id)?;
        let now = now_secs();
        if now.saturating_sub(entry.used) > TOUCH_AFTER_SECS {
            // Recording the use is best effort: a lost touch only ages an entry early.
            if let Ok(line) = serde_json::to_vec(&Touch {
                key: hex::encode(id),
                used: now,
            }) && self.append(index, shard, line).is_ok()
                && let Some(slot) = shard.index.get_mut(&short(id))
            {
                slot.used = secs(now);
            }
        }
        Some((entry.response, entry.latency_ms))
    }

    fn put_blocking(&self, id: &Id, line: Vec<u8>, now: u64) -> std::io::Result<()> {
        let index = usize::from(id[0]);
        let mut slot = self.shards[index]
            .lock()
            .map_err(|_| std::io::Error::other("cache lock poisoned"))?;
        let shard = slot.get_or_insert_with(|| self.load(index));
        let (offset, len) = self.append(index, shard, line)?;
        shard.insert(
            short(id),
            Slot {
                offset,
                len,
                used: secs(now),
            },
        );
        if shard.file_bytes > self.max_shard_bytes || shard.file_bytes > 2 * shard.live_bytes + 64 * 1024 {
            self.compact(index, shard)?;
        }
        Ok(())
    }

    /// Appends one line with a single write (see the module documentation) and says where it
    /// landed: its offset and length, without the newline.
    fn append(&self, index: usize, shard: &mut ShardLog, mut line: Vec<u8>) -> std::io::Result<(u64, u32)> {
        let len = u32::try_from(line.len()).map_err(std::io::Error::other)?;
        if !shard.writable {
            crate::output::create_dir(&self.dir).map_err(std::io::Error::other)?;
            let path = self.path(index);
            refuse_link(&path)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(path)?;
            // This may be another file than the one indexed (there was none, or another process
            // renamed its compaction into place since): index the one the appends go to.
            *shard = ShardLog::scan(file, true);
        }
        line.push(b'\n');
        if std::mem::take(&mut shard.torn_tail) {
            line.insert(0, b'\n');
        }
        let Some(mut file) = shard.file.as_ref() else {
            return Err(std::io::Error::other("cache shard has no file"));
        };
        file.write_all(&line)?;
        // An append moves this handle's position to the end of what it wrote, wherever other
        // processes' appends put the end before it.
        let end = file.stream_position()?;
        shard.file_bytes = end;
        Ok((end - u64::from(len) - 1, len))
    }

    /// Copies a shard's live entries, the most recently used first, within three quarters of
    /// its share, to a new log renamed into place; the rest are evicted. Each line is read
    /// back and checked as a hit is, and written again with its latest use folded in.
    fn compact(&self, index: usize, shard: &mut ShardLog) -> std::io::Result<()> {
        let mut order: Vec<(Short, Slot)> = shard.index.iter().collect();
        order.sort_by(|a, b| b.1.used.cmp(&a.1.used).then_with(|| a.0.cmp(&b.0)));
        let budget = self.max_shard_bytes / 4 * 3;
        let path = self.path(index);
        let tmp = path.with_extension(format!("jsonl.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let out = std::fs::OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&tmp)?;
        let copied = shard.copy_live(&order, budget, &out).and_then(|kept| {
            out.sync_data()?;
            std::fs::rename(&tmp, &path)?;
            Ok(kept)
        });
        let kept = match copied {
            Ok(kept) => kept,
            Err(e) => {
                // The old log and its index are untouched: the shard goes on as it was.
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let live_bytes = kept.iter().map(|(_, slot)| slot.bytes()).sum();
        *shard = ShardLog {
            index: kept,
            file: Some(out),
            writable: true,
            file_bytes: live_bytes,
            live_bytes,
            torn_tail: false,
        };
        Ok(())
    }

    /// A shard's log read from disk on its first use: its file opened once, for reading and
    /// appending where it may (read-only otherwise), and indexed.
    fn load(&self, index: usize) -> ShardLog {
        remove_old_entries(&self.dir.join(format!("{index:02x}")));
        let path = self.path(index);
        if refuse_link(&path).is_err() {
            return ShardLog::default();
        }
        let open = |append: bool| std::fs::OpenOptions::new().read(true).append(append).open(&path);
        match open(true) {
            Ok(file) => ShardLog::scan(file, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ShardLog::default(),
            Err(_) => open(false).map_or_else(|_| ShardLog::default(), |file| ShardLog::scan(file, false)),
        }
    }

    fn path(&self, shard: usize) -> PathBuf {
        self.dir.join(format!("{shard:02x}.jsonl"))
    }
}

/// Removes the shard's folder of the cache's first layout (`<dir>/<xx>/<key>.json`, a file an
/// entry, whose keys no version since reads): never read, it was never counted or evicted
/// either, so a cache that predates the logs kept it past the cache's bound. Only a folder
/// holding nothing but such entries (64 hex digits and `.json`, or their temporary files)
/// goes: a `--cache-dir` pointed at a folder of other two-hex-digit folders loses nothing.
fn remove_old_entries(folder: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(folder) else {
        return;
    };
    if !meta.is_dir() {
        return;
    }
    let old_entry = |name: &str| {
        let stem = name.strip_suffix(".json").or_else(|| {
            name.strip_suffix(".tmp")
                .and_then(|n| n.split_once(".json").map(|(stem, _)| stem))
        });
        stem.is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    };
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    let mut files = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { return };
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        match entry.file_name().to_str() {
            Some(name) if is_file && old_entry(name) => files.push(entry.path()),
            _ => return,
        }
    }
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    let _ = std::fs::remove_dir(folder);
}

/// An entry read back from its log.
struct Found {
    response: Response,
    latency_ms: Option<f64>,
    /// When the index says it was last used.
    used: u64,
}

impl ShardLog {
    /// Indexes `file` from its start, one line at a time (never the whole log in memory).
    fn scan(file: File, writable: bool) -> ShardLog {
        let mut shard = ShardLog {
            writable,
            ..ShardLog::default()
        };
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, &file);
        let mut line = Vec::new();
        let mut offset = 0;
        loop {
            line.clear();
            let Ok(n) = reader.read_until(b'\n', &mut line) else {
                break;
            };
            if n == 0 {
                break;
            }
            let complete = line.last() == Some(&b'\n');
            let text = if complete { &line[..n - 1] } else { &line[..] };
            shard.index_line(text, offset);
            offset += n as u64;
            shard.torn_tail = !complete;
        }
        drop(reader);
        shard.file_bytes = offset;
        shard.file = Some(file);
        shard
    }

    /// Indexes one line found at `offset`: an entry, or a later use of one.
    fn index_line(&mut self, text: &[u8], offset: u64) {
        if let Ok(entry) = serde_json::from_slice::<LogEntry<'_>>(text) {
            if let (Some(id), Ok(len)) = (id_of(&entry.key), u32::try_from(text.len())) {
                self.insert(
                    short(&id),
                    Slot {
                        offset,
                        len,
                        used: secs(entry.t),
                    },
                );
            }
        } else if let Ok(touch) = serde_json::from_slice::<Touch>(text)
            && let Some(slot) = id_of(&touch.key).and_then(|id| self.index.get_mut(&short(&id)))
        {
            slot.used = slot.used.max(secs(touch.used));
        }
    }

    fn insert(&mut self, id: Short, slot: Slot) {
        if let Some(old) = self.index.insert(id, slot) {
            self.live_bytes -= old.bytes();
        }
        self.live_bytes += slot.bytes();
    }

    fn forget(&mut self, id: &Short) {
        if let Some(old) = self.index.remove(id) {
            self.live_bytes -= old.bytes();
        }
    }

    /// `id`'s entry read back from the log. A line that no longer holds it (the file was
    /// changed in place under us) is forgotten: a miss, and a later put writes it again. A
    /// line of another key with the same [`Short`] is that key's: a miss, and kept.
    fn read(&mut self, id: &Id) -> Option<Found> {
        let short = short(id);
        let slot = self.index.get(&short)?;
        let entry = self.file.as_ref().and_then(|file| read_entry(file, slot, short));
        let Some((found, entry)) = entry else {
            self.forget(&short);
            return None;
        };
        if found != *id {
            return None;
        }
        Some(Found {
            response: entry.response.into_owned(),
            latency_ms: entry.latency_ms,
            used: u64::from(slot.used),
        })
    }

    /// Writes the entries of `order` that fit in `budget` bytes to `out` (a new, empty log)
    /// and returns their index there.
    fn copy_live(&self, order: &[(Short, Slot)], budget: u64, out: &File) -> std::io::Result<index::Index> {
        let mut kept = index::Index::default();
        let Some(file) = self.file.as_ref() else {
            return Ok(kept);
        };
        let mut writer = std::io::BufWriter::with_capacity(64 * 1024, out);
        let mut written = 0;
        for (id, slot) in order {
            let Some((_, mut entry)) = read_entry(file, *slot, *id) else {
                continue;
            };
            entry.t = u64::from(slot.used);
            let line = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
            let Ok(len) = u32::try_from(line.len()) else {
                continue;
            };
            let copied = Slot {
                offset: written,
                len,
                used: slot.used,
            };
            if written + copied.bytes() > budget {
                continue;
            }
            writer.write_all(&line)?;
            writer.write_all(b"\n")?;
            written += copied.bytes();
            kept.insert(*id, copied);
        }
        writer.flush()?;
        Ok(kept)
    }
}

/// The entry at `slot` in `file` and its key, if that line still parses and names a key
/// indexed as `id`.
fn read_entry(file: &File, slot: Slot, id: Short) -> Option<(Id, LogEntry<'static>)> {
    let mut line = vec![0; usize::try_from(slot.len).ok()?];
    read_exact_at(file, &mut line, slot.offset).ok()?;
    let entry: LogEntry<'static> = serde_json::from_slice(&line).ok()?;
    let key = id_of(&entry.key)?;
    (short(&key) == id).then_some((key, entry))
}

/// Reads `buf.len()` bytes at `offset` (also the stowed answers' reader, `stow.rs`).
#[cfg(unix)]
pub(super) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Without positional reads: seek, read, and seek back. A shard's file is opened to append,
/// so its writes go to the end wherever the position is. The stowed outcomes' scratch file is
/// not: today every outcome is written before the first is read back, but a write after a read
/// (a second batch stowed into the same file) would otherwise land in the middle of it.
#[cfg(not(unix))]
pub(super) fn read_exact_at(mut file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    read_at_and_return(&mut file, buf, offset)
}

/// Reads `buf.len()` bytes at `offset`, then puts the position back where it was (also after a
/// read that failed, whose error is the one returned). Written for any reader, so it is tested
/// where positional reads exist.
#[cfg_attr(unix, allow(dead_code))]
fn read_at_and_return(
    file: &mut (impl std::io::Read + std::io::Seek),
    buf: &mut [u8],
    offset: u64,
) -> std::io::Result<()> {
    let position = file.stream_position()?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let read = file.read_exact(buf);
    let back = file.seek(std::io::SeekFrom::Start(position));
    read?;
    back.map(drop)
}

/// The 32 bytes a key's 64 hex digits spell; `None` for anything else.
fn id_of(key: &str) -> Option<Id> {
    let mut id = [0; 32];
    hex::decode_to_slice(key, &mut id).ok()?;
    Some(id)
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

mod index;

#[cfg(test)]
mod tests;
