#!/usr/bin/env python3
"""Writes a test WAV that exercises the example pipelines (standard library only).

48 kHz stereo, 16-bit: 1 s of a 440 Hz tone, 0.6 s of silence, 1 s of a tone with the right
channel 20 dB quieter, and 0.5 s of a hard-clipped tone.

    python3 examples/audio/make_wav.py out.wav [--seconds-scale N]
"""
import argparse
import math
import struct
import wave

RATE = 48_000


def segment(seconds, left, right):
    n = int(seconds * RATE)
    return [(left(i), right(i)) for i in range(n)]


def tone(freq, amp):
    return lambda i: amp * math.sin(2 * math.pi * freq * i / RATE)


def clipped(freq, drive):
    return lambda i: max(-1.0, min(1.0, drive * math.sin(2 * math.pi * freq * i / RATE)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--repeat", type=int, default=1, help="repeat the pattern N times (longer inputs)")
    args = ap.parse_args()
    silent = lambda i: 0.0
    pattern = (
        segment(1.0, tone(440, 0.5), tone(440, 0.5))
        + segment(0.6, silent, silent)
        + segment(1.0, tone(660, 0.5), tone(660, 0.05))
        + segment(0.5, clipped(330, 3.0), clipped(330, 3.0))
    )
    with wave.open(args.path, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        frames = bytearray()
        for l, r in pattern:
            frames += struct.pack("<hh", int(l * 32767), int(r * 32767))
        for _ in range(args.repeat):
            w.writeframes(frames)


if __name__ == "__main__":
    main()
