"""A passphrase-protected master key: the master's Ed25519 key as encrypted PKCS#8.

The master key is the cluster: whoever copies `master.key` can certify cluster keys at
will. Encrypting it lets an operator keep the file on a shared backup or an offline disk
that is not itself trusted. The format is cryptography's own serialization, so the key
can be inspected with standard tools (`openssl pkcs8`) given the derived password:

  * the passphrase is stretched with scrypt (N=2^15, r=8, p=1, a 16-byte random salt),
    because PKCS#8's own PBKDF2 uses 2,048 rounds, far too few against offline guessing;
  * the first 32 bytes of that output, hex-encoded, are the PKCS#8 password
    (`BestAvailableEncryption`: PBES2, AES-256-CBC);
  * the SLIP-0010 chain code, which is not an Ed25519 key and so has no PKCS#8 form, is
    sealed with ChaCha20-Poly1305 under the last 32 bytes (random nonce, the record's kind
    as associated data).

A wrong passphrase fails PKCS#8 decryption and is reported as 327 KEY_FILE_PASSPHRASE;
a record whose chain code was altered fails the AEAD check and is a damaged file (322).
This module is shell-side: it draws its salt and nonce from os.urandom.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from carbon.error_codes import ErrorCode
from mercury_rt.core.identity import KeyFileError, MasterSecret, private_bytes

SEALED_KIND = "mercury-rt master key v1 encrypted"
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SALT = 16
_NONCE = 12
MAX_PASSPHRASE = 1024
MAX_SCRYPT_MEMORY = 2**20
"""The most n x r a record may ask for (scrypt then needs 128 MiB): a planted or damaged
file must not make the CLI allocate gigabytes."""


@dataclass(frozen=True, slots=True)
class Stretch:
    """The scrypt parameters stored beside the key, so they can be raised later."""

    salt: bytes
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    def keys(self, passphrase: bytes) -> tuple[bytes, bytes]:
        """(PKCS#8 password, chain-code sealing key) for `passphrase`."""
        out = Scrypt(salt=self.salt, length=64, n=self.n, r=self.r, p=self.p).derive(passphrase)
        return out[:32].hex().encode(), out[32:]


def check_passphrase(passphrase: bytes) -> bytes:
    """The passphrase, if usable: not empty, not absurdly long (it comes from a file)."""
    if not passphrase:
        raise KeyFileError("the passphrase is empty", ErrorCode.KEY_FILE_PASSPHRASE)
    if len(passphrase) > MAX_PASSPHRASE:
        raise KeyFileError(f"the passphrase is longer than {MAX_PASSPHRASE} bytes",
                           ErrorCode.KEY_FILE_PASSPHRASE)
    return passphrase


def seal(master: MasterSecret, passphrase: bytes) -> dict[str, object]:
    """The CBOR record of `master` encrypted under `passphrase`."""
    stretch = Stretch(os.urandom(_SALT))
    password, seal_key = stretch.keys(check_passphrase(passphrase))
    pkcs8 = master.signing_key().private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password))
    nonce = os.urandom(_NONCE)
    sealed = nonce + ChaCha20Poly1305(seal_key).encrypt(nonce, master.chain_code,
                                                         SEALED_KIND.encode())
    return {"kind": SEALED_KIND, "scrypt": [stretch.salt, stretch.n, stretch.r, stretch.p],
            "pkcs8": pkcs8, "chain_code": sealed}


def unseal(record: dict[str, object], passphrase: bytes, where: str) -> MasterSecret:
    """The master secret of a sealed record; 327 for a wrong passphrase, 322 if damaged."""
    stretch, pkcs8, sealed = _fields(record, where)
    password, seal_key = stretch.keys(check_passphrase(passphrase))
    try:
        key = serialization.load_der_private_key(pkcs8, password)
    except ValueError:
        raise KeyFileError(f"{where}: wrong passphrase (the master key did not decrypt)",
                           ErrorCode.KEY_FILE_PASSPHRASE) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{where}: the encrypted key is not an Ed25519 key")
    try:
        chain_code = ChaCha20Poly1305(seal_key).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                                        SEALED_KIND.encode())
    except InvalidTag:
        raise KeyFileError(f"{where}: the sealed chain code is damaged") from None
    return MasterSecret(private_bytes(key), chain_code)


def _fields(record: dict[str, object], where: str) -> tuple[Stretch, bytes, bytes]:
    params, pkcs8, sealed = record.get("scrypt"), record.get("pkcs8"), record.get("chain_code")
    if (type(params) is not list or len(params) != 4 or type(params[0]) is not bytes
            or not all(type(v) is int for v in params[1:])
            or type(pkcs8) is not bytes or type(sealed) is not bytes
            or len(sealed) <= _NONCE):
        raise KeyFileError(f"{where}: damaged encrypted master key record")
    salt, n, r, p = params
    if not (n >= 2 and n & (n - 1) == 0 and r >= 1 and n * r <= MAX_SCRYPT_MEMORY
            and 1 <= p <= 16):
        raise KeyFileError(f"{where}: scrypt parameters out of range (n={n}, r={r}, p={p})")
    return Stretch(salt, n, r, p), pkcs8, sealed
