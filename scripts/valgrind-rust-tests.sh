#!/usr/bin/env bash
# Runs the Rust tests that exercise innfer's unsafe code (caller-memory arenas, SIMD kernels,
# strided views) under valgrind's memcheck: invalid reads/writes, uses of uninitialised memory
# and definite leaks fail the run. (Miri and the sanitizers need a nightly toolchain, which this
# project's machines do not have.) Valgrind reports no AVX-512 in CPUID, so the kernels run
# their AVX2 and portable paths here; the parity tests cover AVX-512 natively.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=(sessions errors no_allocation freia_parity gemm_differential load_file)
args=()
for t in "${tests[@]}"; do args+=(--test "$t"); done
bins=$(cargo test --release "${args[@]}" --no-run --message-format=json 2>/dev/null |
  python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        print(m["executable"])')
for bin in $bins; do
  echo "valgrind: $(basename "$bin")"
  valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
    --show-leak-kinds=definite \
    "$bin" --test-threads=1 -q
done
