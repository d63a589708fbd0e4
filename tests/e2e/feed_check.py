#!/usr/bin/env python3
"""The plugin's session feed with real servers (run by plugin_feed_test.sh).

    feed_check.py --tutti T --plugin-dir D --work W --hub URL --change-lead MS

Starts two scsynth servers with the plugin on the JACK server in the
environment: m1 joins the hub as a conductor at start, m2 starts solo. Python
clients subscribe to the feed on each proxy (`/cmd tutti notify 1`) and check
what docs/plugin.md ("The session feed") says, as a client sees it: the
state at subscription; m2's join as /tutti/session and /tutti/members at both;
a performer's tempo proposal refused in words; the conductor's tempo change
announced at both members before it takes effect, by at least the change lead
less 100 ms, with the same instant and beat, on a bar line that continues the
old grid, in a bundle timetagged with its instant; the status values as
numbers that agree; a transport start; unsubscribing; a TCP subscriber that
goes with its connection; a leave after which the local grid goes on from the
session's beat; no FAILURE or late in the servers' logs. Prints one line per
check; exits 1 at the first that fails.
"""
import argparse
import os
import re
import select
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "osc"))
import tuttiosc  # noqa: E402
from tuttilocal import Procs, free_port, read, scsynth_argv, scsynth_port_taken, wait_for  # noqa: E402

NTP_UNIX = 2208988800


class Client:
    """A feed subscriber: every message it receives, with the wall time it
    came and the timetag of the bundle it came in (None for a message)."""

    def __init__(self, name, port, tcp=False):
        self.name = name
        self.conn = tuttiosc.Tcp(port) if tcp else tuttiosc.Udp(port)
        self.got = []

    def send(self, *msg):
        self.conn.send(tuttiosc.message(*msg))

    def take(self, pkt, at):
        if pkt.startswith(b"#bundle\0"):
            tt, items = tuttiosc.unbundle(pkt)
            for it in items:
                addr, args = tuttiosc.decode(it)
                self.got.append((at, tt, addr, args))
        else:
            addr, args = tuttiosc.decode(pkt)
            self.got.append((at, None, addr, args))

    def sock(self):
        return self.conn.s


def pump(clients, seconds):
    """Reads whatever comes to the clients for `seconds`."""
    end = time.monotonic() + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return
        r, _, _ = select.select([c.sock() for c in clients], [], [], left)
        for c in clients:
            if c.sock() not in r:
                continue
            if isinstance(c.conn, tuttiosc.Tcp):
                # every whole packet that has come (the stream may hold several)
                while True:
                    pkt = c.conn.recv(0.01)
                    if pkt is None:
                        break
                    c.take(pkt, time.time())
            else:
                c.take(c.sock().recv(65536), time.time())


def wait_msg(clients, pred, seconds, what):
    """Pumps until every client has a message for which pred(client, msg) is
    true (looking at everything received so far); returns them by client."""
    end = time.monotonic() + seconds
    while True:
        found = {}
        for c in clients:
            for m in c.got:
                if pred(c, m):
                    found[c.name] = m
                    break
        if len(found) == len(clients):
            return found
        if time.monotonic() > end:
            fail("timed out waiting for %s (got %s)" % (what, sorted(found)))
        pump(clients, 0.05)


def fail(why):
    print("FAIL: " + why, flush=True)
    sys.exit(1)


def ok(what):
    print("ok: " + what, flush=True)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def status(port):
    args = None
    for _ in range(3):
        args = tuttiosc_request(port, tuttiosc.message("/cmd", "tutti", "status"), "/tutti/status")
        if args is not None:
            break
    if args is None:
        fail("no /tutti/status from proxy %d" % port)
    return dict(zip(args[0::2], args[1::2]))


def tuttiosc_request(port, msg, want, timeout=3.0):
    c = tuttiosc.Udp(port)
    try:
        c.send(msg)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            b = c.recv(end - time.monotonic())
            if b is None:
                return None
            addr, args = tuttiosc.decode(b)
            if addr == want:
                return args
    finally:
        c.close()
    return None


def timelines(c):
    return [m for m in c.got if m[2] == "/tutti/timeline"]


