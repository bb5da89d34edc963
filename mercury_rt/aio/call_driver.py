"""Carrying out one outgoing call on a running node: the asyncio host of `OutgoingCall`.

The core decides every step of a call (route, failover, redirect, stamp retry); this
module only does what a step says: run it on this node's own core, send it over the
intra- or inter-cluster endpoint, or mint a stamp off the event loop. It knows nothing of
routing rules; it knows the clock, the sockets and the call's deadline.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import assert_never

from carbon.error_codes import ErrorCode, MercuryError, known_code
from mercury_rt.aio.endpoint import CallError, TransportEndpoint
from mercury_rt.aio.secure_calls import SecureCaller
from mercury_rt.core.identity import Eid
from mercury_rt.core.node import (
    CallStep,
    FetchKeysStep,
    GaveUp,
    GotReply,
    HostStep,
    NeedStamp,
    NodeAction,
    NodeCore,
    NodeReply,
    OutgoingCall,
    RunHereStep,
    SendInterStep,
    SendIntraStep,
    pay_for,
)
from mercury_rt.core.routing import Path

MAX_DECODED = 4096


class NodeCallError(MercuryError):
    """A call from this node that did not succeed; `code` is the wire error code."""

    def __init__(self, message: str, code: ErrorCode | int,
                 required_bits: int | None = None) -> None:
        known = known_code(int(code))
        super().__init__(message, known)
        self.raw_code = int(code)
        self.required_bits = required_bits


ServeLocal = Callable[[NodeAction], bytes | Awaitable[bytes]]
"""How the node carries out its core's action for a call that runs here."""


class CallDriver:
    """Carries out one node's calls: each `OutgoingCall` step until the call ends.

    `endpoint` gives the node's endpoint for a path (bound once the node has started);
    `serve_local` carries out the core's action for a call to an entity on this node.
    """

    def __init__(self, core: NodeCore, endpoint: Callable[[Path], TransportEndpoint],
                 serve_local: ServeLocal, caller: SecureCaller) -> None:
        self.core = core
        self._endpoint = endpoint
        self._serve_local = serve_local
        self._caller = caller

    async def run(self, call: OutgoingCall, deadline: float) -> NodeReply:
        """The call's reply once it finishes; raises NodeCallError when it gives up or
        `deadline` (event-loop time) passes."""
        step = call.start()
        while True:
            match step:
                case GotReply():
                    return step.reply
                case GaveUp():
                    raise NodeCallError(step.message, step.code)
                case (RunHereStep() | SendIntraStep() | SendInterStep() | FetchKeysStep()
                      | NeedStamp()):
                    if deadline <= _now():
                        raise NodeCallError("call deadline passed", ErrorCode.TIMEOUT)
                    step = await self._carry_out(call, step, deadline)
                case _:
                    assert_never(step)

    async def _carry_out(self, call: OutgoingCall, step: HostStep,
                         deadline: float) -> CallStep:
        remaining = max(deadline - _now(), 0.001)
        match step:
            case NeedStamp():
                payment = await asyncio.get_running_loop().run_in_executor(
                    None, pay_for, step, time.time(), os.urandom(12))
                return call.on_stamp(payment)
            case RunHereStep():
                action = self.core.handle_local(step.payload, call.request_key, deadline,
                                                time.time(), decoded=step.decoded)
                result = self._serve_local(action)
                raw = result if isinstance(result, bytes) else await result
                await asyncio.sleep(0)  # a local call may finish without ever yielding: let
                return call.on_reply(raw)  # the loop serve the network between such calls
            case SendIntraStep():
                return await self._send(call, step, remaining, None)
            case SendInterStep():
                return await self._send(call, step, remaining,
                                        min(step.answer_timeout, remaining))
            case FetchKeysStep():
                return await self._fetch(call, step, remaining)
            case _:
                assert_never(step)

    async def _send(self, call: OutgoingCall, step: SendIntraStep | SendInterStep,
                    remaining: float, answer: float | None) -> CallStep:
        """A node message, in a transit session with the chosen node."""
        if isinstance(step, SendIntraStep):
            path, cluster = Path.INTRA_CLUSTER, self.core.master_hash
        else:
            path, cluster = Path.INTER_CLUSTER, step.cluster
        try:
            raw = await self._caller.call(self._endpoint(path), step.address, cluster,
                                          step.payload, timeout=remaining,
                                          answer_timeout=answer, algorithm=step.algorithm)
        except CallError as exc:
            return call.on_failure(int(exc.code), exc.message, time.monotonic())
        return call.on_reply(raw)

    async def _fetch(self, call: OutgoingCall, step: FetchKeysStep,
                     remaining: float) -> CallStep:
        """A key fetch goes in clear: it precedes any trust in the target cluster, and
        the caller verifies the signed answer itself."""
        try:
            raw = await self._endpoint(Path.INTER_CLUSTER).call(
                step.address, step.payload, timeout=remaining,
                answer_timeout=min(step.answer_timeout, remaining))
        except CallError as exc:
            return call.on_failure(int(exc.code), exc.message, time.monotonic())
        return call.on_reply(raw)


def unwrap(reply: NodeReply) -> bytes:
    """A call's result payload; raises NodeCallError for an error reply."""
    if reply.ok:
        return reply.payload or b""
    raise NodeCallError(reply.message or "call refused", reply.code, reply.required_bits)


class TargetCache:
    """Decoded target EIDs of recent calls (decoding a signed EID costs ~50 us)."""

    def __init__(self, limit: int = MAX_DECODED) -> None:
        self._decoded: OrderedDict[bytes, Eid] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._decoded)

    def decode(self, data: bytes) -> Eid:
        """The EID `data` encodes; raises NodeCallError if it is not one."""
        eid = self._decoded.get(data)
        if eid is not None:
            self._decoded.move_to_end(data)
            return eid
        try:
            eid = Eid.decode(data)
        except MercuryError as exc:
            raise NodeCallError(f"not a valid EID: {exc.message}", exc.code) from None
        self._decoded[data] = eid
        if len(self._decoded) > self._limit:
            self._decoded.popitem(last=False)
        return eid


def _now() -> float:
    return asyncio.get_running_loop().time()
