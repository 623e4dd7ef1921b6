"""The MPM registry: which scheduler runs the shared HTTP core.

``LoadModule mpm_event_module modules/mod_mpm_event.so`` selects "event"; the .so path is
accepted as-is (Apache configs work unchanged).  Exactly one MPM may be loaded; with none,
``DEFAULT_MPM`` is used.  Classes are imported lazily so that loading a config never imports
the schedulers it does not use.
"""

from __future__ import annotations

import importlib
from typing import Any

MPMS: dict[str, str] = {
    "prefork": "mpmd.mpm.prefork:Prefork",
    "worker": "mpmd.mpm.worker:Worker",
    "event": "mpmd.mpm.event:Event",
    "nginx": "mpmd.mpm.nginx:Nginx",
}

# LoadModule names -> MPM name ("mpm_prefork_module" -> "prefork")
MPM_MODULES: dict[str, str] = {f"mpm_{name}_module": name for name in MPMS}

DEFAULT_MPM = "event"          # as Apache httpd 2.4


def load_mpm_class(name: str) -> Any:
    """The MPM class for ``name`` (a key of MPMS); raises KeyError or ImportError."""
    module_name, _, attr = MPMS[name].partition(":")
    return getattr(importlib.import_module(module_name), attr)
