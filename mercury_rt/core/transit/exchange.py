"""One node message's secure exchange with one node, as a small state machine.

Every host (the asyncio node, the simulator) sends a node message the same way: maybe a
key query first, then the datagram; on a `Retry` (the node restarted, rotated its key,
asks for a token or for another clock) prepare again. This machine holds that loop so no
host re-implements it: `start` and `answered` return what to do next, `Send` a datagram
and wait for its answer, `Done` with the authenticated reply, or `Failed` with a code.
Retries are bounded, so a peer cannot keep a caller looping.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.transit.initiator import (
    Addr,
    Finished,
    NeedKey,
    Pending,
    Prepared,
    TransitInitiator,
)

MAX_ROUNDS = 5
"""Datagrams one exchange may send. An honest node may refuse each reason once: a session
message it no longer holds (703), then a first datagram for its key (702), a token (713)
and the clock (705), before the one that opens; or a key query first, then those."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send `datagram` to the exchange's address; report the answer to `answered`."""

    datagram: bytes


@dataclass(frozen=True, slots=True)
class Done:
    """The node's authenticated reply payload."""

    reply: bytes


@dataclass(frozen=True, slots=True)
class Failed:
    """The exchange failed with this code; nothing unauthenticated was believed."""

    code: ErrorCode
    message: str


ExchangeStep = Send | Done | Failed


class SecureExchange:
    """Sends one node message to `address` of cluster `master_hash` under `algorithm`."""

    def __init__(self, initiator: TransitInitiator, address: Addr, master_hash: bytes,
                 algorithm: int, payload: bytes) -> None:
        self._initiator = initiator
        self.address = address
        self._master_hash = master_hash
        self._algorithm = algorithm
        self._payload = payload
        self._pending: Pending | None = None
        self._rounds = 0
        self._retry_of: bytes | None = None
        """Once a first datagram of this exchange was refused, every later one reuses its
        session id (initiator.Retry)."""

    def start(self, now: float) -> ExchangeStep:
        """The first datagram to send."""
        return self._next(now)

    def answered(self, answer: bytes, now: float) -> ExchangeStep:
        """What the node's answer to the last datagram means."""
        init = self._initiator
        try:
            if self._pending is None:
                init.learn_key(self.address, self._master_hash, answer, now)
                return self._next(now)
            result = init.finish(self._pending, answer, now)
        except MercuryError as exc:
            return Failed(exc.code, exc.message)
        if isinstance(result, Finished):
            return Done(result.reply)
        if result.session_id is not None:
            self._retry_of = result.session_id
        return self._next(now)

    def _next(self, now: float) -> ExchangeStep:
        if self._rounds >= MAX_ROUNDS:
            return Failed(ErrorCode.UNKNOWN_SESSION,
                          "the node kept refusing to open a session; try another node")
        self._rounds += 1
        try:
            step = self._initiator.prepare(self.address, self._master_hash, self._algorithm,
                                           self._payload, now, self._retry_of)
        except MercuryError as exc:
            return Failed(exc.code, exc.message)
        if isinstance(step, NeedKey):
            self._pending = None
            return Send(step.query)
        assert isinstance(step, Prepared)
        self._pending = step.pending
        return Send(step.datagram)
