"""Memory a node holds per idle peer and per cached EID (issue 17 item 11), by tracemalloc.

Each figure is the growth of traced memory (after `gc.collect()`) while the pure core
handles `--peers` peers (or verifies `--eids` EIDs), divided by their number. Inputs (the
callers' datagrams, the EIDs) are built before the first reading, so only what the node
keeps is counted:

  - transport: a request from each of N addresses answered (`Transport.reply`); read
    just after the reply, while the transport still holds it for retransmission, and
    again once its timers have run past every retention (what an idle peer costs);
  - transit: a session established by each of N callers (first datagram opened, the
    gate's proof check done and cached, reply sealed), as the node's TransitResponder
    keeps it;
  - node tables: NodeCore.handle for the first request of a new session from each of N
    addresses (a caller whose EID is already verified): what the core keeps per address
    (its signature-budget bucket; the gate's remembered allow is per caller and target,
    not per session, so a new session of a known caller adds none);
  - per distinct caller: NodeCore.handle for the first request of each of N callers whose
    EIDs are verified: the gate's remembered allow (not part of an idle peer's cost: a
    caller costs it once however many sessions or addresses it uses);
  - per cached EID: N EIDs of one cluster whose keys the node holds (the result cache
    alone), and N EIDs each of its own new cluster (cache and key ring), counting the
    EID bytes the cache keeps as its key.

    python bench/bench_memory.py [--peers 2000] [--eids 2000] [--json]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import random
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from mercury_rt.core.gate import BudgetSettings, SignatureBudget
from mercury_rt.core.identity import (
    EidVerifier,
    issue_cluster_id,
    mint_eid,
    private_key_from_bytes,
)
from mercury_rt.core.node import Invoke, NodeRequest, encode_operation
from mercury_rt.core.routing import NodeInfo, Path
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import Prepared, TransitInitiator
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.responder import Opened, TransitResponder
from mercury_rt.core.transport import RequestReceived, Transport, TransportConfig
from tests.forgery_support import C_ADDRESS, C_CID, C_KEY, S_ADDRESS, S_CID, S_HOST, S_KEY
from tests.membership_node_support import make_core
from tests.transit_support import (
    CALLER_CLUSTER_KEY,
    CALLER_HASH,
    NODE_ADDR,
    NODE_CLUSTER_KEY,
    NODE_HASH,
    NOW,
    credential,
    lookup_for,
)

PAYLOAD = b"x" * 100


def measured(prepare: Callable[[], Any], run: Callable[[Any], Any], count: int) -> float:
    """Bytes per item that `run(prepare())` leaves allocated (what it returns is kept)."""
    inputs = prepare()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    kept = run(inputs)
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del kept
    return grown / count


def peer(i: int) -> tuple[str, int]:
    return (f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 7000)


def transport(count: int, idle: bool) -> float:
    """Per peer: one request answered; `idle`: then every retention timer run out."""
    def prepare() -> tuple[Transport, bytes]:
        client = Transport(TransportConfig(), rng=random.Random(1))
        client.call(NODE_ADDR, PAYLOAD, NOW)
        (datagram, _), = client.datagrams_to_send()
        return Transport(TransportConfig(), rng=random.Random(2)), datagram

    def run(inputs: tuple[Transport, bytes]) -> Transport:
        server, datagram = inputs
        for i in range(count):
            server.receive_datagram(datagram, peer(i), NOW)
            event = server.next_event()
            assert isinstance(event, RequestReceived), event
            server.reply(peer(i), event.request_id, PAYLOAD, NOW)
            server.datagrams_to_send()
        if idle:
            now = NOW
            for _ in range(100):
                timer = server.get_timer()
                if timer is None or timer > NOW + 3600:
                    break
                now = max(now, timer)
                server.handle_timer(now)
                server.datagrams_to_send()
        return server
    return measured(prepare, run, count)


def transit(count: int) -> float:
    """Per peer: one session, established and proven, as the node's responder keeps it."""
    lookup = lookup_for({NODE_HASH: NODE_CLUSTER_KEY})
    caller_lookup = lookup_for({CALLER_HASH: CALLER_CLUSTER_KEY})

    def prepare() -> tuple[TransitResponder, list[bytes]]:
        keys = NodeTransitKeys(NODE_CLUSTER_KEY, NODE_HASH, os.urandom, NOW)
        node = TransitResponder(keys, NODE_HASH, token_secret=os.urandom(32),
                                boot_ms=int(NOW * 1000) - 1000, random_bytes=os.urandom)
        first = TransitInitiator(credential(), TransitCertVerifier(lookup), os.urandom)
        query = first.prepare(NODE_ADDR, NODE_HASH, 1, PAYLOAD, NOW)
        answer = node.open(query.query, peer(0), NOW)  # type: ignore[union-attr]
        datagrams = []
        for i in range(count):
            caller = TransitInitiator(credential(), TransitCertVerifier(lookup), os.urandom)
            caller.learn_key(NODE_ADDR, NODE_HASH, answer.reply, NOW)  # type: ignore[union-attr]
            step = caller.prepare(NODE_ADDR, NODE_HASH, 1, PAYLOAD, NOW + i * 0.001)
            assert isinstance(step, Prepared)
            datagrams.append(step.datagram)
        return node, datagrams

    def run(inputs: tuple[TransitResponder, list[bytes]]) -> TransitResponder:
        node, datagrams = inputs
        for i, datagram in enumerate(datagrams):
            outcome = node.open(datagram, peer(i), NOW + i * 0.001)
            assert isinstance(outcome, Opened), outcome
            proof = outcome.channel.session.proof
            assert proof is not None and proof.check(proof.master_hash, caller_lookup)
            node.seal(outcome.channel, PAYLOAD)
        datagrams.clear()
        return node
    return measured(prepare, run, count)


