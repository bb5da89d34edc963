"""A session's key schedule, nonces and associated data: what both ends compute alike.

Keys come from HKDF-SHA256 over two secrets: the 32 random bytes the caller sealed into
the first datagram with HPKE (so only the certified transit key opens the session), and
the X25519 exchange between the two sides' per-session ephemeral keys (so recorded
traffic stays secret after the transit key is later compromised: forward secrecy beyond
the first datagram). The salt is the transcript hash, binding the keys to the header,
the algorithm and both ephemeral keys. Nonces are explicit: a direction label and the
message number, so no nonce repeats while a session's numbers do not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from carbon.cbor import dumps_flat
from mercury_rt.core.transit.algorithms import TransitAlgorithm
from mercury_rt.core.transit.kem import AeadCipher, hkdf, session_aead
from mercury_rt.core.transit.wire import INIT_REPLY, SESSION, SESSION_REPLY

TO_NODE = b"c2s\x00"
TO_CALLER = b"s2c\x00"
KEYS_INFO = b"mercury-rt/1 transit session keys"
PROOF_DOMAIN = b"mercury-rt/1 transit proof\x00"


def nonce(direction: bytes, seq: int) -> bytes:
    """The 12-byte AEAD nonce of message `seq` in one direction."""
    return direction + seq.to_bytes(8, "big")


def transcript_hash(init_header: bytes, session_id: bytes, timestamp_ms: int,
                    caller_ephemeral: bytes, node_ephemeral: bytes) -> bytes:
    """SHA-256 over everything both sides agreed in the first exchange."""
    return hashlib.sha256(dumps_flat([init_header, session_id, timestamp_ms,
                                      caller_ephemeral, node_ephemeral])).digest()


def proof_message(init_header: bytes, session_id: bytes, timestamp_ms: int,
                  caller_ephemeral: bytes, init_secret: bytes) -> bytes:
    """What the calling node's key signs: this one first datagram, and its secret.

    Covering the init secret ties the signature to this HPKE encapsulation: a stolen proof
    cannot vouch for a session its thief opens with a secret of its own."""
    return PROOF_DOMAIN + hashlib.sha256(dumps_flat([init_header, session_id, timestamp_ms,
                                                      caller_ephemeral, init_secret])).digest()


@dataclass(frozen=True, slots=True)
class SessionCiphers:
    """The two directions' AEADs of one session."""

    to_node: AeadCipher
    to_caller: AeadCipher


def derive_ciphers(alg: TransitAlgorithm, init_secret: bytes, shared: bytes,
                   transcript: bytes) -> SessionCiphers:
    """Both directions' keys from the two secrets, salted by the transcript."""
    okm = hkdf(init_secret + shared, transcript, KEYS_INFO, 64)
    return SessionCiphers(session_aead(alg.aead, okm[:32]), session_aead(alg.aead, okm[32:]))


def session_aad(session_id: bytes, seq: int) -> bytes:
    """Associated data of session message `seq`: its whole header."""
    return dumps_flat([SESSION, session_id, seq])


def reply_aad(session_id: bytes, seq: int) -> bytes:
    """Associated data of the reply to message `seq`: binds it to that request."""
    return dumps_flat([SESSION_REPLY, session_id, seq])


def init_reply_aad(session_id: bytes, node_ephemeral: bytes) -> bytes:
    """Associated data of the reply to a first datagram."""
    return dumps_flat([INIT_REPLY, session_id, node_ephemeral])
