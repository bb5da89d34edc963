"""A real etcd member serving clients over TLS with `--client-cert-auth` (127.0.107.1):
a node process (`mercury-rt node run`) and mirrors built from a config with
`replication.tls` commit through it; a node trusting
another CA, one without a client certificate and one in plaintext are refused with an
error that says which side refused, and write nothing. Bounds on what etcd sends back: a
reply over `max_reply_bytes` is 463, and a member out of quota (its NOSPACE alarm, a
separate member on 127.0.108.1) is 462 with what the operator must do."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from carbon.symbols import Symbol
from carbon.types import dumps_typed, loads_typed
from mercury_rt.apps.echo import RAN
from mercury_rt.config import keyfiles, load_node_config
from mercury_rt.config.build import build_node_spec
from mercury_rt.core.identity import mint_eid
from mercury_rt.core.transport import TransportConfig
from mercury_rt.localcluster import ClusterPlan, NodePlan, free_port, start_cluster
from tests.etcd_support import require_etcd
from tests.etcd_tls_support import SingleMember, make_pki, remove, start_single
from tests.nodecfg_support import config_text, make_cluster, run
from tests.replication.mirror_support import Mirror
from tungsten.etcd_store import (
    EtcdSettings,
    EtcdState,
    ReplicationUnavailableError,
    ReplyTooLargeError,
    SpaceExceededError,
)
from tungsten.keys import decode_key, decode_stored, entity_prefix

pytestmark = pytest.mark.net
TLS_HOST = "127.0.107.1"
QUOTA_HOST = "127.0.108.1"
NODE_HOST = "127.0.107.2"
CALLER_HOST = "127.0.107.9"
NODE_CONFIG = """\
node_id: t1
cluster_dir: cluster
state_dir: state
apps: [mercury_rt.apps.echo]
listen: {{host: {host}, inter_port: {inter}, intra_port: {intra}}}
mirrors: [carol]
cluster:
  nodes:
    - {{node_id: t1, intra: '{host}:{intra}', public: '{host}:{inter}/10/10', mirrors: [carol]}}
transport: {{initial_rto: 0.2, min_rto: 0.02, max_rto: 2.0}}
replication:
  endpoints: ['{etcd}']
  prefix: proc/
  tls: {{ca_file: tls/ca.pem, cert_file: tls/client.pem, key_file: tls/client-key.pem}}
