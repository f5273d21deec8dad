#!/usr/bin/env bash
# Density: N `http` unikernels (release builds, -M microvm, user networking,
# TCG unless ACCEL says otherwise) up at once, each under its own runner with
# its own forwarded host port on 127.0.0.1. Started in waves (QEMU's start is
# CPU-bound under TCG); every instance must then answer one GET with 200.
# The last line: `answering: A/N` and host memory per instance (PSS of the
# QEMU processes, from /proc/PID/smaps_rollup, and of their runners), the
# time to start all, and host CPU with all of them idle (/proc/stat).
#
# Usage: bench/density.sh N
#   MEMORY=2M     guest RAM of each (BENCHMARKS.md: http serves from 1728K)
#   WAVE=20       instances started before waiting for them to listen
#   PORT=22000    first host port; N consecutive ports, below the ephemeral range
#   IDLE=5        seconds over which idle CPU is measured
#   RUNNER_ARGS   more runner options for every instance, e.g.
#                 "--qemu-arg -accel --qemu-arg tcg,tb-size=4"
#   KSM=1         run the kernel's same-page merging (ksmd) while they run
#                 (root; the previous /sys/kernel/mm/ksm settings are restored),
#                 and measure once its merging levels off
#   MERGE=1       KSM=1 and the runner's --merge-memory for every instance
#   RUNNER, IMAGE a runner and an http image to use instead of building both
#   FLOOR=2048    MiB of MemAvailable below which no more instances start
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "bench/density.sh: $*" >&2; exit 1; }
N=${1:-}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "usage: bench/density.sh N (N instances, N >= 1)"
MEMORY=${MEMORY:-2M}
WAVE=${WAVE:-20}
PORT=${PORT:-22000}
IDLE=${IDLE:-5}
ACCEL=${ACCEL:-tcg}
KSM=${KSM:-0}
MERGE=${MERGE:-0}
FLOOR=${FLOOR:-2048}
read -ra EXTRA <<<"${RUNNER_ARGS:-}"
[ "$MERGE" = 1 ] && KSM=1 && EXTRA+=(--merge-memory)
KSM_DIR=/sys/kernel/mm/ksm

command -v curl >/dev/null || die "needs curl (apt-get install -y curl)"

# Limits, checked before anything starts.
LAST=$((PORT + N - 1))
read -r EPHEMERAL _ </proc/sys/net/ipv4/ip_local_port_range
[ "$LAST" -lt "$EPHEMERAL" ] || die "ports $PORT..$LAST reach the ephemeral range (from $EPHEMERAL): lower PORT or N"
taken=$(ss -Htln | awk -v a="$PORT" -v b="$LAST" '{ n = split($4, p, ":"); if (p[n] >= a && p[n] <= b) print p[n] }' | head -3 | xargs)
[ -z "$taken" ] || die "host ports already in use in $PORT..$LAST: $taken"
# Each instance: a runner (3 threads) and QEMU (4 threads), plus a margin.
tasks=$(awk '{ split($4, a, "/"); print a[2] }' /proc/loadavg)
limit=$(cat /proc/sys/kernel/pid_max)
[ $((tasks + N * 8)) -lt "$limit" ] || die "$N instances need ~$((N * 8)) more tasks; $tasks of pid_max $limit are in use"
[ "$(ulimit -u)" = unlimited ] || [ $((N * 8)) -lt "$(ulimit -u)" ] || die "ulimit -u $(ulimit -u) is below ~$((N * 8)) tasks"

if [ -z "${RUNNER:-}" ] || [ -z "${IMAGE:-}" ]; then
    HOST=x86_64-unknown-linux-gnu
    TARGET=${CARGO_TARGET_DIR:-target}
    RUNNER=$TARGET/$HOST/release/unikernel-runner
    IMAGE=$TARGET/x86_64-unknown-none/release/examples/http
    echo "building the image and the runner (release)..." >&2
    cargo build --quiet --release --example http
    cargo build --quiet --release -p unikernel-runner --target "$HOST"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/density.XXXXXX")
