"""Files the tools read from directories others may write are bounded and never block."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mercury_rt.cli.node_pidfile import EXIT_FILE, last_exit
from mercury_rt.config import keyfiles


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "admin.json"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file"):
        keyfiles.read_regular(fifo, 100)


def test_a_file_over_the_bound_is_refused_not_truncated(tmp_path: Path) -> None:
    path = tmp_path / "record"
    path.write_bytes(b"x" * 101)
    with pytest.raises(ValueError, match="larger than 100 bytes"):
        keyfiles.read_regular(path, 100)
    path.write_bytes(b"x" * 100)
    assert keyfiles.read_regular(path, 100) == b"x" * 100


def test_last_exit_ignores_a_planted_fifo_or_huge_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / EXIT_FILE)
    assert last_exit(tmp_path) is None
    (tmp_path / EXIT_FILE).unlink()
    (tmp_path / EXIT_FILE).write_text('{"status": 0, "pad": "' + "x" * 10_000 + '"}')
    assert last_exit(tmp_path) is None
    (tmp_path / EXIT_FILE).write_text('{"status": 0}')
    assert last_exit(tmp_path) == {"status": 0}
