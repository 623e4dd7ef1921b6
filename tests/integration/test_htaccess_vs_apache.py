""".htaccess files, checked against apache2 itself: the same tree and AllowOverride lines give
the same status, headers and bodies on every MPM -- a .htaccess demanding a password (401),
a line its AllowOverride does not allow and a misspelled one (500 in both), Header,
ErrorDocument, DirectoryIndex and Options -Indexes in .htaccess, nested directories
overriding their parents, AllowOverrideList, <Files> and <If> inside a .htaccess, and
GET /.htaccess refused.  Then a .htaccess edited and deleted while the server runs: the next
request sees it, in both servers."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.apache import config, free_port, needs_apache, running

MODULES = ("auth_basic", "authn_core", "authn_file", "authz_user", "headers", "dir",
           "autoindex", "mime", "authz_host", "access_compat")

# directory -> (its AllowOverride/AllowOverrideList lines, its .htaccess, files in it)
TREE = {
    "auth": ("AllowOverride AuthConfig",
             'AuthType Basic\nAuthName "Members"\nAuthUserFile "{files}/htpasswd"\n'
             "Require valid-user\n", ["x.txt"]),
    "authall": ("AllowOverride All",         # the report: this was served with 200
                'AuthType Basic\nAuthName "Members"\nAuthUserFile "{files}/htpasswd"\n'
                "Require valid-user\n", ["x.txt"]),
    "disallowed": ("AllowOverride AuthConfig", "Header set X-Ht no\n", ["x.txt"]),
    "typo": ("AllowOverride All", "# a comment\n\nHeadr set X-Ht no\n", ["x.txt"]),
    "fileinfo": ("AllowOverride All",
                 'Header set X-Ht "fileinfo"\nErrorDocument 404 "custom not found"\n'
                 "DirectoryIndex home.html\n", ["home.html", "x.txt"]),
    "noindex": ("AllowOverride Options", "Options -Indexes\n", ["x.txt"]),
    "listing": ("AllowOverride None", "Options -Indexes\n", ["x.txt"]),
    "nested": ("AllowOverride All", "Header set X-Level top\nHeader set X-Top yes\n", ["x.txt"]),
    "nested/inner": ("", "Header set X-Level inner\n", ["x.txt"]),
    "nested/deeper": ("AllowOverride None", "Header set X-Level deeper\n", ["x.txt"]),
    "listed": ("AllowOverride None\n    AllowOverrideList Header", "Header set X-List yes\n",
               ["x.txt"]),
    "unlisted": ("AllowOverride None\n    AllowOverrideList Header",
                 'ErrorDocument 404 "nope"\n', ["x.txt"]),
    "optlist": ("AllowOverride Options=Indexes", "Options +FollowSymLinks\n", ["x.txt"]),
    "optok": ("AllowOverride Options=Indexes,MultiViews", "Options -Indexes +MultiViews\n",
              ["x.txt"]),
    "optdefault": ("AllowOverride Options", "Options +MultiViews\n", ["x.txt"]),
    "optall": ("AllowOverride All", "Options +MultiViews +SymLinksIfOwnerMatch\n", ["x.txt"]),
    "files": ("AllowOverride All",
              '<Files "secret.txt">\n    Require all denied\n</Files>\n'
              '<FilesMatch "\\.txt$">\n    Header set X-Txt yes\n</FilesMatch>\n',
              ["secret.txt", "x.txt"]),
    "cond": ("AllowOverride FileInfo",
             "<If \"%{QUERY_STRING} == 'on'\">\n    Header set X-If on\n</If>\n"
             "<Else>\n    Header set X-If off\n</Else>\n", ["x.txt"]),
    "server": ("AllowOverride All", "DocumentRoot /tmp\n", ["x.txt"]),
    "include": ("AllowOverride All", "Include /etc/hostname\n", ["x.txt"]),
    "live": ("AllowOverride All", None, ["x.txt"]),
    "loop": ("AllowOverride All", None, ["x.txt"]),
    "nolinks": ("AllowOverride Options", "Options -FollowSymLinks\n", ["x.txt"]),
    "links": ("AllowOverride Options", "Options +Indexes\n", ["x.txt"]),     # .htaccess -> itself: ELOOP, 403
    # access control in .htaccess: Order/Allow/Deny need Limit, Require and containers
    # AuthConfig, <Limit> either
    "order": ("AllowOverride Limit", "Order allow,deny\nAllow from 10.0.0.0/8\n", ["x.txt"]),
    "order-refused": ("AllowOverride AuthConfig", "Order deny,allow\nDeny from all\n", ["x.txt"]),
    "limit": ("AllowOverride AuthConfig", "<LimitExcept POST>\n    Require all denied\n"
              "</LimitExcept>\n", ["x.txt"]),
    "limit-post": ("AllowOverride Limit", "<Limit POST>\n    Deny from all\n</Limit>\n",
                   ["x.txt"]),
    "containers": ("AllowOverride AuthConfig", "<RequireAll>\n    Require all granted\n"
                   "    <RequireNone>\n        Require ip 127.0.0.1\n    </RequireNone>\n"
                   "</RequireAll>\n", ["x.txt"]),
    "require-refused": ("AllowOverride Limit", "Require all denied\n", ["x.txt"]),
}
CREDS = "Basic " + base64.b64encode(b"mem:secret").decode()
REQUESTS = [
    ("/auth/x.txt", None), ("/auth/x.txt", CREDS), ("/authall/x.txt", None),
    ("/authall/x.txt", CREDS), ("/disallowed/x.txt", None),
    ("/typo/x.txt", None), ("/fileinfo/", None), ("/fileinfo/x.txt", None),
    ("/fileinfo/missing", None), ("/noindex/", None), ("/noindex/x.txt", None),
    ("/listing/", None), ("/nested/x.txt", None), ("/nested/inner/x.txt", None),
    ("/nested/deeper/x.txt", None), ("/listed/x.txt", None), ("/unlisted/x.txt", None),
    ("/optlist/x.txt", None), ("/optdefault/x.txt", None), ("/optall/x.txt", None), ("/fileinfo", None), ("/optok/x.txt", None), ("/optok/", None),
    ("/files/secret.txt", None), ("/files/x.txt", None),
    ("/cond/x.txt?on", None), ("/cond/x.txt?off", None), ("/server/x.txt", None),
    ("/include/x.txt", None), ("/fileinfo/.htaccess", None), ("/.htaccess", None),
    ("/.htpasswd", None), ("/index.html", None), ("/loop/x.txt", None),
    ("/nolinks/l.txt", None), ("/links/l.txt", None),
    ("/order/x.txt", None), ("/order-refused/x.txt", None), ("/limit/x.txt", None),
    ("/limit-post/x.txt", None), ("/containers/x.txt", None), ("/require-refused/x.txt", None),
]
SHOWN = ("x-ht", "x-level", "x-top", "x-list", "x-txt", "x-if", "www-authenticate",
         "x-v")
DENY_HT = '<FilesMatch "^\\.ht">\n    Require all denied\n</FilesMatch>\n'


def _tree(htdocs: Path, files: Path) -> str:
    """The documents and their .htaccess files; returns the config lines for them."""
    files.mkdir(parents=True, exist_ok=True)
    subprocess.run(["htpasswd", "-b", "-c", "-B", str(files / "htpasswd"), "mem", "secret"],
                   check=True, capture_output=True)
    htdocs.mkdir(parents=True, exist_ok=True)
    (htdocs / "index.html").write_text("<h1>hello</h1>\n")
    (htdocs / ".htaccess").write_text("# nothing: its directory allows no override\nFoo\n")
    (htdocs / ".htpasswd").write_text("x:y\n")
    # Debian's apache2.conf says None for "/": httpd's own default (no AllowOverride line)
    # still stats .htaccess files and refuses every line in them; mpmd's reads none.
    lines = ["<Directory />", "    AllowOverride None", "</Directory>", f'<Directory "{htdocs}">', "    Options Indexes FollowSymLinks",
             "    Require all granted", "</Directory>", DENY_HT]
    for name, (allow, htaccess, names) in TREE.items():
        d = htdocs / name
        d.mkdir(parents=True, exist_ok=True)
        for f in names:
            (d / f).write_text(f"{name}/{f}\n")
        if htaccess is not None:
            (d / ".htaccess").write_text(htaccess.replace("{files}", str(files)))
        if allow:
            lines += [f'<Directory "{d}">', f"    {allow}", "</Directory>"]
    os.symlink(".htaccess", htdocs / "loop" / ".htaccess")    # exists, cannot be opened
    for name in ("nolinks", "links"):
        os.symlink("x.txt", htdocs / name / "l.txt")
    return "\n".join(lines) + "\n"


def _answer(client: httpx.Client, path: str, cred: str | None) -> tuple:
    r = client.get(path, headers={"Authorization": cred} if cred else {})
    body = r.text if r.status_code == 200 or "custom" in r.text or "nope" in r.text else ""
    if "Index of" in body:
        body = "listing"
    return (path, cred is not None, r.status_code,
            {k: v for k, v in r.headers.items() if k in SHOWN}, body)


def _live(client: httpx.Client, htaccess: Path) -> list[tuple]:
    """Edit and delete a .htaccess between requests: each request sees the file as it is."""
    out = []
    steps = ["Header set X-V one\n", "Header set X-V two\n", "Header set X-V two-again\n",
             "Require all denied\n", "Bogus line\n", None, "Header set X-V back\n"]
    for text in steps:
        if text is None:
            htaccess.unlink()
        else:
            htaccess.write_text(text)
        out.append(_answer(client, "/live/x.txt", None))
    return out


def _answers(port: int, htdocs: Path) -> list[tuple]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
        out = [_answer(client, path, cred) for path, cred in REQUESTS]
        out += _live(client, htdocs / "live" / ".htaccess")
    return out


needs = needs_apache(*(f"mod_{m}.so" for m in MODULES))


@pytest.fixture(scope="module")
def apache_answers(tmp_path_factory):
    if not Path("/usr/bin/htpasswd").exists():
        pytest.skip("htpasswd (apache2-utils) is not installed")
    root = tmp_path_factory.mktemp("apache")
    port = free_port()
    htdocs = root / "htdocs"
    extra = "TypesConfig /etc/mime.types\n" + _tree(htdocs, root / "files")
    (root / "httpd.conf").write_text(config(root, port, htdocs, modules=MODULES, extra=extra))
    with running(root / "httpd.conf", [("127.0.0.1", port)]):
        answers = _answers(port, htdocs)
    return answers, (root / "error.log").read_text()


@needs
def test_same_answers_as_apache(apache_answers, conf, make_server, tmp_path):
    expected, apache_log = apache_answers
    extra = _tree(conf.htdocs, tmp_path / "files")
    server = make_server(conf.add(extra))
    ours = _answers(server.port, conf.htdocs)
    diff = [(a, b) for a, b in zip(expected, ours) if a != b]
    assert not diff, "\n".join(f"apache {a}\nmpmd   {b}" for a, b in diff)
    statuses = {a[2] for a in ours}
    assert {200, 401, 403, 404, 500}.issubset(statuses), statuses
    # the 500s are logged with the file and line (httpd: file and message)
    log = conf.error_log.read_text()
    typo = conf.htdocs / "typo" / ".htaccess"
    assert (f"{typo}:3: Invalid command 'Headr', perhaps misspelled or defined by a module "
            "not included in the server configuration") in log
    assert f"{conf.htdocs / 'disallowed' / '.htaccess'}:1: Header not allowed here" in log
    assert "/typo/.htaccess: Invalid command 'Headr'" in apache_log
    # a .htaccess that cannot be opened: 403 with httpd's AH00529 words
    assert f"{conf.htdocs / 'loop' / '.htaccess'} pcfg_openfile: unable to check htaccess file" in log
    assert "/loop/.htaccess pcfg_openfile: unable to check htaccess file" in apache_log


@pytest.mark.skipif(not Path("/usr/bin/htpasswd").exists(), reason="htpasswd is not installed")
def test_unreadable_htaccess_is_403(conf, make_server, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads any file")
    d = conf.htdocs / "locked"
    d.mkdir(parents=True)
    (d / "x.txt").write_text("x\n")
    (d / ".htaccess").write_text("Header set X-A 1\n")
    os.chmod(d / ".htaccess", 0)
    conf.add(f'<Directory "{conf.htdocs}">\n    AllowOverride All\n</Directory>\n')
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as client:
        assert client.get("/locked/x.txt").status_code == 403
        assert client.get("/index.html").status_code == 200
    assert "unable to check htaccess file" in conf.error_log.read_text()


def test_without_allowoverride_no_htaccess_is_read(conf, make_server):
    """AllowOverride None (the default): a .htaccess is never opened, whatever it says."""
    (conf.htdocs / ".htaccess").write_text("Require all denied\nNot a directive\n")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for _ in range(3):
            assert client.get("/index.html").status_code == 200
