//! `onedb load` and `onedb dump` against raw RocksDB on the same keys.
//!
//! A synthetic dump of `ONEDB_DUMP_RECORDS` records (default 1,000,000:
//! things, connections, events and knowledge chunks with 32-dimension
//! embeddings, in two orgs) is loaded into a new directory, derived
//! indexes included (the load, then the open that rebuilds name search
//! and vectors). The baseline writes the very keys and values the load
//! produced into a raw RocksDB with onedb's options, in unsynced batches
//! of 64 MiB. `onedb dump` is measured against a raw full scan of the
//! loaded directory. Each pair runs alternately, ratios in the same run.
//! The peak memory of the real `onedb load` is read from the child's
//! rusage when the binary is built (target/release/onedb).
#![allow(
    clippy::disallowed_types,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

mod common;

use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use onedb::model::{Dim, Id};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rocksdb::{DB, IteratorMode, WriteBatch};

const DIM: usize = 32;

fn id(dim: Dim, n: u64) -> Id {
    // Creation-time layout: ids of one dimension sort by n.
    Id::from_raw(
        dim,
        (1_700_000_000_000u128 << 80) | u128::from(n) << 16 | dim as u128,
    )
}

/// Writes a dump of about `records` records; returns its record count.
fn write_dump(path: &Path, records: u64) -> u64 {
    let mut rng = StdRng::seed_from_u64(7);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let mut n = 0u64;
    writeln!(
        out,
        r#"{{"onedb_dump":1,"version":"bench","commit":1,"org":null}}"#
    )
    .unwrap();
    let orgs = [id(Dim::Org, 1), id(Dim::Org, 2)];
    let per_org = records / 2;
    // 40% things, 30% connections, 20% events, 10% chunks.
    let things = per_org * 4 / 10;
    for (o, org) in orgs.iter().enumerate() {
        let base = o as u64 * 10_000_000;
        writeln!(
            out,
            r#"{{"kind":"org","id":"{org}","slug":"org{o}","name":"Org {o}","plan":"enterprise","status":"active","limits":{{}},"settings":{{}},"createdAt":1,"updatedAt":1}}"#
        )
        .unwrap();
        let owner = id(Dim::Person, base + 1);
        writeln!(
            out,
            r#"{{"kind":"person","id":"{owner}","email":"owner@org{o}.io","name":"Owner","role":"org_owner","org":"{org}","status":"active","createdAt":1,"updatedAt":1}}"#
        )
        .unwrap();
        let kinds = ["course", "lesson", "digital_product", "blog_post"];
        let statuses = ["draft", "active", "published", "archived"];
        for i in 0..things {
            let t = id(Dim::Thing, base + i);
            writeln!(
                out,
                r#"{{"kind":"thing","id":"{t}","type":"{}","name":"thing {i} word{} word{}","properties":{{"price":{},"level":"l{}"}},"status":"{}","org":"{org}","createdAt":{},"updatedAt":{}}}"#,
                kinds[(i % 4) as usize],
                rng.gen_range(0..1000),
                rng.gen_range(0..1000),
                rng.gen_range(0..100),
                i % 3,
                statuses[(i % 4) as usize],
                1_700_000_000_000u64 + i,
                1_700_000_000_000u64 + i
            )
            .unwrap();
        }
        for i in 0..per_org * 3 / 10 {
            let (a, b) = (rng.gen_range(0..things), rng.gen_range(0..things));
            writeln!(
                out,
                r#"{{"kind":"connection","org":"{org}","id":"{}","from":"{}","to":"{}","type":"references","metadata":{{"w":{i}}},"validFrom":1700000000000,"createdAt":1700000000000}}"#,
                id(Dim::Connection, base + i),
                id(Dim::Thing, base + a),
                id(Dim::Thing, base + b)
            )
            .unwrap();
        }
        for i in 0..per_org / 10 {
            let source = id(Dim::Thing, base + rng.gen_range(0..things));
            let e: Vec<String> = (0..DIM)
                .map(|_| format!("{:.4}", rng.gen_range(-1.0..1.0f32)))
                .collect();
            let k = id(Dim::Knowledge, base + i);
            writeln!(
                out,
                r#"{{"kind":"knowledge","org":"{org}","id":"{k}","knowledgeType":"chunk","text":"chunk {i}","embedding":[{}],"labels":["l{}"],"source":"{source}","createdAt":1700000000000}}"#,
                e.join(","),
                i % 5
            )
            .unwrap();
            writeln!(
                out,
                r#"{{"kind":"link","org":"{org}","knowledge":"{k}","thing":"{source}","role":"chunk_of"}}"#
            )
            .unwrap();
        }
        for i in 0..per_org * 2 / 10 {
            writeln!(
                out,
                r#"{{"kind":"event","org":"{org}","id":"{}","type":"entity_updated","actor":"{owner}","target":"{}","timestamp":{},"metadata":{{"org":"{org}","entityType":"thing"}},"seq":{}}}"#,
                id(Dim::Event, base + i),
                id(Dim::Thing, base + rng.gen_range(0..things)),
                1_700_000_000_000u64 + i,
                i + 2
            )
            .unwrap();
        }
        n += things + per_org * 3 / 10 + per_org / 10 * 2 + per_org * 2 / 10 + 2;
    }
    out.flush().unwrap();
    n
}

/// Loads the dump into a new directory, then opens it once (which builds
/// the name index and the vectors); the time of each step.
fn load(dump: &Path, dir: &Path) -> (Duration, Duration) {
    let file = std::fs::File::open(dump).unwrap();
    let loading = timed(|| {
        onedb::transfer::load(dir, BufReader::with_capacity(1 << 20, file), &mut |_| {}).unwrap();
    });
    let indexing = timed(|| {
        let db = onedb::Database::open(dir).unwrap();
        db.flush_indexes().unwrap();
    });
    (loading, indexing)
}

