"""The compiled policy: frozen, pre-resolved tables the gate reads on every request.

Level names become ranks (index in `levels`, higher = more secret), entity references
become `EntityRef`s with cluster hashes as bytes, and every value carries the YAML key
path that set it, so a decision can name the rule an operator should look at.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from carbon.principal import Principal
from policy.schema import (
    AclSpec,
    EndpointSpec,
    EntitySpec,
    OperationSpec,
    PolicyFile,
    check_policy,
)
from policy.yaml_source import load_model, parse_model


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
    spent_store_limit: int
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


def load_policy(path: Path) -> Policy:
    """Load, validate and compile a policy file; raises ConfigFileError listing every problem."""
    return compile_policy(load_model(path, PolicyFile, check_policy))


def parse_policy(text: str, filename: str = "<policy>") -> Policy:
    """Like load_policy, from text."""
    return compile_policy(parse_model(text, filename, PolicyFile, check_policy))


def compile_policy(doc: PolicyFile) -> Policy:
    """Turn a validated PolicyFile into lookup tables. Assumes check_policy found nothing."""
    rank = {name: i for i, name in enumerate(doc.levels)}
    aliases = {a: bytes.fromhex(c.master_hash) for a, c in doc.trusted_clusters.items()}
    entities = {name.encode(): _entity_rules(f"entities.{name}", spec, rank, aliases)
                for name, spec in doc.entities.items()}
    new_rules = tuple(NewEntityRule(r.match, rank[r.classification], rank[r.clearance],
                                    f"new_entities[{i}]")
                      for i, r in enumerate(doc.new_entities))
    clusters = {
        aliases[alias]: RemoteCluster(
            alias, aliases[alias], rank[c.max_clearance],
            None if c.default_clearance is None else rank[c.default_clearance],
            {n.encode(): rank[lv] for n, lv in c.entities.items()})
        for alias, c in doc.trusted_clusters.items()}
    unknown = doc.unknown_cluster_clearance
    return Policy(
        levels=tuple(doc.levels), entities=entities, new_entities=new_rules,
        clusters=clusters, unknown_cluster_clearance=None if unknown is None else rank[unknown],
        acl_bypass=tuple(parse_ref(r, aliases) for r in doc.acl_bypass),
        stamp_max_age=doc.hashcash.max_age_seconds,
        stamp_max_future=doc.hashcash.max_future_seconds,
        spent_store_limit=doc.hashcash.spent_store_limit,
        max_delegation_chain=doc.delegation.max_chain,
        transit_intra={rank[k]: tuple(v) for k, v in doc.transit.intra_cluster.items()},
        transit_inter={rank[k]: tuple(v) for k, v in doc.transit.inter_cluster.items()},
        source=doc)


def parse_ref(text: str, aliases: dict[str, bytes]) -> EntityRef:
    """`name`, `alias:name`, `hexhash:name`, each optionally `#/persona/symbol`."""
    body, _, persona = text.partition("#")
    cluster_text, sep, name = body.rpartition(":")
    cluster = None
    if sep:
        cluster = aliases.get(cluster_text) or bytes.fromhex(cluster_text)
    return EntityRef(cluster, name.encode(), persona or None, text)


def _entity_rules(path: str, spec: OperationSpec, rank: dict[str, int],
                  aliases: dict[str, bytes]) -> Rules:
    children: dict[int, Rules] = {}
    clearance = None
    if isinstance(spec, EntitySpec):
        children = {n: _entity_rules(f"{path}.endpoints.{n}", ep, rank, aliases)
                    for n, ep in spec.endpoints.items()}
        clearance = spec.clearance
    elif isinstance(spec, EndpointSpec):
        children = {n: _entity_rules(f"{path}.operations.{n}", op, rank, aliases)
                    for n, op in spec.operations.items()}
    return Rules(
        path=path,
        classification=None if spec.classification is None else rank[spec.classification],
        hashcash_bits=spec.hashcash_bits,
        acl=_acl(f"{path}.acl", spec.acl, aliases),
        clearance=None if clearance is None else rank[clearance],
        children=children)


def _acl(path: str, spec: AclSpec | None, aliases: dict[str, bytes]) -> Acl | None:
    if spec is None:
        return None
    if spec.allow is not None:
        return Acl(True, tuple(parse_ref(r, aliases) for r in spec.allow), f"{path}.allow")
    return Acl(False, tuple(parse_ref(r, aliases) for r in spec.deny or ()), f"{path}.deny")
