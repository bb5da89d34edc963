"""master.key encrypted with a passphrase, and cluster IDs refused without addresses
(issue 14 item 10), through the CLI as an operator runs it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mercury_rt.cli.main import cli
from mercury_rt.config import keyfiles

WORDS = ("legal winner thank year wave sausage worth useful legal winner thank year wave "
         "sausage worth useful legal winner thank year wave sausage worth title")
ADDRESS = "192.0.2.1:7000/10/5"


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, env=env)


def secret_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, Path]:
    """A cluster whose master.key is encrypted under the phrase in a 0600 file."""
    pass_file = secret_file(tmp_path / "pass", "correct horse battery staple")
    d = tmp_path / "c"
    result = run("cluster", "new", "--dir", str(d), "--address", ADDRESS,
                 "--passphrase-file", str(pass_file))
    assert result.exit_code == 0, result.output
    assert "master.key is encrypted" in result.output
    return d, pass_file


def test_encrypted_master_is_0600_and_holds_no_key_in_clear(sealed: tuple[Path, Path]) -> None:
    d, _ = sealed
    path = d / keyfiles.MASTER_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyfiles.master_is_encrypted(d)
    master = keyfiles.load_master(d, b"correct horse battery staple")
    data = path.read_bytes()
    assert master.private not in data and master.chain_code not in data


def test_rotate_key_with_the_passphrase_from_file_env_or_prompt(sealed: tuple[Path, Path]) -> None:
    """Each source of the passphrase works and the rotation happens."""
    d, pass_file = sealed
    by_file = run("cluster", "rotate-key", "--dir", str(d), "--force", "--passphrase-file",
                  str(pass_file))
    assert by_file.exit_code == 0, by_file.output
    by_env = run("cluster", "rotate-key", "--dir", str(d), "--force",
                 env={"MERCURY_PASSPHRASE": "correct horse battery staple"})
    assert by_env.exit_code == 0, by_env.output
    by_prompt = run("cluster", "rotate-key", "--dir", str(d), "--force",
                    stdin="correct horse battery staple\n")
    assert by_prompt.exit_code == 0, by_prompt.output
    assert "version: 4" in run("cluster", "show", "--dir", str(d)).output


def test_wrong_or_missing_passphrase_is_a_coded_error_and_changes_nothing(
        sealed: tuple[Path, Path], tmp_path: Path) -> None:
    d, _ = sealed
    before = (d / keyfiles.CLUSTER_IDS_FILE).read_bytes()
    wrong = run("cluster", "rotate-key", "--dir", str(d), "--force", "--passphrase-file",
                str(secret_file(tmp_path / "wrong", "incorrect horse")))
    assert wrong.exit_code == 1
    assert "error 327 KEY_FILE_PASSPHRASE" in wrong.output and "wrong passphrase" in wrong.output
    missing = run("cluster", "rotate-key", "--dir", str(d), "--force", stdin="")
    assert missing.exit_code == 1 and "error 327 KEY_FILE_PASSPHRASE" in missing.output
    assert "--passphrase-file" in missing.output
    assert (d / keyfiles.CLUSTER_IDS_FILE).read_bytes() == before


def test_a_passphrase_file_others_can_read_is_refused(tmp_path: Path) -> None:
    loose = tmp_path / "pass"
    loose.write_text("secret\n")
    loose.chmod(0o644)
    result = run("cluster", "new", "--dir", str(tmp_path / "c"), "--address", ADDRESS,
                 "--passphrase-file", str(loose))
    assert result.exit_code == 1 and "KEY_FILE_PERMISSIONS" in result.output
    assert not (tmp_path / "c").exists()


def test_restore_encrypted_gives_the_same_cluster(tmp_path: Path) -> None:
    """Encrypting changes the file, not the keys: same master hash, same EIDs."""
    plain, sealed_dir = tmp_path / "plain", tmp_path / "sealed"
    assert run("cluster", "restore", "--dir", str(plain), "--address", ADDRESS,
               stdin=WORDS).exit_code == 0
    restored = run("cluster", "restore", "--dir", str(sealed_dir), "--address", ADDRESS,
                   "--encrypt-master", stdin=WORDS, env={"MERCURY_PASSPHRASE": "pw"})
    assert restored.exit_code == 0, restored.output
    assert keyfiles.load_master(sealed_dir, b"pw") == keyfiles.load_master(plain)
    mint = [run("eid", "mint", "--dir", str(x), "alice").output for x in (plain, sealed_dir)]
    assert mint[0] == mint[1]


def test_new_prompts_twice_for_a_new_passphrase(tmp_path: Path) -> None:
    d = tmp_path / "c"
    mistyped = run("cluster", "new", "--dir", str(d), "--address", ADDRESS, "--encrypt-master",
                   stdin="one\ntwo\none\none\n")
    assert mistyped.exit_code == 0, mistyped.output
    assert "do not match" in mistyped.output
    assert keyfiles.load_master(d, b"one").chain_code


def test_encrypt_master_of_an_existing_cluster(tmp_path: Path) -> None:
    d = tmp_path / "c"
    assert run("cluster", "new", "--dir", str(d), "--address", ADDRESS).exit_code == 0
    master = keyfiles.load_master(d)
    done = run("cluster", "encrypt-master", "--dir", str(d), env={"MERCURY_PASSPHRASE": "pw"})
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE((d / keyfiles.MASTER_FILE).stat().st_mode) == 0o600
    assert keyfiles.load_master(d, b"pw") == master
    again = run("cluster", "encrypt-master", "--dir", str(d), env={"MERCURY_PASSPHRASE": "pw"})
    assert again.exit_code == 1 and "already encrypted" in again.output


@pytest.mark.parametrize("verb", ["new", "restore"])
def test_no_address_is_refused_unless_asked_for(tmp_path: Path, verb: str) -> None:
    """A cluster ID listing no server makes unreachable EIDs: refused (exit 2, saying
    what to do) and nothing written, unless --no-addresses says it is meant."""
    d = tmp_path / "c"
    refused = run("cluster", verb, "--dir", str(d), stdin=WORDS)
    assert refused.exit_code == 2
    assert "--address HOST:PORT/PRIO/WEIGHT" in refused.output
    assert "--no-addresses" in refused.output
    assert not d.exists()
    meant = run("cluster", verb, "--dir", str(d), "--no-addresses", stdin=WORDS)
    assert meant.exit_code == 0, meant.output
    assert "(0 addresses)" in run("cluster", "set-addresses", "--dir", str(d),
                                  "--force", "--no-addresses").output
    both = run("cluster", verb, "--dir", str(tmp_path / "d"), "--no-addresses", "--address",
               ADDRESS, stdin=WORDS)
    assert both.exit_code == 2 and "contradicts" in both.output


def test_set_addresses_without_any_is_refused(tmp_path: Path) -> None:
    d = tmp_path / "c"
    assert run("cluster", "new", "--dir", str(d), "--address", ADDRESS).exit_code == 0
    refused = run("cluster", "set-addresses", "--dir", str(d))
    assert refused.exit_code == 2 and "--no-addresses" in refused.output
    assert "version: 1" in run("cluster", "show", "--dir", str(d)).output
