//! Subscriptions over real sockets (RELIABILITY.md S1): every matching
//! committed event exactly once, in commit order, under 8 concurrent
//! writers; nothing from another org or beyond the role; a resume with
//! `after` after a disconnect has no gap and no duplicate; a subscriber
//! that does not read is cancelled with `last_seq` while writers go on.
//! The real binary on 127.0.0.1:0; each test starts its own server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/server.rs"]
mod harness;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Client, Server};
use onedb::Role;
use onedb::query::run::Runner;
use serde_json::{Value as Json, json};

const CAROL: &str = "carol@acme.io";
const CAROL_PASSWORD: &str = "carol-Secret-2468";
const CREATED: &str = "EVENTS WHERE type = \"entity_created\"";

fn assert_ok(response: &Json) {
    assert_eq!(response["ok"], json!(true), "{response}");
}

fn subscribe(client: &mut Client, id: Json, text: &str, after: Option<u64>) -> u64 {
    let mut request = json!({"id": id, "op": "subscribe", "text": text});
    if let Some(after) = after {
        request["after"] = json!(after);
    }
    let ack = client.call(request);
    assert_ok(&ack);
    assert_eq!(ack["sub"], id, "{ack}");
    ack["seq"]
        .as_u64()
        .expect("the ack names the commit it starts after")
}

/// A customer of acme, made by alice.
fn with_carol(server: &Server) {
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(
        1,
        &format!(
            "CREATE PERSON \"{CAROL}\" NAME \"Carol\" ROLE customer PASSWORD \"{CAROL_PASSWORD}\";"
        ),
    );
    assert_ok(&r);
}

/// Event lines of subscription `sub` until one names a thing called
/// `marker` (included); answers and other subscriptions' lines are kept
/// apart.
fn events_until(client: &mut Client, sub: &Json, marker: &str) -> Vec<Json> {
    let mut events = Vec::new();
    loop {
        let line = client.recv();
        if line.get("event").is_none() {
            panic!("a line that is not an event: {line}");
        }
        if line["id"] != *sub {
            continue;
        }
        let event = line["event"].clone();
        let done = event["metadata"]["name"] == json!(marker);
        events.push(event);
        if done {
            return events;
        }
    }
}

/// The org's stored entity_created events (as `client`'s person reads
/// them) with seq past `after`, in commit order.
fn stored_created(client: &mut Client, after: u64) -> Vec<Json> {
    let r = client.query(77, &format!("{CREATED} LIMIT 100000"));
    assert_ok(&r);
    let columns: Vec<String> = r["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let mut events: Vec<Json> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let fields = columns
                .iter()
                .cloned()
                .zip(row.as_array().unwrap().iter().cloned());
            Json::Object(fields.collect())
        })
        .filter(|e| e["seq"].as_u64().unwrap() > after)
        .collect();
    events.sort_by_key(|e| {
        (
            e["seq"].as_u64().unwrap(),
            e["id"].as_str().unwrap().to_string(),
        )
    });
    events
}

