"""Session: the note's aiohttp surface on the engine."""

from __future__ import annotations

import asyncio

import pytest

import outofsync


async def test_the_notes_surface_works_as_with_aiohttp(server):
    async with outofsync.Session() as session:
        async with session.get(server.url("/json?id=9")) as response:
            data = await response.json()
            assert response.status == 200 and response.ok
            assert response.headers["content-type"] == "application/json"
            assert (await response.read()).startswith(b"{") and (await response.text()).startswith("{")
    assert data["id"] == 9


async def test_many_calls_share_the_session_under_its_limits(server):
    async with outofsync.Session(concurrency=8) as session:

        async def one(n: int) -> int:
            async with session.get(server.url(f"/json?id={n}")) as response:
                return (await response.json())["id"]

        ids = await asyncio.gather(*(one(n) for n in range(300)))
    assert ids == list(range(300))


async def test_methods_bodies_params_and_headers_go_out(server):
    async with outofsync.Session() as session:
        response = await session.post(server.url("/anything"), json={"a": [1]}, headers={"X-T": "1"})
        echo = await response.json()
        assert echo["method"] == "POST" and echo["headers"]["x-t"] == "1"
        response = await session.get(server.url("/anything"), params={"q": "a b"})
        assert (await response.json())["args"] == {"q": "a b"}
        response = await session.delete(server.url("/anything"), data="x")
        assert (await response.json())["method"] == "DELETE"


async def test_a_status_is_a_response_and_a_failure_without_one_raises(server):
    async with outofsync.Session(retries=0) as session:
        async with session.get(server.url("/status/503")) as response:
            assert response.status == 503 and not response.ok
            with pytest.raises(outofsync.HTTPStatusError):
                response.raise_for_status()
        with pytest.raises(outofsync.RequestError) as caught:
            await session.get("http://127.0.0.1:1/")
        assert caught.value.kind is outofsync.ErrorKind.CONNECT
        with pytest.raises(outofsync.RequestError, match="invalid_request"):
            await session.get("no scheme")
        record = await session.fetch("http://127.0.0.1:1/")
        assert record.error.kind == "connect"


async def test_a_session_runs_whole_inputs_too(server):
    async with outofsync.Session(concurrency=4) as session:
        urls = [server.url(f"/json?id={n}") for n in range(20)]
        recs = await session.fetch_all(urls, ordered=True)
        assert [r.json()["id"] for r in recs] == list(range(20))
        n = 0
        async for rec in session.stream(urls):
            n += rec.ok
        assert n == 20
