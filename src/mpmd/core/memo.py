"""Bounded per-process memo tables for the request path.

Each table is a plain dict read with ``dict.get`` on the hot path; ``remember`` adds an entry
and empties the table first when it is full, so a client that sprays distinct keys costs
misses, never memory.  ``by_content`` looks a short sequence of hashable items (an app's
header pairs) up by its content; ``derived_by_content`` is the whole pattern of its callers:
look up, else compute and remember.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

CONTENT_KEY_MAX = 12          # longer sequences are not worth a key


def remember(table: dict[Any, Any], key: Any, value: Any, limit: int) -> Any:
    """``table[key] = value`` (emptying ``table`` first when it holds ``limit``); ``value``."""
    if len(table) >= limit:
        table.clear()
    table[key] = value
    return value


def derived_by_content(table: dict[Any, Any], items: Sequence[Any],
                       derive: Callable[[Sequence[Any]], Any], limit: int) -> Any:
    """``derive(items)``, computed once per distinct content of ``items`` while remembered (a
    sequence that cannot be keyed, see ``by_content``, is derived every time)."""
    key, hit = by_content(table, items)
    if hit is None:
        hit = derive(items)
        if key is not None:
            remember(table, key, hit, limit)
    return hit


def by_content(table: dict[Any, Any], items: Sequence[Any]) -> tuple[Any, Any]:
    """(key, remembered value or None) for a short sequence of hashable items (an app's header
    pairs); key is None when the sequence is too long, unsized or unhashable."""
    try:
        if len(items) > CONTENT_KEY_MAX:
            return None, None
        key = tuple(items)
        return key, table.get(key)
    except TypeError:                     # no len(), or unhashable pairs ([name, value] lists)
        return None, None
