"""Config snippets shared by the WSGI/ASGI/status integration tests."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APPS = REPO / "tests" / "apps"

WSGI_MOUNTS = {
    "/hello": "hello", "/sleepy": "sleepy", "/error": "error", "/midfail": "error_after_headers",
    "/crash": "crasher", "/big": "big", "/closing": "closing", "/headers": "headers",
    "/writer": "writer", "/lazy": "lazy_start", "/fw": "filewrapper", "/fwpipe": "filewrapper_pipe",
}


def wsgi_conf(conf, preload=False):
    """Every test app mounted: WSGIApp for tests.apps.*, WSGIScriptAlias for the file scripts."""
    conf.add(f'WSGIPythonPath "{REPO}"')
    conf.add(f"WSGIPreload {'On' if preload else 'Off'}")
    for mount, name in WSGI_MOUNTS.items():
        conf.add(f"WSGIApp {mount} tests.apps.wsgi_apps:{name}")
    conf.add(f'WSGIScriptAlias /echo "{APPS / "echo_app.py"}"')
    conf.add(f'WSGIScriptAlias /validate "{APPS / "validate_app.py"}"')
    conf.add(f'WSGIScriptAlias /pid "{APPS / "pid_app.py"}"')
    conf.add("WSGIApp /flask tests.apps.flask_app:app")
    conf.add("WSGIApp /django tests.apps.django_app:application")
    return conf
