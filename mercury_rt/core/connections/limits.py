"""The connections a node serves: bounds per entity, per peer and in total, the
reservations it grants, and which ones went idle.

An open is admitted here before its connection handler runs (so a peer cannot make a
node run handlers for connections it will refuse to keep), and released when the open
fails, the connection closes, or it stays idle past the timeout. The record that
dispatch reads lives in the entity's state (lithium/connections.py); this table only
bounds what peers can make a node hold, with a coded refusal for each bound.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from carbon.error_codes import ErrorCode
from mercury_rt.core.connections.wire import NO_RESERVATION, Reservation

Peer = tuple[bytes, bytes]
"""A peer entity: (cluster master hash, cluster-local part)."""


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one node serves at most."""

    total: int = 65_536
    per_entity: int = 4_096
    per_peer: int = 64
    """Connections one peer entity holds to all entities of this node."""
    idle_timeout: float = 600.0
    reservable: int = 100_000_000
    """Bytes per second this node grants to all reservations together."""


@dataclass(slots=True)
class _Served:
    peer: Peer
    granted: Reservation
    last_used: float
    uses: int = 0
    established: bool = False
    """Its open succeeded once: a later failed re-open must not drop it."""


class ServedConnections:
    """Connections this node serves, keyed by (entity, connection id)."""

    def __init__(self, limits: ConnectionLimits = ConnectionLimits()) -> None:
        self.limits = limits
        self._served: dict[tuple[bytes, bytes], _Served] = {}
        self._per_entity: Counter[bytes] = Counter()
        self._per_peer: Counter[Peer] = Counter()
        self.reserved = 0
        self.refused: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._served)

    def admit(self, entity: bytes, connection_id: bytes, peer: Peer, asked: Reservation,
              now: float) -> Reservation | ErrorCode:
        """Take an open (or re-establishment) from `peer`: the reservation granted, or
        the code of the bound it would break (the same peer opening an id again keeps
        its place and is granted again; another peer's id is 442)."""
        key = (entity, connection_id)
        known = self._served.get(key)
        if known is not None:
            if known.peer != peer:
                return self._refuse(ErrorCode.CONNECTION_ID_IN_USE)
            known.last_used = now
            self.reserved -= known.granted.rate  # granted again for what it asks now
            known.granted = self._grant(asked)
            self.reserved += known.granted.rate
            return known.granted
        limits = self.limits
        if len(self._served) >= limits.total:
            return self._refuse(ErrorCode.TOO_MANY_CONNECTIONS)
        if self._per_entity[entity] >= limits.per_entity:
            return self._refuse(ErrorCode.TOO_MANY_ENTITY_CONNECTIONS)
        if self._per_peer[peer] >= limits.per_peer:
            return self._refuse(ErrorCode.TOO_MANY_PEER_CONNECTIONS)
        granted = self._grant(asked)
        self._served[key] = _Served(peer, granted, now)
        self._per_entity[entity] += 1
        self._per_peer[peer] += 1
        self.reserved += granted.rate
        return granted

    def _grant(self, asked: Reservation) -> Reservation:
        """What is left of the reservable rate, up to what was asked."""
        left = max(0, self.limits.reservable - self.reserved)
        if asked.rate <= left:
            return asked
        if left == 0:
            return NO_RESERVATION
        return Reservation(left, min(asked.burst, max(left, 1)))

    def _refuse(self, code: ErrorCode) -> ErrorCode:
        self.refused[code.name.lower()] += 1
        return code

    def touch(self, entity: bytes, connection_id: bytes, peer: Peer, now: float) -> bool:
        """A use of the connection by `peer`: it is not idle (False: not in this table, or
        held by another peer, whose uses dispatch refuses with 441 and must not keep the
        connection alive)."""
        known = self._served.get((entity, connection_id))
        if known is None or known.peer != peer:
            return False
        known.last_used = now
        known.uses += 1
        return True

    def traffic(self, entity: bytes, connection_id: bytes) -> int | None:
        """Uses of a connection served here since it was opened (None: not served here)."""
        known = self._served.get((entity, connection_id))
        return None if known is None else known.uses

    def granted(self, entity: bytes, connection_id: bytes) -> Reservation:
        """The reservation granted to a connection served here (none if unknown): the
        serving end keeps it too when it calls back."""
        known = self._served.get((entity, connection_id))
        return NO_RESERVATION if known is None else known.granted

    def statistics(self) -> dict[str, int]:
        """Counters for metrics: connections served, rate reserved, refusals by kind."""
        return {"served": len(self._served), "reserved_rate": self.reserved,
                **{f"refused_{name}": n for name, n in self.refused.items()}}

    def opened(self, entity: bytes, connection_id: bytes) -> None:
        """The open's handler accepted: the connection is established."""
        known = self._served.get((entity, connection_id))
        if known is not None:
            known.established = True

    def open_failed(self, entity: bytes, connection_id: bytes) -> bool:
        """An open was refused: forget the entry only if no open of it ever succeeded.
        (Releasing an established connection here would let its peer open a fresh one in
        its place by sending a failing re-open, while the first stays in the entity's
        state: more connections than the bounds allow.)"""
        known = self._served.get((entity, connection_id))
        if known is None or known.established:
            return False
        return self.release(entity, connection_id)

    def release(self, entity: bytes, connection_id: bytes) -> bool:
        """Forget a connection (closed, failed to open, or idle)."""
        known = self._served.pop((entity, connection_id), None)
        if known is None:
            return False
        self._per_entity[entity] -= 1
        if self._per_entity[entity] <= 0:
            del self._per_entity[entity]
        self._per_peer[known.peer] -= 1
        if self._per_peer[known.peer] <= 0:
            del self._per_peer[known.peer]
        self.reserved -= known.granted.rate
        return True

    def idle(self, now: float) -> list[tuple[bytes, bytes]]:
        """Release and return every (entity, connection id) idle past the timeout."""
        timeout = self.limits.idle_timeout
        gone = [key for key, known in self._served.items()
                if now - known.last_used >= timeout]
        for entity, connection_id in gone:
            self.release(entity, connection_id)
        return gone
