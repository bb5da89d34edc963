"""SIGHUP: read the node config and its policy again, apply what can change live.

The decision is config/reload.py's (`plan_reload`); this module reads the files and carries
it out on the running node. A reload never stops the node: a config or policy with any
problem changes nothing, and each problem is logged as `file:line: key: what` (the same
text `node check` prints). Settings that need a restart are logged as not applied and stay
as they were. Migrations recorded by `entity migrate` are taken up on every reload.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import structlog

from mercury_rt.aio.node_runtime import NodeRuntime
from mercury_rt.config import OPEN_POLICY, NodeConfig, load_node_config
from mercury_rt.config.reload import in_force, plan_reload
from mercury_rt.logs import configure_logging
from policy.holder import KeptOld, PolicyHolder
from policy.load import parse_policy
from policy.yaml_source import ConfigFileError, Problem

_log = structlog.get_logger("mercury_rt.node")


class LiveReload:
    """The running node, the config in force and the file it came from."""

    def __init__(self, node: NodeRuntime, config: NodeConfig, path: Path) -> None:
        self.node = node
        self.config = config
        self.path = path
        self.holder = None if config.policy is None \
            else PolicyHolder(config.policy, node.core.state.policy)
        self.reloads = 0

    def on_signal(self) -> None:
        """SIGHUP's handler: a reload that fails in any way is logged, never fatal."""
        try:
            self.reload()
        except Exception as exc:  # the node must outlive any reload, whatever failed
            _log.error("reload_failed", error=repr(exc),
                       effect="the node runs on; settings applied before the failure stay")

    def reload(self) -> bool:
        """One reload; True if the files were accepted (even if nothing changed)."""
        self.reloads += 1
        try:
            new = load_node_config(self.path)
        except ConfigFileError as exc:
            return self._rejected(exc.problems)
        except OSError as exc:  # e.g. the config's cluster directory vanished
            _log.error("reload_rejected", file=str(self.path), problem=str(exc),
                       effect="nothing changed; the old config stays in force")
            return False
        if not self._reload_policy(new):
            return False
        plan = plan_reload(self.config, new)
        for setting in plan.refused:
            _log.warning("reload_not_applied", setting=setting,
                         reason="needs a restart; the running value stays in force")
        self.config = in_force(self.config, new)
        self._apply_live()
        moves = self.node.apply_stored_moves()
        _log.info("reload_applied", file=str(self.path), applied=list(plan.applied),
                  not_applied=list(plan.refused), migrations=moves)
        return True

    def _reload_policy(self, new: NodeConfig) -> bool:
        """Read the new config's policy into the holder (re-read even if unchanged: the
        file's content may have changed); False if it has problems."""
        if new.policy is None:
            self.holder = None
            return True
        if self.holder is None or self.holder.path != new.policy:
            try:
                self.holder = PolicyHolder.load(new.policy)
            except ConfigFileError as exc:
                return self._rejected(exc.problems)
            return True
        outcome = self.holder.reload()
        if isinstance(outcome, KeptOld):
            return self._rejected(outcome.problems)
        return True

    def _apply_live(self) -> None:
        node, config = self.node, self.config
        node.core.state.policy = self.holder.current if self.holder is not None \
            else parse_policy(OPEN_POLICY, "<open policy>")
        node.core.routing = config.cluster.routing.to_config()
        node.spec.moves = config.moves()  # stored and answered for by apply_stored_moves
        configure_logging(config.log.level, json=config.log.format == "json")
        node.spec.invoke_limits = replace(node.spec.invoke_limits,
                                          timeout=config.handlers.timeout)
        if node.invoker is not None:
            node.invoker.limits = node.spec.invoke_limits

    def _rejected(self, problems: tuple[Problem, ...]) -> bool:
        for problem in problems:
            _log.error("reload_problem", problem=str(problem))
        _log.error("reload_rejected", file=str(self.path), problems=len(problems),
                   effect="nothing changed; the old config and policy stay in force")
        return False
