"""The node side of transit security: open what arrives, seal what we answer (sans-IO).

`open` turns one transport payload from a peer into exactly one outcome: a node message
to handle (`Opened`, with the `Channel` it came by), a cleartext query the node answers
itself (`Plain`), an answer transit sends without the node (`Answered`: refusals, keys,
retry tokens), or a counted drop (`Dropped`). `seal` encrypts the node's reply under the
channel's session, bound to the request it answers.

Cheap checks come first: shape, algorithm, key id and (under load) a stateless retry token
cost microseconds; only then does a first datagram cost an HPKE open. Replays are refused
by a per-session sliding window and, for first datagrams, by a timestamp window, the
node's start time and a bounded record of session ids seen (docs/protocol.md 8.5).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import x25519

from carbon.cbor import dumps_flat
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.transit.algorithms import REGISTRY, Kem, TransitAlgorithm, transit_code
from mercury_rt.core.transit.kem import aead_open, hpke_open, x25519_shared
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import CertCache, PeerProof
from mercury_rt.core.transit.replay import ReplayWindow
from mercury_rt.core.transit.schedule import (
    TO_CALLER,
    TO_NODE,
    SessionCiphers,
    derive_ciphers,
    init_reply_aad,
    nonce,
    proof_message,
    reply_aad,
    session_aad,
    transcript_hash,
)
from mercury_rt.core.transit.wire import (
    INIT,
    KEY_QUERY,
    SESSION,
    TOKEN_SIZE,
    Init,
    InitInner,
    InitReply,
    KeyQuery,
    SessionMessage,
    SessionReply,
    TransitRefusal,
    decode_answer,
    decode_inner,
    decode_request,
    encode_init_reply,
    encode_keys,
    encode_refusal,
    encode_session_reply,
    message_type,
)

Addr = tuple[str, int]
PLAIN_FORMS = frozenset({1})
"""Node requests a node answers in clear: `[1, master hash]` (its signed cluster ID)."""
AMPLIFICATION = 3


@dataclass(frozen=True, slots=True)
class ResponderConfig:
    """Bounds and windows of the node side (docs/protocol.md 8.5)."""

    clock_window_ms: int = 60_000
    max_sessions: int = 65_536
    max_sessions_per_peer: int = 32
    session_idle: float = 600.0
    session_max_age: float = 900.0
    max_seen_inits: int = 262_144
    max_ahead_inits: int = 1_024
    """First datagrams refused as ahead of our clock remembered at once (bounded so a full
    record costs a short scan); beyond it such datagrams are refused with 714."""
    init_rate: int = 2_000
    """First datagrams per second opened without a retry token; above it, tokens first."""
    token_period: int = 60


@dataclass(slots=True)
class ServerSession:
    """One established session, as the node holds it."""

    session_id: bytes
    algorithm: TransitAlgorithm
    ciphers: SessionCiphers
    peer: Addr
    proof: PeerProof
    ephemeral: bytes
    created: float
    last_used: float
    window: ReplayWindow = field(default_factory=ReplayWindow)


@dataclass(slots=True)
class Channel:
    """How one request arrived: its session, its number, and what it proves. Its reply is
    sealed once (`replied`): a second seal would reuse the reply's nonce."""

    session: ServerSession
    seq: int
    replied: bool = False

    @property
    def first(self) -> bool:
        """The session's first datagram (answered with an InitReply)."""
        return self.seq == 0

    @property
    def address_validated(self) -> bool:
        """A later message proves its sender read our InitReply (it needed our ephemeral
        key), so its address receives what we send."""
        return self.seq > 0


@dataclass(frozen=True, slots=True)
class Opened:
    """A node message to handle, and the channel to answer on."""

    payload: bytes
    channel: Channel


@dataclass(frozen=True, slots=True)
class Plain:
    """A cleartext query the node answers itself."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Answered:
    """Bytes transit answers with; the node sees nothing."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Dropped:
    """Nothing is answered; counted under `code`."""

    code: ErrorCode
    reason: str


Outcome = Opened | Plain | Answered | Dropped
ProofCheck = Callable[[PeerProof], bool]
"""Checks a first datagram's proof at once (the intra-cluster port: own cluster keys)."""


