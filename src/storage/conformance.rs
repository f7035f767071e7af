//! The storage engine conformance suite: the contract every engine keeps
//! (docs/ARCHITECTURE.md, "Storage engines"), each case run against every
//! engine — RocksDB, in memory with the group commit's conflict tracker,
//! in memory checking conflicts itself, etcd (a real cluster named by
//! `ONEDB_ETCD=HOST:PORT,…`; each case in a namespace of its own) and,
//! built with the feature `tikv`, TiKV (a cluster whose placement drivers
//! `ONEDB_TIKV_PD=HOST:PORT,…` names).
//!
//! A case returns what went wrong instead of panicking, so the suite can
//! also be run against `faulty`, an engine that checks no read set: the
//! conflict cases — and only they — must fail there, which shows the suite
//! can catch an engine that drops a check.
//!
//! Run: `cargo test --release --lib storage::conformance`; against TiKV:
//! `ONEDB_TIKV_PD=pd:2379 cargo test --release --features tikv --lib storage::conformance::tikv`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::engine::ConflictMode;
use super::engines::memory::Memory;
use super::*;
use crate::keys::Tenant;
use crate::model::{Dim, Id};

type Outcome = std::result::Result<(), String>;
type Case = fn(&Storage) -> Outcome;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Rocks,
    MemoryInProcess,
    MemoryInEngine,
    Etcd,
    #[cfg(feature = "tikv")]
    Tikv,
    /// In memory, in-engine mode, with the read-set check switched off.
    Faulty,
}

/// The etcd cluster the etcd cases run on: `ONEDB_ETCD`. Without it they
/// are skipped with a note, unless `ONEDB_REQUIRE_ETCD` is set (CI).
fn etcd_endpoints() -> Option<String> {
    match std::env::var("ONEDB_ETCD") {
        Ok(endpoints) if !endpoints.is_empty() => Some(endpoints),
        _ if std::env::var_os("ONEDB_REQUIRE_ETCD").is_some() => {
            panic!("ONEDB_REQUIRE_ETCD is set but ONEDB_ETCD names no cluster")
        }
        _ => {
            eprintln!("skipped: set ONEDB_ETCD=HOST:PORT,… to run the etcd cases");
            None
        }
    }
}

/// The TiKV cluster the TiKV cases run on: `ONEDB_TIKV_PD`, its placement
/// drivers. No TiKV can be installed on CI's machines, so without it the
/// cases are skipped with a note.
#[cfg(feature = "tikv")]
fn tikv_endpoints() -> Option<String> {
    match std::env::var("ONEDB_TIKV_PD") {
        Ok(endpoints) if !endpoints.is_empty() => Some(endpoints),
        _ => {
            eprintln!("skipped: set ONEDB_TIKV_PD=HOST:PORT,… to run the TiKV cases");
            None
        }
    }
}

/// A namespace no other case or run uses.
fn fresh_namespace() -> String {
    format!("conformance-{:016x}", rand::random::<u64>())
}

fn open(kind: Kind) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let memory = |mode, checks| AnyEngine::Memory(Memory::new(mode, checks));
    let engine = match kind {
        Kind::Rocks => AnyEngine::open(&Store::Rocks, dir.path(), None).unwrap(),
        Kind::MemoryInProcess => memory(ConflictMode::InProcess, true),
        Kind::MemoryInEngine => memory(ConflictMode::InEngine, true),
        Kind::Faulty => memory(ConflictMode::InEngine, false),
        Kind::Etcd => {
            let endpoints = etcd_endpoints().unwrap();
            let url = format!("etcd://{endpoints}/{}", fresh_namespace());
            AnyEngine::open(&Store::parse(&url).unwrap(), dir.path(), None).unwrap()
        }
        #[cfg(feature = "tikv")]
        Kind::Tikv => {
            let endpoints = tikv_endpoints().unwrap();
            let url = format!("tikv://{endpoints}/{}", fresh_namespace());
            AnyEngine::open(&Store::parse(&url).unwrap(), dir.path(), None).unwrap()
        }
    };
    let storage = Storage::with_engine(dir.path(), Durability::Relaxed, engine).unwrap();
    (dir, storage)
}

