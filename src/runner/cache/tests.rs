//! The response cache's own tests: its layout, torn lines, eviction, compaction, the index
//! of line offsets that hits are read back through, locking and links.

use super::*;
use crate::providers::{Message, Role, Usage};

fn request(seed: u64) -> Request {
    crate::providers::Request::new(
        std::sync::Arc::new(crate::providers::Settings {
            temperature: Some(0.5),
            ..crate::providers::Settings::of("m")
        }),
        vec![Message {
            role: Role::User,
            content: "hi".into(),
        }]
        .into(),
        seed,
    )
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
    let big = |i: usize| response(&format!("{i} {}", "x".repeat(1_000)));
    let keys: Vec<String> = (0..4_000).map(|i| key("e|", &request(i))).collect();
    for (i, k) in keys.iter().enumerate() {
        cache.put(k, &big(i), None).await.unwrap();
    }
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= limit, "{on_disk} bytes on disk for a {limit}-byte cache");
    // Four million bytes went in: most were evicted, the newest of each shard stayed.
    let reader = Cache::with_limit(dir.path(), limit);
    let mut hits = 0;
    for (i, k) in keys.iter().enumerate() {
        let found = reader.get(k).await;
        hits += usize::from(found.is_some());
        // The writer's own index, after all its evictions, agrees with a later run's.
        assert_eq!(cache.get(k).await, found, "entry {i}");
        assert!(found.is_none_or(|f| f == (big(i), None)), "entry {i}");
    }
    assert!((500..2_100).contains(&hits), "{hits} entries kept");
    assert!(reader.get(keys.last().unwrap()).await.is_some(), "the newest stays");
    for k in &keys {
        with_shard(&cache, k, assert_live_bytes_recount);
    }
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

/// `n` keys whose entries share one shard's log, for tests that need them side by side.
fn keys_in_one_shard(n: usize) -> Vec<String> {
    let first = key("e|", &request(0));
    (0..)
        .map(|i| key("e|", &request(i)))
        .filter(|k| k[..2] == first[..2])
        .take(n)
        .collect()
}

/// Runs `f` on the shard of `key` as `cache` holds it now (loading it if need be).
#[track_caller]
fn with_shard<T>(cache: &Cache, key: &str, f: impl FnOnce(&mut ShardLog) -> T) -> T {
    let index = usize::from(id_of(key).expect("a key")[0]);
    let mut slot = cache.shards[index].lock().unwrap();
    f(slot.get_or_insert_with(|| cache.load(index)))
}

/// How a shard's index holds `key`.
fn indexed(key: &str) -> Short {
    short(&id_of(key).expect("a key"))
}

#[track_caller]
fn assert_live_bytes_recount(shard: &mut ShardLog) {
    let recount: u64 = shard.index.iter().map(|(_, slot)| slot.bytes()).sum();
    assert_eq!(shard.live_bytes, recount, "the running total against a recount");
}

fn numbered(i: usize) -> Response {
    response(&format!("answer {i} {}", "z".repeat(i % 97)))
}

#[tokio::test]
async fn every_hit_is_read_back_from_its_own_line_after_many_puts() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let keys: Vec<String> = (0..3_000).map(|i| key("e|", &request(i))).collect();
    for (i, k) in keys.iter().enumerate() {
        cache.put(k, &numbered(i), Some(i as f64)).await.unwrap();
    }
    // The index holds where each line is, not the answers: every hit is read from disk.
    let later_run = Cache::new(dir.path());
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.get(k).await, Some((numbered(i), Some(i as f64))), "entry {i}");
        assert_eq!(
            later_run.get(k).await,
            Some((numbered(i), Some(i as f64))),
            "entry {i}, reloaded"
        );
    }
}

#[tokio::test]
async fn hits_after_compaction_are_read_from_the_new_log() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::with_limit(dir.path(), DEFAULT_MAX_BYTES);
    let keys = keys_in_one_shard(3);
    for round in 0..400 {
        for (i, k) in keys.iter().enumerate() {
            cache.put(k, &numbered(round * 3 + i), None).await.unwrap();
        }
    }
    let file = dir.path().join(format!("{}.jsonl", &keys[0][..2]));
    assert!(
        std::fs::metadata(&file).unwrap().len() < 64 * 1024 + 4096,
        "the superseded lines were compacted away"
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.get(k).await, Some((numbered(399 * 3 + i), None)), "key {i}");
    }
    with_shard(&cache, &keys[0], assert_live_bytes_recount);
}

