//! Bounded lists and maps whose items live on the heap of the parent process.
//!
//! Kubernetes-sized configs need room for hundreds of devices, thousands of environment
//! variables and hundreds of mounts. Held inline (`heapless`), that room made the parsed
//! [`crate::spec::Spec`] 50 KB at the old, 30× smaller capacities, and serde's derived
//! visitors keep several copies of every level on the stack: parsing alone took ~350 KiB
//! of stack, the largest part of `dory run`'s peak RSS. A [`List`] is three words inline and
//! grows with what the config holds, so memory follows the config's size, not its limit;
//! the limit `N` is still a hard, named bound: [`List::push`] refuses the item past it (as
//! `heapless::Vec::push` does) and deserializing more than `N` items is an error (the
//! scanner reports it first, naming the field and the limit).
//!
//! Items are borrowed (`&'a str` of the config bytes) as before: only the list of them is
//! allocated, while parsing or planning, in the parent. The child after clone only reads
//! them (no allocation there).

use core::fmt;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// At most `N` items of `T`, on the heap.
#[derive(Clone, PartialEq, Eq)]
pub struct List<T, const N: usize>(Vec<T>);

impl<T, const N: usize> List<T, N> {
    /// The bound: [`List::push`] refuses an item past it.
    pub const CAPACITY: usize = N;

    pub const fn new() -> Self {
        List(Vec::new())
    }

    /// Appends `item`, or gives it back when the list already holds `N` items.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.0.len() >= N {
            return Err(item);
        }
        self.0.push(item);
        Ok(())
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> Default for List<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> Deref for List<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T, const N: usize> DerefMut for List<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<'l, T, const N: usize> IntoIterator for &'l List<T, N> {
    type Item = &'l T;
    type IntoIter = core::slice::Iter<'l, T>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T: fmt::Debug, const N: usize> fmt::Debug for List<T, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

impl<'de, T: Deserialize<'de>, const N: usize> Deserialize<'de> for List<T, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<T, const N: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const N: usize> Visitor<'de> for Items<T, N> {
            type Value = List<T, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {N} items")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = List::new();
                while let Some(item) = seq.next_element::<T>()? {
                    if out.push(item).is_err() {
                        return Err(serde::de::Error::invalid_length(N + 1, &self));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_seq(Items::<T, N>(PhantomData))
    }
}

/// At most `N` entries with string keys (a JSON object), on the heap, in document order.
/// Keys are unique: the scanner refuses a duplicated key before serde runs.
#[derive(Clone, PartialEq, Eq)]
pub struct Map<'a, V, const N: usize>(Vec<(&'a str, V)>);

impl<'a, V, const N: usize> Map<'a, V, N> {
    pub const fn new() -> Self {
        Map(Vec::new())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in document order, as `heapless::LinearMap::iter` gives them.
    pub fn iter(&self) -> MapIter<'_, 'a, V> {
        MapIter(self.0.iter())
    }

    /// The value of `key` (compared as written, escapes included).
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Adds an entry, or gives it back when the map holds `N` entries already.
    pub fn insert(&mut self, key: &'a str, value: V) -> Result<(), (&'a str, V)> {
        if self.0.len() >= N {
            return Err((key, value));
        }
        self.0.push((key, value));
        Ok(())
    }
}

/// The entries of a [`Map`], as `(&key, &value)`.
pub struct MapIter<'m, 'a, V>(core::slice::Iter<'m, (&'a str, V)>);

impl<'m, 'a, V> Iterator for MapIter<'m, 'a, V> {
    type Item = (&'m &'a str, &'m V);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }
}

impl<'m, 'a, V, const N: usize> IntoIterator for &'m Map<'a, V, N> {
    type Item = (&'m &'a str, &'m V);
    type IntoIter = MapIter<'m, 'a, V>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<V, const N: usize> Default for Map<'_, V, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: fmt::Debug, const N: usize> fmt::Debug for Map<'_, V, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<'de: 'a, 'a, V: Deserialize<'de>, const N: usize> Deserialize<'de> for Map<'a, V, N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries<'a, V, const N: usize>(PhantomData<(&'a (), V)>);
        impl<'de: 'a, 'a, V: Deserialize<'de>, const N: usize> Visitor<'de> for Entries<'a, V, N> {
            type Value = Map<'a, V, N>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an object of at most {N} entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Map::new();
                while let Some((k, v)) = map.next_entry::<&'de str, V>()? {
                    if out.insert(k, v).is_err() {
                        return Err(serde::de::Error::invalid_length(N + 1, &self));
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_map(Entries::<'a, V, N>(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_refuses_the_item_past_its_bound() {
        let mut l: List<u8, 2> = List::new();
        assert_eq!(l.push(1), Ok(()));
        assert_eq!(l.push(2), Ok(()));
        assert_eq!(l.push(3), Err(3));
        assert_eq!(&l[..], [1, 2]);
        assert_eq!(List::<u8, 2>::CAPACITY, 2);
    }

    #[test]
    fn deserializing_past_the_bound_is_an_error() {
        let ok = serde_json_core::from_str::<List<u8, 3>>("[1,2,3]")
            .unwrap()
            .0;
        assert_eq!(&ok[..], [1, 2, 3]);
        assert!(serde_json_core::from_str::<List<u8, 3>>("[1,2,3,4]").is_err());
        let m = serde_json_core::from_str::<Map<'_, &str, 2>>(r#"{"a":"1","b":"2"}"#)
            .unwrap()
            .0;
        assert_eq!(m.get("b"), Some(&"2"));
        assert_eq!(m.iter().map(|(k, _)| *k).collect::<Vec<_>>(), ["a", "b"]);
        assert!(
            serde_json_core::from_str::<Map<'_, &str, 2>>(r#"{"a":"1","b":"2","c":"3"}"#).is_err()
        );
    }

    #[test]
    fn the_inline_part_does_not_grow_with_the_bound() {
        assert_eq!(
            core::mem::size_of::<List<&str, 4096>>(),
            core::mem::size_of::<Vec<&str>>()
        );
    }
}
