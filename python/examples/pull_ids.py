"""Pulls 10,000 ids from an API into a list of dicts, keeping every failure.

    python pull_ids.py http://127.0.0.1:8080 [N]

What people write by hand around aiohttp — a semaphore, retries, Retry-After, a per-host limit,
a list of what failed — is options here. Each input is a request dict whose `id` comes back on
its record; a jq filter keeps only the fields wanted, in Rust, before Python sees the body.
"""

import asyncio
import sys
import time

import outofsync


async def pull(base: str, n: int) -> tuple[list[dict], list[outofsync.Record]]:
    inputs = ({"url": f"{base}/json?id={k}", "id": k} for k in range(n))
    rows, failed = [], []
    async for batch in outofsync.stream(
        inputs, concurrency=64, per_host=32, retries=3, jq="{id, name}"
    ).batches():
        for rec in batch:
            if rec.ok:
                rows.append(rec.json())
            else:
                failed.append(rec)
    return rows, failed


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    started = time.perf_counter()
    rows, failed = asyncio.run(pull(base, n))
    took = time.perf_counter() - started
    print(f"{len(rows)} rows, {len(failed)} failed, in {took:.2f} s; first: {rows[0] if rows else None}")
    for rec in failed[:10]:
        print(f"  input {rec.i}: {rec.error.kind.value}: {rec.error.message}")
    sys.exit(1 if failed else 0)
