"""CLI verbs for the policy area: `policy check` and `policy explain`.

`check` lists every problem in a policy file as `file:line: key.path: message`. `explain`
runs the gate's own decision code on a hypothetical request, so an operator can see which
rule allows or refuses a caller before deploying a policy.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from carbon.error_codes import ErrorCode
from carbon.principal import Persona, Principal
from carbon.symbols import Symbol
from mercury_rt.core.gate import (
    ASSUMED_PROVEN,
    Allow,
    Decision,
    Deny,
    GateRequest,
    GateState,
    LocalSource,
    MemorySpentStore,
    RemoteSource,
    VerifiedSource,
    decide_access,
)
from policy.access import Target, required_bits
from policy.load import load_policy, parse_ref
from policy.model import Policy
from policy.schema import reference_problem
from policy.yaml_source import ConfigFileError

EXIT_DENY = 1
EXIT_BAD_INPUT = 2
_LOCAL_CLUSTER = bytes(33)


@click.group("policy")
def policy_group() -> None:
    """Check security policy files and explain their decisions."""


@policy_group.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def check_command(file: Path) -> None:
    """Validate FILE; print every problem as file:line: key.path: message."""
    try:
        policy = load_policy(file)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s); the policy was not accepted", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"{file}: ok ({len(policy.levels)} levels, {len(policy.entities)} entities, "
               f"{len(policy.clusters)} trusted clusters)")


@policy_group.command("explain")
@click.option("--policy", "policy_file", required=True, type=click.Path(path_type=Path),
              help="The policy file to evaluate.")
@click.option("--caller", required=True,
              help="name, cluster:name (trusted_clusters name or hex hash), optional #/persona.")
@click.option("--target", required=True, help="ENTITY/ENDPOINT/OPERATION, e.g. billing/1/3.")
@click.option("--stamp-bits", default=0, type=click.IntRange(0, 160), show_default=True,
              help="Bits of the hashcash stamp the caller would attach.")
def explain_command(policy_file: Path, caller: str, target: str, stamp_bits: int) -> None:
    """Print the gate's decision for CALLER on TARGET and the rule that made it."""
    try:
        policy = load_policy(policy_file)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_BAD_INPUT)
    who = _caller(caller, policy)
    decision = explain(policy, who, _target(target), stamp_bits)
    _print(decision)
    sys.exit(0 if isinstance(decision, Allow) else EXIT_DENY)


def explain(policy: Policy, who: Principal, target: Target, stamp_bits: int) -> Decision:
    """The gate's decision, assuming a stamp of `stamp_bits` and a verifiable source EID."""
    cost = required_bits(policy, target)
    if stamp_bits < cost.value:
        return Deny(_hashcash_code(stamp_bits),
                    f"needs a {cost.value}-bit hashcash stamp (set by {cost.rule}); "
                    f"the caller would send {stamp_bits}", cost.rule, "hashcash", None,
                    cost.value)
    key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    state = GateState(_LOCAL_CLUSTER, _AssumeVerified(VerifiedSource(who, key)),
                      MemorySpentStore(1000))
    source = LocalSource(who) if who.cluster == _LOCAL_CLUSTER \
        else RemoteSource(b"", ASSUMED_PROVEN)
    request = GateRequest(target, source, bytes(16))
    return decide_access(request, policy, state, 0.0, stamp_bits if cost.value else 0)


def _hashcash_code(stamp_bits: int) -> ErrorCode:
    return ErrorCode.HASHCASH_INSUFFICIENT if stamp_bits else ErrorCode.HASHCASH_REQUIRED


class _AssumeVerified:
    """Explain assumes the caller's EID verifies: it is about policy, not keys."""

    def __init__(self, source: VerifiedSource) -> None:
        self.source = source

    def verify(self, eid: bytes) -> VerifiedSource:
        return self.source

    def cluster_key(self, master_hash: bytes, key_hash: bytes) -> Ed25519PublicKey | None:
        return self.source.cluster_key



def _caller(text: str, policy: Policy) -> Principal:
    problem = reference_problem(text, policy.source)
    if problem:
        raise click.BadParameter(problem, param_hint="--caller")
    aliases = {c.alias: h for h, c in policy.clusters.items()}
    ref = parse_ref(text, aliases)
    persona = Persona(Symbol(ref.persona)) if ref.persona else None
    return Principal(ref.cluster or _LOCAL_CLUSTER, ref.local, persona)


def _target(text: str) -> Target:
    parts = text.rsplit("/", 2)
    if len(parts) != 3 or not parts[0] or not parts[1].isdigit() or not parts[2].isdigit():
        raise click.BadParameter("expected ENTITY/ENDPOINT/OPERATION, e.g. billing/1/3",
                                 param_hint="--target")
    return Target(parts[0].encode(), int(parts[1]), int(parts[2]))


def _print(decision: Decision) -> None:
    if isinstance(decision, Allow):
        click.echo("decision: allow")
        click.echo(f"acting as: {decision.principal.short()}")
    else:
        click.echo("decision: deny")
        click.echo(f"code: {int(decision.code)} {decision.code.name}")
        click.echo(f"stage: {decision.stage}")
        click.echo(f"message: {decision.message}")
    click.echo(f"rule: {decision.rule}")


COMMANDS: list[click.Command] = [policy_group]
