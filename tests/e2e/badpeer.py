#!/usr/bin/env python3
"""Hostile peer for badinput_test.sh: throws malformed traffic at a tutti hub.

Speaks NNG's SP-over-TCP framing by hand: an 8-byte header each way
(0x00 'S' 'P' 0x00, protocol number big-endian, two zero bytes; pair1 is
0x0011), then messages as a 64-bit big-endian length and that many bytes,
the first four of which are pair1's big-endian hop count. Inside a message a
tutti frame starts "TU", version, flags, varint link_seq, varint ack, then
records (type, varint length, body).

Usage: badpeer.py HOST PORT SESSION [SEED]      attack the hub at HOST:PORT
       badpeer.py --hub PORTFILE SECONDS [SEED]  play a hostile hub: listen on
           127.0.0.1 (port written to PORTFILE), answer whoever connects with
           garbage for SECONDS
       badpeer.py --silent HOST PORT SESSION SECONDS  join the session, then
           say nothing at all (not even pings) for SECONDS, reading and
           dropping what the hub sends
Prints one line per attack; never fails on a closed or reset connection.
"""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tuttiproto  # noqa: E402

rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[1] != "--silent" else 1)

SP_PAIR1 = b"\x00SP\x00\x00\x11\x00\x00"
SP_PUB = b"\x00SP\x00\x00\x20\x00\x00"  # pub: neither pair1 nor pair0


# the wire's building blocks, as the protocol module has them
varint, zigzag, record, frame, message = (tuttiproto.varint, tuttiproto.zigzag,
                                          tuttiproto.record, tuttiproto.frame,
                                          tuttiproto.message)
field_bytes, field_varint = tuttiproto.f_bytes, tuttiproto.f_varint


def connect(handshake=SP_PAIR1):
    s = socket.create_connection((HOST, PORT), timeout=2)
    s.settimeout(2)
    if handshake:
        s.sendall(handshake)
    return s


def drain(s, seconds=0.05):
    end = time.time() + seconds
    s.settimeout(0.01)
    try:
        while time.time() < end:
            if not s.recv(65536):
                return False
    except socket.timeout:
        pass
    except OSError:
        return False
    return True


def attack(name, fn):
    try:
        fn()
        print("sent:", name, flush=True)
    except OSError as e:
        print("sent:", name, "(the hub closed the connection: %s)" % e.__class__.__name__, flush=True)


def no_handshake():
    s = connect(None)
    s.sendall(bytes(rng.getrandbits(8) for _ in range(64)))
    drain(s, 0.2)
    s.close()


def http():
    s = connect(None)
    s.sendall(b"GET / HTTP/1.0\r\nHost: tutti\r\n\r\n")
    drain(s, 0.2)
    s.close()


def wrong_protocol():
    s = connect(SP_PUB)
    s.sendall(message(b"hello"))
    drain(s, 0.2)
    s.close()


def random_bodies():
    s = connect()
    for _ in range(300):
        n = rng.choice([0, 1, 2, 3, 5, 17, 100, 1000])
        s.sendall(message(bytes(rng.getrandbits(8) for _ in range(n))))
    drain(s, 0.2)
    s.close()


def tutti_header_then_junk():
    s = connect()
    for _ in range(300):
        junk = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 200)))
        s.sendall(message(frame(junk, link_seq=rng.randrange(0, 5))))
    drain(s, 0.2)
    s.close()


def truncated_records():
    s = connect()
    hello = record(1, field_bytes(1, SESSION.encode()) + field_bytes(2, b"x"))
    for cut in range(1, len(hello)):
        s.sendall(message(frame(hello[:cut])))
    # A record claiming more bytes than the frame holds, and a huge varint.
    s.sendall(message(frame(b"\x04\xff\xff\xff\x0f")))
    s.sendall(message(frame(b"\x04" + b"\xff" * 11)))
    drain(s, 0.2)
    s.close()


def wrong_version():
    s = connect()
    s.sendall(message(frame(b"", version=99)))
    drain(s, 0.2)
    s.close()


def wrong_session():
    s = connect()
    hello = record(1, field_bytes(1, b"not-" + SESSION.encode()) + field_bytes(2, b"lost"))
    s.sendall(message(frame(hello)))
    drain(s, 0.3)
    s.close()


def event_without_hello():
    s = connect()
    ev = record(4, field_varint(1, zigzag(1)) + field_varint(2, 1) + field_varint(3, 1)
                + field_varint(4, 0) + field_bytes(5, b"spoof"))
    s.sendall(message(frame(ev, link_seq=1)))
    drain(s, 0.3)
    s.close()


