"""Cluster-ID versions on a real 3-member etcd (127.0.104.x): two nodes racing to publish
the next version through compare-and-swap issue one version per number and end on the
same one; a version another node (or a tool) put is learnt through the watch; a value in
etcd that does not verify is never adopted and is replaced by the node's own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import replace
from ipaddress import ip_address

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.aio import etcd_membership
from mercury_rt.aio.etcd_membership import EtcdMembership
from mercury_rt.aio.etcd_versions import CLUSTER_ID_KEY
from mercury_rt.core.identity import ClusterId, ServerAddress, change_addresses, issue_cluster_id
from mercury_rt.core.membership import MembershipConfig, NodeIdentity
from mercury_rt.core.node import (
    ClusterIdLearned,
    EtcdValueRejected,
    MembershipEvent,
    MembershipSettings,
    MembershipStep,
    NodeMembership,
)
from mercury_rt.core.routing import NodeInfo
from tests.etcd_support import EtcdCluster
from tests.membership_node_support import make_core
from tests.replication.own_etcd import own_cluster
from tungsten.errors import StateError
from tungsten.etcd_store import (
    EtcdState,
    EtcdWatch,
    EventKind,
    Lease,
    LeaseExpiredError,
    grant_lease,
    put_on_lease,
    read_range,
    refresh_lease,
)

pytestmark = pytest.mark.net
NAMES = (b"n0", b"n1")
INTER = {b"n0": ("192.0.2.1", 7000), b"n1": ("192.0.2.2", 7000)}
INTRA = {b"n0": ("10.0.0.1", 7100), b"n1": ("10.0.0.2", 7100)}


@pytest.fixture(scope="module")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    yield from own_cluster(tmp_path_factory.mktemp("etcd-m"),
                           ("127.0.104.1", "127.0.104.2", "127.0.104.3"))


class Node:
    """One node's membership adapter and its etcd shell, without sockets."""

    def __init__(self, name: bytes, cid: ClusterId, key: Ed25519PrivateKey,
                 state: EtcdState, changed: asyncio.Event | None = None) -> None:
        core = make_core(name, cid, key, {n: NodeInfo(n, True, None) for n in NAMES}, INTRA)
        identity = NodeIdentity.issue(name, Ed25519PrivateKey.generate(), key,
                                      cid.master_hash)
        self.adapter = NodeMembership(
            core, identity, key, inter_address=INTER[name], intra_address=INTRA[name],
            settings=MembershipSettings(MembershipConfig(interval=0.05), cas=True),
            incarnation=1, now=0.0)
        self.events: list[MembershipEvent] = []
        self.changed = changed or asyncio.Event()
        """Set whenever any node sharing it carried out a step."""
        self.etcd = EtcdMembership(self.adapter, state, self.carry_out, 0.05)

    def carry_out(self, step: MembershipStep) -> None:
        self.events.extend(step.events)
        self.changed.set()

    @property
    def held(self) -> ClusterId:
        return self.adapter.core.state.cluster_id

    async def until(self, condition: Callable[[], bool], timeout: float = 15.0) -> None:
        async def wait() -> None:
            while not condition():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout)


def cluster() -> tuple[ClusterId, Ed25519PrivateKey]:
    key = Ed25519PrivateKey.generate()
    cid = issue_cluster_id(Ed25519PrivateKey.generate(), key, [
        ServerAddress(ip_address(h), p, 10, 10) for h, p in INTER.values()])
    return cid, key


def only(cid: ClusterId, key: Ed25519PrivateKey, name: bytes) -> ClusterId:
    host, port = INTER[name]
    return change_addresses(cid, key, [ServerAddress(ip_address(host), port, 10, 10)])


async def etcd_value(state: EtcdState) -> ClusterId | None:
    found = await read_range(state, CLUSTER_ID_KEY)
    return ClusterId.decode(found.entries[0].value) if found.entries else None


async def history(state: EtcdState, start: int) -> list[ClusterId]:
    """Every value ever put on the key since `start` (a watch replays them)."""
    now = (await read_range(state, CLUSTER_ID_KEY)).revision
    values = []
    async with EtcdWatch(state, CLUSTER_ID_KEY, start) as watch:
        while True:
            event = await asyncio.wait_for(anext(watch), 10)
            if event.kind is EventKind.PUT:
                values.append(ClusterId.decode(event.value))
            if event.mod_revision >= now:
                return values


