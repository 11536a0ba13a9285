#!/usr/bin/env bash
# One command for the end-to-end check: install Envoy, build the module,
# check that the module accepts the example bootstrap, check remote keys
# against a local JWKS server, and replay every example suite in Envoy.
# Extra arguments go to the runner's `test` subcommand (e.g. `--suite
# k8s-payments`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash scripts/toolchain
bash envoy/install-envoy.sh
bash scripts/build-module
cargo build --quiet -p taskgate-envoy

target="${CARGO_TARGET_DIR:-target}"
wasm="$target/taskgate.wasm"
# Both checks run whatever the first one says; the replay's closing
# `N passed, N failed` line stays the last line of the output.
status=0
"$target/debug/taskgate-envoy" validate --wasm "$wasm" || status=1
# Remote keys against a JWKS server on 127.0.0.1 that the run controls.
"$target/debug/taskgate-envoy" jwks --wasm "$wasm" || status=1
"$target/debug/taskgate-envoy" test --wasm "$wasm" "$@" || status=1
exit "$status"
