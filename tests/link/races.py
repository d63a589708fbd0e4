#!/usr/bin/env python3
"""Why a Link app's tempo change did not become the session's, from the
bridges' step traces (`tutti link --trace`, TUTTI_LINK_TRACE for the
plugin; cities.sh --trace DIR keeps them as DIR/trace{A,B}-DELAY.txt).

Two races a bridge cannot see (docs/link.md, "Open ends"):
  crossed  the bridge never showed the app's tempo and had committed in the
           100 ms after the app's change: Link keeps the later change, and
           the app's reached the bridge's Link peer after its commit;
  peers    the bridge showed the tempo within 1 s of a change of its Link
           peers, when it takes what Link shows for Link sessions meeting.
Anything else (the tempo shown and not proposed, or never shown with no
commit to explain it) is the bridge's fault.

    races.py RUN.out TRACE_DIR KEY BPM [--delay MS]

if the run's switch KEY to BPM is missing, prints one line per app change to
BPM; exits 0 if every one met a race, 1 if not, or if nothing is missing
(the library: raced(), explain()).
"""
import json
import os
import sys

SEEN_WITHIN_US = 300000
CROSS_WITHIN_US = 100000
PEERS_GATE_US = 1000000


def trace(path):
    """(host us, committed, Link peers, Link tempo) at every step"""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) >= 7:
                    rows.append((int(p[0]), p[3] == "1", int(p[5]), float(p[6])))
    except OSError:
        pass
    return rows


def explain(r, trace_dir, key, bpm, delay=50):
    """For every app change to `bpm` in the run `r` (cities.sh's JSON line):
    (race or None, a line saying what the city's bridge did)."""
    out = []
    for city in "AB":
        for t, cmd in r.get("commands_" + city.lower(), []):
            if not (cmd.startswith("tempo ") and abs(float(cmd.split()[1]) - bpm) < 0.01):
                continue
            rows = trace(os.path.join(trace_dir, "trace%s-%d.txt" % (city, delay)))
            what = "%s: city %s's app changed the tempo at %d us; " % (key, city, t)
            if not rows:
                out.append((None, what + "no trace of its bridge"))
                continue
            seen = [h for h, c, n, x in rows if t <= h <= t + SEEN_WITHIN_US and abs(x - bpm) < 0.01]
            first = seen[0] if seen else t + SEEN_WITHIN_US
            commit = [h for h, c, n, x in rows if c and t <= h < first and h <= t + CROSS_WITHIN_US]
            peers = [h for (h, c, n, x), (_, _, n0, _) in zip(rows[1:], rows)
                     if n != n0 and first - PEERS_GATE_US <= h <= first]
            if not seen and commit:
                out.append(("crossed", what + "its bridge, not yet showing it, committed %.1f ms "
                            "later, and Link never showed it after" % ((commit[0] - t) / 1000)))
            elif seen and peers:
                out.append(("peers", what + "its bridge showed it %.1f ms later, %.0f ms after "
                            "its Link peers changed" % ((first - t) / 1000,
                                                        (first - peers[-1]) / 1000)))
            elif seen:
                out.append((None, what + "its bridge showed it %.1f ms later" % ((first - t) / 1000)))
            else:
                out.append((None, what + "its bridge never showed it and committed nothing in "
                            "the %d ms after it" % (CROSS_WITHIN_US // 1000)))
    return out


def raced(r, trace_dir, key, bpm, delay=50):
    """Whether the run's switch `key` (analyze.py's key_a, key_b) to `bpm`
    is missing because the app's change met a race: if it is missing,
    prints what each city's bridge did with the change; true when every such
    change met a race."""
    a, b = r.get(key + "_a"), r.get(key + "_b")
    if a and b and abs(a["to_bpm"] - bpm) < 0.01 and abs(b["to_bpm"] - bpm) < 0.01:
        return False
    found = explain(r, trace_dir, key, bpm, delay)
    for race, line in found:
        print(line)
    return bool(found) and all(race for race, _ in found)


def unjudged(failed, keys):
    """A test's verdict: true (and says so) when its only failures are the
    switches `keys` that met a race."""
    if failed and keys and all(w.startswith(tuple(k + ":" for k in keys)) for w in failed):
        print("UNJUDGED: the app's tempo change in %s met a race the bridge cannot see "
              "(see the lines above)" % " and ".join(keys))
        return True
    return False


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("trace_dir")
    ap.add_argument("key")
    ap.add_argument("bpm", type=float)
    ap.add_argument("--delay", type=int, default=50)
    a = ap.parse_args()
    r = json.loads([l for l in open(a.run) if l.startswith("{")][-1])
    sys.exit(0 if raced(r, a.trace_dir, a.key, a.bpm, a.delay) else 1)


if __name__ == "__main__":
    main()
