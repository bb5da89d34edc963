"""The calling side's per-message session bytes, written and read by concatenation (issue 13).

Each message in an established session costs the caller three flat-array encodes (the
message's associated data, the message, the reply's associated data) and one strict
decode of the reply. All but the message number and the ciphertext are fixed for the
session, so `SessionFrames` keeps the session's leading bytes and each message only joins
canonical heads to them: byte-identical to `session_aad`, `encode_session` and
`reply_aad` (property-tested). `read_session_reply` accepts exactly the canonical bytes
of a reply `[10, seq, ciphertext]` within the general decoder's bounds, every head checked
to be the shortest form by arithmetic, and returns what `decode_answer` returns for them;
anything else (a refusal, a long form, a tag, trailing bytes) returns None and the strict
general decoder decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon.cbor_heads import BYTE, head, read_head
from mercury_rt.core.transit.wire import MAX_MESSAGE, MAX_SEQ, SESSION, SESSION_REPLY, SessionReply

_REPLY_HEAD = b"\x83" + BYTE[SESSION_REPLY]
MIN_CIPHERTEXT = 16


@dataclass(frozen=True, slots=True)
class SessionFrames:
    """One session's fixed leading bytes: the message's type and session id, the reply
    associated data's type and session id (each without its array head)."""

    message: bytes
    reply: bytes

    @staticmethod
    def of(session_id: bytes) -> SessionFrames:
        """The frames of session `session_id`."""
        sid = head(2, len(session_id)) + session_id
        return SessionFrames(head(0, SESSION) + sid, head(0, SESSION_REPLY) + sid)

    def aad(self, seq: int) -> bytes:
        """Exactly `session_aad(session_id, seq)`."""
        return b"\x83" + self.message + head(0, seq)

    def datagram(self, seq: int, ciphertext: bytes) -> bytes:
        """Exactly `encode_session(SessionMessage(session_id, seq, ciphertext))`."""
        return b"".join((b"\x84", self.message, head(0, seq), head(2, len(ciphertext)),
                         ciphertext))

    def reply_aad(self, seq: int) -> bytes:
        """Exactly `reply_aad(session_id, seq)`."""
        return b"\x83" + self.reply + head(0, seq)


def read_session_reply(data: bytes) -> SessionReply | None:
    """`decode_answer(data)` when `data` is exactly a canonical, in-bounds session reply;
    None for anything else."""
    if len(data) > MAX_MESSAGE or not data.startswith(_REPLY_HEAD):
        return None
    seq = read_head(data, 2, 0)
    if seq is None or seq[0] > MAX_SEQ:
        return None
    length = read_head(data, seq[1], 2)
    if length is None or not MIN_CIPHERTEXT <= length[0] <= MAX_MESSAGE \
            or length[1] + length[0] != len(data):
        return None
    return SessionReply(seq[0], data[length[1]:])
