#!/usr/bin/env python3
"""Renders the one Envoy bootstrap of the side-by-side benchmark (benches/envoy/run.sh).

One Envoy, one worker thread, every address 127.0.0.1. Each variant is its own listener
(port 0: Envoy picks it; run.sh reads it from the admin `/listeners`), and every variant
forwards to the same upstream: a last listener that answers 200 by `direct_response`.

Variants (listener names):
  nofilter          router only
  trivial           a proxy-wasm filter comparing one header (benches/envoy/trivial-filter)
  hostcalls         the same filter making, after its compare, the host calls taskgate makes
                    for an allowed request with a cached token, deciding nothing
  jwt-N             jwt_authn (local JWKS, issuer, audience, lifetime) + rbac, N policies
  jwtcache-N        the same with jwt_authn's cache of verified tokens turned on
  tg-LABEL-N        taskgate (the module built from revision LABEL) with N rules

The N rules are `rule-0000` ... : rule k allows path prefix `/svc/<k>/` to subject
`workload-<k>`. The rule that allows the benchmark's requests is always the last one
(`rule-0999` when N is 1000, and the only one when N is 1), so both filters try every
rule before they find it: taskgate tries its rules in order; Envoy's RBAC keeps its
policies in a map sorted by name.
"""

import argparse
import json
import pathlib

ISSUER = "https://issuer.bench.test"
AUDIENCE = "bench-api"
TARGET = 999  # the rule every benchmark request matches
JWT_FILTER = "envoy.filters.http.jwt_authn"


def public_jwks(key_files):
    keys = []
    for path in key_files:
        jwk = json.loads(pathlib.Path(path).read_text())
        public = {k: v for k, v in jwk.items() if k != "d"}
        public["use"] = "sig"
        keys.append(public)
    return {"keys": keys}


def rule_indices(count):
    return range(TARGET + 1 - count, TARGET + 1)


def hcm(name, filters, route):
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network."
                         "http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": name,
                "route_config": {"virtual_hosts": [{
                    "name": "all", "domains": ["*"],
                    "routes": [dict({"match": {"prefix": "/"}}, **route)],
                }]},
                "http_filters": filters + [{
                    "name": "envoy.filters.http.router",
                    "typed_config": {"@type": "type.googleapis.com/envoy.extensions."
                                              "filters.http.router.v3.Router"},
                }],
            },
        }]}],
    }


def wasm(vm_id, path, configuration):
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": vm_id,
                "vm_config": {
                    "vm_id": vm_id,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(path)}},
                },
                "fail_open": False,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": configuration,
                },
            },
        },
    }


def jwt_authn(jwks, cache):
    provider = {
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": json.dumps(jwks)},
        "forward": False,
        "max_lifetime": "7200s",
        "payload_in_metadata": "jwt_payload",
    }
    if cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 1000}
    return {
        "name": JWT_FILTER,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3."
                     "JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def rbac(count):
    policies = {}
    for k in rule_indices(count):
        policies[f"rule-{k:04}"] = {
            "permissions": [{"url_path": {"path": {"prefix": f"/svc/{k:04}/"}}}],
            "principals": [{"sourced_metadata": {"metadata_matcher": {
                "filter": JWT_FILTER,
                "path": [{"key": "jwt_payload"}, {"key": "sub"}],
                "value": {"string_match": {"exact": f"workload-{k:04}"}},
            }}}],
        }
    return {
        "name": "envoy.filters.http.rbac",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
            "rules": {"action": "ALLOW", "policies": policies},
        },
    }


def taskgate_policy(jwks, count):
    return json.dumps({
        "providers": {"bench": {
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["ES256", "EdDSA"],
            "max_lifetime_seconds": 7200,
            "local_jwks": {"inline": jwks},
        }},
        "rules": [{
            "name": f"rule-{k:04}",
            "match": {"path": {"prefix": f"/svc/{k:04}/"}},
            "providers": ["bench"],
            "subjects": [{"exact": f"workload-{k:04}"}],
        } for k in rule_indices(count)],
    })


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--trivial-wasm", required=True)
    parser.add_argument("--taskgate-wasm", action="append", default=[],
                        metavar="LABEL=PATH")
    parser.add_argument("--key", action="append", required=True,
                        help="a private test JWK whose public part the filters trust")
    parser.add_argument("--rules", default="1,1000")
    args = parser.parse_args()

    jwks = public_jwks(args.key)
    counts = [int(n) for n in args.rules.split(",")]
    upstream_route = {"route": {"cluster": "upstream", "timeout": "5s"}}
    listeners = [
        hcm("nofilter", [], upstream_route),
        hcm("trivial", [wasm("trivial", args.trivial_wasm, "")], upstream_route),
        hcm("hostcalls", [wasm("hostcalls", args.trivial_wasm, "same-host-calls")],
            upstream_route),
    ]
    for n in counts:
        listeners.append(hcm(f"jwt-{n}", [jwt_authn(jwks, False), rbac(n)], upstream_route))
    listeners.append(hcm(f"jwtcache-{counts[0]}",
                         [jwt_authn(jwks, True), rbac(counts[0])], upstream_route))
    for spec in args.taskgate_wasm:
        label, path = spec.split("=", 1)
        for n in counts:
            name = f"tg-{label}-{n}"
            listeners.append(hcm(name, [wasm(name, path, taskgate_policy(jwks, n))],
                                 upstream_route))
    upstream = hcm("upstream", [], {"direct_response": {"status": 200,
                                                        "body": {"inline_string": "ok\n"}}})
    upstream["address"]["socket_address"]["port_value"] = args.upstream_port
    listeners.append(upstream)

    bootstrap = {
        "static_resources": {
            "listeners": listeners,
            "clusters": [{
                "name": "upstream",
                "type": "STATIC",
                "connect_timeout": "1s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{
                    "lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": args.upstream_port}}}}],
                }]},
            }],
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
    }
    pathlib.Path(args.out).write_text(json.dumps(bootstrap, indent=1))


if __name__ == "__main__":
    main()
