//! etcd's key-range convention: an empty `range_end` names one key, `[0]` every key from
//! `key` on, anything else the half-open interval `[key, range_end)`.

use std::collections::BTreeMap;
use std::ops::Bound;

/// A key interval in etcd's convention.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRange<'a> {
    key: &'a [u8],
    end: &'a [u8],
}

impl<'a> KeyRange<'a> {
    /// The interval named by an etcd `key`/`range_end` pair.
    pub(crate) fn new(key: &'a [u8], end: &'a [u8]) -> Self {
        KeyRange { key, end }
    }

    /// Whether `k` lies in the interval.
    pub(crate) fn contains(&self, k: &[u8]) -> bool {
        if self.end.is_empty() {
            k == self.key
        } else if self.end == [0] {
            k >= self.key
        } else {
            k >= self.key && k < self.end
        }
    }

    /// Whether the interval is the single key `key`.
    pub(crate) fn is_single(&self) -> bool {
        self.end.is_empty()
    }

    /// The entries of `map` whose keys lie in the interval, in key order.
    pub(crate) fn scan<'m, V>(
        &self,
        map: &'m BTreeMap<Vec<u8>, V>,
    ) -> Box<dyn Iterator<Item = (&'m Vec<u8>, &'m V)> + 'm> {
        if self.is_single() {
            return Box::new(map.get_key_value(self.key).into_iter());
        }
        let upper = if self.end == [0] {
            Bound::Unbounded
        } else if self.end <= self.key {
            // BTreeMap::range panics on an inverted interval; etcd answers nothing.
            return Box::new(std::iter::empty());
        } else {
            Bound::Excluded(self.end)
        };
        Box::new(map.range::<[u8], _>((Bound::Included(self.key), upper)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_prefix_all_and_inverted() {
        let mut m = BTreeMap::new();
        for k in [&b"a"[..], b"ab", b"b", b"c"] {
            m.insert(k.to_vec(), ());
        }
        let keys = |r: KeyRange| r.scan(&m).map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(keys(KeyRange::new(b"ab", b"")), vec![b"ab".to_vec()]);
        assert_eq!(
            keys(KeyRange::new(b"a", b"b")),
            vec![b"a".to_vec(), b"ab".to_vec()]
        );
        assert_eq!(keys(KeyRange::new(b"b", b"\0")).len(), 2);
        assert_eq!(keys(KeyRange::new(b"\0", b"\0")).len(), 4);
        assert!(keys(KeyRange::new(b"c", b"a")).is_empty());
        assert!(KeyRange::new(b"a", b"b").contains(b"ab"));
        assert!(!KeyRange::new(b"a", b"b").contains(b"b"));
    }
}
