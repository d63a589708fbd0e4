"""OSC and SynthDef toolkit for scsynth clients (Python 3 standard library only).

    import tuttiosc as osc
    c = osc.connect(57110)                       # UDP; tcp=True for TCP
    c.send(osc.message("/s_new", "default", 1000, 0, 1, "freq", 440.0))
    c.send(osc.bundle(osc.timetag(osc.ntp_now() + 0.3), osc.message(...)))
    reply = osc.decode(c.recv(1.0))              # ("/done", ["/d_recv"]) or None on time-out

Design notes
- OSC values map to Python types one way: int -> 'i' (32-bit, checked), float
  -> 'f', str -> 's', bytes -> 'b'. Booleans are refused rather than guessed.
  decode() also reads 'd', 'h', 'T', 'F', 'N', 'I', 't', 'c' and 'm'; a tag it
  does not know is shown as "<tag>" and the rest of the message is kept as it
  is, since its size is unknown.
- Time is NTP seconds (float, seconds since 1900) in the API and 64-bit
  fixed point on the wire; timetag(1) (IMMEDIATE) means "now".
- Udp and Tcp share send(pkt) / recv(timeout) / close(). recv returns one
  packet, or None when the timeout passes or (TCP) the peer closed. TCP frames
  each packet with a 4-byte big-endian length, as scsynth does. Nothing here
  blocks without a timeout.
- SynthDef builds SCgf version 2 files, the format /d_recv takes, from a graph
  described in Python: named controls (ir, kr, tr, ar), UGens with constant or
  UGen inputs (lists are flattened), several outputs, and arithmetic on
  signals that becomes BinaryOpUGen/UnaryOpUGen with sclang's special indexes.
  UGens are written in the order they are made (so every input comes before
  its use), after the Control UGens. Inputs that scsynth reads as full audio
  blocks (Out.ar's channels, a filter's input) are checked to be audio rate:
  a control-rate wire there makes scsynth read past it.
- parse_synthdefs() reads SCgf versions 1 and 2 back, to inspect or compare
  files.
"""
import math
import socket
import struct
import time

__all__ = [
    "IMMEDIATE", "NTP_UNIX_OFFSET", "OscError", "pad", "osc_string", "message", "bundle", "read_string",
    "decode", "unbundle", "messages", "ntp_now", "unix_to_ntp", "ntp_to_unix", "timetag", "timetag_seconds",
    "Udp", "Tcp", "connect", "wait_for", "SynthDef", "Sig", "env", "env_perc", "env_adsr", "synthdef_file",
    "parse_synthdefs", "UNARY_OPS", "BINARY_OPS",
]

NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
IMMEDIATE = 1  # the OSC timetag meaning "as soon as it arrives"


class OscError(ValueError):
    """A packet that is not well-formed OSC, or a value OSC cannot carry."""


# ------------------------------------------------------------------ OSC


def pad(b):
    """b with its terminating NUL and padding to a multiple of 4 bytes."""
    return b + b"\0" * (4 - len(b) % 4)


def osc_string(s):
    return pad(s.encode() if isinstance(s, str) else s)


def message(addr, *args):
    """One OSC message. addr is a str, or bytes used as they are (e.g. an
    already padded address or scsynth's integer command form)."""
    tags, data = ",", b""
    for a in args:
        if isinstance(a, bool):
            raise TypeError("no booleans")
        if isinstance(a, int):
            if not -2**31 <= a < 2**31:
                raise OscError("%d does not fit OSC's 32-bit int" % a)
            tags += "i"
            data += struct.pack(">i", a)
        elif isinstance(a, float):
            tags += "f"
            data += struct.pack(">f", a)
        elif isinstance(a, str):
            tags += "s"
            data += osc_string(a)
        elif isinstance(a, (bytes, bytearray)):
            tags += "b"
            data += struct.pack(">i", len(a)) + bytes(a) + b"\0" * ((4 - len(a) % 4) % 4)
        else:
            raise TypeError(type(a))
    head = osc_string(addr) if isinstance(addr, str) else addr
    return head + osc_string(tags) + data


def bundle(timetag, *elements):
    """A bundle of already encoded messages or bundles; timetag is the 64-bit
    NTP value (see timetag()), or IMMEDIATE."""
    out = b"#bundle\0" + struct.pack(">Q", timetag)
    for e in elements:
        out += struct.pack(">i", len(e)) + e
    return out


