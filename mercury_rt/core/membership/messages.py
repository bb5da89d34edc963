"""Membership messages on the intra-cluster path (docs/protocol.md 6.7).

Two one-way node envelopes join the operation (`[0, ...]`) and cluster-ID query
(`[1, ...]`) kinds of node/messages.py: `[2, cluster ID bytes]` announces a cluster-ID
version a node has published or holds, and `[3, heartbeat bytes]` carries a heartbeat.
Both travel sealed (node/seal.py) as one-way messages. `classify` tells them apart from
operations without decoding the operation, so the shell can hand everything else to the
node core unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon import cbor
from carbon.cbor import CodecError, Limits
from mercury_rt.core.membership.heartbeat import MAX_HEARTBEAT_BYTES, HeartbeatError

KIND_ANNOUNCE = 2
KIND_HEARTBEAT = 3
MAX_ANNOUNCE_BYTES = 16 * 1024
_LIMITS = Limits(max_bytes=MAX_ANNOUNCE_BYTES + 64, max_depth=2, max_items=4)


@dataclass(frozen=True, slots=True)
class Announcement:
    """A cluster-ID version offered by a peer (still to be verified)."""

    cluster_id: bytes


@dataclass(frozen=True, slots=True)
class HeartbeatMessage:
    """A peer's heartbeat (still to be decoded and verified)."""

    heartbeat: bytes


MembershipMessage = Announcement | HeartbeatMessage


def encode_announcement(cluster_id: bytes) -> bytes:
    """The (unsealed) envelope announcing a cluster ID."""
    return cbor.dumps([KIND_ANNOUNCE, cluster_id])


def encode_heartbeat_message(heartbeat: bytes) -> bytes:
    """The (unsealed) envelope carrying a heartbeat."""
    return cbor.dumps([KIND_HEARTBEAT, heartbeat])


def classify(payload: bytes) -> MembershipMessage | None:
    """A membership message, or None if `payload` is some other node envelope.

    Raises HeartbeatError for an envelope of kind 2 or 3 that is malformed or too large.
    """
    if not payload or payload[0] != 0x82:  # a CBOR array of two items
        return None
    try:
        value = cbor.loads(payload, _LIMITS)
    except CodecError:
        return None
    if not isinstance(value, list) or value[0] not in (KIND_ANNOUNCE, KIND_HEARTBEAT):
        return None
    body = value[1]
    limit = MAX_ANNOUNCE_BYTES if value[0] == KIND_ANNOUNCE else MAX_HEARTBEAT_BYTES
    if type(body) is not bytes or len(body) > limit:
        raise HeartbeatError(f"membership message kind {value[0]} must carry at most "
                             f"{limit} bytes")
    return Announcement(body) if value[0] == KIND_ANNOUNCE else HeartbeatMessage(body)
