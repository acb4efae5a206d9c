//! Answers written to a file as they arrive instead of held until the run ends
//! ([`super::Options::stow`]): a large run's outcomes then hold no output, and scoring reads each
//! back when it scores that call.
//!
//! Each answer's text is appended to the file unbuffered, so an answer whose write returned is
//! in the file, and only then is its text taken out of the outcome. A write that fails keeps
//! that answer, and every later one, in memory (with one warning): nothing is lost, the run only
//! holds more. The file is the run's own scratch ([`Scratch`]: removed when its last holder goes,
//! or by the next run when this one is killed); the journal
//! and the response cache keep their own copies as before.

use std::io::Write as _;
use std::sync::Arc;

use super::Outcome;
use crate::output::Scratch;

/// Where the stowed answers are: the file, and per outcome (by index) the offset and length
/// of its text there, `None` when the text is in the outcome. The file goes when the last
/// holder of it does.
#[derive(Clone, Debug, Default)]
pub struct Stowed {
    scratch: Option<Arc<Scratch>>,
    at: Vec<Option<(u64, u32)>>,
}

impl Stowed {
    /// Whether any answer is in the file.
    pub fn is_empty(&self) -> bool {
        self.at.iter().all(Option::is_none)
    }

    /// The file, as messages name it.
    pub fn describe(&self) -> String {
        self.scratch.as_deref().map_or_else(String::new, Scratch::to_string)
    }

