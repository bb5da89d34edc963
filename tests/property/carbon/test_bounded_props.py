"""keep_newest: the caches' one bound rule. Whatever is put, the table never holds more
than its limit, the entry just put is there with its value, and what goes is the oldest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carbon.bounded import keep_newest


@given(st.lists(st.tuples(st.integers(0, 20), st.integers())), st.integers(1, 8))
def test_the_table_is_bounded_keeps_the_newest_and_drops_the_oldest(
        puts: list[tuple[int, int]], limit: int) -> None:
    table: dict[int, int] = {}
    order: list[int] = []  # the model: keys from oldest to newest
    for key, value in puts:
        keep_newest(table, key, value, limit)
        if key in order:
            order.remove(key)
        order.append(key)
        del order[:-limit]
        assert len(table) <= limit
        assert table[key] == value
        assert list(table) == order
