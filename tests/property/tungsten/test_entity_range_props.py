"""The key range a node's cache watch covers (ENTITY_RANGE): every key a commit writes to
an entity's state or head is in it, so the cache misses no change; no spent stamp is, so
a flood of paid requests is not streamed to every node only to be thrown away."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tungsten.etcd_store import ENTITY_RANGE, EtcdSettings, EtcdState

PREFIX = st.binary(min_size=0, max_size=8)
ENTITY = st.binary(min_size=1, max_size=32)


def state(prefix: bytes) -> EtcdState:
    return EtcdState(EtcdSettings((("127.0.118.1", 2379),), prefix=prefix))


def watched(prefix: bytes, key: bytes) -> bool:
    first, end = ENTITY_RANGE
    return prefix + first <= key < prefix + end


@given(PREFIX, ENTITY, st.binary(max_size=64))
def test_every_state_and_head_key_is_watched(prefix: bytes, entity: bytes,
                                             suffix: bytes) -> None:
    etcd = state(prefix)
    raw = bytes((len(entity),)) + entity + suffix
    assert watched(prefix, etcd.state_key(raw))
    assert watched(prefix, etcd.head_key(entity))


@given(PREFIX, st.binary(min_size=1, max_size=64))
def test_no_spent_stamp_is_watched(prefix: bytes, digest: bytes) -> None:
    assert not watched(prefix, state(prefix).stamp_key(digest))
