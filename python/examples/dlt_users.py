"""A dlt resource on outofsync, loaded into DuckDB: how data engineers land API data.

    python dlt_users.py http://127.0.0.1:8080 [N] [DUCKDB_FILE]

The resource is a plain generator: `fetch_batch` runs each page of ids through the engine (limits,
retries, one record per input) and the rows are yielded as dicts. Failures do not vanish: they are
yielded to a table of their own.
"""

import os
import sys
import tempfile
from collections.abc import Iterator

# dlt reports anonymous usage to its makers by default; nothing leaves this machine here.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402

import outofsync  # noqa: E402

CHUNK = 1000


def requests(base: str, ids: range) -> list[dict]:
    return [{"url": f"{base}/json?id={k}", "id": k} for k in ids]


@dlt.source(name="api")
def api(base: str, n: int):
    failures: list[dict] = []

    @dlt.resource(name="users", primary_key="id", write_disposition="replace")
    def users() -> Iterator[dict]:
        for start in range(0, n, CHUNK):
            records = outofsync.fetch_batch(
                requests(base, range(start, min(n, start + CHUNK))), concurrency=32, retries=3, jq="{id, name, score, active}"
            )
            yield from (rec.json() for rec in records if rec.ok)
            failures.extend(
                {"id": rec.id, "kind": rec.error.kind.value, "message": rec.error.message}
                for rec in records
                if not rec.ok
            )

    @dlt.resource(name="failures", write_disposition="replace")
    def failed() -> Iterator[dict]:
        yield from failures

    return users, failed


def load(base: str, n: int, database: str, pipelines_dir: str) -> dict[str, int]:
    pipeline = dlt.pipeline(
        pipeline_name="outofsync_users",
        destination=dlt.destinations.duckdb(database),
        dataset_name="api",
        pipelines_dir=pipelines_dir,
    )
    pipeline.run(api(base, n))
    with pipeline.sql_client() as client:
        users = client.execute_sql("SELECT count(*), count(DISTINCT id) FROM users")[0]
    return {"users": users[0], "distinct_ids": users[1]}


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    with tempfile.TemporaryDirectory() as work:
        database = sys.argv[3] if len(sys.argv) > 3 else os.path.join(work, "users.duckdb")
        print(load(base, n, database, os.path.join(work, "pipelines")))
