//! A case's id, group and input, held in one allocation: a run holds every case's result until
//! its outputs are written (50,000 at 100,000 calls), and three boxed strings were three blocks
//! and six words each.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text `id`, `group`, `input` end to end, and where the id and the group end. Reads and
/// writes as a case's JSON fields `id`, `group` (absent when the case has none) and `input`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CaseText {
    text: Box<str>,
    id_end: u32,
    group_end: u32,
    grouped: bool,
}

/// A case's text fields as its JSON spells them.
#[derive(Serialize, Deserialize)]
struct Fields<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    group: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    input: std::borrow::Cow<'a, str>,
}

impl CaseText {
    pub fn new(id: &str, group: Option<&str>, input: &str) -> CaseText {
        // An id or a group is read from one line of a dataset (a repository's file is at most
        // `workspace::MAX_FILE_BYTES`) or of a results.json (`report::MAX_RESULTS_BYTES`): far
        // below 4 GiB. One beyond would be cut at a character's start, never split.
        let id = cut(id);
        let group_text = cut(group.unwrap_or_default());
        let (id_end, group_len) = (id.len(), group_text.len().min(u32::MAX as usize - id.len()));
        let group_text = &group_text[..floor_boundary(group_text, group_len)];
        let mut text = String::with_capacity(id.len() + group_text.len() + input.len());
        text.push_str(id);
        text.push_str(group_text);
        text.push_str(input);
        CaseText {
            text: text.into_boxed_str(),
            id_end: id_end as u32,
            group_end: (id_end + group_text.len()) as u32,
            grouped: group.is_some(),
        }
    }

    pub fn id(&self) -> &str {
        &self.text[..self.id_end as usize]
    }

    /// The case's `group` in the dataset.
    pub fn group(&self) -> Option<&str> {
        self.grouped
            .then(|| &self.text[self.id_end as usize..self.group_end as usize])
    }

    /// The case's `input` var (or its vars as JSON).
    pub fn input(&self) -> &str {
        &self.text[self.group_end as usize..]
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            id: self.id().into(),
            group: self.group().map(Into::into),
            input: self.input().into(),
        }
    }
}

/// `text` up to 4 GiB, cut at a character's start.
fn cut(text: &str) -> &str {
    &text[..floor_boundary(text, u32::MAX as usize)]
}

/// The largest character boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

impl fmt::Debug for CaseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaseText")
            .field("id", &self.id())
            .field("group", &self.group())
            .field("input", &self.input())
            .finish()
    }
}

impl Serialize for CaseText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CaseText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CaseText, D::Error> {
        let f = Fields::deserialize(deserializer)?;
        Ok(CaseText::new(&f.id, f.group.as_deref(), &f.input))
    }
}

/// A [`super::CaseResult`] read field by field, as serde's derive reads it (`id` required, the
/// others defaulting when absent, an unknown field passed over, a repeated one an error), but
/// each text field where it stands, not buffered for a `flatten`.
pub(super) fn read_case<'de, D: Deserializer<'de>>(deserializer: D) -> Result<super::CaseResult, D::Error> {
    use serde::de::{Error, IgnoredAny, MapAccess, Visitor};
    use std::borrow::Cow;

    struct CaseVisitor;
    impl<'de> Visitor<'de> for CaseVisitor {
        type Value = super::CaseResult;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a case: an object with `id`, `input`, `baseline` and `candidate`")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<super::CaseResult, A::Error> {
            fn once<T, E: Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
                match slot.replace(value) {
                    Some(_) => Err(E::duplicate_field(name)),
                    None => Ok(()),
                }
            }
            let (mut id, mut group, mut input) = (None::<Cow<'de, str>>, None::<Option<Cow<'de, str>>>, None);
            let (mut baseline, mut candidate, mut flip) = (None, None, None);
            // Keys borrowed where the input allows, as the values: no allocation a key.
            while let Some(Borrowed(key)) = map.next_key::<Borrowed<'de>>()? {
                match &*key {
                    "id" => once(&mut id, map.next_value::<Borrowed<'de>>()?.0, "id")?,
                    "group" => once(
                        &mut group,
                        map.next_value::<Option<Borrowed<'de>>>()?.map(|g| g.0),
                        "group",
                    )?,
                    "input" => once(&mut input, map.next_value::<Borrowed<'de>>()?.0, "input")?,
                    "baseline" => once(&mut baseline, map.next_value()?, "baseline")?,
                    "candidate" => once(&mut candidate, map.next_value()?, "candidate")?,
                    "flip" => once(&mut flip, map.next_value()?, "flip")?,
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let id = id.ok_or_else(|| A::Error::missing_field("id"))?;
            Ok(super::CaseResult {
                text: CaseText::new(&id, group.flatten().as_deref(), input.as_deref().unwrap_or_default()),
                baseline: baseline.unwrap_or_default(),
                candidate: candidate.unwrap_or_default(),
                flip: flip.unwrap_or_default(),
            })
        }
    }
    deserializer.deserialize_map(CaseVisitor)
}

/// A string read borrowed where the input allows it (serde's `borrow` on a `Cow`).
struct Borrowed<'a>(std::borrow::Cow<'a, str>);

