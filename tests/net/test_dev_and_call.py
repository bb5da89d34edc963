"""`mercury-rt dev` as a developer runs it, and `mercury-rt call` / `send` against it.

The dev node is a real subprocess serving the echo app and a small app of the test's own
(a `.py` path, two interfaces); the test waits on its printed ready line, calls it by EID
text and by readable name from separate `mercury-rt` processes, checks the printed reply,
time and node, then Ctrl-C (SIGINT) and a clean exit 0 with its state file gone. Every
wait is bounded; every process is reaped.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mercury_rt.cli.dev import READY
from mercury_rt.core.identity import ServerAddress, eid_to_text, issue_cluster_id, mint_eid
from mercury_rt.localcluster import free_port

pytestmark = pytest.mark.net
START_TIMEOUT = 30
CALL_TIMEOUT = 30

SHOP_APP = '''\
"""A test app: a counter with a typed record payload, and a one-way reset."""
from carbon.protocol_spec import Interface, message, request
from carbon.types import list_of, optional, record

SHOP = Interface("/test/shop/v1", ops=[
    request(1, "add", record(n=int, tags=list_of(str), note=optional(str)),
            record(total=int, tags=list_of(str))),
    message(2, "reset", None),
    request(3, "fail", None, None),
])
TOTALS = "/test/shop/totals"


def setup(app):
    @app.registry.handler("shop.add")
    def add(ctx, msg):
        (total,) = ctx.state.get(TOTALS, ("total",)) or (0,)
        ctx.state.put(TOTALS, ("total",), (total + msg["n"],))
        return {"total": total + msg["n"], "tags": sorted(msg["tags"])}

    @app.registry.handler("shop.reset")
    def reset(ctx, msg):
        ctx.state.delete(TOTALS, ("total",))

    @app.registry.handler("shop.fail")
    def fail(ctx, msg):
        raise RuntimeError("deliberate")

    app.attach_to_mirrors(SHOP, endpoint=2, handlers={
        "add": "shop.add", "reset": "shop.reset", "fail": "shop.fail"})
'''


@pytest.fixture
def dev_node(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str], Path]]:
    """A running `mercury-rt dev` (echo + the shop app), its output up to READY, and its
    dev dir; SIGINT and reaped afterwards whatever the test did."""
    (tmp_path / "shopapp.py").write_text(SHOP_APP)
    dev_dir = tmp_path / "dev"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mercury_rt", "dev", "mercury_rt.apps.echo",
         str(tmp_path / "shopapp.py"), "--dev-dir", str(dev_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        yield proc, _until_ready(proc), dev_dir
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()


def _until_ready(proc: subprocess.Popen[str]) -> list[str]:
    """Lines the dev node printed up to its ready line (a reader thread bounds the wait:
    readline alone would block for ever on a node that hangs)."""
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith(READY):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(START_TIMEOUT), f"dev node not ready: {lines}"
    assert lines and lines[-1].startswith(READY), (lines, proc.stderr and proc.stderr.read())
    return lines


def mercury(*args: str, dev_dir: Path,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `mercury-rt ARGS` as a user would, in its own process."""
    env = {**os.environ, "MERCURY_RT_DEV_DIR": str(dev_dir)}
    return subprocess.run([sys.executable, "-m", "mercury_rt", *args], capture_output=True,
                          text=True, timeout=CALL_TIMEOUT, env=env, input=stdin, check=False)


ANSWERED = re.compile(r"(\w[\w-]*) (answered|acknowledged) by node dev1 \(127\.0\.0\.1:\d+\) "
                      r"in \d+\.\d ms")


def _eid(lines: list[str], entity: str) -> str:
    found = [line.split()[1] for line in lines if line.startswith(f"  {entity}@dev ")]
    assert len(found) == 1, lines
    return found[0]


