"""mod_rewrite against apache2 itself: the corpus of rewrite_corpus.py (rule sets in server,
<VirtualHost>, <Directory> and .htaccess contexts, with the requests sent to each) run on one
apache2 and on mpmd with the same configuration text, on prefork and event (the whole corpus)
and worker and the nginx MPM (the groups marked ``all_mpms``).  For every request both give
the same status, the same Location (the server's own port written as PORT), the same X-Env
(what E= set), the same Vary and, for a 200, the same body (each file's text names it) and media type."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.integration import rewrite_corpus as corpus
from tests.support.apache import MODULES, free_port, needs_apache, running
from tests.support.harness import Server

APACHE_MODULES = ("authz_core", "rewrite", "mime", "dir", "alias", "headers", "env")
FILES = ("index.html", "real.html", "f.txt", "s/x.html", "s/index.html")


def _prefix(i: int, group: corpus.Group) -> str:
    return f"{group.context[0]}{i}"


def _fill(text: str, prefix: str, root: Path) -> str:
    return text.replace("@P", prefix).replace("@D", str(root / "htdocs")).replace("@R", str(root))


def make_tree(root: Path) -> None:
    """The files every group's rules point at (see rewrite_corpus's docstring)."""
    htdocs = root / "htdocs"
    for name in ("t/a.html", "t/b.html", "t/c.txt", "t/index.html"):
        (htdocs / name).parent.mkdir(parents=True, exist_ok=True)
        (htdocs / name).write_text(name + "\n")
    (root / "other").mkdir(exist_ok=True)
    (root / "other" / "o.html").write_text("other/o.html\n")
    (root / "map.txt").write_text("# a txt map\nfirst a.html\nsecond b.html\n\n")
    (root / "rnd.txt").write_text("one b.html|b.html\n")
    for i, group in enumerate(corpus.groups()):
        prefix = _prefix(i, group)
        d = htdocs / prefix
        (d / "s").mkdir(parents=True, exist_ok=True)
        for name in FILES:
            (d / name).write_text(f"{prefix}/{name}\n")
        (d / "empty.txt").write_text("")
        (d / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(d / "run.sh", 0o755)
        if not (d / "link.html").is_symlink():
            os.symlink(d / "real.html", d / "link.html")
        if group.context == "htaccess":
            (d / ".htaccess").write_text(_fill(group.rules, prefix, root) + "\n")
            if group.sub:
                (d / "s" / ".htaccess").write_text(_fill(group.sub, prefix, root) + "\n")


def config(root: Path, mpm: str, ports: tuple[int, ...], groups: list[tuple[int, corpus.Group]],
           who: str) -> str:
    htdocs = root / "htdocs"
    loads = [f"LoadModule {m}_module {MODULES}/mod_{m}.so" for m in (f"mpm_{mpm}", *APACHE_MODULES)]
    server_rules, dir_sections, vhost_rules, inherit_rules = [], [], [], []
    for i, group in groups:
        prefix = _prefix(i, group)
        rules = _fill(group.rules, prefix, root)
        if group.context == "server":
            server_rules.append(rules)
        elif group.context == "vhost":
            vhost_rules.append(rules)
        elif group.context == "dir":
            dir_sections.append(f'<Directory "{htdocs / prefix}">\n{rules}\n</Directory>')
            if group.sub:
                dir_sections.append(f'<Directory "{htdocs / prefix / "s"}">\n'
                                    f'{_fill(group.sub, prefix, root)}\n</Directory>')
        elif group.context == "htaccess":
            dir_sections.append(f'<Directory "{htdocs / prefix}">\n    AllowOverride FileInfo\n'
                                '</Directory>')
        elif group.context == "inherit":
            inherit_rules.append(rules)
    return "\n".join([
        f'ServerRoot "{root}"', "ServerName localhost",
        *(f"Listen 127.0.0.1:{p}" for p in ports), *loads,
        "TypesConfig /etc/mime.types",
        f'PidFile "{root}/{who}.pid"', f'ErrorLog "{root}/{who}-error.log"',
        "LogLevel warn",
        f'DocumentRoot "{htdocs}"',
        f'<Directory "{root}">', "    Require all granted", "    AllowOverride None",
        "</Directory>",
        f'Alias /aliased "{root}/other"',
        'Header set X-Env "%{RWENV}e" env=RWENV',
        "SetEnv RWTEST set-by-setenv",
        f"RewriteMap tmap txt:{root}/map.txt", f"RewriteMap rmap rnd:{root}/rnd.txt",
        "RewriteMap up int:toupper", "RewriteMap low int:tolower",
        "RewriteMap esc int:escape", "RewriteMap unesc int:unescape",
        "RewriteEngine On", *server_rules, *dir_sections,
        f"<VirtualHost 127.0.0.1:{ports[1]}>", "    ServerName vh.test",
        f'    DocumentRoot "{htdocs}"', "    RewriteEngine On",
        f"    RewriteMap vmap txt:{root}/map.txt", *vhost_rules, "</VirtualHost>",
        f"<VirtualHost 127.0.0.1:{ports[2]}>", "    ServerName inherit.test",
        f'    DocumentRoot "{htdocs}"', "    RewriteEngine On", "    RewriteOptions Inherit",
        *inherit_rules, "</VirtualHost>", ""])


def requests_of(groups: list[tuple[int, corpus.Group]]) -> list[tuple]:
    out = []
    for i, group in groups:
        prefix = _prefix(i, group)
        for req in group.requests:
            method, headers = "GET", {}
            if isinstance(req, tuple):
                if len(req) == 3:
                    method, path, headers = req
                else:
                    path, headers = req
            else:
                path = req
            port = {"vhost": 1, "inherit": 2}.get(group.context, 0)
            out.append((method, path.replace("@P", prefix), dict(headers), port))
    return out


def answers(ports: tuple[int, ...], reqs: list[tuple]) -> list[tuple]:
    out = []
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=20) for p in ports]
    try:
        for method, path, headers, which in reqs:
            port, client = ports[which], clients[which]
            r = client.send(client.build_request(method, path, headers=headers))
            location = r.headers.get("location")
            if location and location.startswith("/"):
                # mpmd's mod_dir answers a directory's missing slash with a relative
                # Location, httpd's with an absolute one: not mod_rewrite's to compare
                location = f"http://{headers.get('Host', f'127.0.0.1:{port}')}{location}"
            if location:
                location = location.replace(f":{port}", ":PORT")
            ok = r.status_code == 200
            ctype = r.headers.get("content-type", "").split(";")[0] if ok else None
            out.append((which, method, path, tuple(sorted(headers.items())), r.status_code, location,
                        r.headers.get("x-env"), r.text if ok else None, ctype,
                        r.headers.get("vary")))
    finally:
        for c in clients:
            c.close()
    return out


def _groups(all_mpms_only: bool) -> list[tuple[int, corpus.Group]]:
    return [(i, g) for i, g in enumerate(corpus.groups()) if g.all_mpms or not all_mpms_only]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("rw")
    make_tree(root)
    return root


@pytest.fixture(scope="module")
def apache_answers(tree):
    ports = (free_port(), free_port(), free_port())
    groups = _groups(False)
    conf = tree / "apache.conf"
    conf.write_text(config(tree, "event", ports, groups, "apache"))
    with running(conf, [("127.0.0.1", p) for p in ports]):
        got = answers(ports, requests_of(groups))
    by_request = {tuple(a[:4]): a for a in got}
    assert len(by_request) == len(got), "two corpus requests are the same request"
    return by_request


class _Conf:
    """What tests.support.harness.Server needs of a config: root, htdocs, write()."""

    def __init__(self, root: Path, text: str, name: str) -> None:
        self.root = root
        self.htdocs = root / "htdocs"
        self.text, self.name = text, name

    def write(self) -> Path:
        path = self.root / self.name
        path.write_text(self.text)
        return path


def test_corpus_size():
    assert corpus.size() >= 200, corpus.size()


@needs_apache(*(f"mod_{m}.so" for m in APACHE_MODULES))
@pytest.mark.parametrize("mpm", ["event", "prefork", "worker", "nginx"])
def test_rewrite_as_apache(apache_answers, tree, mpm):
    whole = mpm in ("event", "prefork")
    groups = _groups(not whole)
    ports = (free_port(), free_port(), free_port())
    text = config(tree, mpm if mpm != "nginx" else "event", ports, groups, f"mpmd-{mpm}")
    if mpm == "nginx":
        text = text.replace(f"mod_mpm_event.so", "mod_mpm_nginx.so").replace(
            "mpm_event_module", "mpm_nginx_module")
    server = Server(_Conf(tree, text, f"mpmd-{mpm}.conf"))     # type: ignore[arg-type]
    server.ready_file = tree / f"ready-{mpm}.json"
    server.out_file = tree / f"out-{mpm}.txt"
    server.start()
    try:
        ours = answers(ports, requests_of(groups))
    finally:
        server.stop()
    diff = [(apache_answers[tuple(a[:4])], a) for a in ours if apache_answers[tuple(a[:4])] != a]
    assert not diff, f"{len(diff)} of {len(ours)} differ:\n" + "\n".join(
        f"apache {a}\nmpmd   {b}" for a, b in diff)
