"""Turns results/*.tsv into the Markdown tables of the README (fastest and median round)."""

import statistics
from collections import defaultdict
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def rounds(name):
    samples = defaultdict(list)
    for line in (RESULTS / name).read_text().splitlines():
        fields = line.split("\t")
        if len(fields) == 4:
            samples[(fields[0], fields[1])].append(float(fields[2]))
        elif line.strip():
            samples[(fields[0], fields[1])].append(None)
    return samples


def fmt(us):
    return "—" if us is None else f"{us:,.0f}"


native, wasm = rounds("native.tsv"), rounds("wasm.tsv")
order = {"RS256": 0, "PS256": 1, "ES256": 2, "EdDSA": 3}
keys = sorted(set(native) | set(wasm), key=lambda k: (order.get(k[1], 9), k[0]))
print("| alg | backend | native µs (min / median) | wasmtime µs (min / median) | VM/native (median) | rounds n/w |")
print("|---|---|---|---|---|---|")
for key in keys:
    n = [x for x in native.get(key, []) if x is not None]
    w = [x for x in wasm.get(key, []) if x is not None]
    n_min, n_med = (min(n), statistics.median(n)) if n else (None, None)
    w_min, w_med = (min(w), statistics.median(w)) if w else (None, None)
    ratio = f"{w_med / n_med:.1f}×" if n and w else "—"
    print(f"| {key[1]} | {key[0]} | {fmt(n_min)} / {fmt(n_med)} | {fmt(w_min)} / {fmt(w_med)} "
          f"| {ratio} | {len(n)}/{len(w)} |")

print()
sizes = {}
for line in (RESULTS / "size.tsv").read_text().splitlines():
    features, size = line.split("\t")
    sizes[features] = size
base = int(sizes.get("base", "0"))
print(f"| features | module bytes | over `base` ({base:,} B) |")
print("|---|---|---|")
for features, size in sizes.items():
    if size.isdigit():
        print(f"| `{features}` | {int(size):,} | {int(size) - base:+,} |")
    else:
        print(f"| `{features}` | {size} | |")

print()
table = defaultdict(dict)
backends = []
for line in (RESULTS / "hostile.tsv").read_text().splitlines():
    backend, alg, case, outcome = line.split("\t")
    if backend not in backends:
        backends.append(backend)
    library, taskgate = (part.split(": ", 1)[1] for part in outcome.split("; "))
    cell = "refused" if taskgate in ("refused", "key refused") else "**accepted**"
    if library == "ACCEPTED" and cell == "refused":
        cell = "refused by the key check (library alone: accepted)"
    table[(alg, case)][backend] = cell
print("| alg | hostile input | " + " | ".join(backends) + " |")
print("|---|---|" + "---|" * len(backends))
for (alg, case), cells in table.items():
    print(f"| {alg} | {case} | " + " | ".join(cells.get(b, "n/a") for b in backends) + " |")
