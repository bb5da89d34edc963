"""One bounded table rule for the caches that keep what a call works out once.

Each such cache (contact views, transit plans, request-body parts) is a dict whose
insertion order is its entries' age: a new or rebuilt entry goes in as the newest and,
when the table is full, the oldest goes. One function so the bound is applied the same
way everywhere and cannot be forgotten in one of them.
"""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep_newest(table: dict[K, V], key: K, value: V, limit: int) -> None:
    """Put `key` -> `value` in `table` as its newest entry, keeping at most `limit`."""
    table.pop(key, None)
    if len(table) >= limit:
        del table[next(iter(table))]
    table[key] = value