fn run(kind: Kind, case: Case) {
    if matches!(kind, Kind::Etcd) && etcd_endpoints().is_none() {
        return;
    }
    #[cfg(feature = "tikv")]
    if matches!(kind, Kind::Tikv) && tikv_endpoints().is_none() {
        return;
    }
    let (_dir, storage) = open(kind);
    if let Err(why) = case(&storage) {
        panic!("{kind:?}: {why}");
    }
}

/// Fails the case with a message unless `cond`.
macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// `?` for the store's errors inside a case.
fn ok<T>(r: Result<T>, what: &str) -> std::result::Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// Expects a commit to fail with `code`.
fn refused(r: Result<u64>, code: ErrorCode, what: &str) -> Outcome {
    match r {
        Err(e) if e.code == code => Ok(()),
        Err(e) => Err(format!("{what}: expected {code}, got {e}")),
        Ok(_) => Err(format!("{what}: expected {code}, but it committed")),
    }
}

fn t(n: u128) -> Tenant {
    Tenant::from_raw(n)
}

fn key(tenant: Tenant, name: &str) -> Vec<u8> {
    tenant.counter(name)
}

/// The prefix of every key `key(tenant, name…)` (a key's name ends in a
/// NUL, which the prefix leaves off).
fn prefix(tenant: Tenant, name: &str) -> Vec<u8> {
    let mut k = key(tenant, name);
    k.pop();
    k
}

fn put(s: &Storage, tenant: Tenant, k: &str, v: &str) -> Outcome {
    let mut txn = s.write(Scope::tenant(tenant));
    ok(txn.put(key(tenant, k), v.as_bytes().to_vec()), "put")?;
    ok(txn.commit(), "commit").map(|_| ())
}

fn delete(s: &Storage, tenant: Tenant, k: &str) -> Outcome {
    let mut txn = s.write(Scope::tenant(tenant));
    ok(txn.delete(key(tenant, k)), "delete")?;
    ok(txn.commit(), "commit").map(|_| ())
}

fn values(scan: Result<Scan<'_>>) -> std::result::Result<Vec<String>, String> {
    ok(scan, "scan")?
        .map(|e| {
            e.map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                .map_err(|e| format!("scan: {e}"))
        })
        .collect()
}

// ---- the cases ----

/// Keys come back in byte order, the lower bound included and the upper
/// excluded, never past the range — prefixes of one another included.
fn ordering_and_bounds(s: &Storage) -> Outcome {
    for name in ["b", "ab", "a", "ba", "c", "a\u{1}"] {
        put(s, t(1), name, name)?;
    }
    put(s, t(2), "a", "other tenant")?;
    let r = s.read(Scope::platform(t(1)));
    let all = values(r.scan_prefix(&t(1).counters(), false))?;
    ensure!(
        all == ["a", "a\u{1}", "ab", "b", "ba", "c"],
        "prefix scan order: {all:?}"
    );
    let some = values(r.scan_range(&key(t(1), "ab"), &key(t(1), "ba"), false))?;
    ensure!(some == ["ab", "b"], "[ab, ba): {some:?}");
    let none = values(r.scan_range(&key(t(1), "b"), &key(t(1), "b"), false))?;
    ensure!(none.is_empty(), "[b, b): {none:?}");
    let got = ok(r.get(&key(t(1), "ab")), "get")?;
    ensure!(got == Some(b"ab".to_vec()), "get ab: {got:?}");
    let missing = ok(r.get(&key(t(1), "zz")), "get")?;
    ensure!(missing.is_none(), "absent key: {missing:?}");
    let many = ok(
        r.get_many(&[key(t(1), "c"), key(t(1), "zz"), key(t(2), "a")]),
        "get_many",
    )?;
    ensure!(
        many == [Some(b"c".to_vec()), None, Some(b"other tenant".to_vec())],
        "get_many: {many:?}"
    );
    Ok(())
}

/// A snapshot sees neither later changes, inserts nor deletions — in point
/// reads and in scans — and a later one sees them all.
fn snapshot_isolation(s: &Storage) -> Outcome {
    put(s, t(1), "a", "1")?;
    put(s, t(1), "b", "1")?;
    let old = s.read(Scope::tenant(t(1)));
    put(s, t(1), "a", "2")?;
    delete(s, t(1), "b")?;
    put(s, t(1), "c", "2")?;
    let seen = values(old.scan_prefix(&t(1).counters(), false))?;
    ensure!(seen == ["1", "1"], "old snapshot scans {seen:?}");
    let a = ok(old.get(&key(t(1), "a")), "get")?;
    ensure!(a == Some(b"1".to_vec()), "old snapshot reads a = {a:?}");
    let many = ok(
        old.get_many(&[key(t(1), "c"), key(t(1), "b"), key(t(1), "a")]),
        "get_many",
    )?;
    ensure!(
        many == [None, Some(b"1".to_vec()), Some(b"1".to_vec())],
        "old snapshot reads c, b, a together as {many:?}"
    );
    let new = s.read(Scope::tenant(t(1)));
    let seen = values(new.scan_prefix(&t(1).counters(), false))?;
    ensure!(seen == ["2", "2"], "new snapshot scans {seen:?}");
    Ok(())
}

