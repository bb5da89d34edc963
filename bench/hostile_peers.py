"""The hostile peers bench_hostile.py sets on a node: each runs in a process of its own
(multiprocessing, spawned), sending raw datagrams from its own loopback address, so the
node's receive path, not the attacker's event loop, is what saturates.

- `flood`: requests each carrying a freshly minted, validly signed source EID of a new
  self-made cluster, in a session's first datagram (its proof signed by a node of that
  cluster), as fast as the process can make them;
- `fill`: tiny datagrams that fill the transport's tables (sender-epoch marks, records,
  reassemblies, held replies) and the transit sessions from a few addresses, then keep
  topping them up.

Raw sockets and the codecs only: what a hostile peer sends needs none of our machinery.
"""

from __future__ import annotations

import os
import random
import socket
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from carbon.cbor import Limits
from carbon.types import dumps_typed
from mercury_rt.core.gate.source import EidSourceVerifier
from mercury_rt.core.identity import (
    ClusterId,
    EidVerifier,
    ServerAddress,
    issue_cluster_id,
    mint_eid,
)
from mercury_rt.core.membership import NodeIdentity
from mercury_rt.core.node import NodeRequest, encode_operation
from mercury_rt.core.transit.certs import TransitCertVerifier
from mercury_rt.core.transit.initiator import NeedKey, Prepared, TransitInitiator
from mercury_rt.core.transit.proof import NodeCredential
from mercury_rt.core.transport.wire import (
    Fragment,
    Kind,
    Reply,
    decode_datagram,
    encode,
    encode_request,
)

Addr = tuple[str, int]
LIMITS = Limits(max_bytes=65_535, max_depth=4, max_items=64)
TTL_MS = 300_000
"""The longest ttl a node accepts (`max_ttl`): what a hostile peer asks for, so what it
fills stays held as long as it can be."""
ALGORITHM = 2
PAYLOAD = dumps_typed(str, "x" * 90)
KEEP_OPEN = 64
"""Epoch-filling ports kept open for topping up (the others closed once sent)."""


@dataclass(frozen=True)
class Target:
    """The node under attack, as its public cluster ID and an EID of it name it."""

    address: Addr
    cluster_id: bytes
    target_eid: bytes

    @property
    def master_hash(self) -> bytes:
        return ClusterId.decode(self.cluster_id).master_hash


class Sender:
    """One raw UDP socket with its own epoch: REQUESTs numbered like a real sender's."""

    def __init__(self, host: str, rng: random.Random) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        self.sock.bind((host, 0))
        self.sock.setblocking(False)
        self.rng = rng
        self.next_id = rng.randint(1, 2**31) << 32
        self.sent = 0

    def new_epoch(self) -> None:
        self.next_id = self.rng.randint(1, 2**31) << 32

    def request(self, to: Addr, payload: bytes, *, done: bool = True) -> None:
        """One REQUEST; `done` marks every earlier id finished (a flooder that never
        retransmits), else the node must keep them all (a filler)."""
        self.send(to, self.encode(payload, done))

    def encode(self, payload: bytes, done: bool = True) -> bytes:
        id_ = self.next_id
        self.next_id += 1
        return encode_request(id_, TTL_MS, id_ if done else id_ & ~0xFFFFFFFF, 1, 0, 0,
                              payload)

    def send(self, to: Addr, data: bytes) -> None:
        try:
            self.sock.sendto(data, to)
            self.sent += 1
        except (BlockingIOError, OSError):
            pass  # the kernel's buffer is full: the datagram is lost, as on a real link
        self.drain()

    def drain(self) -> None:
        """Read and drop what the node answered (a hostile peer ignores it)."""
        try:
            while True:
                self.sock.recv(65_536)
        except (BlockingIOError, OSError):
            return

    def ask(self, to: Addr, payload: bytes, timeout: float = 2.0) -> bytes:
        """One request and its REPLY's payload (blocking, retried), for set-up only."""
        deadline = time.monotonic() + timeout
        self.sock.setblocking(True)
        try:
            while time.monotonic() < deadline:
                self.sock.sendto(self.encode(payload), to)
                self.sock.settimeout(0.3)
                try:
                    message = decode_datagram(self.sock.recv(65_536), LIMITS)
                except TimeoutError:
                    continue
                if isinstance(message, Reply):
                    return message.payload
        finally:
            self.sock.setblocking(False)
        raise TimeoutError("the node did not answer the set-up request")


