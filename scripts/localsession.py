#!/usr/bin/env python3
"""A whole tutti session on this machine, with real servers: the main job.

    localsession.py --tutti BUILD/tutti [--example examples/trio] [--members 3]
                    [--out DIR] [--bars 4] [--bpm 120] [--horizon MS]
                    [--quit-member K --quit-at S] [--late-member K --late-at S]
                    [--fault-member K --fault-at S] [--open] [--check]

Starts one JACK server (the dummy driver, so no sound card is needed), a hub,
and one scsynth per member with the tutti plugin; the members join the
session (the first ones from their environment, the last with `tutti join`),
each with an invitation of its own made here with `tutti invite`, so every
link to the hub is encrypted and the hub proves its key (--open: an open hub,
links in clear);
each member's client plays its part of the example against its own server's
proxy port; every server records its output to a WAV file. Then it asks every
server for its node tree halfway through, compares the journals with `tutti
verify`, reads the servers' logs for FAILURE and late bundles, measures the
WAVs, and prints a report; the last line is one JSON object.

With --quit-member K, member K's scsynth is told to /quit at --quit-at
seconds: the others must play on, coherent.

With --late-member K, member K joins only --late-at seconds into the playing
(its server is up from the start, solo) and its client starts on the next bar
after that: the others' parts must reach its server whole (their synthdefs,
sound files, groups and buses, sent to it when it joins), so it too prints no
FAILURE, holds every part and records sound, and its journal matches the
others' from where it starts.

Every member's plugin checks, every half second of session time, that the
servers did the same thing with the events (each part's node tree, the
commands that failed): the report prints that server check, as the members
saw it live and as `tutti verify` finds it in the journals.

With --fault-member K, member K's server is made to differ at --fault-at
seconds: a group of another member's part is freed through scsynth's own
port, behind the session's back. The report then says how long each member
took to report the difference (it must within 2 s, naming the part and
member K's server) and `tutti verify` must say "not coherent"; --check fails
when either does not happen.

--check makes the exit status say whether everything a session promises held
(journals identical, every part on every server, no FAILURE, nothing late,
every client's replies as expected, sound in every recording). Every process
started here is stopped, by its pid, on the way out.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
from tuttilocal import (NODE_SPAN, Procs, clear_jack_shm, free_port, liblo, read,  # noqa: E402
                        request, scsynth_argv, scsynth_port_taken, tree_parts, tutti_status,
                        wait_for)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir")
    ap.add_argument("--example", default=os.path.join(TOP, "examples", "trio"))
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--parts", default="drums,bass,chords",
                    help="the example's parts, one a member, in turn")
    ap.add_argument("--buffers", default="read", choices=("read", "send"),
                    help="how the parts load their samples (part.py --buffers)")
    ap.add_argument("--out", help="where the WAVs, journals and logs go")
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--bpm", type=float, default=120.0)
    ap.add_argument("--horizon", type=float, default=150.0, help="L in ms")
    ap.add_argument("--lead", type=float, default=0.3,
                    help="seconds each client sends its bundles ahead (at least L)")
    ap.add_argument("--quit-member", type=int, default=0)
    ap.add_argument("--quit-at", type=float, default=3.0)
    ap.add_argument("--late-member", type=int, default=0)
    ap.add_argument("--late-at", type=float, default=4.0)
    ap.add_argument("--fault-member", type=int, default=0)
    ap.add_argument("--fault-at", type=float, default=4.0)
    ap.add_argument("--lead-in", type=float, default=5.0,
                    help="seconds from the launch of the clients to bar 0 (their set-up)")
    ap.add_argument("--session", default="tutti", help="the session's name")
    ap.add_argument("--open", action="store_true",
                    help="an open hub (no invitations; the links in clear)")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()

    tutti = os.path.abspath(a.tutti)
    plugin_dir = a.plugin_dir or os.path.join(os.path.dirname(tutti), "plugin")
    for tool in ("scsynth", "jackd", "jack_wait"):
        if not shutil.which(tool):
            sys.exit("localsession: %s is not installed (scripts/deps.sh installs it)" % tool)
    if not os.path.exists(os.path.join(plugin_dir, "TuttiProxy.so")):
        sys.exit("localsession: no TuttiProxy.so in %s (build the plugin first)" % plugin_dir)
    parts_script = os.path.join(a.example, "part.py")
    part_names = a.parts.split(",")
    work = os.path.abspath(a.out) if a.out else tempfile.mkdtemp(prefix="tutti-session.")
    os.makedirs(work, exist_ok=True)
    procs = Procs(work)
    # A fixed name: JACK's registry holds 8 servers and frees the entry of one
    # that died only when a server of the same name starts.
    jack = "tutti-localsession"
    env = dict(os.environ, JACK_DEFAULT_SERVER=jack, JACK_NO_START_SERVER="1")
    report = {"members": a.members, "out": work}
    problems = []
    jack_ours = False

    try:
        say = lambda *x: print(*x, flush=True)  # noqa: E731
        say("tutti: a local session of %d members playing %s" %
            (a.members, os.path.basename(os.path.normpath(a.example))))
        # Another local session may hold the JACK server's name: wait for it
        # rather than share its server (and clear its shared memory after).
        for attempt in range(90):
            jackd = procs.start("jackd", ["jackd", "-r", "-d", "dummy", "-r", "48000", "-p",
                                          "256"], env)
            time.sleep(0.5)
            if jackd.poll() is None:
                break
            out = read(os.path.join(work, "jackd.out"))
            if "Too many servers" in out:
                # JACK's registry has 8 places, and a server that died
                # without unregistering keeps its place until a server of
                # the same name starts again.
                raise RuntimeError(
                    "jackd did not start: JACK's registry of 8 servers is full (servers "
                    "still running, or ones that died and kept their place). Stop the "
                    "JACK servers you do not need; with none running, "
                    "`rm -rf /dev/shm/jack-* /dev/shm/jack_*` clears the registry")
            if "already active" not in out:
                raise RuntimeError("jackd did not start: " + read(os.path.join(work, "jackd.out")))
            if attempt == 0:
                say("waiting for another local session to finish (JACK server %s)" % jack)
            time.sleep(2)
        else:
            raise RuntimeError("the JACK server %s stayed busy for 3 minutes" % jack)
        if subprocess.run(["jack_wait", "-w", "-t", "10"], env=env,
                          capture_output=True).returncode or jackd.poll() is not None:
            raise RuntimeError("jackd did not start: " + read(os.path.join(work, "jackd.out")))
        jack_ours = True

        url_file = os.path.join(work, "hub.url")
        if os.path.exists(url_file):  # an earlier session's, in a reused --out
            os.unlink(url_file)
        # As on a public hub: the hub has its own key and admits only the
        # holders of its invitations, one per member, made afresh for every
        # run (a reused --out gets a new key); every link is then encrypted.
        keys = os.path.join(work, "hubkeys")
        shutil.rmtree(keys, ignore_errors=True)
        invites = {}
        hub_argv = [tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--session", a.session,
                    "--url-file", url_file,
                    "--horizon", str(a.horizon), "--bpm", str(a.bpm), "--quiet"]
        if not a.open:
            for k in range(1, a.members + 1):
                path = os.path.join(work, "member%d.invite" % k)
                r = subprocess.run([tutti, "invite", "--keys", keys, "--role", "performer",
                                    "--expires", "3600", "--out", path],
                                   capture_output=True, text=True, timeout=30)
                if r.returncode:
                    raise RuntimeError("tutti invite failed: " + r.stderr.strip())
                invites["member%d" % k] = path
            hub_argv += ["--keys", keys]
        hub = procs.start("hub", hub_argv, env)
        url = wait_for(lambda: read(url_file).strip(), 10, "the hub")
        say("hub: %s  (L = %g ms; %s)" % (url, a.horizon, "open, links in clear" if a.open else
                                         "%d invitations, links encrypted" % a.members))

        def start_server(s):
            s["proc"] = procs.start(s["name"], scsynth_argv(s["port"], plugin_dir), s["env"])

        servers = []
        for k in range(1, a.members + 1):
            name = "member%d" % k
            port = free_port()
            # each server its own asset cache, as on machines of their own
            # and shares only files from this session's folder (the samples)
            senv = dict(env, TUTTI_PROXY_PORT="0", TUTTI_CACHE=os.path.join(work, name + "-cache"),
                        TUTTI_SHARE_DIRS=work)
            journal = os.path.join(work, name + ".journal")
            # an earlier run's journals in a reused --out go: the plugin keeps
            # a journal it finds and writes beside it (PATH.2, ...), and this
            # run's verify reads PATH
            for old in [journal] + [os.path.join(work, f) for f in os.listdir(work)
                                    if re.fullmatch(re.escape(name) + r"\.journal\.\d+", f)]:
                if os.path.exists(old):
                    os.unlink(old)
            if k < a.members and k != a.late_member:  # the others join with `tutti join`
                senv.update(TUTTI_HUB=url, TUTTI_NAME=name, TUTTI_SESSION=a.session,
                            TUTTI_JOURNAL=journal)
                if name in invites:
                    senv.update(TUTTI_INVITE=invites[name])
            servers.append({"name": name, "port": port, "env": senv, "journal": journal,
                            "log": os.path.join(work, name + ".out")})
            start_server(servers[-1])
        for s in servers:
            for attempt in range(3):
                m = wait_for(lambda: (re.search(r"proxy listening on 127\.0\.0\.1:(\d+)",
                                                read(s["log"])) or
                                      scsynth_port_taken(s["proc"], s["log"])),
                             30, s["name"] + "'s proxy")
                if m is not True:
                    break
                if attempt == 2:
                    raise RuntimeError("%s: no port of its own in 3 tries" % s["name"])
                # another process took the port between its choice and the
                # server's bind: choose again
                say("%s: port %d was taken, starting again on another" % (s["name"], s["port"]))
                s["port"] = free_port()
                start_server(s)
            s["proxy"] = int(m.group(1))
        late = servers[a.late_member - 1] if a.late_member else None

        def join(s, members):
            cred = ["--invite", invites[s["name"]]] if s["name"] in invites else []
            r = subprocess.run([tutti, "join", "--proxy", str(s["proxy"]), "--hub", url,
                                "--session", a.session, "--name", s["name"], "--journal",
                                s["journal"]] + cred,
                               capture_output=True, text=True, timeout=30)
            if r.returncode:
                raise RuntimeError("tutti join failed: " + r.stderr.strip())

        def joined(s, members):
            # joined, and its clock locked: until then the plugin cannot stamp
            # a client's packets and refuses them ("not joined yet")
            st = wait_for(lambda: (lambda x: x if x and x.get("mode") == "session" and
                                   x.get("members") == members and
                                   x.get("clock_locked") else None)(
                tutti_status(tutti, s["proxy"])), 20, s["name"] + " to join")
            s["id"], s["part"] = st["id"], st["part"]
            s["sealed"] = bool(st.get("sealed"))
            say("%s: scsynth on %d, proxy on %d, member %d, part %d, %s, link %s, clock "
                "%+.3f ms (+/- %.3f)" %
                (s["name"], s["port"], s["proxy"], st["id"], st["part"], st.get("role"),
                 "encrypted" if s["sealed"] else "in clear", st["clock_offset_ms"],
                 st["clock_bound_ms"]))

        now_members = a.members - (1 if late else 0)
        if servers[-1] is not late:
            join(servers[-1], now_members)
        for s in servers:
            if s is not late:
                joined(s, now_members)

        beat = 60.0 / a.bpm
        play_s = a.bars * 4 * beat
        start = time.time() + a.lead_in
        for s in servers:
            s["wav"] = os.path.join(work, s["name"] + ".wav")
            s["rec"] = procs.start(s["name"] + "-rec", [
                sys.executable, os.path.join(TOP, "examples", "osc", "record.py"), "--port",
                str(s["port"]), "--seconds", "%.1f" % (play_s + 4.0), "--out", s["wav"]], env)
        time.sleep(0.5)
        clients = []

        def play(k, s, at, bars):
            part = part_names[k % len(part_names)]
            s["client"] = part
            clients.append(procs.start(s["name"] + "-" + part, [
                sys.executable, parts_script, "--part", part, "--port", str(s["proxy"]),
                "--start", "%.6f" % (at + 2208988800.0), "--bpm", str(a.bpm), "--bars",
                str(bars), "--lead", str(a.lead), "--buffers", a.buffers, "--samples",
                os.path.join(work, "samples-" + s["name"])], env))

        for k, s in enumerate(servers):
            if s is not late:
                play(k, s, start, a.bars)
        say("playing %d bars at %g bpm from %s" % (a.bars, a.bpm,
                                                  time.strftime("%H:%M:%S", time.localtime(start))))
        if late:
            # Joins mid-way; plays from the next bar it can make.
            time.sleep(max(0.0, start + a.late_at - time.time()))
            join(late, a.members)
            joined(late, a.members)
            late_joined = time.time()
            bar = 4 * beat
            first = int((time.time() + 3.0 - start) / bar + 0.999)
            if first >= a.bars:
                raise RuntimeError("%s joined too late to play (use more --bars)" % late["name"])
            late_start = start + first * bar
            play(a.late_member - 1, late, late_start, a.bars - first)
            say("%s: joined %.1f s into the playing; plays bars %d-%d" %
                (late["name"], time.time() - start, first + 1, a.bars))
            # The others' parts are there before its own plays: asked until
            # they are, or until its first bar is near (on a loaded machine
            # the states take longer than on a quiet one to arrive)
            others = {str(s["part"]) for s in servers if s is not late}
            while True:
                parts = tree_parts(late["port"])
                late["tree_at_join"] = {str(k): len(v) for k, v in sorted((parts or {}).items())}
                late["parts_after_s"] = round(time.time() - late_joined, 2)
                if others <= set(late["tree_at_join"]) or time.time() > late_start - a.lead - 0.2:
                    break
                time.sleep(0.2)
        # Halfway (or once the late member plays): every server's tree holds
        # every part.
        check_at = start + play_s / 2
        if late:
            check_at = max(check_at, late_start + 1.0)
        time.sleep(max(0.0, check_at - time.time()))
        for s in servers:
            parts = tree_parts(s["port"])
            s["tree"] = {str(k): len(v) for k, v in sorted((parts or {}).items())}
        if a.quit_member:
            time.sleep(max(0.0, start + a.quit_at - time.time()))
            q = servers[a.quit_member - 1]
            request(q["port"], ("/quit",), "/done")
            say("%s: scsynth told to /quit" % q["name"])
        def fault(servers, start):
            """Frees a group of another member's part on member K's server,
            through scsynth's own port; then waits for the members to say so."""
            time.sleep(max(0.0, start + a.fault_at - time.time()))
            victim = servers[a.fault_member - 1]
            other = servers[a.fault_member % a.members]
            args = request(victim["port"], ("/g_queryTree", 0, 0), "/g_queryTree.reply") or []
            groups, i = [], 1
            while i + 1 < len(args):
                node, n = args[i], args[i + 1]
                i += 3 if n == -1 else 2
                if n >= 0 and node // NODE_SPAN == other["part"] and node % NODE_SPAN:
                    groups.append(node)
            if not groups:
                problems.append("fault: no group of %s's part on %s" % (other["name"],
                                                                       victim["name"]))
                return
            node = groups[-1]
            liblo.send(("127.0.0.1", victim["port"]), "/n_free", node)
            t0 = time.time()
            say("fault: %s's server freed node %d (%s's part %d, its id %d) through "
                "scsynth's own port" % (victim["name"], node, other["name"], other["part"],
                                        node % NODE_SPAN))
            seen = {}
            while time.time() < t0 + 5.0 and len(seen) < a.members:
                for s in servers:
                    if s["name"] in seen:
                        continue
                    st = tutti_status(tutti, s["proxy"]) or {}
                    if st.get("check_diffs"):
                        seen[s["name"]] = (time.time() - t0, st.get("check_last"))
                time.sleep(0.05)
            report["fault"] = {"server": victim["name"], "node": node, "part": other["part"],
                               "reported": {k: {"after_s": round(v[0], 3), "text": v[1]}
                                            for k, v in seen.items()}}
            for s in servers:
                if s["name"] not in seen:
                    problems.append("fault: %s did not report the difference in 5 s" % s["name"])
                    continue
                after, text = seen[s["name"]]
                say("fault: %s reported it after %.2f s: %s" % (s["name"], after, text))
                # polled: the difference was there before the status said so
                if after > 2.0:
                    problems.append("fault: %s reported it only after %.2f s" % (s["name"], after))
                if ("part %d" % other["part"]) not in (text or "") or \
                        victim["name"] not in (text or ""):
                    problems.append("fault: %s's report does not name part %d and %s: %s" %
                                    (s["name"], other["part"], victim["name"], text))

        if a.fault_member:
            fault(servers, start)

        for c in clients:
            try:
                c.wait(max(5.0, start + play_s + 20 - time.time()))
            except subprocess.TimeoutExpired:
                problems.append("%s did not finish" % c.name)
                procs.stop(c)
        for s in servers:
            try:
                s["rec"].wait(max(1.0, start + play_s + 10 - time.time()))
            except subprocess.TimeoutExpired:
                procs.stop(s["rec"])
        alive = [s for s in servers if s["proc"].poll() is None]
        for s in alive:
            st = tutti_status(tutti, s["proxy"]) or {}
            s["status"] = st
            subprocess.run([tutti, "leave", "--proxy", str(s["proxy"])], capture_output=True,
                           timeout=10)
        for s in alive:
            request(s["port"], ("/quit",), "/done")
        for s in servers:
            try:
                s["proc"].wait(10)
            except subprocess.TimeoutExpired:
                procs.stop(s["proc"])
        procs.stop(hub)

        # ---------------------------------------------------------- report
        journals = [s["journal"] for s in alive if os.path.exists(s["journal"])]
        v = subprocess.run([tutti, "verify"] + journals, capture_output=True, text=True)
        coherent = v.returncode == 0 and len(journals) == len(alive)
        stream_same = v.stdout.startswith("identical")
        report["coherent"] = coherent
        report["verify"] = v.stdout.strip() or v.stderr.strip()
        say("")
        say("coherence: %s" % ("COHERENT: every server executed the same events in the same "
                               "order" if coherent else "NOT COHERENT: " + report["verify"]))
        # the server check: as the members saw it live, and in the journals
        said = []
        for s in servers:
            for line in read(s["log"]).splitlines():
                if line.startswith("tutti: server check: "):
                    said.append("%s: %s" % (s["name"], line[len("tutti: server check: "):]))
        checks = {s["name"]: s.get("status", {}) for s in alive}
        vlines = [l.strip() for l in v.stdout.splitlines()
                  if l.startswith(("servers:", "not coherent", "  round"))]
        report["server_check"] = {
            "live": {k: {"state": st.get("server_check"), "rounds": st.get("checks"),
                         "identical": st.get("checks_identical"),
                         "differences": st.get("check_diffs"), "servers": st.get("check_servers"),
                         "skipped": st.get("check_skipped"),
                         "last": st.get("check_last")} for k, st in checks.items()},
            "logged": said, "verify": vlines}
        say("server check (node trees and failures, every 0.5 s of session time):")
        for k, st in checks.items():
            say("  %-8s %-9s %s rounds compared (%s servers), %s identical, %s differences, "
                "%s not asked of this server (too little lead)%s" %
                (k, st.get("server_check"), st.get("checks"), st.get("check_servers"),
                 st.get("checks_identical"), st.get("check_diffs"), st.get("check_skipped"),
                 (": " + st.get("check_last")) if st.get("check_last") else ""))
        for line in said[:6]:
            say("  said live by %s" % line)
        if len(said) > 6:
            say("  ... %d more lines in the servers' logs" % (len(said) - 6))
        for line in vlines[:6]:
            say("  tutti verify: %s" % line)
        if a.fault_member:
            if stream_same and v.returncode != 0 and any(l.startswith("not coherent")
                                                         for l in vlines):
                say("  fault: the same stream everywhere, and tutti verify says not coherent")
            else:
                problems.append("fault: tutti verify did not say 'not coherent' for the "
                                "servers: %s" % report["verify"])
        else:
            for k, st in checks.items():
                if st.get("check_diffs"):
                    problems.append("%s: the server check found servers that differ: %s" %
                                    (k, st.get("check_last")))
                elif not st.get("checks") and len(alive) > 1:
                    problems.append("%s: the server check compared no round" % k)
            if said:
                problems.append("the servers' logs report differences: " + said[0])
        parts_all = sorted({str(s["part"]) for s in servers})
        rows = []
        for s in servers:
            log = read(s["log"])
            failures = len(re.findall(r"FAILURE", log))
            late = len(re.findall(r"^late ", log, re.M))
            client_out = read(os.path.join(work, s["name"] + "-" + s["client"] + ".out"))
            summary = {}
            for line in client_out.splitlines():
                if line.startswith("{"):
                    try:
                        summary = json.loads(line)
                    except ValueError:
                        pass
            stat = {}
            if os.path.exists(s["wav"]):
                w = subprocess.run([sys.executable, os.path.join(TOP, "examples", "osc",
                                                                 "wavstat.py"), s["wav"]],
                                   capture_output=True, text=True)
                try:
                    stat = json.loads(w.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    stat = {}
            st = s.get("status", {})
            row = {"member": s["name"], "part": s["part"], "client": s["client"],
                   "quit": s["proc"] not in [x["proc"] for x in alive],
                   "tree_nodes_by_part": s.get("tree", {}),
                   "delivered": st.get("delivered"), "late_events": st.get("late"),
                   "held_for_state": st.get("held"), "states_sent": st.get("states_sent"),
                   "tree_at_join": s.get("tree_at_join"),
                   "parts_after_s": s.get("parts_after_s"),
                   "role": st.get("role"), "sealed": bool(st.get("sealed")),
                   "hub_verified": bool(st.get("hub_verified")),
                   "unsealed_dropped": st.get("unsealed_dropped"),
                   "scsynth_late": late, "scsynth_failures": failures,
                   "client_ok": summary.get("ok", False) if summary else False,
                   "client": summary, "wav": s["wav"], "wav_rms": stat.get("rms"),
                   "wav_peak": stat.get("peak")}
            rows.append(row)
            say("%-8s part %-2s %-7s delivered %-5s late %-3s scsynth late %d, FAILURE %d, "
                "client %s, nodes by part at half time %s, WAV rms %s -> %s" %
                (s["name"], s["part"], s["client"], st.get("delivered"), st.get("late"),
                 late, failures, "ok" if row["client_ok"] else "NOT OK", row["tree_nodes_by_part"],
                 row["wav_rms"], s["wav"]))
            # a `late` line fails the run on any server, one that quit included
            if late or st.get("late_injected"):
                problems.append("%s: scsynth played bundles late (%d lines, %s handed over "
                                "after their time)" % (s["name"], late, st.get("late_injected")))
            if row["quit"]:
                continue
            if not a.open and not (row["sealed"] and row["hub_verified"]):
                problems.append("%s: its link to the hub was not encrypted, or the hub not "
                                "checked against its invitation's key" % s["name"])
            if failures and not (a.fault_member and s["name"] == servers[a.fault_member - 1]["name"]):
                problems.append("%s: scsynth printed FAILURE" % s["name"])
            if not row["client_ok"]:
                problems.append("%s: its client (%s) did not get what it expected" %
                                (s["name"], s["client"]))
            if summary.get("foreign_notifications"):
                # a client hears of its own part's nodes only
                problems.append("%s: its client heard of nodes not its own: %s" %
                                (s["name"], summary.get("foreign_examples")))
            missing = [p for p in parts_all if p not in row["tree_nodes_by_part"]]
            if missing and not a.quit_member:
                problems.append("%s: no nodes of part(s) %s in its tree" %
                                (s["name"], ",".join(missing)))
            if not stat or not max(stat.get("rms") or [0]) > 1e-3:
                problems.append("%s: its recording is silent" % s["name"])
        if not coherent and not (a.fault_member and stream_same):
            problems.append("journals differ: " + report["verify"])
        report["servers"] = rows
        report["problems"] = problems
        report["ok"] = not problems
        say("problems: %s" % ("none" if not problems else "; ".join(problems)))
        say("recordings, journals and logs: %s" % work)
        print(json.dumps(report), flush=True)
        return 1 if (a.check and problems) else 0
    finally:
        procs.stop_all()
        if jack_ours:
            clear_jack_shm(jack)
        for s in locals().get("servers", []):
            try:
                os.unlink("/dev/shm/SuperColliderServer_%d" % s["port"])
            except OSError:
                pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        print("localsession: %s" % e, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
