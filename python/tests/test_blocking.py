"""fetch_batch: the engine without an event loop, for scripts and Spark/Ray/Dask workers."""

from __future__ import annotations

import asyncio
import threading

import pytest

import outofsync


def test_fetch_batch_returns_every_record(server):
    urls = [server.url(f"/json?id={n}") for n in range(500)] + ["bad"]
    recs = outofsync.fetch_batch(urls, concurrency=32, ordered=True)
    assert [r.i for r in recs] == list(range(501))
    assert all(r.ok for r in recs[:500]) and recs[500].error.kind == "invalid_request"
    assert outofsync.fetch_batch(iter([server.url("/json")]))[0].ok
    assert outofsync.fetch_batch([]) == []


def test_fetch_batch_works_from_threads_and_beside_event_loops(server):
    results: list[int] = []

    def worker(n: int) -> None:
        recs = outofsync.fetch_batch([server.url(f"/json?id={n}&k={k}") for k in range(50)])
        results.append(sum(r.ok for r in recs))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert results == [50, 50, 50, 50]

    async def inside():
        return await outofsync.fetch_all([server.url("/json")])

    # Several event loops, one after the other, in one process (as pytest-asyncio makes them).
    for _ in range(3):
        assert asyncio.run(inside())[0].ok


def test_fetch_batch_refuses_async_iterables():
    async def gen():
        yield "http://x.test/"

    with pytest.raises(TypeError, match="fetch_all"):
        outofsync.fetch_batch(gen())
