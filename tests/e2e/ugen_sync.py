#!/usr/bin/env python3
"""The beat UGens against scsynth's own scheduling, on three servers.

    ugen_sync.py --tutti T --plugin-dir D --work W --hub URL [--seconds S]
                 [--tempo-change] [--max-diff N] [--jackd-log F [--common-max N]]

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

With --jackd-log, a JACK recorder (jack_rec) also records the three
servers' clicks and notes on ONE timeline: every channel has the same JACK
frames, so the servers can be compared beat by beat, which their own
recordings cannot (a server that skips blocks in an xrun loses them from its
recording). jackd's xruns are timed as it reports them; a click or note from
--xrun-guard seconds after one to 50 ms before is counted apart. Checked
there: away from xruns every note is within --max-diff samples of its own
server's click; printed: each server's clicks minus s1's, beat by beat, next
to scsynth's own notes minus s1's, and the spread by the time since the last
xrun (--common-max makes the clicks' agreement a condition).

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
import threading
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


# Exit status when the machine stalled or xran too often for the run to be
# judged at all: not a verdict on the UGens, and the test may run again.
UNJUDGED = 3


def unjudged(why):
    print("UNJUDGED: " + why, flush=True)
    sys.exit(UNJUDGED)


def ok(what):
    print("ok: " + what, flush=True)


def scsynth(port, plugin_dir, jack_name):
    return ["scsynth", "-u", str(port), "-B", "127.0.0.1", "-R", "0", "-i", "2", "-o", "2", "-l", "32",
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


class XrunWatch(threading.Thread):
    """The wall time of every xrun jackd reports (its stderr, unbuffered, in
    a file), read every 5 ms."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.times, self.done = path, [], False
        try:
            self.pos = os.path.getsize(path)
        except OSError:
            self.pos = 0

    def run(self):
        while not self.done:
            time.sleep(0.005)
            try:
                with open(self.path, "rb") as fh:
                    fh.seek(self.pos)
                    b = fh.read()
            except OSError:
                continue
            if b:
                self.pos += len(b)
                self.times += [time.time()] * b.count(b"XRun")


def frame_of_wall(recorded, sent_w):
    """A line from wall time to the common recording's frames, fitted to the
    notes: `recorded` the note onsets (frames), `sent_w` the wall times they
    were scheduled for. Returns (a, b): frame = a + b * (w - sent_w[0])."""
    a, b = recorded[0] - 0.0, float(SR)
    pairs = []
    for w in sent_w:
        x = nearest(recorded, a + b * (w - sent_w[0]))
        if x is not None and abs(x - (a + b * (w - sent_w[0]))) < SR * 0.1:
            pairs.append((w - sent_w[0], x))
    if len(pairs) >= 2:
        n = len(pairs)
        sx = sum(p[0] for p in pairs)
        sy = sum(p[1] for p in pairs)
        sxx = sum(p[0] * p[0] for p in pairs)
        sxy = sum(p[0] * p[1] for p in pairs)
        d = n * sxx - sx * sx
        if d > 0:
            b = (n * sxy - sx * sy) / d
            a = (sy - b * sx) / n
    return a, b


def xrun_test(notes, sent_w, xruns, guard):
    """For a recording whose note onsets are `notes`: a test of whether a
    frame is near an xrun (from `guard` seconds after one to 50 ms before)."""
    import bisect
    a, b = frame_of_wall(notes, sent_w)
    xf = sorted(a + b * (w - sent_w[0]) for w in xruns)
    lo_g, hi_g = guard * SR, 0.05 * SR

    def near(x):
        i = bisect.bisect_left(xf, x - lo_g)
        return i < len(xf) and xf[i] <= x + hi_g
    return near


def buckets(h):
    """A histogram of differences (samples) in ranges of their size."""
    out = {}
    for d, n in h.items():
        if d == "None":
            k = "none"
        else:
            v = abs(int(d))
            k = ("0" if v == 0 else "1" if v == 1 else "2-3" if v < 4 else "4-16" if v < 17
                 else "17-64" if v < 65 else "65-256" if v < 257 else ">256")
        out[k] = out.get(k, 0) + n
    order = ["0", "1", "2-3", "4-16", "17-64", "65-256", ">256", "none"]
    return {k: out[k] for k in order if k in out}


