"""Invocation: run a dispatched handler in a transaction, bounded in time and number.

Per call: take a concurrency slot (or answer HANDLERS_BUSY when too many wait), open a
snapshot, dispatch, run the handler against staged state, check its reply type, commit
its writes in one short write transaction (re-running it on an optimistic conflict), and
wait for the group-commit barrier before acknowledging. Every failure becomes a typed
Reply; a handler's own exception is logged with its traceback under an incident number
and the caller sees only the code and that number, never internals.

How handlers run: async handlers are awaited under a timeout. Sync handlers run inline
(cheap, but they cannot be interrupted, so they must not block); `blocking=True` ones run
in a bounded thread pool under the timeout, and a thread that overruns is abandoned: its
staged writes are discarded and its snapshot closes when it finally returns.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, runtime_checkable

import structlog

from carbon import cbor
from carbon.error_codes import ErrorCode, MercuryError
from carbon.metadata import answer_metadata
from carbon.protocol_spec import OperationKind, SpecRegistry
from carbon.types import PayloadTypeError, dumps_typed
from lithium.bindings import read_interface_map
from lithium.calls import NO_CALLS, EntityCalls
from lithium.commit import GroupCommitter
from lithium.connection_dispatch import dispatch_on_connection
from lithium.connection_invoke import (
    accept_connection,
    check_open,
    close_connection,
    opened_reply,
)
from lithium.context import CLOSE, USE, EntityState, HandlerError, IncomingCall, RequestContext
from lithium.dispatch import Dispatch, RouteCache, dispatch, dispatch_cached
from lithium.registry import HandlerRegistry, RegisteredHandler
from tungsten.api import Snapshot, StateStore
from tungsten.errors import ConflictError, KeyTooLargeError
from tungsten.remote import read_image
from tungsten.staged import EntityChanges, StagedState


@dataclass(frozen=True, slots=True)
class InvokeLimits:
    """Bounds on handler work (see docs/developer-guide.md)."""

    max_concurrent: int = 256
    max_waiting: int = 4096
    timeout: float = 5.0
    max_conflict_retries: int = 3
    blocking_threads: int = 8


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one call: typed reply bytes, or an error code and safe message."""

    payload: bytes | None = None
    code: ErrorCode | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        """True for a successful reply."""
        return self.code is None


class StateElsewhere(Protocol):
    """An entity's state held by another node (remote-state routing), as the shell
    reaches it: fetch an image to run against, send the changes back."""

    async def fetch(self) -> Snapshot:
        """A snapshot of the entity's whole state; MercuryError if unreachable/too big."""
        ...

    async def commit(self, changes: EntityChanges) -> None:
        """Apply durably; ConflictError if a read changed, MercuryError otherwise."""
        ...


@runtime_checkable
class RecordsReplies(StateElsewhere, Protocol):
    """State elsewhere that also keeps at-most-once request records (replicated state):
    the reply commits with the writes, and a request that already committed is answered
    from its record instead of running again."""

    @property
    def stored_reply(self) -> bytes | None:
        """After `fetch`: the reply this request already committed with, if it did."""
        ...

    async def commit_reply(self, changes: EntityChanges, reply: bytes) -> bytes:
        """Commit with `reply` recorded; the reply to answer (the stored one if the
        request committed meanwhile). ConflictError: re-run."""
        ...


def _records_replies(elsewhere: StateElsewhere | None) -> TypeGuard[RecordsReplies]:
    """isinstance(elsewhere, RecordsReplies), with None answered first. Why: a runtime
    protocol check walks the protocol's members (~10-20 µs on Python 3.11), and every
    call served from this node's own state (`elsewhere` None) passed through it."""
    return elsewhere is not None and isinstance(elsewhere, RecordsReplies)


CallsFor = Callable[[IncomingCall], EntityCalls]
"""How the node gives each invocation its `ctx.calls` (bound to the called entity)."""
ExceptionHook = Callable[[BaseException], None]
"""Told of every exception a handler raised (tests re-raise it: mercury_rt.testing)."""


