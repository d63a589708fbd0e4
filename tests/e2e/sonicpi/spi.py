"""One headless Sonic Pi 3.2 server (Debian `sonic-pi-server`), for tests.

    sp = SonicPi("alice", work, tutti="build/tutti", plugin_dir="build/plugin",
                 env=jack_env)
    sp.install()       # `tutti sonicpi install` into its own SONIC_PI_HOME
    sp.start(); sp.wait_booted(60)
    sp.run("play 60")  # /run-code on its listen port
    sp.errors()        # /error and /syntax_error messages it reported
    sp.stop()          # /exit, then every process it started, by pid

Each instance has its own ports (all nine), its own home (.sonic-pi), its own
temporary folder (Sonic Pi keeps the pids of its helpers there) and its own
scsynth, started through the tutti wrapper. Its log messages (OSC to the GUI
port) are collected by a thread.
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(TOP, "examples", "osc"))
import tuttiosc  # noqa: E402
from tuttilocal import free_ports  # noqa: E402

SERVER_RB = "/usr/lib/sonic-pi/app/server/ruby/bin/sonic-pi-server.rb"


def descendants(pid):
    """Every process below pid (by /proc's parent links)."""
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


class SonicPi:
    def __init__(self, name, work, tutti, plugin_dir, env=None):
        self.name = name
        self.work = work
        self.tutti = tutti
        self.plugin_dir = plugin_dir
        self.home = os.path.join(work, name + "-home")
        self.tmp = os.path.join(work, name + "-tmp")
        os.makedirs(self.home, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)
        self.env = dict(env or os.environ)
        (self.listen, self.gui, self.scsynth, self.cues, self.erlang, self.midi_out,
         self.midi_in, self.ws) = free_ports(8)
        self.proc = None
        self.known = set()  # every process this instance started
        self.log = []       # (time, address, args) from the GUI port
        self.lock = threading.Lock()
        self.sock = None
        self.thread = None

    # ------------------------------------------------------------ set-up
    def install(self):
        r = subprocess.run([self.tutti, "sonicpi", "install", "--home", self.home,
                            "--plugin-dir", self.plugin_dir,
                            "--ext", os.path.join(TOP, "sonicpi-ext")],
                           capture_output=True, text=True, env=self.env)
        if r.returncode:
            raise RuntimeError("tutti sonicpi install failed: " + r.stderr)
        return r.stdout

    def bin_dir(self):
        return os.path.join(self.home, ".sonic-pi", "tutti", "bin")

    def start(self, extra_env=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", self.gui))
        self.sock.settimeout(0.2)
        self.stop_listening = False
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()
        env = dict(self.env, SONIC_PI_HOME=self.home, TMPDIR=self.tmp,
                   PATH=self.bin_dir() + ":" + self.env.get("PATH", "/usr/bin:/bin"),
                   TUTTI_SONICPI_STATE=os.path.join(self.work, self.name + ".ports"),
                   TUTTI_CACHE=os.path.join(self.work, self.name + "-cache"))
        env.update(extra_env or {})
        out = open(os.path.join(self.work, self.name + ".out"), "w")
        # 3.2's -u: listen, GUI, scsynth, scsynth send, OSC cues, erlang,
        # MIDI out, MIDI in, websocket. scsynth and its send port are one:
        # the wrapper puts the proxy there and moves scsynth elsewhere.
        self.proc = subprocess.Popen(
            ["ruby", SERVER_RB, "-u", str(self.listen), str(self.gui), str(self.scsynth),
             str(self.scsynth), str(self.cues), str(self.erlang), str(self.midi_out),
             str(self.midi_in), str(self.ws)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.known.add(self.proc.pid)
        self.sid = self.proc.pid  # a session of its own: its helpers stay in it
        self.started = time.time()

    def _listen(self):
        while not self.stop_listening:
            try:
                b = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                for addr, args in tuttiosc.messages(b):
                    with self.lock:
                        self.log.append((time.time(), addr, args))
            except Exception:  # noqa: BLE001 - a log line we cannot read
                pass

    def output(self):
        try:
            with open(os.path.join(self.work, self.name + ".out"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _track(self):
        if self.proc:
            self.known.update(descendants(self.proc.pid))

    def wait_booted(self, secs):
        end = time.time() + secs
        while time.time() < end:
            self._track()
            out = self.output()
            # the init file (which loads the extension) runs after the boot line
            if "Sonic Pi Server successfully booted." in out and "tutti: Sonic Pi extension" in out:
                self._track()
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.2)
        return False

    # ------------------------------------------------------------ playing
    def run(self, code):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(tuttiosc.message("/run-code", 0, code), ("127.0.0.1", self.listen))
        s.close()
        self._track()

    def stop_jobs(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(tuttiosc.message("/stop-all-jobs", 0), ("127.0.0.1", self.listen))
        s.close()

    def messages(self, prefix=""):
        with self.lock:
            return [(t, a, x) for t, a, x in self.log if a.startswith(prefix)]

    def texts(self):
        """Every string in every log message, one line each."""
        out = []
        for _, a, args in self.messages():
            out.append(a + " " + " ".join(str(x) for x in args))
        return out

    def errors(self):
        return [(a, x) for _, a, x in self.messages() if a in ("/error", "/syntax_error")]

    def wait_text(self, needle, secs):
        end = time.time() + secs
        while time.time() < end:
            if any(needle in t for t in self.texts()):
                return True
            time.sleep(0.1)
        return False

    def ports(self):
        """scsynth's own port and the proxy's (what the wrapper wrote)."""
        try:
            with open(os.path.join(self.work, self.name + ".ports")) as f:
                kv = dict(l.split() for l in f if l.strip())
            return int(kv["scsynth_port"]), int(kv["proxy_port"])
        except (OSError, KeyError, ValueError):
            return None, None

    # ------------------------------------------------------------ ending
    def stop(self, grace=4.0):
        if self.proc is None:
            return
        self._track()
        if self.proc.poll() is None:
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.sendto(tuttiosc.message("/exit", 0), ("127.0.0.1", self.listen))
                s.close()
            except OSError:
                pass
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        # what it started and left behind (beam.smp ignores SIGTERM)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.known if _alive(p, self.sid)]
            for p in alive:
                try:
                    os.kill(p, sig)
                except OSError:
                    pass
            if alive and sig == signal.SIGTERM:
                time.sleep(1.0)
        try:
            self.proc.wait(2)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None
        self.stop_listening = True
        if self.thread:
            self.thread.join(1)
        if self.sock:
            self.sock.close()


def _alive(pid, sid):
    """pid runs, and is still one of ours (same session), not a reused pid."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        f = st[st.rindex(")") + 2:].split()
        return f[0] != "Z" and int(f[3]) == sid
    except (OSError, ValueError, IndexError):
        return False
