"""EtcdState: mirrored entities' state in etcd. The only module that imports the etcd client.

Why etcd: mirrors of one entity must share one state, and we do not write consensus
ourselves (docs/operator-guide.md, "Mirrored state on etcd"). Layout under the cluster's
prefix P: `P s/<raw state key>` holds a record (the same bytes LMDB stores), `P h/<entity>`
is the entity's head (rewritten by every commit, so its mod revision says when the entity
last changed), `P r/<request id>` is an at-most-once request record holding the reply,
`P t/<stamp digest>` a hashcash stamp spent in the cluster, holding the request it paid for.

A commit is one transaction: compare "head's mod revision <= R" (R: the revision of the
snapshot the handler ran on) and "request record absent", then put/delete the staged
writes, the new head (if anything is written) and the record. Every commit carries a
request id (the caller's, or one chosen per attempt), so a commit whose answer was lost
(a member died mid-request) is retried safely: the retry's compare fails and its failure
branch returns the record, which proves the first attempt committed.
Records live on a lease (`record_ttl`, or as asked); a spent stamp on one outliving it.

Every write to an entity's state goes through `commit`, and writes the head after the
state keys: each node's read cache (tungsten/mirror_cache.py) relies on both, since a
head event closes an entity's changes at a revision and an unchanged head mod revision
proves the entity unchanged.

Bounds: a change set over etcd's transaction limits is refused before sending
(ChangeTooLargeError); every operation has a deadline, so a lost majority becomes
ReplicationUnavailableError within `timeout` seconds instead of a hang. What etcd sends
back is bounded too: a reply over `max_reply_bytes` is dropped by gRPC before it is held
(ReplyTooLargeError), and etcd's NOSPACE alarm (its backend quota reached) is
SpaceExceededError, which says what the operator must do.

TLS: aetcd 1.0.0 opens only insecure channels, so `_TlsClient` is the same client on a
gRPC channel with SSL credentials (the CA verifies every member; the client certificate
answers etcd's `--client-cert-auth`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aetcd
import aetcd.exceptions
import aetcd.rpc
import aetcd.transactions as tx
import aetcd.watcher
import grpc

from carbon.error_codes import ErrorCode, MercuryError
from tungsten.errors import ConflictError, StateError
from tungsten.keys import entity_prefix

MAX_TXN_OPS = 128
"""etcd's default `--max-txn-ops`."""
MAX_TXN_BYTES = 1_572_864
"""etcd's default `--max-request-bytes` (1.5 MiB)."""
_OP_OVERHEAD = 16
"""Bytes of protobuf framing counted per operation when sizing a transaction (generous)."""
DEFAULT_MAX_REPLY = 4 * 1024 * 1024
_DETAIL_CHARS = 240
"""Characters of a gRPC failure's detail quoted in an error (the text is not ours)."""
_KEPT_CHARS = 2048
"""Characters of a failure's detail kept to classify it (bounded: it is not ours)."""
_NOSPACE = "database space exceeded"
"""etcd's ErrGRPCNoSpace detail (status RESOURCE_EXHAUSTED): the NOSPACE alarm is raised."""
_PEER_REFUSED = ("BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "TSI_DATA_CORRUPTED",
                 "UNKNOWN_CA", "certificate required")
"""BoringSSL/gRPC words for a member rejecting this node's TLS client certificate."""
_PAUSE_FIRST = 0.01
_PAUSE_MAX = 0.25
"""Seconds between rounds of failed attempts over every member (first, at most)."""
STAMP_LEASE_STEP = 30
"""Seconds: spent-stamp keys share one lease per step of expiry, so the leases a node keeps
are (stamp lifetime / step), however many stamps it spends; a key outlives its stamp by up
to two steps (clock skew between nodes included), never less."""
MAX_STAMP_LEASES = 1024
"""Leases for spent stamps held at once (a bound, whatever expiry times peers claim)."""
CLOSE_TIMEOUT = 2.0
"""Seconds a channel's close may take. gRPC's aio close waits for its calls to end, and
a call whose member froze (or a completion gRPC never delivers to this event loop) would
otherwise hold a node's shutdown, and every await behind it, for ever."""
_T = TypeVar("_T")


