"""CLI verbs for the identity area: `cluster ...` (keys, versions, addresses) and `eid ...`.

This is the shell around mercury_rt.core: it alone draws randomness (os.urandom) and
touches files (through mercury_rt.config.keyfiles). Every failure is reported as
"error <code> <NAME>: <what was wrong and what to do>" with a non-zero exit status.
Seed-phrase words are never taken from argv (they would land in shell history and in
`ps`): they come from stdin or a file.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import ParamSpec, TypeVar

import click

from carbon.cbor import CodecError, Value
from carbon.error_codes import MercuryError
from carbon.principal import Persona
from carbon.symbols import Symbol
from mercury_rt.cli.live_etcd import EtcdLive, etcd_settings, publish, read_live
from mercury_rt.cli.passphrase import (
    PASSPHRASE_FILE_OPTION,
    load_master_asking,
    passphrase,
    passphrase_to_set,
)
from mercury_rt.config import keyfiles
from mercury_rt.config.load import load_node_config
from mercury_rt.config.mint_defaults import load_mint_defaults
from mercury_rt.config.published import PUBLISHED_DIR, Seen, load_live
from mercury_rt.config.srv import lookup_srv_addresses, resolver_for
from mercury_rt.core.identity import (
    AcceptedAlgorithm,
    ClusterId,
    Eid,
    EidVerifier,
    IdentityError,
    Level,
    MintOptions,
    OperationHint,
    ServerAddress,
    change_addresses,
    cluster_id_from_text,
    cluster_id_to_text,
    dump_cluster_id,
    dump_eid,
    eid_from_text,
    eid_to_text,
    format_endpoint,
    issue_cluster_id,
    master_from_phrase,
    mint_eid,
    new_phrase,
    rotate_cluster_key,
)
from mercury_rt.core.identity.live import HISTORY, next_version

P = ParamSpec("P")
R = TypeVar("R")
EXIT_NOT_PROVEN = 3
DIR_OPTION = click.option("--dir", "directory", required=True,
                          type=click.Path(file_okay=False, path_type=Path),
                          help="Cluster key directory.")


def _friendly(func: Callable[P, R]) -> Callable[P, R]:
    """Turn our typed errors into a clear one-line message and exit status 1."""
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MercuryError as exc:
            raise click.ClickException(f"error {exc.code.value} {exc.code.name}: "
                                       f"{exc.message}") from None
        except OSError as exc:  # writing key, cluster-ID or seed-word files
            raise click.ClickException(f"{exc.filename}: {exc.strerror}") from None
    return wrapper


NO_ADDRESSES_OPTION = click.option(
    "--no-addresses", is_flag=True,
    help="Publish a cluster ID listing no server (nobody can reach the cluster until "
         "`cluster set-addresses`); needed to run without --address.")
FROM_SRV_OPTION = click.option(
    "--from-srv", metavar="DOMAIN",
    help="Take the server list from DNS: the SRV records _mercury._udp.DOMAIN (or a full "
         "_service._proto name) and their targets' A/AAAA records.")
NAMESERVER_OPTION = click.option(
    "--nameserver", metavar="HOST[:PORT]",
    help="With --from-srv: ask this DNS server only (e.g. the zone's primary).")
ENCRYPT_OPTION = click.option(
    "--encrypt-master", is_flag=True,
    help="Encrypt master.key with a passphrase (implied by --passphrase-file).")


def _parse_addresses(texts: tuple[str, ...], no_addresses: bool) -> list[ServerAddress]:
    """The server list; an empty one only when asked for, since a cluster ID without
    addresses makes every EID minted under it unreachable."""
    if not texts and not no_addresses:
        raise click.UsageError(
            "no --address given: the cluster ID would list no server, so no EID minted "
            "under it could be reached. Give each public node as --address "
            "HOST:PORT/PRIO/WEIGHT (or read them from DNS with --from-srv DOMAIN), or "
            "pass --no-addresses to publish an empty list on purpose (then "
            "`mercury-rt cluster set-addresses` later)")
    if texts and no_addresses:
        raise click.UsageError("--no-addresses contradicts --address; give one or the other")
    return [ServerAddress.parse(text) for text in texts]


NODE_OPTION = click.option(
    "--node", "nodes", multiple=True, metavar="CONFIG",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Also read the cluster-ID version this node recorded in its state_dir (needed "
         "when the nodes cannot write the cluster directory's published/); repeat. If the "
         "config has a replication: section, the live version is read from its etcd and "
         "new versions are published there by compare-and-swap.")
FORCE_OPTION = click.option(
    "--force", is_flag=True,
    help="Issue a version even though no node's recorded version is visible (no record in "
         "DIR/published/, no --node). Safe only if no node has run with this cluster: "
         "otherwise the number may be one the nodes already used, and callers holding "
         "the nodes' version would refuse yours as not newer.")


def _seen(directory: Path, nodes: tuple[Path, ...]) -> Seen:
    """The live cluster-ID version (see _seen_with_etcd)."""
    return _seen_with_etcd(directory, nodes)[0]


def _seen_with_etcd(directory: Path, nodes: tuple[Path, ...],
                    ) -> tuple[Seen, EtcdLive | None]:
    """The live cluster-ID version: this directory's history and every verified record
    the nodes wrote (DIR/published/, each --node's state_dir) and, if a --node config has
    a replication: section, etcd's value; what does not verify is named on stderr and
    ignored."""
    state_dirs = tuple(load_node_config(node).state_dir for node in nodes)
    settings = etcd_settings(nodes)
    etcd = None if settings is None else read_live(settings)
    extra, unread = ((), ()) if etcd is None else etcd.candidate()
    seen = load_live(directory, state_dirs, extra, unread)
    if extra and extra[0].cluster_id == seen.live.cluster_id and extra[0] in seen.records:
        # Where the nodes publish: name etcd even when a node's file holds the same.
        seen = replace(seen, live=replace(seen.live, source=extra[0].source))
    for ignored in seen.live.ignored:
        click.echo(f"warning: ignored {ignored.source}: error {ignored.code.value} "
                   f"{ignored.code.name}: {ignored.reason}", err=True)
    return seen, etcd


def _next_base(directory: Path, nodes: tuple[Path, ...], force: bool,
               ) -> tuple[Seen, ClusterId, EtcdLive | None]:
    """The live version to build on, renumbered so its successor is above every version
    seen; refuses when no node's version is visible, unless forced."""
    seen, etcd = _seen_with_etcd(directory, nodes)
    if not seen.records and not force and etcd is not None:
        raise click.ClickException(
            f"{etcd.source} holds no verified cluster ID and no node recorded one in "
            f"{directory / PUBLISHED_DIR}: the next number here "
            f"({seen.live.cluster_id.version + 1}) may be one the nodes already used. Start "
            "the nodes (each puts its version into etcd), or pass --force if no node has "
            "run with this cluster yet.")
    if not seen.records and not force:
        raise click.ClickException(
            f"cannot see which cluster-ID versions the nodes use: no node has recorded one in "
            f"{directory / PUBLISHED_DIR} and no --node CONFIG was given. Nodes publish "
            "versions by themselves (a node died, an address changed), so the next number "
            f"here ({seen.live.cluster_id.version + 1}) may be one they already used, and "
            "callers holding theirs would refuse it as not newer. Give every node's config "
            "with --node CONFIG (or let the nodes write that directory), or pass --force "
            "if no node has run with this cluster yet.")
    if not seen.records:
        click.echo("warning: --force: no node's recorded version is visible; numbering "
                   "after this directory's history only", err=True)
    number = next_version(seen.live)
    return seen, replace(seen.live.cluster_id, version=number - 1), etcd


def _append_version(directory: Path, history: list[ClusterId], new: ClusterId,
                    etcd: EtcdLive | None = None) -> None:
    """Publish `new` on etcd by CAS first (466 and nothing written if another version
    came in between), then append it to the directory's history."""
    if etcd is not None:
        publish(etcd, new)
        click.echo(f"published on {etcd.source}")
    keyfiles.save_cluster_ids(directory, [*history, new])
    click.echo(f"cluster ID version {new.version} ({len(new.addresses)} addresses):")
    click.echo(cluster_id_to_text(new))


def _server_list(texts: tuple[str, ...], no_addresses: bool, from_srv: str | None,
                 nameserver: str | None) -> list[ServerAddress]:
    """The addresses given, or read from DNS SRV records (printed, for the operator to check
    before the signed list reaches the nodes)."""
    if from_srv is None:
        return _parse_addresses(texts, no_addresses)
    if texts or no_addresses:
        raise click.UsageError("--from-srv replaces --address and --no-addresses; give one")
    try:
        resolver = resolver_for(nameserver)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--nameserver") from None
    found = lookup_srv_addresses(from_srv, resolver)
    for address in found:
        click.echo(f"from DNS: {format_endpoint(address)}/{address.priority}/{address.weight}")
    return found


def _check_new(directory: Path, parsed: list[ServerAddress]) -> list[ServerAddress]:
    """The addresses, once sure that a cluster may be created in `directory`."""
    if (directory / keyfiles.MASTER_FILE).exists() or \
            (directory / keyfiles.CLUSTER_IDS_FILE).exists():
        raise click.ClickException(f"{directory} already holds a cluster; use another --dir")
    return parsed


def _create(directory: Path, phrase: str, version: int, parsed: list[ServerAddress],
            secret: bytes | None) -> ClusterId:
    master = master_from_phrase(phrase)
    cluster_key = master.cluster_key(version)
    cid = issue_cluster_id(master.signing_key(), cluster_key, parsed, version, version)
    directory.mkdir(parents=True, exist_ok=True)
    keyfiles.save_master(directory, master, secret)
    keyfiles.save_cluster_key(directory, cluster_key, version)
    keyfiles.save_cluster_ids(directory, [cid])
    click.echo(f"cluster master hash: {cid.master_hash.hex()}")
    click.echo(f"cluster ID version {cid.version}:")
    click.echo(cluster_id_to_text(cid))
    if secret is not None:
        click.echo("master.key is encrypted: keep the passphrase apart from the file")
    return cid


@click.group("cluster")
def cluster_group() -> None:
    """Create and manage a cluster's master key, cluster key and cluster ID."""


@cluster_group.command("new")
@DIR_OPTION
@click.option("--seed-phrase-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the 24 recovery words to this file (mode 0600) instead of stdout.")
@click.option("--address", "addresses", multiple=True, metavar="HOST:PORT/PRIO/WEIGHT",
              help="Inter-cluster server address; repeat. IPv6 in [brackets].")
@NO_ADDRESSES_OPTION
@FROM_SRV_OPTION
@NAMESERVER_OPTION
@ENCRYPT_OPTION
@PASSPHRASE_FILE_OPTION
@_friendly
def cluster_new(directory: Path, seed_phrase_out: Path | None, addresses: tuple[str, ...],
                no_addresses: bool, from_srv: str | None, nameserver: str | None,
                encrypt_master: bool, passphrase_file: Path | None) -> None:
    """Generate a cluster from fresh seed words (the words restore it later)."""
    if seed_phrase_out is not None and seed_phrase_out.exists():
        raise click.ClickException(f"{seed_phrase_out} already exists; refusing to overwrite "
                                   "what may be another cluster's seed words")
    parsed = _check_new(directory, _server_list(addresses, no_addresses, from_srv, nameserver))
    secret = passphrase_to_set(passphrase_file, encrypt_master)
    phrase = new_phrase(os.urandom(32))
    if seed_phrase_out is not None:  # the words first: keys without their words are a loss
        keyfiles.write_secret(seed_phrase_out, (phrase + "\n").encode())
    _create(directory, phrase, 1, parsed, secret)
    if seed_phrase_out is not None:
        click.echo(f"seed phrase written to {seed_phrase_out} (mode 0600); store it offline")
    else:
        click.echo("seed phrase (write it down and keep it offline; it IS the cluster):")
        click.echo(phrase)


@cluster_group.command("restore")
@DIR_OPTION
@click.option("--words-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read the seed words from this file (default: stdin).")
@click.option("--version", "version", type=click.IntRange(1, 2**31 - 1), default=1,
              show_default=True,
              help="Cluster-ID version to publish; above every version already published.")
@click.option("--address", "addresses", multiple=True, metavar="HOST:PORT/PRIO/WEIGHT",
              help="Inter-cluster server address of the restored version; repeat.")
@NO_ADDRESSES_OPTION
@FROM_SRV_OPTION
@NAMESERVER_OPTION
@ENCRYPT_OPTION
@PASSPHRASE_FILE_OPTION
@_friendly
def cluster_restore(directory: Path, words_file: Path | None, version: int,
                    addresses: tuple[str, ...], no_addresses: bool, from_srv: str | None,
                    nameserver: str | None, encrypt_master: bool,
                    passphrase_file: Path | None) -> None:
    """Rebuild a cluster's keys from its seed words (same master, same EIDs)."""
    parsed = _check_new(directory, _server_list(addresses, no_addresses, from_srv, nameserver))
    if words_file is not None:
        text = keyfiles.read_secret(words_file).decode("utf-8", "replace")
    else:
        text = sys.stdin.read(4096)
    _create(directory, text, version, parsed, passphrase_to_set(passphrase_file,
                                                                encrypt_master))


@cluster_group.command("rotate-key")
@DIR_OPTION
@PASSPHRASE_FILE_OPTION
@NODE_OPTION
@FORCE_OPTION
@_friendly
def cluster_rotate_key(directory: Path, passphrase_file: Path | None, nodes: tuple[Path, ...],
                       force: bool) -> None:
    """Replace the cluster key (needs master.key); the new version is numbered above the
    live one (every version the nodes recorded)."""
    seen, base, etcd = _next_base(directory, nodes, force)
    master = load_master_asking(directory, passphrase_file)
    new_key = master.cluster_key(base.version + 1)
    new = rotate_cluster_key(base, master.signing_key(), new_key)
    if etcd is not None:  # nothing is written unless the CAS won (the key derives again)
        publish(etcd, new)
        click.echo(f"published on {etcd.source}")
    keyfiles.save_cluster_key(directory, new_key, new.key_version)
    _append_version(directory, list(seen.live.history), new)


@cluster_group.command("encrypt-master")
@DIR_OPTION
@PASSPHRASE_FILE_OPTION
@_friendly
def cluster_encrypt_master(directory: Path, passphrase_file: Path | None) -> None:
    """Encrypt an existing unencrypted master.key with a passphrase, in place."""
    if keyfiles.master_is_encrypted(directory):
        raise click.ClickException(f"{directory / keyfiles.MASTER_FILE} is already encrypted")
    master = keyfiles.load_master(directory)
    keyfiles.save_master(directory, master, passphrase(passphrase_file, confirm=True))
    click.echo(f"{directory / keyfiles.MASTER_FILE}: encrypted (mode 0600)")


@cluster_group.command("set-addresses")
@DIR_OPTION
@click.argument("addresses", nargs=-1, metavar="HOST:PORT/PRIO/WEIGHT...")
@NO_ADDRESSES_OPTION
@FROM_SRV_OPTION
@NAMESERVER_OPTION
@NODE_OPTION
@FORCE_OPTION
@_friendly
def cluster_set_addresses(directory: Path, addresses: tuple[str, ...], no_addresses: bool,
                          from_srv: str | None, nameserver: str | None,
                          nodes: tuple[Path, ...], force: bool) -> None:
    """Publish a new server list (needs only cluster.key); the new version is numbered
    above the live one (every version the nodes recorded)."""
    parsed = _server_list(addresses, no_addresses, from_srv, nameserver)
    key, _ = keyfiles.load_cluster_key(directory)
    seen, base, etcd = _next_base(directory, nodes, force)
    _append_version(directory, list(seen.live.history), change_addresses(base, key, parsed),
                    etcd)


@cluster_group.command("show")
@DIR_OPTION
@NODE_OPTION
@_friendly
def cluster_show(directory: Path, nodes: tuple[Path, ...]) -> None:
    """Print the live cluster ID (the highest verified version: this directory's history
    or a node's record), where it came from, and what each node recorded."""
    seen = _seen(directory, nodes)
    live = seen.live
    where = (f"{directory / HISTORY} (written by this tool)" if live.source == HISTORY
             else live.source)
    click.echo(f"live version {live.cluster_id.version}, from {where}")
    for record in seen.records:
        click.echo(f"recorded: version {record.cluster_id.version} in {record.source}")
    if not seen.records:
        click.echo(f"no node has recorded a version in {directory / PUBLISHED_DIR} (nor via "
                   "--node): running nodes may hold a newer one")
    for version in live.conflicts:
        click.echo(f"conflict: two lists under version {version} (the nodes will issue one "
                   "above both)")
    click.echo("\n".join(dump_cluster_id(live.cluster_id)))
    click.echo(cluster_id_to_text(live.cluster_id))


@click.group("eid")
def eid_group() -> None:
    """Mint, show and verify entity IDs."""


def _persona(symbol: str | None, params_json: str | None) -> Persona | None:
    if symbol is None:
        if params_json is not None:
            raise click.BadParameter("--persona-params needs --persona")
        return None
    params: Value = None
    if params_json is not None:
        try:
            params = json.loads(params_json)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--persona-params") from None
    return Persona(Symbol.parse(symbol), params)


def _numbers(text: str, count: int, what: str) -> list[int]:
    parts = text.split(":")
    if len(parts) != count or not all(p.isdecimal() for p in parts):
        raise click.BadParameter(f"{text!r}: expected {what}")
    return [int(p) for p in parts]


def _hint(text: str) -> OperationHint:
    endpoint, operation, transit, bits = _numbers(text, 4, "EP:OP:CLASS:BITS")
    return OperationHint(endpoint, operation, transit, bits)


@eid_group.command("mint")
@DIR_OPTION
@click.argument("local")
@click.option("--persona", help="Persona class symbol, e.g. /acme/personas/work.")
@click.option("--persona-params", help="Persona parameters as JSON.")
@click.option("--hashes-only", is_flag=True, help="Carry key hashes instead of full keys.")
@click.option("--full-keys", is_flag=True,
              help="Carry full keys even if the cluster's mint defaults say hashes.")
@click.option("--no-cert", is_flag=True, help="Leave out the master certificate.")
@click.option("--no-hints", is_flag=True,
              help="Leave out the hints and algorithms of the cluster's mint defaults.")
@click.option("--hint", "hints", multiple=True, metavar="EP:OP:CLASS:BITS",
              help="Operation hint (endpoint, operation, transit class, hashcash bits).")
@click.option("--algorithm", "algorithms", multiple=True, metavar="ID:CLEARANCE",
              help="Accepted encryption algorithm and its clearance (required with --hint).")
@NODE_OPTION
@_friendly
def eid_mint(*, directory: Path, local: str, persona: str | None, persona_params: str | None,
             hashes_only: bool, full_keys: bool, no_cert: bool, no_hints: bool,
             hints: tuple[str, ...], algorithms: tuple[str, ...],
             nodes: tuple[Path, ...]) -> None:
    """Mint an EID for the cluster-local name LOCAL under the live cluster ID (the one
    `cluster show` prints: so it lists the addresses the nodes publish now), in the form of
    the cluster's mint-defaults.yaml (if any) unless a flag says otherwise."""
    if hashes_only and full_keys:
        raise click.UsageError("--hashes-only contradicts --full-keys")
    if no_hints and (hints or algorithms):
        raise click.UsageError("--no-hints contradicts --hint / --algorithm")
    key, _ = keyfiles.load_cluster_key(directory)
    current = _seen(directory, nodes).live.cluster_id
    eid = mint_eid(
        key, current, local.encode("utf-8"), persona=_persona(persona, persona_params),
        hints=[_hint(h) for h in hints] or None,
        algorithms=[AcceptedAlgorithm(*_numbers(a, 2, "ID:CLEARANCE"))
                    for a in algorithms] or None,
        options=MintOptions(full_keys=_choice(full_keys, hashes_only),
                            include_cert=False if no_cert else None,
                            include_hints=False if no_hints else None),
        defaults=load_mint_defaults(directory))
    click.echo(eid_to_text(eid))


def _choice(yes: bool, no: bool) -> bool | None:
    """A flag pair's answer, or None to leave it to the cluster's mint defaults."""
    return True if yes else False if no else None


@eid_group.command("show")
@click.argument("text")
@_friendly
def eid_show(text: str) -> None:
    """Print every field of an EID given as meid1... text (no verification)."""
    click.echo(dump_eid(_decode(text)))


def _decode(text: str) -> Eid:
    try:
        return Eid.decode(eid_from_text(text))
    except CodecError as exc:
        raise IdentityError(f"EID bytes are not valid canonical CBOR: {exc.message}") from None


@eid_group.command("verify")
@click.argument("text")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Also use the keys of the cluster in this directory.")
@click.option("--cluster-id", "cluster_ids", multiple=True, metavar="MCID1...",
              help="A signed cluster ID (text form) supplying keys; repeat for several.")
@_friendly
def eid_verify(text: str, directory: Path | None, cluster_ids: tuple[str, ...]) -> None:
    """Verify an EID; exit 0 only when the chain reaches the master hash."""
    verifier = EidVerifier()
    if directory is not None:
        for cid in keyfiles.load_cluster_ids(directory):
            verifier.add_cluster_id(cid)
    for cid_text in cluster_ids:
        try:
            verifier.add_cluster_id(cluster_id_from_text(cid_text))
        except CodecError as exc:
            raise IdentityError(f"--cluster-id is not a cluster ID: {exc.message}") from None
    result = verifier.verify(_decode(text))
    click.echo(f"level: {result.level.name}")
    click.echo(f"principal: {result.principal.short()}")
    click.echo(f"cluster master hash: {result.principal.cluster.hex()}")
    if result.level is not Level.MASTER_MATCHES_HASH:
        click.echo(f"not fully verified: missing {result.missing}", err=True)
        sys.exit(EXIT_NOT_PROVEN)


COMMANDS: list[click.Command] = [cluster_group, eid_group]
