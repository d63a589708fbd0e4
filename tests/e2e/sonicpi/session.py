#!/usr/bin/env python3
"""Three headless Sonic Pi 3.2 servers in one tutti session, on this machine.

    session.py --tutti BUILD/tutti --plugin-dir BUILD/plugin --out DIR

A JACK server (dummy driver), a hub, and three Sonic Pi servers, each with
its own ports and its own scsynth started through the tutti wrapper (the
plugin's proxy on Sonic Pi's scsynth port). Each runs one part of
examples/sonicpi-trio (live_loops, samples, with_fx), which joins with
tutti_join and starts on a 2-bar line with tutti_sync. Then it checks:

  - every scsynth executed the same events in the same order (tutti verify);
  - halfway, every server's node tree holds nodes of all three parts;
  - every server's recording has sound;
  - no Sonic Pi reported an error; no scsynth printed FAILURE or late (any
    `late` line of any server, joins included, fails the test);
  - the first note of every part falls on the same session bar line;
  - member 2 stops (stop) mid-session: the others play on (their events
    keep coming), member 2's part is gone from the trees; it runs its code
    again and its part is back; then it leaves (tutti_leave) and joins again,
    and its server gets the others' parts whole;
  - member 3's Sonic Pi quits (its scsynth too): the others play on and its
    part leaves their trees; it starts again, joins again, and every part is
    on every server; the journals of the members that joined again match
    the one that stayed, from where they joined.

Prints a report; the last line is one JSON object. Exit status 0 when all
of it held, 1 otherwise. Every process started here is stopped by pid.
"""
import argparse
import json
import math
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

PARTS = ["drums", "bass", "chords"]
BPM = 120.0
NTP_EPOCH = 2208988800  # seconds from 1900 (session time) to 1970
SYNC_BARS = 2


def say(*a):
    print(*a, flush=True)


def tree_parts(port):
    """part -> how many nodes of it are in a server's tree."""
    t = tree_nodes(port)
    return None if t is None else {k: len(v) for k, v in t.items()}


def status(tutti, proxy):
    return tutti_status(tutti, proxy) or {}


def first_notes(journal):
    """origin -> session time (ns) of its first /s_new of a sound (not a mixer)."""
    out = {}
    for line in open(journal):
        f = line.split()
        if len(f) < 5 or f[3] != "0" or f[4] == "-":
            continue
        o = int(f[1])
        if o in out:
            continue
        b = bytes.fromhex(f[4])
        # a bundle or a message; look for /s_new of a synth that is not a mixer
        for m in re.finditer(rb"/s_new\x00\x00,[^\x00]*\x00+(sonic-pi-[a-z0-9_]+)", b):
            name = m.group(1)
            if b"mixer" in name or b"fx_" in name or b"scope" in name:
                continue
            out[o] = int(f[0])
            break
    return out


