"""mod_filter: which output filters an answer goes through, built in.

``AddOutputFilterByType`` (mod_filter's in httpd 2.4), ``SetOutputFilter`` (core's) and
``AddOutputFilter`` (mod_mime's) name filters per directory; mpmd has two, DEFLATE
(mod_deflate.py) and BROTLI_COMPRESS (mod_brotli.py), and a line naming another one is
refused at its line.  The filters run in this module's ``output_filter`` (compress.py has
the rules); a configuration with none of these lines makes no call for it.

Rule 1: filter names are matched without case and joined by ";" (``BROTLI_COMPRESS;DEFLATE``);
        media types are compared without case and without parameters.
Rule 2: AddOutputFilterByType and AddOutputFilter lines add up from the server down to the
        innermost section, as httpd merges them; an inner SetOutputFilter replaces an outer one.
Rule 3: for a file whose answer may be encoded, the fixups hook names the codings in
        ``ctx.notes[conditional.VARIANTS]``, so If-None-Match and If-Match take the
        ``-gzip``/``-br`` ETags of the file as its own (compress.py Rule 5).
"""

from __future__ import annotations

from typing import Any, ClassVar, Iterable

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge, Override
from mpmd.config.model import Problem
from mpmd.core import modules as core_modules
from mpmd.core.exchange import RequestContext, Response
from mpmd.core.modules import Module
from mpmd.modules import compress, conditional

FIELDS = ("set_output_filter", "add_output_filter", "add_output_filter_by_type")
KNOWN = "mpmd has the output filters DEFLATE and BROTLI_COMPRESS"
M_NO_BROTLI = "MPMD0930"


def _filters(word: str) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in word.split(";") if n.strip())
    for name in names:
        if name not in compress.FILTERS:
            raise v.Worded(f"No such output filter: {name.upper()} ({KNOWN})")
    if not names:
        raise v.Worded(f"an output filter name is needed ({KNOWN})")
    return names


def set_output_filter(args: list[str]) -> tuple[str, ...]:
    return _filters(args[0])


def add_output_filter(args: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if len(args) < 2:
        raise v.Worded("AddOutputFilter requires at least two arguments, a filter name and "
                       "one or more file extensions")
    return _filters(args[0]), tuple(a.lower().lstrip(".") for a in args[1:])


def add_output_filter_by_type(args: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if len(args) < 2:
        raise v.Worded("AddOutputFilterByType requires at least two arguments, a filter name "
                       "and one or more content-types")
    return _filters(args[0]), tuple(a.lower() for a in args[1:])


for _conv in (set_output_filter, add_output_filter, add_output_filter_by_type):
    _conv.kind = "words"  # type: ignore[attr-defined]

DIRECTIVES = [
    Directive("AddOutputFilterByType", Args.RAW_ARGS, Ctx.ANY, add_output_filter_by_type, [],
              "add_output_filter_by_type",
              "Run these output filters (DEFLATE, BROTLI_COMPRESS; joined by \";\") over "
              "answers of these media types.", merge=Merge.APPEND,
              syntax="AddOutputFilterByType filter[;filter...] media-type [media-type] ...",
              override=Override.FILEINFO),
    Directive("SetOutputFilter", Args.TAKE1, Ctx.ANY, set_output_filter, None,
              "set_output_filter",
              "Run these output filters over every answer of the section (core's directive "
              "in httpd).", syntax="SetOutputFilter filter[;filter...]", override=Override.FILEINFO),
    Directive("AddOutputFilter", Args.RAW_ARGS, Ctx.ANY, add_output_filter, [],
              "add_output_filter",
              "Run these output filters over files with these extensions (mod_mime's "
              "directive in httpd).", merge=Merge.APPEND,
              syntax="AddOutputFilter filter[;filter...] extension [extension] ...",
              override=Override.FILEINFO),
]


def _names_brotli(value: Any) -> bool:
    if not value:
        return False
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return "brotli_compress" in value
    if isinstance(value, tuple):
        return "brotli_compress" in value[0]
    return any(_names_brotli(item) for item in value)


class FilterModule(Module):
    name: ClassVar[str] = "filter_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_filter.c",)
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True
    output_order: ClassVar[int] = 50

    def __init__(self) -> None:
        self.compressor = compress.Compressor()

    def unused_hooks(self, values: dict[str, Any]) -> Iterable[str]:
        fields = values.get(getattr(core_modules, "SET_FIELDS", "fields set"))
        if fields is not None and not any(f in fields for f in FIELDS):
            return ("output_filter", "fixups")
        return ()

    def check_config(self, cfg: Any) -> list[Problem]:
        """A BROTLI_COMPRESS line where the brotli package is missing is refused at its line."""
        if compress.brotli_available():
            return []
        problems = []
        for field in FIELDS:                     # the lines at server level
            where = cfg.where(field)
            if where != "default" and _names_brotli(getattr(cfg.default_dir, field, None)):
                file, _, line = where.rpartition(":")
                problems.append(Problem("error", M_NO_BROTLI, "BROTLI_COMPRESS needs the "
                                        "brotli package (pip install brotli)", file, int(line)))
        for server in core_modules.servers_of(cfg):
            for op in _all_ops(server):
                if op.directive.field in FIELDS and _names_brotli(op.value):
                    problems.append(Problem("error", M_NO_BROTLI,
                                            "BROTLI_COMPRESS needs the brotli package "
                                            "(pip install brotli)", op.file, op.line))
        return problems[:1]

    def fixups(self, ctx: RequestContext) -> None:
        """Rule 3."""
        if not ctx.filename:
            return
        chain = self.compressor.chains(ctx.dir_config,
                                       compress.media_type(ctx.notes.get("content_type")),
                                       ctx.filename)
        if chain:
            server = ctx.server
            codings = tuple(c.coding for c in chain if c.alter_etag(server) == "AddSuffix")
            if codings:
                ctx.notes[conditional.VARIANTS] = codings

    def output_filter(self, ctx: RequestContext, resp: Response) -> Response:
        return self.compressor.filter(ctx, resp)


def _all_ops(server: Any) -> list[Any]:
    """Every directive line of a server: its own and its sections' (for check_config)."""
    ops: list[Any] = []
    vhost = getattr(server, "vhost", None)
    todo = list(getattr(server, "sections", None) or [])
    if vhost is not None:
        ops += vhost.ops
    while todo:
        section = todo.pop()
        ops += getattr(section, "ops", [])
        todo += getattr(section, "sections", [])
    return ops
