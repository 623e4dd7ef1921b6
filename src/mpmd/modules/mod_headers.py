"""mod_headers: Header and RequestHeader, with httpd 2.4's syntax and tables.

Theory: httpd keeps two tables of response fields: ``headers_out`` (what a handler set) and
``err_headers_out``.  ``Header [onsuccess]`` edits the first, ``Header always`` the second,
and an answer the server makes itself (an error page, a redirect: ap_send_error_response,
``Response.local`` here) goes out with the second table only.  So:

Rule 1: on a handler's answer (a static file, its 304, a WSGI or ASGI app's answer whatever its
        status, an ErrorDocument page reached by internal redirect), the ``onsuccess`` lines edit
        the handler's fields and the ``always`` lines build a second list, sent after them; on
        an answer the server made itself (404, 403, 500 pages, Redirect, an ErrorDocument text
        or URL), only the ``always`` lines apply.  ``Header always unset X`` therefore does not
        remove a field a handler set (httpd: "always is not a superset of onsuccess").
Rule 2: lines apply in configuration order, server level first, then the sections that apply
        (httpd's merge appends the inner lines); a condition ``env=[!]VAR`` tests whether VAR is
        set in ``ctx.env`` (httpd's subprocess_env).  ``early`` lines apply first, and only
        those of the server config or virtual host: one in a section is accepted and never
        applies, as in httpd (named at -t, MPMD0515).
Rule 3: values take httpd's format specifiers: %t (t=request time in microseconds), %D
        (D=microseconds since the request began), %{VAR}e (an env variable, "(null)" when
        unset), %{VAR}s (a mod_ssl variable), %l (the load average), %%.  A value given as
        ``expr=`` and %i / %b (the idle / busy worker share) are refused at -t with the line;
        an ``expr=`` condition is an ap_expr (core/expr.py), evaluated per answer.
Rule 4: RequestHeader edits the request's fields before the handler runs (request_fixups,
        after the access check, as httpd's fixups), so
        WSGI's HTTP_* and ASGI's headers see the result.
Rule 5: an answer handed out again and again (a cached file: ``memo=()``) whose lines depend on
        nothing of the request is edited once: its output is kept per input and given
        ``memo=()`` too, so the static fast path keeps its Plan.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.values import Worded
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import SET_FIELDS, Module
from mpmd.core.expr import ExprError, ExprEvalError, compile_expr
from mpmd.core.request import replace_headers

ACTIONS = ("set", "setifempty", "append", "merge", "add", "unset", "echo", "edit", "edit*",
           "note")
REQUEST_ACTIONS = ("set", "setifempty", "append", "merge", "add", "unset", "edit", "edit*")
_TAG = re.compile(r"%(?:\{([^}]*)\})?(.?)", re.S)
MEMO_MAX = 1024

Part = str | Callable[[RequestContext], str]


def _env(name: str) -> Callable[[RequestContext], str]:
    def part(ctx: RequestContext) -> str:
        value = ctx.env.get(name)
        return "(null)" if value is None else value
    return part


def _ssl(name: str) -> Callable[[RequestContext], str]:
    def part(ctx: RequestContext) -> str:
        tls = ctx.conn.tls if ctx.conn is not None else None
        value = tls.get(name) if tls else None
        return value if value else "(null)"
    return part


def _time(ctx: RequestContext) -> str:
    return "t=%d" % int((ctx.start_time or time.time()) * 1_000_000)


def _duration(ctx: RequestContext) -> str:
    return "D=%d" % int((time.time() - (ctx.start_time or time.time())) * 1_000_000)


def _load(ctx: RequestContext) -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "l=-1/-1/-1"
    return f"l={one:.2f}/{five:.2f}/{fifteen:.2f}"


def parse_format(text: str, what: str) -> tuple[Part, ...]:
    """A value with httpd's format specifiers -> literal strings and functions (Rule 3)."""
    parts: list[Part] = []
    pos = 0
    for m in _TAG.finditer(text):
        if m.start() > pos:
            parts.append(text[pos:m.start()])
        pos = m.end()
        arg, tag = m.groups()
        if tag == "%" and arg is None:
            parts.append("%")
        elif tag == "t":
            parts.append(_time)
        elif tag == "D":
            parts.append(_duration)
        elif tag == "l":
            parts.append(_load)
        elif tag == "e" and arg is not None:
            parts.append(_env(arg))
        elif tag == "s" and arg is not None:
            parts.append(_ssl(arg))
        elif tag in ("i", "b"):
            raise Worded(f"{what}: the format %{tag} (the share of idle or busy workers) is not "
                         "supported by mpmd")
        else:
            raise Worded(f"Unrecognized header format %{tag}")
    if pos < len(text):
        parts.append(text[pos:])
    merged: list[Part] = []
    for p in parts:                           # "a" "%" "b" -> "a%b"
        if isinstance(p, str) and merged and isinstance(merged[-1], str):
            merged[-1] += p
        else:
            merged.append(p)
    return tuple(merged)