def test_two_nodes_racing_to_publish_issue_one_version_per_number(etcd: EtcdCluster) -> None:
    async def run() -> None:
        cid, key = cluster()
        states = [EtcdState(etcd.settings(b"race/")) for _ in NAMES]
        start = (await read_range(states[0], b"")).revision + 1
        changed = asyncio.Event()
        nodes = [Node(n, cid, key, s, changed) for n, s in zip(NAMES, states, strict=True)]
        try:
            for node in nodes:
                node.etcd.start()
            await nodes[0].until(lambda: nodes[0].etcd._live is not None)
            for _ in range(3):  # three rounds: both build the next version from the same one
                base = nodes[0].held
                assert nodes[1].held == base
                for node, name in zip(nodes, NAMES, strict=True):
                    node.etcd.propose(only(base, key, name))
                for node in nodes:
                    await node.until(lambda n=node, b=base: n.held.version > b.version)
                await nodes[0].until(lambda: nodes[1].held == nodes[0].held)
            values = await history(states[0], start)
            numbers = [v.version for v in values]
            assert numbers == [1, 2, 3, 4], numbers  # v1 seeded once, then one per round
            assert nodes[0].held == nodes[1].held == values[-1]
            assert await etcd_value(states[0]) == values[-1]
            learned = [e for n in nodes for e in n.events if isinstance(e, ClusterIdLearned)]
            assert len(learned) >= 3  # each round's loser adopted the winner's version
        finally:
            for node in nodes:
                await node.etcd.stop()
            for state in states:
                await state.close()

    asyncio.run(run())


def test_a_version_put_elsewhere_is_learnt_and_a_forged_one_replaced(etcd: EtcdCluster) -> None:
    async def run() -> None:
        cid, key = cluster()
        state, tool = EtcdState(etcd.settings(b"learn/")), EtcdState(etcd.settings(b"learn/"))
        node = Node(b"n0", cid, key, state)
        try:
            node.etcd.start()
            await node.until(lambda: node.etcd._live is not None)
            v2 = only(cid, key, b"n1")
            seen = await tool.get(CLUSTER_ID_KEY)
            assert seen is not None and await tool.put_if_version(CLUSTER_ID_KEY, v2.encode(),
                                                                  seen[1])
            await node.until(lambda: node.held == v2)
            assert any(isinstance(e, ClusterIdLearned) and e.version == 2 for e in node.events)

            forged = replace(only(v2, key, b"n0"), signature=bytes(64))
            seen = await tool.get(CLUSTER_ID_KEY)
            assert seen is not None
            assert await tool.put_if_version(CLUSTER_ID_KEY, forged.encode(), seen[1])
            await node.until(lambda: any(isinstance(e, EtcdValueRejected) for e in node.events))
            assert node.held == v2

            async def restored() -> None:
                while True:  # cleared before the read: a put landing during it still wakes us
                    node.changed.clear()
                    if await etcd_value(tool) == v2:
                        return
                    await node.changed.wait()

            await asyncio.wait_for(restored(), 15)
        finally:
            await node.etcd.stop()
            await state.close()
            await tool.close()

    asyncio.run(run())


def test_a_lease_whose_key_put_failed_is_revoked_not_left_granted(
        etcd: EtcdCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first put of the liveness key fails (etcd refused it): the node retries on a
    new lease, and the lease the failed put was for is gone at once, not left granted and
    empty for its TTL (one more per retry while the puts keep failing)."""
    granted: list[Lease] = []
    failures = [StateError("etcd refused the operation: UNAVAILABLE (injected)")]

    async def recorded_grant(state: EtcdState, ttl: int) -> Lease:
        granted.append(await grant_lease(state, ttl))
        return granted[-1]

    async def put_failing_once(state: EtcdState, key: bytes, value: bytes,
                               lease: Lease) -> int:
        if failures:
            raise failures.pop()
        return await put_on_lease(state, key, value, lease)

    monkeypatch.setattr(etcd_membership, "grant_lease", recorded_grant)
    monkeypatch.setattr(etcd_membership, "put_on_lease", put_failing_once)

    async def run() -> None:
        cid, key = cluster()
        state = EtcdState(etcd.settings(b"lease-put/"))
        node = Node(b"n0", cid, key, state)
        node.etcd = EtcdMembership(node.adapter, state, node.carry_out, 0.05, leases=True,
                                   lease_ttl=30)
        try:
            node.etcd.start()

            async def lease_of_key() -> int:
                while True:  # the member watch wakes us when the key is put
                    node.changed.clear()
                    found = (await read_range(state, b"m/n0")).entries
                    if found:
                        return found[0].lease
                    await node.changed.wait()

            held = await asyncio.wait_for(lease_of_key(), 15)
            assert not failures and held == granted[-1].id
            for lease in granted[:-1]:
                with pytest.raises(LeaseExpiredError):
                    await refresh_lease(state, lease)
        finally:
            await node.etcd.stop()
            await state.close()

    asyncio.run(run())
