"""The note's fetch_data(), with outofsync in place of aiohttp.

    python fetch_data.py http://127.0.0.1:8080/json      (after `outofsync serve` in another shell)

The note's version::

    async def fetch_data():
        async with aiohttp.ClientSession() as session:
            async with session.get('https://api.example.com/data') as response:
                data = await response.json()
                return data

The same shape, with retries, timeouts and limits underneath; a failure is a sentence, not a
traceback.
"""

import asyncio
import sys

import outofsync


async def fetch_data(url: str):
    async with outofsync.Session() as session:
        async with session.get(url) as response:
            # waiting for the response
            data = await response.json()
            return data


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080/json"
    try:
        data = asyncio.run(fetch_data(url))
    except outofsync.RequestError as error:
        sys.exit(f"fetch_data: {url}: {error}")
    print(data)