class _HandlerFailedError(Exception):
    """Internal: the handler raised, timed out or returned the wrong type."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.message)
        self.reply = reply


class Invoker:
    """Runs calls for one node: dispatch, handler, transaction, durability."""

    def __init__(self, store: StateStore, registry: HandlerRegistry, specs: SpecRegistry, *,
                 limits: InvokeLimits | None = None, clock: Callable[[], float] = time.monotonic,
                 committer: GroupCommitter | None = None, logger: Any = None,
                 calls: CallsFor | None = None, incident_prefix: str | None = None,
                 on_handler_exception: ExceptionHook | None = None) -> None:
        self.limits = limits or InvokeLimits()
        self._calls_for = calls
        self._on_exception = on_handler_exception
        # Incident ids name the node and this run of it (a restarted node counts from 1
        # again), so an operator told "incident node-a-4f2c1e-7" knows where to look.
        self.incident_prefix = incident_prefix or os.urandom(3).hex()
        self._store, self._registry, self._specs = store, registry, specs
        self.routes = RouteCache(specs)
        self._clock = clock
        self._committer = committer or GroupCommitter(store)
        self._log = logger if logger is not None else structlog.get_logger("lithium")
        self._slots = asyncio.Semaphore(self.limits.max_concurrent)
        self._threads = ThreadPoolExecutor(self.limits.blocking_threads,
                                           thread_name_prefix="lithium-handler")
        self._waiting = 0
        self._incidents = 0
        self.counters: Counter[str] = Counter()

    async def invoke(self, call: IncomingCall, elsewhere: StateElsewhere | None = None) -> Reply:
        """Answer one call; never raises for anything the call or its handler does.

        With `elsewhere`, the entity's state is on another node: the handler runs here
        against an image fetched from it, and its changes are committed there.
        """
        if self._waiting >= self.limits.max_waiting:
            return self._count(Reply(code=ErrorCode.HANDLERS_BUSY,
                                     message="too many calls waiting for a handler; retry"))
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            return self._count(await self._invoke_retrying(call, elsewhere))
        except Exception as exc:  # our own bug: report it, keep serving
            incident = self._next_incident()
            self._log.error("invoke_internal_error", incident=incident, exc_info=exc)
            return self._count(Reply(code=ErrorCode.STATE_FAILURE, message="internal error; "
                                     f"the operator can find incident {incident} in "
                                     "the node log"))
        finally:
            self._slots.release()

    async def _invoke_retrying(self, call: IncomingCall,
                               elsewhere: StateElsewhere | None) -> Reply:
        for _ in range(self.limits.max_conflict_retries):
            try:
                return await self._attempt(call, elsewhere)
            except ConflictError:
                self.counters["conflict_retries"] += 1
        try:
            return await self._attempt(call, elsewhere)
        except ConflictError as exc:
            return Reply(code=exc.code, message="state kept changing under the handler; retry")

    async def _attempt(self, call: IncomingCall, elsewhere: StateElsewhere | None) -> Reply:
        try:
            snapshot = self._store.snapshot() if elsewhere is None else await elsewhere.fetch()
        except MercuryError as exc:  # e.g. the map is growing: the caller retries
            return Reply(code=exc.code, message=exc.message)
        if _records_replies(elsewhere) and elsewhere.stored_reply is not None:
            snapshot.close()
            self.counters["stored_replies"] += 1
            return Reply(payload=elsewhere.stored_reply)
        staged = StagedState(snapshot)
        try:
            try:
                payload = await self._dispatched(call, snapshot, staged,
                                                 cached=elsewhere is None)
            except _HandlerFailedError as failed:
                return failed.reply
            except ConflictError:
                raise
            except MercuryError as exc:
                return Reply(code=exc.code, message=exc.message)
            if elsewhere is not None:
                return await self._commit_elsewhere(staged, call, payload, elsewhere)
            return await self._commit(staged, payload)
        finally:
            # Closing is safe even if an abandoned blocking handler still runs: the
            # staged state is sealed first, and closed snapshots refuse further reads.
            staged.discard()
            snapshot.close()

    async def _dispatched(self, call: IncomingCall, snapshot: Snapshot,
                          staged: StagedState, *, cached: bool) -> bytes:
        """Dispatch (to the entity's interfaces, or to a connection's map) and run. The
        route cache serves only snapshots of this node's own store (`cached`): its
        versions number that store's changes, not another store's."""
        connection = call.connection
        if connection is None:
            found = self._dispatch(snapshot, call, cached)
        elif connection.form == CLOSE:
            return close_connection(staged, call)
        elif connection.form == USE:
            found = dispatch_on_connection(snapshot, self._specs, self._registry, call)
        else:
            check_open(snapshot, call)
            found = self._dispatch(snapshot, call, cached)
        return await self._run(found, call, snapshot, staged)

    def _dispatch(self, snapshot: Snapshot, call: IncomingCall, cached: bool) -> Dispatch:
        if cached:
            return dispatch_cached(snapshot, self.routes, self._registry, call)
        return dispatch(snapshot, self._specs, self._registry, call)

    async def _commit(self, staged: StagedState, payload: bytes) -> Reply:
        """Commit staged writes; acknowledge only once the group commit covers them."""
        try:
            seq = staged.commit(self._store)
        except ConflictError:
            raise
        except MercuryError as exc:
            return Reply(code=exc.code, message=f"the handler's writes were not saved: "
                         f"{exc.message}")
        if seq is None:
            return Reply(payload=payload)
        self.counters["writes"] += 1
        try:
            await self._committer.wait_durable(seq)
        except MercuryError as exc:
            return Reply(code=exc.code, message="the handler's writes were committed but "
                         f"could not be made durable: {exc.message}")
        return Reply(payload=payload)

    async def _commit_elsewhere(self, staged: StagedState, call: IncomingCall, payload: bytes,
                                elsewhere: StateElsewhere) -> Reply:
        """Send the handler's changes to the node holding the state (ConflictError: rerun).
        A one-way message keeps its record even when it wrote nothing: its run (and the
        calls it made) must not happen again when it is redelivered through another node."""
        records = _records_replies(elsewhere)
        if not staged.has_writes and not (records and call.kind is OperationKind.MESSAGE
                                          and call.request_id is not None):
            return Reply(payload=payload)
        try:
            if _records_replies(elsewhere):
                payload = await elsewhere.commit_reply(staged.changes(call.entity), payload)
            else:
                await elsewhere.commit(staged.changes(call.entity))
        except ConflictError:
            raise
        except MercuryError as exc:
            return Reply(code=exc.code, message=exc.message)
        self.counters["remote_writes"] += 1
        return Reply(payload=payload)

    def state_image(self, entity: bytes) -> Reply:
        """Every record of `entity`, for a node running a call on it (remote state)."""
        try:
            snapshot = self._store.snapshot()
            try:
                return Reply(payload=cbor.dumps(read_image(snapshot, entity)))
            finally:
                snapshot.close()
        except MercuryError as exc:
            return Reply(code=exc.code, message=exc.message)

    async def apply_changes(self, changes: EntityChanges) -> Reply:
        """Commit what a handler on another node did to an entity whose state is here:
        re-checked and applied like a local commit, acknowledged once durable."""
        self.counters["remote_commits"] += 1
        try:
            self._store.apply(changes.apply)
        except ConflictError as exc:
            return Reply(code=exc.code, message=exc.message)
        except MercuryError as exc:
            return Reply(code=exc.code, message=f"the changes were not saved: {exc.message}")
        try:
            await self._committer.wait_durable(self._store.commit_seq)
        except MercuryError as exc:
            return Reply(code=exc.code, message="the changes were committed but could not be "
                         f"made durable: {exc.message}")
        return Reply(payload=b"")

    async def _run(self, found: Dispatch, call: IncomingCall, snapshot: Snapshot,
                   staged: StagedState) -> bytes:
        """Run the handler (or answer endpoint 0) and encode its reply as declared."""
        op = found.route.operation
        if found.handler is None:
            imap = read_interface_map(snapshot, call.entity)
            return dumps_typed(op.reply, answer_metadata(op.number, found.payload, imap,
                                                         self._specs))
        ctx = RequestContext(
            entity=call.entity, interface=found.route.interface, endpoint=call.endpoint,
            operation=op, persona=call.persona, caller=call.caller,
            originator=call.originator or call.caller, connection_id=call.connection_id,
            transit=call.transit, deadline=call.deadline, state=EntityState(staged, call.entity),
            calls=NO_CALLS if self._calls_for is None else self._calls_for(call),
            reestablished=call.connection is not None and call.connection.reestablished)
        result = await self._call_handler(found.handler, ctx, found.payload)
        offered = None
        if op.kind is OperationKind.CONNECTION:
            offered = accept_connection(staged, call, result, self._specs)
            result = result.reply
        try:
            reply = dumps_typed(op.reply, result)
        except PayloadTypeError as exc:
            raise self._failure(found.handler, ErrorCode.REPLY_TYPE_MISMATCH, exc) from None
        return reply if offered is None else opened_reply(call, reply, offered)

    async def _call_handler(self, handler: RegisteredHandler, ctx: RequestContext,
                            payload: Any) -> Any:
        timeout = self._timeout(ctx.deadline)
        try:
            if handler.is_async:
                return await asyncio.wait_for(handler.fn(ctx, payload), timeout)
            if not handler.blocking:
                return handler.fn(ctx, payload)
            future = self._threads.submit(handler.fn, ctx, payload)
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
        except TimeoutError:
            raise self._failure(handler, ErrorCode.HANDLER_TIMEOUT, None) from None
        except (HandlerError, KeyTooLargeError) as exc:  # a chosen answer, or what the
            self._tell(exc)  # handler wrote: not an internal failure
            raise _HandlerFailedError(Reply(code=exc.code, message=exc.message)) from None
        except Exception as exc:  # the handler's bug must not take the node down
            raise self._failure(handler, ErrorCode.HANDLER_FAILED, exc) from None

    def _timeout(self, deadline: float | None) -> float:
        timeout = self.limits.timeout
        if deadline is not None:
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise _HandlerFailedError(Reply(code=ErrorCode.DEADLINE_EXPIRED,
                                           message="the call's deadline passed before its "
                                           "handler could start"))
            timeout = min(timeout, remaining)
        return timeout

    def _next_incident(self) -> str:
        self._incidents += 1
        return f"{self.incident_prefix}-{self._incidents}"

    def _tell(self, exc: BaseException) -> None:
        if self._on_exception is not None:
            self._on_exception(exc)

    def _failure(self, handler: RegisteredHandler, code: ErrorCode,
                 exc: BaseException | None) -> _HandlerFailedError:
        incident = self._next_incident()
        if exc is not None:
            self._tell(exc)
        self._log.error("handler_failed", handler_id=handler.handler_id, code=code.name,
                        incident=incident, exc_info=exc)
        what = {ErrorCode.HANDLER_TIMEOUT: "took too long",
                ErrorCode.REPLY_TYPE_MISMATCH: "returned a reply of the wrong type"}
        text = what.get(code, "failed")
        return _HandlerFailedError(Reply(code=code, message=f"the handler {text}; the entity's "
                                    f"operator can find incident {incident} in the "
                                    "node log"))

    def _count(self, reply: Reply) -> Reply:
        self.counters["calls"] += 1
        if reply.code is not None:
            self.counters[f"error_{reply.code.name.lower()}"] += 1
        return reply

    def statistics(self) -> dict[str, int]:
        """Counters for metrics: calls, writes, errors by code, fsync batches."""
        return {**self.counters, "syncs": self._committer.syncs, "waiting": self._waiting}

    def close(self) -> None:
        """Stop worker threads (abandoned handlers keep theirs until they return)."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._committer.close()
