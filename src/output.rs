//! What promptgate writes, made safe: files a run produces (`--out`, the journal, the response
//! cache) are never written through a symbolic link — a checkout may hold links a pull
//! request committed, and a committed `promptgate-out` link would otherwise send the outputs
//! (and the journal) wherever it points — and text printed to a CI log cannot start a
//! workflow command ([`inert`]).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Creates an output folder, refusing one that is (or sits under) a symbolic link inside the
/// working directory: a checkout may hold links the pull request committed.
pub fn create_dir(dir: &Path) -> anyhow::Result<()> {
    refuse_links(dir)?;
    // A file where the folder (or one above it) should be is the command line's mistake.
    if let Some(file) = dir
        .ancestors()
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()))
    {
        return Err(crate::error::Error::from(
            crate::error::Diagnostic::new(format!(
                "cannot write outputs into {}: `{}` is a file, not a folder",
                dir.display(),
                file.display()
            ))
            .hint("name a folder (new or existing) there, as --out or --cache-dir, or move the file"),
        )
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes a file atomically, refusing to follow a symbolic link at its path: the bytes go to a
/// new temporary file in the same folder, are synced to disk, and the file is renamed over
/// `path` (and the folder synced), so a reader — or a rerun after a crash — sees the old file
/// or the new one, never a truncated one. The rename replaces a link created at `path` after
/// the check; it never writes through it.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_file_with(path, |file| file.write_all(bytes))
}

/// [`write_file`] for a file written piece by piece: `write` streams into the temporary file
/// (buffered), which is synced and renamed over `path` only when `write` succeeded — a large
/// output never has to be one string in memory, and is never seen half written.
pub fn write_file_with(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    // A device or a pipe where the link (if any) leads: `/dev/stdout` is a link to the
    // process's descriptor, which no checkout can plant.
    // `/dev/stdout` redirected to a file (`> out.json`) leads to that file: written into too.
    let stream = || path.starts_with("/dev") || std::fs::metadata(path).is_ok_and(|t| !t.is_file() && !t.is_dir());
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && !path.starts_with("/dev") => {
            return Err(link_error(path).into());
        }
        Ok(m) if m.is_dir() => {
            let e: crate::error::Error =
                crate::error::Diagnostic::new(format!("cannot write {}: it is a folder", path.display()))
                    .hint("name a file inside it")
                    .into();
            return Err(e.into());
        }
        // A device or a pipe (`/dev/null`, `/dev/stdout`, a FIFO) is written into, never
        // replaced: a rename over `/dev/null` made it an ordinary file for everything else on
        // the machine.
        Ok(_) if stream() => {
            let written = (|| -> std::io::Result<()> {
                let file = std::fs::OpenOptions::new().write(true).open(path)?;
                let mut buffered = std::io::BufWriter::with_capacity(1 << 16, file);
                write(&mut buffered)?;
                std::io::Write::flush(&mut buffered)
            })();
            return written.with_context(|| format!("writing {}", path.display()));
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| -> std::io::Result<()> {
        // `create_new` never opens an existing file or link.
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, file);
        write(&mut buffered)?;
        let file = buffered.into_inner().map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("writing {}", path.display()));
    }
    sync_dir(dir);
    Ok(())
}

/// A run's scratch file in its output folder (the answers as they arrive, the outputs as they
/// are scored): created new under a name no other run uses, held locked while it lives, and
/// removed when dropped.
///
/// A run that ends without dropping it (a second Ctrl-C, `kill -9`) leaves the file behind; the
/// operating system releases the lock however a process ends, so the next run in the folder
/// finds the file unlocked and removes it ([`sweep_scratch`]). A scratch file only ever read
/// through its descriptor has no name at all ([`Scratch::unnamed`]) and goes with the run.
#[derive(Debug)]
pub struct Scratch {
    /// The file, or for an unnamed one the folder it is in (what messages name).
    path: PathBuf,
    file: std::fs::File,
    named: bool,
}

