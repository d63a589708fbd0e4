#!/usr/bin/env python3
"""What the session's messages about time cost: CPU of the hub and of each
member, real processes on loopback, for several session sizes and horizons.

Usage: bench-time-cpu.py [--tutti build/tutti] [--members 3,8,16,32]
                         [--horizons 20,150] [--seconds 10] [--rate 0]

For each size N and horizon L it starts a hub (`tutti hub --horizon L`) and N
members (`tutti member`, each playing --rate events a second; 0: none, so
only heartbeats, closes and pings flow), waits until all have joined, then
measures for --seconds the CPU time (user + system, from /proc) the hub and
the members used, and prints one line per case and, last, one JSON object
with every case: hub_cpu_pct (of one core), member_cpu_pct (the mean of the
members), member_cpu_pct_max. On this 2-core machine N = 32 means 33
processes on two cores: figures are what they cost, not what a quiet machine
would show.
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def run_case(tutti, n, horizon, seconds, rate, work):
    url_file = os.path.join(work, "hub.url")
    if os.path.exists(url_file):
        os.unlink(url_file)
    hub_log = open(os.path.join(work, "hub.log"), "w")
    hub = subprocess.Popen([tutti, "hub", "--listen", "tcp://127.0.0.1:0", "--url-file", url_file,
                            "--horizon", str(horizon), "--quiet", "--duration", str(seconds + 60)],
                           stdout=subprocess.DEVNULL, stderr=hub_log)
    procs = [hub]
    try:
        for _ in range(200):
            if os.path.exists(url_file) and os.path.getsize(url_file) > 0:
                break
            time.sleep(0.05)
        url = open(url_file).read().strip()
        events = int(rate * (seconds + 30)) if rate > 0 else 0
        for i in range(n):
            argv = [tutti, "member", "--hub", url, "--name", "m%d" % i, "--events", str(events),
                    "--duration", str(seconds + 30), "--quiet", "--timeout", str(seconds + 90)]
            if rate > 0:
                argv += ["--rate", str(rate)]
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        deadline = time.time() + 30
        while time.time() < deadline:
            hub_log.flush()
            joined = len(re.findall("joined as member", open(hub_log.name).read()))
            if joined >= n:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("only %d of %d members joined" % (joined, n))
        time.sleep(2)  # past the members' first seconds (pings every 50 ms until locked)
        before = [cpu_seconds(p.pid) for p in procs]
        t0 = time.monotonic()
        time.sleep(seconds)
        after = [cpu_seconds(p.pid) for p in procs]
        wall = time.monotonic() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        hub_log.close()
    pct = [100.0 * (a - b) / wall for a, b in zip(after, before)]
    members = pct[1:]
    return {"members": n, "horizon_ms": horizon, "rate": rate, "seconds": round(wall, 2),
            "hub_cpu_pct": round(pct[0], 2),
            "member_cpu_pct": round(sum(members) / len(members), 2),
            "member_cpu_pct_max": round(max(members), 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tutti", default=os.path.join(os.path.dirname(__file__), "..", "build", "tutti"))
    ap.add_argument("--members", default="3,8,16,32")
    ap.add_argument("--horizons", default="20,150")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=float, default=0)
    a = ap.parse_args()
    cases = []
    with tempfile.TemporaryDirectory(prefix="tutti-bench-cpu.") as work:
        for h in [float(x) for x in a.horizons.split(",")]:
            for n in [int(x) for x in a.members.split(",")]:
                c = run_case(a.tutti, n, h, a.seconds, a.rate, work)
                cases.append(c)
                print("L %5.0f ms, %2d members: hub %5.2f %% of a core, each member %5.2f %% "
                      "(largest %5.2f %%)" % (h, n, c["hub_cpu_pct"], c["member_cpu_pct"],
                                              c["member_cpu_pct_max"]), flush=True)
    print(json.dumps({"bench": "time-cpu", "rate": a.rate, "cases": cases}))


if __name__ == "__main__":
    sys.exit(main())
