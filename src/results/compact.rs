//! A call's compact fields: a text it may hold (its output, its error) and its latency in one
//! word each, its token counts in 32 bits each.
//! A run holds every call until its analysis is done, two for each case of 50,000 at 100,000
//! calls: each word a call saves is 0.8 MB there.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A text a call may hold: one word (a pointer to the boxed text) where a `Box<str>` is two, so
/// `Option<Text>` is one word too. Reads as a `str`; serialises as a JSON string.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Text(Box<Box<str>>);

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self
    }
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(Box::new(text.into_boxed_str()))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(Box::new(text.into()))
    }
}

impl From<Box<str>> for Text {
    fn from(text: Box<str>) -> Text {
        Text(Box::new(text))
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self)
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        String::deserialize(deserializer).map(Text::from)
    }
}

/// A call's latency in milliseconds, or none (a cache hit, a batched call, an error): one word
/// where `Option<f64>` is two, NaN standing for none (a measured latency is never NaN, and one
/// given as NaN reads as none). Compares, prints and serialises as the `Option<f64>`.
#[derive(Clone, Copy)]
pub struct Latency(f64);

impl Latency {
    pub const NONE: Latency = Latency(f64::NAN);

    pub fn get(self) -> Option<f64> {
        (!self.0.is_nan()).then_some(self.0)
    }
}

impl Default for Latency {
    fn default() -> Latency {
        Latency::NONE
    }
}

impl From<Option<f64>> for Latency {
    fn from(ms: Option<f64>) -> Latency {
        ms.map_or(Latency::NONE, Latency)
    }
}

impl PartialEq for Latency {
    fn eq(&self, other: &Latency) -> bool {
        self.get() == other.get()
    }
}

impl fmt::Debug for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.get(), f)
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Latency, D::Error> {
        Option::<f64>::deserialize(deserializer).map(Latency::from)
    }
}

/// A call's token counts. Read from a `results.json` as any count (one written before they
/// were held in 32 bits may hold more), each past `u32::MAX` read as it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Tokens {
    #[serde(deserialize_with = "read_held")]
    pub input: u32,
    #[serde(deserialize_with = "read_held")]
    pub cached_input: u32,
    #[serde(deserialize_with = "read_held")]
    pub output: u32,
}

/// A count as 32 bits, the most they hold for one past them.
fn held(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// [`held`], read from any count a file holds.
fn read_held<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    u64::deserialize(deserializer).map(held)
}

impl Tokens {
    /// A provider's count of a call's tokens, each held in 32 bits (a call holds them until
    /// the analysis): four billion tokens is some thousand times the longest context a model
    /// takes, and a count past it reads as the most 32 bits hold.
    pub fn new(input: u64, cached_input: u64, output: u64) -> Tokens {
        Tokens {
            input: held(input),
            cached_input: held(cached_input),
            output: held(output),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_is_one_word_and_reads_and_writes_as_its_string() {
        assert_eq!(std::mem::size_of::<Option<Text>>(), std::mem::size_of::<usize>());
        let text = Text::from("Within 30 days.");
        assert_eq!(&*text, "Within 30 days.");
        assert_eq!(text, "Within 30 days.");
        assert_eq!(format!("{text} {text:?}"), "Within 30 days. \"Within 30 days.\"");
        let json = serde_json::to_string(&Some(text.clone())).unwrap();
        assert_eq!(json, "\"Within 30 days.\"");
        let back: Option<Text> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Some(text));
        assert_eq!(serde_json::from_str::<Option<Text>>("null").unwrap(), None);
    }

    #[test]
    fn token_counts_are_32_bits_and_a_larger_count_written_or_read_is_the_most_they_hold() {
        assert_eq!(
            Tokens::new(120, 100, 5),
            Tokens {
                input: 120,
                cached_input: 100,
                output: 5
            }
        );
        assert_eq!(Tokens::new(1 << 32, 0, u64::MAX).input, u32::MAX);
        assert_eq!(Tokens::new(1 << 32, 0, u64::MAX).output, u32::MAX);
        let old: Tokens = serde_json::from_str(r#"{"input": 4294967296, "output": 7}"#).unwrap();
        assert_eq!(
            old,
            Tokens {
                input: u32::MAX,
                cached_input: 0,
                output: 7
            }
        );
        assert_eq!(
            serde_json::to_string(&Tokens::new(120, 100, 5)).unwrap(),
            r#"{"input":120,"cached_input":100,"output":5}"#
        );
        assert!(serde_json::from_str::<Tokens>(r#"{"input": -1}"#).is_err());
    }

    #[test]
    fn a_latency_is_one_word_and_reads_and_writes_as_an_optional_number() {
        assert_eq!(std::mem::size_of::<Latency>(), 8);
        assert_eq!(Latency::from(Some(812.5)).get(), Some(812.5));
        assert_eq!(Latency::from(Some(0.0)).get(), Some(0.0));
        assert_eq!(Latency::from(None).get(), None);
        assert_eq!(Latency::default(), Latency::NONE);
        assert_eq!(Latency::from(Some(f64::NAN)), Latency::NONE);
        assert_ne!(Latency::from(Some(1.0)), Latency::NONE);
        assert_eq!(
            format!("{:?} {:?}", Latency::from(Some(2.5)), Latency::NONE),
            "Some(2.5) None"
        );
        for (latency, json) in [
            (Latency::from(Some(0.1 + 0.2)), "0.30000000000000004"),
            (Latency::NONE, "null"),
        ] {
            assert_eq!(serde_json::to_string(&latency).unwrap(), json);
            assert_eq!(serde_json::from_str::<Latency>(json).unwrap(), latency);
        }
    }
}
