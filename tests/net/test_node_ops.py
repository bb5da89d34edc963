"""Operating real node processes (issue 14 items 3, 4, 7): SIGHUP reloads the policy live
and survives a bad one; `node drain` under load loses no call, leaves the cluster ID and
exits 0; the node comes back after a restart; a migration outlives a restart."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.node_runtime import NodeCallError, NodeRuntime
from mercury_rt.config import build_node_spec, keyfiles, load_node_config
from mercury_rt.core.identity import eid_to_text, mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from tests.net.node_ops_support import (
    INITIAL_RTO,
    OPEN_POLICY,
    SECRET_CAROL,
    NodeProcess,
    carol_eid,
    write_cluster,
)
from tests.nodecfg_support import run as run_cli

pytestmark = pytest.mark.net
TRANSPORT = TransportConfig(initial_rto=INITIAL_RTO, min_rto=0.02, max_rto=2.0)
BAD_POLICY = "version: 1\nlevels: [public, secret]\nunknown_cluster_clearance: topsecret\n"


async def _outcome(call: Callable[[], Awaitable[bytes]]) -> int | None:
    try:
        await call()
    except NodeCallError as exc:
        return exc.raw_code
    return None


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float) -> None:
    """Poll an async condition until true, within `timeout` seconds (else fail)."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"