def read_log(sp):
    try:
        with open(os.path.join(sp.home, ".sonic-pi", "log", "scsynth.log"), errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def grid_misses(journal, firsts, origin):
    """Notes (timed /s_new of sounds) of the three first parts, from their
    first to 9 s after it (before anyone stops or runs again), that are not
    within 2 ms of the session's half-beat grid (beat 0 at `origin`, session
    ns)."""
    half = int(60.0 / BPM / 2 * 1e9)
    miss = 0
    for line in open(journal):
        f = line.split()
        if len(f) < 5 or f[3] != "0" or f[4] == "-":
            continue
        o, t = int(f[1]), int(f[0])
        if o not in (1, 2, 3) or o not in firsts or not firsts[o] <= t < firsts[o] + 9 * 10**9:
            continue
        b = bytes.fromhex(f[4])
        m = re.search(rb"/s_new\x00\x00,[^\x00]*\x00+(sonic-pi-[a-z0-9_]+)", b)
        if not m or b"mixer" in m.group(1) or b"fx_" in m.group(1):
            continue
        d = (t - origin) % half
        if min(d, half - d) > 2 * 10**6:
            miss += 1
    return miss


def join_lines(code):
    """A part's code up to and including its tutti_join line."""
    lines = code.splitlines()
    k = next(i for i, l in enumerate(lines) if l.startswith("tutti_join"))
    return "\n".join(lines[:k + 1]) + "\n"


INVITES = {}  # part -> its invitation's file (the hub admits members by invitation)


def code_for(part, hub, journal):
    with open(os.path.join(TOP, "examples", "sonicpi-trio", part + ".rb")) as f:
        s = f.read()
    s = s.replace('HUB = "127.0.0.1:7770"', 'HUB = "%s"' % hub)
    s = s.replace('as: "%s"' % part, 'as: "%s", journal: "%s", invite: "%s"'
                  % (part, journal, INVITES[part]))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--play", type=float, default=12.0, help="seconds of trio")
    a = ap.parse_args()
    tutti = os.path.abspath(a.tutti)
    work = os.path.abspath(a.out)
    os.makedirs(work, exist_ok=True)
    jack = "tutti-sonicpi-session"
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack, JACK_NO_START_SERVER="1")
    procs, sps, problems, report = [], [], [], {}

    def start(name, argv):
        p = subprocess.Popen(argv, stdout=open(os.path.join(work, name + ".out"), "w"),
                             stderr=subprocess.STDOUT, env=env, start_new_session=True)
        procs.append(p)
        return p

    try:
        start("jackd", ["jackd", "-r", "-d", "dummy", "-r", "48000", "-p", "256"])
        if subprocess.run(["jack_wait", "-w", "-t", "10"], env=env,
                          capture_output=True).returncode:
            raise RuntimeError("jackd did not start")
        url_file = os.path.join(work, "hub.url")
        if os.path.exists(url_file):  # an earlier run's, in a reused --out
            os.unlink(url_file)
        # A hub as on the public internet (docs/security.md): members join
        # with the invitation its operator made for them (tutti_join
        # invite:), over encrypted links
        keys = os.path.join(work, "keys")
        for part in PARTS:
            INVITES[part] = os.path.join(work, part + ".invite")
            subprocess.run([tutti, "invite", "--keys", keys, "--role", "performer",
                            "--out", INVITES[part]], check=True, capture_output=True)
        hub = start("hub", [tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--url-file",
                            url_file, "--horizon", "150", "--bpm", str(BPM), "--session",
                            "trio", "--duration", "400", "--keys", keys, "--quiet"])
        end = time.time() + 10
        while time.time() < end and not (os.path.exists(url_file) and open(url_file).read().strip()):
            time.sleep(0.05)
        url = open(url_file).read().strip()
        hostport = url.split("://", 1)[1]
        say("hub: %s" % url)
        end = time.time() + 5
        while time.time() < end and "hub key" not in open(os.path.join(work, "hub.out")).read():
            time.sleep(0.05)
        if "invitations needed" not in open(os.path.join(work, "hub.out")).read():
            problems.append("the hub does not ask for invitations: %s"
                            % open(os.path.join(work, "hub.out")).read()[:300])

        for part in PARTS:
            sp = spi.SonicPi(part, work, tutti, a.plugin_dir, env)
            sp.install()
            sps.append(sp)
        for sp in sps:  # one at a time: two cores
            sp.start()
            if not sp.wait_booted(90):
                raise RuntimeError("%s: Sonic Pi did not boot: %s" % (sp.name, sp.output()[-2000:]))
            sp.scsynth_port, sp.proxy_port = sp.ports()
            say("%s: Sonic Pi booted in %.1f s; scsynth on %s, tutti proxy on %s (Sonic Pi's "
                "scsynth port)" % (sp.name, time.time() - sp.started, sp.scsynth_port,
                                   sp.proxy_port))
        # Join first (the part's lines up to its tutti_join), then run the
        # whole part on all three at once, early in a 2-bar window: each
        # tutti_sync starts its loops on the next 2-bar line, so three calls
        # that straddle a line's cut-off (the line minus sched_ahead_time)
        # start a window apart, correctly. Running it again joined is what a
        # player does; tutti_join then does nothing.
        for sp in sps:
            sp.journal = os.path.join(work, sp.name + ".journal")
            sp.run(join_lines(code_for(sp.name, hostport, sp.journal)))
        for sp in sps:
            if not sp.wait_text("tutti: joined", 40):
                raise RuntimeError("%s did not join: %s" % (sp.name, sp.texts()[-10:]))
            st = status(tutti, sp.proxy_port)
            sp.part = st.get("part")
            if "timeline_t0_ns" in st:
                # beat 0 of the session's timeline, session ns (120 bpm throughout)
                report["beat0_ns"] = int(st["timeline_t0_ns"]) - int(round(
                    float(st["timeline_beat0"]) * 60.0 / float(st["bpm"]) * 1e9))
            say("%s: joined, part %s, clock %+.3f ms (+/- %.3f), L %s ms" % (
                sp.name, sp.part, st.get("clock_offset_ms", 0), st.get("clock_bound_ms", 0),
                st.get("horizon_ms")))
        if "beat0_ns" in report:
            period = 4 * 60.0 / BPM * SYNC_BARS
            beat0 = report["beat0_ns"] / 1e9
            now = time.time() + NTP_EPOCH
            line = beat0 + math.ceil((now - beat0) / period) * period
            time.sleep(max(0.0, line + 0.3 - now))
        for sp in sps:
            sp.run(code_for(sp.name, hostport, sp.journal))
        recs = []
        for sp in sps:
            sp.wav = os.path.join(work, sp.name + ".wav")
            sp.rec = start(sp.name + "-rec", [
                sys.executable, os.path.join(TOP, "examples", "osc", "record.py"), "--port",
                str(sp.scsynth_port), "--seconds", "%.1f" % (a.play + 16), "--out", sp.wav])
            recs.append(sp.rec)
        time.sleep(a.play / 2)
        trees = {sp.name: tree_parts(sp.scsynth_port) for sp in sps}
        parts = sorted(str(sp.part) for sp in sps)
        for sp in sps:
            t = trees[sp.name] or {}
            missing = [p for p in parts if int(p) not in t]
            say("%s: nodes by part halfway: %s" % (sp.name, t))
            if missing:
                problems.append("%s: no nodes of part(s) %s in its tree" % (sp.name, missing))
        time.sleep(a.play / 2)

        # member 2 stops: only its part goes
        bass = sps[1]
        before = {sp.name: status(tutti, sp.proxy_port).get("delivered", 0) for sp in sps}
        bass.stop_jobs()
        time.sleep(3.0)
        trees2 = {sp.name: tree_parts(sp.scsynth_port) for sp in sps}
        for sp in sps:
            t = trees2[sp.name] or {}
            say("%s: nodes by part after bass's stop: %s" % (sp.name, t))
            for other in (sps[0], sps[2]):
                if t.get(other.part, 0) < 2:
                    problems.append("%s: %s's part vanished when bass stopped" % (sp.name, other.name))
            # the bass part keeps only Sonic Pi's studio nodes (groups, mixer)
            if t.get(bass.part, 0) > 8:
                problems.append("%s: bass's synths still there after its stop" % sp.name)
        after = {sp.name: status(tutti, sp.proxy_port).get("delivered", 0) for sp in sps}
        for sp in (sps[0], sps[2]):
            if not after[sp.name] > before[sp.name]:
                problems.append("%s stopped playing when bass stopped" % sp.name)
        # it plays again: the same code (already joined: tutti_join does nothing)
        bass.run(code_for("bass", hostport, bass.journal))
        time.sleep(5.0)
        t3 = tree_parts(sps[0].scsynth_port) or {}
        say("drums: nodes by part after bass ran again: %s" % t3)
        if t3.get(bass.part, 0) < 6:
            problems.append("bass's part did not come back after it ran again")
        # and leaves, and joins again
        bass.stop_jobs()
        bass.log_at_leave = len(read_log(bass))
        bass.run('tutti_leave\nputs "left-ok"')
        if not bass.wait_text("left-ok", 20):
            problems.append("bass: tutti_leave did not finish")
        time.sleep(1.0)
        st = status(tutti, bass.proxy_port)
        if st.get("mode") != "solo":
            problems.append("bass: still in the session after tutti_leave")
        bass.run(code_for("bass", hostport, bass.journal + "2"))
        end = time.time() + 40
        while time.time() < end and sum("tutti: joined" in t for t in bass.texts()) < 2:
            time.sleep(0.2)
        if sum("tutti: joined" in t for t in bass.texts()) < 2:
            problems.append("bass did not join again")
        time.sleep(6.0)
        t4 = tree_parts(sps[2].scsynth_port) or {}
        st = status(tutti, bass.proxy_port)
        say("chords: nodes by part after bass joined again (bass is part %s now): %s" %
            (st.get("part"), t4))
        if st.get("part") not in t4:
            problems.append("bass's part is not on chords' server after joining again")
        t5 = tree_parts(bass.scsynth_port) or {}
        say("bass: nodes by part after joining again: %s" % t5)
        for other in (sps[0], sps[2]):
            if t5.get(other.part, 0) < 2:
                problems.append("bass's server lacks %s's part after joining again" % other.name)

        # chords' Sonic Pi quits (its scsynth with it) and starts again: the
        # others play on; it joins again as a new member, gets their parts
        # whole, and they get its part.
        chords = sps[2]
        chords.log_first_life = read_log(chords)
        # its recording ends first, as a musician's would: a WAV scsynth is
        # still writing when it quits is closed only if its quit gets that far
        chords.rec.terminate()
        try:
            chords.rec.wait(15)
        except subprocess.TimeoutExpired:
            problems.append("chords: its recording did not stop within 15 s")
        before = {sp.name: status(tutti, sp.proxy_port).get("delivered", 0) for sp in sps[:2]}
        chords.stop()
        time.sleep(3.0)
        for sp in sps[:2]:
            d = status(tutti, sp.proxy_port).get("delivered", 0)
            if not d > before[sp.name]:
                problems.append("%s stopped playing when chords' Sonic Pi quit" % sp.name)
            t = tree_parts(sp.scsynth_port) or {}
            if t.get(chords.part, 0) > 1:  # its part's group stays, empty
                problems.append("%s: chords' nodes still there after its Sonic Pi quit: %s" %
                                (sp.name, t))
        chords.start()
        if not chords.wait_booted(90):
            raise RuntimeError("chords: Sonic Pi did not boot again: %s" % chords.output()[-2000:])
        chords.scsynth_port, chords.proxy_port = chords.ports()
        chords.journal2 = chords.journal + "3"
        chords.run(code_for("chords", hostport, chords.journal2))
        if not chords.wait_text("tutti: joined", 40):
            problems.append("chords did not join again after its restart")
        time.sleep(8.0)
        st = status(tutti, chords.proxy_port)
        t6 = tree_parts(chords.scsynth_port) or {}
        t7 = tree_parts(sps[0].scsynth_port) or {}
        say("chords: restarted, joined again as part %s; its server's nodes by part: %s; "
            "drums' server: %s" % (st.get("part"), t6, t7))
        for other in sps[:2]:
            if t6.get(status(tutti, other.proxy_port).get("part"), 0) < 2:
                problems.append("chords' restarted server lacks %s's part" % other.name)
        if t7.get(st.get("part"), 0) < 2:
            problems.append("chords' part is not on drums' server after its restart")

        # the end
        for sp in sps:
            sp.stop_jobs()
        time.sleep(2.0)
        finals = {}
        for sp in sps:
            finals[sp.name] = status(tutti, sp.proxy_port)
        for sp in sps:
            sp.run('tutti_leave\nputs "bye-ok"')
        for sp in sps:
            sp.wait_text("bye-ok", 15)
        for r in recs:
            try:
                r.wait(30)
            except subprocess.TimeoutExpired:
                r.terminate()
    finally:
        for sp in sps:
            sp.stop()
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
    journals = [sp.journal for sp in sps]
    v = subprocess.run([tutti, "verify"] + journals, capture_output=True, text=True)
    say("journals: %s" % (v.stdout.strip() or v.stderr.strip()))
    if v.returncode:
        problems.append("journals differ: " + (v.stdout.strip() or v.stderr.strip()))
    # the members that joined again, against the one that stayed
    again = [sps[0].journal, sps[1].journal + "2", getattr(sps[2], "journal2", "")]
    if all(os.path.exists(j) for j in again):
        v = subprocess.run([tutti, "verify"] + again, capture_output=True, text=True)
        say("journals after joining again: %s" % (v.stdout.strip() or v.stderr.strip()))
        if v.returncode:
            problems.append("journals after joining again differ: " +
                            (v.stdout.strip() or v.stderr.strip()))
    else:
        problems.append("no journals of the members that joined again")
    firsts = first_notes(sps[0].journal)
    bar_ns = int(round(4 * 60.0 / BPM * SYNC_BARS * 1e9))
    origin = report.get("beat0_ns", 0)
    if "beat0_ns" not in report:
        problems.append("the plugin's status has no timeline")
    lines = {}
    for o, t in firsts.items():
        n = (t - origin + bar_ns // 2) // bar_ns
        lines[o] = (n, (t - origin - n * bar_ns) / 1e6)
    say("first note of each part (origin: nearest %d-bar line of the session, ms after it): %s" %
        (SYNC_BARS, lines))
    if len(lines) < 3:
        problems.append("not every part's first note is in the journal")
    else:
        # tutti_sync starts every part on the same 2-bar line: the first
        # notes fall on it (a with_fx's wait for its group's /n_go does not
        # delay them), and every later note is on the common beat grid.
        first3 = {o: v for o, v in lines.items() if o in (1, 2, 3)}
        bars = {b for b, _ in first3.values()}
        if len(bars) != 1 or max(abs(ms) for _, ms in first3.values()) > 2:
            problems.append("the parts' first notes are not on the same bar line: %s" % lines)
        off_grid = grid_misses(sps[0].journal, firsts, origin)
        say("notes after each part's first, off the session's beat grid by more than 2 ms: %d"
            % off_grid)
        if off_grid:
            problems.append("%d notes off the common beat grid" % off_grid)
    queries_here = 0
    for sp in sps:
        errs = sp.errors()
        if errs:
            problems.append("%s: Sonic Pi reported errors: %s" % (sp.name, errs[:2]))
        log = getattr(sp, "log_first_life", "") + read_log(sp)
        # Sonic Pi frees a run's nodes twice when it stops (its group, then
        # the nodes in it): "/n_free Node N not found" and "/n_set ... not
        # found" are Sonic Pi's own, in solo as well; any other FAILURE counts.
        benign = re.findall(r"FAILURE IN SERVER /n_(free|set) Node -?\d+ not found", log)
        fails = len(re.findall(r"FAILURE", log)) - len(benign)
        st = dict(finals.get(sp.name, {}))
        # every `late` line of every scsynth counts, joins included
        late = len(re.findall(r"^late ", log, re.M))
        stat = {}
        if os.path.exists(getattr(sp, "wav", "")):
            w = subprocess.run([sys.executable, os.path.join(TOP, "examples", "osc", "wavstat.py"),
                                sp.wav], capture_output=True, text=True)
            try:
                stat = json.loads(w.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                pass
        rms = stat.get("rms")
        say("%-7s part %s delivered %s, late events %s, scsynth FAILURE %d, late %d, Sonic Pi "
            "errors %d, WAV rms %s, sample /b_query answered at once %s"
            % (sp.name, sp.part, st.get("delivered"), st.get("late"), fails, late, len(errs),
               rms, st.get("queries_here")))
        queries_here += st.get("queries_here") or 0
        report[sp.name] = {"part": sp.part, "delivered": st.get("delivered"),
                           "queries_here": st.get("queries_here"),
                           "late_events": st.get("late"), "failures": fails,
                           "scsynth_late": late, "errors": len(errs), "rms": rms}
        if fails:
            problems.append("%s: scsynth printed FAILURE: %s" % (
                sp.name, re.findall(r".*FAILURE.*", log)[:3]))
        if late or st.get("late") or st.get("late_injected"):
            problems.append("%s: late bundles (scsynth %d, events %s, handed over late %s)" % (
                sp.name, late, st.get("late"), st.get("late_injected")))
        if not rms or not max(rms) > 1e-3:
            problems.append("%s: its recording is silent" % sp.name)
    # a sample's first note waits for its /b_info: answered by the member's
    # own server once the load has run, not a horizon later
    if not queries_here:
        problems.append("no sample's /b_query was answered at once")
    report["problems"] = problems
    report["ok"] = not problems
    say("problems: %s" % ("none" if not problems else "; ".join(problems)))
    print(json.dumps(report), flush=True)
    return 0 if not problems else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("session.py: %s" % e, file=sys.stderr)
        sys.exit(1)