/// A record of the kind kept decoded (`keys::is_cached_record`: here a
/// tenant's trigger set) reads as of the snapshot however often it is
/// read, while a commit changes it in between; a remote store is asked
/// once per transaction, and a new transaction sees the change.
fn cached_records_read_at_the_snapshot(s: &Storage) -> Outcome {
    let key = t(1).triggers();
    let decode = |b: &[u8]| Ok(String::from_utf8_lossy(b).into_owned());
    let set = |v: &str| {
        let mut txn = s.write(Scope::tenant(t(1)));
        ok(txn.put(key.clone(), v.as_bytes().to_vec()), "put")?;
        ok(txn.commit(), "commit").map(|_| ())
    };
    set("old")?;
    let txn = s.write(Scope::tenant(t(1)));
    // Requests the reads themselves send (not the commit between them).
    let mut requests = 0;
    for round in 0..3 {
        let before = s.engine().remote_requests();
        let got = ok(txn.get_decoded(&key, decode), "get_decoded")?.map(|(v, _)| (*v).clone());
        if let (Some(before), Some(after)) = (before, s.engine().remote_requests()) {
            requests += after - before;
        }
        ensure!(
            got.as_deref() == Some("old"),
            "read {round} in one transaction gave {got:?}"
        );
        if round == 0 {
            set("new")?;
        }
    }
    ensure!(
        s.engine().remote_requests().is_none() || requests == 1,
        "{requests} store requests for one record in one transaction"
    );
    let fresh = s.read(Scope::tenant(t(1)));
    let got = ok(fresh.get_decoded(&key, decode), "get_decoded")?.map(|(v, _)| (*v).clone());
    ensure!(
        got.as_deref() == Some("new"),
        "a new transaction read {got:?}"
    );
    Ok(())
}

/// A write transaction that may guess (`Storage::write_guessing`) reads a
/// record of the kept kind from a copy an earlier transaction read: on a
/// remote store without asking it, not even for a snapshot. When another server changed the record
/// since, the guess is caught: `guessed_wrong` says so, the commit fails
/// with `CONFLICT`, and the next transaction reads the new value.
fn guessed_copies_are_checked_at_commit(s: &Storage) -> Outcome {
    let record = t(1).triggers();
    let decode = |b: &[u8]| Ok(String::from_utf8_lossy(b).into_owned());
    let read = |txn: &Txn<'_>| -> std::result::Result<Option<String>, String> {
        Ok(ok(txn.get_decoded(&record, decode), "get_decoded")?.map(|(v, _)| (*v).clone()))
    };
    let mut first = s.write(Scope::tenant(t(1)));
    ok(first.put(record.clone(), b"v1".to_vec()), "put")?;
    ok(first.commit(), "commit")?;
    let warm = s.write_guessing(Scope::tenant(t(1)));
    ensure!(read(&warm)?.as_deref() == Some("v1"), "the first read");
    drop(warm);
    // Not even a snapshot: nothing has been read from the store.
    let before = s.engine().remote_requests();
    let mut guess = s.write_guessing(Scope::tenant(t(1)));
    let got = read(&guess)?;
    if let (Some(before), Some(after)) = (before, s.engine().remote_requests()) {
        ensure!(
            after == before,
            "{} requests to begin and read a kept copy",
            after - before
        );
    }
    ensure!(got.as_deref() == Some("v1"), "a kept copy read {got:?}");
    ensure!(!guess.guessed_wrong(), "a copy still true is a right guess");
    ok(guess.put(key(t(1), "a"), b"1".to_vec()), "put")?;
    ok(guess.commit(), "a commit on a right guess")?;
    // Another server changes the record: nothing in this process hears.
    if s.engine().shared() {
        let v2: &[u8] = b"v2";
        ok(
            s.engine()
                .write(std::iter::once((record.as_slice(), Some(v2))), 2, true, &[]),
            "a write behind the process's back",
        )?;
    } else {
        let mut other = s.write(Scope::tenant(t(1)));
        ok(other.put(record.clone(), b"v2".to_vec()), "put")?;
        ok(other.commit(), "commit")?;
    }
    let mut stale = s.write_guessing(Scope::tenant(t(1)));
    let got = read(&stale)?;
    if got.as_deref() == Some("v1") {
        ensure!(stale.guessed_wrong(), "a changed copy is a wrong guess");
        ok(stale.put(key(t(1), "a"), b"2".to_vec()), "put")?;
        refused(
            stale.commit(),
            ErrorCode::Conflict,
            "a commit on a wrong guess",
        )?;
    } else {
        ensure!(got.as_deref() == Some("v2"), "read {got:?}");
        drop(stale);
    }
    let fresh = s.write_guessing(Scope::tenant(t(1)));
    let got = read(&fresh)?;
    ensure!(
        got.as_deref() == Some("v2"),
        "after a wrong guess read {got:?}"
    );
    ensure!(!fresh.guessed_wrong(), "a fresh read is no guess");
    Ok(())
}

