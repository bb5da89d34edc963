"""The `cluster` and `eid` CLI verbs, end to end through click's CliRunner."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner, Result

from mercury_rt.cli.main import cli

WORDS = ("legal winner thank year wave sausage worth useful legal winner thank year wave "
         "sausage worth useful legal winner thank year wave sausage worth title")


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin)


def last_line(result: Result) -> str:
    return result.output.strip().splitlines()[-1]


def test_new_mint_show_verify_rotate(tmp_path: Path) -> None:
    """The whole operator flow works and old EIDs keep verifying after a rotation."""
    d = str(tmp_path / "c")
    words_file = tmp_path / "words.txt"
    new = run("cluster", "new", "--dir", d, "--seed-phrase-out", str(words_file),
              "--address", "192.0.2.1:7000/10/5", "--address", "[2001:db8::1]:7000/10/5")
    assert new.exit_code == 0, new.output
    assert stat.S_IMODE(words_file.stat().st_mode) == 0o600
    assert len(words_file.read_text().split()) == 24
    minted = run("eid", "mint", "--dir", d, "alice", "--persona", "/acme/work",
                 "--persona-params", '{"team": "ops"}', "--hint", "0:1:2:10",
                 "--algorithm", "1:2")
    assert minted.exit_code == 0, minted.output
    text = last_line(minted)
    shown = run("eid", "show", text)
    assert shown.exit_code == 0 and "/acme/work" in shown.output
    verified = run("eid", "verify", text)
    assert verified.exit_code == 0 and "MASTER_MATCHES_HASH" in verified.output
    assert run("cluster", "rotate-key", "--dir", d, "--force").exit_code == 0
    assert run("cluster", "set-addresses", "--dir", d, "--force",
               "10.0.0.1:7000/1/1").exit_code == 0
    assert "version: 3" in run("cluster", "show", "--dir", d).output
    assert run("eid", "verify", text, "--dir", d).exit_code == 0
    hashed = last_line(run("eid", "mint", "--dir", d, "bob", "--hashes-only"))
    alone = run("eid", "verify", hashed)
    assert alone.exit_code == 3 and "UNVERIFIABLE_UNTIL_KEYS_FETCHED" in alone.output
    assert run("eid", "verify", hashed, "--dir", d).exit_code == 0
    current = last_line(run("cluster", "show", "--dir", d))
    assert current.startswith("mcid1")
    assert run("eid", "verify", hashed, "--cluster-id", current).exit_code == 0
    bad = run("eid", "verify", hashed, "--cluster-id", "mcid1" + current[6:])
    assert bad.exit_code == 1 and "BAD_EID_TEXT" in bad.output


def test_restore_from_words_gives_same_eids(tmp_path: Path) -> None:
    """Same words (stdin or file) -> same cluster -> byte-identical EIDs."""
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    restored = run("cluster", "restore", "--dir", one, "--no-addresses", stdin=WORDS + "\n")
    assert restored.exit_code == 0
    words = tmp_path / "w"
    words.write_text(WORDS)
    words.chmod(0o600)
    assert run("cluster", "restore", "--dir", two, "--no-addresses", "--words-file",
               str(words)).exit_code == 0
    eid_one = last_line(run("eid", "mint", "--dir", one, "alice"))
    eid_two = last_line(run("eid", "mint", "--dir", two, "alice"))
    assert eid_one == eid_two


def test_bad_inputs_exit_non_zero_with_clear_errors(tmp_path: Path) -> None:
    """Each bad input gives a coded error message and a non-zero status."""
    d = str(tmp_path / "c")
    assert run("cluster", "new", "--dir", d, "--no-addresses").exit_code == 0
    bad_words = WORDS.rsplit(" ", 1)[0] + " abandon"
    text = last_line(run("eid", "mint", "--dir", d, "alice"))
    cases = [
        (("cluster", "new", "--dir", d, "--no-addresses"), "already holds a cluster"),
        (("cluster", "new", "--dir", str(tmp_path / "n"), "--no-addresses", "--seed-phrase-out",
          str(tmp_path / "c" / "master.key")), "refusing to overwrite"),
        (("cluster", "restore", "--dir", str(tmp_path / "r"), "--no-addresses"),
         "BAD_SEED_PHRASE"),
        (("cluster", "set-addresses", "--dir", d, "1.2.3.4:80"), "BAD_SERVER_ADDRESS"),
        (("cluster", "set-addresses", "--dir", d, "::1:80/1/1"), "brackets"),
        (("cluster", "rotate-key", "--dir", str(tmp_path / "none")), "KEY_FILE_MISSING"),
        (("eid", "show", "meid2" + text[5:]), "BAD_EID_TEXT_PREFIX"),
        (("eid", "show", text[:-3] + "zzz"), "BAD_EID_TEXT_CHECKSUM"),
        (("eid", "verify", text[:12] + "!" + text[13:]), "BAD_EID_TEXT_CHARACTER"),
        (("eid", "mint", "--dir", d, "x", "--persona", "Bad"), "must start with '/'"),
        (("eid", "mint", "--dir", d, "x", "--hint", "1:2:3:4"), "HINTS_WITHOUT_ALGORITHMS"),
        (("eid", "mint", "--dir", d, "x", "--hint", "1:2"), "EP:OP:CLASS:BITS"),
        (("eid", "mint", "--dir", d, "x" * 300), "FIELD_TOO_LARGE"),
    ]
    for args, needle in cases:
        stdin = bad_words if args[1] == "restore" else None
        result = run(*args, stdin=stdin)
        assert result.exit_code != 0, args
        assert needle in result.output, (args, result.output)


def test_world_readable_master_key_refused(tmp_path: Path) -> None:
    """rotate-key refuses a master key others can read, naming the chmod."""
    d = tmp_path / "c"
    assert run("cluster", "new", "--dir", str(d), "--no-addresses").exit_code == 0
    (d / "master.key").chmod(0o644)
    result = run("cluster", "rotate-key", "--dir", str(d), "--force")
    assert result.exit_code == 1 and f"chmod 600 {d / 'master.key'}" in result.output


def test_new_cluster_is_not_created_when_its_words_cannot_be_written(tmp_path: Path) -> None:
    """The seed words are written before any key: an unwritable words file is a coded
    error naming that file (not a temporary one) and leaves no cluster behind whose words
    were never shown, so a retry works (issue 16 item 7)."""
    d = tmp_path / "c"
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    words = blocker / "words.txt"
    failed = run("cluster", "new", "--dir", str(d), "--no-addresses", "--seed-phrase-out",
                 str(words))
    assert failed.exit_code == 1
    assert f"error 326 KEY_FILE_UNWRITABLE: {words}: cannot write" in failed.output
    assert ".tmp" not in failed.output
    assert not (d / "master.key").exists()
    blocker.unlink()
    retried = run("cluster", "new", "--dir", str(d), "--no-addresses", "--seed-phrase-out",
                  str(words))
    assert retried.exit_code == 0, retried.output
    assert len(words.read_text().split()) == 24


def test_seed_words_go_into_a_directory_created_for_them(tmp_path: Path) -> None:
    words = tmp_path / "missing" / "deeper" / "words.txt"
    result = run("cluster", "new", "--dir", str(tmp_path / "c"), "--no-addresses",
                 "--seed-phrase-out",
                 str(words))
    assert result.exit_code == 0, result.output
    assert len(words.read_text().split()) == 24
    assert stat.S_IMODE(words.stat().st_mode) == 0o600
    assert stat.S_IMODE(words.parent.stat().st_mode) & 0o077 == 0


def test_hint_numbers_must_be_plain_digits(tmp_path: Path) -> None:
    """A superscript digit passes str.isdigit but not int(): a usage error, not a crash."""
    d = str(tmp_path / "c")
    assert run("cluster", "new", "--dir", d, "--no-addresses").exit_code == 0
    result = run("eid", "mint", "--dir", d, "x", "--hint", "\u00b2:1:2:3", "--algorithm", "1:2")
    assert result.exit_code == 2 and "EP:OP:CLASS:BITS" in result.output