def render_value(parts: tuple[Part, ...], ctx: RequestContext) -> str:
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0]
    return "".join(p if isinstance(p, str) else p(ctx) for p in parts)


@dataclass(frozen=True)
class HeaderRule:
    """One Header or RequestHeader line."""

    table: str                       # "out" (onsuccess), "err" (always) or "in" (RequestHeader)
    action: str
    name: str
    value: tuple[Part, ...] = ()
    regex: re.Pattern[str] | None = None
    subs: tuple[Part, ...] = ()
    env: str | None = None           # env=VAR / env=!VAR: the variable ...
    negate: bool = False             # ... and whether it must be unset
    early: bool = False
    expr: Any = None                 # expr=...: a compiled ap_expr condition (core/expr.py)

    @property
    def fixed(self) -> bool:
        """Its effect depends on nothing of the request (Rule 5)."""
        return (self.env is None and self.expr is None and self.action not in ("echo", "note")
                and all(isinstance(p, str) for p in self.value + self.subs))

    def wanted(self, ctx: RequestContext) -> bool:
        if self.expr is not None:
            try:
                return self.expr.evaluate(ctx)
            except ExprEvalError:
                return False                 # httpd logs it and leaves the field alone
        if self.env is None:
            return True
        return (self.env in ctx.env) != self.negate


def _header_args(args: list[str], request: bool) -> HeaderRule:
    """httpd's header_cmd + header_inout_cmd, with their messages."""
    what = "RequestHeader" if request else "Header"
    args = list(args)
    table = "in" if request else "out"
    if not args:
        raise Worded(f"{what} requires at least two arguments")
    if not request and args[0].lower() in ("always", "onsuccess"):
        table = "err" if args.pop(0).lower() == "always" else "out"
    if len(args) < 2:
        raise Worded(f"{what} requires three arguments")
    if len(args) > 5:
        raise Worded(f"{what} has too many arguments")
    action = args[0].lower()
    hdr = args[1]
    val = args[2] if len(args) > 2 else None
    subs = args[3] if len(args) > 3 else None
    clause = args[4] if len(args) > 4 else None
    if action not in ACTIONS:
        raise Worded("first argument must be 'add', 'set', 'setifempty', 'append', 'merge', "
                     "'unset', 'echo', 'note', 'edit', or 'edit*'.")
    regex = None
    if action in ("edit", "edit*"):
        if subs is None or val is None:
            raise Worded(f"{what} edit requires a match and a substitution")
        regex = _compile(val, f"{what} edit regex could not be compiled")
    else:
        if clause is not None:
            raise Worded("Too many arguments to directive")
        clause, subs = subs, None
    if action == "unset":
        if val is not None:
            if clause is not None:
                raise Worded("header unset takes two arguments")
            clause, val = val, None
    elif action == "echo":
        if val is not None:
            if clause is not None:
                raise Worded("Header echo takes two arguments")
            clause, val = val, None
        if request:
            raise Worded("Header echo only valid on Header directives")
        regex = _compile(hdr, "Header echo regex could not be compiled", re.I)
    elif val is None:
        raise Worded(f"{what} requires three arguments")
    if action == "note" and request:
        pass                                       # httpd allows it on RequestHeader too
    env, negate, early, expr = None, False, False, None
    if clause is not None:
        low = clause.lower()
        if low == "early":
            early = True
        elif low.startswith("env="):
            name = clause[4:]
            negate = name.startswith("!")
            name = name[1:] if negate else name
            if not name:
                raise Worded("error: missing environment variable name. envclause should be "
                             "in the form env=envar ")
            env = name
        elif low.startswith("expr="):
            try:
                expr = compile_expr(clause[5:])
            except ExprError as exc:
                raise Worded(f"Can't parse envclause/expression: {exc}") from None
        else:
            raise Worded(f"Unknown parameter: {clause}")
    if val is not None and val.lower().startswith("expr="):
        raise Worded(f"{what}: a value given as expr= (ap_expr) is not supported by mpmd")
    name = hdr.split(":", 1)[0] if action != "echo" else hdr
    value = parse_format(val, what) if val is not None and action not in ("edit", "edit*") \
        else ()
    if action == "note":
        value = (val,)                             # the note's name, as written
    subs_parts = parse_format(subs, what) if subs is not None else ()
    return HeaderRule(table, action, name, value, regex, subs_parts, env, negate, early, expr)


