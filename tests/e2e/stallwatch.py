#!/usr/bin/env python3
"""Times the machine's stalls: moments no thread ran for a while.

    stallwatch.py --out FILE --seconds S [--min-ms 1.0] [--priority 5]

On every CPU, one watcher pinned to it sleeps 1 ms at a time at real-time
priority (SCHED_FIFO, below JACK's and scsynth's audio threads, when the
system allows it) and writes a line "WALL LATE_MS CPU" for every wake-up
later than --min-ms beyond the 1 ms asked for: then nothing at that
priority could run, so neither could JACK's driver on time. JACK's dummy
driver does not call its own late cycles xruns (a sound card would: its
buffer runs dry), so such stalls move JACK's and scsynth's clocks without
a line in jackd's log. The first line says
whether it runs at real-time priority. Stops by itself after --seconds.
"""
import argparse
import os
import sys
import time


def watch(out, seconds, min_ms, cpu):
    """One CPU's watcher: every wake-up later than min_ms beyond 1 ms."""
    end = time.monotonic() + seconds
    limit = 0.001 + min_ms / 1e3
    while True:
        t0 = time.monotonic()
        if t0 > end:
            return
        time.sleep(0.001)
        dt = time.monotonic() - t0
        if dt > limit:
            # one write per line: the CPUs' lines do not mix
            os.write(out, b"%.6f %.3f %d\n" % (time.time(), (dt - 0.001) * 1e3, cpu))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--min-ms", type=float, default=1.0)
    ap.add_argument("--priority", type=int, default=5)
    a = ap.parse_args()
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(a.priority))
        how = "SCHED_FIFO %d" % a.priority
    except (OSError, AttributeError):
        how = "normal priority (no real-time scheduling here)"
    cpus = sorted(os.sched_getaffinity(0))
    out = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    os.write(out, ("# stallwatch: %s, one watcher on each of CPUs %s, wake-ups later than "
                   "%.2f ms\n" % (how, ",".join(map(str, cpus)), a.min_ms)).encode())
    # one watcher pinned to each CPU: a stall of one CPU alone (the
    # hypervisor running something else on it) holds whatever runs there
    kids = []
    for cpu in cpus:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.sched_setaffinity(0, {cpu})
                watch(out, a.seconds, a.min_ms, cpu)
            except BaseException:
                code = 1
            os._exit(code)
        kids.append(pid)
    rc = 0
    for pid in kids:
        rc |= os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return 1 if rc else 0


if __name__ == "__main__":
    sys.exit(main())
