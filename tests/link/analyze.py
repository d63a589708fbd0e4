#!/usr/bin/env python3
"""Compare two Link peers' logs (tests/link/linkpeer.cpp) sampled at the same
host instants: how far apart their beats are, when they locked, and where
each switched tempo.

    analyze.py PEER_A.out PEER_B.out [--from-us T] [--label X] [--switch-after-us T]

Beat magnitude is each Link app's own (Link shares the phase within the
quantum, not the count), so two peers agree on the beat when their phases
agree: the difference is wrap(phase_a - phase_b) in beats, shown in ms at the
tempo. Lock: the first instant from --from-us on, and not before
--lock-after-us (when the bridges said they were locked), that starts a whole
second of common samples in which both peers see at least one Link peer, the
same tempo and a difference under 1 ms; every figure after it counts (p50,
p99, max; lock_s is from --from-us), and steady_* leaves out the 100 ms after each change a test peer made
itself (while its bridge wins the room back, see docs/link.md). A tempo switch is found in each
log as the last change of tempo after --switch-after-us: the old and new beat lines cross
near a bar line (bar_off_beats says how near); the switch instant is that bar
line's time on the new line, and jump_ms the gap to the old line's time for
it (a discontinuity at the switch). Prints one JSON object.
"""
import argparse
import json
import math
import sys


def read(path):
    q, rows, cmds = 4.0, {}, []
    with open(path) as f:
        for line in f:
            p = line.split()
            if not p:
                continue
            if p[0] == "#" and "quantum" in p:
                q = float(p[p.index("quantum") + 1])
            elif p[0] == "b" and len(p) >= 8:
                rows[int(p[1])] = (float(p[2]), float(p[3]), float(p[4]), int(p[5]), int(p[6]),
                                   int(p[7]))
            elif p[0] == "c":
                cmds.append((int(p[1]), " ".join(p[2:])))
    return q, rows, cmds


def wrap(x, q):
    x = math.fmod(x, q)
    if x >= q / 2:
        x -= q
    if x < -q / 2:
        x += q
    return x


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(math.ceil(p / 100.0 * len(xs))) - 1)]


def switch(rows, after, before, q):
    ts = sorted(t for t in rows if after <= t < before)
    last = None
    for i in range(1, len(ts)):
        if abs(rows[ts[i]][2] - rows[ts[i - 1]][2]) > 0.005:
            last = i
    if last is None:
        return None
    t0, t1 = ts[last - 1], ts[last]
    b0, r0 = rows[t0][0], rows[t0][2]
    b1, r1 = rows[t1][0], rows[t1][2]
    r0, r1 = r0 / 60e6, r1 / 60e6  # beats per microsecond
    # b0 + (t - t0) r0 == b1 + (t - t1) r1, the beat counts possibly apart by
    # whole quanta: line them up first
    b1 -= round((b1 - (b0 + (t1 - t0) * r0)) / q) * q
    t = (b1 - b0 + t0 * r0 - t1 * r1) / (r0 - r1)
    beat = b0 + (t - t0) * r0
    # The lines cross near the bar line the change was agreed for; the
    # crossing itself moves by r / (r1 - r0) times any small phase difference
    # between the two lines (a re-assertion between the samples), so the
    # switch instant is taken as that bar line's time on the new line, and
    # the gap to the old line's time for it is the jump at the switch.
    bar = round(beat / q) * q
    t_new = t1 - (b1 - bar) / r1
    t_old = t0 + (bar - b0) / r0
    return {"at_us": t_new, "phase": beat % q, "bar_off_beats": beat - bar,
            "jump_ms": (t_new - t_old) / 1000.0, "from_bpm": rows[t0][2],
            "to_bpm": rows[t1][2]}


def transport(rows, after, before, q):
    """The last start/stop in [after, before): its host time as Link states
    it (timeForIsPlaying) and the phase there."""
    ts = sorted(t for t in rows if after <= t < before)
    last = None
    for i in range(1, len(ts)):
        if rows[ts[i]][3] != rows[ts[i - 1]][3]:
            last = i
    if last is None:
        return None
    t1 = ts[last]
    b1, _, r1, playing, _, at = rows[t1]
    beat = b1 + (at - t1) * r1 / 60e6
    return {"playing": playing, "at_us": at, "phase": beat % q, "seen_us": t1}