#[tokio::test]
async fn a_line_that_no_longer_holds_its_key_is_a_miss_not_another_answer() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let keys = keys_in_one_shard(3);
    for (i, k) in keys.iter().enumerate() {
        cache.put(k, &numbered(i), None).await.unwrap();
    }
    // A stale offset that lands on another key's entry: that entry parses, but it is not
    // the answer to this key.
    with_shard(&cache, &keys[0], |shard| {
        let other = shard.index.get(&indexed(&keys[1])).unwrap();
        shard.insert(indexed(&keys[0]), other);
    });
    assert_eq!(cache.get(&keys[0]).await, None);
    with_shard(&cache, &keys[0], |shard| {
        assert!(shard.index.get(&indexed(&keys[0])).is_none(), "forgotten");
        assert_live_bytes_recount(shard);
    });
    assert_eq!(cache.get(&keys[1]).await, Some((numbered(1), None)));
    // The log changed in place under the index: its bytes garbled, then cut short.
    let file = dir.path().join(format!("{}.jsonl", &keys[0][..2]));
    let size = std::fs::metadata(&file).unwrap().len();
    let garbled = "#".repeat(usize::try_from(size).unwrap());
    std::fs::write(&file, &garbled).unwrap();
    assert_eq!(cache.get(&keys[1]).await, None, "garbled");
    std::fs::write(&file, b"{}\n").unwrap();
    assert_eq!(cache.get(&keys[2]).await, None, "past the end");
    // A put after that is appended where the file really ends, and read back from there.
    cache.put(&keys[2], &numbered(7), None).await.unwrap();
    assert_eq!(cache.get(&keys[2]).await, Some((numbered(7), None)));
    with_shard(&cache, &keys[0], assert_live_bytes_recount);
}

#[tokio::test]
async fn the_live_byte_total_matches_a_recount_through_overwrites_and_compactions() {
    let dir = tempfile::tempdir().unwrap();
    // 16 KiB a shard: the puts below compact it many times over.
    let cache = Cache::with_limit(dir.path(), 256 * 16 * 1024);
    let keys = keys_in_one_shard(80);
    for n in 0..1_200 {
        let i = (n * 7) % keys.len();
        cache.put(&keys[i], &numbered(n), None).await.unwrap();
        if n % 50 == 0 {
            with_shard(&cache, &keys[0], assert_live_bytes_recount);
        }
    }
    // A later run indexes the same log from disk: the same lines, the same total.
    let ours = with_shard(&cache, &keys[0], |shard| {
        assert_live_bytes_recount(shard);
        (shard.index.entries(), shard.live_bytes)
    });
    let reloaded = Cache::new(dir.path());
    let theirs = with_shard(&reloaded, &keys[0], |shard| (shard.index.entries(), shard.live_bytes));
    assert_eq!(ours, theirs);
    assert!(ours.0.len() < keys.len(), "some entries were evicted");
}

#[tokio::test]
async fn a_use_is_recorded_and_compaction_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let keys = keys_in_one_shard(2);
    for (i, k) in keys.iter().enumerate() {
        cache.put(k, &numbered(i), None).await.unwrap();
    }
    let id = id_of(&keys[0]).unwrap();
    with_shard(&cache, &keys[0], |shard| {
        shard.index.get_mut(&short(&id)).unwrap().used -= secs(2 * TOUCH_AFTER_SECS);
    });
    let before = now_secs();
    assert_eq!(cache.get(&keys[0]).await, Some((numbered(0), None)));
    let used = |cache: &Cache| {
        with_shard(cache, &keys[0], |shard| {
            u64::from(shard.index.get(&short(&id)).unwrap().used)
        })
    };
    assert!(used(&cache) >= before, "the read counts as a use");
    assert_eq!(used(&Cache::new(dir.path())), used(&cache), "and a later run reads it");
    with_shard(&cache, &keys[0], |shard| cache.compact(usize::from(id[0]), shard)).unwrap();
    assert_eq!(cache.get(&keys[0]).await, Some((numbered(0), None)));
    assert_eq!(
        used(&Cache::new(dir.path())),
        used(&cache),
        "compaction folds the use into the entry"
    );
}