def beat_at(tl_args, w):
    """A /tutti/timeline's beat at wall time w (seconds since 1970)."""
    seq, at_s, at_l, beat, bpm, q, playing = tl_args
    return beat + (w - at_l) * bpm / 60.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tutti", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--hub", required=True)
    ap.add_argument("--change-lead", type=float, required=True, help="ms")
    a = ap.parse_args()
    lead = a.change_lead / 1000.0
    procs = Procs(a.work)
    try:
        run(a, procs, lead)
    finally:
        procs.stop_all()


def start_servers(a, procs):
    servers = []
    for name, env in (("m1", {"TUTTI_HUB": a.hub, "TUTTI_NAME": "m1", "TUTTI_SESSION": "feed",
                              "TUTTI_ROLE": "conductor"}),
                      ("m2", {})):
        s = {"name": name, "log": os.path.join(a.work, name + ".out"),
             "env": dict(os.environ, TUTTI_PROXY_PORT="0",
                         TUTTI_CACHE=os.path.join(a.work, name + "-cache"), **env)}
        for attempt in range(3):
            s["port"] = free_port()
            s["proc"] = procs.start(name, scsynth_argv(s["port"], a.plugin_dir), s["env"])
            m = wait_for(lambda: (re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", read(s["log"]))
                                  or scsynth_port_taken(s["proc"], s["log"])), 30, name + "'s proxy")
            if m is not True:
                break
        else:
            fail(name + ": no port of its own in 3 tries")
        s["proxy"] = int(m.group(1))
        servers.append(s)
    return servers


