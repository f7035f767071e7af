"""The package's behaviour, run once through each door (`door` fixture:
embedded and TCP) unless a test is about one door only."""

from __future__ import annotations

import array
import asyncio
import datetime
import math
import threading
import time

import numpy as np
import pytest

import onedb
from onedb import _errors

from conftest import ROOT_PASSWORD


def tasks(client, n: int) -> None:
    """`n` task things in one commit."""
    body = "".join(f'CREATE THING task "t{i}" {{}};' for i in range(n))
    client.query("BEGIN;" + body + "COMMIT;")


#: Cross product of 4 × 45 tasks: about 4 million rows to count, long
#: enough that two runs can overlap and a cancel finds it running.
LONG = "MATCH (a:task), (b:task), (c:task), (d:task) RETURN count(*)"
LONG_TASKS = 45


def test_query_returns_columns_rows_and_stats(door):
    c = door.client
    made = c.query('CREATE THING course "Rust" {level: "beginner", price: 49}')
    assert made.columns == ["id"]
    cid = made.value()
    assert isinstance(cid, str) and cid.startswith("thg_")
    r = c.query("MATCH (c:course) WHERE c.name = $n RETURN c.id, c.name, c.properties.price, c.createdAt", n="Rust")
    assert r.columns == ["c.id", "c.name", "c.properties.price", "c.createdAt"]
    assert r.rows[0][:3] == [cid, "Rust", 49]
    assert isinstance(r.rows[0][3], int) and r.rows[0][3] > 1_600_000_000_000
    assert r.dicts()[0]["c.name"] == "Rust"
    assert r.stats["rows"] == 1 and isinstance(r.stats["micros"], int)
    assert len(r) == 1 and list(r) == r.rows
    node = c.query("MATCH (c:course) RETURN c").rows[0][0]
    assert node["id"] == cid and node["properties"] == {"level": "beginner", "price": 49}


def test_several_statements_answer_the_last(door):
    r = door.client.query('LET $x = CREATE THING course "A" {}; MATCH (c:course) WHERE c.id = $x RETURN c.name')
    assert r.rows == [["A"]]


@pytest.mark.parametrize(
    "hostile",
    [
        'x"; DELETE $me; --',
        '" RETURN 1; USE ORG other; "',
        "$n {} ]) RETURN *",
        '\\" -- comment',
        "🦀 */ /* {{x}}",
    ],
)
def test_parameters_that_contain_oql_stay_data(door, hostile):
    c = door.client
    tid = c.query("CREATE THING course $name {note: $name}", name=hostile).value()
    r = c.query("MATCH (c:course) WHERE c.name = $name RETURN c.id, c.name, c.properties.note", name=hostile)
    assert r.rows == [[tid, hostile, hostile]]
    assert c.query("MATCH (c:course) RETURN count(c)").value() == 1
    assert c.query("WHOAMI").dicts()[0]["org"] == door.slug


def test_parameter_values(door):
    c = door.client
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.timezone.utc)
    tid = c.query(
        "CREATE THING course \"p\" {when: $when, naive: $naive, day: $day, t: $t, m: $m, b: $b, none: $none, big: $big, f: $f}",
        when=when,
        naive=when.replace(tzinfo=None),
        day=datetime.date(2026, 1, 2),
        t=(1, "two"),
        m={"k": [1, 2.5]},
        b=True,
        none=None,
        big=2**63 - 1,
        f=np.float32(0.5),
    ).value()
    props = c.query("MATCH (c:course) WHERE c.id = $id RETURN c.properties", id=tid).value()
    ms = 1767323045678
    assert props["when"] == ms and props["naive"] == ms
    assert props["day"] == ms - (3 * 3600 + 4 * 60 + 5) * 1000 - 678
    assert props["t"] == [1, "two"] and props["m"] == {"k": [1, 2.5]}
    assert props["b"] is True and props["big"] == 2**63 - 1 and props["f"] == 0.5
    assert "none" not in props or props["none"] is None


@pytest.mark.parametrize("bad", [2**64, float("nan"), float("inf"), object(), {1: "x"}, np.zeros((2, 2))])
def test_parameters_the_engine_cannot_take(door, bad):
    with pytest.raises(onedb.InvalidArgument) as e:
        door.client.query("MATCH (c:course) WHERE c.name = $x RETURN c", x=bad)
    assert e.value.code == "INVALID_ARGUMENT"


