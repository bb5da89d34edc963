"""The node config's `replication:` section: where the cluster's etcd is (mirrored state).

Absent, a node keeps every entity's state in its own LMDB only (the single-node quick
start and the demo need no etcd). Present, the state of the entities this node serves
lives in etcd and every mirror shares it (docs/operator-guide.md, "Mirrored state on etcd").
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from tungsten.etcd_store import DEFAULT_MAX_REPLY

MAX_ENDPOINTS = 16
MIN_MAX_REPLY = 64 * 1024
MAX_MAX_REPLY = 256 * 1024 * 1024


def _endpoint(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65_536:
        raise ValueError(f"an etcd endpoint is host:port (e.g. 10.0.0.5:2379), not {text!r}")
    return text


def _prefix(text: str) -> str:
    if not text or len(text) > 64 or not text.isascii() or not text.endswith("/"):
        raise ValueError("prefix: 1-64 ASCII characters ending in '/' (e.g. mercury/bank/)")
    return text


def is_loopback_host(host: str) -> bool:
    """Whether an endpoint's host (an address, `[v6]`, or a name) is this machine only:
    a loopback address or `localhost`. Any other name may resolve off the machine."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


class TlsFiles(BaseModel):
    """PEM files for TLS to etcd: the CA that signed the members' server certificates,
    and this node's client certificate and key (for etcd's `--client-cert-auth`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path
    """CA certificate(s) etcd's server certificates must chain to (nothing else trusted)."""
    cert_file: Path | None = None
    """This node's client certificate chain; with `key_file`."""
    key_file: Path | None = None
    """The client certificate's private key (unencrypted PEM, mode 0600)."""

    @model_validator(mode="after")
    def _cert_with_key(self) -> TlsFiles:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both (etcd's "
                             "client-cert auth) or neither")
        return self

    def resolved(self, base: Path) -> TlsFiles:
        """A copy with relative paths taken relative to `base` (the config's folder)."""
        def at(path: Path) -> Path:
            return path if path.is_absolute() else base / path
        return self.model_copy(update={
            "ca_file": at(self.ca_file),
            "cert_file": None if self.cert_file is None else at(self.cert_file),
            "key_file": None if self.key_file is None else at(self.key_file)})


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
    tls: TlsFiles | None = None
    """TLS to every member (required unless all endpoints are loopback or allow_plaintext)."""
    allow_plaintext: Annotated[bool, Field(strict=True)] = False
    """Permit plaintext to non-loopback endpoints (a private, trusted network only)."""
    max_reply_bytes: Annotated[int, Field(ge=MIN_MAX_REPLY, le=MAX_MAX_REPLY,
                                          strict=True)] = DEFAULT_MAX_REPLY
    """Largest single etcd reply accepted (bounds what etcd can make the node hold; an
    entity's whole state is read in one reply, so it bounds an entity's size too)."""
    member_ttl: Annotated[int, Field(ge=2, le=300, strict=True)] = 5
    """Seconds of the lease each node keeps its liveness key on: a node that stops
    renewing it (killed, frozen, cut off from etcd) is dead for its peers this long after."""

    def endpoint_pairs(self) -> tuple[tuple[str, int], ...]:
        """`endpoints` as (host, port) pairs."""
        return tuple((h, int(p)) for h, _, p in (e.rpartition(":") for e in self.endpoints))

    def plaintext_endpoints(self) -> tuple[int, ...]:
        """Indexes of endpoints plaintext would expose: off this machine, no `tls`, and
        `allow_plaintext` not set (each one is a config error)."""
        if self.tls is not None or self.allow_plaintext:
            return ()
        return tuple(i for i, (host, _) in enumerate(self.endpoint_pairs())
                     if not is_loopback_host(host))

    def resolved(self, base: Path) -> ReplicationConfig:
        """A copy whose TLS file paths are taken relative to `base`."""
        return self if self.tls is None else self.model_copy(
            update={"tls": self.tls.resolved(base)})