    /// Puts back the text of outcome `index` if it was stowed.
    pub fn restore(&self, index: usize, outcome: &mut Outcome) -> std::io::Result<()> {
        let (Some(scratch), Some(&Some((offset, len))), Ok(response)) =
            (&self.scratch, self.at.get(index), outcome.result.as_mut())
        else {
            return Ok(());
        };
        let mut bytes = vec![0; len as usize];
        super::cache::read_exact_at(scratch.file(), &mut bytes, offset)?;
        response.text = String::from_utf8(bytes).map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// The writing end, for one batch of jobs.
pub(super) struct Stow {
    /// False once a write failed: the remaining answers stay in memory.
    writing: bool,
    written: u64,
    stowed: Stowed,
}

impl Stow {
    /// Answers of `count` outcomes go to the end of `scratch`, which only this stow writes
    /// while it lives.
    pub(super) fn new(scratch: &Arc<Scratch>, count: usize) -> Stow {
        // Appends land at the end whatever an earlier stow left there (the file's offset is
        // shared): the offsets count from there.
        let end = scratch.file().metadata().map(|m| m.len());
        if let Err(e) = &end {
            eprintln!("warning: cannot read {scratch}: {e}; the run holds every answer in memory");
        }
        Stow {
            writing: end.is_ok(),
            written: end.unwrap_or(0),
            stowed: Stowed {
                scratch: Some(Arc::clone(scratch)),
                at: vec![None; count],
            },
        }
    }

    /// Moves the text of outcome `index` into the file.
    pub(super) fn put(&mut self, index: usize, outcome: &mut Outcome) {
        let (true, Some(scratch), Ok(response), Some(slot)) = (
            self.writing,
            self.stowed.scratch.as_deref(),
            outcome.result.as_mut(),
            self.stowed.at.get_mut(index),
        ) else {
            return;
        };
        let Ok(len) = u32::try_from(response.text.len()) else {
            return;
        };
        if len == 0 {
            return;
        }
        match scratch.file().write_all(response.text.as_bytes()) {
            Ok(()) => {
                *slot = Some((self.written, len));
                self.written += u64::from(len);
                response.text = String::new();
            }
            Err(e) => {
                eprintln!("warning: cannot write {scratch}: {e}; the run holds the remaining answers in memory");
                self.writing = false;
            }
        }
    }

    /// Outcome `to` is a copy of outcome `from` (an identical job's answer): it reads the same
    /// text.
    pub(super) fn copy(&mut self, from: usize, to: usize) {
        if let (Some(&at), Some(slot)) = (self.stowed.at.get(from), self.stowed.at.get(to).copied()) {
            debug_assert!(slot.is_none());
            self.stowed.at[to] = at;
        }
    }

    pub(super) fn finish(self) -> Stowed {
        self.stowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(text: &str) -> Outcome {
        Outcome::answered(text, "sim")
    }

    #[test]
    fn answers_go_to_the_file_and_come_back_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::create(dir.path(), "answers").unwrap());
        let path = scratch.path().to_owned();
        let texts = ["first answer", "", "ünïcødé, \"quoted\"\nand a new line", "last"];
        let mut outcomes: Vec<Outcome> = texts.iter().map(|t| answered(t)).collect();
        outcomes.push(Outcome {
            result: Err(super::super::CallError::NotRun),
            ..answered("")
        });
        let mut stow = Stow::new(&scratch, outcomes.len() + 1);
        // Out of order, as answers arrive.
        for index in [2, 0, 3, 1, 4] {
            stow.put(index, &mut outcomes[index]);
        }
        stow.copy(2, 5);
        let stowed = stow.finish();
        assert!(!stowed.is_empty());
        for (index, outcome) in outcomes.iter().enumerate().take(4) {
            let text = &outcome.result.as_ref().unwrap().text;
            assert!(text.is_empty(), "answer {index} left in memory: {text:?}");
        }
        let mut follower = answered("");
        stowed.restore(5, &mut follower).unwrap();
        assert_eq!(follower.result.as_ref().unwrap().text, texts[2]);
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            stowed.restore(index, outcome).unwrap();
        }
        for (outcome, text) in outcomes.iter().zip(texts) {
            assert_eq!(outcome.result.as_ref().unwrap().text, text);
        }
        assert!(
            outcomes[4].result.is_err(),
            "a failed call has no text to stow or restore"
        );
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            texts[2].to_owned() + texts[0] + texts[3]
        );
        // A second batch through the same file: its offsets start where the first's ended.
        let mut again = answered("second batch");
        let mut stow = Stow::new(&scratch, 1);
        stow.put(0, &mut again);
        let second = stow.finish();
        second.restore(0, &mut again).unwrap();
        assert_eq!(again.result.as_ref().unwrap().text, "second batch");
        stowed.restore(0, &mut outcomes[0]).unwrap();
        assert_eq!(outcomes[0].result.as_ref().unwrap().text, texts[0]);
        drop((scratch, stowed, second));
        assert!(!path.exists(), "the file goes with its last holder");
    }

    #[test]
    fn an_unnamed_scratch_file_leaves_nothing_in_the_folder_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let scratch = Arc::new(Scratch::unnamed(dir.path(), "the answers").unwrap());
        let mut outcomes = [answered("one"), answered("two, longer")];
        let mut stow = Stow::new(&scratch, 2);
        stow.put(1, &mut outcomes[1]);
        stow.put(0, &mut outcomes[0]);
        // On Windows the file keeps a name while open and goes on close.
        #[cfg(unix)]
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the file has no name, so a run killed outright leaves nothing behind"
        );
        let stowed = stow.finish();
        for outcome in &mut outcomes {
            assert!(outcome.result.as_ref().unwrap().text.is_empty());
        }
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            stowed.restore(index, outcome).unwrap();
        }
        assert_eq!(outcomes.map(|o| o.result.unwrap().text), ["one", "two, longer"]);
        assert!(stowed.describe().contains(&dir.path().display().to_string()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_write_that_fails_keeps_that_answer_and_every_later_one_in_memory() {
        // /dev/full fails every write with "no space left on device", as a full disk would.
        let full = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/full")
            .unwrap();
        let scratch = Arc::new(Scratch::over(full, std::path::Path::new("/dev/full")));
        let texts = ["first", "second", "third"];
        let mut outcomes: Vec<Outcome> = texts.iter().map(|t| answered(t)).collect();
        let mut stow = Stow::new(&scratch, texts.len());
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            stow.put(index, outcome);
        }
        let stowed = stow.finish();
        assert!(stowed.is_empty(), "nothing was written, so nothing is to be read back");
        for (index, outcome) in outcomes.iter_mut().enumerate() {
            stowed.restore(index, outcome).unwrap();
        }
        let kept: Vec<&str> = outcomes
            .iter()
            .map(|o| o.result.as_ref().unwrap().text.as_str())
            .collect();
        assert_eq!(kept, texts);
    }
}
