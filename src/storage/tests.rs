//! The storage facade on RocksDB: snapshots, merged scans, conflicts,
//! bounded counters, tenant scope, the group commit and its caches. The
//! contract every engine keeps is `conformance.rs`, run on each engine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::keys::Tenant;

fn open() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), Durability::Relaxed).unwrap();
    (dir, storage)
}

fn t(n: u128) -> Tenant {
    Tenant::from_raw(n)
}

fn key(tenant: Tenant, name: &str) -> Vec<u8> {
    tenant.counter(name)
}

fn put(storage: &Storage, tenant: Tenant, k: &str, v: &str) {
    let mut txn = storage.write(Scope::tenant(tenant));
    txn.put(key(tenant, k), v.as_bytes().to_vec()).unwrap();
    txn.commit().unwrap();
}

#[test]
fn snapshots_do_not_see_later_commits() {
    let (_d, s) = open();
    put(&s, t(1), "a", "1");
    let reader = s.read(Scope::tenant(t(1)));
    put(&s, t(1), "a", "2");
    assert_eq!(reader.get(&key(t(1), "a")).unwrap(), Some(b"1".to_vec()));
    assert_eq!(
        s.read(Scope::tenant(t(1))).get(&key(t(1), "a")).unwrap(),
        Some(b"2".to_vec())
    );
}

#[test]
fn scans_merge_own_writes_both_ways() {
    let (_d, s) = open();
    for k in ["b", "d", "f"] {
        put(&s, t(1), k, k);
    }
    let mut txn = s.write(Scope::tenant(t(1)));
    txn.put(key(t(1), "a"), b"a".to_vec()).unwrap();
    txn.put(key(t(1), "d"), b"D".to_vec()).unwrap();
    txn.delete(key(t(1), "f")).unwrap();
    txn.put(key(t(1), "g"), b"g".to_vec()).unwrap();
    let prefix = t(1).counters();
    let forward: Vec<Vec<u8>> = txn
        .scan_prefix(&prefix, false)
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(
        forward,
        vec![b"a".to_vec(), b"b".to_vec(), b"D".to_vec(), b"g".to_vec()]
    );
    let backward: Vec<Vec<u8>> = txn
        .scan_prefix(&prefix, true)
        .unwrap()
        .map(|r| r.unwrap().1)
        .collect();
    assert_eq!(
        backward,
        vec![b"g".to_vec(), b"D".to_vec(), b"b".to_vec(), b"a".to_vec()]
    );
}

#[test]
fn a_read_for_update_conflicts_with_a_later_commit() {
    let (_d, s) = open();
    put(&s, t(1), "x", "0");
    let mut first = s.write(Scope::tenant(t(1)));
    first.get_for_update(&key(t(1), "x")).unwrap();
    first.put(key(t(1), "x"), b"1".to_vec()).unwrap();
    put(&s, t(1), "x", "2");
    assert_eq!(first.commit().unwrap_err().code, ErrorCode::Conflict);
    // A plain read does not conflict.
    let mut second = s.write(Scope::tenant(t(1)));
    second.get(&key(t(1), "x")).unwrap();
    second.put(key(t(1), "y"), b"1".to_vec()).unwrap();
    put(&s, t(1), "x", "3");
    second.commit().unwrap();
}

#[test]
fn an_absent_key_read_for_update_conflicts_with_its_creation() {
    let (_d, s) = open();
    let mut a = s.write(Scope::tenant(t(1)));
    let mut b = s.write(Scope::tenant(t(1)));
    for txn in [&mut a, &mut b] {
        assert_eq!(txn.get_for_update(&key(t(1), "unique")).unwrap(), None);
        txn.put(key(t(1), "unique"), b"mine".to_vec()).unwrap();
    }
    a.commit().unwrap();
    assert_eq!(b.commit().unwrap_err().code, ErrorCode::Conflict);
}