#[tokio::test]
async fn another_process_appending_or_compacting_leaves_our_entries_answered() {
    let dir = tempfile::tempdir().unwrap();
    let keys = keys_in_one_shard(5);
    let ours = Cache::new(dir.path());
    ours.put(&keys[0], &numbered(0), None).await.unwrap();
    // Another process appends after we indexed the log: our next line lands after theirs,
    // and the offset we record is where it really is.
    let theirs = Cache::new(dir.path());
    theirs.put(&keys[1], &numbered(1), None).await.unwrap();
    ours.put(&keys[2], &numbered(2), None).await.unwrap();
    assert_eq!(ours.get(&keys[2]).await, Some((numbered(2), None)));
    assert_eq!(ours.get(&keys[0]).await, Some((numbered(0), None)));
    // It compacts, renaming a new log into place: we go on reading the one we indexed.
    with_shard(&theirs, &keys[1], |shard| {
        theirs.compact(usize::from(id_of(&keys[1]).unwrap()[0]), shard)
    })
    .unwrap();
    ours.put(&keys[3], &numbered(3), None).await.unwrap();
    for i in [0, 2, 3] {
        assert_eq!(ours.get(&keys[i]).await, Some((numbered(i), None)), "key {i}");
    }
    let later = Cache::new(dir.path());
    for i in [0, 1] {
        assert_eq!(later.get(&keys[i]).await, Some((numbered(i), None)), "key {i}, later");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_puts_and_gets_answer_each_key_with_its_own_response() {
    let dir = tempfile::tempdir().unwrap();
    // 8 KiB a shard, so compactions run while other tasks read and write.
    let cache = Cache::with_limit(dir.path(), 256 * 8 * 1024);
    let keys = Arc::new(keys_in_one_shard(64));
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (cache, keys) = (cache.clone(), Arc::clone(&keys));
            tokio::spawn(async move {
                for round in 0..30 {
                    for i in (t..keys.len()).step_by(8) {
                        let n = round * 1_000 + i;
                        cache.put(&keys[i], &numbered(n), None).await.unwrap();
                        // Evicted already, or this task's own latest answer: nothing else.
                        if let Some(found) = cache.get(&keys[i]).await {
                            assert_eq!(found, (numbered(n), None), "key {i}");
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    with_shard(&cache, &keys[0], assert_live_bytes_recount);
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

#[tokio::test]
async fn an_unloaded_cache_holds_no_index_and_reads_and_writes_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let keys: Vec<String> = (0..40).map(|seed| key("openai|", &request(seed))).collect();
    for (i, k) in keys.iter().enumerate() {
        cache
            .put(k, &response(&format!("answer {i}")), Some(1.0))
            .await
            .unwrap();
    }
    let loaded = || cache.shards.iter().filter(|s| s.lock().unwrap().is_some()).count();
    assert!(loaded() > 0);
    cache.unload();
    assert_eq!(loaded(), 0, "every shard's index and file let go");
    // Every answer reads back from disk, and a put after the unload lands beside them.
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(cache.get(k).await, Some((response(&format!("answer {i}")), Some(1.0))));
    }
    let later = key("openai|", &request(99));
    cache.put(&later, &response("later"), None).await.unwrap();
    cache.unload();
    assert_eq!(cache.get(&later).await, Some((response("later"), None)));
    assert_eq!(cache.get(&keys[0]).await, Some((response("answer 0"), Some(1.0))));
}

/// The key is the SHA-256 of the version, the endpoint's identity and the request's JSON, so a
/// change to how a request is held (a shared model name, shared messages) must not move it: a
/// moved key is every cached answer lost. The expected digest is from
/// `printf 'promptgate-cache-v1\0openai-compatible http://127.0.0.1:1\0{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"temperature":0.0,"max_tokens":16,"top_p":null,"seed":7}' | sha256sum`.
#[test]
fn a_requests_key_is_the_digest_of_its_json_as_written_before() {
    let request = crate::providers::Request::new(
        std::sync::Arc::new(crate::providers::Settings {
            temperature: Some(0.0),
            max_tokens: Some(16),
            ..crate::providers::Settings::of("gpt-4o-mini")
        }),
        vec![
            Message {
                role: Role::System,
                content: "Be brief.".into(),
            },
            Message {
                role: Role::User,
                content: "hi".into(),
            },
        ]
        .into(),
        7,
    );
    assert_eq!(
        serde_json::to_string(&request).unwrap(),
        r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}],"temperature":0.0,"max_tokens":16,"top_p":null,"seed":7}"#
    );
    assert_eq!(
        key("openai-compatible http://127.0.0.1:1", &request),
        "908f21079afbbb133a762bb322c00dc059807f8cc8b91a0ea72c2c6084a005d5"
    );
}

#[tokio::test]
async fn two_keys_the_index_holds_alike_never_answer_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    // One shard (the first byte), the same next eight bytes, different digests.
    let alike = |tail: char| format!("ab{}{}", "0123456789abcdef", tail.to_string().repeat(46));
    let (first, second) = (alike('1'), alike('2'));
    assert_eq!(indexed(&first), indexed(&second));
    cache.put(&first, &numbered(1), None).await.unwrap();
    cache.put(&second, &numbered(2), None).await.unwrap();
    for run in [&cache, &Cache::new(dir.path())] {
        assert_eq!(run.get(&first).await, None, "the later put took the slot");
        assert_eq!(run.get(&second).await, Some((numbered(2), None)), "and kept it");
    }
    cache.put(&first, &numbered(3), None).await.unwrap();
    assert_eq!(cache.get(&first).await, Some((numbered(3), None)));
    assert_eq!(cache.get(&second).await, None);
    with_shard(&cache, &first, |shard| {
        assert_eq!(shard.index.len(), 1);
        assert_live_bytes_recount(shard);
        cache.compact(0xab, shard).unwrap();
    });
    assert_eq!(Cache::new(dir.path()).get(&first).await, Some((numbered(3), None)));
}

#[test]
fn a_read_without_positional_reads_puts_the_position_back() {
    // What `read_exact_at` does where the platform has no positional read: the scratch file's
    // later writes go where its position was before the read, not after the bytes read back.
    let mut file = std::io::Cursor::new(b"0123456789".to_vec());
    file.set_position(7);
    let mut buf = [0; 3];
    read_at_and_return(&mut file, &mut buf, 2).unwrap();
    assert_eq!((&buf, file.position()), (b"234", 7));
    let short = read_at_and_return(&mut file, &mut [0; 4], 8);
    assert_eq!(short.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
    assert_eq!(file.position(), 7, "and after a read that fails");
    use std::io::Write as _;
    file.write_all(b"x").unwrap();
    assert_eq!(file.into_inner(), b"0123456x89");
}

/// The first layout's entries (`<xx>/<key>.json`), which no version since reads, go when their
/// shard is first used, so they no longer sit outside the cache's bound; a folder holding
/// anything else (a `--cache-dir` pointed at git's objects) is left whole.
#[tokio::test]
async fn the_first_layouts_entries_go_when_their_shard_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let key = key("openai|", &request(1));
    let old = dir.path().join(&key[..2]);
    std::fs::create_dir(&old).unwrap();
    std::fs::write(old.join(format!("{key}.json")), "{}").unwrap();
    std::fs::write(old.join(format!("{}.json", "ab".repeat(32))), "{}").unwrap();
    let other_key = super::key("openai|", &request(7));
    let other = dir.path().join(&other_key[..2]);
    assert_ne!(other, old, "two shards");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join(format!("{}.json", "cd".repeat(32))), "{}").unwrap();
    // Not an entry of ours: a git object's name.
    std::fs::write(other.join("e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"), "").unwrap();
    let cache = Cache::new(dir.path());
    assert!(cache.get(&key).await.is_none());
    assert!(!old.exists(), "the old entries and their folder are gone");
    assert!(cache.get(&other_key).await.is_none());
    assert_eq!(
        std::fs::read_dir(&other).unwrap().count(),
        2,
        "a folder of other files is kept"
    );
}