def test_every_error_code_maps_to_its_exception():
    codes = [
        "PARSE_ERROR", "UNKNOWN_TYPE", "NOT_AUTHENTICATED", "FORBIDDEN", "LIMIT_REACHED",
        "INVALID_TRANSITION", "NOT_FOUND", "CONFLICT", "TIMEOUT", "CANCELLED", "TOO_LARGE",
        "INVALID_ARGUMENT", "CORRUPTION", "IO_ERROR", "OUTCOME_UNKNOWN",
    ]
    assert sorted(onedb.CODES) == sorted(codes)
    classes = set()
    for code in codes:
        e = _errors.make(code, "m", {"line": 1, "col": 2})
        assert type(e) is onedb.CODES[code] and isinstance(e, onedb.Error)
        assert e.code == code == type(e).code and e.message == "m" and (e.line, e.col) == (1, 2)
        assert getattr(onedb, type(e).__name__) is type(e)
        classes.add(type(e))
    assert len(classes) == len(codes)
    assert type(_errors.make("SOMETHING_NEW", "m")) is onedb.Error


#: A statement (after a setup) and the code it fails with, through either door.
FAILURES = [
    ("", "MATCH (c:course RETURN c", "PARSE_ERROR"),
    ("", "MATCH (c:cours) RETURN c", "UNKNOWN_TYPE"),
    ("", "COMMIT", "INVALID_ARGUMENT"),
    ("", "USE ORG no_such_org", "NOT_FOUND"),
    ('CREATE ORG dup NAME "Dup" PLAN enterprise', 'CREATE ORG dup NAME "Dup" PLAN enterprise', "CONFLICT"),
    ('LET $c = CREATE THING course "c" {{}}', "ARCHIVE $c; PUBLISH $c", "INVALID_TRANSITION"),
    ("SET LIMITS ON ORG {org} {{things: 1}}", 'CREATE THING course "a" {}; CREATE THING course "b" {}', "LIMIT_REACHED"),
]


@pytest.mark.parametrize("setup, statement, code", FAILURES)
def test_statement_errors_raise_their_class(door, setup, statement, code):
    c = door.client
    if "dup" in setup:
        setup = setup.replace("dup", door.slug + "dup")
        statement = statement.replace("dup", door.slug + "dup")
    if setup:
        c.query(setup.format(org=door.slug))
    with pytest.raises(onedb.Error) as e:
        c.query(statement)
    assert type(e.value) is onedb.CODES[code], e.value
    assert e.value.code == code and e.value.message


def test_forbidden_for_a_person_without_the_right(door):
    c = door.client
    c.query('CREATE PERSON "cust@x.io" NAME "C" ROLE customer PASSWORD "cust-password-1"')
    if door.kind == "embedded":
        other = c.session(as_email="cust@x.io")
    else:
        other = onedb.connect(c.address, email="cust@x.io", password="cust-password-1")
    with other:
        with pytest.raises(onedb.Forbidden):
            other.query('CREATE THING course "no" {}')


def test_parse_error_points_at_its_statement(door):
    with pytest.raises(onedb.ParseError) as e:
        door.client.query("WHOAMI;\nMATCH (c:course RETURN c")
    assert e.value.statement == 1 and e.value.line == 2 and e.value.col > 1


def test_numpy_embeddings_round_trip(door):
    c = door.client
    rng = np.random.default_rng(7)
    t = c.query('CREATE THING lesson "L" {}').value()
    vectors = {
        "f32": rng.standard_normal(384).astype(np.float32),
        "f64": rng.standard_normal(384),
        "strided": rng.standard_normal(768).astype(np.float32)[::2],
        "array": array.array("f", rng.standard_normal(384).astype(np.float32).tolist()),
        "list": [float(x) for x in rng.standard_normal(384).astype(np.float32)],
    }
    for label, v in vectors.items():
        c.query("CREATE KNOWLEDGE CHUNK $text EMBEDDING $v FOR $t", text=label, v=v, t=t)
    for label, v in vectors.items():
        r = c.query("SEARCH KNOWLEDGE NEAREST $q K 1 RETURN text, embedding, score", q=v)
        text, back, score = r.rows[0]
        assert text == label
        assert np.array_equal(np.asarray(back, dtype=np.float32), np.asarray(v, dtype=np.float32))
        assert math.isclose(score, 1.0, abs_tol=1e-5)


def test_query_many_answers_in_order(door):
    c = door.client
    results = c.query_many([f'CREATE THING course "c{i}" {{}}' for i in range(100)])
    assert len(results) == 100 and all(r.value().startswith("thg_") for r in results)
    names = c.query_many([("MATCH (c:course) WHERE c.name = $n RETURN c.name", {"n": f"c{i}"}) for i in range(100)])
    assert [r.value() for r in names] == [f"c{i}" for i in range(100)]
    with pytest.raises(onedb.UnknownType) as e:
        c.query_many(["WHOAMI", "MATCH (x:nope) RETURN x", "WHOAMI"])
    assert e.value.index == 1


