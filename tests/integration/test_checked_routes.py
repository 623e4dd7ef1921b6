"""Routes kept with checks (core/request.py Rule 9) on the real server: a request whose walk
read a .htaccess file, and a per-directory rewrite whose conditions tested files (WordPress's
front controller), are answered from the route cache while the files are as they were, and
each change -- a file the rules test created or removed, the .htaccess edited -- is seen at
the next request.  The rewrite trace shows when the rules were evaluated: a reused route
writes no line."""

from __future__ import annotations

import os
import time

import httpx

WORDPRESS = """# BEGIN WordPress
<IfModule mod_rewrite.c>
RewriteEngine On
RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]
RewriteBase /
RewriteRule ^index\\.php$ - [L]
RewriteCond %{REQUEST_FILENAME} !-f
RewriteCond %{REQUEST_FILENAME} !-d
RewriteRule . /index.php [L]
</IfModule>
# END WordPress
"""


def _evaluations(log_path, path: str) -> int:
    """How many times the rules were applied to ``path`` (trace3: "applying pattern")."""
    text = log_path.read_text(errors="replace")
    return sum(1 for line in text.splitlines() if "applying pattern '^index" in line and path in line)


def test_front_controller_route_is_reused_and_sees_changes(conf, make_server):
    docroot = conf.htdocs
    (docroot / "index.php").write_text("front controller\n")
    (docroot / ".htaccess").write_text(WORDPRESS)
    conf.set("LogLevel", "info rewrite:trace3")
    conf.add(f"""AddType text/html .php
DirectoryIndex index.php
<Directory "{docroot}">
    Options FollowSymLinks
    AllowOverride All
</Directory>
""")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        for _ in range(5):
            r = c.get("/2026/12/hello-world/")
            assert (r.status_code, r.text) == (200, "front controller\n")
        # one process answers all five on one connection: the rules ran once for the URL
        assert _evaluations(conf.error_log, "2026/12/hello-world/") <= max(1, len(server.children()))
        # a real file the -f test now finds is served as itself
        (docroot / "page.html").write_text("a page\n")
        assert c.get("/page.html").text == "a page\n"
        for _ in range(3):
            assert c.get("/new.html").text == "front controller\n"
        (docroot / "new.html").write_text("new\n")
        assert c.get("/new.html").text == "new\n"
        os.unlink(docroot / "new.html")
        assert c.get("/new.html").text == "front controller\n"
        # a directory the -d test now finds: its DirectoryIndex, not the front controller
        (docroot / "blog").mkdir()
        (docroot / "blog" / "index.php").write_text("blog\n")
        assert c.get("/blog/").text == "blog\n"
        # the .htaccess edited (same size, later mtime): the next request follows it
        time.sleep(0.01)
        (docroot / ".htaccess").write_text(WORDPRESS.replace("/index.php [L]", "/other.php [L]"))
        (docroot / "other.php").write_text("other\n")
        assert c.get("/2026/12/hello-world/").text == "other\n"
        (docroot / ".htaccess").write_text("Require all denied\n")
        assert c.get("/2026/12/hello-world/").status_code == 403
