#!/usr/bin/env python3
"""Summarises a run of benches/envoy/run.sh as a Markdown table.

Reads the wrk outputs `r<round>.<listener>.<alg>.<mode>.txt` of the results folder given
and prints, per variant, requests/s and p50/p99 latency with their ratios to the no-filter
run of the same round and token mode (median over rounds, then each round's ratio), and the
non-2xx responses and socket errors wrk counted (any of them is flagged).
"""

import pathlib
import re
import statistics
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def duration_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(path):
    text = path.read_text()
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M).group(1))
    p50 = duration_ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = duration_ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket = re.search(r"Socket errors: (.*)", text)
    socket_errors = sum(int(n) for n in re.findall(r"\d+", socket.group(1))) if socket else 0
    total = int(re.search(r"(\d+) requests in", text).group(1))
    return {"rps": rps, "p50": p50, "p99": p99, "total": total,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "socket": socket_errors}


def describe(listener, alg):
    kind, _, rest = listener.partition("-")
    alg_name = {"es": "ES256", "ed": "EdDSA"}[alg]
    if listener == "nofilter":
        return "no filter", "-", "-"
    if listener == "trivial":
        return "trivial wasm filter (1 header compare)", "-", "-"
    if listener == "hostcalls":
        return "trivial filter + taskgate's host calls (decides nothing)", "-", "-"
    if kind == "jwt":
        return "jwt_authn + rbac", alg_name, rest
    if kind == "jwtcache":
        return "jwt_authn (jwt_cache_config on) + rbac", alg_name, rest
    label, _, rules = rest.rpartition("-")
    return f"taskgate @{label}", alg_name, rules


def main():
    folder = pathlib.Path(sys.argv[1])
    results = {}
    order = []
    for path in sorted(folder.glob("r*.txt")):
        m = re.fullmatch(r"r(\d+)\.(.+)\.(es|ed)\.(one|fresh)\.txt", path.name)
        if not m:
            continue
        rnd, listener, alg, mode = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        results[(rnd, listener, alg, mode)] = parse(path)
        if (listener, alg, mode) not in order:
            order.append((listener, alg, mode))
    rounds = sorted({key[0] for key in results})
    # Keep the order run.sh runs them in round 1.
    first = sorted((p.stat().st_mtime, p.name) for p in folder.glob("r1.*.txt"))
    ranked = [re.fullmatch(r"r1\.(.+)\.(es|ed)\.(one|fresh)\.txt", n).groups() for _, n in first]
    order = [k for k in ranked if k in order] + [k for k in order if k not in ranked]

    print(f"Rounds: {len(rounds)}. Ratios are to the no-filter run of the same round and token "
          "mode (req/s: higher is better; latency: lower is better): the median over rounds, "
          "then each round's ratio in brackets. req/s and ms columns: mean over rounds.\n")
    print("| filter | alg | rules | token | req/s | req/s ratio | p50 ms | p50 ratio "
          "| p99 ms | p99 ratio | non-2xx / socket errors |")
    print("|---|---|---|---|---:|---|---:|---|---:|---|---|")
    flagged = []
    for listener, alg, mode in order:
        rows = [results[(r, listener, alg, mode)] for r in rounds
                if (r, listener, alg, mode) in results]
        bases = [results.get((r, "nofilter", "es", mode)) for r in rounds
                 if (r, listener, alg, mode) in results]

        def cell(field, invert=False):
            ratios = [row[field] / base[field] for row, base in zip(rows, bases) if base]
            each = " / ".join(f"{x:.3f}" for x in ratios)
            return f"{statistics.median(ratios):.3f} ({each})"

        what, alg_name, rules = describe(listener, alg)
        errors = sum(r["non2xx"] for r in rows), sum(r["socket"] for r in rows)
        total = sum(r["total"] for r in rows)
        flag = f"{errors[0]} / {errors[1]} of {total}"
        if errors != (0, 0):
            flag = "**" + flag + "**"
            flagged.append(f"{listener} {alg} {mode}")
        token = "same every request" if mode == "one" else "fresh each request"
        print(f"| {what} | {alg_name} | {rules} | {token} "
              f"| {statistics.mean(r['rps'] for r in rows):,.0f} | {cell('rps')} "
              f"| {statistics.mean(r['p50'] for r in rows):.3f} | {cell('p50')} "
              f"| {statistics.mean(r['p99'] for r in rows):.3f} | {cell('p99')} | {flag} |")
    # The target on a cached token is a ratio to the trivial filter, so that one is given
    # directly too, beside the filter that makes taskgate's host calls and decides nothing.
    print("\nSame token every request, req/s ratio to other filters of the same round "
          "(median, then each round):\n")
    for listener, alg, mode in order:
        if mode != "one" or not listener.startswith("tg-"):
            continue
        what, alg_name, rules = describe(listener, alg)
        cells = []
        for other in ("trivial", "hostcalls"):
            ratios = [results[(r, listener, alg, mode)]["rps"]
                      / results[(r, other, "es", mode)]["rps"] for r in rounds
                      if (r, listener, alg, mode) in results and (r, other, "es", mode) in results]
            if ratios:
                each = " / ".join(f"{x:.3f}" for x in ratios)
                cells.append(f"{statistics.median(ratios):.3f} x {other} ({each})")
        print(f"- {what}, {alg_name}, {rules} rule(s): " + "; ".join(cells))
    if flagged:
        print("\nFLAGGED (non-2xx responses or socket errors): " + ", ".join(flagged))
    else:
        print("\nNo non-2xx response and no socket error in any measured run.")


if __name__ == "__main__":
    main()
