"""Just enough HTTP/1.1 for `interlock sim serve`: a keep-alive server and client on asyncio.

The simulated services answer hundreds of requests a second on a small
machine, next to HAProxy, Unleash and Prometheus, so they cannot afford
`http.server` (a thread per connection) or a full client library per request.
This speaks the subset the stack uses and nothing more: one request line,
headers, an optional ``Content-Length`` body, persistent connections (HAProxy
and the load generator reuse them), no chunked encoding, no pipelining.
Servers listen on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Awaitable, Callable

MAX_BODY = 1 << 20
REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Response]]


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    line = await reader.readline()
    if not line:
        return None
    first = line.decode("latin-1").strip()
    headers: dict[str, str] = {}
    while True:
        raw = await reader.readline()
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return first, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    length = int(headers.get("content-length") or 0)
    if length < 0 or length > MAX_BODY:
        raise ValueError(f"body of {length} bytes")
    return await reader.readexactly(length) if length else b""


def _encode(response: Response, keep_alive: bool) -> bytes:
    head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Status')}",
            f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}",
            f"Connection: {'keep-alive' if keep_alive else 'close'}"]
    head += [f"{k}: {v}" for k, v in response.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body


class HttpServer:
    """A listening socket and its open connections; `close()` ends both."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()
        if self.server is not None:
            await self.server.wait_closed()
        await asyncio.sleep(0)  # let the connection handlers see their end of file


async def start_server(handler: Handler, port: int = 0) -> HttpServer:
    """Serve `handler` on 127.0.0.1:`port` (0: a free port); each connection is kept alive."""
    http = HttpServer()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        http.writers.add(writer)
        try:
            while True:
                head = await _read_head(reader)
                if head is None:
                    return
                first, headers = head
                parts = first.split(" ")
                if len(parts) != 3:
                    writer.write(_encode(Response(400, b"bad request line\n"), False))
                    return
                body = await _read_body(reader, headers)
                try:
                    response = await handler(Request(parts[0].upper(), parts[1], headers, body))
                except Exception as exc:  # noqa: BLE001 - a handler bug answers 500, the server lives on
                    response = Response(500, f"{type(exc).__name__}: {exc}\n".encode())
                keep = headers.get("connection", "").lower() != "close"
                writer.write(_encode(response, keep))
                await writer.drain()
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError):
            return
        finally:
            http.writers.discard(writer)
            writer.close()

    http.server = await asyncio.start_server(connection, "127.0.0.1", port, reuse_address=True)
    return http


class Connection:
    """One persistent client connection to ``host:port``; reconnects after a failure."""

    def __init__(self, address: str, timeout: float = 5.0):
        host, _, port = address.rpartition(":")
        self.host, self.port, self.timeout = host or "127.0.0.1", int(port), timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                      body: bytes = b"") -> tuple[int, bytes]:
        """(status, body); raises OSError/TimeoutError after closing the connection."""
        try:
            async with asyncio.timeout(self.timeout):
                if self._streams is None:
                    self._streams = await asyncio.open_connection(self.host, self.port)
                reader, writer = self._streams
                lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                         f"Content-Length: {len(body)}"]
                lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
                await writer.drain()
                head = await _read_head(reader)
                if head is None:
                    raise ConnectionResetError("the server closed the connection")
                status = int(head[0].split(" ")[1])
                data = await _read_body(reader, head[1])
                if head[1].get("connection", "").lower() == "close":
                    self.close()
                return status, data
        except (OSError, TimeoutError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            self.close()
            if isinstance(exc, (OSError, TimeoutError)):
                raise
            raise ConnectionError(f"malformed answer from {self.host}:{self.port}") from None

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None
