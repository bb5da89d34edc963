"""Node configuration: loading, accessors, and every problem reported at its own line."""

from __future__ import annotations

import shutil
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from carbon.error_codes import ErrorCode
from mercury_rt.config import load_node_config, parse_node_config
from mercury_rt.core.identity import ServerAddress
from mercury_rt.core.routing import NotMirroredChoice, SecurityOrder
from mercury_rt.core.transport import TransportConfig
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, line_of, make_cluster, run


@pytest.fixture(scope="module")
def cluster_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_cluster(tmp_path_factory.mktemp("keys") / "cluster", "127.0.0.1:7401/10/50")


@pytest.fixture
def workdir(tmp_path: Path, cluster_dir: Path) -> Path:
    shutil.copytree(cluster_dir, tmp_path / "cluster")
    return tmp_path


def write(workdir: Path, text: str) -> Path:
    path = workdir / "node.yaml"
    path.write_text(text)
    return path


def problems(path: Path) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_node_config(path)
    return info.value


def test_valid_config_loads_with_defaults_and_accessors(workdir: Path) -> None:
    config = load_node_config(write(workdir, config_text()))
    assert config.node_id == "node-a"
    assert config.cluster_dir == workdir / "cluster" and config.cluster_dir.is_absolute()
    assert config.state_dir == workdir / "state"
    assert config.policy is None and config.log.audit_file is None
    assert config.listen.ip == IPv4Address("127.0.0.1")
    assert config.self_peer.node_id == "node-a"
    assert [p.node_id for p in config.peers] == ["node-b"]
    assert config.peers[0].intra_address == ("127.0.0.2", 7502)
    assert config.public_addresses() == (
        ServerAddress(IPv4Address("127.0.0.1"), 7401, 10, 50),
        ServerAddress(IPv6Address("2001:db8::2"), 7402, 20, 0))
    assert config.entities() == {"alice", "bob", "carol"}
    assert [n.node_id for n in config.mirrors_of("bob")] == ["node-a", "node-b"]
    routing = config.cluster.routing.to_config()
    assert routing.not_mirrored is NotMirroredChoice.REDIRECT
    assert routing.security is SecurityOrder.CHECK_BEFORE_REDIRECT
    assert routing.max_forward_hops == 1
    assert config.transport.to_config() == TransportConfig()
    assert config.gate.spent_store_limit == 1_000_000
    assert config.log.level == "info"


def test_settings_reach_the_core_objects(workdir: Path) -> None:
    extra = """\
    security: redirect-first
    max_forward_hops: 3
transport:
  initial_rto: 0.2
  min_rto: 0.01
  max_rto: 4
  max_datagram: 1400
  amplification_factor: 2
log:
  level: debug
  audit_file: state/audit.jsonl
gate:
  spent_store_limit: 5
"""
    config = load_node_config(write(workdir, config_text(extra=extra)))
    routing = config.cluster.routing.to_config()
    assert routing.security is SecurityOrder.REDIRECT_FIRST and routing.max_forward_hops == 3
    transport = config.transport.to_config()
    assert (transport.initial_rto, transport.min_rto, transport.max_rto) == (0.2, 0.01, 4.0)
    assert transport.max_datagram == 1400 and transport.amplification_factor == 2
    assert config.log.audit_file == workdir / "state" / "audit.jsonl"
    assert config.gate.spent_store_limit == 5


def test_remote_state_routing_is_accepted(workdir: Path) -> None:
    text = config_text().replace("not_mirrored: redirect", "not_mirrored: remote-state")
    config = load_node_config(write(workdir, text))
    assert config.cluster.routing.to_config().not_mirrored is \
        NotMirroredChoice.RUN_WITH_REMOTE_STATE


def test_absolute_paths_are_kept(workdir: Path) -> None:
    text = config_text(cluster_dir=workdir / "cluster")
    elsewhere = workdir / "etc"
    elsewhere.mkdir()
    path = elsewhere / "node.yaml"
    path.write_text(text)
    assert load_node_config(path).cluster_dir == workdir / "cluster"
    assert load_node_config(path).state_dir == elsewhere / "state"


def test_ephemeral_ports_are_allowed_for_tests(workdir: Path) -> None:
    config = load_node_config(write(workdir, config_text(inter=0, intra=0)))
    assert (config.listen.inter_port, config.listen.intra_port) == (0, 0)


