"""Key establishment and session AEADs for each registered algorithm, over `cryptography`.

Nothing here is hand-written cryptography: HPKE (RFC 9180, base mode, single shot) seals
a session's first datagram to a node's transit key; the session itself uses the
algorithm's AEAD with keys from HKDF-SHA256. Private keys are built from injected random
bytes (so tests and the protocol's worked example can fix them); HPKE's own ephemeral key
comes from OpenSSL's generator, which is why a first datagram is never reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from carbon.error_codes import ErrorCode
from mercury_rt.core.transit.algorithms import Aead, Kem, TransitAlgorithm, TransitError

MLKEM768_PUBLIC = 1184
X25519_SIZE = 32
SEED_SIZE = {Kem.X25519: 32, Kem.MLKEM768_X25519: 64 + 32}
"""Random bytes a transit private key is built from."""

PrivateKem = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
PublicKem = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey

_HPKE_KEM = {Kem.X25519: hpke.KEM.X25519, Kem.MLKEM768_X25519: hpke.KEM.MLKEM768_X25519}
_HPKE_AEAD = {Aead.CHACHA20_POLY1305: hpke.AEAD.CHACHA20_POLY1305,
              Aead.AES_256_GCM: hpke.AEAD.AES_256_GCM}


@dataclass(frozen=True, slots=True)
class KemKeyPair:
    """A node's transit private key for one KEM and the public bytes it publishes."""

    kem: Kem
    private: PrivateKem
    public: bytes


def key_pair_from_seed(kem: Kem, seed: bytes) -> KemKeyPair:
    """A transit key pair from SEED_SIZE[kem] random bytes."""
    if len(seed) != SEED_SIZE[kem]:
        raise ValueError(f"a {kem.name} transit key needs {SEED_SIZE[kem]} seed bytes")
    if kem is Kem.X25519:
        private = x25519.X25519PrivateKey.from_private_bytes(seed)
        return KemKeyPair(kem, private, private.public_key().public_bytes_raw())
    ml = mlkem.MLKEM768PrivateKey.from_seed_bytes(seed[:64])
    classic = x25519.X25519PrivateKey.from_private_bytes(seed[64:])
    public = ml.public_key().public_bytes_raw() + classic.public_key().public_bytes_raw()
    return KemKeyPair(kem, hpke.MLKEM768X25519PrivateKey(ml, classic), public)


def load_public(kem: Kem, data: bytes) -> PublicKem:
    """A peer's transit public key from its wire bytes; TransitError 711 if malformed."""
    try:
        if kem is Kem.X25519 and len(data) == X25519_SIZE:
            return x25519.X25519PublicKey.from_public_bytes(data)
        if kem is Kem.MLKEM768_X25519 and len(data) == MLKEM768_PUBLIC + X25519_SIZE:
            return hpke.MLKEM768X25519PublicKey(
                mlkem.MLKEM768PublicKey.from_public_bytes(data[:MLKEM768_PUBLIC]),
                x25519.X25519PublicKey.from_public_bytes(data[MLKEM768_PUBLIC:]))
    except ValueError:
        pass
    raise TransitError(f"not a {kem.name} transit public key ({len(data)} bytes)",
                       ErrorCode.TRANSIT_CERT_INVALID)


def _suite(alg: TransitAlgorithm) -> hpke.Suite:
    return hpke.Suite(_HPKE_KEM[alg.kem], hpke.KDF.HKDF_SHA256, _HPKE_AEAD[alg.aead])


def hpke_seal(alg: TransitAlgorithm, public: PublicKem, info: bytes, plaintext: bytes) -> bytes:
    """enc || ciphertext, sealed to `public` with HPKE base mode."""
    return _suite(alg).encrypt(plaintext, public, info=info)


def hpke_open(alg: TransitAlgorithm, private: PrivateKem, info: bytes, sealed: bytes) -> bytes:
    """The plaintext of `hpke_seal`; TransitError 704 if it does not open."""
    try:
        return _suite(alg).decrypt(sealed, private, info=info)
    except (InvalidTag, ValueError):
        raise TransitError("first datagram does not open under this node's transit key",
                           ErrorCode.TRANSIT_OPEN_FAILED) from None


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


AeadCipher = ChaCha20Poly1305 | AESGCM


def session_aead(aead: Aead, key: bytes) -> AeadCipher:
    """The session AEAD object for a 32-byte key."""
    return ChaCha20Poly1305(key) if aead is Aead.CHACHA20_POLY1305 else AESGCM(key)


def aead_open(cipher: AeadCipher, nonce: bytes, data: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None if it was not sealed with this key, nonce and aad."""
    try:
        return cipher.decrypt(nonce, data, aad)
    except InvalidTag:
        return None


def x25519_shared(private: x25519.X25519PrivateKey, peer: bytes) -> bytes:
    """The X25519 shared secret with a peer's 32 public bytes; TransitError if degenerate."""
    try:
        return private.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
    except ValueError:
        raise TransitError("ephemeral public key is not a usable X25519 key",
                           ErrorCode.TRANSIT_MALFORMED) from None
