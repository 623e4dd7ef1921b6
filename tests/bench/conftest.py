"""Fixtures for the benchmark lab tests."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench_smoke: runs `mpmd bench --quick` restricted to a fast subset "
        "(real servers on 127.0.0.1; no speed assertions)")
