"""The `mercury-rt` console script: one group, one module per area of verbs."""

from __future__ import annotations

import click

from mercury_rt.cli import (
    call,
    demo,
    dev,
    entities,
    etcd,
    identity,
    migrate,
    names,
    node,
    node_status,
    policy,
)


@click.group()
@click.version_option(package_name="mercury-rt")
def cli() -> None:
    """Run and manage mercury-rt nodes, clusters, EIDs and policy."""


for _area in (call, demo, dev, entities, etcd, identity, migrate, names, node, policy):
    for _command in _area.COMMANDS:
        cli.add_command(_command)
node_status.register(node.node_group)


def main() -> None:
    """Console-script entry point."""
    cli()
