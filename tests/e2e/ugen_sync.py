#!/usr/bin/env python3
"""The beat UGens against scsynth's own scheduling, on three servers.

    ugen_sync.py --tutti T --plugin-dir D --work W --hub URL [--seconds S]
                 [--tempo-change] [--max-diff N]

Three scsynth servers with the plugin join the hub, each recording its own
output (DiskOut, examples/osc/record.py) from the same moment. A Python client
on the first server's proxy, subscribed to the session feed, loads two
synthdefs into the session:

    tclick   Out.ar(0, TuttiTrig.ar(1))                   a one-sample click each beat
    tnote    OffsetOut.ar(1, DC.ar(1)) for 20 ms         a note: its onset

starts one tclick (a session event, so every server runs one) and schedules
a tnote for every beat, as a client does: a bundle timetagged with the beat's
time on this machine's wall clock from the feed's timeline, sent ahead of it
(every server plays it: it is a session event). With --tempo-change it
proposes 140 bpm halfway and follows the feed's new timeline.

Checked, in each server's recording: every note has a click within
--max-diff samples (the click is the UGens' beat, the note is where scsynth
put a bundle timetagged for that beat). Across the recordings: each server's
clicks counted from its own first note (the same session instant on every
server, placed by that server's own clock) agree within --max-diff samples;
so the three servers' beat grids agree in session time, as each server's
clock tells it.

The same program measures the UGens' anchoring over a long run (--seconds
600; scripts/ugen-drift.sh): the figures go to the last line of its output,
one JSON object, with each server's anchor statistics from /tutti/status.
"""
import argparse
import array
import json
import os
import re
import subprocess
import sys
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import tuttiosc as osc  # noqa: E402
from tuttiosc import SynthDef, message  # noqa: E402
from tuttilocal import Procs, free_port, read, scsynth_port_taken, tutti_status, wait_for  # noqa: E402

NTP_UNIX = 2208988800
SR = 48000


def fail(why):
    print("FAIL: " + why, flush=True)
    sys.exit(1)


def ok(what):
    print("ok: " + what, flush=True)


def scsynth(port, plugin_dir, jack_name):
    return ["scsynth", "-u", str(port), "-B", "127.0.0.1", "-R", "0", "-i", "2", "-o", "2",
            "-H", jack_name, "-b", "32768", "-a", "8192", "-c", "32768",
            "-U", plugin_dir + ":/usr/lib/SuperCollider/plugins"]


def defs():
    click = SynthDef("tclick")
    click.ar("Out", 0, click.ar("TuttiTrig", 1.0), outputs=0)
    note = SynthDef("tnote")
    note.ar("OffsetOut", 1, note.ar("DC", 1.0), outputs=0)  # a step: its onset is the note's
    note.kr("Line", 0.0, 0.0, 0.02, 2.0)  # frees the synth after 20 ms
    return click.bytes(), note.bytes()


class Feed:
    """The session feed at one proxy: the timelines heard, by instant."""

    def __init__(self, proxy):
        self.c = osc.Udp(proxy)
        self.tl = {}  # at_session -> args
        self.c.send(message("/cmd", "tutti", "notify", 1))

    def pump(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            b = self.c.recv(left)
            if b is None:
                return
            for addr, args in osc.messages(b):
                if addr == "/tutti/timeline":
                    self.tl[args[1]] = args

    def at(self, w):
        """The timeline in force at wall time w (seconds since 1970)."""
        best = None
        for t in sorted(self.tl.values(), key=lambda x: x[2]):
            if t[2] <= w + 1e-9:
                best = t
        return best

    def beat(self, w):
        t = self.at(w)
        return t[3] + (w - t[2]) * t[4] / 60.0

    def time_of(self, beat):
        """Wall time of a beat on the timelines heard (None if not known)."""
        tls = sorted(self.tl.values(), key=lambda x: x[2])
        for i, t in enumerate(tls):
            w = t[2] + (beat - t[3]) * 60.0 / t[4]
            nxt = tls[i + 1][2] if i + 1 < len(tls) else None
            if w >= t[2] - 1e-9 and (nxt is None or w < nxt - 1e-9):
                return w
        return None

    def request(self, msg, want, timeout=5.0):
        self.c.send(msg)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            b = self.c.recv(end - time.monotonic())
            if b is None:
                break
            for addr, args in osc.messages(b):
                if addr == "/tutti/timeline":
                    self.tl[args[1]] = args
                elif addr in (want, "/fail"):
                    return addr, args
        return None, None


def onsets(path, thresh=0.5):
    """Per channel, the frames where the signal rises above thresh (int16
    WAV, read a million frames at a time)."""
    with wave.open(path, "rb") as w:
        nch = w.getnchannels()
        out = [[] for _ in range(nch)]
        prev = [False] * nch
        at = 0
        while True:
            b = w.readframes(1 << 20)
            if not b:
                break
            a = array.array("h")
            a.frombytes(b)
            if sys.byteorder != "little":
                a.byteswap()
            n = len(a) // nch
            lim = thresh * 32767
            for ch in range(nch):
                col = a[ch::nch]
                p = prev[ch]
                for i, v in enumerate(col):
                    hi = v > lim
                    if hi and not p:
                        out[ch].append(at + i)
                    p = hi
                prev[ch] = p
            at += n
    return out


def nearest(xs, v):
    """The element of sorted xs nearest v."""
    import bisect
    i = bisect.bisect_left(xs, v)
    c = [xs[k] for k in (i - 1, i) if 0 <= k < len(xs)]
    return min(c, key=lambda x: abs(x - v)) if c else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--hub", required=True)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--tempo-change", action="store_true")
    ap.add_argument("--max-diff", type=int, default=1)
    ap.add_argument("--measure", action="store_true",
                    help="report the figures whatever they are (the long run)")
    ap.add_argument("--cross-max", type=int, default=None,
                    help="fail when the recordings' click trains are further apart")
    a = ap.parse_args()
    procs = Procs(a.work)
    try:
        return run(a, procs)
    finally:
        procs.stop_all()


