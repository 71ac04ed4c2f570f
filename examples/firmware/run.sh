#!/usr/bin/env bash
# Builds the two example firmwares (C with libinnfer.a, and Rust with the innfer crate), runs
# them on QEMU's Cortex-M4F board mps2-an386, and checks their samples against the host's bit
# for bit:
#
#     bash examples/firmware/run.sh
#
# Each firmware embeds MODEL in flash, draws SAMPLES samples for the one-hot condition of LABEL
# with seed SEED (stream = LABEL), one at a time into a session in static memory, and ends with
#
#     firmware: lang=<rust|c> samples=<n> ram_bytes=<n> flash_bytes=<n> instructions_per_sample=<n> matches_host=<yes|no>
#
# RAM is .data + .bss (the session at its size, not its buffer's) + the heap's peak + the stack's
# high-water mark (painted, then scanned); flash is the image's end (code, constants, the model
# and .data's initial values); instructions come from SysTick under `qemu -icount shift=0`, where
# the core clock is virtual time advancing one step per instruction (each firmware times a loop
# of known length to turn ticks into instructions). The host's samples come from the portable
# kernel, the one the Cortex-M build runs (examples/firmware/host.rs).
#
# Needs: qemu-system-arm, arm-none-eabi-gcc with newlib, the Rust target thumbv7em-none-eabihf.
# Exits non-zero if a firmware fails, a check fails, or its samples differ from the host's.
# Environment: MODEL (default models/gmm8_some.safetensors), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

model=${MODEL:-models/gmm8_some.safetensors}
samples=1000 seed=42 label=0
target_dir=${CARGO_TARGET_DIR:-$root/target}
work=$target_dir/firmware
mkdir -p "$work"
qemu=(qemu-system-arm -M mps2-an386 -nographic -monitor none -serial null
  -semihosting-config enable=on,target=native -icount shift=0)

for tool in qemu-system-arm arm-none-eabi-gcc arm-none-eabi-size; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing (apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)"; exit 1; }
done
rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf ||
  rustup target add thumbv7em-none-eabihf

echo "== the host's samples (portable kernel)"
mapfile -t host < <(cargo run --release -q --example firmware_host -- "$model" "$samples" "$seed" "$label")
expected=${host[0]} multiply_adds=${host[1]}
model_bytes=$(stat -c %s "$model")
echo "host: samples hash $expected; $multiply_adds multiply-adds per sample; model $model_bytes bytes"

# Runs firmware ELF $2 (language $1) under QEMU and checks its report.
run_firmware() {
  local lang=$1 elf=$2 log=$work/$1.log
  arm-none-eabi-size -A "$elf" | awk '$1 ~ /^\.(vectors|vector_table|text|rodata|ARM\.ex|data|bss)/ {printf "  %-14s %8d bytes\n", $1, $2}'
  local status=0
  timeout 600 "${qemu[@]}" -kernel "$elf" </dev/null >"$log" 2>&1 || status=$?
  cat "$log"
  local last
  last=$(tail -n 1 "$log")
  if [ "$status" -ne 0 ] || ! [[ $last =~ ^firmware:\ lang=$lang\ samples=$samples\ .*matches_host=yes$ ]]; then
    echo "run.sh: the $lang firmware failed (QEMU status $status)"
    exit 1
  fi
  local ips=${last#*instructions_per_sample=}
  ips=${ips%% *}
  local ram=${last#*ram_bytes=} flash=${last#*flash_bytes=}
  ram=${ram%% *} flash=${flash%% *}
  echo "goals ($lang): ram $ram <= 16384: $( [ "$ram" -le 16384 ] && echo met || echo not met);" \
    "flash $flash <= model + 98304 = $((model_bytes + 98304)): $( [ "$flash" -le $((model_bytes + 98304)) ] && echo met || echo not met);" \
    "instructions per sample $ips <= 200000: $( [ "$ips" -le 200000 ] && echo met || echo not met);" \
    "$(awk -v i="$ips" -v m="$multiply_adds" 'BEGIN {printf "%.2f instructions per multiply-add (goal <= 2.5)", i / m}')"
}

echo "== C firmware (libinnfer.a, newlib-nano)"
bash scripts/build-baremetal-lib.sh thumbv7em-none-eabihf
lib=$target_dir/thumbv7em-none-eabihf/release/libinnfer.a
c=examples/firmware/c
# --trace-symbol: the linker names the file that defines each of the C library's functions
# the firmware uses; they must be newlib's, not copies inside libinnfer.a.
arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
  -std=c11 -Wall -Wextra -Werror -Os -g -ffunction-sections -fdata-sections \
  -Iinclude -DMODEL_PATH="\"$root/$model\"" -DEXPECTED_HASH="\"$expected\"" \
  -nostartfiles --specs=nano.specs -T "$c/mps2-an386.ld" \
  -Wl,--gc-sections -Wl,--wrap=malloc -Wl,--wrap=free -Wl,-Map="$work/c.map" \
  -Wl,--trace-symbol=memcpy -Wl,--trace-symbol=memset -Wl,--trace-symbol=strlen \
  "$c/main.c" "$c/startup.c" "$lib" -lc -lm -lgcc -o "$work/c.elf" >"$work/c.link" 2>&1 ||
  { cat "$work/c.link"; exit 1; }
for fn in memcpy memset strlen; do
  from=$(sed -n "s/.*: \(.*\): definition of $fn\$/\1/p" "$work/c.link")
  case "$from" in
    *libc_nano.a*) echo "  $fn: ${from##*/}" ;;
    "") echo "  $fn: not linked" ;;
    *) echo "run.sh: $fn in the C firmware is defined by $from, not newlib"; exit 1 ;;
  esac
done
run_firmware c "$work/c.elf"

echo "== Rust firmware (the innfer crate, its own panic handler and allocator)"
(cd examples/firmware/rust &&
  INNFER_FIRMWARE_MODEL="$root/$model" INNFER_FIRMWARE_EXPECTED="$expected" \
    cargo build --release --target-dir "$work/rust")
run_firmware rust "$work/rust/thumbv7em-none-eabihf/release/innfer-firmware-example"
echo "run.sh: both firmwares match the host bit for bit"
