"""The route cache of ``core.request.prepare`` (core/modules.py, "Route cache"), without sockets."""

from __future__ import annotations

from mpmd.core import request as pipeline
from mpmd.core.modules import HookTable, Module
from tests.modules.static_support import config, context, get, make_site


def fields(ctx):
    return (ctx.uri_path, ctx.filename, ctx.path_info, ctx.handler, ctx.dir_config,
            {k: v for k, v in ctx.notes.items()})


def test_a_hit_restores_what_the_phases_found(tmp_path) -> None:
    make_site(tmp_path)
    cfg = config(tmp_path, f"Alias /docs {tmp_path}/htdocs/sub\n")
    assert cfg.hooks.routes == {}
    for target in (b"/a.txt", b"/docs/index.html", b"/sub/deeper/x.css", b"/%61.txt"):
        first = context(cfg, "GET", target)
        handler = pipeline.prepare(first)
        assert cfg.hooks.routes, "the outcome was kept"
        second = context(cfg, "GET", target)
        assert pipeline.prepare(second) is handler
        assert fields(second) == fields(first)
        second.notes["stat"] = "a handler's note"          # a hit hands out its own notes
        third = context(cfg, "GET", target)
        pipeline.prepare(third)
        assert "stat" not in third.notes


def test_answers_from_a_phase_and_client_dependent_outcomes_are_not_kept(tmp_path) -> None:
    make_site(tmp_path)
    cfg = config(tmp_path, f"<Directory {tmp_path}/htdocs/sub>\nRequire ip 10.0.0.0/8\n</Directory>\n"
                           "Redirect /old /new\n")
    for _ in range(3):
        assert get(cfg, "/sub/index.html", client="10.1.1.1").status == 200
        assert get(cfg, "/sub/index.html", client="192.0.2.1").status == 403
        assert get(cfg, "/old").status == 302
    assert not any(path in (b"/sub/index.html", b"/old") for path, _ in cfg.hooks.routes)


def test_methods_are_kept_apart(tmp_path) -> None:
    make_site(tmp_path)
    cfg = config(tmp_path, f"<Directory {tmp_path}/htdocs>\nRequire method GET\n</Directory>\n")
    for _ in range(2):
        assert get(cfg, "/a.txt").status == 200
        assert get(cfg, "/a.txt", method="HEAD").status == 200         # HEAD is GET (httpd)
        assert get(cfg, "/a.txt", method="POST").status == 403


class Impure(Module):
    name = "impure_module"

    def fixups(self, ctx):
        ctx.notes["seen"] = ctx.request.header(b"x-anything")


class Pure(Impure):
    name = "pure_module"
    route_pure = True


class HandlerOnly(Module):
    name = "handler_only_module"
    handlers = {"x": object()}


def test_only_route_pure_modules_allow_the_cache() -> None:
    assert HookTable([Pure(), HandlerOnly()]).routes == {}
    assert HookTable([Pure(), Impure()]).routes is None