#[test]
fn scope_keeps_tenants_apart() {
    let (_d, s) = open();
    put(&s, t(2), "secret", "b");
    let mut txn = s.write(Scope::tenant(t(1)));
    assert_eq!(
        txn.get(&key(t(2), "secret")).unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        txn.put(key(t(2), "x"), vec![]).unwrap_err().code,
        ErrorCode::Forbidden
    );
    assert_eq!(
        txn.put(key(Tenant::PLATFORM, "x"), vec![])
            .unwrap_err()
            .code,
        ErrorCode::Forbidden
    );
    assert!(
        txn.get(&key(Tenant::PLATFORM, "x")).is_ok(),
        "global things are readable"
    );
    // A range that starts in our tenant may not run into the next one.
    let lower = t(1).prefix();
    let upper = keys::prefix_end(&t(2).prefix());
    assert_eq!(
        txn.scan_range(&lower, &upper, false).err().map(|e| e.code),
        Some(ErrorCode::Forbidden)
    );
    let platform = s.read(Scope::platform(t(1)));
    assert_eq!(
        platform.get(&key(t(2), "secret")).unwrap(),
        Some(b"b".to_vec())
    );
}

/// Platform tables and meta keys are readable by every scope, and
/// writable by none without the capability: not by an org's transaction,
/// not by the platform owner's, and the meta keys (commit counter, format
/// version, index log) not even with it.
#[test]
fn platform_and_meta_keys_need_the_capability() {
    let (_d, s) = open();
    let org = crate::model::Id::generate(crate::model::Dim::Org);
    let platform_keys = [
        keys::org(org),
        keys::org_slug("acme"),
        keys::email("a@b.c"),
        keys::vocab(crate::ontology::TypeKind::Thing, "widget"),
    ];
    let meta_keys = [keys::commit_seq(), keys::format_version()];
    for scope in [Scope::tenant(t(1)), Scope::platform(t(1))] {
        let mut txn = s.write(scope);
        for key in platform_keys.iter().chain(&meta_keys) {
            assert!(txn.get(key).is_ok(), "readable: {key:?}");
            assert_eq!(
                txn.put(key.clone(), vec![1]).unwrap_err().code,
                ErrorCode::Forbidden
            );
            assert_eq!(
                txn.delete(key.clone()).unwrap_err().code,
                ErrorCode::Forbidden
            );
        }
        let tables = PlatformTables::grant();
        for key in &meta_keys {
            let refused = txn.put_platform(&tables, key.clone(), Some(vec![1]));
            assert_eq!(refused.unwrap_err().code, ErrorCode::Forbidden);
        }
        for key in &platform_keys {
            txn.put_platform(&tables, key.clone(), Some(vec![1]))
                .unwrap();
        }
    }
    let mut read = s.read(Scope::platform(t(1)));
    let refused = read.put_platform(&PlatformTables::grant(), keys::org(org), Some(vec![1]));
    assert_eq!(refused.unwrap_err().code, ErrorCode::InvalidArgument);
    // Index-log pruning deletes index-log entries and nothing else.
    let prune = |doomed: Vec<Vec<u8>>| {
        s.write(Scope::platform(Tenant::PLATFORM))
            .commit_index_log_pruning(doomed, vec![0; 16])
            .map_err(|e| e.code)
    };
    assert_eq!(prune(vec![keys::commit_seq()]), Err(ErrorCode::Forbidden));
    assert_eq!(prune(vec![key(t(1), "n")]), Err(ErrorCode::Forbidden));
    assert!(prune(vec![keys::index_log(1)]).is_ok());
}

