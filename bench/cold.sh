#!/usr/bin/env bash
# Cold first response with `--on-demand` (the `http` example, release
# builds, -M microvm, user networking, TCG unless ACCEL says otherwise):
#
#   start: process start -> first HTTP response. A new runner each run, no
#          guest; the client connects as soon as the runner says it listens,
#          and that connection boots the guest. Figure: (curl's launch -
#          runner's launch) + curl's time_total.
#   idle:  connection -> first response: the guest down, the runner up:
#          one runner, `--idle-exit` stops the guest after each request;
#          curl's time_total for the request that boots it again. Four
#          ways, RUNS requests each, one after the other: a plain boot;
#          `--warm` (QEMU started with the guest paused, waiting); a
#          snapshot restore; `--warm --snapshot` (QEMU started with the
#          snapshot loaded, paused). A warm request is sent once the
#          runner says the next QEMU is up; the waiting QEMU's resident
#          memory (VmRSS) is read then.
#   boot:  QEMU's start -> the guest listens, from the runner's own line,
#          in the same runs.
#   snapshot: as start, with `--snapshot FILE` taken once before: each
#          boot restores the guest saved when it first listened; the runs
#          alternate with start's, so both see the same machine load.
#
# No retry anywhere: a refused or failed request stops the script.
# Usage: bench/cold.sh [RUNS]   (RUNS default 30; ACCEL=tcg|kvm, PORT=18089)
# (bench/snapshot.sh runs it with 100.)
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${1:-30}
ACCEL=${ACCEL:-tcg}
PORT=${PORT:-18089}
HOST=x86_64-unknown-linux-gnu
TARGET=${CARGO_TARGET_DIR:-target}
RUNNER=$TARGET/$HOST/release/unikernel-runner
IMAGE=$TARGET/x86_64-unknown-none/release/examples/http

die() { echo "bench/cold.sh: $*" >&2; exit 1; }
command -v curl >/dev/null || die "needs curl (apt-get install -y curl)"
echo "building the image and the runner (release)..." >&2
cargo build --quiet --release --example http
cargo build --quiet --release -p unikernel-runner --target "$HOST"

WORK=$(mktemp -d)
RUNNER_PID=
cleanup() {
    [ -n "$RUNNER_PID" ] && kill -INT "$RUNNER_PID" 2>/dev/null && wait "$RUNNER_PID" 2>/dev/null
    exec 3<&- 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

us() { date +%s%N | awk '{ printf "%d", $1 / 1000 }'; }

# start_runner ARGS...: starts the runner on demand; its stderr is read
# line by line on descriptor 3 (a FIFO, so nothing is polled).
start_runner() {
    rm -f "$WORK/err" && mkfifo "$WORK/err"
    "$RUNNER" "$IMAGE" --accel "$ACCEL" --on-demand --forward "$PORT:80" "$@" >/dev/null 2>"$WORK/err" &
    RUNNER_PID=$!
    exec 3<"$WORK/err"
}

# await TEXT: reads the runner's stderr up to a line containing TEXT; the
# boot line's milliseconds go to $WORK/boot.
await() {
    local line
    while IFS= read -r -u 3 line; do
        case $line in
            *"the guest listens behind port"*) sed -E 's/.* after ([0-9]+) ms.*/\1/' <<<"$line" >>"$WORK/boot" ;;
        esac
        case $line in *"$1"*) return 0 ;; esac
    done
    die "the runner ended before saying \"$1\""
}

stop_runner() {
    kill -INT "$RUNNER_PID"
    cat <&3 >/dev/null
    wait "$RUNNER_PID" || true
    exec 3<&-
    RUNNER_PID=
}

# request: curl's time_total in microseconds for one GET, which must answer 200.
request() {
    local out
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' "http://127.0.0.1:$PORT/")
    [ "${out% *}" = 200 ] || die "GET answered ${out% *}"
    awk -v s="${out#* }" 'BEGIN { printf "%d\n", s * 1000000 }'
}

# first_response FILE ARGS...: a new runner with ARGS; the time from its
# launch to the first response goes to FILE.
first_response() {
    local file=$1 t0 t1 total
    shift
    t0=$(us)
    start_runner "$@"
    await "on demand: listening on"
    t1=$(us)
    total=$(request)
    echo $(( t1 - t0 + total )) >>"$WORK/$file"
    await "the guest listens behind port"
    stop_runner
}

