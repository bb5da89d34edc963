"""Remote state (docs/protocol.md 6.10): an image and a change set survive the wire
exactly, running against an image and committing remotely behaves as a local commit,
and anything else a peer sends fails with the BAD_REMOTE_STATE family only."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.symbols import Symbol
from mercury_rt.core.node import (
    StateCommit,
    StateFetch,
    decode_image,
    decode_node_request,
    encode_state_commit,
    encode_state_fetch,
)
from tungsten.errors import ConflictError, StateError
from tungsten.memory import MemoryStore
from tungsten.remote import (
    MAX_IMAGE_BYTES,
    ImageTooLargeError,
    changes_from_value,
    changes_to_value,
    image_snapshot,
    read_image,
)
from tungsten.staged import MAX_CHECKS, StagedState

ENTITY = b"alice"
SECTIONS = [Symbol("/t/a"), Symbol("/t/b")]
scalars = st.one_of(st.integers(-2**63, 2**63 - 1), st.text(max_size=8), st.binary(max_size=8),
                    st.booleans(), st.none())
tuples = st.lists(scalars, max_size=3).map(tuple)
records = st.dictionaries(st.tuples(st.sampled_from(SECTIONS), tuples), tuples, max_size=12)
# An operation of a handler: read a key, scan a section, write a key or delete one.
ops = st.lists(st.one_of(
    st.tuples(st.just("get"), st.sampled_from(SECTIONS), tuples),
    st.tuples(st.just("scan"), st.sampled_from(SECTIONS), st.integers(0, 20)),
    st.tuples(st.just("put"), st.sampled_from(SECTIONS), tuples, tuples),
    st.tuples(st.just("delete"), st.sampled_from(SECTIONS), tuples)), max_size=10)


def _store(data: dict[tuple[Symbol, tuple[Any, ...]], tuple[Any, ...]],
           other: bytes = b"bob") -> MemoryStore:
    store = MemoryStore()
    with store.writing() as txn:
        for (section, key), value in data.items():
            txn.put(ENTITY, section, key, value)
            txn.put(other, section, key, value)  # another entity: never in alice's image
    return store


def _run(staged: StagedState, script: list[tuple[Any, ...]]) -> list[Any]:
    seen: list[Any] = []
    for op in script:
        if op[0] == "get":
            seen.append(staged.get(ENTITY, op[1], op[2]))
        elif op[0] == "scan":
            seen.append(staged.scan(ENTITY, op[1], op[2]))
        elif op[0] == "put":
            staged.put(ENTITY, op[1], op[2], op[3])
        else:
            seen.append(staged.delete(ENTITY, op[1], op[2]))
    return seen


def _dump(store: MemoryStore) -> list[Any]:
    with store.reading() as view:
        return [view.scan(e, s) for e in (ENTITY, b"bob") for s in SECTIONS]


@settings(max_examples=150, deadline=None)
@given(records, ops, st.lists(st.tuples(st.sampled_from(SECTIONS), tuples, tuples), max_size=2))
def test_remote_run_matches_a_local_run(data: Any, script: Any, interference: Any) -> None:
    """Same reads, same final state, same conflict verdict, whether the handler runs on
    the state node or against an image with its changes shipped back over CBOR."""
    local, remote = _store(data), _store(data)
    snap = local.snapshot()
    local_staged = StagedState(snap)
    local_seen = _run(local_staged, script)
    image_value = cbor.loads(cbor.dumps(read_image(remote.snapshot(), ENTITY)))
    remote_staged = StagedState(image_snapshot(ENTITY, image_value))
    assert _run(remote_staged, script) == local_seen
    for store in (local, remote):  # another transaction commits in between
        with store.writing() as txn:
            for section, key, value in interference:
                txn.put(ENTITY, section, key, value)
    shipped = encode_state_commit(remote_staged.changes(ENTITY))
    request = decode_node_request(shipped)
    assert isinstance(request, StateCommit) and request.entity == ENTITY
    outcomes = []
    # Like a local commit, a read-only remote run commits nothing (Invoker skips it).
    for attempt in (lambda: local_staged.commit(local),
                    lambda: request.changes.writes and remote.apply(request.changes.apply)):
        try:
            attempt()
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
    assert outcomes[0] == outcomes[1]
    assert _dump(local) == _dump(remote)
    snap.close()


@settings(max_examples=100, deadline=None)
@given(records, ops)
def test_change_sets_round_trip_exactly(data: Any, script: Any) -> None:
    staged = StagedState(_store(data).snapshot())
    _run(staged, script)
    changes = staged.changes(ENTITY)
    value = cbor.loads(cbor.dumps(changes_to_value(changes)))
    assert changes_from_value(ENTITY, value) == changes


@settings(max_examples=100, deadline=None)
@given(records)
def test_an_image_holds_exactly_the_entitys_records(data: Any) -> None:
    store = _store(data)
    image = decode_image(ENTITY, cbor.dumps(read_image(store.snapshot(), ENTITY)))
    with store.reading() as view:
        for section in SECTIONS:
            assert image.scan(ENTITY, section) == view.scan(ENTITY, section)
            for key, value in view.scan(ENTITY, section):
                assert image.get(ENTITY, section, key) == value
    assert decode_node_request(encode_state_fetch(ENTITY)) == StateFetch(ENTITY)


@settings(max_examples=300, deadline=None)
@given(st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=12))
def test_any_image_or_change_value_from_a_peer_fails_only_with_a_typed_error(value: Any) -> None:
    for decode in (lambda: image_snapshot(ENTITY, value),
                   lambda: changes_from_value(ENTITY, value)):
        try:
            decode()
        except MercuryError as exc:
            assert exc.code == ErrorCode.BAD_REMOTE_STATE


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_as_a_state_request_fail_only_with_a_typed_error(tail: bytes) -> None:
    for head in (b"\x82\x04", b"\x83\x05\x45alice"):
        with contextlib.suppress(MercuryError):
            decode_node_request(head + tail)


def test_an_entity_past_the_image_limit_is_refused_with_its_own_code() -> None:
    store = MemoryStore()
    with store.writing() as txn:
        for i in range(3):
            txn.put(ENTITY, SECTIONS[0], (i,), (b"x" * (MAX_IMAGE_BYTES // 3),))
    with pytest.raises(ImageTooLargeError) as caught:
        read_image(store.snapshot(), ENTITY)
    assert caught.value.code == ErrorCode.STATE_TOO_LARGE_FOR_REMOTE
    assert "forward or redirect" in caught.value.message


def test_a_change_set_may_touch_only_the_called_entity() -> None:
    staged = StagedState(_store({}).snapshot())
    staged.put(b"bob", SECTIONS[0], (1,), (2,))
    with pytest.raises(MercuryError, match="only its own entity"):
        staged.changes(ENTITY)


def test_a_peer_chosen_scan_limit_does_not_set_the_work_of_its_recheck() -> None:
    """The state node re-runs a scan only one record past what the runner saw, whatever
    limit the change set names, and still detects every difference."""
    store = _store({(SECTIONS[0], (i,)): (i,) for i in range(5)})
    with store.reading() as view:
        everything = view.scan(ENTITY, SECTIONS[0])
    asked: list[int] = []

    class Recording:
        def __init__(self, txn: Any) -> None:
            self.txn = txn

        def __getattr__(self, name: str) -> Any:
            return getattr(self.txn, name)

        def scan(self, entity: bytes, section: Symbol, limit: int) -> Any:
            asked.append(limit)
            return self.txn.scan(entity, section, limit)

    def changes(seen: list[Any]) -> Any:
        pairs = [[cbor.dumps(list(k)), cbor.dumps(list(v))] for k, v in seen]
        return changes_from_value(ENTITY, [[], [[SECTIONS[0].text, 2**62, pairs]],
                                           [[SECTIONS[1].text, cbor.dumps([1]), None]]])
    store.apply(lambda txn: changes(everything).apply(Recording(txn)))
    with pytest.raises(ConflictError):
        store.apply(lambda txn: changes(everything[:2]).apply(Recording(txn)))
    assert asked == [6, 3]


def test_a_change_set_the_state_node_would_refuse_fails_on_the_runner() -> None:
    """Past MAX_CHECKS the handler's node says so itself (repeated scans count once)."""
    staged = StagedState(_store({}).snapshot())
    for _ in range(3):
        staged.scan(ENTITY, SECTIONS[0], 5)
    assert len(staged.changes(ENTITY).scans) == 1
    staged = StagedState(_store({}).snapshot())
    for i in range(MAX_CHECKS + 1):
        staged.get(ENTITY, SECTIONS[0], (i,))
    with pytest.raises(StateError, match=f"at most {MAX_CHECKS} reads and scans"):
        staged.changes(ENTITY)
