"""CLI verbs for the node area: `node check` (validate a node config) and `node run`.

`check` loads the config exactly as a starting node does (same loader, same referenced
files), so a config that passes it fails at start-up only for run-time reasons (a port in
use, a disk full), never for a typo.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mercury_rt import keyfiles
from mercury_rt.node_config import load_node_config
from policy.yaml_source import ConfigFileError

EXIT_BAD_CONFIG = 2
MASTER_HASH_PREFIX = 16


@click.group("node")
def node_group() -> None:
    """Check node configurations and run nodes."""


@node_group.command("check")
@click.argument("config", type=click.Path(path_type=Path))
def check(config: Path) -> None:
    """Validate CONFIG; print every problem as file:line: key.path: message (exit 2)."""
    try:
        loaded = load_node_config(config)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) (error {exc.code.value} "
                   f"{exc.code.name}); the node config was not accepted", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    current = keyfiles.load_cluster_ids(loaded.cluster_dir)[-1]
    click.echo(f"{config}: ok (node {loaded.node_id}, cluster "
               f"{current.master_hash.hex()[:MASTER_HASH_PREFIX]}, "
               f"{len(loaded.cluster.nodes)} nodes, {len(loaded.entities())} entities)")


COMMANDS: list[click.Command] = [node_group]
