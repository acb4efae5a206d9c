//! Where a call's `output` is written: inline (schema 1), or left to `calls.jsonl` (schema 2)
//! while [`outputs_elsewhere`] serializes.

use serde::{Deserialize, Serialize};

use super::{Arm, SCHEMA_VERSION, SCHEMA_VERSION_CALLS_FILE};

thread_local! {
    /// Set while [`outputs_elsewhere`] serializes: calls leave out `output`, and the schema is 2.
    static OUTPUTS_ELSEWHERE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `serialize` with every [`Call`]'s `output` left out and `schema_version` written as
/// [`SCHEMA_VERSION_CALLS_FILE`]. A flag rather than a second model: the shape of a call is
/// declared once, and writing results without their outputs needs no copy of them.
pub fn outputs_elsewhere<T>(serialize: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            OUTPUTS_ELSEWHERE.with(|f| f.set(false));
        }
    }
    OUTPUTS_ELSEWHERE.with(|f| f.set(true));
    let _reset = Reset;
    serialize()
}

pub(super) fn output_elsewhere(_: &Option<super::Text>) -> bool {
    OUTPUTS_ELSEWHERE.with(std::cell::Cell::get)
}

/// The schema a file is written in follows where its outputs go, whatever schema was read.
pub(super) fn schema_written<S: serde::Serializer>(_: &u32, serializer: S) -> Result<S::Ok, S::Error> {
    let version = if OUTPUTS_ELSEWHERE.with(std::cell::Cell::get) {
        SCHEMA_VERSION_CALLS_FILE
    } else {
        SCHEMA_VERSION
    };
    serializer.serialize_u32(version)
}

/// The flipped cases of each direction the comment quotes at most (its largest size): a schema 2
/// run keeps in memory the outputs of these, and no others.
pub const SHOWN_FLIPS: usize = 20;

/// The longest output a provider returns (its body, an `exec` program's stdout: the providers
/// assert they stay under it; a batch's answer: `runner::batch` fails a longer one): `calls.jsonl`'s line limit is sized to read back any line a run
/// writes.
pub const LONGEST_OUTPUT: u64 = 16 << 20;

/// One line of `calls.jsonl`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallLine<'a> {
    #[serde(borrow)]
    pub experiment: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub case: std::borrow::Cow<'a, str>,
    pub arm: Arm,
    pub repeat: u32,
    #[serde(borrow)]
    pub output: std::borrow::Cow<'a, str>,
}
