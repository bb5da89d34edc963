"""`mercury-rt entity migrate CONFIG ENTITY NEW_EID`: an entity moved to another cluster.

The move is written to the node's state store (tungsten/moves.py), so it outlives
restarts; a running node of CONFIG is sent SIGHUP and answers for it at once (the reload
takes up stored moves), a stopped one from its next start. Requests for ENTITY are then
answered with a forwarding record signed by this cluster's key (docs/protocol.md 6.6), and
callers holding the old EID follow it. Run it for every node's config: each node answers
from its own state.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import NoReturn

import click

from carbon.error_codes import MercuryError
from mercury_rt.cli.node_pidfile import Running, find_running
from mercury_rt.config import keyfiles, load_node_config
from mercury_rt.core.identity import Eid
from mercury_rt.core.identity.text import eid_from_text
from policy.yaml_source import ConfigFileError
from tungsten.errors import StateError
from tungsten.moves import Move, StoredMoves
from tungsten.store import LmdbStore

EXIT_BAD_INPUT = 2


@click.group("entity")
def entity_group() -> None:
    """Manage a cluster's entities (migration)."""


@entity_group.command("migrate")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("entity")
@click.argument("new_eid")
def migrate(config: Path, entity: str, new_eid: str) -> None:
    """Record that ENTITY (a local name of this cluster) now lives at NEW_EID (meid1...)."""
    try:
        loaded = load_node_config(config)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_BAD_INPUT)
    target = _new_eid(new_eid)
    own = keyfiles.load_cluster_ids(loaded.cluster_dir)[-1].master_hash
    if target.cluster_id.master_hash == own:
        _refuse("NEW_EID is in this same cluster; migration moves an entity to another "
                "cluster")
    if entity not in loaded.entities():
        _refuse(f"{entity!r} is not an entity of this cluster's config (cluster.nodes "
                "mirrors)")
    try:
        store = LmdbStore(loaded.state_dir)
        try:
            StoredMoves(store).record(Move(entity.encode(), target.encode(),
                                           int(time.time())))
            store.sync()
        finally:
            store.close()
    except StateError as exc:
        _refuse(f"cannot write the node's state: {exc.message}")
    running = find_running(loaded.state_dir)
    if isinstance(running, Running):
        os.kill(running.pid, signal.SIGHUP)
        click.echo(f"{entity} migrated; node {loaded.node_id} (pid {running.pid}) told to "
                   "answer for it now (SIGHUP)")
    else:
        click.echo(f"{entity} migrated; node {loaded.node_id} answers for it from its next "
                   "start")


def _new_eid(text: str) -> Eid:
    try:
        return Eid.decode(eid_from_text(text))
    except MercuryError as exc:
        _refuse(f"NEW_EID: {exc.message} (error {int(exc.code)})")


def _refuse(message: str) -> NoReturn:
    click.echo(f"cannot migrate: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


COMMANDS: list[click.Command] = [entity_group]
