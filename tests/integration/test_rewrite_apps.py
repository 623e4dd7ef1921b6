"""WordPress's and Laravel's stock .htaccess rules (their published text) in a <Directory>,
routing to a front controller: a WSGI application mounted at /index.php stands in for
index.php.  Plus the usual http -> https and www redirects.  On every MPM."""

from __future__ import annotations

import textwrap

import httpx

APP = '''
import json

def application(environ, start_response):
    keys = ("REQUEST_URI", "PATH_INFO", "SCRIPT_NAME", "QUERY_STRING", "REQUEST_METHOD",
            "REDIRECT_HTTP_AUTHORIZATION", "REDIRECT_HTTP_X_XSRF_TOKEN")
    body = json.dumps({k: environ.get(k) for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
'''

WORDPRESS = """
# BEGIN WordPress
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

LARAVEL = """
<IfModule mod_rewrite.c>
    <IfModule mod_negotiation.c>
        Options -MultiViews -Indexes
    </IfModule>

    RewriteEngine On

    # Handle Authorization Header
    RewriteCond %{HTTP:Authorization} .
    RewriteRule .* - [E=HTTP_AUTHORIZATION:%{HTTP:Authorization}]

    # Handle X-XSRF-Token Header
    RewriteCond %{HTTP:x-xsrf-token} .
    RewriteRule .* - [E=HTTP_X_XSRF_TOKEN:%{HTTP:X-XSRF-Token}]

    # Redirect Trailing Slashes If Not A Folder...
    RewriteCond %{REQUEST_FILENAME} !-d
    RewriteCond %{REQUEST_URI} (.+)/$
    RewriteRule ^ %1 [L,R=301]

    # Send Requests To Front Controller...
    RewriteCond %{REQUEST_FILENAME} !-d
    RewriteCond %{REQUEST_FILENAME} !-f
    RewriteRule ^ index.php [L]
</IfModule>
"""


def _site(conf, tmp_path, rules: str, extra: str = "") -> None:
    app = tmp_path / "front.py"
    app.write_text(APP)
    docroot = conf.htdocs
    (docroot / "index.php").write_text("<?php /* the WSGI app answers for me */\n")
    (docroot / "wp-content").mkdir(exist_ok=True)
    (docroot / "wp-content" / "style.css").write_text("body{}\n")
    (docroot / "css").mkdir(exist_ok=True)
    (docroot / "css" / "app.css").write_text("a{}\n")
    conf.add(textwrap.dedent(f"""
        DirectoryIndex index.php index.html
        WSGIScriptAlias /index.php "{app}"
        <Directory "{docroot}">
        {rules}
        </Directory>
        {extra}"""))


def _front(r: httpx.Response) -> dict:
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers["content-type"] == "application/json", r.headers
    return r.json()


def test_wordpress_permalinks(conf, make_server, tmp_path):
    _site(conf, tmp_path, WORDPRESS)
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        page = _front(c.get("/2024/05/hello-world/"))
        assert page["REQUEST_URI"] == "/2024/05/hello-world/"
        assert page["SCRIPT_NAME"] == "/index.php"
        assert _front(c.get("/?p=12"))["QUERY_STRING"] == "p=12"
        assert _front(c.get("/index.php?page_id=3"))["QUERY_STRING"] == "page_id=3"
        search = _front(c.get("/search/term?s=x&paged=2"))
        assert (search["REQUEST_URI"], search["QUERY_STRING"]) == ("/search/term?s=x&paged=2",
                                                                    "s=x&paged=2")
        auth = _front(c.get("/wp-json/wp/v2/posts", headers={"Authorization": "Bearer t0k"}))
        assert auth["REDIRECT_HTTP_AUTHORIZATION"] == "Bearer t0k"
        assert _front(c.post("/xmlrpc-like", content=b"x"))["REQUEST_METHOD"] == "POST"
        css = c.get("/wp-content/style.css")            # an existing file is served as it is
        assert (css.status_code, css.text) == (200, "body{}\n")
        assert c.get("/wp-content/").status_code in (403, 404)   # an existing directory
        for _ in range(3):                               # route cache: the same answer again
            assert _front(c.get("/about/"))["REQUEST_URI"] == "/about/"


def test_laravel_front_controller(conf, make_server, tmp_path):
    _site(conf, tmp_path, LARAVEL)
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        users = _front(c.get("/api/users?page=2"))
        assert (users["REQUEST_URI"], users["QUERY_STRING"]) == ("/api/users?page=2", "page=2")
        r = c.get("/posts/7/")                           # trailing slash of a non-folder
        assert r.status_code == 301
        assert r.headers["location"] == f"{server.url}/posts/7"
        token = _front(c.get("/login", headers={"X-XSRF-TOKEN": "abc", "Authorization": "Basic eA=="}))
        assert token["REDIRECT_HTTP_X_XSRF_TOKEN"] == "abc"
        assert token["REDIRECT_HTTP_AUTHORIZATION"] == "Basic eA=="
        assert _front(c.get("/login"))["REDIRECT_HTTP_X_XSRF_TOKEN"] is None
        css = c.get("/css/app.css")
        assert (css.status_code, css.text) == (200, "a{}\n")
        assert _front(c.get("/"))["REQUEST_URI"] == "/"


def test_https_and_www_redirects(conf, make_server, tmp_path):
    _site(conf, tmp_path, WORDPRESS, extra="""
RewriteEngine On
RewriteCond %{HTTP_HOST} ^www\\.(.+)$ [NC]
RewriteRule ^ https://%1%{REQUEST_URI} [R=301,L]
RewriteCond %{HTTPS} off
RewriteCond %{HTTP_HOST} ^secure\\. [NC]
RewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [R=301,L]
""")
    server = make_server(conf)
    with httpx.Client(base_url=server.url, timeout=20) as c:
        r = c.get("/blog/post?x=1", headers={"Host": "www.example.com"})
        assert (r.status_code, r.headers["location"]) == (301, "https://example.com/blog/post?x=1")
        r = c.get("/a%20b/", headers={"Host": "secure.example.com:8080"})
        assert (r.status_code, r.headers["location"]) == (301, "https://secure.example.com:8080/a%20b/")
        page = _front(c.get("/blog/post", headers={"Host": "example.com"}))
        assert page["REQUEST_URI"] == "/blog/post"
