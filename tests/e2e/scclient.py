#!/usr/bin/env python3
"""A small scsynth client for the plugin's end-to-end tests (the standard library;
python3-liblo for status, tutti-status and quit).

    scclient.py sequence --port P [--tcp] --out FILE   the recorded client sequence
    scclient.py pair --port P --out FILE               two clients at once
    scclient.py tcp-notify --port P                   a TCP client registers and leaves
    scclient.py flood --port P --seconds S [--seed N]  malformed OSC, UDP and TCP
    scclient.py status --port P [--tries N]            one /status; exit 0 if answered
    scclient.py tutti-status --port P                  the proxy's /cmd tutti status
    scclient.py quit --port P                          /quit, wait for /done

`sequence` writes one normalised reply per line, so two runs (straight to
scsynth and through the proxy) can be compared with diff. Each step is followed
by /sync and every reply up to its /synced is recorded: the replies of a step
are complete and in order before the next step starts.
"""
import argparse
import os
import random
import socket
import struct
import sys
import time

# OSC, transports and the SynthDef builder: examples/osc/tuttiosc.py
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "osc"))
from tuttiosc import SynthDef, Tcp, Udp, bundle, decode, message, osc_string  # noqa: E402
from tuttilocal import request  # noqa: E402


def synthdef(name):
    """An SCgf version 2 file (no sclang needed): two controls, freq and amp,
    into SinOsc * amp -> Out.ar(0)."""
    d = SynthDef(name)
    freq, amp = d.controls(freq=440.0, amp=0.0)
    d.ar("Out", 0, d.ar("SinOsc", freq, 0) * amp, outputs=0)
    return d.bytes()


# ------------------------------------------------------------- sequence


def normalise(msg):
    addr, args = msg
    if addr == "/status.reply":
        # unused, ugens, synths, groups, defs, avg cpu, peak cpu, nominal sr, actual sr
        args = list(args)
        for k in (5, 6, 8):
            if k < len(args):
                args[k] = "<varies>"
    return "%s %s" % (addr, " ".join(repr(a) for a in args))


def connect(args):
    return Tcp(args.port) if args.tcp else Udp(args.port)


def run_step(c, pkt, sync_id, out, timeout=5.0):
    if pkt is not None:
        c.send(pkt)
    c.send(message("/sync", sync_id))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        r = c.recv(max(left, 0.01)) if left > 0 else None
        if r is None:
            out.append("TIMEOUT waiting for /synced %d" % sync_id)
            return False
        m = decode(r)
        out.append(normalise(m))
        if m == ("/synced", [sync_id]):
            return True


def cmd_sequence(args):
    c = connect(args)
    out = []
    sdef = synthdef("tutti_sine")
    # Over TCP the sequence does not register for notifications: scsynth 3.13
    # leaves part of a TCP packet's ReplyAddress unset, so its registrations
    # of TCP clients are unreliable (notifications may never come, /notify 0
    # says "not registered") and cannot serve as the reference. The proxy's
    # handling of TCP clients' /notify is checked on its own (tcp-notify).
    steps = [
        message("/notify", 1),
        message("/status"),
        message("/d_recv", sdef),
        message("/g_new", 1, 0, 0),  # the default group, as sclang and Sonic Pi make it
        message("/s_new", "tutti_sine", 1000, 0, 1, "freq", 220.0),
        message("/n_set", 1000, "freq", 330.0, "amp", 0.0),
        message("/g_new", 2000, 0, 1),
        message("/s_new", "tutti_sine", 1001, 0, 2000),
        message("/n_query", 1000),
        message("/g_queryTree", 0, 1),
        message("/n_run", 1001, 0),
        message("/n_run", 1001, 1),
        # an immediate bundle, as sclang's s.bind sends them
        bundle(1, message("/n_set", 1001, "freq", 440.0), message("/n_query", 1001)),
        # a bundle 50 ms ahead: the step waits for it before its /sync
        lambda: bundle(int((time.time() + 2208988800 + 0.05) * 2**32),
                       message("/n_set", 1000, "freq", 550.0), message("/n_query", 1000)),
        message("/b_alloc", 7, 1024, 2),
        message("/b_query", 7),
        message("/n_free", 1001),
        message("/n_free", 1000),
        message("/g_freeAll", 2000),
        message("/n_free", 2000),
        message("/n_free", 1),
        message("/b_free", 7),
        message("/d_free", "tutti_sine"),
        message("/status"),
    ]
    steps.append(message("/notify", 0))
    if args.tcp:
        steps = steps[1:-1]
    ok = True
    for i, s in enumerate(steps):
        out.append("--- step %d" % i)
        if callable(s):  # a timed bundle: let it play before the /sync
            c.send(s())
            time.sleep(0.2)
            s = None
        if not run_step(c, s, 100 + i, out):
            ok = False
            break
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    return 0 if ok else 1


