"""mod_deflate, mod_brotli, mod_filter without sockets: Accept-Encoding, the chain, ETags,
conditional requests on encoded tags, and what the configuration loader accepts."""

from __future__ import annotations

import gzip
import os
import textwrap

import brotli
import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.modules import compress, conditional


@pytest.mark.parametrize("value, codings", [
    (b"gzip", {"gzip"}), (b"gzip, deflate, br", {"gzip", "deflate", "br"}),
    (b"gzip;q=0", set()), (b"gzip; q=0.000, br", {"br"}), (b"GZIP;Q=0.5", {"gzip"}),
    (b"gzip;q=0, gzip", set()), (b"br;q=0.001", {"br"}), (b"", set()), (None, set()),
    (b"gzip;q=abc", {"gzip"}), (b"*", {"*"}),
])
def test_accepted(value, codings) -> None:
    assert compress.accepted(value) == frozenset(codings)


def test_suffixed_etags() -> None:
    assert compress.suffixed('"abc"', "gzip") == '"abc-gzip"'
    assert compress.suffixed('W/"abc"', "br") == 'W/"abc-br"'
    assert compress.suffixed('""', "gzip") == '""'


def test_vary_merging() -> None:
    assert compress.merged_vary([], False) == ["Accept-Encoding"]
    assert compress.merged_vary(["Cookie"], False) == ["Cookie, Accept-Encoding"]
    assert compress.merged_vary(["accept-encoding"], False) == ["accept-encoding"]
    assert compress.merged_vary(["*"], False) == ["*"]
    assert compress.merged_vary(["Cookie"], True) == []


def test_codecs_round_trip_whole_and_streamed() -> None:
    data = b"hello world " * 500
    for codec, decode in ((compress.GZIP, gzip.decompress), (compress.BROTLI, brotli.decompress)):
        params = codec.params(object())
        assert decode(codec.whole(data, params)) == data
        stream = codec.stream(params)
        out = b"".join(stream.chunk(data[i:i + 1000]) for i in range(0, len(data), 1000))
        assert decode(out + stream.finish()) == data
        assert stream.total_in == len(data)


def test_conditionals_take_encoded_tags() -> None:
    etag, mtime = '"1a-2b"', 1000
    inm = {b"if-none-match": b'"1a-2b-gzip"'}
    assert conditional.evaluate(inm, "GET", etag, mtime) is None
    assert conditional.evaluate(inm, "GET", etag, mtime, variants=("gzip",)) == 304
    assert conditional.evaluate({b"if-match": b'"1a-2b-br"'}, "GET", etag, mtime,
                                variants=("gzip", "br")) is None
    assert conditional.evaluate({b"if-match": b'"1a-2b-zz"'}, "GET", etag, mtime,
                                variants=("gzip", "br")) == 412
    # If-Range keeps to the identity tag: a ranged answer is identity bytes
    assert not conditional.if_range_ok(b'"1a-2b-gzip"', etag, mtime)


def load(text: str, tmp_path):
    conf = tmp_path / "httpd.conf"
    conf.write_text(textwrap.dedent(text))
    return load_config(str(conf))


def test_chain_order_and_merging(tmp_path) -> None:
    cfg = load(f'''
        Listen 127.0.0.1:0
        DocumentRoot "{tmp_path}"
        AddOutputFilterByType DEFLATE text/html
        <Directory "{tmp_path}/sub">
            AddOutputFilterByType BROTLI_COMPRESS text/html text/plain
            AddOutputFilter deflate;brotli_compress .css
        </Directory>
        <Directory "{tmp_path}/set">
            SetOutputFilter BROTLI_COMPRESS
        </Directory>
    ''', tmp_path)
    top = cfg.dir_config(str(tmp_path / "a.html"), "/a.html")
    sub = cfg.dir_config(str(tmp_path / "sub/a.html"), "/sub/a.html")
    sset = cfg.dir_config(str(tmp_path / "set/a.html"), "/set/a.html")
    chain = compress.build_chain
    assert chain(top, "text/html", "a.html") == (compress.GZIP,)
    assert chain(top, "text/plain", "a.txt") == ()
    assert chain(sub, "text/html", "a.html") == (compress.GZIP, compress.BROTLI)
    assert chain(sub, "text/plain", "a.txt") == (compress.BROTLI,)
    assert chain(sub, "text/css", "x/a.min.css") == (compress.GZIP, compress.BROTLI)
    assert chain(sset, "image/png", "a.png") == (compress.BROTLI,)
    assert chain(sset, "text/html", "a.html") == (compress.BROTLI, compress.GZIP)


