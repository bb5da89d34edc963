"""Spent hashcash stamps and one-way message ids are shared by a replicated cluster's nodes
(issue 12 item 2): two in-process nodes mirroring `carol` on a real 3-member etcd. Each
request is the exact opened bytes a caller's session would deliver, decided by the node's
core and carried out by its shell (stamp spend, invoker, etcd commit); only the transport
session around it is left out, so the test chooses which node each attempt reaches."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carbon.error_codes import ErrorCode
from carbon.protocol_spec import Interface, message, request
from carbon.types import dumps_typed, loads_typed
from lithium.context import RequestContext
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.apps import NodeApp
from mercury_rt.config import OPEN_POLICY
from mercury_rt.core.gate import (
    ASSUMED_PROVEN,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
    target_tag,
)
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import NodeReply, NodeRequest, decode_reply, encode_operation
from mercury_rt.core.node.delivered import DeliveredSettings
from mercury_rt.core.routing import Path as RoutePath
from mercury_rt.etcd_dev import (
    Member,
    start_cluster,
    start_member,
    stop_cluster_members,
    stop_member,
    wait_ready,
)
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan
from mercury_rt.localcluster import start_cluster as start_nodes
from tests.etcd_support import EtcdCluster, require_etcd
from tungsten.etcd_store import STAMP_LEASE_STEP, EtcdSettings, EtcdState
from tungsten.keys import decode_key, decode_stored

pytestmark = pytest.mark.net
BITS = 8
POLICY = OPEN_POLICY + f"entities:\n  carol: {{hashcash_bits: {BITS}}}\n"
SECTION = "/test/stamps"
STAMPED = Interface("/test/stamps/v1", ops=[request(1, "bump", str, int),
                                            message(2, "note", str)])
RUNS: list[str] = []
"""Every handler run on either node (both run in this process)."""


def _app(app: NodeApp) -> None:
    @app.registry.handler("t.bump")
    def bump(ctx: RequestContext, who: str) -> int:
        RUNS.append(who)
        now = ctx.state.get(SECTION, (who,))
        total = (0 if now is None else int(str(now[0]))) + 1
        ctx.state.put(SECTION, (who,), (total,))
        return total

    @app.registry.handler("t.note")
    def note(ctx: RequestContext, text: str) -> None:
        RUNS.append(text)  # writes nothing: its record alone keeps it from running again

    app.attach_to_mirrors(STAMPED, endpoint=2, handlers={"bump": "t.bump", "note": "t.note"})


def _members(directory: Path, hosts: tuple[str, ...]) -> list[Member]:
    require_etcd()
    return start_cluster(directory, hosts)


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    """Three members on 127.0.101.x for this module."""
    directory = tmp_path_factory.mktemp("etcd-stamps")
    members = _members(directory, ("127.0.101.1", "127.0.101.2", "127.0.101.3"))
    try:
        yield EtcdCluster(members)
    finally:
        stop_cluster_members(members)
        shutil.rmtree(directory, ignore_errors=True)


async def _nodes(settings: EtcdSettings, hosts: tuple[str, str]) -> LocalCluster:
    RUNS.clear()
    plan = ClusterPlan("svc", (NodePlan("a", hosts[0], ("carol",), priority=10),
                               NodePlan("b", hosts[1], ("carol",), priority=20)),
                       policy=POLICY, apps=(_app,), echo=False, replication=settings)
    return await start_nodes(plan)


def _stamped(cluster: LocalCluster, operation: int, text: str, *,
             request_id: bytes | None = None, message_id: bytes | None = None) -> bytes:
    """One operation on carol from alice, paid with a freshly minted stamp."""
    target = cluster.eid("carol")
    body = NodeRequest(target, 2, operation, dumps_typed(str, text),
                       version=cluster.cluster_id.version, source=cluster.eid("alice"),
                       request_id=request_id, message_id=message_id).body()
    resource = stamp_resource(target_tag(Eid.decode(target).principal()), 2, operation,
                              request_digest(body))
    stamp = mint_stamp(resource, BITS, time.time(), os.urandom(12))
    return encode_operation(body, (hashcash_payment(stamp),))


async def _deliver(node: NodeRuntime, payload: bytes, *, one_way: bool = False) -> NodeReply:
    """What the node answers `payload` (as opened from a caller's session)."""
    action = node.core.handle(RoutePath.INTER_CLUSTER, payload, os.urandom(8),
                              node._now() + 10.0, time.time(), one_way,
                              proof=ASSUMED_PROVEN, transit=2)
    done = node._carry_out(action)
    return decode_reply(done if isinstance(done, bytes) else await done)


def test_a_stamp_spent_at_a_is_refused_at_b(etcd: EtcdCluster) -> None:
    async def run() -> tuple[NodeReply, NodeReply]:
        cluster = await _nodes(etcd.settings(b"s1/"), ("127.0.101.11", "127.0.101.12"))
        try:
            replayed = _stamped(cluster, 1, "once")  # no request id: a replay is a replay
            first = await _deliver(cluster.nodes["a"], replayed)
            again = await _deliver(cluster.nodes["b"], replayed)
            return first, again
        finally:
            await cluster.stop()

    first, again = asyncio.run(run())
    assert first.ok and loads_typed(int, first.payload or b"") == 1
    assert again.code == ErrorCode.HASHCASH_DOUBLE_SPENT
    assert "another request" in again.message and again.required_bits == BITS
    assert RUNS == ["once"]


def test_the_same_request_retried_at_b_with_its_stamp_runs_once(etcd: EtcdCluster) -> None:
    """A's answer is lost and A stops; the caller retries the same request (same id, same
    stamp) at B: B answers with A's stored reply, and a second retry there too."""
    async def run() -> list[NodeReply]:
        cluster = await _nodes(etcd.settings(b"s2/"), ("127.0.101.13", "127.0.101.14"))
        try:
            retried = _stamped(cluster, 1, "retry", request_id=b"call-1")
            replies = [await _deliver(cluster.nodes["a"], retried)]
            await cluster.nodes["a"].stop()
            replies.append(await _deliver(cluster.nodes["b"], retried))
            replies.append(await _deliver(cluster.nodes["b"], retried))  # seen here too
            return replies
        finally:
            await cluster.stop()

    replies = asyncio.run(run())
    assert [(r.ok, loads_typed(int, r.payload or b"")) for r in replies] == [(True, 1)] * 3
    assert RUNS == ["retry"]
    assert asyncio.run(_count(etcd.settings(b"s2/"), "retry")) == 1


def test_a_one_way_message_redelivered_via_b_runs_once(etcd: EtcdCluster) -> None:
    """Delivered at A (its handler writes nothing), redelivered through B after A stops,
    with the same message id and stamp: B acknowledges it and does not run it."""
    async def run() -> list[NodeReply]:
        cluster = await _nodes(etcd.settings(b"s3/"), ("127.0.101.15", "127.0.101.16"))
        try:
            sent = _stamped(cluster, 2, "note-1", message_id=os.urandom(16))
            replies = [await _deliver(cluster.nodes["a"], sent, one_way=True)]
            await cluster.nodes["a"].stop()
            replies.append(await _deliver(cluster.nodes["b"], sent, one_way=True))
            return replies
        finally:
            await cluster.stop()

    replies = asyncio.run(run())
    assert all(r.ok for r in replies), [(r.code, r.message) for r in replies]
    assert RUNS == ["note-1"]
    [kept] = _lease_ttls(etcd, b"s3/r/")  # as long as a sender may resend it
    assert kept >= DeliveredSettings().retention


def test_callers_pay_and_run_through_the_network_on_a_replicated_cluster(
        etcd: EtcdCluster) -> None:
    """The whole path: a caller in another cluster is asked for a stamp, mints it, and its
    paid calls run once each (the counter in etcd counts them)."""
    async def run() -> list[object]:
        cluster = await _nodes(etcd.settings(b"s6/"), ("127.0.101.17", "127.0.101.18"))
        home = await start_nodes(ClusterPlan("home", (NodePlan("h1", "127.0.101.19", ()),)))
        try:
            carol = cluster.eid("carol")
            return [loads_typed(int, await home.nodes["h1"].call(
                carol, 2, 1, dumps_typed(str, "net"), caller=b"dave", timeout=10.0))
                for _ in range(3)]
        finally:
            await home.stop()
            await cluster.stop()

    assert asyncio.run(run()) == [1, 2, 3]
    assert RUNS == ["net"] * 3
    assert asyncio.run(_count(etcd.settings(b"s6/"), "net")) == 3
    assert len(_lease_ttls(etcd, b"s6/t/")) == 3  # each call's stamp, spent cluster-wide


def test_etcd_majority_lost_refuses_with_460_runs_nothing_and_the_retry_runs_once_later(
        tmp_path: Path) -> None:
    """With two of three members stopped, a stamped request and a stamped one-way message
    are refused with 460 and nothing runs; once the members are back, the same request
    and the same message retried at the same node run, once (their stamps and ids seen
    there before do not make them look spent or delivered)."""
    members = _members(tmp_path / "etcd", ("127.0.102.1", "127.0.102.2", "127.0.102.3"))
    try:
        settings = EtcdCluster(members).settings(b"s4/", timeout=2.0)

        async def run() -> tuple[list[NodeReply], float, list[str], list[NodeReply]]:
            cluster = await _nodes(settings, ("127.0.102.11", "127.0.102.12"))
            node = cluster.nodes["a"]
            try:
                call = _stamped(cluster, 1, "later", request_id=b"call-2")
                note = _stamped(cluster, 2, "note-2", message_id=os.urandom(16))
                for member in members[1:]:
                    await asyncio.to_thread(stop_member, member)
                started = time.monotonic()
                refused = [await _deliver(node, call),
                           await _deliver(node, note, one_way=True)]
                took, ran_meanwhile = time.monotonic() - started, list(RUNS)
                for member in members[1:]:
                    start_member(member, members, tmp_path / f"{member.name}.log")
                await asyncio.to_thread(wait_ready, members)
                retried = [await _deliver(node, call), await _deliver(node, note, one_way=True),
                           await _deliver(node, call), await _deliver(node, note, one_way=True)]
                return refused, took, ran_meanwhile, retried
            finally:
                await cluster.stop()

        refused, took, ran_meanwhile, retried = asyncio.run(run())
    finally:
        stop_cluster_members(members)
    assert [r.code for r in refused] == [ErrorCode.REPLICATION_UNAVAILABLE] * 2
    assert all("stamp could not be spent cluster-wide, so nothing ran" in r.message
               for r in refused)
    assert took < 2 * (2.0 + 1.5)
    assert ran_meanwhile == []
    assert all(r.ok for r in retried), [(r.code, r.message) for r in retried]
    assert loads_typed(int, retried[0].payload or b"") == 1
    assert sorted(RUNS) == ["later", "note-2"]


def test_a_spent_stamp_keeps_its_binding_and_expires_after_the_stamp(
        etcd: EtcdCluster) -> None:
    async def run() -> tuple[bytes | None, bytes | None, bytes | None]:
        state = EtcdState(etcd.settings(b"s5/"))
        try:
            now = time.time()
            first = await state.spend_stamp(b"d" * 20, b"req-x", int(now) + 100, now)
            same = await state.spend_stamp(b"d" * 20, b"req-x", int(now) + 100, now)
            other = await state.spend_stamp(b"d" * 20, b"req-y", int(now) + 100, now)
            return first, same, other
        finally:
            await state.close()

    first, same, other = asyncio.run(run())
    assert (first, same, other) == (None, b"req-x", b"req-x")
    [ttl] = _lease_ttls(etcd, b"s5/t/")
    assert 100 <= ttl <= 100 + 2 * STAMP_LEASE_STEP + 2


async def _count(settings: EtcdSettings, who: str) -> int:
    """carol's counter for `who` in the shared state."""
    state = EtcdState(settings)
    try:
        read = await state.read_entity(b"carol")
    finally:
        await state.close()
    for raw, value in read.records.items():
        if decode_key(raw)[2] == (who,):
            return int(str(decode_stored(value)[0]))
    return 0


def _lease_ttls(cluster: EtcdCluster, prefix: bytes) -> list[int]:
    """Seconds left on the lease of each key under `prefix`, as etcdctl reports them."""
    member = cluster.members[0]
    endpoint = f"--endpoints=http://{member.host}:{member.client_port}"
    env = {**os.environ, "ETCDCTL_API": "3"}

    def etcdctl(*args: str) -> dict[str, Any]:
        done = subprocess.run(["etcdctl", endpoint, *args, "-w", "json"], check=True,
                              capture_output=True, env=env, timeout=10)
        out: dict[str, Any] = json.loads(done.stdout)
        return out

    kvs = etcdctl("get", "--prefix", prefix.decode()).get("kvs", [])
    return [int(etcdctl("lease", "timetolive", format(kv["lease"], "x"))["ttl"])
            for kv in kvs]