/// `read_latest` gives the newest committed values, in one request on a
/// remote store, and only of keys in its scope.
fn latest_values_in_one_request(s: &Storage) -> Outcome {
    put(s, t(1), "a", "1")?;
    put(s, t(1), "a", "2")?;
    put(s, t(1), "b", "3")?;
    let wanted = [key(t(1), "a"), key(t(1), "b"), key(t(1), "none")];
    let before = s.engine().remote_requests();
    let (_, got) = ok(s.read_latest(Scope::tenant(t(1)), &wanted), "read_latest")?;
    let after = s.engine().remote_requests();
    ensure!(
        got == [Some(b"2".to_vec()), Some(b"3".to_vec()), None],
        "read_latest gave {got:?}"
    );
    if let (Some(before), Some(after)) = (before, after) {
        ensure!(
            after - before == 1,
            "read_latest took {} requests",
            after - before
        );
    }
    let outside = s.read_latest(Scope::tenant(t(2)), &wanted);
    ensure!(
        outside
            .as_ref()
            .is_err_and(|e| e.code == ErrorCode::Forbidden),
        "another tenant's scope read {outside:?}"
    );
    Ok(())
}

/// Two transactions read a key for update and both write it: the second
/// to commit is refused, and its write is not stored.
fn write_write_conflict(s: &Storage) -> Outcome {
    put(s, t(1), "x", "0")?;
    let mut a = s.write(Scope::tenant(t(1)));
    let mut b = s.write(Scope::tenant(t(1)));
    for (txn, v) in [(&mut a, "a"), (&mut b, "b")] {
        ok(txn.get_for_update(&key(t(1), "x")), "read")?;
        ok(txn.put(key(t(1), "x"), v.as_bytes().to_vec()), "put")?;
    }
    ok(a.commit(), "first commit")?;
    refused(b.commit(), ErrorCode::Conflict, "second commit")?;
    let x = ok(s.read(Scope::tenant(t(1))).get(&key(t(1), "x")), "get")?;
    ensure!(x == Some(b"a".to_vec()), "x = {x:?}");
    Ok(())
}

/// A key read for update and changed by another commit before ours
/// refuses ours, even though we wrote elsewhere; a plain read does not.
fn read_write_conflict(s: &Storage) -> Outcome {
    put(s, t(1), "x", "0")?;
    let mut txn = s.write(Scope::tenant(t(1)));
    ok(txn.get_for_update(&key(t(1), "x")), "read")?;
    ok(txn.put(key(t(1), "y"), b"1".to_vec()), "put")?;
    put(s, t(1), "x", "1")?;
    refused(txn.commit(), ErrorCode::Conflict, "commit after x changed")?;
    let mut plain = s.write(Scope::tenant(t(1)));
    ok(plain.get(&key(t(1), "x")), "read")?;
    ok(plain.put(key(t(1), "z"), b"1".to_vec()), "put")?;
    put(s, t(1), "x", "2")?;
    ok(plain.commit(), "a plain read does not conflict")?;
    Ok(())
}