def start(procs, a, name, env):
    log = os.path.join(a.work, name + ".out")
    for attempt in range(3):
        port = free_port()
        p = procs.start(name, scsynth(port, a.plugin_dir, name), env)
        m = wait_for(lambda: (re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", read(log)) or
                              scsynth_port_taken(p, log)), 30, name + "'s proxy")
        if m is not True:
            return {"name": name, "port": port, "proxy": int(m.group(1)), "log": log, "proc": p}
    fail(name + ": no port of its own in 3 tries")


def run(a, procs):
    base = dict(os.environ, TUTTI_PROXY_PORT="0")
    servers = []
    for k in (1, 2, 3):
        env = dict(base, TUTTI_HUB=a.hub, TUTTI_NAME="s%d" % k, TUTTI_SESSION="ugens",
                   TUTTI_CACHE=os.path.join(a.work, "s%d-cache" % k))
        if k == 1:
            env["TUTTI_ROLE"] = "conductor"
        servers.append(start(procs, a, "s%d" % k, env))
    for s in servers:
        wait_for(lambda: (lambda x: x if x and x.get("mode") == "session" and x.get("members") == 3
                          and x.get("clock_locked") else None)(tutti_status(a.tutti, s["proxy"])),
                 30, s["name"] + " in a session of three")
    ok("three servers in the session")

    f = Feed(servers[0]["proxy"])
    f.pump(0.5)
    if not f.tl:
        fail("no timeline from the feed")
    click, note = defs()
    for d in (click, note):
        addr, args = f.request(message("/d_recv", d), "/done", 10)
        if addr != "/done":
            fail("/d_recv through the session: %r %r" % (addr, args))
    lead = 0.4  # what the client schedules ahead (> L + 50 ms)
    st = tutti_status(a.tutti, servers[0]["proxy"])
    if st["latency_ms"] / 1e3 > lead:
        lead = st["latency_ms"] / 1e3 + 0.1
    # each server records itself, from the same moment
    start_at = osc.ntp_now() + 3.0  # record.py sets itself up first
    total = a.seconds + 2.5
    recorders = []
    for s in servers:
        s["wav"] = os.path.join(a.work, s["name"] + ".wav")
        recorders.append(subprocess.Popen(
            [sys.executable, os.path.join(TOP, "examples", "osc", "record.py"), "--port",
             str(s["port"]), "--seconds", str(total), "--out", s["wav"], "--channels", "2",
             "--at", "%.6f" % start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    f.c.send(message("/s_new", "tclick", 1000, 0, 0))
    # a note on every beat from 1 s into the recording for --seconds
    first_w = start_at - NTP_UNIX + 1.0
    n = int(f.beat(first_w)) + 1
    end_w = first_w + a.seconds
    changed = False
    sent = 0
    while True:
        f.pump(0.0)
        w = f.time_of(n)
        if w is None:
            fail("no time for beat %d on the feed's timelines" % n)
        if w > end_w:
            break
        if a.tempo_change and not changed and w > first_w + a.seconds / 2:
            addr, args = f.request(message("/cmd", "tutti", "bpm", 140.0), "/done")
            if addr != "/done":
                fail("the tempo change: %r %r" % (addr, args))
            changed = True
            f.pump(0.3)
            continue  # the next beats' times may now follow the change
        # send it `lead` ahead of its time, as a client does
        wait = w - lead - time.time()
        if wait > 0:
            f.pump(min(wait, 0.05))
            continue
        f.c.send(osc.bundle(osc.timetag(w + NTP_UNIX), message("/s_new", "tnote", 2000 + n, 0, 0)))
        sent += 1
        n += 1
    for r in recorders:
        out, err = r.communicate(timeout=total + 30)
        if r.returncode:
            fail("record.py: " + err.strip())
    ok("%d notes scheduled on the feed's beat%s; each server recorded %.1f s of itself" %
       (sent, ", a tempo change to 140 bpm halfway" if changed else "", total))

    clicks, notes = [], []
    for s in servers:
        on = onsets(s["wav"])
        if len(on) != 2:
            fail("%s's recording has %d channels" % (s["name"], len(on)))
        clicks.append(on[0])
        notes.append(on[1])
    figures = {"notes": sent, "tempo_change": changed, "servers": []}
    worst = 0
    for k in range(3):
        if (len(notes[k]) < sent - 1 or not clicks[k]) and not (a.measure and clicks[k]):
            fail("s%d: %d notes and %d clicks recorded, %d notes sent" %
                 (k + 1, len(notes[k]), len(clicks[k]), sent))
        diffs = [x - nearest(clicks[k], x) for x in notes[k]]
        big = max(abs(d) for d in diffs)
        worst = max(worst, big)
        figures["servers"].append({"server": "s%d" % (k + 1), "notes": len(notes[k]),
                                   "clicks": len(clicks[k]), "note_minus_click": {
                                       str(d): diffs.count(d) for d in sorted(set(diffs))}})
        far = [(i, notes[k][i], diffs[i]) for i in range(len(diffs)) if abs(diffs[i]) > a.max_diff]
        figures["servers"][-1]["far"] = far[:20]
        if big > a.max_diff and not a.measure:
            fail("s%d: a note is %d samples from its click (differences: %s; note #, frame, "
                 "difference: %s)" % (k + 1, big, figures["servers"][-1]["note_minus_click"],
                                      far[:10]))
    ok("in each server's recording every note coincides with a click: at most %d sample(s) apart"
       % worst)
    # the three click trains, each counted from its own first note
    rel = [[x - notes[k][0] for x in clicks[k]] for k in range(3)]
    lo = max(r[0] for r in rel) + 2
    hi = min(r[-1] for r in rel) - 2
    cross, compared, hist = 0, 0, {}
    for x in rel[0]:
        if not lo <= x <= hi:
            continue
        for k in (1, 2):
            d = nearest(rel[k], x) - x
            hist[str(d)] = hist.get(str(d), 0) + 1
            cross = max(cross, abs(d))
        compared += 1
    # the same for the notes: how far the servers' own scheduling of the same
    # session instants drifts apart (their JACK DLLs; an xrun resets one)
    nrel = [[x - notes[k][0] for x in notes[k]] for k in range(3)]
    ncross = max(abs(nearest(nrel[k], x) - x) for x in nrel[0] for k in (1, 2))
    figures["clicks_compared"] = compared
    figures["cross_minus_s1"] = hist
    figures["cross_max_samples"] = cross
    figures["notes_cross_max_samples"] = ncross
    if compared < sent - 2 and not a.measure:
        fail("only %d clicks recorded by all three servers" % compared)
    if a.cross_max is not None and cross > a.cross_max:
        fail("the click trains of the three recordings: %d compared, %d samples apart at most (%s);"
             " the servers' own notes %d apart" % (compared, cross, hist, ncross))
    ok("the three recordings' click trains, each from its own first note: %d clicks, at most %d "
       "sample(s) apart; scsynth's own notes at most %d apart" % (compared, cross, ncross))
    figures["anchoring"] = []
    for s in servers:
        st = tutti_status(a.tutti, s["proxy"]) or {}
        figures["anchoring"].append({k: st.get(k) for k in (
            "anchors", "anchor_err_max_us", "anchor_err_rms_us", "anchor_restarts",
            "block_clock_ppm")})
    for k, s in enumerate(servers):
        bad = [l for l in read(s["log"]).splitlines() if "FAILURE" in l or re.search(r"\blate\b", l)]
        figures["servers"][k]["late_or_failure_lines"] = len(bad)
        if bad and not a.measure:
            fail("%s's scsynth says: %s" % (s["name"], bad[:3]))
    ok("no FAILURE or late in any server's log")
    figures["note_click_max_samples"] = worst
    figures["seconds"] = a.seconds
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
