#!/usr/bin/env bash
# Builds and measures every backend: hostile-input tests, the native loop, one wasm32-wasip1
# module per backend (size and wasmtime loop). Results go to results/. Needs `clang` and `lld`
# (Debian) for ring's C parts on wasm.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(git rev-parse --show-toplevel)/target/crypto}"
export CC_wasm32_wasip1="${CC_wasm32_wasip1:-clang}"
export AR_wasm32_wasip1="${AR_wasm32_wasip1:-llvm-ar-14}"
NATIVE_N="${NATIVE_N:-2000}"
WASM_N="${WASM_N:-1000}"
ROUNDS="${ROUNDS:-5}"
ALL=rsa09,p256-013,dalek2,ed25519-compact,rsa010,p256-014,dalek3,ring
FAST=dalek2-fast,dalek3-fast,p256-014-tables
mkdir -p results/wasm
: > results/load.txt

cargo test --profile lto --features "$ALL" -- --nocapture --test-threads 1 2>/dev/null \
    | sed 's/^test .* \.\.\. //' | grep 'library:' > results/hostile.tsv

# The machine is shared: each loop runs ROUNDS times, interleaved, and the summary keeps the
# fastest and the median round.
cargo build --profile lto --features "$ALL" --bin verify-loop
cp "$CARGO_TARGET_DIR/lto/verify-loop" "$CARGO_TARGET_DIR/verify-loop-all"
cargo build --profile lto --features "$FAST" --bin verify-loop
cp "$CARGO_TARGET_DIR/lto/verify-loop" "$CARGO_TARGET_DIR/verify-loop-fast"
: > results/native.tsv
for _ in $(seq "$ROUNDS"); do
    uptime >> results/load.txt
    for build in all fast; do
        "$CARGO_TARGET_DIR/verify-loop-$build" "$NATIVE_N" >> results/native.tsv
    done
done

cargo build --release -p taskgate-crypto-runner
: > results/wasm.tsv
: > results/size.tsv
for features in base rsa09 rsa010 p256-013 p256-014 p256-014-tables dalek2 dalek2-fast dalek3 \
    dalek3-fast ed25519-compact ring rsa09,p256-013,dalek2 ring,dalek2 rsa010,p256-014,dalek2; do
    flags=(--features "$features")
    [ "$features" = base ] && flags=()
    module="results/wasm/${features//,/+}.wasm"
    if cargo build --profile lto --target wasm32-wasip1 "${flags[@]}" --bin verify-loop; then
        cp "$CARGO_TARGET_DIR/wasm32-wasip1/lto/verify-loop.wasm" "$module"
        printf '%s\t%s\n' "$features" "$(stat -c %s "$module")" >> results/size.tsv
    else
        printf '%s\tbuild failed\n' "$features" >> results/size.tsv
    fi
done
for _ in $(seq "$ROUNDS"); do
    uptime >> results/load.txt
    for module in results/wasm/*.wasm; do
        # base has no backend; the combinations are there for their size only.
        case "$module" in */base.wasm | *+*) continue ;; esac
        "$CARGO_TARGET_DIR/release/taskgate-crypto-runner" "$module" "$WASM_N" \
            2>/dev/null >> results/wasm.tsv
    done
done
python3 summarize.py > results/summary.md
