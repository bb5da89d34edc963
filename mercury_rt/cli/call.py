"""CLI verbs `call` and `send`: one operation on any entity, from a terminal.

    mercury-rt call TARGET INTERFACE_OR_ENDPOINT OP [PAYLOAD]
    mercury-rt send TARGET INTERFACE_OR_ENDPOINT OP [PAYLOAD]

TARGET is an EID (`meid1...`) or a readable name (`alice@dev`); INTERFACE_OR_ENDPOINT
an interface symbol (`/demo/echo/v1`) or an endpoint number; OP an operation name or
number. Both are looked up at the target's endpoint 0, which also gives the operation's
declared types: PAYLOAD is YAML or JSON (`-` reads stdin; none means null) and is encoded
by that type (carbon.typed_input), so a mistake is refused here with its path, before
anything is sent. The reply is printed as JSON on stdout; which node answered and how
long it took, on stderr (`--json` puts all three in one JSON object on stdout).

Exit status: 0 done; 1 the target refused (access denied, unknown entity, handler
failed: its code is printed); 2 the call was not made as asked (bad EID text or name,
unknown interface or operation, payload not of the declared type); 3 no node answered.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import yaml

from carbon.error_codes import ErrorCode, MercuryError
from carbon.protocol_spec import OperationKind
from carbon.typed_input import PlainInputError
from carbon.types import ANY, NULL, OptionalOf
from mercury_rt.aio.loop import run
from mercury_rt.aio.node_runtime import NodeCallError
from mercury_rt.cli.devstate import DevState, dev_dir, read_state, read_states
from mercury_rt.client import ReplyDecodeError
from mercury_rt.config import NodeConfig, format_host_port, load_node_config, parse_host_port
from mercury_rt.core.identity import Eid, eid_from_text
from mercury_rt.core.node.held import UNREACHABLE
from mercury_rt.core.transport import Addr
from mercury_rt.logs import configure_logging
from mercury_rt.tool_client import (
    CLIENT_ENTITY,
    Client,
    ClientError,
    Outcome,
    Prepared,
    config_client,
    describe,
    throwaway_client,
)
from policy.yaml_source import ConfigFileError

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
MAX_PAYLOAD_TEXT = 1 << 20


class InputError(MercuryError):
    """A command-line argument that cannot be used (bad payload text, no naming entity)."""

    code = ErrorCode.PAYLOAD_TYPE_MISMATCH


@dataclass(frozen=True)
class Identity:
    """Who the call is made as: a node config's cluster and entity, or a throwaway."""

    config: NodeConfig | None
    entity: str
    host: str


@dataclass(frozen=True)
class Request:
    """One `call` or `send` as given on the command line."""

    target: str
    where: str
    op: str
    payload: Any
    one_way: bool
    naming: str | None
    dev: Path
    timeout: float


def parse_payload(text: str | None) -> Any:
    """Plain data from PAYLOAD: JSON if it parses as JSON (exact for every string, which
    YAML is not for escaped astral characters), else YAML; no PAYLOAD is null."""
    if text is None:
        return None
    if len(text) > MAX_PAYLOAD_TEXT:
        raise InputError(f"payload text longer than {MAX_PAYLOAD_TEXT} characters")
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = "" if mark is None else f" at line {mark.line + 1} column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or "not YAML"
        raise InputError(f"payload is neither JSON nor YAML{where}: {problem}") from None


def known_nodes(identity: Identity, devs: list[DevState]) -> dict[Addr, str]:
    """Node ids by inter- and intra-cluster address, to say which node answered."""
    found: dict[Addr, str] = {}
    for dev in devs:
        for node_id, text in dev.nodes.items():
            found[parse_host_port(text)] = node_id
    if identity.config is not None:
        for peer in identity.config.cluster.nodes:
            found[peer.intra_address] = peer.node_id
            public = peer.public_address
            if public is not None:
                found[(str(public.host), public.port)] = peer.node_id
    return found


