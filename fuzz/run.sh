#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, seeded from the committed
# fixtures and hostile reproducers; a crash leaves its input in fuzz/artifacts/TARGET/ and
# fails the script. Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`).
#
#   fuzz/run.sh 60                 # CI's short run
#   fuzz/run.sh 3600 load_bytes    # a long run of one target (see fuzz/README.md)
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(load_bytes c_api image npy)

# Seeds: every committed model file up to 64 KiB (the shipped models are larger and would
# only slow each execution). The C API target reads a load limit from its first byte (0: none).
mkdir -p corpus/load_bytes corpus/c_api corpus/image corpus/npy
for f in ../tests/fixtures/*/model.safetensors ../tests/fixtures/hostile/*.safetensors \
    ../models/*.safetensors; do
  [ "$(wc -c <"$f")" -le 65536 ] || continue
  seed=seed-$(echo "${f#../}" | tr '/' '_')
  cp "$f" "corpus/load_bytes/$seed"
  { printf '\0'; cat "$f"; } >"corpus/c_api/$seed"
done

# The packed-image target's seeds: the small fixtures packed for both targets (innfer pack).
cargo build -q --release -p innfer-cli --manifest-path ../Cargo.toml
innfer=${CARGO_TARGET_DIR:-../target}/release/innfer
for f in ../tests/fixtures/*/model.safetensors; do
  [ "$(wc -c <"$f")" -le 32768 ] || continue
  name=$(basename "$(dirname "$f")")
  for t in portable cortex-m4; do
    "$innfer" pack "$f" --target "$t" -o "corpus/image/seed-$name-$t.bin" >/dev/null 2>&1 || true
  done
done

# The .npy reader's seeds: the committed arrays (fixtures and examples).
find ../tests ../examples -name '*.npy' -size -64k | while read -r f; do
  cp "$f" "corpus/npy/seed-$(echo "${f#../}" | tr '/' '_')"
done

for target in "${targets[@]}"; do
  echo "== fuzzing $target for $seconds s"
  # A single allocation above 512 MB, or 2 GB resident, is a crash: a load sized by the file
  # it reads cannot need that from 64 KiB.
  cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len=65536 -malloc_limit_mb=512 -rss_limit_mb=2048 \
    -print_final_stats=1
done