class _Proof:
    """A new session's proof, checked once (its memory is the transit session's)."""

    __slots__ = ("proven",)

    def __init__(self) -> None:
        self.proven: bool | None = None

    @property
    def checked(self) -> bool:
        return self.proven is not None

    def check(self, master_hash: bytes, cluster_key: object) -> bool:
        self.proven = True
        return True


def node_tables(count: int) -> float:
    """Per peer address: what NodeCore keeps for a request from it (caller known)."""
    target = mint_eid(S_KEY, S_CID, b"svc").encode()
    source = mint_eid(C_KEY, C_CID, b"alice").encode()

    def prepare() -> tuple[Any, list[bytes], list[_Proof]]:
        core = make_core(b"s1", S_CID, S_KEY, {b"s1": NodeInfo(b"s1", True, S_ADDRESS)},
                         {b"s1": (S_HOST, 7001)}, {b"svc": frozenset({b"s1"})})
        core.signature_budget = SignatureBudget(BudgetSettings(burst=1e9, cluster_burst=1e9))
        payloads = [encode_operation(NodeRequest(target, 1, 1, b"%d" % i, version=1,
                                                 source=source).body())
                    for i in range(count + 1)]
        assert isinstance(core.handle(Path.INTER_CLUSTER, payloads[-1], b"k", 1e12, NOW,
                                      proof=_Proof(), transit=1, peer=peer(count)), Invoke)
        return core, payloads[:-1], [_Proof() for _ in range(count)]

    def run(inputs: tuple[Any, list[bytes], list[_Proof]]) -> Any:
        core, payloads, proofs = inputs
        for i, data in enumerate(payloads):
            action = core.handle(Path.INTER_CLUSTER, data, data[-16:], 1e12, NOW + i * 0.01,
                                 proof=proofs[i], transit=1, peer=peer(i))
            assert isinstance(action, Invoke), action
        payloads.clear()
        return core
    return measured(prepare, run, count)


