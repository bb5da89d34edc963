"""What a node counts on its request path and how /metrics shows it (no sockets)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from carbon.error_codes import ErrorCode, MercuryError
from carbon.principal import Principal
from mercury_rt.aio.node_collector import NodeCollector, NodeSample, families
from mercury_rt.aio.node_metrics import (
    LATENCY_BUCKETS,
    MAX_RULES,
    NO_REPLY,
    OTHER_RULE,
    UNKNOWN_CODE,
    NodeMetrics,
    reply_code,
)
from mercury_rt.aio.node_status import Readiness
from mercury_rt.core.gate import Allow, Deny
from mercury_rt.core.node import NodeAction, NodeReply, Respond
from mercury_rt.core.routing import Path

WHO = Principal(b"c" * 32, b"alice")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_synchronous_reply_is_counted_by_its_code_with_its_duration() -> None:
    clock = Clock()
    metrics = NodeMetrics(clock)

    def carry_out(action: NodeAction) -> bytes:
        clock.now += 0.003
        assert isinstance(action, Respond)
        return action.reply

    carry = metrics.metered(Path.INTER_CLUSTER, carry_out)
    assert carry(Respond(NodeReply(403).encode())) == NodeReply(403).encode()
    carry(Respond(NodeReply().encode()))
    assert metrics.requests == {Path.INTER_CLUSTER: {403: 1, 0: 1}, Path.INTRA_CLUSTER: {}}
    histogram = metrics.latency[Path.INTER_CLUSTER]
    assert histogram.counts[LATENCY_BUCKETS.index(0.005)] == 2
    assert histogram.total == pytest.approx(0.006)
    assert sum(metrics.latency[Path.INTRA_CLUSTER].counts) == 0


def test_an_awaited_reply_and_a_failed_handler_are_counted_when_they_finish() -> None:
    clock = Clock()
    metrics = NodeMetrics(clock)

    async def later(reply: bytes | None) -> bytes:
        clock.now += 2.0
        if reply is None:
            raise MercuryError("gone", ErrorCode.TIMEOUT)
        return reply

    async def main() -> None:
        carry = metrics.metered(Path.INTRA_CLUSTER, lambda a: later(
            a.reply if isinstance(a, Respond) and a.reply else None))
        pending = carry(Respond(NodeReply().encode()))
        assert metrics.requests[Path.INTRA_CLUSTER] == {}, "not counted before it finished"
        assert not isinstance(pending, bytes)
        assert await pending == NodeReply().encode()
        failing = carry(Respond(b""))
        assert not isinstance(failing, bytes)
        with pytest.raises(MercuryError):
            await failing

    asyncio.run(main())
    assert metrics.requests[Path.INTRA_CLUSTER] == {0: 1, int(ErrorCode.TIMEOUT): 1}
    assert metrics.latency[Path.INTRA_CLUSTER].counts[LATENCY_BUCKETS.index(2.5)] == 2


def test_codes_outside_the_table_and_empty_replies_have_fixed_labels() -> None:
    assert reply_code(b"") == NO_REPLY
    assert reply_code(b"\x00junk") == UNKNOWN_CODE
    assert reply_code(NodeReply(65_000).encode()) == UNKNOWN_CODE
    assert reply_code(NodeReply(int(ErrorCode.DAC_ON_DENY_LIST)).encode()) == \
        int(ErrorCode.DAC_ON_DENY_LIST)


def test_gate_decisions_are_counted_by_rule_with_a_bounded_label_set() -> None:
    metrics = NodeMetrics()
    allow = Allow(WHO, WHO, (WHO,), "mac: ok; dac: open")
    for _ in range(3):
        metrics.gate_decision(allow)
    metrics.gate_decision(Deny(ErrorCode.DAC_ON_DENY_LIST, "no", "entities.bob.deny", "dac"))
    assert metrics.gate == {("allow", "mac: ok; dac: open"): 3,
                            ("deny", "entities.bob.deny"): 1}
    for i in range(MAX_RULES + 10):
        metrics.gate_decision(Deny(ErrorCode.DAC_ON_DENY_LIST, "no", f"rule-{i}", "dac"))
    assert len(metrics.gate) == MAX_RULES + 1
    assert metrics.gate[("deny", OTHER_RULE)] == 12


def _sample(**changes: object) -> NodeSample:
    values: dict[str, object] = dict(
        node_id="node-a", cluster="ab" * 32,
        requests={("inter", 0): 7, ("inter", 403): 2, ("intra", NO_REPLY): 1},
        latency={"inter": ((1, 0, 5, *([0] * (len(LATENCY_BUCKETS) - 3)), 3), 9.5)},
        messages={"inter": 4, "intra": 0}, gate={("allow", "r1"): 7, ("deny", "r2"): 2},
        transport={"inter": {"retransmissions": 5, "datagrams_in": 40}},
        decode_errors={"inter": {"BAD_DATAGRAM": 3}}, sessions={"inter": 2, "intra": 1},
        held_pending=6, caches={"target_eids": 8}, counters={"requests_denied": 2},
        membership={"peers": 2, "heartbeats_sent": 30},
        readiness=Readiness(True, True, False))
    values.update(changes)
    return NodeSample(**values)  # type: ignore[arg-type]


def _parsed(sample: NodeSample) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(lambda: sample))
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_sample_becomes_prometheus_text_that_parses_back() -> None:
    samples = _parsed(_sample())
    assert samples[("mercury_requests_total", (("code", "403"), ("port", "inter")))] == 2
    assert samples[("mercury_requests_total", (("code", "none"), ("port", "intra")))] == 1
    inter = (("port", "inter"),)
    assert samples[("mercury_request_duration_seconds_count", inter)] == 9
    assert samples[("mercury_request_duration_seconds_sum", inter)] == 9.5
    assert samples[("mercury_request_duration_seconds_bucket",
                    (("le", "0.0005"), ("port", "inter")))] == 1
    assert samples[("mercury_request_duration_seconds_bucket",
                    (("le", "0.0025"), ("port", "inter")))] == 6, "cumulative"
    assert samples[("mercury_gate_decisions_total", (("outcome", "deny"), ("rule", "r2")))] == 2
    assert samples[("mercury_transport_retransmissions_total", inter)] == 5
    assert samples[("mercury_transport_decode_errors_total",
                    (("error", "BAD_DATAGRAM"), ("port", "inter")))] == 3
    assert samples[("mercury_transit_sessions", inter)] == 2
    assert samples[("mercury_held_messages", ())] == 6
    assert samples[("mercury_cache_entries", (("cache", "target_eids"),))] == 8
    assert samples[("mercury_one_way_messages_total", inter)] == 4
    assert samples[("mercury_requests_denied_total", ())] == 2
    assert samples[("mercury_membership_peers", ())] == 2
    assert samples[("mercury_membership_heartbeats_sent_total", ())] == 30
    assert samples[("mercury_ready", (("check", "membership_settled"),))] == 0
    assert samples[("mercury_ready", (("check", "ready"),))] == 0
    assert samples[("mercury_node_info", (("cluster", "ab" * 32), ("node_id", "node-a")))] == 1


def test_two_nodes_in_one_process_keep_their_own_registries() -> None:
    first = _parsed(_sample(node_id="node-a", held_pending=1))
    second = _parsed(_sample(node_id="node-b", held_pending=2))
    assert first[("mercury_held_messages", ())] == 1
    assert second[("mercury_held_messages", ())] == 2


def test_registering_the_collector_does_not_sample_the_node() -> None:
    def unreadable() -> NodeSample:
        raise AssertionError("sampled at registration")

    CollectorRegistry(auto_describe=True).register(NodeCollector(unreadable))
    assert {f.name for f in families(_sample(requests={}, latency={}))} >= {
        "mercury_requests", "mercury_request_duration_seconds"}
