"""A small asyncio Redis client for the shared guard's one script: pipelined over one connection per process.

A request costs one round trip and little Python around it: commands are written as they come, and a reader
task answers them in order (RESP replies arrive in the order of their commands). On loopback that is about a
third of a general-purpose client's time per call. Any failure, or a reply later than ``timeout_s``, closes the
connection and fails every command in flight with ``RedisUnavailable``; the next command connects again.
``redis://[:password@]host[:port][/db]`` and ``rediss://`` (TLS) URLs.
"""

import asyncio
import collections
import hashlib
import ssl
from urllib.parse import unquote, urlsplit

Reply = int | bytes | str | list | None


class RedisUnavailable(Exception):
    """Redis could not be reached, answered too late, or the connection broke."""


class RedisReplyError(Exception):
    """Redis answered with an error (``-ERR ...``)."""


def encode(*args: bytes | str | int | float) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        value = arg if isinstance(arg, bytes) else str(arg).encode()
        parts += [b"$%d\r\n" % len(value), value, b"\r\n"]
    return b"".join(parts)


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    line = await reader.readuntil(b"\r\n")
    kind, rest = line[:1], line[1:-2]
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else (await reader.readexactly(size + 2))[:-2]
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [await read_reply(reader) for _ in range(size)]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RedisReplyError(rest.decode())
    raise RedisUnavailable(f"not a RESP reply: {line[:32]!r}")


class ScriptClient:
    """Runs one Lua script (EVALSHA, loading it on NOSCRIPT) against the Redis at ``url``."""

    def __init__(self, url: str, script: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError(f"a Redis URL starts with redis:// or rediss://, not {parts.scheme}://")
        self.host, self.port = parts.hostname or "localhost", parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.db = int(parts.path.strip("/") or 0)
        self.tls = ssl.create_default_context() if parts.scheme == "rediss" else None
        self.script, self.sha = script.encode(), hashlib.sha1(script.encode()).hexdigest()
        self.timeout_s = timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self._pending: collections.deque[asyncio.Future] = collections.deque()
        self._reader_task: asyncio.Task | None = None
        self._connecting = asyncio.Lock()

    async def run(self, keys: list[str], args: list) -> Reply:
        reply = await self._call("EVALSHA", self.sha, len(keys), *keys, *args)
        if isinstance(reply, RedisReplyError) and str(reply).startswith("NOSCRIPT"):
            reply = await self._call("EVAL", self.script, len(keys), *keys, *args)
        if isinstance(reply, RedisReplyError):
            raise reply
        return reply

    async def _call(self, *args) -> Reply:
        """One command's reply, within ``timeout_s`` (a timer on the future, not a task per call)."""
        if self._writer is None:
            try:
                async with self._connecting:
                    if self._writer is None:
                        await asyncio.wait_for(self._connect(), self.timeout_s)
            except (OSError, asyncio.TimeoutError) as exc:
                raise RedisUnavailable(f"cannot connect: {type(exc).__name__}: {exc}") from None
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append(future)
        self._writer.write(encode(*args))
        timer = loop.call_later(self.timeout_s, self._expire, future)
        try:
            return await future
        finally:
            timer.cancel()

    def _expire(self, future: asyncio.Future) -> None:
        if not future.done():
            self._drop(TimeoutError(f"no reply within {self.timeout_s:g} s"))

    async def _connect(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port, ssl=self.tls)
        hello = [encode("AUTH", self.password)] if self.password else []
        hello += [encode("SELECT", self.db)] if self.db else []
        writer.write(b"".join(hello))
        for _ in hello:
            reply = await read_reply(reader)
            if isinstance(reply, RedisReplyError):
                writer.close()
                raise OSError(f"Redis refused the connection: {reply}")
        self._writer, self._reader_task = writer, asyncio.create_task(self._read_replies(reader))

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                reply = await read_reply(reader)
                future = self._pending.popleft()
                if not future.done():
                    future.set_result(reply)
        except (OSError, EOFError, asyncio.IncompleteReadError, RedisUnavailable, IndexError) as exc:
            self._drop(exc)

    def _drop(self, exc: BaseException) -> None:
        """Close the connection; every command in flight fails (a late reply could not be matched to it)."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
        self._reader_task = None
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(RedisUnavailable(f"connection lost: {type(exc).__name__}"))

    async def close(self) -> None:
        self._drop(ConnectionAbortedError("closed"))
