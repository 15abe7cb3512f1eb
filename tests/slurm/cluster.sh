#!/usr/bin/env bash
# A one-node SLURM cluster with real accounting, for the cluster test (tests/test_cluster.py).
#
#   tests/slurm/cluster.sh up      # start munged, MariaDB, slurmdbd, slurmctld, slurmd
#   tests/slurm/cluster.sh status  # which of them run (exit 1 if any is down)
#   tests/slurm/cluster.sh down    # stop the daemons this script started (recorded PIDs)
#   tests/slurm/cluster.sh purge   # down, then delete the state directory
#
# While it is up, sinfo/sbatch/sacct/snakemake find its config through /run/slurm/conf
# (no environment needed; `eval "$(tests/slurm/cluster.sh env)"` sets SLURM_CONF too).
#
# Needs root and the Debian packages slurmctld slurmd slurmdbd slurm-client munge
# mariadb-server (`make test-cluster` installs them). No systemd: every daemon runs in
# the foreground under setsid, its PID recorded in $ALEMS_SLURM_DIR/pids/; `down` stops
# only those PIDs (after checking each is still the program it started), never a daemon
# it did not start. Everything (config, keys, database, spool, logs) lives in
# $ALEMS_SLURM_DIR (default /tmp/alems-slurm); ports are picked free at the first `up`
# and kept. `up` and `down` are idempotent: a second `up` starts only what is not running.
#
# Accounting is real (slurmdbd + a private MariaDB on 127.0.0.1), so the Snakemake SLURM
# executor plugin reads job states from `sacct`, as on a production cluster. Without it
# sacct fails, the plugin logs that only at debug level, and Snakemake waits for ever.
#
# The node is declared with ALEMS_SLURM_CPUS CPUs (default: max(nproc, 4)) and
# SlurmdParameters=config_overrides, so profiles/slurm, which asks 4 CPUs for a
# measurement job, runs as written on a 2-core machine. The node is this machine:
# jobs see its real host name.
set -euo pipefail

D=${ALEMS_SLURM_DIR:-/tmp/alems-slurm}
CLUSTER=alems
NODE=$(hostname -s)
CONF=$D/etc/slurm.conf
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd) # start order; stopped in reverse

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { printf '%s cluster.sh: %s\n' "$(date +%T)" "$*"; }

pid_of() { cat "$D/pids/$1" 2>/dev/null || true; }

