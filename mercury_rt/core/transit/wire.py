"""The transit messages: what a node port carries once transit security is on.

Every form is one flat canonical CBOR array whose first item names it (docs/protocol.md
8.2). They travel as transport payloads: requests as REQUEST/MESSAGE payloads, answers as
REPLY payloads. Decoding is strict and bounded (`loads_flat`), and every field is checked
for kind and size before anything is computed from it; a failure is TransitError 715.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon.cbor import CodecError, dumps_flat, loads_flat
from mercury_rt.core.transit.algorithms import TransitError
from mercury_rt.core.transit.certs import KEY_ID_SIZE, MAX_CERT_SIZE

KEY_QUERY = 2
INIT = 7
INIT_REPLY = 8
SESSION = 9
SESSION_REPLY = 10
TRANSIT_ERROR = 12
KEYS = 13

SESSION_ID_SIZE = 8
EPHEMERAL_SIZE = 32
INIT_SECRET_SIZE = 32
TOKEN_SIZE = 20
MAX_PADDING = 2048
MAX_DETAIL = 256
MAX_MESSAGE = 2 * 1024 * 1024 + 4096
"""Bound on a decoded transit message: the largest node message plus framing."""
MAX_SEQ = 2**62


@dataclass(frozen=True, slots=True)
class KeyQuery:
    """`[2, master hash, kem, padding]`: send me your transit certificate for `kem`.

    The padding makes the query as large as a third of its answer, so a node can answer
    an unvalidated address within the anti-amplification limit."""

    master_hash: bytes
    kem: int
    padding: int


@dataclass(frozen=True, slots=True)
class Init:
    """`[7, alg, key id, token, sealed]`: a session's first datagram (HPKE to the key)."""

    algorithm: int
    key_id: bytes
    token: bytes
    sealed: bytes

    def header(self) -> bytes:
        """The HPKE `info` (and key-schedule input): everything but the sealed part."""
        return dumps_flat([INIT, self.algorithm, self.key_id, self.token])


@dataclass(frozen=True, slots=True)
class InitInner:
    """The plaintext inside an Init: the session and who opens it, then the request."""

    session_id: bytes
    timestamp_ms: int
    ephemeral: bytes
    init_secret: bytes
    master_hash: bytes
    node_id: bytes
    node_cert: bytes
    signature: bytes
    payload: bytes


@dataclass(frozen=True, slots=True)
class SessionMessage:
    """`[9, session id, seq, ciphertext]`: a later request in an established session."""

    session_id: bytes
    seq: int
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class InitReply:
    """`[8, session id, server ephemeral, ciphertext]`: the answer to an Init."""

    session_id: bytes
    ephemeral: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class SessionReply:
    """`[10, seq, ciphertext]`: the answer to session message `seq`."""

    seq: int
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class TransitRefusal:
    """`[12, code, detail, extra]`: an unauthenticated transit answer (8.6).

    `extra` is a transit certificate (702), the node's clock in ms (705), a retry token
    (713), or empty bytes."""

    code: int
    detail: str
    extra: bytes | int


@dataclass(frozen=True, slots=True)
class KeysAnswer:
    """`[13, certificate]`: the answer to a KeyQuery."""

    cert: bytes


def encode_key_query(master_hash: bytes, kem: int, padding: int) -> bytes:
    """A KeyQuery with `padding` zero bytes."""
    return dumps_flat([KEY_QUERY, master_hash, kem, bytes(padding)])


def encode_init(init: Init) -> bytes:
    """Wire bytes of an Init."""
    return dumps_flat([INIT, init.algorithm, init.key_id, init.token, init.sealed])


def encode_inner(inner: InitInner) -> bytes:
    """The Init plaintext."""
    return dumps_flat([inner.session_id, inner.timestamp_ms, inner.ephemeral,
                       inner.init_secret, inner.master_hash, inner.node_id, inner.node_cert,
                       inner.signature, inner.payload])


def encode_session(message: SessionMessage) -> bytes:
    """Wire bytes of a SessionMessage."""
    return dumps_flat([SESSION, message.session_id, message.seq, message.ciphertext])


def encode_init_reply(reply: InitReply) -> bytes:
    """Wire bytes of an InitReply."""
    return dumps_flat([INIT_REPLY, reply.session_id, reply.ephemeral, reply.ciphertext])


def encode_session_reply(reply: SessionReply) -> bytes:
    """Wire bytes of a SessionReply."""
    return dumps_flat([SESSION_REPLY, reply.seq, reply.ciphertext])


def encode_refusal(code: int, detail: str, extra: bytes | int = b"") -> bytes:
    """Wire bytes of a TransitRefusal (detail cut to MAX_DETAIL characters)."""
    return dumps_flat([TRANSIT_ERROR, code, detail[:MAX_DETAIL], extra])


