#!/usr/bin/env bash
# The side-by-side benchmark in Envoy: the same load, in alternating rounds, against
#   no filter | a trivial proxy-wasm filter | Envoy's jwt_authn + rbac | taskgate
# on one Envoy process (one worker thread), every listener and the upstream on 127.0.0.1, Envoy
# and wrk each on a core of its own when there are two. A fifth variant, the trivial filter
# making taskgate's host calls, splits taskgate's cost into the host's share and its own.
# Figures are reported as ratios to the no-filter run of the same round and token mode.
#
# From the repository root:  bash benches/envoy/run.sh
# Settings (environment):
#   ROUNDS=2          rounds; each runs every variant once, even rounds in reverse order
#   DURATION=10s      wrk measurement per run (after WARMUP of the same load, discarded)
#   WARMUP=2s
#   CONNECTIONS=16    wrk -t1 -cCONNECTIONS
#   TOKENS=20000      distinct pre-minted tokens per algorithm for the fresh-token runs
#   TASKGATE_REVS=HEAD  revisions of taskgate to build and measure side by side (for
#                     instance "e38b0e0 HEAD": before and after the verified-token cache), each
#                     exported with `git archive` (so others' uncommitted edits in the
#                     shared checkout are not measured); `worktree` builds the checkout
#                     as it is, with the usual `cargo build -p taskgate-proxy ...`
#   OUT=target/bench-envoy/results/<time>   raw wrk output, bootstrap, Envoy log, summary
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$repo/benches/envoy"
cd "$repo"

rounds="${ROUNDS:-2}"
duration="${DURATION:-10s}"
warmup="${WARMUP:-2s}"
connections="${CONNECTIONS:-16}"
token_count="${TOKENS:-20000}"
revs="${TASKGATE_REVS:-HEAD}"
work="$repo/target/bench-envoy"
out="${OUT:-$work/results/$(date -u +%Y%m%dT%H%M%SZ)}"
envoy="$repo/.venv/bin/envoy"
keys="$repo/examples/hostile-tokens/keys"
mkdir -p "$out" "$work/wasm" "$work/tokens"

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf '[bench] error: %s\n' "$*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }
fi
for tool in curl python3 cargo git; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
bash "$repo/envoy/install-envoy.sh" >&2
bash "$repo/scripts/toolchain" >&2

# --- builds ----------------------------------------------------------------------------
log "building the trivial filter and the token minter"
CARGO_TARGET_DIR="$repo/target/trivial-filter" cargo build -q --release \
    --target wasm32-wasip1 --manifest-path "$here/trivial-filter/Cargo.toml"
trivial_wasm="$repo/target/trivial-filter/wasm32-wasip1/release/trivial_filter.wasm"
CARGO_TARGET_DIR="$work/mint" cargo build -q --release \
    --manifest-path "$here/mint-tokens/Cargo.toml"
mint="$work/mint/release/mint-tokens"

taskgate_args=()
labels=()
for rev in $revs; do
    if [[ "$rev" == worktree ]]; then
        label=worktree
        log "building taskgate from the working tree"
        bash "$repo/scripts/build-module" >&2
        cp "${CARGO_TARGET_DIR:-$repo/target}/taskgate.wasm" "$work/wasm/$label.wasm"
    else
        # Named by the last commit at REV that changed what the module is built from, so that
        # commits elsewhere (this benchmark's own, say) do not force a rebuild.
        sha="$(git log -1 --format=%H "$(git rev-parse --verify "$rev^{commit}")" \
            -- plugin Cargo.toml Cargo.lock rust-toolchain.toml)"
        label="${sha:0:10}"
        if [[ ! -f "$work/wasm/$label.wasm" ]]; then
            log "building taskgate at $label ($(git log -1 --format=%s "$sha" | cut -c1-60))"
            src="$work/src/$label"
            rm -rf "$src" && mkdir -p "$src"
            git archive "$sha" | tar -x -C "$src"
            # A target directory per revision: `git archive` stamps files with the commit's
            # time and cargo names path crates by their place in the workspace, so a shared
            # one would take an older revision's build as up to date for a newer one.
            # A revision with scripts/build-module ships what it builds; an older one ships
            # cargo's release output.
            if [[ -f "$src/scripts/build-module" ]]; then
                CARGO_TARGET_DIR="$work/build/$label" bash "$src/scripts/build-module" >&2
                cp "$work/build/$label/taskgate.wasm" "$work/wasm/$label.wasm"
            else
                CARGO_TARGET_DIR="$work/build/$label" cargo build -q -p taskgate-proxy \
                    --target wasm32-wasip1 --release --manifest-path "$src/Cargo.toml"
                cp "$work/build/$label/wasm32-wasip1/release/taskgate_proxy.wasm" \
                    "$work/wasm/$label.wasm"
            fi
        fi
    fi
    labels+=("$label")
    taskgate_args+=(--taskgate-wasm "$label=$work/wasm/$label.wasm")
    printf '%s %s\n' "$label" "$(git log -1 --format='%H %s' "${sha:-HEAD}")" >> "$out/revisions.txt"