def _compile(pattern: str, message: str, flags: int = 0) -> re.Pattern[str]:
    try:
        return re.compile(pattern, flags)
    except re.error:
        raise Worded(message) from None


def header_value(args: list[str]) -> HeaderRule:
    return _header_args(args, request=False)


def request_header_value(args: list[str]) -> HeaderRule:
    return _header_args(args, request=True)


# -- the actions, on a list of [name, value] pairs (httpd's apr_table_*) ----------------------

def _merge_into(fields: list[list[str]], name: str, value: str) -> None:
    """apr_table_mergen: appended to the first such field with ", ", else a new field."""
    low = name.lower()
    for f in fields:
        if f[0].lower() == low:
            f[1] = f[1] + ", " + value
            return
    fields.append([name, value])


def _has_token(current: str, new: str) -> bool:
    """mod_headers' merge: ``new`` is already one of the comma-separated tokens of ``current``
    (quoted strings kept whole; a token's trailing spaces count, as in httpd)."""
    i, n = 0, len(current)
    while i < n:
        while i < n and current[i].isspace():
            i += 1
        start = i
        while i < n and current[i] != ",":
            c = current[i]
            i += 1
            if c == '"':
                while i < n:
                    c = current[i]
                    i += 1
                    if c == '"':
                        break
        if current[start:i] == new:
            return True
        if i < n:
            i += 1
    return False


def _pregsub(template: str, m: re.Match[str]) -> str:
    """ap_pregsub: $0-$9 and & are the match's groups; a backslash escapes the next char."""
    out: list[str] = []
    i, n = 0, len(template)
    while i < n:
        c = template[i]
        if c == "\\" and i + 1 < n and template[i + 1] in "\\$&":
            out.append(template[i + 1])
            i += 2
            continue
        if c == "&":
            out.append(m.group(0))
        elif c == "$" and i + 1 < n and template[i + 1].isdigit():
            g = int(template[i + 1])
            try:
                out.append(m.group(g) or "")
            except IndexError:
                pass
            i += 2
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _edit(rule: HeaderRule, value: str, ctx: RequestContext) -> str:
    subs = render_value(rule.subs, ctx) if rule.subs else ""
    regex = rule.regex
    assert regex is not None
    if rule.action == "edit":
        m = regex.search(value)
        return value if m is None else value[:m.start()] + _pregsub(subs, m) + value[m.end():]
    out: list[str] = []
    pos = 0
    while pos <= len(value):
        m = regex.search(value, pos)
        if m is None:
            break
        out.append(value[pos:m.start()] + _pregsub(subs, m))
        if m.end() == m.start():                    # an empty match: keep one char, go on
            if m.end() < len(value):
                out.append(value[m.end()])
            pos = m.end() + 1
        else:
            pos = m.end()
    out.append(value[pos:])
    return "".join(out)


