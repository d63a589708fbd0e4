#!/usr/bin/env python3
"""One member's part of the trio example: an ordinary scsynth client.

    part.py --part drums|bass|chords [--port 57110] [--host 127.0.0.1] [--tcp]
            [--start NTP_SECONDS] [--bpm 120] [--bars 4] [--lead 0.3] [--seed 1]
            [--id-base 0] [--samples DIR] [--buffers read|send] [--timeout 10]
            [--no-notify] [--dry-run]

Plays its part on a grid shared with the other parts: bar 0 begins at
--start (NTP seconds, i.e. since 1900; default: the next whole second + 1),
4/4 at --bpm, --bars bars. Ends with one line of JSON (part, notes, replies
expected and received, what is missing, unexpected ids, errors) and exit
status 0 only if every expected reply came and nothing was wrong.

Design notes
- A client as sclang or Sonic Pi would be: /notify 1, /d_recv of its own
  SynthDefs, /b_allocRead of its own sample, /sync; its own groups and
  long-running synths (an effect reading a private audio bus, a control-bus
  source); then the notes as bundles timetagged on the grid, each sent --lead
  seconds before its time; at the end, one timetagged bundle that frees what
  is left, then /b_free, /notify 0 and a last /sync.
- Ids are chosen the way a single client chooses them, from the bottom of
  each range, and every part chooses the same ones: nodes from 1000 (group
  1000 at the head of the root group, 1001 for sources at its head, 1002 for
  effects at its tail, synths after that in the order they are made), buffers
  from 0, private audio buses from 16, control buses from 0. A session moves
  each member's ids into a namespace of its own, so identical ids do not
  collide there. 16 is the first private bus of a server with up to 8
  outputs and 8 inputs (sclang's first is outputs + inputs); the example's
  server runs with -i 2 -o 2, and output goes to buses 0 and 1.
- --id-base K moves every id as a namespace would (nodes + 100000 K, buffers
  + 16 K, audio buses + 16 K, control buses + 16 K) so that several parts can
  share one plain scsynth at once.
- Controls that carry a bus or buffer number are named buf, in, out or cbus
  (the names a session rewrites); their values are sent as ints. Musical
  values are floats.
- Everything sent is a function of (part, --start, --bpm, --bars, --seed,
  --id-base, --samples): the pattern's variations come from
  random.Random("part:seed"); --dry-run prints every packet as JSON instead
  of sending it.
- Replies are checked, not just counted: /done /d_recv per def, /done
  /b_allocRead and /b_free with our buffer numbers, /synced with our ids,
  /n_go (with the parent group we asked for) and /n_end for every node we
  made. scsynth tells every registered client about every node, so
  notifications about nodes that are not ours are counted as "foreign" and
  are not errors; a direct reply naming an id we never used is. /d_removed,
  which scsynth 3.13 sends to registered clients when a /d_recv replaces a
  def of the same name (a part run twice on one server), is counted as
  "defs_replaced" for our names and "foreign" for others. Every wait has a
  deadline (--timeout after the clean-up for the last notifications).
- --buffers read (the default) loads the sample with /b_allocRead of its
  path, as most clients do. A session cannot pass a path on to the other
  members' servers (docs/namespaces.md: answered with /fail until the plugin
  shares files), so --buffers send does what sclang's
  Buffer.sendCollection does: /b_alloc, /sync, then the samples by /b_setn
  in chunks of 1024, with a /sync after every 8 chunks so as not to overrun
  the server's socket. The buffer then holds exactly what /b_allocRead
  would have read (its sample rate is the server's; the files are 48 kHz).
- --tcp straight to scsynth 3.13 needs --no-notify: its TCP registrations
  compare uninitialised memory (/notify 0 answers "not registered", the next
  TCP client's /notify 1 "already registered"); through the tutti proxy
  /notify over TCP works.
"""
import argparse
import collections
import hashlib
import json
import math
import os
import random
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "osc"))
sys.path.insert(0, HERE)
import samples  # noqa: E402
import tuttiosc as osc  # noqa: E402
from tuttiosc import SynthDef, env, env_adsr, env_perc, message  # noqa: E402

