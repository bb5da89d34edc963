"""Who is asking: the identity that access control decides on.

The design says only three parts of an EID matter for access control: the cluster master
public key hash (which names the cluster), the cluster-local entity part, and the persona.
`Principal` is exactly that triple; everything else in an EID is routing or proof.
"""

from __future__ import annotations

from dataclasses import dataclass

from carbon.cbor import Value
from carbon.symbols import Symbol


@dataclass(frozen=True, slots=True)
class Persona:
    """A persona an entity adopts: a class symbol and any CARBON value as parameters."""

    cls: Symbol
    params: Value = None

    def __hash__(self) -> int:
        # Equal personas must hash alike. params compare with ==, which ignores dict order
        # (and True == 1) while repr() does not; the class alone hashes consistently, and
        # hashing never walks a large params value.
        return hash(self.cls)


@dataclass(frozen=True, slots=True)
class Principal:
    """(cluster master key hash with its algorithm byte, cluster-local part, persona)."""

    cluster: bytes
    local: bytes
    persona: Persona | None = None

    def short(self) -> str:
        """A compact human form for logs: cluster hash prefix, local part, persona class."""
        local = self.local.decode("utf-8", "backslashreplace")
        persona = f"#{self.persona.cls}" if self.persona else ""
        return f"{self.cluster[:5].hex()}:{local}{persona}"
