#!/usr/bin/env python3
"""races.py's judgement on made-up bridge traces: the two races it may call
a race, and the bridge's own faults, which it must not."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from races import explain  # noqa: E402

T = 10_000_000_000  # the app's change, host us
STEPS = range(T - 2_000_000, T + 1_000_000, 2000)  # a bridge step every 2 ms


def judge(rows, city="A", bpm=133.0):
    """explain() for one app change to `bpm` in `city`, the bridge's trace
    rows (host, committed, Link peers, Link tempo) as given."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "trace%s-50.txt" % city), "w") as f:
            for h, c, n, x in rows:
                f.write("%d 0 0.000000 %d 45000000 %d %.6f\n" % (h, c, n, x))
        r = {"commands_" + city.lower(): [[T, "tempo %.6f" % bpm], [T + 5_000_000, "stop"]]}
        return explain(r, d, "switch", bpm)


def commit_at(h, at):
    return abs(h - at) <= 1000


fails = 0


def expect(name, found, race):
    global fails
    ok = len(found) == 1 and found[0][0] == race
    print("%s: %s %s" % ("ok" if ok else "FAIL", name, found))
    fails += not ok


expect("a commit 4 ms after the change, the tempo never shown: crossed",
       judge([(h, commit_at(h, T + 4000), 2, 120.0) for h in STEPS]), "crossed")
expect("the tempo shown 4 ms after the change, 500 ms after the Link peers changed: peers",
       judge([(h, commit_at(h, T + 4000), 1 if h < T - 500_000 else 2,
               133.0 if h > T + 3000 else 120.0) for h in STEPS]), "peers")
expect("the same in city B",
       judge([(h, commit_at(h, T + 4000), 2, 120.0) for h in STEPS], city="B"), "crossed")
# the bridge's faults
expect("the tempo shown, no change of peers in the second before: the bridge's",
       judge([(h, commit_at(h, T + 4000), 1 if h < T - 1_100_000 else 2,
               133.0 if h > T + 3000 else 120.0) for h in STEPS]), None)
expect("the tempo shown 200 ms later, a commit before it: the bridge's",
       judge([(h, commit_at(h, T + 4000), 2, 133.0 if h > T + 200_000 else 120.0)
              for h in STEPS]), None)
expect("never shown, no commit: the bridge's (or Link's), not a race",
       judge([(h, False, 2, 120.0) for h in STEPS]), None)
expect("never shown, a commit only 150 ms later: not a race",
       judge([(h, commit_at(h, T + 150_000), 2, 120.0) for h in STEPS]), None)
expect("a commit before the change does not count",
       judge([(h, commit_at(h, T - 4000), 2, 120.0) for h in STEPS]), None)
expect("no trace at all: not a race", judge([]), None)
sys.exit(1 if fails else 0)