PARTS = ("drums", "bass", "chords")
STEPS = 16  # sixteenth notes per bar
TAIL_BEATS = 3  # after the last bar, before the final clean-up bundle (release and reverb tails)
HEAD, TAIL = 0, 1  # add actions
SETN_CHUNK = 1024  # samples per /b_setn (--buffers send): about 4 KB


def midicps(n):
    return 440.0 * 2 ** ((n - 69) / 12.0)


# --------------------------------------------------------------- SynthDefs


def drums_defs():
    sampler = SynthDef("trio_drums_sampler")  # a one-shot sample, panned
    out, buf, amp, rate, pan = sampler.controls(out=16, buf=0, amp=0.5, rate=1.0, pan=0.0)
    play = sampler.ar("PlayBuf", buf, rate * sampler.kr("BufRateScale", buf), 1, 0, 0, 2)  # doneAction 2
    sampler.ar("Out", out, sampler.ar("Pan2", play * amp, pan, 1, outputs=2), outputs=0)

    hat = SynthDef("trio_drums_hat")  # filtered noise with a percussive envelope
    out, amp, decay, pan, cutoff = hat.controls(out=16, amp=0.1, decay=0.05, pan=0.2, cutoff=7000.0)
    e = hat.envgen(env_perc(0.002, decay, 1.0, -6.0), done_action=2)
    noise = hat.ar("BPF", hat.ar("HPF", hat.ar("WhiteNoise"), cutoff), 10000.0, 0.8)
    hat.ar("Out", out, hat.ar("Pan2", noise * e * amp, pan, 1, outputs=2), outputs=0)

    bus = SynthDef("trio_drums_bus")  # the drum bus: gain from a control bus, soft saturation
    inp, out, level, drive = bus.controls(**{"in": 16, "out": 0, "level": 0.5, "drive": 1.0})
    l, r = bus.ar("In", inp, outputs=2)
    bus.ar("Out", out, [(l * drive).op("tanh") * level, (r * drive).op("tanh") * level], outputs=0)
    return [sampler, hat, bus]


def bass_defs():
    saw = SynthDef("trio_bass_saw")  # two detuned saws and a sub square, gated by an envelope
    out, freq, amp, dur = saw.controls(out=16, freq=55.0, amp=0.3, dur=0.3)
    e = saw.envgen(env([0, 1, 0.7, 0], [0.005, dur, 0.08], -4.0), done_action=2)
    osc_ = saw.ar("Saw", freq) + saw.ar("Saw", freq * 1.007) * 0.6 + saw.ar("Pulse", freq * 0.5, 0.5) * 0.5
    saw.ar("Out", out, osc_ * e * amp, outputs=0)

    pluck = SynthDef("trio_bass_pluck")  # the pick attack: the pluck sample, repitched
    out, buf, rate, amp = pluck.controls(out=16, buf=0, rate=1.0, amp=0.3)
    play = pluck.ar("PlayBuf", buf, rate * pluck.kr("BufRateScale", buf), 1, 0, 0, 2)
    pluck.ar("Out", out, play * amp, outputs=0)

    lfo = SynthDef("trio_bass_lfo")  # the filter's sweep, on a control bus
    cbus, rate, lo, hi = lfo.controls(cbus=0, rate=0.25, lo=250.0, hi=1800.0)
    sweep = (lfo.kr("SinOsc", rate, 4.71238898) * 0.5 + 0.5) * (hi - lo) + lo  # starts at lo
    lfo.kr("Out", cbus, sweep, outputs=0)

    filt = SynthDef("trio_bass_filter")  # the private bus through a resonant low-pass, to the outputs
    inp, out, cutoff, rq, amp = filt.controls(**{"in": 16, "out": 0, "cutoff": 800.0, "rq": 0.35, "amp": 0.3})
    sig = filt.ar("RLPF", filt.ar("In", inp), cutoff, rq)
    sig = (sig * 1.5).op("tanh") * amp  # resonance peaks saturate instead of clipping
    filt.ar("Out", out, [sig, sig], outputs=0)
    return [saw, pluck, lfo, filt]


