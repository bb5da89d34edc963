"""CLI verb `dev`: a development node (or a small cluster) on loopback, up until Ctrl-C.

One command instead of keys, a cluster ID, configs and a policy: `mercury-rt dev myapp`
starts nodes serving the app `myapp` (a module with `setup(app)`, mercury_rt.apps; a
`.py` path works too) for a few entities, gives each the readable name
`<entity>@<cluster>` in the naming entity `names`, prints their EIDs and names, writes the
dev state file `mercury-rt call` reads (cli/devstate.py), and prints `ready`. Keys are
fresh each run and never written; the policy is open (every caller cleared at `public`),
so this is for a developer's own machine, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from ipaddress import ip_address
from pathlib import Path

import click

from carbon.error_codes import MercuryError
from carbon.names import parse_name
from mercury_rt.aio.loop import run
from mercury_rt.aio.names import NAMING_ENTITY
from mercury_rt.apps import import_app
from mercury_rt.cli.devstate import DevState, dev_dir, state_path, write_state
from mercury_rt.config import format_host_port
from mercury_rt.core.identity import eid_to_text
from mercury_rt.localcluster import ClusterPlan, LocalCluster, NodePlan, start_cluster
from mercury_rt.logs import configure_logging

DEFAULT_APP = "mercury_rt.apps.echo"
NAMING_APP = "mercury_rt.apps.naming"
DEFAULT_ENTITIES = ("alice", "bob")
MAX_DEV_NODES = 5
READY = "mercury-rt dev ready"
EXIT_BAD_APP = 2


def app_module(text: str) -> str:
    """The module name of an APP argument; a `.py` path puts its folder on sys.path.

    The current directory goes on sys.path too (as `python -m` does), so an app next to
    where the developer runs `dev` imports without PYTHONPATH."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if text.endswith(".py"):
        path = Path(text).resolve()
        sys.path.insert(0, str(path.parent))
        return path.stem
    return text


def dev_plan(cluster: str, apps: tuple[str, ...], entities: tuple[str, ...], nodes: int,
             host: str) -> ClusterPlan:
    """The cluster `dev` starts: every node mirrors every entity and the naming entity."""
    mirrors = (*entities, NAMING_ENTITY.decode())
    return ClusterPlan(cluster, tuple(NodePlan(f"dev{i}", host, mirrors)
                                      for i in range(1, nodes + 1)),
                       apps=(*apps, NAMING_APP), echo=False)


@click.command("dev")
@click.argument("apps", nargs=-1)
@click.option("--entity", "-e", "entities", multiple=True,
              help=f"An entity to serve (repeatable; default {', '.join(DEFAULT_ENTITIES)}).")
@click.option("--nodes", type=click.IntRange(1, MAX_DEV_NODES), default=1, show_default=True,
              help="How many nodes (each mirrors every entity).")
@click.option("--cluster", default="dev", show_default=True,
              help="The cluster label of the names (alice@dev).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address.")
@click.option("--dev-dir", "dev_dir_option", default=None,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the state file for `mercury-rt call` goes "
                   "(default $MERCURY_RT_DEV_DIR or ~/.cache/mercury-rt/dev).")
def dev(apps: tuple[str, ...], entities: tuple[str, ...], nodes: int, cluster: str, host: str,
        dev_dir_option: Path | None) -> None:
    """Serve APPs (default mercury_rt.apps.echo) on loopback until Ctrl-C."""
    configure_logging("warning")
    if not _is_loopback(host):
        raise click.BadParameter(f"{host!r} is not a loopback address: a dev node's policy "
                                 "is open, so it listens on 127.0.0.0/8 or ::1 only",
                                 param_hint="--host")
    modules = tuple(app_module(a) for a in apps) or (DEFAULT_APP,)
    try:
        for entity in entities or ("x",):
            parse_name(f"{entity}@{cluster}")
        for module in modules:
            import_app(module)
    except MercuryError as exc:
        click.echo(f"error {int(exc.code)} {exc.code.name}: {exc.message}", err=True)
        sys.exit(EXIT_BAD_APP)
    plan = dev_plan(cluster, modules, entities or DEFAULT_ENTITIES, nodes, host)
    directory = dev_dir(dev_dir_option)
    try:
        run(_serve(plan, directory))
    except MercuryError as exc:
        click.echo(f"error {int(exc.code)} {exc.code.name}: {exc.message}", err=True)
        sys.exit(EXIT_BAD_APP)
    except OSError as exc:
        raise click.ClickException(f"cannot open UDP sockets on {host}: {exc}") from exc


def _is_loopback(host: str) -> bool:
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


async def _serve(plan: ClusterPlan, directory: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    cluster = await start_cluster(plan)
    path = state_path(directory, plan.name)
    try:
        state = _publish(cluster)
        write_state(directory, state)
        _announce(cluster, state, path)
        await stop.wait()
    finally:
        path.unlink(missing_ok=True)
        await cluster.stop()
    click.echo("mercury-rt dev stopped")


def _publish(cluster: LocalCluster) -> DevState:
    """Name every entity `<entity>@<cluster>` on every node (each holds the naming
    entity's state); the state file says the same for `mercury-rt call`."""
    label = cluster.plan.name
    entities = [e for e in cluster.plan.nodes[0].mirrors if e != NAMING_ENTITY.decode()]
    eids = {e: cluster.eid(e) for e in entities}
    for node in cluster.nodes.values():
        for entity, eid in eids.items():
            node.publish_name(f"{entity}@{label}", eid)
    inter = {node_id: format_host_port(*n.addresses[0]) for node_id, n in cluster.nodes.items()}
    return DevState(label, eid_to_text(cluster.eid(NAMING_ENTITY.decode())), inter,
                    {e: eid_to_text(eid) for e, eid in eids.items()}, os.getpid())


def _announce(cluster: LocalCluster, state: DevState, path: Path) -> None:
    plan = cluster.plan
    apps = ", ".join(a for a in plan.apps if isinstance(a, str) and a != NAMING_APP)
    click.echo(f"mercury-rt dev: cluster {plan.name}, {len(cluster.nodes)} node(s), "
               f"apps {apps}")
    for node_id, address in state.nodes.items():
        click.echo(f"  node {node_id} udp {address}")
    for entity, text in state.entities.items():
        click.echo(f"  {entity}@{plan.name} {text}")
    click.echo(f"  names@{plan.name} (naming entity) {state.naming}")
    click.echo(f"state file: {path}")
    first = next(iter(state.entities), None)
    if first is not None:
        click.echo(f"try: mercury-rt call {first}@{plan.name} 0 list-interfaces")
    click.echo(f"{READY} (Ctrl-C to stop)")
    sys.stdout.flush()


COMMANDS: list[click.Command] = [dev]