/// Two transactions find a key absent (read for update) and create it:
/// the second is refused.
fn absent_key_conflict(s: &Storage) -> Outcome {
    let mut a = s.write(Scope::tenant(t(1)));
    let mut b = s.write(Scope::tenant(t(1)));
    for txn in [&mut a, &mut b] {
        let found = ok(txn.get_for_update(&key(t(1), "unique")), "read")?;
        ensure!(found.is_none(), "found {found:?}");
        ok(txn.put(key(t(1), "unique"), b"mine".to_vec()), "put")?;
    }
    ok(a.commit(), "first")?;
    refused(b.commit(), ErrorCode::Conflict, "second creation")
}

/// A range scanned for update that another commit inserts into refuses
/// the scanner's commit; an insert outside the range does not.
fn phantom_insert(s: &Storage) -> Outcome {
    let range = prefix(t(1), "edge/");
    let mut txn = s.write(Scope::tenant(t(1)));
    let found = values(txn.scan_prefix_for_update(&range, false))?;
    ensure!(found.is_empty(), "found {found:?}");
    ok(txn.put(key(t(1), "node"), b"deleted".to_vec()), "put")?;
    put(s, t(1), "edgf", "outside")?;
    put(s, t(1), "edge/1", "inside")?;
    refused(
        txn.commit(),
        ErrorCode::Conflict,
        "commit after a phantom insert",
    )?;
    let mut txn = s.write(Scope::tenant(t(1)));
    values(txn.scan_prefix_for_update(&range, false))?;
    ok(txn.put(key(t(1), "node"), b"x".to_vec()), "put")?;
    put(s, t(1), "edgf", "outside again")?;
    ok(txn.commit(), "an insert outside the range")?;
    Ok(())
}

/// A deletion inside a range scanned for update refuses the scanner's
/// commit (its count of the range is stale).
fn phantom_delete(s: &Storage) -> Outcome {
    put(s, t(1), "edge/1", "a")?;
    put(s, t(1), "edge/2", "b")?;
    let mut txn = s.write(Scope::tenant(t(1)));
    let found = values(txn.scan_prefix_for_update(&prefix(t(1), "edge/"), false))?;
    ensure!(found.len() == 2, "found {found:?}");
    ok(txn.put(key(t(1), "count"), b"2".to_vec()), "put")?;
    delete(s, t(1), "edge/1")?;
    refused(
        txn.commit(),
        ErrorCode::Conflict,
        "commit after a phantom delete",
    )
}

/// Racing threads never pass a counter's limit: exactly the limit's worth
/// of increments commit, and the stored value is exact.
fn counter_limits_under_races(s: &Storage) -> Outcome {
    const LIMIT: i64 = 60;
    let accepted = AtomicUsize::new(0);
    let wrong = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for thread in 0..8u8 {
            let (accepted, wrong) = (&accepted, &wrong);
            scope.spawn(move || {
                for i in 0..20u8 {
                    let mut txn = s.write(Scope::tenant(t(1)));
                    let item = format!("item{thread}-{i}");
                    let result = txn
                        .put(key(t(1), &item), vec![i])
                        .and_then(|()| txn.add_counter(key(t(1), "n"), 1, Some(LIMIT), "full"))
                        .and_then(|()| txn.commit().map(|_| ()));
                    match result {
                        Ok(()) => {
                            accepted.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) if e.code == ErrorCode::LimitReached => {}
                        Err(e) => wrong.lock().push(e.to_string()),
                    }
                }
            });
        }
    });
    let wrong = wrong.into_inner();
    ensure!(wrong.is_empty(), "unexpected errors: {wrong:?}");
    let n = accepted.into_inner();
    ensure!(
        n == LIMIT as usize,
        "{n} increments committed under a limit of {LIMIT}"
    );
    let stored = ok(
        s.read(Scope::tenant(t(1))).counter(&key(t(1), "n")),
        "counter",
    )?;
    ensure!(stored == LIMIT, "stored {stored}");
    Ok(())
}

