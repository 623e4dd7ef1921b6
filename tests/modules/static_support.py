"""Helpers for the static-site module tests: a docroot in tmp_path, the real config loader,
and ``get()`` that runs one request through ``mpmd.core.request.process`` (no sockets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mpmd.config.loader import load_config
from mpmd.core import request as pipeline
from mpmd.core.exchange import ConnInfo, FileBody, MultipartBody, RequestContext, Response
from mpmd.http.events import Request


def make_site(root: Path) -> Path:
    """htdocs with a few files, a subdirectory and a canary outside the root."""
    docroot = root / "htdocs"
    (docroot / "sub" / "deeper").mkdir(parents=True)
    (docroot / "index.html").write_text("<h1>home</h1>\n")
    (docroot / "a.txt").write_text("hello\n")
    (docroot / "digits.txt").write_text("0123456789" * 100)
    (docroot / "sub" / "index.html").write_text("sub index\n")
    (docroot / "sub" / "deeper" / "x.css").write_text("body{}\n")
    (docroot / "big.bin").write_bytes(bytes(range(256)) * 4096)          # 1 MiB: not cached
    (docroot / "noindex").mkdir()
    (docroot / "noindex" / "f<1>.txt").write_text("x")
    (root / "secret.txt").write_text("CANARY-SECRET\n")
    return docroot


def config(root: Path, extra: str = "") -> Any:
    text = f"ServerRoot {root}\nDocumentRoot {root}/htdocs\n{extra}\n"
    return load_config(text=text)


def request(method: str, target: bytes, headers: dict[str, str] | None = None) -> Request:
    path, _, query = target.partition(b"?")
    hdrs = tuple((k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items())
    return Request(method, target, path, query, "1.1", ((b"host", b"localhost"),) + hdrs,
                   True, False, None, False)


def context(cfg: Any, method: str, target: bytes, headers: dict[str, str] | None = None,
            client: str = "127.0.0.1") -> RequestContext:
    return RequestContext(request(method, target, headers), ConnInfo((client, 40000), ("127.0.0.1", 80)),
                          cfg)


def get(cfg: Any, target: bytes | str, method: str = "GET", headers: dict[str, str] | None = None,
        client: str = "127.0.0.1") -> Response:
    if isinstance(target, str):
        target = target.encode()
    return pipeline.process(context(cfg, method, target, headers, client))


def body_bytes(resp: Response) -> bytes:
    """The bytes a driver would send for ``resp`` (reads FileBody regions, closes files)."""
    body = resp.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, FileBody):
        body.file.seek(body.offset)
        data = body.file.read(body.length)
        body.close()
        return data
    if isinstance(body, MultipartBody):
        out = b"".join(body_bytes(Response(0, [], p)) for p in body.parts)
        body.close()
        return out
    return b"".join(body)
