#!/usr/bin/env bash
# Builds the two example firmwares (C with libinnfer.a, and Rust with the innfer crate), runs
# them on QEMU's Cortex-M4F board mps2-an386, and checks their samples against the host's bit
# for bit:
#
#     bash examples/firmware/run.sh
#
# Each firmware holds MODEL as a packed image (`innfer pack --target cortex-m4`) in flash,
# builds the model on it in place (no heap), and draws SAMPLES samples for the one-hot condition
# of LABEL with seed SEED (stream = LABEL), one at a time, into a session in static memory. It
# ends with
#
#     firmware: lang=<rust|c> samples=<n> ram_bytes=<n> flash_bytes=<n> instructions_per_sample=<n> matches_host=<yes|no>
#
# RAM is .data + .bss (the model's descriptors and the session, at the sizes the firmware
# reports from innfer_model_static_size / innfer_session_size: a first build with room to spare
# reports them, a second is built with them) + the heap's peak + the stack's high-water mark
# (painted, then scanned); flash is the image's end (code, constants, the packed model and
# .data's initial values); instructions come from SysTick under `qemu -icount shift=0`, where
# the core clock is virtual time advancing one step per instruction (each firmware times a loop
# of known length to turn ticks into instructions). The host's samples are `innfer sample
# --isa portable`: the portable kernel computes what the Cortex-M build computes.
#
# A second C build (CHECKS) checks that damaged images are refused and that the heap load of
# the .safetensors file returns INNFER_STATUS_OUT_OF_MEMORY with malloc capped at 10 KB and
# 200 KB, leaking nothing.
#
# Needs: qemu-system-arm, arm-none-eabi-gcc with newlib, the Rust target thumbv7em-none-eabihf,
# python3. Exits non-zero if a build or a check fails, or if samples differ from the host's.
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

for tool in qemu-system-arm arm-none-eabi-gcc arm-none-eabi-size python3; do
  command -v "$tool" >/dev/null || {
    echo "run.sh: $tool is missing (apt-get install qemu-system-arm gcc-arm-none-eabi libnewlib-arm-none-eabi)"
    exit 1
  }
done
rustup target list --installed 2>/dev/null | grep -qx thumbv7em-none-eabihf ||
  rustup target add thumbv7em-none-eabihf

echo "== the packed image and the host's samples (portable kernel)"
cargo build --release -q -p innfer-cli
innfer=$target_dir/release/innfer
image=$work/$(basename "$model" .safetensors).cortex-m4.bin
"$innfer" pack "$model" --target cortex-m4 -o "$image"
"$innfer" info "$image" --batch 1 | grep -E '^(session memory|in place)'
y_dim=$("$innfer" info "$model" | sed -n 's/^layout .* y \([0-9]*\)).*/\1/p')
y=
for ((i = 0; i < y_dim; i++)); do y+=${y:+,}$((i == label)); done
"$innfer" sample "$image" --y "$y" -n "$samples" --seed "$seed" --stream "$label" --isa portable \
  --output "$work/host.npy"
# The samples' FNV-1a 64 (the firmwares' hash) and the multiply-adds of one sample: the
# elements of the subnets' Linear weights, each used once.
read -r expected multiply_adds < <(python3 - "$work/host.npy" "$model" <<'PY'
import json, struct, sys
npy = open(sys.argv[1], "rb").read()
data = npy[10 + struct.unpack("<H", npy[8:10])[0]:]
h = 0xcbf29ce484222325
for b in data:
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
st = open(sys.argv[2], "rb").read()
header = json.loads(st[8:8 + struct.unpack("<Q", st[:8])[0]])
macs = sum(t["shape"][0] * t["shape"][1] for k, t in header.items()
           if k.endswith(".weight") and len(t["shape"]) == 2)
print(f"{h:016x} {macs}")
PY
)
image_bytes=$(stat -c %s "$image")
echo "host: samples hash $expected; $multiply_adds multiply-adds per sample; image $image_bytes bytes"

# Runs ELF $2 under QEMU into log $3 and prints the log; fails unless it exits 0 and its last
# line matches $4.
run_qemu() {
  local what=$1 elf=$2 log=$3 last=$4 status=0
  timeout 600 "${qemu[@]}" -kernel "$elf" </dev/null >"$log" 2>&1 || status=$?
  cat "$log"
  if [ "$status" -ne 0 ] || ! [[ $(tail -n 1 "$log") =~ $last ]]; then
    echo "run.sh: the $what failed (QEMU status $status)"
    exit 1
  fi
}

# The sizes a firmware's first run reports: "MODEL_MEMORY SESSION".
sizes_of() {
  sed -n 's/^firmware: sizes model_memory=\([0-9]*\) session=\([0-9]*\)$/\1 \2/p' "$1"
}