/// Commits that write searchable records are numbered without gaps (a
/// group of transactions written together is one commit), in the order
/// the hook hears of them, each with its index-log entry.
fn commit_log_order(s: &Storage) -> Outcome {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    s.commits().set_hook(
        Box::new(move |commit, _| log.lock().push(commit)),
        s.latest_sequence(),
    );
    let start = ok(s.last_commit(), "last commit")?;
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..10 {
                    let mut txn = s.write(Scope::tenant(t(1)));
                    let id = Id::generate(Dim::Thing);
                    let _ = txn.put(t(1).thing(id), b"{}".to_vec());
                    let _ = txn.commit();
                }
            });
        }
    });
    let heard = heard.lock().clone();
    let last = ok(s.last_commit(), "last commit")?;
    let want: Vec<u64> = (start + 1..=last).collect();
    ensure!(
        !heard.is_empty() && heard == want,
        "the hook heard commits {heard:?}; the last is {last}"
    );
    let r = s.read(Scope::platform(Tenant::PLATFORM));
    let things = ok(r.scan_prefix(&t(1).things(), false), "scan")?.count();
    ensure!(things == 40, "{things} of 40 records stored");
    let logged = ok(
        r.scan_prefix(&keys::index_log_prefix(), false)
            .and_then(|scan| scan.map(|e| e.map(|(k, _)| k)).collect::<Result<Vec<_>>>()),
        "index log",
    )?;
    let want: Vec<Vec<u8>> = want.iter().map(|n| keys::index_log(*n)).collect();
    ensure!(logged == want, "index log holds {} entries", logged.len());
    Ok(())
}

/// A write that happened but was reported `OUTCOME_UNKNOWN`: the leader
/// reads counters and the commit number back from the store, so the next
/// commits neither pass a limit nor reuse a commit number, and readers see
/// what the store holds.
fn outcome_unknown(s: &Storage) -> Outcome {
    let counter = key(t(1), "n");
    let person = t(1).person(Id::from_raw(Dim::Person, 7));
    let add = |mut txn: Txn<'_>, delta: i64| {
        txn.add_counter(counter.clone(), delta, Some(10), "full")?;
        txn.put(person.clone(), delta.to_string().into_bytes())?;
        txn.commit()
    };
    let txn = || s.write(Scope::tenant(t(1)));
    ok(add(txn(), 5), "first")?;
    let text = |bytes: &[u8]| Ok(String::from_utf8_lossy(bytes).into_owned());
    // Cache the record as it is now.
    let cached = ok(
        s.read(Scope::tenant(t(1))).get_decoded(&person, text),
        "read",
    )?;
    ensure!(cached.is_some_and(|(v, _)| *v == "5"), "record before");
    // Its snapshot sees 5: 3 more pass its own check.
    let late = txn();
    s.engine().fail_next_write(true);
    refused(
        add(txn(), 3),
        ErrorCode::OutcomeUnknown,
        "the unknown write",
    )?;
    // The write happened: 8 stored, so the leader must refuse 3 more.
    refused(
        add(late, 3),
        ErrorCode::LimitReached,
        "after the unknown write",
    )?;
    ok(add(txn(), 2), "up to the limit")?;
    let r = s.read(Scope::tenant(t(1)));
    let n = ok(r.counter(&counter), "counter")?;
    ensure!(n == 10, "counter {n}");
    let record = ok(r.get_decoded(&person, text), "read")?;
    ensure!(
        record.as_ref().is_some_and(|(v, _)| **v == "2"),
        "record after: {:?}",
        record.map(|(v, _)| v)
    );
    let last = ok(s.last_commit(), "last commit")?;
    ensure!(last == 3, "three commits happened, the counter says {last}");
    Ok(())
}

/// An empty transaction commits nothing; a large one (many keys and a
/// value of megabytes) is stored whole; deleting absent keys is harmless.
fn empty_and_large_write_sets(s: &Storage) -> Outcome {
    // (On a shared store others move the sequence; the commit count and
    // the keys are this store's own.)
    let (before, commits) = (s.latest_sequence(), ok(s.last_commit(), "last commit")?);
    ok(s.write(Scope::tenant(t(1))).commit(), "empty commit")?;
    let r = s.read(Scope::tenant(t(1)));
    let keys = ok(r.scan_prefix(&prefix(t(1), ""), false), "scan")?.count();
    ensure!(
        keys == 0
            && ok(s.last_commit(), "last commit")? == commits
            && (s.engine().shared() || s.latest_sequence() == before),
        "an empty commit wrote"
    );
    drop(r);
    let mut txn = s.write(Scope::tenant(t(1)));
    for i in 0..20_000u32 {
        ok(txn.put(key(t(1), &format!("k{i:05}")), vec![7; 100]), "put")?;
    }
    ok(txn.put(key(t(1), "big"), vec![1; 4 << 20]), "put")?;
    ok(txn.delete(key(t(1), "absent")), "delete")?;
    ok(txn.commit(), "large commit")?;
    let r = s.read(Scope::tenant(t(1)));
    let n = ok(r.scan_prefix(&prefix(t(1), "k"), false), "scan")?.count();
    ensure!(n == 20_000, "{n} keys stored");
    let big = ok(r.get(&key(t(1), "big")), "get")?.map_or(0, |v| v.len());
    ensure!(big == 4 << 20, "big value of {big} bytes");
    Ok(())
}