def read_string(b, i):
    """The string at offset i and the offset after its padding."""
    end = b.index(b"\0", i)
    s = b[i:end].decode("latin-1")
    return s, (end + 4) & ~3


def decode(b):
    """A message as (address, [args]); bundles as ("#bundle", [elements])
    (the timetag: unbundle()). Raises OscError on malformed input."""
    try:
        return _decode(b)
    except (ValueError, IndexError, struct.error) as e:
        if isinstance(e, OscError):
            raise
        raise OscError("malformed OSC packet (%d bytes): %s" % (len(b), e)) from None


def _decode(b):
    if b.startswith(b"#bundle\0"):
        return ("#bundle", [_decode(e) for e in unbundle(b)[1]])
    addr, i = read_string(b, 0)
    if i >= len(b):
        return (addr, [])
    tags, i = read_string(b, i)
    args = []
    for t in tags[1:]:
        if t == "i":
            args.append(struct.unpack(">i", b[i:i + 4])[0])
            i += 4
        elif t == "f":
            args.append(struct.unpack(">f", b[i:i + 4])[0])
            i += 4
        elif t == "d":
            args.append(struct.unpack(">d", b[i:i + 8])[0])
            i += 8
        elif t in "ht":
            args.append(struct.unpack(">q" if t == "h" else ">Q", b[i:i + 8])[0])
            i += 8
        elif t == "s":
            s, i = read_string(b, i)
            args.append(s)
        elif t == "b":
            (n,) = struct.unpack(">i", b[i:i + 4])
            if n < 0 or i + 4 + n > len(b):
                raise OscError("blob of %d bytes runs past the end" % n)
            args.append(b[i + 4:i + 4 + n])
            i += 4 + ((n + 3) & ~3)
        elif t in "cm":
            (v,) = struct.unpack(">i" if t == "c" else ">I", b[i:i + 4])
            args.append(chr(v) if t == "c" else v)
            i += 4
        elif t in "TFNI":
            args.append({"T": True, "F": False, "N": None, "I": math.inf}[t])
        else:
            args.append("<%s>" % t)
    return (addr, args)


def unbundle(b):
    """(timetag, [element bytes]) of a bundle."""
    if not b.startswith(b"#bundle\0") or len(b) < 16:
        raise OscError("not a bundle")
    (tt,) = struct.unpack(">Q", b[8:16])
    i, items = 16, []
    while i < len(b):
        (n,) = struct.unpack(">i", b[i:i + 4])
        if n < 0 or i + 4 + n > len(b):
            raise OscError("bundle element of %d bytes runs past the end" % n)
        items.append(b[i + 4:i + 4 + n])
        i += 4 + n
    return tt, items


def messages(b):
    """Every message in a packet, bundles flattened, as (address, [args])."""
    m = decode(b)
    out, todo = [], [m]
    while todo:
        x = todo.pop(0)
        if x[0] == "#bundle":
            todo[0:0] = x[1]
        else:
            out.append(x)
    return out


# ------------------------------------------------------------------ time


def ntp_now():
    """Now, in NTP seconds (since 1900-01-01 UTC), as a float."""
    return time.time() + NTP_UNIX_OFFSET


def unix_to_ntp(t):
    return t + NTP_UNIX_OFFSET


def ntp_to_unix(t):
    return t - NTP_UNIX_OFFSET


def timetag(ntp_seconds):
    """NTP seconds (float) as an OSC timetag (64-bit: seconds, then 2^-32 s)."""
    tt = int(round(ntp_seconds * 4294967296.0))
    if not 1 < tt < 2**64:
        raise OscError("time %r is outside the NTP era" % ntp_seconds)
    return tt


def timetag_seconds(tt):
    return tt / 4294967296.0


# ------------------------------------------------------------ transports


class Udp:
    def __init__(self, port, host="127.0.0.1"):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind((host, 0))
        self.addr = (host, port)

    def send(self, pkt):
        self.s.sendto(pkt, self.addr)

    def recv(self, timeout):
        self.s.settimeout(max(timeout, 0.0001))
        try:
            return self.s.recv(65536)
        except socket.timeout:
            return None

    def close(self):
        self.s.close()


