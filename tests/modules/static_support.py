"""Helpers for the static-site module tests: a docroot in tmp_path, the real config loader,
and ``get()`` that runs one request through ``mpmd.core.request.process`` (no sockets)."""

from __future__ import annotations

import os
import time
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
    age_tree(docroot)
    return docroot


def age_tree(top: Path, seconds: float = 3600.0) -> None:
    """Set every file under ``top`` an hour back: a file written this second is "young"
    (static_files Rule 5: weak ETag), and the tests want a deployed site's strong validators."""
    when = time.time() - seconds
    for path in [top, *top.rglob("*")]:
        os.utime(path, (when, when))


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


def _region(part: bytes | FileBody) -> bytes:
    if isinstance(part, bytes):
        return part
    part.file.seek(part.offset)
    return part.file.read(part.length)


def body_bytes(resp: Response) -> bytes:
    """The bytes a driver would send for ``resp``; files are closed afterwards, as the driver does
    (multipart parts may share one file object)."""
    body = resp.body
    if isinstance(body, (bytes, FileBody)):
        data = _region(body)
    elif isinstance(body, MultipartBody):
        data = b"".join(_region(p) for p in body.parts)
    else:
        return b"".join(body)
    if hasattr(body, "close"):
        body.close()
    return data
