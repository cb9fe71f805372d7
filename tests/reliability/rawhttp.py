"""A minimal HTTP/1.1 client on asyncio streams, for bursts and hang-ups that httpx would blur or refuse.

httpx spends milliseconds of CPU per request, which on a 2-core machine is what a burst of 200
would measure; here a request is pre-built bytes and a response one parse, so timings are the
server's. Only what the service sends back is handled: a status line, headers, a Content-Length body.
"""

import asyncio
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float  # from the last byte written to the last byte read

    def json(self) -> dict:
        return json.loads(self.body)


def build_request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: reliability", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def open_connection(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    return await asyncio.open_connection(parts.hostname, parts.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines if line)
    headers = {name.lower(): value for name, value in headers.items()}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split(" ")[1]), headers, body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> RawResponse:
    writer.write(request)
    await writer.drain()
    started = time.perf_counter()
    status, headers, body = await read_response(reader)
    return RawResponse(status, headers, body, time.perf_counter() - started)


async def burst(url: str, requests: list[bytes], timeout_s: float = 60) -> list[RawResponse]:
    """Open one connection per request first, then send them all at once; answers in request order."""
    connections = await asyncio.gather(*(open_connection(url) for _ in requests))
    try:
        exchanges = (exchange(reader, writer, request) for (reader, writer), request in zip(connections, requests))
        return await asyncio.wait_for(asyncio.gather(*exchanges), timeout_s)
    finally:
        for _, writer in connections:
            writer.close()
