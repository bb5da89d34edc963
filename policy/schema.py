"""The policy file's shape (pydantic v2) and the cross-field checks pydantic cannot express.

This is what an operator writes; `policy.load.compile_policy` turns it into the fast,
frozen form the gate reads. Every key is documented in docs/operator-guide.md, "Policy".
Unknown keys are errors, so a misspelt key never silently means "no restriction".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from carbon.symbols import Symbol, SymbolError
from policy.yaml_source import Loc

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"
LEVEL_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"
HEX_PATTERN = r"^(?:[0-9a-f]{2}){2,64}$"
"""A master key hash in hex: whole bytes (compile_policy turns it into bytes), 2-64 of them."""
_HEX = re.compile(HEX_PATTERN)

EntityName = Annotated[str, Field(pattern=NAME_PATTERN)]
LevelName = Annotated[str, Field(pattern=LEVEL_PATTERN)]
Number = Annotated[int, Field(ge=0, le=0xFFFF, strict=True)]
Bits = Annotated[int, Field(ge=0, le=40, strict=True)]
"""Every integer is strict: YAML `true` is a bool, and pydantic would otherwise read it as 1."""


def _not_bool(value: object) -> object:
    """Literal[1] accepts True (True == 1); a version is a number, not a boolean."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AclSpec(_Strict):
    """Exactly one of: `allow` (only these entities) or `deny` (everyone but these)."""

    allow: list[str] | None = None
    deny: list[str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> AclSpec:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("an acl has exactly one of 'allow' or 'deny'")
        return self


class OperationSpec(_Strict):
    """An operation's classification, transit classification override, hashcash cost and ACL.

    `transit` raises the minimum transit classification of messages to and from this
    operation (or every operation below this endpoint or entity) above the access
    classification; it may not be set lower than that classification."""

    classification: LevelName | None = None
    transit: LevelName | None = None
    hashcash_bits: Bits = 0
    acl: AclSpec | None = None


class EndpointSpec(OperationSpec):
    """An endpoint's settings, and its operations by number."""

    operations: dict[Number, OperationSpec] = {}


class EntitySpec(OperationSpec):
    """A local entity's classification, clearance, cost, ACL, and endpoints by number.

    `transit_floor` is the lowest transit classification of the entity's messages (its
    requests and replies); unset, it is the entity's clearance. It may only be lower."""

    clearance: LevelName | None = None
    transit_floor: LevelName | None = None
    endpoints: dict[Number, EndpointSpec] = {}


class NewEntityRule(_Strict):
    """Default assignment for entities not listed: first rule whose glob matches wins."""

    match: Annotated[str, Field(min_length=1, max_length=128)]
    classification: LevelName
    clearance: LevelName


class TrustedCluster(_Strict):
    """A remote cluster we grant clearances to, named by its master key hash."""

    master_hash: Annotated[str, Field(pattern=HEX_PATTERN)]
    max_clearance: LevelName
    default_clearance: LevelName | None = None
    entities: dict[EntityName, LevelName] = {}


class HashcashSpec(_Strict):
    """How long a stamp stays valid and how far ahead its date may be. (How many spent
    stamps a node remembers is a node resource: the node config's gate.spent_store_limit.)"""

    max_age_seconds: Annotated[int, Field(ge=60, le=7 * 86400, strict=True)] = 3600
    max_future_seconds: Annotated[int, Field(ge=0, le=86400, strict=True)] = 300

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: object) -> object:
        if isinstance(data, dict) and "spent_store_limit" in data:
            raise ValueError("spent_store_limit is not a policy setting: set "
                             "gate.spent_store_limit in each node's config instead")
        return data


class DelegationSpec(_Strict):
    """The longest delegation chain a request may carry."""

    max_chain: Annotated[int, Field(ge=0, le=16, strict=True)] = 4


class TransitSpec(_Strict):
    """Encryption algorithm ids trusted at each clearance level (used by transit security)."""

    intra_cluster: dict[LevelName, list[Number]] = {}
    inter_cluster: dict[LevelName, list[Number]] = {}


class PolicyFile(_Strict):
    """The whole policy file."""

    version: Annotated[Literal[1], BeforeValidator(_not_bool)]
    levels: Annotated[list[LevelName], Field(min_length=1, max_length=64)]
    entities: dict[EntityName, EntitySpec] = {}
    new_entities: list[NewEntityRule] = []
    trusted_clusters: dict[EntityName, TrustedCluster] = {}
    unknown_cluster_clearance: LevelName | None = None
    acl_bypass: list[str] = []
    hashcash: HashcashSpec = HashcashSpec()
    delegation: DelegationSpec = DelegationSpec()
    transit: TransitSpec = TransitSpec()


def check_policy(doc: PolicyFile) -> Iterator[tuple[Loc, str]]:
    """Every cross-reference problem: unknown levels, bad entity references, duplicates."""
    levels = set(doc.levels)
    yield from _duplicate_levels(doc.levels)
    for loc, level in _level_references(doc):
        if level not in levels:
            yield loc, f"{level!r} is not a level; levels are: {', '.join(doc.levels)}"
    for loc, ref in _entity_references(doc):
        problem = reference_problem(ref, doc)
        if problem:
            yield loc, problem
    seen: dict[str, str] = {}
    for alias, cluster in doc.trusted_clusters.items():
        if cluster.master_hash in seen:
            yield (("trusted_clusters", alias, "master_hash"),
                   f"same master_hash as trusted cluster {seen[cluster.master_hash]!r}")
        seen.setdefault(cluster.master_hash, alias)
    if not any(level not in levels for _, level in _level_references(doc)):
        yield from transit_level_problems(doc)


def reference_problem(ref: str, doc: PolicyFile) -> str | None:
    """Why `ref` is not a valid entity reference (`name`, `cluster:name`, `…#/persona`)."""
    body, hash_sep, persona = ref.partition("#")
    cluster, sep, name = body.rpartition(":")
    if hash_sep:
        try:
            Symbol(persona)
        except SymbolError as exc:
            return (f"{ref!r}: persona must be a symbol such as #/argon/persona/admin "
                    f"({exc.message})")
    if not re.fullmatch(NAME_PATTERN, name):
        return f"{ref!r}: entity name must match {NAME_PATTERN}"
    if sep and cluster not in doc.trusted_clusters and not _HEX.match(cluster):
        return (f"{ref!r}: {cluster!r} is neither a trusted_clusters name nor a hex "
                "master key hash (an even number of lower-case hex digits)")
    return None


def _duplicate_levels(levels: list[str]) -> Iterator[tuple[Loc, str]]:
    for i, level in enumerate(levels):
        if level in levels[:i]:
            yield ("levels", i), f"level {level!r} is listed twice"


def _level_references(doc: PolicyFile) -> Iterator[tuple[Loc, str]]:
    if doc.unknown_cluster_clearance is not None:
        yield ("unknown_cluster_clearance",), doc.unknown_cluster_clearance
    for name, ent in doc.entities.items():
        for key in ("classification", "clearance", "transit", "transit_floor"):
            if getattr(ent, key) is not None:
                yield ("entities", name, key), getattr(ent, key)
        for ep_no, ep in ent.endpoints.items():
            for key in ("classification", "transit"):
                if getattr(ep, key) is not None:
                    yield ("entities", name, "endpoints", ep_no, key), getattr(ep, key)
            for op_no, op in ep.operations.items():
                for key in ("classification", "transit"):
                    if getattr(op, key) is not None:
                        yield (("entities", name, "endpoints", ep_no, "operations", op_no,
                                key), getattr(op, key))
    for i, rule in enumerate(doc.new_entities):
        yield ("new_entities", i, "classification"), rule.classification
        yield ("new_entities", i, "clearance"), rule.clearance
    for alias, cl in doc.trusted_clusters.items():
        yield ("trusted_clusters", alias, "max_clearance"), cl.max_clearance
        if cl.default_clearance is not None:
            yield ("trusted_clusters", alias, "default_clearance"), cl.default_clearance
        for ent_name, level in cl.entities.items():
            yield ("trusted_clusters", alias, "entities", ent_name), level
    for section in ("intra_cluster", "inter_cluster"):
        for level in getattr(doc.transit, section):
            yield ("transit", section, level), level


