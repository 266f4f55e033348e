#!/usr/bin/env bash
# The whole test suite (README's second command). As root on Debian (CI), it first starts
# a real single-node SLURM cluster for tests/test_slurm.py and stops it afterwards;
# elsewhere the SLURM tests are skipped with a reason. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
started=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v cc >/dev/null; then
  # the C kernels (physml.native) and their tests need a C compiler
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  if bash tests/cluster/start_slurm.sh; then
    started=1
  elif [ "${PHYSML_REQUIRE_SLURM:-0}" = 1 ]; then
    echo "tests/run.sh: the SLURM test cluster did not start" >&2
    exit 1
  fi
fi
.venv/bin/pytest -n 2 --dist loadfile "$@"
rc=$?
[ "$started" = 1 ] && bash tests/cluster/stop_slurm.sh
exit "$rc"
