"""Fixtures: the built-in API (`outofsync serve`) on a free port of 127.0.0.1, for the session.

The server is the real `outofsync` binary, the one users run: the Python package carries no server
of its own, and its tests talk to the same program as the Rust integration tests. It is found as
$OUTOFSYNC_BIN, or in the workspace's target directory, or built with cargo.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def outofsync_binary() -> str:
    explicit = os.environ.get("OUTOFSYNC_BIN")
    if explicit:
        return explicit
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("release", "debug"):
        candidate = target / profile / "outofsync"
        if candidate.exists():
            return str(candidate)
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("the tests need the outofsync binary: set OUTOFSYNC_BIN or run cargo build")
    subprocess.run([cargo, "build", "--bin", "outofsync"], cwd=REPO, check=True)
    return str(target / "debug" / "outofsync")


class Server:
    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base
        self.port = int(base.rsplit(":", 1)[1])

    def url(self, path: str, host: str | None = None) -> str:
        base = self.base if host is None else f"http://{host}:{self.port}"
        return base + path

    def resolve(self, *hosts: str) -> list[str]:
        """`resolve=` entries that send these made-up host names to the server."""
        return [f"{host}:{self.port}:127.0.0.1" for host in hosts]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.base + "/stats", timeout=10) as response:
            return json.load(response)


@pytest.fixture(scope="session")
def server():
    process = subprocess.Popen(
        [outofsync_binary(), "serve", "--port", "0", "--grace", "1s"],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline().strip()
    if not line.startswith("listening on "):
        process.kill()
        pytest.fail(f"outofsync serve said {line!r}")
    yield Server(process, line.removeprefix("listening on "))
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def run_python():
    """Runs a Python program in a fresh interpreter; returns the completed process."""

    def run(code: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, **kwargs
        )

    return run