def test_subscriptions_resume_without_gaps(door):
    c = door.client
    sub = c.subscribe('EVENTS WHERE type = "entity_created"')
    for i in range(5):
        c.query(f'CREATE THING course "a{i}" {{}}')
    first = [sub.next(timeout=10) for _ in range(5)]
    assert [e["metadata"]["name"] for e in first] == [f"a{i}" for i in range(5)]
    seqs = [e["seq"] for e in first]
    assert seqs == sorted(seqs)
    last = sub.last_seq
    assert last == seqs[-1]
    sub.close()
    # Committed while nobody listens, and in one commit several at once.
    c.query("BEGIN;" + "".join(f'CREATE THING course "b{i}" {{}};' for i in range(5)) + "COMMIT;")
    c.query('CREATE THING course "b5" {}')
    with c.subscribe('EVENTS WHERE type = "entity_created"', after=last) as again:
        got = [again.next(timeout=10) for _ in range(6)]
        assert [e["metadata"]["name"] for e in got] == [f"b{i}" for i in range(6)]
        c.query('CREATE THING course "live" {}')
        assert again.next(timeout=10)["metadata"]["name"] == "live"
        assert again.next(timeout=0.2) is None


def test_tcp_subscription_reconnects_and_resumes(door):
    if door.kind != "tcp":
        pytest.skip("a connection to lose is the TCP door's")
    c = door.client
    sub = c.subscribe('EVENTS WHERE type = "entity_created"')
    c.query("BEGIN;" + "".join(f'CREATE THING course "a{i}" {{}};' for i in range(4)) + "COMMIT;")
    names = [sub.next(timeout=10)["metadata"]["name"] for _ in range(2)]
    # The connection drops in the middle of a commit's events.
    sub._sock.shutdown(2)
    c.query('CREATE THING course "b" {}')
    names += [sub.next(timeout=10)["metadata"]["name"] for _ in range(3)]
    assert names == ["a0", "a1", "a2", "a3", "b"]
    assert sub.next(timeout=0.3) is None
    sub.close()


def test_the_gil_is_released_while_the_engine_works(door):
    tasks(door.client, LONG_TASKS)
    sessions = [door.another(), door.another()]
    spans = [None, None]
    barrier = threading.Barrier(2)

    def run(i):
        barrier.wait()
        start = time.monotonic()
        count = sessions[i].query(LONG).value()
        spans[i] = (start, time.monotonic(), count)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (s0, e0, n0), (s1, e1, n1) = spans
    assert n0 == n1 == LONG_TASKS**4
    # Each query started before the other one ended: they overlapped in time.
    assert s0 < e1 and s1 < e0, spans


def test_cancel_stops_a_running_query(door):
    tasks(door.client, LONG_TASKS * 2)
    worker = door.another()
    outcome = {}

    def run():
        try:
            outcome["result"] = worker.query(LONG)
        except onedb.Error as e:
            outcome["error"] = e

    t = threading.Thread(target=run)
    t.start()
    # Cancel until it stops: a cancel before the query started is void.
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline:
        worker.cancel()
        t.join(0.1)
    assert isinstance(outcome.get("error"), onedb.Cancelled), outcome
    assert worker.query("WHOAMI").dicts()[0]["org"] == door.slug


def test_context_manager_and_close(door, tmp_path):
    if door.kind == "embedded":
        path = tmp_path / "other"
        with onedb.open(path) as db:
            db.query('CREATE ORG ctx NAME "Ctx" PLAN enterprise')
        # Closed: the directory opens again (RocksDB's lock was released).
        with onedb.open(path) as db:
            assert "ctx" in [r[1] for r in db.query("SHOW ORGS").rows] or db.query("SHOW ORGS").rows
        with pytest.raises(onedb.Error):
            db.query("WHOAMI")
    else:
        with onedb.connect(door.client.address, email="root", password=ROOT_PASSWORD) as conn:
            conn.ping()
        with pytest.raises(onedb.IoError):
            conn.query("WHOAMI")


def test_tcp_login_errors_and_tokens(server):
    with pytest.raises(onedb.NotAuthenticated):
        onedb.connect(server.address, email="root", password="wrong-password")
    with pytest.raises(onedb.InvalidArgument):
        onedb.connect(server.address, email="root")
    with server.root() as root:
        token = root.query('CREATE TOKEN "py"').dicts()[0]["token"]
        with onedb.connect(server.address, token=token) as by_token:
            assert by_token.query("WHOAMI").dicts()[0]["email"] == "root"


