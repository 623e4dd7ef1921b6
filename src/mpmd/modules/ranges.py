"""Byte ranges (RFC 9110 14): parse a Range header against a representation length.

Rule 1: only the "bytes" unit is known; any other unit, or a range-set that does not parse, is
        ignored (the full 200 is sent), as Apache does.
Rule 2: a syntactically valid set with no satisfiable range is 416 (``bytes */len``).
Rule 3: the 2011 Apache Range DoS (CVE-2011-3192) must not work: more than ``MAX_RANGES``
        ranges, or ranges whose clipped lengths add up to more than the file, are refused
        with the full 200; overlapping and adjacent ranges are merged (RFC 9110 14.2 allows
        coalescing), so a multipart answer is never larger than the file plus headers.
"""

from __future__ import annotations

import secrets

MAX_RANGES = 200
UNSATISFIABLE = "unsatisfiable"


def _spec(text: str, size: int) -> tuple[int, int] | None:
    """One range-spec -> inclusive (first, last) clipped to size, or None when unsatisfiable.

    Raises ValueError when the spec does not parse (Rule 1).
    """
    first, sep, last = text.strip().partition("-")
    if not sep or not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        raise ValueError(text)
    if first == "":
        if last == "":
            raise ValueError(text)
        n = int(last)                      # suffix-range: the last n bytes
        if n == 0 or size == 0:
            return None
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        raise ValueError(text)
    if start >= size:
        return None
    return start, min(int(last), size - 1) if last else size - 1


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def parse_range(header: str, size: int) -> list[tuple[int, int]] | str | None:
    """Range header -> merged list of inclusive ranges, ``UNSATISFIABLE``, or None (ignore)."""
    unit, sep, rest = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    specs = [s for s in rest.split(",") if s.strip()]
    if not specs or len(specs) > MAX_RANGES:
        return None
    try:
        clipped = [_spec(s, size) for s in specs]
    except ValueError:
        return None
    ranges = [r for r in clipped if r is not None]
    if not ranges:
        return UNSATISFIABLE
    if len(ranges) > 1 and sum(e - s + 1 for s, e in ranges) > size:
        return None
    return _merge(ranges)


def content_range(start: int, end: int, size: int) -> str:
    return f"bytes {start}-{end}/{size}"


def multipart_parts(ranges: list[tuple[int, int]], size: int, content_type: str | None,
                    boundary: str | None = None) -> tuple[str, list[tuple[bytes, int, int]], bytes]:
    """The boundary, (part head, start, end) per range, and the closing delimiter (RFC 9110 14.6)."""
    boundary = boundary or secrets.token_hex(12)
    ctype = f"Content-Type: {content_type}\r\n" if content_type else ""
    parts = []
    for start, end in ranges:
        head = f"\r\n--{boundary}\r\n{ctype}Content-Range: {content_range(start, end, size)}\r\n\r\n"
        parts.append((head.encode("latin-1"), start, end))
    return boundary, parts, f"\r\n--{boundary}--\r\n".encode("ascii")
