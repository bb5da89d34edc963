"""Audit records of decisions, and the `policy check` / `policy explain` verbs."""

from __future__ import annotations

import io
import json
from pathlib import Path

from click.testing import CliRunner
from structlog.testing import capture_logs

from carbon.principal import Principal
from mercury_rt.aio.audit import audit_decision, json_audit_logger
from mercury_rt.cli.main import cli
from mercury_rt.core.gate import (
    GateRequest,
    GateState,
    LocalSource,
    MemorySpentStore,
    evaluate,
    issue_certificate,
    request_digest,
)
from policy.access import Target
from policy.load import parse_policy
from tests.gate_support import (
    LOCAL,
    NOW,
    PARTNER,
    CountingVerifier,
    cluster_key,
    fake_eid,
    remote,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "conf" / "policy.example.yaml"
POLICY = parse_policy(f"""\
version: 1
levels: [public, secret]
entities:
  vault: {{classification: secret}}
  boss: {{clearance: secret}}
trusted_clusters:
  partner: {{master_hash: "{PARTNER.hex()}", max_clearance: public, default_clearance: public}}
""")
BOSS = Principal(LOCAL, b"boss")
VISITOR = Principal(PARTNER, b"visitor")


def decide(req: GateRequest) -> object:
    return evaluate(req, POLICY, GateState(LOCAL, CountingVerifier(), MemorySpentStore()), NOW)


def test_audit_records_originator_and_acted_for_entity() -> None:
    cert = issue_certificate(VISITOR, fake_eid(BOSS), int(NOW) + 9, cluster_key(LOCAL))
    req = GateRequest(Target(b"vault", 0, 0), remote(VISITOR),
                      request_digest(b""), delegation=(cert,))
    decision = decide(req)
    with capture_logs() as logs:
        audit_decision(req, decision)  # type: ignore[arg-type]
    (entry,) = logs
    assert entry["event"] == "gate_decision" and entry["outcome"] == "allow"
    assert entry["originator"]["local"] == "visitor" and entry["acting_as"]["local"] == "boss"
    assert entry["rule"].startswith("mac: clearance secret (entities.boss.clearance)")


def test_audit_records_denials_with_code_and_rule() -> None:
    req = GateRequest(Target(b"vault", 0, 0), LocalSource(Principal(LOCAL, b"x")),
                      request_digest(b""))
    with capture_logs() as logs:
        audit_decision(req, decide(req))  # type: ignore[arg-type]
    assert logs[0]["outcome"] == "deny" and logs[0]["code"] == 650
    assert logs[0]["error"] == "MAC_INSUFFICIENT_CLEARANCE"
    assert logs[0]["rule"] == "entities.vault.classification" and logs[0]["stage"] == "mac"


def test_json_audit_lines_parse() -> None:
    stream = io.StringIO()
    req = GateRequest(Target(b"vault", 0, 0), LocalSource(BOSS), request_digest(b""))
    audit_decision(req, decide(req), json_audit_logger(stream))  # type: ignore[arg-type]
    record = json.loads(stream.getvalue())
    assert record["event"] == "gate_decision" and record["timestamp"].endswith("Z")


def test_check_accepts_the_example() -> None:
    result = CliRunner().invoke(cli, ["policy", "check", str(EXAMPLE)])
    assert result.exit_code == 0 and "ok (4 levels" in result.output


def test_check_prints_every_problem_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nlevels: [a]\nentities:\n  x: {clearance: b, colour: red}\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: entities.x.colour: unknown key" in result.output
    assert "1 problem(s)" in result.output


def test_check_reports_semantic_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nlevels: [a]\nentities:\n  x: {clearance: b}\n")
    result = CliRunner().invoke(cli, ["policy", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:4: entities.x.clearance: 'b' is not a level; levels are: a" in result.output


def explain(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["policy", "explain", "--policy", str(EXAMPLE), *args])
    return result.exit_code, result.output


def test_explain_allow_names_the_rules() -> None:
    code, out = explain("--caller", "alice", "--target", "billing/1/3", "--stamp-bits", "10")
    assert code == 0 and "decision: allow" in out
    assert "entities.billing.endpoints.1.operations.3.acl.allow" in out


def test_explain_deny_says_what_would_pass() -> None:
    code, out = explain("--caller", "alice", "--target", "billing/1/3")
    assert code == 1 and "code: 600 HASHCASH_REQUIRED" in out
    assert "needs a 10-bit hashcash stamp" in out
    code, out = explain("--caller", "partner:x", "--target", "billing/1/3", "--stamp-bits", "12")
    assert code == 1 and "needs clearance 'confidential'" in out
    assert "rule: entities.billing.endpoints.1.operations.3.classification" in out
    code, out = explain("--caller", "mallory", "--target", "billing/2/0")
    assert code == 1 and "rule: entities.billing.acl.deny" in out


def test_explain_rejects_bad_arguments() -> None:
    code, out = explain("--caller", "nosuch:x", "--target", "billing/1/3")
    assert code == 2 and "neither a trusted_clusters name" in out
    code, out = explain("--caller", "alice", "--target", "billing")
    assert code == 2 and "ENTITY/ENDPOINT/OPERATION" in out
