//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chatstore::{demo, Options, Store};

pub(crate) fn open(dir: &tempfile::TempDir) -> Store {
    let mut o = Options::default();
    o.render.media_base = demo::SEED_MEDIA_BASE.into();
    Store::open(dir.path(), o).unwrap()
}

pub(crate) fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    (dir, store)
}

/// A sled store released as soon as its last handle drops (no linger), for
/// tests that open it with sled directly afterwards.
pub(crate) fn open_unshared(dir: &tempfile::TempDir) -> Store {
    let mut o = Options {
        linger_ms: 0,
        backend: chatstore::Backend::Sled,
        ..Options::default()
    };
    o.render.media_base = demo::SEED_MEDIA_BASE.into();
    Store::open(dir.path(), o).unwrap()
}

/// sled on a released store. sled's threads let go of the file lock a
/// moment after the last handle drops (sled issue 1234), so this retries.
pub(crate) fn raw_sled(dir: &tempfile::TempDir) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(dir.path()) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("{e}"),
        }
    }
}
