"""Heartbeats over arbitrary bytes and fields: typed errors, exact round trips."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import CodecError
from mercury_rt.core.membership import (
    Heartbeat,
    HeartbeatError,
    PublicAddress,
    decode_heartbeat,
)
from tests.routing_membership_support import CLUSTER


@given(st.binary(max_size=300))
def test_heartbeat_decoder_raises_only_typed_errors(data: bytes) -> None:
    """Arbitrary peer bytes never escape as anything but our typed errors."""
    try:
        decode_heartbeat(data)
    except (HeartbeatError, CodecError):
        return


addresses = st.builds(PublicAddress, st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
                      st.integers(1, 65535), st.integers(0, 65535), st.integers(0, 65535))
heartbeats = st.builds(Heartbeat, st.just(CLUSTER), st.binary(min_size=1, max_size=64),
                       st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1),
                       st.lists(addresses, max_size=16).map(tuple), st.binary(max_size=100),
                       st.binary(max_size=100))


@given(heartbeats)
def test_heartbeat_codec_round_trips(hb: Heartbeat) -> None:
    """Every in-bounds heartbeat decodes to itself."""
    assert decode_heartbeat(hb.encode()) == hb
