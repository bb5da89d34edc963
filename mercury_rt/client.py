"""Typed clients: call an entity by interface and operation name, not by numbers.

`node.client(target, counter, caller=b"bob")` gives a client whose `await client.add(n=5)`
encodes `{"n": 5}` by the spec's declared message type, learns which endpoint the target
offers `counter` on from its endpoint 0 (cached per node, dropped when the target answers
UNKNOWN_ENDPOINT, or by `forget_endpoint()`; a cached map lacking the interface is
asked again once before the client gives up with UNKNOWN_INTERFACE), and decodes the
reply by the declared reply type. Inside a handler the same client comes from
`ctx.calls.client(...)`, calling as the handler's own entity within the call's deadline
(lithium.calls).

The client speaks to a `RawCalls` (numbers and bytes); the node implements it with
`NodeRuntime.call`/`send`, tests with a fake.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from carbon.error_codes import ErrorCode, MercuryError
from carbon.metadata import LIST_INTERFACES, METADATA_SPEC, EndpointCache, MetadataError
from carbon.principal import Persona
from carbon.protocol_spec import Operation, OperationKind, ProtocolSpec, SpecError
from carbon.types import NULL, PayloadTypeError, dumps_typed, loads_typed

__all__ = ["ClientUsageError", "RawCalls", "ReplyDecodeError", "TypedClient", "payload_of"]

_LISTING = METADATA_SPEC.named("list-interfaces")


class ClientUsageError(MercuryError):
    """The client was asked for an operation its interface lacks, or of the wrong kind."""

    code = ErrorCode.UNKNOWN_OPERATION


class ReplyDecodeError(MercuryError):
    """The target answered with bytes that are not the operation's declared reply type."""

    code = ErrorCode.REPLY_TYPE_MISMATCH


class RawCalls(Protocol):
    """Numbered, byte-level calls as one caller (and persona); raise MercuryError."""

    async def call(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> bytes:
        """A request; its reply bytes."""
        ...

    async def send(self, target: bytes, endpoint: int, operation: int, payload: bytes, *,
                   persona: Persona | None) -> object:
        """A one-way message; the transport's receipt (message id or held record)."""
        ...


def payload_of(args: tuple[Any, ...], fields: dict[str, Any]) -> Any:
    """`op(value)` sends value, `op(a=1, b=2)` sends a record, `op()` sends null."""
    if args and fields:
        raise ClientUsageError("give the payload either as one value or as record fields, "
                               "not both")
    if len(args) > 1:
        raise ClientUsageError(f"an operation takes one payload value, not {len(args)}")
    if fields:
        return fields
    return args[0] if args else None


class TypedClient:
    """One interface of one target entity, as one caller; see the module docstring."""

    def __init__(self, raw: RawCalls, target: bytes, spec: ProtocolSpec, *,
                 persona: Persona | None = None, endpoint: int | None = None,
                 endpoints: EndpointCache | None = None) -> None:
        self.raw, self.target, self.spec, self.persona = raw, target, spec, persona
        self._fixed = endpoint
        self._endpoints = endpoints if endpoints is not None else EndpointCache()

    async def call(self, operation: str, payload: Any = None) -> Any:
        """Run request `operation` with `payload` (checked against its declared type
        before anything is sent) and return the decoded reply."""
        op = self._operation(operation, OperationKind.REQUEST)
        data = dumps_typed(op.message, payload)
        reply = await self._numbered(op, data, one_way=False)
        assert isinstance(reply, bytes)
        try:
            return loads_typed(op.reply, reply)
        except (PayloadTypeError, MercuryError) as exc:
            raise ReplyDecodeError(f"{self.spec.interface} {op.name}: the reply is not "
                                   f"{op.reply}: {exc.message}") from None

    async def send(self, operation: str, payload: Any = None) -> object:
        """Send message `operation` (one-way); returns the node's receipt."""
        op = self._operation(operation, OperationKind.MESSAGE)
        return await self._numbered(op, dumps_typed(op.message, payload), one_way=True)

    def forget_endpoint(self) -> None:
        """Ask the target's endpoint 0 again before the next call (it re-mapped)."""
        self._endpoints.forget(self.target)

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """`client.add(n=5)` / `client.reset()`: request or message by operation name
        (an underscore stands for a hyphen: `client.list_items()` is `list-items`)."""
        if name.startswith("_"):
            raise AttributeError(name)
        op = self._by_name(name)

        def invoke(*args: Any, **fields: Any) -> Awaitable[Any]:
            payload = payload_of(args, fields)
            if op.kind is OperationKind.MESSAGE:
                return self.send(op.name, payload)
            return self.call(op.name, payload)

        return invoke

    def _by_name(self, name: str) -> Operation:
        for candidate in (name, name.replace("_", "-")):
            try:
                return self.spec.named(candidate)
            except SpecError:
                continue
        raise ClientUsageError(f"{self.spec.interface} has no operation named {name!r}")

    def _operation(self, name: str, kind: OperationKind) -> Operation:
        op = self._by_name(name)
        if op.kind is not kind:
            use = "call" if op.kind is OperationKind.REQUEST else "send"
            raise ClientUsageError(f"{self.spec.interface} {op.name} is a {op.kind.name.lower()}"
                                   f" operation: use {use}()")
        return op

    async def _numbered(self, op: Operation, data: bytes, *, one_way: bool) -> object:
        """Send on the target's endpoint; re-learn it once if the target says it moved."""
        learned = self._fixed is None and self._cached() is not None
        endpoint = await self.endpoint()
        try:
            return await self._raw(endpoint, op, data, one_way)
        except MercuryError as exc:
            if not (learned and exc.code is ErrorCode.UNKNOWN_ENDPOINT):
                raise
        self.forget_endpoint()  # a cached map went stale: nothing ran, so ask and retry
        return await self._raw(await self.endpoint(), op, data, one_way)

    async def _raw(self, endpoint: int, op: Operation, data: bytes, one_way: bool) -> object:
        if one_way:
            return await self.raw.send(self.target, endpoint, op.number, data,
                                       persona=self.persona)
        return await self.raw.call(self.target, endpoint, op.number, data,
                                   persona=self.persona)

    def _cached(self) -> int | None:
        """The cached endpoint; None when the client must ask (nothing cached, or a map
        from before the target offered this interface, which is then dropped)."""
        try:
            return self._endpoints.endpoint_for(self.target, self.spec.interface)
        except MetadataError:
            self.forget_endpoint()
            return None

    async def endpoint(self) -> int:
        """The endpoint the target offers this interface on (given, cached, or asked)."""
        if self._fixed is not None:
            return self._fixed
        known = self._cached()
        if known is not None:
            return known
        reply = await self.raw.call(self.target, 0, LIST_INTERFACES, dumps_typed(NULL, None),
                                    persona=self.persona)
        try:
            listing = loads_typed(_LISTING.reply, reply)
        except MercuryError as exc:
            raise ReplyDecodeError(f"endpoint 0 answered a malformed listing: "
                                   f"{exc.message}") from None
        self._endpoints.learn(self.target, listing)
        found = self._endpoints.endpoint_for(self.target, self.spec.interface)
        assert found is not None  # endpoint_for raises MetadataError when it is absent
        return found
