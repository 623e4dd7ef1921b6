"""mod_env: SetEnv, UnsetEnv and PassEnv.

Rule 1: the lines of a scope are replayed in order over the inherited ones (httpd's merge:
        an inner UnsetEnv removes what an outer SetEnv or PassEnv set, an inner SetEnv
        sets): the result is one table per per-directory config, built once.
Rule 2: the table goes into ``ctx.env`` (httpd's subprocess_env) in request_fixups, after
        SetEnvIf's lines ran and after the access check, as httpd's fixups run after its
        header_parser and access_checker: SetEnvIf and ``Require env`` cannot see a SetEnv variable,
        and SetEnv wins over a SetEnvIf of the same name.  UnsetEnv removes configured
        variables only, not those SetEnvIf set (httpd 2.4).
Rule 3: PassEnv copies a variable of the server's own environment (the one it was started
        with); one that is not set there is passed as nothing, as httpd, which warns.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext
from mpmd.core.modules import SET_FIELDS, Module


def set_env(args: list[str]) -> tuple[tuple[str, str, str], ...]:
    if not args[0]:
        raise Worded("SetEnv: a variable name is required")
    return (("set", args[0], args[1] if len(args) > 1 else ""),)


def unset_env(args: list[str]) -> tuple[tuple[str, str, str], ...]:
    return tuple(("unset", name, "") for name in args)


def pass_env(args: list[str]) -> tuple[tuple[str, str, str], ...]:
    return tuple(("pass", name, "") for name in args)


def env_table(ops: Any) -> dict[str, str]:
    """Rule 1 (and 3): the variables a per-directory config sets."""
    table: dict[str, str] = {}
    for line in ops or ():
        for kind, name, value in line:
            if kind == "set":
                table[name] = value
            elif kind == "unset":
                table.pop(name, None)
            elif name in os.environ:
                table[name] = os.environ[name]
    return table


class EnvModule(Module):
    name: ClassVar[str] = "env_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_env.c",)
    builtin: ClassVar[bool] = True
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("SetEnv", Args.TAKE12, Ctx.ANY, set_env, [], "env_lines",
                  "Set an env variable for the request (WSGI environ, logs, Header env=).",
                  merge=Merge.APPEND, syntax="SetEnv env-variable [value]", owner="env_module",
                  override=Override.FILEINFO),
        Directive("UnsetEnv", Args.ITERATE, Ctx.ANY, unset_env, [], "env_lines",
                  "Remove env variables set by SetEnv or PassEnv in an outer scope.",
                  merge=Merge.APPEND, syntax="UnsetEnv env-variable [env-variable] ...",
                  owner="env_module", override=Override.FILEINFO),
        Directive("PassEnv", Args.ITERATE, Ctx.ANY, pass_env, [], "env_lines",
                  "Pass env variables of the server's own environment to the request.",
                  merge=Merge.APPEND, syntax="PassEnv env-variable [env-variable] ...",
                  owner="env_module", override=Override.FILEINFO),
    ]

    def __init__(self) -> None:
        self._tables: dict[int, tuple[Any, dict[str, str]]] = {}

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        return () if "env_lines" in values.get(SET_FIELDS, ("env_lines",)) else ("request_fixups",)

    def check_config(self, cfg: Any) -> list[Any]:
        """Rule 3: httpd's AH01506 for a PassEnv variable the environment lacks."""
        from mpmd.config.model import Problem
        names = [name for lines in [cfg.default_dir.get("env_lines"),
                                    *cfg.section_values("env_lines")] if lines
                 for line in (lines if isinstance(lines, list) else [lines])
                 for kind, name, _ in line if kind == "pass" and name not in os.environ]
        return [Problem("warn", "MPMD1902", f"PassEnv variable {name} was undefined")
                for name in dict.fromkeys(names)]

    def request_fixups(self, ctx: RequestContext) -> None:
        dc = ctx.dir_config if ctx.dir_config is not None else ctx.server.default_dir
        hit = self._tables.get(id(dc))
        if hit is None or hit[0] is not dc:
            if len(self._tables) > 256:
                self._tables.clear()
            hit = self._tables[id(dc)] = (dc, env_table(getattr(dc, "env_lines", None)))
        if hit[1]:
            ctx.env.update(hit[1])
