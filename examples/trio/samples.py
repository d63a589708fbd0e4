"""The trio's sound files, synthesised deterministically (standard library only).

    python3 samples.py DIR     writes every part's samples into DIR, prints their paths

Design notes
- No files are committed: each is computed from fixed parameters (the noise
  comes from random.Random with a fixed seed), so any machine produces the
  same bytes. Every part writes all of them, so a server that executes
  another member's /b_allocRead finds the file at the same path when the
  members share a folder (one machine) or each generated it (several).
- 48 kHz, mono, 16-bit PCM WAV, peak normalised to 0.9. A file is written
  aside and renamed into place, so parts starting together never read half
  a file; one already there (names carry a version) is kept when it reads as
  a WAV of the right length, so a part does not spend its first half second
  recomputing them.
- Sizes: kick 0.35 s, snare 0.25 s, pluck 0.6 s (110 Hz, A2), keys 1.2 s
  (261.63 Hz, middle C): about 230 KB in all.
"""
import io
import math
import os
import random
import struct
import sys
import wave

RATE = 48000
KEYS_BASE_HZ = 261.6256  # middle C: the keys sample's pitch
PLUCK_BASE_HZ = 110.0  # A2: the bass pluck sample's pitch


SECONDS = {"kick": 0.35, "snare": 0.25, "pluck": 0.6, "keys": 1.2}


def _frames(seconds):
    return int(round(seconds * RATE))


def kick():
    """A sine dropping from 160 Hz to 48 Hz, a short click, an exponential decay."""
    out, phase = [], 0.0
    for n in range(_frames(SECONDS["kick"])):
        t = n / RATE
        f = 48.0 + 112.0 * math.exp(-t / 0.03)
        phase += 2 * math.pi * f / RATE
        click = math.exp(-t / 0.002) * 0.6 * math.sin(2 * math.pi * 1800 * t)
        out.append(math.sin(phase) * math.exp(-t / 0.12) + click)
    return out


def snare():
    """Two body modes (185 Hz, 330 Hz) and noise through a one-pole high-pass."""
    rnd = random.Random(1707)
    out, prev_in, prev_out = [], 0.0, 0.0
    for n in range(_frames(SECONDS["snare"])):
        t = n / RATE
        x = rnd.uniform(-1.0, 1.0)
        hp = 0.85 * (prev_out + x - prev_in)  # one-pole high-pass (about 1.2 kHz)
        prev_in, prev_out = x, hp
        body = (math.sin(2 * math.pi * 185 * t) + 0.5 * math.sin(2 * math.pi * 330 * t)) * math.exp(-t / 0.04)
        out.append(0.7 * body + hp * math.exp(-t / 0.07))
    return out


def pluck():
    """Karplus-Strong at 110 Hz: a noise burst in a damped delay line."""
    rnd = random.Random(2203)
    period = int(round(RATE / PLUCK_BASE_HZ))
    line = [rnd.uniform(-1.0, 1.0) for _ in range(period)]
    out = []
    for n in range(_frames(SECONDS["pluck"])):
        k = n % period
        y = line[k]
        line[k] = 0.996 * 0.5 * (y + line[(k + 1) % period])
        out.append(y)
    return out


def keys():
    """An electric-piano-like FM tone at middle C: carrier 1:1 with a decaying
    index, a bell partial at 14x that dies fast, a slow amplitude decay."""
    f = KEYS_BASE_HZ
    out = []
    for n in range(_frames(SECONDS["keys"])):
        t = n / RATE
        index = 1.6 * math.exp(-t / 0.25) + 0.2
        body = math.sin(2 * math.pi * f * t + index * math.sin(2 * math.pi * f * t))
        bell = 0.25 * math.sin(2 * math.pi * 14 * f * t) * math.exp(-t / 0.03)
        attack = min(1.0, t / 0.002)
        out.append((body + bell) * attack * math.exp(-t / 0.5))
    return out


SAMPLES = {  # name: (file name, generator)
    "kick": ("trio-kick-v1.wav", kick),
    "snare": ("trio-snare-v1.wav", snare),
    "pluck": ("trio-pluck-v1.wav", pluck),
    "keys": ("trio-keys-v1.wav", keys),
}


def wav_bytes(signal):
    peak = max(abs(x) for x in signal) or 1.0
    pcm = b"".join(struct.pack("<h", int(round(x / peak * 0.9 * 32767))) for x in signal)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return buf.getvalue()


def read_floats(path):
    """A mono 16-bit WAV's samples as floats, scaled as scsynth's reader
    (libsndfile) scales them, so /b_setn of these equals /b_allocRead."""
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise ValueError("%s: not a mono 16-bit WAV" % path)
        raw = w.readframes(w.getnframes())
    return [v / 32768.0 for (v,) in struct.iter_unpack("<h", raw)]


def write_all(folder):
    """Write every sample into folder (made if missing); {name: absolute path}."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for name, (fname, gen) in SAMPLES.items():
        path = os.path.join(folder, fname)
        paths[name] = path
        try:
            with wave.open(path, "rb") as w:
                if (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == \
                        (1, 2, RATE, _frames(SECONDS[name])):
                    continue
        except (OSError, EOFError, wave.Error):
            pass
        tmp = "%s.%d.tmp" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(wav_bytes(gen()))
        os.replace(tmp, path)
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: samples.py DIR")
    for p in write_all(sys.argv[1]).values():
        print(p)