#[test]
fn counters_never_pass_their_limit_under_concurrency() {
    let (_d, s) = open();
    let s = Arc::new(s);
    let accepted = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (s, accepted) = (s.clone(), accepted.clone());
            scope.spawn(move || {
                for i in 0..40 {
                    let mut txn = s.write(Scope::tenant(t(1)));
                    let id = format!("item{}", rand::random::<u64>());
                    txn.put(key(t(1), &id), vec![i]).unwrap();
                    match txn
                        .add_counter(key(t(1), "n"), 1, Some(100), "limit 100")
                        .and_then(|()| txn.commit().map(|_| ()))
                    {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => assert_eq!(e.code, ErrorCode::LimitReached),
                    }
                }
            });
        }
    });
    assert_eq!(accepted.load(Ordering::SeqCst), 100);
    assert_eq!(
        s.read(Scope::tenant(t(1)))
            .counter(&key(t(1), "n"))
            .unwrap(),
        100
    );
}

/// Group commit hands each committer its own verdict: every thread's odd
/// commits read a key for update that the thread then changes behind their
/// back, so the leader must refuse them (CONFLICT); its even commits must
/// pass and store their key — whatever group each landed in and whatever
/// the group's other committers were told. Synced writes make groups form;
/// fewer commit numbers than commits show that they did.
#[test]
fn each_committer_of_a_group_gets_its_own_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let s = Storage::open(dir.path(), Durability::Sync).unwrap();
    let before = s.last_commit().unwrap();
    std::thread::scope(|scope| {
        for thread in 0..16u128 {
            let s = &s;
            scope.spawn(move || {
                let tenant = t(100 + thread);
                for i in 0..40u8 {
                    let refused = i % 2 == 1;
                    let mut txn = s.write(Scope::tenant(tenant));
                    txn.put(key(tenant, &format!("item{i:02}")), vec![i])
                        .unwrap();
                    if refused {
                        txn.get_for_update(&key(tenant, "x")).unwrap();
                        put(s, tenant, "x", &i.to_string());
                    }
                    match txn.commit() {
                        Ok(_) => assert!(!refused, "thread {thread}: commit {i} passed"),
                        Err(e) => {
                            assert_eq!(e.code, ErrorCode::Conflict, "{e:?}");
                            assert!(refused, "thread {thread}: commit {i} refused");
                        }
                    }
                }
            });
        }
    });
    for thread in 0..16u128 {
        let tenant = t(100 + thread);
        let r = s.read(Scope::tenant(tenant));
        for i in 0..40u8 {
            let stored = r.get(&key(tenant, &format!("item{i:02}"))).unwrap();
            assert_eq!(stored.is_some(), i % 2 == 0, "thread {thread}, item {i}");
        }
    }
    // 16 × (20 accepted + 20 writes of "x") commits.
    let groups = s.last_commit().unwrap() - before;
    assert!(groups < 16 * 40, "{groups} commit numbers for 640 commits");
}

/// Which threads led the groups of 8 concurrent commits of a thing each,
/// the first group held up by its hook until the 7 others have queued
/// (10 s at most); and how many commits are stored.
fn leaders_of_a_backlog(s: &Storage) -> (Vec<String>, usize) {
    use crate::model::{Dim, Id};
    let leaders = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let record = leaders.clone();
    let queue = Arc::downgrade(s.commits());
    let hook: commit::CommitHook = Box::new(move |_, _| {
        let mut leaders = record.lock();
        let started = std::time::Instant::now();
        while leaders.is_empty()
            && queue.upgrade().is_some_and(|q| q.queued() < 7)
            && started.elapsed() < std::time::Duration::from_secs(10)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        leaders.push(std::thread::current().name().unwrap_or("").to_string());
    });
    s.commits().set_hook(hook, 0);
    let before = s.last_commit().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let mut txn = s.write(Scope::tenant(t(1)));
                txn.put(t(1).thing(Id::generate(Dim::Thing)), b"x".to_vec())
                    .unwrap();
                txn.commit().unwrap();
            });
        }
    });
    let stored = s
        .read(Scope::tenant(t(1)))
        .scan_prefix(&t(1).things(), false)
        .unwrap()
        .count();
    assert!(s.last_commit().unwrap() > before);
    let leaders = leaders.lock().clone();
    (leaders, stored)
}

