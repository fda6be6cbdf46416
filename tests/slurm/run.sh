#!/usr/bin/env bash
# make test-slurm: run the smoke workflow on a real one-node Slurm cluster on this machine.
#
# 1. installs Debian's slurm-wlm and munge if missing (needs root and apt-get);
# 2. starts a private munged, slurmctld and slurmd: config, state, logs, munge key and socket in
#    a fresh temporary directory, free TCP ports, no accounting database (squeue for job states,
#    a job-completion text log to see which jobs ran); never touches a system-wide Slurm;
# 3. runs `snakemake --workflow-profile profiles/slurm --configfile config/smoke.yaml` in a copy
#    of the repository and checks that the jobs really ran as (grouped) Slurm jobs;
# 4. runs the same smoke config locally in another copy (at the same time) and checks that the
#    metrics tables are identical (wall-time columns aside);
# 5. runs a tiny workflow with a deliberately failing rule (tests/slurm/failing/Snakefile):
#    checks the failure is reported with its Slurm log path, then that the rerun resumes;
# 6. checks that a GPU request (resource gpu=1, docs/cluster.md) reaches sbatch;
# 7. stops only the daemons it started (by pid, trap on EXIT) and removes its temporary files.
# Prints one line per check and `slurm: N passed, M failed`; exit status 1 if any check failed.
#
# Environment: MNCRL_SLURM_KEEP=1 keeps the temporary directory (printed at the start);
# MNCRL_SLURM_TIMEOUT (seconds, default 900) bounds each Snakemake run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV_BIN="$REPO/.venv/bin"
SNAKEMAKE="$VENV_BIN/snakemake"
PYTHON="$VENV_BIN/python"
RUN_TIMEOUT=${MNCRL_SLURM_TIMEOUT:-1800}
PARTITION=mncrltest
START=$SECONDS

# ---------------------------------------------------------------- checks and the summary
PASSED=0
FAILED=0
log() { printf '[test-slurm %4ds] %s\n' "$((SECONDS - START))" "$*"; }
die() { log "ERROR: $*"; echo "slurm: $PASSED passed, $((FAILED + 1)) failed"; exit 1; }
declare -a RESULTS=()
pass() { PASSED=$((PASSED + 1)); RESULTS+=("PASS  $1"); log "PASS  $1"; }
fail() { FAILED=$((FAILED + 1)); RESULTS+=("FAIL  $1"); log "FAIL  $1"; }
check() {  # check "description" command...
    local what=$1; shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}

# ---------------------------------------------------------------- preconditions, packages
[[ -x "$SNAKEMAKE" ]] || die "$SNAKEMAKE not found: run 'make setup' first"
"$PYTHON" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null \
    || die "snakemake-executor-plugin-slurm missing: pip install -e '.[cluster]'"
