"""A TCP relay that records every byte it passes (what tcpdump on the path
would see of the payload), for encrypt_test.sh.

  capture_proxy.py TARGET_PORT PORT_FILE CAPTURE_FILE [CUT_AFTER_S]

Listens on 127.0.0.1 (a free port, written to PORT_FILE), relays each
connection to 127.0.0.1:TARGET_PORT and appends both directions' bytes to
CAPTURE_FILE. With CUT_AFTER_S, every connection open at that moment is
closed once (the members redial and resume), to capture resumes too.
Runs until killed.
"""
import socket
import sys
import threading
import time

target, port_file, cap_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cut_after = float(sys.argv[4]) if len(sys.argv) > 4 else 0
lock = threading.Lock()
out = open(cap_file, "ab", buffering=0)
conns = []


def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            with lock:
                out.write(d)
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def cutter():
    time.sleep(cut_after)
    with lock:
        victims = list(conns)
        out.flush()
    for s in victims:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    print("cut %d connections" % (len(victims) // 2), flush=True)


srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.getsockname()[1]))
import os  # noqa: E402
os.rename(port_file + ".tmp", port_file)
if cut_after:
    threading.Thread(target=cutter, daemon=True).start()
while True:
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    u = socket.create_connection(("127.0.0.1", target))
    u.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with lock:
        conns.extend([c, u])
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
    with lock:
        out.flush()
