#!/usr/bin/env bash
# Policy updates through ECDS, in a real Envoy on 127.0.0.1:
#   1. the first policy allows the checkout pod's token;
#   2. an update that removes that permission takes effect while requests keep flowing, and not
#      one request fails on the way (every answer is the old 200 or the new 403);
#   3. an update the module refuses (a rule naming an unknown provider) is rejected by Envoy and
#      the previous policy stays in force: the gate neither opens nor goes dark;
#   4. restoring the first policy allows the token again.
# Needs .venv/bin/envoy (envoy/install-envoy.sh) and the release module. Ends with
# `N passed, N failed`; exits 1 on any failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
envoy="${ENVOY:-.venv/bin/envoy}"
wasm="$repo/target/taskgate.wasm"
work="$repo/target/taskgate-ecds"
rm -rf "$work" && mkdir -p "$work"

passed=0
failed=0
check() { # name, condition result (0 = pass)
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); echo "ok       $1"; else failed=$((failed + 1)); echo "MISMATCH $1"; fi
}

read -r listener admin < <(python3 -c '
import socket
ports = []
socks = []
for _ in range(2):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ports.append(s.getsockname()[1]); socks.append(s)
print(*ports)')

# version, policy file -> the ECDS file, replaced by a rename so Envoy sees one whole update.
publish() {
  python3 - "$1" "$2" "$wasm" "$work/taskgate-ecds.yaml" <<'PY'
import json, os, sys
version, policy_path, wasm, target = sys.argv[1:]
text = open("envoy/ecds/taskgate-ecds.yaml.tmpl").read()
policy = open(policy_path).read()
text = (text.replace("VERSION", version).replace("WASM_PATH", json.dumps(wasm))
            .replace("POLICY_JSON", json.dumps(policy)))
tmp = target + ".tmp"
open(tmp, "w").write(text)
os.rename(tmp, target)
PY
}

policy="examples/k8s-payments/policy.json"
python3 - "$policy" "$work/revoked.json" "$work/broken.json" <<'PY'
import json, sys
source, revoked, broken = sys.argv[1:]
policy = json.load(open(source))
# The update: checkout may no longer read payments.
policy["rules"] = [r for r in policy["rules"] if r["name"] != "checkout-reads-payments"]
json.dump(policy, open(revoked, "w"))
# A bad update: a rule naming a provider that does not exist.
policy["rules"][0]["providers"] = ["no-such-provider"]
json.dump(policy, open(broken, "w"))
PY

publish 1 "$policy"
sed -e "s|LISTENER_PORT|$listener|" -e "s|ADMIN_PORT|$admin|" -e "s|ECDS_PATH|$work/taskgate-ecds.yaml|" \
  envoy/ecds/bootstrap.yaml > "$work/bootstrap.yaml"

timeout 300 "$envoy" -c "$work/bootstrap.yaml" --concurrency 2 --base-id "$((RANDOM + 3000))" \
  --log-level warn > "$work/envoy.log" 2>&1 &
envoy_pid=$!
trap 'kill "$envoy_pid" 2>/dev/null || true; wait "$envoy_pid" 2>/dev/null || true' EXIT
ready=1
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$admin/ready" >/dev/null 2>&1 && { ready=0; break; }
  sleep 0.2
done
if [ "$ready" -ne 0 ]; then
  echo "envoy did not become ready; the end of its log:" >&2
  tail -20 "$work/envoy.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

token=$(cargo run -q -p taskgate-scenario --bin taskgate-mint -- token --keys examples/k8s-payments/keys \
  --key cluster --ttl 600 --claims '{"iss":"https://kubernetes.default.svc.cluster.local","sub":"system:serviceaccount:shop:checkout","aud":["payments.internal"],"kubernetes.io":{"namespace":"shop"}}')
call() {
  curl -s -o /dev/null -w '%{http_code}' -H "host: payments.internal" -H "authorization: Bearer $token" \
    "http://127.0.0.1:$listener/payments/pay-42" || echo 000
}
stat() {
  curl -s "http://127.0.0.1:$admin/stats" | awk -F': ' -v name="$1" '$1 == name {print $2}'
}
wait_for() { # status, at most 10 s
  for _ in $(seq 1 50); do [ "$(call)" = "$1" ] && return 0; sleep 0.2; done
  return 1
}

check "the first policy allows the checkout token" "$(wait_for 200; echo $?)"

# Requests keep flowing while the update lands; every answer must be 200 (old) or 403 (new).
( for _ in $(seq 1 400); do call; echo; done ) > "$work/during-update.txt" &
load=$!
sleep 0.3
publish 2 "$work/revoked.json"
wait "$load"
bad=$(grep -cvE '^(200|403)$' "$work/during-update.txt" || true)
echo "         during the update: $(sort "$work/during-update.txt" | uniq -c | tr '\n' ' ')"
check "no request failed while the update landed" "$([ "$bad" -eq 0 ]; echo $?)"
check "the update took effect: the token is refused" "$(wait_for 403; echo $?)"

before=$(stat "extension_config_discovery.http_filter.taskgate.config_fail")
publish 3 "$work/broken.json"
for _ in $(seq 1 50); do
  [ "$(stat "extension_config_discovery.http_filter.taskgate.config_fail")" != "$before" ] && break
  sleep 0.2
done
after=$(stat "extension_config_discovery.http_filter.taskgate.config_fail")
check "Envoy rejected the policy the module refused (config_fail $before -> $after)" \
  "$([ "${after:-0}" -gt "${before:-0}" ]; echo $?)"
check "after the rejected update the previous policy still refuses the token" "$([ "$(call)" = 403 ]; echo $?)"
check "a request without a token is still challenged" \
  "$([ "$(curl -s -o /dev/null -w '%{http_code}' -H 'host: payments.internal' "http://127.0.0.1:$listener/payments/pay-42")" = 401 ]; echo $?)"

publish 4 "$policy"
check "restoring the first policy allows the token again" "$(wait_for 200; echo $?)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
