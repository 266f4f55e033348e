#!/usr/bin/env bash
# The whole test suite (README's second command); extra arguments go to pytest.
#
# PHYSML_REQUIRE_SLURM=1 (set by .ci/run) asks for the SLURM tests: as root on Debian it first
# installs and starts a real single-node SLURM cluster (tests/cluster/start_slurm.sh: apt
# packages, MariaDB, /etc/slurm/slurm.conf) for tests/test_slurm.py, stops it afterwards, and
# fails if it cannot. Without it nothing is installed or started, and the SLURM tests are
# skipped with the reason. As root, a missing C compiler (for the C kernels, physml.native,
# and their tests) is installed with apt either way.
set -uo pipefail
cd "$(dirname "$0")/.."
started=0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v cc >/dev/null; then
  echo "tests/run.sh: installing gcc for the C kernels" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
fi
if [ "${PHYSML_REQUIRE_SLURM:-0}" = 1 ]; then
  if ! { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }; then
    echo "tests/run.sh: PHYSML_REQUIRE_SLURM=1 needs root and apt-get (Debian) for the SLURM test cluster" >&2
    exit 1
  fi
  bash tests/cluster/start_slurm.sh || { echo "tests/run.sh: the SLURM test cluster did not start" >&2; exit 1; }
  started=1
fi
.venv/bin/pytest -n 2 --dist loadfile "$@"
rc=$?
[ "$started" = 1 ] && bash tests/cluster/stop_slurm.sh
exit "$rc"