/// The prefix of every scratch file's name.
const SCRATCH_PREFIX: &str = ".promptgate-run.";

/// How old an unlocked scratch file must be to be removed as left behind: a file another run
/// has just created is locked an instant later.
const SCRATCH_ABANDONED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

impl Scratch {
    /// Creates `<dir>/.promptgate-run.<pid>.<nanos>.<n>.<what>` (never an existing file or link), open for
    /// reading and writing.
    pub fn create(dir: &Path, what: &str) -> anyhow::Result<Scratch> {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!(
            "{SCRATCH_PREFIX}{}.{nanos}.{}.{what}",
            std::process::id(),
            COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        // Only this run has the name, so the lock is free; it tells later runs the file is live.
        // Not on Windows, where a lock also bars this process's own reads by path.
        #[cfg(unix)]
        let _ = file.try_lock();
        Ok(Scratch {
            path,
            file,
            named: true,
        })
    }

    /// A scratch file in `dir` that has no name (`O_TMPFILE` on Linux; elsewhere removed as
    /// soon as it is made, or deleted on close on Windows): read and written only through its
    /// descriptor, it goes when the run does, however the run ends, and no later run need sweep
    /// it. `what` is for messages.
    pub fn unnamed(dir: &Path, what: &str) -> anyhow::Result<Scratch> {
        let file = tempfile::tempfile_in(dir)
            .with_context(|| format!("cannot create a scratch file for {what} in {}", dir.display()))?;
        Ok(Scratch {
            path: dir.to_owned(),
            file,
            named: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self) -> &std::fs::File {
        &self.file
    }
}

/// What messages call the file: its path, or for an unnamed one the folder it is in.
impl std::fmt::Display for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.named {
            write!(f, "{}", self.path.display())
        } else {
            write!(f, "a scratch file in {}", self.path.display())
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.named {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Removes the scratch files in `dir` no live run holds: unlocked, and last written at least
/// [`SCRATCH_ABANDONED_AFTER`] ago (a run killed outright leaves its files). Best effort: a
/// file that cannot be read or removed stays. Every run sweeps its output folder once, before
/// it makes any scratch file of its own; on Windows, where files are not locked, none is
/// removed.
pub fn sweep_scratch(dir: &Path) {
    // Never through a link a pull request committed: the folder is checked as it is written.
    if cfg!(not(unix)) || refuse_links(dir).is_err() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= SCRATCH_ABANDONED_AFTER);
        if !meta.is_file() || !old {
            continue;
        }
        let Ok(file) = std::fs::File::open(entry.path()) else {
            continue;
        };
        if file.try_lock().is_ok() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename in `dir` durable. Best effort: not every platform or file system can sync a
/// folder, and the file itself is already on disk.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Refuses `path` when it, or a folder on the way to it, is a symbolic link. An absolute path
/// is checked from its last existing folder (system folders such as `/tmp` may be links).
fn refuse_links(path: &Path) -> Result<(), crate::error::Error> {
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        let checked = path.is_relative() || prefix == path;
        if checked && std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(link_error(&prefix));
        }
    }
    Ok(())
}

fn link_error(path: &Path) -> crate::error::Error {
    crate::error::Diagnostic::new(format!(
        "refusing to write outputs through `{}`: it is a symbolic link",
        path.display()
    ))
    .hint("a checkout may hold links a pull request committed; remove the link or pass another --out folder")
    .into()
}

/// Removes the charts an earlier run wrote into `charts_dir` that this one does not (`kept`:
/// chart names, without extension), and records this run's: a reused output folder would
/// otherwise keep an earlier run's chart of an experiment or metric this run has not, beside
/// this run's, for a reviewer browsing the artifact to read as current. Only files the same
/// command listed as its own (`manifest`, a file in the folder: [`RUN_CHARTS`],
/// [`CANARY_CHARTS`], [`LEDGER_CHARTS`]) are removed: the folder may be one the user keeps
/// other images in (`--out docs`), or another command's. Nothing is removed through a link,
/// nor when the manifest is not a plain file.
pub fn replace_charts<'a>(
    charts_dir: &Path,
    manifest: &str,
    kept: impl IntoIterator<Item = &'a str>,
) -> anyhow::Result<()> {
    let kept: std::collections::BTreeSet<String> = kept
        .into_iter()
        .flat_map(|name| ["svg", "png"].map(|ext| format!("{name}.{ext}")))
        .collect();
    if refuse_links(charts_dir).is_err() {
        return Ok(());
    }
    let manifest = charts_dir.join(manifest);
    if std::fs::symlink_metadata(&manifest).is_ok_and(|m| !m.is_file()) {
        eprintln!(
            "warning: {} is not a plain file: the charts of earlier runs are left as they are",
            manifest.display()
        );
        return Ok(());
    }
    // A list of file names, one a line, at most a few thousand: read capped, and only plain
    // names in this folder are ever removed.
    let listed = std::fs::File::open(&manifest).ok().map(|file| {
        use std::io::Read as _;
        let mut text = String::new();
        let _ = file.take(1 << 20).read_to_string(&mut text);
        text
    });
    for name in listed.iter().flat_map(|text| text.lines()) {
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && name != ".."
            && (name.ends_with(".svg") || name.ends_with(".png"));
        if !plain || kept.contains(name) {
            continue;
        }
        let path = charts_dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the earlier run's chart {}", path.display()))?;
        }
    }
    if kept.is_empty() {
        if listed.is_some() {
            std::fs::remove_file(&manifest).with_context(|| format!("removing {}", manifest.display()))?;
        }
        return Ok(());
    }
    create_dir(charts_dir)?;
    let text: String = kept.iter().map(|name| format!("{name}\n")).collect();
    write_file(&manifest, text.as_bytes())
}

/// The files in a charts folder that list the charts each command wrote there: `run`,
/// `report` and `ci`; `canary`; `ledger show`.
pub const RUN_CHARTS: &str = ".promptgate-charts";
pub const CANARY_CHARTS: &str = ".promptgate-canary-charts";
pub const LEDGER_CHARTS: &str = ".promptgate-ledger-charts";

/// `text` made inert for the runner's log: no line of it starts a workflow command.
///
/// The runner reads a line as a command when, after leading whitespace, it starts with `::`
/// (and, in the older form, wherever `##[` occurs). Text printed from results or the suite can
/// come from a pull request, so a `::add-mask::` or `::stop-commands::` line in an experiment
/// name must print as text: a zero-width space before the `::` (and inside `##[`) keeps the
/// line readable and breaks the match. Carriage returns count as line breaks, as the runner
/// splits on them too.
pub fn inert(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    // A terminal obeys control characters too: an escape sequence in a name a pull request
    // or a log chose (`\x1b[2J`, a fake prompt, a hidden line) prints as its code, visibly.
    // Bidirectional overrides and isolates reorder what a terminal shows.
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202A}'..='\u{202E}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    };
    let text: String = if text.chars().any(hidden) {
        text.chars()
            .map(|c| {
                if hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    } else {
        text
    };
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let body = line.trim_start();
        if body.starts_with("::") {
            out.push_str(&line[..line.len() - body.len()]);
            out.push(ZERO_WIDTH_SPACE);
            out.push_str(body);
        } else {
            out.push_str(line);
        }
    }
    out.replace("##[", "#\u{200B}#[")
}