impl<'de> Deserialize<'de> for Borrowed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Borrowed<'de>, D::Error> {
        #[derive(Deserialize)]
        struct Text<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>);
        Text::deserialize(deserializer).map(|t| Borrowed(t.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CaseResult;

    /// A case reads as serde's derive read it (the calls and flip defaulting, an unknown field
    /// passed over, `group: null` none), and a malformed, missing or repeated text field is
    /// reported where it is.
    #[test]
    fn a_case_reads_its_fields_and_reports_a_bad_one_where_it_stands() {
        let read: CaseResult = serde_json::from_str(
            r#"{"id": "c\u00e9", "later": [1], "group": null, "input": "hi", "flip": "pass_to_fail"}"#,
        )
        .unwrap();
        assert_eq!((read.id(), read.group(), read.input()), ("cé", None, "hi"));
        assert_eq!((read.baseline.len(), read.candidate.len()), (0, 0));
        assert_eq!(read.flip, Some(crate::results::Flip::PassToFail));
        let grouped: CaseResult = serde_json::from_str(r#"{"id": "c", "group": "g"}"#).unwrap();
        assert_eq!((grouped.group(), grouped.input()), (Some("g"), ""));
        for (text, message, column) in [
            (
                r#"{"id": 5, "input": "x", "candidate": []}"#,
                "invalid type: integer `5`",
                8,
            ),
            (
                r#"{"id": "a", "group": ["g"], "candidate": []}"#,
                "invalid type: sequence",
                21,
            ),
            (r#"{"id": "a", "id": "b", "candidate": []}"#, "duplicate field `id`", 21),
            (r#"{"input": "x", "candidate": []}"#, "missing field `id`", 31),
        ] {
            let e = serde_json::from_str::<CaseResult>(text).unwrap_err();
            assert!(e.to_string().contains(message), "{text}: {e}");
            assert_eq!(e.column(), column, "{text}: {e}");
        }
    }

    #[test]
    fn a_cases_id_group_and_input_read_back_as_given_and_write_as_three_fields() {
        let grouped = CaseText::new("c-1", Some("g"), "what is é?");
        assert_eq!(
            (grouped.id(), grouped.group(), grouped.input()),
            ("c-1", Some("g"), "what is é?")
        );
        let alone = CaseText::new("c-2", None, "");
        assert_eq!((alone.id(), alone.group(), alone.input()), ("c-2", None, ""));
        // An empty group is a group (the dataset wrote one), unlike none.
        let empty = CaseText::new("", Some(""), "x");
        assert_eq!((empty.id(), empty.group(), empty.input()), ("", Some(""), "x"));
        assert_ne!(empty, CaseText::new("", None, "x"));

        let json = serde_json::to_string(&grouped).unwrap();
        assert_eq!(json, r#"{"id":"c-1","group":"g","input":"what is é?"}"#);
        assert_eq!(serde_json::to_string(&alone).unwrap(), r#"{"id":"c-2","input":""}"#);
        for text in [grouped, alone, empty] {
            let back: CaseText = serde_json::from_str(&serde_json::to_string(&text).unwrap()).unwrap();
            assert_eq!(back, text);
        }
        // Escaped text (not borrowable from the JSON) and a missing input read too.
        let read: CaseText = serde_json::from_str(r#"{"id":"a\"b","group":null}"#).unwrap();
        assert_eq!((read.id(), read.group(), read.input()), ("a\"b", None, ""));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        assert_eq!(floor_boundary("aé", 2), 1);
        assert_eq!(floor_boundary("aé", 3), 3);
        assert_eq!(floor_boundary("aé", 99), 3);
        assert_eq!(cut("short"), "short");
    }
}
