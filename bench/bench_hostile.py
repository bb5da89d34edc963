"""Hostile peers against a real node (issue 17's "Done when" figures), each beside its
baseline measured in the same run, printed as one table with target and pass/fail.

The attacked node (b1 of cluster "away", serving carol, the demo echo) runs in a process
of its own on 127.0.2.1; the legitimate caller (alice on a1 of cluster "home", 127.0.1.1)
in this one; every attacker in a process of its own (multiprocessing, bench/hostile_peers.py)
on its own loopback address, so what saturates is the node's receive path.

  a. flood: requests each carrying a freshly minted, validly signed source EID of a new
     self-made cluster, from `--flooders` processes as fast as they can make them, for
     `--seconds`; alice calls carol one call at a time throughout: her success and p99
     against her quiet p99 (measured just before, same run). Targets >= 99 %, <= 10x.
  b. filled tables: the node's sender-epoch marks, records, reassemblies and sessions
     filled from a few addresses (many ports each) and topped up; a brand-new caller
     (new cluster, 127.0.0.9) calls carol: time until served, beside a newcomer's first
     call on the quiet node (127.0.0.8). Target <= 5 s.
  c. memory held per peer (bench_memory.py's figures, and the node's RSS growth per
     filling datagram in b). Targets from issue 17 item 11: idle peer <= 2 KB, cached EID
     of a known cluster <= 1 KB.
  d. bytes the node sends to an address that never proved it receives, per reply kind
     (POLL of an unknown id, cluster-ID and key queries without padding, refusals,
     202/203/204/206, transit refusals 702/703/708...), from raw sockets: <= 3x received.
  e. the node's RSS growth over the flood of a: < 20 MB.

`--quick` is a smoke run (2 s flood, tables shrunk by 16: the mechanism, not the size).
Run under `flock /tmp/mercury-suite.lock` (2 shared cores: the figures are as measured).

    python bench/bench_hostile.py [--seconds 60] [--flooders 1] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, replace
from typing import Any

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from hostile_amplification import amplification
from hostile_peers import PAYLOAD, FillPlan, Target, fill, flood

from mercury_rt.aio.loop import run, tune_gc
from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from mercury_rt.logs import configure_logging

AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.2.1", ("carol",)),))
HOME = ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),))
CALL_TIMEOUT = 10.0
FILL_HOSTS = ("127.0.5.1", "127.0.5.2", "127.0.5.3", "127.0.5.4")


def node_transport(shrink: int) -> TransportConfig:
    """The attacked node's transport: defaults, or every table `shrink` times smaller."""
    base = TransportConfig()
    if shrink == 1:
        return base
    per_host = getattr(base, "max_epochs_per_host", None)  # absent before 0842a51
    if per_host is not None:
        base = replace(base, max_epochs_per_host=per_host // shrink)
    return replace(base, max_peers=base.max_peers // shrink,
                   max_records=base.max_records // shrink,
                   max_records_per_peer=base.max_records_per_peer // shrink,
                   max_call_span=base.max_call_span // shrink,
                   max_reassembly_bytes=base.max_reassembly_bytes // shrink,
                   max_reassembly_bytes_per_peer=base.max_reassembly_bytes_per_peer // shrink)


# ----- the attacked node's process ----------------------------------------------------------

def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def serve(shrink: int) -> None:
    configure_logging("info")  # as an operator runs it; the bench counts the lines
    tune_gc()
    away = await start_cluster(AWAY, transport=node_transport(shrink))
    node = away.nodes["b1"]
    loop = asyncio.get_running_loop()
    print("STATS", json.dumps({"address": list(node.addresses[0]),
                      "cluster_id": away.cluster_id.encode().hex(),
                      "carol": away.eid("carol").hex()}), flush=True)

    def stats() -> None:
        assert node.inter is not None
        core = node.inter.core
        print("STATS", json.dumps({"transport": {k: v for k, v in asdict(core.stats).items()
                                        if isinstance(v, int)},
                          "budget": node.core.signature_budget.statistics(),
                          "sessions": len(getattr(node.transit.inter, "_sessions", ())),
                          "rss": rss_bytes(os.getpid())}), flush=True)

    def commands() -> None:
        for _ in sys.stdin:
            loop.call_soon_threadsafe(stats)

    threading.Thread(target=commands, daemon=True).start()
    await asyncio.Event().wait()


class Node:
    """The attacked node's process, as the bench sees it."""

    def __init__(self, shrink: int) -> None:
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(shrink)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        assert self.proc.stdout is not None
        hello = self._line()
        self.target = Target(tuple(hello["address"]), bytes.fromhex(hello["cluster_id"]),
                             bytes.fromhex(hello["carol"]))

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return self._line()

    def _line(self) -> dict[str, Any]:
        """The next line the node's process wrote for us (its logs go to the same pipe)."""
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the attacked node's process ended")
            if line.startswith("STATS "):
                return json.loads(line[6:])  # type: ignore[no-any-return]

    def stop(self) -> int:
        """Stop the node's process; how many lines it logged (at info)."""
        self.proc.kill()
        self.proc.wait()
        self.log.seek(0)
        lines = sum(1 for _ in self.log)
        self.log.close()
        return lines


# ----- the legitimate callers ---------------------------------------------------------------

async def calls(node: NodeRuntime, carol: bytes, seconds: float) -> dict[str, Any]:
    """Alice's calls, one at a time for `seconds`: successes and latencies."""
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.perf_counter() + seconds
    while time.perf_counter() < stop_at:
        start = time.perf_counter()
        try:
            await node.call(carol, 1, 1, PAYLOAD, caller=b"alice", timeout=CALL_TIMEOUT)
        except Exception as exc:  # any failure is a failed call here
            failures.append(str(getattr(exc, "code", type(exc).__name__)))
        else:
            latencies.append(time.perf_counter() - start)
    latencies.sort()
    total = len(latencies) + len(failures)
    return {"calls": total, "failures": sorted(set(failures)),
            "success": len(latencies) / total if total else 0.0,
            "p50_ms": latencies[len(latencies) // 2] * 1e3 if latencies else None,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3 if latencies else None}


async def newcomer(host: str, carol: bytes, limit: float = 30.0) -> tuple[float, list[str]]:
    """Seconds a brand-new caller (new cluster on `host`) waits for its first answer,
    calling again after each failure until `limit`, and the failures it saw."""
    plan = ClusterPlan("new" + host.replace(".", ""), (NodePlan("n1", host, ("nina",)),))
    cluster = await start_cluster(plan)
    start, failures = time.perf_counter(), []
    try:
        while time.perf_counter() - start < limit:
            try:
                await cluster.nodes["n1"].call(carol, 1, 1, PAYLOAD, caller=b"nina",
                                               timeout=limit - (time.perf_counter() - start))
                return time.perf_counter() - start, failures
            except Exception as exc:
                failures.append(f"{getattr(exc, 'code', '?')} after "
                                f"{time.perf_counter() - start:.1f} s: {str(exc)[:120]}")
        return float("inf"), failures
    finally:
        await cluster.stop()


# ----- the figures ------------------------------------------------------------------------

async def figure_flood(node: Node, a1: NodeRuntime, seconds: float, quiet_seconds: float,
                       flooders: int) -> dict[str, Any]:
    quiet = await calls(a1, node.target.target_eid, quiet_seconds)
    context = multiprocessing.get_context("spawn")
    stop, sent = context.Event(), context.Value("q", 0)
    procs = [context.Process(target=flood, args=(node.target, f"127.0.3.{i + 1}", stop, sent))
             for i in range(flooders)]
    for proc in procs:
        proc.start()
    while sent.value == 0:  # each flooder first fetches the node's transit key
        await asyncio.sleep(0.05)
    before, start = node.stats(), time.perf_counter()
    loaded = await calls(a1, node.target.target_eid, seconds)
    elapsed, after, offered = time.perf_counter() - start, node.stats(), sent.value
    stop.set()
    for proc in procs:
        proc.join(10)
    received = after["transport"]["datagrams_in"] - before["transport"]["datagrams_in"]
    return {"quiet": quiet, "flood": loaded, "offered_per_s": offered / elapsed,
            "node_received_per_s": received / elapsed,
            "signature_checks_charged": after["budget"]["charged"]
            - before["budget"]["charged"],
            "stamps_demanded": after["budget"]["demanded"] - before["budget"]["demanded"],
            "rss_before": before["rss"], "rss_after": after["rss"],
            "rss_growth": after["rss"] - before["rss"]}


async def figure_fill(node: Node, a1: NodeRuntime, shrink: int) -> dict[str, Any]:
    baseline, _ = await newcomer("127.0.0.8", node.target.target_eid)
    config = node_transport(shrink)
    plan = FillPlan(config.max_peers, config.max_epochs_per_peer, config.max_records,
                    config.max_records_per_peer, config.max_reassemblies_per_peer,
                    config.max_reassembly_bytes_per_peer, config.max_reassembly_bytes,
                    sessions=4096 // shrink)
    context = multiprocessing.get_context("spawn")
    stop, ready, sent = context.Event(), context.Event(), context.Value("q", 0)
    before = node.stats()
    proc = context.Process(target=fill, args=(node.target, FILL_HOSTS, plan, stop, ready, sent))
    proc.start()
    started = time.perf_counter()
    while not ready.is_set() and time.perf_counter() - started < 300:
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # let the node take in what is queued
    filled = node.stats()
    served, failures = await newcomer("127.0.0.9", node.target.target_eid)
    existing = await calls(a1, node.target.target_eid, 2.0)
    stop.set()
    proc.join(10)
    return {"newcomer_quiet_s": baseline, "newcomer_filled_s": served,
            "newcomer_failures": failures,
            "existing_caller": existing, "fill_seconds": time.perf_counter() - started,
            "fill_datagrams": sent.value, "rss_growth_fill": filled["rss"] - before["rss"],
            "tables": {k: filled["transport"].get(k, 0) - before["transport"].get(k, 0)
                       for k in ("refused", "replies_dropped", "fragments_refused",
                                 "amplification_limited")},
            "sessions_held": filled["sessions"]}


def figure_memory(peers: int) -> dict[str, float]:
    script = os.path.join(os.path.dirname(__file__), "bench_memory.py")
    out = subprocess.run([sys.executable, script, "--peers", str(peers), "--eids", str(peers),
                          "--json"], capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    shrink = 16 if args.quick else 1
    node = Node(shrink)
    home = await start_cluster(HOME)
    out: dict[str, Any] = {}
    try:
        a1 = home.nodes["a1"]
        await a1.call(node.target.target_eid, 1, 1, PAYLOAD, caller=b"alice")
        progress("d. amplification probes")
        out["amplification"] = await asyncio.to_thread(amplification, node.target)
        progress(f"a/e. quiet calls, then the flood for {args.seconds:g} s")
        out["flood"] = await figure_flood(node, a1, args.seconds, min(args.seconds, 5.0),
                                          args.flooders)
        progress("b. filling the tables")
        out["fill"] = await figure_fill(node, a1, shrink)
    finally:
        await home.stop()
        out["node_log_lines"] = node.stop()
    progress("c. memory per peer (bench_memory.py)")
    out["memory"] = figure_memory(2000)  # tracemalloc: exact, and cheap enough
    return out


# ----- the table ----------------------------------------------------------------------------

def rows(out: dict[str, Any]) -> list[tuple[str, str, str, str, bool]]:
    """(figure, baseline, measured, target, pass) for each figure."""
    flood_, fill_, memory = out["flood"], out["fill"], out["memory"]
    quiet_p99, loaded_p99 = flood_["quiet"]["p99_ms"], flood_["flood"]["p99_ms"]
    ratio = loaded_p99 / quiet_p99 if quiet_p99 and loaded_p99 else float("inf")
    result = [
        ("a. legit success under fresh-cluster flood",
         f"{flood_['quiet']['success']:.1%} quiet", f"{flood_['flood']['success']:.1%}",
         ">= 99 %", flood_["flood"]["success"] >= 0.99),
        ("a. legit p99 under flood / quiet p99", f"{quiet_p99:.2f} ms",
         f"{loaded_p99 or 0:.2f} ms ({ratio:.1f}x)", "<= 10x", ratio <= 10),
        ("b. new caller served after tables filled", f"{fill_['newcomer_quiet_s']:.2f} s quiet",
         f"{fill_['newcomer_filled_s']:.2f} s", "<= 5 s", fill_["newcomer_filled_s"] <= 5),
        ("b. existing caller while filled", "", f"{fill_['existing_caller']['success']:.1%}",
         ">= 99 %", fill_["existing_caller"]["success"] >= 0.99),
        ("c. memory per idle peer (transport+transit+node)", "",
         f"{memory['idle_peer_total']:.0f} B", "<= 2048 B", memory["idle_peer_total"] <= 2048),
        ("c. memory per cached EID (known cluster)", "", f"{memory['eid_known_cluster']:.0f} B",
         "<= 1024 B", memory["eid_known_cluster"] <= 1024),
        ("c. memory per peer just answered (reply held)", "",
         f"{memory['transport_per_peer_answered']:.0f} B", "bounded", True),
        ("e. node RSS growth over the flood", f"{flood_['rss_before'] / 2**20:.1f} MB before",
         f"{flood_['rss_growth'] / 2**20:+.1f} MB", "< 20 MB", flood_["rss_growth"] < 20 * 2**20),
    ]
    for kind, figures in out["amplification"].items():
        result.append((f"d. {kind}", f"{figures['sent']} B sent",
                       f"{figures['received']} B ({figures['ratio']:.2f}x) {figures['codes']}",
                       "<= 3x", figures["ratio"] <= 3))
    return result


def print_table(out: dict[str, Any], args: argparse.Namespace) -> None:
    flood_ = out["flood"]
    print(f"flood {args.seconds:g} s from {args.flooders} process(es): offered "
          f"{flood_['offered_per_s']:.0f}/s, node received {flood_['node_received_per_s']:.0f}"
          f" datagrams/s, signature checks charged {flood_['signature_checks_charged']}, "
          f"stamps demanded {flood_['stamps_demanded']}; legit calls quiet "
          f"{flood_['quiet']['calls']}, under flood {flood_['flood']['calls']}")
    fill_ = out["fill"]
    print(f"fill: {fill_['fill_datagrams']} datagrams in {fill_['fill_seconds']:.1f} s, node "
          f"RSS {fill_['rss_growth_fill'] / 2**20:+.1f} MB, counters {fill_['tables']}, "
          f"sessions held {fill_['sessions_held']}")
    print(f"  existing caller's failures: {fill_['existing_caller']['failures']}")
    for failure in fill_["newcomer_failures"]:
        print(f"  new caller: {failure}")
    print(f"the attacked node logged {out['node_log_lines']} lines at info")
    table = rows(out)
    width = max(len(r[0]) for r in table)
    print(f"{'figure':{width}}  {'baseline':18}  {'measured':36}  {'target':9}  result")
    for name, base, measured, target, ok in table:
        print(f"{name:{width}}  {base:18}  {measured:36}  {target:9}  "
              f"{'pass' if ok else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--flooders", type=int, default=1)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        run(serve(args.serve))
        return
    configure_logging("warning")
    if args.quick and args.seconds == parser.get_default("seconds"):
        args.seconds = 2.0
    out = run(measure(args))
    if args.json:
        print(json.dumps(out, indent=2, default=str))
    print_table(out, args)
    sys.exit(0 if all(r[4] for r in rows(out)) else 1)


if __name__ == "__main__":
    main()
