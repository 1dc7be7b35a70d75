#!/usr/bin/env bash
# slurm-check.sh: `pad sweep --emit slurm` on a real Slurm cluster of one
# node, this machine, end to end.
#
# It installs slurm-wlm and munge from Debian when they are missing, starts
# munged, slurmctld and slurmd with all their configuration, state, sockets
# and logs in a temporary directory, waits until the node is idle, and runs
# three studies with the real pad binary, each from its own directory as the
# README's cluster section does it (bin/pad, sbatch sweep.sh, slurm-logs/):
#
#   A  4 runs (the embedded sample, conditions pad and no-rem, 2 seeds, a
#      small model, 2 epochs with the linear probe and sample grids):
#      every array task completes; each run has its checkpoint, metrics and
#      samples; pad report gives the table.
#   B  the same 4 runs in another directory, interrupted: task 0 cancelled
#      (scancel) after its first checkpoint, task 1 requeued (scontrol
#      requeue) after its first epoch, task 2 sent SIGTERM in its batch
#      shell as --signal=B:TERM does before the time limit. The script is
#      submitted again; the interrupted runs resume, the finished ones exit
#      at once, and every run must equal A's bit for bit (checkpoint,
#      sample grids, every logged loss).
#   C  2 runs, one of which fails (MNIST, whose files are missing): that
#      task is FAILED in Slurm with pad's one-line error in its log, and the
#      other task still completes.
#
# Everything it started is stopped when it ends, also on failure or Ctrl-C.
# It fails, rather than skips, when Slurm cannot be installed or started.
# Needs root (apt-get, slurmd) and Go; about two minutes on 2 cores, 20 s
# more when it installs Slurm. Without a database sacct does not work: the
# job states are read from the controller (scontrol) and from the job
# completion log, a text file.
#
#   scripts/slurm-check.sh            # KEEP=1 keeps the temporary directory
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export GOFLAGS=${GOFLAGS:--buildvcs=false} PATH="$PATH:/usr/sbin:/sbin"
t0=$SECONDS

