#!/usr/bin/env bash
# Cold first response, plain boot vs snapshot restore, each also --warm
# (QEMU started ahead), over 100 starts or requests
# each (or RUNS): bench/cold.sh measures both, alternating.
# Usage: bench/snapshot.sh [RUNS]   (ACCEL=tcg|kvm, PORT=18089)
exec "$(dirname "$0")/cold.sh" "${1:-100}"
