"""What a reload (SIGHUP) may change in a running node, decided from two configs.

A running node's sockets, keys, state store, apps and cluster membership were built from
its config at start; changing them under running calls would break them, so those settings
need a restart. The policy, the log level and the routing choices are read per request or
per log line, and migrations (`moved`) only add forwarding records, so they change live.
`plan_reload` compares the config in force with the file as it is now and says which
changed settings are applied and which are refused (the node logs each refused one: "not
applied, needs a restart"); `in_force` is the config the node runs with afterwards: the new
live settings over the old restart-only ones.

Pure: no files, no clock. Settings are compared as dotted paths of the config's JSON form
(`log.level`, `cluster.routing.not_mirrored`, `moved.carol`); a list is one setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mercury_rt.config.node import NodeConfig

LIVE_SETTINGS = frozenset({
    "policy",
    "log.level",
    "log.format",
    "handlers.timeout",
    "cluster.routing.not_mirrored",
    "cluster.routing.security",
    "cluster.routing.max_forward_hops",
    "moved",
})
"""Settings a reload applies. Every other setting (listen addresses, node id, cluster and
state directories, keys, mirrors, apps, transport, stores, audit file, prefer_near) is
read only at start; a setting added later is restart-only until listed here."""


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """The changed settings, split into those applied now and those needing a restart."""

    applied: tuple[str, ...]
    refused: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """Whether anything differs between the two configs."""
        return bool(self.applied or self.refused)


def plan_reload(old: NodeConfig, new: NodeConfig) -> ReloadPlan:
    """Which settings changed from `old` to `new`, live ones first, each sorted."""
    before, after = settings_of(old), settings_of(new)
    changed = sorted(k for k in before.keys() | after.keys()
                     if before.get(k, _ABSENT) != after.get(k, _ABSENT))
    return ReloadPlan(tuple(k for k in changed if is_live(k)),
                      tuple(k for k in changed if not is_live(k)))


def in_force(old: NodeConfig, new: NodeConfig) -> NodeConfig:
    """The config a node runs with after reloading `new` over `old`."""
    before, after = settings_of(old), settings_of(new)
    merged = {k: v for k, v in before.items() if not is_live(k)}
    merged.update((k, v) for k, v in after.items() if is_live(k))
    return NodeConfig.model_validate(_unflatten(merged))


def is_live(setting: str) -> bool:
    """Whether `setting` (a dotted path) is applied by a reload: listed, or inside a
    listed mapping (`moved.carol`)."""
    return any(setting == live or setting.startswith(live + ".") for live in LIVE_SETTINGS)


def settings_of(config: NodeConfig) -> dict[str, Any]:
    """The config as {dotted path: value}; lists and None are single values."""
    return dict(_flatten(config.model_dump(mode="json"), ""))


_ABSENT = object()


def _flatten(value: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, inner in value.items():
        path = f"{prefix}{key}"
        if isinstance(inner, dict):
            items.extend(_flatten(inner, path + "."))
        else:
            items.append((path, inner))
    return items


def _unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree
