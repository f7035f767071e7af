//! `onedb serve` over real sockets (RELIABILITY.md N1, A2, A3, T2, R1 over
//! the wire): the real binary on 127.0.0.1:0, raw bytes where framing
//! matters. Each test starts its own server (a guard kills it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/server.rs"]
mod harness;

use std::io::Write;
use std::time::{Duration, Instant};

use harness::{ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, Client, ROOT_PASSWORD, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value as Json, json};

fn auth(id: u64, email: &str, password: &str) -> Json {
    json!({"id": id, "op": "auth", "email": email, "password": password})
}

fn code(response: &Json) -> String {
    Client::code(response)
}

fn assert_ok(response: &Json) {
    assert_eq!(response["ok"], json!(true), "{response}");
}

/// `count` things of type task named t1…tN, in one request.
fn tasks(client: &mut Client, count: usize) {
    let mut text = String::from("BEGIN;\n");
    for n in 1..=count {
        text.push_str(&format!("CREATE THING task \"t{n}\" {{}};\n"));
    }
    text.push_str("COMMIT;");
    assert_ok(&client.query(999, &text));
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn login_succeeds_and_unknown_people_and_wrong_passwords_look_the_same() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let r = c.call(auth(1, ALICE, ALICE_PASSWORD));
    assert_ok(&r);
    assert_eq!(r["id"], json!(1));
    assert_eq!(r["org"], json!("acme"));
    assert_eq!(r["role"], json!("org_owner"));
    assert!(r["person"].as_str().unwrap().starts_with("per_"), "{r}");
    let again = c.call(auth(2, ALICE, ALICE_PASSWORD));
    assert_eq!(code(&again), "INVALID_ARGUMENT");
    let long = format!("{}@acme.io", "a".repeat(300));
    let r = server.connect().call(auth(3, &long, ALICE_PASSWORD));
    assert_eq!(code(&r), "INVALID_ARGUMENT");

    // Rounds of: an unknown email, a wrong password, then a success (which
    // clears the failure counts, so no lockout interferes).
    let (mut unknown_times, mut wrong_times) = (Vec::new(), Vec::new());
    for round in 0..5 {
        let mut c = server.connect();
        let started = Instant::now();
        let unknown = c.call(auth(1, &format!("nobody{round}@acme.io"), ALICE_PASSWORD));
        unknown_times.push(started.elapsed());
        let started = Instant::now();
        let wrong = c.call(auth(1, ALICE, "wrong-Guess-999"));
        wrong_times.push(started.elapsed());
        assert_eq!(code(&unknown), "NOT_AUTHENTICATED");
        assert_eq!(unknown, wrong, "the two failures must be indistinguishable");
        assert_ok(&c.call(auth(2, ALICE, ALICE_PASSWORD)));
    }
    let (unknown, wrong) = (median(unknown_times), median(wrong_times));
    println!("median login failure: unknown email {unknown:?}, wrong password {wrong:?}");
    assert!(
        unknown * 3 > wrong && wrong * 3 > unknown,
        "unknown {unknown:?} vs wrong {wrong:?}"
    );

    // Every checked attempt on a person is a user_login event, without
    // the password.
    let mut root = server.login("root", ROOT_PASSWORD);
    let events = root.query(
        1,
        "USE ORG acme; EVENTS WHERE type = \"user_login\" LIMIT 100",
    );
    assert_ok(&events);
    let successes: Vec<bool> = events["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row[5]["success"].as_bool().unwrap())
        .collect();
    assert_eq!(successes.iter().filter(|s| **s).count(), 6, "{events}");
    assert_eq!(successes.iter().filter(|s| !**s).count(), 5, "{events}");
    let text = events.to_string();
    assert!(!text.contains("wrong-Guess-999") && !text.contains(ALICE_PASSWORD));
}

#[test]
fn three_failures_lock_the_account_and_address_for_5_s_then_10_s() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    for id in 0..3 {
        let r = c.call(auth(id, ALICE, "wrong-Guess-999"));
        assert_eq!(code(&r), "NOT_AUTHENTICATED");
        assert!(r["error"].get("retry_after_ms").is_none(), "{r}");
    }
    // The right password is not even checked now, for this account and,
    // from this address, for any other.
    let started = Instant::now();
    let r = c.call(auth(3, ALICE, ALICE_PASSWORD));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    let wait = r["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((3_000..=5_000).contains(&wait), "{r}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "refused unchecked"
    );
    let r = server.connect().call(auth(4, BOB, BOB_PASSWORD));
    assert!(
        r["error"]["retry_after_ms"].as_u64().unwrap() > 2_000,
        "{r}"
    );

    // Once the wait is over one more failure is checked, and doubles it.
    std::thread::sleep(Duration::from_millis(wait + 100));
    let r = c.call(auth(5, ALICE, "wrong-Guess-999"));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    assert!(r["error"].get("retry_after_ms").is_none(), "{r}");
    let r = c.call(auth(6, ALICE, ALICE_PASSWORD));
    let wait = r["error"]["retry_after_ms"].as_u64().unwrap();
    assert!((8_000..=10_000).contains(&wait), "{r}");
}

#[test]
fn root_has_no_login_without_a_root_password() {
    let server = Server::start_with(&[], None);
    let r = server.connect().call(auth(1, "root", ""));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    let r = server.connect().call(auth(1, "root", ROOT_PASSWORD));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
}

#[test]
fn every_op_but_auth_and_ping_needs_a_login() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_ok(&c.call(json!({"id": 1, "op": "ping"})));
    for request in [
        json!({"id": 2, "op": "query", "text": "CREATE THING task \"sneaky\" {};"}),
        json!({"id": 3, "op": "query", "text": "WHOAMI;", "params": {"x": 1}}),
        json!({"id": 4, "op": "cancel", "target": 2}),
        json!({"id": 5, "op": "query", "text": "USE ORG acme;"}),
    ] {
        let r = c.call(request.clone());
        assert_eq!(code(&r), "NOT_AUTHENTICATED", "{request}");
        assert_eq!(r["id"], request["id"]);
    }
    let r = c.call(json!({"id": 6, "op": "subscribe", "text": "EVENTS"}));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    let r = c.call(json!({"id": 7, "op": "unsubscribe", "sub": 6}));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    // Nothing ran.
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(1, "MATCH (t:task) RETURN count(*)");
    assert_eq!(r["rows"], json!([[0]]), "{r}");
}

#[test]
fn pipelined_requests_are_answered_in_order_and_let_lives_with_the_connection() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut batch = Vec::new();
    let mut line = |v: Json| {
        batch.extend_from_slice(v.to_string().as_bytes());
        batch.push(b'\n');
    };
    line(auth(0, ALICE, ALICE_PASSWORD));
    line(
        json!({"id": 1, "op": "query", "text": "CREATE THING task \"t1\" {}; CREATE THING task \"t2\" {};"}),
    );
    line(json!({"id": 2, "op": "query", "text": "LET $name = \"t2\";"}));
    for id in 3..60 {
        match id % 3 {
            0 => line(json!({"id": id, "op": "ping"})),
            1 => line(
                json!({"id": id, "op": "query", "text": "MATCH (t:task) WHERE t.name = $name RETURN t.name"}),
            ),
            _ => line(
                json!({"id": id, "op": "query", "text": "MATCH (t:task) WHERE t.name = $n RETURN t.name", "params": {"n": "t1"}}),
            ),
        }
    }
    c.send_raw(&batch);
    for id in 0..60 {
        let r = c.recv();
        assert_eq!(r["id"], json!(id), "{r}");
        assert_ok(&r);
        match id % 3 {
            _ if id < 3 => {}
            1 => assert_eq!(r["rows"], json!([["t2"]]), "{r}"),
            2 => assert_eq!(r["rows"], json!([["t1"]]), "{r}"),
            _ => {}
        }
    }
    // A later request still sees the connection's variables.
    let r = c.query(60, "MATCH (t:task) WHERE t.name = $name RETURN count(*)");
    assert_eq!(r["rows"], json!([[1]]), "{r}");
    // The first failing statement answers, with its index; later ones do
    // not run.
    let r = c.query(
        61,
        "WHOAMI; MATCH (t:nonsense_type) RETURN t; CREATE THING task \"t3\" {};",
    );
    assert_eq!(r["error"]["statement"], json!(1), "{r}");
    let r = c.query(62, "MATCH (t:task) RETURN count(*)");
    assert_eq!(r["rows"], json!([[2]]), "{r}");
}

/// Requests near the line limit, pipelined: more bytes than the queue
/// toward the session holds, so the server reads them as room frees up.
#[test]
fn large_pipelined_requests_are_all_answered_in_order() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut writer = c.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        for id in 0..12 {
            let pad = "x".repeat(900_000);
            let line = format!("{}\n", json!({"id": id, "op": "ping", "pad": pad}));
            writer.write_all(line.as_bytes()).unwrap();
        }
    });
    for id in 0..12 {
        let r = c.recv();
        assert_eq!(r["id"], json!(id));
        assert_ok(&r);
    }
    sender.join().unwrap();
}

