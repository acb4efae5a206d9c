//! A call's scores, and the names many calls share.
//!
//! A large run holds every call's scores in memory (the analysis reads them), and every call
//! of an experiment carries the same few names: `pass`, one per assertion, `consistency`. A
//! `BTreeMap<String, Score>` gave each call a node of eleven slots and each name its own
//! allocation, about 500 bytes a call for two scores. [`Scores`] is a sorted list sized to
//! its entries whose names are [`Name`]s, shared through one process-wide table, so two scores
//! take 64 bytes; and the final scores of calls scored alike share one list ([`Scores::shared`]). It reads and writes exactly the JSON object the map did (keys in byte
//! order), so `results.json` files old and new read alike.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::Score;

/// A name repeated on many calls (a score's, a provider's, a judged metric's): equal names
/// share one allocation, so a million calls hold each name once and a pointer to it per call.
/// Compares, orders and hashes as its text; serialises as a JSON string.
///
/// One word: a pointer to the shared text (`Arc<str>` is two, and a call, a job and every
/// score of a list hold a name).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<Box<str>>);

/// At most this many names are shared, of at most [`MAX_SHARED_LEN`] bytes each: a suite has
/// a few dozen, and a crafted `results.json` with a million distinct keys must not grow the
/// table without end. A name beyond either limit is its own allocation, correct but unshared.
const MAX_SHARED: usize = 4096;
const MAX_SHARED_LEN: usize = 256;

/// The shared names. A global table rather than one per run: scoring runs on several threads
/// and `merge` reads several files, and all of them should meet the same names; the limits
/// above keep it small.
static SHARED: LazyLock<Mutex<HashSet<Name>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