def chords_defs():
    pad = SynthDef("trio_chords_pad")  # three detuned saws, low-passed, ADSR released by gate
    out, freq, amp, gate, bright, pan = pad.controls(out=16, freq=220.0, amp=0.05, gate=1.0, bright=1200.0, pan=0.0)
    e = pad.envgen(env_adsr(0.25, 0.4, 0.7, 0.9), gate, done_action=2)
    voices = pad.ar("Saw", freq * 0.996) + pad.ar("Saw", freq) + pad.ar("Saw", freq * 1.005)
    sig = pad.ar("LPF", voices, bright) * e * amp
    pad.ar("Out", out, pad.ar("Pan2", sig, pan, 1, outputs=2), outputs=0)

    keys = SynthDef("trio_chords_keys")  # the keys sample, repitched
    out, buf, rate, amp, pan = keys.controls(out=16, buf=0, rate=1.0, amp=0.2, pan=0.0)
    play = keys.ar("PlayBuf", buf, rate * keys.kr("BufRateScale", buf), 1, 0, 0, 2)
    keys.ar("Out", out, keys.ar("Pan2", play * amp, pan, 1, outputs=2), outputs=0)

    swell = SynthDef("trio_chords_swell")  # the pads' brightness, one triangle per bar
    cbus, rate, lo, hi = swell.controls(cbus=0, rate=0.5, lo=700.0, hi=2600.0)
    tri = swell.kr("LFTri", rate, 3.0)  # phase 3: starts at the bottom
    swell.kr("Out", cbus, (tri * 0.5 + 0.5) * (hi - lo) + lo, outputs=0)

    verb = SynthDef("trio_chords_verb")  # the private stereo bus through a reverb, to the outputs
    inp, out, mix, room, damp = verb.controls(**{"in": 16, "out": 0, "mix": 0.3, "room": 0.7, "damp": 0.5})
    l, r = verb.ar("In", inp, outputs=2)
    verb.ar("Out", out, verb.ar("FreeVerb2", l, r, mix, room, damp, outputs=2), outputs=0)
    return [pad, keys, swell, verb]


# ------------------------------------------------------------------ score

PROGRESSION = [  # (bass root, chord) in MIDI notes: Am7 | Fmaj7 | C/G | G
    (33, [57, 60, 64, 67]),
    (29, [53, 57, 60, 64]),
    (36, [55, 60, 64, 67]),
    (31, [55, 59, 62, 67]),
]


class Node:
    """A node of the score; its id is given when the score is complete, in
    the order the nodes will be sent, as a client numbering as it plays would."""

    __slots__ = ("id", "parent")

    def __init__(self, parent):
        self.id, self.parent = None, parent


def encode(msg):
    """("/addr", args...) with Node arguments as their ids -> OSC bytes."""
    return message(msg[0], *[x.id if isinstance(x, Node) else x for x in msg[1:]])


