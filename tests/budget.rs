//! Query budgets (RELIABILITY.md "Limits" and test R1): every limit of a
//! query at the limit and one past it, buffering operators bounded by the
//! row budget rather than by the deadline, and expensive queries stopped in
//! time while other clients' point reads stay fast.
//!
//! Public API only: `Runner::set_limits` sets a query's time and row limits.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

#[path = "common/r1.rs"]
mod r1;

use std::time::{Duration, Instant};

use onedb::query::run::{Outcome, Runner};
use onedb::{ErrorCode, Id};
use r1::{SEED, connect_all, dense_graph, limits, things};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;

fn run(runner: &mut Runner<'_>, text: &str) -> Result<Outcome, onedb::Error> {
    runner.execute(text)
}

fn code(runner: &mut Runner<'_>, text: &str) -> ErrorCode {
    match runner.execute(text) {
        Ok(out) => panic!("{text}: expected an error, got {} rows", out.rows.len()),
        Err(e) => e.code,
    }
}

fn rows(runner: &mut Runner<'_>, text: &str) -> usize {
    match runner.execute(text) {
        Ok(out) => out.rows.len(),
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn the_row_cap_at_and_past_the_limit() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "rows");
    things(&root, "task", 21);
    let mut r = Runner::new(&root);
    r.set_limits(limits(Duration::from_secs(10), 20));

    // Without LIMIT: exactly max_rows rows succeed, max_rows + 1 do not.
    assert_eq!(rows(&mut r, "MATCH (t:task) WHERE t.n < 20 RETURN t.n"), 20);
    assert_eq!(
        code(&mut r, "MATCH (t:task) WHERE t.n < 21 RETURN t.n"),
        ErrorCode::TooLarge
    );
    // With LIMIT more are allowed.
    assert_eq!(rows(&mut r, "MATCH (t:task) RETURN t.n LIMIT 21"), 21);
    assert_eq!(rows(&mut r, "MATCH (t:task) RETURN t.n LIMIT 1000"), 21);
    // Groups count as rows.
    assert_eq!(
        rows(&mut r, "MATCH (t:task) WHERE t.n < 20 RETURN t.n, count(*)"),
        20
    );
    assert_eq!(
        code(&mut r, "MATCH (t:task) RETURN t.n, count(*)"),
        ErrorCode::TooLarge
    );

    // LIMIT raises the cap to 10 × max_rows, not further: 2 rows → 20.
    r.set_limits(limits(Duration::from_secs(10), 2));
    assert_eq!(rows(&mut r, "MATCH (t:task) RETURN t.n LIMIT 20"), 20);
    assert_eq!(
        code(&mut r, "MATCH (t:task) RETURN t.n LIMIT 21"),
        ErrorCode::TooLarge
    );
    // A LIMIT past the cap is fine while the result stays under it.
    assert_eq!(
        rows(&mut r, "MATCH (t:task) WHERE t.n < 20 RETURN t.n LIMIT 100"),
        20
    );
}

#[test]
fn the_traversal_depth_at_and_past_the_limit() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "hops");
    // A chain t0 -> t1 -> … -> t12: paths longer than 10 hops exist.
    let chain = things(&root, "creator", 13);
    let edges: Vec<(Id, Id)> = chain.windows(2).map(|w| (w[0], w[1])).collect();
    connect_all(&root, &edges);
    let mut r = Runner::new(&root);
    r.set_param("first", json!(chain[0].to_string()))
        .expect("param");
    r.set_param("last", json!(chain[10].to_string()))
        .expect("param");

    let reach = |r: &mut Runner<'_>, hops: &str| {
        let text = format!(
            "MATCH (a)-[:following{hops}]->(b) WHERE a.id = $first RETURN count(DISTINCT b)"
        );
        run(r, &text).map(|o| o.rows[0][0].clone())
    };
    assert_eq!(reach(&mut r, "*..10").unwrap(), json!(10));
    assert_eq!(reach(&mut r, "*1..10").unwrap(), json!(10));
    assert_eq!(reach(&mut r, "*10..10").unwrap(), json!(1));
    // No upper bound means the limit, not "unbounded".
    assert_eq!(reach(&mut r, "*").unwrap(), json!(10));
    for past in ["*..11", "*1..11", "*11..11", "*2..12"] {
        assert_eq!(
            reach(&mut r, past).unwrap_err().code,
            ErrorCode::TooLarge,
            "{past}"
        );
    }
    let shortest = |r: &mut Runner<'_>, hops: &str| {
        let text = format!(
            "MATCH p = SHORTEST (a)-[:following{hops}]-(b) WHERE a.id = $first AND b.id = $last RETURN length(p)"
        );
        run(r, &text).map(|o| o.rows)
    };
    assert_eq!(shortest(&mut r, "*..10").unwrap(), vec![vec![json!(10)]]);
    // Ten hops away is out of reach of nine.
    assert_eq!(
        shortest(&mut r, "*..9").unwrap(),
        Vec::<Vec<serde_json::Value>>::new()
    );
    assert_eq!(
        shortest(&mut r, "*..11").unwrap_err().code,
        ErrorCode::TooLarge
    );
}

