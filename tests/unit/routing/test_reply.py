"""Routing reply bodies (protocol 6.4): codec, and what each means to the contact machine."""

from __future__ import annotations

import ipaddress

import pytest

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import Endpoint
from mercury_rt.core.routing import (
    Answered,
    EntityMoved,
    ErrorWithClusterId,
    ForwardingRecord,
    NodeLocalError,
    Redirect,
    RedirectMoved,
    RedirectTo,
    Refuse,
    RoutingReply,
    RoutingReplyError,
    decode_routing_reply,
    reply_for_decision,
    reply_to_event,
)
from tests.routing_support import FakeClusterId, addr

TARGET = Endpoint(ipaddress.ip_address("192.0.2.7"), 7000)
RECORD = ForwardingRecord(b"\x01c", b"alice", b"new", 1, b"sig")
V2 = FakeClusterId(2, ())


def decode_cid(data: bytes) -> FakeClusterId:
    if data != b"cid-v2":
        raise MercuryError("undecodable", ErrorCode.MALFORMED)
    return V2


def test_round_trips() -> None:
    """Each reply kind survives the wire."""
    for reply in (RoutingReply(515, target=TARGET, cluster_id=b"cid-v2"),
                  RoutingReply(512, "moved", forwarding=RECORD.encode()),
                  RoutingReply(513, "no live mirror"),
                  RoutingReply(511)):
        assert decode_routing_reply(reply.encode()) == reply


@pytest.mark.parametrize(("reply", "event"), [
    (RoutingReply(515, target=TARGET), Redirect(TARGET)),
    (RoutingReply(515, target=TARGET, cluster_id=b"cid-v2"), Redirect(TARGET, V2)),
    (RoutingReply(512, forwarding=RECORD.encode()), EntityMoved(RECORD)),
    (RoutingReply(513, "busy"), NodeLocalError(513, "busy")),
    (RoutingReply(510, cluster_id=b"cid-v2"), ErrorWithClusterId(510, V2)),
])
def test_reply_meanings(reply: RoutingReply, event: object) -> None:
    """Redirects, moves and node-local errors map to the matching contact events."""
    assert reply_to_event(reply, decode_cid) == event  # type: ignore[arg-type]


def test_end_to_end_error_is_an_answer_even_with_a_cluster_id() -> None:
    """An unknown entity is final; a bundled newer cluster ID is still stored."""
    reply = RoutingReply(511, cluster_id=b"cid-v2")
    assert reply_to_event(reply, decode_cid) == Answered(reply, V2)  # type: ignore[arg-type]


def test_garbage_cluster_id_or_record_is_node_local() -> None:
    """A reply we cannot verify is not trusted: the client simply moves on."""
    event = reply_to_event(RoutingReply(515, target=TARGET, cluster_id=b"junk"), decode_cid)  # type: ignore[arg-type]
    assert isinstance(event, NodeLocalError) and event.code == ErrorCode.CLUSTER_ID_REJECTED
    event = reply_to_event(RoutingReply(512, forwarding=b"\x00"), decode_cid)  # type: ignore[arg-type]
    assert isinstance(event, NodeLocalError)


@pytest.mark.parametrize("body", [
    {1: "x"},
    {0: 515},
    {0: 511, 3: [b"\x01\x02\x03\x04", 7000]},
    {0: 512},
    {0: 515, 3: [b"\x01\x02\x03", 7000]},
    {0: 515, 3: [b"\x01\x02\x03\x04", 0]},
    {0: 510, 5: 1},
    {0: -1},
    {0: 510, 1: "x" * 300},
    {0: 510, 2: "text"},
])
def test_malformed_replies_rejected(body: dict[int, object]) -> None:
    """Shapes outside 6.4 are RoutingReplyErrors."""
    with pytest.raises(RoutingReplyError):
        decode_routing_reply(cbor.dumps(body))




def test_reply_for_decisions() -> None:
    """Server decisions become the replies clients understand, bundling when asked."""
    redirect = reply_for_decision(RedirectTo(b"B", addr("192.0.2.7"), True, True), b"cid-v2")
    assert reply_to_event(redirect, decode_cid) == Redirect(TARGET, V2)  # type: ignore[arg-type]
    moved = reply_for_decision(RedirectMoved(RECORD, False), b"cid-v2")
    assert moved.cluster_id is None and decode_routing_reply(moved.encode()) == moved
    refuse = reply_for_decision(Refuse(ErrorCode.NO_LIVE_MIRROR, "é" * 200, False), b"")
    assert len(refuse.message.encode()) <= 256
    assert isinstance(reply_to_event(refuse, decode_cid), NodeLocalError)  # type: ignore[arg-type]
