#!/usr/bin/env bash
# Miri over the library's unit tests and the C API called from Rust (tests/ffi_miri.rs), on the
# portable kernels (Miri never picks AVX2/AVX-512: src/kernels/gemm/mod.rs `Isa::is_available`),
# under both of Miri's aliasing models: Stacked Borrows (the default) and Tree Borrows.
#
# Needs the nightly toolchain with the miri and rust-src components:
#   rustup toolchain install nightly --profile minimal --component miri,rust-src
# Unit tests Miri cannot run in minutes, or at all (a real file, mmap flags it does not support,
# an exact float tie it perturbs), are `#[cfg_attr(miri, ignore)]`, each with its reason.
# About 2 minutes under Stacked and 3.5 under Tree Borrows on two cores (5.5 in all, build
# included). Any UB, leak or failure fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "scripts/miri.sh: cargo +nightly miri is not installed" >&2
    exit 1
fi
cargo +nightly miri setup >/dev/null

run() {
    local model=$1 flags=$2
    local start=$SECONDS
    echo "-- Miri, $model (MIRIFLAGS=${flags:-none})"
    MIRIFLAGS="$flags ${MIRIFLAGS_EXTRA:-}" cargo +nightly miri test -p innfer --lib --test ffi_miri
    echo "-- Miri, $model: $((SECONDS - start)) s"
}

run "Stacked Borrows" ""
run "Tree Borrows" "-Zmiri-tree-borrows"