async def bounded_close(closing: Awaitable[Any]) -> None:
    """Await a channel's close for at most CLOSE_TIMEOUT seconds (then give it up: the
    process or the garbage collector releases the socket)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing, CLOSE_TIMEOUT)


def stamp_lease_plan(expires_at: int, now: float) -> tuple[int, int]:
    """The step a stamp expiring at `expires_at` shares a lease in, and that lease's TTL
    if granted at `now` (wall-clock seconds): it ends one to two steps after every expiry
    of the step. A step's lease is reused only while `now` <= step x STEP (no unexpired
    stamp falls in an earlier step), so a key on it always outlives its stamp."""
    step = -(-expires_at // STAMP_LEASE_STEP)
    return step, max(1, int((step + 1) * STAMP_LEASE_STEP - now) + 1)


class ReplicationUnavailableError(StateError):
    """etcd did not answer (no member reachable, or no quorum) within the deadline."""

    code = ErrorCode.REPLICATION_UNAVAILABLE


class ChangeTooLargeError(StateError):
    """A change set that one etcd transaction cannot hold; nothing was sent."""

    code = ErrorCode.REPLICATION_CHANGE_TOO_LARGE


class SpaceExceededError(StateError):
    """etcd refused a write: its backend quota is reached (the NOSPACE alarm is raised);
    nothing was written, and no write succeeds until an operator frees space."""

    code = ErrorCode.REPLICATION_SPACE_EXCEEDED


class ReplyTooLargeError(StateError):
    """An etcd reply larger than `max_reply_bytes`; it was dropped, nothing taken from it."""

    code = ErrorCode.REPLICATION_REPLY_TOO_LARGE


@dataclass(frozen=True, slots=True)
class EtcdTls:
    """PEM bytes for TLS to etcd: trusted CA certificate(s), and optionally this node's
    client certificate chain with its private key (both or neither)."""

    ca: bytes
    cert_chain: bytes | None = None
    private_key: bytes | None = field(default=None, repr=False)
    """Kept out of repr, so a logged setting never shows the key."""


@dataclass(frozen=True, slots=True)
class EtcdSettings:
    """Where etcd is and how long to wait (the node config's `replication:` section)."""

    endpoints: tuple[tuple[str, int], ...]
    prefix: bytes = b"mercury/"
    timeout: float = 5.0
    """Whole-operation deadline, across endpoints: a write is refused after this."""
    attempt_timeout: float = 1.0
    """One RPC to one member; past it the next member is tried."""
    record_ttl: int = 3600
    """Seconds a request record (its stored reply) is kept for retries."""
    max_reply_bytes: int = DEFAULT_MAX_REPLY
    """Largest etcd reply accepted (gRPC's max receive message length)."""
    tls: EtcdTls | None = None
    """TLS credentials; None: plaintext (the config allows it only where it is safe)."""


@dataclass(frozen=True, slots=True)
class EntityRead:
    """An entity's records at `revision`, and the stored reply if the request already ran."""

    revision: int
    records: dict[bytes, bytes]
    stored_reply: bytes | None = None
    head: int = 0
    """The mod revision of the entity's head at `revision` (0: it never committed)."""
    unchanged: bool = False
    """The head still had the `known_head` asked about; `records` were not sent."""
    epoch: int = 0
    """The etcd cluster's id (a cache of another cluster's revisions means nothing)."""


Write = tuple[bytes, bytes | None]
"""(raw state key, raw value or None to delete)."""


def check_txn_size(writes: Sequence[Write], extra: Sequence[tuple[bytes, bytes]],
                   prefix_len: int) -> None:
    """Refuse a change set one transaction cannot carry, saying why (before sending)."""
    ops = len(writes) + len(extra)
    if ops > MAX_TXN_OPS:
        raise ChangeTooLargeError(f"the handler's change set needs {ops} etcd operations "
                                  f"(its {len(writes)} writes, head and request record); one "
                                  f"transaction holds at most {MAX_TXN_OPS}")
    size = sum(prefix_len + 2 + len(k) + len(v or b"") + _OP_OVERHEAD
               for k, v in (*writes, *extra))
    if size > MAX_TXN_BYTES:
        raise ChangeTooLargeError(f"the handler's change set is {size} bytes; one etcd "
                                  f"transaction holds at most {MAX_TXN_BYTES}")


def _range_end(full: bytes, prefix: bool) -> bytes:
    """etcd's range end: every key starting with `full`, or exactly `full`."""
    if not prefix:
        return full + b"\x00"
    end = bytearray(full)
    while end and end[-1] == 0xFF:
        end.pop()
    if not end:
        return b"\x00"  # every key
    end[-1] += 1
    return bytes(end)


ENTITY_RANGE = (b"h/", _range_end(b"s/", True))
"""Every entity key as [start, end) relative to the prefix: heads `h/` through state
records `s/`. One range, so one watch sees an entity's state and head changes in revision
order; what else lies between them (membership keys `m/`, and request records `r/`, one
per commit in its revision) is little, while spent stamps `t/`, one per paid request, and
the cluster-ID key are outside."""


async def _read_txn(client: Any, compare: list[Any], success: list[Any],
                    failure: list[Any]) -> Any:
    """A transaction's raw response, header included (aetcd's `transaction` drops the
    header, and with it the revision of a read that found nothing)."""
    await client.connect()
    request = aetcd.rpc.TxnRequest(compare=[c.build_message() for c in compare],
                                   success=client._ops_to_requests(success),
                                   failure=client._ops_to_requests(failure))
    try:
        return await client.kvstub.Txn(request, timeout=client._timeout,
                                       metadata=client.metadata)
    except aetcd.rpc.AioRpcError as exc:
        aetcd.exceptions._handle_exception(exc)
        raise


class EtcdState:
    """Entity state and request records in one etcd cluster, reached through any member."""

    def __init__(self, settings: EtcdSettings,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not settings.endpoints:
            raise StateError("replication needs at least one etcd endpoint")
        self.settings = settings
        self._clock = clock
        self._clients: list[Any] = [None] * len(settings.endpoints)
        self._current = 0
        self._leases: dict[int, tuple[Any, float]] = {}
        """Request-record leases by the seconds their records must be kept."""
        self._stamp_leases: dict[int, Any] = {}
        self._grants: dict[tuple[str, int], asyncio.Future[Any]] = {}
        """Lease grants under way, shared by the callers that need them (`_grant_once`)."""
        """Spent-stamp leases by the step their stamps expire in."""

    # ----- keys ---------------------------------------------------------------------------

    def state_key(self, raw: bytes) -> bytes:
        """The etcd key of an LMDB-form state key."""
        return self.settings.prefix + b"s/" + raw

    def head_key(self, entity: bytes) -> bytes:
        """The key every commit to `entity` rewrites."""
        return self.settings.prefix + b"h/" + entity_prefix(entity)

    def record_key(self, request_id: bytes) -> bytes:
        """The at-most-once record of one request."""
        return self.settings.prefix + b"r/" + request_id

    def stamp_key(self, digest: bytes) -> bytes:
        """Where a stamp spent anywhere in the cluster is remembered."""
        return self.settings.prefix + b"t/" + digest

    # ----- operations ---------------------------------------------------------------------

    async def read_entity(self, entity: bytes, request_id: bytes | None = None,
                          known_head: int | None = None) -> EntityRead:
        """Every record of `entity` at one revision, its head's mod revision, and the
        stored reply of `request_id` if that request already committed: one read-only
        transaction, so a linearizable read at one revision.

        `known_head` (a cached copy's head mod revision): if the head still has it, the
        records are not sent (`unchanged`), the copy is current; either way one round
        trip."""
        prefix = self.state_key(entity_prefix(entity))
        head = self.head_key(entity)
        record = [] if request_id is None else [tx.Get(self.record_key(request_id))]
        compare = [tx.Mod(head) == (-1 if known_head is None else known_head)]
        failure = [*record, tx.Get(head), tx.Get(prefix, _range_end(prefix, True))]
        got = await self._run(lambda c: _read_txn(c, compare, record, failure))
        ranges = [response.response_range.kvs for response in got.responses]
        stored = None
        if request_id is not None:
            found = ranges.pop(0)
            stored = bytes(found[0].value) if found else None
        revision, epoch = int(got.header.revision), int(got.header.cluster_id)
        if got.succeeded:
            return EntityRead(revision, {}, stored, known_head or 0, True, epoch)
        heads, kvs = ranges
        cut = len(self.settings.prefix) + 2
        records = {bytes(kv.key)[cut:]: bytes(kv.value) for kv in kvs}
        return EntityRead(revision, records, stored,
                          int(heads[0].mod_revision) if heads else 0, False, epoch)

    async def position(self) -> tuple[int, int]:
        """(etcd's current revision, its cluster id), read linearizably."""
        got = await self._run(lambda c: _read_txn(c, [], [], []))
        return int(got.header.revision), int(got.header.cluster_id)

    async def commit(self, entity: bytes, revision: int, writes: Sequence[Write],
                     request_id: bytes, reply: bytes,
                     reads: Sequence[tuple[bytes, bool]] | None = None,
                     keep: int | None = None) -> bytes:
        """Apply `writes` if what the handler read is unchanged since `revision` and
        `request_id` never committed; returns the reply to answer with (the stored one if
        it had). ConflictError: another commit came first (re-run the handler).

        `reads` (raw key, whether the handler saw a value) guards each key read; None
        (the handler scanned, or read more keys than one transaction can compare) guards
        the whole entity through its head. The record is kept at least `keep` seconds
        (default `record_ttl`; a one-way message's for as long as it may be resent)."""
        head, record = self.head_key(entity), self.record_key(request_id)
        check_txn_size(writes, ((head, b""), (record, reply)), len(self.settings.prefix))
        lease = await self._record_lease(keep or self.settings.record_ttl)
        guards = self._guards(head, revision, reads)

        def txn(c: Any) -> Awaitable[Any]:
            ops = [tx.Put(self.state_key(k), v) if v is not None
                   else tx.Delete(self.state_key(k)) for k, v in writes]
            if writes:  # nothing changed: the head (the entity's last change) stays
                ops.append(tx.Put(head, request_id))
            ops.append(tx.Put(record, reply, lease=lease))
            started: Awaitable[Any] = c.transaction(
                compare=[*guards, tx.Version(record) == 0], success=ops,
                failure=[tx.Get(record)])
            return started

        succeeded, responses = await self._run(txn)
        if succeeded:
            return reply
        found = responses[0] if responses else []
        if found:
            return bytes(found[0][0])
        raise ConflictError("another mirror changed the entity while the handler ran")

    def _guards(self, head: bytes, revision: int,
                reads: Sequence[tuple[bytes, bool]] | None) -> list[Any]:
        """Compares that hold iff nothing the handler relied on changed after `revision`:
        a key seen present still exists and was last modified by then; a key seen absent
        was not created since (a later create-then-delete leaves it absent, as seen)."""
        if reads is None or 2 * len(reads) > MAX_TXN_OPS - 1:
            return [tx.Mod(head) < revision + 1]
        guards: list[Any] = []
        for raw, present in reads:
            key = self.state_key(raw)
            guards.append(tx.Mod(key) < revision + 1)
            if present:
                guards.append(tx.Version(key) > 0)
        return guards

    async def spend_stamp(self, digest: bytes, binding: bytes, expires_at: int,
                          now: float) -> bytes | None:
        """Spend a stamp cluster-wide: put-if-absent (create revision 0) of its key holding
        `binding` (the request it pays for), on a lease that outlives the stamp's
        `expires_at` (wall-clock seconds; `now` is the wall clock). None: spent now; else
        the binding it was spent with before, for the caller to compare."""
        key = self.stamp_key(digest)
        lease = await self._stamp_lease(expires_at, now)

        def txn(c: Any) -> Awaitable[Any]:
            started: Awaitable[Any] = c.transaction(
                compare=[tx.Create(key) == 0], success=[tx.Put(key, binding, lease=lease)],
                failure=[tx.Get(key)])
            return started

        succeeded, responses = await self._run(txn)
        if succeeded:
            return None
        found = responses[0] if responses else []
        return bytes(found[0][0]) if found else b""

    async def get(self, key: bytes) -> tuple[bytes, int] | None:
        """(value, version) of a plain key under the prefix, or None if absent."""
        found = await self._run(lambda c: c.get(self.settings.prefix + key))
        return None if found is None else (bytes(found.value), int(found.version))

    async def put_if_version(self, key: bytes, value: bytes, version: int) -> bool:
        """Put `key` only if its version is still `version` (0: absent); True if it was."""
        full = self.settings.prefix + key

        def txn(c: Any) -> Awaitable[Any]:
            started: Awaitable[Any] = c.transaction(compare=[tx.Version(full) == version],
                                                    success=[tx.Put(full, value)], failure=[])
            return started

        succeeded, _ = await self._run(txn)
        return bool(succeeded)

    async def close(self) -> None:
        """Close every member connection."""
        clients, self._clients = self._clients, [None] * len(self._clients)
        for client in clients:
            if client is not None:
                await bounded_close(client.close())

    # ----- plumbing -----------------------------------------------------------------------

    async def _record_lease(self, keep: int) -> Any:
        """A lease for records kept at least `keep` seconds: granted for 1.5 x `keep` and
        replaced after half of `keep`, so a record put on it outlives `keep`. One lease
        per distinct `keep` (the node uses two: requests and one-way messages)."""
        now = self._clock()
        held = self._leases.get(keep)
        if held is None or now >= held[1]:
            lease = await self._grant_once(("r", keep), keep + keep // 2 + 1)
            held = self._leases[keep] = (lease, now + keep / 2)
        return held[0]

    async def _stamp_lease(self, expires_at: int, now: float) -> Any:
        """The lease of the step `expires_at` falls in, granted on first use: it ends at
        least one step after the stamp expires. Ended steps are forgotten; at the bound a
        fresh lease is granted and not kept (bounded memory, never a shorter lease)."""
        step, ttl = stamp_lease_plan(expires_at, now)
        for ended in [s for s in self._stamp_leases if s * STAMP_LEASE_STEP < now]:
            del self._stamp_leases[ended]
        lease = self._stamp_leases.get(step)
        if lease is None:
            lease = await self._grant_once(("t", step), ttl)
            if len(self._stamp_leases) < MAX_STAMP_LEASES:
                self._stamp_leases[step] = lease
        return lease

    async def _grant_once(self, slot: tuple[str, int], ttl: int) -> Any:
        """One lease grant per `slot` at a time: callers arriving while it is under way
        wait for the same grant. Without this, N commits or stamp spends arriving together
        (at start, at each rollover) would each grant a lease etcd keeps for `ttl`, a
        number of leases set by peer traffic."""
        pending = self._grants.get(slot)
        if pending is None:
            pending = asyncio.ensure_future(self._run(lambda c: c.lease(ttl)))
            self._grants[slot] = pending
            pending.add_done_callback(lambda _done: self._grants.pop(slot, None))
        return await asyncio.shield(pending)

    def _client(self, index: int) -> Any:
        if self._clients[index] is None:
            host, port = self.settings.endpoints[index]
            limit = self.settings.max_reply_bytes
            common: dict[str, Any] = {
                "host": host, "port": port, "timeout": self.settings.attempt_timeout,
                "connect_wait_timeout": 1,
                "options": {"grpc.max_receive_message_length": limit}}
            tls = self.settings.tls
            self._clients[index] = (aetcd.Client(**common) if tls is None
                                    else _TlsClient(_credentials(tls), **common))
        return self._clients[index]

    async def _run(self, operation: Callable[[Any], Awaitable[_T]]) -> _T:
        """Run on the current member, moving to the next one on a connection failure or
        timeout, until `timeout` has passed; then ReplicationUnavailableError naming what
        each member tried did (a TLS failure says which side refused)."""
        deadline = self._clock() + self.settings.timeout
        failures: dict[int, tuple[str, str]] = {}
        failed = 0
        while True:
            index = self._current
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise ReplicationUnavailableError(
                    f"etcd did not complete the operation within {self.settings.timeout} s "
                    f"(no reachable member with a quorum; {self._failures(failures)}); "
                    "nothing was acknowledged")
            try:
                return await asyncio.wait_for(operation(self._client(index)),
                                              min(remaining, self.settings.attempt_timeout))
            except (TimeoutError, aetcd.exceptions.ConnectionFailedError,
                    aetcd.exceptions.ConnectionTimeoutError,
                    aetcd.exceptions.InternalError) as exc:
                if str(exc) or index not in failures:  # a bare timeout adds nothing
                    failures[index] = (type(exc).__name__, str(exc)[:_KEPT_CHARS])
                # Only move on: the member's channel is shared by concurrent operations
                # (closing it would cancel theirs) and reconnects by itself.
                if self._current == index:
                    self._current = (index + 1) % len(self.settings.endpoints)
                failed += 1
                pause = retry_pause(failed, len(self.settings.endpoints))
                if pause:
                    await asyncio.sleep(min(pause, max(0.0, deadline - self._clock())))
            except aetcd.exceptions.ClientError as exc:
                raise refusal(_status(exc), str(exc), self._describe(index),
                              self.settings.max_reply_bytes) from None

    def _failures(self, failures: dict[int, tuple[str, str]]) -> str:
        """Each member's last failure, quoted, with what it means for TLS."""
        if not failures:
            return "no member tried"
        return "; ".join(f"{self._describe(i)}: {kind}{': ' + _quote(text) if text else ''}"
                         f"{tls_hint(text, self.settings.tls)}"
                         for i, (kind, text) in sorted(failures.items()))

    def _describe(self, index: int) -> str:
        host, port = self.settings.endpoints[index]
        return f"{host}:{port}"


def retry_pause(failed: int, members: int) -> float:
    """Seconds to wait after the `failed`-th failed attempt: none within a round of the
    members, then 10 ms after each round, doubling to 250 ms. A member that fails at once
    (a refused TLS handshake, a closed port) would otherwise be retried thousands of
    times a second, a core spent per waiting call until its deadline."""
    if failed % members:
        return 0.0
    return float(min(_PAUSE_MAX, _PAUSE_FIRST * 2 ** min(failed // members - 1, 16)))


def refusal(status: str, detail: str, member: str, max_reply: int) -> StateError:
    """The typed error for an RPC a member answered with a failure (not a lost member):
    `status` is the gRPC status name, `detail` its text. RESOURCE_EXHAUSTED is either
    etcd's NOSPACE alarm or our own receive bound; the rest stays a plain StateError."""
    quoted = _quote(detail)
    if status == "RESOURCE_EXHAUSTED" and _NOSPACE in detail:
        return SpaceExceededError(
            f"etcd ({member}) is out of space: its backend quota is reached and the NOSPACE "
            "alarm is raised, so it refuses every write (nothing was written). An operator "
            "must free space and clear the alarm: compact old revisions (etcdctl compact "
            "REV), defragment every member (etcdctl defrag), or raise "
            "--quota-backend-bytes; then run `etcdctl alarm disarm`")
    if status == "RESOURCE_EXHAUSTED" and "larger than max" in detail:
        return ReplyTooLargeError(
            f"etcd ({member}) sent a reply over replication.max_reply_bytes ({max_reply} "
            f"bytes); it was dropped. Either an entity's state has grown past that bound "
            f"(raise it, or keep entities smaller) or the member misbehaves ({quoted})")
    return StateError(f"etcd ({member}) refused the operation: {status} {quoted}")


def tls_hint(failure: str, tls: EtcdTls | None) -> str:
    """What a member's connection failure means for TLS, for the operator, or nothing.
    gRPC words a handshake failure as BoringSSL does: CERTIFICATE_VERIFY_FAILED is our
    side refusing the member's certificate; a bad-certificate alert, a corrupted unwrap
    or a required-certificate alert is the member refusing ours."""
    if tls is None:
        return ""
    if "CERTIFICATE_VERIFY_FAILED" in failure or "certificate verify failed" in failure:
        return (" (TLS: the member's certificate is not signed by replication.tls.ca_file "
                "or does not name the endpoint's host)")
    if any(mark in failure for mark in _PEER_REFUSED):
        held = "the client certificate was refused" if tls.cert_chain is not None else (
            "no client certificate was given (replication.tls.cert_file, key_file)")
        return f" (TLS: the member refused this node: {held})"
    return ""


def _status(exc: BaseException) -> str:
    """The gRPC status name behind an aetcd error (aetcd keeps the RPC error as cause)."""
    cause = exc.__cause__
    return cause.code().name if isinstance(cause, grpc.aio.AioRpcError) else "UNKNOWN"


def _quote(text: str) -> str:
    """Another party's text, made printable and bounded before it enters an error."""
    clean = "".join(c if c.isprintable() else "?" for c in text[:_DETAIL_CHARS])
    return clean + ("..." if len(text) > _DETAIL_CHARS else "")


def _credentials(tls: EtcdTls) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(root_certificates=tls.ca,
                                        private_key=tls.private_key,
                                        certificate_chain=tls.cert_chain)


class _TlsClient(aetcd.Client):  # type: ignore[misc]
    """aetcd's client on a TLS channel. aetcd 1.0.0 builds its channel with
    `insecure_channel` inside `connect` and offers no credentials parameter, so this
    `connect` is aetcd's own (without username/password auth, which we do not use) with
    a secure channel; every RPC method is inherited unchanged."""

    _is_connecting: bool
    """Set by aetcd's constructor: a connect is under way (others wait for it)."""

    def __init__(self, credentials: grpc.ChannelCredentials, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._credentials = credentials

    async def connect(self) -> None:
        """Open the TLS channel and the stubs once; concurrent callers wait for it."""
        if self._connected.is_set():
            return
        if self._is_connecting:
            await asyncio.wait_for(self._connected.wait(), self._connect_wait_timeout)
            return
        try:
            self._is_connecting = True
            self.channel = aetcd.rpc.secure_channel(f"{self._host}:{self._port}",
                                                    self._credentials,
                                                    options=list(self._options.items()))
            self.kvstub = aetcd.rpc.KVStub(self.channel)
            self.clusterstub = aetcd.rpc.ClusterStub(self.channel)
            self.leasestub = aetcd.rpc.LeaseStub(self.channel)
            self.maintenancestub = aetcd.rpc.MaintenanceStub(self.channel)
            self._watcher = aetcd.watcher.Watcher(aetcd.rpc.WatchStub(self.channel),
                                                  timeout=self._timeout,
                                                  metadata=self.metadata)
            self._connected.set()
        finally:
            self._is_connecting = False


__all__ = ["DEFAULT_MAX_REPLY", "ENTITY_RANGE", "MAX_STAMP_LEASES", "MAX_TXN_BYTES",
           "MAX_TXN_OPS", "STAMP_LEASE_STEP", "ChangeTooLargeError", "EntityRead",
           "EtcdSettings", "EtcdState", "EtcdTls", "MercuryError",
           "ReplicationUnavailableError", "ReplyTooLargeError", "SpaceExceededError",
           "check_txn_size", "refusal", "retry_pause", "stamp_lease_plan", "tls_hint"]


# ========================================================================================
# Watches and leases: the primitives membership needs (node liveness on leases, the
# cluster-ID key every node watches) and read caches kept current by watching. This block
# is self-contained; it uses EtcdState only for its settings, its member failover (`_run`)
# and its clock. Keys here are relative to the settings' prefix, as for `EtcdState.get`.
# Its imports are here so that the block applies as one piece.
# ========================================================================================

from collections import deque  # noqa: E402
from enum import Enum  # noqa: E402

from aetcd import rpc  # noqa: E402

WATCH_KEEPALIVE_MS = 10_000
"""gRPC keepalive ping interval on a watch's own channel: a member that froze (its TCP
connection open, its stream silent) is given up after this plus WATCH_KEEPALIVE_TIMEOUT_MS
and the watch resumes at another member. etcd refuses pings more often than every 5 s."""
WATCH_KEEPALIVE_TIMEOUT_MS = 3_000
WATCH_MAX_MESSAGE = 4 * 1024 * 1024
"""Bytes one watch response may have. Watches ask etcd to fragment responses larger than
its --max-request-bytes plus 512 KiB (2 MiB by default; one event can pass it by at most
its own size), so this bounds what one watch buffers."""
MAX_LEASE_TTL = 86_400
_REQUIRE_LEADER = (("hasleader", "true"),)
"""etcd then closes the stream of a member that lost its leader (a member cut off in a
minority would otherwise keep a stream open that delivers nothing): the watch moves on."""
_RESUMABLE = frozenset({"UNAVAILABLE", "CANCELLED", "UNKNOWN", "INTERNAL",
                        "DEADLINE_EXCEEDED", "ABORTED"})
"""gRPC status codes of a broken stream (a member died, restarted, lost its leader)."""


class WatchCompactedError(StateError):
    """The revision a watch had to continue from was compacted away: events before
    `compact_revision` are lost, so re-read the keys and watch from that read's revision
    + 1. Nothing was delivered out of order; the watch is closed."""

    code = ErrorCode.WATCH_COMPACTED

    def __init__(self, message: str, compact_revision: int) -> None:
        super().__init__(message)
        self.compact_revision = compact_revision


class LeaseExpiredError(StateError):
    """A lease etcd no longer holds (it expired, or was revoked), or that could not be
    refreshed before it ran out: the keys put on it are gone or about to go."""

    code = ErrorCode.LEASE_EXPIRED


class EventKind(Enum):
    """What happened to a watched key."""

    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One change of one key, as etcd committed it (key relative to the prefix)."""

    kind: EventKind
    key: bytes
    value: bytes
    """The new value; empty for a delete."""
    mod_revision: int
    """The revision of the change (for a delete, of the deletion)."""
    version: int
    """The key's version after the change (0 after a delete): what a CAS names."""


@dataclass(frozen=True, slots=True)
class KeyRead:
    """One key as read (key relative to the prefix)."""

    key: bytes
    value: bytes
    mod_revision: int
    version: int
    lease: int


@dataclass(frozen=True, slots=True)
class RangeRead:
    """Keys read at one revision: watch from `revision + 1` to miss nothing after it."""

    revision: int
    entries: tuple[KeyRead, ...]


@dataclass(frozen=True, slots=True)
class Lease:
    """A granted etcd lease."""

    id: int
    ttl: int
    """Seconds granted."""
    granted_at: float
    """The state's clock when the grant was sent (the lease runs out no earlier than
    `granted_at + ttl` unless refreshed)."""


async def read_range(state: EtcdState, key: bytes, *, prefix: bool = False) -> RangeRead:
    """`key` (or every key under it) and the revision of the read (linearizable)."""
    full = state.settings.prefix + key
    got = await state._run(lambda c: c.get_range(full, _range_end(full, prefix)))
    cut = len(state.settings.prefix)
    entries = tuple(KeyRead(bytes(kv.key)[cut:], bytes(kv.value), int(kv.mod_revision),
                            int(kv.version), int(kv.lease)) for kv in got)
    return RangeRead(int(got.header.revision), entries)


class EtcdWatch:
    """Every change to `key` (or every key under it, `prefix=True`, or every key from it
    up to `end`, exclusive, relative to the prefix too) from `start_revision` on, in
    revision order, each exactly once, across broken streams.

    Why not aetcd's watch: it buffers without bound and ends at the first broken stream.
    Here each watch has its own channel to one member; when the stream breaks (the member
    died, restarted or lost its leader) the watch reopens at the next member from where it
    stopped (a revision etcd split across responses is resumed after the events already
    delivered), so nothing is missed or repeated. If no member takes the watch within the
    settings' timeout: ReplicationUnavailableError. If etcd compacted the revision to
    resume from: WatchCompactedError (re-read, then watch again). The next response is read
    only when the last one was consumed, so a watch holds at most one response (bounded by
    WATCH_MAX_MESSAGE); a slow consumer holds etcd back through gRPC flow control."""

    def __init__(self, state: EtcdState, key: bytes, start_revision: int, *,
                 prefix: bool = False, end: bytes | None = None) -> None:
        if start_revision < 1:
            raise ValueError("a watch starts at revision 1 or later")
        if prefix and end is not None:
            raise ValueError("a watch covers a prefix or a range, not both")
        self._state = state
        self._cut = len(state.settings.prefix)
        self._full = state.settings.prefix + key
        self._end = (_range_end(self._full, prefix) if end is None
                     else state.settings.prefix + end)
        self._rev = start_revision - 1
        """The revision of the last event delivered (start_revision - 1 before any)."""
        self._at_rev = 0
        """Events of revision `_rev` delivered (a revision may come in fragments)."""
        self._whole = True
        """Whether revision `_rev` was delivered whole (resume after it, not within)."""
        self._drop = 0
        self._pending: deque[WatchEvent] = deque()
        self._buffered = 0
        self._index = state._current
        self._channel: Any = None
        self._call: Any = None
        self._stream: Any = None
        self._closed = False
        self.reopened = 0
        """How many times a broken stream was resumed (for metrics and tests)."""

    @property
    def endpoint(self) -> tuple[str, int] | None:
        """The member the watch is connected to now, if any."""
        return None if self._stream is None else self._state.settings.endpoints[self._index]

    @property
    def next_revision(self) -> int:
        """The revision the watch would resume from."""
        return self._rev + 1 if self._whole else self._rev

    @property
    def buffered_bytes(self) -> int:
        """Bytes of received events not yet delivered (at most one response)."""
        return self._buffered

    def __aiter__(self) -> EtcdWatch:
        return self

    async def __anext__(self) -> WatchEvent:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            await self._fill()
        event = self._pending.popleft()
        self._buffered -= len(event.key) + len(event.value)
        return event

    async def __aenter__(self) -> EtcdWatch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop watching and close the channel (idempotent)."""
        self._closed = True
        self._pending.clear()
        self._buffered = 0
        await self._disconnect()

    async def _fill(self) -> None:
        """Read one response into the buffer; reopen elsewhere if the stream broke."""
        if self._stream is None:
            await self._open()
        try:
            response = await anext(self._stream)
        except StopAsyncIteration:
            await self._broken()
            return
        except rpc.AioRpcError as exc:
            if exc.code().name not in _RESUMABLE:
                await self.close()
                raise StateError(f"etcd ended the watch: {exc.details()}") from None
            await self._broken()
            return
        await self._take(response)

    async def _take(self, response: Any) -> None:
        if response.compact_revision:
            compacted = int(response.compact_revision)
            await self.close()
            raise WatchCompactedError(
                f"etcd compacted its history up to revision {compacted}; the watch needed "
                f"revision {self.next_revision}: re-read, then watch again", compacted)
        if response.canceled:
            await self.close()
            raise StateError(f"etcd cancelled the watch: {response.cancel_reason}")
        if not response.events:
            if not response.created and self._whole:
                # A progress notification: nothing under the key until this revision.
                self._rev, self._at_rev = max(self._rev, int(response.header.revision)), 0
            return
        for raw in response.events:
            revision = int(raw.kv.mod_revision)
            if self._drop and revision == self._rev:
                self._drop -= 1  # delivered before the stream broke mid-revision
                continue
            self._drop = 0
            self._at_rev = self._at_rev + 1 if revision == self._rev else 1
            self._rev = revision
            self._pending.append(self._event(raw))
        self._whole = not response.fragment

    def _event(self, raw: Any) -> WatchEvent:
        kind = EventKind.DELETE if raw.type == rpc.Event.EventType.DELETE else EventKind.PUT
        kv = raw.kv
        event = WatchEvent(kind, bytes(kv.key)[self._cut:], bytes(kv.value),
                           int(kv.mod_revision), int(kv.version))
        self._buffered += len(event.key) + len(event.value)
        return event

    async def _broken(self) -> None:
        await self._disconnect()
        self._index = (self._index + 1) % len(self._state.settings.endpoints)
        self.reopened += 1

    async def _open(self) -> None:
        """Open the watch at the current member, else the next ones, until the timeout."""
        settings = self._state.settings
        deadline = self._state._clock() + settings.timeout
        last, rounds = "no member tried", 0
        while True:
            try:
                await asyncio.wait_for(self._connect(), settings.attempt_timeout)
                return
            except (TimeoutError, StopAsyncIteration, rpc.AioRpcError) as exc:
                host, port = settings.endpoints[self._index]
                last = f"{host}:{port}: {type(exc).__name__}"
                await self._disconnect()
            self._index = (self._index + 1) % len(settings.endpoints)
            if self._state._clock() >= deadline:
                await self.close()
                raise ReplicationUnavailableError(
                    f"no etcd member took the watch within {settings.timeout} s (last: "
                    f"{last}); it would resume from revision {self.next_revision}")
            if self._index == 0:
                rounds += 1
                await asyncio.sleep(min(0.05 * 2 ** rounds, 0.5))

    async def _connect(self) -> None:
        await self._disconnect()  # an attempt cut short (timeout, cancel) left its channel
        host, port = self._state.settings.endpoints[self._index]
        options = [("grpc.keepalive_time_ms", WATCH_KEEPALIVE_MS),
                   ("grpc.keepalive_timeout_ms", WATCH_KEEPALIVE_TIMEOUT_MS),
                   ("grpc.http2.max_pings_without_data", 0),
                   ("grpc.max_receive_message_length",
                    max(WATCH_MAX_MESSAGE, self._state.settings.max_reply_bytes))]
        tls = self._state.settings.tls
        self._channel = (rpc.insecure_channel(f"{host}:{port}", options=options)
                         if tls is None else
                         rpc.secure_channel(f"{host}:{port}", _credentials(tls),
                                            options=options))
        self._call = rpc.WatchStub(self._channel).Watch(metadata=_REQUIRE_LEADER)
        await self._call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=self._full, range_end=self._end, start_revision=self.next_revision,
            progress_notify=True, fragment=True)))
        stream = self._call.__aiter__()
        created = await anext(stream)
        self._drop = 0 if self._whole else self._at_rev
        self._stream = stream
        await self._take(created)

    async def _disconnect(self) -> None:
        call, channel = self._call, self._channel
        self._call = self._channel = self._stream = None
        if call is not None:
            call.cancel()
        if channel is not None:
            await bounded_close(channel.close())


async def grant_lease(state: EtcdState, ttl: int) -> Lease:
    """A new lease of `ttl` seconds (1..MAX_LEASE_TTL)."""
    if not 1 <= ttl <= MAX_LEASE_TTL:
        raise ValueError(f"a lease lasts 1..{MAX_LEASE_TTL} s, not {ttl}")
    sent = state._clock()
    got = await state._run(lambda c: c.lease(ttl))
    return Lease(int(got.id), int(got.ttl), sent)


async def refresh_lease(state: EtcdState, lease: Lease) -> int:
    """Renew `lease` once; returns the seconds it now has. LeaseExpiredError if etcd no
    longer holds it."""
    reply = await state._run(lambda c: c.refresh_lease(lease.id))
    ttl = 0 if reply is None else int(reply.TTL)
    if ttl <= 0:
        raise LeaseExpiredError(f"etcd no longer holds lease {lease.id:x} (it expired or "
                                "was revoked); its keys are gone")
    return ttl


async def keep_alive(state: EtcdState, lease: Lease, interval: float | None = None) -> None:
    """Renew `lease` every `interval` seconds (default a third of its TTL) until cancelled.

    Returns never; raises LeaseExpiredError when etcd says the lease is gone or when no
    renewal succeeded before it would have run out (etcd unreachable that long): the
    caller grants a new lease and puts its keys again."""
    every = interval if interval is not None else max(lease.ttl / 3, 0.1)
    expires = lease.granted_at + lease.ttl
    while True:
        await asyncio.sleep(every)
        started = state._clock()
        if started >= expires:
            raise LeaseExpiredError(f"lease {lease.id:x} ran out before it could be renewed")
        try:
            ttl = await asyncio.wait_for(refresh_lease(state, lease), expires - started)
        except (TimeoutError, ReplicationUnavailableError):
            continue  # retried at the next interval while the lease may still hold
        expires = started + ttl


async def revoke_lease(state: EtcdState, lease: Lease) -> None:
    """End `lease` now, deleting its keys; a lease already gone is not an error."""

    async def revoke(client: Any) -> None:
        try:
            await client.revoke_lease(lease.id)
        except aetcd.exceptions.ClientError as exc:
            if type(exc) is not aetcd.exceptions.ClientError or "not found" not in str(exc):
                raise

    await state._run(revoke)


async def put_on_lease(state: EtcdState, key: bytes, value: bytes, lease: Lease) -> int:
    """Put `key` bound to `lease` (it vanishes when the lease ends); returns the revision."""
    full = state.settings.prefix + key
    done = await state._run(lambda c: c.put(full, value, lease=lease.id))
    return int(done.header.revision)


__all__ += ["MAX_LEASE_TTL", "EtcdWatch", "EventKind", "KeyRead", "Lease", "LeaseExpiredError",
            "RangeRead", "WatchCompactedError", "WatchEvent", "grant_lease", "keep_alive",
            "put_on_lease", "read_range", "refresh_lease", "revoke_lease"]
