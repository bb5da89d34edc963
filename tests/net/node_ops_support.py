"""Real node processes for the operations tests: a two-node cluster from YAML on 127.0.10.x,
each process's stderr collected so a test can wait for a log line (bounded)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from click.testing import CliRunner

from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import mint_eid
from mercury_rt.localcluster import free_port

INITIAL_RTO = 0.2
NODES = (("b1", "127.0.10.1", 10), ("b2", "127.0.10.2", 20))
OPEN_POLICY = ("version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: public\n"
               "new_entities: [{match: '*', classification: public, clearance: public}]\n")
SECRET_CAROL = OPEN_POLICY + "entities:\n  carol:\n    classification: secret\n"

CONFIG = """\
node_id: {node}
cluster_dir: cluster
state_dir: state/{node}
policy: policy.yaml
apps: [mercury_rt.apps.echo]
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [carol]
cluster:
  nodes:
{peers}
transport: {{initial_rto: {rto}, min_rto: 0.02, max_rto: 2.0}}
"""


def write_cluster(tmp: Path) -> dict[str, Path]:
    """cluster/, policy.yaml (open) and one config per node, both mirroring carol."""
    ports = {n: (free_port(h), free_port(h)) for n, h, _ in NODES}
    addresses = [f"--address={h}:{ports[n][0]}/{p}/10" for n, h, p in NODES]
    result = CliRunner().invoke(cli, ["cluster", "new", "--dir", str(tmp / "cluster"),
                                      "--seed-phrase-out", str(tmp / "words.txt"), *addresses])
    assert result.exit_code == 0, result.output
    (tmp / "policy.yaml").write_text(OPEN_POLICY)
    peers = "\n".join(f"    - {{node_id: {n}, intra: '{h}:{ports[n][1]}', "
                      f"public: '{h}:{ports[n][0]}/{p}/10', mirrors: [carol]}}"
                      for n, h, p in NODES)
    configs = {}
    for node, host, _ in NODES:
        path = tmp / f"{node}.yaml"
        path.write_text(CONFIG.format(node=node, host=host, inter=ports[node][0],
                                      intra=ports[node][1], peers=peers, rto=INITIAL_RTO))
        configs[node] = path
    return configs


def carol_eid(tmp: Path) -> bytes:
    """The cluster's full-keys EID of carol."""
    key, _ = keyfiles.load_cluster_key(tmp / "cluster")
    return mint_eid(key, keyfiles.load_cluster_ids(tmp / "cluster")[-1], b"carol").encode()


class NodeProcess:
    """`mercury-rt node run CONFIG` with its stderr lines kept."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, config: Path) -> NodeProcess:
        """Start the node and wait for its "listening" line."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mercury_rt", "node", "run", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        node = cls(proc)
        await node.wait_for("listening", 20)
        return node

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            async with self._changed:
                self.lines.append(line.decode(errors="replace"))
                self._changed.notify_all()

    async def wait_for(self, text: str, timeout: float, after: int = 0) -> str:
        """The first line from index `after` on containing `text` (TimeoutError if none)."""
        def found() -> str | None:
            return next((line for line in self.lines[after:] if text in line), None)

        async def wait() -> str:
            async with self._changed:
                await self._changed.wait_for(lambda: found() is not None)
            line = found()
            assert line is not None
            return line

        return await asyncio.wait_for(wait(), timeout)

    async def close(self) -> None:
        """Kill if still running; reap."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._reader, 5)