#[test]
fn the_deadline_at_and_past_the_limit() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "time");
    things(&root, "task", 5_000);
    let mut r = Runner::new(&root);

    // A query that finishes under its deadline succeeds, however short
    // the deadline is compared with the default.
    r.set_limits(limits(Duration::from_secs(10), 10_000));
    assert_eq!(rows(&mut r, "MATCH (t:task) RETURN t.n"), 5_000);
    let started = Instant::now();
    assert_eq!(
        rows(&mut r, "MATCH (t:task) WHERE t.n = 7 RETURN t.name"),
        1
    );
    let took = started.elapsed();
    r.set_limits(limits(took * 20 + Duration::from_millis(200), 10_000));
    assert_eq!(
        rows(&mut r, "MATCH (t:task) WHERE t.n = 7 RETURN t.name"),
        1
    );

    // Past it: a zero deadline stops even a one-row query; a millisecond
    // stops a scan of 5,000 things (milliseconds of work on any machine).
    r.set_limits(limits(Duration::ZERO, 10_000));
    assert_eq!(
        code(&mut r, "MATCH (t:task) WHERE t.n = 7 RETURN t.name"),
        ErrorCode::Timeout
    );
    r.set_limits(limits(Duration::from_millis(1), 10_000));
    assert_eq!(
        code(&mut r, "MATCH (t:task) WHERE t.name = \"none\" RETURN t"),
        ErrorCode::Timeout
    );
    // A cartesian product of 1.25·10¹¹ rows is stopped by its deadline.
    r.set_limits(limits(Duration::from_millis(200), 10_000));
    let started = Instant::now();
    assert_eq!(
        code(&mut r, "MATCH (a:task), (b:task), (c:task) RETURN count(*)"),
        ErrorCode::Timeout
    );
    let took = started.elapsed();
    println!("a 200 ms deadline stopped a cartesian product after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

/// A cancel flag set from another thread stops a running query with
/// `CANCELLED` where the deadline is checked; once set, the next statement
/// does not start (a write included); cleared, the runner works again.
#[test]
fn a_cancel_flag_stops_a_running_query_and_the_next_statement() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let (_dir, db) = common::open();
    let root = common::org(&db, "cancel");
    things(&root, "task", 200);
    let mut r = Runner::new(&root);
    r.set_limits(limits(Duration::from_secs(60), 10_000));
    let flag = Arc::new(AtomicBool::new(false));
    r.set_cancel(Some(flag.clone()));
    assert_eq!(rows(&mut r, "MATCH (t:task) WHERE t.n = 7 RETURN t.n"), 1);

    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            flag.store(true, Ordering::Relaxed);
        })
    };
    let started = Instant::now();
    // 8·10⁶ rows: far longer than 100 ms, far shorter than the minute.
    assert_eq!(
        code(&mut r, "MATCH (a:task), (b:task), (c:task) RETURN count(*)"),
        ErrorCode::Cancelled
    );
    let took = started.elapsed();
    setter.join().expect("setter");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    assert_eq!(
        code(&mut r, "CREATE THING task \"late\" {}"),
        ErrorCode::Cancelled
    );
    r.set_cancel(None);
    assert_eq!(
        rows(&mut r, "MATCH (t:task) WHERE t.name = \"late\" RETURN t"),
        0
    );
    assert_eq!(rows(&mut r, "MATCH (t:task) WHERE t.n = 7 RETURN t.n"), 1);
}

