"""A node built from its YAML config through the documented API, on loopback: stopping it
releases what it opened, so the same config can be built and started again in the same
process (issue 16 item 6)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import build_node_spec, parse_node_config
from mercury_rt.localcluster import free_port
from tests.nodecfg_support import make_cluster

pytestmark = pytest.mark.net
HOST = "127.0.0.61"


def test_a_node_built_again_from_the_same_config_after_stop_starts(tmp_path: Path) -> None:
    make_cluster(tmp_path / "cluster", f"{HOST}:7401/10/50")
    inter, intra = free_port(HOST), free_port(HOST)
    text = (f"node_id: node-a\ncluster_dir: cluster\nstate_dir: state/node-a\n"
            f"listen: {{host: '{HOST}', inter_port: {inter}, intra_port: {intra}}}\n"
            f"cluster:\n  nodes:\n    - {{node_id: node-a, intra: '{HOST}:{intra}'}}\n")

    async def cycle() -> None:
        node = NodeRuntime(build_node_spec(parse_node_config(text, tmp_path)))
        await node.start()
        await node.stop()

    for _ in range(3):
        asyncio.run(asyncio.wait_for(cycle(), timeout=10))