BROKEN = [
    # (description, change to the base text, snippet on the reported line, message part)
    ("unknown key", ("  intra_port: 7501\n", "  intra_port: 7501\n  prot: 3\n"),
     "prot: 3", "listen.prot: unknown key"),
    ("bad node id", ("node_id: node-a", "node_id: Node_A"), "node_id: Node_A",
     "node_id: value error, node id 'Node_A' must be"),
    ("host name", ("host: 127.0.0.1", "host: localhost"), "host: localhost",
     "listen.host: value error, 'localhost' is not an IPv4 or IPv6 address"),
    ("port range", ("inter_port: 7401", "inter_port: 70000"), "inter_port: 70000",
     "listen.inter_port: input should be less than or equal to 65535"),
    ("quoted port", ("inter_port: 7401", 'inter_port: "7401"'), 'inter_port: "7401"',
     "listen.inter_port: input should be a valid integer"),
    ("boolean seconds", ("not_mirrored: redirect\n", "not_mirrored: redirect\n"
                         "transport:\n  max_rto: yes\n"), "max_rto: yes",
     "transport.max_rto: input should be a valid number"),
    ("same ports", ("inter_port: 7401", "inter_port: 7501"), "intra_port: 7501",
     "listen.intra_port: is the same as listen.inter_port (7501)"),
    ("intra port disagrees", ("intra_port: 7501", "intra_port: 7601"), "intra_port: 7601",
     "listen.intra_port: is 7601 but this node's entry cluster.nodes.0.intra says"),
    ("public address", ("public: 127.0.0.1:7401/10/50", "public: 127.0.0.1:7401/10"),
     "public: 127.0.0.1:7401/10", "cluster.nodes.0.public: value error, address"),
    ("intra without port", ("intra: 127.0.0.2:7502", "intra: 127.0.0.2"),
     "intra: 127.0.0.2", "cluster.nodes.1.intra: value error, '127.0.0.2': expected"),
    ("duplicate node id", ("- node_id: node-b", "- node_id: node-a"), "- node_id: node-a",
     "cluster.nodes.1.node_id: node id 'node-a' is already used by cluster.nodes.0"),
    ("duplicate intra", ("intra: 127.0.0.2:7502", "intra: 127.0.0.1:7501"),
     "intra: 127.0.0.1:7501", "cluster.nodes.1.intra: intra address 127.0.0.1:7501 is "
     "already used by cluster.nodes.0"),
    ("self not listed", ("node_id: node-a\ncluster_dir", "node_id: node-z\ncluster_dir"),
     "node_id: node-z", "node_id: this node ('node-z') is not in cluster.nodes"),
    ("mirrors differ", ("mirrors: [alice, bob]\ncluster", "mirrors: [alice, dave]\ncluster"),
     "mirrors: [alice, dave]", "mirrors: differs from cluster.nodes.0.mirrors (this node's "
     "entry): only here: ['dave']; only there: ['bob']"),
    ("mirror twice", ("mirrors: [bob, carol]", "mirrors: [bob, carol, bob]"),
     "mirrors: [bob, carol, bob]", "cluster.nodes.1.mirrors.2: entity 'bob' is listed twice"),
    ("control character", ("mirrors: [bob, carol]", 'mirrors: [bob, "\\0node"]'),
     'mirrors: [bob, "\\0node"]', "cluster.nodes.1.mirrors.1: value error, entity local part"),
    ("routing choice", ("not_mirrored: redirect", "not_mirrored: bounce"),
     "not_mirrored: bounce", "cluster.routing.not_mirrored: input should be 'redirect', "
     "'forward' or 'remote-state'"),
    ("duplicate key", ("state_dir: state\n", "state_dir: state\nstate_dir: other\n"),
     "state_dir: other", "state_dir: duplicate key (first at line 3)"),
    ("missing key", ("state_dir: state\n", ""), "node_id: node-a",  # document start
     "state_dir: required key is missing"),
    ("no nodes", ("  nodes:\n", "  nodes: []\n  old_nodes:\n"), "nodes: []",
     "cluster.nodes: list should have at least 1 item"),
]


@pytest.mark.parametrize(("what", "change", "snippet", "message"), BROKEN,
                         ids=[b[0] for b in BROKEN])
def test_each_problem_is_reported_at_its_line(workdir: Path, what: str, change: tuple[str, str],
                                              snippet: str, message: str) -> None:
    base = config_text()
    assert change[0] in base, what
    text = base.replace(change[0], change[1], 1)
    path = write(workdir, text)
    # a duplicate is reported at its later occurrence
    last = sum(line.strip().startswith(snippet) for line in text.splitlines())
    expected = f"{path}:{line_of(text, snippet, last)}: {message}"
    error = problems(path)
    assert any(str(p).startswith(expected) for p in error.problems), \
        f"wanted {expected!r} in:\n{error}"
    result = run("node", "check", str(path))
    assert result.exit_code == 2
    assert expected in result.output and "the node config was not accepted" in result.output


def test_every_problem_is_reported_in_one_pass(workdir: Path) -> None:
    text = (config_text(node_id="node-z", mirrors="[alice, alice]", inter=7501)
            .replace("intra: 127.0.0.2:7502", "intra: 127.0.0.1:7501"))
    path = write(workdir, text)
    error = problems(path)
    lines = {(p.line, p.path) for p in error.problems}
    assert lines == {
        (line_of(text, "node_id: node-z"), "node_id"),
        (line_of(text, "mirrors: [alice, alice]"), "mirrors.1"),
        (line_of(text, "intra_port: 7501"), "listen.intra_port"),
        (line_of(text, "intra: 127.0.0.1:7501", 2), "cluster.nodes.1.intra"),
    }
    assert error.code is ErrorCode.NODE_CONFIG_INVALID
    assert [p.line for p in error.problems] == sorted(p.line for p in error.problems)