def apply_rule(rule: HeaderRule, fields: list[list[str]], ctx: RequestContext,
               request_fields: Any = ()) -> None:
    """One line over ``fields`` (httpd's do_headers_fixup, one entry)."""
    action = rule.action
    name = rule.name
    low = name.lower()
    if action == "set":
        value = render_value(rule.value, ctx)
        fields[:] = [f for f in fields if f[0].lower() != low]
        fields.append([name, value])
    elif action == "setifempty":
        if not any(f[0].lower() == low for f in fields):
            fields.append([name, render_value(rule.value, ctx)])
    elif action == "add":
        fields.append([name, render_value(rule.value, ctx)])
    elif action == "append":
        _merge_into(fields, name, render_value(rule.value, ctx))
    elif action == "merge":
        value = render_value(rule.value, ctx)
        current = next((f[1] for f in fields if f[0].lower() == low), None)
        if current is None:
            fields.append([name, value])
        elif not _has_token(current, value):
            _merge_into(fields, name, value)
    elif action == "unset":
        fields[:] = [f for f in fields if f[0].lower() != low]
    elif action in ("edit", "edit*"):
        for f in fields:
            if f[0].lower() == low:
                f[1] = _edit(rule, f[1], ctx)
    elif action == "echo":
        regex = rule.regex
        assert regex is not None
        for key, value in request_fields:
            text = key.decode("latin-1")
            if regex.search(text):
                fields.append([_title(text), value.decode("latin-1")])
    elif action == "note":
        current = next((f[1] for f in fields if f[0].lower() == low), None)
        if current is not None:
            ctx.notes[rule.value[0]] = current


def _title(name: str) -> str:
    """A lower-cased request field name as clients usually spell it (``x-trace`` -> ``X-Trace``)."""
    return "-".join(w[:1].upper() + w[1:] for w in name.split("-"))


# -- the module -------------------------------------------------------------------------------

class Rules:
    """The lines of one per-directory config, split by table, and what is kept per input."""

    __slots__ = ("dc", "out", "err", "inp", "early_in", "fixed", "memo")

    def __init__(self, dc: Any, base: Any) -> None:
        self.dc = dc
        # early lines are the server's (or virtual host's) own, first (httpd runs them in
        # post_read_request, before any section is known); the others in merge order
        early = tuple(r for r in getattr(base, "header", None) or () if r.early)
        lines = tuple(r for r in getattr(dc, "header", None) or () if not r.early)
        self.out = tuple(r for r in early + lines if r.table == "out")
        self.err = tuple(r for r in early + lines if r.table == "err")
        self.early_in = tuple(r for r in getattr(base, "request_header", None) or () if r.early)
        self.inp = self.early_in + tuple(r for r in getattr(dc, "request_header", None) or ()
                                         if not r.early)
        self.fixed = all(r.fixed for r in self.out + self.err)
        self.memo: dict[int, tuple[Any, Any]] = {}


def _fields_set(values: dict[str, Any]) -> frozenset[str]:
    return values.get(SET_FIELDS, frozenset({"header", "request_header"}))


