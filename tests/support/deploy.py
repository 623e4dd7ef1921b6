"""docs/deploy/'s sample configurations, with their ports and paths made a test's."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.support.confbuilder import ConfBuilder

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"


class FileConf(ConfBuilder):
    """A ConfBuilder whose text is a given configuration file's."""

    def __init__(self, root: Path, text: str) -> None:
        super().__init__(root)
        self.body = text

    def text(self) -> str:
        return self.body


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def mpmd_conf(root: Path, port: int, probe: int, mpm: str = "event") -> FileConf:
    """docs/deploy/mpmd.conf on 127.0.0.1:``port`` (8081) and ``probe`` (8082), in ``root``."""
    text = (DEPLOY / "mpmd.conf").read_text()
    root.mkdir(parents=True, exist_ok=True)
    conf = FileConf(root, "")
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    text = re.sub(r"(?m)^Listen 8081$", f"Listen 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^Listen 8082$", f"Listen 127.0.0.1:{probe}", text)
    text = text.replace("<VirtualHost *:8082>", f"<VirtualHost *:{probe}>")
    text = text.replace('DocumentRoot "/srv/www"', f'DocumentRoot "{conf.htdocs}"')
    text = text.replace('ErrorLog "/dev/stderr"', f'ErrorLog "{conf.error_log}"')
    text = text.replace('PidFile "/tmp/mpmd.pid"', f'PidFile "{conf.pid_file}"')
    text = text.replace('CustomLog "/dev/stdout"', f'CustomLog "{root / "access_log"}"')
    if mpm == "nginx":
        text = text.replace("mpm_event_module modules/mod_mpm_event.so",
                            "mpm_nginx_module modules/mod_mpm_nginx.so")
        text += "WorkerProcesses 1\n"
    else:
        text += "StartServers 1\nMinSpareThreads 4\nThreadsPerChild 8\n"   # light: 2 cores shared
    assert str(port) in text and str(conf.htdocs) in text and not re.search(r"\b808[0-3]\b", text)
    conf.body = text
    return conf


def haproxy_conf(front: int, backs: list[int]) -> str:
    text = (DEPLOY / "haproxy.cfg").read_text()
    text = text.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{front}")
    for i, port in enumerate(backs, 1):
        text = text.replace(f"127.0.0.1:808{i}", f"127.0.0.1:{port}")
    # HAProxy connects from another address than the clients', to tell them apart in the logs
    text = text.replace("check-send-proxy\n", "check-send-proxy source 127.0.0.2\n")
    assert "source 127.0.0.2" in text and all(str(p) in text for p in backs)
    return text
