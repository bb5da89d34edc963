"""The routing-reply decoder over arbitrary bytes: a reply or a typed error, nothing else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import CodecError
from mercury_rt.core.routing import (
    RoutingReplyError,
    decode_routing_reply,
)


@given(st.binary(max_size=200))
def test_decoder_raises_only_typed_errors(data: bytes) -> None:
    """Peer bytes give a reply or a typed error."""
    try:
        decode_routing_reply(data)
    except (RoutingReplyError, CodecError):
        return
