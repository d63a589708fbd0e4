#!/usr/bin/env python3
"""Record a server's output to a WAV file with scsynth's own DiskOut.

    record.py --port P --seconds N --out file.wav [--channels 2] [--bus 0]
              [--buf 1023] [--node 67000000] [--at NTP_SECONDS]

Prints the file's path when done. Talks to scsynth's own port: recording is
local to one server, not an event of a session.

Design notes
- As sclang's Recorder does: /d_recv a recorder SynthDef (In.ar of the
  channels -> DiskOut.ar), /b_alloc a buffer of 65536 frames, /b_write it
  as a WAV (int16) left open, /s_new the recorder at the tail of the root
  group (add action 1, after every other node) reading buses --bus ..
  --bus + channels - 1; at the end /n_free, /b_close, /b_free.
- Recording starts at a known time: the /s_new is a bundle timetagged --at
  (NTP seconds; default now + 0.2 s), so frame 0 of the file is that time
  (to within one control block). At the end a line of JSON on stderr gives
  the start and the time the stop was sent: with JACK's dummy driver the
  server's sample clock can run a little slower than the system's, so a file
  may hold fewer frames than seconds x rate, and that pair maps times to
  frames.
  The stop is an immediate /n_free sent --seconds later (or at SIGTERM or
  SIGINT): a timetagged one could not be taken back after an early stop, and
  would then fail on a node that is gone.
- DiskOut hands the buffer to a disk thread half a buffer at a time; when the
  synth is freed its destructor queues what is left. /b_close goes after a
  /sync and a short pause, so that last piece is on disk before the file is
  closed.
- --buf and --node are high so they stay clear of the ids clients pick
  (scsynth's default -b 1024 allows buffers 0..1023). The node stays below
  2^26: in a tutti session, higher ids are the parts' (99999999 was part 1's
  node 32891135, and part 1's clients heard of its end).
"""
import argparse
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tuttiosc as osc  # noqa: E402
from tuttiosc import SynthDef, message  # noqa: E402

FRAMES = 65536


def recorder_def(channels):
    d = SynthDef("tutti_recorder_%d" % channels)
    buf, inp = d.controls(buf=0, **{"in": 0})
    sig = d.ar("In", inp, outputs=channels)
    d.ar("DiskOut", buf, sig if channels > 1 else [sig])
    return d


class Recorder:
    def __init__(self, args):
        self.a = args
        self.c = osc.Udp(args.port, args.host)
        self.errors = []
        self.sync_id = 0

    def request(self, msg, match, what, timeout=5.0):
        self.c.send(msg)
        r = osc.wait_for(self.c, lambda m: match(m) or m[0] == "/fail", timeout)
        if r is None:
            raise RuntimeError("no reply to %s within %.0f s (is scsynth on port %d?)" % (what, timeout, self.a.port))
        if r[0] == "/fail":
            raise RuntimeError("%s failed: %s" % (what, " ".join(str(x) for x in r[1])))
        return r

    def done(self, msg, cmd, *ids):
        return self.request(msg, lambda m: m == ("/done", [cmd] + list(ids)), cmd)

    def sync(self):
        self.sync_id += 1
        n = self.sync_id
        self.request(message("/sync", n), lambda m: m == ("/synced", [n]), "/sync")


def main():
    p = argparse.ArgumentParser(description="Record scsynth's output buses to a WAV file (DiskOut).")
    p.add_argument("--port", type=int, required=True, help="scsynth's own UDP port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--out", required=True, help="the WAV file (a path scsynth can write)")
    p.add_argument("--channels", type=int, default=2)
    p.add_argument("--bus", type=int, default=0, help="first bus recorded")
    p.add_argument("--buf", type=int, default=1023)
    p.add_argument("--node", type=int, default=67000000)
    p.add_argument("--at", type=float, help="NTP seconds when recording starts (default: now + 0.2)")
    a = p.parse_args()
    if not 1 <= a.channels <= 64 or a.seconds <= 0:
        p.error("--channels 1..64 and --seconds > 0")
    path = os.path.abspath(a.out)
    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    r = Recorder(a)
    started, at, stopped = False, None, None
    try:
        r.done(message("/d_recv", recorder_def(a.channels).bytes()), "/d_recv")
        r.done(message("/b_alloc", a.buf, FRAMES, a.channels), "/b_alloc", a.buf)
        r.done(message("/b_write", a.buf, path, "wav", "int16", 0, 0, 1), "/b_write", a.buf)
        at = a.at if a.at is not None else osc.ntp_now() + 0.2
        if at < osc.ntp_now() + 0.01:
            raise RuntimeError("--at is %.3f s in the past" % (osc.ntp_now() - at))
        r.c.send(osc.bundle(osc.timetag(at), message("/s_new", "tutti_recorder_%d" % a.channels, a.node, 1, 0,
                                                     "buf", a.buf, "in", a.bus)))
        started = True
        r.sync()
        end = at + a.seconds
        while not stop["now"] and osc.ntp_now() < end:
            time.sleep(min(0.05, max(end - osc.ntp_now(), 0.001)))
    except (RuntimeError, OSError) as e:
        r.errors.append(str(e))
    finally:
        try:
            if started:
                while osc.ntp_now() < at + 0.02:  # stopped before it began: let the /s_new happen first
                    time.sleep(0.01)
                r.c.send(message("/n_free", a.node))
                stopped = osc.ntp_now()
                r.sync()
                time.sleep(0.2)  # DiskOut's last piece goes through the disk thread
            r.done(message("/b_close", a.buf), "/b_close", a.buf)
            r.done(message("/b_free", a.buf), "/b_free", a.buf)
        except (RuntimeError, OSError) as e:
            r.errors.append(str(e))
    print(json.dumps({"path": path, "start": at, "stop": stopped, "channels": a.channels}), file=sys.stderr)
    if r.errors:
        print("record.py: " + "; ".join(r.errors), file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
