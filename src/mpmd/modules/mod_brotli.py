"""mod_brotli: the BROTLI_COMPRESS output filter (br, with the ``brotli`` package), built in.

The filter is named by SetOutputFilter, AddOutputFilter or AddOutputFilterByType (mod_filter,
``mod_filter.py``); what it does to an answer is ``compress.py``.  This module declares the
settings, server-wide as in httpd, with httpd's defaults (quality 5, window 2^18, the
encoder's own block size).  A config that names BROTLI_COMPRESS where the ``brotli`` package
cannot be imported is refused at the line that names it.
"""

from __future__ import annotations

from typing import ClassVar

from mpmd.config import values as v
from mpmd.config.directives import Args, Ctx, Directive, Merge
from mpmd.core.modules import Module
from mpmd.modules.mod_deflate import ALTER_ETAG


def filter_note(args: list[str]) -> tuple[str, str]:
    """BrotliFilterNote [Ratio|Input|Output] name -> (kind, note name)."""
    if len(args) == 1:
        return "ratio", args[0]
    kind = args[0].lower()
    if kind not in ("ratio", "input", "output"):
        raise v.Worded(f"Unknown BrotliFilterNote type '{args[0]}'")
    return kind, args[1]


filter_note.kind = "words"  # type: ignore[attr-defined]


class LgBlock(v.Converter):
    """BrotliCompressionMaxInputBlock: 16..24, or 0 (the default: the encoder chooses)."""

    kind = "int"
    describe = "integer 16..24"

    def __call__(self, args: list[str]) -> int:
        try:
            n = int(args[0], 10)
        except ValueError:
            n = -1
        if not (16 <= n <= 24 or n == 0):
            raise v.Worded("BrotliCompressionMaxInputBlock must be between 16 and 24")
        return n


SERVER = Ctx.SERVER | Ctx.VHOST

DIRECTIVES = [
    Directive("BrotliCompressionQuality", Args.TAKE1, SERVER, v.int_range(0, 11), 5,
              "brotli_compression_quality",
              "How hard BROTLI_COMPRESS compresses (0 fastest .. 11 smallest).",
              syntax="BrotliCompressionQuality value"),
    Directive("BrotliCompressionWindow", Args.TAKE1, SERVER, v.int_range(10, 24), 18,
              "brotli_compression_window",
              "The encoder's sliding window, as a power of two (10..24).",
              syntax="BrotliCompressionWindow value"),
    Directive("BrotliCompressionMaxInputBlock", Args.TAKE1, SERVER, LgBlock(), 0,
              "brotli_compression_max_input_block",
              "The encoder's largest input block, as a power of two (16..24); 0 lets it choose.",
              syntax="BrotliCompressionMaxInputBlock value"),
    Directive("BrotliAlterETag", Args.TAKE1, SERVER, ALTER_ETAG, "AddSuffix",
              "brotli_alter_etag",
              "What a br answer's ETag becomes: the entity tag with \"-br\" before its closing "
              "quote (AddSuffix), unchanged (NoChange) or removed (Remove).",
              syntax="BrotliAlterETag AddSuffix|NoChange|Remove"),
    Directive("BrotliFilterNote", Args.TAKE12, SERVER, filter_note, [], "brotli_filter_note",
              "Store the compression ratio (output * 100 / input), the input or the output "
              "size of each br answer in a request note, for %{name}n in LogFormat.",
              syntax="BrotliFilterNote [type] notename", merge=Merge.APPEND),
]


class BrotliModule(Module):
    name: ClassVar[str] = "brotli_module"
    aliases: ClassVar[tuple[str, ...]] = ("mod_brotli.c",)
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin: ClassVar[bool] = True
    route_pure: ClassVar[bool] = True