class FreshClusters:
    """First datagrams from nodes of new self-made clusters: every one of them valid."""

    def __init__(self, target: Target, sender: Sender) -> None:
        self.target = target
        verifier = EidVerifier()
        verifier.add_cluster_id(ClusterId.decode(target.cluster_id))
        sources = EidSourceVerifier(verifier)
        first = self._credential()[0]
        self.initiator = TransitInitiator(first, TransitCertVerifier(sources.cluster_key),
                                          os.urandom)
        step = self.initiator.prepare(target.address, target.master_hash, ALGORITHM, b"",
                                      time.time())
        assert isinstance(step, NeedKey)
        answer = sender.ask(target.address, step.query)
        self.initiator.learn_key(target.address, target.master_hash, answer, time.time())

    @staticmethod
    def _credential() -> tuple[NodeCredential, bytes]:
        master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        cid = issue_cluster_id(master, key, [ServerAddress(ip_address("127.0.3.1"), 7000,
                                                           10, 10)])
        node = NodeIdentity.issue(b"n1", Ed25519PrivateKey.generate(), key, cid.master_hash)
        eid = mint_eid(key, cid, b"x").encode()
        return NodeCredential(cid.master_hash, node.node_id, node.key, node.cert), eid

    def datagram(self) -> bytes:
        """A new cluster's first datagram carrying a request for the target entity."""
        credential, eid = self._credential()
        self.initiator.credential = credential
        body = NodeRequest(self.target.target_eid, 1, 1, PAYLOAD, version=1,
                           source=eid).body()
        step = self.initiator.prepare(self.target.address, self.target.master_hash,
                                      ALGORITHM, encode_operation(body), time.time())
        assert isinstance(step, Prepared)
        return step.datagram


def flood(target: Target, host: str, stop: Any, counter: Any) -> None:
    """Send fresh-cluster requests from `host` until `stop` is set; count them."""
    sender = Sender(host, random.Random(os.urandom(16)))
    fresh = FreshClusters(target, sender)
    while not stop.is_set():
        for _ in range(20):
            sender.request(target.address, fresh.datagram())
        with counter.get_lock():
            counter.value += 20


@dataclass(frozen=True)
class FillPlan:
    """How much of each table to fill (the node's configured bounds)."""

    max_peers: int
    max_epochs_per_peer: int
    max_records: int
    max_records_per_peer: int
    max_reassemblies_per_peer: int
    reassembly_bytes_per_peer: int
    max_reassembly_bytes: int
    sessions: int


def fill(target: Target, hosts: tuple[str, ...], plan: FillPlan, stop: Any, ready: Any,
         counter: Any) -> None:
    """Fill every table from `hosts` (many ports each), tell `ready`, then top up at
    ~50 datagrams/s per table until `stop` is set."""
    rng = random.Random(os.urandom(16))
    epochs: list[Sender] = []
    records = [Sender(hosts[1 % len(hosts)], rng)
               for _ in range(plan.max_records // plan.max_records_per_peer + 1)]
    pieces = [Sender(hosts[2 % len(hosts)], rng)
              for _ in range(plan.max_reassembly_bytes // plan.reassembly_bytes_per_peer + 1)]
    opener = Sender(hosts[3 % len(hosts)], rng)
    fresh = FreshClusters(target, opener)

    def top_epochs(sender: Sender) -> None:
        for _ in range(plan.max_epochs_per_peer):
            sender.new_epoch()
            sender.request(target.address, b"", done=False)

    def top_records(sender: Sender, count: int) -> None:
        for _ in range(count):
            sender.request(target.address, b"", done=False)

    def top_pieces(sender: Sender) -> None:
        size = plan.reassembly_bytes_per_peer // plan.max_reassemblies_per_peer
        for _ in range(plan.max_reassemblies_per_peer):
            id_ = sender.next_id
            sender.next_id += 1
            sender.send(target.address, encode(Fragment(Kind.REQUEST, id_, rng.getrandbits(32),
                                                        size, 1100, 0, 0, bytes(1100))))

    def count(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    for index in range(plan.max_peers // plan.max_epochs_per_peer + 1):
        sender = Sender(hosts[0], rng)  # a new port each: more than a process may open
        top_epochs(sender)
        epochs.append(sender)
        if len(epochs) > KEEP_OPEN:
            epochs.pop(0).sock.close()
        if index % 8 == 0:
            time.sleep(0.001)
    count((plan.max_peers // plan.max_epochs_per_peer + 1) * plan.max_epochs_per_peer)
    for sender in records:
        for _ in range(plan.max_records_per_peer // 256):
            top_records(sender, 256)
            time.sleep(0.002)
    count(len(records) * plan.max_records_per_peer)
    for sender in pieces:
        top_pieces(sender)
    for _ in range(plan.sessions):
        opener.request(target.address, fresh.datagram())
    count(plan.sessions)
    ready.set()
    while not stop.is_set():
        rng.choice(epochs).drain()
        top_epochs(rng.choice(epochs))
        top_records(rng.choice(records), 16)
        top_pieces(rng.choice(pieces))
        opener.request(target.address, fresh.datagram())
        count(plan.max_epochs_per_peer + 16 + plan.max_reassemblies_per_peer + 1)
        time.sleep(0.3)
