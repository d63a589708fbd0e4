#!/usr/bin/env python3
"""Three headless Sonic Pi 3.2 servers keep time in one tutti session.

    timing.py --tutti BUILD/tutti --plugin-dir BUILD/plugin --out DIR [--play 180]

A JACK server (dummy driver), a hub (L 150 ms, 120 bpm) and three Sonic Pi
servers started through the tutti wrapper, as docs/sonicpi.md says. Each
joins (the first as conductor) and runs live_loops that call tutti_sync at
the top, with loops of 1, 2 and 4 bars: samples, with_fx, a long note that
is controlled at every bar. Halfway through --play seconds the conductor
runs `tutti_bpm 132`. Then the 2-bar member leaves (tutti_leave), plays on
alone, and runs the same code again (it joins again with the same journal
name); then the 4-bar member does the same.

Judged from the journals (what every server executed, in session time),
the servers' node trees, scsynth's logs and Sonic Pi's own log:
  - zero silent bars: every beat a part's loop plays has its note in the
    journal at that beat of the session's grid (1- and 2-bar members: a
    note on every beat; the 4-bar member: its long note or a control of it
    on every bar), from each part's first note to the end of its stint;
  - zero notes off the grid: every note (each /s_new of a sound and each
    /n_set of one) within 1 ms of a half beat of the grid in force, 120 bpm
    before the agreed change and 132 bpm from the agreed beat on;
  - after the change, every part's notes on the 132 bpm grid from the beat
    the session agreed (and none of them at 120 bpm);
  - zero `late` lines in every scsynth log, zero FAILURE caused by session
    events, zero Sonic Pi errors (before, while alone, and after joining
    again), zero bars skipped by tutti_sync;
  - a member that left: nothing of its part on the others' servers (no
    group, no node) while it plays alone, its loops still playing on its own
    server; after joining again its part is back everywhere and its journal
    kept both stints (the first file whole, the second beside it);
  - the journals identical where the members shared the session.

Prints a report; the last line is one JSON object. Exit status 0 when all
of it held. Every process started here is stopped by pid.
"""
import argparse
import bisect
import math
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import spi  # noqa: E402
import tuttiosc  # noqa: E402
from tuttilocal import clear_jack_shm, tree_parts as tree_nodes, tutti_status  # noqa: E402

NTP_EPOCH = 2208988800
CONTROL_DELTA = 0.005  # Sonic Pi 3.2's default set_control_delta!
BPM, NEW_BPM, L_MS = 120.0, 132.0, 150

JOIN = '''use_bpm 120
tutti_join "timing", hub: "{hub}", as: "{name}", journal: "{journal}"{role}
'''

# The three parts: what docs/sonicpi.md recommends, loops of 1, 2, 4 bars.
PARTS = {
    "one": '''
live_loop :kick do
  tutti_sync 1
  4.times do
    sample :bd_haus, amp: 1.2
    sleep 1
  end
end

live_loop :hats do
  tutti_sync 1
  with_fx :hpf, cutoff: 100 do
    8.times do
      sample :drum_cymbal_closed, amp: 0.5, rate: 1.2
      sleep 0.5
    end
  end
end
''',
    "two": '''
live_loop :bass do
  tutti_sync 2
  with_fx :lpf, cutoff: 90 do
    use_synth :fm
    [:e2, :e2, :g2, :a2, :e2, :d2, :g2, :b1].each do |n|
      play n, release: 0.8, amp: 0.8
      sleep 1
    end
  end
end
''',
    "four": '''
live_loop :pad do
  tutti_sync 4
  with_fx :reverb, room: 0.6 do
    use_synth :prophet
    s = play :e3, attack: 0.5, sustain: 14, release: 1, amp: 0.3, note_slide: 0.25
    [:g3, :a3, :b2].each do |n|
      sleep 4
      control s, note: n
    end
    sleep 4
  end
end
''',
}
SOUND = re.compile(r"^sonic-pi-(?!.*(mixer|fx_|scope|server-info))")


def say(*a):
    print(*a, flush=True)


def code(name, hub, journal, role=""):
    return JOIN.format(hub=hub, name=name, journal=journal, role=role) + PARTS[name]


