"""Every ```python block of docs/python.md runs, in a new directory, with
the TCP examples pointed at the test server."""

from __future__ import annotations

import re

import pytest

from conftest import REPO, ROOT_PASSWORD

DOC = REPO / "docs" / "python.md"


def blocks():
    text = DOC.read_text()
    found = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(found) >= 6, f"docs/python.md has only {len(found)} python examples"
    return found


@pytest.mark.parametrize("index", range(len(blocks())))
def test_docs_example_runs(index, tmp_path, server, monkeypatch):
    code = blocks()[index]
    code = code.replace("127.0.0.1:7606", server.address).replace("change-me-please", ROOT_PASSWORD)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"docs/python.md example {index + 1}", "exec"), {"__name__": f"docs_example_{index}"})
