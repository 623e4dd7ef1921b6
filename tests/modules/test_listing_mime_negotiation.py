"""mod_autoindex, mod_mime and mod_negotiation without sockets: their directives at -t (httpd's
words, file and line), IndexOptions merging, httpd's size and natural-order helpers, and the
negotiation algorithm's choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpmd.config.loader import load_config
from mpmd.config.model import ConfigError
from mpmd.modules import mod_autoindex as ai
from mpmd.modules import mod_negotiation as neg


def load(tmp_path: Path, text: str):
    path = tmp_path / "httpd.conf"
    path.write_text(f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n{text}")
    return load_config(str(path)), path


@pytest.mark.parametrize("line,message", [
    ("IndexOptions NameWidth=3", "NameWidth value must be greater than 5"),
    ("IndexOptions DescriptionWidth=5", "DescriptionWidth value must be greater than 12"),
    ("IndexOptions +None", "Cannot combine '+' or '-' with 'None' keyword"),
    ("IndexOptions None FancyIndexing", "Cannot combine other IndexOptions keywords with 'None'"),
    ("IndexOptions NameWidth", "NameWidth with no value may only appear as '-NameWidth'"),
    ("IndexOptions -IconWidth=3", "Cannot combine '-' with IconWidth=n"),
    ("IndexOptions Fancy", "Invalid directory indexing option"),
    ("IndexOrderDefault Up Name", "First keyword must be 'Ascending' or 'Descending'"),
    ("IndexOrderDefault Ascending Colour",
     "Second keyword must be 'Name', 'Date', 'Size', or 'Description'"),
    ("AddIcon (ALT,/i.gif .txt", "missing closing paren"),
    ("ForceLanguagePriority None Prefer", "Cannot combine ForceLanguagePriority options with None"),
    ("ForceLanguagePriority Sometimes", "Invalid ForceLanguagePriority option sometimes"),
    ("AddType text .txt", "is not a media type"),
    ("AddLanguage en", "needs a language tag and at least one extension"),
    ("MultiviewsMatch Any Handlers",
     "MultiviewsMatch Any or NegotiatedOnly may not be combined with other options"),
    ("MultiviewsMatch Some", "MultiviewsMatch requires Any, NegotiatedOnly, Handlers or Filters"),
])
def test_bad_lines_are_refused_with_their_line(tmp_path, line, message):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"<Directory {tmp_path}>\n{line}\n</Directory>\n")
    assert err.value.line == 4 and err.value.file == str(tmp_path / "httpd.conf")
    assert message in str(err.value)


def test_debian_s_files_load(tmp_path):
    mods = Path("/etc/apache2/mods-available")
    names = [mods / n for n in ("autoindex.conf", "mime.conf", "negotiation.conf", "alias.conf")]
    if not all(p.exists() for p in names):
        pytest.skip("Debian's mods-available is not installed")
    cfg, _ = load(tmp_path, "".join(f"Include {p}\n" for p in names))
    dc = cfg.dir_config(str(tmp_path / "x"), "/x")
    assert dc.index_options.flags == {"FancyIndexing", "VersionSort", "HTMLTable"}
    assert dc.index_options.get("charset") == "UTF-8"
    assert dc.language_priority[:3] == ["en", "ca", "cs"]
    assert dc.force_language_priority == {"Prefer", "Fallback"}
    assert dc.readme_name == "README.html" and dc.header_name == "HEADER.html"


def test_an_addhandler_mpmd_cannot_honour_is_named_at_t(tmp_path):
    cfg, path = load(tmp_path, "AddHandler cgi-script .cgi .pl\nAddHandler type-map var\n")
    named = [p for p in cfg.problems if p.id == "MPMD0515"]
    assert [(p.line, p.file) for p in named] == [(3, str(path))]
    assert "served as static files" in named[0].text


def test_index_options_merge_as_httpd(tmp_path):
    cfg, _ = load(tmp_path, f"""IndexOptions FancyIndexing
IndexOptions HTMLTable VersionSort
<Directory {tmp_path}/a>
    IndexOptions +FoldersFirst -VersionSort
</Directory>
<Directory {tmp_path}/a/b>
    IndexOptions SuppressSize
</Directory>
<Directory {tmp_path}/a/b/c>
    IndexOptions +IgnoreCase
</Directory>
<Directory {tmp_path}/n>
    IndexOptions None
