"""The node's current policy, replaceable without a restart.

A reload either swaps in a fully validated policy or changes nothing: a file with even one
problem never replaces the loaded policy, and the caller gets every problem to report.
Readers take `holder.current` once per request, so a request is decided by one policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from policy.load import load_policy
from policy.model import Policy
from policy.yaml_source import ConfigFileError, Problem


@dataclass(frozen=True, slots=True)
class Reloaded:
    """The new policy is in force."""

    policy: Policy


@dataclass(frozen=True, slots=True)
class KeptOld:
    """The file was invalid; the previous policy stays in force."""

    problems: tuple[Problem, ...]


class PolicyHolder:
    """Holds the policy in force; `reload()` swaps it only for a valid file."""

    def __init__(self, path: Path, policy: Policy) -> None:
        self._path = path
        self._policy = policy
        self.generation = 1

    @classmethod
    def load(cls, path: Path) -> PolicyHolder:
        """Start with the file at `path`; raises ConfigFileError (the node must not start)."""
        return cls(path, load_policy(path))

    @property
    def current(self) -> Policy:
        """The policy in force."""
        return self._policy

    @property
    def path(self) -> Path:
        """The file reloads read."""
        return self._path

    def reload(self) -> Reloaded | KeptOld:
        """Re-read the file; swap only if it is entirely valid."""
        try:
            policy = load_policy(self._path)
        except ConfigFileError as exc:
            return KeptOld(exc.problems)
        self._policy = policy
        self.generation += 1
        return Reloaded(policy)
