"""core/memo.py: the bounded tables behind the route cache and the header-block caches."""

from mpmd.core.memo import CONTENT_KEY_MAX, by_content, remember


def test_remember_empties_a_full_table_first() -> None:
    table: dict = {}
    for i in range(3):
        assert remember(table, i, str(i), limit=3) == str(i)
    remember(table, "new", "x", limit=3)
    assert table == {"new": "x"}                  # never more than the limit


def test_by_content_keys_short_hashable_sequences_only() -> None:
    table: dict = {}
    pairs = [("Content-Type", "text/plain"), ("Content-Length", "2")]
    key, hit = by_content(table, pairs)
    assert key == tuple(pairs) and hit is None
    table[key] = "block"
    assert by_content(table, list(pairs)) == (key, "block")    # equal content, another list
    assert by_content(table, [["Content-Type", "x"]]) == (None, None)      # unhashable pairs
    assert by_content(table, [("a", "b")] * (CONTENT_KEY_MAX + 1)) == (None, None)
    assert by_content(table, iter(pairs)) == (None, None)      # no len(): not keyed


def test_derived_by_content_derives_once_per_content_and_always_for_unkeyable() -> None:
    from mpmd.core.memo import derived_by_content
    table: dict = {}
    calls: list = []

    def derive(items):
        calls.append(list(items))
        return len(calls)

    pairs = [("a", "1")]
    assert derived_by_content(table, pairs, derive, 8) == 1
    assert derived_by_content(table, list(pairs), derive, 8) == 1      # same content: remembered
    assert derived_by_content(table, [["a", "1"]], derive, 8) == 2     # unhashable: derived
    assert derived_by_content(table, [["a", "1"]], derive, 8) == 3     # ... every time