const ZERO_WIDTH_SPACE: char = '\u{200B}';

// Last, with the tests: `tests/tidy.rs` reads what follows the first `#[cfg(test)]` as test
// code.
#[cfg(test)]
impl Scratch {
    /// An unnamed scratch over `file` (a test's `/dev/full`).
    pub(crate) fn over(file: std::fs::File, path: &Path) -> Scratch {
        Scratch {
            path: path.to_owned(),
            file,
            named: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device or a pipe is written into, not renamed over (`--dry-run /dev/null` made
    /// `/dev/null` an ordinary file, and every later `git -c … GIT_CONFIG_GLOBAL=/dev/null` on
    /// the machine failed).
    #[test]
    fn a_pipe_is_written_into_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_file(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        let e = write_file(dir.path(), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("it is a folder"), "{e:#}");
        // `/dev/fd/N` (what `>(…)` and `/dev/stdout` are) is a link to a pipe: written into
        // (the review: refused as a link a checkout may hold).
        let (mut reader, writer) = std::io::pipe().unwrap();
        use std::os::fd::AsRawFd;
        let link = PathBuf::from(format!("/dev/fd/{}", writer.as_raw_fd()));
        write_file(&link, b"through the link").unwrap();
        drop(writer);
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut read).unwrap();
        assert_eq!(read, b"through the link");
        // So is `/dev/stdout` redirected to a file: its link leads to that file (review 2).
        let target = dir.path().join("redirected");
        let file = std::fs::File::create(&target).unwrap();
        write_file(
            &PathBuf::from(format!("/dev/fd/{}", file.as_raw_fd())),
            b"into the file",
        )
        .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"into the file");
        // A link elsewhere is still refused, whatever it leads to.
        std::os::unix::fs::symlink(&fifo, dir.path().join("link")).unwrap();
        let e = write_file(&dir.path().join("link"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("it is a symbolic link"), "{e:#}");
    }

    fn scratch_files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(SCRATCH_PREFIX))
            .collect();
        names.sort();
        names
    }