def encode_keys(cert: bytes) -> bytes:
    """Wire bytes of a KeysAnswer."""
    return dumps_flat([KEYS, cert])


def message_type(data: bytes) -> int | None:
    """The form a payload claims (its first item), read from the first two bytes only;
    None if it does not start like a flat array with a small unsigned first item."""
    if len(data) < 2 or not 0x81 <= data[0] <= 0x97 or data[1] > 0x17:
        return None
    return data[1]


Request = KeyQuery | Init | SessionMessage
Answer = InitReply | SessionReply | TransitRefusal | KeysAnswer


def decode_request(data: bytes) -> Request:
    """A KeyQuery, Init or SessionMessage; TransitError 715 otherwise."""
    items = _flat(data)
    kind = items[0]
    if kind == KEY_QUERY and len(items) == 4:
        master, kem, padding = _bytes(items[1], 2, 65), _uint(items[2], 0xFFFF), \
            _bytes(items[3], 0, MAX_PADDING)
        return KeyQuery(master, kem, len(padding))
    if kind == INIT and len(items) == 5:
        return Init(_uint(items[1], 0xFFFF), _bytes(items[2], KEY_ID_SIZE, KEY_ID_SIZE),
                    _bytes(items[3], 0, TOKEN_SIZE), _bytes(items[4], 1, MAX_MESSAGE))
    if kind == SESSION and len(items) == 4:
        return SessionMessage(_bytes(items[1], SESSION_ID_SIZE, SESSION_ID_SIZE),
                              _uint(items[2], MAX_SEQ), _bytes(items[3], 16, MAX_MESSAGE))
    raise TransitError("not a transit request ([2 ...], [7 ...] or [9 ...] of 8.2)")


def decode_inner(data: bytes) -> InitInner:
    """The Init plaintext; TransitError 715 if malformed."""
    items = _flat(data, typed=False)
    if len(items) != 9:
        raise TransitError("first-datagram plaintext must have 9 fields")
    return InitInner(
        _bytes(items[0], SESSION_ID_SIZE, SESSION_ID_SIZE), _uint(items[1], 2**63),
        _bytes(items[2], EPHEMERAL_SIZE, EPHEMERAL_SIZE),
        _bytes(items[3], INIT_SECRET_SIZE, INIT_SECRET_SIZE), _bytes(items[4], 2, 65),
        _bytes(items[5], 1, 64), _bytes(items[6], 1, 512), _bytes(items[7], 64, 64),
        _bytes(items[8], 0, MAX_MESSAGE))


def decode_answer(data: bytes) -> Answer:
    """An InitReply, SessionReply, TransitRefusal or KeysAnswer; TransitError 715 otherwise."""
    items = _flat(data)
    kind = items[0]
    if kind == INIT_REPLY and len(items) == 4:
        return InitReply(_bytes(items[1], SESSION_ID_SIZE, SESSION_ID_SIZE),
                         _bytes(items[2], EPHEMERAL_SIZE, EPHEMERAL_SIZE),
                         _bytes(items[3], 16, MAX_MESSAGE))
    if kind == SESSION_REPLY and len(items) == 3:
        return SessionReply(_uint(items[1], MAX_SEQ), _bytes(items[2], 16, MAX_MESSAGE))
    if kind == TRANSIT_ERROR and len(items) == 4:
        extra = items[3]
        if type(extra) is bytes:
            _bytes(extra, 0, MAX_CERT_SIZE)
        else:
            extra = _uint(extra, 2**63)
        detail = items[2]
        if type(detail) is not str or len(detail) > MAX_DETAIL:
            raise TransitError("transit refusal detail must be text of at most 256 characters")
        return TransitRefusal(_uint(items[1], 0xFFFF), detail, extra)
    if kind == KEYS and len(items) == 2:
        return KeysAnswer(_bytes(items[1], 1, MAX_CERT_SIZE))
    raise TransitError("not a transit answer ([8 ...], [10 ...], [12 ...] or [13 ...] of 8.2)")


def _flat(data: bytes, typed: bool = True) -> list[int | bytes | str]:
    try:
        items = loads_flat(data, MAX_MESSAGE)
    except CodecError as exc:
        raise TransitError(f"transit message: {exc.message}") from None
    if typed and (not items or type(items[0]) is not int):
        raise TransitError("transit message must start with its type")
    return items


def _bytes(value: object, low: int, high: int) -> bytes:
    if type(value) is not bytes or not low <= len(value) <= high:
        raise TransitError(f"transit field must be {low}-{high} bytes")
    return value


def _uint(value: object, high: int) -> int:
    if type(value) is not int or not 0 <= value <= high:
        raise TransitError(f"transit field must be an integer 0-{high}")
    return value
