"""A node built from its config announces exactly its configured `public` address to
membership (which republishes the cluster ID from what live nodes announce): not the
address it binds, which is wrong behind NAT or on 0.0.0.0, and nothing when it has none."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.aio.node_runtime import NodeRuntime, NodeSpec
from mercury_rt.config import build_node_spec, parse_node_config
from mercury_rt.core.membership import NodeIdentity, PublicAddress
from mercury_rt.core.node import NodeMembership
from tests.nodecfg_support import make_cluster

CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
listen: {{host: '{host}', inter_port: {inter}, intra_port: {intra}}}
cluster:
  nodes:
    - {{node_id: node-a, intra: '10.0.0.1:7501', public: '192.0.2.10:7401/10/50'}}
    - {{node_id: node-b, intra: '10.0.0.2:7502'}}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("builder")
    make_cluster(base / "cluster", "192.0.2.10:7401/10/50")
    return base


def _announced(spec: NodeSpec, inter: tuple[str, int]) -> tuple[PublicAddress, ...]:
    """What the node's membership would put in its heartbeats, bound at `inter`."""
    core = NodeRuntime(spec).core
    identity = NodeIdentity.issue(spec.node_id, Ed25519PrivateKey.generate(),
                                  spec.cluster_key, core.master_hash)
    membership = NodeMembership(core, identity, spec.cluster_key, inter_address=inter,
                                settings=spec.membership, incarnation=1, now=0.0)
    return membership.own_public


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0"])
def test_a_public_node_announces_its_configured_public_address(workdir: Path,
                                                               host: str) -> None:
    config = parse_node_config(CONFIG.format(node="node-a", host=host, inter=7401,
                                             intra=7501), workdir)
    spec = build_node_spec(config)
    try:
        assert _announced(spec, (host, 7401)) == (
            PublicAddress(ip_address("192.0.2.10"), 7401, 10, 50),)
    finally:
        spec.store.close()


def test_a_node_without_public_announces_nothing(workdir: Path) -> None:
    config = parse_node_config(CONFIG.format(node="node-b", host="10.0.0.2", inter=7402,
                                             intra=7502), workdir)
    spec = build_node_spec(config)
    try:
        assert _announced(spec, ("10.0.0.2", 7402)) == ()
    finally:
        spec.store.close()
