#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, for qsweep's Slurm tests
# and benchmarks: munged, slurmctld and slurmd from Debian's packages
# (munge, slurmctld, slurmd, slurm-client), configured on localhost under DIR
# with no cgroups (proctrack/linuxproc, task/none), no accounting database
# (jobs that ended are found in the job-completion log, jobcomp/filetxt),
# memory limits enforced by jobacct_gather (OverMemoryKill), and a fake GPU
# gres count (2 "gpu" slots, no devices).
#
#   scripts/slurm/local_cluster.sh start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
#   scripts/slurm/local_cluster.sh stop DIR
#   scripts/slurm/local_cluster.sh status DIR
#   scripts/slurm/local_cluster.sh start DIR --for-tests
#       as a non-root user: write DIR/unavailable (the tests skip with it)
#       instead of failing
#   scripts/slurm/local_cluster.sh start DIR --hide PATH
#       slurmd (and so every job) runs in its own mount namespace where PATH
#       is an empty tmpfs: a "compute node" that does not see PATH (tests of
#       a cache outside the shared filesystem). Needs root and unshare(1).
#
# Partitions: `debug` (default) and `gpu`, both on this host. Daemons run as
# the calling user (root on CI machines: slurmd needs root to start jobs as
# their owner). start is idempotent: a running cluster in DIR is kept.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
hide=""
for_tests=0
shift 2 || true
while [ $# -gt 0 ]; do
  case "$1" in
    --hide) hide=${2:?--hide needs a path}; shift 2 ;;
    --for-tests) for_tests=1; shift ;;
    *) echo "local_cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start|stop|status DIR" >&2
  exit 2
fi
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
export SLURM_CONF=$conf

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_one() {  # pidfile
  if alive "$1"; then
    local pid
    pid=$(cat "$1")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

case "$cmd" in
  stop)
    if [ -f "$conf" ] && alive "$dir/slurmctld.pid"; then
      scancel --user="$(id -un)" 2>/dev/null || true
    fi
    stop_one "$dir/slurmd.pid"
    stop_one "$dir/slurmctld.pid"
    stop_one "$dir/munged.pid"
    echo "slurm: stopped the cluster in $dir"
    exit 0
    ;;
  status)
    for d in munged slurmctld slurmd; do
      if alive "$dir/$d.pid"; then echo "$d: running (pid $(cat "$dir/$d.pid"))"; else echo "$d: not running"; fi
    done
    alive "$dir/slurmctld.pid" && sinfo 2>&1 || true
    exit 0
    ;;
  start)
    rm -f "$dir/unavailable"
    if [ "$(id -u)" -ne 0 ] && [ "$for_tests" = 1 ]; then
      # slurmd starts jobs as their owner, which needs root. CTest's fixture
      # leaves a note and the Slurm tests skip with it.
      echo "slurmd must run as root to start jobs (this is uid $(id -u)); run the tests as root, as CI does, to include the Slurm tests" >"$dir/unavailable"
      echo "slurm: $(cat "$dir/unavailable")"
      exit 0
    fi
    ;;
  *)
    echo "usage: $0 start|stop|status DIR" >&2
    exit 2
    ;;
esac

for b in munged mungekey slurmctld slurmd sbatch squeue scontrol; do
  if ! command -v "$b" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$b" ]; then
    echo "slurm: '$b' is not installed; run scripts/setup.sh (Debian packages munge slurmctld slurmd slurm-client)" >&2
    exit 1
  fi
done
export PATH=$PATH:/usr/sbin

if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && alive "$dir/munged.pid"; then
  echo "export SLURM_CONF=$conf"
  exit 0
fi
# Anything half-started before goes first.
stop_one "$dir/slurmd.pid"
stop_one "$dir/slurmctld.pid"
stop_one "$dir/munged.pid"

user=$(id -un)
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)

# Two free TCP ports for slurmctld and slurmd.
free_port() {
  python3 - <<'EOF' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])
EOF
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done

mkdir -p "$dir/state" "$dir/spool" "$dir/munge"
chmod 755 "$dir/munge"
if [ ! -f "$dir/munge/munge.key" ]; then
  mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null ||
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 600 "$dir/munge/munge.key"
fi

cat >"$conf" <<EOF
# Written by scripts/slurm/local_cluster.sh: a one-host test cluster.
ClusterName=qsweep-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$user
SlurmdUser=$user
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
GresTypes=gpu
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,sched_interval=1,sched_min_interval=0
MinJobAge=600
MaxJobCount=20000
MaxArraySize=10001
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
PartitionName=gpu Nodes=$host Default=NO MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
cat >"$dir/gres.conf" <<EOF
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
NodeName=$host Name=gpu File=/dev/zero
EOF

force=()
[ "$(id -u)" -eq 0 ] && force=(--force)
munged "${force[@]}" --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"
slurmctld -f "$conf" -i
if [ -n "$hide" ]; then
  mkdir -p "$hide"
  unshare --mount --propagation private sh -c \
    "mount -t tmpfs qsweep-hidden '$hide' && exec slurmd -f '$conf' -N '$host'"
else
  slurmd -f "$conf" -N "$host"
fi

# Wait until the node takes jobs.
for _ in $(seq 150); do
  state=$(sinfo -h -N -o '%t' 2>/dev/null | head -1 || true)
  case "$state" in
    idle|mix|alloc) echo "export SLURM_CONF=$conf"; exit 0 ;;
  esac
  sleep 0.2
done
echo "slurm: the cluster in $dir did not come up (node state: '${state:-none}'); logs:" >&2
tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/munged.log" >&2 2>/dev/null || true
exit 1
