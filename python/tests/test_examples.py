"""The examples of the package, run as a user runs them, against `outofsync serve`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)


def test_the_notes_snippet_prints_the_data(server):
    done = run(str(EXAMPLES / "fetch_data.py"), server.url("/json?id=5"))
    assert done.returncode == 0, done.stderr
    assert "'id': 5" in done.stdout
    done = run(str(EXAMPLES / "fetch_data.py"), "http://127.0.0.1:1/data")
    assert done.returncode == 1 and "connect" in done.stderr and "Traceback" not in done.stderr


def test_pulling_ten_thousand_ids(server):
    done = run(str(EXAMPLES / "pull_ids.py"), server.base, "10000")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("10000 rows, 0 failed"), done.stdout


def test_the_dlt_resource_lands_every_user_in_duckdb(server, tmp_path):
    pytest.importorskip("dlt")
    database = tmp_path / "users.duckdb"
    env = dict(os.environ, RUNTIME__DLTHUB_TELEMETRY="false")
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "dlt_users.py"), server.base, "3000", str(database)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "{'users': 3000, 'distinct_ids': 3000}" in done.stdout, done.stdout
    with duckdb.connect(str(database), read_only=True) as db:
        assert db.execute("SELECT count(*), min(id), max(id) FROM api.users").fetchone() == (3000, 0, 2999)
