#!/usr/bin/env bash
# examples/mpi/run.sh: builds the MPI examples (sample_mpi.c with mpicc, sample_mpi.f90 with
# mpif90) into target/mpi, runs them on 1, 2, 3 and 4 ranks (uneven blocks, one thread and
# two per rank, observations longer than one sampling call), and compares every output file
# byte for byte with the one `innfer sample` writes in one process (the Rust API). With mpi4py
# importable, sample_mpi.py too. Then checks that a failing rank (a missing file on rank 0, a
# model that does not load, bytes corrupted on one rank) aborts the job with its message, never
# a hang, and measures 1 against 2 ranks on a longer job (docs/scaling.md).
#
# Needs Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev), gfortran, python3 with
# NumPy (to write the observations). Environment:
#   MPIRUN                  the launcher (default: mpirun --allow-run-as-root --oversubscribe)
#   INNFER_MPI_SPEEDUP_OBS  observations of the timed job (default 2000, 1000 samples each)
#   INNFER_MPI_SPEEDUP_REPS timed runs per rank count (default 3; the medians are compared)
#   INNFER_MPI_SPEEDUP_NICE the session's autogroup nice value for the timed runs (see below)
# Last line: mpi: c=<identical|differs> fortran=<identical|differs> speedup_2ranks=<x.xx>
set -euo pipefail
cd "$(dirname "$0")/../.."

read -r -a mpirun <<<"${MPIRUN:-mpirun --allow-run-as-root --oversubscribe}"
target=${CARGO_TARGET_DIR:-target}
work=$target/mpi
mkdir -p "$work"
model=models/kinematics.safetensors
failed=0

echo "== building the library, the CLI and the examples"
cargo build --release -p innfer-capi -p innfer-cli
lib=$target/release
mpicc -std=c99 -O2 -Wall -Wextra -Werror -Iinclude examples/mpi/sample_mpi.c \
  "$lib/libinnfer.a" -lpthread -ldl -lm -o "$work/sample_mpi_c"
mpif90 -std=f2008 -O2 -Wall -Wextra -Werror -J"$work" -c bindings/fortran/innfer.f90 \
  -o "$work/innfer.o"
mpif90 -std=f2008 -O2 -Wall -Wextra -Werror -I"$work" examples/mpi/sample_mpi.f90 \
  "$work/innfer.o" "$lib/libinnfer.a" -lpthread -ldl -lm -o "$work/sample_mpi_f"

# Observations of the arm model: end points (y0, y1); 1001 of them split unevenly over 2, 3
# and 4 ranks; 5 for the long runs (70,000 samples each: several sampling calls apiece).
python3 - "$work" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(2024)
for name, m in (("obs.npy", 1001), ("obs_long.npy", 5)):
    y = np.stack([rng.uniform(0.4, 1.9, m), rng.uniform(-0.9, 0.9, m)], axis=1)
    np.save(f"{sys.argv[1]}/{name}", y.astype(np.float32))
EOF

echo "== one process: innfer sample (the Rust API)"
"$lib/innfer" sample "$model" --y "$work/obs.npy" -n 100 --seed 42 --output "$work/ref.npy"
"$lib/innfer" sample "$model" --y "$work/obs_long.npy" -n 70000 --seed 7 --output "$work/ref_long.npy"

have_python=no
if python3 -c "import mpi4py, numpy" 2>/dev/null; then have_python=yes; fi
export PYTHONPATH=bindings/python${PYTHONPATH:+:$PYTHONPATH} INNFER_LIB=$lib/libinnfer.so

# run LANG RANKS ARGS...: the example of LANG on RANKS ranks (a hang fails after 10 minutes).
run() {
  local lang=$1 ranks=$2
  shift 2
  local exe=("$work/sample_mpi_$lang")
  [ "$lang" = py ] && exe=(python3 examples/mpi/sample_mpi.py)
  timeout 600 "${mpirun[@]}" -n "$ranks" "${exe[@]}" "$@"
}

declare -A verdict=([c]=identical [f]=identical [py]=identical)
langs=(c f)
[ "$have_python" = yes ] && langs+=(py)
echo "== 1-4 ranks against one process"
for lang in "${langs[@]}"; do
  for case in "1 1" "2 1" "3 1" "4 1" "2 2" "3 1 long"; do
    read -r ranks threads long <<<"$case"
    obs=$work/obs.npy n=100 seed=42 ref=$work/ref.npy
    [ -n "${long:-}" ] && obs=$work/obs_long.npy n=70000 seed=7 ref=$work/ref_long.npy
    out=$work/out_${lang}_${ranks}x${threads}${long:+_long}.npy
    rm -f "$out"
    run "$lang" "$ranks" "$model" "$obs" "$n" "$seed" "$out" "$threads" >/dev/null
    if cmp -s "$out" "$ref"; then result=identical; else result=differs verdict[$lang]=differs; fi
    echo "$lang: $ranks ranks x $threads threads${long:+, 70000 samples per observation}: $result"
    rm -f "$out"
  done
