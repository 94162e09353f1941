//! An in-memory backend of the storage traits, for the unit tests beside
//! the write, read, check and import code: no directory, no files, the
//! same transaction semantics as LMDB (a read transaction is a snapshot, a
//! write transaction sees its own writes and becomes visible at once when
//! committed, writers take turns). Nothing is durable; it is never used
//! outside tests.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::{Backend, Bytes, Dir, Iter, Kv, ReadTxn, Space, WriteTxn};
use crate::error::{Error, Result};

type Spaces = [BTreeMap<Vec<u8>, Vec<u8>>; 3];

/// A store held in memory.
#[derive(Debug, Default)]
pub(crate) struct MemoryKv {
    /// The committed state; a read transaction keeps the one it began on.
    state: RwLock<Arc<Spaces>>,
    /// Held by the write transaction in progress.
    writer: Mutex<()>,
}

struct Snapshot(Arc<Spaces>);

struct Write<'a> {
    kv: &'a MemoryKv,
    spaces: Spaces,
    _turn: MutexGuard<'a, ()>,
}

fn range<'a>(
    spaces: &'a Spaces,
    space: Space,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    dir: Dir,
) -> Iter<'a> {
    let map = &spaces[space as usize];
    // An empty or inverted range is empty (BTreeMap::range would panic).
    let empty = match (&from, &to) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Excluded(b))
        | (Bound::Excluded(a), Bound::Included(b)) => a >= b,
        _ => false,
    };
    if empty {
        return Box::new(std::iter::empty());
    }
    let it = map
        .range::<[u8], _>((from, to))
        .map(|(k, v)| Ok((Bytes::borrowed(k), Bytes::borrowed(v))));
    match dir {
        Dir::Forward => Box::new(it),
        Dir::Backward => Box::new(it.rev()),
    }
}

impl ReadTxn for Snapshot {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        Ok(self.0[space as usize].get(key).map(|v| Bytes::borrowed(v)))
    }

    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        Ok(range(&self.0, space, from, to, dir))
    }
}

impl ReadTxn for Write<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        Ok(self.spaces[space as usize]
            .get(key)
            .map(|v| Bytes::borrowed(v)))
    }

    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        Ok(range(&self.spaces, space, from, to, dir))
    }
}

impl WriteTxn for Write<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        self.spaces[space as usize].insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()> {
        self.spaces[space as usize].remove(key);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let Write { kv, spaces, _turn } = *self;
        *kv.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(spaces);
        Ok(())
    }

    fn as_read(&self) -> &dyn ReadTxn {
        self
    }
}

impl Kv for MemoryKv {
    /// Reported as LMDB, whose semantics it has (snapshot reads, one
    /// writer at a time, every process opening the store itself).
    fn backend(&self) -> Backend {
        Backend::Lmdb
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let state = self.state.read().unwrap_or_else(|e| e.into_inner());
        Ok(Box::new(Snapshot(Arc::clone(&state))))
    }

    fn write(&self, _timeout_ms: u64) -> Result<Box<dyn WriteTxn + '_>> {
        let turn = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let spaces = (**self.state.read().unwrap_or_else(|e| e.into_inner())).clone();
        Ok(Box::new(Write {
            kv: self,
            spaces,
            _turn: turn,
        }))
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(0)
    }

    fn copy_to(&self, _dir: &Path) -> Result<()> {
        Err(Error::Conflict {
            reason: "an in-memory store has no files to copy".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_snapshots_and_writes_commit_at_once() {
        let kv = MemoryKv::default();
        let mut w = kv.write(0).unwrap();
        w.put(Space::Data, b"a", b"1").unwrap();
        w.put(Space::Data, b"b", b"2").unwrap();
        // The write sees itself; nobody else does yet.
        assert_eq!(w.get(Space::Data, b"a").unwrap().unwrap().as_ref(), b"1");
        assert!(kv.read().unwrap().get(Space::Data, b"a").unwrap().is_none());
        w.commit().unwrap();
        let before = kv.read().unwrap();
        let mut w = kv.write(0).unwrap();
        w.delete(Space::Data, b"a").unwrap();
        w.commit().unwrap();
        // The earlier snapshot still holds `a`; a new one does not.
        assert!(before.get(Space::Data, b"a").unwrap().is_some());
        assert!(kv.read().unwrap().get(Space::Data, b"a").unwrap().is_none());
        // A dropped write leaves nothing.
        let mut w = kv.write(0).unwrap();
        w.put(Space::Data, b"z", b"9").unwrap();
        drop(w);
        assert!(kv.read().unwrap().get(Space::Data, b"z").unwrap().is_none());
        let r = kv.read().unwrap();
        let keys: Vec<Vec<u8>> = r
            .range(
                Space::Data,
                Bound::Unbounded,
                Bound::Unbounded,
                Dir::Backward,
            )
            .unwrap()
            .map(|e| e.unwrap().0.to_vec())
            .collect();
        assert_eq!(keys, [b"b".to_vec()]);
        assert_eq!(
            r.range(
                Space::Data,
                Bound::Included(b"c"),
                Bound::Excluded(b"a"),
                Dir::Forward
            )
            .unwrap()
            .count(),
            0
        );
    }
}
