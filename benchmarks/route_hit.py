"""The route-cache hit of a static file (``core.request.begin``), AllowOverride None, in one
process: what a repeated request costs before its handler, for the tree whose ``src`` is given
(to compare two trees: ``git archive REV src | tar -x -C /tmp/rev``).

    python3 benchmarks/route_hit.py src          # best of 5 x 200k calls, in ns
"""

from __future__ import annotations

import os
import sys
import tempfile
import timeit

sys.path.insert(0, os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "src"))

from mpmd.config.loader import load_config  # noqa: E402
from mpmd.core import request as rq  # noqa: E402
from mpmd.http.events import Request  # noqa: E402


class Conn:
    client_addr = ("127.0.0.1", 1)


def main() -> int:
    d = tempfile.mkdtemp()
    os.makedirs(f"{d}/site")
    with open(f"{d}/site/1k.html", "w") as f:
        f.write("x" * 1024)
    cfg = load_config(text=f"Listen 127.0.0.1:0\nDocumentRoot {d}\n<Directory {d}>\n"
                           "AllowOverride None\nRequire all granted\n</Directory>\n", server_root=d)
    req = Request("GET", b"/site/1k.html", b"/site/1k.html", b"", "1.1", (), False, False, None, False)
    rq.prepare(rq.new_context(req, Conn(), cfg, None, None, 0.0))
    n = 200_000
    best = min(timeit.repeat(lambda: rq.begin(req, Conn, cfg, None, None, 0.0), number=n, repeat=5))
    print(f"{best / n * 1e9:.0f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
