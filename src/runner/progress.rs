//! Progress on stderr: a bar on a terminal, plain lines in CI logs, or nothing.
//!
//! Judge calls are asked for while the run goes (each output asks for its own), so their
//! total grows as outputs arrive: they are counted apart from the planned calls, and the bar's
//! length grows with them.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// An indicatif bar (an interactive terminal).
    Bar,
    /// `promptgate: 1200/12000 calls, 3 retries, 40 cached` every ~10% or 10 s.
    Lines,
    Quiet,
}

impl ProgressMode {
    /// A bar when stderr is a terminal and `CI` is unset, else lines.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() && std::env::var_os("CI").is_none() {
            ProgressMode::Bar
        } else {
            ProgressMode::Lines
        }
    }
}

const LINE_INTERVAL: Duration = Duration::from_secs(10);

pub struct Progress {
    /// The planned calls.
    total: usize,
    done: AtomicUsize,
    /// Judge calls asked for so far, and finished (answered by a call, the cache, an
    /// identical call or the journal).
    judge_asked: AtomicUsize,
    judge_done: AtomicUsize,
    retries: AtomicUsize,
    cached: AtomicUsize,
    style: Style,
}

enum Style {
    Bar(ProgressBar),
    /// The tenth last printed, when, and the line (so `finish` prints the last one once).
    Lines(Mutex<(usize, Instant, String)>),
    Quiet,
}

/// What a progress line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    done: usize,
    total: usize,
    judge_done: usize,
    judge_asked: usize,
    retries: usize,
    cached: usize,
}

impl Counts {
    /// Tenths of all the work known so far.
    fn tenth(&self) -> usize {
        (self.done + self.judge_done) * 10 / (self.total + self.judge_asked).max(1)
    }

    fn line(&self) -> String {
        let judges = if self.judge_asked > 0 {
            format!(", {}/{} judge calls", self.judge_done, self.judge_asked)
        } else {
            String::new()
        };
        format!(
            "promptgate: {}/{} calls{judges}, {} retries, {} cached",
            self.done, self.total, self.retries, self.cached
        )
    }
}

impl Progress {
    pub fn new(mode: ProgressMode, total: usize) -> Self {
        let style = match mode {
            ProgressMode::Quiet => Style::Quiet,
            ProgressMode::Lines => Style::Lines(Mutex::new((0, Instant::now(), String::new()))),
            ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template("promptgate: {bar:30} {pos}/{len} calls, {msg} ({eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                Style::Bar(bar)
            }
        };
        Progress {
            total,
            done: AtomicUsize::new(0),
            judge_asked: AtomicUsize::new(0),
            judge_done: AtomicUsize::new(0),
            retries: AtomicUsize::new(0),
            cached: AtomicUsize::new(0),
            style,
        }
    }

    /// `done` planned jobs of the total are finished.
    pub fn update(&self, done: usize, retries: usize, cached: usize) {
        self.done.store(done, Ordering::Relaxed);
        self.retries.store(retries, Ordering::Relaxed);
        self.cached.store(cached, Ordering::Relaxed);
        self.show();
    }

    /// `n` more judge calls were asked for.
    pub fn judge_asked(&self, n: usize) {
        if n > 0 {
            self.judge_asked.fetch_add(n, Ordering::Relaxed);
            self.show();
        }
    }

    /// A judge call finished.
    pub fn judge_done(&self) {
        self.judge_done.fetch_add(1, Ordering::Relaxed);
        self.show();
    }

    fn counts(&self) -> Counts {
        Counts {
            done: self.done.load(Ordering::Relaxed),
            total: self.total,
            judge_done: self.judge_done.load(Ordering::Relaxed),
            judge_asked: self.judge_asked.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            cached: self.cached.load(Ordering::Relaxed),
        }
    }

    fn show(&self) {
        let counts = self.counts();
        match &self.style {
            Style::Quiet => {}
            Style::Bar(bar) => {
                bar.set_length((counts.total + counts.judge_asked) as u64);
                bar.set_position((counts.done + counts.judge_done) as u64);
                let judges = if counts.judge_asked > 0 {
                    format!("{} of them judge calls, ", counts.judge_asked)
                } else {
                    String::new()
                };
                bar.set_message(format!("{judges}{} retries, {} cached", counts.retries, counts.cached));
            }
            Style::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let tenth = counts.tenth();
                // A line per tenth (the last one at 100%), or after ten quiet seconds. Judge
                // calls asked late lower the share done: a tenth is printed once.
                if tenth > last.0 || last.1.elapsed() >= LINE_INTERVAL {
                    let line = counts.line();
                    eprintln!("{line}");
                    *last = (tenth.max(last.0), Instant::now(), line);
                }
            }
        }
    }

    pub fn finish(&self) {
        match &self.style {
            Style::Bar(bar) => bar.finish_and_clear(),
            Style::Lines(last) => {
                // The judge calls asked after the last tenth was printed end the log.
                let last = last.lock().unwrap_or_else(|e| e.into_inner());
                let line = self.counts().line();
                if line != last.2 {
                    eprintln!("{line}");
                }
            }
            Style::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_counts_judge_calls_apart_once_any_is_asked() {
        let mut counts = Counts {
            done: 53,
            total: 176,
            judge_done: 0,
            judge_asked: 0,
            retries: 1,
            cached: 2,
        };
        assert_eq!(counts.line(), "promptgate: 53/176 calls, 1 retries, 2 cached");
        assert_eq!(counts.tenth(), 3);
        counts.judge_asked = 100;
        counts.judge_done = 40;
        assert_eq!(
            counts.line(),
            "promptgate: 53/176 calls, 40/100 judge calls, 1 retries, 2 cached"
        );
        // (53 + 40) of (176 + 100) known calls: 3 tenths.
        assert_eq!(counts.tenth(), 3);
    }

    #[test]
    fn progress_adds_judge_calls_as_they_are_asked_and_finished() {
        let progress = Progress::new(ProgressMode::Quiet, 4);
        progress.update(2, 0, 0);
        progress.judge_asked(3);
        progress.judge_done();
        progress.judge_asked(0);
        progress.update(4, 1, 1);
        progress.judge_done();
        let counts = progress.counts();
        assert_eq!(
            (counts.done, counts.total, counts.judge_done, counts.judge_asked),
            (4, 4, 2, 3)
        );
    }
}
