"""The caller's session bytes by concatenation (issue 13) are exactly the general
encoders' bytes, and the session-reply reader agrees with the strict decoder on every
input it accepts and accepts every canonical in-bounds reply."""

from __future__ import annotations

import cbor2
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import MercuryError
from mercury_rt.core.transit.schedule import reply_aad, session_aad
from mercury_rt.core.transit.session_frames import SessionFrames, head, read_session_reply
from mercury_rt.core.transit.wire import (
    MAX_SEQ,
    SESSION_REPLY,
    SessionMessage,
    SessionReply,
    decode_answer,
    encode_session,
    encode_session_reply,
)

session_ids = st.binary(min_size=0, max_size=300)
seqs = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))


@given(session_ids, seqs, st.binary(max_size=300))
def test_frames_are_the_general_encoders_bytes(session_id: bytes, seq: int,
                                               ciphertext: bytes) -> None:
    frames = SessionFrames.of(session_id)
    assert frames.aad(seq) == session_aad(session_id, seq)
    assert frames.reply_aad(seq) == reply_aad(session_id, seq)
    assert frames.datagram(seq, ciphertext) == encode_session(
        SessionMessage(session_id, seq, ciphertext))


@given(st.integers(0, 2**64 - 1), st.integers(0, 70_000))
def test_head_is_the_canonical_head(n: int, length: int) -> None:
    assert head(0, n) == cbor2.dumps(n)
    encoded = cbor2.dumps(bytes(length))
    assert head(2, length) == encoded[:len(encoded) - length]


def _general(data: bytes) -> object:
    try:
        return decode_answer(data)
    except MercuryError as exc:
        return ("refused", exc.code)


@given(st.integers(0, MAX_SEQ), st.binary(min_size=16, max_size=3000))
def test_every_canonical_reply_is_read_as_the_decoder_reads_it(seq: int,
                                                               ciphertext: bytes) -> None:
    data = encode_session_reply(SessionReply(seq, ciphertext))
    assert read_session_reply(data) == decode_answer(data)


def _variants(data: bytes) -> st.SearchStrategy[bytes]:
    return st.sampled_from([data, data + b"\x00", data[:-1], b"\x84" + data[1:],
                            data[:1] + b"\x09" + data[2:]])


replies = st.builds(lambda s, c: encode_session_reply(SessionReply(s, c)),
                    st.integers(0, 2**64 - 1), st.binary(max_size=40))
valid = st.builds(lambda s, c: encode_session_reply(SessionReply(s, c)),
                  st.integers(0, MAX_SEQ), st.binary(min_size=16, max_size=40))
padded = st.builds(lambda s, c, w: b"\x83" + head(0, SESSION_REPLY)
                   + bytes((0x18 + w,)) + s.to_bytes(1 << w, "big") + head(2, len(c)) + c,
                   st.integers(0, 255), st.binary(min_size=16, max_size=40), st.integers(0, 3))


@given(st.one_of(st.binary(max_size=64), replies, padded, replies.flatmap(_variants),
                 valid.flatmap(_variants),
                 st.builds(lambda b: b"\x83\x0a" + b, st.binary(max_size=60))))
def test_whatever_the_reader_accepts_the_decoder_reads_alike(data: bytes) -> None:
    read = read_session_reply(data)
    if read is not None:
        assert read == _general(data)
    elif isinstance(_general(data), SessionReply):
        raise AssertionError(f"a valid session reply was left to the general path: {data!r}")