fn ids(events: &[Json]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// Commit order, each event once.
fn assert_in_commit_order_once(events: &[Json]) {
    let positions: Vec<(u64, String)> = events
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().expect("every event has its seq"),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for pair in positions.windows(2) {
        assert!(pair[0] < pair[1], "out of order or repeated: {pair:?}");
    }
}

/// `writers` clients of `email`, each creating `per_writer` tasks, one
/// commit each (or `batch` per commit), at once; every answer must be ok.
fn write_concurrently(
    server: &Server,
    email: &'static str,
    password: &'static str,
    writers: usize,
    per_writer: usize,
    batch: usize,
    tag: &'static str,
) {
    let handles: Vec<_> = (0..writers)
        .map(|w| {
            let mut client = server.login(email, password);
            std::thread::spawn(move || {
                for n in 0..per_writer / batch {
                    let mut text = String::new();
                    if batch > 1 {
                        text.push_str("BEGIN;\n");
                    }
                    for b in 0..batch {
                        text.push_str(&format!("CREATE THING task \"{tag}-{w}-{n}-{b}\" {{}};\n"));
                    }
                    if batch > 1 {
                        text.push_str("COMMIT;");
                    }
                    let r = client.query(n as u64, &text);
                    assert_ok(&r);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a writer failed");
    }
}

#[test]
fn eight_writers_every_matching_event_once_in_commit_order_and_only_what_each_may_read() {
    let server = Server::start(&[]);
    with_carol(&server);
    let mut a_sub = server.login(ALICE, ALICE_PASSWORD);
    let mut b_sub = server.login(BOB, BOB_PASSWORD);
    let mut c_sub = server.login(CAROL, CAROL_PASSWORD);
    let a_start = subscribe(&mut a_sub, json!("a"), CREATED, None);
    let b_start = subscribe(&mut b_sub, json!(7), CREATED, None);
    let c_start = subscribe(&mut c_sub, json!({"k": 1}), CREATED, None);

    let carol = std::thread::spawn({
        let mut carol = server.login(CAROL, CAROL_PASSWORD);
        move || {
            for n in 0..5 {
                let r = carol.query(n, &format!("CREATE THING message \"carol-{n}\" {{}};"));
                assert_ok(&r);
            }
            carol
        }
    });
    let bob = std::thread::spawn({
        let mut bob = server.login(BOB, BOB_PASSWORD);
        move || {
            for n in 0..20 {
                let r = bob.query(n, &format!("CREATE THING task \"bob-{n}\" {{}};"));
                assert_ok(&r);
            }
            bob
        }
    });
    write_concurrently(&server, ALICE, ALICE_PASSWORD, 8, 30, 1, "alice");
    let mut carol = carol.join().unwrap();
    let mut bob = bob.join().unwrap();
    // Markers, committed after everything else: once a subscriber has its
    // marker, every earlier commit has been dispatched to it.
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    assert_ok(&carol.query(1, "CREATE THING message \"marker-c\" {};"));
    assert_ok(&bob.query(1, "CREATE THING task \"marker-b\" {};"));
    assert_ok(&alice.query(1, "CREATE THING task \"marker-a\" {};"));

    let got = events_until(&mut a_sub, &json!("a"), "marker-a");
    let stored = stored_created(&mut alice, a_start);
    assert_eq!(
        stored.len(),
        8 * 30 + 5 + 2,
        "acme's creations since the subscription, carol's too"
    );
    assert_in_commit_order_once(&got);
    assert_eq!(
        ids(&got),
        ids(&stored),
        "exactly the stored events, in commit order"
    );
    assert_eq!(got, stored, "the same fields as EVENTS reads");

    let got = events_until(&mut b_sub, &json!(7), "marker-b");
    assert_in_commit_order_once(&got);
    assert_eq!(got.len(), 21, "bob's 20 and the marker");
    assert_eq!(ids(&got), ids(&stored_created(&mut bob, b_start)));
    let acme: HashSet<String> = ids(&stored).into_iter().collect();
    assert!(
        got.iter()
            .all(|e| !acme.contains(e["id"].as_str().unwrap()))
    );

    let carol_id = carol.query(2, "WHOAMI;")["rows"][0][0].clone();
    let got = events_until(&mut c_sub, &json!({"k": 1}), "marker-c");
    assert_in_commit_order_once(&got);
    assert_eq!(got.len(), 6, "carol's 5 messages and her marker: {got:?}");
    assert!(got.iter().all(|e| e["actor"] == carol_id), "{got:?}");
    assert_eq!(ids(&got), ids(&stored_created(&mut carol, c_start)));
}

#[test]
fn after_a_disconnect_after_resumes_with_no_gap_and_no_duplicate() {
    let server = Server::start(&[]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    // History before the subscription: `after` reaches back into it.
    for n in 0..10 {
        assert_ok(&alice.query(n, &format!("CREATE THING task \"old-{n}\" {{}};")));
    }
    let first_old = stored_created(&mut alice, 0)[0]["seq"].as_u64().unwrap();
    let from = first_old - 1;

    let writers = std::thread::spawn({
        let server_addr = server.addr;
        move || {
            let handles: Vec<_> = (0..4)
                .map(|w| {
                    let mut c = Client::connect(server_addr);
                    let r = c.call(
                        json!({"id": 0, "op": "auth", "email": ALICE, "password": ALICE_PASSWORD}),
                    );
                    assert_ok(&r);
                    std::thread::spawn(move || {
                        for n in 0..40 {
                            let r = c.query(n, &format!("CREATE THING task \"w{w}-{n}\" {{}};"));
                            assert_ok(&r);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
    });
    let mut first = Vec::new();
    {
        let mut sub = server.login(ALICE, ALICE_PASSWORD);
        assert_eq!(subscribe(&mut sub, json!(3), CREATED, Some(from)), from);
        while first.len() < 60 {
            let line = sub.recv();
            assert_eq!(line["id"], json!(3), "{line}");
            first.push(line["event"].clone());
        }
        // Gone mid-stream, with events still coming.
    }
    let last_seq = first.last().unwrap()["seq"].as_u64().unwrap();
    let mut sub = server.login(ALICE, ALICE_PASSWORD);
    assert_eq!(
        subscribe(&mut sub, json!(3), CREATED, Some(last_seq)),
        last_seq
    );
    writers.join().unwrap();
    assert_ok(&alice.query(1, "CREATE THING task \"marker\" {};"));
    let rest = events_until(&mut sub, &json!(3), "marker");

    let mut all = first.clone();
    all.extend(rest);
    assert_in_commit_order_once(&all);
    let stored = stored_created(&mut alice, from);
    assert_eq!(stored.len(), 10 + 4 * 40 + 1);
    assert_eq!(ids(&all), ids(&stored), "the union is every event, once");
    assert_eq!(first[0]["metadata"]["name"], json!("old-0"));
}

#[test]
fn a_subscriber_that_does_not_read_is_cancelled_with_last_seq_and_writers_go_on() {
    let server = Server::start(&["--subscription-queue", "100"]);
    let mut slow = server.login(ALICE, ALICE_PASSWORD);
    let start = subscribe(&mut slow, json!("slow"), CREATED, None);
    // 8 writers, 40,000 events in commits of 50: far more than the slow
    // client's socket buffers and its queue of 100 hold. They all finish.
    write_concurrently(&server, ALICE, ALICE_PASSWORD, 8, 5000, 50, "w");
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    assert_ok(&alice.query(1, "CREATE THING task \"marker\" {};"));

    // Now the slow one reads: some events, then CANCELLED with last_seq,
    // the last commit it was sent all of.
    let mut got = Vec::new();
    let cancelled = loop {
        let line = slow.recv();
        assert_eq!(line["id"], json!("slow"), "{line}");
        if line.get("error").is_some() {
            break line;
        }
        got.push(line["event"].clone());
    };
    assert_eq!(cancelled["ok"], json!(false));
    assert_eq!(
        cancelled["error"]["code"],
        json!("CANCELLED"),
        "{cancelled}"
    );
    let last_seq = cancelled["error"]["last_seq"].as_u64().unwrap();
    assert!(got.len() < 40_000, "it was cut short");
    assert_in_commit_order_once(&got);
    assert_eq!(
        last_seq,
        got.last().map_or(start, |e| e["seq"].as_u64().unwrap())
    );
    let stored = stored_created(&mut alice, start);
    assert_eq!(
        ids(&got),
        ids(&stored[..got.len()]),
        "what it got is a prefix"
    );
    // The connection goes on, and it may resume from there.
    assert_ok(&slow.query(5, "WHOAMI;"));
    subscribe(&mut slow, json!("slow"), CREATED, Some(last_seq));
    let rest = events_until(&mut slow, &json!("slow"), "marker");
    got.extend(rest);
    assert_eq!(ids(&got), ids(&stored), "no gap, no duplicate");
}

#[test]
fn unsubscribe_stops_one_stream_while_queries_and_others_go_on() {
    let server = Server::start(&[]);
    let mut c = server.login(ALICE, ALICE_PASSWORD);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    subscribe(&mut c, json!(1), CREATED, None);
    let r = c.call(json!({"id": 2, "op": "subscribe", "text": "EVENTS WHERE type = $t", "params": {"t": "entity_created"}}));
    assert_ok(&r);

    // Queries on the subscribed connection are answered in order while
    // event lines of both subscriptions interleave.
    let writer = std::thread::spawn(move || {
        for n in 0..20 {
            assert_ok(&alice.query(n, &format!("CREATE THING task \"t{n}\" {{}};")));
        }
        alice
    });
    for n in 0..5 {
        c.send(json!({"id": 100 + n, "op": "query", "text": "MATCH (t:task) RETURN count(*)"}));
    }
    let mut answers = Vec::new();
    let mut events = [0, 0];
    while answers.len() < 5 || events != [20, 20] {
        let line = c.recv();
        if line.get("event").is_some() {
            events[line["id"].as_u64().unwrap() as usize - 1] += 1;
        } else {
            assert_ok(&line);
            answers.push(line["id"].clone());
        }
    }
    assert_eq!(answers, (100..105).map(|n| json!(n)).collect::<Vec<_>>());
    let mut alice = writer.join().unwrap();

    let r = c.call(json!({"id": 3, "op": "unsubscribe", "sub": 1}));
    assert_ok(&r);
    assert_eq!(r["unsubscribed"], json!(1));
    assert_ok(&alice.query(1, "CREATE THING task \"after\" {};"));
    // Subscription 2 gets it; 1 gets nothing after its unsubscribe answer.
    let line = c.recv();
    assert_eq!(line["id"], json!(2), "{line}");
    assert_eq!(line["event"]["metadata"]["name"], json!("after"));
    assert_ok(&c.call(json!({"id": 4, "op": "ping"})));
    let r = c.call(json!({"id": 5, "op": "unsubscribe", "sub": 1}));
    assert_eq!(Client::code(&r), "NOT_FOUND", "{r}");
    assert_ok(&c.call(json!({"id": 6, "op": "unsubscribe", "sub": 2})));
    assert_ok(&alice.query(2, "CREATE THING task \"later\" {};"));
    assert_ok(&c.call(json!({"id": 7, "op": "ping"})));
}

#[test]
fn subscribe_needs_a_login_and_a_good_events_statement() {
    let server = Server::start(&["--max-subscriptions", "2"]);
    let mut anon = server.connect();
    let r = anon.call(json!({"id": 1, "op": "subscribe", "text": CREATED}));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");
    assert_eq!(r["id"], json!(1));
    let r = anon.call(json!({"id": 2, "op": "unsubscribe", "sub": 1}));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED");

    let mut c = server.login(ALICE, ALICE_PASSWORD);
    let r = c.call(json!({"id": 3, "op": "subscribe", "text": "EVENTS WHERE type = "}));
    assert_eq!(Client::code(&r), "PARSE_ERROR", "{r}");
    assert_eq!(r["id"], json!(3));
    let r = c.call(json!({"id": 4, "op": "subscribe", "text": "MATCH (t:task) RETURN t"}));
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT", "{r}");
    let r = c.call(json!({"id": 5, "op": "subscribe", "text": "EVENTS LIMIT 3"}));
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT", "{r}");
    let r = c.call(json!({"id": 6, "op": "subscribe", "text": "EVENTS WHERE colour = 1"}));
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT", "{r}");
    let r = c.call(json!({"id": 7, "op": "subscribe", "text": "EVENTS", "after": -1}));
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT", "{r}");
    let r = c.call(json!({"id": 8, "op": "unsubscribe", "sub": 99}));
    assert_eq!(Client::code(&r), "NOT_FOUND", "{r}");

    // At the limit of 2 per connection, and past it.
    subscribe(&mut c, json!(10), CREATED, None);
    let r = c.call(json!({"id": 10, "op": "subscribe", "text": CREATED}));
    assert_eq!(Client::code(&r), "INVALID_ARGUMENT", "an id in use: {r}");
    subscribe(&mut c, json!(11), CREATED, None);
    let r = c.call(json!({"id": 12, "op": "subscribe", "text": CREATED}));
    assert_eq!(Client::code(&r), "LIMIT_REACHED", "{r}");
    let r = c.call(json!({"id": 13, "op": "unsubscribe", "sub": 10}));
    assert_ok(&r);
    assert_eq!(r["unsubscribed"], json!(10));
    subscribe(&mut c, json!(12), CREATED, None);
    // Another connection has its own count.
    let mut other = server.login(ALICE, ALICE_PASSWORD);
    subscribe(&mut other, json!(10), CREATED, None);
}

/// The same, in process and harder: the catch-up of `after` runs while 8
/// sessions commit, so stored and live events meet mid-stream; and
/// `onedb check` passes over the new commit-order entries.
#[test]
fn in_process_the_catch_up_meets_the_live_stream_without_gap_or_duplicate() {
    let (_dir, db) = common::open();
    let root = common::org(&db, "acme");
    let owner = common::person(&db, &root, "o@acme.io", Role::OrgOwner);
    for n in 0..600 {
        common::create(&owner, "task", &format!("old-{n}"));
    }
    // One commit of 700 events: more than a catch-up chunk (512), which
    // must still hand it over whole.
    let mut block = Runner::new(&owner);
    block.execute("BEGIN").unwrap();
    for n in 0..700 {
        block
            .execute(&format!("CREATE THING task \"block-{n}\" {{}}"))
            .unwrap();
    }
    block.execute("COMMIT").unwrap();
    drop(block);
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let session = db.session_as("o@acme.io").unwrap();
            std::thread::spawn(move || {
                for n in 0..100 {
                    common::create(&session, "task", &format!("w{w}-{n}"));
                }
            })
        })
        .collect();
    let mut runner = Runner::new(&owner);
    let subscription = runner
        .subscribe(CREATED, Some(0), 1_000_000, Arc::new(|| {}))
        .unwrap();
    assert_eq!(subscription.start(), 0);
    let reader = subscription.reader();
    for w in writers {
        w.join().unwrap();
    }
    common::create(&owner, "task", "marker");
    let mut got = Vec::new();
    let started = Instant::now();
    while got
        .last()
        .is_none_or(|e: &Json| e["metadata"]["name"] != json!("marker"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "got {}",
            got.len()
        );
        let taken = reader.take(1000);
        assert!(taken.ended.is_none(), "{:?}", taken.ended);
        for e in taken.events {
            got.push(serde_json::from_str::<Json>(&e.json).unwrap());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_in_commit_order_once(&got);
    let out = runner.execute(&format!("{CREATED} LIMIT 100000")).unwrap();
    let seq = out.columns.iter().position(|c| c == "seq").unwrap();
    let mut stored: Vec<(u64, String)> = out
        .rows
        .iter()
        .map(|r| (r[seq].as_u64().unwrap(), r[0].as_str().unwrap().to_string()))
        .collect();
    stored.sort();
    // 600 old, 700 in one commit, 800 new and the marker.
    assert_eq!(stored.len(), 600 + 700 + 800 + 1);
    let got: Vec<(u64, String)> = got
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, stored);
    drop(subscription);
    assert_eq!(db.subscriptions(), 0);
    common::assert_valid(&db);
}

/// An open subscription is work in flight: its connection is not closed
/// as idle, while one without is.
#[test]
fn a_subscribed_connection_is_not_idle() {
    let server = Server::start(&["--idle-timeout", "1s"]);
    let mut sub = server.login(ALICE, ALICE_PASSWORD);
    subscribe(&mut sub, json!(1), CREATED, None);
    let mut idle = server.login(ALICE, ALICE_PASSWORD);
    std::thread::sleep(Duration::from_millis(2500));
    let closed = idle.until_closed(Duration::from_secs(5));
    assert_eq!(closed.len(), 1, "{closed:?}");
    assert_eq!(closed[0]["error"]["code"], json!("TIMEOUT"));
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    assert_ok(&alice.query(1, "CREATE THING task \"late\" {};"));
    let line = sub.recv();
    assert_eq!(line["event"]["metadata"]["name"], json!("late"), "{line}");
    // Unsubscribed, it is idle again.
    assert_ok(&sub.call(json!({"id": 2, "op": "unsubscribe", "sub": 1})));
    let closed = sub.until_closed(Duration::from_secs(5));
    assert_eq!(closed.len(), 1, "{closed:?}");
}

/// A subscribed connection that nothing happens on costs no wake-ups: its
/// session thread sleeps until the idle deadline, not every 50 ms.
#[test]
fn a_quiet_subscription_leaves_its_session_thread_asleep() {
    let server = Server::start(&[]);
    let mut sub = server.login(ALICE, ALICE_PASSWORD);
    subscribe(&mut sub, json!(1), CREATED, None);
    std::thread::sleep(Duration::from_millis(300));
    let before = session_wakeups(server.pid());
    std::thread::sleep(Duration::from_secs(1));
    let woken = session_wakeups(server.pid()) - before;
    assert!(
        woken < 5,
        "session threads woke {woken} times in a quiet second"
    );
}

/// Voluntary context switches of the server's session threads so far.
fn session_wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter(|status| status.lines().any(|l| l == "Name:\tonedb-session"))
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// The subscription's end line of `client` (events before it skipped).
fn subscription_end(client: &mut Client, sub: &Json) -> Json {
    loop {
        let line = client.recv();
        assert_eq!(line["id"], *sub, "{line}");
        if line.get("error").is_some() {
            return line;
        }
    }
}

#[test]
fn revoking_the_token_or_removing_the_person_ends_their_subscriptions_and_sessions() {
    let server = Server::start(&[]);
    with_carol(&server);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let made = alice.query(1, "CREATE TOKEN \"feed\";");
    assert_ok(&made);
    let (token_id, secret) = (
        made["rows"][0][0].as_str().unwrap().to_string(),
        made["rows"][0][1].as_str().unwrap().to_string(),
    );
    let mut by_token = server.connect();
    assert_ok(&by_token.call(json!({"id": 0, "op": "auth", "token": secret})));
    subscribe(&mut by_token, json!("t"), CREATED, None);
    let mut carol = server.login(CAROL, CAROL_PASSWORD);
    subscribe(&mut carol, json!("c"), "EVENTS", None);
    // A bystander's subscription outlives both.
    let mut bob = server.login(ALICE, ALICE_PASSWORD);
    subscribe(&mut bob, json!("b"), CREATED, None);

    assert_ok(&alice.query(2, "CREATE THING task \"before\" {};"));
    let r = alice.query(3, &format!("REVOKE TOKEN {token_id};"));
    assert_ok(&r);
    let ended = subscription_end(&mut by_token, &json!("t"));
    assert_eq!(Client::code(&ended), "NOT_AUTHENTICATED", "{ended}");
    // The session is over: its next request is refused, then it closes.
    let r = by_token.call(json!({"id": 9, "op": "query", "text": "WHOAMI;"}));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED", "{r}");
    assert!(by_token.until_closed(Duration::from_secs(5)).is_empty());

    let who = alice.query(
        4,
        &format!("MATCH (p:person) WHERE p.email = \"{CAROL}\" RETURN p.id"),
    );
    let carol_id = who["rows"][0][0].as_str().unwrap().to_string();
    assert_ok(&alice.query(5, &format!("REMOVE PERSON \"{carol_id}\";")));
    let ended = subscription_end(&mut carol, &json!("c"));
    assert_eq!(Client::code(&ended), "NOT_AUTHENTICATED", "{ended}");
    let r = carol.call(json!({"id": 9, "op": "subscribe", "text": CREATED}));
    assert_eq!(Client::code(&r), "NOT_AUTHENTICATED", "{r}");
    assert!(carol.until_closed(Duration::from_secs(5)).is_empty());

    assert_ok(&alice.query(6, "CREATE THING task \"after\" {};"));
    let events = events_until(&mut bob, &json!("b"), "after");
    let names: Vec<_> = events
        .iter()
        .map(|e| e["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("before"), json!("after")]);
}
