"""Conditional requests (RFC 9110 13) for static representations.

Rule 1: preconditions are evaluated in RFC 9110 13.2.2 order: If-Match (412), else
        If-Unmodified-Since (412); then If-None-Match (304 for GET/HEAD, else 412), else
        If-Modified-Since (304, GET/HEAD only).
Rule 2: If-Match uses the strong comparison, If-None-Match the weak one (RFC 9110 8.8.3.2).
Rule 3: an unparsable HTTP-date makes its header ignored; an If-Modified-Since date in the
        future is ignored too (Apache does the same; RFC 9110 13.1.3).
Rule 4: If-Range (13.1.5) keeps the Range only when its entity-tag strongly matches or its
        date equals Last-Modified exactly (the caller refuses a date when Last-Modified is weak).
Rule 5: ``If-Match: *`` is true whenever the representation exists, with or without an ETag
        (FileETag None): RFC 9110 13.1.1; httpd answers 200 too.
Rule 6: ``variants`` are the content codings the answer may be encoded with (mod_filter names
        them in ``ctx.notes[VARIANTS]``): a tag with ``-gzip``/``-br`` before the closing
        quote of the ETag names the same file, so If-Match and If-None-Match take it as the
        ETag itself (compress.py Rule 5).  If-Range does not: a ranged answer is identity.
"""

from __future__ import annotations

import re
import time
from email.utils import parsedate_tz, mktime_tz

_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')

# Request headers that send a request off the fast path of the static handler.
# ctx.notes key: the codings whose ETag suffix names the same file (Rule 6)
VARIANTS = "etag variants"

CONDITIONAL_HEADERS = frozenset((b"if-match", b"if-none-match", b"if-modified-since",
                                 b"if-unmodified-since", b"if-range", b"range"))


def http_date_to_ts(value: str) -> int | None:
    """An HTTP-date (IMF-fixdate, RFC 850 or asctime) -> seconds since the epoch, or None."""
    try:
        parsed = parsedate_tz(value)
        return None if parsed is None else int(mktime_tz(parsed))
    except (TypeError, ValueError, OverflowError):
        return None


def etag_list(value: str) -> list[tuple[bool, str]] | None:
    """``W/"a", "b"`` -> [(True, '"a"'), (False, '"b"')]; ``*`` -> None."""
    if value.strip() == "*":
        return None
    return [(bool(m.group(1)), m.group(2)) for m in _ETAG.finditer(value)]


def _split(etag: str) -> tuple[bool, str]:
    return (True, etag[2:]) if etag.startswith("W/") else (False, etag)


def _opaques(opaque: str, variants: tuple[str, ...]) -> tuple[str, ...]:
    """The opaque tag and its encoded variants' (Rule 6): '"x"' -> '"x"', '"x-gzip"' ..."""
    return (opaque,) + tuple(f'{opaque[:-1]}-{c}"' for c in variants)


def match_strong(value: str, etag: str | None, variants: tuple[str, ...] = ()) -> bool:
    tags = etag_list(value)
    if tags is None:
        return True                 # "*": a current representation exists (RFC 9110 13.1.1)
    if etag is None:
        return False
    weak, opaque = _split(etag)
    mine = _opaques(opaque, variants)
    return not weak and any(not w and t in mine for w, t in tags)


def match_weak(value: str, etag: str | None, variants: tuple[str, ...] = ()) -> bool:
    tags = etag_list(value)
    if tags is None:
        return True
    if etag is None:
        return False
    mine = _opaques(_split(etag)[1], variants)
    return any(t in mine for _, t in tags)


def evaluate(headers: dict[bytes, bytes], method: str, etag: str | None, mtime: int,
             now: float | None = None, variants: tuple[str, ...] = ()) -> int | None:
    """412, 304 or None (go on) for these request headers (Rule 1; Rule 6 for ``variants``)."""
    get_or_head = method in ("GET", "HEAD")
    im = headers.get(b"if-match")
    if im is not None:
        if not match_strong(im.decode("latin-1"), etag, variants):
            return 412
    else:
        ius = headers.get(b"if-unmodified-since")
        date = http_date_to_ts(ius.decode("latin-1")) if ius is not None else None
        if date is not None and mtime > date:
            return 412
    inm = headers.get(b"if-none-match")
    if inm is not None:
        if match_weak(inm.decode("latin-1"), etag, variants):
            return 304 if get_or_head else 412
        return None
    ims = headers.get(b"if-modified-since")
    if ims is not None and get_or_head:
        date = http_date_to_ts(ims.decode("latin-1"))
        if date is not None and date <= (time.time() if now is None else now) and mtime <= date:
            return 304
    return None


def if_range_ok(value: bytes | None, etag: str | None, mtime: int) -> bool:
    """Rule 4: whether a Range may be honoured."""
    if value is None:
        return True
    text = value.decode("latin-1").strip()
    if text.startswith(('"', "W/")):
        return match_strong(text, etag) and text != "*"
    return http_date_to_ts(text) == mtime
