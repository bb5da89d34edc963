"""Rules of a node config that span several keys, and the files it points to.

Each rule yields (location, message) so policy.yaml_source puts it at its line; every rule
runs, so an operator sees every problem of a config in one pass. The files a config names
(cluster directory, policy) are opened here too: a node that would fail at start-up should
fail `mercury-rt node check` the same way, with the key that names the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.apps import AppError, import_app
from mercury_rt.config import keyfiles
from mercury_rt.config.admin import admin_findings
from mercury_rt.config.etcd_tls import replication_findings
from mercury_rt.config.mint_defaults import MINT_DEFAULTS_FILE, load_mint_defaults
from mercury_rt.config.node import NodeConfig, PeerNode, app_search_path
from mercury_rt.core.identity import Eid, KeyRef, public_bytes
from policy.load import load_policy
from policy.yaml_source import ConfigFileError, Loc, Problem

Finding = tuple[Loc, str]


class NodeConfigChecker:
    """The semantic check for load_model; remembers problems found in other files."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.found_semantic = False
        self.cluster_dir_only = True
        self.extra: list[Problem] = []

    def check(self, config: NodeConfig) -> Iterator[Finding]:
        """Every cross-field and referenced-file problem of `config` (paths unresolved)."""
        findings = [*_node_list(config), *_self_entry(config), *_ports(config),
                    *self._files(config), *self._apps(config), *self._moves(config),
                    *admin_findings(config.admin, self._at),
                    *replication_findings(config.replication, self._at)]
        self.found_semantic = bool(findings)
        self.cluster_dir_only = all(loc == ("cluster_dir",) for loc, _ in findings)
        return iter(findings)

    def with_extra(self, exc: ConfigFileError) -> ConfigFileError:
        """The loader's error plus other files' problems, with a node-config code."""
        code = exc.code
        if self.found_semantic:
            code = (ErrorCode.NODE_CLUSTER_DIR_UNUSABLE if self.cluster_dir_only
                    else ErrorCode.NODE_CONFIG_INVALID)
        return ConfigFileError([*exc.problems, *self.extra], code)

    def _at(self, path: Path) -> Path:
        return path if path.is_absolute() else self.base / path

    def _files(self, config: NodeConfig) -> Iterator[Finding]:
        problem = cluster_dir_problem(self._at(config.cluster_dir))
        if problem is not None:
            yield ("cluster_dir",), problem
        else:
            yield from self._mint_defaults(self._at(config.cluster_dir))
        state = self._at(config.state_dir)
        if state.exists() and not state.is_dir():
            yield ("state_dir",), f"{state} exists and is not a directory"
        if config.policy is not None:
            yield from self._policy(self._at(config.policy))
        if config.log.audit_file is not None:
            audit = self._at(config.log.audit_file)
            if not audit.parent.is_dir() and not audit.parent.is_relative_to(state):
                yield ("log", "audit_file"), (f"directory {audit.parent} does not exist (only "
                                              "folders inside state_dir are created)")

    def _mint_defaults(self, cluster_dir: Path) -> Iterator[Finding]:
        try:
            load_mint_defaults(cluster_dir)
        except ConfigFileError as exc:
            self.extra += exc.problems
            yield ("cluster_dir",), (f"{cluster_dir / MINT_DEFAULTS_FILE} has "
                                     f"{len(exc.problems)} problem(s), listed with their own "
                                     "lines")

    def _moves(self, config: NodeConfig) -> Iterator[Finding]:
        """Each migrated entity is one of the cluster's, moved to another cluster."""
        if not config.moved:
            return
        entities = config.entities()
        try:
            own = keyfiles.load_cluster_ids(self._at(config.cluster_dir))[-1].master_hash
        except MercuryError:
            own = None  # reported as a cluster_dir problem
        for (local, _), (_, eid) in zip(sorted(config.moved.items()), config.moves(),
                                        strict=True):
            if local not in entities:
                yield ("moved", local), (f"{local!r} is not an entity of this cluster "
                                         "(no node of cluster.nodes mirrors it)")
            elif own is not None and Eid.decode(eid).cluster_id.master_hash == own:
                yield ("moved", local), ("the new EID is in this same cluster; migration "
                                         "moves an entity to another cluster")

    def _policy(self, path: Path) -> Iterator[Finding]:
        try:
            load_policy(path)
        except ConfigFileError as exc:
            self.extra += exc.problems
            yield ("policy",), (f"policy file {path} has {len(exc.problems)} problem(s), "
                                "listed with their own lines")


    def _apps(self, config: NodeConfig) -> Iterator[Finding]:
        """Each app must import and have setup(app), as at start-up (setup runs there), from
        the same search path: app_paths, then the config file's folder."""
        for i, folder in enumerate(config.app_paths):
            if not self._at(folder).is_dir():
                yield ("app_paths", i), f"{self._at(folder)} is not a directory"
        search = app_search_path(config.app_paths, self.base)
        for i, name in enumerate(config.apps):
            try:
                import_app(name, search)
            except AppError as exc:
                yield ("apps", i), exc.message


