"""The default handler: files, methods, symlinks, directories, MIME, validators, cache."""

from __future__ import annotations

import os

import pytest

from mpmd.config.loader import ConfigError
from mpmd.core.exchange import FileBody
from tests.modules.static_support import body_bytes, config, get, make_site


@pytest.fixture
def site(tmp_path):
    make_site(tmp_path)
    return tmp_path


def test_small_file(site) -> None:
    resp = get(config(site), "/a.txt")
    assert resp.status == 200 and body_bytes(resp) == b"hello\n"
    assert resp.header("Content-Type") == "text/plain"
    assert resp.header("Content-Length") == "6"
    assert resp.header("Accept-Ranges") == "bytes"
    st = os.stat(site / "htdocs" / "a.txt")
    assert resp.header("ETag") == f'"{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'
    assert resp.header("Last-Modified").endswith("GMT")


def test_big_file_is_a_file_body(site) -> None:
    resp = get(config(site), "/big.bin")
    assert isinstance(resp.body, FileBody) and resp.body.length == 1 << 20
    assert resp.header("Content-Type") == "application/octet-stream"
    assert body_bytes(resp) == (site / "htdocs" / "big.bin").read_bytes()


def test_head_has_length_but_no_body(site) -> None:
    resp = get(config(site), "/big.bin", method="HEAD")
    assert resp.status == 200 and resp.body == b"" and resp.header("Content-Length") == str(1 << 20)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_other_methods_405(site, method: str) -> None:
    resp = get(config(site), "/a.txt", method=method)
    assert resp.status == 405 and "GET" in resp.header("Allow") and "POST" not in resp.header("Allow")
    assert (site / "htdocs" / "a.txt").read_text() == "hello\n"


@pytest.mark.parametrize("target", ["/a.txt", "/nope"])
def test_trace_echoes_the_request_as_httpd_with_trace_enable_on(site, target: str) -> None:
    # TraceEnable On (httpd's default): answered in map_to_storage, whatever the URL
    resp = get(config(site), target, method="TRACE", headers={"X-Probe": "1"})
    assert resp.status == 200 and resp.header("Content-Type") == "message/http"
    assert body_bytes(resp) == f"TRACE {target} HTTP/1.1\r\nHost: localhost\r\nX-Probe: 1\r\n\r\n".encode()


def test_trace_enable_off_is_405_with_an_empty_allow_as_httpd(site) -> None:
    resp = get(config(site, "TraceEnable Off"), "/a.txt", method="TRACE")
    assert resp.status == 405 and resp.header("Allow") == ""
    assert get(config(site, "TraceEnable Off"), "/a.txt").status == 200


def test_trace_enable_extended_is_refused(site) -> None:
    with pytest.raises(ConfigError, match="TraceEnable extended is refused"):
        config(site, "TraceEnable extended")
    with pytest.raises(ConfigError, match="TraceEnable must be one of 'on', 'off', or 'extended'"):
        config(site, "TraceEnable maybe")


def test_options_200(site) -> None:
    resp = get(config(site), "/a.txt", method="OPTIONS")
    assert resp.status == 200 and resp.header("Allow") == "GET, HEAD, OPTIONS"


@pytest.mark.parametrize("target", ["/nope", "/a.txt/", "/a.txt/x", "/sub/nope.html"])
def test_missing_404(site, target: str) -> None:
    assert get(config(site), target).status == 404


def test_cache_sees_changes(site) -> None:
    cfg = config(site)
    assert body_bytes(get(cfg, "/a.txt")) == b"hello\n"
    path = site / "htdocs" / "a.txt"
    path.write_text("changed!\n")
    os.utime(path, ns=(1, 10**18))
    assert body_bytes(get(cfg, "/a.txt")) == b"changed!\n"


