#!/usr/bin/env python3
"""Joins under load: two real scsynth servers with the plugin, one hub.

    join_load.py --tutti BUILD/tutti --plugin-dir DIR --hub URL --work DIR
                 [--sample-mb 1] [--rejoins 2] [--every 0.06] [--stall 2]
                 [--big-mb 4.5]

anna's server boots solo; her client makes its default group and loads a
synthdef and a sound file of --sample-mb MB from disk (/b_allocRead by path),
then anna joins the hub and her client plays a short note every --every
seconds (timed bundles, 0.3 s ahead) until the end. bruno's server is up,
solo, from the start; it joins 2 s into the playing, so anna sends it her
part's state, the sound file included (the asset path's 48 KiB chunks, then
the read command), and bruno's client plays too from then on; then bruno
leaves and joins again --rejoins times, 3 s apart, its cache emptied each
time, and each time the state travels again while the notes go on. At the
first join bruno's cache stalls for --stall seconds (see stall()). Once
anna has joined, her client reads a file of --big-mb MB (0: not), more than
a session with the hub's default limits passes at once: it must get a
/fail that says so, at once (docs/plugin.md, Files).

Printed: per server its scsynth `late` and FAILURE lines, the events its
member delivered late, the plugin's own figures (late_injected, turn_max_ms: the longest the member's thread spent
on one delivered event, inject_lead_min_ms: the least lead a timed bundle
had when it reached the server), and whether bruno's server held anna's notes
after each join, and of bruno's notes (client ids) which its client never
heard start on its server (/n_go) or heard start twice. The last line is one JSON object. Every process started
here is stopped on the way out, by its pid.
"""
import argparse
import json
import math
import os
import re
import struct
import sys
import threading
import time
import wave

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import tuttiosc  # noqa: E402
from tuttilocal import (NODE_SPAN, Procs, free_port, read, scsynth_argv,  # noqa: E402
                        tree_parts, tutti_status, wait_for)
import subprocess  # noqa: E402


def sample_file(path, mb):
    """A mono 16-bit 48 kHz WAV of about `mb` MB (a decaying chord, so the
    content is not trivially compressible or repetitive)."""
    frames = int(mb * 1e6 / 2)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        chunk = bytearray()
        for i in range(frames):
            t = i / 48000.0
            v = 0.3 * math.exp(-t / 4) * (math.sin(2 * math.pi * 220 * t) +
                                           0.5 * math.sin(2 * math.pi * 331 * t + i % 7))
            chunk += struct.pack("<h", int(max(-1, min(1, v)) * 32767))
        w.writeframes(bytes(chunk))


FIGURES = ("turn_max_ms", "inject_wait_max_ms", "inject_lead_min_ms", "late_injected",
           "file_job_max_ms", "late")


def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def stall(path, seconds, stop):
    """A cache that stalls (a disk that cannot keep up, a network home folder
    that hangs): the chunk file bruno's plugin writes is a FIFO, and every
    open of it for writing waits until this reader comes round, every 0.4 s,
    for `seconds` (then its writes fail: the file is not stored there)."""
    os.mkfifo(path, 0o600)
    end = time.time() + seconds
    while time.time() < end and not stop.is_set():
        time.sleep(0.4)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        time.sleep(0.005)
        os.close(fd)
    # then always open: whatever is still to write fails at once
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    stop.wait()
    os.close(fd)