class Score:
    """What a part sends: loads, immediate set-up, timed events, clean-up.
    Messages are tuples ("/addr", args...) until they are sent."""

    def __init__(self, part, args, paths):
        self.part = part
        k = args.id_base
        self.node_base, self.buf_base = 1000 + 100000 * k, 16 * k
        self.bus_base, self.cbus_base = 16 + 16 * k, 16 * k
        self.sync_next = 1 + 100000 * k
        self.step = 60.0 / args.bpm / 4
        self.bars = args.bars
        self.rnd = random.Random("%s:%d" % (part, args.seed))
        self.paths = paths
        self.nodes = []  # every Node we make
        self.notes = 0
        self.defs = []
        self.buffers = []  # (bufnum, path)
        self.setup = []  # immediate messages after the loads
        self.events = collections.defaultdict(list)  # 16th-note index -> messages
        self.cleanup = []  # the last timed bundle
        self.end_step = args.bars * STEPS + TAIL_BEATS * 4
        self.group = self.new_node(None)
        self.src = self.new_node(self.group)
        self.fx = self.new_node(self.group)
        self.setup += [("/g_new", self.group, HEAD, 0),
                       ("/g_new", self.src, HEAD, self.group),
                       ("/g_new", self.fx, TAIL, self.group)]
        getattr(self, "score_" + part)()
        self.cleanup.append(("/n_free", self.group))  # the group takes its groups and anything left
        for m in self.setup + [m for k in sorted(self.events) for m in self.events[k]]:
            if m[0] in ("/g_new", "/s_new"):
                node = m[1] if m[0] == "/g_new" else m[2]
                node.id = self.node_base + sum(1 for n in self.nodes if n.id is not None)
        self.parent = {n.id: (n.parent.id if n.parent else 0) for n in self.nodes}

    def new_node(self, parent):
        n = Node(parent)
        self.nodes.append(n)
        return n

    def at(self, bar, step, *msgs):
        self.events[bar * STEPS + step].extend(msgs)

    def synth(self, when, name, group, *controls, note=True):
        """A synth at the tail of group, at (bar, step) or in the set-up (when=None)."""
        n = self.new_node(group)
        m = ("/s_new", name, n, TAIL, group) + controls
        if when is None:
            self.setup.append(m)
        else:
            self.at(when[0], when[1], m)
        if note:
            self.notes += 1
        return n

    # ---- drums: sampled kick and snare, noise hats, a drum bus with its gain on a control bus

    def score_drums(self):
        self.defs = drums_defs()
        kick, snare = self.buf_base, self.buf_base + 1
        self.buffers = [(kick, self.paths["kick"]), (snare, self.paths["snare"])]
        bus, cbus, rnd = self.bus_base, self.cbus_base, self.rnd
        accents = [0.4, 0.42, 0.45, 0.5]
        self.setup.append(("/c_set", cbus, accents[0]))
        drum_bus = self.synth(None, "trio_drums_bus", self.fx, "in", bus, "out", 0, "drive", 1.2, note=False)
        self.setup.append(("/n_map", drum_bus, "level", cbus))
        choke = None
        for bar in range(self.bars):
            if bar:
                self.at(bar, 0, ("/c_set", cbus, accents[bar % 4]))
            if bar == self.bars - 1:
                self.at(bar, 0, ("/n_set", drum_bus, "drive", 2.0))  # push the last bar
            kicks = [0, 8] + ([rnd.choice([7, 10, 14])] if rnd.random() < 0.7 else [])
            for s in sorted(kicks):
                self.synth((bar, s), "trio_drums_sampler", self.src, "out", bus, "buf", kick,
                           "amp", 0.55 if s in (0, 8) else 0.35, "pan", 0.0)
            for s in (4, 12):
                self.synth((bar, s), "trio_drums_sampler", self.src, "out", bus, "buf", snare, "amp", 0.4,
                           "pan", -0.1)
            if rnd.random() < 0.5:
                self.synth((bar, rnd.choice([7, 15])), "trio_drums_sampler", self.src, "out", bus, "buf", snare,
                           "amp", 0.1, "pan", -0.1, "rate", 1.05)
            for s in range(0, STEPS, 2):
                if choke is not None and s == 0:  # a closed hat chokes the open one
                    self.at(bar, 0, ("/n_free", choke))
                    choke = None
                if s == 14 and bar % 2 == 0 and bar + 1 < self.bars:
                    choke = self.synth((bar, s), "trio_drums_hat", self.src, "out", bus, "amp", 0.12,
                                       "decay", 0.8, "pan", 0.25, "cutoff", 5000.0)
                    continue
                self.synth((bar, s), "trio_drums_hat", self.src, "out", bus,
                           "amp", 0.1 if s % 4 else 0.07, "decay", 0.05, "pan", 0.25)
                if rnd.random() < 0.3:
                    self.synth((bar, s + 1), "trio_drums_hat", self.src, "out", bus, "amp", 0.04,
                               "decay", 0.03, "pan", 0.3)
        self.cleanup = [("/n_free", drum_bus)]

    # ---- bass: saw notes with a pluck attack into a private bus, filtered by a swept RLPF

    def score_bass(self):
        self.defs = bass_defs()
        pluck = self.buf_base
        self.buffers = [(pluck, self.paths["pluck"])]
        bus, cbus, rnd = self.bus_base, self.cbus_base, self.rnd
        filt = self.synth(None, "trio_bass_filter", self.fx, "in", bus, "out", 0, "rq", 0.35, note=False)
        self.setup.append(("/c_set", cbus, 250.0))
        self.setup.append(("/n_map", filt, "cutoff", cbus))
        bar_seconds = self.step * STEPS
        lfo = self.synth((0, 0), "trio_bass_lfo", self.src, "cbus", cbus, "rate", 1.0 / (2 * bar_seconds),
                         note=False)  # one sweep per two bars, from the first downbeat
        rhythms = [[0, 3, 6, 8, 11, 14], [0, 6, 8, 10, 14], [0, 2, 8, 11, 12, 14], [0, 3, 8, 10, 13]]
        for bar in range(self.bars):
            root = PROGRESSION[bar % 4][0]
            if bar == self.bars // 2:
                self.at(bar, 0, ("/n_set", filt, "rq", 0.2))  # more resonance in the second half
            steps = rnd.choice(rhythms)
            for i, s in enumerate(steps):
                nxt = steps[i + 1] if i + 1 < len(steps) else STEPS
                note = root + (12 if (i and rnd.random() < 0.25) else 0) + (7 if (i and rnd.random() < 0.15) else 0)
                dur = max(0.05, (nxt - s) * self.step - 0.1)
                freq = midicps(note)
                self.synth((bar, s), "trio_bass_saw", self.src, "out", bus, "freq", freq,
                           "amp", 0.22 if s == 0 else 0.17, "dur", dur)
                if s == 0 or rnd.random() < 0.3:
                    self.synth((bar, s), "trio_bass_pluck", self.src, "out", bus, "buf", pluck,
                               "rate", freq / samples.PLUCK_BASE_HZ, "amp", 0.2, note=False)
        self.cleanup = [("/n_free", lfo), ("/n_free", filt)]

    # ---- chords: pad voices released with /n_set gate 0, keys stabs from a sample, into a reverb

    def score_chords(self):
        self.defs = chords_defs()
        keys = self.buf_base
        self.buffers = [(keys, self.paths["keys"])]
        bus, cbus, rnd = self.bus_base, self.cbus_base, self.rnd
        verb = self.synth(None, "trio_chords_verb", self.fx, "in", bus, "out", 0, note=False)
        self.setup.append(("/c_set", cbus, 700.0))
        bar_seconds = self.step * STEPS
        swell = self.synth((0, 0), "trio_chords_swell", self.src, "cbus", cbus, "rate", 1.0 / bar_seconds,
                           note=False)
        stabs = [[0, 6, 10], [0, 3, 8], [0, 10, 14], [0, 7]]
        pans = [-0.5, -0.15, 0.15, 0.5]
        for bar in range(self.bars):
            chord = list(PROGRESSION[bar % 4][1])
            if rnd.random() < 0.4:  # an inversion: the top note an octave down
                chord = [chord[-1] - 12] + chord[:-1]
            voices = []
            for note, pan in zip(chord, pans):
                n = self.synth((bar, 0), "trio_chords_pad", self.src, "out", bus, "freq", midicps(note),
                               "amp", 0.07, "pan", pan)
                self.at(bar, 0, ("/n_map", n, "bright", cbus))
                voices.append(n)
            self.at(bar, STEPS - 1, *[("/n_set", n, "gate", 0.0) for n in voices])
            for s in rnd.choice(stabs):
                for note in chord[-2:]:
                    self.synth((bar, s), "trio_chords_keys", self.src, "out", bus, "buf", keys,
                               "rate", 2 ** ((note - 60) / 12.0), "amp", 0.22 if s == 0 else 0.15,
                               "pan", 0.3 if note == chord[-1] else -0.3)
            if bar == self.bars - 1:
                self.at(bar, 0, ("/n_set", verb, "mix", 0.45, "room", 0.85))  # a wider last bar
        self.cleanup = [("/n_free", swell), ("/n_free", verb)]


