#!/usr/bin/env bash
# Throwaway single-node SLURM cluster for tests/test_slurm.py.
#
#   tests/start_slurm.sh start   install (if missing), configure, start, wait until idle
#   tests/start_slurm.sh stop    cancel jobs, stop the daemons this script started
#
# The configuration goes to /etc/slurm/slurm.conf, not to a $SLURM_CONF elsewhere:
# snakemake-executor-plugin-slurm-jobstep 0.6 drops SLURM_CONF from the environment of
# the srun it starts inside each job, so only the default location works. A foreign
# slurm.conf there is never overwritten (exit 77). Spool, state, logs and pid files live
# in $FM_SLURM_DIR (default /tmp/fourier-masks-slurm). Idempotent: a running cluster is
# reused. Exit status 77: no cluster is possible here (not root, no apt, a foreign
# slurm.conf; the caller skips); 1: the cluster is broken (the caller fails).
set -euo pipefail

action=${1:-start}
dir=${FM_SLURM_DIR:-/tmp/fourier-masks-slurm}
conf=/etc/slurm/slurm.conf
gres_conf=/etc/slurm/gres.conf
marker="# Written by fourier-masks tests/start_slurm.sh"
ours() { [[ -f $conf ]] && head -1 "$conf" | grep -qxF "$marker"; }

unavailable() { echo "start_slurm.sh: $*" >&2; exit 77; }
broken() {
    echo "start_slurm.sh: $*" >&2
    tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
    exit 1
}

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_daemon() {
    local pidfile=$1 pid
    alive "$pidfile" || return 0
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
}

if [[ $action == stop ]]; then
    if ours && command -v scancel >/dev/null; then
        scancel --user "$(id -un)" 2>/dev/null || true
    fi
    stop_daemon "$dir/slurmd.pid"
    stop_daemon "$dir/slurmctld.pid"
    stop_daemon "$dir/munged.pid"   # only exists if this script started munged
    if ours; then rm -f "$conf" "$gres_conf"; fi
    exit 0
fi
[[ $action == start ]] || { echo "usage: $0 start|stop" >&2; exit 2; }
[[ $(id -u) == 0 ]] || unavailable "a test cluster needs root (daemons, /etc/slurm, apt)"

# --- install --------------------------------------------------------------------
need=(sbatch squeue sinfo scontrol slurmctld slurmd munged)
missing() { for c in "${need[@]}"; do command -v "$c" >/dev/null || return 0; done; return 1; }
if missing; then
    command -v apt-get >/dev/null || unavailable "SLURM is not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    pkgs=(slurm-wlm munge)
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1 &&
          apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null 2>&1; } ||
        unavailable "apt-get install ${pkgs[*]} failed"
    missing && unavailable "still missing after install: ${need[*]}"
fi

[[ -e $conf ]] && ! ours && unavailable "$conf exists and was not written by this script"
mkdir -p "$dir"/{state,spool,log} "$(dirname "$conf")"

# --- munge ------------------------------------------------------------------------
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    if [[ ! -s /etc/munge/munge.key ]]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged || broken "munged failed to start"
    else
        munged --force || broken "munged failed to start"
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null || broken "munge does not authenticate"
    cp /run/munge/munged.pid "$dir/munged.pid"   # so that `stop` stops only what we started
fi

# --- configure and start ------------------------------------------------------------
host=$(hostname -s)
# The node claims at least 8 CPUs and 64 GB (SlurmdParameters=config_overrides keeps it
# in service) so that the workflow's real requests fit and tiny jobs do not queue behind
# each other; nothing enforces them here (task/none, no cgroups).
cpus=$(nproc); (( cpus >= 8 )) || cpus=8
mem_mb=$(awk '/MemTotal/ {m = int($2 / 1024); print (m > 65536 ? m : 65536)}' /proc/meminfo)
if ! alive "$dir/slurmctld.pid"; then
    cat >"$conf" <<EOF
$marker
ClusterName=fourier-masks-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${FM_SLURMCTLD_PORT:-6917}
SlurmdPort=${FM_SLURMD_PORT:-6918}
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Schedule within a second or two of a submission or a finished job.
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=2,sched_min_interval=100000
ReturnToService=2
SlurmdParameters=config_overrides
# Finished jobs stay visible to squeue/scontrol for 10 minutes: the status command
# (--slurm-status-command squeue) and the test both read them from there.
MinJobAge=600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
# One GPU as a generic resource (no device file: nothing here uses it), so that jobs that
# ask for --gpus=1 or --gres=gpu:1 are scheduled as on a GPU cluster.
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    printf '%s\nNodeName=%s Name=gpu File=/dev/null\n' "$marker" "$host" >"$gres_conf"
    slurmctld -c -f "$conf" || broken "slurmctld failed to start"
fi
alive "$dir/slurmd.pid" || slurmd -f "$conf" || broken "slurmd failed to start"

for _ in $(seq 120); do
    state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null || true)
    case $state in
        idle | mixed | allocated) exit 0 ;;
        down* | drain*) scontrol update NodeName="$host" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.5
done
broken "node $host not idle after 60 s (state: ${state:-none})"
