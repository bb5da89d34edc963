"""Connections on a running node: open, use both ways, close (the asyncio shell).

Every decision is the pure state machine's (core/connections/machine.py); this module
moves its outputs onto the node's call path: a use is an ordinary call carrying the
connection field (docs/protocol.md 5.9), so it gets routing, failover, the gate and
transit like any call. When the node serving the far end is gone, the call fails over
to another mirror, which answers 440; the machine says Reopen, and the opener sends its
open again under the same id with the re-established flag before retrying the use: the
caller sees the reply, not the failover.

The opener's map is written to its entity's record before the open leaves, so the
server can call back while the open is still on its way. Every call of a connection uses
its id as the call's sticky key, so while the far entity's mirrors stay the same, the
open and every use reach the same mirror (the serving side keys its forwarding choice
on the id too).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from carbon.protocol_spec import SpecRegistry
from lithium.connections import (
    OPENER,
    ConnectionRecord,
    Offer,
    forget_connection,
    offered,
    own_map,
    read_connection,
    record_connection,
)
from lithium.context import CLOSE, OPEN, IncomingCall
from mercury_rt.aio.call_driver import NodeCallError, TargetCache
from mercury_rt.core.connections import (
    NO_RESERVATION,
    Answered,
    AwaitReopen,
    Close,
    CloseAnswered,
    Connection,
    ConnectionField,
    ConnectionForm,
    ConnectionSettings,
    Ended,
    Go,
    Input,
    Opened,
    OpenFailed,
    Output,
    PeerClosed,
    Phase,
    Refused,
    Reopen,
    Reservation,
    ReservationNotKept,
    Send,
    SendClose,
    ServedConnections,
    Tick,
    Wait,
    decode_open_reply,
    opening,
    served,
    step,
)
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import MAX_MESSAGE_TEXT, CallRequest, NodeReply
from tungsten.api import StateStore, WriteView

RunCall = Callable[[CallRequest, float], Awaitable[NodeReply]]
"""The node's way of carrying out one prepared call (NodeRuntime.run_call)."""

CLOSE_ENDPOINT, CLOSE_OPERATION, CLOSE_PAYLOAD = 0, 0, b"\xf6"
"""A close names no operation: endpoint 0, operation 0, payload null (5.9)."""
MAX_ATTEMPTS = 4
"""Times one use is sent (re-establishments and reservation waits in between)."""
SWEEP_EVERY = 10.0
"""Seconds between idle sweeps (the timeouts themselves are minutes)."""


