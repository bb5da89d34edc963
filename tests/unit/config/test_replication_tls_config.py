"""The `replication:` section's TLS keys and plaintext rule: good files become the
adapter's credentials; every bad file, and plaintext to an endpoint off this machine, fails
`mercury-rt node check` at its YAML line, with what to do."""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

import pytest
import yaml

from mercury_rt.config import load_node_config
from mercury_rt.config.build import build_node_spec
from mercury_rt.config.etcd_tls import replication_findings
from mercury_rt.config.replication import ReplicationConfig, TlsFiles
from tests.etcd_tls_support import Pki, expired_ca_pem, make_pki
from tests.nodecfg_support import config_text, line_of, make_cluster, run
from tungsten.etcd_store import DEFAULT_MAX_REPLY

TLS_SECTION = """\
replication:
  endpoints:
    - 10.0.0.5:2379
    - 10.0.0.6:2379
  tls:
    ca_file: {ca}
    cert_file: {cert}
    key_file: {key}
"""


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "10.0.0.5")


@pytest.fixture
def workdir(tmp_path: Path, cluster_dir: Path, pki: Pki) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    shutil.copytree(pki.directory, tmp_path / "tls")
    return tmp_path


def _config(workdir: Path, section: str) -> tuple[Path, str]:
    text = config_text(extra=section)
    path = workdir / "node.yaml"
    path.write_text(text)
    return path, text


def _tls(workdir: Path, ca: str = "tls/ca.pem", cert: str = "tls/client.pem",
         key: str = "tls/client-key.pem") -> tuple[Path, str]:
    return _config(workdir, TLS_SECTION.format(ca=ca, cert=cert, key=key))


def _check_fails_at(path: Path, line: int, message: str) -> str:
    result = run("node", "check", str(path))
    assert result.exit_code == 2, result.output
    assert f"{path}:{line}: {message}" in result.output, result.output
    return result.output


def test_tls_files_become_the_adapter_credentials(workdir: Path) -> None:
    path, _ = _tls(workdir)
    assert run("node", "check", str(path)).exit_code == 0
    spec = build_node_spec(load_node_config(path))
    try:
        settings = spec.replication
        assert settings is not None and settings.tls is not None
        assert settings.tls.ca == (workdir / "tls" / "ca.pem").read_bytes()
        assert settings.tls.cert_chain == (workdir / "tls" / "client.pem").read_bytes()
        assert settings.tls.private_key == (workdir / "tls" / "client-key.pem").read_bytes()
        assert "PRIVATE KEY" not in repr(settings), "a logged setting must not show the key"
        assert settings.max_reply_bytes == DEFAULT_MAX_REPLY
    finally:
        spec.store.close()


def test_a_ca_alone_is_server_verification_without_a_client_certificate(
        workdir: Path) -> None:
    path, _ = _config(workdir, "replication:\n  endpoints: [10.0.0.5:2379]\n"
                               "  tls: {ca_file: tls/ca.pem}\n")
    spec = build_node_spec(load_node_config(path))
    try:
        assert spec.replication is not None and spec.replication.tls is not None
        assert spec.replication.tls.cert_chain is None
        assert spec.replication.tls.private_key is None
    finally:
        spec.store.close()


def test_plaintext_to_a_non_loopback_endpoint_is_refused_at_its_line(workdir: Path) -> None:
    section = "replication:\n  endpoints:\n    - 127.0.0.1:2379\n    - 10.0.0.6:2379\n"
    path, text = _config(workdir, section)
    output = _check_fails_at(path, line_of(text, "- 10.0.0.6:2379"),
                             "replication.endpoints.1: 10.0.0.6:2379 is not a loopback address")
    assert "replication.tls" in output and "allow_plaintext: true" in output
    assert "replication.endpoints.0" not in output, "loopback plaintext stays allowed"


@pytest.mark.parametrize("endpoint", ["etcd.internal:2379", "0.0.0.0:2379",
                                      "'[2001:db8::7]:2379'"])
def test_names_and_addresses_off_this_machine_need_tls(workdir: Path, endpoint: str) -> None:
    path, text = _config(workdir, f"replication:\n  endpoints:\n    - {endpoint}\n")
    _check_fails_at(path, line_of(text, f"- {endpoint}"),
                    "replication.endpoints.0: ")


@pytest.mark.parametrize("endpoints", ["[127.0.91.1:2379, 127.0.91.2:2379]",
                                       "['[::1]:2379', 'localhost:2379']"])
def test_loopback_plaintext_is_accepted(workdir: Path, endpoints: str) -> None:
    path, _ = _config(workdir, f"replication: {{endpoints: {endpoints}}}\n")
    assert run("node", "check", str(path)).exit_code == 0


def test_allow_plaintext_accepts_a_private_network(workdir: Path) -> None:
    path, _ = _config(workdir, "replication: {endpoints: [10.0.0.5:2379], "
                               "allow_plaintext: true}\n")
    result = run("node", "check", str(path))
    assert result.exit_code == 0, result.output


def test_a_missing_file_is_named_at_its_line(workdir: Path) -> None:
    path, text = _tls(workdir, ca="tls/nope.pem")
    _check_fails_at(path, line_of(text, "ca_file:"),
                    f"replication.tls.ca_file: {workdir / 'tls' / 'nope.pem'}: no such file")


def test_a_fifo_planted_as_a_pem_file_is_refused_without_blocking(workdir: Path) -> None:
    os.mkfifo(workdir / "tls" / "fifo.pem")
    path, text = _tls(workdir, cert="tls/fifo.pem")
    _check_fails_at(path, line_of(text, "cert_file:"),
                    f"replication.tls.cert_file: {workdir / 'tls' / 'fifo.pem'} is not a "
                    "regular file; expected a PEM file")


