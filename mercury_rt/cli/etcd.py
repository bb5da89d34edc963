"""`mercury-rt etcd dev-cluster start|stop DIR`: a local 3-member etcd for development.

Members listen on 127.0.91.1-3 (never 127.0.0.1:2379), keep their data in DIR, and are
recorded in DIR/members.json; `stop` ends exactly those PIDs and deletes the data dirs.
Not for production: plaintext, one machine (docs/operator-guide.md, "Mirrored state on
etcd").
"""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from mercury_rt.etcd_dev import STATE_FILE, start_cluster, stop_cluster


@click.group("etcd")
def etcd_group() -> None:
    """etcd for mirrored state (development helpers)."""


@etcd_group.group("dev-cluster")
def dev_cluster() -> None:
    """A local 3-member etcd on loopback, stopped by PID."""


@dev_cluster.command("start")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def start(directory: Path) -> None:
    """Start three members with their data in DIRECTORY; prints the replication section."""
    if shutil.which("etcd") is None or shutil.which("etcdctl") is None:
        raise click.ClickException("etcd is not installed: apt-get install -y "
                                   "--no-install-recommends etcd-server etcd-client")
    if (directory / STATE_FILE).exists():
        raise click.ClickException(f"{directory} already has a running dev cluster; "
                                   f"`mercury-rt etcd dev-cluster stop {directory}` first")
    members = start_cluster(directory)
    endpoints = ", ".join(f"'{m.host}:{m.client_port}'" for m in members)
    click.echo(f"etcd dev cluster running: PIDs {' '.join(str(m.pid) for m in members)}")
    click.echo("add to each node config:")
    click.echo(f"replication: {{endpoints: [{endpoints}]}}")


@dev_cluster.command("stop")
@click.argument("directory", type=click.Path(file_okay=False, exists=True, path_type=Path))
def stop(directory: Path) -> None:
    """Stop the members recorded in DIRECTORY (by PID) and delete their data."""
    if not (directory / STATE_FILE).exists():
        raise click.ClickException(f"no dev cluster recorded in {directory}")
    click.echo(f"stopped {stop_cluster(directory)} etcd members")


COMMANDS = [etcd_group]
