"""Build httpd.conf text for tests (httpd test/pyhttpd HttpdConf, in small).

    conf = ConfBuilder(mpm="prefork", root=tmp_path).set("KeepAlive", "On").text()
"""

from __future__ import annotations

from pathlib import Path


class ConfBuilder:
    def __init__(self, root: Path, mpm: str = "prefork", listen: str = "127.0.0.1:0") -> None:
        self.root = Path(root)
        self.mpm = mpm
        self.listens = [listen]
        self.lines: list[str] = []
        self.directives: dict[str, str] = {
            "ServerName": "localhost",
            "DocumentRoot": f'"{self.htdocs}"',
            "ErrorLog": f'"{self.error_log}"',
            "PidFile": f'"{self.pid_file}"',
            "LogLevel": "info",
        }

    @property
    def htdocs(self) -> Path:
        return self.root / "htdocs"

    @property
    def error_log(self) -> Path:
        return self.root / "error_log"

    @property
    def pid_file(self) -> Path:
        return self.root / "mpmd.pid"

    def set(self, name: str, value: object) -> "ConfBuilder":
        """One server-level directive (the last value for a name wins)."""
        self.directives[name] = str(value)
        return self

    def listen(self, *addrs: str) -> "ConfBuilder":
        self.listens = list(addrs)
        return self

    def add(self, text: str) -> "ConfBuilder":
        """Raw lines appended at the end (sections, modules)."""
        self.lines.append(text)
        return self

    def text(self) -> str:
        out = [f"LoadModule mpm_{self.mpm}_module modules/mod_mpm_{self.mpm}.so"]
        out += [f"Listen {addr}" for addr in self.listens]
        out += [f"{k} {v}" for k, v in self.directives.items()]
        out += self.lines
        return "\n".join(out) + "\n"

    def write(self, path: Path | None = None) -> Path:
        path = path or self.root / "httpd.conf"
        self.htdocs.mkdir(parents=True, exist_ok=True)
        path.write_text(self.text())
        return path


def directive_values(directives: list, **overrides: object) -> object:
    """A config object holding every core directive's and ``directives``' table default, then
    ``overrides``: what an MPM's settings read as typed attributes, without loading a file."""
    from types import SimpleNamespace

    from mpmd.core.core_directives import DIRECTIVES as CORE
    values = {d.field: d.default for d in (*CORE, *directives)}
    values.update(overrides)
    return SimpleNamespace(**values)
