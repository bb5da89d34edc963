"""The delivered one-way message id store degrades per sender: a source cluster that fills
its share gets 203 for new ids while other clusters still deliver, and its retries of ids
already run are still acknowledged (issue 17 item 6)."""

from __future__ import annotations

import random

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.error_codes import ErrorCode
from mercury_rt.core.gate import ASSUMED_PROVEN, MemorySpentStore
from mercury_rt.core.identity import issue_cluster_id, mint_eid
from mercury_rt.core.node import (
    DeliveredSettings,
    Invoke,
    NodeCore,
    NodeRequest,
    Respond,
    RetryPolicy,
    decode_reply,
    encode_operation,
)
from mercury_rt.core.node.delivered import MAX_SENDERS, OTHERS, DeliveredIds
from mercury_rt.core.routing import ClusterView, NodeInfo, Path, RoutingConfig
from tests.membership_node_support import POLICY

SHARE = DeliveredSettings(limit=100, per_cluster=3, retention=1600.0)


class Sender:
    """A client of another cluster sending one-way messages with ids."""

    def __init__(self) -> None:
        master, self.key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        self.cluster_id = issue_cluster_id(master, self.key, ())
        self.eid = mint_eid(self.key, self.cluster_id, b"client").encode()


def _node(settings: DeliveredSettings = SHARE) -> tuple[NodeCore, bytes]:
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, ())
    view = ClusterView(b"n0", 1, {b"n0": NodeInfo(b"n0", True)}, {b"dave": frozenset({b"n0"})},
                       {})
    core = NodeCore.for_cluster([cid], key, POLICY, view, {b"n0": ("10.0.0.1", 7100)},
                                routing=RoutingConfig(), spent=MemorySpentStore(1000),
                                seal_prefix=random.Random(0).randbytes(4),
                                delivered_settings=settings)
    return core, mint_eid(key, cid, b"dave").encode()


def _send(core: NodeCore, dave: bytes, sender: Sender, message_id: bytes, now: float) -> int:
    """0 when the message is run (Invoke) or acknowledged as run before; else the code."""
    body = NodeRequest(dave, 1, 3, b"note", version=1, source=sender.eid,
                       message_id=message_id).body()
    action = core.handle(Path.INTER_CLUSTER, encode_operation(body), message_id, now + 10,
                         now, one_way=True, proof=ASSUMED_PROVEN)
    if isinstance(action, Invoke):
        return 0
    assert isinstance(action, Respond)
    return decode_reply(action.reply).code


def test_a_sender_at_its_share_is_refused_while_others_still_deliver() -> None:
    core, dave = _node()
    flooder, other = Sender(), Sender()
    assert [_send(core, dave, flooder, b"f%d" % i, 0.0) for i in range(3)] == [0, 0, 0]
    assert _send(core, dave, flooder, b"f3", 1.0) == ErrorCode.OVERLOADED
    assert _send(core, dave, other, b"o0", 2.0) == 0, "another cluster still delivers"
    assert _send(core, dave, flooder, b"f0", 3.0) == 0, "a retry of a run id is acknowledged"
    assert core.duplicates == 1 and core.delivered_ids.share_refusals == 1
    assert len(core.delivered) == 4  # type: ignore[arg-type]


def test_a_share_frees_up_once_its_ids_expire() -> None:
    core, dave = _node()
    flooder = Sender()
    for i in range(3):
        _send(core, dave, flooder, b"f%d" % i, 0.0)
    assert _send(core, dave, flooder, b"f3", SHARE.retention - 1) == ErrorCode.OVERLOADED
    later = SHARE.retention + SHARE.retention / 16 + 1
    assert _send(core, dave, flooder, b"f3", later) == 0
    assert _send(core, dave, flooder, b"f0", later) == 0 and core.duplicates == 0, \
        "expired: the id is new again (the sender stopped retrying it long ago)"


def test_the_store_bound_still_holds_for_everyone() -> None:
    core, dave = _node(DeliveredSettings(limit=4, per_cluster=3, retention=100.0))
    a, b = Sender(), Sender()
    assert [_send(core, dave, a, b"a%d" % i, 0.0) for i in range(3)] == [0, 0, 0]
    assert _send(core, dave, b, b"b0", 0.0) == 0
    assert _send(core, dave, b, b"b1", 0.0) == ErrorCode.OVERLOADED


def test_retention_defaults_to_the_held_message_lifetime() -> None:
    assert DeliveredSettings().retention == RetryPolicy().ttl
    core, _ = _node(DeliveredSettings())
    assert core.delivered_ids.settings.retention == RetryPolicy().ttl


@pytest.mark.parametrize("bad", [{"per_cluster": 0}, {"limit": 2, "per_cluster": 3},
                                 {"retention": 0.0}])
def test_settings_are_checked(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DeliveredSettings(**bad)  # type: ignore[arg-type]


def test_senders_beyond_the_counted_ones_share_one_share() -> None:
    ids = DeliveredIds(MemorySpentStore(10 * MAX_SENDERS), DeliveredSettings(
        limit=10 * MAX_SENDERS, per_cluster=2, retention=100.0))
    for n in range(MAX_SENDERS):
        assert ids.add(n.to_bytes(4, "big"), b"m%d" % n, 0.0).name == "ADDED"
    late = [ids.add(b"late%d" % n, b"late%d" % n, 0.0).name for n in range(3)]
    assert late == ["ADDED", "ADDED", "FULL"] and ids.held_by(OTHERS) == 2
    assert ids.add(b"\x00\x00\x00\x01", b"again", 0.0).name == "ADDED", "counted ones keep theirs"
