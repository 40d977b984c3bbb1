"""outofsync: fetch data from HTTP APIs from asyncio, fast, and without losing anything.

The engine is outofsync's own (Rust, tokio): every input ends as exactly one record, success or
failure, under a global and a per-host concurrency limit, rates, retries with backoff and
Retry-After, host cooldowns, timeouts, jq filters and a crash-safe journal — the very engine of
the ``outofsync`` command, with the same options under the same names.

    import asyncio, outofsync

    async def main():
        async for rec in outofsync.stream(urls, concurrency=64, per_host=8, retries=3):
            if rec.ok:
                use(rec.json())
            else:
                print(rec.url, rec.error.kind, rec.error.message)

    asyncio.run(main())

- ``stream(inputs, **options)``: an async iterator of records, one per input, as they complete
  (``ordered=True``: in input order). ``output="records.jsonl"`` writes the journal as it goes;
  ``resume=True`` fetches only what it does not record yet.
- ``await fetch_all(inputs, **options)``: the records as a list.
- ``fetch_batch(inputs, **options)``: the same without an event loop (scripts, Spark, Ray, Dask).
- ``Session(**options)``: ``async with s.get(url) as resp: await resp.json()``, as with aiohttp.

Inputs are URLs (``str``), request dicts (``{"url": …, "method": "POST", "json": {…}, "id": 7}``,
other keys carried into ``rec.meta``) or :class:`Request` objects, from a list, any iterable or an
async iterable. See ``help(outofsync.stream)`` for the options.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import collections.abc
import enum
import itertools
import os
import urllib.parse
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any, Union

from . import _outofsync as _native
from ._outofsync import Error, Record, Request

__all__ = [
    "Error",
    "ErrorKind",
    "HTTPStatusError",
    "Input",
    "OutputError",
    "Record",
    "Request",
    "RequestError",
    "Response",
    "Session",
    "Stream",
    "fetch_all",
    "fetch_batch",
    "stream",
]

__version__: str = _native.__version__


class ErrorKind(enum.StrEnum):
    """Why a request failed: the engine's closed set of kinds (``rec.error.kind``).

    A ``str`` enum: ``rec.error.kind == "timeout"`` and ``rec.error.kind is ErrorKind.TIMEOUT``
    both hold.
    """

    INVALID_REQUEST = "invalid_request"
    """The input could not become a request (bad URL, bad method…); nothing was sent."""
    DNS = "dns"
    """The host name did not resolve."""
    CONNECT = "connect"
    """No connection could be made (refused, unreachable)."""
    TLS = "tls"
    """The TLS handshake failed."""
    TIMEOUT = "timeout"
    """A connect, read, per-attempt or whole-request deadline passed."""
    HTTP_STATUS = "http_status"
    """The server answered with a status not counted as success."""
    TOO_LARGE = "too_large"
    """The body was larger than ``max_body``."""
    DECODE = "decode"
    """The response could not be decoded (framing, compression, JSON required, a jq filter)."""
    REDIRECT = "redirect"
    """A redirect could not be followed."""
    IO = "io"
    """The connection failed mid-exchange."""
    AUTH = "auth"
    """No credentials could be had for the request (the token endpoint failed or refused the
    client); the request was not sent without them."""


if [kind.value for kind in ErrorKind] != list(_native.ERROR_KINDS):  # pragma: no cover
    raise ImportError("outofsync: the error kinds of the Python package and of the engine differ")


class RequestError(Exception):
    """A request failed; ``record`` is its record (``kind``: its :class:`ErrorKind`)."""

    def __init__(self, message: str, record: Record | None = None) -> None:
        super().__init__(message)
        self.record = record

    @property
    def kind(self) -> ErrorKind | None:
        error = self.record.error if self.record is not None else None
        return error.kind if error is not None else None


class HTTPStatusError(RequestError):
    """The server answered with a status not counted as success (``raise_for_status()``)."""

    @property
    def status(self) -> int | None:
        return self.record.status if self.record is not None else None


class OutputError(OSError):
    """The output (``output=``) cannot be used or written: the message says why and what to do."""


Input = Union[str, dict, Request]
"""An input: a URL, a request dict (the JSONL request object of ``outofsync fetch``) or a Request."""


# --- The bridge to the event loop ------------------------------------------------------------
#
# One hub per event loop (pytest-asyncio makes one per test; threads may run their own). The
# engine's threads never touch Python: they queue results and write a byte to the hub's pipe,
# which the loop watches; `_drain` then resolves every waiting future at once.


class _Bridge:
    __slots__ = ("hub", "waiting", "__weakref__")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.hub = _native.Hub()
        self.waiting: dict[int, asyncio.Future[Any]] = {}
        loop.add_reader(self.hub.fileno(), self._drain)

    def _drain(self) -> None:
        waiting = self.waiting
        for token, ok, value in self.hub.drain():
            future = waiting.pop(token, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def wait(self, loop: asyncio.AbstractEventLoop, token: int) -> Any:
        future = loop.create_future()
        self.waiting[token] = future
        try:
            return await future
        except asyncio.CancelledError:
            # The task was cancelled (wait_for, TaskGroup, Ctrl-C): abort the work in flight.
            self.waiting.pop(token, None)
            self.hub.cancel(token)
            raise


_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Bridge] = weakref.WeakKeyDictionary()


def _bridge() -> tuple[asyncio.AbstractEventLoop, _Bridge]:
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _Bridge(loop)
    return loop, bridge


# Runs not yet closed: at exit, their journals are finished before the runtime stops.
_open_flows: weakref.WeakSet[_native.Flow] = weakref.WeakSet()


def _open(client: _native.Client, run: dict[str, Any]) -> _native.Flow:
    flow = client.open(**run)
    _open_flows.add(flow)
    return flow


def _at_exit() -> None:
    # What was handed over reaches each journal and is synced; requests in flight are dropped and
    # the engine's threads joined while the interpreter is still whole.
    for flow in list(_open_flows):
        try:
            flow.close()
        except Exception:  # noqa: BLE001 - at exit, one run's failing journal must not stop the others
            pass
    _native.shutdown()


def _after_fork_in_child() -> None:
    # The parent's hubs, runs and runtime are not the child's: forget them (never close or join them).
    _bridges.clear()
    _open_flows.clear()
    _native.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)


# --- Options ---------------------------------------------------------------------------------

_RUN_OPTIONS = frozenset(_native.RUN_OPTIONS)


def _split(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    run = {k: v for k, v in options.items() if k in _RUN_OPTIONS}
    fetcher = {k: v for k, v in options.items() if k not in _RUN_OPTIONS}
    return fetcher, run


def _check_inputs(inputs: Any) -> None:
    if isinstance(inputs, (str, bytes, dict, Request)):
        raise TypeError(
            f"inputs must be a list, an iterable or an async iterable of inputs, not one "
            f"{type(inputs).__name__}: wrap a single URL in a list"
        )
    if isinstance(inputs, (list, tuple)):
        _native.check_inputs(inputs)
    elif not isinstance(inputs, (Iterable, AsyncIterable)):
        raise TypeError(f"inputs must be iterable, not {type(inputs).__name__}")


# --- Runs ------------------------------------------------------------------------------------


class Stream:
    """The records of a run, as they complete: ``async for rec in stream``.

    One record per input, failures included. Requests are made only as fast as records are read
    (backpressure): a consumer that stops reading holds the engine back. Leaving the loop early
    (``break``, an exception, a cancelled task) cancels the requests in flight; ``aclose()`` or
    ``async with`` does it at once and finishes the journal. ``batches()`` gives the records as
    lists, the cheapest way through.
    """

    def __init__(self, client: _native.Client, inputs: Iterable[Input] | AsyncIterable[Input], run: dict[str, Any]):
        _check_inputs(inputs)
        self._flow = _open(client, run)
        self._buffer: collections.deque[Record] = collections.deque()
        self._ended = False
        self._iterator: Any = None
        self._async_iterator: Any = None
        self._feeder: asyncio.Task[None] | None = None
        self._feed_error: BaseException | None = None
        self._room = asyncio.Event()
        if isinstance(inputs, AsyncIterable):
            self._async_iterator = inputs.__aiter__()
        else:
            self._iterator = iter(inputs)

    def __aiter__(self) -> Stream:
        return self

    async def __anext__(self) -> Record:
        if self._buffer:
            return self._buffer.popleft()
        return await self._fill()

    async def batches(self) -> AsyncIterator[list[Record]]:
        """The records in lists, each of what was ready at once (up to ``batch_bytes`` of bodies)."""
        while True:
            if not self._buffer:
                try:
                    first = await self._fill()
                except StopAsyncIteration:
                    return
                self._buffer.appendleft(first)
            batch = list(self._buffer)
            self._buffer.clear()
            yield batch

    async def _fill(self) -> Record:
        while True:
            if self._ended:
                if self._feed_error is not None:
                    error, self._feed_error = self._feed_error, None
                    raise error
                raise StopAsyncIteration
            if self._iterator is not None:
                self._top_up()
            elif self._async_iterator is not None and self._feeder is None:
                self._feeder = asyncio.ensure_future(self._feed_async())
            loop, bridge = _bridge()
            token = self._flow.next_batch(bridge.hub, self._iterator is not None or self._feeder is not None)
            try:
                records, want_input, ended = await bridge.wait(loop, token)
            except BaseException:
                self._close()
                raise
            if want_input:
                self._room.set()
            if ended:
                self._ended = True
                self._stop_feeder()
            if records:
                self._buffer.extend(records)
                return self._buffer.popleft()

    def _top_up(self) -> None:
        room = self._flow.room()
        if room <= 0:
            return
        try:
            chunk = list(itertools.islice(self._iterator, room))
            if chunk:
                self._flow.push(chunk)
        except BaseException:
            self._close()
            raise
        if len(chunk) < room:
            self._iterator = None
            self._flow.close_input()

    async def _feed_async(self) -> None:
        try:
            async for item in self._async_iterator:
                while self._flow.room() == 0:
                    self._room.clear()
                    await self._room.wait()
                self._flow.push([item])
            self._flow.close_input()
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # an input of a wrong type, or the iterator failed
            self._feed_error = error
            self._flow.close()

    def _stop_feeder(self) -> None:
        if self._feeder is not None and not self._feeder.done():
            self._feeder.cancel()

    def _close(self) -> None:
        self._ended = True
        self._buffer.clear()
        self._stop_feeder()
        self._flow.close()

    async def aclose(self) -> None:
        """Ends the run now: requests in flight are cancelled, the journal is finished."""
        self._close()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()


def stream(inputs: Iterable[Input] | AsyncIterable[Input], **options: Any) -> Stream:
    """Fetches every input; an async iterator of one :class:`Record` per input, as they complete.

    ``inputs``: URLs, request dicts or :class:`Request` objects, in a list, any iterable (read as
    the requests go: a generator of ten million URLs is fine) or an async iterable.

    Options of the engine (the names of the command line's flags; durations in seconds):
    ``concurrency=64``, ``per_host=None``, ``rate=None`` (per host, ``"20/s"``), ``global_rate=None``,
    ``retries=2``, ``backoff=0.5``, ``max_backoff=30``, ``max_retry_after=60``,
    ``retry_non_idempotent=False``, ``timeout=120``, ``connect_timeout=10``, ``read_timeout=30``,
    ``deadline=300``, ``max_body=32 MiB``, ``max_redirects=10``, ``https_only=False``,
    ``body="auto"`` (``"json"``, ``"text"``, ``"none"``), ``headers={}`` (added to the defaults),
    ``user_agent``, ``keep_headers=False`` (``True`` or a list of names), ``ok_status="200-299"``,
    ``jq=None`` (a jq program applied to each JSON body), ``http="auto"`` (``"1.1"``, ``"2"``),
    ``insecure=False``, ``ca_file=None``, ``resolve=[]``, ``paginate=None`` (``"link"``,
    ``"json:.next"``), ``max_pages=1000``.

    Options of the run: ``ordered=False`` (input order), ``output=None`` (a JSONL journal file, the
    format of ``outofsync fetch -o``), ``resume=False`` (fetch only what ``output`` does not record;
    the inputs must be the first run's, in the same order), ``overwrite=False``,
    ``retry_failed=False`` (with ``resume``: fetch failed records again), ``fsync="interval"``,
    ``batch_bytes=1 MiB``.

    Raises ``TypeError`` at once for an input of a wrong type in a list (naming its position),
    ``ValueError`` for a bad option, and :class:`OutputError` (on the first record) for an output
    that cannot be used.
    """
    fetcher, run = _split(options)
    return Stream(_native.Client(**fetcher), inputs, run)


async def fetch_all(inputs: Iterable[Input] | AsyncIterable[Input], **options: Any) -> list[Record]:
    """Fetches every input; the records as a list, in completion order (``ordered=True``: in
    input order). The options are those of :func:`stream`."""
    records: list[Record] = []
    async with stream(inputs, **options) as records_stream:
        async for batch in records_stream.batches():
            records.extend(batch)
    return records


def fetch_batch(inputs: Iterable[Input], **options: Any) -> list[Record]:
    """Fetches every input without an event loop: blocks until the last record, then returns them
    all (completion order; ``ordered=True``: input order).

    For scripts and for workers of Spark (``mapPartitions``), Ray or Dask. The GIL is released
    while the engine works; Ctrl-C raises ``KeyboardInterrupt`` and cancels the requests in flight.
    The options are those of :func:`stream`. Do not call it from a coroutine: it would block the
    event loop (use :func:`fetch_all` there).
    """
    _check_inputs(inputs)
    if isinstance(inputs, AsyncIterable):
        raise TypeError("fetch_batch takes an iterable; for an async iterable use fetch_all or stream")
    fetcher, run = _split(options)
    flow = _open(_native.Client(**fetcher), run)
    iterator: Any = iter(inputs)
    records: list[Record] = []
    try:
        while True:
            if iterator is not None:
                room = flow.room()
                if room > 0:
                    chunk = list(itertools.islice(iterator, room))
                    if chunk:
                        flow.push(chunk)
                    if len(chunk) < room:
                        iterator = None
                        flow.close_input()
            batch, _want_input, ended = flow.next_batch_blocking(iterator is not None)
            records.extend(batch)
            if ended:
                return records
    except BaseException:
        flow.close()
        raise


# --- The aiohttp-like surface ----------------------------------------------------------------


class Response:
    """A response of :class:`Session`, shaped like aiohttp's: ``status``, ``headers``,
    ``await json()``, ``await text()``, ``await read()``, ``raise_for_status()``.

    ``record`` is the :class:`Record` underneath (attempts, elapsed time, error).
    """

    __slots__ = ("record",)

    def __init__(self, record: Record) -> None:
        self.record = record

    @property
    def status(self) -> int | None:
        return self.record.status

    @property
    def ok(self) -> bool:
        return self.record.ok

    @property
    def url(self) -> str | None:
        return self.record.final_url or self.record.url

    @property
    def headers(self) -> dict[str, str | list[str]]:
        return self.record.headers or {}

    async def json(self, loads: Callable[[Any], Any] | None = None) -> Any:
        return self.record.json(loads)

    async def text(self) -> str:
        text = self.record.text
        return text if text is not None else self.record.body.decode("utf-8", "replace")

    async def read(self) -> bytes:
        return self.record.body

    def raise_for_status(self) -> None:
        self.record.raise_for_status()

    def release(self) -> None:
        """Nothing to release: the body was read whole by the engine."""

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.url}>"


class _RequestContext(collections.abc.Coroutine):  # type: ignore[type-arg]
    """What ``Session.get()`` returns: a coroutine (so ``asyncio.create_task`` takes it), and an
    async context manager, as aiohttp's."""

    __slots__ = ("_coro",)

    def __init__(self, coro: Any) -> None:
        self._coro = coro

    def __await__(self) -> Any:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    async def __aenter__(self) -> Response:
        return await self._coro

    async def __aexit__(self, *exc_info: object) -> None:
        pass


class Session:
    """Requests one at a time, as with ``aiohttp.ClientSession``, on the engine.

    ``async with outofsync.Session(concurrency=64) as s: async with s.get(url) as resp: ...``

    The options are the engine options of :func:`stream` (``keep_headers`` defaults to ``True``
    here, so that ``resp.headers`` is filled). Requests of one session share its connections and
    limits, and are retried as its options say. A request that fails without a status
    (connect, timeout…) raises :class:`RequestError`; a response with any status is returned, as
    aiohttp does (``raise_for_status()`` raises :class:`HTTPStatusError`). ``stream()`` and
    ``fetch_all()`` run whole inputs through the same session.
    """

    def __init__(self, **options: Any) -> None:
        options.setdefault("keep_headers", True)
        self._client = _native.Client(**options)

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Nothing to close: connections are the engine's and end with it."""

    async def fetch(self, input: Input) -> Record:
        """Fetches one input; its record, whatever the outcome (failures do not raise)."""
        loop, bridge = _bridge()
        return await bridge.wait(loop, self._client.fetch(bridge.hub, input))

    async def _send(self, input: Input) -> Response:
        loop, bridge = _bridge()
        record = await bridge.wait(loop, self._client.fetch(bridge.hub, input))
        error = record.error
        if error is not None and record.status is None:
            raise RequestError(f"{error.kind.value}: {error.message}", record)
        return Response(record)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        json: Any = None,
        data: str | bytes | None = None,
    ) -> _RequestContext:
        """A request; ``await`` it, or ``async with`` it, for its :class:`Response`."""
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        if method == "GET" and headers is None and json is None and data is None:
            return _RequestContext(self._send(url))
        request = Request(url, method, headers=headers, json=json, body=data)
        return _RequestContext(self._send(request))

    def get(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> _RequestContext:
        return self.request("HEAD", url, **kwargs)

    def stream(self, inputs: Iterable[Input] | AsyncIterable[Input], **run: Any) -> Stream:
        """As :func:`stream`, through this session (only the run options are taken here)."""
        return Stream(self._client, inputs, run)

    async def fetch_all(self, inputs: Iterable[Input] | AsyncIterable[Input], **run: Any) -> list[Record]:
        """As :func:`fetch_all`, through this session."""
        records: list[Record] = []
        async with self.stream(inputs, **run) as records_stream:
            async for batch in records_stream.batches():
                records.extend(batch)
        return records
