#!/usr/bin/env python3
"""Write the exact configs the lab uses into benchmarks/peers/ (for reading and reuse).

The lab renders them per run (ports and temp paths differ); these copies use port 8080 and
placeholder paths under /srv/bench so the files can be compared or started by hand.

    PYTHONPATH=src python3 benchmarks/render_peer_configs.py
"""

from pathlib import Path

from mpmd.bench import configs
from mpmd.bench.configs import Paths, Sizing

OUT = Path(__file__).parent / "peers"


def main() -> None:
    s = Sizing()
    p = Paths(Path("/srv/bench/run"), Path("/srv/bench/htdocs"), Path("/srv/bench/apps"))
    OUT.mkdir(exist_ok=True)
    (OUT / "nginx.conf").write_text(configs.render_nginx(p, s, 8080).replace("user root;\n", ""))
    for mpm in ("prefork", "worker", "event"):
        text = configs.render_apache(mpm, p, s, 8080).replace("User www-data\nGroup www-data\n", "")
        (OUT / f"apache-{mpm}.conf").write_text(text)
    for mpm in ("prefork", "worker", "event", "nginx"):
        (OUT / f"mpmd-{mpm}.conf").write_text(configs.render_mpmd(mpm, "wsgi-hello", p, s, 8080))
    # The nginx MPM runs as many processes as the workload's peer: nginx/uvicorn 1, gunicorn 2.
    (OUT / "mpmd-nginx-static.conf").write_text(configs.render_mpmd("nginx", "static-1k", p, s,
                                                                     8080))
    argv = {"gunicorn-sync": configs.gunicorn_argv("sync", "hello_wsgi:application", p, s, 8080),
            "gunicorn-gthread": configs.gunicorn_argv("gthread", "hello_wsgi:application", p, s,
                                                      8080),
            "uvicorn": configs.uvicorn_argv("hello_asgi:app", p, s, 8080)}
    (OUT / "commands.txt").write_text("".join(
        f"# {name}\n{' '.join(['python3'] + a[1:])}\n" for name, a in argv.items()))


if __name__ == "__main__":
    main()
