//! The storage boundary against a simple model (a `BTreeMap` per space),
//! on both backends: reads of a transaction's own writes, merged range
//! scans both ways, commit and abort.

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;

use super::*;

type Model = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>, Vec<u8>),
    Delete(u8, Vec<u8>),
    /// Compare a scan of `(from, to)` in the transaction with the model.
    Scan(u8, Vec<u8>, Vec<u8>, bool),
    Get(u8, Vec<u8>),
}

fn space(i: u8) -> Space {
    Space::ALL[i as usize % 3]
}

fn op() -> impl Strategy<Value = Op> {
    let key = proptest::collection::vec(0u8..4, 1..4);
    prop_oneof![
        (
            0u8..3,
            key.clone(),
            proptest::collection::vec(any::<u8>(), 0..3)
        )
            .prop_map(|(s, k, v)| Op::Put(s, k, v)),
        (0u8..3, key.clone()).prop_map(|(s, k)| Op::Delete(s, k)),
        (0u8..3, key.clone(), key.clone(), any::<bool>())
            .prop_map(|(s, a, b, r)| Op::Scan(s, a, b, r)),
        (0u8..3, key).prop_map(|(s, k)| Op::Get(s, k)),
    ]
}

/// A new LMDB store in a temporary directory, at most `map_size` bytes.
fn new_lmdb(map_size: u64) -> (tempfile::TempDir, Options, Box<dyn Kv>) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        backend: Backend::Lmdb,
        map_size,
        ..Options::default()
    };
    let kv = open(dir.path(), &options).unwrap();
    (dir, options, kv)
}

fn open_kv(backend: Backend, dir: &Path) -> Box<dyn Kv> {
    let options = Options {
        backend,
        map_size: 64 << 20,
        ..Options::default()
    };
    open(dir, &options).unwrap()
}

fn scan_model(m: &Model, s: u8, from: &[u8], to: &[u8], rev: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut v: Vec<_> = m
        .range((s, from.to_vec())..(s, to.to_vec()))
        .map(|((_, k), v)| (k.clone(), v.clone()))
        .collect();
    if rev {
        v.reverse();
    }
    v
}

fn scan_txn(t: &dyn ReadTxn, s: u8, from: &[u8], to: &[u8], rev: bool) -> Vec<(Vec<u8>, Vec<u8>)> {
    if from >= to {
        return Vec::new();
    }
    let dir = if rev { Dir::Backward } else { Dir::Forward };
    t.range(space(s), Bound::Included(from), Bound::Excluded(to), dir)
        .unwrap()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Runs transactions of ops; every other one is dropped without commit.
fn run(backend: Backend, txns: &[Vec<Op>]) {
    let dir = tempfile::tempdir().unwrap();
    let kv = open_kv(backend, dir.path());
    let mut committed = Model::new();
    for (n, ops) in txns.iter().enumerate() {
        let mut pending = committed.clone();
        let mut w = kv.write(1000).unwrap();
        for op in ops {
            match op {
                Op::Put(s, k, v) => {
                    w.put(space(*s), k, v).unwrap();
                    pending.insert((*s % 3, k.clone()), v.clone());
                }
                Op::Delete(s, k) => {
                    w.delete(space(*s), k).unwrap();
                    pending.remove(&(*s % 3, k.clone()));
                }
                Op::Scan(s, a, b, rev) => {
                    let want = if a < b {
                        scan_model(&pending, *s % 3, a, b, *rev)
                    } else {
                        Vec::new()
                    };
                    assert_eq!(scan_txn(w.as_read(), *s, a, b, *rev), want, "{backend}");
                }
                Op::Get(s, k) => {
                    let got = w.get(space(*s), k).unwrap().map(|b| b.to_vec());
                    assert_eq!(got, pending.get(&(*s % 3, k.clone())).cloned(), "{backend}");
                }
            }
        }
        if n % 2 == 0 {
            w.commit().unwrap();
            committed = pending;
        } else {
            drop(w);
        }
        let r = kv.read().unwrap();
        for s in 0..3u8 {
            let all = scan_txn(&*r, s, &[], &[9, 9, 9, 9, 9], false);
            assert_eq!(
                all,
                scan_model(&committed, s, &[], &[9, 9, 9, 9, 9], false),
                "{backend}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn both_backends_follow_the_model(
        txns in proptest::collection::vec(proptest::collection::vec(op(), 0..24), 1..6)
    ) {
        run(Backend::Lmdb, &txns);
        run(Backend::Sled, &txns);
    }
}

#[test]
fn an_lmdb_read_transaction_is_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open_kv(Backend::Lmdb, dir.path());
    let mut w = kv.write(1000).unwrap();
    w.put(Space::Data, b"a", b"1").unwrap();
    w.commit().unwrap();
    let r = kv.read().unwrap();
    let mut w = kv.write(1000).unwrap();
    w.put(Space::Data, b"b", b"2").unwrap();
    w.delete(Space::Data, b"a").unwrap();
    w.commit().unwrap();
    assert_eq!(
        r.get(Space::Data, b"a").unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert!(r.get(Space::Data, b"b").unwrap().is_none());
    let r2 = kv.read().unwrap();
    assert!(r2.get(Space::Data, b"a").unwrap().is_none());
}

#[test]
fn the_backend_of_a_store_is_found_from_its_files() {
    let dir = tempfile::tempdir().unwrap();
    for backend in [Backend::Lmdb, Backend::Sled] {
        let p = dir.path().join(backend.name());
        assert_eq!(Backend::of_existing(&p), None);
        drop(open_kv(backend, &p));
        assert_eq!(Backend::of_existing(&p), Some(backend));
        // Asking for the other backend opens what is there.
        let other = if backend == Backend::Lmdb {
            Backend::Sled
        } else {
            Backend::Lmdb
        };
        assert_eq!(open_kv(other, &p).backend(), backend);
    }
}

#[test]
fn new_lmdb_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("store");
    drop(open_kv(Backend::Lmdb, &p));
    let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&p), 0o700);
    for f in [lmdb::DATA_FILE, "lock.mdb", lmdb::WRITER_LOCK] {
        assert_eq!(mode(&p.join(f)), 0o600, "{f}");
    }
    let g = dir.path().join("shared");
    let options = Options {
        group_access: true,
        backend: Backend::Lmdb,
        map_size: 64 << 20,
        ..Options::default()
    };
    drop(open(&g, &options).unwrap());
    assert_eq!(mode(&g), 0o770);
    assert_eq!(mode(&g.join(lmdb::DATA_FILE)), 0o660);
}

