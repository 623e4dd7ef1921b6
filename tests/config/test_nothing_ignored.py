"""Nothing accepted is ignored: every directive mpmd parses has its effect, or is refused at
-t with file:line, or is named at -t as accepted with no effect (config/loader.py Rule 7).

The walk reads every directive table (core, the built-in modules, each MPM) and asks, of each
directive, that some code outside the tables reads its field, or that its table says for which
values it has no effect; the other tests check that -t then names those lines.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mpmd.config.loader import Registry, _instantiate_builtins, load_config
from mpmd.config.model import ConfigError
from mpmd.mpm import MPMS

SRC = Path(__file__).resolve().parents[2] / "src" / "mpmd"


def all_directives() -> list:
    registry = Registry()
    modules, _ = _instantiate_builtins(registry)
    tables = [registry.core, *(m.DIRECTIVES for m in modules)]
    tables += [registry.mpm_class(name).DIRECTIVES for name in MPMS if registry.mpm_class(name)]
    seen: dict[str, object] = {}
    for table in tables:
        for d in table:
            if d.field and not d.extra.get("section") and not d.extra.get("read_time"):
                seen.setdefault(d.field, d)
    return list(seen.values())


def _sources() -> str:
    return "\n".join(p.read_text() for p in SRC.rglob("*.py") if "bench" not in p.parts)


SOURCES = _sources()


def is_read(field: str) -> bool:
    """Some code reads the field: ``x.field`` or ``getattr(x, "field"`` or ``.get("field"``."""
    pattern = (rf"(?<!\bv)\.{field}\b(?!\s*=[^=])|getattr\([^,()]+,\s*[\"']{field}[\"']|"
               rf"\bget\(\s*[\"']{field}[\"']|\[\s*[\"']{field}[\"']\s*\]|"
               rf"section_values\(\s*[\"']{field}[\"']")
    return re.search(pattern, SOURCES) is not None


# Directives whose only accepted value is what mpmd always does.
ONLY_WHAT_MPMD_DOES: dict[str, str] = {
    "ProxyRequests": "Off (On is refused: no forward proxy)",
}


@pytest.mark.parametrize("directive", all_directives(), ids=lambda d: d.name)
def test_every_directive_has_an_effect_or_says_it_has_none(directive):
    if directive.name in ONLY_WHAT_MPMD_DOES:
        assert not is_read(directive.field)         # else it belongs with the others
        return
    assert is_read(directive.field) or directive.extra.get("no_effect") is not None, (
        f"{directive.name} ({directive.owner}) is accepted, but nothing reads "
        f"'{directive.field}' and its table does not say it has no effect")


def test_the_walk_can_fail():
    assert not is_read("no_such_field_anywhere")
    assert is_read("document_root")


def _problems(text: str, tmp_path: Path) -> list:
    path = tmp_path / "httpd.conf"
    path.write_text(f"Listen 127.0.0.1:0\nDocumentRoot {tmp_path}\n{text}")
    return [p for p in load_config(str(path)).problems if p.id == "MPMD0515"]


def test_t_names_lines_accepted_with_no_effect(tmp_path):
    found = _problems("Mutex default\nHostnameLookups On\nHostnameLookups Off\n"
                      "UseCanonicalName DNS\n", tmp_path)
    assert [(p.line, p.text.split()[0]) for p in found] == [
        (3, "Mutex"), (4, "HostnameLookups"), (6, "UseCanonicalName")]
    assert all(p.file == str(tmp_path / "httpd.conf") for p in found)


def test_head_time_limits_in_a_vhost_that_is_no_default_are_named(tmp_path):
    vhost = ("<VirtualHost *:80>\nServerName {}\nTimeout 5\nKeepAliveTimeout 1\n"
             "LimitRequestLine 100\nKeepAlive Off\n</VirtualHost>\n")
    found = _problems("Timeout 30\n" + vhost.format("a.test") + vhost.format("b.test"), tmp_path)
    # a.test is *:80's default: its lines govern that address's heads; b.test's cannot
    assert [(p.line, p.text.split()[0]) for p in found] == [
        (14, "KeepAliveTimeout"), (15, "LimitRequestLine")]     # Timeout: bodies, answers


@pytest.mark.parametrize("value, message", [
    ("Nonfatal=All", "AllowOverride Nonfatal=All is refused: mpmd does not ignore a .htaccess line"),
    ("FileInfo Bogus", "Illegal override option Bogus"),
    ("Options=Indexes,Bogus", "Illegal option Bogus"),
])
def test_allow_override_that_would_ignore_lines_is_refused(tmp_path, value, message):
    path = tmp_path / "httpd.conf"
    path.write_text(f"Listen 127.0.0.1:0\n<Directory {tmp_path}>\nAllowOverride {value}\n"
                    "</Directory>\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert err.value.line == 3 and err.value.file == str(path)
    assert err.value.message.startswith(message)


@pytest.mark.parametrize("section", ["<DirectoryMatch ^/srv>", "<Directory ~ ^/srv>",
                                     "<Directory /srv>\n<If \"true\">"])
def test_allow_override_where_httpd_ignores_it_is_refused(tmp_path, section):
    """httpd reads AllowOverride only from <Directory> sections without a regex."""
    path = tmp_path / "httpd.conf"
    closes = "".join(f"</{s.split()[0][1:]}>\n" for s in reversed(section.split("\n")))
    path.write_text(f"Listen 127.0.0.1:0\n{section}\nAllowOverride All\n{closes}")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert "only honoured in <Directory> sections without a regular expression" in err.value.message


def test_allow_override_none_is_accepted(tmp_path):
    assert _problems(f"<Directory {tmp_path}>\nAllowOverride None\n</Directory>\n", tmp_path) == []


@pytest.mark.parametrize("line", ["StartServers 2", "Listen 8080", "PidFile x.pid", "User nobody",
                                  "TypesConfig mime.types", "WSGIPythonPath /srv"])
def test_what_a_vhost_cannot_take_is_an_error_with_its_line(tmp_path, line):
    path = tmp_path / "httpd.conf"
    path.write_text(f"LoadModule mpm_prefork_module x\nListen 127.0.0.1:0\n"
                    f"<VirtualHost *:80>\n{line}\n</VirtualHost>\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert err.value.line == 4 and err.value.file == str(path), str(err.value)