def read_log(sp):
    try:
        with open(os.path.join(sp.home, ".sonic-pi", "log", "scsynth.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def journal_notes(path):
    """(session s, origin, kind) of every note: 's' a /s_new of a sound
    synth, 'c' an /n_set of one of those nodes (a control). A member's
    part's state played to a newcomer (the n events before its
    `/tutti/replayed id n`) is not a note: its synths start again on the
    newcomer when the state plays, not on the beat."""
    out, sounds, rows = [], set(), []
    try:
        f = open(path)
    except OSError:
        return out
    replay = set()
    for line in f:
        x = line.split()
        if len(x) < 5 or x[3] != "0" or x[4] == "-":
            continue
        t, o, seq = int(x[0]) / 1e9, int(x[1]), int(x[2])
        try:
            ms = tuttiosc.messages(bytes.fromhex(x[4]))
        except Exception:  # noqa: BLE001 - not OSC
            continue
        rows.append((t, o, seq, ms))
        for addr, args in ms:
            if addr == "/tutti/replayed" and len(args) > 1:
                replay.update((o, k) for k in range(seq - int(args[1]), seq))
    for t, o, seq, ms in rows:
        if (o, seq) in replay:
            continue
        for addr, args in ms:
            if addr == "/s_new" and len(args) > 1 and SOUND.match(str(args[0])):
                sounds.add(args[1])
                out.append((t, o, "s"))
            elif addr == "/n_set" and args and args[0] in sounds:
                out.append((t, o, "c"))
    return out


class Grid:
    """The session's grid in session seconds: the timeline at the start and
    the one agreed later (beat b at session time t)."""

    def __init__(self):
        self.segs = []  # (t, beat, bpm)

    def add(self, st):
        t = (int(st["timeline_t0_ns"])) / 1e9
        b, bpm = float(st["timeline_beat0"]), float(st["bpm"])
        if not self.segs or abs(self.segs[-1][2] - bpm) > 1e-9:
            self.segs.append((t, b, bpm))

    def seg(self, t):
        s = self.segs[0]
        for x in self.segs:
            if x[0] <= t + 1e-6:
                s = x
        return s

    def beat(self, t):
        t0, b0, bpm = self.seg(t)
        return b0 + (t - t0) * bpm / 60.0

    def time(self, beat):
        s = self.segs[0]
        for x in self.segs:
            if x[1] <= beat + 1e-9:
                s = x
        return s[0] + (beat - s[1]) * 60.0 / s[2]


def judge_notes(notes, grid, origin, start, end, every):
    """A part's notes between session times start and end: off-grid notes
    (further than 1 ms from a half beat), and missing pulses (beats that
    are multiples of `every` without a note of it within 1 ms)."""
    # Sonic Pi sends a control (/n_set) control_delta (5 ms) after the
    # thread's time, so that it follows the note it controls
    mine = [t - (CONTROL_DELTA if k == "c" else 0.0) for t, o, k in notes
            if o == origin and start <= t <= end]
    off = []
    for t in mine:
        b = grid.beat(t)
        h = round(b * 2) / 2
        if abs(grid.time(h) - t) > 0.001:
            off.append((round(t, 4), round(b, 4)))
    if not mine:
        return off, ["no notes at all"], 0
    b0 = grid.beat(min(mine))
    b1 = grid.beat(max(mine))
    # the first pulse at or after the first note judged (round() would
    # pick the pulse before a note half a pulse after it, outside the span)
    k = int(math.ceil(b0 / every - 0.01))
    missing, n = [], 0
    got = sorted(mine)
    while k * every <= b1 + 1e-6:
        tb = grid.time(k * every)
        i = bisect.bisect_left(got, tb - 0.001)
        if not (i < len(got) and got[i] <= tb + 0.001):
            missing.append(k * every)
        n += 1
        k += 1
    return off, missing, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--play", type=float, default=40.0,
                    help="seconds of trio before the leaves (the tempo change comes halfway)")
    ap.add_argument("--alone", type=float, default=6.0, help="seconds a member plays alone")
    a = ap.parse_args()
    tutti = os.path.abspath(a.tutti)
    work = os.path.abspath(a.out)
    os.makedirs(work, exist_ok=True)
    jack = "tutti-sonicpi-timing"
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack, JACK_NO_START_SERVER="1")
    procs, sps, problems, report = [], [], [], {"play_s": a.play}
    grid = Grid()
    marks = {}

    def start(name, argv):
        p = subprocess.Popen(argv, stdout=open(os.path.join(work, name + ".out"), "w"),
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        procs.append(p)
        return p

    def st(sp):
        for _ in range(5):  # a busy machine can miss one answer
            r = tutti_status(tutti, sp.proxy_port)
            if r:
                return r
            time.sleep(0.3)
        return {}

    def session_now():
        return time.time() + NTP_EPOCH

    try:
        # JACK keeps at most 8 servers on a machine: when others hold them
        # all, wait (at most 3 minutes) for one to end
        for i in range(36):
            j = start("jackd", ["jackd", "-r", "-d", "dummy", "-r", "48000", "-p", "256"])
            if not subprocess.run(["jack_wait", "-w", "-t", "10"], env=env,
                                  capture_output=True).returncode and j.poll() is None:
                break
            j.wait()
            if "Too many servers" not in open(os.path.join(work, "jackd.out")).read():
                raise RuntimeError("jackd did not start")
            if i == 0:
                say("waiting for a free JACK server slot (8 at most on a machine)")
            time.sleep(5)
        else:
            raise RuntimeError("no free JACK server slot for 3 minutes")
        url_file = os.path.join(work, "hub.url")
        if os.path.exists(url_file):
            os.unlink(url_file)
        # the hub's own change lead (its default): what users get
        extra = []
        start("hub", [tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--url-file", url_file,
                      "--horizon", str(L_MS), "--bpm", str(BPM), "--session", "timing",
                      "--duration", str(int(a.play + 4 * a.alone + 400)), "--quiet"] + extra)
        end = time.time() + 10
        while time.time() < end and not (os.path.exists(url_file) and open(url_file).read().strip()):
            time.sleep(0.05)
        hub = open(url_file).read().strip().split("://", 1)[1]
        say("hub: %s %s" % (hub, " ".join(extra)))

        for name in PARTS:
            sp = spi.SonicPi(name, work, tutti, a.plugin_dir, env)
            sp.install()
            sps.append(sp)
        for sp in sps:  # one at a time: two cores
            sp.start()
            if not sp.wait_booted(90):
                raise RuntimeError("%s: Sonic Pi did not boot: %s" % (sp.name, sp.output()[-2000:]))
            sp.scsynth_port, sp.proxy_port = sp.ports()
            say("%s: Sonic Pi booted in %.1f s" % (sp.name, time.time() - sp.started))
        for i, sp in enumerate(sps):
            sp.journal = os.path.join(work, sp.name + ".journal")
            sp.role = ', role: "conductor"' if i == 0 else ""
            sp.run(JOIN.format(hub=hub, name=sp.name, journal=sp.journal, role=sp.role))
        for sp in sps:
            if not sp.wait_text("tutti: joined", 40):
                raise RuntimeError("%s did not join: %s" % (sp.name, sp.texts()[-10:]))
            s = st(sp)
            sp.part = s.get("part")
            sp.id = s.get("id")
            grid.add(s)
            say("%s: joined, part %s, L %s ms" % (sp.name, sp.part, s.get("horizon_ms")))
        # the parts, each run by its player at some moment (tutti_sync
        # lines them up)
        for sp in sps:
            sp.run(code(sp.name, hub, sp.journal, sp.role))
            time.sleep(0.7)
        t_start = session_now()
        time.sleep(a.play / 2)
        # the conductor changes the tempo
        sps[0].run("tutti_bpm %g" % NEW_BPM)
        marks["bpm_asked"] = session_now()
        end = time.time() + 15
        while time.time() < end:
            s = st(sps[0])
            if abs(float(s.get("bpm", 0)) - NEW_BPM) < 1e-6:
                grid.add(s)
                break
            time.sleep(0.1)
        if len(grid.segs) < 2:
            problems.append("the session did not take tutti_bpm %g" % NEW_BPM)
        else:
            c = grid.segs[1]
            report["change"] = {"beat": c[1], "after_request_s": round(c[0] - marks["bpm_asked"], 3)}
            say("the session agreed %g bpm from beat %g, %.3f s after the request" %
                (NEW_BPM, c[1], c[0] - marks["bpm_asked"]))
        for sp in sps:
            t = [x for x in sp.texts() if "tutti: the session plays" in x]
            say("%s: %s" % (sp.name, t[-1] if t else "(no word of the change in its log)"))
        time.sleep(a.play / 2)
        t_shared_end = session_now()

        # two members leave in turn, play alone, and run the same code again
        for sp in sps[1:]:
            others = [o for o in sps if o is not sp]
            # an FX right at the leave: its group goes into Sonic Pi's FX
            # group, which must be on the own server already (else with_fx
            # waits for its /n_go for good and "left-ok" never comes)
            sp.run('tutti_leave\nwith_fx :lpf do\n  play 60, amp: 0.05\nend\nputs "left-ok"')
            if not sp.wait_text("left-ok", 20):
                problems.append("%s: tutti_leave did not finish" % sp.name)
            marks[sp.name + "_left"] = session_now()
            time.sleep(a.alone)
            if st(sp).get("mode") != "solo":
                problems.append("%s: still in the session after tutti_leave" % sp.name)
            for o in others:
                t = tree_nodes(o.scsynth_port) or {}
                left = t.get(sp.part, [])
                say("%s alone: %s's server holds %d nodes of its old part %s" %
                    (sp.name, o.name, len(left), sp.part))
                if left:
                    problems.append("%s's server kept %d nodes/groups of %s's part after it left" %
                                    (o.name, len(left), sp.name))
            own = tree_nodes(sp.scsynth_port) or {}
            nodes = sum(len(v) for v in own.values())
            say("%s alone: its own server has %d nodes" % (sp.name, nodes))
            n0 = len(sp.messages())
            time.sleep(2.0)
            if len(sp.messages()) <= n0:
                problems.append("%s: its loops fell silent alone (no log from Sonic Pi)" % sp.name)
            sp.run(code(sp.name, hub, sp.journal, sp.role))
            end = time.time() + 40
            while time.time() < end and sum("tutti: joined" in x for x in sp.texts()) < 2:
                time.sleep(0.2)
            if sum("tutti: joined" in x for x in sp.texts()) < 2:
                problems.append("%s did not join again" % sp.name)
            s = st(sp)
            sp.part2 = s.get("part")
            sp.id2 = s.get("id")
            sp.journal2 = s.get("journal")
            marks[sp.name + "_back"] = session_now()
            time.sleep(a.alone + 2)
            for o in others:
                t = tree_nodes(o.scsynth_port) or {}
                if not t.get(sp.part2):
                    problems.append("%s's part is not on %s's server after it joined again" %
                                    (sp.name, o.name))
            say("%s: joined again as part %s, journal %s" % (sp.name, sp.part2, sp.journal2))
        t_end = session_now()
        for sp in sps:
            sp.stop_jobs()
        time.sleep(2.0)
        finals = {sp.name: st(sp) for sp in sps}
        for sp in sps:
            sp.run('tutti_leave\nputs "bye-ok"')
        for sp in sps:
            sp.wait_text("bye-ok", 15)
    finally:
        for sp in sps:
            sp.stop()
            with open(os.path.join(work, sp.name + ".sonicpi.log"), "w") as f:
                for t, addr, args in sp.messages():
                    f.write("%.3f %s %s\n" % (t, addr, " ".join(str(x) for x in args)))
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        clear_jack_shm(jack)

    # ------------------------------------------------------------ checks
    one = sps[0]
    journals = [sp.journal for sp in sps]
    v = subprocess.run([tutti, "verify"] + journals, capture_output=True, text=True)
    say("journals (first stints): %s" % (v.stdout.strip() or v.stderr.strip()))
    if v.returncode:
        problems.append("journals differ: " + (v.stdout.strip() or v.stderr.strip()))
    seconds = [one.journal] + [getattr(sp, "journal2", "") or "" for sp in sps[1:]]
    if all(j and os.path.exists(j) for j in seconds):
        v = subprocess.run([tutti, "verify"] + seconds, capture_output=True, text=True)
        say("journals (second stints beside the first): %s" % (v.stdout.strip() or v.stderr.strip()))
        if v.returncode:
            problems.append("second stints' journals differ: " + (v.stdout.strip() or v.stderr.strip()))
    else:
        problems.append("no second journal beside the first: %s" % seconds)
    for sp in sps[1:]:
        j2 = getattr(sp, "journal2", "")
        if not j2 or j2 == sp.journal:
            problems.append("%s: the second stint's journal is not a file of its own (%s)" % (sp.name, j2))
        if not os.path.exists(sp.journal) or os.path.getsize(sp.journal) == 0:
            problems.append("%s: the first journal is gone" % sp.name)

    notes = journal_notes(one.journal)
    # each member's stints: its member id (the journal's origin), from the
    # start of the parts (or its return) to its leave (or the end)
    one_, two, four = sps
    stints = {"one": [(one_.id, t_start, t_end)],
              "two": [(two.id, t_start, marks["two_left"] - 2.5),
                      (getattr(two, "id2", -1), marks["two_back"] + 2, t_end)],
              "four": [(four.id, t_start, marks["four_left"] - 2.5),
                       (getattr(four, "id2", -1), marks["four_back"] + 2, t_end)]}
    every = {"one": 1.0, "two": 1.0, "four": 4.0}
    total_off = total_missing = total_pulses = 0
    for name, spans in stints.items():
        for origin, a0, a1 in spans:
            off, missing, n = judge_notes(notes, grid, origin, a0, a1, every[name])
            total_off += len(off)
            total_missing += len(missing)
            total_pulses += n
            say("%-5s member %s: %d pulses (a note every %g beats) from its first note to %.1f s "
                "before the end of its stint: %d missing, %d notes off the grid%s" % (
                    name, origin, n, every[name], 0 if a1 == t_end else 2.5, len(missing), len(off),
                    (" e.g. missing beats %s, off %s" % (missing[:4], off[:4])) if missing or off else ""))
            if missing:
                problems.append("%s (member %s): %d silent pulses, e.g. beats %s" %
                                (name, origin, len(missing), missing[:6]))
            if off:
                problems.append("%s (member %s): %d notes off the grid, e.g. %s" %
                                (name, origin, len(off), off[:4]))
    report.update(pulses=total_pulses, missing=total_missing, off_grid=total_off)
    if len(grid.segs) > 1:
        c_t = grid.segs[1][0]
        after = {}
        for t, o, _ in notes:
            if t >= c_t - 0.0005 and t <= t_shared_end:
                after.setdefault(o, []).append(t)
        # every part played at 132 bpm from the agreed beat: its notes there
        # are on the new grid (judged above) and it has notes in the first
        # bar after the change at the new spacing
        for o in (one_.id, two.id, four.id):
            ts = sorted(after.get(o, []))
            first = grid.beat(ts[0]) - grid.segs[1][1] if ts else None
            say("member %d: first note after the change %s beats after the agreed beat" % (o, first))
            if first is None or first > 4 * 4 + 1e-6:
                problems.append("member %d played nothing in the 4 bars after the change" % o)
        report["change_at_session_s"] = c_t
    for sp in sps:
        errs = sp.errors()
        log = read_log(sp)
        benign = re.findall(r"FAILURE IN SERVER /n_(free|set) Node -?\d+ not found", log)
        fails = len(re.findall(r"FAILURE", log)) - len(benign)
        late = len(re.findall(r"^late ", log, re.M))
        warn = [x for x in sp.texts() if "Timing" in x or "tutti_sync: this loop ran" in x]
        s = finals.get(sp.name, {})
        say("%-5s errors %d, scsynth late %d, FAILURE %d, timing warnings %d, late events %s, "
            "late handed over %s, moved by the hub %s" % (sp.name, len(errs), late, fails, len(warn),
                                                          s.get("late"), s.get("late_injected"),
                                                          s.get("moved")))
        report[sp.name] = {"errors": len(errs), "scsynth_late": late, "failures": fails,
                           "timing_warnings": len(warn), "late_events": s.get("late"),
                           "moved": s.get("moved")}
        if errs:
            problems.append("%s: Sonic Pi errors: %s" % (sp.name, errs[:2]))
        if late or s.get("late") or s.get("late_injected"):
            problems.append("%s: late (scsynth %d lines, events %s, handed over late %s)" %
                            (sp.name, late, s.get("late"), s.get("late_injected")))
        if fails:
            problems.append("%s: scsynth FAILURE: %s" % (sp.name, re.findall(r".*FAILURE.*", log)[:3]))
        if warn:
            problems.append("%s: timing warnings: %s" % (sp.name, warn[:2]))
    report["problems"] = problems
    report["ok"] = not problems
    say("problems: %s" % ("none" if not problems else "; ".join(problems)))
    print(json.dumps(report), flush=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("timing.py: %s" % e, file=sys.stderr)
        sys.exit(1)
