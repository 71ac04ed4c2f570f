#!/usr/bin/env bash
# Start-up of `innfer sample` on the large model (docs/performance.md §targets): process start + load + first
# sample, as wall time over RUNS runs (median), and the peak resident memory of one run next
# to the model's packed weights.
#
#   scripts/startup.sh [RUNS]        (default 20; builds the release CLI and the model first)
#
# The model is tests/common's glow_large (64-wide GLOW, 12 blocks, hidden 512, about 30 MB of
# f32 weights), written by `cargo run --release --example make_large_model`. Uses hyperfine
# if installed, else a shell loop. A measurement, not a test: it asserts nothing.
set -euo pipefail

RUNS="${1:-20}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
MODEL="$TARGET/glow_large.safetensors"
BIN="$TARGET/release/innfer"
cd "$ROOT"

cargo build --release -q -p innfer-cli
[ -f "$MODEL" ] || cargo run --release -q --example make_large_model -- "$MODEL"
CMD=("$BIN" sample "$MODEL" --y 0.5,-0.5 -n 1)
"${CMD[@]}" >/dev/null # warm the page cache

echo "machine: $(nproc) cores, $(uptime | sed 's/.*load average/load average/')"
echo "model: $MODEL ($(stat -c %s "$MODEL") bytes)"
"$BIN" info "$MODEL" | grep -E '^(parameters|session memory)'

if command -v hyperfine >/dev/null; then
    hyperfine -N -w 3 -r "$RUNS" --export-json "$TARGET/startup.json" "${CMD[*]}" | sed -n '2,4p'
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("median %.1f ms, min %.1f ms" % (r["median"]*1e3, r["min"]*1e3))' "$TARGET/startup.json"
else
    times=()
    for _ in $(seq "$RUNS"); do
        t0=$(date +%s%N)
        "${CMD[@]}" >/dev/null
        times+=($(( ($(date +%s%N) - t0) / 1000 )))
    done
    sorted=($(printf '%s\n' "${times[@]}" | sort -n))
    echo "median $((sorted[RUNS / 2] / 1000)).$(( (sorted[RUNS / 2] % 1000) / 100 )) ms over $RUNS runs"
fi

# Peak RSS of one run, beside that of a run that loads nothing (`innfer --version`): the
# difference is the model (parameters × 4 bytes in f32, plus packing) and the loader's overhead.
if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then
    peak() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
    echo "peak RSS $(peak "${CMD[@]}") kB (innfer --version: $(peak "$BIN" --version) kB)"
fi