/// Committers queued behind a group are written by the commit thread
/// (not handed the lead one by one, a wake-up between syncs each); the
/// thread lets go of the store once the queue is empty, so a dropped
/// store's directory opens again at once.
#[test]
fn a_backlog_is_written_by_the_commit_thread_which_lets_the_store_close() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let s = Storage::open(dir.path(), Durability::Relaxed).unwrap();
        let (leaders, _) = leaders_of_a_backlog(&s);
        assert!(leaders.len() >= 2, "{leaders:?}");
        assert_eq!(leaders[0], "", "the first committer leads itself");
        assert!(
            leaders[1..].iter().all(|l| l == "onedb-commit"),
            "{leaders:?}"
        );
        drop(s);
    }
}

/// Without the commit thread, the lead passes to the first committer
/// queued, and every commit is still written.
#[test]
fn without_the_commit_thread_queued_committers_lead_in_turn() {
    let (_d, s) = open();
    s.commits().without_thread();
    let (leaders, stored) = leaders_of_a_backlog(&s);
    assert!(leaders.len() >= 2, "{leaders:?}");
    assert!(leaders.iter().all(|l| l != "onedb-commit"), "{leaders:?}");
    assert_eq!(stored, 8);
}

#[test]
fn commits_are_counted_and_read_only_txns_refuse_writes() {
    let (_d, s) = open();
    assert_eq!(s.last_commit().unwrap(), 0);
    put(&s, t(1), "a", "1");
    put(&s, t(1), "b", "1");
    assert_eq!(s.last_commit().unwrap(), 2);
    let mut r = s.read(Scope::tenant(t(1)));
    assert!(r.put(key(t(1), "c"), vec![]).is_err());
}

#[test]
fn reopening_checks_the_format_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(Storage::open(dir.path(), Durability::Sync).unwrap());
    let s = Storage::open(dir.path(), Durability::Sync).unwrap();
    let entries: [(&[u8], Option<&[u8]>); 1] =
        [(&keys::format_version(), Some(&99u32.to_be_bytes()))];
    s.engine().write(entries.into_iter(), 0, true, &[]).unwrap();
    drop(s);
    let err = Storage::open(dir.path(), Durability::Sync).err().unwrap();
    assert!(err.message.contains("format version 99"), "{}", err.message);
}

#[test]
fn sync_durability_syncs_the_wal() {
    // A kill cannot tell synced from unsynced writes: assert the decision
    // the commit path passes to RocksDB's WriteOptions::set_sync.
    assert!(Durability::default().syncs_wal());
    assert!(Durability::Sync.syncs_wal());
    assert!(!Durability::Relaxed.syncs_wal());
}

#[test]
fn a_range_read_for_update_conflicts_with_a_phantom() {
    let (_d, s) = open();
    let prefix = t(1).counters();
    let mut scanner = s.write(Scope::tenant(t(1)));
    assert_eq!(
        scanner
            .scan_prefix_for_update(&prefix, false)
            .unwrap()
            .count(),
        0
    );
    scanner
        .put(key(t(1), "derived"), b"none seen".to_vec())
        .unwrap();
    // Another commit adds a key inside the scanned range.
    put(&s, t(1), "phantom", "1");
    assert_eq!(scanner.commit().unwrap_err().code, ErrorCode::Conflict);
    // A key outside the range does not conflict.
    let mut scanner = s.write(Scope::tenant(t(1)));
    scanner
        .scan_prefix_for_update(&t(1).counter("a"), false)
        .unwrap()
        .count();
    scanner.put(key(t(1), "derived"), b"ok".to_vec()).unwrap();
    put(&s, t(1), "b", "1");
    scanner.commit().unwrap();
}