def run(a, procs, lead):
    s1, s2 = start_servers(a, procs)
    c1 = Client("c1", s1["proxy"])
    c2 = Client("c2", s2["proxy"])

    # Subscribing answers /done and gives the whole state at once.
    c2.send("/cmd", "tutti", "notify", 1)
    got = wait_msg([c2], lambda c, m: m[2] == "/tutti/timeline", 5, "m2's first timeline")
    addrs = [m[2] for m in c2.got]
    if addrs[:4] != ["/done", "/tutti/session", "/tutti/members", "/tutti/timeline"]:
        fail("subscribing answered %s" % addrs[:4])
    if c2.got[0][3] != ["/cmd", "tutti notify"]:
        fail("the /done says %r" % c2.got[0][3])
    sess = c2.got[1][3]
    if sess[0] != "solo" or not all(is_num(x) for x in sess[1:6]) or abs(sess[2] - 0.2) > 1e-9:
        fail("solo /tutti/session: %r" % sess)
    tl = got["c2"][3]
    if len(tl) != 7 or not all(is_num(x) for x in tl) or tl[4] != 120.0 or tl[5] != 4.0:
        fail("solo /tutti/timeline: %r" % tl)
    ok("a solo server's feed: /done, then mode solo (latency 0.2 s), no members, the local "
       "grid (120 bpm, 4 beats a bar), every value a number")

    c1.send("/cmd", "tutti", "notify", 1)
    wait_msg([c1], lambda c, m: m[2] == "/tutti/session" and m[3][0] == "session", 20,
             "m1 in the session")
    # m2 joins: both feeds say so.
    c2.send("/cmd", "tutti", "join", a.hub, "feed", "m2")
    wait_msg([c2], lambda c, m: m[2] == "/done" and m[3] == ["/cmd", "tutti join"], 5, "the join's /done")
    both = wait_msg([c1, c2], lambda c, m: m[2] == "/tutti/session" and m[3][0] == "session" and
                    m[3][3] == 2, 20, "a session of two at both")
    for name, m in both.items():
        mode, horizon, latency, members, mid, part, role = m[3]
        if not (horizon > 0 and abs(latency - (horizon + 0.05)) < 1e-6 and mid > 0 and part > 0):
            fail("%s's /tutti/session: %r" % (name, m[3]))
    if both["c1"][3][6] != "conductor" or both["c2"][3][6] != "performer":
        fail("roles: %r %r" % (both["c1"][3][6], both["c2"][3][6]))
    mem = wait_msg([c1, c2], lambda c, m: m[2] == "/tutti/members" and len(m[3]) == 6, 5,
                   "both members listed")
    if sorted(mem["c1"][3][1::3]) != ["m1", "m2"] or mem["c1"][3] != mem["c2"][3]:
        fail("/tutti/members: %r / %r" % (mem["c1"][3], mem["c2"][3]))
    ok("m2's join: mode session with 2 members, L, latency = L + 0.05 s, roles, and the same "
       "member list at both")
    # Both now have the session's timeline: the same at both.
    pump([c1, c2], 0.5)
    last1, last2 = timelines(c1)[-1][3], timelines(c2)[-1][3]
    if last1[1] != last2[1] or last1[3:] != last2[3:]:
        fail("the session's timeline differs: %r / %r" % (last1, last2))

    # A performer may not change the tempo: told at once, in words.
    mark = (len(c1.got), len(c2.got))
    c2.send("/cmd", "tutti", "bpm", 150.0)
    f = wait_msg([c2], lambda c, m: m[2] in ("/fail", "/done") and c.got.index(m) >= mark[1], 5,
                 "the answer to the performer's proposal")["c2"]
    if f[2] != "/fail" or "conductor" not in f[3][1]:
        fail("a performer's proposal answered %r" % (f[2:],))
    ok("a performer's tempo proposal: /fail \"%s\"" % f[3][1])

    # The conductor's change: announced at both, before it takes effect.
    old = last1
    mark = (len(c1.got), len(c2.got))
    asked = time.time()
    c1.send("/cmd", "tutti", "bpm", 150.0)
    d = wait_msg([c1], lambda c, m: m[2] in ("/fail", "/done") and c.got.index(m) >= mark[0], 5,
                 "the answer to the conductor's proposal")["c1"]
    if d[2:] != ("/done", ["/cmd", "tutti bpm"]):
        fail("the conductor's proposal answered %r" % (d[2:],))
    ann = wait_msg([c1, c2], lambda c, m: m[2] == "/tutti/timeline" and m[3][4] == 150.0, 10,
                   "the tempo change at both")
    a1, a2 = ann["c1"], ann["c2"]
    if a1[3][1] != a2[3][1] or a1[3][3:] != a2[3][3:]:
        fail("the change differs between members: %r / %r" % (a1[3], a2[3]))
    seq, at_s, at_l, beat, bpm, q, playing = a1[3]
    if beat % q != 0:
        fail("the change is not on a bar line: beat %r, quantum %r" % (beat, q))
    cont = old[3] + (at_s - old[1]) * old[4] / 60.0
    if abs(cont - beat) > 1e-4:
        fail("the beat jumps at the change: the old grid says %.6f, the change %.6f" % (cont, beat))
    if seq <= old[0]:
        fail("seq did not grow: %r after %r" % (seq, old[0]))
    for m in (a1, a2):
        tt_unix = m[1] / 4294967296.0 - NTP_UNIX
        if abs(tt_unix - m[3][2]) > 2e-6:
            fail("the bundle's timetag %.6f is not at_local %.6f" % (tt_unix, m[3][2]))
        ahead = m[3][2] - m[0]
        if ahead < lead - 0.1:
            fail("%s heard of the change %.3f s before it took effect (the change lead is %.3f s)"
                 % ("c1" if m is a1 else "c2", ahead, lead))
    ahead = min(a1[3][2] - a1[0], a2[3][2] - a2[0])
    ok("a tempo change to 150 bpm, asked at %.3f: announced at both members %.3f s before it "
       "takes effect (change lead %.3f s) at beat %g, a bar line continuing the old grid, "
       "in bundles timetagged with its instant" % (asked, ahead, lead, beat))
    # The status says the same, in numbers.
    st = status(s2["proxy"])
    for k in ("timeline_t0_ns", "timeline_beat0", "bpm", "quantum", "bar_phase", "horizon_ms",
              "latency_ms", "next_t0_ns", "next_bpm", "change_pending", "timeline_seq"):
        if not is_num(st.get(k)):
            fail("status %s is %r, not a number" % (k, st.get(k)))
    if time.time() < at_l - 0.05:
        if not (st["change_pending"] == 1 and st["next_bpm"] == 150.0 and
                abs(st["next_t0_ns"] / 1e9 - at_s) < 2e-6 and st["next_beat0"] == beat):
            fail("m2's status does not show the pending change: %r" %
                 {k: st[k] for k in st if k.startswith("next") or k == "change_pending"})
    wait = at_l - time.time() + 0.1
    if wait > 0:
        time.sleep(wait)
    st = status(s2["proxy"])
    if st["bpm"] != 150.0 or abs(st["timeline_t0_ns"] / 1e9 - at_s) > 2e-6 or \
            st["timeline_beat0"] != beat or st["change_pending"] != 0:
        fail("m2's status after the change: bpm %r t0 %r beat0 %r" %
             (st["bpm"], st["timeline_t0_ns"], st["timeline_beat0"]))
    ok("m2's /tutti/status: the pending change, then the timeline in force, as numbers "
       "(timeline_t0_ns a double)")

    # Transport start, at a bar line, known as far ahead.
    c1.send("/cmd", "tutti", "transport", 1)
    ann = wait_msg([c1, c2], lambda c, m: m[2] == "/tutti/timeline" and m[3][6] == 1, 10,
                   "the transport start at both")
    for m in ann.values():
        if m[3][3] % m[3][5] != 0 or m[3][2] - m[0] < lead - 0.1 or m[3][4] != 150.0:
            fail("the transport start: %r heard %.3f s ahead" % (m[3], m[3][2] - m[0]))
    ok("a transport start: at a bar line, at both, %.3f s ahead" %
       min(m[3][2] - m[0] for m in ann.values()))

    # Unsubscribing: no more timelines for c2.
    c2.send("/cmd", "tutti", "notify", 0)
    mark2 = len(c2.got)
    wait_msg([c2], lambda c, m: m[2] == "/done" and m[3] == ["/cmd", "tutti notify"] and
             c.got.index(m) >= mark2, 5, "the unsubscription's /done")
    mark2 = len(c2.got)
    c1.send("/cmd", "tutti", "bpm", 100)
    wait_msg([c1], lambda c, m: m[2] == "/tutti/timeline" and m[3][4] == 100.0, 10,
             "the change to 100 bpm at c1")
    pump([c1, c2], 1.0)
    if any(m[2] == "/tutti/timeline" for m in c2.got[mark2:]):
        fail("c2 unsubscribed and still got a timeline")
    ok("after /cmd tutti notify 0 nothing more comes")

    # A TCP subscriber goes with its connection.
    t = Client("tcp", s1["proxy"], tcp=True)
    t.send("/cmd", "tutti", "notify", 1)
    wait_msg([t], lambda c, m: m[2] == "/tutti/timeline", 5, "the TCP subscriber's state")
    n = status(s1["proxy"]).get("feed_clients")
    t.conn.close()
    time.sleep(0.5)
    n2 = status(s1["proxy"]).get("feed_clients")
    if n != 2 or n2 != 1:
        fail("feed_clients %r with the TCP subscriber, %r after it closed" % (n, n2))
    ok("a TCP subscriber gets the state over TCP and is forgotten when it closes")

    # Leaving: the local grid goes on from the session's beat.
    heard = {}
    for m in timelines(c1):  # the last word about each instant
        heard[m[3][1]] = m[3]
    c1.send("/cmd", "tutti", "leave")
    mark1 = len(c1.got)
    solo = wait_msg([c1], lambda c, m: m[2] == "/tutti/session" and m[3][0] == "solo" and
                    c.got.index(m) >= mark1, 10, "m1's feed saying solo")
    after = wait_msg([c1], lambda c, m: m[2] == "/tutti/timeline" and c.got.index(m) > c.got.index(
        solo["c1"]), 5, "m1's local grid")["c1"]
    now = time.time()
    # the session's timeline in force now, as c1 last heard it
    sess_tl = max((t for t in heard.values() if t[2] <= now), key=lambda x: x[2])
    db = abs(beat_at(after[3], now) - beat_at(sess_tl, now))
    if after[3][4] != sess_tl[4] or db > 0.002:
        fail("after leaving the beat moved by %.4f beats (%r then %r)" % (db, sess_tl, after[3]))
    ok("after a leave the feed says solo and the local grid goes on from the session's beat "
       "(%.2g beats apart)" % db)

    for s in (s1, s2):
        log = read(s["log"])
        bad = [l for l in log.splitlines() if "FAILURE" in l or re.search(r"\blate\b", l)]
        if bad:
            fail("%s's scsynth says: %s" % (s["name"], bad[:3]))
    ok("no FAILURE or late in either server's log")


if __name__ == "__main__":
    main()
