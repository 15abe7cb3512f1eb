#!/usr/bin/env bash
# A SLURM test cluster with real accounting on this machine, for the cluster test
# (tests/test_cluster.py): one node (the machine itself), or N nodes, each a slurmd in its
# own network and UTS namespace with its own host name and address.
#
#   tests/slurm/cluster.sh up [--nodes N]  # start munged, MariaDB, slurmdbd, slurmctld, N x slurmd
#   tests/slurm/cluster.sh status          # which of them run (exit 1 if any is down)
#   tests/slurm/cluster.sh nodes           # the node names, one a line
#   tests/slurm/cluster.sh exec NODE CMD…  # run CMD inside NODE's namespaces (N > 1)
#   tests/slurm/cluster.sh down            # stop what this script started; remove its links
#   tests/slurm/cluster.sh purge           # down, then delete the state directory
#
# While it is up, sinfo/sbatch/sacct/snakemake find its config through /run/slurm/conf
# (no environment needed; `eval "$(tests/slurm/cluster.sh env)"` sets SLURM_CONF too).
#
# Needs root and the Debian packages slurmctld slurmd slurmdbd slurm-client munge
# mariadb-server, and iproute2 for --nodes N > 1 (`make test-cluster` installs them). No
# systemd: every daemon runs in the foreground under setsid, its PID recorded in
# $ALEMS_SLURM_DIR/pids/; `down` stops only those PIDs (after checking each is still the
# program it started), never a daemon it did not start. Everything (config, keys, database, spool, logs) lives in
# $ALEMS_SLURM_DIR (default /tmp/alems-slurm); ports are picked free at the first `up`
# and kept. `up` and `down` are idempotent: a second `up` starts only what is not running,
# and `down` after a failed or partial `up` removes whatever of it exists.
#
# Accounting is real (slurmdbd + a private MariaDB on 127.0.0.1), so the Snakemake SLURM
# executor plugin reads job states from `sacct`, as on a production cluster. Without it
# sacct fails, the plugin logs that only at debug level, and Snakemake waits for ever.
#
# Each node is declared with ALEMS_SLURM_CPUS CPUs (default: max(nproc, 4)) and
# SlurmdParameters=config_overrides, so profiles/slurm, which asks 4 CPUs for a
# measurement job, runs as written on a 2-core machine.
#
# --nodes 1 (the default): the node is this machine, at 127.0.0.1; jobs see its real host
# name. --nodes N > 1: nodes alems-n1 … alems-nN. Each is a holder process
# (`unshare --net --uts sleep infinity`) whose namespaces a slurmd enters (`nsenter -n -u`:
# no new mount namespace, so the cgroup and the whole file system stay shared, as a
# cluster's nodes share the checkout). A veth pair joins each node (eth0, $NET.(10+K)) to a
# bridge (alemsbr0, $NET.1) in the root namespace, where slurmctld, slurmdbd, MariaDB and
# munged stay; NET = ALEMS_SLURM_NET (default 10.77.0, a /24 no route here may cover).
# Jobs on node K see host name alems-nK. The links made are recorded in $D/links and
# `down` deletes exactly those; it also ends what still runs inside a node's namespaces
# (job steps, a test's load) before the holder, so the namespaces vanish with them.
# If the kernel refuses the namespaces, `up --nodes N` says why, starts the one-node
# cluster instead and records the reason in $D/multinode.refused (the tests skip their
# multi-node checks with it).
set -euo pipefail
shopt -s nullglob

D=${ALEMS_SLURM_DIR:-/tmp/alems-slurm}
CLUSTER=alems
CONF=$D/etc/slurm.conf
NET=${ALEMS_SLURM_NET:-10.77.0}
BRIDGE=alemsbr0
CORE=(munged mariadbd slurmdbd slurmctld) # start order; stopped in reverse, after the nodes
STOPPED=()                                # PIDs `down` stopped (it waits until init reaps them)
NODES=()                                  # node names (set by plan_nodes or read_nodes)
declare -A ADDR=()

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { printf '%s cluster.sh: %s\n' "$(date +%T)" "$*"; }

pid_of() { cat "$D/pids/$1" 2>/dev/null || true; }

