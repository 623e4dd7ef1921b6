"""modules/app_probe.py: the interface of a callable, and imports in a throwaway process."""

from __future__ import annotations

import functools
import os
import signal
import sys
import time

from mpmd.modules import app_probe
from mpmd.modules.app_probe import Outcome, interface_of, probe


async def asgi_function(scope, receive, send):
    pass


def wsgi_function(environ, start_response):
    return []


class AsgiInstance:
    async def __call__(self, scope, receive, send):
        pass


class WsgiInstance:
    def __call__(self, environ, start_response):
        return []


class WsgiClass:
    """PEP 3333 allows a class as the application; its async __call__ does not make it ASGI."""

    def __init__(self, environ, start_response):
        pass

    async def __call__(self):
        pass


def marked():
    pass


def test_interface_of_follows_uvicorn_s_detection():
    import asyncio.coroutines
    marked._is_coroutine = asyncio.coroutines._is_coroutine      # asgiref's marker before 3.12
    assert interface_of(asgi_function) == "asgi"
    assert interface_of(AsgiInstance()) == "asgi"
    assert interface_of(functools.partial(asgi_function)) == "asgi"
    assert interface_of(marked) == "asgi"
    assert interface_of(wsgi_function) == "wsgi"
    assert interface_of(WsgiInstance()) == "wsgi"
    assert interface_of(WsgiClass) == "wsgi"


def test_probe_reports_each_loader_and_keeps_nothing_here(tmp_path):
    (tmp_path / "probe_mod_x.py").write_text("import os\nPID = os.getpid()\n"
                                             "async def app(s, r, se):\n    pass\n")

    def raises():
        raise ValueError("bad value")

    out = probe([lambda: app_probe.load_object("probe_mod_x:app"), lambda: wsgi_function, raises,
                 lambda: 42], [str(tmp_path)])
    assert out[0] == Outcome(interface="asgi") and out[1] == Outcome(interface="wsgi")
    assert out[2].error is not None and out[2].error.startswith("ValueError: bad value (at ")
    assert out[3] == Outcome(error="int object is not callable")
    assert "probe_mod_x" not in sys.modules and str(tmp_path) not in sys.path


def test_a_child_that_dies_or_hangs_is_an_outcome():
    out = probe([lambda: os.kill(os.getpid(), signal.SIGKILL), lambda: wsgi_function])
    assert out == [Outcome(error="the process importing it was killed by signal 9"),
                   Outcome(note="an earlier import ended the process")]
    started = time.monotonic()
    out = probe([lambda: wsgi_function, lambda: time.sleep(30)], timeout_s=0.5)
    assert time.monotonic() - started < 5
    assert out == [Outcome(interface="wsgi"), Outcome(note="importing it took more than 0.5 s")]


def test_describe_names_the_application_s_line_not_the_machinery(tmp_path):
    (tmp_path / "probe_syntax_x.py").write_text("def f(:\n")
    out = probe([functools.partial(app_probe.load_object, "probe_syntax_x:app"),
                 functools.partial(app_probe.load_object, "probe_missing_x:app")], [str(tmp_path)])
    assert out[0].error == f"SyntaxError: invalid syntax (at {tmp_path / 'probe_syntax_x.py'}:1)"
    assert out[1].error == "ModuleNotFoundError: No module named 'probe_missing_x'"
