#!/usr/bin/env python3
"""The note's aiohttp snippet, scaled to N requests with C in flight under a semaphore.

    aiohttp_client.py URL N C

Each request does what the note does, `await response.json()`; the parsed document is then
dropped (not gathered), so memory reflects requests in flight rather than results kept.
Prints `ok=… failed=…` and exits 1 if any request failed.
"""
import asyncio
import sys

import aiohttp


async def fetch_data(session, url):
    async with session.get(url) as response:
        response.raise_for_status()
        return await response.json()


async def main(url, n, c):
    semaphore = asyncio.Semaphore(c)
    ok = failed = 0

    async def one():
        nonlocal ok, failed
        async with semaphore:
            try:
                await fetch_data(session, url)
                ok += 1
            except Exception as e:  # a benchmark counts failures instead of stopping
                failed += 1
                if failed == 1:
                    print(f"first failure: {e!r}", file=sys.stderr)

    # aiohttp's connector allows 100 connections by default; let the semaphore be the limit.
    connector = aiohttp.TCPConnector(limit=c)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one() for _ in range(n)))
    return ok, failed


if __name__ == "__main__":
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ok, failed = asyncio.run(main(url, n, c))
    print(f"ok={ok} failed={failed}")
    sys.exit(1 if failed else 0)