# The program a recorded name runs: slurmd@NODE -> slurmd, holder@NODE -> sleep.
comm_for() {
  case $1 in
    holder@*) echo sleep ;;
    *@*) echo "${1%%@*}" ;;
    *) echo "$1" ;;
  esac
}

# Running, and still the program we started (a recycled PID is not ours).
alive() {
  local pid; pid=$(pid_of "$1")
  [[ -n $pid ]] && running "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$(comm_for "$1")"* ]]
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

# Still running: exists and is not a zombie (an exited daemon waits to be reaped by init).
running() { [[ -r /proc/$1/stat && $(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) != Z ]]; }

# Stop one recorded process (TERM, then KILL after 10 s) if it is still ours; forget it.
stop() {
  local name=$1 pid n
  pid=$(pid_of "$name")
  if alive "$name"; then
    kill -TERM "$pid"
    for ((n = 0; n < 100; n++)); do running "$pid" || break; sleep 0.1; done
    if running "$pid"; then kill -KILL "$pid"; fi
    say "stopped $name ($pid)"
    STOPPED+=("$pid")
  fi
  rm -f "$D/pids/$name"
}

check_prereqs() {
  [[ $(id -u) == 0 ]] || die "run as root (the daemons switch to the munge/mysql users themselves)"
  local missing=()
  for b in setpriv munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sbatch sacct sacctmgr sinfo "$@"; do
    command -v "$b" >/dev/null || missing+=("$b")
  done
  ((${#missing[@]} == 0)) || die "missing programs: ${missing[*]}; install the Debian packages with \`make cluster-deps\` (ip: iproute2; unshare, nsenter: util-linux)"
}

# Why this kernel cannot give each node its own namespaces and links (empty: it can).
namespaces_refused() {
  local err
  err=$(unshare --net --uts true 2>&1) || { echo "unshare --net --uts: ${err:-failed}"; return; }
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    err=$(ip link add alemsprobe0 type bridge 2>&1) || { echo "ip link add (bridge): ${err:-failed}"; return; }
    ip link del alemsprobe0
  fi
  err=$(ip link add alemsprobe1 type veth peer name alemsprobe2 2>&1) || { echo "ip link add (veth): ${err:-failed}"; return; }
  ip link del alemsprobe1
}

# NODES and ADDR for `up --nodes N`; falls back to one node, with the reason, where refused.
plan_nodes() {
  local n=$1 i why
  rm -f "$D/multinode.refused"
  if ((n > 1)); then
    check_prereqs unshare nsenter ip
    why=$(namespaces_refused)
    if [[ -n $why ]]; then
      echo "cluster.sh: WARNING: the kernel refuses the namespaces a $n-node cluster needs ($why); starting the one-node cluster instead" >&2
      echo "the kernel refuses network/UTS namespaces or links for a $n-node cluster: $why" >"$D/multinode.refused"
      n=1
    fi
  fi
  if ((n == 1)); then
    NODES=("$(hostname -s)"); ADDR[${NODES[0]}]=127.0.0.1
  else
    for ((i = 1; i <= n; i++)); do NODES+=("alems-n$i"); ADDR[alems-n$i]=$NET.$((10 + i)); done
  fi
}

# NODES and ADDR of the cluster as the last `up` planned it ($D/nodes: "name addr" lines).
read_nodes() {
  local name addr
  NODES=()
  [[ -f $D/nodes ]] || return 0
  while read -r name addr; do NODES+=("$name"); ADDR[$name]=$addr; done <"$D/nodes"
}

multinode() { ((${#NODES[@]} > 1)); }

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
  local ctld_addr=127.0.0.1 node_lines="" n
  if multinode; then ctld_addr=$NET.1; fi
  for n in "${NODES[@]}"; do
    node_lines+="NodeName=$n NodeAddr=${ADDR[$n]} CPUs=$cpus RealMemory=$mem State=UNKNOWN"$'\n'
  done
  [[ -f $D/db.secret ]] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$D/db.secret"; chmod 600 "$D/db.secret"; }
  cat >"$CONF" <<EOF
# Written by tests/slurm/cluster.sh: a ${#NODES[@]}-node test cluster (not for production).
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)($ctld_addr)
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
SlurmdPidFile=$D/log/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
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
${node_lines}PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
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

# The bridge in the root namespace, at $NET.1 (made once; recorded in $D/links).
bridge_up() {
  if ! grep -qx "$BRIDGE" "$D/links" 2>/dev/null; then
    ! ip link show "$BRIDGE" >/dev/null 2>&1 || die "a link $BRIDGE exists and is not this cluster's; remove it or run on another machine"
    local clash
    clash=$(ip -4 route show match "$NET.1" | grep -v '^default' || true)
    [[ -z $clash ]] || die "$NET.0/24 is already routed here ($clash); choose another /24 with ALEMS_SLURM_NET=10.x.y"
    echo "$BRIDGE" >>"$D/links"
    ip link add "$BRIDGE" type bridge
  fi
  ip addr replace "$NET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# Node K: a holder process owning a new network + UTS namespace (host name alems-nK), a
# veth pair alems-vK (bridge side) / eth0 (inside, $NET.(10+K)), a default route via $NET.1.
node_net_up() {
  local n=$1 k=${1#alems-n} hpid
  alive "holder@$n" && return
  spawn "holder@$n" "$D/log/holder-$n.out" unshare --net --uts sleep infinity
  hpid=$(pid_of "holder@$n")
  wait_for 10 "$D/log/holder-$n.out" bash -c "[[ \$(readlink /proc/$hpid/ns/net) != \$(readlink /proc/self/ns/net) && \$(cat /proc/$hpid/comm) == sleep ]]"
  nsenter -t "$hpid" -u hostname "$n"
  grep -qx "alems-v$k" "$D/links" 2>/dev/null || echo "alems-v$k" >>"$D/links"
  if ip link show "alems-v$k" >/dev/null 2>&1; then ip link del "alems-v$k"; fi # a stale end of ours
  ip link add "alems-v$k" type veth peer name "alems-p$k"
  ip link set "alems-p$k" netns "$hpid"
  ip link set "alems-v$k" master "$BRIDGE" up
  nsenter -t "$hpid" -n sh -ec "ip link set alems-p$k name eth0; ip addr add ${ADDR[$n]}/24 dev eth0
    ip link set eth0 up; ip link set lo up; ip route add default via $NET.1"
}

start_slurm() {
  local n hpid states
  if ! alive slurmctld; then
    spawn slurmctld "$D/log/slurmctld.out" slurmctld -D -i -f "$CONF"
    wait_for 30 "$D/log/slurmctld.log" env SLURM_CONF="$CONF" scontrol ping
  fi
  for n in "${NODES[@]}"; do
    alive "slurmd@$n" && continue
    if multinode; then
      # slurmd finds its node name from the namespace's host name
      hpid=$(pid_of "holder@$n")
      spawn "slurmd@$n" "$D/log/slurmd-$n.out" nsenter -t "$hpid" -n -u env SLURM_CONF="$CONF" slurmd -D -f "$CONF"
    else
      spawn "slurmd@$n" "$D/log/slurmd-$n.out" slurmd -D -N "$n" -f "$CONF"
    fi
  done
  # Every node answers (one left down or drained by an earlier run is brought back).
  states="SLURM_CONF='$CONF' sinfo -h -N -o '%N %T' | grep -vE 'unk|down|drain|fail|inval|not_resp' | wc -l"
  wait_for 60 "$D/log/slurmd-${NODES[-1]}.log" bash -c "[[ \$($states) == ${#NODES[@]} ]]"
}

cmd_up() {
  local want=1
  while (($#)); do
    case $1 in
      --nodes) want=${2:-}; shift 2 || die "--nodes needs a number" ;;
      --nodes=*) want=${1#--nodes=}; shift ;;
      *) die "up: unknown argument $1 (usage: up [--nodes N])" ;;
    esac
  done
  [[ $want =~ ^[1-9][0-9]?$ ]] || die "--nodes $want: give a whole number of nodes from 1 to 99"
  check_prereqs
  mkdir -p "$D/pids"
  local before=()
  if [[ -f $D/nodes ]] && any_alive; then read_nodes; before=("${NODES[@]}"); NODES=(); fi
  plan_nodes "$want"
  if ((${#before[@]})) && [[ "${before[*]}" != "${NODES[*]}" ]]; then
    die "the cluster is up with nodes ${before[*]}; run \`$0 down\` first"
  fi
  for n in "${NODES[@]}"; do echo "$n ${ADDR[$n]}"; done >"$D/nodes"
  write_config
  local t0=$SECONDS n
  start_munged
  start_mariadb
  start_slurmdbd
  if multinode; then
    bridge_up
    for n in "${NODES[@]}"; do node_net_up "$n"; done
  fi
  start_slurm
  say "up in $((SECONDS - t0)) s: $(SLURM_CONF=$CONF sinfo -h -N -o '%N/%T/%c' | tr '\n' ' ')CPUs (SLURM_CONF=$CONF)"
}

any_alive() {
  local f
  for f in "$D"/pids/*; do alive "$(basename "$f")" && return 0; done
  return 1
}

# End every process still inside the namespaces of holder $1 (job steps, a test's load),
# the holder itself excepted: TERM, then KILL after 5 s.
end_namespace_members() {
  local hpid=$1 ns p pid left=()
  ns=$(readlink "/proc/$hpid/ns/net") || return 0
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    [[ $pid != "$hpid" && $(readlink "$p/ns/net" 2>/dev/null) == "$ns" ]] && left+=("$pid")
  done
  ((${#left[@]})) || return 0
  say "ending ${#left[@]} process(es) still in the namespaces of holder $hpid: ${left[*]}"
  kill -TERM "${left[@]}" 2>/dev/null || true
  for ((n = 0; n < 50; n++)); do
    for pid in "${left[@]}"; do running "$pid" && break; done
    running "$pid" || return 0
    sleep 0.1
  done
  kill -KILL "${left[@]}" 2>/dev/null || true
}

# Delete the links this script made ($D/links), newest first; those already gone are skipped.
net_down() {
  [[ -f $D/links ]] || return 0
  local name
  while read -r name; do
    if ip link show "$name" >/dev/null 2>&1; then ip link del "$name"; say "deleted link $name"; fi
  done < <(tac "$D/links")
  rm -f "$D/links"
}

cmd_down() {
  local f name i
  mkdir -p "$D/pids"
  for f in "$D"/pids/slurmd@*; do stop "$(basename "$f")"; done
  for f in "$D"/pids/holder@*; do
    name=$(basename "$f")
    if alive "$name"; then end_namespace_members "$(pid_of "$name")"; fi
    stop "$name"
  done
  stop slurmd # the one-node slurmd of cluster.sh before --nodes (pids/slurmd)
  for ((i = ${#CORE[@]} - 1; i >= 0; i--)); do stop "${CORE[i]}"; done
  net_down
  unlink_config
  # Exited daemons stay zombies until init reaps them; give it 5 s, so `ps` shows none after `down`.
  for ((i = 0; i < 50; i++)); do
    local left=0 pid
    for pid in "${STOPPED[@]}"; do [[ -e /proc/$pid ]] && left=1; done
    ((left)) || break
    sleep 0.1
  done
}

cmd_status() {
  local rc=0 name
  read_nodes
  for name in "${CORE[@]}" "${NODES[@]/#/slurmd@}"; do
    if alive "$name"; then echo "$name: running ($(pid_of "$name"))"; else echo "$name: stopped"; rc=1; fi
  done
  if multinode; then
    for name in "${NODES[@]/#/holder@}"; do
      if alive "$name"; then echo "$name: running ($(pid_of "$name"))"; else echo "$name: stopped"; rc=1; fi
    done
  fi
  return $rc
}

# Run a command inside a node's network and UTS namespaces (as its slurmd runs).
cmd_exec() {
  local node=${1:-}
  shift || true
  [[ -n $node && $# -gt 0 ]] || die "usage: $0 exec NODE CMD [ARG...]"
  alive "holder@$node" || die "no running node $node with namespaces of its own (nodes: $(read_nodes; echo "${NODES[*]}"))"
  exec nsenter -t "$(pid_of "holder@$node")" -n -u -- "$@"
}

case ${1:-} in
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  nodes) read_nodes; printf '%s\n' "${NODES[@]}" ;;
  exec) shift; cmd_exec "$@" ;;
  purge) cmd_down; rm -rf "$D"; say "removed $D" ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 up [--nodes N]|down|status|nodes|exec NODE CMD...|purge|env" >&2; exit 2 ;;
esac
