"""The node config's `limits` section: the signature budget and the transport's bounds on
what strangers can make a node hold are operator settings, reach the running node's core,
and are refused at their own line when they cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import build_node_spec, load_node_config, parse_node_config
from mercury_rt.core.gate import BudgetSettings
from mercury_rt.core.transport import TransportConfig
from policy.yaml_source import ConfigFileError
from tests.nodecfg_support import config_text, line_of, make_cluster

LIMITS = """\
limits:
  signatures:
    strangers_rate: 200
    strangers_burst: 400
    address_rate: 5
    address_burst: 20
    cluster_rate: 7.5
    cluster_burst: 30
    demand_bits: 18
    tracked: 1000
  transport:
    max_peers: 10000
    max_epochs_per_peer: 4
    max_epochs_per_host: 500
    max_records: 50000
    max_records_per_peer: 1024
    max_cached_reply_bytes: 33554432
    max_reply_bytes_per_peer: 1048576
    max_reassemblies_per_peer: 2
    max_reassembly_bytes: 16777216
    max_reassembly_bytes_per_peer: 2097152
    max_validated_addresses: 5000
    max_address_accounts: 6000
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("limits")
    make_cluster(base / "cluster", "127.0.0.1:7401/10/50")
    return base


def test_the_defaults_are_the_cores_own(workdir: Path) -> None:
    config = parse_node_config(config_text(), workdir)
    assert config.limits.signatures.to_settings() == BudgetSettings()
    assert config.limits.transport.apply(TransportConfig()) == TransportConfig()


def test_every_limit_reaches_the_running_nodes_core(workdir: Path) -> None:
    config = parse_node_config(config_text(extra=LIMITS), workdir)
    spec = build_node_spec(config)
    try:
        node = NodeRuntime(spec)
        assert node.core.signature_budget.settings == BudgetSettings(
            200.0, 400.0, 5.0, 20.0, 7.5, 30.0, 18, 1000)
        transport = spec.transport
        assert (transport.max_peers, transport.max_epochs_per_peer,
                transport.max_epochs_per_host) == (10_000, 4, 500)
        assert (transport.max_records, transport.max_records_per_peer) == (50_000, 1024)
        assert transport.max_call_span == 1024, "a call never spans more than a peer keeps"
        assert (transport.max_cached_reply_bytes, transport.max_reply_bytes_per_peer) == (
            32 * 2**20, 2**20)
        assert (transport.max_reassemblies_per_peer, transport.max_reassembly_bytes,
                transport.max_reassembly_bytes_per_peer) == (2, 16 * 2**20, 2 * 2**20)
        assert (transport.max_validated_addresses, transport.max_address_accounts) == (
            5000, 6000)
        assert transport.initial_rto == config.transport.initial_rto
    finally:
        spec.store.close()


BROKEN = [
    ("a bool for a rate", "    address_rate: 5\n", "    address_rate: true\n",
     "limits.signatures.address_rate: input should be a valid number"),
    ("a bucket too small to pay for one request", "    address_burst: 20\n",
     "    address_burst: 4\n", "limits.signatures.address_burst: input should be greater"),
    ("a zero rate", "    cluster_rate: 7.5\n", "    cluster_rate: 0\n",
     "limits.signatures.cluster_rate: input should be greater than 0"),
    ("a misspelt key", "    tracked: 1000\n", "    tracked_: 1000\n",
     "limits.signatures.tracked_: unknown key"),
    ("a share above its total", "    max_records_per_peer: 1024\n",
     "    max_records_per_peer: 60000\n", "limits.transport: value error, max_records_per_peer "
     "(60000) is above max_records (50000)"),
    ("reply bytes per peer above the total", "    max_reply_bytes_per_peer: 1048576\n",
     "    max_reply_bytes_per_peer: 67108864\n",
     "limits.transport: value error, max_reply_bytes_per_peer"),
]


@pytest.mark.parametrize(("what", "old", "new", "message"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_limit_that_cannot_work_is_refused_at_its_line(workdir: Path, what: str, old: str,
                                                         new: str, message: str) -> None:
    text = config_text(extra=LIMITS.replace(old, new))
    path = workdir / "node.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError) as info:
        load_node_config(path)
    key = new.strip().split(":")[0]
    last = sum(x.strip().startswith("transport:") for x in text.splitlines())
    line = line_of(text, "transport:", last) if "value error" in message \
        else line_of(text, key)
    expected = f"{path}:{line}: {message}"
    assert any(str(p).startswith(expected) for p in info.value.problems), \
        f"{what}: wanted {expected!r} in:\n{info.value}"
