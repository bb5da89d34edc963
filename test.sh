#!/usr/bin/env bash
# Installs everything into .venv (if missing) and runs lint, types, the whole test suite and,
# with no arguments, a smoke run of the path benchmark.
# What it installs, and says so as it does:
#   * .venv with mercury-rt and its test tools (pip: the `test` extra of pyproject.toml),
#     and the C envelope codec if a C compiler works (setup.py; MERCURY_PURE=1: none);
#   * the Debian `hashcash` command (apt-get), only if it is missing, apt-get exists and
#     MERCURY_NO_APT is unset: the interop tests check our stamps against that independent
#     implementation, and are skipped (with a note) without it;
#   * the Debian `etcd-server` and `etcd-client` packages (apt-get), only if `etcd` is
#     missing, apt-get exists and MERCURY_NO_APT is unset: the replication tests start
#     their own 3-member etcd and fail without it (they are skipped only under
#     MERCURY_NO_APT).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  echo "test.sh: creating .venv (python3 -m venv)"
  python3 -m venv .venv
fi
echo "test.sh: installing mercury-rt and its test tools into .venv (pip install -e '.[test]')," \
     "building the C envelope codec where a C compiler works (MERCURY_PURE=1 skips it)"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/python -c 'from mercury_rt.core.transport import fastwire
print("test.sh: transport envelope codec:", "C accelerator" if fastwire.native else
      "pure Python (no C compiler, MERCURY_PURE set, or a stale build: see above)")'
if [ -z "${MERCURY_NO_APT:-}" ] && ! command -v hashcash >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  echo "test.sh: installing the Debian hashcash tool (apt-get install hashcash) for the" \
       "stamp interop tests; set MERCURY_NO_APT=1 to skip"
  { apt-get update -qq && apt-get install -y -qq hashcash; } >/dev/null 2>&1 \
    || echo "test.sh: note: apt-get could not install hashcash; its interop tests will be skipped"
fi
if [ -z "${MERCURY_NO_APT:-}" ] && ! command -v etcd >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1; then
  echo "test.sh: installing the Debian etcd-server and etcd-client packages (apt-get" \
       "install) for the replication tests; set MERCURY_NO_APT=1 to skip"
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      etcd-server etcd-client; } >/dev/null 2>&1 \
    || echo "test.sh: note: apt-get could not install etcd; the replication tests will fail"
fi
.venv/bin/ruff check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
if [ $# -eq 0 ]; then
  echo "test.sh: smoke run of the path benchmark (it checks every path runs and its table prints; nothing about speed)"
  .venv/bin/python bench/bench_paths.py --smoke
fi