/// sled's files too (issue 18, item 4: `db` was 0644 under umask 022).
#[test]
fn new_sled_files_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("store");
    drop(open_kv(Backend::Sled, &p));
    let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&p), 0o700);
    for f in ["conf", "db"] {
        assert_eq!(mode(&p.join(f)), 0o600, "{f}");
    }
    assert_eq!(mode(&p.join("blobs")), 0o700);
    // Reopened after writes, sled writes a snapshot: private too (it was
    // made with the umask, 0644 under 022).
    let kv = open_kv(Backend::Sled, &p);
    let mut w = kv.write(1000).unwrap();
    w.put(Space::Data, b"k", b"v").unwrap();
    w.commit().unwrap();
    kv.sync().unwrap();
    drop(kv);
    drop(open_kv(Backend::Sled, &p));
    let snaps: Vec<_> = std::fs::read_dir(&p)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|f| {
            f.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("snap.")
        })
        .collect();
    assert!(!snaps.is_empty(), "sled wrote no snapshot");
    for f in snaps {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn a_full_lmdb_map_is_an_error_naming_the_option_and_the_store_stays_usable() {
    let (_dir, _options, kv) = new_lmdb(1 << 20);
    let mut w = kv.write(1000).unwrap();
    w.put(Space::Data, b"small", b"x").unwrap();
    w.commit().unwrap();
    let big = vec![7u8; 4 << 20];
    let mut w = kv.write(1000).unwrap();
    let e = match w.put(Space::Data, b"big", &big) {
        Err(e) => {
            drop(w);
            e
        }
        Ok(()) => w.commit().unwrap_err(),
    };
    assert!(e.to_string().contains("map_size"), "{e}");
    let mut w = kv.write(1000).unwrap();
    w.put(Space::Data, b"next", b"y").unwrap();
    w.commit().unwrap();
    let r = kv.read().unwrap();
    assert!(r.get(Space::Data, b"small").unwrap().is_some());
    assert!(r.get(Space::Data, b"big").unwrap().is_none());
}

#[test]
fn an_lmdb_writer_waits_for_the_write_lock_with_a_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open_kv(Backend::Lmdb, dir.path());
    // Another holder of the write lock (a process would hold it this way).
    let other = std::fs::File::open(dir.path().join(lmdb::WRITER_LOCK)).unwrap();
    other.lock().unwrap();
    let e = match kv.write(50) {
        Err(e) => e,
        Ok(_) => panic!("took a held write lock"),
    };
    assert!(matches!(e, Error::Locked { .. }), "{e}");
    assert!(e.to_string().contains("50 ms"), "{e}");
    // Readers never wait.
    assert!(kv.read().unwrap().get(Space::Data, b"x").unwrap().is_none());
    other.unlock().unwrap();
    kv.write(50).unwrap().commit().unwrap();
}

