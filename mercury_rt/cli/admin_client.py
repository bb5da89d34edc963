"""Talking to a running node's admin interface, from its config file (for CLI verbs).

The config says where the interface listens; with port 0 the running node wrote its
address to `state_dir/admin.json`. The token, if the config names one, is read from the
same 0600 file the node reads. Proxies from the environment are ignored: the admin
interface is reached directly, and a proxy must never see its token.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mercury_rt.config import keyfiles
from mercury_rt.config.admin import ADDRESS_FILE, load_token
from mercury_rt.config.node import NodeConfig, format_host_port
from mercury_rt.core.identity import KeyFileError

TIMEOUT = 5.0
MAX_BODY = 16 * 1024 * 1024


class AdminClientError(Exception):
    """The admin interface cannot be used: `running` False if the node is not running."""

    def __init__(self, message: str, *, running: bool) -> None:
        super().__init__(message)
        self.message = message
        self.running = running


@dataclass(frozen=True, slots=True)
class AdminReply:
    """One HTTP answer: status code and body."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON (AdminClientError if it is not)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise AdminClientError("the admin interface answered something that is not "
                                   "JSON (another program on its port?)",
                                   running=True) from None


@dataclass(frozen=True, slots=True)
class AdminClient:
    """The admin interface of one node: its base URL and the token to present."""

    url: str
    token: bytes | None = None

    @classmethod
    def for_config(cls, config: NodeConfig, config_path: Path | str = "") -> AdminClient:
        """The client for the node `config` describes (AdminClientError if disabled, not
        running with an ephemeral port, or its token file cannot be read)."""
        admin = config.admin
        if not admin.enabled:
            raise AdminClientError(f"{config_path}: admin.enabled is false; this node has "
                                   "no admin interface", running=True)
        token = None
        if admin.token_file is not None:
            try:
                token = load_token(admin.token_file)
            except KeyFileError as exc:
                raise AdminClientError(exc.message, running=True) from None
        if admin.port:
            return cls(f"http://{format_host_port(_reachable(admin.host), admin.port)}", token)
        port = _recorded_port(config.state_dir / ADDRESS_FILE, config.node_id)
        return cls(f"http://{format_host_port(_reachable(admin.host), port)}", token)

    def get(self, path: str, timeout: float = TIMEOUT) -> AdminReply:
        """GET `path`; any HTTP status is returned, a connection failure raised."""
        request = urllib.request.Request(self.url + path)
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token.decode('ascii')}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=timeout) as response:
                return AdminReply(response.status, response.read(MAX_BODY))
        except urllib.error.HTTPError as exc:
            return AdminReply(exc.code, exc.read(MAX_BODY))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminClientError(f"the node is not running (nothing answers at {self.url}: "
                                   f"{reason})", running=False) from None


MAX_RECORD = 4_096
"""Bytes of the node's admin record read at most (it is a few dozen)."""


def _reachable(host: str) -> str:
    """The address to connect to for a bound `host` (a wildcard means this machine)."""
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return host


def _recorded_port(path: Path, node_id: str) -> int:
    """Only the port is taken from the node's record: the host is the configured one, so
    whoever can write the state directory cannot send the token to an address of theirs."""
    try:
        record = json.loads(keyfiles.read_regular(path, MAX_RECORD))
    except FileNotFoundError:
        raise AdminClientError(f"node {node_id} is not running ({path} does not exist; a "
                               "running node with admin.port 0 writes it)",
                               running=False) from None
    except (OSError, ValueError) as exc:
        raise AdminClientError(f"{path}: cannot read the node's admin address: {exc}",
                               running=False) from None
    url = record.get("url") if isinstance(record, dict) else None
    try:
        port = urllib.parse.urlsplit(url).port if isinstance(url, str) else None
    except ValueError:
        port = None
    if port is None or not isinstance(url, str) or not url.startswith("http://"):
        raise AdminClientError(f"{path}: no admin URL with a port in it", running=False)
    return port
