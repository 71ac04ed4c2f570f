#!/usr/bin/env bash
# Runs the programs that use the C library from outside Rust — the C test programs (tests/c),
# the C example, the C++ binding's test and example, the Fortran module's test and example —
# built with AddressSanitizer and UndefinedBehaviorSanitizer (gcc, g++, gfortran), then built
# plainly and run under valgrind's memcheck, and the threads test under helgrind. Any report
# fails the run: an invalid read or write, a use after free, undefined behaviour, a definite
# leak, a data race.
#
# The library is the release libinnfer.a (`cargo build --release -p innfer-capi`), linked statically; its
# Rust code is not instrumented (that needs a nightly toolchain), but every allocation it makes
# goes through the sanitizer's and valgrind's allocator, so misuse of its memory from the
# calling side is caught, as are the bindings' own errors. tests/c/noalloc.c and
# tests/c/packed.c are left out: they replace malloc themselves, which the sanitizer and
# valgrind also do.
#
#   bash scripts/sanitize-bindings.sh          (needs gcc, g++, gfortran and valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in cc c++ gfortran valgrind; do
  command -v "$tool" >/dev/null || { echo "sanitize-bindings: $tool is not installed"; exit 1; }
done

cargo build --release -p innfer-capi
lib="${CARGO_TARGET_DIR:-target}/release/libinnfer.a"
deps=(-lpthread -ldl -lm)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fixtures=tests/fixtures
cinn=$fixtures/pypi_cinn_stats/model.safetensors
toy=$fixtures/pypi_toy_inn/model.safetensors
plain=$fixtures/pypi_rnvp_tanh/model.safetensors
truncated=$work/truncated.safetensors
head -c "$(( $(stat -c %s "$cinn") / 2 ))" "$cinn" >"$truncated"

# Builds every program into $work/$1 with the extra compiler flags $2.
build() {
  local out=$work/$1 flags=$2
  mkdir -p "$out/mod"
  local c=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -pedantic -Werror -O1 -g -pthread $flags)
  for p in sample misuse streams summary threads non_finite model_info; do
    cc "${c[@]}" -Iinclude -Itests/c "tests/c/$p.c" "$lib" "${deps[@]}" -o "$out/$p"
  done
  cc "${c[@]}" -Iinclude examples/c/sample.c "$lib" "${deps[@]}" -o "$out/c_example"
  local cxx=(-std=c++17 -Wall -Wextra -pedantic -Werror -O1 -g $flags -Iinclude -Ibindings/cpp)
  c++ "${cxx[@]}" tests/bindings/cpp_api.cpp "$lib" "${deps[@]}" -o "$out/cpp_api"
  c++ "${cxx[@]}" examples/cpp/sample.cpp "$lib" "${deps[@]}" -o "$out/cpp_example"
  local f=(-std=f2008 -Wall -Wextra -Werror -fcheck=all -O1 -g $flags)
  gfortran "${f[@]}" -J "$out/mod" -c bindings/fortran/innfer.f90 -o "$out/innfer.o"
  gfortran "${f[@]}" -I "$out/mod" tests/bindings/fortran_api.f90 "$out/innfer.o" "$lib" \
    "${deps[@]}" -o "$out/fortran_api"
  gfortran "${f[@]}" -I "$out/mod" examples/fortran/sample.f90 "$out/innfer.o" "$lib" \
    "${deps[@]}" -o "$out/fortran_example"
}

# Runs every program of $work/$1, each behind the command prefix in the remaining arguments,
# with the arguments tests/c_api.rs and tests/bindings_examples.rs give them.
run_all() {
  local dir=$work/$1
  shift
  local out=$dir/out
  mkdir -p "$out"
  local runs=(
    "sample $cinn $out/s1.f32 5 1 9 heap file"
    "sample $toy $out/s2.f32 5 1 9 static bytes"
    "misuse $cinn $plain $truncated $work/no-such-model.safetensors"
    "streams $toy $out/streams.f32 3 1 5 4 6"
    "summary $toy $out/summary.f32 3 1 4 6 8"
    "threads $toy $out/threads.f32 9"
    "non_finite models/kinematics.safetensors"
    "model_info $cinn"
    "c_example $cinn 1.5,-0.25 100"
    "cpp_api $fixtures"
    "cpp_example $toy 0.5,-1,0.25,2 100"
    "fortran_api $fixtures"
    "fortran_example $cinn 1.5,-0.25 100"
  )
  local r
  for r in "${runs[@]}"; do
    read -r -a argv <<<"$r"
    echo "  $1 ${argv[0]}"
    if ! "$@" "$dir/${argv[0]}" "${argv[@]:1}" >"$out/log" 2>&1; then
      cat "$out/log"
      echo "sanitize-bindings: ${argv[0]} failed under: $*"
      exit 1
    fi
  done
}

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
build asan "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# allocator_may_return_null: misuse.c asks for sessions larger than any machine, which the
# library must refuse with INNFER_STATUS_OUT_OF_MEMORY when the allocator returns NULL (as
# malloc does); ASan would otherwise abort on the request instead of returning NULL.
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:allocator_may_return_null=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_all asan env

echo "== valgrind memcheck"
build plain ""
run_all plain valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite

echo "== valgrind memcheck over every refused allocation of a load and a session creation"
# tests/c/fault/fail_nth_alloc.c (tests/c_fault_injection.rs) counts the leaks itself; memcheck
# adds the invalid reads and writes of each failure path.
wrap=-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=posix_memalign,--wrap=aligned_alloc
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -pedantic -Werror -O1 -g -Iinclude -Itests/c \
  tests/c/fault/fail_nth_alloc.c "$wrap,--wrap=memalign,--wrap=free" "$lib" "${deps[@]}" \
  -o "$work/fail_nth_alloc"
valgrind -q --leak-check=no --error-exitcode=99 "$work/fail_nth_alloc" "$cinn" 64 \
  >"$work/fault.log" 2>&1 || { cat "$work/fault.log"; exit 1; }

echo "== valgrind helgrind: 4 threads sharing a model, each with its own session"
valgrind -q --tool=helgrind --error-exitcode=99 "$work/plain/threads" "$toy" "$work/threads.f32" 9

echo "sanitize-bindings: clean"
