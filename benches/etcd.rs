//! The etcd engine against etcd itself (issue 18): 16 clients doing the
//! standard mutation (a thing and its `owns` edge, with their events and
//! usage, in one commit) through two onedb servers over one etcd cluster,
//! beside 16 clients sending etcd transactions of the same shape straight
//! to the cluster — as many keys, of the same total size, as one onedb
//! commit writes (measured first). The baseline is the engine's limit on
//! this cluster in the same run. Target: ≥ 50 %.
//!
//! Both servers run in this process, each on its own `Database` (its own
//! indexes) over the same store, as two `onedb serve` processes would.
//! Needs a cluster: `ONEDB_ETCD=HOST:PORT,…` (`.ci/etcd-cluster start DIR
//! PORT` starts one). `cargo bench --bench etcd`; `ONEDB_BENCH_SECONDS`
//! sets each phase's length (default 3).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

#[path = "common/tcp.rs"]
mod tcp;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, GetOptions, Txn, TxnOp};
use onedb::server::Limits;
use onedb::{Database, Durability, Options, Store};
use serde_json::json;
use tcp::{Conn, MUTATION, acme_with_alice, mutations, rate, start_server};

const CLIENTS: usize = 16;

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "etcd".contains(f.as_str())) {
        return;
    }
    let Some(endpoints) = std::env::var("ONEDB_ETCD").ok().filter(|e| !e.is_empty()) else {
        println!("etcd bench skipped: set ONEDB_ETCD=HOST:PORT,… (see .ci/etcd-cluster)");
        return;
    };
    let seconds = std::env::var("ONEDB_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let phase = Duration::from_secs(seconds);
    let namespace = format!("bench-{:016x}", rand::random::<u64>());
    let store = Store::parse(&format!("etcd://{endpoints}/{namespace}")).expect("store");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let open = |dir: &tempfile::TempDir| {
        Database::open_with(
            dir.path(),
            Options {
                durability: Durability::Sync,
                store: store.clone(),
                ..Default::default()
            },
        )
        .expect("open")
    };
    let a = open(&dirs[0]);
    let (_, token) = acme_with_alice(&a);
    let b = open(&dirs[1]);
    let servers = [
        start_server(&a, Limits::default()),
        start_server(&b, Limits::default()),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let members: Vec<&str> = endpoints.split(',').collect();
    let (keys, bytes) = commit_shape(&runtime, &members, &namespace, servers[0], &token);
    println!(
        "onedb etcd bench: {seconds} s per phase, {CLIENTS} clients, one commit = {keys} keys, {bytes} bytes"
    );
    let baseline = rate(CLIENTS, phase, |n, stop| {
        raw_txns(
            &runtime,
            members[n % members.len()],
            &namespace,
            n,
            keys,
            bytes,
            stop,
        )
    });
    let onedb = rate(CLIENTS, phase, |n, stop| {
        mutations(servers[n % 2], &token, stop)
    });
    let ratio = onedb / baseline;
    let met = if ratio >= 0.5 { "met" } else { "NOT MET" };
    println!(
        "{:<44} {onedb:>8.0}/s vs {baseline:>8.0}/s = {:>5.1} %   target ≥ 50 %: {met}",
        "standard mutation, 2 servers, 16 clients",
        100.0 * ratio
    );
}

/// The keys one standard mutation writes in etcd (data, guards, the
/// marker) and their total size: everything the namespace holds that the
/// commit's revision modified.
fn commit_shape(
    runtime: &tokio::runtime::Runtime,
    members: &[&str],
    namespace: &str,
    server: SocketAddr,
    token: &str,
) -> (usize, usize) {
    let mut c = Conn::open(server, token);
    // The first mutation creates the counters; the second is the shape.
    for id in 0..2 {
        let r = c.call(&json!({"id": id, "op": "query", "text": MUTATION}));
        assert_eq!(r["ok"], json!(true), "{r}");
    }
    runtime.block_on(async {
        let mut client = Client::connect([members[0]], None).await.unwrap();
        let now = client
            .get("revision", Some(GetOptions::new().with_count_only()))
            .await
            .unwrap();
        let revision = now.header().unwrap().revision();
        let written = client
            .get(
                format!("{namespace}/"),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_min_mod_revision(revision),
                ),
            )
            .await
            .unwrap();
        let kvs = written.kvs();
        (
            kvs.len(),
            kvs.iter().map(|kv| kv.key().len() + kv.value().len()).sum(),
        )
    })
}

/// etcd transactions of `keys` puts totalling `bytes`, one at a time,
/// through `member`, until `stop`; how many committed.
fn raw_txns(
    runtime: &tokio::runtime::Runtime,
    member: &str,
    namespace: &str,
    client_no: usize,
    keys: usize,
    bytes: usize,
    stop: &AtomicBool,
) -> u64 {
    let mut client = runtime
        .block_on(Client::connect([member], None))
        .unwrap()
        .kv_client();
    let value = vec![b'x'; (bytes / keys.max(1)).saturating_sub(40)];
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let ops: Vec<TxnOp> = (0..keys)
            .map(|k| {
                let key = format!("{namespace}-raw/{client_no:02}/{done:012}/{k:03}");
                TxnOp::put(key, value.clone(), None)
            })
            .collect();
        runtime
            .block_on(client.txn(Txn::new().and_then(ops)))
            .unwrap();
        done += 1;
    }
    done
}