def intruder():
    # Joins properly, then sends a forged event in another member's name and
    # an event of its own far in the past, then falls silent (the hub must
    # remove it after its suspect time).
    c, hs = tuttiproto.join(HOST, PORT, SESSION, "intruder")
    s = c.s
    drain(s, 0.3)
    forged = record(4, field_varint(1, zigzag(1)) + field_varint(2, 1) + field_varint(3, 999999)
                    + field_varint(4, 0) + field_bytes(5, b"forged"))
    s.sendall(message(frame(forged, link_seq=1)))
    s.sendall(message(frame(record(4, field_varint(1, zigzag(5)) + field_varint(3, 1)
                                   + field_bytes(5, b"past")), link_seq=2)))
    s.sendall(message(frame(record(12, b""), link_seq=7)))  # a gap, then a BYE
    drain(s, 0.3)
    s.close()


def bad_hops():
    s = connect()
    s.sendall(message(frame(b""), hops=9))    # past NNG's TTL: dropped
    s.sendall(message(frame(b""), hops=300))  # not a hop count: closed
    drain(s, 0.2)
    s.close()


def short_message():
    s = connect()
    s.sendall(struct.pack(">Q", 2) + b"ab")
    drain(s, 0.2)
    s.close()


def huge_length():
    s = connect()
    s.sendall(struct.pack(">Q", 1 << 40) + b"x" * 100)
    drain(s, 0.2)
    s.close()


def cut_mid_message():
    s = connect()
    s.sendall(struct.pack(">Q", 1000) + b"\x00\x00\x00\x01TU\x01\x00")
    s.close()


def cut_mid_header():
    s = connect(None)
    s.sendall(SP_PAIR1[:5])
    s.close()


def random_streams():
    # Arbitrary bytes after a valid handshake: random lengths, hop counts and
    # partial messages, the framing parser's worst case.
    for _ in range(30):
        s = connect()
        try:
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 400))))
            drain(s, 0.01)
        except OSError:
            pass
        s.close()


def many_connections():
    socks = []
    for _ in range(40):
        s = connect()
        s.sendall(message(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 50)))))
        socks.append(s)
    for s in socks:
        s.close()


def hostile_hub(portfile, seconds):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(8)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    ls.settimeout(0.2)
    end = time.time() + seconds
    sent = 0
    while time.time() < end:
        try:
            s, _ = ls.accept()
        except socket.timeout:
            continue
        try:
            s.sendall(SP_PAIR1)
            drain(s, 0.05)
            while time.time() < end:
                kind = rng.randrange(4)
                if kind == 0:
                    body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
                elif kind == 1:
                    body = frame(bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))),
                                 link_seq=rng.randrange(0, 4))
                elif kind == 2:  # a WELCOME with junk values, then events out of nowhere
                    body = frame(record(2, field_varint(1, rng.randrange(1 << 32))
                                        + field_varint(2, zigzag(-5)) + field_varint(7, 0)))
                else:
                    body = frame(record(4, field_varint(1, zigzag(rng.randrange(1 << 62)))
                                        + field_varint(2, 7) + field_varint(3, 1)
                                        + field_bytes(5, b"junk")), link_seq=1)
                s.sendall(message(body))
                sent += 1
                drain(s, 0.002)
        except OSError:
            pass
        s.close()
    print("hostile hub sent %d frames" % sent, flush=True)


def silent_joiner(seconds):
    # A member that joins and then never plays: it must cost the others
    # nothing, and be removed once its place has been kept long enough.
    c, hs = tuttiproto.join(HOST, PORT, SESSION, "quiet")
    s = c.s
    print("joined, now silent" if hs.reply and hs.reply[0] == tuttiproto.REC_WELCOME
          else "not admitted: %r" % (hs.reply,), flush=True)
    end = time.time() + seconds
    while time.time() < end and drain(s, 0.2):
        pass
    s.close()


if sys.argv[1] == "--hub":
    hostile_hub(sys.argv[2], float(sys.argv[3]))
    sys.exit(0)
if sys.argv[1] == "--silent":
    HOST, PORT, SESSION = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    silent_joiner(float(sys.argv[5]))
    sys.exit(0)

HOST, PORT, SESSION = sys.argv[1], int(sys.argv[2]), sys.argv[3]

ATTACKS = [no_handshake, http, wrong_protocol, random_bodies, tutti_header_then_junk,
           truncated_records, wrong_version, wrong_session, event_without_hello, intruder,
           bad_hops, short_message, huge_length, cut_mid_message, cut_mid_header,
           random_streams, many_connections]

for a in ATTACKS:
    attack(a.__name__, a)
    time.sleep(0.05)
print("done", flush=True)