def read_stalls(path):
    """stallwatch.py's stalls: [(wall time, ms)], and how it ran."""
    out, how = [], ""
    for line in read(path).splitlines():
        if line.startswith("#"):
            how = line[1:].strip()
            continue
        f = line.split()
        out.append((float(f[0]), float(f[1])))
    return {"how": how, "stalls": out}


def common_timeline(path, sent_w, xruns, guard, stalls=None):
    """The three servers' clicks and notes as one JACK recorder heard them
    (the same JACK frames on every channel: s1 click, s1 note, s2 ..., s3
    ...). Beat by beat: each server's click minus s1's, and each note minus
    its own server's click; a click with an xrun from `guard` seconds before
    it to 50 ms after it is counted apart."""
    ch = onsets(path)
    if len(ch) != 6:
        fail("the common recording has %d channels" % len(ch))
    clicks, notes = ch[0::2], ch[1::2]
    for k in range(3):
        if not clicks[k] or not notes[k]:
            fail("the common recording: s%d has %d clicks and %d notes" %
                 (k + 1, len(clicks[k]), len(notes[k])))
    near_xrun = xrun_test(notes[0], sent_w, xruns, guard)
    fa, fb = frame_of_wall(notes[0], sent_w)
    xf = sorted(fa + fb * (w - sent_w[0]) for w in xruns)

    def quiet(x):
        """Seconds since the last xrun before frame x (None: none seen)."""
        import bisect
        i = bisect.bisect_right(xf, x)
        return (x - xf[i - 1]) / SR if i else None
    def since(x):
        q = quiet(x)
        return ("no xrun yet" if q is None else "<0.1 s" if q < 0.1 else "0.1-1 s" if q < 1
                else "1-3 s" if q < 3 else "3-10 s" if q < 10 else ">10 s")
    out = {"clicks": [len(c) for c in clicks], "notes": [len(n) for n in notes],
           "xruns": len(xruns), "clean": {}, "near_xrun": {}}
    half = int(SR * 0.1)  # a click without a partner this close is missing
    for x in clicks[0]:
        if x < notes[0][0] - SR or x > notes[0][-1] + SR:
            continue  # outside the notes' stretch
        key = "near_xrun" if near_xrun(x) else "clean"
        h = out[key].setdefault("cross_minus_s1", {})
        spread = 0
        for k in (1, 2):
            y = nearest(clicks[k], x)
            d = y - x if y is not None and abs(y - x) < half else None
            h[str(d)] = h.get(str(d), 0) + 1
            spread = max(spread, abs(d) if d is not None else 1 << 30)
        # the beat's spread (largest |click - s1's|) by the time since the
        # last xrun: how long the servers' clocks take to agree again
        e = out.setdefault("spread_by_quiet", {}).setdefault(since(x), {
            "beats": 0, "within_1": 0, "max": 0})
        e["beats"] += 1
        e["within_1"] += spread <= 1
        e["max"] = max(e["max"], spread)
    note_diffs = []  # (server, frame, note minus its click or None)
    for k in range(3):
        for x in notes[k]:
            key = "near_xrun" if near_xrun(x) else "clean"
            h = out[key].setdefault("note_minus_click", {})
            y = nearest(clicks[k], x)
            d = x - y if y is not None and abs(y - x) < half else None
            note_diffs.append((k, x, d))
            h[str(d)] = h.get(str(d), 0) + 1
            # the same by the time since the last xrun
            e = out.setdefault("note_by_quiet", {}).setdefault(since(x), {
                "notes": 0, "within_1": 0, "max": 0})
            e["notes"] += 1
            e["within_1"] += d is not None and abs(d) <= 1
            e["max"] = max(e["max"], abs(d) if d is not None else 1 << 30)
    if stalls is not None:
        out["stalls"] = stall_figures(note_diffs, fa, fb, sent_w, xruns, stalls)
    for x in notes[0]:  # scsynth's own notes for the same beat, against s1's
        key = "near_xrun" if near_xrun(x) else "clean"
        h = out[key].setdefault("notes_cross_minus_s1", {})
        for k in (1, 2):
            y = nearest(notes[k], x)
            d = y - x if y is not None and abs(y - x) < half else None
            h[str(d)] = h.get(str(d), 0) + 1
    for key in ("clean", "near_xrun"):
        for what in ("cross_minus_s1", "note_minus_click", "notes_cross_minus_s1"):
            h = out[key].get(what, {})
            ds = [int(d) for d in h if d != "None"]
            out[key][what + "_max"] = max((abs(d) for d in ds), default=0)
            out[key][what + "_missing"] = h.get("None", 0)
            out[key][what + "_count"] = sum(h.values())
    return out