class Log:
    """Replies as normalised lines, with the name of the client that got them."""

    def __init__(self):
        self.lines = []

    def collect(self, c, name, until, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = c.recv(max(deadline - time.monotonic(), 0.01))
            if r is None:
                break
            m = decode(r)
            self.lines.append("%s: %s" % (name, normalise(m)))
            if m == until or (until[1] is None and m[0] == until[0]):
                return True
        self.lines.append("%s: TIMEOUT waiting for %r" % (name, until))
        return False

    def step(self, c, name, n, *msgs):
        for m in msgs:
            c.send(m)
        c.send(message("/sync", n))
        return self.collect(c, name, ("/synced", [n]))


def cmd_pair(args):
    """Two clients at once, both registered for notifications: each must get
    its own /notify answer (ids, "already registered", "not registered") and
    both must hear the /n_go and /n_end of a node the first one plays."""
    a, b = Udp(args.port), Udp(args.port)
    log = Log()
    ok = log.step(a, "a", 1, message("/notify", 1))
    ok &= log.step(b, "b", 2, message("/notify", 1, 5))  # asks for client id 5, as sclang does
    ok &= log.step(a, "a", 3, message("/notify", 1))  # again: "already registered"
    ok &= log.step(a, "a", 4, message("/d_recv", synthdef("tutti_pair")))
    ok &= log.step(a, "a", 5, message("/s_new", "tutti_pair", 4000, 0, 0), message("/n_free", 4000))
    ok &= log.collect(b, "b", ("/n_end", [4000, 0, -1, -1, 0]))
    ok &= log.step(b, "b", 9, message("/notify", 0))
    ok &= log.step(a, "a", 6, message("/notify", 0))
    ok &= log.step(a, "a", 7, message("/notify", 0))  # again: "not registered"
    ok &= log.step(a, "a", 8, message("/d_free", "tutti_pair"))
    with open(args.out, "w") as f:
        f.write("\n".join(log.lines) + "\n")
    return 0 if ok else 1


def cmd_tcp_notify(args):
    """A TCP client registers, hears a group another client makes and frees,
    and unregisters. Prints the TCP client's replies. (Through the proxy only:
    see cmd_sequence about scsynth's own TCP registrations.)"""
    a, b = Udp(args.port), Tcp(args.port)
    log = Log()
    ok = log.step(b, "tcp", 1, message("/notify", 1))
    a.send(message("/g_new", 4100, 0, 0))
    a.send(message("/n_free", 4100))
    ok &= log.collect(b, "tcp", ("/n_end", None))
    ok &= log.step(b, "tcp", 2, message("/notify", 0))
    print("\n".join(log.lines))
    return 0 if ok else 1


def cmd_flood(args):
    rnd = random.Random(args.seed)
    udp = Udp(args.port)
    sent = 0
    deadline = time.monotonic() + args.seconds
    valid = message("/s_new", "tutti_sine", 3000, 0, 1, "freq", 440.0)
    b = bundle(1, valid, message("/n_free", 3000))
    while time.monotonic() < deadline:
        kind = rnd.randrange(6)
        if kind == 0:  # random bytes, never an integer command (first byte 0)
            p = bytes([rnd.randrange(1, 256)]) + rnd.randbytes(rnd.randrange(0, 200))
        elif kind == 1:  # a truncated bundle
            p = b[:rnd.randrange(1, len(b))]
        elif kind == 2:  # a bundle element claiming a huge size
            p = b[:16] + struct.pack(">i", rnd.choice([0x7FFFFFF0, -8, 1 << 20, 3])) + b[20:]
        elif kind == 3:  # a message with bytes flipped
            q = bytearray(valid)
            for _ in range(3):
                q[rnd.randrange(len(q))] = rnd.randrange(256)
            if q[0] == 0:
                q[0] = ord("/")
            p = bytes(q)
        elif kind == 4:  # type tags that promise more than there is
            p = osc_string("/n_set") + osc_string(",iiiiiiiiiiiiiiiiiiii") + struct.pack(">i", 1)
        else:  # a blob whose size runs past the end
            p = osc_string("/d_recv") + osc_string(",b") + struct.pack(">i", 1 << 30) + b"SCgf"
        # A valid packet slipping through (a few flipped bytes can leave one) is
        # scsynth's to answer; the flood only checks nothing malformed gets in.
        udp.send(p)
        sent += 1
        if sent % 256 == 0:
            time.sleep(0.001)
    # TCP: a frame with a huge length, then garbage frames, then a connection
    # cut in the middle of a frame
    for huge in (0x7FFFFFFF, 0xFFFFFFF0):
        t = socket.create_connection(("127.0.0.1", args.port), timeout=5)
        t.sendall(struct.pack(">I", huge) + b"xxxx")
        t.close()
    t = socket.create_connection(("127.0.0.1", args.port), timeout=5)
    for _ in range(200):
        p = rnd.randbytes(rnd.randrange(1, 64))
        t.sendall(struct.pack(">i", len(p)) + p)
    t.sendall(struct.pack(">i", 1000) + b"partial")
    t.close()
    print("sent %d malformed UDP packets and 3 TCP streams" % sent)
    return 0


# One request and its named reply: liblo (python3-liblo) through tuttilocal.
def cmd_status(args):
    for _ in range(args.tries):
        r = request(args.port, ("/status",), "/status.reply", timeout=0.5)
        if r is not None:
            print(normalise(("/status.reply", r)))
            return 0
        time.sleep(0.2)
    return 1


def cmd_tutti_status(args):
    a = request(args.port, ("/cmd", "tutti", "status"), "/tutti/status", timeout=2.0)
    if a is None:
        return 1
    print(" ".join("%s=%s" % (a[i], a[i + 1]) for i in range(0, len(a) - 1, 2)))
    return 0


def cmd_quit(args):
    r = request(args.port, ("/quit",), "/done", timeout=5.0)
    return 0 if r == ["/quit"] else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["sequence", "pair", "tcp-notify", "flood", "status", "tutti-status", "quit"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tcp", action="store_true")
    p.add_argument("--out")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--tries", type=int, default=1)
    args = p.parse_args()
    return {"sequence": cmd_sequence, "pair": cmd_pair, "tcp-notify": cmd_tcp_notify, "flood": cmd_flood, "status": cmd_status,
            "tutti-status": cmd_tutti_status, "quit": cmd_quit}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
