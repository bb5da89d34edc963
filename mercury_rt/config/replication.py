"""The node config's `replication:` section: where the cluster's etcd is (mirrored state).

Absent, a node keeps every entity's state in its own LMDB only (the single-node quick
start and the demo need no etcd). Present, the state of the entities this node serves
lives in etcd and every mirror shares it (docs/operator-guide.md, "Mirrored state on etcd").
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tungsten.etcd_store import EtcdSettings

MAX_ENDPOINTS = 16


def _endpoint(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
        raise ValueError(f"an etcd endpoint is host:port (e.g. 10.0.0.5:2379), not {text!r}")
    return text


def _prefix(text: str) -> str:
    if not text or len(text) > 64 or not text.isascii() or not text.endswith("/"):
        raise ValueError("prefix: 1-64 ASCII characters ending in '/' (e.g. mercury/bank/)")
    return text


class ReplicationConfig(BaseModel):
    """etcd endpoints and how long a write may wait before it is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: Annotated[list[Annotated[str, AfterValidator(_endpoint)]],
                         Field(min_length=1, max_length=MAX_ENDPOINTS)]
    prefix: Annotated[str, AfterValidator(_prefix)] = "mercury/"
    """Every key this cluster writes starts with it (one etcd can serve several clusters)."""
    timeout: Annotated[float, Field(gt=0, le=60, strict=True)] = 5.0
    """Seconds a state read or commit may take, across members, before 460."""
    attempt_timeout: Annotated[float, Field(gt=0, le=60, strict=True)] = 1.0
    """Seconds one member may take before the next member is tried."""
    record_ttl: Annotated[int, Field(ge=60, le=7 * 86_400, strict=True)] = 3600
    """Seconds a request's record (its reply, for retries at another node) is kept."""
    member_ttl: Annotated[int, Field(ge=2, le=300, strict=True)] = 5
    """Seconds of the lease each node keeps its liveness key on: a node that stops
    renewing it (killed, frozen, cut off from etcd) is dead for its peers this long after."""

    def endpoint_pairs(self) -> tuple[tuple[str, int], ...]:
        """`endpoints` as (host, port) pairs."""
        return tuple((h, int(p)) for h, _, p in (e.rpartition(":") for e in self.endpoints))

    def to_settings(self) -> EtcdSettings:
        """The etcd adapter's settings (for a node, and for the tools given its config)."""
        return EtcdSettings(self.endpoint_pairs(), self.prefix.encode(), self.timeout,
                            self.attempt_timeout, self.record_ttl)
