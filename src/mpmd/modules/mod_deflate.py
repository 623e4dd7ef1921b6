"""mod_deflate: the DEFLATE output filter (gzip), built in.

The filter is named by SetOutputFilter, AddOutputFilter or AddOutputFilterByType (mod_filter,
``mod_filter.py``); what it does to an answer is ``compress.py``.  This module declares the
settings, server-wide as in httpd (server config, virtual host).  ``DeflateWindowSize`` below 9
is refused: zlib cannot make such a stream (httpd then fails to initialise zlib and sends
every answer uncompressed).
"""

from __future__ import annotations

from typing import ClassVar

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.modules import Module

SERVER = Ctx.SERVER | Ctx.VHOST
DEFAULT_LEVEL = 6               # zlib's Z_DEFAULT_COMPRESSION is level 6


def filter_note(args: list[str]) -> tuple[str, str]:
    """DeflateFilterNote [Ratio|Input|Output] name -> (kind, note name)."""
    if len(args) == 1:
        return "ratio", args[0]
    kind = args[0].lower()
    if kind not in ("ratio", "input", "output"):
        raise v.Worded(f"Unknown note type {args[0]}")
    return kind, args[1]


filter_note.kind = "words"  # type: ignore[attr-defined]

ALTER_ETAG = v.choice("AddSuffix", "NoChange", "Remove")

DIRECTIVES = [
    Directive("DeflateCompressionLevel", Args.TAKE1, SERVER, v.int_range(1, 9), DEFAULT_LEVEL,
              "deflate_compression_level",
              "How hard DEFLATE compresses (1 fastest .. 9 smallest); zlib's default is 6.",
              syntax="DeflateCompressionLevel value"),
    Directive("DeflateWindowSize", Args.TAKE1, SERVER, v.int_range(9, 15), 15,
              "deflate_window_size",
              "zlib's window size, as a power of two (9..15); below 9 zlib makes no stream.",
              syntax="DeflateWindowSize value"),
    Directive("DeflateMemLevel", Args.TAKE1, SERVER, v.int_range(1, 9), 9, "deflate_mem_level",
              "How much memory zlib uses for compressing (1..9).",
              syntax="DeflateMemLevel value"),
    Directive("DeflateAlterETag", Args.TAKE1, SERVER, ALTER_ETAG, "AddSuffix",
              "deflate_alter_etag",
              "What a gzip answer's ETag becomes: the entity tag with \"-gzip\" before its "
              "closing quote (AddSuffix), unchanged (NoChange) or removed (Remove).",
              syntax="DeflateAlterETag AddSuffix|NoChange|Remove"),
    Directive("DeflateFilterNote", Args.TAKE12, SERVER, filter_note, [], "deflate_filter_note",
              "Store the compression ratio (output * 100 / input), the input or the output "
              "size of each gzip answer in a request note, for %{name}n in LogFormat.",
              syntax="DeflateFilterNote [type] notename", merge=Merge.APPEND),
]


class DeflateModule(Module):
    name: ClassVar[str] = "deflate_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_deflate.c",)
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True
