"""Properties of the membership codecs: sealed-envelope classification and node
certificates never fail untyped on hostile bytes, and envelopes round-trip."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import CodecError
from mercury_rt.core.membership import (
    Announcement,
    HeartbeatError,
    HeartbeatMessage,
    NodeCert,
    NodeCertError,
    classify,
    encode_announcement,
    encode_heartbeat_message,
)


@given(st.binary(max_size=300))
def test_classify_returns_or_raises_only_heartbeat_error(data: bytes) -> None:
    """Whatever arrives sealed, classification is a typed answer."""
    with contextlib.suppress(HeartbeatError):
        classify(data)


@given(st.binary(max_size=4096), st.booleans())
def test_membership_envelopes_round_trip(body: bytes, announce: bool) -> None:
    """Kind 2 and kind 3 envelopes decode to what was encoded."""
    if announce:
        assert classify(encode_announcement(body)) == Announcement(body)
    else:
        assert classify(encode_heartbeat_message(body)) == HeartbeatMessage(body)


@given(st.binary(max_size=200))
def test_node_certificates_decode_or_raise_a_typed_error(data: bytes) -> None:
    """Hostile certificate bytes never escape as anything but NodeCertError."""
    try:
        cert = NodeCert.decode(data)
    except (NodeCertError, CodecError):
        return
    assert NodeCert.decode(cert.encode()) == cert










