"""Request size limits the core enforces while parsing (httpd's LimitRequest* directives).

Rule 1: every limit is checked as soon as the bytes that break it are seen, so a hostile
        peer never makes the core buffer more than one limit's worth of header bytes.
Rule 2: the answer follows Apache httpd where it has one:

    =====================  ===========================  ======  =======================
    limit                  directive                    status  note
    =====================  ===========================  ======  =======================
    request_line           LimitRequestLine             414     counted on the target
    field_size             LimitRequestFieldSize        400     Apache's answer
    fields                 LimitRequestFields           400     Apache's answer
    header_section         (none; nginx-like total)     431     RFC 6585; off by default
    body                   LimitRequestBody             413     CL at head time or while
                                                                counting chunked data
    =====================  ===========================  ======  =======================

``header_section`` is the one place 431 is used: the *whole* header section is too large.
A single oversized field or too many fields get Apache's 400, so clients see what they would
see from httpd.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    request_line: int = 8190          # LimitRequestLine: longest request-target accepted
    field_size: int = 8190            # LimitRequestFieldSize: longest "name: value" line
    fields: int = 100                 # LimitRequestFields: most header (and trailer) fields
    body: int = GIB                   # LimitRequestBody (0 = unlimited, as in httpd)
    header_section: int | None = None  # total bytes of all fields; None = only the above

    @property
    def stall_bytes(self) -> int:
        """Most bytes one unfinished line may hold before the core gives up on it."""
        return max(self.request_line, self.field_size) + 4


DEFAULT_LIMITS = Limits()
