"""Bytes a node sends to an address that never proved it receives, per reply kind
(protocol.md 3.7: at most 3x what that address sent), measured from raw sockets: each kind
from a new port of 127.0.6.1, so no kind profits from another's budget; everything the
node sends to that port in the next second is counted."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

from hostile_peers import LIMITS, TTL_MS, FreshClusters, Sender, Target

from carbon import cbor
from mercury_rt.core.node import encode_cluster_id_query
from mercury_rt.core.transit.algorithms import algorithm
from mercury_rt.core.transit.wire import (
    Init,
    SessionMessage,
    encode_init,
    encode_key_query,
    encode_session,
)
from mercury_rt.core.transport.wire import (
    Error,
    Fragment,
    Kind,
    Poll,
    Reply,
    decode_datagram,
    encode,
    encode_request,
)

HOST = "127.0.6.1"
LISTEN = 1.0


def _request(payload: bytes, *, ttl_ms: int = TTL_MS, attempt: int = 1, origin: int = 0,
             age_ms: int = 0) -> bytes:
    id_ = (random.randint(1, 2**31) << 32) + 5
    return encode_request(id_, ttl_ms, id_, attempt, origin, age_ms, payload)


def _probes(target: Target) -> dict[str, Callable[[Sender], list[bytes]]]:
    master = target.master_hash
    x25519_kem, hybrid_kem = int(algorithm(2).kem), int(algorithm(3).kem)
    junk = _request(cbor.dumps(7))

    def epochs(sender: Sender) -> list[bytes]:
        out = []
        for _ in range(20):
            id_ = random.randint(1, 2**31) << 32
            out.append(encode_request(id_, TTL_MS, id_, 1, 0, 0, b""))
        return out

    return {
        "POLL of an unknown id (204)": lambda s: [encode(Poll(random.getrandbits(63)))],
        "cluster-ID query, unpadded": lambda s: [_request(cbor.dumps([1, master]))],
        "cluster-ID query, padded (as nodes send it)":
            lambda s: [_request(encode_cluster_id_query(master))],
        "cluster-ID query, other cluster (511)":
            lambda s: [_request(cbor.dumps([1, bytes(33)]))],
        "key query X25519, unpadded": lambda s: [_request(encode_key_query(master, x25519_kem, 0))],
        "key query ML-KEM hybrid, unpadded":
            lambda s: [_request(encode_key_query(master, hybrid_kem, 0))],
        "request in clear (701)": lambda s: [junk],
        "same request 3 times (cached reply)": lambda s: [junk, junk, junk],
        "ttl too long (206)": lambda s: [_request(b"", ttl_ms=2**31)],
        "retransmission from before a restart (204)":
            lambda s: [_request(b"", attempt=3, origin=12345, age_ms=100_000)],
        "20 new epochs from one address (203)": epochs,
        "fragment of a too large message (202)":
            lambda s: [encode(Fragment(Kind.REQUEST, 77, 1, 2**31, 1000, 0, 0, bytes(1000)))],
        "first fragment of a request (FRAG_ACK)":
            lambda s: [encode(Fragment(Kind.REQUEST, 78, 1, 4000, 1000, 0, 0, bytes(1000)))],
        "first datagram, unknown key id (702)":
            lambda s: [_request(encode_init(Init(2, os.urandom(8), b"", os.urandom(300))))],
        "first datagram, unknown algorithm (708)":
            lambda s: [_request(encode_init(Init(99, os.urandom(8), b"", os.urandom(300))))],
        "first datagram, algorithm 1 unknown key (702/707)":
            lambda s: [_request(encode_init(Init(1, os.urandom(8), b"", os.urandom(300))))],
        "session message, unknown session (703)":
            lambda s: [_request(encode_session(SessionMessage(os.urandom(8), 1,
                                                               os.urandom(40))))],
        "fresh-cluster first datagram (gate)":
            lambda s: [_request(FreshClusters(target, Sender(HOST, random.Random())).datagram())],
    }


def _code(data: bytes) -> str:
    """A short name for what a datagram the node sent is."""
    try:
        message = decode_datagram(data, LIMITS)
    except Exception:
        return "?"
    if isinstance(message, Error):
        return f"E{int(message.code)}"
    if isinstance(message, Reply):
        try:
            value = cbor.loads(message.payload, LIMITS)
        except Exception:
            return "R"
        if isinstance(value, list) and value and value[0] == 12:
            return f"R{value[1]}"
        return f"R{type(value).__name__}"
    return type(message).__name__


def _probe(target: Target, make: Callable[[Sender], list[bytes]]) -> dict[str, object]:
    sender = Sender(HOST, random.Random(os.urandom(8)))
    datagrams = make(sender)
    sender.sock.setblocking(True)
    sent = sum(len(d) for d in datagrams)
    for data in datagrams:
        sender.sock.sendto(data, target.address)
    received, codes = 0, set()
    deadline = time.monotonic() + LISTEN
    while (left := deadline - time.monotonic()) > 0:
        sender.sock.settimeout(left)
        try:
            data = sender.sock.recv(65_536)
        except TimeoutError:
            break
        received += len(data)
        codes.add(_code(data))
    sender.sock.close()
    return {"sent": sent, "received": received, "ratio": received / sent,
            "codes": ",".join(sorted(codes)) or "none"}


def amplification(target: Target) -> dict[str, dict[str, object]]:
    """Every probe's bytes sent, bytes received and their ratio."""
    return {name: _probe(target, make) for name, make in _probes(target).items()}
