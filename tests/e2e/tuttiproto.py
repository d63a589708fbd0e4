"""The tutti wire protocol and its handshake in plain Python (no third-party
modules), for the hostile peers of the e2e tests (badpeer.py, attacker.py).

SP pair1 over TCP: an 8-byte header each way, then messages as a 64-bit
big-endian length and that many bytes, the first four a hop count. Inside, a
tutti frame: "TU", version, flags, varint link_seq, varint ack, records
(type, varint length, body of fields key=(no<<3)|kind).

The handshake (core/src/auth.h): HELLO(session, name, role, resume_id,
recv_next, cnonce, epk) -> CHALLENGE(hnonce, hub_pk, sig, mode) ->
AUTH(kind, cred_id, proof) -> WELCOME | REJECT. X25519 is RFC 7748's ladder;
the hub's Ed25519 key becomes an X25519 one by u = (1 + y) / (1 - y).
The hub's signature is not checked here (an attacker does not care).

After a WELCOME won with a credential (not on an open hub) every frame both
ways is sealed (core/src/seal.h): "TU", version, flags 0x80, a 64-bit LE
counter, then ChaCha20-Poly1305 (IETF, nonce = 4 zero bytes | counter) of
the plain frame, the 12 header bytes as associated data; keys from the
member secret by crypto_kdf (context "tuttilnk", 1: member -> hub, 2: hub ->
member). Python has no AEAD of its own, so Seal calls libsodium (which the
project depends on anyway) through ctypes.
"""
import ctypes
import ctypes.util
import hashlib
import os
import socket
import struct
import time

SP_PAIR1 = b"\x00SP\x00\x00\x11\x00\x00"

REC_HELLO, REC_WELCOME, REC_REJECT, REC_EVENT, REC_WATERMARK = 1, 2, 3, 4, 5
REC_PING, REC_PONG, REC_NACK, REC_REPORT, REC_NOTICE, REC_REQUEST, REC_BYE = 6, 7, 8, 9, 10, 11, 12
REC_CHALLENGE, REC_AUTH = 14, 15
AUTH_OPEN, AUTH_INVITE, AUTH_PASSPHRASE, AUTH_RESUME = 0, 1, 2, 3
ROLES = {"performer": 0, "listener": 1, "conductor": 2, "admin": 3}


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63)


def f_bytes(no, data):
    return varint(no << 3 | 2) + varint(len(data)) + data


def f_varint(no, v):
    return varint(no << 3) + varint(v)


def f_double(no, d):
    return varint(no << 3 | 1) + struct.pack("<d", d)


def record(rtype, body):
    return bytes([rtype]) + varint(len(body)) + body


def frame(records, link_seq=0, ack=0, version=1):
    return b"TU" + bytes([version, 0]) + varint(link_seq) + varint(ack) + records


def message(body, hops=1):
    return struct.pack(">Q", len(body) + 4) + struct.pack(">I", hops) + body


# ------------------------------------------------------------- decoding

def read_varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, i


def parse_fields(body):
    out = {}
    i = 0
    while i < len(body):
        key, i = read_varint(body, i)
        no, kind = key >> 3, key & 7
        if kind == 0:
            v, i = read_varint(body, i)
        elif kind == 1:
            v = body[i:i + 8]
            i += 8
        else:
            n, i = read_varint(body, i)
            v = body[i:i + n]
            i += n
        out[no] = v
    return out


def parse_frame(msg):
    """-> (link_seq, [(type, fields)]) or None (also for a sealed frame)."""
    if len(msg) < 4 or msg[:2] != b"TU" or msg[3] & 0x80:
        return None
    i = 4
    seq, i = read_varint(msg, i)
    _, i = read_varint(msg, i)
    recs = []
    while i < len(msg):
        t = msg[i]
        n, i = read_varint(msg, i + 1)
        recs.append((t, parse_fields(msg[i:i + n])))
        i += n
    return seq, recs


