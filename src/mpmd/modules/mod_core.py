"""core_module's content handler: static files ("default-handler").

Core's directives (DocumentRoot, Options, SetHandler, FileETag ...) are declared in
``mpmd.core.core_directives``; the URL -> file mapping of DocumentRoot is
``mpmd.core.request.core_translate``.  This module only contributes the handler, whose
logic lives in ``static_files``, ``conditional`` and ``ranges``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from mpmd.core.modules import Module
from mpmd.modules.static_files import StaticHandler


class CoreModule(Module):
    name: ClassVar[str] = "core_module"
    aliases: ClassVar[tuple[str, ...]] = ("core.c", "http_core.c", "mod_core.c")
    builtin: ClassVar[bool] = True

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {"default-handler": StaticHandler().serve}
