//! Every error of the suite file's shape, not only serde's first: each section, and each entry
//! of a section that is a map or a list (a provider, a price, a gate, an experiment), is read
//! again on its own from the same text, the rest of the file passed over. An entry's own first
//! error is found where it is written; an error another entry would cause is not made up (the
//! text is not changed, only what is read of it).

use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::raw;

/// What of a section is read: the whole of it, or one entry of it (a key of a map, an index
/// of a list).
#[derive(Clone, Copy)]
enum Part<'a> {
    Whole,
    Key(&'a str),
    Index(usize),
}

/// The errors of the suite file `text`, one a section or an entry, each as serde reports it
/// when it reads that part alone (deduplicated by the caller against the whole file's first).
pub(super) fn suite_errors(text: &str) -> Vec<serde_saphyr::Error> {
    let Ok(Sections(sections)) = serde_saphyr::from_str::<Sections>(text) else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    for (section, shape) in &sections {
        let mut read = |part: Part<'_>| {
            let error = match section.as_str() {
                "version" => probe::<serde_saphyr::Spanned<u32>>(text, section, part),
                "providers" => probe::<raw::RawProvider>(text, section, part),
                "pricing" => probe::<serde_saphyr::Spanned<raw::RawPrice>>(text, section, part),
                "traffic" => probe::<Option<raw::RawTraffic>>(text, section, part),
                "budget" => probe::<Option<raw::RawBudget>>(text, section, part),
                "defaults" => probe::<Option<raw::RawDefaults>>(text, section, part),
                "experiments" => probe::<raw::RawExperiment>(text, section, part),
                "gates" => probe::<serde_saphyr::Spanned<raw::RawGate>>(text, section, part),
                "canary" => probe::<Option<super::canary::RawCanary>>(text, section, part),
                // An unknown section is the unknown-key search's (`problems::unknown_keys_after`).
                _ => None,
            };
            errors.extend(error);
        };
        match (section.as_str(), shape) {
            ("providers" | "pricing" | "gates", Shape::Map(keys)) => keys.iter().for_each(|k| read(Part::Key(k))),
            ("experiments", Shape::List(n)) => (0..*n).for_each(|i| read(Part::Index(i))),
            // A map or list section written as something else: the whole file's parse says so
            // (read here as one entry, it would say something else of the same place).
            ("providers" | "pricing" | "gates" | "experiments", _) => {}
            _ => read(Part::Whole),
        }
    }
    errors
}

/// The file's sections, in order, with their outlines.
struct Sections(Vec<(String, Shape)>);

impl<'de> Deserialize<'de> for Sections {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sections, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Sections;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a promptgate suite")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Sections, A::Error> {
                entries(map).map(Sections)
            }
        }
        deserializer.deserialize_map(Each)
    }
}

/// The outline of a section: its keys, its length, or neither.
enum Shape {
    Map(Vec<String>),
    List(usize),
    Empty,
    Other,
}

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Shape, D::Error> {
        struct Outline;
        impl<'de> Visitor<'de> for Outline {
            type Value = Shape;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Shape, A::Error> {
                let keys = entries::<A, IgnoredAny>(map)?;
                Ok(Shape::Map(keys.into_iter().map(|(key, _)| key).collect()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Shape::List(n))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Empty)
            }
            fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
                Ok(Shape::Empty)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_i128<E: de::Error>(self, _: i128) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_u128<E: de::Error>(self, _: u128) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Shape, E> {
                Ok(Shape::Other)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
                Shape::deserialize(deserializer)
            }
        }
        deserializer.deserialize_any(Outline)
    }
}

/// A map's keys and values, in order. A key is read as text, as the suite's maps read it (`1`
/// or `true` unquoted is the text `1` or `true`); a key that is no text is an error, as it is
/// to the whole file's parse.
fn entries<'de, A: MapAccess<'de>, V: Deserialize<'de>>(mut map: A) -> Result<Vec<(String, V)>, A::Error> {
    let mut entries = Vec::new();
    while let Some(key) = map.next_key::<String>()? {
        entries.push((key, map.next_value()?));
    }
    Ok(entries)
}

/// The first error of `part` of `section` read as a `T`, the rest of the file passed over.
fn probe<T: for<'de> Deserialize<'de>>(text: &str, section: &str, part: Part<'_>) -> Option<serde_saphyr::Error> {
    let whole = [Part::Key(section)];
    let entry = [Part::Key(section), part];
    let path: &[Part<'_>] = match part {
        Part::Whole => &whole,
        _ => &entry,
    };
    serde_saphyr::with_deserializer_from_str(text, |de| {
        Follow::<T> {
            path,
            target: PhantomData,
        }
        .deserialize(de)
    })
    .err()
}

/// A map or a list: the key or index `path` starts with followed (its end read as a `T`),
/// every other entry passed over.
struct Follow<'a, T> {
    path: &'a [Part<'a>],
    target: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Follow<'_, T> {
    /// The value at this step of the path: the target, or the next step.
    fn next(&self) -> Option<Follow<'_, T>> {
        (self.path.len() > 1).then(|| Follow {
            path: &self.path[1..],
            target: PhantomData,
        })
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Follow<'_, T> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Follow<'_, T> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a map or a list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match (self.path.first(), self.next()) {
                (Some(Part::Key(wanted)), None) if key == *wanted => {
                    map.next_value::<T>()?;
                }
                (Some(Part::Key(wanted)), Some(next)) if key == *wanted => {
                    map.next_value_seed(next)?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            let more = match (self.path.first(), self.next()) {
                (Some(Part::Index(wanted)), None) if i == *wanted => seq.next_element::<T>()?.is_some(),
                (Some(Part::Index(wanted)), Some(next)) if i == *wanted => seq.next_element_seed(next)?.is_some(),
                _ => seq.next_element::<IgnoredAny>()?.is_some(),
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
}
