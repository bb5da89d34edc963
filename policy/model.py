"""The compiled policy: frozen, pre-resolved tables the gate reads on every request.

Level names become ranks (index in `levels`, higher = more secret), entity references
become `EntityRef`s with cluster hashes as bytes, and every value carries the YAML key
path that set it, so a decision can name the rule an operator should look at.

This module holds the tables only; `policy.load` reads, validates and compiles a file into
them. Loading lives apart so that the security gate, which reads a `Policy` on every
request, imports neither yaml nor pydantic (the schema is imported for typing
`Policy.source` alone).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from carbon.principal import Principal

if TYPE_CHECKING:
    from policy.schema import PolicyFile


@dataclass(frozen=True, slots=True)
class EntityRef:
    """An entity named in a policy. cluster None means the local cluster; persona None, any."""

    cluster: bytes | None
    local: bytes
    persona: str | None = None
    text: str = ""

    def matches(self, who: Principal, local_cluster: bytes) -> bool:
        """True if `who` is this entity (any persona unless one is given)."""
        cluster = local_cluster if self.cluster is None else self.cluster
        if who.cluster != cluster or who.local != self.local:
            return False
        if self.persona is None:
            return True
        return who.persona is not None and who.persona.cls.text == self.persona


@dataclass(frozen=True, slots=True)
class Acl:
    """An allow list (only these) or a deny list (all but these), and where it is set."""

    allow: bool
    entries: tuple[EntityRef, ...]
    rule: str

    def permits(self, who: Principal, local_cluster: bytes) -> bool:
        """Whether `who` passes this list."""
        listed = any(ref.matches(who, local_cluster) for ref in self.entries)
        return listed if self.allow else not listed


@dataclass(frozen=True, slots=True)
class Rules:
    """Settings of an entity, endpoint or operation; None means 'not set here'."""

    path: str
    classification: int | None = None
    hashcash_bits: int = 0
    acl: Acl | None = None
    clearance: int | None = None
    children: dict[int, Rules] = field(default_factory=dict)
    transit: int | None = None
    transit_floor: int | None = None


@dataclass(frozen=True, slots=True)
class NewEntityRule:
    """Classification and clearance for unlisted entities whose name matches `pattern`."""

    pattern: str
    classification: int
    clearance: int
    path: str


@dataclass(frozen=True, slots=True)
class RemoteCluster:
    """A trusted cluster: clearances per entity, a default, and a cap."""

    alias: str
    master_hash: bytes
    max_clearance: int
    default_clearance: int | None
    entities: dict[bytes, int]


@dataclass(frozen=True, slots=True)
class Policy:
    """Everything the gate needs from the security administrator, ready for lookups."""

    levels: tuple[str, ...]
    entities: dict[bytes, Rules]
    new_entities: tuple[NewEntityRule, ...]
    clusters: dict[bytes, RemoteCluster]
    unknown_cluster_clearance: int | None
    acl_bypass: tuple[EntityRef, ...]
    stamp_max_age: int
    stamp_max_future: int
    max_delegation_chain: int
    transit_intra: dict[int, tuple[int, ...]]
    transit_inter: dict[int, tuple[int, ...]]
    source: PolicyFile

    def level_name(self, rank: int) -> str:
        """The name of a rank, for messages."""
        return self.levels[rank]

    def new_entity_rule(self, local: bytes) -> NewEntityRule | None:
        """The first default-assignment rule matching an unlisted entity's name."""
        name = local.decode("utf-8", "replace")
        for rule in self.new_entities:
            if fnmatch.fnmatchcase(name, rule.pattern):
                return rule
        return None
