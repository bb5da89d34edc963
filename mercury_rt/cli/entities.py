"""CLI verbs for entity state: `mercury-rt state check DIR`."""

from __future__ import annotations

from pathlib import Path

import click

from tungsten.errors import StateError
from tungsten.store import LmdbStore


@click.group("state")
def state() -> None:
    """Inspect a node's entity state (TUNGSTEN on LMDB)."""


@state.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def check(directory: Path) -> None:
    """Verify every record in DIRECTORY parses; exit 1 if any does not.

    Run it with the node stopped, e.g. after an operating-system crash.
    """
    try:
        store = LmdbStore(directory)
    except StateError as exc:
        raise click.ClickException(f"cannot open state: {exc.message}") from None
    try:
        report = store.verify()
    finally:
        store.close()
    click.echo(f"{report.records} records, {report.entities} entities, "
               f"map size {report.map_size} bytes")
    for problem in report.problems:
        click.echo(f"bad record {problem}", err=True)
    if not report.ok:
        raise click.ClickException("state has undecodable records; restore from backup")
    click.echo("state ok")


COMMANDS: list[click.Command] = [state]