# ------------------------------------------------------------------ replies

NOTIFICATIONS = ("/n_go", "/n_end", "/n_on", "/n_off", "/n_move", "/n_info")


class Replies:
    """What we expect to hear back, and what we did hear."""

    def __init__(self, score):
        self.expected = collections.Counter()
        self.n_expected = self.n_received = 0
        self.ours = set(score.parent)
        self.parent = score.parent
        self.unexpected, self.errors = [], []
        self.foreign = 0
        self.foreign_seen = []  # the first few, for the summary
        self.client_id = None
        self.def_names = {d.name for d in score.defs}
        self.replaced = 0

    def expect(self, *key):
        self.expected[key] += 1
        self.n_expected += 1

    def outstanding(self, *key):
        return self.expected[key] if key else sum(self.expected.values())

    def missing(self):
        return [" ".join(str(x) for x in k) + ("" if n == 1 else " (x%d)" % n)
                for k, n in self.expected.items() if n > 0]

    def handle(self, m):
        addr, a = m
        if addr == "/fail":
            self.errors.append("/fail " + " ".join(str(x).strip() for x in a))
            return
        if addr == "/d_removed" and a:  # scsynth 3.13 tells registered clients when a def is replaced
            if a[0] in self.def_names:
                self.replaced += 1
            else:
                self.foreign += 1
                self.foreign_seen[:] = (self.foreign_seen + [[addr] + list(a[:3])])[:3]
            return
        if addr == "/done" and a and a[0] == "/notify":
            key = ("/done", "/notify")
            if len(a) > 1 and self.client_id is None:
                self.client_id = a[1]
        elif addr in NOTIFICATIONS and a and isinstance(a[0], int):
            if a[0] not in self.ours:
                self.foreign += 1
                self.foreign_seen[:] = (self.foreign_seen + [[addr] + list(a[:3])])[:3]
                return
            key = (addr, a[0])
            if addr == "/n_go" and (len(a) < 2 or a[1] != self.parent[a[0]]):
                self.unexpected.append("/n_go %d in group %s (we put it in %d)"
                                       % (a[0], a[1] if len(a) > 1 else "?", self.parent[a[0]]))
        else:
            key = (addr,) + tuple(a)
        if self.expected[key] > 0:
            self.expected[key] -= 1
            self.n_received += 1
        else:
            self.unexpected.append(" ".join(str(x) for x in (addr,) + tuple(a))[:200])


