"""CLI verbs `name resolve|publish|withdraw|list`: readable entity names (`alice@dev`).

A cluster's names live in its naming entity `names` (mercury_rt.apps.naming serves it).
`resolve` asks it over the network, as `mercury-rt call` does for a NAME@CLUSTER target;
`publish`, `withdraw` and `list` work on a node's own state directory (the node config's
`state_dir`), so run them on a node that mirrors `names`, once per mirror, with the node
stopped, as `state check` is: a running node reads its state through a snapshot it keeps
between its own commits and would not see another process's write until then. (A
program embedding a node publishes live with `NodeRuntime.publish_name`.)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from carbon.error_codes import ErrorCode, MercuryError
from carbon.names import MAX_EID_BYTES
from lithium.naming import NAMES_SECTION, remove_name, set_name
from mercury_rt.aio.loop import run
from mercury_rt.aio.names import NAMING_ENTITY
from mercury_rt.cli.call import EXIT_BAD_INPUT, InputError, identity_from_options, report_error
from mercury_rt.cli.devstate import dev_dir, read_state
from mercury_rt.config import NodeConfig, load_node_config
from mercury_rt.core.identity import eid_from_text, eid_to_text
from mercury_rt.tool_client import config_client, throwaway_client
from policy.yaml_source import ConfigFileError
from tungsten.store import LmdbStore

MAX_LISTED = 10_000


@click.group("name")
def name_group() -> None:
    """Resolve, publish and list readable entity names (local@cluster)."""


@name_group.command("resolve")
@click.argument("name")
@click.option("--naming", default=None, help="EID of the cluster's naming entity.")
@click.option("--dev-dir", "dev_dir_option", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where `mercury-rt dev` left its state file.")
@click.option("--as", "as_config", type=click.Path(path_type=Path), default=None,
              help="Ask as an entity of this node config's cluster.")
@click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0, show_default=True)
def resolve(name: str, naming: str | None, dev_dir_option: Path | None,
            as_config: Path | None, timeout: float) -> None:
    """Print the EID NAME stands for, as its cluster's naming entity answers."""
    identity = identity_from_options(as_config, None, "127.0.0.1")
    try:
        cluster = name.rpartition("@")[2]
        dev = read_state(dev_dir(dev_dir_option), cluster) if cluster else None
        naming = naming or (dev.naming if dev is not None else None)
        if naming is None:
            raise InputError(f"no naming entity known for cluster {cluster!r}: pass --naming "
                             "EID or run `mercury-rt dev`", ErrorCode.NAME_NOT_FOUND)
        eid = run(asyncio.wait_for(_resolve(identity.config, name, eid_from_text(naming),
                                            timeout), 3 * timeout))
    except MercuryError as exc:
        sys.exit(report_error(exc))
    click.echo(eid_to_text(eid))


async def _resolve(config: NodeConfig | None, name: str, naming: bytes,
                   timeout: float) -> bytes:
    client = await (config_client(config, "cli") if config else throwaway_client())
    try:
        return await client.node.resolve_name(name, naming, caller=client.caller,
                                              timeout=timeout)
    finally:
        await client.close()


def _store(config_path: Path) -> tuple[NodeConfig, LmdbStore]:
    try:
        config = load_node_config(config_path)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_BAD_INPUT)
    if NAMING_ENTITY.decode() not in config.self_peer.mirrors:
        click.echo(f"warning: node {config.node_id} does not mirror {NAMING_ENTITY.decode()!r}; "
                   "its names are served only by nodes that do", err=True)
    return config, LmdbStore(config.state_dir)


@name_group.command("publish")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("name")
@click.argument("eid")
def publish(config: Path, name: str, eid: str) -> None:
    """Publish NAME -> EID (meid1 text) in the naming entity of CONFIG's (stopped) node."""
    try:
        raw = eid_from_text(eid)
        _, store = _store(config)
        try:
            with store.writing() as txn:
                set_name(txn, NAMING_ENTITY, name, raw)
        finally:
            store.close()
    except MercuryError as exc:
        sys.exit(report_error(exc))
    click.echo(f"published {name}")


@name_group.command("withdraw")
@click.argument("config", type=click.Path(path_type=Path))
@click.argument("name")
def withdraw(config: Path, name: str) -> None:
    """Withdraw NAME from CONFIG's (stopped) node's naming entity (exit 1 if it had none)."""
    try:
        _, store = _store(config)
        try:
            with store.writing() as txn:
                existed = remove_name(txn, NAMING_ENTITY, name)
        finally:
            store.close()
    except MercuryError as exc:
        sys.exit(report_error(exc))
    if not existed:
        raise click.ClickException(f"no name {name} was published")
    click.echo(f"withdrew {name}")


@name_group.command("list")
@click.argument("config", type=click.Path(path_type=Path), required=False)
@click.option("--cluster", default="dev", show_default=True,
              help="Without CONFIG: the `mercury-rt dev` cluster whose names to list.")
@click.option("--dev-dir", "dev_dir_option", default=None,
              type=click.Path(file_okay=False, path_type=Path))
def list_names(config: Path | None, cluster: str, dev_dir_option: Path | None) -> None:
    """List the names CONFIG's node publishes (or a running dev node's), with EIDs."""
    try:
        if config is None:
            state = read_state(dev_dir(dev_dir_option), cluster)
            if state is None:
                raise click.ClickException(f"no `mercury-rt dev --cluster {cluster}` is running")
            for entity, text in sorted(state.entities.items()):
                click.echo(f"{entity}@{state.cluster} {text}")
            return
        _, store = _store(config)
        try:
            with store.reading() as view:
                records = view.scan(NAMING_ENTITY, NAMES_SECTION, MAX_LISTED)
        finally:
            store.close()
    except MercuryError as exc:
        sys.exit(report_error(exc))
    for key, value in records:
        if isinstance(key[0], str) and isinstance(value[0], bytes) \
                and len(value[0]) <= MAX_EID_BYTES:
            click.echo(f"{key[0]} {eid_to_text(value[0])}")


COMMANDS: list[click.Command] = [name_group]
