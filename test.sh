#!/usr/bin/env bash
# Installs everything into .venv (if missing) and runs lint, types, the whole test suite and,
# with no arguments, a smoke run of the path benchmark.
# What it installs, and says so as it does:
#   * .venv with mercury-rt and its test tools (pip: the `test` extra of pyproject.toml);
#   * the Debian `hashcash` command (apt-get), only if it is missing, apt-get exists and
#     MERCURY_NO_APT is unset: the interop tests check our stamps against that independent
#     implementation, and are skipped (with a note) without it.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  echo "test.sh: creating .venv (python3 -m venv)"
  python3 -m venv .venv
fi
echo "test.sh: installing mercury-rt and its test tools into .venv (pip install -e '.[test]')"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
if [ -z "${MERCURY_NO_APT:-}" ] && ! command -v hashcash >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  echo "test.sh: installing the Debian hashcash tool (apt-get install hashcash) for the" \
       "stamp interop tests; set MERCURY_NO_APT=1 to skip"
  { apt-get update -qq && apt-get install -y -qq hashcash; } >/dev/null 2>&1 \
    || echo "test.sh: note: apt-get could not install hashcash; its interop tests will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
  echo "test.sh: smoke run of the path benchmark (it checks every path runs and its table prints; nothing about speed)"
  .venv/bin/python bench/bench_paths.py --smoke
fi
