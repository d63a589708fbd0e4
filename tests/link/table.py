#!/usr/bin/env python3
"""Summarise cities.sh runs (files of its JSON lines) as the Markdown rows of
docs/benchmarks.md: per label, each run's figures, and their range; then,
for runs made with --trace, the decomposition's (decompose.py) ranges.

    table.py RUN1.out [RUN2.out ...]
"""
import json
import sys
from collections import OrderedDict


def fmt(xs, unit="", nd=2):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "—"
    lo, hi = min(xs), max(xs)
    f = "%%.%df" % nd
    return (f % lo) + unit if abs(hi - lo) < 10 ** -nd else (f % lo) + "–" + (f % hi) + unit


rows = OrderedDict()
parts = OrderedDict()
for path in sys.argv[1:]:
    for line in open(path):
        if line.startswith("{"):
            r = json.loads(line)
            rows.setdefault(r["label"], []).append(r)
        elif line.startswith("decompose: "):
            r = json.loads(line[len("decompose: "):])
            parts.setdefault(r["label"], []).append(r)
print("| run | runs | lock | p50 | p99 | max | p99 / max without own changes | tempo switch Δt | start/stop Δt "
      "| from the first second of agreement: at, p99 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for label, rs in rows.items():
    locked = [r for r in rs if r.get("locked")]
    if not locked:
        print("| %s | %d | never (peers 0) | — | — | phase apart %s ms | — | — | — | — |" % (
            label, len(rs), fmt([r.get("diff_p50_ms") for r in rs], nd=1)))
        continue
    sw = [r.get(k) for r in locked for k in ("switch_dt_ms", "switch2_dt_ms")]
    tr = [r.get(k) for r in locked for k in ("transport1_dt_ms", "transport2_dt_ms")]
    print("| %s | %d%s | %s | %s | %s | %s | %s / %s | %s | %s | %s, %s |" % (
        label, len(rs), "" if len(locked) == len(rs) else " (%d locked)" % len(locked),
        fmt([r["lock_s"] for r in locked], " s", 1),
        fmt([r["p50_ms"] for r in locked], " ms", 3),
        fmt([r["p99_ms"] for r in locked], " ms", 3),
        fmt([r["max_ms"] for r in locked], " ms", 1),
        fmt([r.get("steady_p99_ms") for r in locked], " ms", 3),
        fmt([r.get("steady_max_ms") for r in locked], " ms", 2),
        fmt(sw, " ms", 3), fmt(tr, " ms", 3),
        fmt([r.get("agree_s") for r in locked], " s", 1),
        fmt([r.get("p99_from_agree_ms") for r in locked], " ms", 3)))
if parts:
    print()
    print("| run | runs | p99 apart (own changes left out) | clock part p99 | hold part p99 "
          "| Link part p99 | apart minus clock p99 | corr(apart, clock) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, rs in parts.items():
        print("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            label, len(rs),
            fmt([r["measured_ms"]["p99"] for r in rs], " ms", 3),
            fmt([r["clock_ms"]["p99"] for r in rs], " ms", 3),
            fmt([r["hold_ms"]["p99"] for r in rs], " ms", 3),
            fmt([r["link_ms"]["p99"] for r in rs], " ms", 3),
            fmt([r["measured_minus_clock_ms"]["p99"] for r in rs], " ms", 3),
            fmt([r["corr_measured_clock"] for r in rs], "", 2)))
