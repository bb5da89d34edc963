"""The example cluster in conf/ works as its README says: create the keys, check each node."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pydantic import BaseModel

from mercury_rt.config import (
    DeliveredConfig,
    GateSettings,
    Listen,
    LogSettings,
    NodeConfig,
    NodeConfigChecker,
    PeerNode,
    RoutingSettings,
    SignatureLimits,
    TransportLimits,
    TransportSettings,
    load_node_config,
)
from mercury_rt.config.node import ConnectionBounds, HandlerSettings
from policy.yaml_source import parse_model
from tests.nodecfg_support import make_cluster, run

CONF = Path(__file__).parents[3] / "conf"
EXAMPLE = CONF / "example-cluster"
NODES = ("node-a", "node-b", "node-c")


def test_example_cluster_checks_after_the_readme_steps(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf, ignore=shutil.ignore_patterns("cluster", "state", "seed-*"))
    readme = (EXAMPLE / "README.md").read_text()
    addresses = re.findall(r"--address (\S+)", readme)
    assert len(addresses) == len(NODES)
    make_cluster(conf / "example-cluster" / "cluster", *addresses)

    configs = [load_node_config(conf / "example-cluster" / f"{n}.yaml") for n in NODES]
    for name, config in zip(NODES, configs, strict=True):
        assert config.node_id == name
        assert config.cluster.nodes == configs[0].cluster.nodes, "node lists must agree"
        assert config.policy is not None and config.policy.is_file()
        result = run("node", "check", str(conf / "example-cluster" / f"{name}.yaml"))
        assert result.exit_code == 0, result.output
        assert f"ok (node {name}, cluster " in result.output
        assert "3 nodes, 3 entities" in result.output
    hosts = {c.listen.host for c in configs}
    ports = {p for c in configs for p in (c.listen.inter_port, c.listen.intra_port)}
    assert hosts == {"127.0.0.1", "127.0.0.2", "127.0.0.3"} and len(ports) == 6
    for entity in configs[0].entities():
        assert len(configs[0].mirrors_of(entity)) == 2, entity
    published = [str(a) for a in configs[0].public_addresses()]
    assert published == addresses, "README's cluster new must publish the configs' addresses"


def test_no_key_files_are_committed() -> None:
    ignored = (CONF.parent / ".gitignore").read_text()
    assert "/conf/example-cluster/cluster/" in ignored
    assert "/conf/example-cluster/state/" in ignored


def test_operator_guide_example_is_a_valid_config() -> None:
    guide = (CONF.parent / "docs" / "operator-guide.md").read_text()
    section = guide.split("## Node configuration", 1)[1]
    example = section.split("### Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_model(example, "guide", NodeConfig)
    assert config.self_peer.node_id == "node-a" and len(config.peers) == 2
    assert [str(a) for a in config.public_addresses()] == ["192.0.2.10:7400/10/50",
                                                          "192.0.2.11:7400/10/50"]
    findings = list(NodeConfigChecker(Path("/nonexistent")).check(config))
    assert [loc for loc, _ in findings] == [("cluster_dir",), ("policy",)]  # files missing


def test_operator_guide_lists_every_key() -> None:
    guide = (CONF.parent / "docs" / "operator-guide.md").read_text()
    section = guide.split("## Node configuration", 1)[1]
    models: list[tuple[str, type[BaseModel]]] = [
        ("", NodeConfig), ("listen.", Listen), ("cluster.nodes[].", PeerNode),
        ("cluster.routing.", RoutingSettings), ("transport.", TransportSettings),
        ("gate.", GateSettings), ("delivered.", DeliveredConfig), ("log.", LogSettings),
        ("handlers.", HandlerSettings), ("connections.", ConnectionBounds),
        ("limits.signatures.", SignatureLimits), ("limits.transport.", TransportLimits)]
    for prefix, model in models:
        for name in model.model_fields:
            if name in ("listen", "cluster", "transport", "gate", "delivered", "log",
                        "handlers", "limits", "connections"):
                continue
            key = f"{prefix}{name}"
            assert f"`{key}`" in section or f"/ `{name}`" in section, key