/// The commit leader keeps counters' latest values in memory: they must stay
/// what is stored through plain writes of a counter key, rejected requests
/// and failed writes.
#[test]
fn the_leaders_counters_stay_exact() {
    let (_d, s) = open();
    let n = key(t(1), "n");
    let add = |delta: i64, limit: Option<i64>| {
        let mut txn = s.write(Scope::tenant(t(1)));
        txn.add_counter(n.clone(), delta, limit, "limit")?;
        txn.commit()
    };
    let stored = || s.read(Scope::tenant(t(1))).counter(&n).unwrap();
    add(1, None).unwrap();
    add(1, None).unwrap();
    assert_eq!(stored(), 2);
    // The key written as plain data by another commit.
    let mut txn = s.write(Scope::tenant(t(1)));
    txn.put(n.clone(), keys::encode_i64(10)).unwrap();
    txn.commit().unwrap();
    add(1, None).unwrap();
    assert_eq!(stored(), 11);
    // A request the leader rejects: its delta is not kept.
    let mut a = s.write(Scope::tenant(t(1)));
    let mut b = s.write(Scope::tenant(t(1)));
    a.add_counter(n.clone(), 1, Some(12), "limit 12").unwrap();
    b.add_counter(n.clone(), 1, Some(12), "limit 12").unwrap();
    a.commit().unwrap();
    assert_eq!(b.commit().unwrap_err().code, ErrorCode::LimitReached);
    assert_eq!(stored(), 12);
    add(-2, None).unwrap();
    assert_eq!(stored(), 10);
    // A failed write: neither the counter nor the commit counter moves.
    let commits = s.last_commit().unwrap();
    s.engine().fail_next_write(false);
    assert!(add(5, None).is_err());
    assert_eq!(stored(), 10);
    assert_eq!(s.last_commit().unwrap(), commits);
    add(1, Some(11)).unwrap();
    assert_eq!(stored(), 11);
    assert_eq!(s.last_commit().unwrap(), commits + 1);
    assert_eq!(add(1, Some(11)).unwrap_err().code, ErrorCode::LimitReached);
}

#[test]
fn concurrent_counter_changes_sum_exactly() {
    let (_d, s) = open();
    let s = Arc::new(s);
    let sum = Arc::new(std::sync::atomic::AtomicI64::new(0));
    std::thread::scope(|scope| {
        for thread in 0..8i64 {
            let (s, sum) = (s.clone(), sum.clone());
            scope.spawn(move || {
                for i in 0..50i64 {
                    let delta = (thread + i) % 6 - 2;
                    let mut txn = s.write(Scope::tenant(t(1)));
                    let result = txn
                        .add_counter(key(t(1), "n"), delta, Some(40), "limit 40")
                        .and_then(|()| txn.commit().map(|_| ()));
                    match result {
                        Ok(()) => {
                            sum.fetch_add(delta, Ordering::SeqCst);
                        }
                        Err(e) => assert!(
                            e.code == ErrorCode::LimitReached || e.message.contains("injected"),
                            "{e:?}"
                        ),
                    }
                    if i == 25 && thread == 0 {
                        s.engine().fail_next_write(false);
                    }
                }
            });
        }
    });
    let stored = s
        .read(Scope::tenant(t(1)))
        .counter(&key(t(1), "n"))
        .unwrap();
    assert_eq!(stored, sum.load(Ordering::SeqCst));
    assert!(stored <= 40);
}

#[test]
fn writes_nobody_can_conflict_with_are_not_remembered() {
    let (_d, s) = open();
    // One writer at a time: nothing to remember.
    put(&s, t(1), "x", "0");
    put(&s, t(1), "x", "1");
    assert_eq!(s.commits().remembered(), 0);
    // A transaction open across a commit still sees its conflict.
    let mut open_txn = s.write(Scope::tenant(t(1)));
    open_txn.get_for_update(&key(t(1), "x")).unwrap();
    open_txn.put(key(t(1), "y"), b"1".to_vec()).unwrap();
    put(&s, t(1), "x", "2");
    assert!(s.commits().remembered() > 0);
    assert_eq!(open_txn.commit().unwrap_err().code, ErrorCode::Conflict);
    // A transaction that began after that commit does not conflict.
    let mut later = s.write(Scope::tenant(t(1)));
    later.get_for_update(&key(t(1), "x")).unwrap();
    later.put(key(t(1), "x"), b"3".to_vec()).unwrap();
    later.commit().unwrap();
}