# Runs the final firmware ELF $2 (language $1) and reports it against the goals.
report() {
  local lang=$1 elf=$2
  arm-none-eabi-size -A "$elf" |
    awk '$1 ~ /^\.(vectors|vector_table|text|rodata|ARM\.ex|data|bss)/ {printf "  %-14s %8d bytes\n", $1, $2}'
  run_qemu "$lang firmware" "$elf" "$work/$lang.log" \
    "^firmware: lang=$lang samples=$samples .*matches_host=yes$"
  local last ram flash ips
  last=$(tail -n 1 "$work/$lang.log")
  ram=${last#*ram_bytes=} flash=${last#*flash_bytes=} ips=${last#*instructions_per_sample=}
  ram=${ram%% *} flash=${flash%% *} ips=${ips%% *}
  met() { if [ "$1" -le "$2" ]; then echo met; else echo "not met"; fi; }
  echo "goals ($lang): ram $ram <= 16384: $(met "$ram" 16384);" \
    "flash $flash <= image + 98304 = $((image_bytes + 98304)): $(met "$flash" $((image_bytes + 98304)));" \
    "instructions per sample $ips <= 200000: $(met "$ips" 200000);" \
    "$(awk -v i="$ips" -v m="$multiply_adds" 'BEGIN {printf "%.2f instructions per multiply-add (goal <= 2.5)", i / m}')"
}

echo "== C firmware (libinnfer.a, newlib-nano)"
bash scripts/build-baremetal-lib.sh thumbv7em-none-eabihf
lib=$target_dir/thumbv7em-none-eabihf/release/libinnfer.a
c=examples/firmware/c
# Builds $1 with MODEL_MEMORY_BYTES $2, SESSION_BYTES $3 and the further flags. The linker's
# --trace-symbol names the file that defines each C library function the firmware uses.
build_c() {
  local elf=$1 model_memory=$2 session=$3
  shift 3
  arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 \
    -std=c11 -Wall -Wextra -Werror -Os -g -ffunction-sections -fdata-sections -Iinclude \
    -DMODEL_PATH="\"$image\"" -DEXPECTED_HASH="\"$expected\"" \
    -DMODEL_MEMORY_BYTES="$model_memory" -DSESSION_BYTES="$session" "$@" \
    -nostartfiles --specs=nano.specs -T "$c/mps2-an386.ld" \
    -Wl,--gc-sections -Wl,--wrap=malloc -Wl,--wrap=free -Wl,-Map="${elf%.elf}.map" \
    -Wl,--trace-symbol=memcpy -Wl,--trace-symbol=memset -Wl,--trace-symbol=strlen \
    "$c/main.c" "$c/startup.c" "$lib" -lc -lm -lgcc -o "$elf" >"${elf%.elf}.link" 2>&1 ||
    { cat "${elf%.elf}.link"; exit 1; }
}
build_c "$work/c-sizing.elf" 65536 65536
run_qemu "C firmware (sizing)" "$work/c-sizing.elf" "$work/c-sizing.log" "matches_host=yes$" >/dev/null
read -r model_memory session < <(sizes_of "$work/c-sizing.log")
echo "sizes: model memory $model_memory bytes, session $session bytes"
build_c "$work/c.elf" "$model_memory" "$session"
# libinnfer.a does not replace the firmware's memcpy/memset/strlen with its own copies.
for fn in memcpy memset strlen; do
  from=$(sed -n "s/.*: \(.*\): definition of $fn\$/\1/p" "$work/c.link")
  case "$from" in
    *libc_nano.a*) echo "  $fn: ${from##*/}" ;;
    "") echo "  $fn: not linked" ;;
    *) echo "run.sh: $fn in the C firmware is defined by $from, not newlib"; exit 1 ;;
  esac
done
report c "$work/c.elf"
echo "-- the C library's checks: damaged images, the heap load with malloc capped"
build_c "$work/c-checks.elf" "$model_memory" "$session" -DCHECKS -DHEAP_MODEL_PATH="\"$root/$model\""
run_qemu "C firmware's checks" "$work/c-checks.elf" "$work/c-checks.log" "^firmware: checks passed$"

echo "== Rust firmware (the innfer crate, its own panic handler and allocator)"
# Builds the firmware with model memory $1 and session memory $2.
build_rust() {
  (cd examples/firmware/rust &&
    INNFER_FIRMWARE_MODEL="$image" INNFER_FIRMWARE_EXPECTED="$expected" \
      INNFER_FIRMWARE_MODEL_MEMORY_BYTES="$1" INNFER_FIRMWARE_SESSION_BYTES="$2" \
      cargo build --release -q --target-dir "$work/rust")
}
rust_elf=$work/rust/thumbv7em-none-eabihf/release/innfer-firmware-example
build_rust 65536 65536
run_qemu "Rust firmware (sizing)" "$rust_elf" "$work/rust-sizing.log" "matches_host=yes$" >/dev/null
read -r model_memory session < <(sizes_of "$work/rust-sizing.log")
echo "sizes: model memory $model_memory bytes, session $session bytes"
build_rust "$model_memory" "$session"
report rust "$rust_elf"
echo "run.sh: both firmwares match the host bit for bit"