done

# --- tokens ----------------------------------------------------------------------------
# Target rule 999: path /svc/0999/, subject workload-0999. TTL 1 h (the filters cap 2 h).
claims='{"iss":"https://issuer.bench.test","aud":"bench-api","sub":"workload-0999"}'
other='{"iss":"https://issuer.bench.test","aud":"bench-api","sub":"workload-0998"}'
log "minting $token_count distinct tokens per algorithm"
declare -A key_file=([es]="$keys/ec.jwk.json" [ed]="$keys/ed.jwk.json")
for alg in es ed; do
    key="${key_file[$alg]}"
    "$mint" "$key" "$claims" 3600 "$token_count" > "$work/tokens/$alg-fresh.txt"
    "$mint" "$key" "$claims" 3600 1 > "$work/tokens/$alg-one.txt"
    "$mint" "$key" "$other" 3600 1 > "$work/tokens/$alg-other-subject.txt"
done
token_es="$(cat "$work/tokens/es-one.txt")"
# The same token with its signature's first character changed: well formed, wrongly signed.
sig="${token_es##*.}"
first="${sig:0:1}"; [[ "$first" == A ]] && swap=B || swap=A
bad_token="${token_es%.*}.${swap}${sig:1}"

# --- Envoy -----------------------------------------------------------------------------
upstream_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
python3 "$here/render.py" --out "$out/bootstrap.json" --upstream-port "$upstream_port" \
    --trivial-wasm "$trivial_wasm" "${taskgate_args[@]}" \
    --key "$keys/ec.jwk.json" --key "$keys/ed.jwk.json"

envoy_pid=""
stop_envoy() {
    if [[ -n "$envoy_pid" ]] && kill -0 "$envoy_pid" 2>/dev/null; then
        kill "$envoy_pid" 2>/dev/null || true
        wait "$envoy_pid" 2>/dev/null || true
    fi
    envoy_pid=""
}
trap stop_envoy EXIT
trap 'exit 130' INT TERM

"$envoy" --version > "$out/envoy-version.txt"
# `timeout` bounds Envoy's life even if this script is killed with SIGKILL.
# On two or more cores Envoy and wrk get a core each, so that neither takes the other's.
# Only when this process may use CPUs 0 and 1 (a container may be given others).
pin_envoy=(); pin_wrk=()
if command -v taskset >/dev/null && taskset -c 0 true 2>/dev/null \
        && taskset -c 1 true 2>/dev/null; then
    pin_envoy=(taskset -c 1); pin_wrk=(taskset -c 0)
fi
${pin_envoy[@]+"${pin_envoy[@]}"} timeout 2400 "$envoy" -c "$out/bootstrap.json" --concurrency 1 --use-dynamic-base-id \
    --admin-address-path "$out/admin-address" -l warning --log-path "$out/envoy.log" &
envoy_pid=$!