say() { printf '== %s (%ds)\n' "$*" $((SECONDS - t0)); }
die() {
	printf 'slurm-check: FAILED: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run it as root: it installs Slurm with apt-get and runs slurmd, which starts the jobs"
command -v go > /dev/null || die "no go on the PATH (pad is built from this tree)"

# --- the temporary directory and the cleanup ----------------------------------
tmp=$(mktemp -d /tmp/pad-slurm-check.XXXXXX)
chmod 755 "$tmp" # munged wants its socket's directories searchable by all
mkdir -p "$tmp"/{etc,state,spool,log,run,bin}
install -d -m 755 "$tmp/munge"
# Every process this script starts, and everything they start (the daemons,
# slurmstepd, the jobs), inherits this variable: the cleanup finds them by it.
export SLURM_CONF="$tmp/etc/slurm.conf" PAD_SLURM_CHECK="$tmp"
policy="" # a policy-rc.d this script put in place, to be removed

# ours lists the processes that carry PAD_SLURM_CHECK=$tmp and are not this
# script or its children: the daemons, slurmstepd and the jobs.
ours() {
	local f p q k v
	while read -r f; do
		p=${f#/proc/} p=${p%/environ} q=$p
		while [ -n "$q" ] && [ "$q" -gt 1 ] && [ "$q" != $$ ]; do
			k="" # the parent, from /proc/PID/status, without forking
			while read -r k v; do [ "$k" = PPid: ] && break; done 2> /dev/null < "/proc/$q/status" || true
			[ "$k" = PPid: ] && q=$v || q=""
		done
		[ "$q" = $$ ] || echo "$p"
	done < <(grep -lzxF "PAD_SLURM_CHECK=$tmp" /proc/[0-9]*/environ 2> /dev/null)
}

cleanup() {
	local rc=$? pids=() left i f
	set +e
	trap - EXIT INT TERM
	[ -z "$policy" ] || rm -f "$policy"
	if [ "$rc" != 0 ] && [ -d "$tmp/log" ]; then
		for f in "$tmp"/log/slurmctld.log "$tmp"/log/slurmd.log "$tmp"/munge/munged.log; do
			[ -s "$f" ] && { echo "--- last lines of $f" >&2; tail -15 "$f" >&2; }
		done
	fi
	if [ -n "$(ours)" ]; then
		echo "== stopping what this check started"
		if [ -s "$tmp/run/slurmctld.pid" ]; then
			scancel --quiet --user=root 2> /dev/null
			for i in $(seq 1 40); do
				[ -z "$(squeue -h -o %i 2> /dev/null)" ] && break
				sleep 0.5
			done
			scontrol shutdown > /dev/null 2>&1
		fi
		for i in $(seq 1 30); do
			left=$(ours | tr '\n' ' ')
			# munged goes last: the Slurm daemons need it to shut down.
			[ "$left" = "$(cat "$tmp/munge/munged.pid" 2> /dev/null) " ] && break
			[ -z "$left" ] && break
			sleep 0.5
		done
		mapfile -t pids < <(ours)
		[ "${#pids[@]}" = 0 ] || kill -TERM "${pids[@]}" 2> /dev/null
		for i in $(seq 1 20); do
			[ -z "$(ours)" ] && break
			sleep 0.5
		done
		mapfile -t pids < <(ours)
		if [ "${#pids[@]}" != 0 ]; then
			echo "slurm-check: killing what did not stop: ${pids[*]}" >&2
			kill -KILL "${pids[@]}" 2> /dev/null
			sleep 1
			if [ -n "$(ours)" ]; then
				echo "slurm-check: FAILED: processes of this check are still running: $(ours | tr '\n' ' ')" >&2
				rc=1
			fi
		fi
	fi
	if [ "${KEEP:-}" = 1 ]; then
		echo "kept $tmp"
	else
		rm -rf "$tmp"
	fi
	if [ "$rc" = 0 ]; then
		echo "slurm-check passed in $((SECONDS - t0)) s"
	else
		echo "slurm-check failed (exit $rc) after $((SECONDS - t0)) s" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Slurm and munge from Debian ----------------------------------------------
tools=(sbatch squeue scontrol scancel sinfo slurmctld slurmd munged mungekey munge unmunge)
missing() {
	local c
	for c in "${tools[@]}"; do command -v "$c" > /dev/null || return 0; done
	return 1
}
if missing; then
	say "installing slurm-wlm and munge (apt-get)"
	# The packages would start their services; nothing is started here but
	# what this script starts itself, with its own configuration.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		policy=/usr/sbin/policy-rc.d
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt=(apt-get install -y -q --no-install-recommends slurm-wlm munge)
	status=0
	"${apt[@]}" > "$tmp/apt.log" 2>&1 ||
		{ apt-get update -q >> "$tmp/apt.log" 2>&1 && "${apt[@]}" >> "$tmp/apt.log" 2>&1; } || status=$?
	[ -z "$policy" ] || rm -f "$policy"
	policy=""
	if [ "$status" != 0 ]; then
		tail -20 "$tmp/apt.log" >&2
		die "apt-get install slurm-wlm munge failed (exit $status)"
	fi
	! missing || die "slurm-wlm and munge are installed, but one of ${tools[*]} is not on the PATH"
else
	say "slurm-wlm and munge are installed; no apt-get"
fi
say "$(slurmctld -V), $(munged --version 2>&1 | head -1 | cut -d' ' -f1 || true)"

# --- pad --------------------------------------------------------------------
say "building pad (CGO_ENABLED=0, as make build)"
CGO_ENABLED=0 go build -trimpath -o "$tmp/bin/pad" ./cmd/pad

# --- the cluster --------------------------------------------------------------
# Two free TCP ports on the loopback interface.
port_free() { ! (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }
ctld_port="" slurmd_port=""
for i in $(seq 1 50); do
	p=$((20000 + RANDOM % 30000))
	if port_free "$p" && port_free $((p + 1)); then
		ctld_port=$p slurmd_port=$((p + 1))
		break
	fi
done
[ -n "$ctld_port" ] || die "no two free TCP ports found for slurmctld and slurmd"

node=$(hostname -s)
# slurmd -C: this node's CPUs and layout as slurmd sees them. RealMemory is
# set a little below the truth, so the node is never found short of it.
hw=$(slurmd -C 2> /dev/null | head -1 | tr ' ' '\n' | grep -E '^(CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=' | tr '\n' ' ' || true)
[ -n "$hw" ] || hw="CPUs=$(nproc) "
mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
cpus=$(printf '%s\n' "$hw" | tr ' ' '\n' | sed -n 's/^CPUs=//p')

cat > "$SLURM_CONF" << EOF
# One-node Slurm cluster of scripts/slurm-check.sh; everything under $tmp.
ClusterName=padcheck
SlurmctldHost=$node(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire also delays a requeued job's restart (cred_expire + 1 s).
AuthInfo=socket=$tmp/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/run/slurmctld.pid
SlurmdPidFile=$tmp/run/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
PlugStackConfig=$tmp/etc/plugstack.conf
# No cgroups: processes tracked by their parents, tasks not pinned.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
# No database: sacct is unavailable; each finished job is a line of this
# text file, and the controller keeps its record for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$tmp/log/jobcomp.txt
MinJobAge=3600
KillWait=10
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
NodeName=$node NodeAddr=127.0.0.1 ${hw}RealMemory=$mem State=UNKNOWN
PartitionName=pad Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
: > "$tmp/etc/plugstack.conf"

say "starting munged, slurmctld and slurmd (node $node: ${cpus:-?} CPUs, $mem MB; ports $ctld_port, $slurmd_port)"
mungekey -c -k "$tmp/munge/munge.key"
munged --socket="$tmp/munge/munge.socket.2" --key-file="$tmp/munge/munge.key" \
	--pid-file="$tmp/munge/munged.pid" --log-file="$tmp/munge/munged.log" --seed-file="$tmp/munge/munged.seed" ||
	die "munged did not start"
munge -n -S "$tmp/munge/munge.socket.2" | unmunge -S "$tmp/munge/munge.socket.2" > /dev/null ||
	die "munge cannot encode and decode a credential"
slurmctld -f "$SLURM_CONF" || die "slurmctld did not start"
for i in $(seq 1 60); do
	scontrol ping 2> /dev/null | grep -q 'is UP' && break
	[ "$i" = 60 ] && die "slurmctld does not answer (scontrol ping)"
	sleep 0.5
done
slurmd -f "$SLURM_CONF" || die "slurmd did not start"
for i in $(seq 1 60); do
	state=$(sinfo -h -n "$node" -o %T 2> /dev/null || true)
	[ "$state" = idle ] && break
	[ "$i" = 60 ] && die "node $node is '$state', not idle, after 30 s"
	sleep 0.5
done
say "node $node is idle"

# --- helpers ------------------------------------------------------------------
# submit runs the README's submit command in the current directory and
# prints the array job's id.
submit() {
	local out
	out=$(PAD=$PWD/bin/pad sbatch sweep.sh) || die "sbatch sweep.sh in $PWD failed"
	[[ $out =~ ^Submitted\ batch\ job\ ([0-9]+)$ ]] || die "sbatch said: $out"
	echo "${BASH_REMATCH[1]}"
}

# wait_job JOB SECONDS waits until no task of the array is pending or running.
wait_job() {
	local deadline=$((SECONDS + $2))
	while [ -n "$(squeue -h -r -j "$1" -o %i 2> /dev/null)" ]; do
		[ "$SECONDS" -lt "$deadline" ] || { squeue -r -j "$1" >&2; die "job $1 is not done after $2 s"; }
		sleep 0.5
	done
}

# task JOB INDEX FIELD prints a field of the array task's record in the
# controller (JobState, ExitCode, Restarts, StdOut).
task() {
	scontrol -o show job "$1_$2" | tr ' ' '\n' | sed -n "s/^$3=//p" | head -1
}

# expect_task JOB INDEX STATE EXITCODE [RESTARTS]
expect_task() {
	local st ec rs
	st=$(task "$1" "$2" JobState) ec=$(task "$1" "$2" ExitCode) rs=$(task "$1" "$2" Restarts)
	if [ "$st" != "$3" ] || [ "$ec" != "$4" ] || [ "$rs" != "${5:-0}" ]; then
		die "task $1_$2: $st, exit $ec, $rs restarts; want $3, exit $4, ${5:-0} restarts"
	fi
	# The job completion log (the text-file accounting) agrees.
	grep "ArrayJobId=$1 ArrayTaskId=$2 " "$tmp/log/jobcomp.txt" | tail -1 | grep -q "JobState=$3 " ||
		die "task $1_$2: the job completion log ($tmp/log/jobcomp.txt) does not say $3"
}

# log_of DIR NAME JOB INDEX: the task's log where the README says it is.
log_of() {
	local f="$1/slurm-logs/$2-$3_$4.out"
	[ -s "$f" ] || die "no log $f"
	[ "$(task "$3" "$4" StdOut)" = "$f" ] || die "task $3_$4 logs to $(task "$3" "$4" StdOut), not $f"
	echo "$f"
}

# contains FILE TEXT...
contains() {
	local f=$1 s
	shift
	for s in "$@"; do
		grep -qF -- "$s" "$f" || { cat "$f" >&2; die "$f does not say '$s'"; }
	done
}

# state_of INDEX: the run's state in pad sweep --emit list.
state_of() {
	bin/pad sweep "${study[@]}" --emit list 2> /dev/null | awk -v i="$1" '$1 == i {print $NF}'
}

runs=(embedded-pad-s1 embedded-pad-s2 embedded-no-rem-s1 embedded-no-rem-s2)
# shellcheck disable=SC2054 # the commas are pad's list separators
study=(--datasets embedded --conditions pad,no-rem --seeds 2
	--set model.nf=8 --set model.nz=16 --set train.batch=32
	--set data.train_limit=2560 --set data.test_limit=320 --set train.epochs=2
	--set eval.every=1 --set eval.probe_epochs=2 --set train.checkpoint_every=5
	--set device.threads=1)
# CPU tasks of one core and 1 GiB each, two at a time, 15 minutes at most.
slurm=(--emit slurm --gpus 0 --cpus 1 --mem 1 --parallel 2 --time 15)

# newstudy NAME: a directory for a study, with bin/pad as the README has it.
newstudy() {
	mkdir -p "$tmp/$1"
	ln -s ../bin "$tmp/$1/bin"
	cd "$tmp/$1"
}

# --- A: the study, uninterrupted ------------------------------------------
say "A: 4 runs through sbatch"
newstudy a
bin/pad sweep "${study[@]}" "${slurm[@]}" --name pad-a --out sweep.sh
grep -q '^#SBATCH --array=0-3%2$' sweep.sh || die "sweep.sh has no --array=0-3%2"
mkdir -p slurm-logs
jobA=$(submit)
wait_job "$jobA" 120
for i in 0 1 2 3; do
	expect_task "$jobA" "$i" COMPLETED 0:0
	logf=$(log_of "$PWD" pad-a "$jobA" "$i")
	contains "$logf" "pad sweep task $i of 4 on $node" "sweep run $i of 4: runs/${runs[$i]}: starting" "done: 160 iterations"
	for f in checkpoint.safetensors metrics.jsonl config.toml samples/epoch002-recon.png samples/epoch002-nrem.png samples/epoch002-rem.png; do
		[ -s "runs/${runs[$i]}/$f" ] || die "A: runs/${runs[$i]}/$f is missing"
	done
	[ "$(state_of "$i")" = finished ] || die "A: run $i is $(state_of "$i"), not finished"
done
bin/pad report --out report runs/ > report.txt || die "pad report runs/ failed"
contains report.txt "| embedded |" "(n=2)"
[ "$(grep '^| embedded |' report.txt | grep -o '(n=2)' | wc -l)" = 2 ] || die "the report does not have both conditions with 2 seeds"
say "A: 4 tasks COMPLETED; each run has its checkpoint, metrics and samples; pad report:"
sed -n '/^|/p' report.txt

# --- B: the same study, interrupted and resubmitted ------------------------
say "B: the same 4 runs; scancel, scontrol requeue and the time limit's signal; then sbatch again"
newstudy b
bin/pad sweep "${study[@]}" "${slurm[@]}" --name pad-b --out sweep.sh
mkdir -p slurm-logs
jobB=$(submit)
# Each interruption as soon as its run is far enough, whichever comes first.
todo=" 0 1 2 " deadline=$((SECONDS + 120))
while [ -n "${todo// /}" ]; do
	[ "$SECONDS" -lt "$deadline" ] || die "runs${todo% } did not get far enough to be interrupted in 120 s"
	while read -r i st; do
		[[ $todo == *" $i "* ]] || continue
		[ "$st" != finished ] || die "run $i finished before it could be interrupted: make the study longer"
		case "$i:$st" in
		0:partial*)
			scancel "${jobB}_0"
			say "B: cancelled task 0 (scancel ${jobB}_0) after its first checkpoint"
			;;
		1:'partial(1/2)')
			scontrol requeue "${jobB}_1"
			say "B: requeued task 1 (scontrol requeue ${jobB}_1) after its first epoch"
			;;
		2:partial*)
			scancel --batch --signal=TERM "${jobB}_2"
			say "B: sent SIGTERM to task 2's batch shell (what --signal=B:TERM@300 does before the time limit)"
			;;
		*) continue ;;
		esac
		todo=${todo/ $i / }
	done < <(bin/pad sweep "${study[@]}" --emit list 2> /dev/null | awk 'NR > 1 {print $1, $NF}')
	sleep 0.1
done
wait_job "$jobB" 120
expect_task "$jobB" 0 CANCELLED 130:0
expect_task "$jobB" 1 COMPLETED 0:0 1
expect_task "$jobB" 2 FAILED 130:0
expect_task "$jobB" 3 COMPLETED 0:0
logf=$(log_of "$PWD" pad-b "$jobB" 0)
contains "$logf" "CANCELLED AT" "interrupted after iteration" "pad: sweep run 0 (embedded-pad-s1): interrupted, checkpoint written"
# The requeued task ran twice under one job id; --open-mode=append kept both.
logf=$(log_of "$PWD" pad-b "$jobB" 1)
contains "$logf" "DUE TO JOB REQUEUE" "interrupted after iteration" "sweep run 1 of 4: runs/embedded-pad-s2: resuming at epoch 1/2" "done: "
logf=$(log_of "$PWD" pad-b "$jobB" 2)
contains "$logf" "interrupted after iteration" "pad: sweep run 2 (embedded-no-rem-s1): interrupted"
for i in 0 2; do
	[[ $(state_of "$i") =~ ^partial ]] || die "B: run $i is $(state_of "$i") after its interruption, not partial"
done
bin/pad sweep "${study[@]}" --emit list | sed 's/^/   /'
jobB2=$(submit)
wait_job "$jobB2" 120
for i in 0 1 2 3; do
	expect_task "$jobB2" "$i" COMPLETED 0:0
done
for i in 0 2; do
	logf=$(log_of "$PWD" pad-b "$jobB2" "$i")
	contains "$logf" "sweep run $i of 4: runs/${runs[$i]}: resuming at" "done: "
done
for i in 1 3; do
	logf=$(log_of "$PWD" pad-b "$jobB2" "$i")
	contains "$logf" "sweep run $i of 4: runs/${runs[$i]} is finished (epoch 2/2, iteration 160); nothing to do"
done
say "B: the resubmitted array resumed runs 0 and 2 and found 1 and 3 finished; comparing with A"
# Bit for bit: the checkpoint (every tensor and the position), the sample
# grids, and metrics.jsonl without its clock (time, it/s).
clockless() { sed -E 's/,"(time|it_per_sec)":[^,}]*//g' "$1"; }
for r in "${runs[@]}"; do
	for f in checkpoint.safetensors samples/epoch001-recon.png samples/epoch002-recon.png samples/epoch002-nrem.png samples/epoch002-rem.png samples/epoch002-filters.png; do
		cmp -s "$tmp/a/runs/$r/$f" "$tmp/b/runs/$r/$f" || die "B: runs/$r/$f differs from the uninterrupted run's"
	done
	cmp -s <(clockless "$tmp/a/runs/$r/metrics.jsonl") <(clockless "$tmp/b/runs/$r/metrics.jsonl") ||
		die "B: runs/$r/metrics.jsonl differs from the uninterrupted run's (besides time and it/s)"
	if compgen -G "$tmp/b/runs/$r/.*.tmp*" > /dev/null; then die "B: temporary files left in runs/$r"; fi
	printf '   %-20s %s  identical to A\n' "$r" "$(sha256sum < "runs/$r/checkpoint.safetensors" | cut -c1-16)"
done

# --- C: a failing task ----------------------------------------------------
say "C: 2 runs, one of which fails"
newstudy c
bin/pad sweep --datasets mnist,embedded --conditions pad --seeds 1 --data nodata \
	--set model.nf=8 --set model.nz=16 --set train.batch=32 --set data.train_limit=320 --set data.test_limit=320 \
	--set train.epochs=1 --set eval.every=0 --set device.threads=1 \
	"${slurm[@]}" --name pad-c --out sweep.sh
mkdir -p slurm-logs
jobC=$(submit)
wait_job "$jobC" 60
expect_task "$jobC" 0 FAILED 1:0
expect_task "$jobC" 1 COMPLETED 0:0
logC=$(log_of "$PWD" pad-c "$jobC" 0)
[ "$(grep -c '^pad: ' "$logC")" = 1 ] || { cat "$logC" >&2; die "$logC: want exactly one 'pad: ' error line"; }
# shellcheck disable=SC2016 # the backquotes are pad's
tail -1 "$logC" | grep -qE '^pad: mnist: .* not found; run `pad data fetch mnist( --dir [^`]*)?`' || { cat "$logC" >&2; die "$logC does not end with pad's error"; }
logf=$(log_of "$PWD" pad-c "$jobC" 1)
contains "$logf" "done: 10 iterations"
[ -s runs/embedded-pad-s1/checkpoint.safetensors ] || die "C: the other task's run has no checkpoint"
say "C: task 0 FAILED (exit 1) with: $(tail -1 "$logC")"
say "C: task 1 COMPLETED"
cd "$repo"
echo "Slurm check: A 4/4 tasks COMPLETED, pad report; B scancel, scontrol requeue and the time limit's SIGTERM resumed, every run bit-identical to A's; C the failing task FAILED alone"
