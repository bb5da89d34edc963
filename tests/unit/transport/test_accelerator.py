"""A C accelerator runs only when it was built from the sources beside it.

With an editable install the compiled `.so` sits beside fastwire.py, and Python would
import it whatever happened to the sources since; these tests hold the guard to its
promise: an edited source (C or Python) means the pure-Python code runs, with a warning
saying what to run; MERCURY_PURE=1 means pure Python, silently; no build means pure
Python, silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mercury_rt.core.transport import accelerator, fastwire
from tests.import_graph_support import ROOT

FAKE = "fake_accelerator_for_tests"


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in 'extension' (a module with SOURCE_SHA256) built from two sources."""
    (tmp_path / "codec.c").write_text("/* C */\n")
    (tmp_path / "codec.py").write_text("# Python\n")
    digest = accelerator.source_digest([tmp_path / "codec.c", tmp_path / "codec.py"])
    (tmp_path / f"{FAKE}.py").write_text(f"SOURCE_SHA256 = {digest!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(accelerator, "HERE", tmp_path)
    monkeypatch.setitem(accelerator.ACCELERATED, FAKE, ("codec.c", "codec.py"))
    monkeypatch.delenv(accelerator.PURE_ENV, raising=False)
    monkeypatch.delitem(sys.modules, FAKE, raising=False)
    return tmp_path


def test_a_build_of_the_current_sources_is_used(fake_build: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = accelerator.load(FAKE)
    assert module is not None and module.__name__ == FAKE


@pytest.mark.parametrize("edited", ["codec.c", "codec.py"])
def test_an_edited_source_means_pure_python_and_a_warning_naming_the_rebuild(
        fake_build: Path, edited: str) -> None:
    with (fake_build / edited).open("a") as source:
        source.write("# edited, not rebuilt\n")
    with pytest.warns(RuntimeWarning, match=r"stale .*pip install -e \."):
        assert accelerator.load(FAKE) is None


def test_mercury_pure_means_pure_python_without_a_warning(
        fake_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accelerator.PURE_ENV, "1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert accelerator.load(FAKE) is None


def test_no_build_means_pure_python_without_a_warning(
        fake_build: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(accelerator.ACCELERATED, "no_such_accelerator", ("codec.c",))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert accelerator.load("no_such_accelerator") is None


BUILT = sorted((ROOT / "mercury_rt" / "core" / "transport").glob("_fastwire.*.so"))


def _codec_in_a_copy(tmp_path: Path, edit: bool) -> subprocess.CompletedProcess[str]:
    """Which read_request a fresh interpreter uses from a copy of this tree's packages
    (the built .so included), fastwire.py edited in the copy or not."""
    for package in ("carbon", "mercury_rt"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    if edit:
        with (tmp_path / "mercury_rt/core/transport/fastwire.py").open("a") as source:
            source.write("EDITED_AFTER_THE_BUILD = True\n")
    return subprocess.run(
        [sys.executable, "-c", "from mercury_rt.core.transport import fastwire as f; "
         "print(type(f.read_request).__name__, hasattr(f, 'EDITED_AFTER_THE_BUILD'))"],
        cwd=tmp_path, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=True)


@pytest.mark.skipif(not BUILT or bool(os.environ.get(accelerator.PURE_ENV)),
                    reason="no C accelerator built in this tree, or MERCURY_PURE is set")
def test_the_real_build_is_used_until_fastwire_py_is_edited(tmp_path: Path) -> None:
    assert isinstance(fastwire.read_request, type(len)), \
        "this tree's C accelerator is stale: rebuild it with `pip install -e .`"
    fresh = _codec_in_a_copy(tmp_path / "fresh", edit=False)
    assert (fresh.stdout.split(), fresh.stderr) == (["builtin_function_or_method", "False"], "")
    stale = _codec_in_a_copy(tmp_path / "stale", edit=True)
    assert stale.stdout.split() == ["function", "True"]
    assert "stale" in stale.stderr and "pip install -e ." in stale.stderr
