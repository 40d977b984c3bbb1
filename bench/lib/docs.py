#!/usr/bin/env python3
"""Writes the documents the neutral nginx serves, and request lists for the clients.

    docs.py ROOT                 data.json (~300 B) and big.json (~64 KiB) into ROOT
    docs.py urls FILE URL N      FILE holds URL on N lines (an input for `outofsync fetch`)

The documents are deterministic, so every run serves the same bytes.
"""
import json
import sys


def small():
    doc = {
        "id": 1,
        "name": "outofsync benchmark document",
        "email": "bench@example.com",
        "active": True,
        "score": 0.875,
        "tags": ["alpha", "beta", "gamma", "delta"],
        "address": {"street": "1 Loopback Way", "city": "Localhost", "zip": "12700"},
        "created": "2024-01-01T00:00:00Z",
        "notes": "a small JSON document, like one row of a typical API",
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def big(target=64 * 1024):
    items, size = [], 0
    i = 0
    while True:
        item = {"id": i, "name": f"item-{i:05}", "price": round(i * 1.25, 2), "tags": ["x", "y"], "ok": i % 2 == 0}
        items.append(item)
        text = json.dumps({"items": items}, separators=(",", ":")) + "\n"
        if len(text) >= target:
            return text
        i += 1


def main(argv):
    if len(argv) == 5 and argv[1] == "urls":
        _, _, path, url, n = argv
        with open(path, "w") as f:
            line = url + "\n"
            for _ in range(int(n)):
                f.write(line)
        return 0
    if len(argv) == 2:
        root = argv[1]
        for name, text in (("data.json", small()), ("big.json", big())):
            with open(f"{root}/{name}", "w") as f:
                f.write(text)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
