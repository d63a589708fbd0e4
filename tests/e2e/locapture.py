#!/usr/bin/env python3
"""Capture a loopback interface as tcpdump would, without tcpdump.

    locapture.py --out FILE.pcap [--seconds N] [--iface lo]

A raw packet socket (AF_PACKET, every protocol) on the interface records
every frame, with its time, into a pcap file (readable by tcpdump and
Wireshark), until SIGTERM or --seconds. Needs CAP_NET_RAW (root, or the
root of a network namespace the test made). Prints "capturing" on stdout once
the socket is bound, so a caller knows when traffic will be seen.

    locapture.py --read FILE.pcap --port P [--find TEXT ...]

reads a capture back: the TCP payload bytes to or from port P, per
direction, and for each TEXT how many times it occurs in them; and, as a
control, in the UDP payloads of the same capture. One JSON object.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def capture(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((a.iface, 0))
    s.settimeout(0.2)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    end = time.monotonic() + a.seconds
    n = 0
    with open(a.out, "wb") as f:
        # pcap: magic, v2.4, no zone, no accuracy, snaplen, LINKTYPE_ETHERNET
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        print("capturing", flush=True)
        while not stop and time.monotonic() < end:
            try:
                frame, addr = s.recvfrom(262144)
            except socket.timeout:
                continue
            # outgoing and incoming copies of one loopback frame: keep one
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            t = time.time()
            f.write(struct.pack("<IIII", int(t), int((t % 1) * 1e6), len(frame), len(frame)))
            f.write(frame)
            n += 1
    print("captured %d frames" % n, flush=True)


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    i = 24
    while i + 16 <= len(data):
        _, _, incl, _ = struct.unpack_from("<IIII", data, i)
        yield data[i + 16:i + 16 + incl]
        i += 16 + incl


def read(a):
    tcp, udp = {}, bytearray()
    nframes = 0
    for fr in frames(a.read):
        nframes += 1
        if len(fr) < 34 or fr[12:14] != b"\x08\x00":
            continue
        ip = fr[14:]
        ihl = (ip[0] & 15) * 4
        total = struct.unpack_from(">H", ip, 2)[0]
        proto = ip[9]
        body = ip[ihl:total]
        if proto == 6 and len(body) >= 20:
            sport, dport = struct.unpack_from(">HH", body, 0)
            off = (body[12] >> 4) * 4
            if a.port in (sport, dport):
                key = "to_hub" if dport == a.port else "from_hub"
                tcp.setdefault(key, bytearray()).extend(body[off:])
        elif proto == 17 and len(body) >= 8:
            udp.extend(body[8:])
    out = {"frames": nframes, "port": a.port,
           "tcp_bytes": {k: len(v) for k, v in tcp.items()}, "udp_bytes": len(udp),
           "in_hub_traffic": {}, "in_udp": {}}
    for text in a.find:
        t = text.encode()
        out["in_hub_traffic"][text] = sum(v.count(t) for v in tcp.values())
        out["in_udp"][text] = udp.count(t)
    print(json.dumps(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--iface", default="lo")
    ap.add_argument("--read")
    ap.add_argument("--port", type=int)
    ap.add_argument("--find", nargs="*", default=[])
    a = ap.parse_args()
    if a.read:
        read(a)
    else:
        capture(a)


if __name__ == "__main__":
    sys.exit(main())