# ------------------------------------------------------------------ client


class Client:
    def __init__(self, args, score):
        self.args, self.score = args, score
        self.replies = Replies(score)
        self.late = 0
        self.packets = 0
        self.conn = None if args.dry_run else osc.connect(args.port, args.tcp, args.host)
        self.t0 = osc.timetag(args.start)
        self.notify = not args.no_notify
        self.playing = False  # our group exists and the clean-up has not been sent

    def interrupted(self):
        """SIGINT or SIGTERM: free what we made, without waiting for anything."""
        self.replies.errors.append("interrupted")
        if self.conn is not None and self.playing:
            try:
                self.conn.send(encode(("/n_free", self.score.group)))
                for b, _ in self.score.buffers:
                    self.conn.send(message("/b_free", b))
            except OSError:
                pass

    def send(self, pkt, t=None):
        self.packets += 1
        if self.args.dry_run:
            print(json.dumps({"t": t, "packet": describe(pkt)}))
            return
        self.conn.send(pkt)

    def pump(self, seconds):
        """Wait up to `seconds` for a reply; handle it and any already queued."""
        if self.conn is None:
            return
        timeout = max(seconds, 0.0001)
        while True:
            pkt = self.conn.recv(timeout)
            if pkt is None:
                if getattr(self.conn, "closed", False):
                    raise ConnectionError("the server closed the TCP connection")
                return
            try:
                msgs = osc.messages(pkt)
            except osc.OscError as e:
                self.replies.errors.append(str(e))
                msgs = []
            for m in msgs:
                self.replies.handle(m)
            timeout = 0.0001  # drain what is queued, then let the caller look

    def wait(self, done, timeout, what):
        """Pump until done() or timeout; record an error on time-out."""
        if self.conn is None:
            return True
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                self.replies.errors.append("no %s within %.1f s" % (what, timeout))
                return False
            self.pump(min(left, 0.05))
        return True

    def request(self, msg, *key, timeout=5.0, what=None):
        self.replies.expect(*key)
        self.send(msg)
        return self.wait(lambda: self.replies.outstanding(*key) == 0, timeout, what or " ".join(map(str, key)))

    def sync(self, timeout=5.0):
        n = self.score.sync_next
        self.score.sync_next += 1
        return self.request(message("/sync", n), "/synced", n, timeout=timeout)

    def sleep_until(self, ntp):
        while True:
            left = ntp - osc.ntp_now()
            if left <= 0 or self.conn is None:
                return
            self.pump(min(left, 0.05))

    def timed(self, offset_steps, msgs):
        """A bundle for the grid position offset_steps, sent --lead ahead."""
        offset = offset_steps * self.score.step
        at = self.args.start + offset
        self.sleep_until(at - self.args.lead)
        if self.conn is not None and osc.ntp_now() > at:
            self.late += 1
            self.replies.errors.append("bundle for %.3f s after the start sent %.0f ms late"
                                       % (offset, (osc.ntp_now() - at) * 1000))
        tt = self.t0 + int(round(offset * 4294967296.0))
        for m in msgs:
            if self.notify and m[0] == "/s_new":
                self.replies.expect("/n_go", m[2].id)
                self.replies.expect("/n_end", m[2].id)
        self.send(osc.bundle(tt, *[encode(m) for m in msgs]), round(offset, 6))

    def run(self):
        s, r, a = self.score, self.replies, self.args
        if self.conn is not None and a.start - a.lead < osc.ntp_now():  # the bundles will tell if it matters
            print("part %s: --start is %.3f s away, less than --lead (%.3f s)" % (s.part, a.start - osc.ntp_now(), a.lead),
                  file=sys.stderr)
        notify = self.notify
        if notify and not self.request(message("/notify", 1), "/done", "/notify"):
            return
        for d in s.defs:
            r.expect("/done", "/d_recv")
            self.send(message("/d_recv", d.bytes()))
        for b, path in s.buffers:
            if a.buffers == "read":
                r.expect("/done", "/b_allocRead", b)
                self.send(message("/b_allocRead", b, path, 0, 0))
            else:
                r.expect("/done", "/b_alloc", b)
                self.send(message("/b_alloc", b, len(samples.read_floats(path)), 1))
        if not self.sync():
            return
        if a.buffers == "send":
            chunks = 0
            for b, path in s.buffers:
                data = samples.read_floats(path)
                for i in range(0, len(data), SETN_CHUNK):
                    part = data[i:i + SETN_CHUNK]
                    self.send(message("/b_setn", b, i, len(part), *part))
                    chunks += 1
                    if chunks % 8 == 0 and not self.sync():
                        return
            if not self.sync():
                return
        if r.outstanding():
            r.errors.append("loads not confirmed before /synced: " + ", ".join(r.missing()))
        for m in s.setup:
            if notify and m[0] in ("/g_new", "/s_new"):
                n = m[1] if m[0] == "/g_new" else m[2]
                r.expect("/n_go", n.id)
                r.expect("/n_end", n.id)
            self.send(encode(m))
            self.playing = True
        self.sync()
        for i in sorted(s.events):
            self.timed(i, s.events[i])
        self.timed(s.end_step, s.cleanup)
        self.playing = False
        end = a.start + s.end_step * s.step
        self.sleep_until(end)
        if notify:
            self.wait(lambda: not any(r.expected[k] for k in r.expected if k[0] in ("/n_go", "/n_end")),
                      a.timeout, "/n_end for every node")
        for b, _ in s.buffers:
            r.expect("/done", "/b_free", b)
            self.send(message("/b_free", b))
        if notify:
            r.expect("/done", "/notify")
            self.send(message("/notify", 0))
        self.sync()
        self.pump(0.05)  # anything straggling is still checked

    def summary(self):
        r = self.replies
        missing = r.missing()
        ok = not (missing or r.unexpected or r.errors)
        return {
            "part": self.score.part, "ok": ok, "start": self.args.start, "notes": self.score.notes,
            "nodes": len(self.score.nodes), "packets": self.packets,
            "replies_expected": r.n_expected, "replies_received": r.n_received,
            "missing": missing[:10], "unexpected_ids": r.unexpected[:10], "foreign_notifications": r.foreign,
            "foreign_examples": r.foreign_seen,
            "defs_replaced": r.replaced, "late": self.late, "client_id": r.client_id, "errors": r.errors[:10],
        }