"""


@pytest.fixture(scope="module")
def tls_member(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SingleMember]:
    """One member with client TLS and client-cert auth, for the module."""
    require_etcd()
    directory = tmp_path_factory.mktemp("etcd-tls")
    member = start_single(directory / "etcd", TLS_HOST, make_pki(directory / "pki", TLS_HOST))
    try:
        yield member
    finally:
        remove(directory, member)


def _key(entity: bytes, n: int) -> bytes:
    return entity_prefix(entity) + b"\x01k" + bytes((n,))


def _node_settings(tmp_path: Path, member: SingleMember) -> EtcdSettings:
    """The adapter settings a node builds from a config naming the TLS files."""
    assert member.pki is not None
    make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")
    shutil.copytree(member.pki.directory, tmp_path / "tls")
    host, port = member.endpoint
    (tmp_path / "node.yaml").write_text(config_text(extra=(
        f"replication:\n  endpoints: ['{host}:{port}']\n  prefix: node/\n  tls:\n"
        "    ca_file: tls/ca.pem\n    cert_file: tls/client.pem\n"
        "    key_file: tls/client-key.pem\n")))
    spec = build_node_spec(load_node_config(tmp_path / "node.yaml"))
    spec.store.close()
    assert spec.replication is not None and spec.replication.tls is not None
    return spec.replication


def test_mirrors_built_from_a_tls_config_share_state_over_tls(
        tmp_path: Path, tls_member: SingleMember) -> None:
    settings = _node_settings(tmp_path, tls_member)

    async def run() -> tuple[object, object]:
        a, b = Mirror(tmp_path / "a", settings), Mirror(tmp_path / "b", settings)
        try:
            await a.value("add", 5)
            return await b.value("add", 2), await a.value("get")
        finally:
            await a.close()
            await b.close()

    assert asyncio.run(run()) == (7, 7)


def test_a_node_process_commits_over_tls(tmp_path: Path, tls_member: SingleMember) -> None:
    assert tls_member.pki is not None
    shutil.copytree(tls_member.pki.directory, tmp_path / "tls")
    inter, intra = free_port(NODE_HOST), free_port(NODE_HOST)
    made = run("cluster", "new", "--dir", str(tmp_path / "cluster"),
               f"--address={NODE_HOST}:{inter}/10/10")
    assert made.exit_code == 0, made.output
    host, port = tls_member.endpoint
    config = tmp_path / "t1.yaml"
    config.write_text(NODE_CONFIG.format(host=NODE_HOST, inter=inter, intra=intra,
                                         etcd=f"{host}:{port}"))
    checked = run("node", "check", str(config))
    assert checked.exit_code == 0, checked.output
    key, _ = keyfiles.load_cluster_key(tmp_path / "cluster")
    carol = mint_eid(key, keyfiles.load_cluster_ids(tmp_path / "cluster")[-1], b"carol").encode()

    async def main() -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mercury_rt", "node", "run", str(config),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        assert proc.stderr is not None
        home = None
        try:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert b"listening" in line, line
            home = await start_cluster(
                ClusterPlan("home", (NodePlan("h1", CALLER_HOST, ()),)),
                TransportConfig(initial_rto=0.2, min_rto=0.02, max_rto=2.0))
            reply = await home.nodes["h1"].call(carol, 1, 1, dumps_typed(str, "over-tls"),
                                                caller=b"tls", timeout=10.0)
            return str(loads_typed(str, reply))
        finally:
            proc.kill()
            await proc.wait()
            if home is not None:
                await home.stop()

    assert asyncio.run(asyncio.wait_for(main(), 90)) == "over-tls"

    async def shared() -> dict[str, str]:
        assert tls_member.pki is not None
        state = EtcdState(tls_member.settings(b"proc/", tls_member.pki.tls()))
        try:
            read = await state.read_entity(b"carol")
        finally:
            await state.close()
        return {str(decode_key(raw)[2][0]): str(decode_stored(value)[0])
                for raw, value in read.records.items() if decode_key(raw)[1] == Symbol(RAN)}

    assert asyncio.run(shared()) == {"over-tls": "t1"}, "the node's write is in etcd"


async def _refused(settings: EtcdSettings) -> ReplicationUnavailableError:
    state = EtcdState(settings)
    try:
        with pytest.raises(ReplicationUnavailableError) as raised:
            await state.commit(b"e", 1, [(_key(b"e", 1), b"x")], b"refused", b"")
        return raised.value
    finally:
        await state.close()


async def _records(member: SingleMember, prefix: bytes) -> dict[bytes, bytes]:
    assert member.pki is not None
    state = EtcdState(member.settings(prefix, member.pki.tls()))
    try:
        return (await state.read_entity(b"e")).records
    finally:
        await state.close()


def test_a_member_not_signed_by_the_configured_ca_is_refused(
        tls_member: SingleMember) -> None:
    assert tls_member.pki is not None
    error = asyncio.run(_refused(tls_member.settings(b"ca/", tls_member.pki.tls("other-ca.pem"),
                                                     timeout=2.0)))
    assert error.code is ErrorCode.REPLICATION_UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in error.message
    assert "not signed by replication.tls.ca_file" in error.message
    assert asyncio.run(_records(tls_member, b"ca/")) == {}


def test_a_node_without_a_client_certificate_is_refused(tls_member: SingleMember) -> None:
    assert tls_member.pki is not None
    error = asyncio.run(_refused(tls_member.settings(b"nc/", tls_member.pki.tls(client=False),
                                                     timeout=2.0)))
    assert error.code is ErrorCode.REPLICATION_UNAVAILABLE
    assert "the member refused this node: no client certificate was given" in error.message
    assert asyncio.run(_records(tls_member, b"nc/")) == {}


def test_plaintext_to_a_tls_member_is_refused(tls_member: SingleMember) -> None:
    error = asyncio.run(_refused(tls_member.settings(b"pt/", None, timeout=2.0)))
    assert error.code is ErrorCode.REPLICATION_UNAVAILABLE
    assert asyncio.run(_records(tls_member, b"pt/")) == {}


def test_a_reply_over_max_reply_bytes_is_dropped_with_463(tls_member: SingleMember) -> None:
    assert tls_member.pki is not None
    tls = tls_member.pki.tls()

    async def run() -> None:
        big = EtcdState(tls_member.settings(b"big/", tls))
        small = EtcdState(tls_member.settings(b"big/", tls, max_reply_bytes=64 * 1024))
        try:
            base = await big.read_entity(b"e")
            writes = [(_key(b"e", n), bytes(30_000)) for n in range(3)]
            await big.commit(b"e", base.revision, writes, b"big-1", b"")
            with pytest.raises(ReplyTooLargeError) as raised:
                await small.read_entity(b"e")
            assert raised.value.code is ErrorCode.REPLICATION_REPLY_TOO_LARGE
            assert "replication.max_reply_bytes (65536 bytes)" in raised.value.message
            assert len((await big.read_entity(b"e")).records) == 3  # under the default bound
        finally:
            await big.close()
            await small.close()

    asyncio.run(run())


@pytest.fixture
def quota_member(tmp_path: Path) -> Iterator[SingleMember]:
    """A plaintext loopback member whose backend quota is 2 MiB (filled by the test)."""
    require_etcd()
    member = start_single(tmp_path / "etcd", QUOTA_HOST, None,
                          ("--quota-backend-bytes", str(2 * 1024 * 1024)))
    try:
        yield member
    finally:
        remove(tmp_path / "etcd", member)


def test_a_member_out_of_space_refuses_writes_with_462_saying_what_to_do(
        tmp_path: Path, quota_member: SingleMember) -> None:
    settings = quota_member.settings(b"q/")

    async def fill() -> tuple[int, SpaceExceededError]:
        state = EtcdState(settings)
        try:
            for n in range(64):  # 64 x 512 KiB: far past the 2 MiB quota
                entity = b"fill-%d" % n
                base = await state.read_entity(entity)
                try:
                    await state.commit(entity, base.revision, [(_key(entity, 0),
                                                                bytes(512 * 1024))],
                                       b"fill-%d" % n, b"")
                except SpaceExceededError as exc:
                    return n, exc
            raise AssertionError("etcd never ran out of space")
        finally:
            await state.close()

    async def then_a_mirror_call() -> tuple[ErrorCode | None, str]:
        mirror = Mirror(tmp_path / "m", settings)
        try:
            reply = await mirror.call("add", 1)
            return reply.code, reply.message
        finally:
            await mirror.close()

    written, error = asyncio.run(fill())
    assert written >= 1, "some writes fit before the quota"
    assert error.code is ErrorCode.REPLICATION_SPACE_EXCEEDED
    for advice in ("etcdctl compact", "etcdctl defrag", "--quota-backend-bytes",
                   "etcdctl alarm disarm"):
        assert advice in error.message
    code, message = asyncio.run(then_a_mirror_call())
    assert code is ErrorCode.REPLICATION_SPACE_EXCEEDED, message
