"""The connection field of a node request (key 10 of the body) and the open reply.

A connection rides on ordinary node requests (docs/protocol.md 5.9, 6.9): the body's key
10 says whether the operation opens a connection (its operation is a CONNECTION one),
runs on one (dispatched to the target entity's handler map for that connection, not its
published interfaces), or closes one. Decoding is strict and bounded: a peer's field is
at most MAX_OFFERS interfaces of symbols at most MAX_SYMBOL bytes, and anything else is
WRONG_TYPE, so nothing a peer sends here can grow memory or raise anything but a
MercuryError.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from carbon import cbor
from carbon.cbor import Limits
from carbon.error_codes import ErrorCode, MercuryError
from carbon.symbols import Symbol, SymbolError
from lithium.connections import encode_open_reply

CONNECTION_KEY = 10
ID_BYTES = 16
MAX_OFFERS = 16
MAX_SYMBOL = 255
MAX_ENDPOINT = 0xFFFF
MAX_RATE = 2**32 - 1
_REPLY_LIMITS = Limits(max_bytes=2 * 1024 * 1024 + 4096, max_depth=6, max_items=256)

Offers = tuple[tuple[int, str], ...]
"""The interfaces one end offers on a connection: (connection endpoint, symbol text),
endpoints ascending and unique."""


class ConnectionWireError(MercuryError):
    """A connection field or open reply that does not follow docs/protocol.md 5.9."""

    code = ErrorCode.WRONG_TYPE


class ConnectionForm(IntEnum):
    """What a request does to a connection."""

    OPEN = 0
    USE = 1
    CLOSE = 2


@dataclass(frozen=True, slots=True)
class Reservation:
    """A bandwidth reservation: `rate` bytes per second sustained, `burst` bytes at once.
    All zero is none."""

    rate: int = 0
    burst: int = 0

    @property
    def none(self) -> bool:
        """Whether nothing is reserved."""
        return self.rate == 0


NO_RESERVATION = Reservation()


@dataclass(frozen=True, slots=True)
class ConnectionField:
    """Key 10 of a node request body: the form, the connection id and, to open, what
    the opener offers, whether this re-establishes a known connection and the
    reservation it asks for."""

    form: ConnectionForm
    connection_id: bytes
    offers: Offers = ()
    reestablish: bool = False
    reservation: Reservation = NO_RESERVATION

    def to_value(self) -> list[Any]:
        """The CBOR value of key 10."""
        if self.form is not ConnectionForm.OPEN:
            return [int(self.form), self.connection_id]
        return [0, self.connection_id, offers_to_value(self.offers), self.reestablish,
                self.reservation.rate, self.reservation.burst]


def offers_to_value(offers: Offers) -> list[list[Any]]:
    """[[endpoint, symbol], ...]."""
    return [[endpoint, symbol] for endpoint, symbol in offers]


def offers_from_value(value: object) -> Offers:
    """Strictly parse an offers list; raises ConnectionWireError."""
    if not isinstance(value, list) or len(value) > MAX_OFFERS:
        raise ConnectionWireError(f"offers must be a list of at most {MAX_OFFERS} interfaces")
    offers: list[tuple[int, str]] = []
    for item in value:
        if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                and 0 < item[0] <= MAX_ENDPOINT and type(item[1]) is str
                and len(item[1].encode()) <= MAX_SYMBOL):
            raise ConnectionWireError("an offer is [endpoint 1-65535, interface symbol]")
        if offers and item[0] <= offers[-1][0]:
            raise ConnectionWireError("offered endpoints must be ascending and unique")
        try:
            Symbol(item[1])
        except SymbolError as exc:
            raise ConnectionWireError(f"offered interface: {exc.message}") from None
        offers.append((item[0], item[1]))
    return tuple(offers)


def decode_field(value: object) -> ConnectionField:
    """Parse key 10; raises ConnectionWireError for anything but the three forms."""
    if not isinstance(value, list) or not value or type(value[0]) is not int:
        raise ConnectionWireError("key 10 is [form, connection id, ...]")
    form = value[0]
    if len(value) < 2 or type(value[1]) is not bytes or len(value[1]) != ID_BYTES:
        raise ConnectionWireError(f"a connection id is {ID_BYTES} bytes")
    cid = value[1]
    if form in (ConnectionForm.USE, ConnectionForm.CLOSE) and len(value) == 2:
        return ConnectionField(ConnectionForm(form), cid)
    if form != ConnectionForm.OPEN or len(value) != 6:
        raise ConnectionWireError("key 10 is [0, id, offers, reestablish, rate, burst], "
                                  "[1, id] or [2, id]")
    reestablish, rate, burst = value[3], value[4], value[5]
    if type(reestablish) is not bool or not _rate(rate) or not _rate(burst):
        raise ConnectionWireError("reestablish is a bool, rate and burst are uint32")
    assert isinstance(rate, int) and isinstance(burst, int)
    return ConnectionField(ConnectionForm.OPEN, cid, offers_from_value(value[2]),
                           reestablish, Reservation(rate, burst))


def _rate(value: object) -> bool:
    return type(value) is int and 0 <= value <= MAX_RATE


@dataclass(frozen=True, slots=True)
class OpenReply:
    """What a successful open answers (key 5 of the node reply): the CONNECTION
    operation's typed reply, the interfaces the server offers, the reservation granted."""

    reply: bytes
    offers: Offers
    granted: Reservation = NO_RESERVATION

    def encode(self) -> bytes:
        """Canonical bytes: [reply, offers, granted rate, granted burst] (the serving
        node's invoker writes it: lithium/connections.py)."""
        return encode_open_reply(self.reply, self.offers,
                                 (self.granted.rate, self.granted.burst))


def decode_open_reply(data: bytes) -> OpenReply:
    """Parse an open reply; raises only MercuryError subclasses."""
    value = cbor.loads(data, _REPLY_LIMITS)
    if not (isinstance(value, list) and len(value) == 4 and type(value[0]) is bytes
            and _rate(value[2]) and _rate(value[3])):
        raise ConnectionWireError("an open reply is [reply, offers, rate, burst]")
    rate, burst = value[2], value[3]
    assert isinstance(rate, int) and isinstance(burst, int)
    return OpenReply(value[0], offers_from_value(value[1]), Reservation(rate, burst))
