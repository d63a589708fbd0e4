#!/usr/bin/env python3
"""Loudness of a WAV file, as JSON (standard library only).

    wavstat.py file.wav [--window 0.1]

Prints {"path", "rate", "channels", "frames", "duration", "peak": [per
channel], "rms": [per channel], "window", "windows": [RMS of each window,
all channels together]}. Levels are linear, full scale = 1.0.

Design notes
- Reads the RIFF chunks itself rather than with the wave module, which does
  not take WAVE_FORMAT_EXTENSIBLE (what libsndfile writes for more than two
  channels) before Python 3.12, nor float samples. PCM of 8, 16, 24 and 32
  bits and 32-bit float are read, plain or extensible.
- The last window may be shorter than --window.
"""
import argparse
import array
import json
import math
import struct
import sys


class WavError(ValueError):
    pass


def read_wav(path):
    """(rate, channels, [[samples of channel 0], ...]) with samples in -1..1."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("%s: not a RIFF WAVE file" % path)
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            pcm = body
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise WavError("%s: no fmt or data chunk" % path)
    tag, channels, rate, _, align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == 0xFFFE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the sub-format GUID starts with the format tag
    if channels < 1 or align != channels * ((bits + 7) // 8):
        raise WavError("%s: inconsistent format (%d channels, %d bits, block %d)" % (path, channels, bits, align))
    n = len(pcm) // align
    pcm = pcm[:n * align]
    if tag == 3 and bits == 32:
        vals = array.array("f", pcm)
        scale = 1.0
    elif tag == 1 and bits == 16:
        vals, scale = array.array("h", pcm), 32768.0
    elif tag == 1 and bits == 32:
        vals, scale = array.array("i", pcm), 2147483648.0
    elif tag == 1 and bits == 8:
        vals, scale = [b - 128 for b in pcm], 128.0
    elif tag == 1 and bits == 24:
        vals = [int.from_bytes(pcm[i:i + 3], "little", signed=True) for i in range(0, len(pcm), 3)]
        scale = 8388608.0
    else:
        raise WavError("%s: format %d with %d bits is not read here" % (path, tag, bits))
    if isinstance(vals, array.array) and sys.byteorder == "big":
        vals.byteswap()
    chans = [[v / scale for v in vals[c::channels]] for c in range(channels)]
    return rate, channels, chans


def stats(path, window=0.1):
    rate, channels, chans = read_wav(path)
    frames = len(chans[0]) if chans else 0
    out = {
        "path": path, "rate": rate, "channels": channels, "frames": frames,
        "duration": round(frames / rate, 6) if rate else 0.0,
        "peak": [round(max((abs(x) for x in c), default=0.0), 6) for c in chans],
        "rms": [round(math.sqrt(sum(x * x for x in c) / len(c)), 6) if c else 0.0 for c in chans],
        "window": window, "windows": [],
    }
    step = max(1, int(round(window * rate)))
    for start in range(0, frames, step):
        total, count = 0.0, 0
        for c in chans:
            seg = c[start:start + step]
            total += sum(x * x for x in seg)
            count += len(seg)
        out["windows"].append(round(math.sqrt(total / count), 6) if count else 0.0)
    return out


def main():
    p = argparse.ArgumentParser(description="Peak, RMS and windowed RMS of a WAV file, as JSON.")
    p.add_argument("path")
    p.add_argument("--window", type=float, default=0.1, help="seconds per RMS window (default 0.1)")
    a = p.parse_args()
    if a.window <= 0:
        p.error("--window must be positive")
    try:
        print(json.dumps(stats(a.path, a.window)))
    except (OSError, WavError) as e:
        print("wavstat.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
