"""The `replication:` section's safety rules: TLS files that load, and no plaintext off-host.

etcd holds every mirrored entity's state, so a node talks to it over TLS: the members'
server certificates are verified against `tls.ca_file` only, and `tls.cert_file` /
`tls.key_file` answer etcd's `--client-cert-auth`. Plaintext is accepted only to loopback
endpoints (dev clusters, tests) or where the operator says the network is private
(`allow_plaintext: true`). The files are read here with the bounded reader (a FIFO or a
huge file planted where a PEM should be is refused without blocking) and parsed, so a
wrong file fails `mercury-rt node check` at its YAML line, not a TLS handshake later.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificatePublicKeyTypes,
    PrivateKeyTypes,
    PublicKeyTypes,
)

from mercury_rt.config.keyfiles import exposed_secret, read_regular
from mercury_rt.config.replication import ReplicationConfig, TlsFiles
from mercury_rt.core.identity import KeyFileError
from policy.yaml_source import Loc
from tungsten.etcd_store import EtcdSettings, EtcdTls

MAX_PEM = 1024 * 1024
"""Bytes of one PEM file read at most (a CA bundle of a few hundred certificates)."""
_TLS: Loc = ("replication", "tls")
Finding = tuple[Loc, str]


class _FileRefusedError(Exception):
    """One file's problem, with the key that names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.loc: Loc = (*_TLS, key)
        self.message = message


def replication_findings(replication: ReplicationConfig | None,
                         at: Callable[[Path], Path],
                         now: datetime.datetime | None = None) -> Iterator[Finding]:
    """Problems of the `replication` section (`at` resolves a path against the config's
    folder): plaintext to an endpoint off this machine, and each unusable TLS file."""
    if replication is None:
        return
    for i in replication.plaintext_endpoints():
        yield ("replication", "endpoints", i), (
            f"{replication.endpoints[i]} is not a loopback address: plaintext to etcd would "
            "expose every mirrored entity's state and let anyone on the path change it; set "
            "replication.tls (ca_file, and cert_file/key_file for etcd's client-cert auth), "
            "or on a private, trusted network only, replication.allow_plaintext: true")
    if replication.tls is not None:
        for problem in _problems(replication.tls, at, now or _now()):
            yield problem.loc, problem.message


def load_tls(tls: TlsFiles, now: datetime.datetime | None = None) -> EtcdTls:
    """The credentials of a resolved `tls` section; KeyFileError naming the first bad
    file (`node check` has reported every problem with its line before a node starts)."""
    try:
        return _load(tls, lambda p: p, now or _now())
    except _FileRefusedError as exc:
        raise KeyFileError(f"replication.tls.{exc.loc[-1]}: {exc.message}") from None


def _problems(tls: TlsFiles, at: Callable[[Path], Path],
              now: datetime.datetime) -> Iterator[_FileRefusedError]:
    """Every file's problem (the client pair's first one: a bad certificate is not matched
    against its key)."""
    try:
        _certificates("ca_file", at(tls.ca_file), now)
    except _FileRefusedError as exc:
        yield exc
    if tls.cert_file is not None and tls.key_file is not None:
        try:
            _client_pair(at(tls.cert_file), at(tls.key_file), now)
        except _FileRefusedError as exc:
            yield exc


def _load(tls: TlsFiles, at: Callable[[Path], Path], now: datetime.datetime) -> EtcdTls:
    ca = _certificates("ca_file", at(tls.ca_file), now)[0]
    if tls.cert_file is None or tls.key_file is None:
        return EtcdTls(ca)
    chain, key = _client_pair(at(tls.cert_file), at(tls.key_file), now)
    return EtcdTls(ca, chain, key)


def _client_pair(cert_file: Path, key_file: Path,
                 now: datetime.datetime) -> tuple[bytes, bytes]:
    """(certificate chain PEM, private key PEM), the key being the certificate's."""
    chain, certificates = _certificates("cert_file", cert_file, now)
    key_pem, key = _private_key(key_file)
    if _spki(certificates[0].public_key()) != _spki(key.public_key()):
        raise _FileRefusedError("key_file", f"{key_file} is not the key of the certificate "
                                            f"in {cert_file}; use the pair issued together")
    return chain, key_pem


def _read(key: str, path: Path) -> bytes:
    try:
        return read_regular(path, MAX_PEM)
    except FileNotFoundError:
        raise _FileRefusedError(key, f"{path}: no such file") from None
    except OSError as exc:
        raise _FileRefusedError(key, f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _FileRefusedError(key, f"{exc}; expected a PEM file") from None


def _certificates(key: str, path: Path,
                  now: datetime.datetime) -> tuple[bytes, list[x509.Certificate]]:
    """A PEM file's bytes and certificates, at least one. Expired: the client
    certificate itself (the first), or every CA of `ca_file` (a bundle may carry a few
    old ones)."""
    data = _read(key, path)
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise _FileRefusedError(key, f"{path} holds no PEM certificate (-----BEGIN "
                                     "CERTIFICATE-----)") from None
    judged = certificates if key == "ca_file" else certificates[:1]
    if all(c.not_valid_after_utc < now for c in judged):
        last = max(judged, key=lambda c: c.not_valid_after_utc)
        raise _FileRefusedError(key, f"{path}: the certificate for "
                                     f"{last.subject.rfc4514_string()} expired on "
                                     f"{last.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    return data, certificates


def _private_key(path: Path) -> tuple[bytes, PrivateKeyTypes]:
    """The client key: 0600-like (it is a secret), unencrypted PEM."""
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0  # the read below says why
    exposed = exposed_secret(path, mode)
    if exposed is not None:
        raise _FileRefusedError("key_file", exposed)
    data = _read("key_file", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise _FileRefusedError("key_file", f"{path} is encrypted; the etcd client key must "
                                            "be an unencrypted PEM file (protect it with mode "
                                            "0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise _FileRefusedError("key_file", f"{path} holds no PEM private key") from None
    return data, key


def _spki(public: CertificatePublicKeyTypes | PublicKeyTypes) -> bytes:
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def replication_settings(r: ReplicationConfig) -> EtcdSettings:
    """The etcd adapter's settings from a `replication:` section (for a node, and for the
    tools given its config), its TLS files read and checked now."""
    return EtcdSettings(r.endpoint_pairs(), r.prefix.encode(), r.timeout, r.attempt_timeout,
                        r.record_ttl, r.max_reply_bytes,
                        None if r.tls is None else load_tls(r.tls))
