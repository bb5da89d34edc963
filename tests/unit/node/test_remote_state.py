"""Remote-state invocation (routing.not_mirrored: remote-state): the handler runs on one
node, against an image of the entity fetched from the node that holds its state, and its
writes land there, re-checked as a local commit would be."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode, MercuryError
from carbon.protocol_spec import SpecRegistry
from carbon.symbols import Symbol
from carbon.types import INT, dumps_typed, loads_typed
from lithium import Invoker, Reply
from lithium.api import attach
from mercury_rt.core.identity import ServerAddress, issue_cluster_id
from mercury_rt.core.node import (
    Drop,
    NodeCore,
    Respond,
    ServeState,
    StateFetch,
    decode_image,
    decode_reply,
    encode_state_commit,
    encode_state_fetch,
    state_failure,
)
from mercury_rt.core.routing import NodeInfo
from mercury_rt.core.routing import Path as RoutePath
from tests.membership_node_support import make_core
from tests.unit.lithium.test_invoke import ADD, COUNTER, SECTION, _call, _registry, _total
from tungsten.api import Snapshot, StateStore
from tungsten.errors import ConflictError
from tungsten.memory import MemoryStore
from tungsten.staged import EntityChanges
from tungsten.store import LmdbStore

PEEK = dumps_typed(None, None)


class Direct:
    """A StateElsewhere wired straight to the state node's Invoker (no network), with
    hooks to interfere between fetch and commit, or to fail."""

    def __init__(self, home: Invoker, interfere: Any = None, fail_fetch: int | None = None):
        self.home, self.interfere, self.fail_fetch = home, interfere, fail_fetch
        self.fetches = self.commits = 0

    async def fetch(self) -> Snapshot:
        self.fetches += 1
        if self.fail_fetch is not None:
            raise state_failure(self.fail_fetch, "gone", committing=False, answered=False)
        reply = self.home.state_image(b"alice")
        assert reply.ok and reply.payload is not None
        return decode_image(b"alice", reply.payload)

    async def commit(self, changes: EntityChanges) -> None:
        self.commits += 1
        if self.interfere is not None:
            self.interfere()
            self.interfere = None
        reply = await self.home.apply_changes(changes)
        if reply.code == ErrorCode.STATE_CONFLICT:
            raise ConflictError(reply.message)
        if not reply.ok:
            raise MercuryError(reply.message, reply.code)


def _nodes(home_store: StateStore) -> tuple[Invoker, Invoker, MemoryStore]:
    """The state node (mirrors alice) and a runner with an empty store."""
    specs = SpecRegistry()
    with home_store.writing() as txn:
        attach(txn, b"alice", COUNTER, endpoint=1, specs=specs, handlers={
            "add": "counter.add", "peek": "counter.peek", "broken": "counter.broken"})
    runner_store = MemoryStore()
    return (Invoker(home_store, _registry(), specs, clock=lambda: 100.0),
            Invoker(runner_store, _registry(), specs, clock=lambda: 100.0), runner_store)


def _invoke(runner: Invoker, elsewhere: Direct, *calls: Any) -> list[Reply]:
    async def go() -> list[Reply]:
        return [await runner.invoke(c, elsewhere) for c in calls]
    return asyncio.run(go())


@pytest.fixture(params=["lmdb", "memory"])
def home_store(request: pytest.FixtureRequest, tmp_path: Path) -> StateStore:
    return LmdbStore(tmp_path / "env") if request.param == "lmdb" else MemoryStore()


def test_writes_land_on_the_state_node_and_nowhere_else(home_store: StateStore) -> None:
    home, runner, runner_store = _nodes(home_store)
    elsewhere = Direct(home)
    replies = _invoke(runner, elsewhere, _call(payload=dumps_typed(ADD, {"n": 5})),
                      _call(payload=dumps_typed(ADD, {"n": 2})))
    assert [loads_typed(INT, r.payload or b"") for r in replies] == [5, 7]
    assert _total(home_store) == (7,)
    assert _total(runner_store) is None
    assert home_store.durable_seq >= home_store.commit_seq, "acknowledged only once durable"
    assert (elsewhere.fetches, elsewhere.commits) == (2, 2)


def test_a_read_only_call_commits_nothing(home_store: StateStore) -> None:
    home, runner, _ = _nodes(home_store)
    elsewhere = Direct(home)
    _invoke(runner, elsewhere, _call(payload=dumps_typed(ADD, {"n": 3})))
    (reply,) = _invoke(runner, elsewhere, _call(op=3, payload=PEEK))
    assert loads_typed(INT, reply.payload or b"") == 3
    assert elsewhere.commits == 1


def test_a_conflicting_commit_reruns_the_handler_on_a_fresh_image(home_store: StateStore) -> None:
    """Another writer changes the total between fetch and commit: the state node refuses
    the stale changes, the runner fetches again and re-runs, and no increment is lost."""
    home, runner, _ = _nodes(home_store)

    def interfere() -> None:
        with home_store.writing() as txn:
            txn.put(b"alice", Symbol(SECTION), ("total",), (100,))
    elsewhere = Direct(home, interfere=interfere)
    (reply,) = _invoke(runner, elsewhere, _call(payload=dumps_typed(ADD, {"n": 1})))
    assert loads_typed(INT, reply.payload or b"") == 101
    assert _total(home_store) == (101,)
    assert (elsewhere.fetches, elsewhere.commits) == (2, 2)
    assert runner.counters["conflict_retries"] == 1


def test_a_failing_handler_sends_nothing(home_store: StateStore) -> None:
    home, runner, _ = _nodes(home_store)
    elsewhere = Direct(home)
    (reply,) = _invoke(runner, elsewhere, _call(op=4, payload=PEEK))
    assert reply.code == ErrorCode.HANDLER_FAILED
    assert elsewhere.commits == 0 and _total(home_store) is None


def test_an_unreachable_state_node_is_a_node_local_error_and_nothing_runs(
        home_store: StateStore) -> None:
    home, runner, _ = _nodes(home_store)
    (reply,) = _invoke(runner, Direct(home, fail_fetch=int(ErrorCode.NO_ANSWER)),
                       _call(payload=dumps_typed(ADD, {"n": 1})))
    assert reply.code == ErrorCode.NO_LIVE_MIRROR and "nothing was applied" in reply.message
    assert _total(home_store) is None


@pytest.mark.parametrize(("code", "committing", "answered", "expected"), [
    (ErrorCode.STATE_CONFLICT, True, True, ErrorCode.STATE_CONFLICT),
    (ErrorCode.TIMEOUT, False, False, ErrorCode.NO_LIVE_MIRROR),
    (ErrorCode.NO_ANSWER, True, False, ErrorCode.NO_LIVE_MIRROR),
    (ErrorCode.TIMEOUT, True, False, ErrorCode.STATE_FAILURE),
    (ErrorCode.ENTITY_NOT_ON_NODE, False, True, ErrorCode.ENTITY_NOT_ON_NODE),
    (ErrorCode.STATE_TOO_LARGE_FOR_REMOTE, False, True, ErrorCode.STATE_TOO_LARGE_FOR_REMOTE),
    (9999, True, True, ErrorCode.STATE_FAILURE),
])
def test_state_node_failures_map_to_codes_that_say_whether_anything_was_applied(
        code: int, committing: bool, answered: bool, expected: ErrorCode) -> None:
    """Only an acknowledged-but-unanswered commit has an unknown outcome (STATE_FAILURE,
    not retried elsewhere); a failure before that is node-local (try another node)."""
    error = state_failure(int(code), "x", committing=committing, answered=answered)
    assert error.code == expected


def _core() -> NodeCore:
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("192.0.2.1"), 7000, 10, 10)])
    nodes = {n: NodeInfo(n, True, None) for n in (b"n0", b"n1")}
    return make_core(b"n0", cid, key, nodes, {b"n1": ("10.0.0.2", 7100)},
                     mirrors={b"alice": frozenset({b"n0"}), b"bob": frozenset({b"n1"})})


def test_a_node_serves_state_only_in_own_cluster_sessions_and_only_for_mirrored_entities(
) -> None:
    core = _core()
    served = core.handle(RoutePath.INTRA_CLUSTER, encode_state_fetch(b"alice"), b"k", 10.0,
                         0.0, sealed=True)
    assert served == ServeState(StateFetch(b"alice"))
    for payload, path, sealed, code in [
            (encode_state_fetch(b"alice"), RoutePath.INTER_CLUSTER, False,
             ErrorCode.BAD_REMOTE_STATE),
            (encode_state_fetch(b"bob"), RoutePath.INTRA_CLUSTER, True,
             ErrorCode.ENTITY_NOT_ON_NODE)]:
        action = core.handle(path, payload, b"k", 10.0, 0.0, sealed=sealed)
        assert isinstance(action, Respond)
        assert decode_reply(action.reply).code == code
    forged = core.handle(RoutePath.INTRA_CLUSTER, encode_state_fetch(b"alice"), b"k", 10.0, 0.0)
    assert isinstance(forged, Drop), "intra-cluster input outside an own-cluster session"


def test_a_change_set_too_large_to_ship_fails_on_the_running_node_with_407() -> None:
    writes = tuple((Symbol(SECTION), (i,), (b"x" * 300,)) for i in range(8000))
    with pytest.raises(MercuryError) as caught:
        encode_state_commit(EntityChanges(b"alice", (), (), writes))
    assert caught.value.code == ErrorCode.STATE_TOO_LARGE_FOR_REMOTE
    assert "forward" in caught.value.message
    small = EntityChanges(b"alice", (), (), writes[:10])
    assert len(encode_state_commit(small)) < 4096
