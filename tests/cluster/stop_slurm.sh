#!/usr/bin/env bash
# Stop the test cluster that start_slurm.sh started: cancel its jobs, stop slurmd, slurmctld,
# slurmdbd, MariaDB and munged (each only if start_slurm.sh recorded starting it), and remove
# the /etc/slurm/slurm.conf link.  The state under $PHYSML_SLURM_DIR is kept so that the next
# start is quick; `stop_slurm.sh --purge` deletes it too.  Safe to run when nothing is up.
set -uo pipefail

STATE=${PHYSML_SLURM_DIR:-/var/lib/physml-slurm}
CONF=$STATE/etc/slurm.conf
ETC_LINK=/etc/slurm/slurm.conf
export SLURM_CONF=$CONF

say() { echo "stop_slurm: $*"; }
START=$SECONDS

# stop NAME: SIGTERM the pid recorded in $STATE/run/NAME.pid, wait up to 30 s, then SIGKILL
stop() {
    local f=$STATE/run/$1.pid pid
    [ -s "$f" ] || return 0
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$pid" 2>/dev/null; then
            say "$1 (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid"
        fi
        say "stopped $1 (pid $pid)"
    fi
    rm -f "$f"
}

if [ -s "$STATE/run/slurmctld.pid" ] && kill -0 "$(cat "$STATE/run/slurmctld.pid")" 2>/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
        say "cancelling jobs $jobs"
        # shellcheck disable=SC2086
        scancel $jobs
        for _ in $(seq 30); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
fi

stop slurmd
stop slurmctld
stop slurmdbd
stop mariadb
stop munged

if [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" = "$CONF" ]; then
    rm -f "$ETC_LINK"
    say "removed $ETC_LINK"
fi
if [ "${1:-}" = --purge ]; then
    rm -rf "$STATE"
    say "deleted $STATE"
fi
say "done in $((SECONDS - START))s"