class HeadersModule(Module):
    name: ClassVar[str] = "headers_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_headers.c",)
    builtin: ClassVar[bool] = True
    output_order: ClassVar[int] = 90
    DIRECTIVES: ClassVar[list[Directive]] = [
        Directive("Header", Args.RAW_ARGS, Ctx.ANY, header_value, [], "header",
                  "Set, add, merge, edit or remove a response field (onsuccess: a handler's "
                  "answers; always: error pages and redirects too).", merge=Merge.APPEND,
                  syntax="Header [onsuccess|always] set|append|merge|add|setifempty|unset|echo|"
                         "edit|edit*|note field [value] [replacement] [early|env=[!]var]",
                  owner="headers_module", override=Override.FILEINFO),
        Directive("RequestHeader", Args.RAW_ARGS, Ctx.ANY, request_header_value, [],
                  "request_header", "Set, add, merge, edit or remove a request field before "
                  "the handler sees it.", merge=Merge.APPEND,
                  syntax="RequestHeader set|append|merge|add|setifempty|unset|edit|edit* field "
                         "[value] [replacement] [early|env=[!]var]",
                  owner="headers_module", override=Override.FILEINFO),
    ]

    def __init__(self) -> None:
        self._rules: dict[int, Rules] = {}

    def unused_hooks(self, values: dict[str, Any]) -> tuple[str, ...]:
        """No Header line anywhere: no output filter; no RequestHeader line: no request_fixups."""
        used = _fields_set(values)
        unused = []
        if "header" not in used:
            unused.append("output_filter")
        if "request_header" not in used:
            unused.append("request_fixups")
        return tuple(unused)

    def check_config(self, cfg: Any) -> list[Any]:
        """An ``early`` line in a section: httpd accepts it and never applies it (Rule 2)."""
        from mpmd.config.model import Problem
        found = []
        todo = list(getattr(cfg, "sections", None) or ())
        while todo:
            section = todo.pop()
            todo += section.sections
            if section.kind == "VirtualHost":
                continue
            for op in section.ops:
                if op.directive.field in ("header", "request_header") and \
                        getattr(op.value, "early", False):
                    found.append(Problem(
                        "warn", "MPMD0515", f"{op.directive.name} has no effect: an early line "
                        f"applies in server config and virtual host context only (httpd accepts "
                        f"it in <{section.kind}> and never applies it)", op.file, op.line))
        return sorted(found, key=lambda p: (p.file, p.line))

    def rules(self, ctx: RequestContext) -> Rules:
        base = ctx.server.default_dir
        dc = ctx.dir_config if ctx.dir_config is not None else base
        rules = self._rules.get(id(dc))
        if rules is None or rules.dc is not dc:
            if len(self._rules) > 256:
                self._rules.clear()
            rules = self._rules[id(dc)] = Rules(dc, base)
        return rules

    def request_fixups(self, ctx: RequestContext) -> None:
        """Rule 4: RequestHeader lines over the request's fields."""
        rules = self.rules(ctx).inp
        if rules:
            request_headers(ctx, rules)

    def output_filter(self, ctx: RequestContext, resp: Response) -> Response:
        rules = self.rules(ctx)
        if not rules.out and not rules.err:
            return resp
        if rules.fixed and resp.memo is not None and not resp.local:       # Rule 5
            hit = rules.memo.get(id(resp))
            if hit is not None and hit[0] is resp:
                return hit[1]  # type: ignore[no-any-return]
            out = edit_answer(rules, ctx, resp)
            if type(out.headers) is tuple and type(out.body) is bytes:
                out.memo = ()
                if len(rules.memo) >= MEMO_MAX:
                    rules.memo.clear()
                rules.memo[id(resp)] = (resp, out)
            return out
        return edit_answer(rules, ctx, resp)


def request_headers(ctx: RequestContext, rules: tuple[HeaderRule, ...]) -> None:
    req = ctx.request
    fields = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in req.headers]
    changed = False
    for rule in rules:
        if rule.wanted(ctx):
            apply_rule(rule, fields, ctx)
            changed = True
    if changed:                   # the head's size as received stays the access log's %I
        replace_headers(ctx, ((k.lower().encode("latin-1"), v.encode("latin-1", "replace"))
                              for k, v in fields))


def edit_answer(rules: Rules, ctx: RequestContext, resp: Response) -> Response:
    """Rule 1."""
    request_fields = ctx.request.headers
    out_fields = None
    if not resp.local and rules.out:
        out_fields = [list(h) for h in resp.headers]
        for rule in rules.out:
            if rule.wanted(ctx):
                apply_rule(rule, out_fields, ctx, request_fields)
    err: list[list[str]] = []
    for rule in rules.err:
        if rule.wanted(ctx):
            apply_rule(rule, err, ctx, request_fields)
    if out_fields is None and not err:
        return resp
    base = [tuple(f) for f in out_fields] if out_fields is not None else list(resp.headers)
    headers = tuple(base + [(f[0], f[1]) for f in err])
    return Response(resp.status, headers, resp.body, resp.close_connection, resp.on_close,
                    None, resp.local)