[[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, runs slurmd as SlurmUser=root)"
command -v git >/dev/null || die "git is needed to copy the repository's files"

missing=()
for tool in munged munge unmunge slurmctld slurmd sbatch srun squeue sinfo scontrol scancel; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing slurm-wlm and munge (missing: ${missing[*]})"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
SLURM_VERSION=$(slurmctld -V 2>&1 | head -n1)
log "using $SLURM_VERSION, $(munged -V 2>&1 | head -n1)"

# ---------------------------------------------------------------- temporary cluster
# Daemons left by an earlier, killed run (or another cluster) do not interfere: this run has its
# own directory, munge socket and ports. They are reported, never stopped.
stale=$(pgrep -a -f '^(munged|slurmctld|slurmd)( |$)' || true)
[[ -z $stale ]] || log "note: Slurm/munge daemons not started by this run (left alone):"$'\n'"$stale"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mncrl-slurm.XXXXXX")
chmod 755 "$WORK"   # munged requires every directory above its socket to be searchable
declare -A DAEMON_PID=()
declare -A RUNNING=()   # pid of `timeout` -> log file, for every Snakemake run in progress

stop_daemons() {
    local status=$?
    set +e
    local pid
    for pid in "${!RUNNING[@]}"; do   # `timeout` passes TERM on; snakemake scancels its jobs
        log "stopping the Snakemake run writing ${RUNNING[$pid]}"
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${!RUNNING[@]}"; do wait "$pid" 2>/dev/null; done
    if [[ -n ${DAEMON_PID[slurmctld]:-} ]] && kill -0 "${DAEMON_PID[slurmctld]}" 2>/dev/null; then
        # this controller only knows the jobs of this test: cancel them before stopping slurmd
        scancel --partition="$PARTITION" 2>/dev/null
        for _ in $(seq 20); do
            [[ -z $(squeue --noheader --states=PENDING,RUNNING,COMPLETING 2>/dev/null) ]] && break
            sleep 1
        done
    fi
    for name in slurmd slurmctld munged; do
        local pid=${DAEMON_PID[$name]:-}
        [[ -n $pid ]] || continue
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    # Job processes outlive a stopped slurmd; any still running in our directory are ours.
    local proc cwd
    for proc in /proc/[0-9]*; do
        cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
        [[ $cwd == "$WORK" || $cwd == "$WORK"/* ]] || continue
        [[ ${proc#/proc/} == "$$" ]] && continue
        log "stopping leftover job process ${proc#/proc/} ($(tr '\0' ' ' <"$proc/cmdline" | cut -c1-80))"
        kill -KILL "${proc#/proc/}" 2>/dev/null
    done
    if [[ ${MNCRL_SLURM_KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap stop_daemons EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log "temporary directory $WORK"

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_daemon() {  # start_daemon NAME command... (runs in the foreground mode of the daemon)
    # In its own session: a Ctrl-C / CI cancel sent to this script's process group must not stop
    # the daemons before the EXIT trap has stopped the Snakemake runs (which scancel their jobs)
    # and cancelled what is left. ($! is the daemon: a background job of a script is no process
    # group leader, so setsid execs it without forking.)
    local name=$1; shift
    setsid "$@" >"$WORK/$name.out" 2>&1 </dev/null &
    DAEMON_PID[$name]=$!
}

daemon_alive() {  # daemon_alive NAME: is the process we started still running?
    kill -0 "${DAEMON_PID[$1]}" 2>/dev/null
}

show_daemon_logs() {
    local name
    for name in munged slurmctld slurmd; do
        [[ -s "$WORK/$name.out" ]] && { echo "--- $name output (last lines)"; tail -n 15 "$WORK/$name.out"; }
    done
}

# munge: own key, socket, pid and seed files; the system's munged (if any) is left alone.
mungekey --create --keyfile="$WORK/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$WORK/munge.key" bs=1 count=1024 status=none
chmod 600 "$WORK/munge.key"
start_daemon munged munged --foreground --socket="$WORK/munge.sock" --key-file="$WORK/munge.key" \
    --log-file="$WORK/munged.log" --pid-file="$WORK/munged.pid" --seed-file="$WORK/munged.seed"
for _ in $(seq 50); do
    munge -n -S "$WORK/munge.sock" 2>/dev/null | unmunge -S "$WORK/munge.sock" >/dev/null 2>&1 && break
    daemon_alive munged || break
    sleep 0.2
done
munge -n -S "$WORK/munge.sock" | unmunge -S "$WORK/munge.sock" >/dev/null 2>&1 \
    || { show_daemon_logs; die "munged did not start"; }

# slurm.conf for this machine: loopback, real CPU count, real memory minus a margin.
NODE=$(hostname -s)
HOST=$(hostname)
CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
MEM_MB=$((MEM_MB > 3072 ? MEM_MB - 1024 : MEM_MB * 2 / 3))
CTLD_PORT=$(free_port)
SLURMD_PORT=$(free_port)
while [[ $SLURMD_PORT == "$CTLD_PORT" ]]; do SLURMD_PORT=$(free_port); done
mkdir -p "$WORK/state" "$WORK/spool"
sed -e "s|@DIR@|$WORK|g" -e "s|@HOST@|$HOST|g" -e "s|@NODE@|$NODE|g" \
    -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@CPUS@|$CPUS|g" \
    -e "s|@MEM_MB@|$MEM_MB|g" -e "s|@PARTITION@|$PARTITION|g" \
    "$REPO/tests/slurm/slurm.conf.in" >"$WORK/slurm.conf"
export SLURM_CONF="$WORK/slurm.conf"
unset SLURM_JOB_ID SLURM_JOBID   # in case this script itself runs inside a Slurm job

# The slurm-jobstep plugin (0.6.1) drops every SLURM_* variable, SLURM_CONF included, before
# its `srun` inside a job; real clusters keep slurm.conf where srun finds it by default
# (/etc/slurm) or run configless. This srun wrapper points it back at our slurm.conf.
mkdir -p "$WORK/bin"
SRUN=$(command -v srun)
printf '#!/bin/sh\nSLURM_CONF=%q exec %q "$@"\n' "$SLURM_CONF" "$SRUN" >"$WORK/bin/srun"
chmod 755 "$WORK/bin/srun"
export PATH="$WORK/bin:$VENV_BIN:$PATH"

start_daemon slurmctld slurmctld -D -f "$SLURM_CONF"
start_daemon slurmd slurmd -D -f "$SLURM_CONF" -N "$NODE"
node_state=""
for _ in $(seq 120); do
    node_state=$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)
    [[ $node_state == idle ]] && break
    daemon_alive slurmctld && daemon_alive slurmd || break
    sleep 0.5
done
if [[ $node_state != idle ]]; then
    show_daemon_logs
    die "node $NODE is not idle (state: '${node_state:-none}')"
fi
log "Slurm is up: node $NODE ($CPUS CPUs, $MEM_MB MB), ports $CTLD_PORT/$SLURMD_PORT"

# ---------------------------------------------------------------- helpers for the checks
copy_repo() {  # copy_repo DEST: tracked + untracked-not-ignored files (no results, no .venv)
    mkdir -p "$1"
    git -C "$REPO" ls-files -z --cached --others --exclude-standard \
        | (cd "$REPO" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
        | tar -C "$REPO" --null -T - -cf - | tar -C "$1" -xf -
}

# Snakemake runs go to the background and are waited for: `wait` returns as soon as a signal
# arrives (a foreground command would delay the traps until it ends), and `timeout` runs in its
# own process group, so the EXIT trap stops the runs explicitly.
start_snakemake() {  # start_snakemake VAR DIR LOGFILE args...: background run, its pid in VAR
    local var=$1 dir=$2 out=$3; shift 3
    # The copy's own src/ first (the Snakefile imports mncrl; the editable install would point
    # back at the working tree, which may change while the test runs). Jobs inherit it.
    (cd "$dir" && export PYTHONPATH="$dir/src${PYTHONPATH:+:$PYTHONPATH}" \
        && exec timeout --kill-after=30 "$RUN_TIMEOUT" "$SNAKEMAKE" "$@") >"$out" 2>&1 &
    RUNNING[$!]=$out
    printf -v "$var" '%s' "$!"
}

finish_snakemake() {  # finish_snakemake PID: wait for the run, return its exit status
    local status=0
    wait "$1" || status=$?
    unset "RUNNING[$1]"
    return "$status"
}

run_snakemake() {  # run_snakemake DIR LOGFILE args...: exit status of snakemake, output in LOGFILE
    local pid
    start_snakemake pid "$@"
    finish_snakemake "$pid"
}

slurm_job_ids() {  # Slurm job ids that Snakemake reports in LOGFILE, one per line
    sed -n 's/.*submitted with SLURM jobid \([0-9][0-9]*\).*/\1/p' "$1"
}

jobcomp_state() {  # final state of a Slurm job in the job-completion log
    sed -n "s/^JobId=$1 .*JobState=\([A-Z_]*\).*/\1/p" "$WORK/jobcomp.log" | tail -n1
}

all_jobs_completed() {  # every id on stdin has JobState=COMPLETED in the completion log
    local id state bad=0
    while read -r id; do
        state=$(jobcomp_state "$id")
        [[ $state == COMPLETED ]] || { log "  Slurm job $id: state '${state:-not in log}'"; bad=1; }
    done
    return "$bad"
}

# Flags needed without an accounting database (squeue instead of sacct; the controller keeps
# finished jobs for MinJobAge=600 s) and for a fast test (poll every few seconds, keep the logs
# of successful jobs so they can be checked). --slurm-no-account is a no-op in plugin 2.8.0:
# it still tries to guess an account and proceeds without one.
SLURM_TEST_FLAGS=(--slurm-status-command squeue --slurm-no-account
                  --slurm-init-seconds-before-status-checks 3 --slurm-keep-successful-logs
                  --latency-wait 15)
SMOKE=(--configfile config/smoke.yaml)

# ---------------------------------------------------------------- 1. smoke config on Slurm
SLURM_RUN="$WORK/slurm-run"
LOCAL_RUN="$WORK/local-run"
copy_repo "$SLURM_RUN"
copy_repo "$LOCAL_RUN"
# The local reference run shares the 2 cores with the Slurm run: Slurm jobs leave cores idle
# (status polling, one core per group job), so running both at once saves minutes.
log "smoke workflow locally, in the background: snakemake ${SMOKE[*]} --cores $CPUS"
LOCAL_START=$(date +%s)
start_snakemake LOCAL_PID "$LOCAL_RUN" "$WORK/local-run.log" "${SMOKE[@]}" --cores "$CPUS"
log "smoke workflow on Slurm: snakemake --workflow-profile profiles/slurm ${SMOKE[*]} ${SLURM_TEST_FLAGS[*]}"
t0=$SECONDS
slurm_status=0
run_snakemake "$SLURM_RUN" "$WORK/slurm-run.log" --workflow-profile profiles/slurm "${SMOKE[@]}" \
    "${SLURM_TEST_FLAGS[@]}" || slurm_status=$?
SLURM_SECONDS=$((SECONDS - t0))
check "smoke workflow on Slurm exits 0 ($SLURM_SECONDS s)" test "$slurm_status" -eq 0

mapfile -t SMOKE_IDS < <(slurm_job_ids "$WORK/slurm-run.log")
N_SLURM=${#SMOKE_IDS[@]}
# Snakemake jobs that ran somewhere (the target rule `all` runs nowhere)
N_RULE_JOBS=$(awk '/^Job stats:/ {s = 1; next} s && $1 == "total" {print $2; exit}' \
    "$WORK/slurm-run.log")
N_RULE_JOBS=$((${N_RULE_JOBS:-1} - 1))
check "Snakemake submitted $N_SLURM Slurm jobs for $N_RULE_JOBS workflow jobs" test "$N_SLURM" -gt 0
check "every Slurm job is COMPLETED in the job-completion log" \
    all_jobs_completed < <(printf '%s\n' "${SMOKE_IDS[@]}")
slurm_logs_present() {
    local id
    for id in "${SMOKE_IDS[@]}"; do  # slurm_logs/<group or rule>[/<wildcards>]/<id>.log
        [[ -n $(find "$SLURM_RUN/.snakemake/slurm_logs" -name "$id.log") ]] || return 1
    done
}
check "every Slurm job has its log in .snakemake/slurm_logs/" slurm_logs_present
check "grouping: the grid cells ran as group jobs (slurm_logs/group_cells_*/)" \
    compgen -G "$SLURM_RUN/.snakemake/slurm_logs/group_cells_*" >/dev/null
check "grouping: fewer Slurm jobs ($N_SLURM) than workflow jobs ($N_RULE_JOBS)" \
    test "$N_SLURM" -lt "$N_RULE_JOBS"
ran_inside_slurm() {  # each Slurm job's log shows Snakemake's job-step executor at work
    local id file
    for id in "${SMOKE_IDS[@]}"; do
        file=$(find "$SLURM_RUN/.snakemake/slurm_logs" -name "$id.log" | head -n1)
        [[ -n $file ]] && grep -q -- '--executor slurm-jobstep' "$file" || return 1
    done
}
check "every Slurm job log shows the rules run by Snakemake's slurm-jobstep executor" \
    ran_inside_slurm

# ---------------------------------------------------------------- 2. the same config locally
log "waiting for the local run"
local_status=0
finish_snakemake "$LOCAL_PID" || local_status=$?
LOCAL_SECONDS=$(($(stat -c %Y "$WORK/local-run.log") - LOCAL_START))
check "smoke workflow locally exits 0 ($LOCAL_SECONDS s)" test "$local_status" -eq 0
log "comparing metrics tables (Slurm run vs local run):"
check "metrics tables of the Slurm and the local run are identical (except 'seconds')" \
    "$PYTHON" "$REPO/tests/slurm/compare_tables.py" "$SLURM_RUN/results" "$LOCAL_RUN/results"

# ---------------------------------------------------------------- 3. a failing job, then resume
FAIL_DIR="$WORK/failing"
mkdir -p "$FAIL_DIR"
cp "$REPO/tests/slurm/failing/Snakefile" "$FAIL_DIR/Snakefile"
log "deliberately failing job (tests/slurm/failing/Snakefile, --retries 0)"
fail_status=0
run_snakemake "$FAIL_DIR" "$WORK/failing-1.log" --workflow-profile "$REPO/profiles/slurm" \
    "${SLURM_TEST_FLAGS[@]}" --retries 0 || fail_status=$?
check "a failing job makes Snakemake exit non-zero (exit $fail_status)" test "$fail_status" -ne 0
FLAKY_ID=$(sed -n 's/.*submitted with SLURM jobid \([0-9]*\) (log: \(.*rule_flaky.*\)).*/\1/p' \
    "$WORK/failing-1.log" | head -n1)
FLAKY_LOG="$FAIL_DIR/.snakemake/slurm_logs/rule_flaky/$FLAKY_ID.log"
check "the failed job is in the job-completion log as FAILED (job ${FLAKY_ID:-?})" \
    test "$(jobcomp_state "${FLAKY_ID:-none}")" = FAILED
error_report_names_log() {  # e.g. "    log: logs/flaky.log, <slurm log> (check log file(s) ..."
    grep -F -- "$FLAKY_LOG" "$WORK/failing-1.log" | grep -q '^ *log: .*(check log file(s) for error'
}
check "the error report names the Slurm log of the failed job" error_report_names_log
check "that Slurm log is kept and shows the job's error" \
    grep -q 'mncrl-slurm-test: deliberate failure' "$FLAKY_LOG"
check "keep-going: the independent job still completed" test -s "$FAIL_DIR/out/good.txt"

touch "$FAIL_DIR/FIXED"
resume_status=0
run_snakemake "$FAIL_DIR" "$WORK/failing-2.log" --workflow-profile "$REPO/profiles/slurm" \
    "${SLURM_TEST_FLAGS[@]}" --retries 0 || resume_status=$?
mapfile -t RESUME_IDS < <(slurm_job_ids "$WORK/failing-2.log")
check "the rerun exits 0 and resubmits only the failed job (${#RESUME_IDS[@]} Slurm job)" \
    test "$resume_status" -eq 0 -a "${#RESUME_IDS[@]}" -eq 1 -a -s "$FAIL_DIR/out/flaky.txt"

# ---------------------------------------------------------------- 4. a GPU request
# docs/cluster.md asks for a GPU per estimator job with the resource `gpu: 1`. This node has no
# GPU, so Slurm must refuse the job: the refusal (with the plugin's sbatch call) shows the request
# reaches sbatch as --gpus=1.
GPU_DIR="$WORK/gpu"
mkdir -p "$GPU_DIR"
cp "$REPO/tests/slurm/failing/Snakefile" "$GPU_DIR/Snakefile"
gpu_status=0
run_snakemake "$GPU_DIR" "$WORK/gpu.log" out/good.txt --workflow-profile "$REPO/profiles/slurm" \
    "${SLURM_TEST_FLAGS[@]}" --retries 0 --set-resources good:gpu=1 || gpu_status=$?
gpu_request_refused() {
    [[ $gpu_status -ne 0 ]] && grep -q 'SLURM sbatch failed' "$WORK/gpu.log" \
        && grep -A2 'sbatch call:' "$WORK/gpu.log" | grep -q -- '--gpus=1'
}
check "set-resources gpu=1 reaches sbatch as --gpus=1 (refused: no GPU here)" gpu_request_refused

# ---------------------------------------------------------------- summary
if ((FAILED)); then
    for out in slurm-run local-run failing-1 failing-2 gpu; do
        [[ -s "$WORK/$out.log" ]] && { echo "--- $out.log (last 40 lines)"; tail -n 40 "$WORK/$out.log"; }
    done
    show_daemon_logs
fi
echo
echo "Slurm test summary ($SLURM_VERSION, node $NODE: $CPUS CPUs, $MEM_MB MB)"
echo "  smoke on Slurm: $SLURM_SECONDS s, $N_SLURM Slurm jobs for $N_RULE_JOBS workflow jobs;" \
    "locally: $LOCAL_SECONDS s; total $((SECONDS - START)) s"
if ((N_SLURM)); then
    echo "  Slurm jobs of the smoke run (job id, Snakemake rule or group, state, time limit, wall):"
    for id in "${SMOKE_IDS[@]}"; do
        what=$(sed -n "s|.*submitted with SLURM jobid $id (log: .*/slurm_logs/\([^/]*\)/.*|\1|p" \
            "$WORK/slurm-run.log" | head -n1)
        line=$(grep "^JobId=$id " "$WORK/jobcomp.log" | tail -n1 || true)
        field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
        wall=$(($(date -d "$(field EndTime)" +%s 2>/dev/null || echo 0) \
                - $(date -d "$(field StartTime)" +%s 2>/dev/null || echo 0)))
        printf '    %-6s %-40s %-10s %5s min %5s s\n' "$id" "$what" "$(field JobState)" \
            "$(field TimeLimit)" "$wall"
    done
fi
printf '  %s\n' "${RESULTS[@]}"
echo "slurm: $PASSED passed, $FAILED failed"
((FAILED == 0))
