#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for running the Snakemake workflow for real
# (tests/python/test_slurm.py calls it; pipelines/README.md says how to use it by hand).
#
#   scripts/slurm-local.sh start   install (apt, if missing) and start munge, MariaDB, slurmdbd,
#                                  slurmctld and slurmd; wait until the node takes jobs and
#                                  sacct answers. Idempotent: a running daemon is left alone.
#   scripts/slurm-local.sh stop    stop the daemons this script started (by their pid files).
#
# Needs root and Debian's packages slurm-wlm, slurmdbd, munge and mariadb-server (installed
# with apt-get when missing). Made for containers without systemd or cgroups: the daemons are
# started directly, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none. Job accounting
# (slurmdbd on MariaDB) is what lets snakemake-executor-plugin-slurm see a job finish (sacct).
# Every file it writes is under /etc/slurm, /var/spool/slurm*, /var/log/slurm and /run; logs are
# in /var/log/slurm. Nothing listens beyond localhost (slurmctld 6817, slurmd 6818,
# slurmdbd 6819, MariaDB on its socket only).
set -euo pipefail

CLUSTER=methvb
NODE="$(hostname -s)"
ACCOUNT=methvb
DB_PASS=methvb-local
RUN=/run/methvb-slurm
LOG=/var/log/slurm

die() {
    echo "slurm-local: $*" >&2
    exit 1
}

install_packages() {
    local missing=()
    for bin in slurmctld:slurm-wlm slurmd:slurm-wlm slurmdbd:slurmdbd munged:munge mariadbd:mariadb-server; do
        command -v "${bin%%:*}" >/dev/null 2>&1 || missing+=("${bin#*:}")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and no apt-get to install them"
    echo "slurm-local: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm slurmdbd munge mariadb-server \
        >/dev/null
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # seconds, description, command...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq "$limit"); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 1
    done
    die "$what did not come up within ${limit} s (logs: $LOG)"
}

write_config() {
    local cpus mem
    cpus="$(nproc)"
    # A little below the physical memory, as slurmd measures it.
    mem="$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -1)"
    mem=$(( mem * 9 / 10 ))
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG" "$RUN"
    cat > /etc/slurm/slurm.conf <<EOF
# Written by methvb scripts/slurm-local.sh: a one-node cluster for tests.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    cat > /etc/slurm/slurmdbd.conf <<EOF
# Written by methvb scripts/slurm-local.sh.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
EOF
    chmod 600 /etc/slurm/slurmdbd.conf
    # No cgroup.conf: nothing here uses cgroups (slurm 22.05 has no `CgroupPlugin=disabled`).
    rm -f /etc/slurm/cgroup.conf
}

start() {
    [[ $EUID -eq 0 ]] || die "must run as root (it starts system daemons)"
    install_packages
    write_config

    # munge, as the munge user, before anything that authenticates.
    if ! pgrep -u munge -x munged >/dev/null; then
        install -d -o munge -g munge -m 0755 /run/munge
        install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
        runuser -u munge -- /usr/sbin/munged
    fi
    wait_for 20 munged sh -c 'munge -n | unmunge'

    # MariaDB for slurmdbd (socket only, no TCP).
    if ! mariadb-admin ping >/dev/null 2>&1; then
        install -d -o mysql -g mysql /run/mysqld
        setsid /usr/sbin/mariadbd --user=mysql --skip-networking \
            >"$LOG/mariadb.log" 2>&1 < /dev/null &
        echo $! > "$RUN/mariadb.pid"
    fi
    wait_for 60 MariaDB mariadb-admin ping
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"

    alive "$RUN/slurmdbd.pid" || /usr/sbin/slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true

    alive "$RUN/slurmctld.pid" || /usr/sbin/slurmctld
    wait_for 60 slurmctld scontrol ping
    alive "$RUN/slurmd.pid" || /usr/sbin/slurmd
    # An account for the current user, so that sbatch --account (which the Snakemake plugin
    # guesses from sacctmgr) names a real one.
    sacctmgr -i -Q add account "$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
    sacctmgr -i -Q add user "$(id -un)" Account="$ACCOUNT" Cluster="$CLUSTER" >/dev/null 2>&1 || true
    scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    wait_for 60 "node $NODE" sh -c "sinfo -h -n '$NODE' -o %t | grep -Eq '^(idle|mix|alloc)'"
    # The end-to-end check: a job runs and accounting records it.
    local job
    job="$(sbatch --parsable --wrap true -o /dev/null)"
    wait_for 60 "job accounting (sacct)" sh -c \
        "sacct -n -X -j '$job' -o State | grep -q COMPLETED"
    echo "slurm-local: cluster $CLUSTER up: node $NODE ($(nproc) CPUs), accounting via slurmdbd" >&2
}

stop() {
    for d in slurmd slurmctld slurmdbd mariadb; do
        if alive "$RUN/$d.pid"; then
            kill "$(cat "$RUN/$d.pid")" 2>/dev/null || true
        fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop" ;;
esac