#[test]
fn a_line_past_1_mib_is_too_large_and_closes_while_others_are_served() {
    let server = Server::start(&[]);
    let mut other = server.login(ALICE, ALICE_PASSWORD);

    // At the limit: exactly 1 MiB before the newline is a request.
    let mut at_limit = server.connect();
    let head = br#"{"id":1,"op":"ping","pad":""#;
    let mut line = head.to_vec();
    line.resize((1 << 20) - 2, b'x');
    line.extend_from_slice(b"\"}");
    assert_eq!(line.len(), 1 << 20);
    line.push(b'\n');
    at_limit.send_raw(&line);
    assert_ok(&at_limit.recv());
    // One byte more is not.
    let mut past = server.connect();
    let mut line = vec![b' '; (1 << 20) + 1];
    line.push(b'\n');
    past.send_raw(&line);
    let lines = past.until_closed(Duration::from_secs(10));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(code(&lines[0]), "TOO_LARGE");

    // A 2 MiB line, sent while another client keeps asking.
    let mut big = server.connect();
    let sender = std::thread::spawn(move || {
        let mut line = vec![b'{'; 2 << 20];
        line.push(b'\n');
        let _ = big.stream.write_all(&line);
        big
    });
    for id in 0..5 {
        let started = Instant::now();
        assert_ok(&other.call(json!({"id": id, "op": "ping"})));
        assert_ok(&other.query(id, "WHOAMI;"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let mut big = sender.join().unwrap();
    let lines = big.until_closed(Duration::from_secs(10));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(code(&lines[0]), "TOO_LARGE");
    assert_eq!(lines[0]["id"], Json::Null);
    assert_ok(&other.call(json!({"id": 9, "op": "ping"})));
}

#[test]
fn garbage_lines_get_errors_and_the_connection_goes_on() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut garbage: Vec<Vec<u8>> = [
        &b"\x00\x01\x02\xff\xfe"[..],
        b"{",
        b"}",
        b"[]",
        b"null",
        b"42",
        b"\"op\"",
        b"{\"op\":null}",
        b"{\"op\":\"query\"}",
        b"{\"op\":\"query\",\"text\":7}",
        b"{\"op\":\"auth\",\"email\":1,\"password\":[]}",
        b"{\"op\":\"cancel\"}",
        b"{\"id\":1,\"op\":\"ping\"",
        b"\xc3\x28",
        b"{\"op\":\"query\",\"text\":\"WHOAMI;\",\"params\":[1]}",
    ]
    .iter()
    .map(|g| g.to_vec())
    .collect();
    garbage.push(vec![b'['; 100_000]);
    garbage.push([b"{\"a\":".repeat(50_000), b"1".to_vec()].concat());
    let seed: u64 = rand::random();
    println!("garbage seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..200 {
        let len = rng.gen_range(1..200);
        let mut g: Vec<u8> = (0..len).map(|_| rng.r#gen::<u8>()).collect();
        g.retain(|b| *b != b'\n');
        g.insert(0, b'x');
        garbage.push(g);
    }
    for g in &garbage {
        let mut line = g.clone();
        line.push(b'\n');
        c.send_raw(&line);
        let r = c.recv();
        assert_eq!(
            code(&r),
            "INVALID_ARGUMENT",
            "{:?}",
            String::from_utf8_lossy(g)
        );
    }
    // Blank lines are skipped; the connection still answers.
    c.send_raw(b"\n\r\n   \n");
    assert_ok(&c.call(json!({"id": "still", "op": "ping"})));
    assert_ok(&c.call(auth(1, ALICE, ALICE_PASSWORD)));
}

#[test]
fn a_half_sent_line_and_a_client_that_never_reads_block_no_one() {
    let server = Server::start(&["--max-output-bytes", "65536"]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    tasks(&mut alice, 100);

    let mut half = server.connect();
    half.send_raw(br#"{"id":1,"op":"pi"#);
    // A client that asks for 200 large results and never reads them.
    let mut deaf = server.login(ALICE, ALICE_PASSWORD);
    let request = json!({"id": 1, "op": "query",
        "text": "MATCH (a:task), (b:task) RETURN a.name, b.name, a.id, b.id LIMIT 10000"});
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch.extend_from_slice(request.to_string().as_bytes());
        batch.push(b'\n');
    }
    deaf.send_raw(&batch);

    let mut other = server.login(ALICE, ALICE_PASSWORD);
    for id in 0..20 {
        let started = Instant::now();
        let r = other.query(id, "MATCH (t:task) WHERE t.name = \"t7\" RETURN t.name");
        assert_eq!(r["rows"], json!([["t7"]]), "{r}");
        assert!(started.elapsed() < Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(100));
    }
    // By now the deaf client's answers outgrew what may wait for it, and
    // it was closed: what it can still read ends early.
    let lines = deaf.until_closed(Duration::from_secs(20));
    assert!(lines.len() < 200, "{} answers", lines.len());
    assert!(lines.iter().all(|l| l["ok"] == json!(true)));
    assert_ok(&other.call(json!({"id": "after", "op": "ping"})));
}

/// The server's peak resident memory, in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

/// Tiny lines pipelined behind a long query wait within the queue's
/// bound: each counts 512 bytes at least, so one read's thousands of
/// lines cannot become thousands of jobs (each with its error answer)
/// per read, 64 reads deep.
#[test]
fn tiny_lines_queued_behind_a_long_query_stay_within_the_queue_bound() {
    // Answers that wait for this client are bounded on their own (64 KiB).
    let server = Server::start(&["--query-timeout", "20s", "--max-output-bytes", "65536"]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    tasks(&mut alice, 200);
    let mut busy = server.login(ALICE, ALICE_PASSWORD);
    let long = json!({"id": 1, "op": "query",
        "text": "MATCH (a:task), (b:task), (c:task) RETURN count(*)"});
    // Once alone: the peak then holds what the query itself takes.
    let started = Instant::now();
    assert_ok(&busy.call(long.clone()));
    assert!(
        started.elapsed() > Duration::from_millis(200),
        "too quick to queue behind"
    );
    let before = peak_memory(server.pid());
    busy.send(long);
    let mut writer = busy.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || {
        // 600 KB of lines that are not requests; the server stops reading
        // them once its queue is full, and the write blocks.
        let _ = writer.write_all(&b"{}\n".repeat(200_000));
    });
    std::thread::sleep(Duration::from_secs(2));
    let grown = peak_memory(server.pid()).saturating_sub(before);
    assert!(grown < 12 << 20, "the server grew by {} MiB", grown >> 20);
    drop(busy);
    flood.join().unwrap();
    assert_ok(&alice.call(json!({"id": "after", "op": "ping"})));
}

#[test]
fn one_connection_over_the_cap_gets_an_error_line_then_close() {
    let server = Server::start(&["--max-connections", "3"]);
    let mut held: Vec<Client> = (0..3).map(|_| server.connect()).collect();
    for c in &mut held {
        assert_ok(&c.call(json!({"id": 1, "op": "ping"})));
    }
    let mut extra = server.connect();
    let lines = extra.until_closed(Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(code(&lines[0]), "LIMIT_REACHED");
    // A slot comes back when a connection ends.
    drop(held.pop());
    let started = Instant::now();
    loop {
        let mut c = server.connect();
        c.send(json!({"id": 1, "op": "ping"}));
        let r = c.recv();
        if r["ok"] == json!(true) {
            break;
        }
        assert_eq!(code(&r), "LIMIT_REACHED");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no slot came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_and_unauthenticated_connections_are_closed_on_time() {
    let server = Server::start(&["--auth-timeout", "1s", "--idle-timeout", "2s"]);
    let opened = Instant::now();
    let mut anon = server.connect();
    anon.send_raw(br#"{"id":1,"op":"au"#); // and then silence
    let anon = std::thread::spawn(move || {
        let lines = anon.until_closed(Duration::from_secs(10));
        (lines, opened.elapsed())
    });
    let mut idle = server.login(ALICE, ALICE_PASSWORD);
    let logged_in = Instant::now();
    let idle = std::thread::spawn(move || {
        let lines = idle.until_closed(Duration::from_secs(10));
        (lines, logged_in.elapsed())
    });
    // A connection that keeps asking stays open past both timeouts.
    let mut busy = server.login(ALICE, ALICE_PASSWORD);
    for id in 0..8 {
        assert_ok(&busy.call(json!({"id": id, "op": "ping"})));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (lines, after) = anon.join().unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(code(&lines[0]), "TIMEOUT");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_secs(3),
        "{after:?}"
    );
    let (lines, after) = idle.join().unwrap();
    assert_eq!(code(&lines[0]), "TIMEOUT");
    assert!(
        after >= Duration::from_millis(1500) && after < Duration::from_secs(4),
        "{after:?}"
    );
    assert_ok(&busy.call(json!({"id": "last", "op": "ping"})));
}

/// N1: hundreds of silent or half-talking connections, and a client that
/// logged in first is served meanwhile; they are all closed on time.
#[test]
fn hundreds_of_idle_connections_are_closed_on_time_while_others_are_served() {
    let server = Server::start(&["--auth-timeout", "1s"]);
    let mut served = server.login(ALICE, ALICE_PASSWORD);
    let opened = Instant::now();
    let mut idle: Vec<Client> = (0..300).map(|_| server.connect()).collect();
    for (i, c) in idle.iter_mut().enumerate() {
        if i % 2 == 0 {
            c.send_raw(br#"{"id":1,"op":"qu"#);
        }
    }
    for id in 0..10 {
        let started = Instant::now();
        assert_ok(&served.query(id, "WHOAMI;"));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    for c in &mut idle {
        let lines = c.until_closed(Duration::from_secs(10));
        assert_eq!(code(&lines[0]), "TIMEOUT");
    }
    let took = opened.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_ok(&served.query(99, "WHOAMI;"));
}

#[test]
fn a_query_past_its_budget_times_out_and_cancel_stops_one() {
    let server = Server::start(&["--query-timeout", "1s"]);
    let mut c = server.login(ALICE, ALICE_PASSWORD);
    tasks(&mut c, 100);
    // 10⁸ rows: minutes of work.
    let slow = "MATCH (a:task), (b:task), (c:task), (d:task) RETURN count(*)";
    let started = Instant::now();
    let r = c.query(1, slow);
    let took = started.elapsed();
    assert_eq!(code(&r), "TIMEOUT");
    assert!(took < Duration::from_secs(2), "{took:?}");

    // Cancel the running query and, in the same breath, one queued behind
    // it; answers come in request order.
    c.send(json!({"id": 2, "op": "query", "text": slow}));
    c.send(json!({"id": 3, "op": "query", "text": "CREATE THING task \"never\" {};"}));
    std::thread::sleep(Duration::from_millis(200));
    c.send(json!({"id": 4, "op": "cancel", "target": 3}));
    c.send(json!({"id": 5, "op": "cancel", "target": 2}));
    let r = c.recv();
    // CANCELLED, not TIMEOUT: it stopped before its 1 s budget ran out.
    assert_eq!((r["id"].clone(), code(&r)), (json!(2), "CANCELLED".into()));
    let r = c.recv();
    assert_eq!((r["id"].clone(), code(&r)), (json!(3), "CANCELLED".into()));
    for id in [4, 5] {
        let r = c.recv();
        assert_eq!(r["id"], json!(id));
        assert_eq!(r["cancelled"], json!(1), "{r}");
    }
    let r = c.call(json!({"id": 6, "op": "cancel", "target": 2}));
    assert_eq!(code(&r), "NOT_FOUND");
    let r = c.query(7, "MATCH (t:task) WHERE t.name = \"never\" RETURN count(*)");
    assert_eq!(r["rows"], json!([[0]]), "{r}");
}

#[test]
fn only_the_platform_owner_may_use_another_org_and_roles_hold_over_the_wire() {
    let server = Server::start(&[]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(1, "USE ORG globex;");
    assert_eq!(code(&r), "FORBIDDEN");
    assert_eq!(r["error"]["statement"], json!(0));
    assert_ok(&alice.query(2, "USE ORG acme; CREATE THING task \"mine\" {};"));
    let mut bob = server.login(BOB, BOB_PASSWORD);
    assert_eq!(code(&bob.query(1, "USE ORG acme;")), "FORBIDDEN");
    let r = bob.query(2, "MATCH (t:task) RETURN count(*)");
    assert_eq!(r["rows"], json!([[0]]), "{r}");
    let mut root = server.login("root", ROOT_PASSWORD);
    let r = root.query(1, "USE ORG acme; MATCH (t:task) RETURN t.name");
    assert_eq!(r["rows"], json!([["mine"]]), "{r}");

    // A customer's session over the wire is held to the customer's rights.
    assert_ok(&alice.query(
        3,
        "CREATE PERSON \"cust@acme.io\" NAME \"C\" ROLE customer PASSWORD \"cust-Secret-222\";",
    ));
    let mut customer = server.login("cust@acme.io", "cust-Secret-222");
    for (id, text) in [
        "CREATE ORG evil NAME \"Evil\";",
        "SET LIMITS ON ORG acme {things: 1};",
        "USE ORG globex;",
        "CREATE PERSON \"e@acme.io\" NAME \"E\" ROLE org_owner;",
        "SHOW USAGE;",
    ]
    .into_iter()
    .enumerate()
    {
        let r = customer.query(id as u64, text);
        assert_eq!(code(&r), "FORBIDDEN", "{text}: {r}");
    }
}

#[test]
fn requests_count_against_the_orgs_api_calls_limit() {
    let server = Server::start(&[]);
    let mut root = server.login("root", ROOT_PASSWORD);
    assert_ok(&root.query(1, "SET LIMITS ON ORG acme {api_calls: 3};"));
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    for id in 0..3 {
        assert_ok(&alice.query(id, "WHOAMI;"));
    }
    // Pings and cancels are not API calls.
    assert_ok(&alice.call(json!({"id": "p", "op": "ping"})));
    let r = alice.query(3, "CREATE THING task \"over\" {};");
    assert_eq!(code(&r), "LIMIT_REACHED");
    let r = root.query(2, "USE ORG acme; MATCH (t:task) RETURN count(*)");
    assert_eq!(r["rows"], json!([[0]]), "{r}");
}

/// acme's stored `api_calls`, as `SHOW USAGE` reads it (what is pending
/// in the server's memory is not there). Root logs in for each read, so
/// the read counts against the platform, not acme.
fn stored_api_calls(server: &Server) -> i64 {
    let mut root = server.login("root", ROOT_PASSWORD);
    let r = root.query(1, "USE ORG acme; SHOW USAGE;");
    let rows = r["rows"].as_array().unwrap_or_else(|| panic!("{r}"));
    rows.iter()
        .find(|row| row[0] == json!("api_calls"))
        .and_then(|row| row[1].as_i64())
        .unwrap_or_else(|| panic!("no api_calls row: {r}"))
}

#[test]
fn counted_api_calls_are_stored_without_a_later_call_and_outlive_a_kill() {
    let mut server = Server::start(&[]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    for id in 0..5 {
        assert_ok(&alice.query(id, "WHOAMI;"));
    }
    // Then acme is quiet: no later call of its carries the count along.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stored_api_calls(&server) < 5 {
        assert!(Instant::now() < deadline, "acme's calls were never stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill();
    server.restart();
    assert_eq!(stored_api_calls(&server), 5);
}

#[test]
fn sigterm_answers_the_request_in_flight_then_exits_0_and_no_secret_is_kept() {
    let mut server = Server::start(&[]);
    // Failed logins with secrets that must not be kept anywhere.
    let mut c = server.connect();
    let r = c.call(auth(1, ALICE, "wrong-Secret-777"));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    let r = c.call(auth(2, "ghost@acme.io", "ghost-Secret-555"));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    let mut root = server.login("root", ROOT_PASSWORD);
    assert_ok(&root.query(1, "CREATE PERSON \"carol@acme.io\" NAME \"Carol\" ROLE org_user IN ORG acme PASSWORD \"carol-Secret-333\";"));
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    tasks(&mut alice, 170);

    // About a second of work (170³ rows), in flight when SIGTERM comes.
    alice.send(json!({"id": 2, "op": "query",
        "text": "MATCH (a:task), (b:task), (c:task) RETURN count(*)"}));
    std::thread::sleep(Duration::from_millis(150));
    server.terminate();
    let r = alice.recv();
    assert_eq!(r["id"], json!(2));
    assert_eq!(r["rows"], json!([[170 * 170 * 170]]), "{r}");
    assert!(alice.until_closed(Duration::from_secs(10)).is_empty());
    let (status, stderr) = server.wait(Duration::from_secs(20));
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&stderr)
    );

    let secrets = [
        ROOT_PASSWORD,
        ALICE_PASSWORD,
        "wrong-Secret-777",
        "ghost-Secret-555",
        "carol-Secret-333",
    ];
    let mut files = Vec::new();
    collect_files(server.data(), &mut files);
    assert!(files.len() > 3, "{files:?}");
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for secret in secrets {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} in {}",
                path.display()
            );
        }
    }
    for secret in secrets {
        assert!(!contains(&stderr, secret.as_bytes()), "{secret} on stderr");
    }
    // What the server left behind is whole: store, usage and indexes.
    server.check();
}

#[test]
fn a_token_logs_in_over_the_wire_and_its_revocation_ends_the_live_session() {
    let mut server = Server::start(&[]);
    let mut alice = server.login(ALICE, ALICE_PASSWORD);
    let r = alice.query(1, "CREATE TOKEN \"ci-bot\";");
    assert_ok(&r);
    let (id, secret) = (
        r["rows"][0][0].as_str().unwrap().to_string(),
        r["rows"][0][1].as_str().unwrap().to_string(),
    );

    let mut bot = server.connect();
    let r = bot.call(json!({"id": 1, "op": "auth", "token": secret}));
    assert_ok(&r);
    assert_eq!(
        (r["org"].clone(), r["role"].clone()),
        (json!("acme"), json!("org_owner"))
    );
    assert_eq!(bot.query(2, "WHOAMI;")["rows"][0][1], json!(ALICE));

    // A tampered token and an unknown one get the same answer.
    let mut tampered = secret.clone().into_bytes();
    let at = id.len() + 5;
    tampered[at] = if tampered[at] == b'a' { b'b' } else { b'a' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = format!("tok_01JAAAAAAAAAAAAAAAAAAAAAAA.{}", "A".repeat(43));
    let answers: Vec<Json> = [tampered.as_str(), unknown.as_str()]
        .iter()
        .map(|t| {
            let r = server
                .connect()
                .call(json!({"id": 1, "op": "auth", "token": t}));
            assert_eq!(code(&r), "NOT_AUTHENTICATED");
            r["error"].clone()
        })
        .collect();
    assert_eq!(answers[0], answers[1]);

    // Revoked by its owner on another connection: the bot's next request
    // is refused and its connection closed; the token logs in no more.
    assert_ok(&alice.query(3, &format!("REVOKE TOKEN \"{id}\";")));
    let r = bot.query(3, "WHOAMI;");
    assert_eq!(code(&r), "NOT_AUTHENTICATED");
    assert!(bot.until_closed(Duration::from_secs(5)).is_empty());
    let r = server
        .connect()
        .call(json!({"id": 1, "op": "auth", "token": secret}));
    assert_eq!(code(&r), "NOT_AUTHENTICATED");

    // The secret is nowhere: not in the data directory, not in the logs.
    server.terminate();
    let (status, stderr) = server.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0));
    let random = &secret[id.len() + 1..];
    let mut files = Vec::new();
    collect_files(server.data(), &mut files);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        assert!(!contains(&bytes, random.as_bytes()), "{}", path.display());
    }
    assert!(!contains(&stderr, random.as_bytes()));
}

/// `onedb connect`: the shell over TCP, as a process with its input piped
/// (password from ONEDB_PASSWORD, or a token file), and as the library
/// shell with its prompt `email@host/org`.
#[test]
fn onedb_connect_runs_the_shell_over_tcp() {
    let server = Server::start(&[]);
    let connect = |args: &[&str], password: Option<&str>, input: &str| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_onedb"));
        command
            .arg("connect")
            .arg(server.addr.to_string())
            .args(args)
            .env_remove("ONEDB_PASSWORD")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(p) = password {
            command.env("ONEDB_PASSWORD", p);
        }
        let mut child = command.spawn().expect("onedb connect");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, out, err) = connect(
        &["--email", ALICE],
        Some(ALICE_PASSWORD),
        "CREATE THING course \"Rust\";\nMATCH (c:course)\n RETURN c.name;\nMATCH (c:cours) RETURN c;\nCREATE TOKEN \"shell\";\n",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("| Rust "), "{out}");
    assert!(out.contains("UNKNOWN_TYPE"), "{out}");
    // The error with its caret under the place, as in the local shell.
    assert!(
        out.contains("at line 1, column 10")
            && out.contains("  MATCH (c:cours) RETURN c\n           ^"),
        "{out}"
    );
    let secret = out
        .split_whitespace()
        .find(|w| w.starts_with("tok_") && w.contains('.'))
        .expect("the token's secret")
        .to_string();

    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{secret}\n")).unwrap();
    let (ok, out, err) = connect(
        &["--token-file", token_file.to_str().unwrap()],
        None,
        "WHOAMI;\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains(ALICE), "{out}");

    let (ok, _, err) = connect(&["--email", ALICE], Some("wrong-password"), "WHOAMI;\n");
    assert!(!ok);
    assert!(err.contains("NOT_AUTHENTICATED"), "{err}");
    assert!(!err.contains("wrong-password"), "{err}");

    // The library shell on a Remote: the prompt names person, host and org.
    let login = onedb::server::client::Login::Password {
        email: "root".into(),
        password: ROOT_PASSWORD.into(),
    };
    let mut remote =
        onedb::server::client::Remote::connect(&server.addr.to_string(), &login).unwrap();
    let mut shown = Vec::new();
    onedb::repl::run(
        &mut remote,
        "USE ORG acme;\nBEGIN;\n".as_bytes(),
        &mut shown,
        true,
    )
    .unwrap();
    let shown = String::from_utf8(shown).unwrap();
    let host = server.addr.to_string();
    assert!(shown.contains(&format!("root@{host}> ")), "{shown}");
    assert!(shown.contains(&format!("root@{host}/acme> ")), "{shown}");
    assert!(shown.contains("inside BEGIN"), "{shown}");
}

fn collect_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The `nc` transcripts of docs/protocol.md, replayed: each ```text block
/// is one connection; every `←` line must match the answer (ids of
/// records and times aside).
#[test]
fn the_protocol_document_transcripts_replay() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md"))
        .expect("docs/protocol.md");
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```text") => current = Some(Vec::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), l) => block.push(l.to_string()),
            (None, _) => {}
        }
    }
    assert!(blocks.len() >= 2, "found {} transcripts", blocks.len());
    let server = Server::start_empty("change-me-please");
    let mut exchanges = 0;
    for block in blocks {
        let mut c = server.connect();
        for line in block {
            if let Some(request) = line.strip_prefix("→ ") {
                c.send_raw(format!("{request}\n").as_bytes());
            } else if let Some(expected) = line.strip_prefix("← ") {
                let expected: Json = serde_json::from_str(expected).expect("a JSON answer");
                assert_eq!(normalized(c.recv()), normalized(expected));
                exchanges += 1;
            }
        }
    }
    assert!(exchanges >= 12, "{exchanges}");
}

/// Record ids, times and statistics vary from run to run.
fn normalized(value: Json) -> Json {
    match value {
        Json::Object(fields) if fields.contains_key("timestamp") => Json::Object(
            fields
                .into_iter()
                .map(|(k, v)| match k.as_str() {
                    "timestamp" => (k, json!("<time>")),
                    _ => (k, normalized(v)),
                })
                .collect(),
        ),
        Json::String(s)
            if ["per_", "thg_", "org_", "evt_"]
                .iter()
                .any(|p| s.starts_with(p)) =>
        {
            json!("<id>")
        }
        Json::Array(items) => Json::Array(items.into_iter().map(normalized).collect()),
        Json::Object(fields) => Json::Object(
            fields
                .into_iter()
                .filter(|(k, _)| k != "stats")
                .map(|(k, v)| (k, normalized(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `--tls-cert`/`--tls-key`: the same protocol inside TLS, with a
/// self-signed certificate made here; a plain-text client gets no answer.
#[test]
fn tls_serves_the_same_protocol_and_nothing_to_plain_text() {
    use std::io::Read;
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = std::net::TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let mut call = |request: Json| -> Json {
        tls.write_all(format!("{request}\n").as_bytes()).unwrap();
        tls.flush().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while byte[0] != b'\n' {
            tls.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        serde_json::from_slice(&line).unwrap()
    };
    assert_ok(&call(json!({"id": 1, "op": "ping"})));
    assert_ok(&call(auth(2, ALICE, ALICE_PASSWORD)));
    let r = call(json!({"id": 3, "op": "query", "text": "WHOAMI;"}));
    assert_eq!(r["rows"][0][1], json!(ALICE), "{r}");

    let mut plain = server.connect();
    plain.send(json!({"id": 1, "op": "ping"}));
    plain
        .stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.stream.read_to_end(&mut answer);
    assert!(!contains(&answer, b"\"ok\""), "{answer:?}");
}

/// Limits the server cannot work with stop it before it listens.
#[test]
fn a_limit_the_server_cannot_work_with_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--max-connections", "0"][..],
        &["--idle-timeout", "9000h"],
        &["--query-timeout", "soon"],
        &["--subscription-queue", "0"],
        &["--subscription-queue", "10000001"],
        &["--max-subscriptions", "0"],
        &["--tls-cert", "/nonexistent/cert.pem"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_onedb"))
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} listened");
        assert!(!out.stderr.is_empty(), "{args:?} said nothing");
    }
}
