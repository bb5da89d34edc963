"""A node's Prometheus metrics: a sample taken on the event loop, families built off it.

`sample_node` copies every number the metrics show (the request counters of
aio/node_metrics.py, the transport's counters, sessions, held messages, cache sizes and
the gate decision cache's counters, membership) into a frozen NodeSample; it runs on the
loop, so it reads the node's state while nothing changes it, and costs only copies.
`families` turns a sample into metric families; `NodeCollector` does both for one registry
per node (never the global default registry, so several nodes in one process keep their
own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from itertools import accumulate

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from mercury_rt.aio.node_metrics import LATENCY_BUCKETS, code_label
from mercury_rt.aio.node_status import Readiness, readiness
from mercury_rt.aio.node_view import ObservedNode
from mercury_rt.core.routing import Path

PORTS = {Path.INTER_CLUSTER: "inter", Path.INTRA_CLUSTER: "intra"}
_MEMBERSHIP_GAUGES = frozenset({"peers", "cluster_id_version"})
_DECISION_COUNTERS = ("hits", "misses", "evictions", "invalidations")
"""The gate decision cache's counters (core/gate/decisions.py), read when scraped: the
request path only increments the cache's own integers."""


@dataclass(frozen=True, slots=True)
class NodeSample:
    """Every number /metrics shows, copied at one moment."""

    node_id: str
    cluster: str
    requests: Mapping[tuple[str, int], int]
    latency: Mapping[str, tuple[tuple[int, ...], float]]
    messages: Mapping[str, int]
    gate: Mapping[tuple[str, str], int]
    transport: Mapping[str, Mapping[str, int]]
    decode_errors: Mapping[str, Mapping[str, int]]
    sessions: Mapping[str, int]
    held_pending: int
    caches: Mapping[str, int]
    counters: Mapping[str, int]
    """Node-wide counters: denied requests, duplicates, EID cache hits, handler calls..."""
    membership: Mapping[str, int] = field(default_factory=dict)
    readiness: Readiness = field(default_factory=lambda: Readiness(False, False, False))


def sample_node(node: ObservedNode) -> NodeSample:
    """Copy the numbers of `node` (call on its event loop)."""
    metrics, core = node.metrics, node.core
    transport: dict[str, dict[str, int]] = {}
    decode_errors: dict[str, dict[str, int]] = {}
    for path, port in PORTS.items():
        endpoint = node.inter if path is Path.INTER_CLUSTER else node.intra
        if endpoint is not None:
            stats = asdict(endpoint.core.stats)
            decode_errors[port] = dict(stats.pop("decode_errors"))
            transport[port] = stats
    verifier = core.verifier.statistics()
    budget = core.signature_budget.statistics()
    counters = {"requests_denied": core.denied, "duplicate_requests": core.duplicates,
                "eid_cache_hits": verifier["cache_hits"],
                "eid_cache_misses": verifier["cache_misses"],
                "eid_signature_checks": verifier["signature_checks"],
                "signature_checks_charged": budget["charged"],
                "hashcash_demanded": budget["demanded"]}
    if node.invoker is not None:
        counters.update({f"handler_{k}": v for k, v in node.invoker.statistics().items()
                         if k != "waiting"})
    counters.update({f"mirror_cache_{k}": v for k, v in node.mirror_cache_counters().items()})
    decisions = core.decisions.statistics()
    counters.update({f"gate_cache_{k}": decisions[k] for k in _DECISION_COUNTERS})
    caches = {**node.cache_sizes(), "eid_verifications": verifier["cache_size"],
              "failed_eids": verifier["failed_size"],
              "key_ring_clusters": verifier["ring_clusters"],
              "key_ring_keys": verifier["ring_cluster_keys"],
              "budget_addresses": budget["addresses"], "budget_clusters": budget["clusters"],
              "spent_stamps": _size(core.spent), "delivered_ids": _size(core.delivered),
              "gate_decisions": decisions["size"]}
    return NodeSample(
        node_id=core.state.view.local_node.decode("utf-8", "backslashreplace"),
        cluster=core.master_hash.hex(),
        requests={(PORTS[p], code): n for p, by_code in metrics.requests.items()
                  for code, n in by_code.items()},
        latency={PORTS[p]: (tuple(h.counts), h.total) for p, h in metrics.latency.items()},
        messages={PORTS[p]: n for p, n in metrics.messages.items()},
        gate=dict(metrics.gate), transport=transport, decode_errors=decode_errors,
        sessions={"inter": node.transit.inter.session_count,
                  "intra": node.transit.intra.session_count},
        held_pending=node.held.pending_count(), caches=caches, counters=counters,
        membership=node.membership.adapter.statistics() if node.membership else {},
        readiness=readiness(node))


