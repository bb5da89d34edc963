"""A node's delivered one-way message ids are durable and separate from spent stamps."""

from __future__ import annotations

from pathlib import Path

from mercury_rt.config import delivered_store, spent_store
from mercury_rt.core.gate import SpendResult
from tungsten.store import LmdbStore


def test_delivered_ids_survive_a_reopen_and_do_not_collide_with_spent_stamps(
        tmp_path: Path) -> None:
    store = LmdbStore(tmp_path)
    delivered, spent = delivered_store(store, limit=2), spent_store(store, limit=10)
    assert delivered.add_if_absent(b"id-1", 1000, 0.0) is SpendResult.ADDED
    assert spent.add_if_absent(b"id-1", 1000, 0.0) is SpendResult.ADDED
    assert delivered.add_if_absent(b"id-2", 1000, 0.0) is SpendResult.ADDED
    assert delivered.add_if_absent(b"id-3", 1000, 0.0) is SpendResult.FULL
    store.close()
    reopened = LmdbStore(tmp_path)
    again = delivered_store(reopened, limit=2)
    assert again.add_if_absent(b"id-1", 1000, 1.0) is SpendResult.ALREADY_SPENT
    assert again.add_if_absent(b"id-3", 3000, 2000.0) is SpendResult.ADDED, "expired ones go"
    reopened.close()
