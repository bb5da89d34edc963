"""`mercury-rt call`, `send`, `dev` and `name`: argument handling that needs no network."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from carbon.error_codes import ErrorCode
from carbon.interfaces import InterfaceMap
from carbon.protocol_spec import Interface, message, request
from carbon.symbols import Symbol
from mercury_rt.cli.call import MAX_PAYLOAD_TEXT, InputError, parse_payload
from mercury_rt.cli.dev import NAMING_APP, app_module, dev_plan
from mercury_rt.cli.devstate import (
    DevState,
    DevStateError,
    read_state,
    read_states,
    write_state,
)
from mercury_rt.cli.main import cli
from mercury_rt.config import format_host_port
from mercury_rt.core.identity.text import EID_PREFIX, to_text
from mercury_rt.tool_client import ClientError, _locate, _operation

SHOP = Interface("/test/shop/v1", ops=[request(1, "add", int, int), message(2, "reset", None)])
IMAP = InterfaceMap({1: Symbol("/demo/echo/v1"), 2: SHOP.interface})


def test_payload_text_is_json_when_it_parses_as_json_else_yaml() -> None:
    """JSON keeps escaped astral characters exact (YAML would split them into surrogates);
    bare YAML saves quoting in a shell; no payload is null."""
    assert parse_payload('"\\ud83d\\ude00"') == "\U0001F600"
    assert parse_payload("{n: 5, tags: [a, b]}") == {"n": 5, "tags": ["a", "b"]}
    assert parse_payload("hello there") == "hello there"
    assert parse_payload(None) is None


def test_unparsable_or_huge_payload_text_is_refused_with_where() -> None:
    with pytest.raises(InputError) as caught:
        parse_payload("{n: [1, 2}")
    assert "line 1 column" in caught.value.message
    with pytest.raises(InputError):
        parse_payload("x" * (MAX_PAYLOAD_TEXT + 1))


def test_interface_by_symbol_or_endpoint_and_operation_by_name_or_number() -> None:
    assert _locate(IMAP, "/test/shop/v1") == (2, SHOP.interface)
    assert _locate(IMAP, "2") == (2, SHOP.interface)
    assert _locate(IMAP, "0")[0] == 0  # endpoint 0 is always the metadata interface
    assert _operation(SHOP, "reset").number == 2
    assert _operation(SHOP, "1").name == "add"


@pytest.mark.parametrize(("where", "code", "says"), [
    ("7", ErrorCode.UNKNOWN_ENDPOINT, "the target has no endpoint 7 (it offers: 0 "
                                      "/argon/carbon/metadata, 1 /demo/echo/v1, 2 /test/shop/v1)"),
    ("/test/other/v1", ErrorCode.UNKNOWN_INTERFACE, "the target offers no interface"),
    ("shop", ErrorCode.UNKNOWN_INTERFACE, "'shop' is neither an endpoint number nor"),
])
def test_an_unknown_interface_or_endpoint_is_coded_and_lists_what_is_offered(
        where: str, code: ErrorCode, says: str) -> None:
    with pytest.raises(ClientError) as caught:
        _locate(IMAP, where)
    assert caught.value.code is code and caught.value.message.startswith(says)


def test_an_unknown_operation_lists_the_interface_operations() -> None:
    for op in ("remove", "9"):
        with pytest.raises(ClientError) as caught:
            _operation(SHOP, op)
        assert caught.value.code is ErrorCode.UNKNOWN_OPERATION
        assert caught.value.message.endswith("(it has: 1 add, 2 reset)")


def test_cli_usage_errors_exit_2_before_any_socket_opens() -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["call", "meid1x"])
    assert missing.exit_code == 2 and "Missing argument" in missing.output
    entity = runner.invoke(cli, ["call", "--entity", "alice", "meid1x", "1", "echo"])
    assert entity.exit_code == 2 and "--entity needs --as CONFIG" in entity.output
    bad_eid = runner.invoke(cli, ["send", "meid1notbase32!", "1", "note", "x"])
    assert bad_eid.exit_code == 2
    assert "error 318 BAD_EID_TEXT_CHARACTER" in bad_eid.output


def test_a_name_without_a_known_naming_entity_says_how_to_get_one(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["call", "alice@nowhere", "1", "echo", "x",
                                      "--dev-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "error 415 NAME_NOT_FOUND: no naming entity known for cluster 'nowhere'" \
        in result.output
    assert "mercury-rt dev --cluster nowhere" in result.output


def test_dev_apps_by_module_or_path_and_its_plan(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A `.py` path becomes its module with its folder importable; every dev node mirrors
    every entity and `names`, and the naming app loads last (after apps that attach to
    every mirrored entity)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert app_module(str(tmp_path / "shop.py")) == "shop"
    assert str(tmp_path) == sys.path[0]
    assert app_module("mercury_rt.apps.echo") == "mercury_rt.apps.echo"
    plan = dev_plan("dev", ("shop",), ("alice",), 2, "127.0.0.1")
    assert [n.node_id for n in plan.nodes] == ["dev1", "dev2"]
    assert all(n.mirrors == ("alice", "names") for n in plan.nodes)
    assert plan.apps == ("shop", NAMING_APP)


def test_dev_refuses_an_app_that_does_not_import(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["dev", "no_such_app_module", "--dev-dir",
                                      str(tmp_path)])
    assert result.exit_code == 2
    assert "error 850 NODE_CONFIG_INVALID: app 'no_such_app_module' cannot be imported" \
        in result.output
    bad = CliRunner().invoke(cli, ["dev", "--cluster", "Not_A_Label"])
    assert bad.exit_code == 2 and "error 414 INVALID_NAME" in bad.output


def test_dev_state_file_round_trip_and_refusals(tmp_path: Path) -> None:
    state = DevState("dev", "meid1n", {"dev1": "127.0.0.1:4000"}, {"alice": "meid1a"}, 42)
    path = write_state(tmp_path, state)
    assert path == tmp_path / "dev.json"
    assert read_state(tmp_path, "dev") == state
    assert read_state(tmp_path, "other") is None
    (tmp_path / "broken.json").write_text(json.dumps({"cluster": 1}))
    with pytest.raises(DevStateError):
        read_state(tmp_path, "broken")
    (tmp_path / "typed.json").write_text(json.dumps({**state.__dict__, "pid": "42"}))
    with pytest.raises(DevStateError):
        read_state(tmp_path, "typed")
    (tmp_path / "addr.json").write_text(json.dumps({**state.__dict__, "nodes": {"a": "x"}}))
    with pytest.raises(DevStateError):
        read_state(tmp_path, "addr")
    assert read_states(tmp_path) == [state]


def test_dev_listens_on_loopback_only() -> None:
    """Its policy is open: a dev node bound to a public address would serve anyone."""
    result = CliRunner().invoke(cli, ["dev", "--host", "0.0.0.0"])
    assert result.exit_code == 2 and "is not a loopback address" in result.output


def test_text_that_checks_out_but_is_no_eid_is_the_callers_mistake() -> None:
    """A well-formed `meid1` text around bytes that are no EID exits 2, not 'refused'."""
    result = CliRunner().invoke(cli, ["call", to_text(EID_PREFIX, b"not an eid"), "1", "x"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error 100 MALFORMED: TARGET is not an EID: "), result.output


texts = st.text(st.characters(codec="utf-8"), max_size=12)


addresses = st.tuples(st.sampled_from(["127.0.0.1", "::1", "10.1.2.3"]),
                      st.integers(1, 65_535)).map(lambda hp: format_host_port(*hp))


@given(st.builds(DevState, texts, texts, st.dictionaries(texts, addresses, max_size=3),
                 st.dictionaries(texts, texts, max_size=3), st.integers(0, 2**31)))
def test_any_dev_state_reads_back_as_written(state: DevState) -> None:
    with tempfile.TemporaryDirectory() as directory:
        write_state(Path(directory), replace(state, cluster="dev"))
        assert read_state(Path(directory), "dev") == replace(state, cluster="dev")