# Running, and still the program we started (a recycled PID is not ours).
alive() {
  local pid; pid=$(pid_of "$1")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1"* ]]
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait up to $1 seconds for the command after it to succeed; on timeout show $2's log tail.
wait_for() {
  local secs=$1 log=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then
      echo "--- last lines of $log:" >&2; tail -n 25 "$log" >&2 || true
      die "timed out after ${secs}s waiting for: $*"
    fi
    sleep 0.2
  done
}

# Start "$@" in its own session, in the foreground of that session; record its PID.
spawn() {
  local name=$1 log=$2; shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  echo $! >"$D/pids/$name"
}

check_prereqs() {
  [[ $(id -u) == 0 ]] || die "run as root (the daemons switch to the munge/mysql users themselves)"
  local missing=()
  for b in setpriv munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  ((${#missing[@]} == 0)) || die "missing programs: ${missing[*]}; install the Debian packages with \`make cluster-deps\`"
}

write_config() {
  mkdir -p "$D"/{etc,pids,log,state,spool,munge,mysql}
  chmod 755 "$D" "$D/etc" "$D/log"
  [[ -f $D/ports.env ]] || {
    echo "CTLD_PORT=$(free_port) SLURMD_PORT=$(free_port) DBD_PORT=$(free_port) DB_PORT=$(free_port)" >"$D/ports.env"
  }
  # shellcheck disable=SC1091
  source "$D/ports.env"
  local cpus mem
  cpus=${ALEMS_SLURM_CPUS:-$(( $(nproc) > 4 ? $(nproc) : 4 ))}
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
  [[ -f $D/db.secret ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$D/db.secret"; chmod 600 "$D/db.secret"; }
  cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh: a one-node test cluster (not for production).
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket.2
CredType=cred/munge
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool/%n
SlurmctldPidFile=$D/log/slurmctld.pid
SlurmdPidFile=$D/log/slurmd.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=300
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$D/munge/munge.socket.2
AccountingStoreFlags=job_comment
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$D/etc/slurmdbd.conf" <<EOF
# Written by tests/slurm/cluster.sh.
AuthType=auth/munge
AuthInfo=socket=$D/munge/munge.socket.2
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$D/log/slurmdbd.log
PidFile=$D/log/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$D/db.secret")
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$D/etc/slurmdbd.conf"
  printf 'export SLURM_CONF=%s\n' "$CONF" >"$D/env"
  link_config
}

# Clients inside a job must find the config without SLURM_CONF: the slurm jobstep
# plugin strips SLURM_* from the environment of its nested srun. Like slurmd on a
# configless cluster, point /run/slurm/conf (the clients' fallback after
# /etc/slurm/slurm.conf) at our config. A real config on this machine is left alone.
RUNCONF=/run/slurm/conf
link_config() {
  [[ ! -e /etc/slurm/slurm.conf ]] || die "/etc/slurm/slurm.conf exists: this machine has a SLURM config of its own; use that cluster instead"
  if [[ -e $RUNCONF || -L $RUNCONF ]] && [[ $(readlink "$RUNCONF") != "$D/etc" ]]; then
    die "$RUNCONF exists and is not ours (a configless slurmd runs here?); stop it first"
  fi
  mkdir -p "$(dirname "$RUNCONF")"
  ln -sfn "$D/etc" "$RUNCONF"
}

unlink_config() {
  if [[ -L $RUNCONF && $(readlink "$RUNCONF") == "$D/etc" ]]; then rm -f "$RUNCONF"; fi
}

start_munged() {
  alive munged && return
  chown munge:munge "$D/munge"; chmod 755 "$D/munge"
  [[ -f $D/munge/munge.key ]] || setpriv --reuid=munge --regid=munge --init-groups mungekey --create --keyfile="$D/munge/munge.key"
  rm -f "$D/munge/munge.socket.2"
  spawn munged "$D/log/munged.out" setpriv --reuid=munge --regid=munge --init-groups munged --foreground \
    --socket="$D/munge/munge.socket.2" --key-file="$D/munge/munge.key" \
    --pid-file="$D/munge/munged.pid" --seed-file="$D/munge/munged.seed" --log-file="$D/munge/munged.log"
  wait_for 10 "$D/log/munged.out" test -S "$D/munge/munge.socket.2"
  wait_for 10 "$D/munge/munged.log" bash -c "munge -S '$D/munge/munge.socket.2' -n | unmunge -S '$D/munge/munge.socket.2'"
}

start_mariadb() {
  alive mariadbd && return
  local sock=$D/mysql/mysqld.sock data=$D/mysql/data
  chown mysql:mysql "$D/mysql"
  if [[ ! -d $data/mysql ]]; then
    mariadb-install-db --no-defaults --user=mysql --datadir="$data" --auth-root-authentication-method=socket \
      --skip-test-db >"$D/log/mariadb-install.log" 2>&1 || { tail -n 20 "$D/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
  fi
  spawn mariadbd "$D/log/mariadbd.log" mariadbd --no-defaults --user=mysql --datadir="$data" --socket="$sock" \
    --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$D/mysql/mysqld.pid" \
    --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 --max-allowed-packet=16M
  wait_for 60 "$D/log/mariadbd.log" mariadb-admin --socket="$sock" ping
  mariadb --socket="$sock" -u root <<EOF
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$(cat "$D/db.secret")';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
}

start_slurmdbd() {
  alive slurmdbd && return
  spawn slurmdbd "$D/log/slurmdbd.out" env SLURM_CONF="$CONF" slurmdbd -D
  wait_for 60 "$D/log/slurmdbd.log" env SLURM_CONF="$CONF" sacctmgr -n list cluster
  # The cluster (with it, root's association to the account root, which jobs use).
  local q=(env SLURM_CONF="$CONF" sacctmgr -i -n)
  [[ -n $("${q[@]}" list cluster "$CLUSTER" format=cluster) ]] || "${q[@]}" add cluster "$CLUSTER" >/dev/null
}

start_slurm() {
  if ! alive slurmctld; then
    spawn slurmctld "$D/log/slurmctld.out" slurmctld -D -i -f "$CONF"
    wait_for 30 "$D/log/slurmctld.log" env SLURM_CONF="$CONF" scontrol ping
  fi
  if ! alive slurmd; then
    spawn slurmd "$D/log/slurmd.out" slurmd -D -N "$NODE" -f "$CONF"
  fi
  # A node left down or drained by an earlier run is brought back.
  wait_for 30 "$D/log/slurmd.log" bash -c "SLURM_CONF='$CONF' sinfo -h -n '$NODE' -o %T | grep -qvE 'unk|down|drain|fail|inval|not_resp'"
}

cmd_up() {
  check_prereqs
  write_config
  local t0=$SECONDS
  start_munged
  start_mariadb
  start_slurmdbd
  start_slurm
  say "up in $((SECONDS - t0)) s: $(SLURM_CONF=$CONF sinfo -h -o '%P %D %T %c CPUs' | tr '\n' ' ')(SLURM_CONF=$CONF)"
}

cmd_down() {
  local i name pid n
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do
    name=${DAEMONS[i]}
    pid=$(pid_of "$name")
    if alive "$name"; then
      kill -TERM "$pid"
      for ((n = 0; n < 100; n++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
      say "stopped $name ($pid)"
    fi
    rm -f "$D/pids/$name"
  done
  unlink_config
}

cmd_status() {
  local rc=0 name
  for name in "${DAEMONS[@]}"; do
    if alive "$name"; then echo "$name: running ($(pid_of "$name"))"; else echo "$name: stopped"; rc=1; fi
  done
  return $rc
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  purge) cmd_down; rm -rf "$D"; say "removed $D" ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 up|down|status|purge|env" >&2; exit 2 ;;
esac