def test_files_that_are_not_what_their_key_says_are_refused(workdir: Path) -> None:
    path, text = _tls(workdir, ca="tls/client-key.pem", cert="tls/client.pem",
                      key="tls/ca.pem")
    (workdir / "tls" / "ca.pem").chmod(0o600)
    output = _check_fails_at(path, line_of(text, "ca_file:"),
                             "replication.tls.ca_file: ")
    assert "holds no PEM certificate" in output
    assert f"{path}:{line_of(text, 'key_file:')}: replication.tls.key_file: " in output
    assert "holds no PEM private key" in output


def test_a_key_readable_by_others_is_refused_with_the_chmod(workdir: Path) -> None:
    (workdir / "tls" / "client-key.pem").chmod(0o644)
    path, text = _tls(workdir)
    output = _check_fails_at(path, line_of(text, "key_file:"), "replication.tls.key_file: ")
    assert "accessible by group/others (mode 0644)" in output
    assert f"chmod 600 {workdir / 'tls' / 'client-key.pem'}" in output


def test_a_key_of_another_certificate_is_refused(workdir: Path) -> None:
    path, text = _tls(workdir, key="tls/server-key.pem")
    output = _check_fails_at(path, line_of(text, "key_file:"), "replication.tls.key_file: ")
    assert "is not the key of the certificate in" in output


def test_a_certificate_needs_its_key(workdir: Path) -> None:
    path, _ = _config(workdir, "replication:\n  endpoints: [10.0.0.5:2379]\n  tls:\n"
                               "    ca_file: tls/ca.pem\n    cert_file: tls/client.pem\n")
    result = run("node", "check", str(path))
    assert result.exit_code == 2
    assert "cert_file and key_file go together" in result.output


def test_an_expired_certificate_is_refused(workdir: Path) -> None:
    path, _ = _tls(workdir)
    config = load_node_config(path)
    later = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=30)
    found = list(replication_findings(config.replication, lambda p: p, later))
    assert [loc for loc, _ in found] == [("replication", "tls", "ca_file"),
                                         ("replication", "tls", "cert_file")]
    assert all(" expired on " in message for _, message in found)


def test_a_ca_bundle_with_an_old_ca_still_checks_but_only_old_ones_do_not(
        workdir: Path) -> None:
    bundle = workdir / "tls" / "bundle.pem"
    bundle.write_bytes(expired_ca_pem() + (workdir / "tls" / "ca.pem").read_bytes())
    path, text = _tls(workdir, ca="tls/bundle.pem")
    assert run("node", "check", str(path)).exit_code == 0
    bundle.write_bytes(expired_ca_pem())
    _check_fails_at(path, line_of(text, "ca_file:"),
                    f"replication.tls.ca_file: {bundle}: the certificate for CN=expired CA "
                    "expired on ")


@pytest.mark.parametrize("bad", ["max_reply_bytes: 1000", "max_reply_bytes: 1.5",
                                 "allow_plaintext: 'yes'", "tls: {cert_file: a.pem}"])
def test_bad_values_of_the_new_keys_fail_the_check(workdir: Path, bad: str) -> None:
    path, text = _config(workdir, f"replication:\n  endpoints: [127.0.0.1:2379]\n  {bad}\n")
    result = run("node", "check", str(path))
    assert result.exit_code == 2, result.output
    key = bad.partition(":")[0]
    assert f"{path}:{line_of(text, key)}: replication." in result.output


def test_max_reply_bytes_reaches_the_adapter(workdir: Path) -> None:
    path, _ = _config(workdir, "replication: {endpoints: [127.0.0.1:2379], "
                               "max_reply_bytes: 1048576}\n")
    spec = build_node_spec(load_node_config(path))
    try:
        assert spec.replication is not None and spec.replication.max_reply_bytes == 1_048_576
    finally:
        spec.store.close()


EXAMPLE = Path(__file__).parents[3] / "conf" / "replication-tls.example.yaml"
GUIDE = Path(__file__).parents[3] / "docs" / "operator-guide.md"


def test_the_example_section_checks_with_real_files_in_place(workdir: Path) -> None:
    text = EXAMPLE.read_text()
    for field in (*ReplicationConfig.model_fields, *TlsFiles.model_fields):
        assert f"{field}:" in text, f"the example shows {field}"
    for real, ours in (("/etc/mercury/etcd/ca.pem", "tls/ca.pem"),
                       ("/etc/mercury/etcd/node-a.pem", "tls/client.pem"),
                       ("/etc/mercury/etcd/node-a-key.pem", "tls/client-key.pem")):
        assert real in text
        text = text.replace(real, ours)
    path, _ = _config(workdir, text)
    result = run("node", "check", str(path))
    assert result.exit_code == 0, result.output
    config = load_node_config(path)
    assert config.replication is not None and config.replication.tls is not None
    assert config.replication.tls.key_file == workdir / "tls" / "client-key.pem"


def test_the_guides_section_is_the_examples_settings() -> None:
    guide = GUIDE.read_text().split("## Mirrored state on etcd", 1)[1]
    block = guide.split("```yaml\n", 1)[1].split("```", 1)[0]
    from_guide = ReplicationConfig.model_validate(yaml.safe_load(block)["replication"])
    from_example = ReplicationConfig.model_validate(
        yaml.safe_load(EXAMPLE.read_text())["replication"])
    assert from_guide.model_dump(exclude={"endpoints", "prefix"}) == from_example.model_dump(
        exclude={"endpoints", "prefix"})
