"""Issue 14's developer "done when", played as an app developer works.

The test writes a NEW app into a temporary folder, as a developer would: two interfaces
(notes: a request, a reading request and a one-way `jot`; greet: `hello`, with a
persona-specific handler for the entity's "formal" persona, and `introduce`, whose async
handler calls another entity acting as that persona). It then
1. runs the app under the `mercury_network` pytest fixture (real in-process nodes of two
   clusters, the app named by module as in a node config) and calls it with the typed
   client: replies, the one-way message seen through `list`, the persona handler chosen by
   the persona EID, a caller acting as a persona, a handler calling across clusters;
2. runs it under `mercury-rt dev` (a subprocess, waited for by its ready line) and calls
   it with `mercury-rt call` and `mercury-rt send` (separate processes), by readable
   name: replies, the one-way message seen through `list`, the handler-to-handler call as
   a persona; then Ctrl-C and exit 0.
Every wait is bounded; every node and process is stopped.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from carbon.principal import Persona
from mercury_rt.cli.dev import READY
from mercury_rt.core.identity import eid_to_text
from mercury_rt.testing.clusters import NetworkStarter

pytestmark = pytest.mark.net
MODULE = "daytwo_notes_app"
START_TIMEOUT = 30
CALL_TIMEOUT = 30

APP = '''\
"""Notes and greetings, on every entity the node mirrors."""
from carbon.principal import Persona
from carbon.protocol_spec import Interface, message, request
from carbon.symbols import Symbol
from carbon.types import list_of, record
from lithium import attach
from mercury_rt.core.identity import eid_from_text

NOTES = Interface("/daytwo/notes/v1", ops=[
    request(1, "add", record(text=str), int),      # -> how many notes now
    request(2, "list", None, list_of(str)),
    message(3, "jot", str),                         # one-way: add a note, no reply
])
GREET = Interface("/daytwo/greet/v1", ops=[
    request(1, "hello", str, str),
    request(2, "introduce", record(to=str, name=str), str),
])
FORMAL = Symbol("/daytwo/persona/formal")
SECTION = "/daytwo/notes"


def _notes(ctx):
    return [value[0] for _, value in ctx.state.scan(SECTION)]


def _append(ctx, text):
    ctx.state.put(SECTION, (len(_notes(ctx)),), (text,))


def add(ctx, msg):
    _append(ctx, msg["text"])
    return len(_notes(ctx))


def list_notes(ctx, msg):
    return _notes(ctx)


def jot(ctx, text):
    _append(ctx, text)


def hello(ctx, name):
    persona = ctx.caller.persona
    if persona is None:
        return f"hi {name}"
    return f"hi {name} (from {ctx.caller.local.decode()} as {persona.cls.text})"


def formal_hello(ctx, name):
    return f"Good day, {name}. ({ctx.entity.decode()}, formally)"


async def introduce(ctx, msg):
    """Greet another entity (EID text) acting as this entity's formal persona."""
    other = ctx.calls.client(eid_from_text(msg["to"]), GREET, persona=Persona(FORMAL))
    return await other.hello(msg["name"])


def setup(app):
    for handler_id, fn in (("notes.add", add), ("notes.list", list_notes),
                           ("notes.jot", jot), ("greet.hello", hello),
                           ("greet.formal", formal_hello), ("greet.introduce", introduce)):
        app.registry.register(handler_id, fn)
    app.attach_to_mirrors(NOTES, endpoint=1, handlers={
        "add": "notes.add", "list": "notes.list", "jot": "notes.jot"})
    app.attach_to_mirrors(GREET, endpoint=2, handlers={
        "hello": "greet.hello", "introduce": "greet.introduce"})
    with app.store.writing() as txn:
        for entity in app.mirrors:
            attach(txn, entity.encode(), GREET, endpoint=2, persona=FORMAL,
                   handlers={"hello": "greet.formal"})