/// Scans run backwards as well as forwards over the store merged with the
/// transaction's own writes, across deletions, and stop where the caller
/// stops (a limit).
fn reverse_and_limited_scans(s: &Storage) -> Outcome {
    let mut txn = s.write(Scope::tenant(t(1)));
    for i in 0..300u32 {
        ok(
            txn.put(key(t(1), &format!("k{i:03}")), i.to_string().into()),
            "put",
        )?;
    }
    ok(txn.commit(), "commit")?;
    let mut txn = s.write(Scope::tenant(t(1)));
    for i in (0..300u32).filter(|i| i % 3 == 0) {
        ok(txn.delete(key(t(1), &format!("k{i:03}"))), "delete")?;
    }
    ok(txn.commit(), "commit")?;
    let mut txn = s.write(Scope::tenant(t(1)));
    ok(txn.put(key(t(1), "k150"), b"own".to_vec()), "put")?;
    ok(txn.delete(key(t(1), "k151")), "delete")?;
    let want: Vec<String> = (100..200u32)
        .filter(|i| (i % 3 != 0 || *i == 150) && *i != 151)
        .map(|i| {
            if i == 150 {
                "own".into()
            } else {
                i.to_string()
            }
        })
        .collect();
    let (lower, upper) = (key(t(1), "k100"), key(t(1), "k200"));
    let forward = values(txn.scan_range(&lower, &upper, false))?;
    ensure!(forward == want, "forward: {forward:?}");
    let backward = values(txn.scan_range(&lower, &upper, true))?;
    let reversed: Vec<String> = want.iter().rev().cloned().collect();
    ensure!(backward == reversed, "backward: {backward:?}");
    let first: Vec<String> = ok(txn.scan_range(&lower, &upper, true), "scan")?
        .take(3)
        .map(|e| e.map(|(_, v)| String::from_utf8_lossy(&v).into_owned()))
        .collect::<Result<_>>()
        .map_err(|e| e.to_string())?;
    ensure!(first == reversed[..3], "first three backwards: {first:?}");
    Ok(())
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        const CASES: &[(&str, Case)] = &[$((stringify!($case), $case)),*];
        suite!(@engine rocks, Kind::Rocks; $($case),*);
        suite!(@engine memory_in_process, Kind::MemoryInProcess; $($case),*);
        suite!(@engine memory_in_engine, Kind::MemoryInEngine; $($case),*);
        suite!(@engine etcd, Kind::Etcd; $($case),*);
        #[cfg(feature = "tikv")]
        suite!(@engine tikv, Kind::Tikv; $($case),*);
    };
    (@engine $module:ident, $kind:expr; $($case:ident),*) => {
        mod $module {
            use super::*;
            $( #[test] fn $case() { run($kind, super::$case) } )*
        }
    };
}

suite!(
    ordering_and_bounds,
    snapshot_isolation,
    write_write_conflict,
    read_write_conflict,
    absent_key_conflict,
    phantom_insert,
    phantom_delete,
    counter_limits_under_races,
    commit_log_order,
    outcome_unknown,
    empty_and_large_write_sets,
    reverse_and_limited_scans,
    cached_records_read_at_the_snapshot,
    guessed_copies_are_checked_at_commit,
    latest_values_in_one_request,
);

/// The cases that check conflict detection.
const CONFLICT_CASES: [&str; 5] = [
    "write_write_conflict",
    "read_write_conflict",
    "absent_key_conflict",
    "phantom_insert",
    "phantom_delete",
];

/// The suite catches an engine that checks no read set: exactly the
/// conflict cases fail on it.
#[test]
fn an_engine_without_conflict_checks_fails_exactly_the_conflict_cases() {
    let failed: Vec<&str> = CASES
        .iter()
        .filter(|(_, case)| {
            let (_dir, storage) = open(Kind::Faulty);
            case(&storage).is_err()
        })
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(failed, CONFLICT_CASES);
}