def stall_figures(note_diffs, fa, fb, sent_w, xruns, stalls):
    """Each note against its click (note_diffs: server, frame, difference)
    by the machine's stalls (stallwatch.py) and jackd's xruns from 3 s
    before it to 0.1 s after: for stalls of at least 1, 2 and 5 ms, the
    notes with no xrun and no such stall then, and how many of them lie
    within a sample of their click; and every note more than a sample off,
    with the largest stall and the xruns near it."""
    import bisect
    sf = sorted((fa + fb * (w - sent_w[0]), ms) for w, ms in stalls["stalls"])
    sx = [x for x, _ in sf]
    xf = sorted(fa + fb * (w - sent_w[0]) for w in xruns)
    win, after = 3 * SR, 0.1 * SR
    fig = {"watch": stalls["how"], "stalls": len(sf),
           "stalls_over_ms": {str(t): sum(ms >= t for _, ms in sf) for t in (1, 2, 5, 20)},
           "quiet": {}, "off": []}
    for k, x, d in note_diffs:
        # from 3 s before the note to 0.1 s after: jackd tells of an xrun,
        # and stallwatch.py of a stall, once it is over, and a note re-timed
        # before a stall plays after it
        i, j = bisect.bisect_left(sx, x - win), bisect.bisect_right(sx, x + after)
        big = max((sf[m][1] for m in range(i, j)), default=0.0)
        nx = bisect.bisect_right(xf, x + after) - bisect.bisect_left(xf, x - win)
        for t in (1, 2, 5):
            e = fig["quiet"].setdefault(str(t), {"notes": 0, "within_1": 0, "max": 0,
                                                 "hist": {}})
            if nx == 0 and big < t:
                e["notes"] += 1
                e["within_1"] += d is not None and abs(d) <= 1
                e["max"] = max(e["max"], abs(d) if d is not None else 1 << 30)
                e["hist"][str(d)] = e["hist"].get(str(d), 0) + 1
        if d is None or abs(d) > 1:
            last = sx[j - 1] if j else None
            fig["off"].append({"server": k + 1, "frame": x, "diff": d,
                               "largest_stall_ms_near": big, "xruns_near": nx,
                               "since_last_stall_s": None if last is None
                               else round((x - last) / SR, 3)})
    fig["off_count"] = len(fig["off"])
    fig["off"] = fig["off"][:200]
    return fig