'''


@pytest.fixture
def app_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The developer's folder holding the new app (importable, as `dev` makes it)."""
    folder = tmp_path / "myapp"
    folder.mkdir()
    (folder / f"{MODULE}.py").write_text(APP)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    sys.modules.pop(MODULE, None)


def test_the_new_app_under_the_fixture_called_with_the_typed_client(
        app_folder: Path, mercury_network: NetworkStarter) -> None:
    app: ModuleType = importlib.import_module(MODULE)
    net = mercury_network(apps=[MODULE], entities={0: ["alice"], 1: ["carol", "dave"]},
                          clusters=2, nodes=2)
    alice, carol = net.eid("alice", cluster=0), net.eid("carol", cluster=1)
    formal = Persona(app.FORMAL)

    async def scenario() -> None:
        notes = net.client(carol, app.NOTES, caller="bob")
        assert await notes.add(text="first") == 1
        await notes.jot("second")  # one-way: no reply
        assert await notes.list() == ["first", "second"], "the one-way message ran"

        greet = net.client(carol, app.GREET, caller="bob")
        assert await greet.hello("Ann") == "hi Ann"
        carol_formal = net.node(cluster=1).eid_for(b"carol", formal)
        at_persona = net.client(carol_formal, app.GREET, caller="bob")
        assert await at_persona.hello("Ann") == "Good day, Ann. (carol, formally)", \
            "the persona EID reaches the persona's own handler"
        as_persona = net.client(carol, app.GREET, caller="bob", persona=formal)
        assert await as_persona.hello("Ann") == "hi Ann (from bob as /daytwo/persona/formal)"

        via_alice = net.client(alice, app.GREET, caller="bob")
        assert await via_alice.introduce(to=eid_to_text(carol), name="Ann") == \
            "hi Ann (from alice as /daytwo/persona/formal)", "a handler called cluster 1"
    net.run(scenario())
    dave_notes = net.client(net.eid("dave", cluster=1), app.NOTES, caller="bob")
    assert net.run(dave_notes.list()) == [], "each entity has its own notes"


@pytest.fixture
def dev_node(app_folder: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path]]:
    """`mercury-rt dev <the app's .py>` started from the app's folder, waited for by its
    ready line: the process, the EIDs it printed, its dev dir. SIGINT and reaped after."""
    dev_dir = app_folder.parent / "dev"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mercury_rt", "dev", f"{MODULE}.py", "--dev-dir",
         str(dev_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=app_folder)
    try:
        lines = _until_ready(proc)
        eids = {line.split()[0].split("@")[0]: line.split()[1] for line in lines
                if line.startswith("  ") and "@dev " in line}
        yield proc, eids, dev_dir
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
    """What `dev` printed up to its ready line (read by a thread, so the wait is bounded
    even if the node hangs)."""
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
    assert done.wait(START_TIMEOUT), f"dev not ready in {START_TIMEOUT} s: {lines}"
    assert lines and lines[-1].startswith(READY), (lines, proc.poll())
    return lines


def mercury(*args: str, dev_dir: Path) -> subprocess.CompletedProcess[str]:
    """`mercury-rt ARGS` in its own process, finding the dev cluster by its state file."""
    env = {**os.environ, "MERCURY_RT_DEV_DIR": str(dev_dir)}
    return subprocess.run([sys.executable, "-m", "mercury_rt", *args], capture_output=True,
                          text=True, timeout=CALL_TIMEOUT, env=env, check=False)


def _reply(*args: str, dev_dir: Path) -> Any:
    done = mercury("call", *args, dev_dir=dev_dir)
    assert done.returncode == 0, (args, done.stderr)
    assert "answered by node dev1" in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_the_new_app_under_mercury_rt_dev_called_with_call_and_send(
        dev_node: tuple[subprocess.Popen[str], dict[str, str], Path]) -> None:
    proc, eids, dev_dir = dev_node
    assert set(eids) >= {"alice", "bob"} and eids["alice"].startswith("meid1"), eids
    notes, greet = "/daytwo/notes/v1", "/daytwo/greet/v1"

    assert _reply("alice@dev", notes, "add", "{text: first}", dev_dir=dev_dir) == 1
    sent = mercury("send", "alice@dev", notes, "jot", "second", dev_dir=dev_dir)
    assert (sent.returncode, sent.stdout.strip()) == (0, "delivered"), sent.stderr
    deadline = time.monotonic() + 15
    while (listed := _reply("alice@dev", notes, "list", dev_dir=dev_dir)) != ["first",
                                                                           "second"]:
        assert time.monotonic() < deadline, f"the one-way jot never ran: {listed}"
    assert _reply("bob@dev", notes, "list", dev_dir=dev_dir) == []

    assert _reply(eids["bob"], greet, "hello", "Ann", dev_dir=dev_dir) == "hi Ann"
    introduced = _reply("alice@dev", greet, "introduce",
                        json.dumps({"to": eids["bob"], "name": "Ann"}), dev_dir=dev_dir)
    assert introduced == "hi Ann (from alice as /daytwo/persona/formal)"

    wrong = mercury("send", "alice@dev", notes, "add", "{text: x}", dev_dir=dev_dir)
    assert wrong.returncode == 2 and "UNKNOWN_OPERATION" in wrong.stderr, wrong.stderr

    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    assert not (dev_dir / "dev.json").exists()