/// Operators that buffer rows or values stop at the row budget
/// (10 × max_rows), not at the deadline: with a deadline of a minute each
/// of these would otherwise hold millions of values before it stopped.
#[test]
fn buffering_operators_stop_at_the_row_budget_not_the_deadline() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "buffers");
    let mut rng = StdRng::seed_from_u64(SEED);
    // 100 tasks: a product side may hold max_rows rows, so (a), (b) is
    // 10,000 rows, ten times any buffer's budget.
    things(&root, "task", 100);
    let graph = dense_graph(&root, 150, 6, &mut rng);
    let lonely = things(&root, "creator", 1)[0];
    let mut r = Runner::new(&root);
    r.set_param("x", json!(graph[0].to_string()))
        .expect("param");
    r.set_param("lonely", json!(lonely.to_string()))
        .expect("param");
    // 100 rows without LIMIT, 1,000 values in any one buffer.
    r.set_limits(limits(Duration::from_secs(60), 100));

    for text in [
        // 10,000 distinct rows, all skipped
        "MATCH (a:task), (b:task) RETURN DISTINCT a.n, b.n SKIP 100000000 LIMIT 1",
        // 10,000 rows to sort (no LIMIT: all of them are kept)
        "MATCH (a:task), (b:task) RETURN a.n, b.n ORDER BY b.n",
        // a top-k larger than the budget
        "MATCH (a:task), (b:task) RETURN a.n, b.n ORDER BY b.n LIMIT 1001",
        // one group collecting 10,000 values
        "MATCH (a:task), (b:task) RETURN collect(a.n)",
        // one group counting 10,000 distinct values
        "MATCH (a:task), (b:task) RETURN count(DISTINCT [a.n, b.n])",
        // 10,000 groups
        "MATCH (a:task), (b:task) RETURN a.n, b.n, count(*)",
        // a LIMIT far past the budget
        "MATCH (a:task), (b:task) RETURN a.n LIMIT 1000000",
        // millions of paths of up to 10 hops from one node
        "MATCH (a)-[:following*..10]->(b) WHERE a.id = $x RETURN b.n LIMIT 1",
        // every edge within 10 hops, for a node that is not there
        "MATCH p = SHORTEST (a)-[:following*..10]-(b) WHERE a.id = $x AND b.id = $lonely RETURN p",
    ] {
        let started = Instant::now();
        let err = run(&mut r, text).expect_err(text);
        let took = started.elapsed();
        println!(
            "{:>10.1?}  {}  {text}\n            {}",
            took, err.code, err.message
        );
        assert_eq!(err.code, ErrorCode::TooLarge, "{text}: {err}");
        assert!(took < Duration::from_secs(20), "{text}: took {took:?}");
    }
    // A top-k sort keeps SKIP + LIMIT rows, whatever the number it sorts:
    // 10,000 rows, ten times the budget.
    let top = run(
        &mut r,
        "MATCH (a:task), (b:task) RETURN a.n, b.n ORDER BY b.n DESC, a.n SKIP 2 LIMIT 3",
    )
    .expect("top-k");
    assert_eq!(
        top.rows,
        [
            [json!(2), json!(99)],
            [json!(3), json!(99)],
            [json!(4), json!(99)]
        ]
    );
    // At the budget the same shapes succeed (1,000 values in one
    // aggregation: 500 distinct pairs and 500 collected items).
    assert_eq!(
        rows(
            &mut r,
            "MATCH (a:task), (b:task) WHERE a.n < 10 AND b.n < 10 RETURN DISTINCT a.n, b.n ORDER BY b.n LIMIT 1000"
        ),
        100
    );
    let aggregate = |r: &mut Runner<'_>, b: usize| {
        let text = format!(
            "MATCH (a:task), (b:task) WHERE a.n < 20 AND b.n < {b} RETURN count(DISTINCT [a.n, b.n]), collect(a.n)"
        );
        run(r, &text).map(|o| (o.rows[0][0].clone(), o.rows[0][1].as_array().map(Vec::len)))
    };
    assert_eq!(aggregate(&mut r, 25).unwrap(), (json!(500), Some(500)));
    assert_eq!(aggregate(&mut r, 26).unwrap_err().code, ErrorCode::TooLarge);
}

fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// R1: long variable-length paths on a dense graph, cartesian products and
/// huge scans get TIMEOUT or TOO_LARGE in time, and their buffers stay
/// bounded, while other clients (threads with their own sessions on the
/// same database) go on reading. How fast those reads stay is measured by
/// `benches/r1.rs`, not asserted here: this machine is shared.
#[test]
fn r1_expensive_queries_are_stopped_in_time_while_others_read() {
    let (_dir, db) = common::open();
    let data = r1::build(&db);
    let hwm_before = vm_hwm_kib();
    let margin = Duration::from_secs(2);
    let cases = r1::expensive_cases();
    let (runs, latencies) = r1::run(&db, &data, 2, 2, Duration::from_secs(4));

    for (i, case) in cases.iter().enumerate() {
        let mine: Vec<_> = runs.iter().filter(|(c, _, _)| *c == i).collect();
        let slowest = mine.iter().map(|(_, _, t)| *t).max().unwrap_or_default();
        let codes: std::collections::BTreeSet<String> = mine
            .iter()
            .map(|(_, r, _)| match r {
                Ok(n) => format!("ok ({n} rows)"),
                Err(e) => e.code.to_string(),
            })
            .collect();
        println!(
            "{:>3} runs, slowest {:>8.1?} (deadline {:?}): {codes:?}  {}",
            mine.len(),
            slowest,
            case.limits.timeout,
            case.text
        );
        assert!(!mine.is_empty(), "{} never ran", case.text);
        for (_, result, took) in &mine {
            match result {
                Err(e) => assert!(
                    matches!(e.code, ErrorCode::Timeout | ErrorCode::TooLarge),
                    "{}: {e}",
                    case.text
                ),
                Ok(n) => panic!("{}: finished with {n} rows", case.text),
            }
            assert!(
                *took <= case.limits.timeout + margin,
                "{}: returned after {took:?}",
                case.text
            );
        }
    }
    println!(
        "point reads meanwhile: {} reads, p50 {:?}, p99 {:?}",
        latencies.len(),
        r1::percentile(&latencies, 0.5),
        r1::percentile(&latencies, 0.99),
    );
    if let (Some(before), Some(after)) = (hwm_before, vm_hwm_kib()) {
        println!(
            "peak RSS: {} MiB before the expensive queries, {} MiB after",
            before / 1024,
            after / 1024
        );
        // The whole test binary's peak, other tests included: a runaway
        // buffer of an expensive query would pass this by far.
        assert!(
            after.saturating_sub(before) < 512 * 1024,
            "peak RSS grew by {} MiB",
            after.saturating_sub(before) / 1024
        );
    }
    assert!(
        latencies.len() >= 100,
        "only {} point reads: the readers were starved",
        latencies.len()
    );
    common::assert_valid(&db);
    drop(db);
}

/// The tenant and visibility rules still hold for nodes bound without
/// reading them: a customer counting over edges sees only what they may.
#[test]
fn counting_over_edges_respects_visibility() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "vis");
    let customer = common::person(&db, &root, "c@vis.io", onedb::Role::Customer);
    let hub = things(&root, "creator", 1)[0];
    let spokes = things(&root, "creator", 6);
    connect_all(&root, &spokes.iter().map(|&s| (hub, s)).collect::<Vec<_>>());
    root.run(|t| {
        for &id in std::iter::once(&hub).chain(&spokes[..2]) {
            t.set_status(id, onedb::Status::Active)?;
            t.set_status(id, onedb::Status::Published)?;
        }
        t.delete_thing(spokes[5])
    })
    .unwrap();
    let text = "MATCH (h)-[:following]->(s) WHERE h.id = $h RETURN count(s), count(DISTINCT s)";
    let mut owner = Runner::new(&root);
    owner.set_param("h", json!(hub.to_string())).expect("param");
    assert_eq!(
        owner.execute(text).unwrap().rows,
        vec![vec![json!(5), json!(5)]]
    );
    let mut cust = Runner::new(&customer);
    cust.set_param("h", json!(hub.to_string())).expect("param");
    assert_eq!(
        cust.execute(text).unwrap().rows,
        vec![vec![json!(2), json!(2)]]
    );
}
