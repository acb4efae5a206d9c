//! A shard's index: where each key's latest line lies. Most of what a large cache costs in
//! memory, so held as a vector sorted by key (24 bytes an entry) and a small map of the
//! latest puts, merged into the vector once they pass an eighth of it. A map of every entry
//! held 25 bytes in each of up to twice as many buckets: at a million entries, just past a
//! doubling of every shard's map, 52 MB, and that was the calls' peak.

use std::collections::HashMap;

use super::{Short, Slot};

/// The recent puts a shard takes before the first merge.
const FIRST_MERGE: usize = 64;

#[derive(Debug, Default)]
pub(super) struct Index {
    /// Sorted by key, each key once and none of `recent`'s.
    sorted: Vec<(Short, Slot)>,
    recent: HashMap<Short, Slot>,
}

impl Index {
    fn position(&self, id: &Short) -> Result<usize, usize> {
        self.sorted.binary_search_by_key(id, |&(key, _)| key)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    /// Every entry, by key.
    #[cfg(test)]
    pub(super) fn entries(&self) -> Vec<(Short, Slot)> {
        let mut entries: Vec<(Short, Slot)> = self.iter().collect();
        entries.sort_unstable_by_key(|&(id, _)| id);
        entries
    }

    pub(super) fn get(&self, id: &Short) -> Option<Slot> {
        match self.recent.get(id) {
            Some(slot) => Some(*slot),
            None => self.position(id).ok().map(|at| self.sorted[at].1),
        }
    }

    pub(super) fn get_mut(&mut self, id: &Short) -> Option<&mut Slot> {
        if self.recent.contains_key(id) {
            return self.recent.get_mut(id);
        }
        let at = self.position(id).ok()?;
        Some(&mut self.sorted[at].1)
    }

    /// Puts `slot` for `id`; the slot it replaces, if any.
    pub(super) fn insert(&mut self, id: Short, slot: Slot) -> Option<Slot> {
        if let Ok(at) = self.position(&id) {
            return Some(std::mem::replace(&mut self.sorted[at].1, slot));
        }
        let old = self.recent.insert(id, slot);
        if self.recent.len() > FIRST_MERGE.max(self.sorted.len() / 8) {
            self.merge();
        }
        old
    }

    pub(super) fn remove(&mut self, id: &Short) -> Option<Slot> {
        if let Some(slot) = self.recent.remove(id) {
            return Some(slot);
        }
        let at = self.position(id).ok()?;
        Some(self.sorted.remove(at).1)
    }

    /// Every entry, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Short, Slot)> + '_ {
        self.sorted
            .iter()
            .copied()
            .chain(self.recent.iter().map(|(id, slot)| (*id, *slot)))
    }

    /// The recent puts merged into the sorted vector, made to its size.
    fn merge(&mut self) {
        self.sorted.reserve_exact(self.recent.len());
        self.sorted.extend(self.recent.drain());
        self.sorted.sort_unstable_by_key(|&(id, _)| id);
    }
}

/// An index of `entries` (the tests build one to check it against a map).
#[cfg(test)]
impl FromIterator<(Short, Slot)> for Index {
    fn from_iter<I: IntoIterator<Item = (Short, Slot)>>(entries: I) -> Index {
        let mut index = Index::default();
        for (id, slot) in entries {
            index.insert(id, slot);
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(n: u64) -> Slot {
        Slot {
            offset: n,
            len: u32::try_from(n % 1000).unwrap(),
            used: u32::try_from(n / 7).unwrap(),
        }
    }

    /// The index answers as a map of every entry does, through puts that replace, removals,
    /// and the merges in between.
    #[test]
    fn the_index_answers_as_a_map_of_every_entry_does() {
        let mut index = Index::default();
        let mut map: HashMap<Short, Slot> = HashMap::new();
        // Keys spread and repeated: each is put about twice, some removed.
        let mut rng = crate::stats::Rng::new(7);
        for n in 0..20_000u64 {
            let id = rng.next_u64() % 9_000;
            if n % 11 == 0 {
                assert_eq!(index.remove(&id), map.remove(&id), "remove {id}");
            } else {
                assert_eq!(index.insert(id, slot(n)), map.insert(id, slot(n)), "insert {id}");
            }
            if n % 97 == 0 {
                let probe = rng.next_u64() % 9_000;
                assert_eq!(index.get(&probe), map.get(&probe).copied(), "get {probe}");
                if let (Some(a), Some(b)) = (index.get_mut(&probe), map.get_mut(&probe)) {
                    a.used += 1;
                    b.used += 1;
                }
            }
        }
        assert_eq!(index.len(), map.len());
        assert!(
            index.recent.len() <= index.sorted.len() / 8 + FIRST_MERGE,
            "merged as it grew"
        );
        assert!(
            index.sorted.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, each key once"
        );
        let entries = index.entries();
        let mut expected: Vec<(Short, Slot)> = map.into_iter().collect();
        expected.sort_unstable_by_key(|&(id, _)| id);
        assert_eq!(entries, expected);
        let rebuilt: Index = entries.iter().copied().collect();
        assert_eq!(rebuilt.len(), entries.len());
        assert!(entries.iter().all(|(id, slot)| rebuilt.get(id) == Some(*slot)));
    }
}
