//! The tracker's storage: records in a slab, and keys to them sorted by
//! address.
//!
//! Made for how blocks touch memory: loops walk addresses upwards, so a new
//! key usually goes at the end of the sorted list (a push), and repeated
//! accesses to one place replace its record in place. Removing a record
//! frees its slot at once and leaves its key behind as a stale entry (its
//! generation no longer matches); a list is compacted when half of it is
//! stale. A range query is a binary search, then a walk over the keys that
//! start inside the range.

/// A record's key: the start of its span, its slot, and the slot's
/// generation when the record was stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Key {
    pub(crate) start: usize,
    slot: u32,
    generation: u32,
}

/// Keys sorted by address, with stale ones among them.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    keys: Vec<Key>,
    stale: usize,
}

impl Keys {
    pub(crate) fn insert(&mut self, key: Key) {
        if self.keys.last().is_none_or(|last| *last < key) {
            self.keys.push(key);
        } else {
            let at = self.keys.partition_point(|k| *k < key);
            self.keys.insert(at, key);
        }
    }

    /// Notes that one key went stale; compacts with `live` when half are.
    pub(crate) fn went_stale(&mut self, live: impl Fn(&Key) -> bool) {
        self.stale += 1;
        if self.stale * 2 > self.keys.len() {
            self.keys.retain(|k| live(k));
            self.stale = 0;
        }
    }

    /// Keys whose start lies in `lo..hi` (stale ones included).
    pub(crate) fn starting_in(&self, lo: usize, hi: usize) -> impl Iterator<Item = &Key> {
        let from = self.keys.partition_point(|k| k.start < lo);
        self.keys[from..].iter().take_while(move |k| k.start < hi)
    }

    /// Every key (stale ones included).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Key> {
        self.keys.iter()
    }
}

/// Values in numbered slots, reused after removal under a new generation.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab { slots: Vec::new(), free: Vec::new() }
    }
}

impl<T> Slab<T> {
    /// Stores `value`; returns its key for address `start`.
    pub(crate) fn insert(&mut self, start: usize, value: T) -> Key {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push((0, None));
                u32::try_from(self.slots.len() - 1).expect("fewer than 2³² live records")
            }
        };
        let entry = &mut self.slots[slot as usize];
        entry.0 = entry.0.wrapping_add(1);
        entry.1 = Some(value);
        Key { start, slot, generation: entry.0 }
    }

    /// Removes every value. Slots keep their generations, so a key kept
    /// from before (a plan made before a sweep) finds no later value.
    pub(crate) fn clear(&mut self) {
        self.free.clear();
        for (slot, (_, value)) in self.slots.iter_mut().enumerate().rev() {
            *value = None;
            self.free.push(slot as u32);
        }
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&T> {
        match self.slots.get(key.slot as usize) {
            Some((generation, Some(value))) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        match self.slots.get_mut(key.slot as usize) {
            Some((generation, Some(value))) if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<T> {
        let value = match self.slots.get_mut(key.slot as usize) {
            Some((generation, value)) if *generation == key.generation => value.take(),
            _ => None,
        }?;
        self.free.push(key.slot);
        Some(value)
    }

    /// Every live value (tests only: this walks free slots too).
    #[cfg(test)]
    pub(crate) fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(|(_, v)| v.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_sorted_and_stale_keys_are_told_apart() {
        let mut slab = Slab::default();
        let mut keys = Keys::default();
        let a = slab.insert(30, "a");
        let b = slab.insert(10, "b");
        let c = slab.insert(20, "c");
        for k in [a, b, c] {
            keys.insert(k);
        }
        let order: Vec<usize> = keys.iter().map(|k| k.start).collect();
        assert_eq!(order, [10, 20, 30]);
        assert_eq!(slab.remove(&b), Some("b"));
        let d = slab.insert(40, "d"); // reuses b's slot under a new generation
        keys.insert(d);
        assert_eq!(slab.get(&b), None, "the stale key no longer finds a value");
        assert_eq!(slab.get(&d), Some(&"d"));
        let found: Vec<&str> = keys.starting_in(0, 35).filter_map(|k| slab.get(k)).copied().collect();
        assert_eq!(found, ["c", "a"]);
        keys.went_stale(|k| slab.get(k).is_some()); // b
        for k in [a, c] {
            slab.remove(&k);
            keys.went_stale(|k| slab.get(k).is_some());
        }
        assert_eq!(keys.iter().count(), 1, "compacted once most keys were stale");
    }

    #[test]
    fn a_key_from_before_a_clear_finds_nothing_after_it() {
        let mut slab = Slab::default();
        let old = slab.insert(10, "old");
        slab.clear();
        assert_eq!(slab.get(&old), None);
        let new = slab.insert(10, "new");
        assert_eq!(new.slot, old.slot, "the slot is reused");
        assert_eq!(slab.get(&old), None, "under a new generation");
        assert_eq!(slab.remove(&old), None);
        assert_eq!(slab.get(&new), Some(&"new"));
    }
}
