"""The admin interface's rules: who may reach it, the token, where its address is kept.

The admin interface shows a node's members, addresses and counters, so it is served on
a loopback address unless the operator says otherwise, and then only with a bearer
token: a config naming a non-loopback `admin.host` without `admin.token_file` is refused
by `node check` at that line. The token file is a secret like cluster.key (0600, read
with keyfiles.read_secret), and `node status` reads the same file to present it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

from mercury_rt.aio.admin_http import AdminSettings
from mercury_rt.config.keyfiles import read_secret
from mercury_rt.config.node import AdminConfig, NodeConfig
from mercury_rt.core.identity import KeyFileError
from policy.yaml_source import Loc

ADDRESS_FILE = "admin.json"
"""In state_dir: the running node's admin URL and pid (how `node status` finds a port 0)."""
MIN_TOKEN = 16
MAX_TOKEN = 4096


def load_token(path: Path) -> bytes:
    """The bearer token in `path`: refused if group or others may read it, if shorter than
    MIN_TOKEN characters, or if not printable ASCII without spaces (KeyFileError)."""
    token = read_secret(path).strip()
    if not MIN_TOKEN <= len(token) <= MAX_TOKEN:
        raise KeyFileError(f"{path}: the token must be {MIN_TOKEN}-{MAX_TOKEN} characters "
                           f"(it has {len(token)}); make one with: umask 077; "
                           f"openssl rand -hex 32 > {path}")
    if not all(0x21 <= b <= 0x7E for b in token):
        raise KeyFileError(f"{path}: the token must be printable ASCII without spaces")
    return token


def admin_findings(admin: AdminConfig,
                   at: Callable[[Path], Path]) -> Iterator[tuple[Loc, str]]:
    """Problems of the `admin` section (`at` resolves a path against the config's folder)."""
    if not admin.enabled:
        return
    if admin.token_file is not None:
        try:
            load_token(at(admin.token_file))
        except KeyFileError as exc:
            yield ("admin", "token_file"), exc.message
    elif not ipaddress.ip_address(admin.host).is_loopback:
        yield ("admin", "host"), (f"{admin.host} is not a loopback address: set "
                                  "admin.token_file (a 0600 file holding a bearer token) "
                                  "to serve the admin interface beyond this machine")


def admin_settings(config: NodeConfig) -> AdminSettings | None:
    """What the node's admin server needs, from a loaded config (None: disabled)."""
    admin = config.admin
    if not admin.enabled:
        return None
    token = None if admin.token_file is None else load_token(admin.token_file)
    return AdminSettings(admin.host, admin.port, token, config.state_dir / ADDRESS_FILE)
