"""Cancellation, resume after a kill, interpreter exit, fork and several event loops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

import outofsync


def unique_host() -> str:
    return f"h{uuid.uuid4().hex[:12]}.test"


async def until_idle(server, host: str, at_least: int) -> None:
    """Waits (5 s at most) until the server has nothing in flight from `host`, which had at least
    `at_least` requests in flight at once (so they were really under way)."""
    key = f"{host}:{server.port}"
    for _ in range(100):
        seen = server.stats()["by_host"][key]
        if seen["in_flight"] == 0:
            assert seen["max_in_flight"] >= at_least, seen
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"requests still in flight on the server: {seen}")


async def until_in_flight(server, host: str, n: int) -> None:
    """Waits (10 s at most) until the server has `n` requests from `host` in flight."""
    key = f"{host}:{server.port}"
    for _ in range(200):
        seen = server.stats()["by_host"].get(key, {"in_flight": 0})
        if seen["in_flight"] >= n:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"fewer than {n} requests in flight on the server: {seen}")


async def test_wait_for_cancels_a_run_and_its_requests_in_flight(server):
    host = unique_host()
    urls = [server.url(f"/delay/20000?n={n}", host=host) for n in range(10)]
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(outofsync.fetch_all(urls, resolve=server.resolve(host)), 2)
    await until_idle(server, host, at_least=10)


async def test_cancelling_a_session_call_aborts_its_request(server):
    host = unique_host()
    async with outofsync.Session(resolve=server.resolve(host)) as session:
        calls = [asyncio.create_task(session.get(server.url(f"/delay/20000?n={n}", host=host))) for n in range(5)]
        await until_in_flight(server, host, 5)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await until_idle(server, host, at_least=5)
        # The session goes on working after a cancellation.
        assert (await session.fetch(server.url("/json"))).ok


async def test_leaving_a_stream_early_aborts_its_producer(server):
    host = unique_host()
    urls = [server.url("/json", host=host)] + [server.url(f"/delay/20000?n={n}", host=host) for n in range(8)]
    async for rec in outofsync.stream(urls, resolve=server.resolve(host), ordered=False):
        assert rec.ok
        await until_in_flight(server, host, 8)  # the slow requests are all under way
        break  # the stream is dropped here: its requests in flight are cancelled
    await until_idle(server, host, at_least=8)
    host = unique_host()
    urls = [server.url("/json", host=host)] + [server.url(f"/delay/20000?n={n}", host=host) for n in range(8)]
    async with outofsync.stream(urls, resolve=server.resolve(host)) as records:
        assert (await records.__anext__()).ok
        # The first record may come before every slow request is sent; the check below is about
        # requests under way when the block is left.
        await until_in_flight(server, host, 8)
    await until_idle(server, host, at_least=8)


RESUMABLE = """
import sys, outofsync
base, out = sys.argv[1], sys.argv[2]
urls = [f"{base}/delay/{50 if n % 10 else 4000}?n={n}" for n in range(300)]
outofsync.fetch_batch(urls, concurrency=16, output=out, resume=len(sys.argv) > 3)
"""


def test_a_killed_run_resumes_to_exactly_one_record_per_input(server, tmp_path):
    out = tmp_path / "records.jsonl"
    script = tmp_path / "run.py"
    script.write_text(RESUMABLE)
    process = subprocess.Popen([sys.executable, str(script), server.base, str(out)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().count(b"\n") >= 60:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    first = [json.loads(line) for line in out.read_text().splitlines() if line.endswith("}")]
    assert 60 <= len(first) < 300

    urls = [f"{server.base}/delay/{50 if n % 10 else 4000}?n={n}" for n in range(300)]
    # A resume without the flag is refused, and nothing is changed.
    with pytest.raises(outofsync.OutputError, match="already holds records"):
        outofsync.fetch_batch(urls, output=out)
    rest = outofsync.fetch_batch(urls, concurrency=64, output=out, resume=True)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["i"] for r in lines) == list(range(300)), "one record per input, none twice"
    assert len(rest) == 300 - len({r["i"] for r in first})
    assert all(r["ok"] for r in lines)
    assert json.loads((tmp_path / "records.jsonl.manifest.json").read_text())["inputs"] == [{"kind": "program"}]


EXITS = """
import asyncio, sys, threading, outofsync
mode, base, out = sys.argv[1], sys.argv[2], sys.argv[3]
slow = [f"{base}/delay/5000?n={n}" for n in range(20)]
keep = []

async def main():
    if mode == "stream":
        stream = outofsync.stream([base + "/json"] + slow)
        keep.append(stream)
        assert (await stream.__anext__()).ok
    elif mode == "output":
        stream = outofsync.stream([base + "/json"] + slow, output=out, overwrite=True)
        keep.append(stream)
        assert (await stream.__anext__()).ok
    elif mode == "session":
        session = outofsync.Session()
        keep.append(session)
        keep.append(asyncio.ensure_future(session.get(slow[0])))
        assert (await session.get(base + "/json")).ok
        await asyncio.sleep(0.05)

if mode == "thread":
    threading.Thread(target=outofsync.fetch_batch, args=(slow,), daemon=True).start()
    import time; time.sleep(0.1)
else:
    asyncio.run(main())
"""


def test_fifty_interpreter_exits_with_work_in_flight_are_clean(server, tmp_path):
    script = tmp_path / "exits.py"
    script.write_text(EXITS)
    modes = ["stream", "output", "session", "thread"]
    for n in range(50):
        mode = modes[n % 4]
        out = tmp_path / f"out{n}.jsonl"
        done = subprocess.run(
            [sys.executable, str(script), mode, server.base, str(out)], capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, (n, mode, done.stderr)
        assert "Traceback" not in done.stderr and "panicked" not in done.stderr, (mode, done.stderr)


FORK = """
import asyncio, os, sys, outofsync
base = sys.argv[1]
assert outofsync.fetch_batch([base + "/json"])[0].ok  # the parent's engine is running
session = outofsync.Session()
pid = os.fork()
if pid == 0:
    code = 3
    try:
        assert outofsync.fetch_batch([base + "/json?id=1"])[0].json()["id"] == 1
        assert asyncio.run(outofsync.fetch_all([base + "/json?id=2"]))[0].json()["id"] == 2
        try:
            asyncio.run(session.fetch(base + "/json"))
            code = 4
        except RuntimeError as e:
            code = 0 if "before fork" in str(e) else 5
    finally:
        os._exit(code)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, os.waitstatus_to_exitcode(status)
assert asyncio.run(session.fetch(base + "/json")).ok  # the parent's session goes on
print("forked fine")
"""


def test_a_forked_child_gets_an_engine_of_its_own(server, run_python):
    done = run_python(FORK.replace("sys.argv[1]", repr(server.base)), timeout=60)
    assert done.returncode == 0 and "forked fine" in done.stdout, done.stderr


def test_each_event_loop_has_its_own_bridge(server):
    async def use() -> int:
        async with outofsync.Session() as session:
            record = await session.fetch(server.url("/json"))
        recs = await outofsync.fetch_all([server.url(f"/json?id={n}") for n in range(10)])
        return record.ok + sum(r.ok for r in recs)

    for _ in range(5):
        loop = asyncio.new_event_loop()
        try:
            assert loop.run_until_complete(use()) == 11
        finally:
            loop.close()
