"""Where the notes of a session fell on its beat grid, from the members' journals.

    python3 grid.py --timeline '{"t0_ns": ..., "beat0": ..., "bpm": ..., "quantum": ...}'
                    --part anna=tuttiClockA ... [--grid 0.25] [--tolerance-ms 0.1]
                    JOURNAL...

The timeline the session started from comes from a member's status (the
journals hold only the changes agreed after each member joined); every
tempo change is a coordinator command in the journals (kind 1, op TEMPO:
bpm, beat0, t0, quantum). A note is a /s_new (sclang sends it as command
number 9) of one of the parts' synthdefs in a user event, as the servers
played it (rewritten into the part's namespace: <def>.p<slot>); its session
time is the event's t. A member's state sent to a newcomer is journaled as it
came, not rewritten (<def> and the client's own node ids): those copies of
notes are counted apart (the newcomer's server plays them at the join, see
docs/plugin.md, "Known limits"), not as notes.

Prints one line per part (notes, first and last beat, the worst distance from
the grid), the tempo changes, and a JSON object as the last line; exits 1
when a note is off the grid by more than the tolerance, a part's first note
is not on a bar line, a part misses a bar line while it plays, or a tempo
change does not start on a bar line.
"""
import argparse
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "examples", "osc"))
import tuttiosc as osc  # noqa: E402
import tuttiproto  # noqa: E402

CMD_TEMPO = 3


def zz(v):
    return (v >> 1) ^ -(v & 1)


def f64(b, default=0.0):
    import struct
    return struct.unpack("<d", b)[0] if isinstance(b, (bytes, bytearray)) and len(b) == 8 else default


def read(journals):
    """(tempo changes, notes): changes as dicts, notes as (t_ns, origin, seq, def, node)."""
    changes, notes, copies = {}, {}, 0
    for path in journals:
        for line in open(path):
            f = line.split()
            if len(f) < 5 or f[4] == "-":
                continue
            t, origin, seq, kind = int(f[0]), int(f[1]), int(f[2]), int(f[3])
            data = bytes.fromhex(f[4])
            if kind == 1:
                c = tuttiproto.parse_fields(data)
                if c.get(1) != CMD_TEMPO:
                    continue
                tl = {"t0_ns": zz(c.get(10, 0)), "beat0": f64(c.get(9)), "bpm": f64(c.get(8)),
                      "quantum": f64(c.get(11), 4.0), "playing": bool(c.get(12, 0)),
                      "agreed_ns": t}
                changes[(tl["t0_ns"], tl["beat0"], tl["bpm"])] = tl
                continue
            if kind != 0:
                continue
            try:
                msgs = osc.messages(data)
            except osc.OscError:
                continue
            for addr, args in msgs:
                if addr not in ("", "/s_new", "s_new") or len(args) < 2 or not isinstance(args[0], str):
                    continue
                name, dot, slot = args[0].rpartition(".p")
                if not dot or not slot.isdigit():
                    copies += 1
                    continue
                notes[(origin, seq, args[1])] = (t, origin, seq, name, args[1])
    return sorted(changes.values(), key=lambda c: c["t0_ns"]), sorted(notes.values()), copies


