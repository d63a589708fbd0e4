#!/usr/bin/env python3
"""tutti's evaluation: real sessions over a grid of bad networks, measured.

    evaluate.py [--quick | --full | --smoke] [--tutti BUILD/tutti]
                [--auto-horizon | --horizon MS | --horizon rule]
                [--only REGEX] [--list] [--out DIR] [--report FILE]
                [--work DIR] [--lead MS] [--warmup S] [--no-plots] [--no-report]

Builds sessions of 3, 8 and 16 members out of real processes on this machine:
a hub, one `tutti netsim` relay per member (its own seed) standing for that
member's path to the hub, and the members: `tutti member` processes (3, 8 and
16 members) or real scsynth servers with the tutti plugin, each with its own
client playing its part of examples/trio (3 members, kind "scsynth"). Every
run is one condition of the grid: one-way delay, jitter, loss, and none, a
3 s partition or a crash of one member. It measures, per run:

  coherence     every member's journal against the union of all of them:
                events delivered out of order, events missing inside the key
                range that member covers, keys delivered with different
                contents (plus `tutti verify` over the journals)
  on time       the share of events each member delivered before their
                session time minus --lead, judged by that member's clock
  lateness      delivery (member's clock) minus (event time - lead)
  clock error   the member's estimate of session time minus the true session
                time (all processes share this machine's clocks, and the
                hub's session clock is its wall clock)
  horizon       the L the events were stamped with, against the smallest L
                that would have sufficed (the longest submission-to-delivery
                time at the slowest member, plus the lead)
  recovery      after a partition: from its end (the relay's log) until every
                member delivers again; after a crash: until every survivor
                delivers again

It shows progress while it runs, then writes runs.csv, members.csv and the
distributions (CSV) and plots (PNG, gnuplot) to --out (default docs/eval) and
the report to --report (default docs/evaluation.md). The grids:

  --smoke   one 3-member run of 5 s (the e2e smoke test)
  --quick   six short runs, about 2 minutes
  default   41 runs (grid() below), about 33 minutes (20 with --rehearse 0)
  --full    102 runs: delay x jitter x loss for 8 members, and more;
            about 50 minutes with --rehearse 0, over an hour without

The horizon: --auto-horizon passes --auto-horizon to the hub (the default when
the hub has it); --horizon MS fixes L; --horizon rule fixes L per condition as
an operator would: 2 x (delay + 2 x jitter) + 10 ms, at least 20 ms.

Every process started is stopped by its pid on the way out; raw data (logs,
journals, timing files) stays in --work (default BUILD/eval-work) for the
last run of each condition.
"""
import argparse
import bisect
import csv
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import tuttiosc  # noqa: E402
from tuttilocal import (clear_jack_shm, free_port, read, request, scsynth_argv,  # noqa: E402
                        scsynth_port_taken)

NS = 1_000_000_000
MS = 1_000_000
JACK_NAME = "tutti-eval"  # fixed: JACK's registry holds 8 servers (see tests/e2e/lib.sh)
TRIO_PARTS = ("drums", "bass", "chords")

# --------------------------------------------------------------- the grids


def run_id(r):
    kind = "s" if r["kind"] == "scsynth" else "m"
    dist = "" if r["dist"] == "uniform" else r["dist"][0]
    loss = ("%g" % r["loss"]).replace(".", "p")
    return "%s%02d-d%d-j%d%s-l%s-%s%s" % (kind, r["n"], r["delay"], r["jitter"], dist, loss,
                                          r["fault"], "-s%d" % r["seed"] if r.get("seed") else "")


def spec(kind, n, delay, jitter, loss=0.0, fault="none", dist="uniform", seconds=None,
         group="", seed=0):
    """One run. fault: none, partition (the hub holds the member: suspect 10 s),
    rejoin (a partition with the hub's default suspect: the member is removed
    and joins again), crash (SIGKILL of one member). seed: another series of
    the relays' random draws (0: the grid's own)."""
    return {"kind": kind, "n": n, "delay": delay, "jitter": jitter, "dist": dist,
            "loss": loss, "fault": fault, "seconds": seconds, "group": group, "seed": seed}


STEADY = [(0, 0), (20, 5), (50, 10), (100, 20), (200, 40)]


def grid(name):
    g = []
    if name == "smoke":
        g.append(spec("member", 3, 20, 5, seconds=5, group="steady"))
        return g
    if name == "quick":
        g += [spec("member", 8, 50, 10, seconds=10, group="steady"),
              spec("member", 16, 20, 5, seconds=10, group="steady"),
              spec("member", 8, 50, 10, loss=1, seconds=10, group="loss"),
              spec("member", 8, 50, 10, fault="partition", seconds=14, group="partition"),
              spec("member", 8, 50, 10, fault="crash", seconds=10, group="crash"),
              spec("scsynth", 3, 50, 10, seconds=10, group="steady")]
        return g
    # default and full: the delay sweep (jitter a fifth of the delay) at every size
    for d, j in STEADY:
        for k, n in (("scsynth", 3), ("member", 8), ("member", 16)):
            g.append(spec(k, n, d, j, group="steady"))
    for d, j in ((50, 10), (200, 40)):
        g.append(spec("member", 3, d, j, group="steady"))
    # jitter at 50 ms (10 ms is in the sweep), and a heavy tail
    for j in (0, 20, 40):
        g.append(spec("member", 8, 50, j, group="jitter"))
    # a heavy tail's bursts are rare and large: one series says little, so
    # five; and each plays 60 s, because in 15 s a member hears about 1900
    # events, of which 0.1 % is 2: on time >= 99.9 % would then mean no
    # burst at all beyond L, and the delay's p99.9 its second largest
    for seed in range(5):
        g.append(spec("member", 8, 50, 10, dist="pareto", group="jitter", seed=seed,
                      seconds=60))
    g.append(spec("member", 8, 50, 10, dist="normal", group="jitter"))
    # loss at 50 +/- 10 ms
    for loss in (0.5, 1, 2, 5):
        g.append(spec("member", 8, 50, 10, loss=loss, group="loss"))
    for loss in (1, 5):
        g.append(spec("member", 16, 50, 10, loss=loss, group="loss"))
    g.append(spec("scsynth", 3, 50, 10, loss=1, group="loss"))
    # a 3 s partition, a crash
    for k, n in (("scsynth", 3), ("member", 8), ("member", 16)):
        g.append(spec(k, n, 50, 10, fault="partition", group="partition"))
    for n in (8, 16):
        g.append(spec("member", n, 50, 10, fault="rejoin", group="partition"))
    for k, n in (("scsynth", 3), ("member", 8), ("member", 16)):
        g.append(spec(k, n, 50, 10, fault="crash", group="crash"))
    if name == "full":
        have = {run_id(r) for r in g}
        extra = []
        for d in (0, 20, 50, 100, 200):
            for j in (0, 10, 40):
                for loss in (0, 1, 5):
                    extra.append(spec("member", 8, d, j, loss=loss,
                                      group="loss" if loss else "jitter"))
        for d, j in STEADY:
            extra.append(spec("member", 3, d, j, group="steady"))
            for loss in (1, 5):
                extra.append(spec("member", 16, d, j, loss=loss, group="loss"))
        for d, j in ((20, 5), (200, 40)):
            for k, n in (("scsynth", 3), ("member", 8), ("member", 16)):
                extra.append(spec(k, n, d, j, fault="partition", group="partition"))
                extra.append(spec(k, n, d, j, fault="crash", group="crash"))
            for n in (8, 16):
                extra.append(spec("member", n, d, j, fault="rejoin", group="partition"))
        for r in extra:
            if run_id(r) not in have:
                have.add(run_id(r))
                g.append(r)
    return g


# ------------------------------------------------------------ processes


class Procs:
    """Every process started here; stopped by pid, never by name."""

    def __init__(self):
        self.procs = []
        self.lock = threading.Lock()

    def start(self, name, argv, out, env=None, pipe=False):
        f = open(out, "w")
        # pipe: stdout to the caller (a LineTap), stderr to `out`; otherwise both to `out`
        p = subprocess.Popen(argv, stdout=subprocess.PIPE if pipe else f,
                             stderr=f if pipe else subprocess.STDOUT, env=env,
                             start_new_session=True)
        p.name, p.logf = name, f
        with self.lock:
            self.procs.append(p)
        return p

    @staticmethod
    def stop(p, grace=3.0, sig=signal.SIGTERM):
        if p.poll() is None:
            try:
                p.send_signal(sig)
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass

    def stop_all(self):
        with self.lock:
            procs = list(reversed(self.procs))
            self.procs = []
        for p in procs:
            self.stop(p)
            try:
                p.logf.close()
            except OSError:
                pass


class LineTap(threading.Thread):
    """Reads a child's stdout line by line, stamping each line with the
    monotonic clock as it arrives (CLOCK_MONOTONIC, the clock of the timing
    files), and copies it to a file."""

    def __init__(self, proc, path):
        super().__init__(daemon=True)
        self.proc, self.path = proc, path
        self.lines = []  # (mono_ns, text)
        self.start()

    def run(self):
        with open(self.path, "w") as f:
            for raw in self.proc.stdout:
                now = time.monotonic_ns()
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append((now, line))
                f.write(line + "\n")
                f.flush()

    def last(self, prefix):
        for _, line in reversed(self.lines):
            if line.startswith(prefix):
                return line
        return None


def wait_file(path, seconds, proc=None, what=""):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s = read(path).strip()
        if s:
            return s
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited early (status %s)" % (what, proc.returncode))
        time.sleep(0.02)
    raise RuntimeError("timed out waiting for " + (what or path))


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return {}
    return {}


