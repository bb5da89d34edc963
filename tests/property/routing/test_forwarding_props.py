"""Forwarding records over arbitrary bytes and fields: typed errors, exact round trips."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import CodecError
from mercury_rt.core.routing import (
    ForwardingError,
    ForwardingRecord,
    decode_forwarding_record,
)


@given(st.binary(max_size=200))
def test_decoder_raises_only_typed_errors(data: bytes) -> None:
    """Any bytes from a peer give a record or a ForwardingError/CodecError, nothing else."""
    with contextlib.suppress(ForwardingError, CodecError):
        decode_forwarding_record(data)


@given(st.binary(min_size=1, max_size=65), st.binary(max_size=64),
       st.binary(min_size=1, max_size=300), st.integers(0, 2**63 - 1),
       st.binary(max_size=128))
def test_encode_decode_round_trip(cluster: bytes, local: bytes, eid: bytes, at: int,
                                  sig: bytes) -> None:
    """Every valid record round-trips exactly."""
    rec = ForwardingRecord(cluster, local, eid, at, sig)
    assert decode_forwarding_record(rec.encode()) == rec
