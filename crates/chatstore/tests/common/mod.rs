//! Helpers shared by the integration tests.
#![allow(dead_code)]

use chatstore::{demo, Options, Store};

pub fn open(dir: &tempfile::TempDir) -> Store {
    let mut o = Options::default();
    o.render.media_base = demo::SEED_MEDIA_BASE.into();
    Store::open(dir.path(), o).unwrap()
}

pub fn seeded() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    (dir, store)
}