def test_ifmodule_names_and_settings(tmp_path) -> None:
    cfg = load(f'''
        Listen 127.0.0.1:0
        DocumentRoot "{tmp_path}"
        LoadModule filter_module /usr/lib/apache2/modules/mod_filter.so
        LoadModule deflate_module /usr/lib/apache2/modules/mod_deflate.so
        LoadModule brotli_module /usr/lib/apache2/modules/mod_brotli.so
        <IfModule mod_deflate.c>
            <IfModule mod_filter.c>
                <IfModule brotli_module>
                    DeflateCompressionLevel 9
                    BrotliCompressionQuality 11
                    BrotliCompressionWindow 22
                    BrotliCompressionMaxInputBlock 0
                    DeflateAlterETag Remove
                    DeflateFilterNote Ratio ratio
                    DeflateFilterNote Input in
                </IfModule>
            </IfModule>
        </IfModule>
    ''', tmp_path)
    assert compress.GZIP.params(cfg) == (9, 15, 9)
    assert compress.BROTLI.params(cfg) == (11, 22, 0)
    assert compress.GZIP.alter_etag(cfg) == "Remove"
    assert compress.GZIP.notes(cfg) == [("ratio", "ratio"), ("input", "in")]
    # no filter line anywhere: the request path makes no output_filter call for it
    assert not any(getattr(fn, "__self__", None).__class__.__name__ == "FilterModule"
                   for fn in cfg.hooks.by_hook["output_filter"])


def test_a_filter_line_in_a_section_keeps_the_hook(tmp_path) -> None:
    cfg = load(f'''
        Listen 127.0.0.1:0
        DocumentRoot "{tmp_path}"
        <Location "/x">
            SetOutputFilter DEFLATE
        </Location>
    ''', tmp_path)
    assert any(fn.__self__.__class__.__name__ == "FilterModule"
               for fn in cfg.hooks.by_hook["output_filter"])


@pytest.mark.parametrize("line, words", [
    ("AddOutputFilterByType INCLUDES text/html", "No such output filter: INCLUDES"),
    ("SetOutputFilter DEFLATE;SUBSTITUTE", "No such output filter: SUBSTITUTE"),
    ("AddOutputFilterByType DEFLATE", "requires at least two arguments"),
    ("DeflateWindowSize 8", "between 9 and 15"),
    ("DeflateCompressionLevel 0", "between 1 and 9"),
    ("BrotliCompressionQuality 12", "between 0 and 11"),
    ("BrotliCompressionMaxInputBlock 15", "between 16 and 24"),
    ("DeflateAlterETag Sometimes", "AddSuffix"),
    ("DeflateFilterNote Speed x", "Unknown note type Speed"),
    ("DeflateBufferSize 8096", "Invalid command 'DeflateBufferSize'"),
    ("DeflateCompressionLevel 6", None),
])
def test_refused_at_its_line(tmp_path, line, words) -> None:
    text = f"Listen 127.0.0.1:0\nDocumentRoot \"{tmp_path}\"\n{line}\n"
    if words is None:
        load(text, tmp_path)
        return
    with pytest.raises(ConfigError) as err:
        load(text, tmp_path)
    assert err.value.line == 3 and words in str(err.value)


@pytest.mark.parametrize("lines, line", [
    ("AddOutputFilterByType BROTLI_COMPRESS;DEFLATE text/html", 3),
    ('<Location "/x">\nSetOutputFilter BROTLI_COMPRESS\n</Location>', 4),
])
def test_brotli_without_its_package_is_refused_at_its_line(tmp_path, monkeypatch, lines,
                                                           line) -> None:
    monkeypatch.setattr(compress, "_BROTLI", [False])
    with pytest.raises(ConfigError) as err:
        load(f"Listen 127.0.0.1:0\nDocumentRoot \"{tmp_path}\"\n{lines}\n", tmp_path)
    assert err.value.line == line and "brotli package" in str(err.value)
    assert compress.build_chain(object(), None, None) == ()


DEBIAN = "/etc/apache2/mods-available"


@pytest.mark.skipif(not os.path.exists(f"{DEBIAN}/deflate.conf"), reason="no Debian apache2 tree")
def test_debians_deflate_files_load(tmp_path) -> None:
    """Debian's filter.load, deflate.load, deflate.conf and brotli.load as they are."""
    cfg = load(f'''
        Listen 127.0.0.1:0
        DocumentRoot "{tmp_path}"
        Include {DEBIAN}/filter.load
        Include {DEBIAN}/deflate.load
        Include {DEBIAN}/deflate.conf
        Include {DEBIAN}/brotli.load
        <IfModule mod_brotli.c>
            BrotliCompressionQuality 4
        </IfModule>
    ''', tmp_path)
    dc = cfg.dir_config(str(tmp_path / "a.js"), "/a.js")
    assert compress.build_chain(dc, "application/javascript", "a.js") == (compress.GZIP,)
    assert compress.build_chain(dc, "image/png", "a.png") == ()
    assert compress.BROTLI.params(cfg)[0] == 4
