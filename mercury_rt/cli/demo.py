"""CLI verb `demo`: a local demo on 127.0.0.x that shows what the runtime does, then exits."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

import click

from carbon.types import dumps_typed, loads_typed
from mercury_rt.aio.endpoint import TransportEndpoint, open_endpoint
from mercury_rt.aio.loop import run
from mercury_rt.aio.node_runtime import NodeCallError
from mercury_rt.core.node import HeldMessage, RetryPolicy
from mercury_rt.core.routing import NotMirroredChoice, RoutingConfig
from mercury_rt.core.transport import MessageReceived, RequestReceived, TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, start_cluster
from mercury_rt.logs import configure_logging

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


class DemoError(click.ClickException):
    """The demo saw something it did not expect; the message says what."""


async def _transport_demo() -> list[str]:
    lines: list[str] = []
    inbox: asyncio.Queue[MessageReceived] = asyncio.Queue()

    def answer(event: RequestReceived) -> bytes:
        if event.payload.startswith(b"sha256:"):
            return hashlib.sha256(event.payload[7:]).digest()
        return b"pong from " + event.payload

    nodes: list[TransportEndpoint] = []
    try:
        for host in HOSTS:
            nodes.append(await open_endpoint((host, 0), on_request=answer,
                                             on_message=inbox.put_nowait))
        for name, node in zip("abc", nodes, strict=True):
            lines.append(f"node {name} listening on udp {_fmt(node.local_address)}")
        a, b, c = nodes
        start = time.perf_counter()
        reply = await a.call(b.local_address, b"node a")
        lines.append(f"a -> b request 'node a' -> {reply.decode()!r} "
                     f"({(time.perf_counter() - start) * 1e3:.2f} ms, one datagram each way)")
        blob = os.urandom(1 << 20)
        start = time.perf_counter()
        digest = await c.call(a.local_address, b"sha256:" + blob, timeout=30)
        elapsed = time.perf_counter() - start
        if digest != hashlib.sha256(blob).digest():
            raise DemoError("the 1 MiB request arrived corrupted")
        frags = c.core.stats.fragmented_sends
        lines.append(f"c -> a 1 MiB request in fragments, digest verified "
                     f"({elapsed * 1e3:.0f} ms, {len(blob) / elapsed / 1e6:.1f} MB/s, "
                     f"{frags} fragmented transfer)")
        await b.send(c.local_address, b"hello c, from b")
        note = await asyncio.wait_for(inbox.get(), 5)
        lines.append(f"b -> c one-way message {note.payload.decode()!r} delivered and "
                     "acknowledged")
        replies = await asyncio.gather(*(a.call(c.local_address, str(i).encode())
                                         for i in range(100)))
        if len(set(replies)) != 100:
            raise DemoError("concurrent requests got mixed-up replies")
        lines.append("a -> c 100 concurrent requests, 100 distinct replies")
        sent = sum(n.core.stats.datagrams_out for n in nodes)
        lines.append(f"total: {sent} datagrams sent, "
                     f"{sum(n.core.stats.retransmissions for n in nodes)} retransmissions")
    finally:
        for node in nodes:
            node.close()
    return lines


FAST = TransportConfig(initial_rto=0.1, min_rto=0.01, max_rto=1.0, reassembly_timeout=5.0)
QUICK_RETRY = RetryPolicy(initial_delay=0.05, max_delay=0.5, ttl=60.0)
HOME = ClusterPlan("home", (NodePlan("a1", "127.0.1.1", ("alice",)),
                            NodePlan("a2", "127.0.1.2", ("bob",))))
AWAY = ClusterPlan("away", (NodePlan("b1", "127.0.2.1", ("carol",), priority=10),
                            NodePlan("b2", "127.0.2.2", ("carol",), priority=20)))
REDIRECTING = ClusterPlan("redir", (NodePlan("c1", "127.0.3.1", (), priority=10),
                                    NodePlan("c2", "127.0.3.2", ("dave",), priority=20)),
                          routing=RoutingConfig(not_mirrored=NotMirroredChoice.REDIRECT))


async def _cluster_demo() -> list[str]:
    lines: list[str] = []
    home = await start_cluster(HOME, FAST, held_policy=QUICK_RETRY)
    away = await start_cluster(AWAY, FAST)
    redir = await start_cluster(REDIRECTING, FAST)
    try:
        a1 = home.nodes["a1"]
        for plan in (HOME, AWAY, REDIRECTING):
            nodes = ", ".join(f"{n.node_id} 127.0.x ({'/'.join(n.mirrors) or 'no entities'}, "
                              f"priority {n.priority})" for n in plan.nodes)
            lines.append(f"cluster {plan.name}: {nodes}")

        async def served(target: bytes, label: str) -> str:
            start = time.perf_counter()
            who = str(loads_typed(str, await a1.call(target, 1, 2, dumps_typed(None, None),
                                                     caller=b"alice")))
            ms = (time.perf_counter() - start) * 1e3
            lines.append(f"alice@a1 -> {label}: served by {who!s} ({ms:.1f} ms)")
            return str(who)

        await served(home.eid("alice"), "alice (same node, no network)")
        await served(home.eid("bob"), "bob (same cluster, intra-cluster path)")
        await served(away.eid("carol"), "carol (other cluster, highest-priority node)")
        if await served(redir.eid("dave"), "dave (c1 does not mirror dave: redirect)") != "c2":
            raise DemoError("the redirect did not reach c2")
        await away.nodes["b1"].stop()
        lines.append("b1 stopped (simulated crash)")
        if await served(away.eid("carol"), "carol (failover)") != "b2":
            raise DemoError("failover did not reach b2")
        await away.nodes["b2"].stop()
        held = await a1.send(away.eid("carol"), 1, 3, dumps_typed(str, "see you"),
                             caller=b"alice", timeout=2)
        if not isinstance(held, HeldMessage):
            raise DemoError("a message to a cluster with no live node was not held")
        lines.append(f"b2 stopped too; one-way note to carol held ({held.state.value})")
        await away.restart("b2")
        final = await asyncio.wait_for(a1.message_settled(held.message_id), 20)
        attempts = f"{final.attempts} attempt{'' if final.attempts == 1 else 's'}"
        lines.append(f"b2 restarted; held note {final.state.value} after {attempts}; "
                     f"b2 received {away.notes['b2']}")
        for node in redir.nodes.values():
            node.migrate(b"dave", away.eid("carol"))
        await served(redir.eid("dave"), "dave after migrating to cluster away (signed "
                     "forwarding record)")
    finally:
        for cluster in (home, away, redir):
            await cluster.stop()
    return lines


def _fmt(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


@click.command("demo")
def demo() -> None:
    """Run a local demo on 127.0.x.y: transport, then three clusters of nodes; exit 0."""
    configure_logging("warning")
    for title, part in (("transport: three endpoints on loopback UDP", _transport_demo),
                        ("nodes: clusters home, away and redir on loopback", _cluster_demo)):
        click.echo(f"mercury-rt demo, {title}")
        try:
            lines = run(asyncio.wait_for(part(), 60))
        except OSError as exc:
            raise DemoError(f"could not open UDP sockets on 127.0.x.y: {exc}") from exc
        except TimeoutError as exc:
            raise DemoError("the demo did not finish within 60 s") from exc
        except NodeCallError as exc:
            raise DemoError(f"a call failed: {exc.message} (code {exc.raw_code})") from exc
        for line in lines:
            click.echo(f"  {line}")
    click.echo("demo finished: all exchanges succeeded")


COMMANDS: list[click.Command] = [demo]