async def resolve_target(client: Client, request: Request) -> tuple[bytes, list[DevState]]:
    """EID bytes of TARGET: `meid1` text decoded, or a name resolved by its cluster's
    naming entity (`--naming`, else the dev state file of that cluster label); with the
    dev states that may name the node that answers."""
    if "@" not in request.target:
        eid = eid_from_text(request.target)
        try:
            Eid.decode(eid)  # the caller's mistake (exit 2), not the target's refusal
        except MercuryError as exc:
            raise InputError(f"TARGET is not an EID: {exc.message}", exc.code) from None
        return eid, read_states(request.dev)
    cluster = request.target.rpartition("@")[2]
    dev = read_state(request.dev, cluster) if cluster else None
    naming = request.naming or (dev.naming if dev is not None else None)
    if naming is None:
        raise InputError(f"no naming entity known for cluster {cluster!r}: pass --naming "
                         f"EID, or run `mercury-rt dev --cluster {cluster}` (state files are "
                         f"looked for in {request.dev})", ErrorCode.NAME_NOT_FOUND)
    eid = await client.node.resolve_name(request.target, eid_from_text(naming),
                                         caller=client.caller, timeout=request.timeout)
    return eid, [] if dev is None else [dev]


async def perform(identity: Identity, request: Request) -> tuple[Prepared, Outcome, str]:
    """Make the call; (what was called, its outcome, who answered as text)."""
    client = await (config_client(identity.config, identity.entity) if identity.config
                    else throwaway_client(identity.host))
    client.timeout = request.timeout
    try:
        target, devs = await resolve_target(client, request)
        prepared = await client.prepare(target, request.where, request.op)
        kind = prepared.operation.kind
        if request.one_way and kind is not OperationKind.MESSAGE:
            raise ClientError(f"{describe(prepared.operation)}: it is a request; use "
                              "`mercury-rt call`", ErrorCode.UNKNOWN_OPERATION)
        if kind is OperationKind.CONNECTION:
            raise ClientError(f"{prepared.operation.name} opens a connection, which a "
                              "one-shot call cannot hold", ErrorCode.UNKNOWN_OPERATION)
        outcome = await _invoke(client, prepared, request)
        return prepared, outcome, _who(outcome.answered_by, known_nodes(identity, devs))
    finally:
        await client.close()


async def _invoke(client: Client, prepared: Prepared, request: Request) -> Outcome:
    """The call, with a payload mismatch refused as `echo takes str: $: ...`."""
    operation = prepared.operation
    if request.payload is None and operation.message not in (NULL, ANY) \
            and not isinstance(operation.message, OptionalOf):
        raise InputError(f"{describe(operation)}: give it as PAYLOAD (YAML or JSON)")
    try:
        return await client.invoke(prepared, request.payload)
    except PlainInputError as exc:
        raise PlainInputError(f"{describe(operation)}: {exc.message}") from None


def _who(address: Addr | None, nodes: dict[Addr, str]) -> str:
    if address is None:
        return "the calling node itself"
    text = format_host_port(*address)
    name = nodes.get(address)
    return text if name is None else f"node {name} ({text})"


def report_error(exc: MercuryError) -> int:
    """Print a coded error; the exit status its kind calls for."""
    code = getattr(exc, "raw_code", int(exc.code))
    name = exc.code.name
    if isinstance(exc, NodeCallError):
        status = EXIT_UNREACHABLE if code in UNREACHABLE else EXIT_REFUSED
        what = "no node answered" if status == EXIT_UNREACHABLE else "refused"
        click.echo(f"{what}: error {code} {name}: {exc.message}", err=True)
        return status
    if isinstance(exc, ReplyDecodeError):  # the target's fault, not the caller's input
        click.echo(f"bad reply: error {code} {name}: {exc.message}", err=True)
        return EXIT_REFUSED
    click.echo(f"error {code} {name}: {exc.message}", err=True)
    return EXIT_BAD_INPUT