class TransitResponder:
    """One port's sessions. See module docstring."""

    def __init__(self, keys: NodeTransitKeys, master_hash: bytes, *, token_secret: bytes,
                 boot_ms: int, random_bytes: Callable[[int], bytes],
                 config: ResponderConfig | None = None,
                 check_at_open: ProofCheck | None = None,
                 refuse_in_clear: bool = True) -> None:
        self.keys = keys
        self.master_hash = master_hash
        self.config = config or ResponderConfig()
        self._token_secret = token_secret
        self._boot_ms = boot_ms
        self._random = random_bytes
        self._check_at_open = check_at_open
        self._refuse_in_clear = refuse_in_clear
        """Answer a node message sent outside a session with 701 (the public port), or
        drop it silently (the intra-cluster port tells strangers nothing)."""
        self._sessions: OrderedDict[bytes, ServerSession] = OrderedDict()
        self._certs = CertCache()
        self._per_peer: dict[Addr, dict[bytes, None]] = {}
        """Each peer's session ids, least recently used first (plain dicts keep order and
        cost less per peer than OrderedDicts)."""
        self._seen: OrderedDict[bytes, int] = OrderedDict()
        self._ahead: dict[bytes, int] = {}
        """Init secrets of first datagrams refused as ahead of our clock, until they could
        no longer be admitted: replayed once our clock catches up, they are still refused
        (the caller has retried them by then, under the same session id)."""
        self._second = -1
        self._opened_this_second = 0
        self.counts: dict[ErrorCode, int] = {}

    # ----- opening -----------------------------------------------------------------------

    def open(self, payload: bytes, peer: Addr, now: float) -> Outcome:
        """The one outcome of a payload from `peer` at wall-clock time `now`.

        What transit answers by itself goes to a source not yet validated, so it is at most
        AMPLIFICATION times the payload: a longer refusal goes without its detail and
        extra, and is dropped if even that is too long (honest first datagrams, carrying a
        node certificate and a signature, are always long enough for their 702 or 705)."""
        self.keys.tick(now)
        outcome = self._open(payload, peer, now)
        if isinstance(outcome, Answered) and \
                len(outcome.reply) > AMPLIFICATION * len(payload):
            return self._within_limit(outcome.reply, len(payload))
        return outcome

    def _within_limit(self, reply: bytes, size: int) -> Answered | Dropped:
        answer = decode_answer(reply)
        code = answer.code if isinstance(answer, TransitRefusal) else ErrorCode.TRANSIT_MALFORMED
        short = encode_refusal(code, "")
        if len(short) <= AMPLIFICATION * size:
            return Answered(short)
        return Dropped(transit_code(code), "answer would exceed the anti-amplification limit")

    def _open(self, payload: bytes, peer: Addr, now: float) -> Outcome:
        kind = message_type(payload)
        if kind in PLAIN_FORMS:
            return Plain(payload)
        if kind not in (KEY_QUERY, INIT, SESSION):
            if not self._refuse_in_clear:
                return self._drop(ErrorCode.TRANSIT_REQUIRED, "node message outside a session")
            return self._answer(ErrorCode.TRANSIT_REQUIRED,
                                "node messages must travel in a transit session (8.2)")
        try:
            request = decode_request(payload)
        except MercuryError as exc:
            return self._drop(ErrorCode.TRANSIT_MALFORMED, exc.message)
        if isinstance(request, SessionMessage):
            return self._session_message(request, now)
        if isinstance(request, KeyQuery):
            return self._key_query(request, len(payload))
        return self._init(request, peer, len(payload), now)

    def _session_message(self, message: SessionMessage, now: float) -> Outcome:
        session = self._sessions.get(message.session_id)
        if session is None or self._expired(session, now):
            if session is not None:
                self._forget(session)
            return self._answer(ErrorCode.UNKNOWN_SESSION,
                                "this node holds no such session; open a new one")
        if not session.window.fresh(message.seq) or message.seq == 0:
            return self._drop(ErrorCode.REPLAYED, "message number already used")
        plaintext = aead_open(session.ciphers.to_node, nonce(TO_NODE, message.seq),
                              message.ciphertext,
                              session_aad(message.session_id, message.seq))
        if plaintext is None:
            return self._drop(ErrorCode.TRANSIT_OPEN_FAILED, "session message did not open")
        session.window.accept(message.seq)
        session.last_used = now
        self._sessions.move_to_end(session.session_id)
        mine = self._per_peer[session.peer]
        mine[session.session_id] = mine.pop(session.session_id)
        return Opened(plaintext, Channel(session, message.seq))

    def _key_query(self, query: KeyQuery, size: int) -> Outcome:
        if query.master_hash != self.master_hash:
            return self._answer(ErrorCode.UNKNOWN_ENTITY, "this node serves another cluster")
        if query.kem not in {int(k) for k in Kem}:
            return self._answer(ErrorCode.UNKNOWN_ALGORITHM, "no such key establishment")
        answer = encode_keys(self.keys.current(Kem(query.kem)).cert_bytes)
        if AMPLIFICATION * size < len(answer):
            return self._answer(ErrorCode.TRANSIT_MALFORMED,
                                f"pad the key query to at least "
                                f"{-(-len(answer) // AMPLIFICATION)} bytes")
        return Answered(answer)

    def _init(self, init: Init, peer: Addr, size: int, now: float) -> Outcome:
        alg = REGISTRY.get(init.algorithm)
        if alg is None:
            return self._answer(ErrorCode.UNKNOWN_ALGORITHM,
                                f"transit algorithm {init.algorithm} is not registered here")
        key = self.keys.key(init.key_id, now)
        if key is None or key.pair.kem is not alg.kem:
            current = self.keys.current(alg.kem).cert_bytes
            return self._answer(ErrorCode.UNKNOWN_TRANSIT_KEY,
                                "unknown or expired transit key; use this one", current)
        if self._needs_token(now) and not self._token_ok(init.token, peer, now):
            return self._answer(ErrorCode.RETRY_TOKEN_REQUIRED,
                                "node under load: repeat with this token",
                                self._token(peer, int(now) // self.config.token_period))
        try:
            inner = decode_inner(hpke_open(alg, key.pair.private, init.header(), init.sealed))
        except MercuryError as exc:
            return self._drop(exc.code, exc.message)
        return self._admit(init, inner, alg, peer, now, key.cert.not_after * 1000)

    def _admit(self, init: Init, inner: InitInner, alg: TransitAlgorithm, peer: Addr,
               now: float, key_expiry_ms: int) -> Outcome:
        now_ms = int(now * 1000)
        if inner.timestamp_ms < self._boot_ms or \
                abs(inner.timestamp_ms - now_ms) > self.config.clock_window_ms:
            return self._stale(inner, now_ms, key_expiry_ms)
        if inner.session_id in self._seen or inner.session_id in self._sessions or \
                inner.init_secret in self._ahead:
            return self._drop(ErrorCode.REPLAYED, "first datagram seen before")
        if not self._remember(inner.session_id, inner.timestamp_ms, now_ms):
            return self._answer(ErrorCode.SESSION_LIMIT, "too many new sessions; retry later")
        proof = PeerProof(inner.master_hash, inner.node_id, inner.node_cert, inner.signature,
                          proof_message(init.header(), inner.session_id, inner.timestamp_ms,
                                        inner.ephemeral, inner.init_secret),
                          certs=self._certs)
        if self._check_at_open is not None and not self._check_at_open(proof):
            return self._drop(ErrorCode.SOURCE_NOT_PROVEN,
                              "first datagram not from a certified node of this cluster")
        try:
            session = self._establish(init, inner, alg, proof, peer, now)
        except MercuryError as exc:
            return self._drop(exc.code, exc.message)
        return Opened(inner.payload, Channel(session, 0))

    def _establish(self, init: Init, inner: InitInner, alg: TransitAlgorithm,
                   proof: PeerProof, peer: Addr, now: float) -> ServerSession:
        ephemeral = x25519.X25519PrivateKey.from_private_bytes(self._random(32))
        public = ephemeral.public_key().public_bytes_raw()
        shared = x25519_shared(ephemeral, inner.ephemeral)
        transcript = transcript_hash(init.header(), inner.session_id, inner.timestamp_ms,
                                     inner.ephemeral, public)
        session = ServerSession(inner.session_id, alg,
                                derive_ciphers(alg, inner.init_secret, shared, transcript),
                                peer, proof, public, now, now)
        self._add(session)
        return session

    # ----- sealing -----------------------------------------------------------------------

    def seal(self, channel: Channel, reply: bytes) -> bytes:
        """The node's reply to the request that came by `channel`, encrypted and bound.

        Raises ValueError if this channel's reply was sealed before: its nonce is the
        request's number, so a second reply would reuse it (a host bug, never peer input)."""
        if channel.replied:
            raise ValueError("a request's reply is sealed once; a second would reuse its nonce")
        channel.replied = True
        session = channel.session
        cipher = session.ciphers.to_caller
        if channel.first:
            sealed = cipher.encrypt(nonce(TO_CALLER, 0), reply,
                                    init_reply_aad(session.session_id, session.ephemeral))
            return encode_init_reply(InitReply(session.session_id, session.ephemeral, sealed))
        sealed = cipher.encrypt(nonce(TO_CALLER, channel.seq), reply,
                                reply_aad(session.session_id, channel.seq))
        return encode_session_reply(SessionReply(channel.seq, sealed))

    # ----- bounds ------------------------------------------------------------------------

    @property
    def session_count(self) -> int:
        """Sessions held now."""
        return len(self._sessions)

    def _add(self, session: ServerSession) -> None:
        """Hold a new session, evicting the least recently used one beyond the per-peer
        bound and beyond the total (their callers simply open new ones)."""
        mine = self._per_peer.setdefault(session.peer, {})
        if len(mine) >= self.config.max_sessions_per_peer:
            self._forget(self._sessions[next(iter(mine))])
        if len(self._sessions) >= self.config.max_sessions:
            self._forget(next(iter(self._sessions.values())))
        self._sessions[session.session_id] = session
        self._per_peer.setdefault(session.peer, {})[session.session_id] = None

    def _forget(self, session: ServerSession) -> None:
        if self._sessions.pop(session.session_id, None) is None:
            return
        mine = self._per_peer.get(session.peer)
        if mine is not None:
            mine.pop(session.session_id, None)
            if not mine:
                del self._per_peer[session.peer]

    def _sweep(self, now: float) -> None:
        """Forget expired sessions, least recently used first (the table's order), so idle
        ones neither count as load nor hold slots (amortised O(1) per first datagram)."""
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if not self._expired(oldest, now):
                return
            self._forget(oldest)

    def _expired(self, session: ServerSession, now: float) -> bool:
        return now - session.last_used > self.config.session_idle or \
            now - session.created > self.config.session_max_age

    def _remember(self, session_id: bytes, timestamp_ms: int, now_ms: int) -> bool:
        """Record a first datagram's session id until its timestamp leaves the window
        (kept through the window's last millisecond, when `_admit` still accepts it)."""
        seen = self._seen
        while seen:
            oldest_id, until = next(iter(seen.items()))
            if until >= now_ms:
                break
            del seen[oldest_id]
        if len(seen) >= self.config.max_seen_inits:
            return False
        seen[session_id] = max(timestamp_ms, now_ms) + self.config.clock_window_ms
        return True

    def _stale(self, inner: InitInner, now_ms: int, key_expiry_ms: int) -> Answered:
        """705 with our clock. A datagram ahead of it is remembered first: once our clock
        catches up it would otherwise be admissible, and a replay of it would run again
        after the caller's retry ran (714 if the record is full: refused either way)."""
        until = min(inner.timestamp_ms + self.config.clock_window_ms, key_expiry_ms)
        if inner.timestamp_ms > now_ms and not self._hold_ahead(inner.init_secret, until,
                                                                now_ms):
            return self._answer(ErrorCode.SESSION_LIMIT, "too many new sessions; retry later")
        return self._answer(ErrorCode.STALE_FIRST_DATAGRAM,
                            "first datagram outside this node's time window; "
                            "retry with this clock (ms)", now_ms)

    def _hold_ahead(self, init_secret: bytes, until: int, now_ms: int) -> bool:
        ahead = self._ahead
        if len(ahead) >= self.config.max_ahead_inits:
            for secret in [k for k, t in ahead.items() if t < now_ms]:
                del ahead[secret]
        if len(ahead) >= self.config.max_ahead_inits:
            return False
        ahead[init_secret] = until
        return True

    def _needs_token(self, now: float) -> bool:
        self._sweep(now)
        second = int(now)
        if second != self._second:
            self._second, self._opened_this_second = second, 0
        self._opened_this_second += 1
        return self._opened_this_second > self.config.init_rate or \
            len(self._sessions) >= self.config.max_sessions * 9 // 10

    def _token(self, peer: Addr, period: int) -> bytes:
        mac = hmac.new(self._token_secret, dumps_flat([peer[0], peer[1], period]),
                       hashlib.sha256).digest()
        return period.to_bytes(4, "big") + mac[:TOKEN_SIZE - 4]

    def _token_ok(self, token: bytes, peer: Addr, now: float) -> bool:
        if len(token) != TOKEN_SIZE:
            return False
        period = int.from_bytes(token[:4], "big")
        current = int(now) // self.config.token_period
        return period in (current, current - 1) and \
            hmac.compare_digest(token, self._token(peer, period))

    def _answer(self, code: ErrorCode, detail: str, extra: bytes | int = b"") -> Answered:
        self.counts[code] = self.counts.get(code, 0) + 1
        return Answered(encode_refusal(int(code), detail, extra))

    def _drop(self, code: ErrorCode, reason: str) -> Dropped:
        self.counts[code] = self.counts.get(code, 0) + 1
        return Dropped(code, reason)

