"""`mercury-rt node status CONFIG` and `node members CONFIG`: ask a running node.

Both read the node's /status from its admin interface (mercury_rt/cli/admin_client.py)
and print it for a person, or as the node's JSON with `--json`. Exit codes: 0 shown,
2 the config is not valid, 4 the node is not running, 5 the admin interface refused
(wrong token) or answered something unexpected.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from mercury_rt.aio.node_status import MemberStatus, NodeStatusReport, StatusFormatError
from mercury_rt.cli.admin_client import AdminClient, AdminClientError
from mercury_rt.cli.node import _load_or_exit

EXIT_NOT_RUNNING = 4
EXIT_ADMIN_REFUSED = 5
_HASH_PREFIX = 16


def register(group: click.Group) -> None:
    """Add `status` and `members` to the `node` group."""
    group.add_command(status_command)
    group.add_command(members_command)


@click.command("status")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the node's JSON status.")
def status_command(config: Path, as_json: bool) -> None:
    """Show the running node of CONFIG: cluster ID version, readiness, members, held
    messages (exit 4 if it is not running)."""
    report = _fetch(config)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
        return
    for line in status_lines(report):
        click.echo(line)


@click.command("members")
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the members as JSON.")
def members_command(config: Path, as_json: bool) -> None:
    """List the cluster's nodes as the running node of CONFIG sees them."""
    report = _fetch(config)
    if as_json:
        click.echo(json.dumps([m.to_json() for m in report.members], indent=2,
                              sort_keys=True))
        return
    for line in member_lines(report.members):
        click.echo(line)


def _fetch(config: Path) -> NodeStatusReport:
    loaded = _load_or_exit(config)
    try:
        reply = AdminClient.for_config(loaded, config).get("/status")
        if reply.status == 401:
            _fail(f"{config}: the admin interface refused the token (HTTP 401); check "
                  "admin.token_file", EXIT_ADMIN_REFUSED)
        if reply.status != 200:
            _fail(f"{config}: the admin interface answered HTTP {reply.status}: "
                  f"{reply.body[:200].decode('utf-8', 'replace').strip()}", EXIT_ADMIN_REFUSED)
        return NodeStatusReport.from_json(reply.json())
    except AdminClientError as exc:
        _fail(f"{config}: {exc.message}",
              EXIT_ADMIN_REFUSED if exc.running else EXIT_NOT_RUNNING)
    except StatusFormatError as exc:
        _fail(f"{config}: unexpected status from the admin interface: {exc}",
              EXIT_ADMIN_REFUSED)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def status_lines(report: NodeStatusReport) -> list[str]:
    """The human-readable status of one node."""
    ready = report.readiness
    missing = [name for name, held in (("keys loaded", ready.keys_loaded),
                                       ("sockets bound", ready.sockets_bound),
                                       ("membership settled", ready.membership_settled))
               if not held]
    why = ([f"not yet: {', '.join(missing)}"] if missing else []) + \
        ([] if ready.not_draining else ["draining"])
    routed = sum(1 for m in report.members if m.routed)
    return [
        f"node {report.node_id} of cluster {report.cluster[:_HASH_PREFIX]}, cluster ID "
        f"version {report.cluster_id_version}, up {report.uptime:.1f} s",
        "ready: yes" if ready.ready else f"ready: no ({'; '.join(why)})",
        f"listening: inter-cluster udp {report.inter or '-'}, intra-cluster udp "
        f"{report.intra or '-'}",
        f"published: {', '.join(report.published) or '(no addresses)'}",
        f"members: {len(report.members)} ({routed} routed)",
        f"held messages: {report.held_pending} pending; transit sessions: "
        f"{report.sessions}; entities mirrored: {report.entities}",
    ]


def member_lines(members: tuple[MemberStatus, ...]) -> list[str]:
    """One line per member under a header, in columns."""
    rows = [("NODE", "LIVENESS", "ROUTED", "PUBLIC", "INTRA", "LAST HEARD", "INCARNATION")]
    rows += [(m.node_id, m.liveness, "yes" if m.routed else "no", m.public or "-",
              m.intra or "-", "-" if m.last_heard is None else f"{m.last_heard:.1f} s ago",
              "-" if m.incarnation is None else str(m.incarnation)) for m in members]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]
