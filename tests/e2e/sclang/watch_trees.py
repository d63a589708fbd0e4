#!/usr/bin/env python3
"""Snapshots of several scsynth servers' node trees, asked on their own ports.

    watch_trees.py --out FILE [--seconds 60] [--period 0.4] NAME=PORT ...

Every --period seconds, sends `/g_queryTree 0 0` to each server's own port
(not the tutti proxy: the whole tree, every part's nodes with their session
ids and synthdef names) and appends one JSON line per answer to FILE:
{"t": unix time, "server": NAME, "nodes": [[id, def name or null], ...]}.
Stops after --seconds, or as soon as FILE.stop exists.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "examples", "osc"))
import tuttiosc as osc  # noqa: E402


def query(port, timeout=1.0):
    c = osc.Udp(port)
    try:
        c.send(osc.message("/g_queryTree", 0, 0))
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            b = c.recv(end - time.monotonic())
            if b is None:
                return None
            addr, args = osc.decode(b)
            if addr == "/g_queryTree.reply":
                return args
        return None
    finally:
        c.close()


def nodes(args):
    """[flag, root, n, then per node: id, children (-1: a synth, + def name)]."""
    out, i = [], 1
    while i + 1 < len(args):
        node, n = args[i], args[i + 1]
        i += 2
        name = None
        if n == -1:
            name = args[i]
            i += 1
        out.append([node, name])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--period", type=float, default=0.4)
    ap.add_argument("servers", nargs="+", help="NAME=PORT")
    a = ap.parse_args()
    servers = [(s.split("=")[0], int(s.split("=")[1])) for s in a.servers]
    end = time.monotonic() + a.seconds
    with open(a.out, "a") as f:
        while time.monotonic() < end and not os.path.exists(a.out + ".stop"):
            for name, port in servers:
                args = query(port)
                if args is not None:
                    f.write(json.dumps({"t": time.time(), "server": name, "nodes": nodes(args)}) + "\n")
                    f.flush()
            time.sleep(a.period)
    return 0


if __name__ == "__main__":
    sys.exit(main())