def transit_level_problems(doc: PolicyFile) -> Iterator[tuple[Loc, str]]:
    """A `transit_floor` above the entity's clearance, or a `transit` below the access
    classification in force where it is set: both would weaken what the file says elsewhere.

    Assumes every level name is known (the caller checks that first)."""
    rank = {name: i for i, name in enumerate(doc.levels)}
    for name, ent in doc.entities.items():
        base: Loc = ("entities", name)
        clearance, where = _entity_default(doc, name, ent.clearance, "clearance")
        if ent.transit_floor is not None and rank[ent.transit_floor] > rank[clearance]:
            yield ((*base, "transit_floor"),
                   f"transit_floor {ent.transit_floor!r} is above the entity's clearance "
                   f"{clearance!r} ({where}); a floor may only lower the clearance")
        entity_class, where = _entity_default(doc, name, ent.classification, "classification")
        yield from _transit_below(base, ent, entity_class, where, rank)
        for ep_no, ep in ent.endpoints.items():
            ep_class, ep_where = _higher(entity_class, where, ep, (*base, "endpoints", ep_no),
                                         rank)
            yield from _transit_below((*base, "endpoints", ep_no), ep, ep_class, ep_where, rank)
            for op_no, op in ep.operations.items():
                op_base: Loc = (*base, "endpoints", ep_no, "operations", op_no)
                op_class, op_where = _higher(ep_class, ep_where, op, op_base, rank)
                yield from _transit_below(op_base, op, op_class, op_where, rank)


def _entity_default(doc: PolicyFile, name: str, value: str | None,
                    key: str) -> tuple[str, str]:
    """The entity's level for `key` as the compiled policy resolves it, and where it is set."""
    if value is not None:
        return value, f"entities.{name}.{key}"
    for i, rule in enumerate(doc.new_entities):
        if fnmatch.fnmatchcase(name, rule.match):
            return getattr(rule, key), f"new_entities[{i}].{key}"
    if key == "clearance":
        return doc.levels[0], "no clearance or new_entities rule: lowest level"
    return doc.levels[-1], "no classification or new_entities rule: highest level"


def _higher(level: str, where: str, spec: OperationSpec, base: Loc,
            rank: dict[str, int]) -> tuple[str, str]:
    if spec.classification is not None and rank[spec.classification] > rank[level]:
        return spec.classification, ".".join(str(part) for part in (*base, "classification"))
    return level, where


def _transit_below(base: Loc, spec: OperationSpec, level: str, where: str,
                   rank: dict[str, int]) -> Iterator[tuple[Loc, str]]:
    if spec.transit is not None and rank[spec.transit] < rank[level]:
        yield ((*base, "transit"),
               f"transit {spec.transit!r} is below the access classification {level!r} "
               f"({where}); transit may only raise the classification of messages")


def _entity_references(doc: PolicyFile) -> Iterator[tuple[Loc, str]]:
    for i, ref in enumerate(doc.acl_bypass):
        yield ("acl_bypass", i), ref
    for name, ent in doc.entities.items():
        yield from _acl_references(("entities", name), ent.acl)
        for ep_no, ep in ent.endpoints.items():
            yield from _acl_references(("entities", name, "endpoints", ep_no), ep.acl)
            for op_no, op in ep.operations.items():
                yield from _acl_references(
                    ("entities", name, "endpoints", ep_no, "operations", op_no), op.acl)


def _acl_references(base: Loc, acl: AclSpec | None) -> Iterator[tuple[Loc, str]]:
    if acl is None:
        return
    kind, refs = ("allow", acl.allow) if acl.allow is not None else ("deny", acl.deny or [])
    for i, ref in enumerate(refs):
        yield (*base, "acl", kind, i), ref
