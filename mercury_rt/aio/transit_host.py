"""One node's transit security, wired to its ports: keys, both responders, the caller.

Builds the node's transit keys (rotated on their lifetime while the node runs), a
responder per port (the intra-cluster one admits only sessions opened by certified nodes
of this cluster, checked at once; the inter-cluster one leaves the proof to the gate,
which checks it against the request's source EID) and the initiator every outgoing node
message uses. `serve` is the path of every incoming request: open, hand the plaintext to
the node, seal the node's reply under the same session.
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
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import TransitInitiator
from mercury_rt.core.transit.node_keys import NodeTransitKeys
from mercury_rt.core.transit.proof import NodeCredential, PeerProof
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
        now = time.time()
        master = core.master_hash
        sources = core.sources
        self.keys = NodeTransitKeys(cluster_key, master, os.urandom, now)

        def own_cluster(proof: PeerProof) -> bool:
            return proof.check(master, sources.cluster_key)

        boot_ms = int(now * 1000)
        self.inter = TransitResponder(self.keys, master, token_secret=os.urandom(32),
                                      boot_ms=boot_ms, random_bytes=os.urandom)
        self.intra = TransitResponder(self.keys, master, token_secret=os.urandom(32),
                                      boot_ms=boot_ms, random_bytes=os.urandom,
                                      check_at_open=own_cluster, refuse_in_clear=False)
        credential = NodeCredential(master, identity.node_id, identity.key, identity.cert)
        self.initiator = TransitInitiator(credential, TransitCertVerifier(sources.cluster_key),
                                          os.urandom)
        self.caller = SecureCaller(self.initiator)

    def responder(self, path: Path) -> TransitResponder:
        """The responder of one port."""
        return self.intra if path is Path.INTRA_CLUSTER else self.inter

    def serve(self, path: Path, payload: bytes, peer: Addr, endpoint: TransportEndpoint,
              handle: Handle, carry_out: CarryOut) -> Reply:
        """The answer to one request payload from `peer` on `path`'s port."""
        now = time.time()
        if self.keys.due(now):
            self.keys.rotate(now)
        responder = self.responder(path)
        outcome = responder.open(payload, peer, now)
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
