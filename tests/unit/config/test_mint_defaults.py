"""The cluster's EID mint defaults (mint-defaults.yaml in the cluster directory), used by
`mercury-rt eid mint` and by a node's own EIDs (issue 14 item 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import build_node_spec, load_node_config
from mercury_rt.config.mint_defaults import MINT_DEFAULTS_FILE, load_mint_defaults
from mercury_rt.core.identity import (
    AcceptedAlgorithm,
    Eid,
    MintDefaults,
    OperationHint,
    eid_from_text,
)
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, make_cluster, run

HASHES_WITH_HINTS = """\
keys: hashes
algorithms:
  - {id: 1, clearance: 1}
  - {id: 3, clearance: 3}
hints:
  - {endpoint: 1, operation: 3, transit: 1, hashcash_bits: 10}
"""


def minted(directory: Path, *flags: str) -> Eid:
    result = run("eid", "mint", "--dir", str(directory), "alice", *flags)
    assert result.exit_code == 0, result.output
    return Eid.decode(eid_from_text(result.output.strip().splitlines()[-1]))


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    return make_cluster(tmp_path / "cluster", "127.0.0.1:7401/10/50")


def test_eid_mint_follows_the_clusters_defaults_and_flags_override_them(cluster: Path) -> None:
    plain = minted(cluster)
    assert plain.cluster_id.master.key is not None and plain.hints is None
    (cluster / MINT_DEFAULTS_FILE).write_text(HASHES_WITH_HINTS)
    default = minted(cluster)
    assert default.cluster_id.master.key is None and default.cluster_id.cluster_key.key is None
    assert default.hints == (OperationHint(1, 3, 1, 10),)
    assert default.algorithms == (AcceptedAlgorithm(1, 1), AcceptedAlgorithm(3, 3))
    full = minted(cluster, "--full-keys")
    assert full.cluster_id.master.key is not None and full.cluster_id.cert is not None
    assert full.hints == default.hints
    bare = minted(cluster, "--no-hints")
    assert bare.hints is None and bare.algorithms is None
    own = minted(cluster, "--hint", "2:1:3:0", "--algorithm", "3:3")
    assert own.hints == (OperationHint(2, 1, 3, 0),)
    assert own.algorithms == (AcceptedAlgorithm(3, 3),)


def test_contradictory_flags_are_usage_errors(cluster: Path) -> None:
    for flags in (("--full-keys", "--hashes-only"), ("--no-hints", "--algorithm", "1:1")):
        result = run("eid", "mint", "--dir", str(cluster), "alice", *flags)
        assert result.exit_code == 2 and "contradicts" in result.output


def test_a_node_mints_its_entities_eids_in_the_clusters_form(cluster: Path) -> None:
    """NodeRuntime.eid_for (what an entity gets when it asks for its EID, and the caller
    EID its calls carry) follows the same file, read when the node is built."""
    (cluster / MINT_DEFAULTS_FILE).write_text(HASHES_WITH_HINTS)
    config = cluster.parent / "node.yaml"
    config.write_text(config_text())
    spec = build_node_spec(load_node_config(config))
    try:
        eid = Eid.decode(NodeRuntime(spec).eid_for(b"alice"))
    finally:
        spec.store.close()
    assert eid.cluster_id.master.key is None
    assert eid.hints == (OperationHint(1, 3, 1, 10),)


@pytest.mark.parametrize(("text", "line", "says"), [
    ("keys: hashes\ninclude_cert: true\n", 1, "include_cert needs keys: full"),
    ("keys: some\n", 1, "keys"),
    ("hints:\n  - {endpoint: 1, operation: 1, transit: 1}\n", 1, "hints need algorithms"),
    ("algorithms:\n  - {id: 1, clearence: 2}\n", 2, "clearence"),
    ("algorithms:\n  - {id: true, clearance: 2}\n", 2, "algorithms.0.id"),
])
def test_a_wrong_file_is_reported_at_its_line_by_eid_mint_and_node_check(
        cluster: Path, text: str, line: int, says: str) -> None:
    path = cluster / MINT_DEFAULTS_FILE
    path.write_text(text)
    result = run("eid", "mint", "--dir", str(cluster), "alice")
    assert result.exit_code == 1 and f"{path}:{line}:" in result.output
    assert says in result.output
    config = cluster.parent / "node.yaml"
    config.write_text(config_text())
    checked = run("node", "check", str(config))
    assert checked.exit_code == 2 and f"{path}:{line}:" in checked.output


hint = st.builds(OperationHint, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                 st.integers(0, 2**32 - 1), st.integers(0, 64))
algorithm = st.builds(AcceptedAlgorithm, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))


@settings(max_examples=40, deadline=None)
@given(st.booleans(), st.lists(hint, min_size=1, max_size=5),
       st.lists(algorithm, min_size=1, max_size=5), st.booleans())
def test_the_file_gives_exactly_what_it_says(tmp_path_factory: pytest.TempPathFactory,
                                             full: bool, hints: list[OperationHint],
                                             algorithms: list[AcceptedAlgorithm],
                                             signature: bool) -> None:
    folder = tmp_path_factory.mktemp("defaults")
    lines = [f"keys: {'full' if full else 'hashes'}",
             f"include_cluster_signature: {str(signature).lower()}", "algorithms:",
             *(f"  - {{id: {a.algorithm}, clearance: {a.clearance}}}" for a in algorithms),
             "hints:",
             *(f"  - {{endpoint: {h.endpoint}, operation: {h.operation}, transit: "
               f"{h.transit_classification}, hashcash_bits: {h.hashcash_bits}}}"
               for h in hints)]
    (folder / MINT_DEFAULTS_FILE).write_text("\n".join(lines) + "\n")
    assert load_mint_defaults(folder) == MintDefaults(
        full_keys=full, include_cert=True, include_cluster_signature=signature,
        hints=tuple(hints), algorithms=tuple(algorithms))


def test_no_file_means_the_built_in_defaults(tmp_path: Path) -> None:
    assert load_mint_defaults(tmp_path) == MintDefaults()
    (tmp_path / MINT_DEFAULTS_FILE).write_text("keys: [\n")
    with pytest.raises(ConfigFileError):
        load_mint_defaults(tmp_path)