impl Name {
    /// The shared name for `text` (one allocation the first time it is seen).
    pub fn new(text: &str) -> Name {
        if text.len() > MAX_SHARED_LEN {
            return Name(Arc::new(text.into()));
        }
        // The table is a cache: a panic while it was held cannot leave it inconsistent.
        let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(name) = shared.get(text) {
            return name.clone();
        }
        let name = Name(Arc::new(text.into()));
        if shared.len() < MAX_SHARED {
            shared.insert(name.clone());
        }
        name
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` are one allocation (the sharing the tests check).
    #[cfg(test)]
    pub(crate) fn shares(&self, other: &Name) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The empty name, for a `Judgement::default()`.
impl Default for Name {
    fn default() -> Name {
        Name::new("")
    }
}

impl std::ops::Deref for Name {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for Name {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(text: &str) -> Name {
        Name::new(text)
    }
}

impl From<&String> for Name {
    fn from(text: &String) -> Name {
        Name::new(text)
    }
}

impl From<String> for Name {
    fn from(text: String) -> Name {
        Name::new(&text)
    }
}

impl From<&Name> for Name {
    fn from(name: &Name) -> Name {
        name.clone()
    }
}

impl PartialEq<str> for Name {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Name {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for Name {
    fn eq(&self, other: &String) -> bool {
        **self.0 == **other
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Name, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Name;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            // Borrowed or not, the text is only looked up: a name already shared costs no
            // allocation, which is what reading 100,000 calls' scores relies on.
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Name, E> {
                Ok(Name::new(text))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

/// A call's scores by name: `pass`, one per assertion or scorer, `consistency`. Kept sorted
/// by name as the `BTreeMap` it replaces was, so it iterates and serialises in the same
/// order; it holds exactly its entries (scores are added once, a few per call), and once
/// [`Scores::shared`], one allocation for every call scored alike.
#[derive(Clone, Debug, Default)]
pub struct Scores(Entries);

/// A call's entries: its own, or one list many calls share (most calls of a suite of pass/fail
/// assertions score alike: at a hundred thousand calls their lists were 8 MB).
#[derive(Clone, Debug)]
enum Entries {
    Own(Box<[(Name, Score)]>),
    Shared(List),
}

impl Default for Entries {
    fn default() -> Entries {
        Entries::Own(Box::default())
    }
}

impl PartialEq for Scores {
    fn eq(&self, other: &Scores) -> bool {
        self.entries() == other.entries()
    }
}

/// The same names with the same scores, bit for bit (so `-0.0` is not `0.0`: each is written
/// as it was scored).
fn identical(a: &[(Name, Score)], b: &[(Name, Score)]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((n, x), (m, y))| {
            n == m
                && match (x, y) {
                    (Score::Bool(x), Score::Bool(y)) => x == y,
                    (Score::Number(x), Score::Number(y)) => x.to_bits() == y.to_bits(),
                    _ => false,
                }
        })
}

/// How many distinct lists [`Scores::shared`] remembers (a thread's most recent).
const SHARED_LISTS: usize = 64;

/// A list of scores several calls hold: one word (a pointer to the boxed list), so that
/// [`Entries`] is two words, a call's own list's.
type List = Arc<Box<[(Name, Score)]>>;

thread_local! {
    static LISTS: std::cell::RefCell<std::collections::VecDeque<List>> =
        const { std::cell::RefCell::new(std::collections::VecDeque::new()) };
}

impl Scores {
    pub fn new() -> Scores {
        Scores::default()
    }

    /// These scores, held in one allocation with every identical list among the
    /// [`SHARED_LISTS`] this thread met most recently: for a call whose scores are final. A
    /// list met for the first time stays the call's own (a call with a score of its own, a
    /// similarity say, costs nothing more); its copy in the table serves the calls after it.
    pub fn shared(self) -> Scores {
        if self.is_empty() || matches!(self.0, Entries::Shared(_)) {
            return self;
        }
        LISTS.with(|lists| {
            let mut lists = lists.borrow_mut();
            if let Some(at) = lists.iter().position(|l| identical(l, self.entries())) {
                // The most recently met last: the lists most calls share stay in the table.
                let list = lists.remove(at).unwrap_or_else(|| Arc::new(self.entries().into()));
                lists.push_back(Arc::clone(&list));
                return Scores(Entries::Shared(list));
            }
            if lists.len() >= SHARED_LISTS {
                lists.pop_front();
            }
            lists.push_back(Arc::new(self.entries().into()));
            self
        })
    }

    fn entries(&self) -> &[(Name, Score)] {
        match &self.0 {
            Entries::Own(entries) => entries,
            Entries::Shared(entries) => entries,
        }
    }

    /// The entries changed by `change`, held on their own again.
    fn change<T>(&mut self, change: impl FnOnce(&mut Vec<(Name, Score)>) -> T) -> T {
        let mut entries = match std::mem::take(&mut self.0) {
            Entries::Own(entries) => entries.into_vec(),
            Entries::Shared(entries) => entries.to_vec(),
        };
        let result = change(&mut entries);
        self.0 = Entries::Own(entries.into_boxed_slice());
        result
    }

    pub fn get(&self, name: &str) -> Option<&Score> {
        self.position(name).ok().map(|i| &self.entries()[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets `name`'s score, returning the one it replaced.
    pub fn insert(&mut self, name: impl Into<Name>, score: Score) -> Option<Score> {
        let name = name.into();
        match self.position(&name) {
            Ok(i) => self.change(|entries| Some(std::mem::replace(&mut entries[i].1, score))),
            Err(i) => self.change(|entries| {
                // Grown one entry at a time: held exactly (`into_boxed_slice`).
                entries.reserve_exact(1);
                entries.insert(i, (name, score));
                None
            }),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Score> {
        let i = self.position(name).ok()?;
        Some(self.change(|entries| entries.remove(i).1))
    }

    /// Name and score, in name order.
    pub fn iter(&self) -> Iter<'_> {
        self.entries().iter().map(entry)
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &str> + ExactSizeIterator {
        self.entries().iter().map(|(name, _)| name.as_str())
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Score> + ExactSizeIterator {
        self.entries().iter().map(|(_, score)| score)
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries().binary_search_by(|(n, _)| n.as_str().cmp(name))
    }
}

/// `scores["pass"]`, as on the map: panics when the call has no such score.
impl std::ops::Index<&str> for Scores {
    type Output = Score;

    #[track_caller]
    fn index(&self, name: &str) -> &Score {
        self.get(name).unwrap_or_else(|| panic!("no score named {name:?}"))
    }
}

/// [`Scores::iter`]'s iterator.
pub type Iter<'a> = std::iter::Map<std::slice::Iter<'a, (Name, Score)>, fn(&'a (Name, Score)) -> (&'a str, &'a Score)>;

fn entry((name, score): &(Name, Score)) -> (&str, &Score) {
    (name.as_str(), score)
}

impl<'a> IntoIterator for &'a Scores {
    type Item = (&'a str, &'a Score);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl<N: Into<Name>> FromIterator<(N, Score)> for Scores {
    fn from_iter<I: IntoIterator<Item = (N, Score)>>(entries: I) -> Scores {
        let mut scores = Scores::new();
        for (name, score) in entries {
            scores.insert(name, score);
        }
        scores
    }
}

impl<N: Into<Name>, const K: usize> From<[(N, Score); K]> for Scores {
    fn from(entries: [(N, Score); K]) -> Scores {
        entries.into_iter().collect()
    }
}

impl Serialize for Scores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (name, score) in self.entries() {
            map.serialize_entry(name.as_str(), score)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Scores {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scores, D::Error> {
        struct ScoresVisitor;
        impl<'de> Visitor<'de> for ScoresVisitor {
            type Value = Scores;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of scores by name")
            }

            // As the map did: in any order, a repeated key's last value wins.
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Scores, A::Error> {
                let mut scores = Scores::new();
                while let Some((name, score)) = access.next_entry::<Name, Score>()? {
                    scores.insert(name, score);
                }
                // A results file read back (`merge`, `report`) holds every call's scores too.
                Ok(scores.shared())
            }
        }
        deserializer.deserialize_map(ScoresVisitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The entries of a call with a similarity, its pass, a number from a scorer and `pass`,
    /// given out of order.
    fn entries() -> Vec<(&'static str, Score)> {
        vec![
            ("similarity_pass", Score::Bool(true)),
            ("pass", Score::Bool(false)),
            ("similarity", Score::Number(0.4375)),
            ("Zeta", Score::Number(-1.0)),
            ("consistency", Score::Number(1.0)),
            ("naïve", Score::Bool(true)),
        ]
    }

    #[test]
    fn iterates_in_the_byte_order_a_btreemap_does() {
        let scores: Scores = entries().into_iter().collect();
        let map: BTreeMap<String, Score> = entries().into_iter().map(|(n, s)| (n.to_owned(), s)).collect();
        let ours: Vec<(&str, Score)> = scores.iter().map(|(n, s)| (n, *s)).collect();
        let theirs: Vec<(&str, Score)> = map.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        assert_eq!(ours, theirs);
        assert_eq!(scores.keys().next(), Some("Zeta"));
        assert_eq!(scores.len(), 6);
    }

    #[test]
    fn serialises_byte_for_byte_as_the_btreemap_did() {
        let scores: Scores = entries().into_iter().collect();
        let map: BTreeMap<String, Score> = entries().into_iter().map(|(n, s)| (n.to_owned(), s)).collect();
        assert_eq!(
            serde_json::to_string(&scores).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(
            serde_json::to_string_pretty(&scores).unwrap(),
            serde_json::to_string_pretty(&map).unwrap()
        );
        assert_eq!(serde_json::to_string(&Scores::new()).unwrap(), "{}");
    }

    #[test]
    fn reads_what_the_btreemap_wrote_and_round_trips() {
        let map: BTreeMap<String, Score> = entries().into_iter().map(|(n, s)| (n.to_owned(), s)).collect();
        let written = serde_json::to_string(&map).unwrap();
        let read: Scores = serde_json::from_str(&written).unwrap();
        assert_eq!(read, entries().into_iter().collect::<Scores>());
        assert_eq!(serde_json::to_string(&read).unwrap(), written);
        // Keys out of order and a repeated key read as the map read them: sorted, last wins.
        let read: Scores = serde_json::from_str(r#"{"b": 1.5, "a": true, "b": 2.0}"#).unwrap();
        let map: BTreeMap<String, Score> = serde_json::from_str(r#"{"b": 1.5, "a": true, "b": 2.0}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(read.get("b"), Some(&Score::Number(2.0)));
        // What is not a map of scores is refused, as before.
        assert!(serde_json::from_str::<Scores>(r#"{"a": "yes"}"#).is_err());
        assert!(serde_json::from_str::<Scores>("[]").is_err());
    }

    #[test]
    fn insert_replaces_get_and_remove_find_by_name() {
        let mut scores = Scores::new();
        assert_eq!(scores.insert("pass", Score::Bool(true)), None);
        assert_eq!(
            scores.insert("pass".to_owned(), Score::Bool(false)),
            Some(Score::Bool(true))
        );
        assert_eq!(scores.insert("icontains", Score::Bool(true)), None);
        assert_eq!(scores.get("pass"), Some(&Score::Bool(false)));
        assert!(scores.contains_key("icontains") && !scores.contains_key("icontain"));
        assert_eq!(scores.len(), 2);
        assert_eq!(scores.remove("icontains"), Some(Score::Bool(true)));
        assert_eq!(scores.remove("icontains"), None);
        assert_eq!(scores.keys().collect::<Vec<_>>(), ["pass"]);
        assert_eq!(scores.values().collect::<Vec<_>>(), [&Score::Bool(false)]);
    }

    #[test]
    fn calls_scored_alike_share_one_list_and_a_change_unshares_it() {
        let scored = || Scores::from([("pass", Score::Bool(true)), ("icontains", Score::Bool(true))]);
        let shared = |s: &Scores| match &s.0 {
            Entries::Shared(list) => Some(Arc::as_ptr(list)),
            Entries::Own(_) => None,
        };
        // The first of a kind stays its own; the next share one list.
        let first = scored().shared();
        assert_eq!((shared(&first), first.clone()), (None, scored()));
        let (one, two) = (scored().shared(), scored().shared());
        assert!(shared(&one).is_some() && shared(&one) == shared(&two));
        assert_eq!(one, scored());
        // Read from a results file, alike too.
        let read: Scores = serde_json::from_str(r#"{"icontains": true, "pass": true}"#).unwrap();
        assert_eq!(shared(&read), shared(&one));
        // Scores that differ in a value are another list; so are 0 and -0.
        let other = || Scores::from([("pass", Score::Bool(false)), ("icontains", Score::Bool(true))]);
        let (_, other) = (other().shared(), other().shared());
        assert!(shared(&other).is_some() && shared(&other) != shared(&one));
        let zero = |x: f64| Scores::from([("n", Score::Number(x))]);
        let (_, positive, negative) = (zero(0.0).shared(), zero(0.0).shared(), zero(-0.0).shared());
        assert!(shared(&positive).is_some() && shared(&negative).is_none());
        assert_eq!(serde_json::to_string(&negative).unwrap(), r#"{"n":-0.0}"#);
        // A change to one call's shared scores is its own: the others keep theirs.
        let mut changed = two.clone();
        changed.insert("consistency", Score::Number(1.0));
        assert_eq!(shared(&changed), None);
        assert_eq!((changed.len(), two.len(), one.len()), (3, 2, 2));
        let mut removed = one.clone();
        assert_eq!(removed.remove("icontains"), Some(Score::Bool(true)));
        assert_eq!((removed.len(), one.len()), (1, 2));
        // The table is bounded, and keeps the lists met most recently: a list met again
        // between many others of a call's own stays shared.
        for i in 0..4 * SHARED_LISTS {
            Scores::from([("n", Score::Number(i as f64))]).shared();
            if i % 8 == 0 {
                assert_eq!(shared(&scored().shared()), shared(&one), "{i}");
            }
        }
        assert!(LISTS.with(|l| l.borrow().len()) <= SHARED_LISTS);
    }

    #[test]
    fn names_built_or_read_anywhere_share_one_allocation() {
        let mut built = Scores::new();
        built.insert("shared_name_of_this_test", Score::Bool(true));
        let many: Vec<Scores> = (0..3)
            .map(|_| serde_json::from_str(r#"{"shared_name_of_this_test": false}"#).unwrap())
            .collect();
        let first = &built.entries()[0].0;
        assert!(many.iter().all(|s| s.entries()[0].0.shares(first)));
        // Read from an owned reader (no borrowed text) they are shared too, as `read_results`
        // reads them.
        let from_reader: Scores = serde_json::from_reader(&br#"{"shared_name_of_this_test": 1}"#[..]).unwrap();
        assert!(from_reader.entries()[0].0.shares(first));
        let provider: Name = serde_json::from_str(r#""shared_name_of_this_test""#).unwrap();
        assert!(provider.shares(first) && provider == "shared_name_of_this_test");
    }

    #[test]
    fn a_name_beyond_the_length_limit_is_correct_but_unshared() {
        let long = "x".repeat(MAX_SHARED_LEN + 1);
        let (one, two) = (Name::new(&long), Name::new(&long));
        assert!(one == two && !one.shares(&two));
        assert_eq!(one.as_str(), long);
    }
}