#[test]
fn the_lmdb_map_grows_with_the_store_up_to_map_size() {
    let (dir, _options, kv) = new_lmdb(1 << 30);
    // 96 MiB in 24 transactions: past the 64 MiB the map starts with.
    let value = vec![5u8; 64 << 10];
    for t in 0..24u32 {
        let mut w = kv.write(1000).unwrap();
        for i in 0..64u32 {
            w.put(
                Space::Data,
                &[t.to_be_bytes(), i.to_be_bytes()].concat(),
                &value,
            )
            .unwrap();
        }
        w.commit().unwrap();
    }
    assert!(
        std::fs::metadata(dir.path().join(lmdb::DATA_FILE))
            .unwrap()
            .len()
            > 96 << 20
    );
    let r = kv.read().unwrap();
    assert_eq!(
        r.range(
            Space::Data,
            Bound::Unbounded,
            Bound::Unbounded,
            Dir::Forward
        )
        .unwrap()
        .count(),
        24 * 64
    );
}

/// `sync` and `size_on_disk` read LMDB's meta pages through the map, which
/// a writer of another thread remaps as it grows: they must wait for it
/// (without the resize lock this crashed the durable-append benchmark).
#[test]
fn syncing_while_the_lmdb_map_grows_is_safe() {
    let (_dir, _options, kv) = new_lmdb(1 << 30);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                kv.sync().unwrap();
                assert!(kv.size_on_disk().unwrap() > 0);
            }
        });
        // 160 MiB: the map grows from 64 MiB to 128, 256 and 512 MiB.
        let value = vec![7u8; 256 << 10];
        for t in 0..40u32 {
            let mut w = kv.write(1000).unwrap();
            for i in 0..16u32 {
                let key = [t.to_be_bytes(), i.to_be_bytes()].concat();
                w.put(Space::Data, &key, &value).unwrap();
            }
            w.commit().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
    });
    assert!(kv.size_on_disk().unwrap() > 160 << 20);
}

/// A copy (backup, compact) is rewritten in key order: its pages are full,
/// where random inserts leave them about half full.
#[test]
fn an_lmdb_copy_fills_its_pages() {
    let (dir, options, kv) = new_lmdb(Options::default().map_size);
    let n = 1u64 << 14;
    // Keys in a scrambled order (an odd multiplier permutes 0..2^14), 512
    // per transaction.
    let value = [3u8; 50];
    for chunk in 0..n / 512 {
        let mut w = kv.write(1000).unwrap();
        for i in chunk * 512..(chunk + 1) * 512 {
            let k = (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % n).to_be_bytes();
            w.put(Space::Data, &[k, k].concat(), &value).unwrap();
        }
        w.commit().unwrap();
    }
    let copy = dir.path().join("copy");
    crate::storage::create_dir(&copy, false).unwrap();
    kv.copy_to(&copy).unwrap();
    let original = kv.size_on_disk().unwrap();
    let copied = std::fs::metadata(copy.join(lmdb::DATA_FILE)).unwrap().len();
    // A node is 8 bytes of header, 16 of key, 50 of value, 2 of pointer.
    let full_pages = (n * 76).div_ceil(4096 - 16);
    assert!(
        copied <= (full_pages * 115 / 100 + 8) * 4096,
        "copy of {copied} bytes for {full_pages} full pages (the original takes {original})"
    );
    assert!(copied * 3 < original * 2, "{copied} vs {original}");
    let again = open(&copy, &options).unwrap();
    let r = again.read().unwrap();
    let rows = r
        .range(
            Space::Data,
            Bound::Unbounded,
            Bound::Unbounded,
            Dir::Forward,
        )
        .unwrap()
        .count();
    assert_eq!(rows as u64, n);
}
