"""The reply code a node counts is the code the reply carries (core/node/reply_code.py)."""

from __future__ import annotations

from ipaddress import ip_address

from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.core.identity import Endpoint
from mercury_rt.core.node import NodeReply
from mercury_rt.core.node.messages import decode_reply
from mercury_rt.core.node.reply_code import peek_reply_code

CODES = st.integers(0, 65_535) | st.sampled_from([0, 23, 24, 255, 256, 515, 512])
TARGETS = st.builds(Endpoint, st.sampled_from([ip_address("127.0.0.2"),
                                              ip_address("2001:db8::7")]),
                    st.integers(1, 65_535))


@st.composite
def replies(draw: st.DrawFn) -> NodeReply:
    """Valid node replies: a redirect target only with 515, a forwarding record only
    with 512 (decode_reply's rules), distinct acceptable algorithms."""
    code = draw(CODES)
    return NodeReply(
        code, draw(st.none() | st.binary(max_size=300)), draw(st.text(max_size=60)),
        draw(st.none() | st.binary(max_size=80)),
        draw(TARGETS) if code == 515 else None,
        draw(st.binary(max_size=40)) if code == 512 else None,
        draw(st.none() | st.integers(0, 64)),
        draw(st.none() | st.sets(st.integers(1, 3), min_size=1).map(lambda s: tuple(sorted(s)))))


@given(replies())
def test_the_peeked_code_is_the_decoded_code(reply: NodeReply) -> None:
    encoded = reply.encode()
    assert peek_reply_code(encoded) == decode_reply(encoded).code == reply.code


@given(st.binary(max_size=40))
def test_any_bytes_give_a_code_or_none_and_never_raise(data: bytes) -> None:
    code = peek_reply_code(data)
    assert code is None or 0 <= code < 2**32


def test_bytes_that_are_not_a_node_reply_have_no_code() -> None:
    assert peek_reply_code(b"") is None
    assert peek_reply_code(b"\xa1\x01\x00") is None, "a map whose first key is not 0"
    assert peek_reply_code(b"\x83\x00\x00\x00") is None, "an array"
    assert peek_reply_code(b"\xa1\x00\x19\x01") is None, "a truncated two-byte code"
