"""The membership service hands every cluster ID its node holds to the version sink (at
start, and each version it publishes) before any announcement of that version leaves, and
keeps running when the sink fails."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.aio.endpoint import TransportEndpoint
from mercury_rt.aio.membership_service import MembershipService
from mercury_rt.core.identity import ClusterId, KeyFileError, ServerAddress, issue_cluster_id
from mercury_rt.core.membership import Announcement, MembershipConfig, classify
from mercury_rt.core.node import MembershipSettings
from mercury_rt.core.routing import NodeInfo
from mercury_rt.core.transport import Addr
from tests.membership_node_support import make_core

FAST = MembershipConfig(interval=0.01, suspect_after=1, dead_after=2)
INTER = {b"n0": ("192.0.2.1", 7000), b"n1": ("192.0.2.2", 7000)}
INTRA = {b"n0": ("10.0.0.1", 7100), b"n1": ("10.0.0.2", 7100)}


class Endpoint:
    """The intra endpoint, without a socket: what is sent, in order, into `log`."""

    def __init__(self, log: list[tuple[str, object]]) -> None:
        self.log = log
        self.local_address = INTRA[b"n0"]

    async def send(self, address: Addr, payload: bytes, timeout: float) -> None:
        self.log.append(("send", payload))


class Sink:
    def __init__(self, log: list[tuple[str, object]], fail: bool = False) -> None:
        self.log, self.fail = log, fail

    def record(self, cluster_id: ClusterId) -> None:
        if self.fail:
            raise KeyFileError("disk full")
        self.log.append(("record", cluster_id.version))


async def publish_without_the_silent_peer(sink: Sink, log: list[tuple[str, object]],
                                          ) -> MembershipService:
    """n0 alone of two configured nodes: after the warm-up it publishes version 2."""
    cluster_key = Ed25519PrivateKey.generate()
    cid = issue_cluster_id(Ed25519PrivateKey.generate(), cluster_key,
                           [ServerAddress(ip_address(h), p, 10, 10) for h, p in INTER.values()])
    core = make_core(b"n0", cid, cluster_key, {n: NodeInfo(n, True, None) for n in INTER},
                     INTRA)
    service = MembershipService(core, cast(TransportEndpoint, Endpoint(log)), cluster_key,
                                MembershipSettings(FAST, settle_intervals=1), INTER[b"n0"],
                                sink=sink)
    service.start()
    deadline = asyncio.get_running_loop().time() + 5
    while core.state.cluster_id.version < 2:
        assert asyncio.get_running_loop().time() < deadline, "version 2 never published"
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let the announcement tasks run
    await service.stop()
    return service


def test_a_published_version_is_recorded_before_it_is_announced() -> None:
    log: list[tuple[str, object]] = []

    async def main() -> MembershipService:
        return await publish_without_the_silent_peer(Sink(log), log)

    service = asyncio.run(main())
    records = [i for i, (kind, _) in enumerate(log) if kind == "record"]
    assert [log[i][1] for i in records] == [1, 2]
    assert records[0] == 0, "the starting version is recorded before anything is sent"
    announced_v2 = []
    for index, (kind, payload) in enumerate(log):
        if kind != "send":
            continue
        message = classify(service.adapter.core.seal.open(cast(bytes, payload)))
        if isinstance(message, Announcement) and \
                ClusterId.decode(message.cluster_id).version == 2:
            announced_v2.append(index)
    assert announced_v2 and min(announced_v2) > records[1]


def test_a_failing_sink_is_counted_and_membership_goes_on() -> None:
    log: list[tuple[str, object]] = []

    async def main() -> MembershipService:
        return await publish_without_the_silent_peer(Sink(log, fail=True), log)

    service = asyncio.run(main())
    assert service.sink_failures >= 2  # retried: at start, and again after each step
    assert service.adapter.core.state.cluster_id.version == 2