/// Shared decoded copies (`cache.rs`) must give every snapshot its own value.
#[test]
fn decoded_records_follow_commits_and_snapshots() {
    let (_d, s) = open();
    let id = crate::model::Id::from_raw(crate::model::Dim::Person, 7);
    let k = t(1).person(id);
    assert!(keys::is_cached_record(&k));
    let decode = |b: &[u8]| Ok(String::from_utf8_lossy(b).into_owned());
    let seen = |txn: &Txn<'_>| {
        txn.get_decoded(&k, decode)
            .unwrap()
            .map(|(v, len)| (v.as_ref().clone(), len))
    };
    let write = |v: &str| {
        let mut txn = s.write(Scope::tenant(t(1)));
        txn.put(k.clone(), v.as_bytes().to_vec()).unwrap();
        txn.commit().unwrap();
    };
    let before = s.read(Scope::tenant(t(1)));
    assert_eq!(seen(&before), None);
    write("one");
    assert_eq!(seen(&s.read(Scope::tenant(t(1)))), Some(("one".into(), 3)));
    assert_eq!(seen(&before), None, "an older snapshot keeps its value");
    let old = s.read(Scope::tenant(t(1)));
    assert_eq!(seen(&old), Some(("one".into(), 3)));
    write("three");
    assert_eq!(
        seen(&s.read(Scope::tenant(t(1)))),
        Some(("three".into(), 5))
    );
    assert_eq!(seen(&old), Some(("one".into(), 3)));
    // The transaction's own write comes first; a read for update conflicts.
    let mut a = s.write(Scope::tenant(t(1)));
    let mut b = s.write(Scope::tenant(t(1)));
    assert!(a.get_decoded_for_update(&k, decode).unwrap().is_some());
    a.put(key(t(1), "other"), vec![]).unwrap();
    b.put(k.clone(), b"mine".to_vec()).unwrap();
    assert_eq!(seen(&b), Some(("mine".into(), 4)));
    b.commit().unwrap();
    assert_eq!(a.commit().unwrap_err().code, ErrorCode::Conflict);
    // Deleted, and another tenant's key refused as ever.
    let mut txn = s.write(Scope::tenant(t(1)));
    txn.delete(k.clone()).unwrap();
    txn.commit().unwrap();
    assert_eq!(seen(&s.read(Scope::tenant(t(1)))), None);
    let other = s.read(Scope::tenant(t(2)));
    assert_eq!(
        other.get_decoded(&k, decode).err().map(|e| e.code),
        Some(ErrorCode::Forbidden)
    );
}

#[test]
fn the_hook_gets_the_values_each_commit_wrote() {
    use crate::model::{Dim, Id};
    let (_d, s) = open();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let record = seen.clone();
    let hook: commit::CommitHook = Box::new(move |_, committed: &Arc<Committed>| {
        let mut r = record.lock();
        for (i, c) in committed.changes().enumerate() {
            r.push((c.id, committed.value(i).map(<[u8]>::to_vec)));
        }
    });
    s.commits().set_hook(hook, 0);
    let (a, b) = (Id::generate(Dim::Thing), Id::generate(Dim::Thing));
    let mut txn = s.write(Scope::tenant(t(1)));
    txn.put(t(1).thing(a), b"first".to_vec()).unwrap();
    txn.put(t(1).thing(b), b"second".to_vec()).unwrap();
    txn.put(key(t(1), "not a record"), b"x".to_vec()).unwrap();
    txn.commit().unwrap();
    let mut txn = s.write(Scope::tenant(t(1)));
    txn.delete(t(1).thing(a)).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        *seen.lock(),
        vec![
            (a, Some(b"first".to_vec())),
            (b, Some(b"second".to_vec())),
            (a, None)
        ]
    );
}
