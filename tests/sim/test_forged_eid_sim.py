"""Issue 11's forged-EID hijack, reproduced step by step on the simulated network.

Cluster C's node c1 calls entity `svc` of cluster S (node s1). The forger publishes one
address, where a honeypot records every datagram it receives and answers none. The forger
takes S's genuine EID, swaps in a cluster ID that claims S's master hash with its own
cluster key and address (at a higher version, or at S's own version), self-signs it and
hands it to c1's caller. Before callers verified target EIDs, c1 stored that cluster ID
for S and sent every later call for S, genuine EIDs included, to the honeypot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from carbon.types import dumps_typed, loads_typed
from mercury_rt.core.identity import ClusterId, Eid, mint_eid
from mercury_rt.core.node import MemoryHeldStore, RetryPolicy
from mercury_rt.core.routing import ClusterView, NodeInfo, RoutingConfig
from mercury_rt.core.transport import Addr, TransportConfig
from mercury_rt.localcluster import OPEN_POLICY
from mercury_rt.testing import Executions, SimNode, SimNodeSpec, Simulation
from policy.load import parse_policy
from tests.forgery_support import (
    C_ADDRESS,
    C_CID,
    C_HOST,
    C_KEY,
    FORGER_HOST,
    FORGERIES,
    HASHES_ONLY,
    S_ADDRESS,
    S_CID,
    S_HOST,
    S_KEY,
    forged_cluster_id,
    forged_eid,
)

TRANSPORT = TransportConfig(initial_rto=0.05, min_rto=0.02, max_rto=1.0, record_slack=10.0,
                            reassembly_timeout=5.0)
HELD = RetryPolicy(initial_delay=0.2, factor=2.0, max_delay=1.0, jitter=0.2, ttl=120.0)
FORGER: Addr = (FORGER_HOST, 7000)


class Honeypot:
    """The forger's published address: records what reaches it, answers nothing."""

    def __init__(self) -> None:
        self.received: list[bytes] = []

    def receive_datagram(self, data: bytes, peer: Addr, now: float) -> None:
        self.received.append(data)

    def handle_timer(self, now: float) -> None:
        """No timers."""

    def datagrams_to_send(self) -> list[tuple[bytes, Addr]]:
        return []

    def get_timer(self) -> float | None:
        return None


def _node(sim: Simulation, ex: Executions, name: str, host: str, cid: ClusterId,
          key: object, mirrors: tuple[str, ...]) -> SimNode:
    address = C_ADDRESS if cid is C_CID else S_ADDRESS
    node = name.encode()
    view = ClusterView(node, 1, {node: NodeInfo(node, True, address)},
                       {m.encode(): frozenset({node}) for m in mirrors}, {})
    spec = SimNodeSpec(name, key, [cid], (host, 7000), (host, 7001),  # type: ignore[arg-type]
                       RoutingConfig(), view, {node: (host, 7001)},
                       parse_policy(OPEN_POLICY, "p"), mirrors, MemoryHeldStore(), TRANSPORT,
                       0.15, HELD)
    return SimNode(sim.net, spec, ex)


@dataclass
class World:
    sim: Simulation = field(default_factory=lambda: Simulation(7))
    ex: Executions = field(default_factory=Executions)
    honeypot: Honeypot = field(default_factory=Honeypot)
    outcomes: dict[str, tuple[bytes | None, int | None, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.caller = _node(self.sim, self.ex, "c1", C_HOST, C_CID, C_KEY, ("alice",))
        self.s1 = _node(self.sim, self.ex, "s1", S_HOST, S_CID, S_KEY, ("svc",))
        self.sim.add(FORGER, self.honeypot)

    def call(self, target: Eid, text: str) -> tuple[bytes | None, int | None, str]:
        """c1's alice calls echo on `target`; runs the network until the call ends."""
        def done(payload: bytes | None, code: int | None, message: str) -> None:
            self.outcomes[text] = (payload, code, message)
        self.caller.call(target.encode(), 1, dumps_typed(str, text), caller=b"alice",
                         done=done, timeout=5.0)
        self.sim.run_until(lambda: text in self.outcomes, max_time=self.sim.now + 30)
        return self.outcomes[text]

    def reached_s(self, target: Eid, text: str) -> None:
        """The call ran at S (only there) and answered its text."""
        payload, code, message = self.call(target, text)
        assert code is None, f"{text}: {code} {message}"
        assert loads_typed(str, payload or b"") == text
        assert self.ex.runs[text] == ["s1"]

    def refused(self, target: Eid, text: str) -> None:
        """The call failed with an identity code (3xx) and ran nowhere."""
        _, code, message = self.call(target, text)
        assert code is not None and 300 <= code < 400, f"{text}: {code} {message}"
        assert text not in self.ex.runs

    def forger_saw(self, text: str) -> bool:
        return any(text.encode() in datagram for datagram in self.honeypot.received)

    def held_for_s(self) -> ClusterId | None:
        return self.caller.planner.known.get(S_CID.master_hash)


def genuine(local: bytes = b"svc", hashes_only: bool = False) -> Eid:
    return mint_eid(S_KEY, S_CID, local, options=HASHES_ONLY) if hashes_only \
        else mint_eid(S_KEY, S_CID, local)


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_higher_version_does_not_hijack_s(forgery: str) -> None:
    """1. c1 calls a genuine EID of S: it runs at S, and c1 holds S's cluster ID v1.
    2. The forger's EID claims S's master hash at version 99, with its own cluster key and
       address, self-signed. c1 calls it: the call fails with an identity code, and c1
       still holds S's genuine v1.
    3. c1 calls genuine S EIDs (full keys and hashes only): they run at S. The honeypot
       received nothing at all."""
    world = World()
    world.reached_s(genuine(), "before")
    world.refused(forged_eid(forged_cluster_id(99, **FORGERIES[forgery])), "forged")
    held = world.held_for_s()
    assert held is not None and held.core_message() == S_CID.core_message()
    world.reached_s(genuine(), "after")
    world.reached_s(genuine(hashes_only=True), "after, hashes only")
    assert world.honeypot.received == []


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_eid_seen_first_does_not_hijack_s(forgery: str) -> None:
    """Without the version bump: the forged EID (version 1) is the first EID of S that c1
    sees. Its call fails with an identity code and stores nothing for S (at most a key
    query went to the address the forged EID lists: no request, no payload); genuine S
    EIDs then run at S."""
    world = World()
    world.refused(forged_eid(forged_cluster_id(1, **FORGERIES[forgery])), "forged first")
    assert world.held_for_s() is None
    world.reached_s(genuine(), "genuine")
    world.reached_s(genuine(b"svc", hashes_only=True), "genuine, hashes only")
    assert not any(world.forger_saw(text) for text in world.outcomes)
    held = world.held_for_s()
    assert held is not None and held.core_message() == S_CID.core_message()


def test_hashes_only_eid_first_fetches_s_keys_and_calls() -> None:
    """A hashes-only EID of S with nothing known of S: c1 fetches S's cluster ID from the
    address the EID lists, verifies it, and the call runs at S."""
    world = World()
    world.reached_s(genuine(hashes_only=True), "hashes only")
    ring = world.caller.core.verifier.ring
    assert ring.certified(S_CID.master_hash, S_CID.cluster_key_hash) is not None
