"""Node messages to other nodes, each in a transit session: the asyncio host of
`SecureExchange`.

The core decides everything (key queries, first datagrams, retries after a restart or a
key rotation, what an answer proves); this only sends each datagram over the endpoint and
hands the answer back, with the wall clock the core's timestamps need.
"""

from __future__ import annotations

import asyncio
import time

from mercury_rt.aio.endpoint import CallError, TransportEndpoint
from mercury_rt.core.transit import AlgorithmId
from mercury_rt.core.transit.exchange import Done, Failed, SecureExchange, Send
from mercury_rt.core.transit.initiator import TransitInitiator
from mercury_rt.core.transport import Addr

DEFAULT_ALGORITHM = int(AlgorithmId.X25519_AES256GCM)


class SecureCaller:
    """Sends node messages in sessions from one node (one initiator for both ports)."""

    def __init__(self, initiator: TransitInitiator) -> None:
        self.initiator = initiator

    async def call(self, endpoint: TransportEndpoint, address: Addr, master_hash: bytes,
                   payload: bytes, *, timeout: float | None = None,
                   answer_timeout: float | None = None,
                   algorithm: int = DEFAULT_ALGORITHM) -> bytes:
        """The node's authenticated reply; raises CallError with the failure's code."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        exchange = SecureExchange(self.initiator, address, master_hash, algorithm, payload)
        step = exchange.start(time.time())
        while True:
            match step:
                case Done():
                    return step.reply
                case Failed():
                    raise CallError(step.message, step.code)
                case Send():
                    remaining = None if deadline is None else max(deadline - loop.time(),
                                                                  0.001)
                    answer = await endpoint.call(address, step.datagram, timeout=remaining,
                                                 answer_timeout=answer_timeout)
                    step = exchange.answered(answer, time.time())
