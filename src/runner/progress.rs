//! Progress on stderr: a bar on a terminal, plain lines in CI logs, or nothing.

use std::io::IsTerminal as _;
use std::sync::Mutex;
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
    total: usize,
    style: Style,
}

enum Style {
    Bar(ProgressBar),
    /// The fraction step last printed and when.
    Lines(Mutex<(usize, Instant)>),
    Quiet,
}

impl Progress {
    pub fn new(mode: ProgressMode, total: usize) -> Self {
        let style = match mode {
            ProgressMode::Quiet => Style::Quiet,
            ProgressMode::Lines => Style::Lines(Mutex::new((0, Instant::now()))),
            ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template("promptgate: {bar:30} {pos}/{len} calls, {msg} ({eta} left)")
                    .unwrap_or_else(|_| ProgressStyle::default_bar());
                bar.set_style(style);
                Style::Bar(bar)
            }
        };
        Progress { total, style }
    }

    /// `done` jobs of the total are finished.
    pub fn update(&self, done: usize, retries: usize, cached: usize) {
        match &self.style {
            Style::Quiet => {}
            Style::Bar(bar) => {
                bar.set_position(done as u64);
                bar.set_message(format!("{retries} retries, {cached} cached"));
            }
            Style::Lines(last) => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                let step = done * 10 / self.total.max(1);
                // A line per tenth (the last one at 100%), or after ten quiet seconds.
                if step > last.0 || last.1.elapsed() >= LINE_INTERVAL {
                    *last = (step.max(last.0), Instant::now());
                    eprintln!(
                        "promptgate: {done}/{} calls, {retries} retries, {cached} cached",
                        self.total
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Style::Bar(bar) = &self.style {
            bar.finish_and_clear();
        }
    }
}
