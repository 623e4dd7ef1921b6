"""A user's module loaded with `LoadModule name package.module:attr` takes part in every phase.

The module below declares a directive, and implements post_read_request, translate_name,
access_checker, a handler picked with `SetHandler` in a `<Location>`, log_transaction and
child_init -- the same interface the built-in modules use -- on every MPM.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.harness import wait_for

MODULE = textwrap.dedent('''
    import os
    from mpmd.config import values as v
    from mpmd.config.directives import Args, Ctx, Directive
    from mpmd.core.exchange import Response
    from mpmd.core.modules import Module


    class GreetingHandler:
        kind = "inline"

        def __call__(self, ctx):
            body = "{} from {} (child {})".format(
                ctx.dir_config.greeting, ctx.uri_path, ctx.notes["greeter_child"]).encode()
            return Response(200, [("Content-Type", "text/plain"), ("X-Seen", ctx.notes["seen"])], body)


    class Greeter(Module):
        name = "greeter_module"
        DIRECTIVES = [
            Directive("Greeting", Args.TAKE1, Ctx.ANY, v.string, "hello", "greeting", "What to say."),
            Directive("GreeterLog", Args.TAKE1, Ctx.SERVER, v.path, None, "greeter_log", "Log file."),
        ]
        handlers = {"greeting": GreetingHandler()}

        def child_init(self, server, mpm):
            self.child = os.getpid()

        def post_read_request(self, ctx):
            ctx.notes["seen"] = "post_read_request"
            ctx.notes["greeter_child"] = getattr(self, "child", 0)

        def translate_name(self, ctx):
            if ctx.uri_path == "/moved":
                return Response(302, [("Location", "/greet/moved")], b"")
            return None

        def access_checker(self, ctx):
            if ctx.uri_path.startswith("/greet/secret"):
                return Response(403, [("Content-Type", "text/plain")], b"no greeting for you")
            return None

        def log_transaction(self, ctx, response, bytes_sent):
            path = ctx.server.greeter_log
            if path:
                with open(path, "a") as f:
                    f.write(f"{ctx.uri_path} {response.status}\\n")
''')


@pytest.fixture
def user_module_conf(conf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "greeter_mod.py").write_text(MODULE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return conf.add(textwrap.dedent(f'''
        LoadModule greeter_module greeter_mod:Greeter
        GreeterLog "{tmp_path / 'greeter.log'}"
        <Location "/greet">
            SetHandler greeting
            Greeting "good day"
        </Location>
    '''))


def get(port: int, path: str) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, body, resp


def test_user_module_runs_in_every_phase(user_module_conf, make_server, tmp_path: Path) -> None:
    server = make_server(user_module_conf)
    status, body, resp = get(server.port, "/greet/there")
    assert status == 200, server.diagnostics()
    assert body.startswith(b"good day from /greet/there (child ")
    assert b"(child 0)" not in body                      # child_init ran in the serving process
    assert resp.getheader("X-Seen") == "post_read_request"
    assert get(server.port, "/greet/secret")[0] == 403
    status, _, resp = get(server.port, "/moved")
    assert status == 302 and resp.getheader("Location") == "/greet/moved"
    assert get(server.port, "/index.html")[0] == 200     # other URLs still reach the static files
    log = tmp_path / "greeter.log"
    # Each request is logged after its answer left, by whichever process served it: wait
    # for all of them, not for the last one only.
    expected = ("/greet/there 200", "/greet/secret 403", "/index.html 200")
    wait_for(lambda: log.exists() and all(line in log.read_text() for line in expected),
             timeout=10, message=f"all of {expected} in the module's log")


def test_dash_M_lists_the_user_module(user_module_conf, tmp_path: Path) -> None:
    path = user_module_conf.write()
    out = subprocess.run([sys.executable, "-m", "mpmd", "-M", "-f", str(path)],
                         capture_output=True, text=True, timeout=30,
                         env={**__import__("os").environ,
                              "PYTHONPATH": f"{Path(__file__).resolve().parents[2] / 'src'}:{tmp_path}"})
    assert out.returncode == 0, out.stderr
    assert "greeter_module (shared)" in out.stdout
