"""Summaries of repeated measurements: median with min-max, and ratios to a baseline.

Rule 1: a summary never invents a number: no samples -> None, a zero baseline -> None.
Rule 2: the median is the figure quoted; min and max travel with it so a reader sees spread.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Summary:
    """Median of n samples with their range."""

    median: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def summarize(samples: Iterable[float | None]) -> Summary | None:
    """Median/min/max of the non-None samples, or None when there are none."""
    values = [float(v) for v in samples if v is not None]
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return value / baseline


def speedup_pct(on: float | None, off: float | None) -> float | None:
    """How much faster keep-alive on is than off, in percent (50.0 = 1.5x)."""
    r = ratio(on, off)
    return None if r is None else (r - 1.0) * 100.0


def fmt(value: float | None, spec: str = ".0f", unit: str = "") -> str:
    """Format for tables; missing values print as an en dash."""
    return "–" if value is None else f"{value:{spec}}{unit}"


def fmt_summary(s: Summary | None, spec: str = ".0f", scale: float = 1.0) -> str:
    """'12345 (12000–12500)' for a summary; a single sample prints without a range."""
    if s is None:
        return "–"
    if s.n == 1:
        return f"{s.median * scale:{spec}}"
    return f"{s.median * scale:{spec}} ({s.low * scale:{spec}}–{s.high * scale:{spec}})"
