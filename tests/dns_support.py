"""A tiny authoritative DNS server on 127.0.0.1 for SRV tests: answers from a dict, so no
test depends on the internet or on the machine's resolver. Bounded: one thread, one
socket, stopped and joined on exit."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]
"""(owner name with trailing dot, type) -> record texts, e.g. "10 60 7400 a.example.net."."""


def _answer(zone: Zone, wire: bytes) -> bytes:
    query = dns.message.from_wire(wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    question = query.question[0]
    name, kind = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
    if not any(owner == name for owner, _ in zone):
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif (name, kind) in zone:
        response.answer.append(dns.rrset.from_text_list(name, 60, dns.rdataclass.IN, kind,
                                                        zone[(name, kind)]))
    return response.to_wire()


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve `zone`; yields "127.0.0.1:PORT" for --nameserver."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                wire, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            sock.sendto(_answer(zone, wire), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        sock.close()