admin=""
for _ in $(seq 1 300); do
    kill -0 "$envoy_pid" 2>/dev/null || { tail -20 "$out/envoy.log" >&2; die "Envoy exited"; }
    if [[ -s "$out/admin-address" ]]; then
        admin="$(cat "$out/admin-address")"
        [[ "$(curl -s "http://$admin/ready" || true)" == LIVE ]] && break
    fi
    sleep 0.2
done
[[ "$(curl -s "http://$admin/ready" || true)" == LIVE ]] || die "Envoy is not ready"
[[ "$admin" == 127.0.0.1:* ]] || die "admin is not on 127.0.0.1: $admin"

declare -A port
while read -r name address; do
    [[ "$address" == 127.0.0.1:* ]] || die "listener $name is not on 127.0.0.1: $address"
    port[$name]="${address##*:}"
done < <(curl -s "http://$admin/listeners?format=json" | python3 -c '
import json, sys
for l in json.load(sys.stdin)["listener_statuses"]:
    a = l["local_address"]["socket_address"]
    print(l["name"], "%s:%s" % (a["address"], a["port_value"]))')

path=/svc/0999/items
status() {  # LISTENER [curl args...] -> HTTP status
    local name="$1"; shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" \
        "http://127.0.0.1:${port[$name]}${check_path:-$path}"
}
bearer() { printf 'Authorization: Bearer %s' "$1"; }

# --- every variant works before it is measured ------------------------------------------
checks=0
expect() {  # WANT LISTENER WHAT [curl args...]
    local want="$1" name="$2" what="$3"; shift 3
    local got; got="$(status "$name" "$@")"
    [[ "$got" == "$want" ]] || die "check failed: $name, $what: expected $want, got $got"
    checks=$((checks + 1))
}
expect 200 nofilter "no token" -H 'x-trivial: yes'
expect 200 trivial "x-trivial: yes" -H 'x-trivial: yes'
expect 403 trivial "no x-trivial" -H 'x-trivial: no'
expect 200 hostcalls "x-trivial: yes" -H 'x-trivial: yes'
expect 403 hostcalls "no x-trivial" -H 'x-trivial: no'
auth_variants=()
for name in "${!port[@]}"; do
    [[ "$name" == jwt* || "$name" == tg-* ]] && auth_variants+=("$name")
done
for name in "${auth_variants[@]}"; do
    for alg in es ed; do
        expect 200 "$name" "$alg token" -H 'x-trivial: yes' \
            -H "$(bearer "$(cat "$work/tokens/$alg-one.txt")")"
        expect 200 "$name" "$alg fresh token, first" -H "$(bearer "$(head -1 "$work/tokens/$alg-fresh.txt")")"
        expect 200 "$name" "$alg fresh token, last" -H "$(bearer "$(tail -1 "$work/tokens/$alg-fresh.txt")")"
        expect 403 "$name" "$alg token of another subject" \
            -H "$(bearer "$(cat "$work/tokens/$alg-other-subject.txt")")"
    done
    expect 401 "$name" "bad signature" -H "$(bearer "$bad_token")"
    expect 401 "$name" "no token"
    # The target rule is the last: a path of the first rule with the target's token is refused.
    check_path=/svc/0998/items expect 403 "$name" "path of another rule" -H "$(bearer "$token_es")"
done
# The host-calls variant must really make them, not fall back to the plain compare.
hostcalls_counted="$(curl -s "http://$admin/stats?filter=trivial.allowed" \
    | sed -n 's/.*trivial\.allowed: *//p' | head -1)"
[[ "${hostcalls_counted:-0}" -ge 1 ]] \
    || die "check failed: hostcalls did not count its request (trivial.allowed: ${hostcalls_counted:-none})"
checks=$((checks + 1))
log "$checks checks passed: every variant allows the valid tokens and refuses the bad ones"

# --- rounds ----------------------------------------------------------------------------
# A run: LISTENER ALG MODE. MODE `one` sends the same token on every request, `fresh` a
# different one each time. The no-filter and trivial runs send the same requests.
runs=(
    "nofilter es one" "nofilter es fresh" "trivial es one" "trivial es fresh" "hostcalls es one"
    "jwt-1 es one" "jwt-1 es fresh" "jwt-1 ed one" "jwt-1 ed fresh"
    "jwt-1000 es one" "jwt-1000 es fresh" "jwtcache-1 es one" "jwtcache-1 es fresh"
)
for label in "${labels[@]}"; do
    runs+=("tg-$label-1 es one" "tg-$label-1 es fresh" "tg-$label-1 ed one"
           "tg-$label-1 ed fresh" "tg-$label-1000 es one" "tg-$label-1000 es fresh")
done

wrk_run() {  # LISTENER ALG MODE SECONDS -> wrk output on stdout
    local name="$1" alg="$2" mode="$3" time="$4"
    local url="http://127.0.0.1:${port[$name]}$path"
    local args=(-t1 "-c$connections" "-d$time" --latency --timeout 5s)
    if [[ "$mode" == one ]]; then
        ${pin_wrk[@]+"${pin_wrk[@]}"} timeout 120 wrk "${args[@]}" -H "x-trivial: yes" \
            -H "$(bearer "$(cat "$work/tokens/$alg-one.txt")")" "$url"
    else
        ${pin_wrk[@]+"${pin_wrk[@]}"} timeout 120 wrk "${args[@]}" -s "$here/fresh.lua" "$url" -- "$path" \
            "$work/tokens/$alg-fresh.txt"
    fi
}

for round in $(seq 1 "$rounds"); do
    order=("${runs[@]}")
    if (( round % 2 == 0 )); then
        order=(); for (( i=${#runs[@]}-1; i>=0; i-- )); do order+=("${runs[$i]}"); done
    fi
    for run in "${order[@]}"; do
        read -r name alg mode <<< "$run"
        wrk_run "$name" "$alg" "$mode" "$warmup" > /dev/null
        file="$out/r$round.$name.$alg.$mode.txt"
        { echo "# loadavg before: $(cut -d' ' -f1-3 /proc/loadavg)"; \
          wrk_run "$name" "$alg" "$mode" "$duration"; } > "$file"
        log "round $round $name $alg $mode: $(sed -n 's/^Requests\/sec: *//p' "$file") req/s$(sed -n 's/^ *Non-2xx or 3xx responses: */, non-2xx: /p' "$file")"
    done
done

curl -s "http://$admin/stats" | grep -E 'jwt_authn|rbac|wasmcustom|downstream_rq_[2-5]xx' \
    > "$out/envoy-stats.txt" || true
stop_envoy

{ echo "nproc: $(nproc)"; lscpu | head -20; } > "$out/machine.txt"
python3 "$here/report.py" "$out" | tee "$out/summary.md"
log "raw results in $out"
