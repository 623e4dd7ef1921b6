"""Request size limits the core enforces while parsing (httpd's LimitRequest* directives).

Rule 1: every limit is checked as soon as the bytes that break it are seen, so a hostile
        peer never makes the core buffer more than one limit's worth of header bytes.
Rule 2: the answer follows Apache httpd where it has one:

    =====================  ===========================  ======  =======================
    limit                  directive                    status  note
    =====================  ===========================  ======  =======================
    request_line           LimitRequestLine             414     the whole line, Rule 3
    field_size             LimitRequestFieldSize        400     one field line, Rule 3
    fields                 LimitRequestFields           400     0 = no limit
    header_section         (none; nginx-like total)     431     RFC 6585; off by default
    body                   LimitRequestBody             413     CL at head time or while
                                                                counting chunked data
    =====================  ===========================  ======  =======================

Rule 3: httpd 2.4 (protocol.c, ap_rgetline with a buffer of limit + 2) accepts a line of up
        to *limit + 1* bytes without its CRLF, and refuses one of limit + 2 (measured against
        Apache 2.4.68 with limits 50, 100, 300 and 100000).  The same here:

        - the request line is "METHOD SP target SP HTTP/x.y" (llhttp takes single spaces
          only and a version of 8 bytes), so it is len(method) + len(target) + 10;
        - a field line is counted as "name: value", one space after the colon: llhttp drops
          the spaces before the value (it keeps those after it), so the count is off from the
          raw line only for "name:value" (one more) or several spaces (fewer).

        A limit of 0 is a limit (every request line and every field is too long), as in httpd;
        only LimitRequestFields 0 means "no limit".  There is no upper bound: llhttp has no
        size cap of its own, so any value is honoured (the memory one head can hold grows
        with it, Rule 1).

``header_section`` is the one place 431 is used: the *whole* header section is too large.
A single oversized field or too many fields get Apache's 400, so clients see what they would
see from httpd.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    request_line: int = 8190          # LimitRequestLine: longest request line (Rule 3)
    field_size: int = 8190            # LimitRequestFieldSize: longest "name: value" line
    fields: int = 100                 # LimitRequestFields: most header (and trailer) fields; 0 = any
    body: int = GIB                   # LimitRequestBody (0 = unlimited, as in httpd)
    header_section: int | None = None  # total bytes of all fields; None = only the above

    @property
    def stall_bytes(self) -> int:
        """Most bytes one unfinished line may hold before the core gives up on it: the longest
        line accepted (limit + 1, Rule 3) and its CRLF, plus one."""
        return max(self.request_line, self.field_size) + 4


DEFAULT_LIMITS = Limits()
