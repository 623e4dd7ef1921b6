"""mod_reqtimeout: RequestReadTimeout, built in (httpd's default when the module is loaded).

The rule itself is in ``core/reqtimeout.py``, read by every transport through ``cycle.Policy``;
this module only declares the directive.  The header stage is read with the connection's address's
default server's value (cycle.py Rule 8), the body stage with the request's vhost's.
"""

from __future__ import annotations

from typing import ClassVar

from mpmd.config.directives import Args, Ctx, Directive
from mpmd.core import reqtimeout
from mpmd.core.modules import Module

DIRECTIVES = [
    Directive("RequestReadTimeout", Args.ITERATE, Ctx.SERVER | Ctx.VHOST,
              reqtimeout.ReadTimeoutArgs(), reqtimeout.DEFAULT, "request_read_timeout",
              "Time to receive a request's head and body: an initial timeout, extended by 1 s "
              "per MinRate bytes received up to the maximum; 0 disables a stage (handshake= is "
              "refused).",
              syntax="RequestReadTimeout [header=timeout[-maxtimeout][,MinRate=rate]] "
                     "[body=timeout[-maxtimeout][,MinRate=rate]]",
              extra={"combine": reqtimeout.combine}),
]


class ReqtimeoutModule(Module):
    name = "reqtimeout_module"
    aliases = ("mod_reqtimeout.c",)
    DIRECTIVES: ClassVar[list[Directive]] = DIRECTIVES
    builtin = True
    route_pure = True
