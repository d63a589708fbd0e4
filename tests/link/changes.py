#!/usr/bin/env python3
"""How many Link apps' tempo changes reached the other city (cities.sh
--changes N): every change an app made (its log's "c HOST tempo X") must
show in the other city's app within 4.5 s (a bar and L at the slowest
tempo); each one that does not is shown with what its own city's bridge
trace says of it (tests/link/races.py: a race the bridge cannot see, or
the bridge's fault).

    changes.py PEER_A.out PEER_B.out TRACE_DIR [--delay MS]

Prints one line per lost change and one JSON object last.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from analyze import read  # noqa: E402
from races import explain  # noqa: E402

WITHIN_US = 4500000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("trace_dir")
    ap.add_argument("--delay", type=int, default=50)
    a = ap.parse_args()
    logs = {"A": read(a.a), "B": read(a.b)}
    other = {"A": "B", "B": "A"}
    total, lost, kinds = 0, [], {}
    for city in "AB":
        for t, cmd in logs[city][2]:
            if not cmd.startswith("tempo "):
                continue
            bpm = float(cmd.split()[1])
            total += 1
            rows = logs[other[city]][1]
            if any(t <= h <= t + WITHIN_US and abs(rows[h][2] - bpm) < 0.01 for h in rows):
                continue
            found = explain({"commands_" + city.lower(): [[t, cmd]]}, a.trace_dir, "change", bpm,
                            a.delay)
            race = found[0][0] if found else None
            kinds[race or "bridge"] = kinds.get(race or "bridge", 0) + 1
            lost.append({"city": city, "at_us": t, "bpm": bpm, "race": race})
            for _, line in found:
                print("lost: " + line)
    print(json.dumps({"delay_ms": a.delay, "changes": total, "lost": len(lost), "kinds": kinds,
                      "lost_changes": lost}))


if __name__ == "__main__":
    main()
