#!/usr/bin/env bash
# One command for the end-to-end check: install Envoy, build the module,
# replay every example suite in Envoy. Extra arguments go to the runner's
# `test` subcommand (e.g. `--suite k8s-payments`).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

bash envoy/install-envoy.sh
cargo build -p taskgate-proxy --target wasm32-wasip1 --release
cargo run --quiet -p taskgate-envoy -- test "$@"