def too_far(hist, limit, stray):
    """Whether a histogram {difference: count} of judged notes or clicks is
    beyond `limit` samples in more than `stray` of them (two at least, when
    stray is not 0: a server's run of 17 notes had two 3 samples off with no
    xrun near), or any beyond a block (64 samples) or missing ("None")."""
    n = sum(hist.values())
    far = sum(c for d, c in hist.items() if d == "None" or abs(int(d)) > limit)
    block = any(d == "None" or abs(int(d)) > 64 for d in hist)
    allowed = max(2, int(stray * n)) if stray > 0 else 0
    return block or far > allowed


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
    ap.add_argument("--jackd-log", default=None,
                    help="jackd's stderr: also record the three servers on one JACK "
                         "timeline (jack_rec) and count its xruns")
    ap.add_argument("--common-max", type=int, default=None,
                    help="fail when, on the common timeline away from xruns, a server's "
                         "click is further from s1's")
    ap.add_argument("--jack-clock", action="store_true",
                    help="the servers' UGens follow JACK's engine clock (TUTTI_UGEN_CLOCK=jack) "
                         "and the plugin re-times the session's bundles for scsynth's clock: "
                         "a note and its click are then only reported (they part for seconds "
                         "after an xrun)")
    ap.add_argument("--stray", type=float, default=0.0,
                    help="the share of the judged notes (or clicks) allowed beyond the limit, "
                         "none of them further than a block (64 samples): on a loaded machine "
                         "a stall jackd does not report as an xrun moves one now and then")
    ap.add_argument("--quiet-max", type=int, default=None,
                    help="fail when, on the common timeline, a note with no xrun and no stall "
                         "of --quiet-stall-ms or more from 3 s before it to 0.1 s after is "
                         "further from its server's click (--stray applies)")
    ap.add_argument("--quiet-stall-ms", type=int, default=2, choices=(1, 2, 5))
    ap.add_argument("--sclang", action="store_true",
                    help="the notes come from sclang, a Pbind on a TuttiClock (the quark in sc/; "
                         "tests/e2e/sclang/ugen_notes.scd), not from this program")
    ap.add_argument("--xrun-guard", type=float, default=0.1,
                    help="seconds after an xrun whose clicks are counted apart")
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


def start_sclang(a, procs, server, f):
    """An sclang on the server's proxy with a TuttiClock
    (tests/e2e/sclang/ugen_notes.scd), ready to play once told."""
    conf = os.path.join(a.work, "sclang_conf.yaml")
    with open(conf, "w") as out:
        out.write("includePaths:\n    - %s\nexcludePaths:\n"
                  "    - /usr/share/SuperCollider/Extensions\n"
                  "    - /usr/local/share/SuperCollider/Extensions\n"
                  "postInlineWarnings: false\n" % os.path.join(TOP, "sc"))
    for d in ("home", "xdg"):
        os.makedirs(os.path.join(a.work, d), mode=0o700, exist_ok=True)
    go = os.path.join(a.work, "sclang.go")
    # a change: 140 bpm, or 100 when the session is at 140 already
    bpm = f.at(time.time())[4] if f.tl else 120.0
    propose = 100 if abs(bpm - 140) < 1 else 140
    env = dict(os.environ, HOME=os.path.join(a.work, "home"),
               XDG_RUNTIME_DIR=os.path.join(a.work, "xdg"), QT_QPA_PLATFORM="offscreen",
               QTWEBENGINE_DISABLE_SANDBOX="1",
               TUTTI_SC_PROXY=str(server["proxy"]), TUTTI_SC_GO=go,
               TUTTI_SC_PLAY="%.3f" % a.seconds,
               TUTTI_SC_PROPOSE_BPM=str(propose) if a.tempo_change else "0")
    p = procs.start("sclang", ["sclang", "-l", conf,
                               os.path.join(HERE, "sclang", "ugen_notes.scd")], env)
    log = os.path.join(a.work, "sclang.out")
    end = time.monotonic() + 60
    while "TUTTI-READY" not in read(log):
        if p.poll() is not None or time.monotonic() > end:
            fail("sclang's TuttiClock never got ready:\n" + read(log)[-3000:])
        f.pump(0.1)
    ok("sclang follows the session on a TuttiClock")
    return {"proc": p, "log": log, "go": go, "propose": propose}