class Conn:
    """One SP pair1 connection to the hub; messages in and out."""

    def __init__(self, host, port, source=None, timeout=3):
        self.s = socket.create_connection((host, port), timeout=timeout,
                                          source_address=(source, 0) if source else None)
        self.s.sendall(SP_PAIR1)
        self.buf = b""
        self.got_header = False
        self.seal = None        # a Seal once the link is sealed
        self.unopened = 0       # sealed frames that did not open

    def send(self, body):
        if self.seal:
            body = self.seal.seal(body)
        # recv leaves the socket with whatever was left of its own timeout
        # (a few ms, say): a large frame to a busy hub must not fail on that
        self.s.settimeout(10)
        self.s.sendall(message(body))

    def recv(self, timeout=2.0):
        """The next tutti message body, or None (timeout or closed)."""
        end = time.time() + timeout
        while True:
            if not self.got_header and len(self.buf) >= 8:
                self.buf = self.buf[8:]
                self.got_header = True
            if self.got_header and len(self.buf) >= 8:
                n = struct.unpack(">Q", self.buf[:8])[0]
                if len(self.buf) >= 8 + n:
                    m = self.buf[12:8 + n]
                    self.buf = self.buf[8 + n:]
                    if len(m) >= 4 and m[3] & 0x80 and self.seal:
                        p = self.seal.open(m)
                        if p is None:
                            self.unopened += 1
                            continue
                        m = p
                    return m
            left = end - time.time()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                d = self.s.recv(65536)
            except (socket.timeout, OSError):
                return None
            if not d:
                return None
            self.buf += d

    def records(self, timeout=2.0):
        """Every record received within `timeout`, as (link_seq, type, fields)."""
        out = []
        end = time.time() + timeout
        while time.time() < end:
            m = self.recv(max(0.01, end - time.time()))
            if m is None:
                break
            p = parse_frame(m)
            if p:
                out += [(p[0], t, f) for t, f in p[1]]
        return out

    def wait_for(self, rtypes, timeout=3.0):
        end = time.time() + timeout
        while time.time() < end:
            m = self.recv(max(0.01, end - time.time()))
            if m is None:
                return None
            p = parse_frame(m)
            if not p:
                continue
            for t, f in p[1]:
                if t in rtypes:
                    return t, f, p[0]
        return None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


# ---------------------------------------------------------- cryptography

P = 2 ** 255 - 19


def x25519(k, u):
    k = bytearray(k)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        kt = (k >> t) & 1
        swap ^= kt
        if swap:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b = (x2 + z2) % P, (x2 - z2) % P
        aa, bb = a * a % P, b * b % P
        e = (aa - bb) % P
        c, d = (x3 + z3) % P, (x3 - z3) % P
        da, cb = d * a % P, c * b % P
        x3 = (da + cb) ** 2 % P
        z3 = x1 * (da - cb) ** 2 % P
        x2 = aa * bb % P
        z2 = e * (aa + 121665 * e) % P
    if swap:
        x2, x3, z2, z3 = x3, x2, z3, z2
    return (x2 * pow(z2, P - 2, P) % P).to_bytes(32, "little")


def ed_to_x(pk):
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    u = (1 + y) * pow((1 - y) % P, P - 2, P) % P
    return u.to_bytes(32, "little")


def h_part(parts):
    out = b""
    for p in parts:
        out += struct.pack(">I", len(p)) + p
    return out


def transcript(session, cnonce, epk, hnonce, hub_pk):
    return hashlib.blake2b(h_part([b"tutti-hs-1", session.encode(), cnonce, epk, hnonce, hub_pk]),
                           digest_size=32).digest()


def proof(key, dh, th, kind, cred_id, name, resume_id):
    msg = h_part([b"tutti-proof-1", dh, th, struct.pack(">I", kind), cred_id.encode(),
                  name.encode(), struct.pack(">I", resume_id)])
    return hashlib.blake2b(msg, digest_size=32, key=key).digest()


def member_secret(dh, th):
    return hashlib.blake2b(h_part([b"tutti-member-1", th]), digest_size=32, key=dh).digest()


def read_invite(path):
    line = open(path).read().split("\n")[0].split()
    return {"id": line[1], "role": line[2], "expires": int(line[3]),
            "secret": bytes.fromhex(line[4]), "hub_pk": bytes.fromhex(line[5])}


class Seal:
    """One end of a sealed link (core/src/seal.h), libsodium through ctypes."""
    lib = None

    def __init__(self, secret, hub=False):
        if Seal.lib is None:
            Seal.lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
            assert Seal.lib.sodium_init() >= 0
        keys = {}
        for sub in (1, 2):
            k = ctypes.create_string_buffer(32)
            Seal.lib.crypto_kdf_derive_from_key(k, ctypes.c_size_t(32), ctypes.c_uint64(sub),
                                                b"tuttilnk", secret)
            keys[sub] = k.raw
        self.tx, self.rx = (keys[2], keys[1]) if hub else (keys[1], keys[2])
        self.tx_next = 1

    def seal(self, plain, counter=None):
        ctr = self.tx_next if counter is None else counter
        self.tx_next = max(self.tx_next, ctr + 1)
        hdr = b"TU" + bytes([1, 0x80]) + struct.pack("<Q", ctr)
        out = ctypes.create_string_buffer(len(plain) + 16)
        n = ctypes.c_ulonglong(0)
        Seal.lib.crypto_aead_chacha20poly1305_ietf_encrypt(
            out, ctypes.byref(n), plain, ctypes.c_ulonglong(len(plain)), hdr,
            ctypes.c_ulonglong(len(hdr)), None, bytes(4) + hdr[4:], self.tx)
        return hdr + out.raw[:n.value]

    def open(self, sealed):
        """The plain frame, or None (no replay check here: a test peer)."""
        if len(sealed) < 28:
            return None
        out = ctypes.create_string_buffer(len(sealed))
        n = ctypes.c_ulonglong(0)
        rc = Seal.lib.crypto_aead_chacha20poly1305_ietf_decrypt(
            out, ctypes.byref(n), None, sealed[12:], ctypes.c_ulonglong(len(sealed) - 12),
            sealed[:12], ctypes.c_ulonglong(12), bytes(4) + sealed[4:12], self.rx)
        return out.raw[:n.value] if rc == 0 else None