def test_cache_sees_a_file_replaced_with_the_same_size_and_mtime(site) -> None:
    """An editor's save (write a new file, rename it over the old one) keeps size and
    mtime here, so only the inode tells the cached entry is stale."""
    cfg = config(site)
    path = site / "htdocs" / "a.txt"
    st = os.stat(path)
    assert body_bytes(get(cfg, "/a.txt")) == b"hello\n"
    new = site / "htdocs" / "a.txt.new"
    new.write_bytes(b"HELLO\n")
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, path)
    assert (os.stat(path).st_size, os.stat(path).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert body_bytes(get(cfg, "/a.txt")) == b"HELLO\n"


def test_cache_sees_a_change_of_size_alone(site) -> None:
    cfg = config(site)
    path = site / "htdocs" / "a.txt"
    st = os.stat(path)
    assert body_bytes(get(cfg, "/a.txt")) == b"hello\n"
    with open(path, "ab") as f:                   # same inode
        f.write(b"more\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert body_bytes(get(cfg, "/a.txt")) == b"hello\nmore\n"


def test_unreadable_file_403(site) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    path = site / "htdocs" / "locked.txt"
    path.write_text("x")
    path.chmod(0)
    assert get(config(site), "/locked.txt").status == 403


# -- symlinks (Options FollowSymLinks) -------------------------------------------------

@pytest.fixture
def links(site):
    docroot = site / "htdocs"
    (docroot / "out.txt").symlink_to(site / "secret.txt")
    (docroot / "in.txt").symlink_to(docroot / "a.txt")
    (docroot / "linkdir").symlink_to(site)
    return site


@pytest.mark.parametrize("target", ["/out.txt", "/in.txt", "/linkdir/secret.txt"])
def test_symlinks_refused_without_follow(links, target: str) -> None:
    cfg = config(links, f"<Directory {links}/htdocs>\nOptions -FollowSymLinks\n</Directory>")
    resp = get(cfg, target)
    assert resp.status == 403 and b"CANARY" not in body_bytes(resp)


def test_plain_files_served_without_follow(links) -> None:
    cfg = config(links, f"<Directory {links}/htdocs>\nOptions None\n</Directory>")
    assert get(cfg, "/a.txt").status == 200
    assert get(cfg, "/sub/").status == 200


def test_symlinks_followed_with_follow(links) -> None:
    cfg = config(links, "Options FollowSymLinks")
    assert body_bytes(get(cfg, "/in.txt")) == b"hello\n"
    assert get(cfg, "/out.txt").status == 200        # httpd follows links out of the root too


# -- directories -----------------------------------------------------------------------

def test_dir_redirect_keeps_query(site) -> None:
    resp = get(config(site), "/sub?x=1&y=2")
    assert resp.status == 301 and resp.header("Location") == "/sub/?x=1&y=2"


def test_dir_redirect_no_crlf_injection(site) -> None:
    resp = get(config(site), "/sub?x=%0d%0aX-Injected:%20yes")
    loc = resp.header("Location")
    assert resp.status == 301 and "\r" not in loc and "\n" not in loc
    assert loc.startswith("/sub/?")


def test_dir_redirect_no_open_redirect(site) -> None:
    resp = get(config(site), "//127.0.0.2/%2e%2e/sub")
    assert resp.status == 301 and resp.header("Location") == "/sub/"


def test_dir_redirect_encodes_names(site) -> None:
    (site / "htdocs" / "a b").mkdir()
    assert get(config(site), "/a%20b").header("Location") == "/a%20b/"


def test_directory_index(site) -> None:
    resp = get(config(site), "/sub/")
    assert resp.status == 200 and body_bytes(resp) == b"sub index\n"
    assert resp.header("Content-Type") == "text/html"


def test_directory_index_list_order(site) -> None:
    (site / "htdocs" / "sub" / "home.txt").write_text("home")
    cfg = config(site, "DirectoryIndex missing.html home.txt index.html")
    assert body_bytes(get(cfg, "/sub/")) == b"home"


def test_directory_without_index_403(site) -> None:
    assert get(config(site), "/noindex/").status == 403


def test_autoindex(site) -> None:
    (site / "htdocs" / "noindex" / "b.txt").write_text("bb")
    (site / "htdocs" / "noindex" / "adir").mkdir()
    cfg = config(site, f"<Directory {site}/htdocs/noindex>\nOptions +Indexes\n</Directory>")
    resp = get(cfg, "/noindex/")
    page = body_bytes(resp).decode()
    assert resp.status == 200 and resp.header("Content-Type").startswith("text/html")
    # httpd's ap_os_escape_path: lower-case hex
    assert "f&lt;1&gt;.txt" in page and "<1>" not in page and 'href="f%3c1%3e.txt"' in page
    assert page.index("adir/") < page.index("b.txt") < page.index("f&lt;1&gt;.txt")
    assert "Parent Directory" in page


def test_autoindex_ignore(site) -> None:
    cfg = config(site, "Options Indexes\nIndexIgnore *.txt")
    assert "f&lt;1" not in body_bytes(get(cfg, "/noindex/")).decode()


# -- MIME --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,ctype", [
    ("x.html", "text/html"), ("x.css", "text/css"), ("x.js", "text/javascript"),
    ("x.json", "application/json"), ("x.png", "image/png"), ("x.woff2", "font/woff2"),
    ("x.svg", "image/svg+xml"), ("x.wasm", "application/wasm"), ("X.HTML", "text/html"),
    ("x.tar.gz", "application/gzip"), ("x.unknownext", None), ("noext", None),
])
def test_mime(site, name: str, ctype: str | None) -> None:
    (site / "htdocs" / name).write_text("x")
    assert get(config(site), "/" + name).header("Content-Type") == ctype


def test_addtype_and_charset(site) -> None:
    (site / "htdocs" / "x.foo").write_text("x")
    cfg = config(site, "AddType application/x-foo .foo\nAddDefaultCharset utf-8")
    assert get(cfg, "/x.foo").header("Content-Type") == "application/x-foo"
    assert get(cfg, "/a.txt").header("Content-Type") == "text/plain; charset=utf-8"
    assert get(cfg, "/sub/deeper/x.css").header("Content-Type") == "text/css"


def test_types_config_unset_and_default_missing_uses_bundled(site) -> None:
    assert not (site / "conf" / "mime.types").exists()
    assert get(config(site), "/a.txt").header("Content-Type") == "text/plain"


def test_types_config_missing_is_an_error(site) -> None:
    """httpd: AH01597, and the server does not start (tests/config has the -t/start side)."""
    with pytest.raises(ConfigError) as info:
        config(site, "TypesConfig conf/does-not-exist.types")
    assert info.value.message == (f"could not open mime types config file "
                                  f"{site}/conf/does-not-exist.types.")
    assert info.value.line == 3


def test_types_config_file(site) -> None:
    (site / "my.types").write_text("# comment\ntext/x-weird txt\n")
    cfg = config(site, "TypesConfig my.types")
    assert get(cfg, "/a.txt").header("Content-Type") == "text/x-weird"


def test_file_etag_none_and_inode(site) -> None:
    assert get(config(site, "FileETag None"), "/a.txt").header("ETag") is None
    st = os.stat(site / "htdocs" / "a.txt")
    etag = get(config(site, "FileETag INode MTime Size"), "/a.txt").header("ETag")
    assert etag == f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns // 1000:x}"'


def test_unknown_set_handler_500(site) -> None:
    assert get(config(site, "SetHandler no-such-handler"), "/a.txt").status == 500
