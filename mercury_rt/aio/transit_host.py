"""One node's transit security, wired to its ports: keys, both responders, the caller.

The ends themselves are core/transit/ends.py's (the simulator builds the same ones;
their responders rotate and erase keys as time passes); `serve` is the path of every
incoming request: open, hand the plaintext to the node, seal the node's
reply under the same session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.aio.endpoint import TransportEndpoint
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
from mercury_rt.core.transport import Addr

_log = structlog.get_logger("mercury_rt.transit")

Reply = bytes | Awaitable[bytes]
Handle = Callable[[Path, bytes, "Channel | None"], NodeAction]
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

    def serve(self, path: Path, payload: bytes, peer: Addr, endpoint: TransportEndpoint,
              handle: Handle, carry_out: CarryOut) -> Reply:
        """The answer to one request payload from `peer` on `path`'s port."""
        responder = self.responder(path)
        outcome = responder.open(payload, peer, time.time())
        match outcome:
            case Answered():
                return outcome.reply
            case Dropped():
                _log.debug("transit_dropped", code=int(outcome.code), reason=outcome.reason)
                return b""
            case Plain():
                return carry_out(handle(path, outcome.payload, None))
            case Opened():
                channel = outcome.channel
                if channel.address_validated:
                    endpoint.validate_address(peer)
                result = carry_out(handle(path, outcome.payload, channel))
                if isinstance(result, bytes):
                    return responder.seal(channel, result)
                return self._seal_later(responder, channel, result)

    @staticmethod
    async def _seal_later(responder: TransitResponder, channel: Channel,
                          result: Awaitable[bytes]) -> bytes:
        return responder.seal(channel, await result)
