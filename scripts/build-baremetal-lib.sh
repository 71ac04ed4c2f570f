#!/bin/sh
# Builds the C library for a bare-metal firmware: libinnfer.a without `std`, with the runtime a
# C firmware needs (allocator over its malloc/free, panic handler calling its hook: the
# `baremetal-runtime` feature, src/baremetal.rs), and without replacing the firmware's C library
# functions:
#
#     scripts/build-baremetal-lib.sh [TARGET]     (default: thumbv7em-none-eabihf)
#
# Output: $CARGO_TARGET_DIR/TARGET/release/libinnfer.a (default target dir: ./target). Link it
# before the C library: arm-none-eabi-gcc ... libinnfer.a -lc -lm (README.md, "Firmware").
#
# Every Rust static library bundles compiler_builtins, whose memcpy, memset, memmove, memcmp,
# bcmp, strlen and __aeabi_mem* are global (weak) definitions: a firmware linking the library
# before its C library would take them for all of its own code instead of the C library's
# (weak or not, an archive member found first wins). This script makes them local to their
# objects, so the library's code and the firmware's both call the firmware's C library.
#
# Environment: CARGO (default cargo), CARGO_TARGET_DIR, OBJCOPY (default arm-none-eabi-objcopy),
# READELF (default arm-none-eabi-readelf).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${1:-thumbv7em-none-eabihf}
CARGO=${CARGO:-cargo}
OBJCOPY=${OBJCOPY:-arm-none-eabi-objcopy}
READELF=${READELF:-arm-none-eabi-readelf}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LIB=$TARGET_DIR/$TARGET/release/libinnfer.a

# `cargo rustc --crate-type staticlib`: the package's cdylib type does not exist on bare metal.
# Flash is scarce: the dependencies are optimised for size and the whole library is linked as
# one unit (LTO), but innfer's own code keeps opt-level 2 for its kernels (on the Cortex-M4 a
# sample of the mixture model takes about 3 times the instructions at "s"; opt-level 3 gives
# the same 181 000 instructions as 2 for about 4 KB more code). INNFER_OPT overrides it.
"$CARGO" rustc --release --lib --manifest-path "$ROOT/Cargo.toml" -p innfer-capi \
    --no-default-features --target "$TARGET" --target-dir "$TARGET_DIR" --crate-type staticlib \
    --config 'profile.release.opt-level="s"' --config "profile.release.package.innfer.opt-level=${INNFER_OPT:-2}" \
    --config profile.release.lto=true --config profile.release.codegen-units=1

# The C library's names among the archive's global definitions.
libc_definitions() {
    "$READELF" -sW "$LIB" |
        awk '$5 != "LOCAL" && $7 != "UND" && $8 ~ /^(mem[a-z]*|str[a-z]*|bcmp|__aeabi_mem[a-z]*[0-9]*)$/ { print $8 }' |
        sort -u
}
LIBC_NAMES=$(libc_definitions)
if [ -n "$LIBC_NAMES" ]; then
    # shellcheck disable=SC2086 # one option per name
    "$OBJCOPY" $(printf -- '--localize-symbol=%s ' $LIBC_NAMES) "$LIB"
fi
LEFT=$(libc_definitions)
if [ -n "$LEFT" ]; then
    echo "still global in $LIB: $LEFT" >&2
    exit 1
fi
echo "built $LIB (C library names made local: $(echo $LIBC_NAMES))"