def test_tcp_pool_serves_threads(server):
    with server.root() as root:
        root.query('CREATE ORG pooled NAME "Pooled" PLAN enterprise')
    with onedb.pool(server.address, size=4, email="root", password=ROOT_PASSWORD, org="pooled") as pool:
        errors = []

        def work(i):
            try:
                for j in range(10):
                    pool.query("CREATE THING course $n {}", n=f"{i}-{j}")
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert pool.query("MATCH (c:course) RETURN count(c)").value() == 80
        assert len(pool._all) <= 4


def test_aio_twin(server):
    async def main():
        conn = await onedb.aio.connect(server.address, email="root", password=ROOT_PASSWORD)
        await conn.query('CREATE ORG aio NAME "Aio" PLAN enterprise; USE ORG aio')
        sub = await conn.subscribe('EVENTS WHERE type = "entity_created"')
        results = await asyncio.gather(*(conn.query("CREATE THING course $n {}", n=f"c{i}") for i in range(20)))
        assert all(r.value().startswith("thg_") for r in results)
        many = await conn.query_many([("MATCH (c:course) WHERE c.name = $n RETURN c.name", {"n": f"c{i}"}) for i in range(20)])
        assert [r.value() for r in many] == [f"c{i}" for i in range(20)]
        names = set()
        for _ in range(20):
            names.add((await sub.next(timeout=10))["metadata"]["name"])
        assert names == {f"c{i}" for i in range(20)}
        assert await sub.next(timeout=0.2) is None
        # Its connection drops: it connects again and resumes, no gap.
        sub._writer.transport.abort()
        await conn.query('CREATE THING course "after" {}')
        assert (await sub.next(timeout=10))["metadata"]["name"] == "after"
        assert await sub.next(timeout=0.2) is None
        await sub.close()
        with pytest.raises(onedb.UnknownType):
            await conn.query("MATCH (x:nope) RETURN x")
        await conn.close()

    asyncio.run(main())


def test_tcp_over_tls(tmp_path):
    """`tls=` a CA file: the client verifies the server's certificate."""
    import shutil
    import subprocess

    from conftest import Server

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    srv = Server(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        with onedb.connect(srv.address, email="root", password=ROOT_PASSWORD, tls=str(cert)) as conn:
            assert conn.query("WHOAMI").dicts()[0]["email"] == "root"
        with pytest.raises(onedb.IoError):
            onedb.connect(srv.address, email="root", password=ROOT_PASSWORD, tls=True)  # not a trusted CA
    finally:
        srv.stop()


def test_a_subscription_that_falls_behind_resumes_itself(tmp_path):
    """The engine ends a subscription whose queue overflows (CANCELLED with
    last_seq); the iterator subscribes again after it and misses nothing."""
    from onedb._embedded import Events

    made = []

    class Tiny(Events):
        def _subscribe(self, after):
            made.append(after)
            return self._session.subscribe(self._text, self._params, after, queue=2)

    with onedb.open(tmp_path / "data", durability="relaxed") as db:
        db.query('CREATE ORG slow NAME "Slow" PLAN enterprise; USE ORG slow')
        sub = Tiny(db._inner, 'EVENTS WHERE type = "entity_created"', {}, None)
        for i in range(10):
            db.query("CREATE THING course $n {}", n=f"c{i}")
        names = [sub.next(timeout=10)["metadata"]["name"] for _ in range(10)]
        assert names == [f"c{i}" for i in range(10)]
        assert sub.next(timeout=0.2) is None
        assert len(made) >= 2 and made[0] is None, made  # it was ended and made again
        sub.close()


def test_a_memory_store_keeps_nothing_after_close(tmp_path):
    with onedb.open(tmp_path / "data", durability="relaxed", store="memory") as db:
        db.query('CREATE ORG mem NAME "Mem"; USE ORG mem; CREATE THING course "Kept" {}')
        assert db.query("MATCH (t:course) RETURN count(t) AS n").rows == [[1]]
    with onedb.open(tmp_path / "data", durability="relaxed", store="memory") as db:
        with pytest.raises(onedb.Error):
            db.query("USE ORG mem")
    # Nothing was written to the directory's RocksDB either.
    with onedb.open(tmp_path / "data", durability="relaxed") as db:
        with pytest.raises(onedb.Error):
            db.query("USE ORG mem")
    with pytest.raises(onedb.InvalidArgument):
        onedb.open(tmp_path / "other", store="etcd")
