"""Membership wired into a node core: heartbeats in and out, views, cluster-ID publishing.

`Membership` (core/membership/liveness.py) decides who is alive, who moved and which
public addresses the cluster should publish. This adapter connects it to one node
(sans-IO, injected time):

- it builds this node's signed heartbeat (core/membership/certs.py) and seals it for
  every peer;
- it feeds sealed intra-cluster messages of kinds 2 and 3 (core/membership/messages.py) and
  ticks into `Membership`, and applies what comes out to the node core: node liveness and
  redirect addresses in `core.state.view`, a peer's new intra-cluster address in
  `core.state.intra_addresses`;
- when the published address list differs from the cluster ID's and this node is the
  publisher, it signs the next cluster-ID version with the cluster key (mint.change_addresses),
  adopts it and announces it to every peer; a peer adopts an announced version only if it
  properly supersedes its own (keyring.check_supersedes);
- with `config.leases` (a `replication:` section) a node is DEAD when the shell reports
  that its etcd lease key vanished (`lease_lost`), not after silence (Membership);
- with `settings.cas` (a `replication:` section) a new version is not adopted at once: it
  is handed to the shell as a proposal, which publishes it by compare-and-swap on etcd and
  reports back (`cas_won`, `cas_failed`, or `etcd_value` with what a re-read found); the
  values etcd holds (read at start, watched, re-read after a lost CAS) go through
  `etcd_value` too, which verifies them like any cluster ID and acts on
  core/node/publication.py `decide`.

Two waits keep versions from churning (docs/protocol.md 6.7): nothing is published during
a warm-up of `dead_after` intervals after start (a fresh node has not heard from everyone
yet; a configured node never heard from by then counts as not alive), and a changed list
is published only once it has been stable for `settle_intervals` intervals (a restart,
or a hand-made version whose new entries peers have not repeated in a heartbeat yet).
"""

from __future__ import annotations

from dataclasses import replace
from ipaddress import ip_address

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon.cbor import CodecError
from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.core.identity import (
    ClusterId,
    Endpoint,
    EndpointKey,
    IdentityError,
    IPAddress,
    ServerAddress,
    change_addresses,
    check_supersedes,
)
from mercury_rt.core.membership import (
    AddressChanged,
    AddressListChanged,
    Announcement,
    HeartbeatError,
    HeartbeatRejected,
    Membership,
    MembershipOutput,
    NodeCertVerifier,
    NodeIdentity,
    NodeJoined,
    NodeRecovered,
    NodeRestarted,
    PublicAddress,
    classify,
    decode_heartbeat,
    encode_announcement,
    encode_heartbeat_message,
)
from mercury_rt.core.node.membership_events import (
    NOTHING,
    AnnouncementRejected,
    ClusterIdAdopted,
    ClusterIdLearned,
    ClusterIdPublished,
    EtcdValueRejected,
    MembershipSettings,
    MembershipStep,
    Outgoing,
    PublishFailed,
)
from mercury_rt.core.node.publication import Adopt, Bump, Put, Won, decide
from mercury_rt.core.node.seal import SealError
from mercury_rt.core.node.server import NodeCore
from mercury_rt.core.transport import Addr

MAX_ETCD_VALUE = 64 * 1024
"""Bytes of etcd's cluster-ID value decoded at most (a cluster ID is a few hundred)."""


