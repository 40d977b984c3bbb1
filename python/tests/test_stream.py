"""stream() and fetch_all(): one record per input, failures included, under the engine's limits."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

import outofsync
from outofsync import ErrorKind


def unique_host() -> str:
    return f"h{uuid.uuid4().hex[:12]}.test"


async def test_a_stream_of_urls_gives_one_ok_record_per_input(server):
    urls = [server.url(f"/json?id={n}") for n in range(200)]
    seen = []
    async for rec in outofsync.stream(urls, concurrency=16):
        assert rec.ok and rec.status == 200 and rec.attempts == 1
        assert rec.json()["id"] == int(rec.url.rsplit("=", 1)[1])
        assert rec.url == urls[rec.i]
        seen.append(rec.i)
    assert sorted(seen) == list(range(200))


async def test_failures_are_records_with_a_kind_and_a_message(server):
    inputs = [
        server.url("/status/404"),
        "not-a-url",
        "ftp://example.test/x",
        "http://127.0.0.1:1/refused",
        server.url("/json"),
    ]
    recs = await outofsync.fetch_all(inputs, retries=0, ordered=True)
    assert [r.i for r in recs] == [0, 1, 2, 3, 4]
    status, bad, scheme, refused, fine = recs
    assert not status.ok and status.status == 404 and status.error.kind is ErrorKind.HTTP_STATUS
    assert status.error.kind == "http_status" and "404" in status.error.message
    assert bad.error.kind is ErrorKind.INVALID_REQUEST and bad.attempts == 0 and bad.url is None
    assert "relative URL" in bad.error.message
    assert scheme.error.kind is ErrorKind.INVALID_REQUEST and "only http and https" in scheme.error.message
    assert refused.error.kind is ErrorKind.CONNECT and refused.attempts == 1
    assert fine.ok and fine.error is None
    with pytest.raises(outofsync.HTTPStatusError) as caught:
        status.raise_for_status()
    assert caught.value.status == 404 and caught.value.record is status
    with pytest.raises(outofsync.RequestError) as caught:
        refused.raise_for_status()
    assert caught.value.kind is ErrorKind.CONNECT
    assert fine.raise_for_status() is fine


async def test_ordered_gives_input_order_and_iterables_of_every_kind_are_read(server):
    urls = [server.url(f"/delay/{(7 * n) % 40}?n={n}") for n in range(60)]

    def generator():
        yield from urls

    async def async_generator():
        for url in urls:
            await asyncio.sleep(0)
            yield url

    for inputs in (urls, tuple(urls), generator(), async_generator()):
        recs = await outofsync.fetch_all(inputs, concurrency=8, ordered=True)
        assert [r.i for r in recs] == list(range(60))
        assert all(r.ok for r in recs)


async def test_request_dicts_and_request_objects_carry_method_body_id_and_meta(server):
    inputs = [
        {"url": server.url("/anything"), "method": "POST", "json": {"a": 1}, "id": "u-1", "team": "x"},
        outofsync.Request(server.url("/anything"), "PUT", headers={"X-Key": "k"}, json=[1, 2], id=7, meta={"m": 1}),
        outofsync.Request("nope://", "GET"),
        {"url": 5},
    ]
    first, second, bad, bad_dict = await outofsync.fetch_all(inputs, ordered=True)
    echo = first.json()
    assert echo["method"] == "POST" and echo["json"] == {"a": 1}
    assert first.id == "u-1" and first.meta == {"team": "x"}
    echo = second.json()
    assert echo["method"] == "PUT" and echo["headers"]["x-key"] == "k"
    assert second.id == 7 and second.meta == {"m": 1}
    assert bad.error.kind is ErrorKind.INVALID_REQUEST
    assert bad_dict.error.kind is ErrorKind.INVALID_REQUEST and '"url" must be a string' in bad_dict.error.message


async def test_a_wrong_type_is_a_type_error_that_names_the_item(server):
    with pytest.raises(TypeError, match=r"inputs\[2\] has type int \(42\)"):
        outofsync.stream([server.url("/json"), {"url": server.url("/json")}, 42])
    with pytest.raises(TypeError, match="wrap a single URL in a list"):
        outofsync.stream(server.url("/json"))

    def generator():
        yield server.url("/json")
        yield None

    with pytest.raises(TypeError, match=r"inputs\[1\] has type NoneType"):
        await outofsync.fetch_all(generator())

    async def async_generator():
        yield server.url("/json")
        yield b"http://x"

    with pytest.raises(TypeError, match=r"inputs\[1\] has type bytes"):
        await outofsync.fetch_all(async_generator())


async def test_bad_options_are_refused_with_the_option_named():
    with pytest.raises(ValueError, match="rate"):
        outofsync.stream([], rate="fast")
    with pytest.raises(ValueError, match="jq"):
        outofsync.stream([], jq=".items[")
    with pytest.raises(TypeError, match='unknown option "concurency"' ):
        outofsync.stream([], concurency=3)
    with pytest.raises(ValueError, match="-c"):
        outofsync.stream([], concurrency=0)
    with pytest.raises(ValueError, match="need an output"):
        outofsync.stream([], resume=True)


async def test_retries_and_retry_after_are_the_engines(server):
    key = uuid.uuid4().hex
    recs = await outofsync.fetch_all([server.url(f"/flaky/2?key={key}")], retries=3, backoff=0.01)
    assert recs[0].ok and recs[0].attempts == 3
    recs = await outofsync.fetch_all([server.url(f"/flaky/5?key={key}x")], retries=1, backoff=0.01)
    assert not recs[0].ok and recs[0].attempts == 2 and recs[0].status == 503

    # Two requests against a bucket of one per second: the second gets 429 + Retry-After: 1.
    rps = 1
    urls = [server.url(f"/ratelimit?rps={rps}&n={n}") for n in range(2)]
    recs = await outofsync.fetch_all(urls, retries=2, backoff=0.01, ordered=True)
    assert all(r.ok for r in recs)
    retried = [r for r in recs if r.attempts == 2]
    assert len(retried) == 1 and retried[0].elapsed_ms >= 900, [(r.attempts, r.elapsed_ms) for r in recs]


async def test_per_host_limits_hold_on_the_server(server):
    hosts = [unique_host(), unique_host()]
    urls = [server.url(f"/delay/100?n={n}", host=host) for host in hosts for n in range(12)]
    recs = await outofsync.fetch_all(urls, concurrency=16, per_host=2, resolve=server.resolve(*hosts))
    assert all(r.ok for r in recs) and len(recs) == 24
    by_host = server.stats()["by_host"]
    for host in hosts:
        seen = by_host[f"{host}:{server.port}"]
        assert seen["requests"] == 12 and seen["max_in_flight"] == 2, seen


async def test_jq_filters_and_kept_headers(server):
    urls = [server.url(f"/json?id={n}") for n in range(5)]
    recs = await outofsync.fetch_all(urls, jq="{id}", keep_headers=["content-type"], ordered=True)
    assert [r.json() for r in recs] == [{"id": n} for n in range(5)]
    assert recs[0].headers == {"content-type": "application/json"}
    assert recs[0].body == b'{"id":0}' and recs[0].is_json
    plain = (await outofsync.fetch_all(urls[:1]))[0]
    assert plain.headers is None


async def test_batches_are_bounded_by_bytes_not_by_count(server):
    urls = [server.url(f"/json?size=65536&n={n}") for n in range(40)]
    stream = outofsync.stream(urls, concurrency=8, batch_bytes=150_000)
    sizes = []
    async for batch in stream.batches():
        sizes.append(len(batch))
        assert sum(len(r.body) for r in batch[:-1]) < 150_000
    assert sum(sizes) == 40 and max(sizes) <= 3, sizes
    small = [server.url(f"/json?n={n}") for n in range(300)]
    big_batches = [len(b) async for b in outofsync.stream(small, concurrency=64).batches()]
    assert max(big_batches) > 3, "small records come many to a batch"


async def test_json_takes_another_parser_and_to_json_is_the_record_line(server):
    rec = (await outofsync.fetch_all([server.url("/json?id=3")]))[0]
    assert rec.json(loads=lambda text: ("parsed", len(text)))[0] == "parsed"
    line = json.loads(rec.to_json())
    assert line["i"] == 0 and line["ok"] is True and line["json"]["id"] == 3
    assert rec.to_dict() == line
    assert "status=200" in repr(rec)


async def test_an_endless_generator_is_read_only_as_fast_as_records_are(server):
    pulled = 0

    def endless():
        nonlocal pulled
        while True:
            pulled += 1
            yield server.url(f"/json?id={pulled}")

    n = 0
    async for rec in outofsync.stream(endless(), concurrency=4):
        assert rec.ok
        n += 1
        if n == 300:
            break
    # Ahead of the records read: the feed (64 inputs here), the requests the engine admits
    # (4 × concurrency) and their records, and one batch. An endless input is fine.
    assert 300 <= pulled <= 300 + 64 + 16 + 16 + 64, pulled
