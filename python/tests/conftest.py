"""Fixtures: a real `onedb serve` for the TCP door, a fresh data directory
for the embedded one, and `door`, which runs a test once through each."""

from __future__ import annotations

import itertools
import os
import pathlib
import signal
import subprocess
import sys

import pytest

import onedb

ROOT_PASSWORD = "python-tests-root-pass"
REPO = pathlib.Path(__file__).resolve().parents[2]


def onedb_binary() -> str:
    """`$ONEDB_BIN`, else the release build in `$CARGO_TARGET_DIR` (or the
    repository's target/)."""
    if os.environ.get("ONEDB_BIN"):
        return os.environ["ONEDB_BIN"]
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = target / "release" / "onedb"
    if not binary.exists():
        raise RuntimeError(f"no onedb binary at {binary}: run cargo build --release or set ONEDB_BIN")
    return str(binary)


class Server:
    """`onedb serve` on a free port, stopped by its pid."""

    def __init__(self, data: pathlib.Path, *flags: str) -> None:
        env = dict(os.environ, ONEDB_ROOT_PASSWORD=ROOT_PASSWORD)
        self.process = subprocess.Popen(
            [onedb_binary(), "--data", str(data), "--durability", "relaxed", "serve",
             "--listen", "127.0.0.1:0", "--query-timeout", "60s", *flags],
            stdout=subprocess.PIPE, stderr=sys.stderr, env=env, text=True,
        )
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"onedb serve did not start: {line!r}")
        self.address = line.split()[-1]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def root(self, **kw) -> onedb.Connection:
        return onedb.connect(self.address, email="root", password=ROOT_PASSWORD, **kw)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("served"))
    yield s
    s.stop()


_orgs = itertools.count(1)


class Door:
    """One way in, as root inside a fresh org: `client` for the test's
    queries, `another()` for a second independent session in the same org."""

    def __init__(self, kind: str, client, another, slug: str) -> None:
        self.kind = kind
        self.client = client
        self._another = another
        self.slug = slug
        self._opened = [client]

    def another(self):
        c = self._another()
        self._opened.append(c)
        return c

    def close(self) -> None:
        for c in reversed(self._opened):
            c.close()


@pytest.fixture(params=["embedded", "tcp"])
def door(request, tmp_path):
    slug = f"org{next(_orgs)}"
    if request.param == "embedded":
        db = onedb.open(tmp_path / "data", durability="relaxed")

        def another():
            s = db.session()
            s.query("USE ORG " + slug)
            return s

        client = db
    else:
        srv = request.getfixturevalue("server")
        client = srv.root()

        def another():
            return srv.root(org=slug)

    client.query(f'CREATE ORG {slug} NAME "Test {slug}" PLAN enterprise')
    client.query("USE ORG " + slug)
    d = Door(request.param, client, another, slug)
    yield d
    d.close()
