"""The etcd adapter against a real 3-member etcd: a commit is all-or-nothing, guarded by
the entity's head and the request record, and refuses change sets over etcd's limits."""

from __future__ import annotations

import asyncio

import pytest

from carbon.error_codes import ErrorCode
from tests.etcd_support import EtcdCluster, etcd_cluster
from tungsten.errors import ConflictError
from tungsten.etcd_store import MAX_TXN_OPS, ChangeTooLargeError, EtcdState
from tungsten.keys import entity_prefix

__all__ = ["etcd_cluster"]
pytestmark = pytest.mark.net


def _key(entity: bytes, n: int) -> bytes:
    return entity_prefix(entity) + b"\x01k" + bytes((n,))


def test_commit_then_read_at_a_later_revision(etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd_cluster.settings(b"t1/"))
        try:
            first = await state.read_entity(b"acct")
            assert first.records == {}
            reply = await state.commit(b"acct", first.revision, [(_key(b"acct", 1), b"v1")],
                                       b"req-1", b"ok-1")
            assert reply == b"ok-1"
            second = await state.read_entity(b"acct", b"req-1")
            assert second.records == {_key(b"acct", 1): b"v1"}
            assert second.stored_reply == b"ok-1"
            assert second.revision > first.revision
        finally:
            await state.close()

    asyncio.run(run())


def test_stale_revision_conflicts_and_writes_nothing(etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd_cluster.settings(b"t2/"))
        try:
            base = await state.read_entity(b"e")
            await state.commit(b"e", base.revision, [(_key(b"e", 1), b"a")], b"r1", b"")
            with pytest.raises(ConflictError):
                await state.commit(b"e", base.revision, [(_key(b"e", 2), b"b")], b"r2", b"")
            assert (await state.read_entity(b"e")).records == {_key(b"e", 1): b"a"}
        finally:
            await state.close()

    asyncio.run(run())


def test_a_committed_request_id_returns_its_stored_reply(etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd_cluster.settings(b"t3/"))
        try:
            base = await state.read_entity(b"e")
            await state.commit(b"e", base.revision, [(_key(b"e", 1), b"1")], b"same", b"first")
            again = await state.read_entity(b"e")
            reply = await state.commit(b"e", again.revision, [(_key(b"e", 1), b"2")], b"same",
                                       b"second")
            assert reply == b"first"
            assert (await state.read_entity(b"e")).records == {_key(b"e", 1): b"1"}
        finally:
            await state.close()

    asyncio.run(run())


def test_change_sets_over_etcd_limits_are_refused_before_sending(
        etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd_cluster.settings(b"t4/"))
        try:
            base = await state.read_entity(b"e")
            many = [(_key(b"e", n), b"x") for n in range(MAX_TXN_OPS - 1)]
            with pytest.raises(ChangeTooLargeError) as raised:
                await state.commit(b"e", base.revision, many, b"r", b"")
            assert raised.value.code is ErrorCode.REPLICATION_CHANGE_TOO_LARGE
            big = [(_key(b"e", n), b"x" * 400_000) for n in range(4)]
            with pytest.raises(ChangeTooLargeError):
                await state.commit(b"e", base.revision, big, b"r", b"")
            assert (await state.read_entity(b"e")).records == {}
            fits = many[:MAX_TXN_OPS - 2]
            await state.commit(b"e", base.revision, fits, b"r", b"")
            assert len((await state.read_entity(b"e")).records) == MAX_TXN_OPS - 2
        finally:
            await state.close()

    asyncio.run(run())


def test_key_guards_conflict_only_on_what_the_handler_read(etcd_cluster: EtcdCluster) -> None:
    async def run() -> None:
        state = EtcdState(etcd_cluster.settings(b"t5/"))
        k1, k2, k3 = _key(b"e", 1), _key(b"e", 2), _key(b"e", 3)
        try:
            base = await state.read_entity(b"e")
            await state.commit(b"e", base.revision, [(k1, b"a"), (k2, b"b")], b"r0", b"")
            seen = await state.read_entity(b"e")
            await state.commit(b"e", seen.revision, [(k2, b"c")], b"r1", b"")
            # read k1 (unchanged) and k3 (still absent): commits despite the k2 write
            await state.commit(b"e", seen.revision, [(k3, b"d")], b"r2", b"",
                               reads=[(k1, True), (k3, False)])
            with pytest.raises(ConflictError):  # read k2, which changed
                await state.commit(b"e", seen.revision, [(k3, b"e")], b"r3", b"",
                                   reads=[(k2, True)])
            await state.commit(b"e", (await state.read_entity(b"e")).revision,
                               [(k1, None)], b"r4", b"")
            with pytest.raises(ConflictError):  # saw k1 present; it was deleted since
                await state.commit(b"e", seen.revision, [(k3, b"f")], b"r5", b"",
                                   reads=[(k1, True)])
            with pytest.raises(ConflictError):  # no key list: the whole entity is guarded
                await state.commit(b"e", seen.revision, [(k3, b"g")], b"r6", b"")
            final = (await state.read_entity(b"e")).records
            assert final == {k2: b"c", k3: b"d"}
        finally:
            await state.close()

    asyncio.run(run())