class Tcp:
    def __init__(self, port, host="127.0.0.1", timeout=5.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.closed = False

    def send(self, pkt):
        self.s.sendall(struct.pack(">i", len(pkt)) + pkt)

    def recv(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">i", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    pkt, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return pkt
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def close(self):
        self.s.close()


def connect(port, tcp=False, host="127.0.0.1"):
    return Tcp(port, host) if tcp else Udp(port, host)


def wait_for(conn, match, timeout, on_other=None):
    """Receive until a message for which match(msg) is true; returns it, or
    None after timeout seconds. Every other message (bundles flattened) goes
    to on_other(msg) if given. Malformed packets are passed on as
    ("<malformed>", [bytes])."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        pkt = conn.recv(left)
        if pkt is None:
            if getattr(conn, "closed", False):
                return None
            continue
        try:
            msgs = messages(pkt)
        except OscError:
            msgs = [("<malformed>", [pkt])]
        found = None
        for m in msgs:
            if found is None and match(m):
                found = m
            elif on_other:
                on_other(m)
        if found is not None:
            return found


# ------------------------------------------------------------- SynthDef

RATES = {"ir": 0, "kr": 1, "ar": 2, "dr": 3}

# sclang's special indexes (Symbol.specialIndex, SuperCollider 3.13)
UNARY_OPS = {
    "neg": 0, "not": 1, "bitNot": 4, "abs": 5, "ceil": 8, "floor": 9, "frac": 10, "sign": 11, "squared": 12,
    "cubed": 13, "sqrt": 14, "exp": 15, "reciprocal": 16, "midicps": 17, "cpsmidi": 18, "midiratio": 19,
    "ratiomidi": 20, "dbamp": 21, "ampdb": 22, "octcps": 23, "cpsoct": 24, "log": 25, "log2": 26, "log10": 27,
    "sin": 28, "cos": 29, "tan": 30, "asin": 31, "acos": 32, "atan": 33, "sinh": 34, "cosh": 35, "tanh": 36,
    "distort": 42, "softclip": 43,
}
BINARY_OPS = {
    "+": 0, "-": 1, "*": 2, "div": 3, "/": 4, "mod": 5, "==": 6, "!=": 7, "<": 8, ">": 9, "<=": 10, ">=": 11,
    "min": 12, "max": 13, "bitAnd": 14, "bitOr": 15, "bitXor": 16, "lcm": 17, "gcd": 18, "round": 19,
    "roundUp": 20, "trunc": 21, "atan2": 22, "hypot": 23, "hypotApx": 24, "pow": 25, "leftShift": 26,
    "rightShift": 27, "unsignedRightShift": 28, "fill": 29, "ring1": 30, "ring2": 31, "ring3": 32, "ring4": 33,
    "difsqr": 34, "sumsqr": 35, "sqrsum": 36, "sqrdif": 37, "absdif": 38, "thresh": 39, "amclip": 40,
    "scaleneg": 41, "clip2": 42, "excess": 43, "fold2": 44, "wrap2": 45,
}

# Inputs scsynth reads as whole audio blocks when the UGen runs at audio rate:
# index of the first such input, or a tuple of indexes.
_AUDIO_INPUTS = {
    "Out": 1, "ReplaceOut": 1, "OffsetOut": 1, "XOut": 2, "DiskOut": 1, "LocalOut": 0,
    "LPF": (0,), "HPF": (0,), "BPF": (0,), "BRF": (0,), "RLPF": (0,), "RHPF": (0,), "Resonz": (0,),
    "OnePole": (0,), "MoogFF": (0,), "FreeVerb": (0,), "FreeVerb2": (0, 1), "Pan2": (0,), "Balance2": (0, 1),
    "LeakDC": (0,), "Limiter": (0,), "Compander": (0,),
}

_CONTROL_CLASSES = (("ir", "Control", 0), ("kr", "Control", 1), ("tr", "TrigControl", 1), ("ar", "AudioControl", 2))


def _rate_of(x):
    return x.rate if isinstance(x, Sig) else 0


class Sig:
    """One output of a UGen (or one control) in a SynthDef graph. Arithmetic
    with numbers or other signals makes BinaryOpUGens; op() reaches the other
    operators by their sclang names (sig.op("tanh"), a.op("max", b))."""

    __slots__ = ("graph", "node", "index", "rate")

    def __init__(self, graph, node, index, rate):
        self.graph, self.node, self.index, self.rate = graph, node, index, rate

    def op(self, name, other=None):
        if other is None:
            return self.graph.unop(name, self)
        return self.graph.binop(name, self, other)

    def __add__(self, o):
        return self.graph.binop("+", self, o)

    def __radd__(self, o):
        return self.graph.binop("+", o, self)

    def __sub__(self, o):
        return self.graph.binop("-", self, o)

    def __rsub__(self, o):
        return self.graph.binop("-", o, self)

    def __mul__(self, o):
        return self.graph.binop("*", self, o)

    def __rmul__(self, o):
        return self.graph.binop("*", o, self)

    def __truediv__(self, o):
        return self.graph.binop("/", self, o)

    def __rtruediv__(self, o):
        return self.graph.binop("/", o, self)

    def __pow__(self, o):
        return self.graph.binop("pow", self, o)

    def __neg__(self):
        return self.graph.unop("neg", self)

    def __abs__(self):
        return self.graph.unop("abs", self)

    def __repr__(self):
        return "<Sig %s[%d] %s>" % (getattr(self.node, "name", "?"), self.index, self.rate)


class _UGen:
    __slots__ = ("name", "rate", "inputs", "outputs", "special")

    def __init__(self, name, rate, inputs, outputs, special):
        self.name, self.rate, self.inputs, self.outputs, self.special = name, rate, inputs, outputs, special


class _ControlGroup:
    """The controls of one rate: one Control (TrigControl, AudioControl) UGen."""

    def __init__(self, rate_name):
        self.rate_name = rate_name
        self.name = rate_name + " controls"
        self.entries = []  # (name, [values])
        self.width = 0


def _flatten(xs):
    out = []
    for x in xs:
        if isinstance(x, (list, tuple)):
            out.extend(_flatten(x))
        else:
            out.append(x)
    return out


def _pstring(s):
    b = s.encode()
    if len(b) > 255:
        raise OscError("name longer than 255 bytes: %r" % s)
    return bytes([len(b)]) + b


def _f32(v):
    return struct.unpack(">f", struct.pack(">f", float(v)))[0]


class SynthDef:
    """A SynthDef graph.

        d = SynthDef("sine")
        freq, amp, out = d.controls(freq=440.0, amp=0.1, out=0)
        sig = d.ar("SinOsc", freq, 0) * amp
        d.ar("Out", out, sig, outputs=0)
        data = d.bytes()          # an SCgf file with this one def, for /d_recv
    """

    def __init__(self, name):
        _pstring(name)
        self.name = name
        self._groups = {r: _ControlGroup(r) for r, _, _ in _CONTROL_CLASSES}
        self._names = set()
        self._ugens = []

    # ---- controls

    def control(self, name, default=0.0, rate="kr"):
        """A named control; default may be a list (an array control: its
        signals come back as a list, the name points at the first)."""
        if rate not in self._groups:
            raise ValueError("control rate must be one of ir, kr, tr, ar, not %r" % rate)
        if name in self._names:
            raise ValueError("control %r defined twice in %s" % (name, self.name))
        values = [float(v) for v in default] if isinstance(default, (list, tuple)) else [float(default)]
        if not values:
            raise ValueError("control %r has no values" % name)
        g = self._groups[rate]
        self._names.add(name)
        srate = {"ir": 0, "kr": 1, "tr": 1, "ar": 2}[rate]
        sigs = [Sig(self, g, g.width + k, srate) for k in range(len(values))]
        g.entries.append((name, values))
        g.width += len(values)
        return sigs if isinstance(default, (list, tuple)) else sigs[0]

    def controls(self, *rate, **defaults):
        """Several controls at once, in keyword order: a, b = d.controls(a=1, b=2)
        (kr), or d.controls("ir", a=1). Names that are Python keywords:
        d.controls(**{"in": 16})."""
        if len(rate) > 1:
            raise TypeError("controls() takes at most one rate")
        return [self.control(n, v, rate[0] if rate else "kr") for n, v in defaults.items()]

    # ---- UGens

    def ugen(self, name, rate, *inputs, outputs=1, special=0, output_rates=None):
        """A UGen; inputs are numbers, signals or lists of them (flattened).
        Returns one Sig, a list of Sigs (outputs > 1), or None (no outputs)."""
        if rate not in RATES:
            raise ValueError("rate must be one of %s, not %r" % (", ".join(RATES), rate))
        ins = _flatten(inputs)
        for x in ins:
            if isinstance(x, Sig):
                if x.graph is not self:
                    raise ValueError("%s: an input belongs to another SynthDef" % name)
            elif not isinstance(x, (int, float)) or isinstance(x, bool):
                raise TypeError("%s: input %r is neither a number nor a signal" % (name, x))
        self._check_audio_inputs(name, rate, ins)
        orates = [RATES[r] for r in output_rates] if output_rates else [RATES[rate]] * outputs
        u = _UGen(name, RATES[rate], ins, orates, int(special))
        self._ugens.append(u)
        sigs = [Sig(self, u, k, r) for k, r in enumerate(orates)]
        if len(sigs) == 1:
            return sigs[0]
        return sigs or None

    def ar(self, name, *inputs, **kw):
        return self.ugen(name, "ar", *inputs, **kw)

    def kr(self, name, *inputs, **kw):
        return self.ugen(name, "kr", *inputs, **kw)

    def ir(self, name, *inputs, **kw):
        return self.ugen(name, "ir", *inputs, **kw)

    def binop(self, op, a, b):
        if op not in BINARY_OPS:
            raise ValueError("unknown binary operator %r" % op)
        rate = max(_rate_of(a), _rate_of(b))
        name = [k for k, v in RATES.items() if v == rate][0]
        return self.ugen("BinaryOpUGen", name, a, b, special=BINARY_OPS[op])

    def unop(self, op, a):
        if op not in UNARY_OPS:
            raise ValueError("unknown unary operator %r" % op)
        name = [k for k, v in RATES.items() if v == _rate_of(a)][0]
        return self.ugen("UnaryOpUGen", name, a, special=UNARY_OPS[op])

    def envgen(self, envelope, gate=1.0, level_scale=1.0, level_bias=0.0, time_scale=1.0, done_action=0, rate="kr"):
        """EnvGen over an env() array (done_action 2 frees the synth at the end)."""
        return self.ugen("EnvGen", rate, gate, level_scale, level_bias, time_scale, done_action, envelope)

    def _check_audio_inputs(self, name, rate, ins):
        want = _AUDIO_INPUTS.get(name)
        if rate != "ar" or want is None:
            return
        idx = range(want, len(ins)) if isinstance(want, int) else want
        for k in idx:
            if k < len(ins) and _rate_of(ins[k]) != RATES["ar"]:
                raise ValueError("%s.ar in %s: input %d must be an audio-rate signal, not %r"
                                 % (name, self.name, k, ins[k]))

    # ---- writing

    def encode(self):
        """This def's part of an SCgf version 2 file (without the file header)."""
        groups = [(self._groups[r], cls, rate) for r, cls, rate in _CONTROL_CLASSES if self._groups[r].entries]
        params, names, index = [], [], {}
        ugens = []
        for g, cls, rate in groups:
            first = len(params)
            for n, vals in g.entries:
                names.append((n, len(params)))
                params.extend(vals)
            index[id(g)] = len(ugens)
            ugens.append(_UGen(cls, rate, [], [rate] * g.width, first))
        for u in self._ugens:
            index[id(u)] = len(ugens)
            ugens.append(u)
        consts, cindex = [], {}
        specs = []
        for u in ugens:
            spec = []
            for x in u.inputs:
                if isinstance(x, Sig):
                    spec.append((index[id(x.node)], x.index))
                else:
                    key = struct.pack(">f", float(x))
                    if key not in cindex:
                        cindex[key] = len(consts)
                        consts.append(float(x))
                    spec.append((-1, cindex[key]))
            specs.append(spec)
        d = _pstring(self.name)
        d += struct.pack(">i", len(consts)) + b"".join(struct.pack(">f", c) for c in consts)
        d += struct.pack(">i", len(params)) + b"".join(struct.pack(">f", p) for p in params)
        d += struct.pack(">i", len(names)) + b"".join(_pstring(n) + struct.pack(">i", i) for n, i in names)
        d += struct.pack(">i", len(ugens))
        for u, spec in zip(ugens, specs):
            d += _pstring(u.name) + struct.pack(">biih", u.rate, len(spec), len(u.outputs), u.special)
            d += b"".join(struct.pack(">ii", a, k) for a, k in spec)
            d += b"".join(struct.pack(">b", r) for r in u.outputs)
        d += struct.pack(">h", 0)  # variants
        return d

    def bytes(self):
        """An SCgf version 2 file holding this def alone (what /d_recv takes)."""
        return synthdef_file(self)


def synthdef_file(*defs):
    """An SCgf version 2 file holding several defs."""
    return b"SCgf" + struct.pack(">ih", 2, len(defs)) + b"".join(d.encode() for d in defs)


# ------------------------------------------------------------- envelopes

_SHAPES = {"step": 0, "lin": 1, "linear": 1, "exp": 2, "exponential": 2, "sin": 3, "sine": 3, "wel": 4,
           "welch": 4, "sqr": 6, "squared": 6, "cub": 7, "cubed": 7, "hold": 8}


def env(levels, times, curve=-4.0, release_node=None, loop_node=None):
    """An envelope as EnvGen's input array (sclang's Env.asArray): levels and
    times may be numbers or signals; curve is a number (curvature) or a shape
    name, or a list with one per segment."""
    if len(levels) != len(times) + 1:
        raise ValueError("an envelope needs one level more than times")
    curves = curve if isinstance(curve, (list, tuple)) else [curve] * len(times)
    arr = [levels[0], len(times), -99 if release_node is None else release_node,
           -99 if loop_node is None else loop_node]
    for k, t in enumerate(times):
        c = curves[k % len(curves)]
        if isinstance(c, str):
            if c not in _SHAPES:
                raise ValueError("unknown envelope shape %r" % c)
            shape, value = _SHAPES[c], 0.0
        else:
            shape, value = 5, c
        arr += [levels[k + 1], t, shape, value]
    return arr


def env_perc(attack=0.01, release=1.0, level=1.0, curve=-4.0):
    return env([0, level, 0], [attack, release], curve)


def env_adsr(attack=0.01, decay=0.3, sustain=0.5, release=1.0, peak=1.0, curve=-4.0):
    """Sustains at peak * sustain while the gate is open (release node 2)."""
    return env([0, peak, peak * sustain, 0], [attack, decay, release], curve, release_node=2)


# -------------------------------------------------------------- reading


def parse_synthdefs(data):
    """SCgf (version 1 or 2) as a list of dicts: name, constants, params,
    names {name: index}, ugens [(class, rate, [(ugen|-1, index)], [rates],
    special)], variants {name: [values]}."""
    if data[:4] != b"SCgf":
        raise OscError("not an SCgf file")
    (version,) = struct.unpack(">i", data[4:8])
    if version not in (1, 2):
        raise OscError("SCgf version %d" % version)
    pos = [8]
    big = version == 2  # version 1 counts with int16

    def take(fmt):
        v = struct.unpack_from(">" + fmt, data, pos[0])
        pos[0] += struct.calcsize(">" + fmt)
        return v if len(v) > 1 else v[0]

    def count():
        return take("i" if big else "h")

    def pstr():
        n = data[pos[0]]
        s = data[pos[0] + 1:pos[0] + 1 + n].decode()
        pos[0] += 1 + n
        return s

    defs = []
    for _ in range(take("h")):
        d = {"name": pstr()}
        d["constants"] = [take("f") for _ in range(count())]
        d["params"] = [take("f") for _ in range(count())]
        d["names"] = {}
        for _ in range(count()):
            n = pstr()
            d["names"][n] = count()
        d["ugens"] = []
        for _ in range(count()):
            cls = pstr()
            rate, nin, nout, special = take("b"), count(), count(), take("h")
            ins = [(count(), count()) for _ in range(nin)]
            outs = [take("b") for _ in range(nout)]
            d["ugens"].append((cls, rate, ins, outs, special))
        d["variants"] = {}
        for _ in range(take("h")):
            n = pstr()
            d["variants"][n] = [take("f") for _ in range(len(d["params"]))]
        defs.append(d)
    if pos[0] != len(data):
        raise OscError("%d bytes after the last def" % (len(data) - pos[0]))
    return defs


if __name__ == "__main__":  # describe .scsyndef files
    import json
    import sys
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            print(json.dumps(parse_synthdefs(f.read())))
