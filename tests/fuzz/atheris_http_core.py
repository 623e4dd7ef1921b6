"""Coverage-guided fuzzing of the HTTP core with atheris (libFuzzer), on the oracle of
tests/fuzz/http_core.py: only ProtocolError escapes, and cutting the bytes into reads
changes nothing.

    python3 tests/fuzz/atheris_http_core.py -max_total_time=600      # by hand, 10 minutes
    python3 tests/fuzz/atheris_http_core.py -runs=20000              # what CI runs (a test)

The first input byte chooses up to 8 cut points from the next bytes; the rest is the stream.
A crash prints the input and saves it as crash-*; add it to tests/http as a regression test.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

with atheris.instrument_imports():
    from tests.fuzz.http_core import check


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = [fdp.ConsumeIntInRange(0, 512) for _ in range(fdp.ConsumeIntInRange(0, 8))]
    check(fdp.ConsumeBytes(fdp.remaining_bytes()), cuts)


SEEDS = (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
         b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
         b"BLAH /caf\xc3\xa9 HTTP/1.0\r\n\r\n")


def main() -> None:
    # the corpus libFuzzer grows lives outside the tree
    corpus = Path(os.environ.get("MPMD_FUZZ_CORPUS", Path(tempfile.gettempdir()) / "mpmd-fuzz-http"))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed-{i}").write_bytes(b"\x00" + seed)
    atheris.Setup([sys.argv[0], *sys.argv[1:], str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