def test_transport_rules_of_the_core_are_enforced(workdir: Path) -> None:
    text = config_text(extra="transport:\n  initial_rto: 0.01\n  min_rto: 0.1\n")
    error = problems(write(workdir, text))
    [problem] = error.problems
    assert problem.line == line_of(text, "transport:")
    assert "need 0 < min_rto <= initial_rto <= max_rto" in problem.message


def test_missing_cluster_dir_says_how_to_create_it(workdir: Path) -> None:
    text = config_text(cluster_dir="nowhere")
    error = problems(write(workdir, text))
    [problem] = error.problems
    assert problem.line == line_of(text, "cluster_dir:") and problem.path == "cluster_dir"
    assert "does not exist; create it with `mercury-rt cluster new --dir" in problem.message
    assert error.code is ErrorCode.NODE_CLUSTER_DIR_UNUSABLE


def test_world_readable_cluster_key_is_refused_with_the_fix(workdir: Path) -> None:
    (workdir / "cluster" / "cluster.key").chmod(0o644)
    [problem] = problems(write(workdir, config_text())).problems
    assert problem.path == "cluster_dir"
    assert "KEY_FILE_PERMISSIONS" in problem.message and "chmod 600" in problem.message


def test_damaged_cluster_ids_are_reported(workdir: Path) -> None:
    (workdir / "cluster" / "cluster-ids.cbor").write_bytes(b"\x80")
    [problem] = problems(write(workdir, config_text())).problems
    assert "cannot load the cluster" in problem.message and "cluster-ids.cbor" in problem.message


def test_cluster_key_of_another_cluster_is_refused(workdir: Path, tmp_path: Path) -> None:
    other = make_cluster(tmp_path / "other")
    shutil.copy2(other / "cluster.key", workdir / "cluster" / "cluster.key")
    [problem] = problems(write(workdir, config_text())).problems
    assert "is not the key of the current cluster ID" in problem.message


def test_state_dir_that_is_a_file_is_refused(workdir: Path) -> None:
    (workdir / "state").write_text("")
    [problem] = problems(write(workdir, config_text())).problems
    assert problem.path == "state_dir" and "is not a directory" in problem.message


def test_audit_file_needs_an_existing_folder_outside_state_dir(workdir: Path) -> None:
    text = config_text(extra="log:\n  audit_file: logs/audit.jsonl\n")
    [problem] = problems(write(workdir, text)).problems
    assert problem.line == line_of(text, "audit_file:") and problem.path == "log.audit_file"


def test_policy_problems_are_listed_with_their_own_file_and_line(workdir: Path) -> None:
    policy = workdir / "policy.yaml"
    policy.write_text("version: 1\nlevels: [a]\nentities:\n  x: {clearance: b}\n")
    text = config_text(extra="policy: policy.yaml\n")
    path = write(workdir, text)
    shown = [str(p) for p in problems(path).problems]
    assert shown[0].startswith(f"{path}:{line_of(text, 'policy:')}: policy: policy file")
    assert shown[1].startswith(f"{policy}:4: entities.x.clearance: 'b' is not a level")


def test_a_valid_policy_is_accepted(workdir: Path) -> None:
    example = Path(__file__).parents[3] / "conf" / "policy.example.yaml"
    config = load_node_config(write(workdir, config_text(extra=f"policy: {example}\n")))
    assert config.policy == example


def test_unreadable_and_non_yaml_files(workdir: Path) -> None:
    missing = problems(workdir / "absent.yaml")
    assert missing.code is ErrorCode.CONFIG_UNREADABLE
    bad = write(workdir, "node_id: [unclosed\n")
    assert problems(bad).code is ErrorCode.CONFIG_YAML_SYNTAX


def test_check_verb_prints_a_summary(workdir: Path) -> None:
    path = write(workdir, config_text())
    result = run("node", "check", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{path}: ok (node node-a, cluster 01")
    assert result.output.rstrip().endswith(", 2 nodes, 3 entities)")


def test_text_in_hand_parses_like_a_file(workdir: Path) -> None:
    config = parse_node_config(config_text(), workdir)
    assert config == load_node_config(write(workdir, config_text()))
    with pytest.raises(ConfigFileError) as info:
        parse_node_config(config_text(node_id="node-z"), workdir, "gen.yaml")
    assert str(info.value).startswith("gen.yaml:1: node_id: this node ('node-z')")


def test_prefer_near_gives_the_node_a_proximity_rule_for_its_own_address(
        workdir: Path) -> None:
    from mercury_rt.aio.node_runtime import NodeRuntime  # noqa: PLC0415
    from mercury_rt.config import build_node_spec  # noqa: PLC0415

    text = config_text().replace("not_mirrored: redirect",
                                 "not_mirrored: redirect\n    prefer_near: true")
    spec = build_node_spec(load_node_config(write(workdir, text)))
    try:
        assert spec.proximity is not None
        assert spec.proximity.local_addresses == (IPv4Address("127.0.0.1"),)
        assert NodeRuntime(spec).planner.proximity is spec.proximity
    finally:
        spec.store.close()
    plain = build_node_spec(load_node_config(write(workdir, config_text())))
    plain.store.close()
    assert plain.proximity is None