class NodeMembership:
    """One node's membership, applied to its NodeCore. See module docstring."""

    def __init__(self, core: NodeCore, identity: NodeIdentity, cluster_key: Ed25519PrivateKey,
                 *, inter_address: Addr, settings: MembershipSettings, incarnation: int,
                 now: float, intra_address: Addr | None = None) -> None:
        if identity.node_id != core.state.view.local_node:
            raise ValueError("node identity and cluster view name different nodes")
        self.core = core
        self.identity = identity
        self.settings = settings
        self.config = settings.config
        self.incarnation = incarnation
        self._cluster_key = cluster_key
        cid = core.state.cluster_id
        self._seen = cid
        self._key_hash = cid.cluster_key_hash
        self._trusted = {self._key_hash: self._cluster_public(cid)}
        self.verifier = NodeCertVerifier(cid.master_hash, self._trusted)
        self._inter = inter_address
        self._intra = _bound_address(intra_address)
        self._draining = False
        self._own_public = self._derive_public(cid, self._default_public())
        self.membership = Membership(cid.master_hash, identity.node_id, self._own_public,
                                     self.verifier, settings.config)
        self._configured = dict(core.state.view.nodes)
        self._started = self._changed_at = now
        self._warm = False
        self._seq = 0
        self._failed: tuple[ServerAddress, ...] | None = None
        self._bump_to = -1
        self._conflicts_told: set[tuple[EndpointKey, int]] = set()
        self._proposing: ClusterId | None = None
        self.counters = {"heartbeats_sent": 0, "heartbeats_accepted": 0,
                         "heartbeats_rejected": 0, "cluster_ids_published": 0,
                         "cluster_ids_adopted": 0, "announcements_rejected": 0,
                         "cluster_ids_learned": 0, "etcd_values_rejected": 0,
                         "cas_lost": 0}

    # ----- inputs ------------------------------------------------------------------------

    def heartbeat(self) -> MembershipStep:
        """This node's next heartbeat, sealed once, for every peer's intra address."""
        self._seq += 1
        beat = self.identity.heartbeat(self.core.master_hash, self.incarnation, self._seq,
                                       self._own_public, self._intra)
        sealed = self.core.seal.seal(encode_heartbeat_message(beat.encode()))
        peers = self._peer_addresses()
        sends = tuple(Outgoing(address, sealed) for address in peers)
        self.counters["heartbeats_sent"] += len(sends)
        if self._seq % max(self.settings.announce_intervals, 1) == 0:
            announce = self._sealed_announcement()
            sends += tuple(Outgoing(address, announce) for address in peers)
        return MembershipStep(sends)

    def tick(self, now: float) -> MembershipStep:
        """Advance suspicion, death, warm-up and publishing to `now`."""
        step = NOTHING
        if self.core.state.cluster_id is not self._seen:
            # Set on the core by someone else (an operator's reload): follow it.
            step = self._adopt(self.core.state.cluster_id, now)
        step += self._apply(self.membership.tick(now), now)
        if not self._warm and now >= self._started + self._warmup:
            self._warm = True
            self._refresh_view()
        return step + self._maybe_publish(now)

    def receive(self, sealed: bytes, peer: Addr, now: float) -> MembershipStep | None:
        """Handle a one-way intra-cluster message if it is a membership message.

        Returns None for anything else (an operation, or bytes not sealed by this
        cluster), which the caller hands to the node core as before. Never raises for
        peer input.
        """
        try:
            payload = self.core.seal.open(sealed)
            message = classify(payload)
        except SealError:
            return None
        except HeartbeatError as exc:
            return self._rejected(exc.code, exc.message, peer)
        if message is None:
            return None
        try:
            source = Endpoint(ip_address(peer[0]), peer[1])
        except ValueError:
            return NOTHING
        if isinstance(message, Announcement):
            return self._announced(message.cluster_id, source, now)
        try:
            heartbeat = decode_heartbeat(message.heartbeat)
        except (HeartbeatError, CodecError) as exc:
            return self._rejected(exc.code, exc.message, peer)
        if heartbeat.intra is not None and heartbeat.intra != (source.host, source.port):
            return self._rejected(ErrorCode.BAD_HEARTBEAT, "heartbeat arrived from another "
                                  "address than the one it is signed for (a replay?)", peer)
        outputs = self.membership.receive(heartbeat, source, now)
        if not any(isinstance(output, HeartbeatRejected) for output in outputs):
            self.counters["heartbeats_accepted"] += 1
        return self._apply(outputs, now)

    def lease_lost(self, node_id: bytes, now: float) -> MembershipStep:
        """The shell saw a node's etcd lease key vanish (config.leases): it is DEAD."""
        return self._apply(self.membership.lease_lost(node_id, now), now)

    def lease_held(self, node_id: bytes, now: float) -> MembershipStep:
        """The shell saw a node's etcd lease key (back) in place."""
        return self._apply(self.membership.lease_held(node_id, now), now)

    def lease_snapshot(self, present: frozenset[bytes], now: float) -> MembershipStep:
        """Every lease key etcd holds now (read at start or after a compacted watch):
        those present are held, every other node configured or heard of has none."""
        known = set(self._configured) | set(self.membership.peers)
        step = NOTHING
        for node_id in sorted(known | present):
            step += (self.lease_held(node_id, now) if node_id in present
                     else self.lease_lost(node_id, now))
        return step

    def drain(self, now: float) -> MembershipStep:
        """The node is draining: from now on it announces no public address, so the
        publisher (itself, or a peer on its next heartbeat, sent at once) mints a cluster-ID
        version without it; heartbeats go on, so peers do not count it dead meanwhile."""
        self._draining = True
        self._own_public = ()
        return self._apply(self.membership.set_local_public(()), now) + self.heartbeat()

    # ----- state -------------------------------------------------------------------------

    @property
    def own_public(self) -> tuple[PublicAddress, ...]:
        """The public addresses this node announces in its heartbeats."""
        return self._own_public

    @property
    def draining(self) -> bool:
        """Whether `drain` was called (the node is leaving; /readyz reports it)."""
        return self._draining

    @property
    def warm(self) -> bool:
        """Whether the warm-up after start has passed (publishing is allowed)."""
        return self._warm

    def statistics(self) -> dict[str, int]:
        """Counters for metrics."""
        return {**self.counters, "peers": len(self.membership.peers),
                "cluster_id_version": self.core.state.cluster_id.version}

    # ----- applying membership outputs ---------------------------------------------------

    @property
    def _warmup(self) -> float:
        return self.config.dead_after * self.config.interval

    def _apply(self, outputs: list[MembershipOutput], now: float) -> MembershipStep:
        intra = dict(self.core.state.intra_addresses)
        offer: set[bytes] = set()
        for output in outputs:
            if isinstance(output, NodeJoined | AddressChanged):
                where = output.source if isinstance(output, NodeJoined) else output.new
                intra[output.node_id] = (str(where[0]), where[1])
            elif isinstance(output, AddressListChanged):
                self._changed_at = now
            elif isinstance(output, HeartbeatRejected):
                self.counters["heartbeats_rejected"] += 1
            if isinstance(output, NodeJoined | NodeRestarted | NodeRecovered):
                offer.add(output.node_id)
        if intra != self.core.state.intra_addresses:
            self.core.state.intra_addresses = intra
        if outputs:
            self._refresh_view()
        # A node that (re)appears may hold an older cluster ID: offer ours, at the
        # address it is at now (applied above, whatever order the outputs came in).
        sends = tuple(Outgoing(intra[n], self._sealed_announcement())
                      for n in sorted(offer) if n in intra)
        return MembershipStep(sends, tuple(outputs))

    def _rejected(self, code: ErrorCode, reason: str, peer: Addr) -> MembershipStep:
        self.counters["heartbeats_rejected"] += 1
        try:
            where = (ip_address(peer[0]), peer[1])
        except ValueError:
            return NOTHING
        return MembershipStep(events=(HeartbeatRejected(code, reason, where),))

    def _refresh_view(self) -> None:
        """Routing's node table: membership's knowledge over the configured nodes.

        A configured node never heard from counts as alive during the warm-up (so calls
        work from the first moment) and as not alive after it.
        """
        heard = self.membership.routing_nodes()
        nodes = {node_id: replace(info, alive=info.alive and not self._warm)
                 for node_id, info in self._configured.items() if node_id not in heard}
        nodes.update(heard)
        self.core.state.view = replace(self.core.state.view, nodes=nodes)

    def _peer_addresses(self) -> list[Addr]:
        local = self.identity.node_id
        return sorted({a for n, a in self.core.state.intra_addresses.items() if n != local})

    # ----- publishing and adopting cluster IDs -------------------------------------------

    def _maybe_publish(self, now: float) -> MembershipStep:
        settle = self.settings.settle_intervals * self.config.interval
        if not self._warm or now < self._changed_at + settle or self._proposing is not None:
            return NOTHING
        if not self.membership.is_publisher():
            return NOTHING
        current = self.core.state.cluster_id
        desired = tuple(ServerAddress(a.host, a.port, a.priority, a.weight)
                        for a in self.membership.published)
        conflict = self._bump_to >= current.version
        if not desired or desired == self._failed or (
                set(desired) == set(current.addresses) and not conflict):
            return NOTHING
        try:
            base = replace(current, version=self._bump_to) if conflict else current
            new = change_addresses(base, self._cluster_key, desired)
        except MercuryError as exc:
            self._failed = desired  # reported once per list, not on every tick
            return MembershipStep(events=(PublishFailed(exc.code, exc.message),))
        self._failed = None
        if self.settings.cas:
            self._proposing = new
            return MembershipStep(proposals=(new,))
        return self._published(new, now)

    def _published(self, new: ClusterId, now: float) -> MembershipStep:
        """`new` is this node's published version: adopt and announce it."""
        step = self._adopt(new, now)
        self.counters["cluster_ids_published"] += 1
        announce = self._sealed_announcement()
        sends = tuple(Outgoing(a, announce) for a in self._peer_addresses())
        return step + MembershipStep(sends, (ClusterIdPublished(new.version, new.addresses),))

    # ----- publishing by compare-and-swap (settings.cas: etcd) -------------------------

    def cas_won(self, proposed: ClusterId, now: float) -> MembershipStep:
        """The shell's CAS put `proposed` into etcd: adopt and announce it (nothing more
        when it was the held version, put to bring etcd up to date)."""
        if proposed is self._proposing:
            self._proposing = None
        if proposed.version <= self.core.state.cluster_id.version:
            return NOTHING
        return self._published(proposed, now)

    def cas_failed(self, proposed: ClusterId, code: ErrorCode, reason: str) -> MembershipStep:
        """The CAS could not be carried out (etcd unavailable): nothing was published; the
        next tick proposes again if the change is still needed."""
        if proposed is self._proposing:
            self._proposing = None
        return MembershipStep(events=(PublishFailed(code, reason),))

    def etcd_value(self, data: bytes | None, now: float, proposed: ClusterId | None = None,
                   ) -> tuple[MembershipStep, ClusterId | None]:
        """etcd's cluster-ID value (None: the key is absent), read after `proposed` lost
        its CAS, or at start or from the watch (no proposal): verified, then acted on
        (publication.decide). Returns the step and the cluster ID to CAS now, if any."""
        held = self.core.state.cluster_id
        live, step = self._verified(data, held)
        decision = decide(held, proposed, live, rejected=data is not None and live is None)
        if proposed is not None:
            if not isinstance(decision, Won):  # Won: the CAS did put it, its reply was lost
                self.counters["cas_lost"] += 1
            if proposed is self._proposing and not isinstance(decision, Put):
                self._proposing = None
        if isinstance(decision, Won) and live is not None:
            return step + self.cas_won(live, now), None
        if isinstance(decision, Adopt):
            self.counters["cluster_ids_learned"] += 1
            learned = MembershipStep(events=(ClusterIdLearned(decision.cluster_id.version),))
            return step + self._adopt(decision.cluster_id, now) + learned, None
        if isinstance(decision, Bump):
            self._bump_to = max(self._bump_to, decision.version)
        if isinstance(decision, Put):
            return step, decision.cluster_id
        return step, None

    def _verified(self, data: bytes | None, held: ClusterId,
                  ) -> tuple[ClusterId | None, MembershipStep]:
        """etcd's value as a cluster ID of this cluster that verifies (signatures by the
        cluster keys, no rotated-out key), or None and a rejection event."""
        if data is None:
            return None, NOTHING
        try:
            if len(data) > MAX_ETCD_VALUE:
                raise IdentityError(f"{len(data)} bytes; a cluster ID has at most "
                                    f"{MAX_ETCD_VALUE}")
            candidate = ClusterId.decode(data)
            if candidate.master_hash != held.master_hash:
                raise IdentityError("a cluster ID of another cluster (master key hash "
                                    "differs)", ErrorCode.MASTER_MISMATCH)
            if candidate.version > held.version:
                check_supersedes(candidate, held, self.core.verifier.ring)
            else:
                self.core.verifier.ring.learn_cluster_id(candidate)
        except MercuryError as exc:
            self.counters["etcd_values_rejected"] += 1
            return None, MembershipStep(events=(EtcdValueRejected(exc.code, exc.message),))
        return candidate, NOTHING

    def _announced(self, data: bytes, source: Endpoint, now: float) -> MembershipStep:
        """A peer's cluster ID: adopt it if it supersedes ours; if the peer is behind,
        answer with ours; if it is a different version under our own number (two
        publishers during a partition), remember to publish above it."""
        where = (source.host, source.port)
        held = self.core.state.cluster_id
        try:
            candidate = ClusterId.decode(data)
            if candidate.master_hash == held.master_hash and candidate.version <= held.version:
                if candidate == held:
                    return NOTHING
                if candidate.version == held.version:
                    self.core.verifier.ring.learn_cluster_id(candidate)  # verify it first
                    return self._conflict(candidate.version, where)
                return MembershipStep((Outgoing((str(source.host), source.port),
                                                self._sealed_announcement()),))
            check_supersedes(candidate, held, self.core.verifier.ring)
        except MercuryError as exc:
            self.counters["announcements_rejected"] += 1
            return MembershipStep(events=(AnnouncementRejected(exc.code, exc.message, where),))
        step = self._adopt(candidate, now)
        self.counters["cluster_ids_adopted"] += 1
        return step + MembershipStep(events=(ClusterIdAdopted(candidate.version, where),))

    def _conflict(self, version: int, where: EndpointKey) -> MembershipStep:
        """Two lists under one version: the publisher will mint version+1 over both.
        Tell the sender about ours once, so a publisher that sent the other one learns
        of the conflict too (once per peer and version: no ping-pong)."""
        self._bump_to = max(self._bump_to, version)
        if (where, version) in self._conflicts_told or len(self._conflicts_told) >= 1024:
            return NOTHING
        self._conflicts_told.add((where, version))
        return MembershipStep((Outgoing((str(where[0]), where[1]), self._sealed_announcement()),))

    def _adopt(self, cluster_id: ClusterId, now: float) -> MembershipStep:
        if cluster_id is not self.core.state.cluster_id:
            self.core.set_cluster_id(cluster_id)
        self._seen = cluster_id
        self._conflicts_told.clear()
        if cluster_id.cluster_key_hash != self._key_hash:
            # A key rotation: trust certificates by the new key and, until the next
            # rotation, by the previous one (nodes not yet re-certified).
            trusted = {cluster_id.cluster_key_hash: self._cluster_public(cluster_id)}
            previous = self._trusted.get(self._key_hash)
            if previous is not None:
                trusted[self._key_hash] = previous
            self._key_hash, self._trusted = cluster_id.cluster_key_hash, trusted
            self.verifier.set_trusted(trusted)
        public = self._derive_public(cluster_id, self._own_public)
        if public == self._own_public:
            return NOTHING
        self._own_public = public
        return self._apply(self.membership.set_local_public(public), now)

    def _sealed_announcement(self) -> bytes:
        return self.core.seal.seal(encode_announcement(self.core.state.cluster_id.encode()))

    def _cluster_public(self, cluster_id: ClusterId) -> Ed25519PublicKey:
        known = self.core.verifier.ring.certified(cluster_id.master_hash,
                                                  cluster_id.cluster_key_hash)
        if known is None:  # set_cluster_id taught the ring this key
            raise ValueError("the node core does not know its own cluster key")
        return known.public

    def _default_public(self) -> tuple[PublicAddress, ...]:
        if self.settings.public is not None:
            return self.settings.public
        try:
            host = ip_address(self._inter[0])
        except ValueError:
            return ()
        if host.is_unspecified:
            return ()
        return (PublicAddress(host, self._inter[1], self.settings.priority,
                              self.settings.weight),)

    def _derive_public(self, cluster_id: ClusterId,
                       fallback: tuple[PublicAddress, ...]) -> tuple[PublicAddress, ...]:
        """Our entries in the cluster ID (keeping the operator's priority and weight), or
        `fallback` when the cluster ID does not list our inter-cluster address; none while
        draining."""
        if self._draining:
            return ()
        if self.settings.public is not None:
            return self.settings.public
        ours = tuple(PublicAddress(a.host, a.port, a.priority, a.weight)
                     for a in cluster_id.addresses
                     if (str(a.host), a.port) == self._inter)
        return tuple(sorted(ours, key=PublicAddress.sort_key)) if ours else fallback


def _bound_address(address: Addr | None) -> tuple[IPAddress, int] | None:
    """The address heartbeats are bound to: the bound intra socket address, unless it is
    a wildcard (then the node does not know which address peers see)."""
    if address is None:
        return None
    host = ip_address(address[0])
    return None if host.is_unspecified else (host, address[1])
