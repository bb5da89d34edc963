"""Seed phrases: the cluster master key (and every cluster key) derive from BIP39 words.

An operator who loses every machine can type the words back in and get the same master
key, hence the same master hash (the cluster's identity), the same cluster keys and,
because Ed25519 signatures are deterministic, byte-identical EIDs. We use the maintained
`mnemonic` (BIP39) and `slip10` (SLIP-0010 ed25519) libraries; nothing is hand-rolled.

Derivation (SLIP-0010, ed25519, all hardened):
  master node        = m/8253'/0'          (8253 = "MERC" on a phone keypad, unregistered)
  cluster key for v  = master node / v'    (v = the cluster-ID version that introduced it)
The master key file stores the master node (private key and chain code), so rotating
the cluster key later needs only that file, never the words.

`slip10` is imported inside the two functions that derive keys, not at the top: its
package imports `importlib.metadata` (for its own version), which loads zipfile, email
and with them threading and socket, none of which the pure core may pull in on import.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from mnemonic import Mnemonic

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity.errors import IdentityError, SeedPhraseError
from mercury_rt.core.identity.keys import private_key_from_bytes

MASTER_PATH = "m/8253'/0'"
HARDENED_INDEX = 0x8000_0000
"""SLIP-0010's hardened-child bit (slip10.HARDENED_INDEX)."""
MAX_KEY_VERSION = HARDENED_INDEX - 1
_WORD_COUNTS = (12, 15, 18, 21, 24)
_BIP39 = Mnemonic("english")
_WORDS = frozenset(_BIP39.wordlist)


@dataclass(frozen=True, slots=True, repr=False)
class MasterSecret:
    """The SLIP-0010 master node: a private key and the chain code to derive cluster keys."""

    private: bytes
    chain_code: bytes

    def signing_key(self) -> Ed25519PrivateKey:
        """The master Ed25519 key that certifies cluster keys."""
        return private_key_from_bytes(self.private)

    def cluster_key(self, key_version: int) -> Ed25519PrivateKey:
        """The cluster key introduced at cluster-ID version `key_version` (deterministic)."""
        if not 0 <= key_version <= MAX_KEY_VERSION:
            raise IdentityError(f"key version {key_version} outside 0..{MAX_KEY_VERSION}",
                                ErrorCode.FIELD_TOO_LARGE)
        from slip10 import SLIP10  # noqa: PLC0415 (see the module docstring)
        node = SLIP10(self.chain_code, self.private, curve_name="ed25519")
        raw = node.get_privkey_from_path([HARDENED_INDEX | key_version])
        return private_key_from_bytes(bytes(raw))

    def __repr__(self) -> str:
        return "MasterSecret(<secret>)"


def new_phrase(entropy: bytes) -> str:
    """A fresh phrase from injected entropy (32 bytes -> 24 words; 16 -> 12)."""
    if len(entropy) not in (16, 20, 24, 28, 32):
        raise SeedPhraseError(f"entropy must be 16-32 bytes in steps of 4, not {len(entropy)}")
    return _BIP39.to_mnemonic(entropy)


def normalize_phrase(text: str) -> str:
    """Validate typed words; return them single-spaced, NFKD, lower case.

    Errors say which word is unknown (with its position) or that the checksum word is
    wrong, so an operator can find a typo rather than guess.
    """
    words = unicodedata.normalize("NFKD", text).lower().split()
    if len(words) not in _WORD_COUNTS:
        raise SeedPhraseError(f"a seed phrase has 12, 15, 18, 21 or 24 words; got {len(words)}")
    for position, word in enumerate(words, start=1):
        if word not in _WORDS:
            raise SeedPhraseError(f"word {position} ({word!r}) is not in the BIP39 English list")
    phrase = " ".join(words)
    if not _BIP39.check(phrase):
        raise SeedPhraseError("bad checksum: the words are all valid but the last (checksum) "
                              "word does not match; check the order and each word")
    return phrase


def bip39_seed(phrase: str, passphrase: str = "") -> bytes:
    """The 64-byte BIP39 seed of a validated phrase."""
    return Mnemonic.to_seed(normalize_phrase(phrase), passphrase)


def slip10_ed25519(seed: bytes, path: str) -> tuple[bytes, bytes]:
    """(chain code, private key) at `path` (hardened only) from a seed, per SLIP-0010."""
    from slip10 import SLIP10  # noqa: PLC0415 (see the module docstring)
    node = SLIP10.from_seed(seed, curve_name="ed25519")
    chain_code, private = node.get_extended_privkey_from_path(path)
    return bytes(chain_code), bytes(private)


def master_from_phrase(phrase: str, passphrase: str = "") -> MasterSecret:
    """The cluster master node for a seed phrase (same words -> same master key)."""
    chain_code, private = slip10_ed25519(bip39_seed(phrase, passphrase), MASTER_PATH)
    return MasterSecret(private=private, chain_code=chain_code)