# --------------------------------------------------------------- joining

def hello(session, name, role=0, resume_id=0, recv_next=1, cnonce=None, epk=None):
    body = f_bytes(1, session.encode()) + f_bytes(2, name.encode())
    if role:
        body += f_varint(3, role)
    if resume_id:
        body += f_varint(4, resume_id)
    body += f_varint(5, recv_next)
    if cnonce is not None:
        body += f_bytes(6, cnonce) + f_bytes(7, epk)
    return frame(record(REC_HELLO, body))


def auth_frame(kind, cred_id, prf):
    body = (f_varint(1, kind) if kind else b"") + (f_bytes(2, cred_id.encode()) if cred_id else b"") \
        + f_bytes(3, prf)
    return frame(record(REC_AUTH, body))


class Handshake:
    """Run the handshake on a connection. kind/key say what to prove; the
    frames sent are kept (self.sent) so a test can replay them."""

    def __init__(self, conn, session, name, kind=AUTH_OPEN, key=bytes(32), cred_id="",
                 role=0, resume_id=0, recv_next=1):
        self.c, self.session, self.name = conn, session, name
        self.kind, self.key, self.cred_id = kind, key, cred_id
        self.role, self.resume_id, self.recv_next = role, resume_id, recv_next
        self.sent = []
        self.reply = None  # (type, fields)
        self.secret = None

    def run(self, timeout=3.0):
        cnonce = os.urandom(32)
        esk = os.urandom(32)
        epk = x25519(esk, (9).to_bytes(32, "little"))
        h = hello(self.session, self.name, self.role, self.resume_id, self.recv_next, cnonce, epk)
        self.sent.append(h)
        self.c.send(h)
        r = self.c.wait_for({REC_CHALLENGE, REC_REJECT}, timeout)
        if not r or r[0] != REC_CHALLENGE:
            self.reply = r
            return r
        f = r[1]
        hnonce, hub_pk = f[1], f[2]
        th = transcript(self.session, cnonce, epk, hnonce, hub_pk)
        dh = x25519(esk, ed_to_x(hub_pk))
        a = auth_frame(self.kind, self.cred_id,
                       proof(self.key, dh, th, self.kind, self.cred_id, self.name, self.resume_id))
        self.sent.append(a)
        self.c.send(a)
        self.secret = member_secret(dh, th)
        self.reply = self.c.wait_for({REC_WELCOME, REC_REJECT}, timeout)
        if self.reply and self.reply[0] == REC_WELCOME and self.kind != AUTH_OPEN \
                and not self.resume_id:
            self.c.seal = Seal(self.secret)
        return self.reply


def join(host, port, session, name, invite=None, role=0, source=None):
    """Join with an invitation (a dict from read_invite) or on an open hub.
    -> (conn, handshake); handshake.reply is WELCOME or REJECT (or None)."""
    c = Conn(host, port, source)
    if invite:
        hs = Handshake(c, session, name, AUTH_INVITE, invite["secret"], invite["id"])
    else:
        hs = Handshake(c, session, name, AUTH_OPEN, bytes(32), "", role)
    hs.run()
    return c, hs


def welcome_fields(f):
    """member_id, horizon, joined_t, role from a WELCOME's fields."""
    def zz(v):
        return (v >> 1) ^ -(v & 1)
    return f.get(1, 0), zz(f.get(2, 0)), zz(f.get(4, 0)), f.get(8, 0)


def event(t, origin, seq, payload):
    return record(REC_EVENT, f_varint(1, zigzag(t)) + f_varint(2, origin) + f_varint(3, seq)
                  + f_bytes(5, payload))


def watermark(origin, w, next_seq):
    return record(REC_WATERMARK, f_varint(1, origin) + f_varint(2, zigzag(w)) + f_varint(3, next_seq))


def request(kind, f=0.0, i=0, member=0):
    body = f_varint(1, kind)
    if f:
        body += f_double(2, f)
    if i:
        body += f_varint(3, zigzag(i))
    if member:
        body += f_varint(4, member)
    return record(REC_REQUEST, body)
