"""The calling side of transit security: seal a node message for a node, open its answer.

`prepare` gives either the key query to send first (no verified transit key for that
address yet) or the datagram to send: a first datagram (HPKE to the node's certified key,
carrying this node's proof and the request) or a message in an established session.
`finish` opens the answer: the reply plaintext, a `Retry` (the node restarted, rotated its
key, wants a token or another clock) or a coded failure. Nothing the network says is
believed unless it is authenticated: replies open only under the session's keys (which
only the holder of the certified transit key can derive), and the one unauthenticated
answer that changes keys (702) carries a certificate that must verify to the called
cluster. The other refusals can only make the caller retry once more.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric import x25519

from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import (
    TransitAlgorithm,
    TransitError,
    algorithm,
    transit_code,
)
from mercury_rt.core.transit.certs import TransitCertVerifier, VerifiedTransitKey
from mercury_rt.core.transit.kem import aead_open, hpke_seal, x25519_shared
from mercury_rt.core.transit.proof import NodeCredential
from mercury_rt.core.transit.schedule import (
    TO_CALLER,
    TO_NODE,
    SessionCiphers,
    derive_ciphers,
    init_reply_aad,
    nonce,
    proof_message,
    transcript_hash,
)
from mercury_rt.core.transit.session_frames import SessionFrames, read_session_reply
from mercury_rt.core.transit.wire import (
    INIT_SECRET_SIZE,
    SESSION_ID_SIZE,
    TOKEN_SIZE,
    Init,
    InitInner,
    InitReply,
    KeysAnswer,
    SessionReply,
    TransitRefusal,
    decode_answer,
    encode_init,
    encode_inner,
    encode_key_query,
)

Addr = tuple[str, int]
_K = TypeVar("_K")
_V = TypeVar("_V")
MAX_PEERS = 4096
CERT_OVERHEAD = 160
"""Bytes a transit certificate adds to its public key (for padding key queries)."""
MAX_CLOCK_MS = 2**53
"""A 705's clock beyond this is no real clock: a forged one would push our timestamps past
what the node decodes, and every later first datagram to it would be dropped unanswered."""


@dataclass(frozen=True, slots=True)
class InitiatorConfig:
    """When a caller opens a new session instead of reusing one (rekeying)."""

    rekey_after: float = 300.0
    rekey_messages: int = 1_000_000


@dataclass(slots=True)
class ClientSession:
    """An established session, as the caller holds it."""

    session_id: bytes
    algorithm: TransitAlgorithm
    ciphers: SessionCiphers
    created: float
    master_hash: bytes
    """The cluster whose certified key opened it: never used for another cluster."""
    next_seq: int = 1
    frames: SessionFrames = field(init=False)
    """Its messages' fixed leading bytes (session_frames.py)."""

    def __post_init__(self) -> None:
        self.frames = SessionFrames.of(self.session_id)


@dataclass(frozen=True, slots=True)
class NeedKey:
    """Send `query` to the address first; hand its answer to `learn_key`."""

    query: bytes


@dataclass(frozen=True, slots=True)
class PendingInit:
    """What opening a first datagram's answer needs."""

    address: Addr
    master_hash: bytes
    algorithm: TransitAlgorithm
    header: bytes
    session_id: bytes
    timestamp_ms: int
    ephemeral: x25519.X25519PrivateKey
    init_secret: bytes


@dataclass(frozen=True, slots=True)
class PendingMessage:
    """What opening a session message's answer needs."""

    address: Addr
    master_hash: bytes
    session: ClientSession
    seq: int


Pending = PendingInit | PendingMessage


@dataclass(frozen=True, slots=True)
class Prepared:
    """Send `datagram`; hand the answer to `finish` with `pending`."""

    datagram: bytes
    pending: Pending