def test_sighup_applies_a_good_policy_and_keeps_the_old_one_over_a_bad_file(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    carol, policy = carol_eid(tmp_path), tmp_path / "policy.yaml"

    async def main() -> None:
        procs = {n: await NodeProcess.start(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.10.9", ()),)),
                                   TRANSPORT)
        caller = home.nodes["h1"]

        async def code() -> int | None:
            return await _outcome(lambda: caller.call(carol, 1, 1, dumps_typed(str, "x"),
                                                      caller=b"tester", timeout=5.0))

        async def hup(text: str) -> list[int]:
            policy.write_text(text)
            marks = [len(p.lines) for p in procs.values()]
            for proc in procs.values():
                proc.proc.send_signal(signal.SIGHUP)
            return marks

        try:
            assert await code() is None
            marks = await hup(SECRET_CAROL)
            for proc, mark in zip(procs.values(), marks, strict=True):
                await proc.wait_for("reload_applied", 10, after=mark)

            async def denied() -> bool:
                return await code() == ErrorCode.MAC_INSUFFICIENT_CLEARANCE
            await _until(denied, 10)

            marks = await hup(BAD_POLICY)
            for proc, mark in zip(procs.values(), marks, strict=True):
                line = await proc.wait_for(f"{policy}:3:", 10, after=mark)
                assert "reload_problem" in line and "topsecret" in line, line
                await proc.wait_for("reload_rejected", 10, after=mark)
            assert all(p.proc.returncode is None for p in procs.values()), "SIGHUP killed"
            assert await code() == ErrorCode.MAC_INSUFFICIENT_CLEARANCE, "old policy kept"

            marks = await hup(OPEN_POLICY)
            for proc, mark in zip(procs.values(), marks, strict=True):
                await proc.wait_for("reload_applied", 10, after=mark)

            async def allowed() -> bool:
                return await code() is None
            await _until(allowed, 10)
        finally:
            for proc in procs.values():
                await proc.close()
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_draining_a_node_under_load_fails_no_call_and_it_rejoins_after_restart(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    carol = carol_eid(tmp_path)
    master = keyfiles.load_cluster_ids(tmp_path / "cluster")[-1].master_hash
    b1_inter = load_node_config(configs["b1"]).listen.inter_port
    failures: list[int] = []
    done = 0

    async def main() -> None:
        nonlocal done
        procs = {n: await NodeProcess.start(c) for n, c in configs.items()}
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.10.8", ()),)),
                                   TRANSPORT)
        caller = home.nodes["h1"]
        stop = asyncio.Event()

        async def worker(w: int) -> None:
            nonlocal done
            for i in range(100_000):
                if stop.is_set():
                    return
                payload = dumps_typed(str, f"w{w}-{i}")
                code = await _outcome(lambda p=payload: caller.call(
                    carol, 1, 1, p, caller=b"load", timeout=5.0))
                if code is not None:
                    failures.append(code)
                done += 1

        def listed() -> set[int]:
            known = caller.planner.known.get(master)
            return set() if known is None else {a.port for a in known.addresses}

        async def answered_by() -> str:
            reply = await caller.call(carol, 1, 2, dumps_typed(None, None), caller=b"probe")
            return loads_typed(str, reply)

        try:
            for proc in procs.values():
                await proc.wait_for("membership_settled", 20)
            workers = [asyncio.ensure_future(worker(w)) for w in range(8)]
            assert await answered_by() == "b1", "b1 has the lower SRV priority"
            before, started = done, time.monotonic()
            drain = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "mercury_rt", "node", "drain", str(configs["b1"]),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(drain.communicate(), 30)
            assert drain.returncode == 0, (out, err)
            assert b"drained, exit status 0" in out
            assert await asyncio.wait_for(procs["b1"].proc.wait(), 10) == 0
            took = time.monotonic() - started
            draining = await procs["b1"].wait_for("node_draining", 5)
            assert "unpublished=True" in draining, draining
            print(f"node drain took {took:.2f} s; {done - before} calls meanwhile")
            assert b1_inter not in listed(), "the caller learnt a version without b1"
            assert caller.planner.known[master].version >= 2
            mark = done
            await _until(lambda: _true_after(lambda: done >= mark + 200), 30)
            assert done - before >= 200
            assert await answered_by() == "b2"

            procs["b1"] = await NodeProcess.start(configs["b1"])

            async def back() -> bool:
                return await answered_by() == "b1"
            await _until(back, 30)
            assert b1_inter in listed(), "restarted b1 is published again"
            stop.set()
            await asyncio.wait_for(asyncio.gather(*workers), 15)
        finally:
            stop.set()
            for proc in procs.values():
                await proc.close()
            await home.stop()

    asyncio.run(asyncio.wait_for(main(), 120))
    assert failures == [], f"{len(failures)} of {done} calls failed: {sorted(set(failures))}"
    print(f"drain under load: {done} calls, 0 failed")


async def _true_after(check: Callable[[], bool]) -> bool:
    await asyncio.sleep(0.05)  # a poll step of the bounded wait in _until, not a wait itself
    return check()


def test_node_drain_refuses_a_config_whose_node_is_not_running(tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    result = run_cli("node", "drain", str(configs["b1"]))
    assert result.exit_code == 4
    assert "no running node" in result.output
    pid = tmp_path / "state" / "b1" / "node.pid"
    pid.parent.mkdir(parents=True)
    pid.write_text("999999\n")
    result = run_cli("node", "drain", str(configs["b1"]))
    assert result.exit_code == 4 and "stale" in result.output


def test_a_migration_from_the_cli_still_answers_after_a_restart(tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    old_carol = carol_eid(tmp_path)

    async def main() -> None:
        moved_to = await start_cluster(
            ClusterPlan("newhome", (NodePlan("n1", "127.0.10.7", ("carol",)),)), TRANSPORT)
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.10.6", ()),)),
                                   TRANSPORT)
        new_eid = eid_to_text(moved_to.eid("carol"))
        try:
            for config in configs.values():
                result = run_cli("entity", "migrate", str(config), "carol", new_eid)
                assert result.exit_code == 0, result.output
                assert "next start" in result.output
            for _restart in range(2):
                nodes = [NodeRuntime(build_node_spec(load_node_config(c)))
                         for c in configs.values()]
                for node in nodes:
                    await node.start()
                try:
                    reply = await home.nodes["h1"].call(
                        old_carol, 1, 2, dumps_typed(None, None), caller=b"probe",
                        timeout=10.0)
                    assert loads_typed(str, reply) == "n1", "the old EID led to the new cluster"
                finally:
                    for node in nodes:
                        await node.stop()
        finally:
            await home.stop()
            await moved_to.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_migrating_an_entity_of_running_nodes_applies_at_once_and_after_restart(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    old_carol = carol_eid(tmp_path)

    async def main() -> None:
        moved_to = await start_cluster(
            ClusterPlan("newhome", (NodePlan("n1", "127.0.10.5", ("carol",)),)), TRANSPORT)
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.10.4", ()),)),
                                   TRANSPORT)
        procs = {n: await NodeProcess.start(c) for n, c in configs.items()}

        async def answered_by() -> str:
            reply = await home.nodes["h1"].call(old_carol, 1, 2, dumps_typed(None, None),
                                                caller=b"probe", timeout=10.0)
            return loads_typed(str, reply)

        try:
            assert await answered_by() == "b1"
            marks = {n: len(p.lines) for n, p in procs.items()}
            for name, config in configs.items():
                result = run_cli("entity", "migrate", str(config), "carol",
                                 eid_to_text(moved_to.eid("carol")))
                assert result.exit_code == 0 and "SIGHUP" in result.output, result.output
                line = await procs[name].wait_for("reload_applied", 10, after=marks[name])
                assert "migrations=1" in line, line
            assert await answered_by() == "n1"
            for name, proc in procs.items():
                proc.proc.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(proc.proc.wait(), 20) == 0
                await proc.close()
                procs[name] = await NodeProcess.start(configs[name])
            assert await answered_by() == "n1", "the migration outlived the restart"
        finally:
            for proc in procs.values():
                await proc.close()
            await home.stop()
            await moved_to.stop()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_entity_migrate_refuses_a_bad_eid_an_eid_of_this_cluster_and_an_unknown_entity(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    config = str(configs["b1"])
    bad = run_cli("entity", "migrate", config, "carol", "meid1notaneid")
    assert bad.exit_code == 2 and "NEW_EID" in bad.output
    same = run_cli("entity", "migrate", config, "carol", eid_to_text(carol_eid(tmp_path)))
    assert same.exit_code == 2 and "same cluster" in same.output
    away = tmp_path / "away"
    assert run_cli("cluster", "new", "--dir", str(away), "--seed-phrase-out",
                   str(tmp_path / "w2.txt"), "--address=127.0.10.3:7000/10/10").exit_code == 0
    away_key, _ = keyfiles.load_cluster_key(away)
    elsewhere = eid_to_text(mint_eid(away_key, keyfiles.load_cluster_ids(away)[-1], b"carol"))
    unknown = run_cli("entity", "migrate", config, "nobody", elsewhere)
    assert unknown.exit_code == 2 and "not an entity" in unknown.output
    assert run_cli("entity", "migrate", config, "carol", elsewhere).exit_code == 0


def test_a_migration_named_in_the_config_answers_and_outlives_its_removal(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    old_carol = carol_eid(tmp_path)

    async def main() -> None:
        moved_to = await start_cluster(
            ClusterPlan("newhome", (NodePlan("n1", "127.0.10.11", ("carol",)),)), TRANSPORT)
        home = await start_cluster(ClusterPlan("home", (NodePlan("h1", "127.0.10.12", ()),)),
                                   TRANSPORT)
        text = {n: c.read_text() for n, c in configs.items()}
        try:
            for moved in (f"moved: {{carol: {eid_to_text(moved_to.eid('carol'))}}}\n", ""):
                for name, config in configs.items():
                    config.write_text(text[name] + moved)
                nodes = [NodeRuntime(build_node_spec(load_node_config(c)))
                         for c in configs.values()]
                for node in nodes:
                    await node.start()
                try:
                    reply = await home.nodes["h1"].call(
                        old_carol, 1, 2, dumps_typed(None, None), caller=b"probe",
                        timeout=10.0)
                    assert loads_typed(str, reply) == "n1"
                finally:
                    for node in nodes:
                        await node.stop()
        finally:
            await home.stop()
            await moved_to.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_node_check_refuses_a_migration_of_an_unknown_entity_or_into_this_cluster(
        tmp_path: Path) -> None:
    configs = write_cluster(tmp_path)
    config = configs["b1"]
    base = config.read_text()
    own = eid_to_text(carol_eid(tmp_path))
    config.write_text(base + f"moved: {{nobody: {own}, carol: {own}}}\n")
    result = run_cli("node", "check", str(config))
    assert result.exit_code == 2
    line = len(base.splitlines()) + 1
    assert f"{config}:{line}: moved.nobody: 'nobody' is not an entity" in result.output
    assert f"{config}:{line}: moved.carol: the new EID is in this same cluster" \
        in result.output
    config.write_text(base + "moved: {carol: meid1nonsense}\n")
    bad = run_cli("node", "check", str(config))
    assert bad.exit_code == 2 and "moved.carol" in bad.output and "not an EID" in bad.output