echo "taking the snapshot..." >&2
first_response taken --snapshot "$WORK/http.snap"
[ -s "$WORK/http.snap" ] || die "no snapshot was saved"
rm -f "$WORK/boot"
echo "start and snapshot: $RUNS runs each, a new runner each, alternating..." >&2
for _ in $(seq "$RUNS"); do
    first_response start
    cat "$WORK/boot" >>"$WORK/boot-start" && rm "$WORK/boot"
    first_response snapshot --snapshot "$WORK/http.snap"
    cat "$WORK/boot" >>"$WORK/boot-snapshot" && rm "$WORK/boot"
done

# idle FILE ARGS...: RUNS cold requests to one runner with ARGS; with
# --warm each waits until the next QEMU is up, and its VmRSS (KiB) goes
# to FILE-rss.
idle() {
    local file=$1 warm= qemu
    shift
    case " $* " in *" --warm "*) warm=1 ;; esac
    echo "idle $file: $RUNS cold requests to one runner..." >&2
    start_runner --idle-exit 0.2 "$@"
    await "on demand: listening on"
    for _ in $(seq "$RUNS"); do
        if [ -n "$warm" ]; then
            await "QEMU is up, the guest paused until a connection"
            qemu=$(pgrep -P "$RUNNER_PID" qemu-system)
            awk '/^VmRSS:/ { print $2 }' "/proc/$qemu/status" >>"$WORK/$file-rss"
        fi
        request >>"$WORK/$file"
        await "the guest stopped; the next connection starts it again"
    done
    stop_runner
}
idle idle
cat "$WORK/boot" >>"$WORK/boot-start"
idle idle-warm --warm
idle idle-snapshot --snapshot "$WORK/http.snap"
idle idle-warm-snapshot --warm --snapshot "$WORK/http.snap"

# stats FILE: n, p50, p99 (nearest rank) and max in ms with three decimals.
stats() {
    sort -n "$1" | awk '{ v[NR] = $1 } END {
        p50 = v[int((NR * 50 + 99) / 100)]; p99 = v[int((NR * 99 + 99) / 100)]
        printf "n=%d p50=%.3f ms p99=%.3f ms max=%.3f ms\n", NR, p50 / 1000, p99 / 1000, v[NR] / 1000 }'
}

echo "cold first response, --on-demand, http example, -M microvm, user networking, accel $ACCEL ($(nproc) cores)"
echo "start (process start -> first response): $(stats "$WORK/start")"
echo "snapshot (the same, each boot restoring a snapshot of $(( $(stat -c %s "$WORK/http.snap") >> 10 )) KiB): $(stats "$WORK/snapshot")"
awk '{ print $1 * 1000 }' "$WORK/boot-snapshot" >"$WORK/restore-us"
echo "restore (QEMU start -> restored guest listens again, runner's line): $(stats "$WORK/restore-us")"
echo "connection -> first response (guest down, runner up; curl time_total):"
echo "  plain boot:                  $(stats "$WORK/idle")"
echo "  --warm (paused, waiting):    $(stats "$WORK/idle-warm")"
echo "  snapshot restore:            $(stats "$WORK/idle-snapshot")"
echo "  --warm --snapshot (loaded):  $(stats "$WORK/idle-warm-snapshot")"
# rss FILE: the waiting QEMU's VmRSS, p50 and max, in MiB.
rss() { sort -n "$1" | awk '{ v[NR] = $1 } END { printf "p50=%.1f MiB max=%.1f MiB\n", v[int((NR + 1) / 2)] / 1024, v[NR] / 1024 }'; }
echo "waiting QEMU's VmRSS: --warm $(rss "$WORK/idle-warm-rss"); --warm --snapshot $(rss "$WORK/idle-warm-snapshot-rss")"
awk '{ print $1 * 1000 }' "$WORK/boot-start" >"$WORK/boot-us"
echo "boot  (QEMU start -> guest listens, runner's line, ms resolution): $(stats "$WORK/boot-us")"