def compare(out, key, sa, sb, q):
    out[key + "_a"], out[key + "_b"] = sa, sb
    if sa and sb:
        out[key + "_dt_ms"] = abs(sa["at_us"] - sb["at_us"]) / 1000.0
        out[key + "_dphase"] = abs(wrap(sa["phase"] - sb["phase"], q))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--from-us", type=int, default=0)
    ap.add_argument("--lock-after-us", type=int, default=0)
    ap.add_argument("--switch-after-us", type=int, default=None)
    ap.add_argument("--switch-before-us", type=int, default=1 << 62)
    ap.add_argument("--switch2-after-us", type=int, default=None)
    ap.add_argument("--switch2-before-us", type=int, default=1 << 62)
    ap.add_argument("--transport", action="append", default=[],
                    help="FROM:TO host-time window holding one start or stop")
    ap.add_argument("--label", default="")
    a = ap.parse_args()
    q, ra, ca = read(a.a)
    _, rb, cb = read(a.b)
    common = sorted(t for t in ra if t in rb and t >= a.from_us)
    ok = []
    for t in common:
        ba, pa, bpa, pla, na, _ = ra[t]
        bb, pb, bpb, plb, nb, _ = rb[t]
        d = wrap(pa - pb, q) * 60000.0 / bpa
        ok.append((t, d, na >= 1 and nb >= 1 and abs(bpa - bpb) < 0.005 and abs(d) < 1.0))
    # lock: the first instant from which a whole second of samples agrees
    # (and, for `lock`, not before the bridges said they were locked)
    def first_agreement(after):
        run = None
        for i, (t, d, good) in enumerate(ok):
            if t < after or not good:
                run = None
            elif run is None:
                run = i
            elif t - ok[run][0] >= 1000000:
                return ok[run][0]
        return None
    lock = first_agreement(a.lock_after_us)
    agree = first_agreement(0)
    diffs = [abs(d) for t, d, _ in ok if lock is not None and t >= lock]
    early = [abs(d) for t, d, _ in ok if agree is not None and t >= agree]
    # the same without the moments a local app's own change is being won
    # back (Link lets a peer broadcast at most every 50 ms, so the bridge's
    # answer reaches the room up to ~50 ms after the app's change)
    cmds = [c[0] for c in ca + cb]
    steady = [abs(d) for t, d, _ in ok if lock is not None and t >= lock and
              not any(0 <= t - c < 100000 for c in cmds)]
    out = {"label": a.label, "quantum": q, "samples": len(common),
           "locked": lock is not None}
    if lock is not None:
        out.update({
            "lock_s": (lock - a.from_us) / 1e6,
            # the same from the first second of agreement, the bridges' own
            # lock or not: what the first seconds add
            "agree_s": (agree - a.from_us) / 1e6,
            "p99_from_agree_ms": pct(early, 99),
            "after_lock": len(diffs),
            "p50_ms": pct(diffs, 50), "p99_ms": pct(diffs, 99), "max_ms": max(diffs),
            "phase_p99_beats": pct(diffs, 99) * ra[common[-1]][2] / 60000.0,
            "steady_p99_ms": pct(steady, 99), "steady_max_ms": max(steady) if steady else None,
        })
    else:
        ds = [abs(wrap(ra[t][1] - rb[t][1], q)) * 60000.0 / ra[t][2] for t in common]
        out.update({"diff_p50_ms": pct(ds, 50), "diff_max_ms": max(ds) if ds else None,
                    "peers_a_max": max((ra[t][4] for t in common), default=0),
                    "peers_b_max": max((rb[t][4] for t in common), default=0)})
    if common:
        out["bpm_a"] = ra[common[-1]][2]
        out["bpm_b"] = rb[common[-1]][2]
    if a.switch_after_us is not None:
        compare(out, "switch", switch(ra, a.switch_after_us, a.switch_before_us, q),
                switch(rb, a.switch_after_us, a.switch_before_us, q), q)
    if a.switch2_after_us is not None:
        compare(out, "switch2", switch(ra, a.switch2_after_us, a.switch2_before_us, q),
                switch(rb, a.switch2_after_us, a.switch2_before_us, q), q)
    for i, w in enumerate(a.transport):
        lo, hi = (int(x) for x in w.split(":"))
        compare(out, "transport%d" % (i + 1), transport(ra, lo, hi, q), transport(rb, lo, hi, q), q)
    out["commands_a"] = ca
    out["commands_b"] = cb
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
