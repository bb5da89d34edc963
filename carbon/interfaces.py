"""Per-entity mapping of interface symbols to small endpoint numbers.

Symbols are long; each entity maps the interfaces it offers to endpoint numbers so that
requests name an interface in a byte or two. Endpoint 0 is hard-wired to the CARBON
metadata interface (that is how a client bootstraps: it asks endpoint 0 for the rest).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from carbon.cbor import Value
from carbon.error_codes import ErrorCode, MercuryError
from carbon.symbols import Symbol, SymbolError

METADATA_ENDPOINT = 0
MAX_ENDPOINT = 0xFFFF
MAX_INTERFACES = 1024
METADATA_INTERFACE = Symbol("/argon/carbon/metadata")


class EndpointError(MercuryError):
    """An endpoint number or mapping that cannot be used."""

    code = ErrorCode.ENDPOINT_IN_USE


def check_endpoint(endpoint: object) -> int:
    """Validate a non-metadata endpoint number (1-65535)."""
    if type(endpoint) is not int or not 0 < endpoint <= MAX_ENDPOINT:
        raise EndpointError(f"endpoint {endpoint!r} must be an int 1-{MAX_ENDPOINT} "
                            "(0 is reserved for CARBON metadata)")
    return endpoint


@dataclass(frozen=True, slots=True)
class InterfaceMap:
    """An entity's endpoints; endpoint 0 always carries /argon/carbon/metadata."""

    by_endpoint: Mapping[int, Symbol] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.by_endpoint) > MAX_INTERFACES:
            raise EndpointError(f"more than {MAX_INTERFACES} interfaces on one entity")
        seen: set[Symbol] = set()
        for endpoint, symbol in self.by_endpoint.items():
            check_endpoint(endpoint)
            if symbol in seen or symbol == METADATA_INTERFACE:
                raise EndpointError(f"interface {symbol} is mapped to more than one endpoint")
            seen.add(symbol)

    def endpoint_of(self, interface: Symbol) -> int | None:
        """The endpoint carrying `interface`, or None."""
        if interface == METADATA_INTERFACE:
            return METADATA_ENDPOINT
        for endpoint, symbol in self.by_endpoint.items():
            if symbol == interface:
                return endpoint
        return None

    def interface_at(self, endpoint: int) -> Symbol | None:
        """The interface on `endpoint`, or None."""
        if endpoint == METADATA_ENDPOINT:
            return METADATA_INTERFACE
        return self.by_endpoint.get(endpoint)

    def items(self) -> Iterator[tuple[int, Symbol]]:
        """(endpoint, interface) pairs including endpoint 0, in endpoint order."""
        yield METADATA_ENDPOINT, METADATA_INTERFACE
        yield from sorted(self.by_endpoint.items())


def interface_map_to_value(imap: InterfaceMap) -> Value:
    """The listing endpoint 0 returns, as records {interface, endpoint} in endpoint order."""
    return [{"interface": symbol.text, "endpoint": endpoint} for endpoint, symbol in imap.items()]


def interface_map_from_value(value: Any) -> InterfaceMap:
    """Parse a listing received from endpoint 0; raises EndpointError if malformed."""
    if not isinstance(value, list) or len(value) > MAX_INTERFACES + 1:
        raise EndpointError("an interface listing must be a bounded list")
    mapping: dict[int, Symbol] = {}
    for item in value:
        if not (isinstance(item, dict) and isinstance(item.get("interface"), str)):
            raise EndpointError(f"malformed interface listing entry {item!r:.80}")
        try:
            symbol = Symbol(item["interface"])
        except SymbolError as exc:
            raise EndpointError(f"interface listing: {exc.message}") from None
        endpoint = item.get("endpoint")
        if endpoint == METADATA_ENDPOINT and symbol == METADATA_INTERFACE:
            continue
        number = check_endpoint(endpoint)
        if number in mapping:
            raise EndpointError(f"endpoint {number} listed twice")
        mapping[number] = symbol
    return InterfaceMap(mapping)
