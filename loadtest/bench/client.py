"""A closed-loop load generator over raw HTTP/1.1 keep-alive connections on asyncio (uvloop).

Each of ``concurrency`` workers owns one connection and sends the next request as soon as the last
answer is read, so at most ``concurrency`` requests are in flight. The requests are pre-built bytes,
and answers are read by Content-Length or as chunks (Ray Serve's proxy streams): on the 2-core machine
the client must cost far less CPU than the servers it measures (httpx spends several times more per request),
and it reports what it used.
"""

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

HEAD_END = b"\r\n\r\n"


class ProtocolError(RuntimeError):
    """An answer this client cannot frame (neither Content-Length nor chunked, or a closed connection)."""


def build_request(url: str, path: str, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> bytes:
    """One ``POST`` with a body (and any other ``headers``), ready to write to a keep-alive connection."""
    host = urlsplit(url).netloc
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode("latin-1") + body


class Connection:
    """One keep-alive connection; ``exchange`` writes a request and returns (status, body)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> "Connection":
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        self._writer.write(request)
        try:
            head = await self._reader.readuntil(HEAD_END)
        except asyncio.IncompleteReadError as exc:
            raise ProtocolError("connection closed before an answer") from exc
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        if headers.get("transfer-encoding") == "chunked":
            body = await self._chunks()
        elif "content-length" in headers:
            body = await self._reader.readexactly(int(headers["content-length"]))
        else:
            raise ProtocolError(f"answer without Content-Length or chunks: {lines[0]!r}")
        if headers.get("connection") == "close":
            raise ProtocolError("server closed the keep-alive connection")
        return status, body

    async def _chunks(self) -> bytes:
        """A chunked body: hex size lines, each chunk and its CRLF, up to the empty chunk and its CRLF."""
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";", 1)[0], 16):
            parts.append((await self._reader.readexactly(size + 2))[:-2])
        await self._reader.readuntil(b"\r\n")
        return b"".join(parts)

    async def close(self) -> None:
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except OSError:
            pass


@dataclass
class LoadResult:
    """Requests that finished inside the measurement window: their latencies, and everything else counted."""

    concurrency: int
    window_s: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=dict)
    batches: tuple[float, float] | None = None  # (items, batches) the server reports for the point, if it does

    @property
    def ok(self) -> int:
        return self.statuses[200]

    @property
    def throughput(self) -> float:
        return self.ok / self.window_s


async def closed_loop(
    url: str,
    requests: Sequence[bytes],
    concurrency: int,
    warmup_s: float,
    duration_s: float,
    meter: Callable[[Awaitable[None]], Awaitable[dict[str, float]]],
) -> LoadResult:
    """``concurrency`` workers cycle through ``requests`` for ``warmup_s + duration_s``; ``meter`` times the window."""
    result = LoadResult(concurrency, duration_s)
    clock = time.perf_counter
    start = clock()
    window_start, window_end = start + warmup_s, start + warmup_s + duration_s
    cycle = itertools.cycle(requests)

    async def worker() -> None:
        connection = await Connection.open(url)
        try:
            while clock() < window_end:
                sent = clock()
                try:
                    status, _ = await connection.exchange(next(cycle))
                except (OSError, ProtocolError) as exc:
                    result.errors[type(exc).__name__] += 1
                    await connection.close()
                    connection = await Connection.open(url)
                    continue
                done = clock()
                if window_start <= done <= window_end:
                    result.statuses[status] += 1
                    if status == 200:
                        result.latencies_ms.append((done - sent) * 1000.0)
        finally:
            await connection.close()

    async def window() -> None:
        await asyncio.sleep(window_start - clock())
        result.cpu = await meter(asyncio.sleep(window_end - clock()))

    await asyncio.gather(window(), *(worker() for _ in range(concurrency)))
    return result
