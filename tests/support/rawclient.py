"""Raw-socket HTTP/1.1 client for tests: exact bytes out, one parsed response at a time.

``RawConn`` keeps its own receive buffer, so pipelined responses are read one after another.
Bodies are framed by Content-Length, chunked encoding, or the connection closing.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        for k, v in self.headers:
            if k.lower() == lname:
                return v
        return None


class RawConn:
    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed before a full line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_only: bool = False, skip_interim: bool = True) -> RawResponse:
        """The next response; ``head_only`` for HEAD requests (no body follows)."""
        while True:
            resp = self._read_head()
            if not (skip_interim and 100 <= resp.status < 200):
                break
        if head_only or resp.status in (204, 304):
            return resp
        resp.body = self._read_body(resp)
        return resp

    def _read_head(self) -> RawResponse:
        status_line = self._line().decode("latin-1")
        version, status, *reason = status_line.split(" ", 2)
        resp = RawResponse(version, int(status), reason[0] if reason else "")
        while True:
            line = self._line()
            if not line:
                return resp
            name, _, value = line.decode("latin-1").partition(":")
            resp.headers.append((name.strip(), value.strip()))

    def _read_body(self, resp: RawResponse) -> bytes:
        if (resp.header("transfer-encoding") or "").lower() == "chunked":
            return self._read_chunked()
        length = resp.header("content-length")
        if length is not None:
            return self._exact(int(length))
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def _read_chunked(self) -> bytes:
        out = b""
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():
                    pass
                return out
            out += self._exact(size)
            self._exact(2)

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True when the server closes the connection (EOF or reset) within ``timeout``."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        try:
            while time.monotonic() < deadline:
                try:
                    chunk = self.sock.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    return True
                self.buf += chunk
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        finally:
            self.sock.settimeout(10.0)


def get(path: str = "/", host: str = "localhost", extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: {host}\r\n{extra}\r\n".encode("latin-1")


def request_once(port: int, data: bytes, head_only: bool = False) -> RawResponse:
    with RawConn(port) as c:
        c.send(data)
        return c.read_response(head_only=head_only)


def pipeline(port: int, requests: list[bytes]) -> list[RawResponse]:
    """Send all requests in one write, then read one response per request."""
    with RawConn(port) as c:
        c.send(b"".join(requests))
        return [c.read_response() for _ in requests]


class TlsConn(RawConn):
    """RawConn over TLS: the same helpers, through ``context`` (SNI ``server_hostname``)."""

    def __init__(self, port: int, context, server_hostname: str = "localhost",
                 host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = context.wrap_socket(raw, server_hostname=server_hostname)
        self.buf = b""