class Progress:
    """One line while a run goes on; a line per run when it ends."""

    def __init__(self, total):
        self.total, self.done = total, 0
        self.t0 = time.monotonic()
        self.tty = sys.stdout.isatty()
        self.last_print = 0.0
        self.run_time = []

    def eta(self):
        if not self.run_time:
            return ""
        left = (self.total - self.done) * (sum(self.run_time) / len(self.run_time))
        return ", about %d:%02d left" % (left // 60, left % 60)

    def tick(self, rid, text):
        now = time.monotonic()
        if self.tty:
            sys.stdout.write("\r\033[K  [%d/%d] %s: %s" % (self.done + 1, self.total, rid, text))
            sys.stdout.flush()
        elif now - self.last_print >= 5:
            self.last_print = now
            print("  [%d/%d] %s: %s" % (self.done + 1, self.total, rid, text), flush=True)

    def finish(self, rid, seconds, summary):
        self.done += 1
        self.run_time.append(seconds)
        if self.tty:
            sys.stdout.write("\r\033[K")
        print("[%d/%d] %s (%.0f s): %s%s" % (self.done, self.total, rid, seconds, summary,
                                             self.eta()), flush=True)


# --------------------------------------------------------------- the runs


REHEARSAL_SEED = 50


def read_rehearsal(path):
    """The figures of a hub's --rehearsal file ({} if there is none)."""
    fig = {}
    try:
        with open(path) as f:
            for line in f:
                k = line.split()
                if len(k) == 2 and not line.startswith("#"):
                    fig[k[0]] = k[1]
    except OSError:
        pass
    return fig


class Runner:
    def __init__(self, a):
        self.a = a
        self.tutti = a.tutti
        self.procs = Procs()
        self.auto = a.horizon_mode == "auto"
        self.rehearsal_file = None  # the hub's --rehearsal, while one is in use

    def rehearses(self, r):
        """A run without a fault plays a gig's network: it is rehearsed first,
        as musicians would (the fault runs measure recovery from a cold
        start)."""
        return self.auto and self.a.rehearse > 0 and r["fault"] == "none"

    def rehearse(self, r, rwork, prog):
        """The rehearsal of run r: the same condition with other draws of the
        relays (seed + REHEARSAL_SEED), --rehearse seconds at most, its hub
        writing what it called for to rwork/rehearsal.txt, which the run's hub
        then starts from (and rewrites); the rehearsal's own figures are kept
        in rwork/rehearsal/rehearsal.txt. Returns them ({} if it failed: the
        run then starts cold)."""
        rr = dict(r, seconds=min(self.a.rehearse, r["seconds"] or self.a.seconds),
                  seed=r.get("seed", 0) + REHEARSAL_SEED)
        rw = os.path.join(rwork, "rehearsal")
        os.makedirs(rw)
        self.rehearsal_file = os.path.join(rwork, "rehearsal.txt")
        try:
            if r["kind"] == "scsynth":
                self.run_scsynth(rr, rw, prog)
            else:
                self.run_members(rr, rw, prog)
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            print("\n%s: the rehearsal failed (%s); the run starts cold" % (run_id(r), e),
                  flush=True)
        finally:
            self.procs.stop_all()
        fig = read_rehearsal(self.rehearsal_file)
        if not fig:
            self.rehearsal_file = None
            return {}
        shutil.copy(self.rehearsal_file, os.path.join(rw, "rehearsal.txt"))
        return fig

    # ---- common pieces

    def horizon_args(self, r):
        if self.auto:
            return ["--auto-horizon", "--horizon", "%g" % self.a.auto_start]
        return ["--horizon", "%g" % self.fixed_horizon(r)]

    def fixed_horizon(self, r):
        if self.a.horizon_mode == "rule":
            return max(20.0, 2 * (r["delay"] + 2 * r["jitter"]) + 10)
        return float(self.a.horizon_mode)

    def rt_args(self):
        """The hub, the relays and the members run at real-time priority (as a
        stage machine would): 33 processes on 2 cores otherwise wait up to a
        scheduler period (~100 ms) to run, and that is the host, not the
        network."""
        return [] if self.a.no_realtime else ["--realtime"]

    def relay_spin(self, r):
        """Spinning to a deadline costs CPU in every relay; sessions of 8 and 16
        members (a relay each) leave the cores to the members instead."""
        if self.a.relay_spin != "auto":
            return float(self.a.relay_spin)
        return 500.0 if r["n"] <= 3 else 0.0

    def start_server(self, s, plugin_dir):
        s["tries"] += 1
        s["proc"] = self.procs.start(s["name"], scsynth_argv(s["port"], plugin_dir), s["log"],
                                     s["env"])

    def start_hub(self, r, work, suspect=None):
        url_file = os.path.join(work, "hub.url")
        argv = [self.tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--url-file", url_file,
                "--duration", "600"] + self.horizon_args(r) + self.rt_args()
        if self.rehearsal_file:
            argv += ["--rehearsal", self.rehearsal_file]
        if suspect:
            argv += ["--suspect", str(suspect)]
        hub = self.procs.start("hub", argv, os.path.join(work, "hub.log"), pipe=True)
        hub.tap = LineTap(hub, os.path.join(work, "hub.out"))
        url = wait_file(url_file, 10, hub, "the hub")
        return hub, url

    def start_relays(self, r, work, hub_url, names, fault_member, fault_at):
        relays = []
        for i, name in enumerate(names):
            url_file = os.path.join(work, "relay-%s.url" % name)
            argv = [self.tutti, "netsim", "--listen", "127.0.0.1:0", "--to", hub_url,
                    "--url-file", url_file, "--delay", "%g" % r["delay"], "--jitter",
                    "%g" % r["jitter"], "--dist", r["dist"], "--loss", "%g" % r["loss"],
                    "--seed", str(1000 * (1 + self.a.seed) + 100000 * r.get("seed", 0) +
                                  17 * i + 1),
                    "--duration", "600", "--spin-max", "%g" % self.relay_spin(r),
                    "--jitter-model", self.a.jitter_model] + self.rt_args()
            if name == fault_member and r["fault"] in ("partition", "rejoin"):
                argv += ["--event", "at %.3fs partition %gs" % (fault_at, self.a.partition)]
            p = self.procs.start("relay-" + name, argv,
                                 os.path.join(work, "relay-%s.log" % name), pipe=True)
            p.tap = LineTap(p, os.path.join(work, "relay-%s.out" % name))
            relays.append(p)
        urls = []
        for name, p in zip(names, relays):
            urls.append(wait_file(os.path.join(work, "relay-%s.url" % name), 10, p,
                                  "the relay of " + name))
        return relays, urls

    @staticmethod
    def relay_events(relay):
        """The relay's partition as monotonic times (begin, end), from its log:
        lines say 'netsim T s: ...' with T since its start, so its start is at
        most (arrival - T) for every line; the smallest is the best bound."""
        start = None
        for mono, line in relay.tap.lines:
            m = re.match(r"netsim (\d+\.\d+) s: ", line)
            if m:
                s = mono - int(float(m.group(1)) * NS)
                start = s if start is None else min(start, s)
        begin = end = None
        for mono, line in relay.tap.lines:
            m = re.match(r"netsim (\d+\.\d+) s: partition (begins|ends)", line)
            if m and start is not None:
                t = start + int(float(m.group(1)) * NS)
                if m.group(2) == "begins":
                    begin = t
                else:
                    end = t
        return begin, end

    def stop_relays_and_hub(self, relays, hub, work):
        summaries = {}
        for p in relays:
            self.procs.stop(p)
        for p in relays:
            p.tap.join(2)
            summaries[p.name] = last_json("\n".join(l for _, l in p.tap.lines))
        self.procs.stop(hub)
        hub.tap.join(2)
        return last_json("\n".join(l for _, l in hub.tap.lines)), summaries

    def progress_text(self, hub, t0, extra=""):
        line = hub.tap.last("hub:") or "hub starting"
        m = re.match(r"hub: (\d+) members?, L ([\d.]+) ms, relayed (\d+)", line)
        if m:
            line = "%s members, L %s ms, relayed %s" % m.groups()
        return "%.0f s, %s%s" % (time.monotonic() - t0, line, extra)

    # ---- a session of `tutti member` processes

    def run_members(self, r, work, prog):
        n, a = r["n"], self.a
        seconds = r["seconds"] or a.seconds
        names = ["m%02d" % (i + 1) for i in range(n)]
        fault_member = names[-1] if r["fault"] != "none" else None
        join_allow = 1.5 + 8 * (r["delay"] + 2 * r["jitter"]) / 1000.0 + 0.05 * n
        fault_at = join_allow + a.fault_at
        # partition: the hub keeps the member's place through it; rejoin: the
        # member is removed after 1 s and joins again
        suspect = {"partition": 10000, "rejoin": 1000}.get(r["fault"])
        t0 = time.monotonic()
        hub, hub_url = self.start_hub(r, work, suspect)
        relays, urls = self.start_relays(r, work, hub_url, names, fault_member, fault_at)
        relay_t0 = time.monotonic()
        events = int(round(a.rate * seconds))
        duration = join_allow + seconds + 3.0
        members = {}
        for name, url in zip(names, urls):
            argv = [self.tutti, "member", "--hub", url, "--name", name, "--events",
                    str(events), "--rate", "%g" % a.rate, "--lead-max", "0",
                    "--wait-members", str(n), "--duration", "%.1f" % duration,
                    "--journal", os.path.join(work, name + ".journal"),
                    "--timing", os.path.join(work, name + ".timing"),
                    "--timeout", "%.0f" % (duration + 40), "--quiet"] + self.rt_args()
            if r["fault"] == "rejoin":
                argv.append("--rejoin")
            members[name] = self.procs.start(name, argv, os.path.join(work, name + ".log"),
                                             pipe=True)
            members[name].tap = LineTap(members[name], os.path.join(work, name + ".out"))
        crash_at = None
        deadline = time.monotonic() + duration + 50
        while time.monotonic() < deadline:
            running = [m for m in members.values() if m.poll() is None]
            if not running:
                break
            if (r["fault"] == "crash" and crash_at is None and
                    time.monotonic() - relay_t0 >= fault_at):
                crash_at = time.monotonic_ns()
                members[fault_member].send_signal(signal.SIGKILL)
            prog.tick(run_id(r), self.progress_text(
                hub, t0, ", %d/%d members done" % (n - len(running), n)))
            time.sleep(0.25)
        for m in members.values():
            self.procs.stop(m)
            m.tap.join(2)
        hub_json, relay_json = self.stop_relays_and_hub(relays, hub, work)
        part = None
        if fault_member and r["fault"] in ("partition", "rejoin"):
            part = self.relay_events([p for p in relays if p.name == "relay-" + fault_member][0])
        out = {}
        for name, p in members.items():
            j = last_json("\n".join(l for _, l in p.tap.lines))
            out[name] = {"json": j, "rc": p.returncode, "crashed": name == fault_member and
                         r["fault"] == "crash",
                         "journal": os.path.join(work, name + ".journal"),
                         "timing": os.path.join(work, name + ".timing"),
                         "log": os.path.join(work, name + ".log")}
        return {"hub": hub_json, "relays": relay_json, "members": out,
                "fault_member": fault_member, "partition": part, "crash_at": crash_at,
                "wall": time.monotonic() - t0}

    # ---- a session of real scsynth servers with the plugin

    def run_scsynth(self, r, work, prog):
        a = self.a
        if not all(shutil.which(t) for t in ("scsynth", "jackd", "jack_wait")):
            raise RuntimeError("scsynth or jackd is not installed (scripts/deps.sh)")
        plugin_dir = a.plugin_dir or os.path.join(os.path.dirname(self.tutti), "plugin")
        if not os.path.exists(os.path.join(plugin_dir, "TuttiProxy.so")):
            raise RuntimeError("no TuttiProxy.so in %s (build with -DTUTTI_BUILD_PLUGIN=ON)"
                               % plugin_dir)
        n = r["n"]
        seconds = r["seconds"] or a.seconds
        bpm = 120.0
        bars = max(2, int(round(seconds / (4 * 60.0 / bpm))))
        play_s = bars * 4 * 60.0 / bpm
        names = ["member%d" % (i + 1) for i in range(n)]
        fault_member = names[-1] if r["fault"] != "none" else None
        suspect = {"partition": 10000, "rejoin": 1000}.get(r["fault"])
        env = dict(os.environ, JACK_DEFAULT_SERVER=JACK_NAME, JACK_NO_START_SERVER="1")
        t0 = time.monotonic()
        jack = self.procs.start("jackd", ["jackd", "-r", "-d", "dummy", "-r", "48000", "-p",
                                          "256"], os.path.join(work, "jackd.out"), env)
        if subprocess.run(["jack_wait", "-w", "-t", "10"], env=env,
                          capture_output=True).returncode:
            raise RuntimeError("jackd did not start: " + read(os.path.join(work, "jackd.out")))
        hub, hub_url = self.start_hub(r, work, suspect)
        # the partition is placed later, once the clients' start is known: a
        # relay's events count from its own start, so start its clock now and
        # give it the time then; instead, the relays start now with the event
        # placed at the expected moment (boot + lead-in + fault_at).
        boot_allow = 4.0 + 8 * (r["delay"] + 2 * r["jitter"]) / 1000.0
        lead_in = 3.0
        fault_at = boot_allow + lead_in + a.fault_at
        relays, urls = self.start_relays(r, work, hub_url, names, fault_member, fault_at)
        relay_t0 = time.monotonic()
        servers = []
        for k, (name, url) in enumerate(zip(names, urls)):
            port = free_port()
            journal = os.path.join(work, name + ".journal")
            senv = dict(env, TUTTI_PROXY_PORT="0", TUTTI_CACHE=os.path.join(work, name + "-cache"),
                        TUTTI_HUB=url, TUTTI_NAME=name, TUTTI_SESSION="tutti",
                        TUTTI_JOURNAL=journal)
            log = os.path.join(work, name + ".out")
            servers.append({"name": name, "port": port, "env": senv, "journal": journal,
                            "log": log, "samples": [], "crashed": False, "tries": 0})
            self.start_server(servers[-1], plugin_dir)
        try:
            for s in servers:
                end = time.monotonic() + 30
                while True:
                    m = re.search(r"proxy listening on 127\.0\.0\.1:(\d+)", read(s["log"]))
                    if m:
                        s["proxy"] = int(m.group(1))
                        break
                    if scsynth_port_taken(s["proc"], s["log"]) and s["tries"] < 3:
                        # the port was taken between its choice and the bind
                        s["port"] = free_port()
                        self.start_server(s, plugin_dir)
                        continue
                    if time.monotonic() > end or s["proc"].poll() is not None:
                        raise RuntimeError(s["name"] + ": no proxy port: " + read(s["log"])[-400:])
                    time.sleep(0.05)
            poller = StatusPoller(servers)
            end = time.monotonic() + 30
            while not all((poller.latest(s) or {}).get("members") == n and
                          (poller.latest(s) or {}).get("mode") == "session" for s in servers):
                if time.monotonic() > end:
                    raise RuntimeError("the servers did not all join: %s" %
                                       [poller.latest(s) for s in servers])
                prog.tick(run_id(r), self.progress_text(hub, t0, ", servers joining"))
                time.sleep(0.1)
            # bar 0 at the moment the partition was planned around
            start_mono = relay_t0 + boot_allow + lead_in
            if start_mono - time.monotonic() < 1.5:
                start_mono = time.monotonic() + 1.5  # a slow boot: the fault moves with it
            start_ntp = time.time() + (start_mono - time.monotonic()) + 2208988800.0
            clients = []
            for k, s in enumerate(servers):
                part = TRIO_PARTS[k % len(TRIO_PARTS)]
                s["client"] = self.procs.start(
                    s["name"] + "-" + part,
                    [sys.executable, os.path.join(TOP, "examples", "trio", "part.py"), "--part",
                     part, "--port", str(s["proxy"]), "--start", "%.6f" % start_ntp, "--bpm",
                     str(bpm), "--bars", str(bars), "--lead", "%.2f" % a.client_lead,
                     "--samples", os.path.join(work, "samples-" + s["name"])],
                    os.path.join(work, s["name"] + "-client.out"), env)
                clients.append(s["client"])
            crash_at = None
            deadline = start_mono + play_s + 25
            while time.monotonic() < deadline and any(c.poll() is None for c in clients):
                if (r["fault"] == "crash" and crash_at is None and
                        time.monotonic() >= relay_t0 + fault_at):
                    victim = [s for s in servers if s["name"] == fault_member][0]
                    crash_at = time.monotonic_ns()
                    victim["proc"].send_signal(signal.SIGKILL)
                    victim["crashed"] = True
                    poller.forget(victim)
                    self.procs.stop(victim["client"])  # its machine is gone, client too
                prog.tick(run_id(r), self.progress_text(hub, t0, ", playing %d bars" % bars))
                time.sleep(0.25)
            for s in servers:
                self.procs.stop(s["client"])
            time.sleep(0.5)
            poller.stop()
            for s in servers:
                if not s["crashed"] and s["proc"].poll() is None:
                    subprocess.run([self.tutti, "leave", "--proxy", str(s["proxy"])],
                                   capture_output=True, timeout=10)
            for s in servers:
                if not s["crashed"] and s["proc"].poll() is None:
                    request(s["port"], tuttiosc.message("/quit"), "/done")
            for s in servers:
                try:
                    s["proc"].wait(10)
                except subprocess.TimeoutExpired:
                    self.procs.stop(s["proc"])
        finally:
            for s in servers:
                self.procs.stop(s["proc"])
                try:
                    os.unlink("/dev/shm/SuperColliderServer_%d" % s["port"])
                except OSError:
                    pass
            self.procs.stop(jack)
            clear_jack_shm(JACK_NAME)
        hub_json, relay_json = self.stop_relays_and_hub(relays, hub, work)
        part = None
        if fault_member and r["fault"] in ("partition", "rejoin"):
            part = self.relay_events([p for p in relays if p.name == "relay-" + fault_member][0])
        out = {}
        for s in servers:
            client = last_json(read(os.path.join(work, s["name"] + "-client.out")))
            out[s["name"]] = {"samples": s["samples"], "crashed": s["crashed"],
                              "journal": s["journal"], "log": s["log"], "client": client,
                              "scsynth_late": len(re.findall(r"^late ", read(s["log"]), re.M)),
                              "failures": len(re.findall(r"FAILURE", read(s["log"])))}
        return {"hub": hub_json, "relays": relay_json, "members": out,
                "fault_member": fault_member, "partition": part, "crash_at": crash_at,
                "start_mono": int(start_mono * NS), "play_s": play_s,
                "hub_log": os.path.join(work, "hub.log"),
                "wall": time.monotonic() - t0}


class StatusPoller(threading.Thread):
    """Asks every server's proxy for /cmd tutti status every 100 ms; keeps
    (monotonic ns, status dict) per server."""

    def __init__(self, servers, period=0.1):
        super().__init__(daemon=True)
        self.servers, self.period = list(servers), period
        self.halt = threading.Event()
        self.socks = {}
        for s in self.servers:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            u.settimeout(0.2)
            self.socks[s["name"]] = u
        self.start()

    def forget(self, s):
        self.servers = [x for x in self.servers if x is not s]

    def latest(self, s):
        return s["samples"][-1][1] if s["samples"] else None

    def stop(self):
        self.halt.set()
        self.join(2)

    def run(self):
        req = tuttiosc.message("/cmd", "tutti", "status")
        while not self.halt.is_set():
            for s in list(self.servers):
                u = self.socks[s["name"]]
                try:
                    u.sendto(req, ("127.0.0.1", s["proxy"]))
                    while True:
                        b = u.recv(8192)
                        addr, args = tuttiosc.decode(b)
                        if addr == "/tutti/status":
                            break
                except (OSError, tuttiosc.OscError):
                    continue
                now = time.monotonic_ns()
                st = {args[i]: args[i + 1] for i in range(0, len(args) - 1, 2)}
                s["samples"].append((now, st))
            self.halt.wait(self.period)


# ------------------------------------------------------------- measuring


def quantile(xs, q):
    """q-quantile of a sorted list (linear interpolation); None if empty."""
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    pos = q * (len(xs) - 1)
    i = int(math.floor(pos))
    if i + 1 >= len(xs):
        return xs[-1]
    return xs[i] + (xs[i + 1] - xs[i]) * (pos - i)


def complete_lines(path):
    """The lines of a file that end in a newline (a killed process leaves a
    torn last line)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    cut = data.rfind(b"\n")
    if cut < 0:
        return []
    return data[:cut].decode("utf-8", "replace").split("\n")


def parse_journal(path):
    out = []
    for line in complete_lines(path):
        p = line.split(" ", 4)
        if len(p) < 5:
            continue
        try:
            out.append(((int(p[0]), int(p[1]), int(p[2])), p[3] + " " + p[4]))
        except ValueError:
            continue
    return out


def parse_timing(path):
    t = {"epoch": None, "s": [], "d": [], "c": [], "n": []}
    for line in complete_lines(path):
        p = line.split(" ")
        try:
            if p[0] == "d":
                # local est t origin seq kind incarnation tag
                t["d"].append((int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6]),
                               int(p[7]), p[8]))
            elif p[0] == "s":
                t["s"].append((int(p[1]), int(p[2]), int(p[3]), p[4]))
            elif p[0] == "c":
                t["c"].append((int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6])))
            elif p[0] == "n":
                t["n"].append((int(p[1]), int(p[2]), " ".join(p[3:])))
            elif line.startswith("# tutti member timing"):
                m = re.search(r"epoch_ns (-?\d+)", line)
                if m:
                    t["epoch"] = int(m.group(1))
        except (ValueError, IndexError):
            continue
    return t


def coherence(journals, segments_of, tutti):
    """journals: name -> [(key, content)]; segments_of: name -> list of
    [start, end) index ranges, one per incarnation. Counts, per member and
    incarnation, events out of order and events of the union missing inside
    the key range it covers; and keys delivered with different contents."""
    union, mismatched = {}, set()
    for lines in journals.values():
        for key, content in lines:
            c = union.setdefault(key, content)
            if c != content:
                mismatched.add(key)
    keys = sorted(union)
    per = {}
    for name, lines in journals.items():
        mis = miss = dup = 0
        segs = segments_of.get(name) or [(0, len(lines))]
        covered = 0
        for a, b in segs:
            seg = lines[a:b]
            if not seg:
                continue
            top = None
            seen = set()
            for key, _ in seg:
                if key in seen:
                    dup += 1
                elif top is not None and key < top:
                    mis += 1
                seen.add(key)
                if top is None or key > top:
                    top = key
            lo, hi = min(seen), max(seen)
            i, j = bisect.bisect_left(keys, lo), bisect.bisect_right(keys, hi)
            miss += (j - i) - len(seen)
            covered += j - i
        per[name] = {"misordered": mis + dup, "missing": miss, "covered": covered,
                     "lines": len(lines), "segments": len(segs)}
    return {"union": len(union), "mismatched": len(mismatched), "members": per}


def verify(tutti, paths):
    """`tutti verify` over journals; (ok, first line of its verdict)."""
    paths = [p for p in paths if os.path.exists(p) and os.path.getsize(p) > 0]
    if len(paths) < 2:
        return None, "fewer than two journals"
    r = subprocess.run([tutti, "verify"] + paths, capture_output=True, text=True)
    out = (r.stdout or r.stderr).strip().splitlines()
    return r.returncode == 0, out[0] if out else ""


def stats(xs, scale=1.0):
    xs = sorted(xs)
    if not xs:
        return {"n": 0, "p50": None, "p99": None, "p999": None, "max": None}
    return {"n": len(xs), "p50": quantile(xs, 0.5) / scale, "p99": quantile(xs, 0.99) / scale,
            "p999": quantile(xs, 0.999) / scale, "max": xs[-1] / scale}


def analyse_members(r, res, a):
    """Everything measured in a run of `tutti member` processes."""
    hub = res["hub"]
    ms = res["members"]
    timings = {n: parse_timing(m["timing"]) for n, m in ms.items()}
    epoch = hub.get("session_epoch_ns") or next(
        (t["epoch"] for t in timings.values() if t["epoch"]), 0)
    journals = {n: parse_journal(m["journal"]) for n, m in ms.items()}
    # incarnations: the timing file's d lines run in step with the journal's
    segments = {}
    for n, t in timings.items():
        incs = [d[6] for d in t["d"]][:len(journals[n])]
        journals[n] = journals[n][:len(incs)] if incs else journals[n]
        segs, start = [], 0
        for i in range(1, len(incs) + 1):
            if i == len(incs) or incs[i] != incs[start]:
                segs.append((start, i))
                start = i
        segments[n] = segs
    coh = coherence(journals, segments, a.tutti)
    # tutti verify: the members that never left the session early or crashed,
    # together; every other piece against the longest of those
    whole = [n for n in ms if not ms[n]["crashed"] and len(segments[n]) <= 1]
    ref = max(whole, key=lambda n: len(journals[n])) if whole else None
    ok, verdict = verify(a.tutti, [ms[n]["journal"] for n in whole])
    extra_ok = True
    work = os.path.dirname(ms[next(iter(ms))]["journal"])
    if ref:
        for n in ms:
            if n in whole:
                continue
            for k, (s0, s1) in enumerate(segments[n] or [(0, len(journals[n]))]):
                piece = os.path.join(work, "%s.part%d.journal" % (n, k + 1))
                with open(piece, "w") as f:
                    for key, content in journals[n][s0:s1]:
                        f.write("%d %d %d %s\n" % (key[0], key[1], key[2], content))
                pok, pv = verify(a.tutti, [ms[ref]["journal"], piece])
                if pok is False:
                    extra_ok = False
                    verdict = "%s part %d: %s" % (n, k + 1, pv)
    # submissions and deliveries
    subs = {}
    origin_of = {}
    for n, t in timings.items():
        for local, est, req, tag in t["s"]:
            subs[tag] = (local, est)
            origin_of[tag] = n
    all_s = [v[0] for v in subs.values()]
    first_sub = min(all_s) if all_s else 0
    last_sub = max(all_s) if all_s else 0
    win0 = first_sub + int(a.warmup * NS)
    fault_t = None
    if res["partition"] and res["partition"][0]:
        fault_t = res["partition"][0]
    if res["crash_at"]:
        fault_t = res["crash_at"]
    lead = int(a.lead * MS)
    delay_of = {}  # tag -> max over members of delivery(est) - submission(est)
    delay_true = {}
    used_L = []
    per = {}
    late_all, late_true_all = [], []
    late_at = []  # when the late events were submitted, s into playing
    warm_total = warm_late = 0
    for n, t in timings.items():
        lat, ontime, ontime5, total = [], 0, 0, 0
        for local, est, tt, origin, seq, kind, inc, tag in t["d"]:
            if kind != 0 or tag not in subs:
                continue
            s_local, s_est = subs[tag]
            lateness = est - (tt - lead)
            if s_local < win0:
                warm_total += 1
                warm_late += lateness > 0
                continue
            total += 1
            if lateness <= 0:
                ontime += 1
            else:
                late_at.append((s_local - first_sub) / NS)
            if est - (tt - 5 * MS) <= 0:
                ontime5 += 1
            lat.append(lateness)
            late_true_all.append(local + epoch - (tt - lead))
            d = est - s_est
            if d > delay_of.get(tag, -1 << 62):
                delay_of[tag] = d
            dt = local - s_local
            if dt > delay_true.get(tag, -1 << 62):
                delay_true[tag] = dt
            if n == origin_of.get(tag):
                used_L.append(tt - s_est)
        late_all += lat
        # clock error once locked, after the warm-up
        errs = [est - (local + epoch) for local, est, bound, locked, hz, rtt in t["c"]
                if locked and local >= win0]
        horizons = [hz for local, est, bound, locked, hz, rtt in t["c"] if local >= win0 and hz]
        j = ms[n]["json"]
        per[n] = {"delivered": total, "on_time": ontime,
                  "on_time_share": ontime / total if total else None,
                  "on_time5_share": ontime5 / total if total else None,
                  "lateness": stats(lat, MS), "clock_err_abs": stats([abs(e) for e in errs], 1e3),
                  "clock_err": errs, "horizon_max": max(horizons) if horizons else None,
                  "incarnations": len(segments[n]), "crashed": ms[n]["crashed"],
                  "ok": j.get("ok"), "rc": ms[n]["rc"],
                  "misordered": coh["members"][n]["misordered"],
                  "missing": coh["members"][n]["missing"],
                  "journal_lines": coh["members"][n]["lines"]}
    # steady-state figures: only events submitted after the warm-up, and in
    # a fault run only before the fault (the fault has its own figures)
    D = sorted(v for k, v in delay_of.items())
    Dt = sorted(delay_true.values())
    used_L.sort()
    errs_all = sorted(abs(e) for p in per.values() for e in p["clock_err"])
    out = {"epoch": epoch, "coherence": coh, "verify_ok": ok, "verify_extra_ok": extra_ok,
           "verify": verdict, "members": per, "lead_ms": a.lead,
           "events": len(subs), "measured_events": len(delay_of),
           "D": stats(D, MS), "D_true": stats(Dt, MS), "L": stats(used_L, MS),
           "lateness": stats(late_all, MS), "lateness_true": stats(late_true_all, MS),
           "clock_err_abs_us": stats(errs_all, 1e3),
           "lateness_cdf": cdf(sorted(late_all), MS), "clock_cdf": cdf(errs_all, 1e3),
           "first_sub": first_sub, "last_sub": last_sub, "warmup_s": a.warmup}
    out["L_min_ms"] = (D[-1] + lead) / MS if D else None
    shares = [p["on_time_share"] for n, p in per.items()
              if p["on_time_share"] is not None and not p["crashed"]]
    out["on_time_min"] = min(shares) if shares else None
    out.update(fault_shares(per, res["fault_member"]))
    shares5 = [p["on_time5_share"] for n, p in per.items()
               if p["on_time5_share"] is not None and not p["crashed"]]
    out["on_time5_min"] = min(shares5) if shares5 else None
    out["warmup_deliveries"], out["warmup_late"] = warm_total, warm_late
    out["late_from_s"] = min(late_at) if late_at else None
    out["late_to_s"] = max(late_at) if late_at else None
    out["on_time_all"] = (sum(p["on_time"] for p in per.values()) /
                          max(1, sum(p["delivered"] for p in per.values())))
    # faults
    if res["partition"] and res["partition"][1]:
        out.update(recovery_after(res["partition"][1], timings, ms, r, lead,
                                  res["fault_member"], subs))
        out["partition_begin"], out["partition_end"] = res["partition"]
        out["timeline"] = timeline(timings, res["partition"][0] - 2 * NS,
                                   res["partition"][1] + 5 * NS, lead, ms)
        out["timeline_t0"] = res["partition"][0] - 2 * NS
    if res["crash_at"]:
        out.update(recovery_after(res["crash_at"], timings, ms, r, lead, res["fault_member"],
                                  subs, crash=True))
        out["timeline"] = timeline(timings, res["crash_at"] - 2 * NS, res["crash_at"] + 5 * NS,
                                   lead, ms)
        out["timeline_t0"] = res["crash_at"] - 2 * NS
    out["fault_mono"] = fault_t
    # L over the run, as the first member that stayed saw it: (mono ns, L ns)
    keep = [n for n in sorted(timings) if not ms[n]["crashed"]]
    if keep:
        out["horizon_series"] = [(c[0], c[4]) for c in timings[keep[0]]["c"] if c[4]]
    play = [(t, hz) for t, hz in out.get("horizon_series", []) if first_sub <= t <= last_sub]
    if play:
        peak = max(play, key=lambda p: p[1])
        out["L_peak_ms"], out["L_peak_at_s"] = peak[1] / MS, (peak[0] - first_sub) / NS
        out["L_end_ms"] = play[-1][1] / MS
    if fault_t and out.get("horizon_series"):
        after = [hz for t, hz in out["horizon_series"] if t >= fault_t]
        before = [hz for t, hz in out["horizon_series"] if win0 <= t < fault_t]
        out["L_before_fault_ms"] = before[-1] / MS if before else None
        out["L_after_fault_max_ms"] = max(after) / MS if after else None
        out["L_end_ms"] = after[-1] / MS if after else None
    return out


def cdf(xs, scale):
    """The distribution for the plots: every percentile, then every sample of
    the top 1 % (at most 2000), each with its share of samples at or below."""
    if not xs:
        return []
    out = [(i / 100, quantile(xs, i / 100) / scale) for i in range(0, 99)]
    k = len(xs)
    top = max(0, int(k * 0.99))
    step = max(1, (k - top) // 2000)
    for i in range(top, k, step):
        out.append(((i + 1) / k, xs[i] / scale))
    if out[-1][0] < 1.0:
        out.append((1.0, xs[-1] / scale))
    return out


def crash_stall_end(times, t_crash):
    """A pause in the survivors' deliveries after a crash. (When delivery
    waited for every member's promise, survivors stalled until the hub
    removed the crashed member; now the hub closes session time itself and
    there should be none.) The stall is the first pause after the crash
    longer than max(250 ms, 1.5 x the longest pause in the 5 s before it);
    returns seconds from the crash to its end (0: no stall; None: no
    delivery after the crash)."""
    before = [t for t in times if t_crash - 5 * NS <= t <= t_crash]
    usual = max((b - a for a, b in zip(before, before[1:])), default=0)
    limit = max(250 * MS, int(1.5 * usual))
    prev = None
    for t in times:
        if prev is not None and prev >= t_crash and t - prev > limit:
            return (t - t_crash) / NS
        prev = t
    return 0.0 if any(t > t_crash for t in times) else None


def recovery_after(t_end, timings, ms, r, lead, fault_member, subs, crash=False):
    """From t_end (a partition's end, or a crash): for every member still in
    the session, the first delivery after t_end (the session is whole again
    once every member delivers), and the last late delivery after it (on time
    again). After a crash, survivors stall until the hub removes the crashed
    member: the first delivery after that stall counts."""
    first, ontime_again = {}, {}
    for n, t in timings.items():
        if ms[n]["crashed"]:
            continue
        ds = sorted(t["d"])
        after = [d for d in ds if d[0] > t_end]
        if crash:
            # only while the session plays: the pause after the last events
            # (the run winding down) is no stall
            playing_end = max((v[0] for v in subs.values()), default=t_end) + NS
            first[n] = crash_stall_end([d[0] for d in ds if d[0] <= playing_end], t_end)
        else:
            first[n] = (after[0][0] - t_end) / NS if after else None
        last_late = None
        for local, est, tt, origin, seq, kind, inc, tag in after:
            if kind == 0 and est - (tt - lead) > 0:
                last_late = local
        ontime_again[n] = (last_late - t_end) / NS if last_late else 0.0
    vals = [v for v in first.values() if v is not None]
    whole = max(vals) if vals and len(vals) == len(first) else None
    key = "crash" if crash else "partition"
    return {key + "_resume_s": whole, key + "_ontime_s": max(ontime_again.values() or [None]),
            key + "_resume_by_member": first}


def timeline(timings, t0, t1, lead, ms, binw=100 * MS):
    """Deliveries per 100 ms and the worst lateness in each bin, per member."""
    rows = []
    for n, t in sorted(timings.items()):
        bins = {}
        for local, est, tt, origin, seq, kind, inc, tag in t["d"]:
            if t0 <= local < t1 and kind == 0:
                b = (local - t0) // binw
                c, worst = bins.get(b, (0, None))
                late = (est - (tt - lead)) / MS
                bins[b] = (c + 1, late if worst is None else max(worst, late))
        for b in range((t1 - t0) // binw):
            c, worst = bins.get(b, (0, None))
            rows.append((n, (b * binw) / NS, c, worst))
    return rows


def analyse_scsynth(r, res, a):
    hub = res["hub"]
    ms = res["members"]
    journals = {n: parse_journal(m["journal"]) for n, m in ms.items()}
    coh = coherence(journals, {}, a.tutti)
    whole = [n for n in ms if not ms[n]["crashed"]]
    ok, verdict = verify(a.tutti, [ms[n]["journal"] for n in whole])
    extra_ok = True
    for n in ms:
        if ms[n]["crashed"] and whole:
            # the complete lines of a killed server's journal
            piece = ms[n]["journal"] + ".complete"
            with open(piece, "w") as fh:
                for key, content in journals[n]:
                    fh.write("%d %d %d %s\n" % (key[0], key[1], key[2], content))
            pok, pv = verify(a.tutti, [ms[whole[0]]["journal"], piece])
            if pok is False:
                extra_ok, verdict = False, "%s: %s" % (n, pv)
    start = res["start_mono"]
    win0 = start + int(a.warmup * NS)
    per = {}
    errs_all = []
    for n, m in ms.items():
        smp = m["samples"]
        errs = [st["clock_offset_ms"] * 1e6 for t, st in smp  # ns, like the members'
                if t >= win0 and st.get("clock_locked") and "clock_offset_ms" in st]
        errs_all += [abs(e) for e in errs]
        last = smp[-1][1] if smp else {}
        # delivered and late counted from the start of the warm-up window
        base = next((st for t, st in smp if t >= win0), {})
        delivered = (last.get("delivered", 0) - base.get("delivered", 0)) if base else 0
        late = (last.get("late", 0) - base.get("late", 0)) if base else 0
        hz = [st.get("horizon_ms") for t, st in smp if t >= win0 and st.get("horizon_ms")]
        per[n] = {"delivered": delivered, "on_time": delivered - late,
                  "on_time_share": (delivered - late) / delivered if delivered else None,
                  "late_total": last.get("late"), "delivered_total": last.get("delivered"),
                  "clock_err_abs": stats([abs(e) for e in errs], 1e3), "clock_err": errs,
                  "horizon_ms": sorted(hz), "crashed": m["crashed"],
                  "scsynth_late": m["scsynth_late"], "failures": m["failures"],
                  "client_ok": bool(m["client"].get("ok")), "incarnations": 1,
                  "misordered": coh["members"][n]["misordered"],
                  "missing": coh["members"][n]["missing"],
                  "journal_lines": coh["members"][n]["lines"],
                  "lateness": stats([]), "ok": not m["crashed"]}
    hz_all = sorted(h for p in per.values() for h in p["horizon_ms"])
    shares = [p["on_time_share"] for p in per.values()
              if p["on_time_share"] is not None and not p["crashed"]]
    out = {"coherence": coh, "verify_ok": ok, "verify_extra_ok": extra_ok, "verify": verdict,
           "members": per, "lead_ms": 5.0, "events": None, "measured_events": None,
           "D": stats([]), "D_true": stats([]), "L": stats(hz_all), "lateness": stats([]),
           "lateness_true": stats([]), "clock_err_abs_us": stats(sorted(errs_all), 1e3),
           "lateness_cdf": [], "clock_cdf": cdf(sorted(errs_all), 1e3), "L_min_ms": None,
           "on_time_min": min(shares) if shares else None,
           "on_time_all": (sum(p["on_time"] for p in per.values()) /
                           max(1, sum(p["delivered"] for p in per.values())))}
    out.update(fault_shares(per, res["fault_member"]))
    # recovery: from the status samples (100 ms apart): the first sample
    # after the end in which every member's delivered count has grown
    for key, t_end in (("partition", (res["partition"] or (None, None))[1]),
                       ("crash", res["crash_at"])):
        if not t_end:
            continue
        first = {}
        for n, m in ms.items():
            if m["crashed"]:
                continue
            smp = m["samples"]
            # after a crash as after a partition: the first poll that saw new
            # deliveries (nobody waits for the crashed member's removal)
            before = [st for t, st in smp if t <= t_end]
            base = before[-1].get("delivered") if before else None
            nxt = [t for t, st in smp if t > t_end and st.get("delivered") != base]
            first[n] = (nxt[0] - t_end) / NS if nxt else None
        vals = [v for v in first.values() if v is not None]
        out[key + "_resume_s"] = max(vals) if vals and len(vals) == len(first) else None
        out[key + "_ontime_s"] = None
        out[key + "_resume_by_member"] = first
    if res["partition"]:
        out["partition_begin"], out["partition_end"] = res["partition"]
    return out


def fault_shares(per, fault_member):
    """On time in a fault run, the faulty member apart from the others: what
    one member's crash, partition or stall cost the honest ones."""
    if not fault_member:
        return {}
    others = [p["on_time_share"] for n, p in per.items()
              if n != fault_member and p["on_time_share"] is not None and not p["crashed"]]
    faulty = per.get(fault_member) or {}
    return {"on_time_others_min": min(others) if others else None,
            "on_time_faulty": None if faulty.get("crashed") else faulty.get("on_time_share")}


# ------------------------------------------------------------- the output


def fmt(v, digits=1):
    if v is None:
        return ""
    if isinstance(v, float):
        return ("%%.%df" % digits) % v
    return str(v)


RUN_FIELDS = ["run", "group", "kind", "members", "delay_ms", "jitter_ms", "dist", "loss_pct",
              "fault", "horizon_mode", "seconds", "events", "measured_events", "coherent",
              "on_time_others_min_pct", "on_time_faulty_pct", "moved",
              "misordered", "missing", "mismatched", "verify", "divergences", "on_time_min_pct",
              "on_time_all_pct", "lead_ms", "on_time5_min_pct", "warmup_late", "late_from_s",
              "late_to_s", "lateness_p50_ms", "lateness_p99_ms",
              "lateness_p999_ms", "lateness_max_ms", "delay_p50_ms", "delay_p99_ms",
              "delay_p999_ms", "delay_max_ms", "L_p50_ms", "L_max_ms", "L_min_ms",
              "L_bound_ms", "L_ok", "L_peak_ms", "L_peak_at_s", "L_end_ms", "clock_err_p50_us", "clock_err_p99_us", "clock_err_max_us",
              "recovery_s", "ontime_again_s", "removed", "scsynth_late", "failures",
              "members_ok", "relay_spin_us", "rehearsal_L_ms", "rehearsal_s", "load_before",
              "load_after", "wall_s", "error"]

MEMBER_FIELDS = ["run", "member", "crashed", "incarnations", "delivered", "on_time_pct",
                 "lateness_p50_ms", "lateness_p99_ms", "lateness_max_ms", "clock_err_p50_us",
                 "clock_err_p99_us", "clock_err_max_us", "misordered", "missing",
                 "journal_lines", "exit_ok", "scsynth_late"]


def run_row(r, res, m, a, mode_name):
    row = {"run": run_id(r), "group": r["group"], "kind": r["kind"], "members": r["n"],
           "delay_ms": r["delay"], "jitter_ms": r["jitter"], "dist": r["dist"],
           "loss_pct": r["loss"], "fault": r["fault"], "horizon_mode": mode_name,
           "seconds": r["seconds"] or a.seconds, "wall_s": fmt(res.get("wall"), 0)}
    if m is None:
        return row
    coh = m["coherence"]
    mis = sum(p["misordered"] for p in coh["members"].values())
    miss = sum(p["missing"] for p in coh["members"].values())
    div = (res["hub"] or {}).get("divergences")
    coherent = (mis == 0 and miss == 0 and coh["mismatched"] == 0 and m["verify_ok"] is not False
                and m["verify_extra_ok"] and not div)
    row.update({"events": m["events"], "measured_events": m["measured_events"],
                "coherent": int(coherent), "misordered": mis, "missing": miss,
                "mismatched": coh["mismatched"], "verify": m["verify"], "divergences": div,
                "on_time_min_pct": fmt(pct(m["on_time_min"]), 3),
                "on_time_all_pct": fmt(pct(m["on_time_all"]), 3), "lead_ms": m["lead_ms"],
                "on_time5_min_pct": fmt(pct(m.get("on_time5_min")), 3),
                "warmup_late": m.get("warmup_late"),
                "late_from_s": fmt(m.get("late_from_s"), 2),
                "late_to_s": fmt(m.get("late_to_s"), 2),
                "lateness_p50_ms": fmt(m["lateness"]["p50"], 2),
                "lateness_p99_ms": fmt(m["lateness"]["p99"], 2),
                "lateness_p999_ms": fmt(m["lateness"]["p999"], 2),
                "lateness_max_ms": fmt(m["lateness"]["max"], 2),
                "delay_p50_ms": fmt(m["D"]["p50"], 2), "delay_p99_ms": fmt(m["D"]["p99"], 2),
                "delay_p999_ms": fmt(m["D"]["p999"], 2), "delay_max_ms": fmt(m["D"]["max"], 2),
                "L_p50_ms": fmt(m["L"]["p50"], 1), "L_max_ms": fmt(m["L"]["max"], 1),
                "L_min_ms": fmt(m["L_min_ms"], 1),
                "L_peak_ms": fmt(m.get("L_peak_ms"), 1),
                "L_peak_at_s": fmt(m.get("L_peak_at_s"), 1),
                "L_end_ms": fmt(m.get("L_end_ms"), 1),
                "clock_err_p50_us": fmt(m["clock_err_abs_us"]["p50"], 0),
                "clock_err_p99_us": fmt(m["clock_err_abs_us"]["p99"], 0),
                "clock_err_max_us": fmt(m["clock_err_abs_us"]["max"], 0),
                "removed": (res["hub"] or {}).get("removed"),
                "moved": (res["hub"] or {}).get("moved"),
                "on_time_others_min_pct": fmt(pct(m.get("on_time_others_min")), 3),
                "on_time_faulty_pct": fmt(pct(m.get("on_time_faulty")), 3)})
    if m["D"]["p999"] is not None:
        bound = 1.2 * m["D"]["p999"] + 5.0
        row["L_bound_ms"] = fmt(bound, 1)
        row["L_ok"] = int(m["L"]["p50"] is not None and m["L"]["p50"] <= bound)
    if r["fault"] in ("partition", "rejoin"):
        row["recovery_s"] = fmt(m.get("partition_resume_s"), 3)
        row["ontime_again_s"] = fmt(m.get("partition_ontime_s"), 3)
    elif r["fault"] == "crash":
        row["recovery_s"] = fmt(m.get("crash_resume_s"), 3)
        row["ontime_again_s"] = fmt(m.get("crash_ontime_s"), 3)
    if r["kind"] == "scsynth":
        row["scsynth_late"] = sum(p["scsynth_late"] for p in m["members"].values()
                                  if not p["crashed"])
        row["failures"] = sum(p["failures"] for p in m["members"].values() if not p["crashed"])
        row["members_ok"] = sum(1 for p in m["members"].values()
                                if p["client_ok"] and not p["crashed"])
    else:
        row["members_ok"] = sum(1 for p in m["members"].values() if p["ok"])
    return row


def pct(x):
    return None if x is None else 100.0 * x


def member_rows(r, m):
    rows = []
    for n, p in sorted(m["members"].items()):
        ce = p["clock_err_abs"]
        scale = 1.0
        rows.append({"run": run_id(r), "member": n, "crashed": int(p["crashed"]),
                     "incarnations": p["incarnations"], "delivered": p["delivered"],
                     "on_time_pct": fmt(pct(p["on_time_share"]), 3),
                     "lateness_p50_ms": fmt(p["lateness"]["p50"], 2),
                     "lateness_p99_ms": fmt(p["lateness"]["p99"], 2),
                     "lateness_max_ms": fmt(p["lateness"]["max"], 2),
                     "clock_err_p50_us": fmt(ce["p50"] and ce["p50"] * scale, 0),
                     "clock_err_p99_us": fmt(ce["p99"] and ce["p99"] * scale, 0),
                     "clock_err_max_us": fmt(ce["max"] and ce["max"] * scale, 0),
                     "misordered": p["misordered"], "missing": p["missing"],
                     "journal_lines": p["journal_lines"],
                     "exit_ok": int(bool(p.get("ok") or p.get("client_ok"))),
                     "scsynth_late": p.get("scsynth_late", "")})
    return rows


def write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow(row)


# --------------------------------------------------------------- plotting


def num(x):
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def write_plot_data(datadir, rows, details):
    """Small whitespace-separated files, one per curve, for the gnuplot
    scripts in scripts/eval/."""
    os.makedirs(datadir, exist_ok=True)
    for f in os.listdir(datadir):
        os.unlink(os.path.join(datadir, f))
    by = {row["run"]: row for row in rows}

    def series(name, pick, xkey, cols):
        pts = sorted(((num(row[xkey]), row) for row in rows
                      if pick(row) and num(row[xkey]) is not None), key=lambda p: p[0])
        with open(os.path.join(datadir, name), "w") as f:
            for x, row in pts:
                f.write(" ".join([fmt(x, 3)] + [str(row.get(c) or "NaN") for c in cols]) + "\n")
            if not pts:  # gnuplot skips a file without points, with a warning
                f.write(" ".join(["NaN"] * (len(cols) + 1)) + "\n")

    for kind, n in (("scsynth", 3), ("member", 3), ("member", 8), ("member", 16)):
        tag = "%s%d" % (kind[0], n)
        steady = lambda row, kind=kind, n=n: (row["kind"] == kind and int(row["members"]) == n
                                             and row["fault"] == "none" and
                                             float(row["loss_pct"]) == 0 and
                                             row["dist"] == "uniform" and
                                             bool(row.get("on_time_min_pct")) and
                                             (int(float(row["delay_ms"])),
                                              int(float(row["jitter_ms"]))) in STEADY)
        series("steady-%s.dat" % tag, steady, "delay_ms",
               ["on_time_min_pct", "L_p50_ms", "L_min_ms", "delay_p999_ms", "L_bound_ms",
                "lateness_p99_ms", "clock_err_p99_us", "L_max_ms"])
        lossy = lambda row, kind=kind, n=n: (row["kind"] == kind and int(row["members"]) == n
                                            and row["fault"] == "none" and
                                            int(row["delay_ms"]) == 50 and
                                            int(row["jitter_ms"]) == 10 and
                                            row["dist"] == "uniform")
        series("loss-%s.dat" % tag, lossy, "loss_pct",
               ["on_time_min_pct", "lateness_p99_ms", "lateness_max_ms", "L_p50_ms",
                "L_min_ms"])
    jit = lambda row: (row["kind"] == "member" and int(row["members"]) == 8 and
                       row["fault"] == "none" and float(row["loss_pct"]) == 0 and
                       int(row["delay_ms"]) == 50 and row["dist"] == "uniform")
    series("jitter-m8.dat", jit, "jitter_ms",
           ["clock_err_p50_us", "clock_err_p99_us", "clock_err_max_us", "on_time_min_pct",
            "L_p50_ms", "L_min_ms"])
    # distributions of chosen runs
    chosen = {"lateness": [], "clock": []}
    for rid, m in details.items():
        if m is None:
            continue
        row = by.get(rid)
        if m.get("lateness_cdf"):
            with open(os.path.join(datadir, "lateness-%s.dat" % rid), "w") as f:
                for q, v in m["lateness_cdf"]:
                    f.write("%.4f %.4f\n" % (v, q))
            chosen["lateness"].append(rid)
        if m.get("clock_cdf") and row and row["fault"] == "none" and float(row["loss_pct"]) == 0:
            with open(os.path.join(datadir, "clock-%s.dat" % rid), "w") as f:
                for q, v in m["clock_cdf"]:
                    f.write("%.3f %.4f\n" % (v, q))
            chosen["clock"].append(rid)
        if m.get("timeline") and m.get("horizon_series"):
            t0 = m["timeline_t0"]
            with open(os.path.join(datadir, "horizon-%s.dat" % rid), "w") as f:
                for t, hz in m["horizon_series"]:
                    if t0 - 2 * NS <= t <= t0 + 10 * NS:
                        f.write("%.3f %.2f\n" % ((t - t0) / NS, hz / MS))
        if m.get("timeline"):
            with open(os.path.join(datadir, "timeline-%s.dat" % rid), "w") as f:
                last = None
                for member, t, c, worst in m["timeline"]:
                    if member != last and last is not None:
                        f.write("\n\n")
                    last = member
                    f.write("%s %.2f %d %s\n" % (member, t, c, fmt(worst, 2) or "NaN"))
    return chosen


def gnuplot(script, datadir, outdir, extra=""):
    if not shutil.which("gnuplot"):
        return False
    r = subprocess.run(["gnuplot", "-e", "here='%s'; datadir='%s'; outdir='%s'; %s" % (
        HERE, datadir, os.path.abspath(outdir), extra),
                        os.path.join(HERE, script)], capture_output=True, text=True)
    if r.returncode:
        print("gnuplot %s: %s" % (script, r.stderr.strip()[-400:]), file=sys.stderr)
    return r.returncode == 0


def make_plots(outdir, datadir, rows, details):
    """The PNGs; returns the names written."""
    chosen = write_plot_data(datadir, rows, details)
    made = []
    if not shutil.which("gnuplot"):
        print("evaluate: gnuplot is not installed (apt-get install gnuplot-nox): no plots",
              file=sys.stderr)
        return made
    for png, script, extra in (("ontime.png", "ontime.gp", ""),
                               ("horizon.png", "horizon.gp", ""),
                               ("loss.png", "loss.gp", ""),
                               ("clock.png", "clock.gp", "")):
        if gnuplot(script, datadir, outdir, extra):
            made.append(png)
    # lateness distributions: the steady 8-member sweep, and the loss runs
    lat = sorted(chosen["lateness"])
    steady8 = [rid for rid in lat if rid.startswith("m08") and rid.endswith("-l0-none")
               and "-j" in rid and rid.split("-")[2][1:].isdigit()]
    loss8 = [rid for rid in lat if rid.startswith("m08-d50-j10-l") and rid.endswith("-none")]
    for png, ids in (("lateness.png", steady8), ("lateness-loss.png", loss8)):
        ids = ids or lat[:6]
        if ids and gnuplot("lateness.gp", datadir, outdir,
                           "out='%s'; runs='%s'" % (png, " ".join(ids))):
            made.append(png)
    clk = sorted(chosen["clock"])
    if clk and gnuplot("clockcdf.gp", datadir, outdir,
                       "out='clock-cdf.png'; runs='%s'" % " ".join(clk[:8])):
        made.append("clock-cdf.png")
    for rid, m in sorted(details.items()):
        if m and m.get("timeline") and rid.startswith("m"):
            fault = "partition" if m.get("partition_end") else "crash"
            begin = ((m.get("partition_begin") or 0) - (m.get("partition_end") or 0)) / NS \
                if fault == "partition" else 0
            extra = "out='timeline-%s.png'; run='%s'; fault='%s'; fbegin=%.3f; fend=%.3f" % (
                rid, rid, fault, 2.0, 2.0 + (-begin if fault == "partition" else 0))
            if gnuplot("timeline.gp", datadir, outdir, extra):
                made.append("timeline-%s.png" % rid)
    return made


# ------------------------------------------------------------------ main


def machine():
    info = {"cpus": os.cpu_count(), "kernel": platform.release()}
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
            info["mem_gib"] = round(kb / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            info["cpu"] = m.group(1).strip() if m else ""
    except OSError:
        pass
    info["load"] = os.getloadavg()
    try:
        info["commit"] = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
        info["dirty"] = bool(subprocess.run(["git", "-C", TOP, "status", "--porcelain",
                                             "--untracked-files=no"],
                                            capture_output=True, text=True).stdout.strip())
    except OSError:
        pass
    return info


def hub_has_auto(tutti):
    r = subprocess.run([tutti, "hub", "--help"], capture_output=True, text=True)
    return "--auto-horizon" in (r.stdout + r.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__[__doc__.index("Builds"):])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true")
    g.add_argument("--full", action="store_true")
    g.add_argument("--smoke", action="store_true")
    ap.add_argument("--tutti", help="the tutti program (default: build-eval/tutti, build/tutti)")
    ap.add_argument("--plugin-dir")
    hz = ap.add_mutually_exclusive_group()
    hz.add_argument("--auto-horizon", action="store_true",
                    help="the hub chooses L (its --auto-horizon)")
    hz.add_argument("--horizon", help="fixed L in ms, or 'rule' (per condition)")
    ap.add_argument("--only", help="only runs whose id matches this regular expression")
    ap.add_argument("--list", action="store_true", help="print the grid and stop")
    ap.add_argument("--out", default=os.path.join(TOP, "docs", "eval"))
    ap.add_argument("--report", default=os.path.join(TOP, "docs", "evaluation.md"))
    ap.add_argument("--work")
    ap.add_argument("--seconds", type=float, default=15.0, help="playing time of a run")
    ap.add_argument("--rate", type=float, default=20.0, help="events per second per member")
    ap.add_argument("--lead", type=float, default=0.0,
                    help="an event is on time if delivered this many ms before its time "
                         "(the figures at a 5 ms lead, the plugin's, are given as well)")
    ap.add_argument("--auto-start", type=float, default=20.0,
                    help="with the automatic horizon, the L the hub starts at (ms)")
    ap.add_argument("--rehearse", type=float, default=15.0,
                    help="with the automatic horizon, every run without a fault is "
                         "rehearsed first for this many seconds (at most its own) over the "
                         "same condition with other draws, and its hub starts from what the "
                         "rehearsal called for (tutti hub --rehearsal); 0: cold starts")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of playing left out of the timing figures")
    ap.add_argument("--fault-at", type=float, default=6.0,
                    help="seconds into playing when the partition or crash comes")
    ap.add_argument("--partition", type=float, default=3.0, help="partition length, s")
    ap.add_argument("--client-lead", type=float, default=1.0,
                    help="scsynth runs: how far ahead the trio's clients send their bundles")
    ap.add_argument("--seed", type=int, default=0, help="varies the relays' seeds")
    ap.add_argument("--relay-spin", default="auto",
                    help="the relays' --spin-max (us): how early they wake to spin to a "
                         "deadline; 0 sleeps only; auto: 500 for 3 members, 0 for more")
    ap.add_argument("--jitter-model", default="queue", choices=("queue", "independent"),
                    help="the relays' --jitter-model: queue (a delay drifting over time, "
                         "the same for every segment of the moment) or independent (one "
                         "draw per segment, then in order)")
    ap.add_argument("--from-work", action="store_true",
                    help="run nothing: write the plots and the report again from the "
                         "measurements of the last grid in --work (and the CSV in --out)")
    ap.add_argument("--merge", action="store_true",
                    help="with --only: the runs made replace theirs in the CSV, plots and "
                         "report of the last grid (same --out and --work)")
    ap.add_argument("--no-realtime", action="store_true",
                    help="run the hub, relays and members at normal priority (default: "
                         "--realtime, SCHED_FIFO 10)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    a.rehearsal_seed = REHEARSAL_SEED  # for the report

    if not a.tutti:
        for cand in ("build-eval", "build"):
            p = os.path.join(TOP, cand, "tutti")
            if os.access(p, os.X_OK):
                a.tutti = p
                break
    if not a.tutti or not os.access(a.tutti, os.X_OK):
        sys.exit("evaluate: no tutti program; build it and give --tutti")
    a.tutti = os.path.abspath(a.tutti)
    has_auto = hub_has_auto(a.tutti)
    if a.auto_horizon:
        if not has_auto:
            sys.exit("evaluate: this hub has no --auto-horizon")
        a.horizon_mode = "auto"
    elif a.horizon:
        if a.horizon != "rule":
            try:
                float(a.horizon)
            except ValueError:
                sys.exit("evaluate: --horizon takes milliseconds or 'rule'")
        a.horizon_mode = a.horizon
    else:
        a.horizon_mode = "auto" if has_auto else "rule"
    mode_name = {"auto": "auto", "rule": "fixed-rule"}.get(a.horizon_mode,
                                                          "fixed-%sms" % a.horizon_mode)
    if a.from_work:
        return redo(a)
    gname = "smoke" if a.smoke else "quick" if a.quick else "full" if a.full else "default"
    runs = grid(gname)
    if a.only:
        runs = [r for r in runs if re.search(a.only, run_id(r))]
    if a.list:
        for r in runs:
            print(run_id(r))
        print("%d runs" % len(runs))
        return 0
    if not runs:
        sys.exit("evaluate: no run matches")
    work = os.path.abspath(a.work or os.path.join(os.path.dirname(a.tutti), "eval-work"))
    os.makedirs(work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    info = machine()
    print("tutti evaluation: %s grid, %d runs, horizon %s, %s; raw data in %s" %
          (gname, len(runs), mode_name, a.tutti, work), flush=True)
    if not has_auto:
        print("note: this hub has no --auto-horizon; L is fixed (%s)" % mode_name, flush=True)
    runner = Runner(a)
    prog = Progress(len(runs))
    rows, mrows, details = [], [], {}
    started = time.monotonic()

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for r in runs:
            rid = run_id(r)
            rwork = os.path.join(work, rid)
            shutil.rmtree(rwork, ignore_errors=True)
            os.makedirs(rwork)
            t0 = time.monotonic()
            load0 = os.getloadavg()[0]
            res, m, err, reh = {}, None, "", {}
            try:
                if runner.rehearses(r):
                    reh = runner.rehearse(r, rwork, prog)
                if r["kind"] == "scsynth":
                    res = runner.run_scsynth(r, rwork, prog)
                    m = analyse_scsynth(r, res, a)
                else:
                    res = runner.run_members(r, rwork, prog)
                    m = analyse_members(r, res, a)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                err = str(e)
            finally:
                runner.procs.stop_all()
                runner.rehearsal_file = None
            row = run_row(r, res, m, a, mode_name)
            row["rehearsal_L_ms"] = reh.get("L_ms", "")
            row["rehearsal_s"] = reh.get("measured_s", "")
            row["error"] = err
            row["load_before"] = "%.2f" % load0
            row["load_after"] = "%.2f" % os.getloadavg()[0]
            row["relay_spin_us"] = "%g" % runner.relay_spin(r)
            rows.append(row)
            details[rid] = m
            if m:
                mrows += member_rows(r, m)
                with open(os.path.join(rwork, "measured.json"), "w") as f:
                    json.dump(m, f, default=str)
            summary = err and "ERROR " + err or (
                "%s, on time %s%% (min member), L %s ms / needed %s ms, clock p99 %s us%s" % (
                    "coherent" if row.get("coherent") else "NOT COHERENT",
                    row.get("on_time_min_pct") or "?", row.get("L_p50_ms") or "?",
                    row.get("L_min_ms") or "-", row.get("clock_err_p99_us") or "?",
                    ", recovery %s s" % row["recovery_s"] if row.get("recovery_s") else ""))
            prog.finish(rid, time.monotonic() - t0, summary)
            if not a.merge:  # the CSV so far, in case the grid is interrupted
                write_csv(os.path.join(a.out, "runs.csv"), RUN_FIELDS, rows)
                write_csv(os.path.join(a.out, "members.csv"), MEMBER_FIELDS, mrows)
    except KeyboardInterrupt:
        runner.procs.stop_all()
        print("\ninterrupted; %d runs measured" % len(rows), flush=True)
        if not rows:
            return 130
    elapsed = time.monotonic() - started
    if a.merge:
        rows, mrows, details, elapsed = merge_old(a, work, gname, rows, mrows, details, elapsed)
    with open(os.path.join(work, "grid.json"), "w") as f:
        json.dump({"grid": gname, "mode": mode_name, "info": info, "elapsed": elapsed,
                   "has_auto": has_auto, "runs": [r["run"] for r in rows],
                   "args": {k: v for k, v in vars(a).items()
                            if isinstance(v, (int, float, str, bool, type(None)))}}, f)
    return finish(a, work, rows, mrows, details, info, gname, mode_name, elapsed, has_auto)


def finish(a, work, rows, mrows, details, info, gname, mode_name, elapsed, has_auto):
    """CSV, distributions, plots and the report from the measurements."""
    write_csv(os.path.join(a.out, "runs.csv"), RUN_FIELDS, rows)
    write_csv(os.path.join(a.out, "members.csv"), MEMBER_FIELDS, mrows)
    write_distributions(a.out, details)
    pngs = []
    if not a.no_plots:
        for f in os.listdir(a.out):
            if f.endswith(".png"):
                os.unlink(os.path.join(a.out, f))
        pngs = make_plots(a.out, os.path.join(work, "plotdata"), rows, details)
    if not a.no_report:
        import report  # scripts/eval/report.py
        report.write(a.report, a.out, rows, mrows, details, pngs, info, gname, mode_name, a,
                     elapsed, has_auto)
        print("report: %s" % a.report)
    print("csv: %s" % os.path.join(a.out, "runs.csv"))
    bad = [row["run"] for row in rows if row.get("coherent") != 1]
    print("coherent in %d of %d runs%s" % (len(rows) - len(bad), len(rows),
                                           "" if not bad else " (not: %s)" % ", ".join(bad)))
    return 0 if not bad else 1


def load_old(a, work):
    """runs.csv and members.csv in --out, and every run's measurements in --work."""
    with open(os.path.join(a.out, "runs.csv")) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if row.get("coherent") not in (None, ""):
            row["coherent"] = int(row["coherent"])
    with open(os.path.join(a.out, "members.csv")) as f:
        mrows = list(csv.DictReader(f))
    details = {}
    for row in rows:
        try:
            with open(os.path.join(work, row["run"], "measured.json")) as f:
                details[row["run"]] = json.load(f)
        except (OSError, ValueError):
            details[row["run"]] = None
    return rows, mrows, details


def merge_old(a, work, gname, rows, mrows, details, elapsed):
    """--merge: the runs just made replace their rows among the earlier ones."""
    try:
        old_rows, old_m, old_d = load_old(a, work)
        with open(os.path.join(work, "grid.json")) as f:
            elapsed += json.load(f).get("elapsed", 0)
    except (OSError, ValueError):
        return rows, mrows, details, elapsed
    new = {r["run"] for r in rows}
    order = [run_id(r) for r in grid(gname)]
    byid = {r["run"]: r for r in old_rows}
    byid.update({r["run"]: r for r in rows})
    old_d.update(details)
    ids = [i for i in order if i in byid] + [i for i in byid if i not in order]
    return ([byid[i] for i in ids],
            [m for m in old_m if m["run"] not in new] + mrows,
            {i: old_d.get(i) for i in ids}, elapsed)


def redo(a):
    work = os.path.abspath(a.work or os.path.join(os.path.dirname(a.tutti), "eval-work"))
    with open(os.path.join(work, "grid.json")) as f:
        g = json.load(f)
    rows, mrows, details = load_old(a, work)
    for k, v in g.get("args", {}).items():
        if k not in ("out", "report", "work", "from_work", "no_plots", "no_report", "tutti"):
            setattr(a, k, v)
    return finish(a, work, rows, mrows, details, g["info"], g["grid"], g["mode"], g["elapsed"],
                  g["has_auto"])


def write_distributions(outdir, details):
    """lateness_cdf.csv, clock_cdf.csv, timeline.csv: the distributions the
    plots are drawn from."""
    with open(os.path.join(outdir, "lateness_cdf.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "quantile", "lateness_ms"])
        for rid, m in sorted(details.items()):
            for q, v in (m or {}).get("lateness_cdf", []):
                w.writerow([rid, "%.3f" % q, "%.3f" % v])
    with open(os.path.join(outdir, "clock_cdf.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "quantile", "abs_error_us"])
        for rid, m in sorted(details.items()):
            for q, v in (m or {}).get("clock_cdf", []):
                w.writerow([rid, "%.3f" % q, "%.1f" % v])
    with open(os.path.join(outdir, "timeline.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "member", "t_s", "deliveries_per_100ms", "worst_lateness_ms"])
        for rid, m in sorted(details.items()):
            for member, t, c, worst in (m or {}).get("timeline", []):
                w.writerow([rid, member, "%.1f" % t, c, fmt(worst, 2)])


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
