"""The file a `mercury-rt dev` node leaves for `mercury-rt call`: how to reach it by name.

`dev` writes `<dev dir>/<cluster>.json` once its nodes are up (and removes it when it
stops): its cluster label, the EID of its naming entity, its nodes' inter-cluster
addresses and its entities' EIDs. `call alice@dev ...` reads `dev.json` to find the
naming entity that resolves `alice@dev`, and to say which node answered. The dev dir is
`--dev-dir`, else $MERCURY_RT_DEV_DIR, else ~/.cache/mercury-rt/dev. Nothing secret is in
it: EIDs and addresses are what any caller is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from carbon.error_codes import ErrorCode, MercuryError
from mercury_rt.config import keyfiles, parse_host_port

DEV_DIR_ENV = "MERCURY_RT_DEV_DIR"
MAX_STATE_BYTES = 1 << 20
MAX_STATES = 32


class DevStateError(MercuryError):
    """A dev state file that cannot be read as one."""

    code = ErrorCode.NODE_CONFIG_INVALID


@dataclass(frozen=True)
class DevState:
    """What a running dev cluster publishes about itself (EIDs as `meid1` text)."""

    cluster: str
    naming: str
    nodes: dict[str, str]
    """Node id -> inter-cluster `host:port` (IPv6 in brackets)."""
    entities: dict[str, str]
    pid: int


def dev_dir(option: Path | None) -> Path:
    """The dev dir: the option, else $MERCURY_RT_DEV_DIR, else ~/.cache/mercury-rt/dev."""
    if option is not None:
        return option
    env = os.environ.get(DEV_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "mercury-rt" / "dev"


def state_path(directory: Path, cluster: str) -> Path:
    """Where the dev cluster `cluster` keeps its state file."""
    return directory / f"{cluster}.json"


def write_state(directory: Path, state: DevState) -> Path:
    """Write the state file atomically (a reader never sees half of it)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = state_path(directory, state.cluster)
    keyfiles.write_public(path, (json.dumps(asdict(state), indent=2) + "\n").encode())
    return path


def read_state(directory: Path, cluster: str) -> DevState | None:
    """The state of dev cluster `cluster`, None if none is running there."""
    path = state_path(directory, cluster)
    try:
        data = keyfiles.read_regular(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DevStateError(f"cannot read the dev state file: {exc}") from None
    try:
        return _state(json.loads(data))
    except (ValueError, TypeError, KeyError) as exc:
        raise DevStateError(f"{path}: not a dev state file ({exc}); stop the dev node "
                            "or delete the file") from None


def read_states(directory: Path) -> list[DevState]:
    """Every readable dev state in `directory` (at most MAX_STATES; broken ones skipped:
    they only help name nodes)."""
    found: list[DevState] = []
    paths = sorted(directory.glob("*.json"))[:MAX_STATES] if directory.is_dir() else []
    for path in paths:
        try:
            state = read_state(directory, path.stem)
        except DevStateError:
            continue
        if state is not None:
            found.append(state)
    return found


def _state(value: Any) -> DevState:
    state = DevState(value["cluster"], value["naming"], dict(value["nodes"]),
                     dict(value["entities"]), value["pid"])
    texts = [state.cluster, state.naming, *state.nodes, *state.nodes.values(),
             *state.entities, *state.entities.values()]
    if not all(isinstance(t, str) for t in texts) or type(state.pid) is not int:
        raise TypeError("a field has the wrong type")
    for address in state.nodes.values():
        parse_host_port(address)  # ValueError if it is not host:port
    return state