def cluster_dir_problem(directory: Path) -> str | None:
    """Why a node could not use `directory` as its cluster directory, or None if it can."""
    if not directory.is_dir():
        return (f"cluster directory {directory} does not exist; create it with "
                f"`mercury-rt cluster new --dir {directory} --address HOST:PORT/PRIO/WEIGHT`")
    try:
        current = keyfiles.load_cluster_ids(directory)[-1]
        key, key_version = keyfiles.load_cluster_key(directory)
    except MercuryError as exc:
        return f"cannot load the cluster: error {exc.code.value} {exc.code.name}: {exc.message}"
    if KeyRef.of_key(public_bytes(key)).hash != current.cluster_key_hash:
        return (f"cluster.key (version {key_version}) is not the key of the current cluster "
                f"ID (version {current.version}); copy both files from the same cluster")
    return None


def _node_list(config: NodeConfig) -> Iterator[Finding]:
    """Node ids, intra addresses and public addresses are unique; mirrors not repeated."""
    ids: dict[str, int] = {}
    intras: dict[tuple[str, int], int] = {}
    publics: dict[tuple[str, int], int] = {}
    for i, node in enumerate(config.cluster.nodes):
        where: Loc = ("cluster", "nodes", i)
        if node.node_id in ids:
            yield (*where, "node_id"), (f"node id {node.node_id!r} is already used by "
                                        f"cluster.nodes.{ids[node.node_id]}")
        ids.setdefault(node.node_id, i)
        if node.intra_address in intras:
            yield (*where, "intra"), (f"intra address {node.intra} is already used by "
                                      f"cluster.nodes.{intras[node.intra_address]}")
        intras.setdefault(node.intra_address, i)
        public = node.public_address
        if public is not None:
            key = (str(public.host), public.port)
            if key in publics:
                yield (*where, "public"), (f"public address {public.host}:{public.port} is "
                                           f"already used by cluster.nodes.{publics[key]}")
            publics.setdefault(key, i)
        yield from _repeated(node.mirrors, (*where, "mirrors"))


def _repeated(entities: list[str], where: Loc) -> Iterator[Finding]:
    seen: set[str] = set()
    for k, entity in enumerate(entities):
        if entity in seen:
            yield (*where, k), f"entity {entity!r} is listed twice"
        seen.add(entity)


def _self_entry(config: NodeConfig) -> Iterator[Finding]:
    """This node is in cluster.nodes, with the same mirrors and intra port."""
    yield from _repeated(config.mirrors, ("mirrors",))
    index = next((i for i, n in enumerate(config.cluster.nodes)
                  if n.node_id == config.node_id), None)
    if index is None:
        yield ("node_id",), (f"this node ({config.node_id!r}) is not in cluster.nodes; add "
                             "an entry for it with its intra address and mirrors")
        return
    own: PeerNode = config.cluster.nodes[index]
    mine, listed = set(config.mirrors), set(own.mirrors)
    if mine != listed:
        parts = [f"only here: {sorted(mine - listed)}" if mine - listed else "",
                 f"only there: {sorted(listed - mine)}" if listed - mine else ""]
        yield ("mirrors",), (f"differs from cluster.nodes.{index}.mirrors (this node's "
                             f"entry): {'; '.join(p for p in parts if p)}")
    intra_port = config.listen.intra_port
    if intra_port and own.intra_address[1] != intra_port:
        yield ("listen", "intra_port"), (
            f"is {intra_port} but this node's entry cluster.nodes.{index}.intra says "
            f"{own.intra}; other nodes would send to the wrong port")


def _ports(config: NodeConfig) -> Iterator[Finding]:
    listen = config.listen
    if listen.inter_port and listen.inter_port == listen.intra_port:
        yield ("listen", "intra_port"), (f"is the same as listen.inter_port "
                                         f"({listen.inter_port}); the inter-cluster and "
                                         "intra-cluster ports must differ")
