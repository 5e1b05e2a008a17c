//! The payload of an entries record, walked by hand on the paths where postcard's
//! allocating decoder costs most: replay needs only the index range, term and sizes, and
//! `restore` can share one buffer among the entries it returns.
//!
//! The layout is postcard's encoding of `Vec<Entry>` (which is what the writer produces
//! with `postcard::to_allocvec`): a varint count, then per entry a varint term, a varint
//! index, the kind as a varint (0 command, 1 configuration), a varint timestamp and the
//! data as a varint length followed by the bytes. Varints are LEB128.

use raft_core::{Bytes, Entry, EntryKind, Index, Term};

/// What replay needs of an entries record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Summary {
    pub first: Index,
    pub last: Index,
    pub term: Term,
    /// Sum of `Entry::size()`.
    pub bytes: u64,
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..70).step_by(7) {
        let b = *buf.get(*at).ok_or("entries record ends inside a number")?;
        *at += 1;
        if shift == 63 && b > 1 {
            return Err("number too large in entries record".into());
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("number too long in entries record".into())
}

/// One entry as the walk finds it: its header, and where its data lies in the record.
struct Walked {
    term: Term,
    index: Index,
    kind: EntryKind,
    timestamp: u64,
    data: std::ops::Range<usize>,
}

impl Walked {
    /// `Entry::size()` of the entry.
    fn size(&self) -> u64 {
        (self.data.len() + Entry::OVERHEAD) as u64
    }
}

/// Walks the record: calls `each` per entry.
fn walk(buf: &[u8], mut each: impl FnMut(Walked)) -> Result<(), String> {
    let mut at = 0;
    let count = varint(buf, &mut at)?;
    for _ in 0..count {
        let term = varint(buf, &mut at)?;
        let index = varint(buf, &mut at)?;
        let kind = match varint(buf, &mut at)? {
            0 => EntryKind::Command,
            1 => EntryKind::Config,
            k => return Err(format!("entry {index} has unknown kind {k}")),
        };
        let timestamp = varint(buf, &mut at)?;
        let len = usize::try_from(varint(buf, &mut at)?).map_err(|e| e.to_string())?;
        let end = at
            .checked_add(len)
            .filter(|&e| e <= buf.len())
            .ok_or("entry data runs past the record")?;
        each(Walked {
            term,
            index,
            kind,
            timestamp,
            data: at..end,
        });
        at = end;
    }
    if at != buf.len() {
        return Err("trailing bytes after the entries".into());
    }
    Ok(())
}

/// Index range, term and size of a record, checking that its entries are contiguous, of
/// one term, and that there is at least one.
pub(crate) fn summarize(buf: &[u8]) -> Result<Summary, String> {
    let mut s: Option<Summary> = None;
    let mut bad = None;
    walk(buf, |w| {
        let (term, index, size) = (w.term, w.index, w.size());
        match &mut s {
            None => {
                s = Some(Summary {
                    first: index,
                    last: index,
                    term,
                    bytes: size,
                })
            }
            Some(s) => {
                if index != s.last.wrapping_add(1) || term != s.term {
                    bad.get_or_insert(format!(
                        "entry {index} (term {term}) does not continue {} (term {})",
                        s.last, s.term
                    ));
                }
                s.last = index;
                s.bytes += size;
            }
        }
    })?;
    if let Some(b) = bad {
        return Err(b);
    }
    s.ok_or_else(|| "empty entries record".into())
}

/// `Entry::size()` of each entry, in order.
pub(crate) fn sizes(buf: &[u8]) -> Result<Vec<u64>, String> {
    let mut v = Vec::new();
    walk(buf, |w| v.push(w.size()))?;
    Ok(v)
}

/// The entries of `first..=last`, their data sharing `buf`.
pub(crate) fn decode_range(buf: &Bytes, first: Index, last: Index) -> Result<Vec<Entry>, String> {
    let mut v = Vec::new();
    walk(buf, |w| {
        if (first..=last).contains(&w.index) {
            v.push(Entry {
                term: w.term,
                index: w.index,
                kind: w.kind,
                timestamp: w.timestamp,
                data: buf.slice(w.data),
            });
        }
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<Entry>> {
        (
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(
                (
                    any::<bool>(),
                    any::<u64>(),
                    prop::collection::vec(any::<u8>(), 0..300),
                ),
                1..20,
            ),
        )
            .prop_map(|(term, first, datas)| {
                let first = first % (u64::MAX / 2);
                datas
                    .into_iter()
                    .enumerate()
                    .map(|(i, (config, timestamp, d))| Entry {
                        kind: if config {
                            EntryKind::Config
                        } else {
                            EntryKind::Command
                        },
                        timestamp,
                        ..Entry::new(term, first + i as u64, Bytes::from(d))
                    })
                    .collect()
            })
    }

    proptest! {
        #[test]
        fn agrees_with_postcard(es in entries()) {
            let buf = postcard::to_allocvec(&es).expect("encode");
            let s = summarize(&buf).expect("summary");
            prop_assert_eq!(s.first, es[0].index);
            prop_assert_eq!(s.last, es[es.len() - 1].index);
            prop_assert_eq!(s.term, es[0].term);
            prop_assert_eq!(s.bytes, es.iter().map(|e| e.size() as u64).sum::<u64>());
            prop_assert_eq!(
                sizes(&buf).expect("sizes"),
                es.iter().map(|e| e.size() as u64).collect::<Vec<_>>()
            );
            let all = decode_range(&Bytes::from(buf), s.first, s.last).expect("decode");
            prop_assert_eq!(all, es);
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = summarize(&buf);
            let _ = sizes(&buf);
            let _ = decode_range(&Bytes::from(buf), 0, u64::MAX);
        }
    }

    #[test]
    fn refuses_gaps_and_mixed_terms() {
        let mk = |term, index| Entry::new(term, index, Bytes::new());
        let gap = postcard::to_allocvec(&vec![mk(1, 1), mk(1, 3)]).expect("encode");
        assert!(summarize(&gap).is_err());
        let mixed = postcard::to_allocvec(&vec![mk(1, 1), mk(2, 2)]).expect("encode");
        assert!(summarize(&mixed).is_err());
        let empty = postcard::to_allocvec(&Vec::<Entry>::new()).expect("encode");
        assert!(summarize(&empty).is_err());
    }
}
