"""Server lists read from DNS SRV records with dnspython (`--from-srv`), against a local
DNS server on 127.0.0.1 (tests/dns_support.py), never the internet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from carbon.error_codes import ErrorCode
from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles
from mercury_rt.config.srv import lookup_srv_addresses, resolver_for, srv_name
from mercury_rt.core.identity import IdentityError, ServerAddress
from tests.dns_support import dns_server

pytestmark = pytest.mark.net

ZONE = {
    ("_mercury._udp.example.net.", "SRV"): ["20 0 7400 c.example.net.",
                                            "10 60 7400 a.example.net.",
                                            "10 40 7401 b.example.net."],
    ("a.example.net.", "A"): ["192.0.2.10"],
    ("a.example.net.", "AAAA"): ["2001:db8::10"],
    ("b.example.net.", "A"): ["192.0.2.11"],
    ("c.example.net.", "AAAA"): ["2001:db8::12"],
    ("_mercury._udp.gone.example.", "SRV"): ["0 0 0 ."],
    ("_mercury._udp.dangling.example.", "SRV"): ["10 10 7400 nowhere.example."],
    ("nowhere.example.", "TXT"): ['"no address here"'],
}
EXPECTED = [ServerAddress.parse(t) for t in (
    "192.0.2.10:7400/10/60", "[2001:db8::10]:7400/10/60", "192.0.2.11:7401/10/40",
    "[2001:db8::12]:7400/20/0")]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    with dns_server(ZONE) as address:
        yield address


def test_srv_records_become_the_server_list_in_priority_order(nameserver: str) -> None:
    assert lookup_srv_addresses("example.net", resolver_for(nameserver)) == EXPECTED
    assert srv_name("_other._udp.example.net") == "_other._udp.example.net"


@pytest.mark.parametrize(("name", "says"), [
    ("missing.example", "no such name"),
    ("gone.example", "not offered here"),
    ("dangling.example", "has no A or AAAA record"),
])
def test_unusable_answers_are_coded_errors(nameserver: str, name: str, says: str) -> None:
    with pytest.raises(IdentityError, match=says) as info:
        lookup_srv_addresses(name, resolver_for(nameserver), lifetime=2.0)
    assert info.value.code is ErrorCode.SRV_LOOKUP_FAILED


def test_cluster_new_and_set_addresses_from_srv(nameserver: str, tmp_path: Path) -> None:
    d = tmp_path / "c"
    new = run("cluster", "new", "--dir", str(d), "--from-srv", "example.net",
              "--nameserver", nameserver)
    assert new.exit_code == 0, new.output
    assert "from DNS: 192.0.2.10:7400/10/60" in new.output
    assert list(keyfiles.load_cluster_ids(d)[-1].addresses) == EXPECTED
    failed = run("cluster", "set-addresses", "--dir", str(d), "--from-srv", "gone.example",
                 "--nameserver", nameserver)
    assert failed.exit_code == 1 and "error 328 SRV_LOOKUP_FAILED" in failed.output
    assert len(keyfiles.load_cluster_ids(d)) == 1
    both = run("cluster", "set-addresses", "--dir", str(d), "192.0.2.1:1/1/1", "--from-srv",
               "example.net", "--nameserver", nameserver)
    assert both.exit_code == 2 and "--from-srv replaces --address" in both.output
    bad = run("cluster", "set-addresses", "--dir", str(d), "--from-srv", "example.net",
              "--nameserver", "not-an-ip")
    assert bad.exit_code == 2 and "--nameserver" in bad.output