</Directory>
""")
    for module in cfg.modules:                 # what the loader's checks do at every load
        if module.name == "autoindex_module":
            module.check_config(cfg)

    def flags(sub: str) -> frozenset[str]:
        return cfg.dir_config(f"{tmp_path}/{sub}/f", f"/{sub}/f").index_options.flags

    assert flags("x") == {"FancyIndexing", "HTMLTable", "VersionSort"}   # one scope adds up
    assert flags("a") == {"FancyIndexing", "HTMLTable", "FoldersFirst"}
    assert flags("a/b") == {"SuppressSize"}                             # unprefixed: replaces
    assert flags("a/b/c") == {"SuppressSize", "IgnoreCase"}
    assert flags("n") == frozenset()


def test_inner_icons_come_first(tmp_path):
    cfg, _ = load(tmp_path, f"""AddIconByType (TXT,/icons/text.gif) text/*
AddIcon /icons/layout.gif .html
<Directory {tmp_path}/a>
    AddIcon /icons/special.gif .txt .html
</Directory>
""")
    for module in cfg.modules:
        if module.name == "autoindex_module":
            module.check_config(cfg)
    items = ai.in_httpd_order(ai._flat(cfg.dir_config(f"{tmp_path}/a/f", "/a/f").index_icons))
    assert ai.find_item(items, "icon", "/x/a.html", "text/html", None, False) == "/icons/special.gif"
    outer = ai.in_httpd_order(ai._flat(cfg.dir_config(f"{tmp_path}/f", "/f").index_icons))
    assert ai.find_item(outer, "icon", "/x/a.html", "text/html", None, False) == "/icons/text.gif"
    assert ai.find_item(outer, "alt", "/x/a.html", "text/html", None, False) == "TXT"


@pytest.mark.parametrize("size,text", [(-1, "  - "), (0, "  0 "), (972, "972 "), (973, "1.0K"),
                                       (5000, "4.9K"), (200_000, "195K"), (10 * 2 ** 20, " 10M"),
                                       (9 * 2 ** 20 + 1000, "9.0M")])
def test_sizes_are_apr_strfsize(size, text):
    assert ai.strfsize(size) == text


def test_version_sort_is_apr_strnatcmp():
    names = [b"file10.txt", b"file9.txt", b"file09.txt", b"a b", b"ab", b"\xc3\xa9.txt", b"Z"]
    import functools
    ordered = sorted(names, key=functools.cmp_to_key(ai.strnatcmp))
    assert ordered == [b"\xc3\xa9.txt", b"Z", b"a b", b"ab", b"file09.txt", b"file9.txt",
                       b"file10.txt"]


def variants() -> list[neg.Variant]:
    en = neg.variant_from_type("index.html.en", None, "text/html")
    fr = neg.variant_from_type("index.html.fr", None, "text/html")
    en.languages, fr.languages = ("en",), ("fr",)
    en.length = fr.length = 3
    return [en, fr]


def choose(headers: dict[str, str], priority=(), force=frozenset({"Prefer"})) -> str | None:
    state = neg.Negotiation(
        neg.parse_list(headers.get("accept", "").encode() or None, True),
        neg.parse_list(headers["accept-encoding"].encode() if "accept-encoding" in headers else None),
        neg.parse_list(headers["accept-language"].encode() if "accept-language" in headers else None),
        neg.parse_list(None), list(priority), force)
    state.accept_q = any(a.quality < 1.0 for a in state.accepts or ())
    if state.accepts is None:
        state.accepts = [neg.AcceptRec("*/*")]
    best = neg.best_match(state, variants(), {})
    return best.name if best is not None else None


def test_negotiation_choices():
    assert choose({"accept-language": "fr"}) == "index.html.fr"
    assert choose({"accept-language": "fr;q=0.5, en"}) == "index.html.en"
    assert choose({"accept-language": "en-GB"}) == "index.html.en"          # the prefix fiddle
    assert choose({}, ["fr", "en"]) == "index.html.fr"                     # LanguagePriority
    assert choose({"accept-language": "ja"}, force=frozenset()) is None    # 406
    assert choose({"accept-language": "ja"}, ["fr"],
                  frozenset({"Fallback"})) == "index.html.fr"
    assert choose({"accept": "image/png"}) is None


def test_vary_lists_what_differs():
    vs = variants()
    assert neg.vary_value(vs, True) == "negotiate,accept-language"
    vs[1].media_type = "text/plain"
    assert neg.vary_value(vs, False) == "accept,accept-language"
    assert neg.vary_value(vs[:1], False) is None


