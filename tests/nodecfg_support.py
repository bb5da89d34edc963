"""Shared helpers for the node-config tests: a real cluster directory and config text."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from mercury_rt.cli.main import cli


def run(*args: str) -> Result:
    """Invoke `mercury-rt ARGS...` in-process."""
    return CliRunner().invoke(cli, list(args))


def make_cluster(directory: Path, *addresses: str) -> Path:
    """`mercury-rt cluster new --dir directory`, as an operator would run it (with
    `--no-addresses` when none are given)."""
    flags = [item for a in addresses for item in ("--address", a)] or ["--no-addresses"]
    result = run("cluster", "new", "--dir", str(directory), *flags)
    assert result.exit_code == 0, result.output
    return directory


def config_text(cluster_dir: Path | str = "cluster", node_id: str = "node-a",
                mirrors: str = "[alice, bob]", inter: int = 7401, intra: int = 7501,
                extra: str = "") -> str:
    """A valid two-node config (node-a, node-b); tweak one thing per test."""
    return f"""\
node_id: {node_id}
cluster_dir: {cluster_dir}
state_dir: state
listen:
  host: 127.0.0.1
  inter_port: {inter}
  intra_port: {intra}
mirrors: {mirrors}
cluster:
  nodes:
    - node_id: node-a
      intra: 127.0.0.1:7501
      public: 127.0.0.1:7401/10/50
      mirrors: [alice, bob]
    - node_id: node-b
      intra: 127.0.0.2:7502
      public: "[2001:db8::2]:7402/20/0"
      mirrors: [bob, carol]
  routing:
    not_mirrored: redirect
{extra}"""


def line_of(text: str, snippet: str, occurrence: int = 1) -> int:
    """The 1-based line of the `occurrence`-th line starting (after indent) with `snippet`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1)
            if line.strip().startswith(snippet)]
    assert len(hits) >= occurrence, f"{snippet!r} not in the config"
    return hits[occurrence - 1]
