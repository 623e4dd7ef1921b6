"""Medians with ranges, ratios and keep-alive speedups."""

import pytest

from mpmd.bench.stats import fmt, fmt_summary, ratio, speedup_pct, summarize


def test_summary_is_median_with_range_and_ignores_missing():
    s = summarize([3.0, None, 1.0, 2.0])
    assert (s.median, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 3)


def test_even_count_median_is_the_mean_of_the_middle_two():
    assert summarize([1, 2, 3, 10]).median == 2.5


def test_no_samples_no_summary():
    assert summarize([]) is None and summarize([None]) is None


def test_ratio_refuses_missing_or_zero_baseline():
    assert ratio(50.0, 100.0) == 0.5
    assert ratio(None, 1.0) is None and ratio(1.0, None) is None and ratio(1.0, 0.0) is None


def test_speedup_percent():
    assert speedup_pct(150.0, 100.0) == pytest.approx(50.0)
    assert speedup_pct(90.0, 100.0) == pytest.approx(-10.0)


def test_formatting():
    assert fmt(None) == "–"
    assert fmt_summary(summarize([10, 12, 11])) == "11 (10–12)"
    assert fmt_summary(summarize([0.0015]), ".1f", 1000) == "1.5"