/// Every key and value of a directory, packed: (arena, key/value ends).
struct Entries {
    arena: Vec<u8>,
    spans: Vec<(usize, usize, usize)>,
}

fn entries_of(dir: &Path) -> Entries {
    let db = common::open_raw(dir);
    let mut arena = Vec::new();
    let mut spans = Vec::new();
    for item in db.iterator(IteratorMode::Start) {
        let (k, v) = item.unwrap();
        let start = arena.len();
        arena.extend_from_slice(&k);
        let key_end = arena.len();
        arena.extend_from_slice(&v);
        spans.push((start, key_end, arena.len()));
    }
    Entries { arena, spans }
}

/// The baseline: the same entries in unsynced 64 MiB batches.
fn raw_write(entries: &Entries, dir: &Path) {
    let db = common::open_raw(dir);
    let opts = onedb::internals::rocksdb_write_options(false);
    let mut batch = WriteBatch::default();
    for &(s, k, e) in &entries.spans {
        batch.put(&entries.arena[s..k], &entries.arena[k..e]);
        if batch.size_in_bytes() >= 64 << 20 {
            db.write_opt(std::mem::take(&mut batch), &opts).unwrap();
        }
    }
    db.write_opt(batch, &opts).unwrap();
}

fn raw_scan(dir: &Path) -> usize {
    let db: DB = common::open_raw(dir);
    let mut bytes = 0;
    let mut it = db.raw_iterator();
    it.seek_to_first();
    while let Some((k, v)) = it.item() {
        bytes += k.len() + v.len();
        it.next();
    }
    bytes
}

fn dump(dir: &Path) -> u64 {
    let mut sink = BufWriter::with_capacity(1 << 20, std::io::sink());
    let report = onedb::transfer::dump(dir, &Default::default(), &mut sink, &mut |_| {}).unwrap();
    report.records
}

/// Peak resident memory of the real binary loading the dump, in MiB.
fn peak_load_mib(dump: &Path, scratch: &Path) -> Option<f64> {
    let exe = std::env::current_exe().ok()?;
    let binary = exe.parent()?.parent()?.join("onedb");
    if !binary.exists() {
        return None;
    }
    let mut child = std::process::Command::new(&binary)
        .arg("--data")
        .arg(scratch)
        .arg("load")
        .arg(dump)
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    // VmHWM is the high-water mark: the last reading before the exit is
    // the peak (to within the polling interval).
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kib = line.split_whitespace().nth(1).and_then(|v| v.parse().ok());
            peak_kib = peak_kib.max(kib.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().ok()? {
            assert!(status.success());
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(peak_kib as f64 / 1024.0)
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    let records: u64 = std::env::var("ONEDB_DUMP_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = std::env::var("ONEDB_DUMP_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    if let Ok(path) = std::env::var("ONEDB_DUMP_FILE") {
        // Only write the synthetic dump (to try `onedb load` by hand).
        let n = write_dump(Path::new(&path), records);
        println!("dump_load: wrote {n} records to {path}");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let dump_file = work.path().join("dump.jsonl");
    let n = write_dump(&dump_file, records);
    let size = std::fs::metadata(&dump_file).unwrap().len();
    println!(
        "dump_load: {n} records, {:.0} MiB of JSON lines",
        size as f64 / (1 << 20) as f64
    );

    let loaded = work.path().join("loaded");
    load(&dump_file, &loaded);
    let entries = entries_of(&loaded);
    println!(
        "dump_load: the load writes {} keys, {:.0} MiB",
        entries.spans.len(),
        entries.arena.len() as f64 / (1 << 20) as f64
    );

    let (mut t_load, mut t_index, mut t_raw, mut t_dump, mut t_scan): (
        Duration,
        Duration,
        Duration,
        Duration,
        Duration,
    ) = Default::default();
    for round in 0..rounds {
        let dir = work.path().join(format!("load-{round}"));
        let (loading, indexing) = load(&dump_file, &dir);
        t_load += loading;
        t_index += indexing;
        std::fs::remove_dir_all(&dir).unwrap();
        let dir = work.path().join(format!("raw-{round}"));
        t_raw += timed(|| raw_write(&entries, &dir));
        std::fs::remove_dir_all(&dir).unwrap();
        t_dump += timed(|| assert!(dump(&loaded) >= n));
        t_scan += timed(|| assert!(raw_scan(&loaded) > 0));
    }
    let per = |d: Duration| d.as_secs_f64() / rounds as f64;
    let line = |what: &str, ours: f64, raw: f64| {
        let ratio = raw / ours;
        println!(
            "{what:<34} onedb {ours:>7.2} s ({:>9.0} records/s)  raw {raw:>7.2} s  ratio {:>5.1}%  target ≥ 50%  {}",
            n as f64 / ours,
            ratio * 100.0,
            if ratio >= 0.5 { "PASS" } else { "FAIL" }
        );
    };
    println!();
    println!("== onedb load/dump vs raw RocksDB (same run, same options, {rounds} rounds) ==");
    line("load (records, index entries)", per(t_load), per(t_raw));
    line(
        "load + search indexes built",
        per(t_load + t_index),
        per(t_raw),
    );
    line("dump", per(t_dump), per(t_scan));
    match peak_load_mib(&dump_file, &work.path().join("peak")) {
        Some(mib) => println!(
            "peak memory of `onedb load`: {mib:.0} MiB  target ≤ 500 MiB  {}",
            if mib <= 500.0 { "PASS" } else { "FAIL" }
        ),
        None => println!("peak memory: build the binary first (cargo build --release)"),
    }
}
