"""CLI verbs for the node area: `node check` (validate a node config) and `node run`.

`check` loads the config exactly as a starting node does (same loader, same referenced
files), so a config that passes it fails at start-up only for run-time reasons (a port in
use, a disk full), never for a typo.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from carbon.error_codes import MercuryError
from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.aio.node_runtime import NodeRuntime, NodeSpec
from mercury_rt.config import NodeConfig, build_node_spec, keyfiles, load_node_config
from mercury_rt.logs import configure_logging
from policy.yaml_source import ConfigFileError

EXIT_BAD_CONFIG = 2
EXIT_CANNOT_BIND = 3
MASTER_HASH_PREFIX = 16


@click.group("node")
def node_group() -> None:
    """Check node configurations and run nodes."""


def _load_or_exit(config: Path) -> NodeConfig:
    """The validated config, or every problem printed and exit status 2."""
    try:
        return load_node_config(config)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) (error {exc.code.value} "
                   f"{exc.code.name}); the node config was not accepted", err=True)
        sys.exit(EXIT_BAD_CONFIG)


@node_group.command("check")
@click.argument("config", type=click.Path(path_type=Path))
def check(config: Path) -> None:
    """Validate CONFIG; print every problem as file:line: key.path: message (exit 2)."""
    loaded = _load_or_exit(config)
    current = keyfiles.load_cluster_ids(loaded.cluster_dir)[-1]
    click.echo(f"{config}: ok (node {loaded.node_id}, cluster "
               f"{current.master_hash.hex()[:MASTER_HASH_PREFIX]}, "
               f"{len(loaded.cluster.nodes)} nodes, {len(loaded.entities())} entities)")


@node_group.command("run")
@click.argument("config", type=click.Path(path_type=Path))
def run_node(config: Path) -> None:
    """Start the node of CONFIG; SIGTERM or Ctrl-C drains in-flight requests and stops."""
    loaded = _load_or_exit(config)
    try:
        spec = build_node_spec(loaded)
    except MercuryError as exc:
        click.echo(f"{config}: cannot start: {exc.message} (error {int(exc.code)})", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    configure_logging(loaded.log.level, json=loaded.log.format == "json")
    tune_gc()
    try:
        run(_serve(spec, loaded.node_id))
    except OSError as exc:
        click.echo(f"{config}: cannot bind {loaded.listen.host}: {exc}", err=True)
        sys.exit(EXIT_CANNOT_BIND)


async def _serve(spec: NodeSpec, name: str) -> None:
    node = NodeRuntime(spec)
    await node.start()
    inter, intra = node.addresses
    click.echo(f"node {name} listening: inter-cluster udp {inter[0]}:{inter[1]}, "
               f"intra-cluster udp {intra[0]}:{intra[1]}", err=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    click.echo(f"node {name} stopping: draining in-flight requests", err=True)
    await node.stop()
    spec.store.close()
    click.echo(f"node {name} stopped", err=True)


COMMANDS: list[click.Command] = [node_group]