def sclang_notes(a, sc, f, go_w):
    """Tell sclang to play at wall time go_w; its notes' wall times (the
    beats it printed, on the feed's timelines) once it is done."""
    while time.time() < go_w:
        f.pump(min(0.01, max(0.0, go_w - time.time())))
    open(sc["go"], "w").close()
    end = time.monotonic() + a.seconds + 60
    while sc["proc"].poll() is None and time.monotonic() < end:
        f.pump(0.1)
    text = read(sc["log"])
    if sc["proc"].poll() is None or sc["proc"].returncode or "TUTTI-OK" not in text:
        fail("sclang did not play and finish cleanly:\n" + text[-3000:])
    beats = [float(m) for m in re.findall(r"^TUTTI-NOTE (\S+)$", text, re.M)]
    if not beats or any(abs(b - round(b)) > 1e-6 for b in beats):
        fail("sclang's notes are not on whole beats: %r" % beats[:20])
    ws = [f.time_of(round(b)) for b in beats]
    if None in ws:
        fail("a beat sclang played is not on the feed's timelines")
    changed = bool(re.search(r"^TUTTI-SWITCH .*bpm %d" % sc["propose"], text, re.M))
    if a.tempo_change and not changed:
        fail("sclang's clock never switched to the proposed tempo")
    ok("sclang played %d notes on its TuttiClock (beats %g to %g)%s" % (
        len(beats), beats[0], beats[-1], ", switched tempo at " + ", ".join(
            re.findall(r"^TUTTI-SWITCH (.*)$", text, re.M)) if changed else ""))
    return ws, changed