def describe(pkt):
    """A packet as JSON-able data: blobs by size and hash."""
    def arg(x):
        if isinstance(x, bytes):
            return "<blob %d %s>" % (len(x), hashlib.sha256(x).hexdigest()[:16])
        return x

    if pkt.startswith(b"#bundle\0"):
        tt, items = osc.unbundle(pkt)
        return {"timetag": tt, "bundle": [describe(e) for e in items]}
    addr, args = osc.decode(pkt)
    return [addr] + [arg(x) for x in args]


def main():
    p = argparse.ArgumentParser(description="One part of the trio example, as an ordinary scsynth client.")
    p.add_argument("--part", choices=PARTS, required=True)
    p.add_argument("--port", type=int, default=57110, help="where to send: scsynth's port, or the tutti proxy's")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tcp", action="store_true", help="TCP (4-byte length prefix) instead of UDP")
    p.add_argument("--start", type=float, help="NTP seconds of bar 0 (default: the next whole second + 1)")
    p.add_argument("--bpm", type=float, default=120.0)
    p.add_argument("--bars", type=int, default=4)
    p.add_argument("--lead", type=float, default=0.3, help="seconds each bundle is sent ahead of its time")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--id-base", type=int, default=0,
                   help="namespace K: nodes +100000K, buffers/buses +16K (several parts on one plain scsynth)")
    p.add_argument("--samples", default=os.path.join(tempfile.gettempdir(), "tutti-trio-samples"),
                   help="folder for the generated sound files (default: %(default)s)")
    p.add_argument("--buffers", choices=("read", "send"), default="read",
                   help="load samples by path (/b_allocRead) or send them (/b_alloc + /b_setn)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the last notifications")
    p.add_argument("--no-notify", action="store_true",
                   help="do not register for notifications (scsynth 3.13's own TCP port loses them)")
    p.add_argument("--dry-run", action="store_true", help="print the packets as JSON lines instead of sending them")
    a = p.parse_args()
    if not 20 <= a.bpm <= 400 or not 1 <= a.bars <= 256 or not 0 < a.lead <= 5 or not 0 <= a.id_base <= 1000:
        p.error("out of range: --bpm 20..400, --bars 1..256, --lead 0..5 s, --id-base 0..1000")
    paths = samples.write_all(a.samples)
    if a.start is None:
        a.start = float(math.ceil(osc.ntp_now()) + 1)
    if not 2**31 < a.start < 2**32:  # 1968..2036, the NTP era 0
        p.error("--start must be NTP seconds (since 1900), e.g. %.0f" % osc.ntp_now())
    score = Score(a.part, a, paths)
    try:
        client = Client(a, score)
    except OSError as e:
        print("part %s: cannot reach %s:%d (%s)" % (a.part, a.host, a.port, e), file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        client.run()
    except (OSError, ConnectionError) as e:
        client.replies.errors.append("connection: %s" % e)
    except KeyboardInterrupt:
        client.interrupted()
    if a.dry_run:
        return 0
    s = client.summary()
    print(json.dumps(s, sort_keys=False))
    sys.stdout.flush()
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
