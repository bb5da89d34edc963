"""CLI verbs for the node area: `node check` (validate a node config) and `node run`.

`check` loads the config exactly as a starting node does (same loader, same referenced
files), so a config that passes it fails at start-up only for run-time reasons (a port in
use, a disk full), never for a typo.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from carbon.error_codes import MercuryError
from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.cli.node_drain import drain
from mercury_rt.cli.node_serve import serve
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
    """Start the node of CONFIG; SIGHUP reloads it, SIGTERM or Ctrl-C drains it and stops."""
    loaded = _load_or_exit(config)
    try:
        spec = build_node_spec(loaded)
    except MercuryError as exc:
        click.echo(f"{config}: cannot start: {exc.message} (error {int(exc.code)})", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    configure_logging(loaded.log.level, json=loaded.log.format == "json")
    tune_gc()
    try:
        run(serve(spec, loaded, config))
    except OSError as exc:
        click.echo(f"{config}: cannot bind {loaded.listen.host}: {exc}", err=True)
        sys.exit(EXIT_CANNOT_BIND)


node_group.add_command(drain)
COMMANDS: list[click.Command] = [node_group]