def run(a, procs):
    base = dict(os.environ, TUTTI_PROXY_PORT="0")
    servers = []
    for k in (1, 2, 3):
        try:  # a journal of this run only (the test runs twice in one folder)
            os.unlink(os.path.join(a.work, "s%d.journal" % k))
        except OSError:
            pass
        env = dict(base, TUTTI_HUB=a.hub, TUTTI_NAME="s%d" % k, TUTTI_SESSION="ugens",
                   TUTTI_CACHE=os.path.join(a.work, "s%d-cache" % k),
                   TUTTI_JOURNAL=os.path.join(a.work, "s%d.journal" % k))
        if k == 1:
            env["TUTTI_ROLE"] = "conductor"
        if a.jack_clock:
            env["TUTTI_UGEN_CLOCK"] = "jack"
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
    sc = start_sclang(a, procs, servers[0], f) if a.sclang else None
    tl0 = {"t0_ns": int(st["timeline_t0_ns"]), "beat0": float(st["timeline_beat0"]),
           "bpm": float(st["bpm"]), "quantum": float(st["quantum"])}
    # each server records itself, from the same moment
    start_at = osc.ntp_now() + 3.0  # record.py sets itself up first
    total = a.seconds + (4.5 if sc else 2.5)  # sclang starts on a bar line (quant: 4)
    recorders = []
    for s in servers:
        s["wav"] = os.path.join(a.work, s["name"] + ".wav")
        recorders.append(subprocess.Popen(
            [sys.executable, os.path.join(TOP, "examples", "osc", "record.py"), "--port",
             str(s["port"]), "--seconds", str(total), "--out", s["wav"], "--channels", "2",
             "--at", "%.6f" % start_at], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    jrec, xw = None, None
    if a.jackd_log:  # the same three servers on one JACK timeline
        xw = XrunWatch(a.jackd_log)
        xw.start()
        jrec = subprocess.Popen(
            ["jack_rec", "-f", os.path.join(a.work, "common.wav"), "-d", str(int(total + 2)),
             "-b", "16"] + ["%s:out_%d" % (s["name"], c) for s in servers for c in (1, 2)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stallw = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "stallwatch.py"), "--out",
             os.path.join(a.work, "stalls.txt"), "--seconds", str(int(total + 2))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # node 990: below the ids sclang gives its nodes (1000 up)
    f.c.send(message("/s_new", "tclick", 990, 0, 0))
    # a note on every beat from 1 s into the recording for --seconds
    first_w = start_at - NTP_UNIX + 1.0
    n = int(f.beat(first_w)) + 1
    end_w = first_w + a.seconds
    changed = False
    sent = 0
    sent_w = []
    if sc:
        sent_w, changed = sclang_notes(a, sc, f, first_w - 0.5)
        sent = len(sent_w)
    while not sc:
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
        sent_w.append(w)
        n += 1
    for r in recorders:
        out, err = r.communicate(timeout=total + 30)
        if r.returncode:
            fail("record.py: " + err.strip())
    if jrec:
        out, err = jrec.communicate(timeout=total + 30)
        xw.done = True
        if jrec.returncode:
            fail("jack_rec: " + (err or out).strip())
        stallw.wait(timeout=30)
    ok("%d notes scheduled on the feed's beat%s; each server recorded %.1f s of itself" %
       (sent, ", a tempo change halfway" if changed else "", total))

    common = None
    if jrec:
        c = common_timeline(os.path.join(a.work, "common.wav"), sent_w, xw.times, a.xrun_guard,
                            read_stalls(os.path.join(a.work, "stalls.txt")))
        common = c
        cl, nx = c["clean"], c["near_xrun"]
        ok("on one JACK timeline (jack_rec), %d JACK xruns; away from them (%.2f s after, "
           "50 ms before): each note minus its server's click %s; s2's and s3's clicks minus "
           "s1's, by size (samples) %s, scsynth's own notes minus s1's %s; near xruns: notes "
           "minus click %s, clicks %s, notes %s; each beat's click spread by the time since "
           "the last xrun: %s; each note minus its click, the same: %s" % (
               c["xruns"], a.xrun_guard, buckets(cl.get("note_minus_click", {})),
               buckets(cl.get("cross_minus_s1", {})), buckets(cl.get("notes_cross_minus_s1", {})),
               buckets(nx.get("note_minus_click", {})), buckets(nx.get("cross_minus_s1", {})),
               buckets(nx.get("notes_cross_minus_s1", {})), c.get("spread_by_quiet"),
               c.get("note_by_quiet")))
        if "stalls" in c:
            st = c["stalls"]
            quiet = {t: {k: v for k, v in q.items() if k != "hist"}
                     for t, q in st["quiet"].items()}
            ok("the machine's stalls (%s): %d of 1 ms or more, by size %s; notes with no xrun "
               "and no stall of at least 1 / 2 / 5 ms from 3 s before them to 0.1 s after, "
               "and of them within a sample of their click: %s; %d notes more than a sample "
               "off" % (st["watch"], st["stalls"], st["stalls_over_ms"], quiet, st["off_count"]))
            if a.quiet_max is not None and not a.measure:
                q = st["quiet"][str(a.quiet_stall_ms)]
                calm = ("no xrun and no stall of %d ms or more from 3 s before it to 0.1 s after"
                        % a.quiet_stall_ms)
                if q["notes"] < 6:
                    unjudged("only %d notes with %s: the machine stalled too often to judge "
                             "(stalls: %s)" % (q["notes"], calm, st["stalls_over_ms"]))
                if too_far(q["hist"], a.quiet_max, a.stray):
                    fail("a note with %s is %d samples from its server's click (%s; the notes "
                         "off: %s)" % (calm, q["max"], q["hist"], st["off"][:8]))
                ok("every note with %s within %d sample(s) of its click%s: %s" % (
                    calm, a.quiet_max,
                    " (but one in ten at most, none by a block)" if a.stray else "", q["hist"]))
        if cl["note_minus_click_count"] < 3 and not a.measure:
            unjudged("only %d notes away from xruns on the common timeline: too many xruns to "
                     "judge (%d)" % (cl["note_minus_click_count"], c["xruns"]))
        if (too_far(cl.get("note_minus_click", {}), a.max_diff, a.stray)
                or cl["note_minus_click_missing"]) and not a.measure and not a.jack_clock:
            fail("on the common timeline, away from xruns, a note is %d samples from its "
                 "server's click (%s)" % (cl["note_minus_click_max"], cl["note_minus_click"]))
        if a.common_max is not None and not a.measure:
            if cl["cross_minus_s1_count"] < min(sent // 2, 4):
                unjudged("only %d clicks away from xruns on the common timeline" %
                         cl["cross_minus_s1_count"])
            if too_far(cl.get("cross_minus_s1", {}), a.common_max, a.stray) \
                    or cl["cross_minus_s1_missing"]:
                fail("on the common timeline, away from xruns, the servers' clicks are up to %d "
                     "samples apart (%s)" % (cl["cross_minus_s1_max"], cl["cross_minus_s1"]))
    clicks, notes = [], []
    for s in servers:
        on = onsets(s["wav"])
        if len(on) != 2:
            fail("%s's recording has %d channels" % (s["name"], len(on)))
        clicks.append(on[0])
        notes.append(on[1])
    figures = {"notes": sent, "tempo_change": changed, "servers": [], "common": common}
    worst = 0
    for k in range(3):
        if (len(notes[k]) < sent - 1 or not clicks[k]) and not (a.measure and clicks[k]):
            fail("s%d: %d notes and %d clicks recorded, %d notes sent" %
                 (k + 1, len(notes[k]), len(clicks[k]), sent))
        diffs = [x - nearest(clicks[k], x) for x in notes[k]]
        # with jackd's xruns watched, the notes near one are counted apart:
        # an xrun makes scsynth skip blocks, which its own recording loses,
        # and the UGens follow at the next anchor (5 ms)
        near = xrun_test(notes[k], sent_w, xw.times, a.xrun_guard) if xw else (lambda x: False)
        away = [d for x, d in zip(notes[k], diffs) if not near(x)]
        big = max((abs(d) for d in away), default=0)
        worst = max(worst, big)
        figures["servers"].append({"server": "s%d" % (k + 1), "notes": len(notes[k]),
                                   "clicks": len(clicks[k]), "note_minus_click": {
                                       str(d): diffs.count(d) for d in sorted(set(diffs))},
                                   "notes_near_xrun": len(diffs) - len(away)})
        far = [(i, notes[k][i], diffs[i], near(notes[k][i]))
               for i in range(len(diffs)) if abs(diffs[i]) > a.max_diff]
        figures["servers"][-1]["far"] = far[:20]
        away_hist = {}
        for d in away:
            away_hist[str(d)] = away_hist.get(str(d), 0) + 1
        if too_far(away_hist, a.max_diff, a.stray) and not a.measure and not a.jack_clock:
            fail("s%d: a note away from xruns is %d samples from its click (differences: %s; "
                 "note #, frame, difference, near an xrun: %s)" % (
                     k + 1, big, figures["servers"][-1]["note_minus_click"], far[:10]))
    ok("in each server's recording every note %scoincides with a click: at most %d sample(s) "
       "apart (all notes: %s)" % ("away from xruns " if xw else "", worst,
                                  [f["note_minus_click"] for f in figures["servers"]]))
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
    if sc:  # the notes' session times, from the journal: TuttiClock's own error
        # (its whole lines: the server is still writing it)
        jpath = os.path.join(a.work, "s1.journal")
        with open(jpath, errors="replace") as fh, open(jpath + ".whole", "w") as out:
            out.writelines(l for l in fh if l.endswith("\n"))
        g = subprocess.run([sys.executable, os.path.join(HERE, "sclang", "grid.py"),
                            "--timeline", json.dumps(tl0), "--part", "s1=tnote", "--grid", "1",
                            "--tolerance-ms", "1", "--target-ms", "0.0105",
                            jpath + ".whole"],
                           capture_output=True, text=True)
        lines = g.stdout.strip().splitlines()
        try:
            figures["grid"] = json.loads(lines[-1])
        except (ValueError, IndexError):
            fail("grid.py: " + g.stdout[-2000:] + g.stderr[-2000:])
        over = [l.strip() for l in lines if "over the" in l]
        ok("the notes' session times in the journal (TuttiClock's stamping, the plugin's "
           "conversion): %s; %d more than half a sample (10.5 us) off the beat%s" % (
               {k: {x: v[x] for x in ("notes", "worst_ms") if x in v}
                for k, v in figures["grid"].get("parts", {}).items()},
               len(over), (": " + "; ".join(over[:8])) if over else ""))
    figures["anchoring"] = []
    for s in servers:
        st = tutti_status(a.tutti, s["proxy"]) or {}
        figures["anchoring"].append({k: st.get(k) for k in (
            "anchors", "anchor_err_max_us", "anchor_err_rms_us", "anchor_restarts",
            "block_clock_ppm", "retimed", "retime_held", "retime_clamped", "retime_restarts",
            "retime_last_us")})
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