def decision_entries(count: int) -> float:
    """Per distinct caller (its EID already verified): what NodeCore keeps for its first
    request, which is the gate's remembered allow (decision cache entry, key and its EID
    bytes as decoded from the request)."""
    target = mint_eid(S_KEY, S_CID, b"svc").encode()

    def prepare() -> tuple[Any, list[bytes], _Proof]:
        core = make_core(b"s1", S_CID, S_KEY, {b"s1": NodeInfo(b"s1", True, S_ADDRESS)},
                         {b"s1": (S_HOST, 7001)}, {b"svc": frozenset({b"s1"})})
        core.signature_budget = SignatureBudget(BudgetSettings(burst=1e9, cluster_burst=1e9))
        payloads = []
        for i in range(count + 1):
            source = mint_eid(C_KEY, C_CID, b"user-%d" % i).encode()
            assert core.verifier.verify(source).fully_verified
            payloads.append(encode_operation(NodeRequest(target, 1, 1, b"%d" % i, version=1,
                                                         source=source).body()))
        proof = _Proof()
        assert isinstance(core.handle(Path.INTER_CLUSTER, payloads[-1], b"k", 1e12, NOW,
                                      proof=proof, transit=1, peer=peer(0)), Invoke)
        return core, payloads[:-1], proof

    def run(inputs: tuple[Any, list[bytes], _Proof]) -> Any:
        core, payloads, proof = inputs
        for i, data in enumerate(payloads):
            action = core.handle(Path.INTER_CLUSTER, data, data[-16:], 1e12, NOW + i * 0.01,
                                 proof=proof, transit=1, peer=peer(0))
            assert isinstance(action, Invoke), action
        assert len(core.decisions) == count + 1
        payloads.clear()
        return core
    return measured(prepare, run, count)


def eids(count: int, new_clusters: bool) -> float:
    """Per EID verified and cached: of one known cluster, or each of a new cluster."""
    def prepare() -> tuple[EidVerifier, list[bytes]]:
        verifier = EidVerifier()
        verifier.add_cluster_id(C_CID)
        out = []
        for i in range(count):
            if new_clusters:
                seed = hashlib.sha256(b"m%d" % i).digest()
                master, key = private_key_from_bytes(seed), private_key_from_bytes(seed[::-1])
                out.append(mint_eid(key, issue_cluster_id(master, key, [C_ADDRESS]),
                                    b"user-%d" % i).encode())
            else:
                out.append(mint_eid(C_KEY, C_CID, b"user-%d" % i).encode())
        return verifier, out

    def run(inputs: tuple[EidVerifier, list[bytes]]) -> tuple[EidVerifier, list[bytes]]:
        verifier, data = inputs
        for eid in data:
            assert verifier.verify(eid).fully_verified
        return verifier, data
    # The cache keeps the request's EID bytes as its key; here they were built before the
    # first reading, so they are added: a node would otherwise have freed them.
    _, sample = prepare_sample(new_clusters)
    return measured(prepare, run, count) + sys.getsizeof(sample)


def prepare_sample(new_clusters: bool) -> tuple[None, bytes]:
    if new_clusters:
        seed = hashlib.sha256(b"m0").digest()
        master, key = private_key_from_bytes(seed), private_key_from_bytes(seed[::-1])
        return None, mint_eid(key, issue_cluster_id(master, key, [C_ADDRESS]), b"user-0").encode()
    return None, mint_eid(C_KEY, C_CID, b"user-0").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=2000)
    parser.add_argument("--eids", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "transport_per_peer_answered": transport(args.peers, idle=False),
        "transport_per_peer_idle": transport(args.peers, idle=True),
        "transit_per_session": transit(args.peers),
        "node_tables_per_address": node_tables(args.peers),
        "decision_cache_per_caller": decision_entries(args.peers),
        "eid_known_cluster": eids(args.eids, new_clusters=False),
        "eid_new_cluster": eids(args.eids, new_clusters=True),
    }
    result["idle_peer_total"] = (result["transport_per_peer_idle"]
                                 + result["transit_per_session"]
                                 + result["node_tables_per_address"])
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, value in result.items():
        print(f"{name:30s} {value:8.0f} B")


if __name__ == "__main__":
    main()
