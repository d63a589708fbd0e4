#!/usr/bin/env python3
"""Where the two cities' disagreement comes from: the peers' logs (as for
analyze.py) and the two bridges' step traces (`tutti link --trace`).

    decompose.py PEER_A.out PEER_B.out TRACE_A TRACE_B [--from-us T] [--label X]

At every common sample instant after lock (analyze.py's rule, leaving out the
100 ms after a test peer's own change), with the next step of each bridge:
  clock  = e_A - e_B: the members' session clock errors (the offset each
           bridge used minus the one the hub on this machine keeps)
  hold   = h_A - h_B: the Link session against the bridge's own idea of the
           session beat (the step's phase error before any correction)
  model  = clock + hold: what the bridges account for
  link   = measured - model: the rest, the Link peers' own measurement (the
           test peer's view of its room's Link timeline against the bridge's)
all in ms. Prints p50/p99/max of |measured|, of each part, and of the
measured difference with the clock part taken out, as one JSON object.
"""
import argparse
import bisect
import json
import math
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from analyze import pct, read, wrap  # noqa: E402


def read_trace(path):
    hs, es, ps, cs = [], [], [], []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 5:
                continue
            hs.append(int(p[0]))
            es.append(int(p[1]) / 1e6)
            ps.append(float(p[2]))
            cs.append(int(p[3]))
    return hs, es, ps, cs


def at(tr, t):
    """The first step at or after host time t (clock error, phase error)."""
    hs, es, ps, _ = tr
    i = bisect.bisect_left(hs, t)
    if i >= len(hs) or hs[i] - t > 20000:
        return None
    return es[i], ps[i]


def stats(xs):
    a = [abs(x) for x in xs]
    return {"p50": pct(a, 50), "p99": pct(a, 99), "max": max(a) if a else None}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("trace_a")
    ap.add_argument("trace_b")
    ap.add_argument("--from-us", type=int, default=0)
    ap.add_argument("--lock-after-us", type=int, default=0)
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    q, ra, ca = read(a.a)
    _, rb, cb = read(a.b)
    ta, tb = read_trace(a.trace_a), read_trace(a.trace_b)
    cmds = [c[0] for c in ca + cb]
    common = sorted(t for t in ra if t in rb and t >= a.from_us)
    rows, run, lock = [], 0, None
    for t in common:
        d = wrap(ra[t][1] - rb[t][1], q) * 60000.0 / ra[t][2]
        good = (ra[t][4] >= 1 and rb[t][4] >= 1 and abs(ra[t][2] - rb[t][2]) < 0.005
                and abs(d) < 1.0)
        rows.append((t, d, good))
    for i, (t, d, good) in enumerate(rows):
        if not good or t < a.lock_after_us:
            run = i + 1
        elif t - rows[run][0] >= 1000000:
            lock = rows[run][0]
            break
    meas, clock, hold, model, link, rest = [], [], [], [], [], []
    for t, d, _ in rows:
        if lock is None or t < lock or any(0 <= t - c < 100000 for c in cmds):
            continue
        sa, sb = at(ta, t), at(tb, t)
        if not sa or not sb:
            continue
        c = sa[0] - sb[0]
        h = sa[1] - sb[1]
        meas.append(d)
        clock.append(c)
        hold.append(h)
        model.append(c + h)
        link.append(d - c - h)
        rest.append(d - c)
    n = len(meas)
    corr = None
    if n > 2:
        mm, mc = sum(meas) / n, sum(clock) / n
        sxy = sum((x - mm) * (y - mc) for x, y in zip(meas, clock))
        sxx = sum((x - mm) ** 2 for x in meas)
        syy = sum((y - mc) ** 2 for y in clock)
        corr = sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else None
    ea = [e for h, e in zip(ta[0], ta[1]) if lock and h >= lock]
    eb = [e for h, e in zip(tb[0], tb[1]) if lock and h >= lock]
    print(json.dumps({
        "label": a.label, "samples": n, "corr_measured_clock": corr,
        "measured_ms": stats(meas), "clock_ms": stats(clock), "hold_ms": stats(hold),
        "model_ms": stats(model), "link_ms": stats(link),
        "measured_minus_clock_ms": stats(rest),
        "clock_a_ms": stats(ea), "clock_b_ms": stats(eb),
        "commits_a": sum(ta[3]), "commits_b": sum(tb[3]),
    }))


if __name__ == "__main__":
    sys.exit(main())
