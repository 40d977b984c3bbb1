#!/usr/bin/env python3
"""The Python front of outofsync on the note's workload: N requests of URL, C in flight.

    outofsync_py_client.py MODE URL N C

    bulk       async for rec in outofsync.stream(urls, concurrency=C): rec.json()  (every body
               becomes Python objects, as the note's `await response.json()` makes them)
    raw        the same, keeping rec.body (bytes) and parsing nothing
    jq         the same with jq='.items | length' (the body reduced in Rust), then rec.json()
    per-call   the note's loop: a semaphore of C, one gather, `async with session.get(url) as
               response: await response.json()` on an outofsync.Session

Prints `ok=… failed=…` like aiohttp_client.py and exits 1 if any request failed.
"""
import asyncio
import sys

import outofsync


async def bulk(url, n, c, mode):
    ok = failed = 0
    options = {"concurrency": c, "retries": 0}
    if mode == "jq":
        options["jq"] = ".items | length"
    async for batch in outofsync.stream([url] * n, **options).batches():
        for rec in batch:
            if rec.ok:
                if mode == "raw":
                    rec.body
                else:
                    rec.json()
                ok += 1
            else:
                failed += 1
                if failed == 1:
                    print(f"first failure: {rec.error}", file=sys.stderr)
    return ok, failed


async def per_call(url, n, c):
    semaphore = asyncio.Semaphore(c)
    ok = failed = 0

    async def one(session):
        nonlocal ok, failed
        async with semaphore:
            try:
                async with session.get(url) as response:
                    response.raise_for_status()
                    await response.json()
                ok += 1
            except Exception as e:  # a benchmark counts failures instead of stopping
                failed += 1
                if failed == 1:
                    print(f"first failure: {e!r}", file=sys.stderr)

    async with outofsync.Session(concurrency=c, retries=0) as session:
        await asyncio.gather(*(one(session) for _ in range(n)))
    return ok, failed


if __name__ == "__main__":
    mode, url, n, c = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mode == "per-call":
        ok, failed = asyncio.run(per_call(url, n, c))
    else:
        ok, failed = asyncio.run(bulk(url, n, c, mode))
    print(f"ok={ok} failed={failed}")
    sys.exit(1 if failed else 0)
