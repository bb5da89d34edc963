"""`mercury-rt node drain CONFIG`: make the running node of CONFIG leave cleanly.

It finds the node by its pid file (cli/node_pidfile.py: refused clearly when there is none
or it is stale), sends SIGTERM (the node drains: aio/drain.py), waits for the process to end
and reports the exit status the node recorded. Exit status: 0 drained, 1 the node ended
without recording a clean drain, 4 no running node, 5 still running after --timeout.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import click

from mercury_rt.cli.node_pidfile import NotRunning, find_running, last_exit
from mercury_rt.config import load_node_config
from policy.yaml_source import ConfigFileError

EXIT_NOT_CLEAN = 1
EXIT_BAD_CONFIG = 2
EXIT_NOT_RUNNING = 4
EXIT_STILL_RUNNING = 5
POLL_EVERY = 0.05


@click.command("drain")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--timeout", type=click.FloatRange(min=0.1), default=60.0, show_default=True,
              help="Seconds to wait for the node to exit.")
def drain(config: Path, timeout: float) -> None:
    """Drain the running node of CONFIG (as SIGTERM does) and wait for it to exit."""
    try:
        loaded = load_node_config(config)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_BAD_CONFIG)
    found = find_running(loaded.state_dir)
    if isinstance(found, NotRunning):
        click.echo(f"{config}: no running node to drain: {found.reason}", err=True)
        sys.exit(EXIT_NOT_RUNNING)
    click.echo(f"node {loaded.node_id} (pid {found.pid}): draining", err=True)
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while isinstance(find_running(loaded.state_dir), type(found)):
        if time.monotonic() >= deadline:
            click.echo(f"node {loaded.node_id} (pid {found.pid}) still running after "
                       f"{timeout:g} s", err=True)
            sys.exit(EXIT_STILL_RUNNING)
        time.sleep(POLL_EVERY)
    record = last_exit(loaded.state_dir)
    if record is None or record.get("pid") != found.pid or not record.get("drained"):
        click.echo(f"node {loaded.node_id} (pid {found.pid}) exited without recording a "
                   f"clean drain ({record})", err=True)
        sys.exit(EXIT_NOT_CLEAN)
    click.echo(f"node {loaded.node_id} (pid {found.pid}) drained, exit status "
               f"{record.get('status')}")
