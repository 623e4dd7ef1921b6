"""How long a killed child takes to be replaced and serving, per MPM, under a light load.

For each MPM a server with ONE child (``tests/support/respawn.py``: the only process that can
answer after the kill is the replacement) is started; a client sends one request after another
on new connections (a light load) while the child is SIGKILLed ``--kills`` times, each time
once it has lived past the respawn backoff.  Prints, per MPM, the median (min-max) time from
the kill to the first answer, and the light load's failed requests (only the killed child's
in-flight request may fail: at most one per kill).

    python3 benchmarks/respawn.py --kills 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support.confbuilder import ConfBuilder  # noqa: E402
from tests.support.harness import Server  # noqa: E402
from tests.support.respawn import answer_status, kill_and_time, one_child  # noqa: E402

MPMS = ("prefork", "worker", "event", "nginx")


class LightLoad(threading.Thread):
    """One request after another, each on a new connection; counts answers and failures."""

    def __init__(self, port: int, pause_s: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.port, self.pause_s = port, pause_s
        self.ok = self.failed = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            if answer_status(self.port, 5.0) == 200:
                self.ok += 1
            else:
                self.failed += 1
            time.sleep(self.pause_s)


def measure(mpm: str, kills: int) -> tuple[list[float], LightLoad]:
    conf = ConfBuilder(Path(tempfile.mkdtemp(prefix=f"mpmd-respawn-{mpm}-")), mpm=mpm)
    conf.htdocs.mkdir(parents=True, exist_ok=True)
    (conf.htdocs / "index.html").write_bytes(b"<h1>hello</h1>\n")
    with Server(one_child(conf)) as server:
        load = LightLoad(server.port)
        load.start()
        try:
            times = [kill_and_time(server).serving_s for _ in range(kills)]
        finally:
            load.stopping.set()
            load.join()
    return times, load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=7)
    ap.add_argument("--mpm", action="append", choices=MPMS)
    args = ap.parse_args(argv)
    print("| MPM | kill -> replacement serving, median (min-max) | light load: answered / failed |")
    print("|---|---|---|")
    for mpm in args.mpm or MPMS:
        times, load = measure(mpm, args.kills)
        ms = sorted(t * 1000 for t in times)
        print(f"| {mpm} | {statistics.median(ms):.0f} ms ({ms[0]:.0f}-{ms[-1]:.0f}) | "
              f"{load.ok} / {load.failed} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
