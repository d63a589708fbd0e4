#!/usr/bin/env python3
"""A user-space Ethernet cable with delay and jitter between two TAP devices.

    tapbridge.py TAP_A TAP_B --ns-a NS --ns-b NS --delay MS --jitter MS
                 [--seed N] [--duration S]

It creates TAP_A in the network namespace NS_A and TAP_B in NS_B (named
namespaces, `ip netns add`; it enters each in turn to create its device, and
the open devices keep working from wherever it runs) and carries every Ethernet frame from one to the other after
the one-way delay, each frame drawing its own delay uniformly in
[delay - jitter, delay + jitter] and leaving no earlier than the frame before
it (a FIFO: no reordering), the same model as `tutti netsim --jitter-model
independent`. All traffic goes through it: ARP, UDP multicast (Link's
discovery), unicast (Link's clock measurement). The kernel here has no netem,
so this stands for an impaired LAN between two rooms. Prints "ready" once the
devices exist; stops on SIGTERM or after --duration. Needs root.
"""
import argparse
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


CLONE_NEWNET = 0x40000000


def enter_netns(name):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + name)
    os.close(fd)


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tap_a")
    ap.add_argument("tap_b")
    ap.add_argument("--ns-a", required=True)
    ap.add_argument("--ns-b", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=600.0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    enter_netns(a.ns_a)
    fa = open_tap(a.tap_a)
    enter_netns(a.ns_b)
    fb = open_tap(a.tap_b)
    other = {fa: fb, fb: fa}
    last = {fa: 0.0, fb: 0.0}  # departure time of the last frame each way
    queue = []  # (departure, n, out fd, frame)
    n = 0
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    print("ready", flush=True)
    end = time.monotonic() + a.duration
    frames = 0
    while not stop[0] and time.monotonic() < end:
        now = time.monotonic()
        timeout = 0.05
        if queue:
            timeout = max(0.0, min(timeout, queue[0][0] - now))
        r, _, _ = select.select([fa, fb], [], [], timeout)
        now = time.monotonic()
        for fd in r:
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                except OSError:
                    break  # the device is down (moved, not yet up)
                d = (a.delay + rng.uniform(-a.jitter, a.jitter)) / 1000.0
                dep = max(now + max(d, 0.0), last[fd])
                last[fd] = dep
                n += 1
                heapq.heappush(queue, (dep, n, other[fd], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                os.write(out, frame)
                frames += 1
            except OSError:
                pass
    print("frames %d" % frames, flush=True)


if __name__ == "__main__":
    sys.exit(main())
