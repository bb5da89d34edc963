"""A node process's life under `node run`: pid file, signals, reloads, drain, exit status.

- SIGTERM and SIGINT drain the node (aio/drain.py) and exit 0; a second one while draining
  stops at once (in-flight handlers are still awaited).
- SIGHUP reloads (cli/node_reload.py): never fatal; a bad file keeps what is in force.
- The pid file (cli/node_pidfile.py) lets `node drain` and `entity migrate` find the node.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import click

from mercury_rt.aio.node_runtime import NodeRuntime, NodeSpec
from mercury_rt.cli.node_pidfile import PidFile
from mercury_rt.cli.node_reload import LiveReload
from mercury_rt.config import NodeConfig


async def serve(spec: NodeSpec, loaded: NodeConfig, config_path: Path) -> None:
    """Run the node of `loaded` until a signal drains it."""
    pid_file = PidFile(loaded.state_dir)
    pid_file.acquire()
    status: int | None = None  # None: the node did not return normally (an exception)
    drained = False
    try:
        drained = await _serve(spec, loaded, config_path)
        status = 0
    finally:
        pid_file.release(status, drained)


async def _serve(spec: NodeSpec, loaded: NodeConfig, config_path: Path) -> bool:
    name = loaded.node_id
    node = NodeRuntime(spec)
    await node.start()
    inter, intra = node.addresses
    click.echo(f"node {name} listening: inter-cluster udp {inter[0]}:{inter[1]}, "
               f"intra-cluster udp {intra[0]}:{intra[1]}", err=True)
    reload = LiveReload(node, loaded, config_path)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload.on_signal)
    try:
        await stop.wait()
        stop.clear()
        click.echo(f"node {name} draining: leaving the cluster ID, finishing in-flight "
                   "requests", err=True)
        drain = asyncio.ensure_future(node.drain())
        forced = asyncio.ensure_future(stop.wait())
        await asyncio.wait({drain, forced}, return_when=asyncio.FIRST_COMPLETED)
        if not drain.done():
            click.echo(f"node {name}: second signal, stopping without the drain", err=True)
            drain.cancel()
            await asyncio.gather(drain, return_exceptions=True)
            await node.stop()
        forced.cancel()
        drained = not drain.cancelled() and drain.exception() is None
        if not drain.cancelled() and drain.exception() is not None:
            click.echo(f"node {name}: drain failed ({drain.exception()!r}); stopping", err=True)
            await node.stop()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    spec.store.close()
    click.echo(f"node {name} stopped", err=True)
    return drained
