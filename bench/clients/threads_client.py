#!/usr/bin/env python3
"""The blocking way: a ThreadPoolExecutor of C threads, each with its own `requests` session.

    threads_client.py URL N C

One session per thread keeps its connection alive between requests (a bare `requests.get`
would reconnect every time and look worse than threads are). Each request parses the body with
`.json()`, as the aiohttp client does. Prints `ok=… failed=…` and exits 1 if any failed.
"""
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import requests

local = threading.local()


def fetch_data(url):
    session = getattr(local, "session", None)
    if session is None:
        session = local.session = requests.Session()
    response = session.get(url, timeout=300)
    response.raise_for_status()
    return response.json()


def one(url):
    try:
        fetch_data(url)
        return None
    except Exception as e:  # a benchmark counts failures instead of stopping
        return e


if __name__ == "__main__":
    url, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ok = failed = 0
    with ThreadPoolExecutor(max_workers=c) as pool:
        for error in pool.map(one, [url] * n):
            if error is None:
                ok += 1
            else:
                failed += 1
                if failed == 1:
                    print(f"first failure: {error!r}", file=sys.stderr)
    print(f"ok={ok} failed={failed}")
    sys.exit(1 if failed else 0)
