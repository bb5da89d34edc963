"""Entity IDs: the signed, self-certifying address of an entity.

Wire form (canonical CBOR array, docs/protocol.md section 4):
  [format_version, cluster_id, local, persona|null, hints|null, algorithms|null, signature]
The signature is the cluster key's Ed25519 signature (domain "mercury-rt/1 eid") over the
canonical encoding of the first six elements as an array, i.e. over everything else.

Only (master hash, local part, persona) identify the entity (`Eid.principal()`); the rest
is proof and routing, and may differ between copies of the same entity's EID (full keys
or hashes only, with or without hints).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from carbon import cbor
from carbon.cbor import Value
from carbon.error_codes import ErrorCode
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol, SymbolError
from mercury_rt.core.identity.cluster_id import IDENTITY_LIMITS, ClusterId
from mercury_rt.core.identity.errors import IdentityError
from mercury_rt.core.identity.fields import expect_bytes, expect_int, expect_list
from mercury_rt.core.identity.keys import SIGNATURE_SIZE

FORMAT_VERSION = 1
EID_FIELDS = 7
MAX_LOCAL_SIZE = 255
MAX_PERSONA_PARAMS_SIZE = 1024
MAX_HINTS = 64
MAX_ALGORITHMS = 32
MAX_REQUIREMENTS = 16
MAX_HASHCASH_BITS = 64


@dataclass(frozen=True, slots=True)
class OperationHint:
    """Suggested requirements for one operation, so a first request is not rejected."""

    endpoint: int
    operation: int
    transit_classification: int
    hashcash_bits: int
    requirements: dict[int | str, Value] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for name in ("endpoint", "operation", "transit_classification"):
            expect_int(getattr(self, name), f"hint {name.replace('_', ' ')}")
        expect_int(self.hashcash_bits, "hint hashcash bits", 0, MAX_HASHCASH_BITS)
        if len(self.requirements) > MAX_REQUIREMENTS:
            raise IdentityError(f"operation hint has {len(self.requirements)} requirements; "
                                f"at most {MAX_REQUIREMENTS}", ErrorCode.FIELD_TOO_LARGE)

    def to_value(self) -> list[Value]:
        """[endpoint, operation, transit classification, hashcash bits, {requirements}]."""
        other: dict[Value, Value] = {}
        other.update(self.requirements.items())
        return [self.endpoint, self.operation, self.transit_classification,
                self.hashcash_bits, other]

    @classmethod
    def from_value(cls, value: Value) -> OperationHint:
        """Decode and bound one hint."""
        items = expect_list(value, "operation hint", length=5)
        other = items[4]
        if type(other) is not dict:
            raise IdentityError("operation hint requirements must be a map")
        if len(other) > MAX_REQUIREMENTS:
            raise IdentityError(f"operation hint has {len(other)} requirements; at most "
                                f"{MAX_REQUIREMENTS}", ErrorCode.FIELD_TOO_LARGE)
        requirements: dict[int | str, Value] = {}
        for key, item in other.items():
            if type(key) not in (int, str):
                raise IdentityError("operation hint requirement keys must be int or text")
            requirements[key] = item  # type: ignore[index]
        return cls(expect_int(items[0], "hint endpoint"), expect_int(items[1], "hint operation"),
                   expect_int(items[2], "hint transit classification"),
                   expect_int(items[3], "hint hashcash bits", 0, MAX_HASHCASH_BITS), requirements)


@dataclass(frozen=True, slots=True)
class AcceptedAlgorithm:
    """An encryption algorithm the entity accepts, with the clearance it gives it."""

    algorithm: int
    clearance: int

    def __post_init__(self) -> None:
        expect_int(self.algorithm, "algorithm id")
        expect_int(self.clearance, "clearance")

    @classmethod
    def from_value(cls, value: Value) -> AcceptedAlgorithm:
        """Decode [algorithm id, clearance]."""
        items = expect_list(value, "accepted algorithm", length=2)
        return cls(expect_int(items[0], "algorithm id"), expect_int(items[1], "clearance"))


@dataclass(frozen=True, slots=True)
class Eid:
    """A decoded EID. Build new ones with mercury_rt.core.identity.mint, never by hand."""

    cluster_id: ClusterId
    local: bytes
    persona: Persona | None
    hints: tuple[OperationHint, ...] | None
    algorithms: tuple[AcceptedAlgorithm, ...] | None
    signature: bytes
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        check_optional_parts(self.local, self.hints, self.algorithms)
        if len(self.signature) != SIGNATURE_SIZE:
            raise IdentityError(f"EID signature is {len(self.signature)} bytes; expected "
                                f"{SIGNATURE_SIZE}", ErrorCode.BAD_FIELD_LENGTH)

    def principal(self) -> Principal:
        """Who this EID names, for access control: identical across every form."""
        return Principal(self.cluster_id.master_hash, self.local, self.persona)

    def body_value(self) -> list[Value]:
        """Everything but the signature, in wire order."""
        persona = (None if self.persona is None
                   else [self.persona.cls.text, self.persona.params])
        hints: Value = None if self.hints is None else [h.to_value() for h in self.hints]
        algorithms: Value = (None if self.algorithms is None
                             else [[a.algorithm, a.clearance] for a in self.algorithms])
        return [self.format_version, self.cluster_id.to_value(), self.local, persona,
                hints, algorithms]

    def signed_message(self) -> bytes:
        """The exact bytes the EID signature covers."""
        return cbor.dumps(self.body_value())

    def encode(self) -> bytes:
        """Canonical CBOR bytes of the whole EID."""
        return cbor.dumps([*self.body_value(), self.signature])

    @classmethod
    def from_value(cls, value: Value) -> Eid:
        """Decode the array form, checking every field."""
        items = expect_list(value, "EID", length=EID_FIELDS)
        version = expect_int(items[0], "EID format version")
        if version != FORMAT_VERSION:
            raise IdentityError(f"EID format version {version} is not supported (this "
                                f"runtime reads version {FORMAT_VERSION})",
                                ErrorCode.UNSUPPORTED_EID_VERSION)
        return cls(cluster_id=ClusterId.from_value(items[1]),
                   local=expect_bytes(items[2], "cluster-local part", max_size=MAX_LOCAL_SIZE,
                                      min_size=1),
                   persona=_persona_from_value(items[3]),
                   hints=_hints_from_value(items[4]),
                   algorithms=_algorithms_from_value(items[5]),
                   signature=expect_bytes(items[6], "EID signature", size=SIGNATURE_SIZE))

    @classmethod
    def decode(cls, data: bytes) -> Eid:
        """Strictly decode EID bytes (CodecError or IdentityError on any fault)."""
        return cls.from_value(cbor.loads(data, IDENTITY_LIMITS))


def check_optional_parts(local: bytes, hints: tuple[OperationHint, ...] | None,
                         algorithms: tuple[AcceptedAlgorithm, ...] | None) -> None:
    """Enforce the design's rules on the optional parts (shared by decode and mint)."""
    if not 1 <= len(local) <= MAX_LOCAL_SIZE:
        raise IdentityError(f"cluster-local part is {len(local)} bytes; must be "
                            f"1..{MAX_LOCAL_SIZE}", ErrorCode.FIELD_TOO_LARGE if local
                            else ErrorCode.BAD_FIELD_LENGTH)
    if hints is not None and not 1 <= len(hints) <= MAX_HINTS:
        raise IdentityError(f"hints list has {len(hints)} entries; must be 1..{MAX_HINTS} "
                            "(omit it instead of sending it empty)", ErrorCode.FIELD_TOO_LARGE)
    if algorithms is not None and not 1 <= len(algorithms) <= MAX_ALGORITHMS:
        raise IdentityError(f"algorithm list has {len(algorithms)} entries; must be "
                            f"1..{MAX_ALGORITHMS}", ErrorCode.FIELD_TOO_LARGE)
    if hints is not None and algorithms is None:
        raise IdentityError("per-operation hints need the accepted-algorithm list, which maps "
                            "their classifications to algorithms",
                            ErrorCode.HINTS_WITHOUT_ALGORITHMS)


def _persona_from_value(value: Value) -> Persona | None:
    if value is None:
        return None
    items = expect_list(value, "persona", length=2)
    if type(items[0]) is not str:
        raise IdentityError("persona class must be a symbol text")
    try:
        cls = Symbol(items[0])
    except SymbolError as exc:
        raise IdentityError(f"persona class: {exc.message}") from None
    if len(cbor.dumps(items[1])) > MAX_PERSONA_PARAMS_SIZE:
        raise IdentityError(f"persona parameters exceed {MAX_PERSONA_PARAMS_SIZE} bytes",
                            ErrorCode.FIELD_TOO_LARGE)
    return Persona(cls, items[1])


def _hints_from_value(value: Value) -> tuple[OperationHint, ...] | None:
    if value is None:
        return None
    items = expect_list(value, "operation hints", max_length=MAX_HINTS, min_length=1)
    return tuple(OperationHint.from_value(v) for v in items)


def _algorithms_from_value(value: Value) -> tuple[AcceptedAlgorithm, ...] | None:
    if value is None:
        return None
    items = expect_list(value, "accepted algorithms", max_length=MAX_ALGORITHMS, min_length=1)
    return tuple(AcceptedAlgorithm.from_value(v) for v in items)
