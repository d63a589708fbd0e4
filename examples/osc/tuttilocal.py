"""Running tutti's processes on this machine (the standard library, and
python3-liblo for OSC requests): what the local session, the evaluation
runner and the end-to-end tests share.

    Procs       every process started, stopped by pid (TERM, then KILL)
    free_port   a port free for both UDP and TCP on 127.0.0.1
    scsynth_argv   the command line of a local scsynth with tutti's plugin
    scsynth_port_taken   whether a scsynth ended because its port was taken
    wait_for    poll a predicate with a deadline
    read        a text file, or "" when it is not there
    tutti_status   `tutti status --proxy P --json` as a dict (None if no answer)
    request     one message to a server's port, the first reply of a name (liblo)
    tree_parts  a server's node tree, node ids grouped by part
"""
import json
import os
import random
import socket
import subprocess
import sys
import time

import tuttiosc

try:
    import liblo
except ImportError:  # Debian's python3-liblo, from another python3 on PATH
    sys.path.append("/usr/lib/python3/dist-packages")
    import liblo

NODE_SPAN = 1 << 26  # a part's node ids: part * 2^26 + id (docs/namespaces.md)


class Procs:
    """Every process started here, stopped by pid on the way out."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, env=None):
        out = open(os.path.join(self.work, name + ".out"), "w")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p, grace=3.0):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def _fixed_range():
    """Ports the kernel never hands out by itself: below (or above) its
    ephemeral range. A port chosen here is not taken a moment later by some
    process's bind to port 0 or outgoing connection, as one from the
    ephemeral range can be (a scsynth told such a port then fails with
    "address in use")."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    if lo - 10000 >= 2000:
        return 10000, lo - 1
    if 65535 - hi >= 2000:
        return hi + 1, 65535
    return 1024, 65535


def free_ports(n):
    """n distinct ports free for both UDP and TCP on 127.0.0.1, from outside
    the kernel's ephemeral range."""
    first, last = _fixed_range()
    pick = random.SystemRandom()
    out, socks = [], []
    for _ in range(200 * n):
        if len(out) == n:
            break
        p = pick.randint(first, last)
        if p in out:
            continue
        t = socket.socket()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", p))
            u.bind(("127.0.0.1", p))
        except OSError:
            t.close()
            u.close()
            continue
        socks += [t, u]  # held until all are found, so they are distinct
        out.append(p)
    for k in socks:
        k.close()
    if len(out) < n:
        raise RuntimeError("no free port")
    return out


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    return free_ports(1)[0]


def scsynth_argv(port, plugin_dir):
    """A local scsynth on UDP port, with tutti's plugin from plugin_dir, the
    sizes a session's parts need (each part's buffers, buses and nodes)."""
    system = "/usr/lib/SuperCollider/plugins"
    dirs = plugin_dir
    if os.path.realpath(plugin_dir) != system:  # installed there: loaded once
        dirs += ":" + system
    return ["scsynth", "-u", str(port), "-B", "127.0.0.1", "-R", "0", "-i", "2", "-o", "2",
            "-b", "32768", "-a", "8192", "-c", "32768", "-U", dirs]


def scsynth_port_taken(proc, log):
    """Whether scsynth process `proc` (its output in file `log`) has ended
    because another process took its port between the port's choice and its
    bind: then it can start again on another."""
    return proc.poll() is not None and "address in use" in read(log)


def clear_jack_shm(server):
    """Removes what JACK server `server` left in /dev/shm."""
    for f in os.listdir("/dev/shm"):
        if server in f:
            try:
                os.unlink(os.path.join("/dev/shm", f))
            except OSError:
                pass


def wait_for(pred, seconds, what):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise RuntimeError("timed out waiting for " + what)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def tutti_status(tutti, proxy):
    r = subprocess.run([tutti, "status", "--proxy", str(proxy), "--json"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode:
        return None
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def request(port, msg, want, timeout=3.0):
    """Sends one message to a server's UDP port on 127.0.0.1; the arguments
    of the first reply named `want`, or None. `msg` is (address, arg, ...)
    with ints, floats and strings, or the same message encoded
    (tuttiosc.message). With liblo (python3-liblo): its server socket sends
    and receives, so the reply comes back to it; port 0 lets the kernel
    choose the port."""
    if isinstance(msg, (bytes, bytearray)):
        addr, args = tuttiosc.decode(bytes(msg))
        msg = (addr, *args)
    if any(isinstance(a, (bytes, bytearray)) for a in msg[1:]):
        raise TypeError("request: no blobs (python3-liblo sends bytes as a string)")
    s = liblo.Server(0)
    got = []
    s.add_method(want, None, lambda path, a: got.append(a))
    try:
        s.send(("127.0.0.1", port), *msg)
        end = time.monotonic() + timeout
        while not got and time.monotonic() < end:
            s.recv(max(1, int((end - time.monotonic()) * 1000)))
    finally:
        s.free()
    return got[0] if got else None


def tree_parts(port):
    """Node ids in a server's tree (asked on its own port), by part."""
    args = request(port, ("/g_queryTree", 0, 0), "/g_queryTree.reply")
    if args is None:
        return None
    # flag, then per node: id, children (-1 for a synth, then its def name)
    parts, i = {}, 1
    while i + 1 < len(args):
        node, n = args[i], args[i + 1]
        i += 2
        if n == -1:
            i += 1
        part = node // NODE_SPAN if node > 0 else 0
        parts.setdefault(part, []).append(node)
    return parts
