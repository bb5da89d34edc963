"""The OK reply's fixed head gives the same bytes and decisions as the general codec.

`encode_ok` writes `{0: 0, 5: payload}` without building the map, and `decode_reply`
recognises exactly those bytes before the general (strict, re-encoding) path. For every
input the two must agree: the same bytes out, and the same reply or the same refusal in.
"""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from carbon.cbor import dumps
from carbon.error_codes import MercuryError
from mercury_rt.core.node import messages as m

# lengths on both sides of every CBOR head-size boundary
PAYLOAD = st.one_of(st.binary(max_size=300),
                    st.sampled_from([23, 24, 255, 256, 65_535, 65_536]).map(bytes))


def general(data: bytes) -> tuple[str, object]:
    try:
        return "ok", m._decode_reply(data)
    except MercuryError as exc:
        return "refused", exc.code


def fast(data: bytes) -> tuple[str, object]:
    try:
        return "ok", m.decode_reply(data)
    except MercuryError as exc:
        return "refused", exc.code


@given(PAYLOAD)
def test_encode_ok_is_the_canonical_reply_map(payload: bytes) -> None:
    expected = dumps({0: 0, 5: payload})
    assert m.encode_ok(payload) == expected == m.NodeReply(payload=payload).encode()
    assert m.decode_reply(expected) == m.NodeReply(payload=payload) == m._decode_reply(
        expected)


@given(PAYLOAD, st.integers(0, 9), st.binary(max_size=12))
def test_any_other_bytes_decide_as_the_general_path_does(payload: bytes, cut: int,
                                                         junk: bytes) -> None:
    """Truncated, extended, padded (non-shortest length) and altered OK replies."""
    good = m.encode_ok(payload)
    n = len(payload)
    padded = good[:4] + b"\x5a" + n.to_bytes(4, "big") + payload
    for data in (good[:-cut] if cut else good, good + junk, padded, junk + good,
                 good[:4] + junk, cbor2.dumps({0: 0, 5: payload, 6: cut}),
                 cbor2.dumps({0: cut, 5: payload}), cbor2.dumps({0: 0, 5: junk.hex()})):
        assert fast(data) == general(data)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decide_as_the_general_path_does(data: bytes) -> None:
    assert fast(m._OK_HEAD + data) == general(m._OK_HEAD + data)
    assert fast(data) == general(data)
