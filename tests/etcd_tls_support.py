"""A real etcd member with client TLS for the TLS tests: a CA, server and client
certificates made with the `cryptography` x509 API, and a single member started with
`--client-cert-auth` (or, for the quota test, in plaintext with extra flags).

The member is one etcd process on a loopback address of its own, stopped by PID and its
data directory deleted afterwards (as tests/etcd_support.py does for 3-member clusters).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mercury_rt.etcd_dev import Member, plan_members, stop_cluster_members
from tungsten.etcd_store import EtcdSettings, EtcdTls

START_TIMEOUT = 20.0
_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Pki:
    """PEM files of one test PKI: `ca` signed the server and client certificates;
    `other_ca` is an unrelated CA (a node trusting it must refuse the server)."""

    directory: Path

    def path(self, name: str) -> Path:
        """One of ca.pem, other-ca.pem, server.pem, server-key.pem, client.pem,
        client-key.pem."""
        return self.directory / name

    def tls(self, ca: str = "ca.pem", client: bool = True) -> EtcdTls:
        """Adapter credentials: trusting `ca`, with the client pair unless `client` is
        False."""
        trusted = self.path(ca).read_bytes()
        if not client:
            return EtcdTls(trusted)
        return EtcdTls(trusted, self.path("client.pem").read_bytes(),
                       self.path("client-key.pem").read_bytes())


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: str, issuer: x509.Name, public: ec.EllipticCurvePublicKey,
             now: datetime.datetime) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - _DAY).not_valid_after(now + _DAY))


def _ca(common: str, now: datetime.datetime) -> tuple[ec.EllipticCurvePrivateKey,
                                                       x509.Certificate]:
    key = _key()
    cert = (_builder(common, _name(common), key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _leaf(common: str, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate,
          usage: x509.ObjectIdentifier, now: datetime.datetime,
          host: str | None = None) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    builder = (_builder(common, ca.subject, key.public_key(), now)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if host is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.write_bytes(data)
    path.chmod(mode)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_pki(directory: Path, host: str) -> Pki:
    """A CA, a server certificate for `host` (an IP SAN, as gRPC verifies it), a client
    certificate, and an unrelated CA, as PEM files in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca = _ca("mercury test CA", now)
    _, other = _ca("some other CA", now)
    server_key, server = _leaf("etcd", ca_key, ca, ExtendedKeyUsageOID.SERVER_AUTH, now, host)
    client_key, client = _leaf("mercury-node", ca_key, ca, ExtendedKeyUsageOID.CLIENT_AUTH,
                               now)
    pem = serialization.Encoding.PEM
    _write(directory / "ca.pem", ca.public_bytes(pem))
    _write(directory / "other-ca.pem", other.public_bytes(pem))
    _write(directory / "server.pem", server.public_bytes(pem))
    _write(directory / "server-key.pem", _key_pem(server_key), 0o600)
    _write(directory / "client.pem", client.public_bytes(pem))
    _write(directory / "client-key.pem", _key_pem(client_key), 0o600)
    return Pki(directory)


def expired_ca_pem() -> bytes:
    """A CA certificate that expired a week ago (a bundle may still carry one)."""
    _, ca = _ca("expired CA", datetime.datetime.now(datetime.UTC) - 8 * _DAY)
    return ca.public_bytes(serialization.Encoding.PEM)


@dataclass
class SingleMember:
    """One running member and how to reach it."""

    member: Member
    pki: Pki | None

    @property
    def endpoint(self) -> tuple[str, int]:
        """(host, client port)."""
        return self.member.host, self.member.client_port

    def settings(self, prefix: bytes, tls: EtcdTls | None = None, timeout: float = 3.0,
                 max_reply_bytes: int = 4 * 1024 * 1024) -> EtcdSettings:
        """Adapter settings for this member."""
        return EtcdSettings((self.endpoint,), prefix=prefix, timeout=timeout,
                            attempt_timeout=1.0, max_reply_bytes=max_reply_bytes, tls=tls)

    def stop(self) -> None:
        """Stop the member by PID and delete its data dir."""
        stop_cluster_members([self.member])


def _command(member: Member, scheme: str, pki: Pki | None, extra: tuple[str, ...]) -> list[str]:
    client = f"{scheme}://{member.host}:{member.client_port}"
    peer = f"http://{member.host}:{member.peer_port}"
    command = ["etcd", "--name", member.name, "--data-dir", str(member.data_dir),
               "--listen-client-urls", client, "--advertise-client-urls", client,
               "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
               "--initial-cluster", f"{member.name}={peer}", "--initial-cluster-state", "new",
               "--initial-cluster-token", f"tls-{os.getpid()}-{time.time_ns()}",
               "--logger", "zap", "--log-level", "error", *extra]
    if pki is not None:
        command += ["--cert-file", str(pki.path("server.pem")),
                    "--key-file", str(pki.path("server-key.pem")),
                    "--trusted-ca-file", str(pki.path("ca.pem")), "--client-cert-auth"]
    return command


def _etcdctl(member: Member, scheme: str, pki: Pki | None) -> list[str]:
    command = ["etcdctl", "--endpoints", f"{scheme}://{member.host}:{member.client_port}",
               "--command-timeout=1s"]
    if pki is not None:
        command += ["--cacert", str(pki.path("ca.pem")), "--cert", str(pki.path("client.pem")),
                    "--key", str(pki.path("client-key.pem"))]
    return command


def start_single(directory: Path, host: str, pki: Pki | None,
                 extra: tuple[str, ...] = ()) -> SingleMember:
    """Start one member on `host` (TLS with client-cert auth if `pki`), wait until it
    answers (bounded), and return it; the caller stops it."""
    directory.mkdir(parents=True, exist_ok=True)
    member = plan_members(directory, (host,))[0]
    scheme = "http" if pki is None else "https"
    with open(directory / "etcd.log", "ab") as log:
        member.pid = subprocess.Popen(_command(member, scheme, pki, extra), stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True).pid
    running = SingleMember(member, pki)
    deadline = time.monotonic() + START_TIMEOUT
    env = {**os.environ, "ETCDCTL_API": "3"}
    while subprocess.run([*_etcdctl(member, scheme, pki), "endpoint", "health"],
                         capture_output=True, env=env, check=False).returncode != 0:
        if time.monotonic() > deadline:
            running.stop()
            raise TimeoutError(f"etcd on {host} not healthy after {START_TIMEOUT} s: "
                               f"{(directory / 'etcd.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return running


def remove(directory: Path, member: SingleMember) -> None:
    """Stop `member` and delete `directory` (its PKI and logs)."""
    member.stop()
    shutil.rmtree(directory, ignore_errors=True)
