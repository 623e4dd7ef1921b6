"""Each data/bad/NNN.conf fails to load with the message and line in NNN.expect.

NNN.expect: first line = the line number, second line = text the message must contain.
"""

from pathlib import Path

import pytest

from mpmd.config.loader import ConfigError, load_config

DATA = Path(__file__).parent / "data" / "bad"
CASES = sorted(DATA.glob("*.conf"))


@pytest.mark.parametrize("conf", CASES, ids=[c.stem for c in CASES])
def test_bad_config(conf):
    line, message = conf.with_suffix(".expect").read_text().splitlines()[:2]
    with pytest.raises(ConfigError) as info:
        load_config(str(conf))
    err = info.value
    assert (err.file, err.line) == (str(conf), int(line)), str(err)
    assert message in err.message
    assert str(err) == f"Syntax error on line {line} of {conf}:\n{err.message}"
