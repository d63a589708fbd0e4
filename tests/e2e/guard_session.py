#!/usr/bin/env python3
"""Each server protects its own speakers (issue 22, item 6), heard in recordings.

    guard_session.py --tutti BUILD/tutti --plugin-dir BUILD/plugin --out DIR

Two real scsynth servers with the plugin, anna (started with scsynth's -p
password: her proxy port then wants it first on TCP, as scsynth's own port
does) and bruno, join a hub that
admits only its invitations: anna from her server's environment
(TUTTI_INVITE), bruno with `tutti join --invite`. anna's part plays a quiet
sine (0.1, 220 Hz) and bruno's part a sine at amplitude 30 (441 Hz), both
with Out.ar(0, ...), the bus a constant inside the synthdef (no control a
rewriter could move). Both servers record their output (int16 WAV, so
anything beyond full scale clips in the file as it would in a sound card).

- Before joining, bruno's server plays the same loud synth solo (no session,
  no guard): its recording clips. That is what the session must prevent.
- In the session, on anna's server (bruno's part is remote there) and on
  bruno's own: the loud part is limited to the ceiling (0.5), anna's sine is
  there whole (its 220 Hz amplitude unchanged), nothing clips.
- 3 s in, anna mutes bruno's part on her server (`tutti gain --mute`): her
  recording then holds her sine alone; bruno's server still plays his part
  (a monitoring choice, local). The server check stays identical on both and
  the journals are identical (`tutti verify`).
- The session's node budget (the hub's --node-budget 40), against a burst:
  bruno's part sends 2000 silent synths in 0.2 s, each /s_new its own
  event. Both servers cut the burst at the budget at the same event: each
  tree holds bruno's first 40 synths, the same ids, and both statuses count
  the same events refused (every one of the burst that reached the session
  after the 40th). Once he frees them and the servers agree he holds none,
  a new synth plays again. The server check stays identical.
- Then mallory, a third member (tests/e2e/attacker.py's, no server of its
  own), starts six shared files and finishes none: on both servers four are
  stored partly and two are refused (counted in the status, logged with the
  reason); when mallory's connection goes and the hub removes it, its
  partial files leave both servers' caches. The caches are private (0700
  folders, 0600 files).
The last line is one JSON object; the exit status says whether all held.
"""
import argparse
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import tuttiosc as osc  # noqa: E402
from tuttilocal import (Procs, clear_jack_shm, free_port, read, request,  # noqa: E402
                        scsynth_argv, tutti_status, wait_for)

CEILING = 0.5
BUDGET = 40
PASSWORD = "s3cret"
LEAD = 4.0  # s from now to a recording's start: record.py sets itself up meanwhile


def tuttiproto_now():
    return int((time.time() + 2208988800) * 1e9)


def sine_def(name, freq, amp):
    d = osc.SynthDef(name)
    sig = d.ar("SinOsc", freq, 0) * amp
    d.ar("Out", 0, [sig, sig], outputs=0)  # bus 0, a constant
    return d


