"""Where the CLI gets the passphrase of an encrypted master.key.

In this order: `--passphrase-file F` (a 0600 file, like the key files; its first line),
then the environment variable MERCURY_PASSPHRASE, then a hidden prompt on the terminal.
Never a command-line argument: it would land in shell history and in `ps`. Automation uses
the file or the variable; an operator at a terminal is asked. Only the verbs that touch the
master key ask (`cluster new`, `restore`, `rotate-key`, `encrypt-master`): nodes never
need master.key.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from carbon.error_codes import ErrorCode
from mercury_rt.config import keyfiles
from mercury_rt.core.identity import KeyFileError, MasterSecret

PASSPHRASE_ENV = "MERCURY_PASSPHRASE"
PASSPHRASE_FILE_OPTION = click.option(
    "--passphrase-file", type=click.Path(dir_okay=False, path_type=Path),
    help=f"Read master.key's passphrase from this 0600 file (else ${PASSPHRASE_ENV}, else a "
         "prompt).")


def read_passphrase_file(path: Path) -> bytes:
    """The first line of a passphrase file, refused like a key file if others can read it."""
    return keyfiles.read_secret(path).split(b"\n", 1)[0].removesuffix(b"\r")


def passphrase(file: Path | None, *, confirm: bool) -> bytes:
    """A passphrase from the file, the environment, or the terminal (asked twice when
    `confirm`, for a new one: a typo would lock the master key away for good)."""
    if file is not None:
        return read_passphrase_file(file)
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env is not None:
        return from_env.encode()
    try:
        typed: str = click.prompt("master.key passphrase", hide_input=True,
                                  confirmation_prompt=confirm)
    except click.Abort:
        raise KeyFileError(f"no passphrase given: use --passphrase-file or ${PASSPHRASE_ENV}",
                           ErrorCode.KEY_FILE_PASSPHRASE) from None
    return typed.encode()


def passphrase_to_set(file: Path | None, encrypt: bool) -> bytes | None:
    """The passphrase to encrypt a new master.key with, or None to write it in the clear."""
    if file is None and not encrypt:
        return None
    return passphrase(file, confirm=True)


def load_master_asking(directory: Path, file: Path | None) -> MasterSecret:
    """master.key, asking for its passphrase only if it is encrypted."""
    if not keyfiles.master_is_encrypted(directory):
        return keyfiles.load_master(directory)
    return keyfiles.load_master(directory, passphrase(file, confirm=False))