def _size(store: object) -> int:
    try:
        return len(store)  # type: ignore[arg-type]
    except TypeError:
        return 0  # a store without a size (a caller-supplied one): shown as 0


def families(sample: NodeSample) -> list[Metric]:
    """The metric families of one sample (names in docs/operator-guide.md)."""
    info = GaugeMetricFamily("mercury_node_info", "This node and its cluster (value 1).",
                             labels=["node_id", "cluster"])
    info.add_metric([sample.node_id, sample.cluster], 1)
    return [info, *_requests(sample), *_gate(sample), *_transport(sample),
            *_gauges(sample), *_counters(sample), *_membership(sample.membership)]


def _requests(sample: NodeSample) -> Iterable[Metric]:
    requests = CounterMetricFamily("mercury_requests", "Requests answered, by port and "
                                   "reply code (0 OK).", labels=["port", "code"])
    for (port, code), count in sorted(sample.requests.items()):
        requests.add_metric([port, code_label(code)], count)
    yield requests
    duration = HistogramMetricFamily("mercury_request_duration_seconds", "Time from an "
                                     "opened request to its reply, by port.",
                                     labels=["port"])
    for port, (counts, total) in sorted(sample.latency.items()):
        bounds = [*(_bound(b) for b in LATENCY_BUCKETS), "+Inf"]
        cumulative = list(accumulate(counts))
        duration.add_metric([port], list(zip(bounds, cumulative, strict=True)), total)
    yield duration
    messages = CounterMetricFamily("mercury_one_way_messages", "One-way messages opened, "
                                   "by port.", labels=["port"])
    for port, count in sorted(sample.messages.items()):
        messages.add_metric([port], count)
    yield messages


def _bound(seconds: float) -> str:
    return repr(float(seconds))


def _gate(sample: NodeSample) -> Iterable[Metric]:
    gate = CounterMetricFamily("mercury_gate_decisions", "Security-gate decisions, by "
                               "outcome and the policy rule that decided.",
                               labels=["outcome", "rule"])
    for (outcome, rule), count in sorted(sample.gate.items()):
        gate.add_metric([outcome, rule], count)
    yield gate


def _transport(sample: NodeSample) -> Iterable[Metric]:
    names = sorted({k for stats in sample.transport.values() for k in stats})
    for name in names:
        family = CounterMetricFamily(f"mercury_transport_{name}", f"Transport {name} "
                                     "(protocol.md 3), by port.", labels=["port"])
        for port, stats in sorted(sample.transport.items()):
            family.add_metric([port], stats[name])
        yield family
    errors = CounterMetricFamily("mercury_transport_decode_errors", "Datagrams dropped as "
                                 "undecodable, by port and error.", labels=["port", "error"])
    for port, by_error in sorted(sample.decode_errors.items()):
        for error, count in sorted(by_error.items()):
            errors.add_metric([port, error], count)
    yield errors


def _gauges(sample: NodeSample) -> Iterable[Metric]:
    sessions = GaugeMetricFamily("mercury_transit_sessions", "Transit sessions held by "
                                 "this node's responders, by port.", labels=["port"])
    for port, count in sorted(sample.sessions.items()):
        sessions.add_metric([port], count)
    yield sessions
    yield GaugeMetricFamily("mercury_held_messages", "One-way messages held for delivery "
                            "(pending).", value=sample.held_pending)
    caches = GaugeMetricFamily("mercury_cache_entries", "Entries in each bounded cache "
                               "and store.", labels=["cache"])
    for name, size in sorted(sample.caches.items()):
        caches.add_metric([name], size)
    yield caches
    ready = GaugeMetricFamily("mercury_ready", "Readiness conditions (1 holds), as /readyz.",
                              labels=["check"])
    for check, held in sorted(sample.readiness.to_json().items()):
        ready.add_metric([check], int(held))
    yield ready


def _counters(sample: NodeSample) -> Iterable[Metric]:
    for name, value in sorted(sample.counters.items()):
        yield CounterMetricFamily(f"mercury_{name}", f"Node counter {name}.", value=value)


def _membership(stats: Mapping[str, int]) -> Iterable[Metric]:
    for name, value in sorted(stats.items()):
        if name in _MEMBERSHIP_GAUGES:
            yield GaugeMetricFamily(f"mercury_membership_{name}", f"Membership {name}.",
                                    value=value)
        else:
            yield CounterMetricFamily(f"mercury_membership_{name}", f"Membership {name}.",
                                      value=value)


class NodeCollector(Collector):
    """Collects one node's families; `read` returns a sample taken on the node's loop."""

    def __init__(self, read: Callable[[], NodeSample]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        """The families of a fresh sample."""
        return families(self._read())

    def describe(self) -> Iterable[Metric]:
        """Nothing: registering must not sample the node (it may not have started)."""
        return []