def wav(path):
    with wave.open(path) as w:
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        raw = w.readframes(n)
    data = struct.unpack("<%dh" % (len(raw) // 2), raw)
    return rate, [data[c::ch] for c in range(ch)]


def window(rec, t0, t1):
    rate, chans = rec
    return chans[0][int(t0 * rate):int(t1 * rate)], rate


def peak(x):
    return max(abs(v) for v in x) / 32768.0 if x else 0.0


def amplitude(x, rate, freq):
    """The amplitude of one frequency in x (a DFT bin over whole periods)."""
    n = int(len(x) * freq / rate) * rate // freq if freq else len(x)
    n = n or len(x)
    re = im = 0.0
    w = 2 * math.pi * freq / rate
    for i in range(n):
        v = x[i] / 32768.0
        re += v * math.cos(w * i)
        im += v * math.sin(w * i)
    return 2 * math.hypot(re, im) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--horizon", type=float, default=200.0)
    a = ap.parse_args()
    tutti = os.path.abspath(a.tutti)
    work = os.path.abspath(a.out)
    os.makedirs(work, exist_ok=True)
    procs = Procs(work)
    # its JACK server: fixed (lib.sh, jack_name), another name for a second copy
    jack = os.environ.get("TUTTI_GUARD_JACK", "tutti-guard_test")
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack, JACK_NO_START_SERVER="1")
    say = lambda *x: print(*x, flush=True)  # noqa: E731
    problems, report = [], {}
    servers = []
    try:
        jackd = procs.start("jackd", ["jackd", "-r", "-d", "dummy", "-r", "48000", "-p", "256"],
                            env)
        time.sleep(0.5)
        if subprocess.run(["jack_wait", "-w", "-t", "10"], env=env,
                          capture_output=True).returncode or jackd.poll() is not None:
            raise RuntimeError("jackd did not start: " + read(os.path.join(work, "jackd.out")))

        keys = os.path.join(work, "hubkeys")
        invites = {}
        for name in ("anna", "bruno", "mallory"):
            invites[name] = os.path.join(work, name + ".invite")
            subprocess.run([tutti, "invite", "--keys", keys, "--out", invites[name]], check=True,
                           capture_output=True, timeout=30)
        url_file = os.path.join(work, "hub.url")
        procs.start("hub", [tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--url-file",
                            url_file, "--horizon", str(a.horizon), "--keys", keys, "--quiet",
                            "--duration", "120", "--suspect", "1500", "--node-budget",
                            str(BUDGET)], env)
        url = wait_for(lambda: read(url_file).strip(), 10, "the hub")

        for name in ("anna", "bruno"):
            s = {"name": name, "port": free_port(), "log": os.path.join(work, name + ".out"),
                 "journal": os.path.join(work, name + ".journal")}
            senv = dict(env, TUTTI_PROXY_PORT="0", TUTTI_CACHE=os.path.join(work, name + "-cache"))
            if name == "anna":  # joins from its environment, with its invitation
                senv.update(TUTTI_HUB=url, TUTTI_NAME=name, TUTTI_INVITE=invites[name],
                            TUTTI_JOURNAL=s["journal"])
            argv = scsynth_argv(s["port"], a.plugin_dir)
            if name == "anna":  # a session password, as scsynth's -p
                argv += ["-p", PASSWORD]
            s["proc"] = procs.start(name, argv, senv)
            servers.append(s)
        anna, bruno = servers
        import re
        for s in servers:
            m = wait_for(lambda: re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", read(s["log"])),
                         30, s["name"] + "'s proxy")
            s["proxy"] = int(m.group(1))

        # 0. anna's proxy port takes her scsynth's -p password on TCP, as
        # scsynth's own TCP port does: the first packet must be it (4 tries)
        t = osc.Tcp(anna["proxy"])
        t.send(osc.message("/status"))  # not the password
        got = osc.wait_for(t, lambda m: m[0] == "/status.reply", 1.0)
        for _ in range(3):
            t.send(b"guess")
        osc.wait_for(t, lambda m: False, 1.0)
        refused = got is None and t.closed
        t.close()
        t = osc.Tcp(anna["proxy"])
        t.s.sendall(struct.pack(">i", len(PASSWORD)) + PASSWORD.encode())
        t.send(osc.message("/status"))
        admitted = osc.wait_for(t, lambda m: m[0] == "/status.reply", 3.0) is not None
        t.close()
        say("anna's proxy with scsynth -p: without the password no answer and closed after 4 "
            "tries: %s; with it /status answered: %s" % (refused, admitted))
        if not (refused and admitted):
            problems.append("the proxy port does not take scsynth's -p password as scsynth does")
        if "proxy listening on 127.0.0.1:" not in read(anna["log"]):
            problems.append("the proxy did not listen on 127.0.0.1 by default")

        def record(s, tag, at, seconds):
            path = os.path.join(work, "%s-%s.wav" % (s["name"], tag))
            p = procs.start("%s-rec-%s" % (s["name"], tag), [
                sys.executable, os.path.join(TOP, "examples", "osc", "record.py"), "--port",
                str(s["port"]), "--seconds", "%.1f" % seconds, "--out", path, "--at",
                "%.6f" % (at + 2208988800.0)], env)
            return p, path

        # 1. bruno's server solo, no guard: the loud synth clips
        c = osc.Udp(bruno["proxy"])
        c.send(osc.message("/d_recv", sine_def("loud", 441, 30.0).bytes()))
        osc.wait_for(c, lambda m: m[0] == "/done", 5)
        t = time.time() + LEAD
        rec, solo_wav = record(bruno, "solo", t, 1.5)
        c.send(osc.bundle(osc.timetag(t + 2208988800.0 + 0.2),
                          osc.message("/s_new", "loud", 1000, 0, 0)))
        rec.wait(20)
        c.send(osc.message("/n_free", 1000))
        c.close()
        solo_peak = peak(window(wav(solo_wav), 0.4, 1.3)[0])
        say("solo, no guard: bruno's loud synth peaks at %.3f of full scale in his recording"
            % solo_peak)
        report["solo_peak"] = solo_peak
        if solo_peak < 0.999:
            problems.append("the loud synth did not clip on a solo server (peak %.3f): the test "
                            "shows nothing" % solo_peak)

        # 2. bruno joins with `tutti join --invite`
        r = subprocess.run([tutti, "join", "--proxy", str(bruno["proxy"]), "--hub", url,
                            "--name", "bruno", "--journal", bruno["journal"], "--invite",
                            invites["bruno"]], capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError("tutti join --invite failed: " + r.stderr.strip())
        for s in servers:
            st = wait_for(lambda: (lambda x: x if x and x.get("mode") == "session" and
                                   x.get("members") == 2 and x.get("clock_locked") else None)(
                tutti_status(tutti, s["proxy"])), 20, s["name"] + " to join")
            s["part"] = st["part"]
            say("%s: member %d, part %d, role %s, link %s, hub key checked: %s" %
                (s["name"], st["id"], st["part"], st.get("role"),
                 "encrypted" if st.get("sealed") else "IN CLEAR",
                 "yes" if st.get("hub_verified") else "NO"))
            if not (st.get("sealed") and st.get("hub_verified")):
                problems.append("%s: its link is not encrypted or the hub not checked" % s["name"])

        # 3. both parts play from T0; the recordings start at T0 + 0.5
        clients = {}
        for s, d in ((anna, sine_def("quiet", 220, 0.1)), (bruno, sine_def("loud", 441, 30.0))):
            c = osc.Udp(s["proxy"])
            c.send(osc.message("/d_recv", d.bytes()))
            if not osc.wait_for(c, lambda m: m[0] == "/done", 10):
                problems.append("%s: no /done for its synthdef" % s["name"])
            clients[s["name"]] = (c, d.name)
        t0 = time.time() + LEAD
        recs = [record(s, "session", t0 + 0.5, 6.0) for s in servers]
        for name, (c, dn) in clients.items():
            c.send(osc.bundle(osc.timetag(t0 + 2208988800.0), osc.message("/s_new", dn, 2000, 0, 0)))
        # 4. anna mutes bruno's part on her server, 3 s in
        time.sleep(max(0.0, t0 + 3.5 - time.time()))
        r = subprocess.run([tutti, "gain", "--proxy", str(anna["proxy"]), "--part", "bruno",
                            "--mute"], capture_output=True, text=True, timeout=10)
        muted_at = time.time() - (t0 + 0.5)
        say(r.stdout.strip() or r.stderr.strip())
        if r.returncode:
            problems.append("tutti gain --mute failed: " + r.stderr.strip())
        for p, _ in recs:
            p.wait(30)
        for name, (c, dn) in clients.items():
            c.send(osc.message("/n_free", 2000))
            c.close()
        # 5. the node budget
        c = osc.Udp(bruno["proxy"])
        hum = osc.SynthDef("hum")
        hum.ar("Out", 0, [hum.ar("SinOsc", 300, 0) * 0.0] * 2, outputs=0)
        c.send(osc.message("/d_recv", hum.bytes()))
        osc.wait_for(c, lambda m: m[0] == "/done", 10)

        def bruno_nodes(s):
            args = request(s["port"], osc.message("/g_queryTree", 0, 0), "/g_queryTree.reply")
            if args is None:
                return None
            ids, i = [], 1
            while i + 1 < len(args):
                node, n = args[i], args[i + 1]
                i += 3 if n == -1 else 2
                if node // (1 << 26) == bruno["part"] and n == -1:
                    ids.append(node % (1 << 26))
            return ids

        def play_hums(first, count, seconds=0.0):
            # each synth its own event, all timed alike, sent over `seconds`
            t = time.time() + 0.5 + seconds
            for k in range(count):
                c.send(osc.bundle(osc.timetag(t + 2208988800.0),
                                  osc.message("/s_new", "hum", first + k, 0, 0)))
                if seconds and k % 100 == 99:
                    time.sleep(seconds * 100 / count)
            time.sleep(0.5 + a.horizon / 1000.0 + 0.5)

        def said(text, what):
            # the budget follows the server check's rounds: wait for both
            # servers to say it (a loaded machine delays rounds, not order)
            return wait_for(lambda: all(text in read(s["log"]) for s in servers), 20, what)

        BURST = 2000
        # the servers agree his loud synth (freed above) is gone: rounds are
        # 0.5 s apart, each decided a round later; until then it counts
        time.sleep(2.0)
        before = (tutti_status(tutti, bruno["proxy"]) or {}).get("state_messages", 0)
        play_hums(5000, BURST, 0.2)
        said("over the session's budget of %d" % BUDGET, "the servers to cut bruno's burst")
        time.sleep(1.0)  # the rest of the burst delivered everywhere
        budget = {}
        for s in servers:
            st = tutti_status(tutti, s["proxy"]) or {}
            n = sorted(bruno_nodes(s) or [])
            budget[s["name"]] = {"synths": len(n), "ids": n, "refused": st.get("nodes_refused")}
        say("node budget %d: bruno's part sent %d synths in 0.2 s: %s" % (
            BUDGET, BURST, {k: {"synths": b["synths"], "refused": b["refused"],
                                "ids": "%s..%s" % (b["ids"][:1], b["ids"][-1:])}
                            for k, b in budget.items()}))
        for name, b in budget.items():
            if b["synths"] != BUDGET or not b["refused"]:
                problems.append("%s: the budget did not cut bruno's burst at %d synths: %d "
                                "synths, %s refused" % (name, BUDGET, b["synths"], b["refused"]))
            if "over the session's budget of %d" % BUDGET not in read(
                    [s for s in servers if s["name"] == name][0]["log"]):
                problems.append("%s: the budget's refusal is not in its log" % name)
        # the refused synths are not in bruno's part's state either (what a
        # newcomer gets, and what his server plays when it goes solo again)
        after_burst = (tutti_status(tutti, bruno["proxy"]) or {}).get("state_messages", 0)
        say("bruno's part's state: %d messages before the burst, %d after" % (before, after_burst))
        if after_burst > before + BUDGET:
            problems.append("bruno's part's state holds refused synths: %d messages before the "
                            "burst, %d after" % (before, after_burst))
        cut = list(budget.values())
        if any(b["ids"] != cut[0]["ids"] or b["refused"] != cut[0]["refused"] for b in cut):
            problems.append("the servers cut bruno's burst at different events: %s" % budget)
        c.send(osc.message("/n_free", *cut[0]["ids"]))
        said("part %d is back under its node budget" % bruno["part"],
             "the servers to agree bruno is back under")
        play_hums(3200, 1)
        after = {s["name"]: bruno_nodes(s) for s in servers}
        say("after bruno freed them, one more synth: %s" % after)
        for name, ids in after.items():
            if ids != [3200]:
                problems.append("%s: a synth of bruno's part did not play after he freed his "
                                "nodes: %s" % (name, ids))
        c.send(osc.message("/n_free", 3200))
        c.close()

        # 6. mallory's partial uploads
        from attacker import Member, read_invite
        import tuttiproto
        host, port = url[len("tcp://"):].rsplit(":", 1)
        mal = Member(host, int(port), "tutti", "mallory", read_invite(invites["mallory"]))
        if not mal.ok:
            problems.append("mallory could not join: %r" % (mal.hs.reply,))
        else:
            mrecs = b""
            for k in range(6):
                token = "tutti-asset:%016x.wav" % (0xbad0000 + k)
                payload = bytes(8) + osc.message("/tutti/asset", token, 50 << 20, 0,
                                                 os.urandom(1024))
                t = max(mal.w, tuttiproto_now() + mal.horizon) + 300 * 10 ** 6
                mrecs += tuttiproto.event(t, mal.id, mal.seq, payload)
                mal.seq += 1
            mal.send(mrecs)
            mal.collect(1.0)
            for s in servers:
                wait_for(lambda: (tutti_status(tutti, s["proxy"]) or {}).get("assets_refused"),
                         15, "mallory's files to reach " + s["name"])
            for s in servers:
                st = tutti_status(tutti, s["proxy"]) or {}
                cache = os.path.join(work, s["name"] + "-cache")
                parts = [f for f in os.listdir(cache) if ".part." in f] if os.path.isdir(cache) else []
                if len(parts) != 4:
                    say("  %s's cache: %s" % (s["name"], os.listdir(cache) if os.path.isdir(cache)
                                              else "no folder"))
                s["mallory"] = {"refused": st.get("assets_refused"), "partial_files": len(parts)}
                say("%s: mallory's six unfinished files: %d partial files in the cache, %s "
                    "refused" % (s["name"], len(parts), st.get("assets_refused")))
                if st.get("assets_refused") != 2 or len(parts) != 4:
                    problems.append("%s: not 4 partial files and 2 refused: %s" %
                                    (s["name"], s["mallory"]))
                if "is refused on every server: it has 4 shared files partly sent" not in read(s["log"]):
                    problems.append("%s: the refusal is not in its log with its reason" % s["name"])
                mode = os.stat(cache).st_mode & 0o777
                files = [os.stat(os.path.join(cache, f)).st_mode & 0o777 for f in os.listdir(cache)]
                if mode != 0o700 or any(m != 0o600 for m in files):
                    problems.append("%s: its cache is not private (folder %o, files %s)" %
                                    (s["name"], mode, sorted(set(files))))
            mal.c.close()
            for s in servers:
                cache = os.path.join(work, s["name"] + "-cache")
                left = wait_for(lambda: (lambda n: ("none",) if n == 0 else None)(
                    len([f for f in os.listdir(cache) if ".part." in f])), 15,
                    "mallory's partial files to go from " + s["name"]) if os.path.isdir(cache) else None
                say("%s: mallory removed, its partial files gone: %s" % (s["name"], bool(left)))
        time.sleep(1.5)  # a few server-check rounds after the last change
        for s in servers:
            s["status"] = tutti_status(tutti, s["proxy"]) or {}
            say("%s: server check %s (%s rounds, %s differences); guard: %s" %
                (s["name"], s["status"].get("server_check"), s["status"].get("checks"),
                 s["status"].get("check_diffs"), s["status"].get("guard")))
            if s["status"].get("check_diffs") or not s["status"].get("checks"):
                problems.append("%s: the server check was not identical all along" % s["name"])
        for s in servers:
            subprocess.run([tutti, "leave", "--proxy", str(s["proxy"])], capture_output=True,
                           timeout=10)
        v = subprocess.run([tutti, "verify", anna["journal"], bruno["journal"]],
                           capture_output=True, text=True)
        say("tutti verify: " + (v.stdout.strip().splitlines() or ["?"])[0])
        if v.returncode:
            problems.append("the journals differ: " + v.stdout.strip())

        # 5. what the recordings hold
        both_win = (0.3, min(2.8, muted_at - 0.2))
        mute_win = (muted_at + 0.3, 5.8)
        res = {}
        for s, (_, path) in zip(servers, recs):
            rec = wav(path)
            x, rate = window(rec, *both_win)
            y, _ = window(rec, *mute_win)
            res[s["name"]] = {
                "both": {"peak": peak(x), "a220": amplitude(x, rate, 220),
                         "a441": amplitude(x, rate, 441)},
                "after_mute": {"peak": peak(y), "a220": amplitude(y, rate, 220),
                               "a441": amplitude(y, rate, 441)}}
            say("%s's recording: both parts: peak %.3f, anna's 220 Hz %.4f, bruno's 441 Hz %.4f;"
                " after anna muted bruno: peak %.3f, 220 Hz %.4f, 441 Hz %.4f" %
                (s["name"], res[s["name"]]["both"]["peak"], res[s["name"]]["both"]["a220"],
                 res[s["name"]]["both"]["a441"], res[s["name"]]["after_mute"]["peak"],
                 res[s["name"]]["after_mute"]["a220"], res[s["name"]]["after_mute"]["a441"]))
        report["recordings"] = res
        for name, r in res.items():
            b = r["both"]
            if b["peak"] > CEILING + 0.1 + 0.02:
                problems.append("%s: the output reached %.3f with both parts (ceiling %.2f + "
                                "anna's 0.1)" % (name, b["peak"], CEILING))
            if abs(b["a220"] - 0.1) > 0.01:
                problems.append("%s: anna's sine is not whole (%.4f, not 0.1)" % (name, b["a220"]))
            # its 441 Hz component: the limited sine's peak is the ceiling;
            # the limiter's gain ripple adds a little to the fundamental
            if not CEILING * 0.8 < b["a441"] <= CEILING * 1.1:
                problems.append("%s: bruno's part is not at the ceiling (%.4f)" % (name, b["a441"]))
        ra, rb = res["anna"]["after_mute"], res["bruno"]["after_mute"]
        if ra["a441"] > 0.002 or ra["peak"] > 0.12 or abs(ra["a220"] - 0.1) > 0.01:
            problems.append("anna's server still plays bruno's part after the mute, or lost "
                            "her own: %s" % ra)
        if not CEILING * 0.8 < rb["a441"] <= CEILING * 1.1:
            problems.append("bruno's server stopped playing his part when anna muted it: %s" % rb)
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        problems.append(str(e))
    finally:
        procs.stop_all()
        clear_jack_shm(jack)
        for s in servers:
            try:
                os.unlink("/dev/shm/SuperColliderServer_%d" % s["port"])
            except OSError:
                pass
    for s in servers:
        log = read(s["log"])
        if "FAILURE" in log:
            problems.append("%s: scsynth printed FAILURE: %s" % (
                s["name"], [l for l in log.splitlines() if "FAILURE" in l][:2]))
    report["problems"] = problems
    say("problems: %s" % ("none" if not problems else "; ".join(problems)))
    print(json.dumps(report), flush=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