@dataclass(frozen=True, slots=True)
class Finished:
    """The node's authenticated reply."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Retry:
    """Prepare again: the reason is why (new key, session gone, token, clock).

    `session_id` is the refused first datagram's: the retry must reuse it (`prepare`'s
    `retry_of`). A refusal is not authenticated, so if the node did open the first one
    (the refusal was forged), the retry is a replay of that session id to it, refused,
    and the request runs once."""

    code: ErrorCode
    reason: str
    session_id: bytes | None = None


class TransitInitiator:
    """One node's outgoing sessions, transit keys, tokens and clock offsets by address."""

    def __init__(self, credential: NodeCredential, certs: TransitCertVerifier,
                 random_bytes: Callable[[int], bytes],
                 config: InitiatorConfig | None = None) -> None:
        self.credential = credential
        self.certs = certs
        self._random = random_bytes
        self.config = config or InitiatorConfig()
        self._keys: OrderedDict[tuple[Addr, int], VerifiedTransitKey] = OrderedDict()
        self._sessions: OrderedDict[tuple[Addr, int], ClientSession] = OrderedDict()
        self._tokens: OrderedDict[Addr, bytes] = OrderedDict()
        self._offsets: OrderedDict[Addr, int] = OrderedDict()

    def prepare(self, address: Addr, master_hash: bytes, algorithm_id: int, payload: bytes,
                now: float, retry_of: bytes | None = None) -> NeedKey | Prepared:
        """The next datagram for a node message to `address` of cluster `master_hash`.

        `retry_of` (a Retry's session id) makes it a first datagram again under that id,
        never a message in another session: the node may have run the refused one."""
        alg = algorithm(algorithm_id)
        session = None if retry_of is not None else self._session(address, alg.id, now,
                                                                  master_hash)
        if session is not None:
            return self._in_session(address, master_hash, session, payload)
        key = self._keys.get((address, int(alg.kem)))
        if key is None or key.master_hash != master_hash or key.not_after <= now:
            padding = -(-(alg.public_key_size + CERT_OVERHEAD) // 3)
            return NeedKey(encode_key_query(master_hash, int(alg.kem), padding))
        return self._first(address, master_hash, alg, key, payload, now, retry_of)

    def learn_key(self, address: Addr, master_hash: bytes, answer: bytes, now: float) -> None:
        """Take a key query's answer (or a 702's certificate) if it verifies to the called
        cluster; raises TransitError otherwise."""
        decoded = decode_answer(answer)
        if isinstance(decoded, TransitRefusal):
            raise TransitError(f"node refused the key query: {decoded.detail}",
                               transit_code(decoded.code))
        if not isinstance(decoded, KeysAnswer):
            raise TransitError("answer to a key query is not a certificate")
        self._store_key(address, self.certs.verify(master_hash, decoded.cert, now))

    def finish(self, pending: Pending, answer: bytes, now: float) -> Finished | Retry:
        """The node's reply, a reason to prepare again, or TransitError (a coded failure)."""
        if isinstance(pending, PendingMessage):
            reply = read_session_reply(answer)  # the common answer, read without a decoder
            if reply is not None:
                return self._session_reply(pending, reply)
        decoded = decode_answer(answer)
        if isinstance(decoded, TransitRefusal):
            return self._refused(pending, decoded, now)
        if isinstance(pending, PendingInit) and isinstance(decoded, InitReply):
            return self._init_reply(pending, decoded, now)
        if isinstance(pending, PendingMessage) and isinstance(decoded, SessionReply):
            return self._session_reply(pending, decoded)
        raise TransitError("the node's answer is not the kind this request expects")

    def has_session(self, address: Addr, algorithm_id: int, now: float,
                    master_hash: bytes | None = None) -> bool:
        """Whether a message to `address` under `algorithm_id` would go in an established
        session (so a host can let concurrent first calls wait for one first datagram)."""
        return self._session(address, algorithm_id, now, master_hash) is not None

    def forget(self, address: Addr) -> None:
        """Drop every session to `address` (e.g. it did not answer)."""
        for key in [k for k in self._sessions if k[0] == address]:
            del self._sessions[key]

    # ----- first datagrams ---------------------------------------------------------------

    def _first(self, address: Addr, master_hash: bytes, alg: TransitAlgorithm,
               key: VerifiedTransitKey, payload: bytes, now: float,
               retry_of: bytes | None) -> Prepared:
        # Kept, not spent: it stays valid for two periods, and a retry for another reason
        # (705 after 713) would otherwise go without it and be refused 713 again.
        token = self._tokens.get(address, b"")
        header_init = Init(alg.id, key.key_id, token, b"")
        header = header_init.header()
        session_id = retry_of or self._random(SESSION_ID_SIZE)
        timestamp_ms = max(0, int(now * 1000) + self._offsets.get(address, 0))
        ephemeral = x25519.X25519PrivateKey.from_private_bytes(self._random(32))
        caller_public = ephemeral.public_key().public_bytes_raw()
        init_secret = self._random(INIT_SECRET_SIZE)
        credential = self.credential
        signature = credential.sign(proof_message(header, session_id, timestamp_ms,
                                                  caller_public, init_secret))
        inner = InitInner(session_id, timestamp_ms, caller_public, init_secret,
                          credential.master_hash, credential.node_id, credential.cert,
                          signature, payload)
        sealed = hpke_seal(alg, key.public, header, encode_inner(inner))
        datagram = encode_init(Init(alg.id, key.key_id, token, sealed))
        return Prepared(datagram, PendingInit(address, master_hash, alg, header, session_id,
                                              timestamp_ms, ephemeral, init_secret))

    def _init_reply(self, pending: PendingInit, reply: InitReply, now: float) -> Finished:
        if reply.session_id != pending.session_id:
            raise TransitError("the node answered for another session",
                               ErrorCode.TRANSIT_OPEN_FAILED)
        shared = x25519_shared(pending.ephemeral, reply.ephemeral)
        caller_public = pending.ephemeral.public_key().public_bytes_raw()
        transcript = transcript_hash(pending.header, pending.session_id,
                                     pending.timestamp_ms, caller_public, reply.ephemeral)
        ciphers = derive_ciphers(pending.algorithm, pending.init_secret, shared, transcript)
        plaintext = aead_open(ciphers.to_caller, nonce(TO_CALLER, 0), reply.ciphertext,
                              init_reply_aad(reply.session_id, reply.ephemeral))
        if plaintext is None:
            raise TransitError("the reply is not from the holder of the called cluster's "
                               "transit key", ErrorCode.TRANSIT_OPEN_FAILED)
        session = ClientSession(pending.session_id, pending.algorithm, ciphers, now,
                                pending.master_hash)
        self._remember(self._sessions, (pending.address, pending.algorithm.id), session)
        return Finished(plaintext)

    # ----- sessions ----------------------------------------------------------------------

    def _session(self, address: Addr, alg_id: int, now: float,
                 master_hash: bytes | None) -> ClientSession | None:
        session = self._sessions.get((address, alg_id))
        if session is None or (master_hash is not None and session.master_hash != master_hash):
            return None
        if now - session.created >= self.config.rekey_after or \
                session.next_seq > self.config.rekey_messages:
            del self._sessions[(address, alg_id)]
            return None
        return session

    def _in_session(self, address: Addr, master_hash: bytes, session: ClientSession,
                    payload: bytes) -> Prepared:
        seq = session.next_seq
        session.next_seq += 1
        frames = session.frames
        sealed = session.ciphers.to_node.encrypt(nonce(TO_NODE, seq), payload,
                                                 frames.aad(seq))
        return Prepared(frames.datagram(seq, sealed),
                        PendingMessage(address, master_hash, session, seq))

    def _session_reply(self, pending: PendingMessage, reply: SessionReply) -> Finished:
        session = pending.session
        if reply.seq != pending.seq:
            raise TransitError("the reply answers another message", ErrorCode.TRANSIT_OPEN_FAILED)
        plaintext = aead_open(session.ciphers.to_caller, nonce(TO_CALLER, reply.seq),
                              reply.ciphertext, session.frames.reply_aad(reply.seq))
        if plaintext is None:
            raise TransitError("the reply did not open under the session's keys",
                               ErrorCode.TRANSIT_OPEN_FAILED)
        return Finished(plaintext)

    # ----- refusals ----------------------------------------------------------------------

    def _refused(self, pending: Pending, refusal: TransitRefusal, now: float) -> Retry:
        code = transit_code(refusal.code)
        address = pending.address
        if code is ErrorCode.UNKNOWN_SESSION and isinstance(pending, PendingMessage):
            key = (address, pending.session.algorithm.id)
            if self._sessions.get(key) is pending.session:  # not a newer one since opened
                del self._sessions[key]
        elif code is ErrorCode.UNKNOWN_TRANSIT_KEY and isinstance(refusal.extra, bytes) \
                and isinstance(pending, PendingInit):
            self._store_key(address, self.certs.verify(pending.master_hash, refusal.extra, now))
        elif code is ErrorCode.RETRY_TOKEN_REQUIRED and isinstance(refusal.extra, bytes) \
                and len(refusal.extra) == TOKEN_SIZE and isinstance(pending, PendingInit):
            self._remember(self._tokens, address, refusal.extra)
        elif code is ErrorCode.STALE_FIRST_DATAGRAM and isinstance(refusal.extra, int) \
                and refusal.extra < MAX_CLOCK_MS and isinstance(pending, PendingInit):
            offset = refusal.extra - int(now * 1000)
            self._remember(self._offsets, address, offset + (1 if offset >= 0 else 0))
        else:
            raise TransitError(f"node refused: {refusal.detail}", code)
        return Retry(code, refusal.detail,
                     pending.session_id if isinstance(pending, PendingInit) else None)

    def _store_key(self, address: Addr, key: VerifiedTransitKey) -> None:
        self._remember(self._keys, (address, int(key.kem)), key)

    @staticmethod
    def _remember(table: OrderedDict[_K, _V], key: _K, value: _V) -> None:
        table[key] = value
        table.move_to_end(key)
        if len(table) > MAX_PEERS:
            table.popitem(last=False)