def test_dev_serves_apps_and_call_reaches_them_by_eid_and_by_name(
        dev_node: tuple[subprocess.Popen[str], list[str], Path]) -> None:
    proc, lines, dev_dir = dev_node
    assert any(line.startswith("  node dev1 udp 127.0.0.1:") for line in lines)
    alice = _eid(lines, "alice")
    assert alice.startswith("meid1")
    state = json.loads((dev_dir / "dev.json").read_text())
    assert state["entities"]["alice"] == alice

    by_eid = mercury("call", alice, "/demo/echo/v1", "echo", "hello there", dev_dir=dev_dir)
    assert by_eid.returncode == 0, by_eid.stderr
    assert json.loads(by_eid.stdout) == "hello there"
    assert ANSWERED.fullmatch(by_eid.stderr.strip()), by_eid.stderr

    added = mercury("call", "bob@dev", "/test/shop/v1", "add", "{n: 5, tags: [b, a]}",
                    "--json", dev_dir=dev_dir)
    assert added.returncode == 0, added.stderr
    out = json.loads(added.stdout)
    assert out["reply"] == {"total": 5, "tags": ["a", "b"]}
    assert out["node"] == f"node dev1 ({state['nodes']['dev1']})" and out["ms"] > 0

    again = mercury("call", "bob@dev", "2", "1", "-", dev_dir=dev_dir,
                    stdin='{"n": 2, "tags": [], "note": "by number, from stdin"}')
    assert json.loads(again.stdout) == {"total": 7, "tags": []}, again.stderr

    sent = mercury("send", "bob@dev", "/test/shop/v1", "reset", dev_dir=dev_dir)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "delivered"
    assert ANSWERED.fullmatch(sent.stderr.strip()), sent.stderr
    after = mercury("call", "bob@dev", "/test/shop/v1", "add", "{n: 1, tags: []}",
                    dev_dir=dev_dir)
    assert json.loads(after.stdout) == {"total": 1, "tags": []}, after.stderr

    resolved = mercury("name", "resolve", "alice@dev", dev_dir=dev_dir)
    assert resolved.stdout.strip() == alice, resolved.stderr

    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert proc.stdout is not None
    assert "mercury-rt dev stopped" in proc.stdout.read()
    assert not (dev_dir / "dev.json").exists()


def test_call_errors_are_coded_and_say_what_was_wrong(
        dev_node: tuple[subprocess.Popen[str], list[str], Path]) -> None:
    _, lines, dev_dir = dev_node
    cases = [
        (("call", "bob@dev", "/test/shop/v1", "add", "{n: 1, tags: [x, 2]}"), 2,
         "error 411 PAYLOAD_TYPE_MISMATCH: add takes record{n: int, tags: list[str], "
         "note: optional[str]} and replies record{total: int, tags: list[str]}: "
         "$.tags[1]: expected str, got int"),
        (("call", "bob@dev", "/test/shop/v1", "remove", "{}"), 2,
         "error 422 UNKNOWN_OPERATION: /test/shop/v1 has no operation 'remove' "
         "(it has: 1 add, 2 reset, 3 fail)"),
        (("call", "bob@dev", "/test/none/v1", "x"), 2, "error 418 UNKNOWN_INTERFACE: the "
         "target offers no interface /test/none/v1"),
        (("call", "nobody@dev", "1", "echo", "x"), 1,
         "refused: error 415 NAME_NOT_FOUND: no entity is named nobody@dev"),
        (("call", "bob@dev", "/test/shop/v1", "fail"), 1, "refused: error "),
        (("send", "bob@dev", "/test/shop/v1", "add", "{n: 1, tags: []}"), 2,
         "error 422 UNKNOWN_OPERATION: add takes"),
        (("call", _eid(lines, "bob")[:-3] + "aaa", "1", "echo", "x"), 2,
         "error 319 BAD_EID_TEXT_CHECKSUM"),
    ]
    for args, status, says in cases:
        result = mercury(*args, dev_dir=dev_dir)
        assert (result.returncode, result.stdout) == (status, ""), (args, result.stderr)
        assert result.stderr.startswith(says), (args, result.stderr)


def test_a_target_nobody_serves_is_reported_unreachable(tmp_path: Path) -> None:
    """A name whose dev node is gone (its state file left behind) fails fast, exit 3."""
    dev_dir = tmp_path / "dev"
    dev_dir.mkdir()
    port = free_port("127.0.0.1")
    stale = {"cluster": "gone", "naming": _dead_eid(port), "nodes": {}, "entities": {},
             "pid": 1}
    (dev_dir / "gone.json").write_text(json.dumps(stale))
    result = mercury("call", "x@gone", "1", "echo", "x", "--timeout", "1", dev_dir=dev_dir)
    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("no node answered: error "), result.stderr


def _dead_eid(port: int) -> str:
    """The EID text of an entity of a cluster whose only address has nobody on it."""
    master, key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    cid = issue_cluster_id(master, key, [ServerAddress(ip_address("127.0.0.1"), port, 10, 10)])
    return eid_to_text(mint_eid(key, cid, b"names"))
