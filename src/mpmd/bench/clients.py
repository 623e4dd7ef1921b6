"""Built-in clients for what wrk cannot do: hold idle keep-alive connections, count failures.

Rule 1: every client is bounded twice -- by a count (connections, requests) and by a
deadline -- so a server that stalls cannot hang the lab.
Rule 2: ``IdleHolder`` makes each connection a *served* keep-alive connection: it sends one
request and reads the whole response, then leaves the socket open and silent. A connection
only counts as held when its response arrived; a server that cannot serve it (prefork out
of processes) shows up as fewer held connections, which is the result, not an error.
Rule 3: ``run_fault_mix`` counts outcomes, not speed: normal requests that succeeded, normal
requests that failed (the blast radius of the crashes), and crash requests sent.
Rule 4: ``probe_steadily`` is the normal client beside an attack: one GET a second, each on a
new connection and bounded by its own deadline; a probe counts as answered only when a 2xx
arrived within that deadline.
"""

from __future__ import annotations

import errno
import http.client
import selectors
import socket
import threading
import time
from dataclasses import dataclass


def _request(path: str, keep_alive: bool = True) -> bytes:
    conn = "keep-alive" if keep_alive else "close"
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: {conn}\r\n\r\n".encode()


def response_complete(buf: bytes) -> bool:
    """True when buf holds a full response head plus its Content-Length body."""
    head, sep, body = buf.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip() or 0)
    return True  # no length: the head is all we wait for (keep-alive responses have one)


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytes = b""
    sent: bool = False
    done: bool = False


class IdleHolder:
    """Opens up to N served, idle keep-alive connections and keeps them open (context manager)."""

    def __init__(self, port: int, path: str, batch: int = 200) -> None:
        self.port, self.path, self.batch = port, path, batch
        self.held: list[socket.socket] = []
        self.failed = 0
        self._sel = selectors.DefaultSelector()

    def __enter__(self) -> "IdleHolder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for sock in self.held:
            sock.close()
        self.held.clear()
        self._sel.close()

    def grow_to(self, n: int, deadline_s: float = 20.0) -> int:
        """Open connections until n are held (or the deadline); returns how many are held."""
        end = time.monotonic() + deadline_s
        while len(self.held) < n and time.monotonic() < end:
            want = min(self.batch, n - len(self.held))
            self._open_batch(want, end)
        return len(self.held)

    def _open_batch(self, count: int, end: float) -> None:
        pending: list[_Conn] = []
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(("127.0.0.1", self.port))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                self.failed += 1
                continue
            conn = _Conn(sock)
            pending.append(conn)
            self._sel.register(sock, selectors.EVENT_WRITE, conn)
        self._pump(pending, end)

    def _pump(self, pending: list[_Conn], end: float) -> None:
        open_count = len(pending)
        while open_count and time.monotonic() < end:
            for key, _ in self._sel.select(timeout=min(0.5, max(0.0, end - time.monotonic()))):
                if self._step(key.data):
                    open_count -= 1
        for conn in pending:
            if not conn.done:
                self._finish(conn, ok=False)

    def _step(self, conn: _Conn) -> bool:
        """Advance one connection; True when it is finished (held or failed)."""
        try:
            if not conn.sent:
                conn.sock.send(_request(self.path))
                conn.sent = True
                self._sel.modify(conn.sock, selectors.EVENT_READ, conn)
                return False
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            self._finish(conn, ok=False)
            return True
        if not data:
            self._finish(conn, ok=False)
            return True
        conn.buf += data
        if response_complete(conn.buf):
            self._finish(conn, ok=conn.buf.startswith(b"HTTP/1.1 200"))
            return True
        return False

    def _finish(self, conn: _Conn, ok: bool) -> None:
        conn.done = True
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if ok:
            self.held.append(conn.sock)
        else:
            conn.sock.close()
            self.failed += 1


@dataclass
class FaultCounts:
    """Outcome of one fault-mix run."""

    ok: int = 0
    failed: int = 0          # normal requests that did not get a 2xx
    crashes_sent: int = 0

    def to_dict(self) -> dict[str, float | int]:
        total = self.ok + self.failed
        return {"ok": self.ok, "failed": self.failed, "crashes_sent": self.crashes_sent,
                "failed_pct": 100.0 * self.failed / total if total else 0.0,
                "failed_per_crash": self.failed / self.crashes_sent if self.crashes_sent else 0.0}


def _one_request(conn: http.client.HTTPConnection, path: str, keep_alive: bool) -> bool:
    headers = {} if keep_alive else {"Connection": "close"}
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    resp.read()
    if not keep_alive:
        conn.close()
    return 200 <= resp.status < 300


def _normal_loop(port: int, path: str, keep_alive: bool, end: float, max_requests: int,
                 counts: FaultCounts, lock: threading.Lock) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(max_requests):
        if time.monotonic() >= end:
            break
        try:
            ok = _one_request(conn, path, keep_alive)
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
        with lock:
            if ok:
                counts.ok += 1
            else:
                counts.failed += 1
    conn.close()


def _crash_loop(port: int, path: str, interval_s: float, end: float, max_crashes: int,
                counts: FaultCounts, lock: threading.Lock) -> None:
    for _ in range(max_crashes):
        if time.monotonic() + interval_s >= end:
            break
        time.sleep(interval_s)  # pacing of the crash fraction, not a wait for a condition
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            _one_request(conn, path.rstrip("/") + "/crash", keep_alive=False)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        with lock:
            counts.crashes_sent += 1


def run_fault_mix(port: int, path: str, *, keep_alive: bool, duration_s: float,
                  clients: int = 16, crash_interval_s: float = 0.1,
                  max_requests_per_client: int = 20000) -> FaultCounts:
    """``clients`` threads send normal requests while one thread sends a crash request every
    ``crash_interval_s``; all stop at the deadline."""
    counts, lock = FaultCounts(), threading.Lock()
    end = time.monotonic() + duration_s
    threads = [threading.Thread(target=_normal_loop, daemon=True,
                                args=(port, path, keep_alive, end, max_requests_per_client,
                                      counts, lock)) for _ in range(clients)]
    threads.append(threading.Thread(target=_crash_loop, daemon=True,
                                    args=(port, path, crash_interval_s, end,
                                          int(duration_s / crash_interval_s) + 1,
                                          counts, lock)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration_s + 15)
    return counts


def probe_once(port: int, path: str, timeout_s: float) -> float | None:
    """Seconds one GET on a new connection took to be answered 2xx in full, or None when it
    was not (refused, reset, another status, or not within timeout_s)."""
    start = time.monotonic()
    end = start + timeout_s
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(_request(path, keep_alive=False))
            buf = b""
            while not response_complete(buf):
                left = end - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                data = sock.recv(65536)
                if not data:
                    break
                buf += data
    except OSError:
        return None
    took = time.monotonic() - start
    ok = buf.startswith(b"HTTP/1.1 2") and response_complete(buf) and took <= timeout_s
    return took if ok else None


def probe_steadily(port: int, path: str, count: int, interval_s: float = 1.0,
                   timeout_s: float = 1.0) -> list[float | None]:
    """``count`` probes, one every ``interval_s`` (``probe_once`` each): their times, None
    for a probe that was not answered within ``timeout_s``."""
    results: list[float | None] = []
    start = time.monotonic()
    for i in range(count):
        delay = start + i * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)   # the probes' pace: one a second, whatever each one took
        results.append(probe_once(port, path, timeout_s))
    return results
