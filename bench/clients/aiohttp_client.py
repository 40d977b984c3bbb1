#!/usr/bin/env python3
"""The note's aiohttp snippet, scaled to N requests with C in flight under a semaphore.

    aiohttp_client.py URL N C [CAFILE]

Each request does what the note does, `await response.json()`; the parsed document is then
dropped (not gathered), so memory reflects requests in flight rather than results kept.
With CAFILE (an https URL), the server's certificate is verified against the PEM
certificates in it alone, and names are resolved to IPv4 addresses only (the bench's nginx
listens on 127.0.0.1). aiohttp speaks HTTP/1.1 only, over TLS too.

Prints `ok=… failed=… http=…` (the HTTP versions of the responses, e.g. `1.1`) and exits 1 if
any request failed.
"""
import asyncio
import socket
import ssl
import sys

import aiohttp


async def fetch_data(session, url):
    async with session.get(url) as response:
        response.raise_for_status()
        await response.json()
        return response.version


async def main(url, n, c, cafile=None):
    semaphore = asyncio.Semaphore(c)
    ok = failed = 0
    versions = set()

    async def one():
        nonlocal ok, failed
        async with semaphore:
            try:
                version = await fetch_data(session, url)
                versions.add(f"{version.major}.{version.minor}")
                ok += 1
            except Exception as e:  # a benchmark counts failures instead of stopping
                failed += 1
                if failed == 1:
                    print(f"first failure: {e!r}", file=sys.stderr)

    # aiohttp's connector allows 100 connections by default; let the semaphore be the limit.
    if cafile is None:
        connector = aiohttp.TCPConnector(limit=c)
    else:
        context = ssl.create_default_context(cafile=cafile)
        connector = aiohttp.TCPConnector(limit=c, ssl=context, family=socket.AF_INET)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one() for _ in range(n)))
    return ok, failed, versions


if __name__ == "__main__":
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cafile = sys.argv[4] if len(sys.argv) > 4 else None
    ok, failed, versions = asyncio.run(main(url, n, c, cafile))
    print(f"ok={ok} failed={failed} http={','.join(sorted(versions)) or '-'}")
    sys.exit(1 if failed else 0)
