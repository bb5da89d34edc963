"""The reload decision (config/reload.py): what a SIGHUP applies and what it refuses."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from mercury_rt.config import NodeConfig
from mercury_rt.config.reload import LIVE_SETTINGS, in_force, is_live, plan_reload, settings_of
from mercury_rt.core.identity import eid_to_text, issue_cluster_id, mint_eid

BASE: dict[str, Any] = {
    "node_id": "node-a", "cluster_dir": "/c", "state_dir": "/s",
    "listen": {"host": "127.0.0.1", "inter_port": 7401, "intra_port": 7501},
    "mirrors": ["carol"],
    "cluster": {"nodes": [{"node_id": "node-a", "intra": "127.0.0.1:7501",
                           "mirrors": ["carol"]}]},
}

_KEY = Ed25519PrivateKey.generate()
_ELSEWHERE = issue_cluster_id(Ed25519PrivateKey.generate(), _KEY, [])
EIDS = [eid_to_text(mint_eid(_KEY, _ELSEWHERE, name)) for name in (b"carol", b"dave")]

CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "moved": st.dictionaries(st.sampled_from(["carol", "dave"]), st.sampled_from(EIDS),
                             max_size=2),
    "policy": st.sampled_from([None, "/p/policy.yaml", "/p/other.yaml"]),
    "log.level": st.sampled_from(["debug", "info", "warning", "error"]),
    "log.audit_file": st.sampled_from([None, "/a/audit.jsonl"]),
    "cluster.routing.not_mirrored": st.sampled_from(["redirect", "forward", "remote-state"]),
    "cluster.routing.security": st.sampled_from(["check-before-redirect", "redirect-first"]),
    "cluster.routing.max_forward_hops": st.integers(0, 16),
    "cluster.routing.prefer_near": st.booleans(),
    "listen.inter_port": st.integers(0, 65_535),
    "listen.host": st.sampled_from(["127.0.0.1", "127.0.0.2", "::1"]),
    "node_id": st.sampled_from(["node-a", "node-b"]),
    "state_dir": st.sampled_from(["/s", "/t"]),
    "mirrors": st.lists(st.sampled_from(["carol", "dave"]), max_size=2),
    "transport.initial_rto": st.sampled_from([0.2, 0.5, 1.0]),
    "gate.spent_store_limit": st.integers(1, 10),
    "apps": st.lists(st.sampled_from(["mercury_rt.apps.echo", "x.y"]), max_size=2),
}


@st.composite
def configs(draw: st.DrawFn) -> NodeConfig:
    """The base config with a random subset of settings changed."""
    tree: dict[str, Any] = {k: v for k, v in BASE.items()}
    tree = _deep_copy(tree)
    for path in draw(st.sets(st.sampled_from(sorted(CHANGES)))):
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = draw(CHANGES[path])
    return NodeConfig.model_validate(tree)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


@given(configs(), configs())
def test_every_changed_setting_is_either_applied_or_refused_never_both(
        old: NodeConfig, new: NodeConfig) -> None:
    plan = plan_reload(old, new)
    before, after = settings_of(old), settings_of(new)
    changed = {k for k in before | after if before.get(k) != after.get(k)}
    assert set(plan.applied) | set(plan.refused) == changed
    assert not set(plan.applied) & set(plan.refused)
    assert all(is_live(k) for k in plan.applied)
    assert not any(is_live(k) for k in plan.refused)
    assert plan.changed == bool(changed)


@given(configs())
def test_reloading_the_same_file_changes_nothing(config: NodeConfig) -> None:
    assert not plan_reload(config, config).changed
    assert in_force(config, config) == config


@given(configs(), configs())
def test_after_a_reload_live_settings_are_new_and_restart_only_ones_old(
        old: NodeConfig, new: NodeConfig) -> None:
    result = in_force(old, new)
    now, before, after = settings_of(result), settings_of(old), settings_of(new)
    for key, value in now.items():
        assert value == (after[key] if is_live(key) else before[key]), key
    again = plan_reload(old, result)
    assert again.refused == () and again.applied == plan_reload(old, new).applied
    assert not plan_reload(result, new).applied, "nothing live is left to apply"
    assert in_force(result, new) == result


def test_the_listen_address_policy_and_keys_are_classified_as_documented() -> None:
    assert {"policy", "log.level"} <= LIVE_SETTINGS
    assert is_live("moved.carol"), "a migration named in the config applies live"
    for restart_only in ("listen.host", "listen.inter_port", "cluster_dir", "node_id",
                         "state_dir", "apps", "mirrors", "transport.initial_rto"):
        assert not is_live(restart_only)


def test_every_live_setting_names_a_real_config_key() -> None:
    """A renamed key cannot silently leave the live list: each entry exists in a config."""
    config = NodeConfig.model_validate({**BASE, "moved": {"carol": EIDS[0]}})
    paths = set(settings_of(config))
    for live in LIVE_SETTINGS:
        assert any(p == live or p.startswith(live + ".") for p in paths), live
