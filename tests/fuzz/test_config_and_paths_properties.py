"""Property tests of the config reader and the path normaliser.

* Any text, however broken, is either a configuration or a ``ConfigError`` with a file and a
  line: no other exception ever escapes the loader (what ``mpmd -t`` prints).
* Words survive quoting: a line made of quoted words splits back into those words.
* A decoded request path is normalised (no empty, "." or ".." segment, no NUL, no backslash)
  or refused with 400/404; under any DocumentRoot it never leaves it.
"""

from __future__ import annotations

import posixpath
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpmd.config.lexer import split_words
from mpmd.config.loader import Registry, load_config
from mpmd.config.model import ConfigError
from mpmd.core.request import BadPath, decode_path

_REGISTRY = Registry()
NAMES = sorted({d.name for d in _REGISTRY.core} | {"SSLEngine", "Alias", "CustomLog",
                                                    "LogFormat", "WSGIApp", "StartServers",
                                                    "RequestReadTimeout", "AddType"})
SECTIONS = ["Directory", "Location", "Files", "VirtualHost", "IfModule", "IfDefine",
            "DirectoryMatch", "LocationMatch"]
WORD = st.one_of(st.sampled_from(["On", "Off", "0", "-1", "1k", "/tmp", "*:80", "\"a b\"",
                                  "'x'", "\\", "${X}", "~", "!", "none", "All", "%h %r"]),
                 st.text(alphabet=string.printable.strip() + "é", max_size=8))


@st.composite
def config_lines(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        name = draw(st.sampled_from(NAMES)) if kind else draw(st.text(max_size=10))
        return " ".join([name, *draw(st.lists(WORD, max_size=4))])
    if kind <= 7:
        section = draw(st.sampled_from(SECTIONS))
        return f"<{section} {' '.join(draw(st.lists(WORD, max_size=2)))}>" if kind == 6 \
            else f"</{section}>"
    return draw(st.sampled_from(["# comment", "", "   ", "Define X 1", "\\", "<", ">", "</>"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(config_lines(), max_size=12))
def test_any_config_text_loads_or_fails_with_a_line(lines):
    text = "Listen 127.0.0.1:0\n" + "\n".join(lines) + "\n"
    try:
        load_config(text=text, path="/fuzz/httpd.conf")
    except ConfigError as exc:
        assert exc.file is None or exc.line is not None, str(exc)
        assert str(exc)                           # -t has something to print


PLAIN = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc"),
                                       blacklist_characters="\"'\\"), min_size=1, max_size=8)


@given(st.lists(st.one_of(PLAIN, st.text(alphabet="ab c\t", min_size=1, max_size=6)),
                min_size=1, max_size=6))
def test_quoted_words_split_back(words):
    line = " ".join(f'"{w}"' for w in words)
    assert split_words(line) == words


@settings(max_examples=500)
@given(st.binary(max_size=40).map(lambda b: b"/" + b))
def test_decoded_paths_are_normal_and_stay_under_the_root(raw):
    try:
        path = decode_path(raw)
    except BadPath as exc:
        assert exc.status in (400, 404)
        return
    assert path.startswith("/") and "\x00" not in path and "\\" not in path
    inner = path.rstrip("/").split("/")[1:]
    assert all(seg not in ("", ".", "..") for seg in inner), path
    root = "/srv/www"
    assert posixpath.normpath(root + path).startswith(root)
