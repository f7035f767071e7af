"""The Python package's three performance ratios, measured in one run
(docs/performance.md, "Python"):

1. embedded point query from Python vs the same statement run from Rust
   in-process (the extension's `_repeat`: bind and execute in a Rust loop);
2. embedded vector top 10 with a 384-d numpy query, the same comparison;
3. TCP, one client, one request at a time: `onedb.connect(...).query` vs a
   minimal raw-socket client sending the same request bytes and reading the
   answer line.

Each pair is measured in short slices taken in turn; the figures are the
medians (rates, and the ratio of each pair of slices), so both sides see the
same machine even when other processes come and go.

    python python/bench/bench.py [--onedb PATH] [--seconds 2.0] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import socket
import statistics
import subprocess
import tempfile
import time

import numpy as np

import onedb

POINT = "MATCH (c:course) WHERE c.id = $id RETURN c.name"
VECTOR = "SEARCH KNOWLEDGE NEAREST $q K 10 RETURN text, score"
THINGS = 900
CHUNKS = 5_000
DIM = 384
PASSWORD = "bench-root-password"


def calibrate(run, slice_seconds: float) -> int:
    """How many calls of `run(n)` take about `slice_seconds`."""
    n = 8
    while True:
        start = time.perf_counter()
        run(n)
        took = time.perf_counter() - start
        if took >= slice_seconds / 4:
            return max(1, int(n * slice_seconds / took))
        n *= 2


def paired(a, b, seconds: float, rounds: int):
    """Rates of `a` and `b` and the median of their ratio, from short
    slices taken in turn, so both see the same machine (other processes
    come and go on a shared one)."""
    slice_seconds = 0.05
    na, nb = calibrate(a, slice_seconds), calibrate(b, slice_seconds)
    ra, rb, ratios = [], [], []
    for _ in range(max(10, int(seconds * rounds / (2 * slice_seconds)))):
        start = time.perf_counter()
        a(na)
        x = na / (time.perf_counter() - start)
        start = time.perf_counter()
        b(nb)
        y = nb / (time.perf_counter() - start)
        ra.append(x)
        rb.append(y)
        ratios.append(x / y)
    return statistics.median(ra), statistics.median(rb), statistics.median(ratios)


def fill(client, rng) -> tuple:
    client.query('CREATE ORG bench NAME "Bench" PLAN enterprise; USE ORG bench')
    body = "".join(f'CREATE THING course "c{i}" {{}};' for i in range(THINGS))
    client.query("BEGIN;" + body + "COMMIT;")
    ids = [r[0] for r in client.query("MATCH (c:course) RETURN c.id").rows]
    anchor = ids[0]
    vectors = rng.standard_normal((CHUNKS, DIM)).astype(np.float32)
    for start in range(0, CHUNKS, 250):
        params = {f"e{i}": vectors[start + i] for i in range(250)}
        body = "".join(f'CREATE KNOWLEDGE CHUNK "k{start + i}" EMBEDDING $e{i} FOR $t;' for i in range(250))
        client.query("BEGIN;" + body + "COMMIT;", t=anchor, **params)
    return ids, vectors


def embedded(args, rng) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as d:
        with onedb.open(pathlib.Path(d) / "data", durability="relaxed") as db:
            ids, vectors = fill(db, rng)
            inner = db._inner
            target = ids[len(ids) // 2]
            py_point, rust_point, point_ratio = paired(
                lambda n: [db.query(POINT, id=target) for _ in range(n)],
                lambda n: inner._repeat(POINT, {"id": target}, n),
                args.seconds, args.rounds,
            )
            q = rng.standard_normal(DIM).astype(np.float32)
            assert len(db.query(VECTOR, q=q)) == 10
            py_vec, rust_vec, vec_ratio = paired(
                lambda n: [db.query(VECTOR, q=q) for _ in range(n)],
                lambda n: inner._repeat(VECTOR, {"q": q}, n),
                args.seconds, args.rounds,
            )
    out["point"] = {"python": py_point, "rust": rust_point, "ratio": point_ratio, "target": 0.5}
    out["vector"] = {"python": py_vec, "rust": rust_vec, "ratio": vec_ratio, "target": 0.7}
    return out


def tcp(args, rng) -> dict:
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, ONEDB_ROOT_PASSWORD=PASSWORD)
        server = subprocess.Popen(
            [args.onedb, "--data", d, "--durability", "relaxed", "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, env=env, text=True,
        )
        try:
            address = server.stdout.readline().split()[-1]
            conn = onedb.connect(address, email="root", password=PASSWORD)
            conn.query('CREATE ORG bench NAME "Bench" PLAN enterprise; USE ORG bench')
            target = conn.query('CREATE THING course "c" {}').value()

            raw = socket.create_connection(address.rsplit(":", 1))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            auth = json.dumps({"id": 0, "op": "auth", "email": "root", "password": PASSWORD}).encode() + b"\n"
            raw.sendall(auth)
            buf = b""
            while not buf.endswith(b"\n"):
                buf += raw.recv(1 << 16)
            raw.sendall(b'{"id":0,"op":"query","text":"USE ORG bench"}\n')
            buf = b""
            while not buf.endswith(b"\n"):
                buf += raw.recv(1 << 16)
            request = json.dumps({"id": 1, "op": "query", "text": POINT, "params": {"id": target}}).encode() + b"\n"

            def bare(n):
                for _ in range(n):
                    raw.sendall(request)
                    line = raw.recv(1 << 16)
                    while not line.endswith(b"\n"):
                        line += raw.recv(1 << 16)

            def ours(n):
                for _ in range(n):
                    conn.query(POINT, id=target)

            py, base, tcp_ratio = paired(ours, bare, args.seconds, args.rounds)
            conn.close()
            raw.close()
        finally:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(30)
    return {"tcp": {"python": py, "raw_socket": base, "ratio": tcp_ratio, "target": 0.7}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", str(pathlib.Path(__file__).resolve().parents[2] / "target"))
    parser.add_argument("--onedb", default=os.environ.get("ONEDB_BIN", os.path.join(target, "release", "onedb")))
    parser.add_argument("--seconds", type=float, default=2.0, help="time per side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    rng = np.random.default_rng(16)
    figures = embedded(args, rng)
    figures.update(tcp(args, rng))
    for name, f in figures.items():
        other = "rust" if "rust" in f else "raw_socket"
        verdict = "met" if f["ratio"] >= f["target"] else "NOT met"
        print(f"{name:7} python {f['python']:>10,.0f}/s  {other} {f[other]:>10,.0f}/s  "
              f"ratio {f['ratio']:.2f} (target ≥ {f['target']:.2f}: {verdict})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
