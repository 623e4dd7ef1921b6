"""REDbot (PyPI ``redbot``, HTTP lint) on a compressed static file and a compressed app answer:
no warning about content-encoding, Vary or validators (its CONNEG and VALIDATION notes, and
any note on Content-Encoding, Vary or ETag).

REDbot comes with the ``test`` extra.  Its dependency sniffpy installs a top-level ``tests``
package into site-packages; this repository's ``tests`` is a regular package (it has an
``__init__.py``) and comes first on sys.path, so it is the one imported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap

import pytest

from tests.integration.test_compress_e2e import PAGE

REDBOT = shutil.which("redbot")
pytestmark = pytest.mark.skipif(REDBOT is None, reason="redbot is not installed (pip install redbot)")

ABOUT = {"field-content-encoding", "field-vary", "field-etag"}
CATEGORIES = {"CONNEG", "VALIDATION"}


def notes(url: str) -> list[dict]:
    """REDbot's notes on ``url``; one more run if the first could not check the answer (REDbot
    gives up on a server slowed by a busy host: no answer, no CONNEG note)."""
    found: list[dict] = []
    for _ in range(2):
        out = subprocess.run([REDBOT, "-o", "har", url], capture_output=True, timeout=120)
        try:
            found = list(json.loads(out.stdout)["log"]["entries"][0]["_red_messages"])
        except (ValueError, KeyError, IndexError):
            found = [{"note_id": "NO_HAR", "level": "BAD", "category": "GENERAL",
                      "subject": "", "summary": out.stderr.decode(errors="replace")[-500:]}]
            continue
        if any(n["note_id"].startswith("CONNEG_") for n in found):
            break
    return found


@pytest.mark.parametrize("path", ["/page.html", "/text", "/atext"])
def test_no_warnings_about_encoding_vary_or_validators(conf, make_server, path) -> None:
    (conf.htdocs / "page.html").write_bytes(PAGE)
    conf.add(textwrap.dedent('''
        AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/html text/plain
        WSGIApp /text tests.apps.compress_apps:text
        ASGIApp /atext tests.apps.compress_apps:atext
    '''))
    server = make_server(conf)
    found = notes(server.url + path)
    ids = {n["note_id"] for n in found}
    assert "CONNEG_GZIP_GOOD" in ids, found                # it did compress for REDbot
    bad = [n for n in found if n["level"] in ("WARN", "BAD")
           and (n["category"] in CATEGORIES or n["subject"] in ABOUT)]
    assert bad == [], bad
