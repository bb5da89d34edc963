"""One node's transit security, wired to its ports: keys, both responders, the caller.

The ends themselves are core/transit/ends.py's (the simulator builds the same ones;
their responders rotate and erase keys as time passes); `serve` is the path of every
incoming request: open, hand the plaintext to the node, seal the node's
reply under the same session.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Awaitable, Callable
from typing import assert_never

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.aio.endpoint import TransportEndpoint, first_step
from mercury_rt.aio.secure_calls import SecureCaller
from mercury_rt.core.membership import NodeIdentity
from mercury_rt.core.node import NodeAction, NodeCore
from mercury_rt.core.routing import Path
from mercury_rt.core.transit.ends import build_transit_ends
from mercury_rt.core.transit.responder import (
    Answered,
    Channel,
    Dropped,
    Opened,
    Plain,
    TransitResponder,
)
from mercury_rt.core.transport import RequestReceived

_log = structlog.get_logger("mercury_rt.transit")

Reply = bytes | Awaitable[bytes]
Handle = Callable[[Path, bytes, "Channel | None", RequestReceived], NodeAction]
"""The node's action for what transit opened from `event` (None: a cleartext query)."""
CarryOut = Callable[[NodeAction], Reply]


class NodeTransit:
    """Transit keys, responders and the secure caller of one node."""

    def __init__(self, core: NodeCore, cluster_key: Ed25519PrivateKey,
                 identity: NodeIdentity) -> None:
        ends = build_transit_ends(cluster_key, core.master_hash, core.sources.cluster_key,
                                  identity, os.urandom, time.time())
        self.keys, self.inter, self.intra = ends.keys, ends.inter, ends.intra
        self.initiator = ends.initiator
        self.caller = SecureCaller(self.initiator)

    def responder(self, path: Path) -> TransitResponder:
        """The responder of one port."""
        return self.intra if path is Path.INTRA_CLUSTER else self.inter

    def serve(self, path: Path, event: RequestReceived, endpoint: TransportEndpoint,
              handle: Handle, carry_out: CarryOut) -> Reply:
        """The answer to one request from `event.peer` on `path`'s port. A request in an
        established session whose reply is ready in its first step is answered without a
        coroutine around it (the endpoint then sends the REPLY alone); a session's first
        datagram's answer is left a coroutine, which the endpoint acknowledges before
        running it (its `ack_first`)."""
        responder = self.responder(path)
        peer = event.peer
        outcome = responder.open(event.payload, peer, time.time())
        if not isinstance(outcome, Opened):
            return self._unopened(path, event, outcome, handle, carry_out)
        channel = outcome.channel
        if channel.address_validated:
            endpoint.validate_address(peer)
        result = carry_out(handle(path, outcome.payload, channel, event))
        if not channel.first and inspect.iscoroutine(result):
            result = first_step(result)
        if isinstance(result, bytes):
            return responder.seal(channel, result)
        return self._seal_later(responder, channel, result)

    @staticmethod
    def _unopened(path: Path, event: RequestReceived, outcome: Answered | Dropped | Plain,
                  handle: Handle, carry_out: CarryOut) -> Reply:
        match outcome:
            case Answered():
                return outcome.reply
            case Dropped():
                _log.debug("transit_dropped", code=int(outcome.code), reason=outcome.reason)
                return b""
            case Plain():
                return carry_out(handle(path, outcome.payload, None, event))
            case _:
                assert_never(outcome)

    @staticmethod
    async def _seal_later(responder: TransitResponder, channel: Channel,
                          result: Awaitable[bytes]) -> bytes:
        return responder.seal(channel, await result)
