"""The `mercury-rt` console script: one group, one module per area of verbs."""

from __future__ import annotations

import click

from mercury_rt.cli import demo, entities, identity, migrate, node, policy


@click.group()
@click.version_option(package_name="mercury-rt")
def cli() -> None:
    """Run and manage mercury-rt nodes, clusters, EIDs and policy."""


for _area in (demo, entities, identity, migrate, node, policy):
    for _command in _area.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli()
