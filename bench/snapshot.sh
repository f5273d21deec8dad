#!/usr/bin/env bash
# Cold first response, plain boot vs snapshot restore, each also with
# --warm (QEMU started ahead), 100 runs each (or RUNS): bench/cold.sh.
# Usage: bench/snapshot.sh [RUNS]   (ACCEL=tcg|kvm, PORT=18089)
exec "$(dirname "$0")/cold.sh" "${1:-100}"
