"""Reading a policy: a YAML file validated by the schema, compiled into the model.

This is the only path from text to a `Policy`, and the only part of the package that
needs yaml and pydantic; the compiled model (policy.model) and the decisions on it
(policy.access) stay free of both, so the pure core can import them.
"""

from __future__ import annotations

from pathlib import Path

from policy.model import Acl, EntityRef, NewEntityRule, Policy, RemoteCluster, Rules
from policy.schema import (
    AclSpec,
    EndpointSpec,
    EntitySpec,
    OperationSpec,
    PolicyFile,
    check_policy,
)
from policy.yaml_source import load_model, parse_model


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
    clearance = floor = None
    if isinstance(spec, EntitySpec):
        children = {n: _entity_rules(f"{path}.endpoints.{n}", ep, rank, aliases)
                    for n, ep in spec.endpoints.items()}
        clearance, floor = spec.clearance, spec.transit_floor
    elif isinstance(spec, EndpointSpec):
        children = {n: _entity_rules(f"{path}.operations.{n}", op, rank, aliases)
                    for n, op in spec.operations.items()}
    return Rules(
        path=path,
        classification=None if spec.classification is None else rank[spec.classification],
        hashcash_bits=spec.hashcash_bits,
        acl=_acl(f"{path}.acl", spec.acl, aliases),
        clearance=None if clearance is None else rank[clearance],
        children=children,
        transit=None if spec.transit is None else rank[spec.transit],
        transit_floor=None if floor is None else rank[floor])


def _acl(path: str, spec: AclSpec | None, aliases: dict[str, bytes]) -> Acl | None:
    if spec is None:
        return None
    if spec.allow is not None:
        return Acl(True, tuple(parse_ref(r, aliases) for r in spec.allow), f"{path}.allow")
    return Acl(False, tuple(parse_ref(r, aliases) for r in spec.deny or ()), f"{path}.deny")