    fn age(path: &Path) {
        let old = std::time::SystemTime::now() - SCRATCH_ABANDONED_AFTER * 2;
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    /// A terminal escape in text a pull request or a log chose prints as its code (the audit:
    /// a canary.json `version` of `\x1b[31mRED` reached `ledger show`'s output raw).
    #[test]
    fn control_characters_print_as_their_codes() {
        assert_eq!(inert("v1\u{1b}[31mRED\u{7}"), "v1\\u{1b}[31mRED\\u{7}");
        assert_eq!(inert("a\tb\nc"), "a\tb\nc");
        assert_eq!(inert("caf\u{e9} \u{1F600}"), "caf\u{e9} \u{1F600}");
        assert_eq!(inert("x\u{9b}2J"), "x\\u{9b}2J");
        assert_eq!(inert("a\u{202E}cba\u{2066}"), "a\\u{202e}cba\\u{2066}");
    }

    #[test]
    fn scratch_files_have_names_of_their_own_and_go_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let a = Scratch::create(dir.path(), "answers").unwrap();
        let b = Scratch::create(dir.path(), "answers").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(scratch_files(dir.path()).len(), 2);
        use std::io::Write as _;
        a.file().write_all(b"kept").unwrap();
        assert_eq!(std::fs::read_to_string(a.path()).unwrap(), "kept");
        drop(a);
        drop(b);
        assert!(scratch_files(dir.path()).is_empty());
    }

