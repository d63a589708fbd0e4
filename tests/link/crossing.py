#!/usr/bin/env python3
"""How long a Link app's tempo change takes to show in another Link peer on
the same LAN: the window in which a commit of that other peer (a bridge's
correction) crosses the change, and Link, which keeps the later change,
drops the app's (docs/link.md, "Open ends").

    sudo python3 tests/link/crossing.py build/tests/linkpeer [--changes 100]

Two Link test peers (tests/link/linkpeer.cpp) in a network namespace of its
own (Link multicasts), one sampling every millisecond; the other changes its
tempo every 300-400 ms. For each change: the time from the commit to the
first sample of the other showing it. Prints the distribution, the last line
one JSON object. Not run in CI: a measurement (about 45 s, root).
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs))) - 1))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("linkpeer")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("crossing.py: needs root (a network namespace)")
        return 77
    rng = random.Random(a.seed)
    ns = "tcx%d" % os.getpid()
    subprocess.run(["ip", "netns", "add", ns], check=True)
    procs = []
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        dur = str(a.changes * 0.4 + 20)

        def peer(bpm, period):
            # into a file: a pipe nobody reads would stop the sampling peer
            out = tempfile.TemporaryFile("w+")
            p = subprocess.Popen(["ip", "netns", "exec", ns, a.linkpeer, "--quantum", "4",
                                  "--bpm", str(bpm), "--period-ms", str(period),
                                  "--duration", dur],
                                 stdin=subprocess.PIPE, stdout=out, text=True)
            p.out = out
            procs.append(p)
            return p

        def lines(p):
            p.wait(timeout=30)
            p.out.seek(0)
            return p.out.read().splitlines()
        app = peer(120, 1000)
        other = peer(110, 1)
        time.sleep(3)  # discovery and the sessions meeting
        for i in range(a.changes):
            app.stdin.write("tempo %.1f\n" % (100 + i % 2 * 20 + rng.randrange(10)))
            app.stdin.flush()
            time.sleep(0.3 + rng.random() * 0.1)
        app.stdin.write("quit\n")
        app.stdin.flush()
        time.sleep(0.5)
        other.stdin.write("quit\n")
        other.stdin.flush()
        cmds = [(int(l.split()[1]), float(l.split()[3])) for l in lines(app)
                if l.startswith("c ") and " tempo " in l]
        rows = []
        for l in lines(other):
            p = l.split()
            if p and p[0] == "b" and len(p) >= 8:
                rows.append((int(p[1]), float(p[4]), int(p[6])))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        subprocess.run(["ip", "netns", "del", ns])
    lat, missed = [], 0
    j = 0
    for t, bpm in cmds:
        while j < len(rows) and rows[j][0] < t:
            j += 1
        k = j
        while k < len(rows) and rows[k][0] < t + 250000 and abs(rows[k][1] - bpm) > 0.01:
            k += 1
        if k < len(rows) and rows[k][0] < t + 250000:
            lat.append((rows[k][0] - t) / 1000.0)
        else:
            missed += 1
    if not lat:
        print(json.dumps({"changes": len(cmds), "seen": 0, "missed": missed}))
        return 1
    for lo, hi in ((0, 1), (1, 2), (2, 5), (5, 10), (10, 20), (20, 50), (50, 250)):
        n = sum(lo <= x < hi for x in lat)
        print("%3d-%3d ms  %3d  %s" % (lo, hi, n, "#" * n))
    print(json.dumps({"changes": len(cmds), "seen": len(lat), "missed": missed,
                      "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
                      "max_ms": max(lat), "mean_ms": sum(lat) / len(lat)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
