//! One JSON log line parsed only as far as the field map reaches. A full `serde_json::Value`
//! allocates every key and string of the line into ordered maps; a canary over a million lines
//! spent most of its time there. This walks the same serde_json deserializer the same way
//! (`deserialize_any` all the way down, numbers range-checked, strings and escapes checked), so
//! a line is rejected exactly when, where and with the message `from_slice::<Value>` would
//! reject it, but keeps only the keys a mapped path can ask for, borrowing their strings.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value as far as a mapped field needs it: scalars whole, lists only by kind, objects
/// with only the keys some mapped path can reach (a repeated key keeps its last value, as
/// serde_json's map does).
#[derive(Debug, PartialEq)]
pub enum Light<'a> {
    Null,
    Bool(bool),
    Number(Number),
    Str(Cow<'a, str>),
    List,
    Object(Vec<(Cow<'a, str>, Light<'a>)>),
}

impl<'a> Light<'a> {
    /// The value under `key` of an object (only kept keys are there).
    pub fn get(&self, key: &str) -> Option<&Light<'a>> {
        match self {
            Light::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The keys kept at one level of objects, each with what is kept below it.
#[derive(Debug, Default)]
pub struct Wanted {
    keys: Vec<(String, Wanted)>,
}

impl Wanted {
    /// Every key a lookup of these split dotted paths can ask for: at each level the rest of
    /// the path joined (a flat key with dots) and the next part (to descend).
    pub fn for_paths<'p>(paths: impl IntoIterator<Item = &'p [String]>) -> Self {
        let mut root = Wanted::default();
        for parts in paths {
            let mut node = &mut root;
            for k in 0..parts.len() {
                node.child(&parts[k..].join("."));
                node = node.child(&parts[k]);
            }
        }
        root
    }

    fn child(&mut self, key: &str) -> &mut Wanted {
        let i = match self.keys.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.keys.push((key.to_owned(), Wanted::default()));
                self.keys.len() - 1
            }
        };
        &mut self.keys[i].1
    }

    fn get(&self, key: &str) -> Option<&Wanted> {
        self.keys.iter().find(|(k, _)| k == key).map(|(_, w)| w)
    }
}

/// Parses one line as `serde_json::from_slice` would, keeping what `wanted` asks for.
pub fn parse<'a>(line: &'a [u8], wanted: &Wanted) -> serde_json::Result<Light<'a>> {
    let mut de = serde_json::Deserializer::from_slice(line);
    let value = Keep(wanted).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a value, keeping the keys of `Wanted` in objects.
struct Keep<'w>(&'w Wanted);

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Light<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Light<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Light<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Light<'de>, E> {
        Ok(Light::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Light<'de>, E> {
        Ok(Light::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Light<'de>, E> {
        Ok(Light::Number(n.into()))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Light<'de>, E> {
        // What `Value` does with a float that is not a JSON number.
        Ok(Number::from_f64(x).map_or(Light::Null, Light::Number))
    }

    fn visit_str<E>(self, s: &str) -> Result<Light<'de>, E> {
        Ok(Light::Str(Cow::Owned(s.to_owned())))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Light<'de>, E> {
        Ok(Light::Str(Cow::Borrowed(s)))
    }

    fn visit_string<E>(self, s: String) -> Result<Light<'de>, E> {
        Ok(Light::Str(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Light<'de>, E> {
        Ok(Light::Null)
    }

    fn visit_none<E>(self) -> Result<Light<'de>, E> {
        Ok(Light::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Light<'de>, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Light<'de>, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Light::List)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Light<'de>, A::Error> {
        let mut kept: Vec<(Cow<'de, str>, Light<'de>)> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let Some(below) = self.0.get(&key) else {
                map.next_value::<Skip>()?;
                continue;
            };
            let value = map.next_value_seed(Keep(below))?;
            match kept.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => kept.push((key, value)),
            }
        }
        Ok(Light::Object(kept))
    }
}

/// An object's key, borrowed from the line unless it has escapes.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }
}

/// A value nobody maps: parsed and checked like any other (so its errors are the same), kept
/// nowhere.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Skip, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_none<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Skip, D::Error> {
        Skip::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(paths: &[&str]) -> Wanted {
        let split: Vec<Vec<String>> = paths
            .iter()
            .map(|p| p.split('.').map(str::to_owned).collect())
            .collect();
        Wanted::for_paths(split.iter().map(Vec::as_slice))
    }

    #[test]
    fn keeps_only_the_mapped_keys_and_their_last_value() {
        let line =
            br#"{"a": {"b": 1, "c": [1, {"x": 2}]}, "skip": {"deep": [null, "s"]}, "a.b": "flat", "n": 2, "n": 3.5}"#;
        let value = parse(line, &wanted(&["a.b", "n"])).unwrap();
        assert_eq!(value.get("a").and_then(|a| a.get("b")), Some(&Light::Number(1.into())));
        assert_eq!(value.get("a").and_then(|a| a.get("c")), None);
        assert_eq!(value.get("skip"), None);
        assert_eq!(value.get("a.b"), Some(&Light::Str(Cow::Borrowed("flat"))));
        assert_eq!(value.get("n"), Some(&Light::Number(Number::from_f64(3.5).unwrap())));
    }

    #[test]
    fn rejects_lines_exactly_as_a_full_parse_does() {
        // Errors in values nobody maps still reject the line, with serde_json's own message.
        for line in [
            &br#"{"a": 1, "skip": 1e400}"#[..],
            br#"{"a": 1, "skip": "\ud800"}"#,
            br#"{"a": 1, "skip": [1, 2}"#,
            br#"{"a": 1, 2: 3}"#,
            br#"{"a": 1} x"#,
            b"{\"a\": 1, \"skip\": \"\xff\"}",
            br#"{"a": "\q"}"#,
            b"",
        ] {
            let full = serde_json::from_slice::<serde_json::Value>(line).unwrap_err();
            let light = parse(line, &wanted(&["a"])).unwrap_err();
            assert_eq!(light.to_string(), full.to_string(), "{}", String::from_utf8_lossy(line));
        }
    }
}