def identity_from_options(as_config: Path | None, entity: str | None, host: str) -> Identity:
    if as_config is None:
        if entity is not None:
            raise click.UsageError("--entity needs --as CONFIG (a throwaway identity calls "
                                   f"as {CLIENT_ENTITY!r})")
        return Identity(None, CLIENT_ENTITY, host)
    try:
        config = load_node_config(as_config)
    except ConfigFileError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(EXIT_BAD_INPUT)
    return Identity(config, entity or CLIENT_ENTITY, config.listen.host)


def _payload_text(payload: str | None) -> str | None:
    if payload == "-":
        return sys.stdin.read(MAX_PAYLOAD_TEXT + 1)
    return payload


def _common(func: Any) -> Any:
    for option in reversed([
        click.argument("target"), click.argument("interface_or_endpoint"),
        click.argument("op"), click.argument("payload", required=False),
        click.option("--as", "as_config", type=click.Path(path_type=Path), default=None,
                     help="Call as an entity of this node config's cluster (its keys)."),
        click.option("--entity", default=None,
                     help=f"The entity to call as, with --as (default {CLIENT_ENTITY})."),
        click.option("--naming", default=None,
                     help="EID of the naming entity that resolves NAME@CLUSTER targets."),
        click.option("--dev-dir", "dev_dir_option", default=None,
                     type=click.Path(file_okay=False, path_type=Path),
                     help="Where `mercury-rt dev` left its state file."),
        click.option("--timeout", type=click.FloatRange(0.1, 600), default=10.0,
                     show_default=True, help="Seconds for each exchange."),
        click.option("--host", default="127.0.0.1", show_default=True,
                     help="Local address a throwaway identity listens on."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print reply, milliseconds and node as one JSON object."),
    ]):
        func = option(func)
    return func


def _main(one_way: bool, **args: Any) -> None:
    configure_logging("error")
    identity = identity_from_options(args["as_config"], args["entity"], args["host"])
    try:
        request = Request(args["target"], args["interface_or_endpoint"], args["op"],
                          parse_payload(_payload_text(args["payload"])), one_way,
                          args["naming"], dev_dir(args["dev_dir_option"]), args["timeout"])
        prepared, outcome, who = run(asyncio.wait_for(perform(identity, request),
                                                      4 * request.timeout + 5))
    except TimeoutError:
        click.echo("no node answered: error 200 TIMEOUT: the call did not finish", err=True)
        sys.exit(EXIT_UNREACHABLE)
    except MercuryError as exc:
        sys.exit(report_error(exc))
    except OSError as exc:
        click.echo(f"cannot open a UDP socket on {identity.host}: {exc}", err=True)
        sys.exit(EXIT_UNREACHABLE)
    _print(prepared, outcome, who, args["as_json"])


def _print(prepared: Prepared, outcome: Outcome, who: str, as_json: bool) -> None:
    ms = round(outcome.seconds * 1e3, 3)
    one_way = prepared.operation.kind is OperationKind.MESSAGE
    if as_json:
        click.echo(json.dumps({"operation": prepared.operation.name, "reply": outcome.reply,
                               "ms": ms, "node": who, "one_way": one_way},
                              ensure_ascii=False))
        return
    if one_way:
        click.echo("delivered")
        click.echo(f"{prepared.operation.name} acknowledged by {who} in {ms:.1f} ms", err=True)
        return
    click.echo(json.dumps(outcome.reply, ensure_ascii=False))
    click.echo(f"{prepared.operation.name} answered by {who} in {ms:.1f} ms", err=True)


@click.command("call")
@_common
def call(**args: Any) -> None:
    """Call OP of INTERFACE_OR_ENDPOINT on TARGET with PAYLOAD (YAML/JSON)."""
    _main(False, **args)


@click.command("send")
@_common
def send(**args: Any) -> None:
    """Send the one-way message OP of INTERFACE_OR_ENDPOINT to TARGET; wait for its ack."""
    _main(True, **args)


COMMANDS: list[click.Command] = [call, send]
