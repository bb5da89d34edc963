"""A flood of fresh, validly signed source EIDs of self-made clusters cannot buy signature
checks (docs/protocol.md 7.1, "Signature budget"; issue 17 item 1): each sending address,
each source cluster and all strangers together may cost the node only so many checks a
second; beyond that the node asks for a stamp (600 with the bits) before checking anything,
while a caller whose EID and session it already verified is served at no cost."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import (
    BudgetSettings,
    SignatureBudget,
    hashcash_payment,
    mint_stamp,
    request_digest,
    stamp_resource,
)
from mercury_rt.core.gate.hashcash import target_tag
from mercury_rt.core.identity import issue_cluster_id, mint_eid, private_key_from_bytes
from mercury_rt.core.node import (
    Invoke,
    NodeAction,
    NodeCore,
    NodeRequest,
    Respond,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.routing import NodeInfo, Path
from mercury_rt.core.transport import Addr
from policy.load import parse_policy
from tests.forgery_support import C_ADDRESS, C_CID, C_KEY, S_ADDRESS, S_CID, S_HOST, S_KEY
from tests.membership_node_support import make_core

NOW = 1_700_000_000.0
FLOOD = 10_000
RATE = 1000.0
"""Flood requests per second of the node's clock."""
SETTINGS = BudgetSettings()
TARGET = mint_eid(S_KEY, S_CID, b"svc").encode()
ATTACKER: Addr = ("10.9.0.66", 7000)
CALLER: Addr = ("10.1.0.1", 7000)


class Proof:
    """A session's proof as transit gives it, counting what checking it costs: like the
    real one, it is checked once per session (two signatures), then remembered."""

    checks = 0

    def __init__(self) -> None:
        self.proven: bool | None = None

    @property
    def checked(self) -> bool:
        return self.proven is not None

    def check(self, master_hash: bytes, cluster_key: object) -> bool:
        if self.proven is None:
            Proof.checks += 2
            self.proven = True
        return self.proven


@cache
def fresh_sources() -> tuple[bytes, ...]:
    """FLOOD EIDs, each of its own self-made cluster (master and cluster key inline)."""
    return tuple(stranger(i.to_bytes(4, "big")) for i in range(FLOOD))


def stranger(name: bytes) -> bytes:
    """An EID of a self-made cluster of its own."""
    seed = hashlib.sha256(name).digest()
    master, key = private_key_from_bytes(seed), private_key_from_bytes(seed[::-1])
    return mint_eid(key, issue_cluster_id(master, key, [C_ADDRESS]), b"x").encode()


POLICY = parse_policy(f"""\
version: 1
levels: [public]
unknown_cluster_clearance: public
trusted_clusters:
  c: {{master_hash: "{C_CID.master_hash.hex()}", max_clearance: public,
      default_clearance: public}}
""", "p.yaml")


def s_core() -> NodeCore:
    """S's node, whose policy trusts cluster C (its key ring holds C apart)."""
    node = b"s1"
    core = make_core(node, S_CID, S_KEY, {node: NodeInfo(node, True, S_ADDRESS)},
                     {node: (S_HOST, 7001)}, {b"svc": frozenset({node})})
    core.state.policy = POLICY
    return core


def payload(source: bytes, text: bytes = b"x", stamp_bits: int = 0) -> bytes:
    body = NodeRequest(TARGET, 1, 1, text, version=1, source=source).body()
    if not stamp_bits:
        return encode_operation(body)
    tag = target_tag(mint_eid(S_KEY, S_CID, b"svc").principal())
    resource = stamp_resource(tag, 1, 1, request_digest(body))
    return encode_operation(body, (hashcash_payment(
        mint_stamp(resource, stamp_bits, NOW, b"0123456789ab")),))


def send(core: NodeCore, data: bytes, now: float, peer: Addr, proof: Proof) -> NodeAction:
    return core.handle(Path.INTER_CLUSTER, data, data[-16:], 1e12, now, proof=proof,
                       transit=2, peer=peer)


def checks(core: NodeCore) -> int:
    return core.verifier.signature_checks + Proof.checks


@dataclass
class Known:
    """C's alice, verified once before the flood, in her own session."""

    core: NodeCore
    proof: Proof

    @classmethod
    def verified(cls, core: NodeCore) -> Known:
        known = cls(core, Proof())
        assert isinstance(known.call(NOW - 1.0), Invoke)
        return known

    def call(self, now: float) -> NodeAction:
        source = mint_eid(C_KEY, C_CID, b"alice").encode()
        return send(self.core, payload(source, f"alice {now}".encode()), now, CALLER, self.proof)