    #[test]
    fn a_scratch_file_a_dead_run_left_is_removed_and_a_live_runs_is_not() {
        let dir = tempfile::tempdir().unwrap();
        // Left behind: no process holds its lock.
        let left = dir.path().join(format!("{SCRATCH_PREFIX}1.2.0.answers"));
        std::fs::write(&left, "old").unwrap();
        age(&left);
        // Just created by a run that has not locked it yet: too young to judge.
        let young = dir.path().join(format!("{SCRATCH_PREFIX}3.4.0.answers"));
        std::fs::write(&young, "new").unwrap();
        // Live: held by a run still going, however old its last write.
        let live = Scratch::create(dir.path(), "calls.jsonl").unwrap();
        age(live.path());
        let other = dir.path().join("results.json");
        std::fs::write(&other, "{}").unwrap();
        age(&other);
        sweep_scratch(dir.path());
        assert!(!left.exists(), "the dead run's file stays");
        assert!(young.exists() && live.path().exists() && other.exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_sweep_never_goes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let victim = elsewhere.path().join(format!("{SCRATCH_PREFIX}1.2.0.answers"));
        std::fs::write(&victim, "not ours").unwrap();
        age(&victim);
        let link = dir.path().join("out");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        sweep_scratch(&link);
        assert!(victim.exists());
        sweep_scratch(elsewhere.path());
        assert!(!victim.exists(), "the same file is swept where it really is");
    }

    #[cfg(unix)]
    #[test]
    fn links_are_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let link = dir.path().join("out");
        std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
        let e = create_dir(&link).unwrap_err().to_string();
        assert!(e.contains("is a symbolic link"), "{e}");
        let real = dir.path().join("real");
        create_dir(&real).unwrap();
        let target = elsewhere.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, real.join("results.json")).unwrap();
        assert!(write_file(&real.join("results.json"), b"x").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        write_file(&real.join("report.md"), b"ok").unwrap();
        write_file(&real.join("report.md"), b"again").unwrap();
        assert_eq!(std::fs::read_to_string(real.join("report.md")).unwrap(), "again");
        let names: Vec<_> = std::fs::read_dir(&real)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left behind: {names:?}");
    }

    /// Each command removes only the charts it listed: `ledger show` and `report` sharing an
    /// output folder removed each other's (the review), and a manifest that is no plain file is
    /// left alone, with the charts.
    #[test]
    fn a_command_removes_only_the_charts_it_listed() {
        let dir = tempfile::tempdir().unwrap();
        let charts = dir.path().join("charts");
        replace_charts(&charts, RUN_CHARTS, ["exp-quality"]).unwrap();
        replace_charts(&charts, LEDGER_CHARTS, ["exp-pass-rate-trend"]).unwrap();
        for name in ["exp-quality", "exp-pass-rate-trend"] {
            for ext in ["svg", "png"] {
                std::fs::write(charts.join(format!("{name}.{ext}")), b"chart").unwrap();
            }
        }
        std::fs::write(charts.join("logo.png"), b"the user's").unwrap();
        // The ledger writes no trend this time: its own charts go, the run's and the user's stay.
        replace_charts(&charts, LEDGER_CHARTS, std::iter::empty()).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(&charts)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [RUN_CHARTS, "exp-quality.png", "exp-quality.svg", "logo.png"]);
        // A manifest that is a folder: nothing removed, no error.
        std::fs::remove_file(charts.join(RUN_CHARTS)).unwrap();
        std::fs::create_dir(charts.join(RUN_CHARTS)).unwrap();
        replace_charts(&charts, RUN_CHARTS, std::iter::empty()).unwrap();
        assert!(charts.join("exp-quality.svg").is_file());
    }

    /// A reader (or a rerun after a crash) never finds an output missing or half written.
    #[test]
    fn a_reader_sees_the_old_file_or_the_new_one_never_a_truncated_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        const SIZE: usize = 256 * 1024;
        write_file(&path, &vec![b'a'; SIZE]).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        let reading = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !reading.load(std::sync::atomic::Ordering::SeqCst) {
                    std::thread::yield_now();
                }
                for i in 0..100 {
                    write_file(&path, &vec![if i % 2 == 0 { b'b' } else { b'a' }; SIZE]).unwrap();
                }
                done.store(true, std::sync::atomic::Ordering::SeqCst);
            });
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                reading.store(true, std::sync::atomic::Ordering::SeqCst);
                let bytes = std::fs::read(&path).expect("the file is always there");
                assert_eq!(bytes.len(), SIZE, "a truncated file after {reads} reads");
                assert!(bytes.iter().all(|b| *b == bytes[0]), "a mix of two writes");
                reads += 1;
            }
        });
    }
}