class ConnectionHandle:
    """One end of an open connection. `request`, `send`, `close`; `connection_id` is
    the same at both ends; `reply` is what the open answered (the opener's handle)."""

    def __init__(self, node: NodeConnections, entity: bytes, peer: bytes, state: Connection,
                 settings: ConnectionSettings, *, peer_offers: tuple[tuple[int, str], ...] = (),
                 reply: bytes = b"", reopen: CallRequest | None = None) -> None:
        self._node, self.entity, self.peer = node, entity, peer
        self.state, self.settings = state, settings
        self.peer_offers, self.reply = peer_offers, reply
        self._reopen_request = reopen
        self._reopening: asyncio.Future[None] | None = None
        self.reservation_reports: list[ReservationNotKept] = []
        """Each time a re-established connection was granted less than it asked."""

    @property
    def connection_id(self) -> bytes:
        """The connection's id, known at both ends."""
        return self.state.connection_id

    @property
    def counters(self) -> dict[str, int]:
        """Per-connection traffic (sent, answered, bytes, failures, re-establishments)."""
        c = self.state.counters
        return {"sent": c.sent, "sent_bytes": c.sent_bytes, "answered": c.answered,
                "answered_bytes": c.answered_bytes, "failed": c.failed,
                "reopened": c.reopened, "waited": c.waited}

    def _feed(self, event: Input) -> tuple[Output, ...]:
        self.state, outputs = step(self.state, event, self.settings)
        for output in outputs:
            if isinstance(output, ReservationNotKept):
                self.reservation_reports.append(output)
            elif isinstance(output, Ended):
                self._node.forget(self)
        return outputs

    async def request(self, endpoint: int, operation: int, payload: bytes, *,
                      timeout: float = 30.0) -> bytes:
        """Call a REQUEST operation the peer offers on this connection."""
        return await self._use(endpoint, operation, payload, timeout, one_way=False)

    async def send(self, endpoint: int, operation: int, payload: bytes, *,
                   timeout: float = 30.0) -> None:
        """Send a MESSAGE the peer offers on this connection (acknowledged, run once)."""
        await self._use(endpoint, operation, payload, timeout, one_way=True)

    async def _use(self, endpoint: int, operation: int, payload: bytes, timeout: float,
                   one_way: bool) -> bytes:
        node = self._node
        deadline = _loop_time() + timeout
        message_id = node.rng.randbytes(16) if one_way else None
        request = CallRequest(self._peer_eid(), endpoint, operation, payload, self.entity,
                              self.connection_id, message_id=message_id,
                              connection=ConnectionField(ConnectionForm.USE,
                                                         self.connection_id))
        for _ in range(MAX_ATTEMPTS):
            await self._admitted(len(payload), deadline)
            reply = await call_on(node, request, max(deadline - _loop_time(), 0.001))
            code = None if reply.ok else reply.code
            outputs = self._feed(Answered(code, len(reply.payload or b""), _now()))
            if code is None:
                return reply.payload or b""
            if not any(isinstance(o, Reopen | AwaitReopen) for o in outputs):
                raise NodeCallError(reply.message or "call refused", code)
            await self._reopen()
            if one_way:  # the node that answered 440 remembers the id as delivered
                request = replace(request, message_id=node.rng.randbytes(16))
        raise NodeCallError("the connection could not be re-established",
                            ErrorCode.CONNECTION_UNKNOWN)

    async def _admitted(self, size: int, deadline: float) -> None:
        """Wait until the machine lets a send of `size` bytes go."""
        while True:
            outputs = self._feed(Send(size, _now()))
            if any(isinstance(o, Go) for o in outputs):
                return
            for output in outputs:
                if isinstance(output, Refused):
                    raise NodeCallError("the connection is closed", output.code)
                if isinstance(output, Wait):
                    pause = output.until - _now()
                    if _loop_time() + pause > deadline:
                        raise NodeCallError("the reservation did not allow this send "
                                            "before the deadline", ErrorCode.TIMEOUT)
                    await asyncio.sleep(pause)
                if isinstance(output, AwaitReopen):
                    await self._reopen()

    async def _reopen(self) -> None:
        """Carry out a Reopen, or wait for the one under way (one that was cancelled is
        started again while the machine still says REOPENING)."""
        if self._reopening is None or self._reopening.done():
            if self.state.phase is not Phase.REOPENING:
                raise NodeCallError("the connection is not open", ErrorCode.CONNECTION_UNKNOWN)
            self._reopening = asyncio.ensure_future(self._send_reopen())
        await asyncio.shield(self._reopening)

    async def _send_reopen(self) -> None:
        request = self._reopen_request
        if request is None:
            self._feed(OpenFailed(int(ErrorCode.CONNECTION_UNKNOWN), _now()))
            return
        again = replace(request, connection=replace(request.connection, reestablish=True)
                        if request.connection else None)
        try:
            reply = await call_on(self._node, again, 30.0)
        except MercuryError as exc:
            self._feed(OpenFailed(int(exc.code), _now()))
            return
        if not reply.ok:
            self._feed(OpenFailed(reply.code, _now()))
            return
        try:
            opened = decode_open_reply(reply.payload or b"")
        except MercuryError as exc:
            self._feed(OpenFailed(int(exc.code), _now()))
            return
        self._feed(Opened(opened.granted, _now()))

    def idle_check(self) -> None:
        """Feed the clock: an idle connection closes (its close is sent in the background)."""
        if any(isinstance(o, SendClose) for o in self._feed(Tick(_now()))):
            self._node.spawn(self._send_close())

    async def close(self) -> None:
        """Close the connection at both ends (the peer's record is deleted too)."""
        if any(isinstance(o, SendClose) for o in self._feed(Close(_now()))):
            await self._send_close()

    async def _send_close(self) -> None:
        node = self._node
        request = CallRequest(self._peer_eid(), CLOSE_ENDPOINT, CLOSE_OPERATION,
                              CLOSE_PAYLOAD, self.entity, self.connection_id,
                              connection=ConnectionField(ConnectionForm.CLOSE,
                                                         self.connection_id))
        await call_on(node, request, 10.0)  # answered or not, it is closed here
        node.store.apply(lambda txn: forget_connection(txn, self.entity, self.connection_id))
        self._feed(CloseAnswered(_now()))

    def peer_closed(self) -> None:
        """The peer closed the connection (its close deleted our record)."""
        self._feed(PeerClosed(_now()))

    def _peer_eid(self) -> Eid:
        return self._node.targets.decode(self.peer)