done
[ "$have_python" = yes ] || echo "python: mpi4py is not installed (pip install mpi4py): skipped"

echo "== a failing rank aborts the job with its message"
head -c 300000 "$model" >"$work/truncated.safetensors"
# expect_abort WHAT NEEDLE RUN-ARGS...: the job must fail, before the timeout, saying NEEDLE.
expect_abort() {
  local what=$1 needle=$2 log=$work/abort.log rc=0
  shift 2
  run "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || ! grep -q "$needle" "$log"; then
    echo "FAIL: $what: exit status $rc (124: a hang), expected a message with '$needle':"
    cat "$log"
    failed=1
  else
    echo "$what: aborted (exit status $rc): $(grep -m1 "$needle" "$log")"
  fi
}
for lang in "${langs[@]}"; do
  expect_abort "$lang, model file missing on rank 0" "rank 0: cannot read" \
    "$lang" 3 "$work/no-such-model.safetensors" "$work/obs.npy" 10 1 "$work/x.npy"
  expect_abort "$lang, model that does not load" "cannot load the model" \
    "$lang" 3 "$work/truncated.safetensors" "$work/obs.npy" 10 1 "$work/x.npy"
  INNFER_MPI_CORRUPT_RANK=2 expect_abort "$lang, bytes corrupted on rank 2" \
    "rank 2: cannot load the model" "$lang" 3 "$model" "$work/obs.npy" 10 1 "$work/x.npy"
done
rm -f "$work/x.npy" "$work/abort.log" "$work/truncated.safetensors"

echo "== strong scaling: 1 and 2 ranks, one thread each"
speedup_obs=${INNFER_MPI_SPEEDUP_OBS:-2000}
reps=${INNFER_MPI_SPEEDUP_REPS:-3}
python3 - "$work" "$speedup_obs" <<'EOF'
import sys
import numpy as np
rng = np.random.default_rng(7)
m = int(sys.argv[2])
y = np.stack([rng.uniform(0.4, 1.9, m), rng.uniform(-0.9, 0.9, m)], axis=1)
np.save(f"{sys.argv[1]}/obs_speedup.npy", y.astype(np.float32))
EOF
# Linux with autogroup scheduling shares the CPU between sessions, not processes: on a machine
# shared with other jobs a second rank gets no second core. INNFER_MPI_SPEEDUP_NICE (e.g. -19,
# root only) raises this session's weight for the timed runs, and restores it after them.
group_nice=
if [ -n "${INNFER_MPI_SPEEDUP_NICE:-}" ]; then
  group_nice=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$INNFER_MPI_SPEEDUP_NICE" >/proc/self/autogroup
  trap 'echo "$group_nice" >/proc/self/autogroup' EXIT
  echo "timed runs with $(cat /proc/self/autogroup)"
fi
declare -A wall=([1]="" [2]="") cpu=([1]="" [2]="")
for rep in $(seq "$reps"); do
  for ranks in 1 2; do
    line=$(run c "$ranks" "$model" "$work/obs_speedup.npy" 1000 1 "$work/speedup_$ranks.npy" 1)
    wall[$ranks]+="$(sed -n 's/.*threads: \([0-9.]*\) s,.*/\1/p' <<<"$line") "
    cpu[$ranks]+="$(sed -n 's/.*busiest rank \([0-9.]*\) CPU-s.*/\1/p' <<<"$line") "
    echo "run $rep: $line (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  done
  cmp -s "$work/speedup_1.npy" "$work/speedup_2.npy" || { echo "FAIL: 1 and 2 ranks differ"; failed=1; }
done
rm -f "$work"/speedup_*.npy
if [ -n "$group_nice" ]; then echo "$group_nice" >/proc/self/autogroup; fi
median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$(median "$1")" -v b="$(median "$2")" 'BEGIN {printf "%.2f", a / b}'; }
speedup=$(ratio "${wall[1]}" "${wall[2]}")
echo "medians: 1 rank $(median "${wall[1]}") s, 2 ranks $(median "${wall[2]}") s: speedup" \
  "$speedup, parallel efficiency $(awk -v s="$speedup" 'BEGIN {printf "%.0f %%", 50 * s}')"
# The busiest rank's CPU time bounds the wall time when every rank has a core to itself: on
# a loaded machine this ratio is what the split allows, the wall-clock one what the cores gave.
echo "CPU-s of the busiest rank: 1 rank $(median "${cpu[1]}"), 2 ranks $(median "${cpu[2]}"):" \
  "ratio $(ratio "${cpu[1]}" "${cpu[2]}")"

[ "$have_python" = yes ] && echo "mpi python: py=${verdict[py]}"
echo "mpi: c=${verdict[c]} fortran=${verdict[f]} speedup_2ranks=$speedup"
if [ "$failed" -ne 0 ] || [ "${verdict[c]}${verdict[f]}${verdict[py]}" != identicalidenticalidentical ]; then
  exit 1
fi
