"""`mercury-rt etcd dev-cluster start|stop DIR`: three members that answer, stopped by PID,
data deleted; a second start in the same DIR is refused."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mercury_rt.cli.main import cli
from tests.etcd_support import require_etcd
from tungsten.etcd_store import EtcdSettings, EtcdState

pytestmark = pytest.mark.net


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_dev_cluster_starts_answers_and_stops_by_pid(tmp_path: Path) -> None:
    require_etcd()
    runner = CliRunner()
    started = runner.invoke(cli, ["etcd", "dev-cluster", "start", str(tmp_path)])
    assert started.exit_code == 0, started.output
    records = json.loads((tmp_path / "members.json").read_text())
    try:
        assert "replication: {endpoints:" in started.output
        again = runner.invoke(cli, ["etcd", "dev-cluster", "start", str(tmp_path)])
        assert again.exit_code != 0 and "already" in again.output
        settings = EtcdSettings(tuple((r["host"], r["client_port"]) for r in records))

        async def roundtrip() -> object:
            state = EtcdState(settings)
            try:
                assert await state.put_if_version(b"k", b"v", 0)
                assert not await state.put_if_version(b"k", b"w", 0)
                return await state.get(b"k")
            finally:
                await state.close()

        assert asyncio.run(roundtrip()) == (b"v", 1)
    finally:
        stopped = runner.invoke(cli, ["etcd", "dev-cluster", "stop", str(tmp_path)])
    assert stopped.exit_code == 0, stopped.output
    assert "stopped 3" in stopped.output
    assert not any(_alive(r["pid"]) for r in records)
    assert not any((tmp_path / r["name"]).exists() for r in records)