def beat_at(timelines, t):
    tl = timelines[0]
    for c in timelines[1:]:
        if c["t0_ns"] <= t:
            tl = c
    return tl["beat0"] + (t - tl["t0_ns"]) * tl["bpm"] / 60e9, tl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeline", required=True, help="JSON: t0_ns, beat0, bpm, quantum")
    ap.add_argument("--part", action="append", default=[], help="NAME=SYNTHDEF")
    ap.add_argument("--grid", type=float, default=0.25, help="the notes' grid, in beats")
    ap.add_argument("--tolerance-ms", type=float, default=0.1)
    ap.add_argument("--target-ms", type=float, default=None,
                    help="also count (not fail) notes further than this from the grid")
    ap.add_argument("journals", nargs="+")
    a = ap.parse_args()

    start = json.loads(a.timeline)
    start = {"t0_ns": int(start["t0_ns"]), "beat0": float(start["beat0"]), "bpm": float(start["bpm"]),
             "quantum": float(start.get("quantum", 4)), "agreed_ns": None}
    changes, notes, copies = read(a.journals)
    print("notes in newcomers' states (journaled as sent, not counted): %d" % copies)
    timelines = [start] + [c for c in changes if c["t0_ns"] > start["t0_ns"]]
    parts = dict(p.split("=", 1) for p in a.part)
    problems = []
    report = {"parts": {}, "changes": []}

    for c in timelines[1:]:
        q = c["quantum"]
        lead_ms = (c["t0_ns"] - c["agreed_ns"]) / 1e6
        on_bar = abs(c["beat0"] / q - round(c["beat0"] / q)) < 1e-9
        print("tempo change: %.3f bpm from beat %.3f (session time %d ns), agreed %.1f ms before, %s"
              % (c["bpm"], c["beat0"], c["t0_ns"], lead_ms, "on a bar line" if on_bar else "NOT on a bar line"))
        report["changes"].append({"bpm": c["bpm"], "beat": c["beat0"], "lead_ms": round(lead_ms, 1)})
        if not on_bar:
            problems.append("the change to %.3f bpm starts at beat %.6f, not on a bar line" % (c["bpm"], c["beat0"]))
        before, _ = beat_at(timelines[:timelines.index(c)], c["t0_ns"])
        if abs(before - c["beat0"]) > 1e-6:
            problems.append("the change to %.3f bpm is not continuous: beat %.6f there before it, %.6f after"
                            % (c["bpm"], before, c["beat0"]))

    worst_all = 0.0
    for name, synthdef in parts.items():
        mine = [n for n in notes if n[3] == synthdef]
        if not mine:
            problems.append("no note of %s (%s) in the journals" % (name, synthdef))
            continue
        off, worst, beats, over_target = 0, 0.0, [], 0
        for t, origin, seq, _, node in mine:
            b, tl = beat_at(timelines, t)
            nearest = round(b / a.grid) * a.grid
            err_ms = abs(b - nearest) * 60e3 / tl["bpm"]
            worst = max(worst, err_ms)
            if a.target_ms is not None and err_ms > a.target_ms:
                over_target += 1
                print("  %s: note at beat %.6f, %.4f ms off the grid (over the %.2f ms target; "
                      "session time %d ns, seq %d)" % (name, b, err_ms, a.target_ms, t, seq))
            if err_ms > a.tolerance_ms:
                off += 1
                if off <= 5:
                    print("  %s: note at beat %.6f, %.4f ms off the grid (session time %d ns, seq %d)"
                          % (name, b, err_ms, t, seq))
            beats.append(nearest)
        q = start["quantum"]
        first, last = beats[0], beats[-1]
        bars = sorted({b for b in beats if abs(b / q - round(b / q)) < 1e-9})
        missing = [x * q for x in range(int(math.ceil(first / q - 1e-9)), int(math.floor(last / q + 1e-9)) + 1)
                   if x * q not in bars]
        after = [c for c in timelines[1:] if c["t0_ns"] <= mine[-1][0] and c["t0_ns"] >= mine[0][0]]
        print("%s: %d notes from beat %g to %g, %d bar lines, worst %.4f ms off the grid, %d off by more than %.2f ms%s"
              % (name, len(mine), first, last, len(bars), worst, off, a.tolerance_ms,
                 ", across %d tempo change(s)" % len(after) if after else ""))
        report["parts"][name] = {"notes": len(mine), "first_beat": first, "last_beat": last,
                                 "bars": len(bars), "worst_ms": round(worst, 6), "off_grid": off,
                                 "changes_crossed": len(after), "over_target": over_target}
        worst_all = max(worst_all, worst)
        if off:
            problems.append("%s: %d notes off the grid by more than %.2f ms" % (name, off, a.tolerance_ms))
        if abs(first / q - round(first / q)) > 1e-9:
            problems.append("%s: the first note is at beat %g, not on a bar line" % (name, first))
        if missing:
            problems.append("%s: no note on the bar lines at beats %s while it played" % (name, missing[:5]))
    report["worst_ms"] = round(worst_all, 6)
    report["problems"] = problems
    for p in problems:
        print("PROBLEM: " + p)
    print(json.dumps(report))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