def flood(core: NodeCore, spread: bool, known: Known,
          count: int = FLOOD) -> tuple[list[int], int]:
    """`count` fresh-cluster requests at RATE a second (each in a new session, from one
    address or each from its own), with the known caller calling between every tenth:
    the signature checks each second of the flood cost, and the stamp demands."""
    per_second = [0] * max(1, int(count / RATE))
    demands = 0
    for i, source in enumerate(fresh_sources()[:count]):
        now = NOW + i / RATE
        before = checks(core)
        peer = (f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", 7000) if spread else ATTACKER
        action = send(core, payload(source), now, peer, Proof())
        if isinstance(action, Respond):
            reply = decode_reply(action.reply)
            assert reply.code == ErrorCode.HASHCASH_REQUIRED, reply
            assert reply.required_bits == SETTINGS.demand_bits
            assert checks(core) == before, "a demand is made before any check"
            demands += 1
        else:
            assert isinstance(action, Invoke), action
        per_second[int(i / RATE)] += checks(core) - before
        if i % 10 == 5:
            assert isinstance(known.call(now), Invoke), "the known caller is always served"
    return per_second, demands


def test_a_flood_from_one_address_costs_at_most_its_address_budget() -> None:
    core = s_core()
    known = Known.verified(core)
    per_second, demands = flood(core, False, known)
    assert per_second[0] <= SETTINGS.address_burst + SETTINGS.address_rate
    assert max(per_second[1:]) <= SETTINGS.address_rate + 4
    assert sum(per_second) <= SETTINGS.address_burst + SETTINGS.address_rate * len(per_second)
    assert demands >= FLOOD - sum(per_second)
    assert core.signature_budget.demanded == demands


def test_a_flood_from_many_addresses_costs_at_most_the_shared_budget() -> None:
    core = s_core()
    known = Known.verified(core)
    per_second, demands = flood(core, True, known)
    assert per_second[0] <= SETTINGS.burst + SETTINGS.rate
    assert max(per_second[1:]) <= SETTINGS.rate + 4
    assert demands > FLOOD // 2


def test_under_pressure_a_stamp_buys_the_check_and_a_known_cluster_is_not_starved() -> None:
    """With the shared budget spent by strangers from many addresses, a stranger paying
    the demanded bits is checked and served; so is a new EID of a cluster the node's
    policy trusts (it is not charged to the strangers' budget)."""
    core = s_core()
    known = Known.verified(core)
    flood(core, True, known, 1000)
    now = NOW + 1000 / RATE
    strangers = [stranger(b"s%d" % i) for i in range(3)]
    answers = [send(core, payload(eid), now, ("10.200.0.1", 1), Proof()) for eid in strangers]
    assert isinstance(answers[-1], Respond), "the shared budget is spent (a check is 4)"
    paid = payload(strangers[-1], stamp_bits=SETTINGS.demand_bits)
    assert isinstance(send(core, paid, now, ("10.200.0.1", 1), Proof()), Invoke)
    again = stranger(b"s0")
    assert isinstance(send(core, payload(again, b"y"), now, ("10.200.0.2", 1), Proof()),
                      Respond), "a stranger whose keys verified is still charged as one"
    bob = mint_eid(C_KEY, C_CID, b"bob").encode()
    assert isinstance(send(core, payload(bob), now, ("10.1.0.2", 7000), Proof()), Invoke)


def test_a_bad_signature_is_checked_once_however_often_it_is_sent() -> None:
    core = s_core()
    data = bytearray(mint_eid(C_KEY, C_CID, b"mallory").encode())
    data[-5] ^= 1
    for i in range(50):
        action = send(core, payload(bytes(data), str(i).encode()), NOW + i, ATTACKER, Proof())
        assert isinstance(action, Respond)
        assert decode_reply(action.reply).code == ErrorCode.BAD_EID_SIGNATURE
    assert core.verifier.signature_checks == 2  # the target once, the source once


def test_buckets_that_refilled_are_forgotten() -> None:
    """What the budget holds per address lasts only while that address is being charged:
    a bucket back to full is dropped as new addresses come (bench/bench_memory.py)."""
    budget = SignatureBudget(SETTINGS, NOW)
    for i in range(1000):
        assert budget.allows(("10.0.0.1", i), b"", False, 4, NOW + i * 0.01)
        budget.charge(("10.0.0.1", i), b"", False, 4, NOW + i * 0.01)
    refill = SETTINGS.address_burst / SETTINGS.address_rate
    assert budget.statistics()["addresses"] <= 2 * refill / 0.01 + 2
    assert budget.charged == 4000