class NodeConnections:
    """The connections of one node's entities: the handles opened here and the handles
    of connections served here (for calls back to the opener)."""

    def __init__(self, run_call: RunCall, rng: random.Random, store: StateStore,
                 specs: SpecRegistry, served_here: ServedConnections,
                 eid_for: Callable[[bytes], bytes],
                 settings: ConnectionSettings | None = None) -> None:
        self.run_call, self.rng, self.store, self.specs = run_call, rng, store, specs
        self.served_here, self.eid_for = served_here, eid_for
        self.settings = settings or ConnectionSettings()
        self._handles: dict[tuple[bytes, bytes], ConnectionHandle] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self.targets = TargetCache()
        self._sweeper: asyncio.Future[None] | None = None
        self.sweep_every = SWEEP_EVERY

    def __len__(self) -> int:
        return len(self._handles)

    async def open(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   caller: bytes, offers: Mapping[int, Offer] | None = None,
                   reservation: Reservation = NO_RESERVATION,
                   timeout: float = 30.0) -> ConnectionHandle:
        """Call a CONNECTION operation on `target` as local entity `caller`, offering it
        `offers` (connection endpoint -> Offer) to call back; the handle once accepted.
        Raises NodeCallError with the refusal's code."""
        node = self
        eid = self.targets.decode(target)
        cid = os.urandom(16)
        own = own_map(offers or {}, self.specs)
        peer = eid.principal()
        record = ConnectionRecord(OPENER, Principal(peer.cluster, peer.local), target, (), own)
        node.store.apply(lambda txn: record_connection(txn, caller, cid, record))
        request = CallRequest(eid, endpoint, operation, payload, caller, cid,
                              connection=ConnectionField(ConnectionForm.OPEN, cid,
                                                         offered(own), False, reservation))
        handle = ConnectionHandle(node, caller, target, opening(cid, reservation, _now()),
                                  self.settings, reopen=request)
        try:
            reply = await call_on(node, request, timeout)
            if not reply.ok:
                raise NodeCallError(reply.message or "connection refused", reply.code)
            answer = decode_open_reply(reply.payload or b"")
        except MercuryError as exc:
            node.store.apply(lambda txn: forget_connection(txn, caller, cid))
            raise NodeCallError(exc.message, exc.code) from None
        node.store.apply(lambda txn: record_connection(
            txn, caller, cid, replace(record, peer_offers=answer.offers)))
        handle.peer_offers, handle.reply = answer.offers, answer.reply
        handle._feed(Opened(answer.granted, _now()))
        self._handles[(caller, cid)] = handle
        self._start_sweeping()
        return handle

    def served(self, entity: bytes, connection_id: bytes) -> ConnectionHandle:
        """The serving entity's handle on a connection it accepted (to call the opener
        back); NodeCallError 440 if this node holds no record of it."""
        known = self._handles.get((entity, connection_id))
        if known is not None:
            return known
        with self.store.reading() as view:
            record = read_connection(view, entity, connection_id)
        if record is None:
            raise NodeCallError("this entity has no such connection here",
                                ErrorCode.CONNECTION_UNKNOWN)
        peer = record.peer_eid or self.eid_for(record.peer.local)
        handle = ConnectionHandle(self, entity, peer,
                                  served(connection_id,
                                         self.served_here.granted(entity, connection_id),
                                         _now()),
                                  self.settings, peer_offers=record.peer_offers)
        self._handles[(entity, connection_id)] = handle
        self._start_sweeping()
        return handle

    def handles(self) -> list[ConnectionHandle]:
        """Every handle this node holds."""
        return list(self._handles.values())

    def forget(self, handle: ConnectionHandle) -> None:
        """Drop a handle whose connection ended."""
        self._handles.pop((handle.entity, handle.connection_id), None)

    def after_invoke(self, call: IncomingCall, ok: bool) -> None:
        """A close the peer sent ran here: end our handle of that connection. An open
        accepted here starts the idle sweep."""
        connection, cid = call.connection, call.connection_id
        if connection is None or cid is None or not ok:
            return
        if connection.form == OPEN:
            self._start_sweeping()
        if connection.form != CLOSE:
            return
        handle = self._handles.get((call.entity, cid))
        if handle is not None:
            handle.peer_closed()

    def sweep(self) -> None:
        """Idle timeouts: handles idle past the settings' timeout close; connections
        served here idle past the node's limit lose their records."""
        for handle in list(self._handles.values()):
            handle.idle_check()
        gone = self.served_here.idle(time.time())  # the core's clock: wall
        if gone:
            def forget_all(txn: WriteView) -> None:
                for entity, cid in gone:
                    forget_connection(txn, entity, cid)
            self.store.apply(forget_all)

    def _start_sweeping(self) -> None:
        """The idle sweep runs while this node has connections (started by the first)."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.ensure_future(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_every)
            self.sweep()

    def stop(self) -> None:
        """Stop the idle sweep (the node is stopping)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def spawn(self, work: object) -> None:
        """Run a coroutine in the background, kept until it ends."""
        assert asyncio.iscoroutine(work)
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def call_on(node: NodeConnections, request: CallRequest, timeout: float) -> NodeReply:
    """Carry out one call of a connection on `node`; a call no node took is the reply
    carrying its code (the machine decides what that code means for the connection)."""
    try:
        return await node.run_call(request, timeout)
    except NodeCallError as exc:
        return NodeReply(exc.raw_code, message=exc.message[:MAX_MESSAGE_TEXT])


def _now() -> float:
    return time.monotonic()


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


__all__ = ["ConnectionHandle", "NodeConnections", "NodeReply"]
