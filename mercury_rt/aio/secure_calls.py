"""Node messages to other nodes, each in a transit session: the asyncio host of
`SecureExchange`.

The core decides everything (key queries, first datagrams, retries after a restart or a
key rotation, what an answer proves); this only sends each datagram over the endpoint and
hands the answer back, with the wall clock the core's timestamps need.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from mercury_rt.aio.endpoint import CallError, TransportEndpoint
from mercury_rt.core.transit import AlgorithmId
from mercury_rt.core.transit.exchange import Done, Failed, SecureExchange, Send
from mercury_rt.core.transit.initiator import TransitInitiator
from mercury_rt.core.transport import Addr

DEFAULT_ALGORITHM = int(AlgorithmId.X25519_AES256GCM)
OPEN_WAIT = 0.5
"""Longest a call waits for another call's first datagram to open the session it could
share (the first call's reply carries the keys, so a slow handler would hold it up)."""


class SecureCaller:
    """Sends node messages in sessions from one node (one initiator for both ports).

    Concurrent first calls to one node wait for the first one's session instead of each
    opening their own (64 first datagrams at once would cost the node 64 key agreements
    and evict each other's sessions from its per-caller bound)."""

    def __init__(self, initiator: TransitInitiator) -> None:
        self.initiator = initiator
        self._opening: dict[tuple[Addr, int], asyncio.Future[None]] = {}

    async def call(self, endpoint: TransportEndpoint, address: Addr, master_hash: bytes,
                   payload: bytes, *, timeout: float | None = None,
                   answer_timeout: float | None = None,
                   algorithm: int = DEFAULT_ALGORITHM) -> bytes:
        """The node's authenticated reply; raises CallError with the failure's code."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        key = (address, algorithm)
        opening = self._opening.get(key)
        if opening is not None:
            wait = min(x for x in (timeout, answer_timeout, OPEN_WAIT) if x is not None)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(opening), wait)
        elif not self.initiator.has_session(address, algorithm, time.time(), master_hash):
            self._opening[key] = loop.create_future()
            try:
                return await self._exchange(endpoint, address, master_hash, payload,
                                            deadline, answer_timeout, algorithm)
            finally:
                self._opening.pop(key).set_result(None)
        return await self._exchange(endpoint, address, master_hash, payload, deadline,
                                    answer_timeout, algorithm)

    async def _exchange(self, endpoint: TransportEndpoint, address: Addr, master_hash: bytes,
                        payload: bytes, deadline: float | None, answer_timeout: float | None,
                        algorithm: int) -> bytes:
        loop = asyncio.get_running_loop()
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
