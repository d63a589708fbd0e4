#!/usr/bin/env python3
"""A session member on nanomsg, for nanocat_test.sh: joins a hub through a
nanomsg PAIR socket (libnanomsg, Debian's libnanomsg5, through ctypes) and
runs the tutti handshake over it (tuttiproto), then counts the events the hub
relays to it from the other members.

nanomsg has no pair v1: its PAIR socket speaks SP pair v0 (protocol 0x0010),
which the hub accepts alongside NNG's pair1 (core/src/posix/sp_server.c).

    nanopeer.py URL SESSION NAME SECONDS
prints "welcome MEMBER_ID", then "events N ORIGINS" after SECONDS; exit 1
when the hub did not welcome it.
"""
import ctypes
import ctypes.util
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tuttiproto  # noqa: E402

AF_SP, NN_PAIR = 1, 16           # nanomsg's nn.h and pair.h
NN_SOL_SOCKET, NN_RCVTIMEO = 0, 5
NN_MSG = ctypes.c_size_t(-1).value
ETIMEDOUT, EAGAIN = 110, 11

nn = ctypes.CDLL(ctypes.util.find_library("nanomsg") or "libnanomsg.so.5", use_errno=True)
nn.nn_socket.argtypes = [ctypes.c_int, ctypes.c_int]
nn.nn_connect.argtypes = [ctypes.c_int, ctypes.c_char_p]
nn.nn_setsockopt.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                             ctypes.c_size_t]
nn.nn_send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
nn.nn_send.restype = ctypes.c_int
nn.nn_recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
nn.nn_recv.restype = ctypes.c_int
nn.nn_freemsg.argtypes = [ctypes.c_void_p]
nn.nn_close.argtypes = [ctypes.c_int]
nn.nn_strerror.restype = ctypes.c_char_p


class NanoConn(tuttiproto.Conn):
    """tuttiproto.Conn's send/recv over a nanomsg PAIR socket (the framing is
    nanomsg's own)."""

    def __init__(self, url):
        self.seal = None
        self.unopened = 0
        self.s = nn.nn_socket(AF_SP, NN_PAIR)
        if self.s < 0 or nn.nn_connect(self.s, url.encode()) < 0:
            raise OSError(nn.nn_strerror(ctypes.get_errno()).decode())

    def send(self, body):
        if nn.nn_send(self.s, body, len(body), 0) != len(body):
            raise OSError(nn.nn_strerror(ctypes.get_errno()).decode())

    def recv(self, timeout=2.0):
        ms = ctypes.c_int(max(1, int(timeout * 1000)))
        nn.nn_setsockopt(self.s, NN_SOL_SOCKET, NN_RCVTIMEO, ctypes.byref(ms), 4)
        p = ctypes.c_void_p()
        n = nn.nn_recv(self.s, ctypes.byref(p), NN_MSG, 0)
        if n < 0:
            return None
        m = ctypes.string_at(p, n)
        nn.nn_freemsg(p)
        return m

    def close(self):
        nn.nn_close(self.s)


def main():
    url, session, name, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    c = NanoConn(url)
    hs = tuttiproto.Handshake(c, session, name)
    r = hs.run(timeout=5.0)
    if not r or r[0] != tuttiproto.REC_WELCOME:
        print("no welcome: %r" % (r,), flush=True)
        return 1
    member, _, _, _ = tuttiproto.welcome_fields(r[1])
    print("welcome %d" % member, flush=True)
    events, origins = set(), set()
    end = time.time() + seconds
    while time.time() < end:
        for _, t, f in c.records(max(0.05, end - time.time())):
            if t == tuttiproto.REC_EVENT:
                events.add((f.get(2), f.get(3)))
                origins.add(f.get(2))
    print("events %d %d" % (len(events), len(origins)), flush=True)
    c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