def test_type_map_records():
    data = (b"URI: foo\n\nURI: foo.en.html\nContent-Type: text/html; qs=0.8\n"
            b"Content-Language: en, en-GB\nDescription: (a comment) English\n\n"
            b"Content-Type: text/plain\nBody:----x----\nbody text\n----x----\n")
    en, body = neg.parse_type_map(data, "foo.var")
    assert (en.name, en.media_type, en.source_quality, en.languages) == \
        ("foo.en.html", "text/html", 0.8, ("en", "en-gb"))
    assert en.description == " " * 12 + "English"       # the comment becomes spaces
    assert body.name == "foo.var" and body.body == b"body text\n"


def test_language_priority_lines_of_one_scope_add_up(tmp_path):
    cfg, _ = load(tmp_path, f"""LanguagePriority en fr
LanguagePriority de
ForceLanguagePriority Prefer
ForceLanguagePriority Fallback
<Directory {tmp_path}/a>
    LanguagePriority it
    ForceLanguagePriority None
</Directory>
""")
    for module in cfg.modules:
        if module.name == "negotiation_module":
            module.check_config(cfg)
    top = cfg.dir_config(f"{tmp_path}/f", "/f")
    assert list(top.language_priority) == ["en", "fr", "de"]
    assert top.force_language_priority == {"Prefer", "Fallback"}
    inner = cfg.dir_config(f"{tmp_path}/a/f", "/a/f")
    assert list(inner.language_priority) == ["it"] and inner.force_language_priority == set()


def test_multiviews_routes_are_never_kept_and_others_are(tmp_path):
    from tests.modules.static_support import body_bytes, config, get, make_site
    docroot = make_site(tmp_path)
    (docroot / "mv").mkdir()
    (docroot / "mv" / "page.html.en").write_text("en\n")
    (docroot / "mv" / "page.html.fr").write_text("fr\n")
    cfg = config(tmp_path, f"AddLanguage en .en\nAddLanguage fr .fr\n"
                           f"<Directory {docroot}/mv>\nOptions +MultiViews\n</Directory>\n")
    for _ in range(3):
        for lang in ("fr", "en"):
            resp = get(cfg, "/mv/page.html", headers={"Accept-Language": lang})
            assert body_bytes(resp) == f"{lang}\n".encode()
            assert resp.header("Content-Language") == lang
            assert resp.header("Vary") == "negotiate,accept-language"
        assert get(cfg, "/a.txt").status == 200
    kept = {path for path, _ in cfg.hooks.routes}
    assert b"/a.txt" in kept and b"/mv/page.html" not in kept


def test_addhandler_and_sethandler(tmp_path):
    from tests.modules.static_support import body_bytes, config, get, make_site
    docroot = make_site(tmp_path)
    (docroot / "g.en.html").write_text("hello\n")
    for name in ("m.var", "raw.var", "none.var"):
        (docroot / name).write_text("URI: g.en.html\nContent-Type: text/html\n")
    cfg = config(tmp_path, "AddHandler type-map .var\n"
                           '<Files "raw.var">\nSetHandler default-handler\n</Files>\n'
                           '<Files "none.var">\nSetHandler None\n</Files>\n')
    assert body_bytes(get(cfg, "/m.var")) == b"hello\n"              # the map's choice
    assert body_bytes(get(cfg, "/none.var")) == b"hello\n"           # None leaves AddHandler
    assert body_bytes(get(cfg, "/raw.var")).startswith(b"URI:")      # SetHandler wins


def test_multiviews_match_handlers_makes_an_addhandler_extension_known(tmp_path):
    from tests.modules.static_support import body_bytes, config, get, make_site
    docroot = make_site(tmp_path)
    for name in ("strict", "handlers"):
        (docroot / name).mkdir()
        (docroot / name / "menu.html.tmpl").write_text(f"{name}\n")
    cfg = config(tmp_path, "AddHandler cgi-script .tmpl\n"
                           f"<Directory {docroot}/strict>\nOptions +MultiViews\n</Directory>\n"
                           f"<Directory {docroot}/handlers>\nOptions +MultiViews\n"
                           "MultiviewsMatch Handlers\n</Directory>\n")
    assert get(cfg, "/strict/menu.html").status == 404          # .tmpl: not negotiable
    resp = get(cfg, "/handlers/menu.html")
    assert resp.status == 200 and body_bytes(resp) == b"handlers\n"
    assert resp.header("Content-Location") == "menu.html.tmpl"