def ping_def():
    d = tuttiosc.SynthDef("jl_ping")
    freq, amp, out = d.controls(freq=880.0, amp=0.05, out=0)
    e = d.envgen(tuttiosc.env_perc(0.002, 0.08, 1.0, -4.0), done_action=2)
    d.ar("Out", out, d.ar("SinOsc", freq, 0) * e * amp, outputs=0)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--hub", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--sample-mb", type=float, default=1.0)
    ap.add_argument("--big-mb", type=float, default=4.5)
    ap.add_argument("--rejoins", type=int, default=2)
    ap.add_argument("--every", type=float, default=0.06)
    ap.add_argument("--stall", type=float, default=2.0,
                    help="seconds bruno's cache stalls at its first join (0: none)")
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    say = lambda *x: print(*x, flush=True)  # noqa: E731
    procs = Procs(work)
    sample = os.path.join(work, "sample.wav")
    sample_file(sample, a.sample_mb)
    report = {"sample_bytes": os.path.getsize(sample), "joins": []}
    stop_stall, staller = threading.Event(), None
    try:
        servers = {}
        for name in ("anna", "bruno"):
            port = free_port()
            env = dict(os.environ, TUTTI_PROXY_PORT="0",
                       TUTTI_CACHE=os.path.join(work, name + "-cache"), TUTTI_SHARE_DIRS=work)
            log = os.path.join(work, name + ".out")
            p = procs.start(name, scsynth_argv(port, a.plugin_dir), env)
            servers[name] = {"port": port, "log": log, "proc": p}
        for name, s in servers.items():
            m = wait_for(lambda: re.search(r"proxy listening on 127\.0\.0\.1:(\d+)",
                                           read(s["log"])), 30, name + "'s proxy")
            s["proxy"] = int(m.group(1))

        # anna's client, solo: its default group, a synthdef and the sound file, then /sync
        c = tuttiosc.connect(servers["anna"]["proxy"])
        c.send(tuttiosc.message("/notify", 1))
        c.send(tuttiosc.message("/g_new", 1, 0, 0))  # the default group, as sclang makes it
        c.send(tuttiosc.message("/d_recv", tuttiosc.synthdef_file(ping_def())))
        c.send(tuttiosc.message("/b_allocRead", 7, sample, 0, 0))
        c.send(tuttiosc.message("/sync", 41))
        if not tuttiosc.wait_for(c, lambda m: m[0] == "/synced" and list(m[1][:1]) == [41], 20):
            raise RuntimeError("anna's server did not sync after loading the sound file")
        say("anna: synthdef and a %.2f MB sound file loaded while solo" %
            (report["sample_bytes"] / 1e6))

        def join(name, first):
            r = subprocess.run([a.tutti, "join", "--proxy", str(servers[name]["proxy"]),
                                "--hub", a.hub, "--name", name, "--journal",
                                os.path.join(work, "%s-%d.journal" % (name, first)),
                                "--wait", "20"],
                               capture_output=True, text=True, timeout=40)
            if r.returncode:
                raise RuntimeError("tutti join (%s) failed: %s" % (name, r.stderr.strip()))

        def locked(name, members):
            return wait_for(lambda: (lambda x: x if x and x.get("mode") == "session" and
                                     x.get("members") == members and x.get("clock_locked")
                                     else None)(tutti_status(a.tutti, servers[name]["proxy"])),
                            20, name + " to join")

        join("anna", 0)
        st = locked("anna", 1)
        anna_part, anna_id = st["part"], st["id"]
        # Just locked, so not settled: the status says so for 6 s
        # (clock_settled, docs/plugin.md); anna's is read again at the end.
        if st.get("clock_settled") != 0:
            raise RuntimeError("anna's clock settled as it locked: clock_settled %r"
                               % st.get("clock_settled"))
        locked_at = time.time()
        if a.big_mb > 0:
            # once what anna made solo is her part's (before, her client's
            # traffic still plays solo, as docs/plugin.md says)
            wait_for(lambda: (tutti_status(a.tutti, servers["anna"]["proxy"]) or {}).get(
                "carried"), 10, "anna's part to be carried")
            big = os.path.join(work, "big.wav")
            with wave.open(big, "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(48000)
                w.writeframes(os.urandom(int(a.big_mb * 1e6) // 2 * 2))
            c.send(tuttiosc.message("/b_allocRead", 9, big, 0, 0))
            m = tuttiosc.wait_for(c, lambda m: m[0] in ("/fail", "/done") and
                                  m[1][:1] == ["/b_allocRead"], 10)
            why = str(m[1][1]) if m and m[0] == "/fail" and len(m[1]) > 1 else None
            say("anna: a %.1f MB file read in the session: %s" % (
                a.big_mb, "refused: " + why if why else "NOT refused (%s)" % (m,)))
            report["big_refused"] = why
            if not why or "more than this session passes at once" not in why:
                raise RuntimeError("the %.1f MB file was not refused with the reason" % a.big_mb)
        with open(sample, "rb") as f:
            token = "%016x.wav" % fnv1a64(f.read())

        # the notes: one every a.every s, 0.3 s ahead, as timed bundles
        stop = threading.Event()
        sent = [0]
        played = {}  # per client: the note ids it sent

        def play(c):
            t = time.time() + 0.5
            node = 1000
            ids = played.setdefault(id(c), [])
            while not stop.is_set():
                t += a.every
                node += 1
                ids.append(node)
                tt = tuttiosc.timetag(tuttiosc.unix_to_ntp(t + 0.3))
                c.send(tuttiosc.bundle(tt, tuttiosc.message(
                    "/s_new", "jl_ping", node, 0, 1, "freq", 660.0 + 110 * (node % 4))))
                sent[0] += 1
                time.sleep(max(0.0, t - time.time()))

        players = [threading.Thread(target=play, args=(c,), daemon=True)]
        players[0].start()
        # bruno's client, solo: its default group and the synthdef; it plays
        # too from its first join on (a newcomer's own part, delivered by the
        # same thread that stores the files it is sent)
        cb = tuttiosc.connect(servers["bruno"]["proxy"])
        cb.send(tuttiosc.message("/g_new", 1, 0, 0))
        cb.send(tuttiosc.message("/d_recv", tuttiosc.synthdef_file(ping_def())))
        cb.send(tuttiosc.message("/sync", 42))
        if not tuttiosc.wait_for(cb, lambda m: m[0] == "/synced" and list(m[1][:1]) == [42], 20):
            raise RuntimeError("bruno's server did not sync")
        # what bruno's client hears of its own notes starting on its server
        # (solo, and in the session in its own ids): each exactly once
        cb.send(tuttiosc.message("/notify", 1))
        started, listening = {}, threading.Event()

        def listen(conn):
            while not listening.is_set():
                pkt = conn.recv(0.2)
                try:
                    for m in tuttiosc.messages(pkt) if pkt else []:
                        if m[0] == "/n_go" and m[1]:
                            started[m[1][0]] = started.get(m[1][0], 0) + 1
                except tuttiosc.OscError:
                    pass

        listener = threading.Thread(target=listen, args=(cb,), daemon=True)
        listener.start()
        time.sleep(2.0)
        st = tutti_status(a.tutti, servers["anna"]["proxy"]) or {}
        report["anna_before_joins"] = {f: st.get(f) for f in FIGURES}
        say("anna before bruno joins (her own join and carry): longest turn %s ms, longest wait "
            "for the batch %s ms" % (st.get("turn_max_ms"), st.get("inject_wait_max_ms")))
        for k in range(1 + a.rejoins):
            if k:
                r = subprocess.run([a.tutti, "leave", "--proxy", str(servers["bruno"]["proxy"])],
                                   capture_output=True, text=True, timeout=20)
                if r.returncode:
                    raise RuntimeError("tutti leave failed: " + r.stderr.strip())
                wait_for(lambda: (lambda x: x if x and x.get("mode") != "session" else None)(
                    tutti_status(a.tutti, servers["bruno"]["proxy"])), 20, "bruno to leave")
                time.sleep(0.5)
            # a newcomer that has never had the file: bruno's cache is emptied
            # (while it is solo), so every join stores it afresh
            cache = os.path.join(work, "bruno-cache")
            stop_stall.set()
            if staller:
                staller.join()
            for f in os.listdir(cache) if os.path.isdir(cache) else []:
                os.unlink(os.path.join(cache, f))
            if k == 0 and a.stall > 0:
                os.makedirs(cache, mode=0o700, exist_ok=True)
                stop_stall.clear()
                staller = threading.Thread(target=stall, args=(
                    os.path.join(cache, "%s.part.%08x" % (token, anna_id)), a.stall, stop_stall))
                staller.start()
                time.sleep(0.2)
            t0 = time.time()
            join("bruno", k)
            locked("bruno", 2)
            if k == 0:
                players.append(threading.Thread(target=play, args=(cb,), daemon=True))
                players[-1].start()
            # anna's notes sound on bruno's server: its tree holds nodes of her part
            held = None
            end = time.time() + 5
            while time.time() < end:
                parts = tree_parts(servers["bruno"]["port"]) or {}
                if any(n % NODE_SPAN >= 1000 for n in parts.get(anna_part, [])):
                    held = round(time.time() - t0, 2)
                    break
                time.sleep(0.1)
            time.sleep(max(0.0, t0 + 3.0 - time.time()))
            row = {"notes_on_bruno_after_s": held}
            for name in servers:
                st = tutti_status(a.tutti, servers[name]["proxy"]) or {}
                for f in FIGURES:
                    row["%s_%s" % (name, f)] = st.get(f)
            report["joins"].append(row)
            say("bruno: join %d; anna's notes on its server %s; the members' threads: longest "
                "turn anna %s ms, bruno %s ms; longest wait for the batch anna %s ms, bruno %s "
                "ms; least lead anna %s ms, bruno %s ms" %
                (k + 1, "after %.2f s" % held if held is not None else "NEVER (5 s)",
                 row["anna_turn_max_ms"], row["bruno_turn_max_ms"],
                 row["anna_inject_wait_max_ms"], row["bruno_inject_wait_max_ms"],
                 row["anna_inject_lead_min_ms"], row["bruno_inject_lead_min_ms"]))
            if row["anna_file_job_max_ms"] is not None:
                say("        file worker's longest job: anna %s ms, bruno %s ms" %
                    (row["anna_file_job_max_ms"], row["bruno_file_job_max_ms"]))
        time.sleep(1.0)
        stop.set()
        for p in players:
            p.join()
        stop_stall.set()
        if staller:
            staller.join()
        time.sleep(0.6)
        listening.set()
        listener.join()
        report["notes_sent"] = sent[0]
        mine = played.get(id(cb), [])
        report["bruno_notes"] = {
            "sent": len(mine),
            "missing": [n for n in mine if not started.get(n)],
            "twice": [n for n in mine if started.get(n, 0) > 1]}
        say("bruno's notes on its own server: %d sent, %d never started %s, %d started twice %s"
            % (len(mine), len(report["bruno_notes"]["missing"]),
               report["bruno_notes"]["missing"][:8], len(report["bruno_notes"]["twice"]),
               report["bruno_notes"]["twice"][:8]))
        settled = wait_for(lambda: (tutti_status(a.tutti, servers["anna"]["proxy"]) or {}).get(
            "clock_settled"), max(1.0, locked_at + 10.0 - time.time()), "anna's clock to settle")
        say("anna's clock settled (clock_settled %s; read %.1f s after it was first locked)"
            % (settled, time.time() - locked_at))
        report["servers"] = {}
        for name, s in servers.items():
            st = tutti_status(a.tutti, s["proxy"]) or {}
            log = read(s["log"])
            row = {
                "scsynth_late": len(re.findall(r"^late ", log, re.M)),
                "late_s": [float(x) for x in re.findall(r"^late (\S+)", log, re.M)],
                "failures": len(re.findall(r"FAILURE", log)),
                "late_injected": st.get("late_injected"),
                "late_delivered": st.get("late"),
                "turn_max_ms": st.get("turn_max_ms"),
                "inject_lead_min_ms": st.get("inject_lead_min_ms"),
                "delivered": st.get("delivered"),
            }
            report["servers"][name] = row
            say("%-5s scsynth late %d %s, FAILURE %d; plugin: late_injected %s, events delivered "
                "late %s, longest turn %s ms, least lead %s ms (since its last join)" %
                (name, row["scsynth_late"], ["%.1f ms" % (x * 1e3) for x in row["late_s"][:6]],
                 row["failures"], row["late_injected"], row["late_delivered"], row["turn_max_ms"],
                 row["inject_lead_min_ms"]))
        report["stalled_writes"] = len(re.findall(r"could not be stored", read(servers["bruno"]["log"])))
        if a.stall > 0:
            say("bruno's cache stalled at its first join: %d chunk writes waited and failed" %
                report["stalled_writes"])
        c.close()
        cb.close()
    finally:
        stop_stall.set()
        procs.stop_all()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