RUNNERS=()
KSM_SAVED=()
cleanup() {
    # A background subshell that failed before its exec must not clean up.
    [ "$BASHPID" = $$ ] || return 0
    # Only what this script started: its runners (each passes the signal on
    # to its QEMU and waits for it), then any QEMU child still there.
    if [ ${#RUNNERS[@]} -gt 0 ]; then
        local qemus
        qemus=$(children)
        kill -TERM "${RUNNERS[@]}" 2>/dev/null || true
        for _ in $(seq 100); do
            alive "${RUNNERS[@]}" || break
            sleep 0.1
        done
        # shellcheck disable=SC2086
        kill -KILL "${RUNNERS[@]}" $qemus 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    for saved in "${KSM_SAVED[@]}"; do echo "${saved#*=}" >"$KSM_DIR/${saved%%=*}" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# alive PID...: whether any of them still runs.
alive() { kill -0 "$@" 2>/dev/null; }

# children: the QEMU processes: each runner's main thread starts its QEMU.
children() {
    local files=()
    for r in "${RUNNERS[@]}"; do files+=("/proc/$r/task/$r/children"); done
    cat "${files[@]}" 2>/dev/null | tr ' ' '\n' | grep . || true
}

mem_available() { awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo; }

# pss PID...: their summed PSS in kB (processes gone meanwhile count 0).
pss() { for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done | awk '/^Pss:/ { s += $2 } END { print s + 0 }'; }

# cpu_ticks PID...: their summed user+system clock ticks.
cpu_ticks() { for p in "$@"; do cat "/proc/$p/stat" 2>/dev/null; done | awk '{ sub(/.*\) /, ""); s += $12 + $13 } END { print s + 0 }'; }

# host_cpu: "busy total" jiffies over all CPUs.
host_cpu() { awk '/^cpu / { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat; }

if [ "$KSM" = 1 ]; then
    [ -w "$KSM_DIR/run" ] || die "KSM=1 needs root and a writable $KSM_DIR"
    for f in run pages_to_scan sleep_millisecs; do KSM_SAVED+=("$f=$(cat "$KSM_DIR/$f")"); done
    # Fast enough to go over N instances' QEMU memory in seconds, not minutes.
    echo "${KSM_PAGES:-4000}" >"$KSM_DIR/pages_to_scan"
    echo 20 >"$KSM_DIR/sleep_millisecs"
    echo 1 >"$KSM_DIR/run"
fi

# listening I: whether instance I's runner said its port is open.
listening() { grep -q "listening on" "$WORK/err.$1" 2>/dev/null; }

avail_before=$(mem_available)
echo "starting $N instances in waves of $WAVE (ports $PORT..$LAST, $MEMORY each, accel $ACCEL)..." >&2
t0=$(date +%s%N)
started=0
stopped_early=
while [ $started -lt "$N" ]; do
    if [ "$(mem_available)" -lt "$FLOOR" ]; then
        stopped_early=" (stopped starting at $started: MemAvailable below $FLOOR MiB)"
        break
    fi
    wave=()
    while [ ${#wave[@]} -lt "$WAVE" ] && [ $started -lt "$N" ]; do
        "$RUNNER" "$IMAGE" --accel "$ACCEL" --memory "$MEMORY" --forward "tcp:$((PORT + started)):80" "${EXTRA[@]}" \
            </dev/null >/dev/null 2>"$WORK/err.$started" &
        RUNNERS+=($!)
        wave+=("$started:$!")
        started=$((started + 1))
    done
    # The wave is up when each of its runners said so or ended.
    deadline=$((SECONDS + 120))
    for w in "${wave[@]}"; do
        until listening "${w%%:*}" || ! alive "${w#*:}" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
    done
    echo "  $started started, $(mem_available) MiB available" >&2
done
ready=0
for i in $(seq 0 $((started - 1))); do listening "$i" && ready=$((ready + 1)); done
start_s=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')

echo "asking each for / ..." >&2
seq "$PORT" $((PORT + started - 1)) |
    xargs -P 4 -I{} curl -s -m 10 -o /dev/null -w '%{http_code}\n' "http://127.0.0.1:{}/" >"$WORK/codes" || true
answering=$(grep -c '^200$' "$WORK/codes" || true)
first_failure=$(grep -L "listening on" "$WORK"/err.* 2>/dev/null | head -1 || true)
[ -z "$first_failure" ] || { echo "one that did not listen ($first_failure):" >&2; tail -3 "$first_failure" >&2; }

mapfile -t QEMUS < <(children)
n=${#QEMUS[@]}
[ "$n" -gt 0 ] || die "no QEMU process is running"
ksm=
if [ "$KSM" = 1 ]; then
    # Until merging levels off: less than 1% more shared pages in 10 s.
    echo "waiting for ksmd to merge..." >&2
    t1=$SECONDS
    before=0
    while sharing=$(cat $KSM_DIR/pages_sharing) && [ $((sharing - before)) -gt $((sharing / 100)) ] && [ $((SECONDS - t1)) -lt 600 ]; do
        before=$sharing
        sleep 10
    done
    ksm=", ksm: $(cat $KSM_DIR/pages_sharing) pages sharing $(cat $KSM_DIR/pages_shared) after $((SECONDS - t1)) s more"
fi
KSMD=$(grep -lx ksmd /proc/[0-9]*/comm 2>/dev/null | cut -d/ -f3 || true)
sleep 2 # let the last requests settle before measuring idle
ticks0=$(cpu_ticks "${QEMUS[@]}")
ksmd0=$(cpu_ticks $KSMD)
read -r busy0 total0 < <(host_cpu)
sleep "$IDLE"
read -r busy1 total1 < <(host_cpu)
ticks1=$(cpu_ticks "${QEMUS[@]}")
ksmd1=$(cpu_ticks $KSMD)
# percent TICKS: TICKS over the IDLE seconds, in percent of one core.
percent() { awk -v d="$1" -v hz="$(getconf CLK_TCK)" -v s="$IDLE" 'BEGIN { printf "%.1f", 100 * d / hz / s }'; }
busy=$(awk -v b=$((busy1 - busy0)) -v t=$((total1 - total0)) 'BEGIN { printf "%.1f", 100 * b / t }')
cpu="QEMUs $(percent $((ticks1 - ticks0)))% of one core"
[ "$KSM" = 1 ] && cpu+=", ksmd $(percent $((ksmd1 - ksmd0)))%"

qemu_pss=$(pss "${QEMUS[@]}")
runner_pss=$(pss "${RUNNERS[@]}")
per() { awk -v kb="$1" -v n="$n" 'BEGIN { printf "%.1f", kb / n / 1024 }'; }

echo "density: http example, -M microvm, $MEMORY, user networking, accel $ACCEL, $(nproc) cores, runner options: ${EXTRA[*]:-none}${stopped_early}"
echo "listening: $ready/$started; QEMU processes: $n; whole host $busy% busy meanwhile (other users included); MemAvailable $avail_before -> $(mem_available) MiB${ksm}"
echo "answering: $answering/$N, host memory per instance: $(per "$qemu_pss") MiB PSS QEMU + $(per "$runner_pss") MiB PSS runner, all started in ${start_s} s, host CPU with all up and idle: $cpu"
