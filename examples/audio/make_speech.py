#!/usr/bin/env python3
"""Writes a WAV of spoken phrases with silence between them, and prints where each phrase is.

Speech from espeak-ng (Debian package `espeak-ng`), resampled to 48 kHz (or --rate) mono 16-bit: 0.5 s of
silence, then each phrase followed by 1 s of silence. Prints one JSON line:
``{"phrases": [{"text", "start_s", "end_s"}], "seconds": total}``, where a phrase starts at its
first and ends after its last 10 ms frame within 40 dB of its loudest frame (measured on the
phrase itself, so espeak-ng's own leading and trailing silence is not counted as speech).

    python3 examples/audio/make_speech.py out.wav [--rate HZ] ["phrase" ...]
"""
import argparse
import json
import math
import struct
import subprocess
import tempfile
import wave
from pathlib import Path

RATE = 48_000  # --rate sets it
PHRASES = ["The quick brown fox jumps over the lazy dog.", "Hello there.", "Speech detection works."]


def speak(text: str) -> list:
    """One phrase as float samples at RATE."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "phrase.wav"
        subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            raw = w.readframes(w.getnframes())
    pcm = [s / 32768 for s in struct.unpack(f"<{len(raw) // 2}h", raw)]
    out = []
    for i in range(int(len(pcm) * RATE / rate)):
        x = i * rate / RATE
        j = int(x)
        frac = x - j
        nxt = pcm[j + 1] if j + 1 < len(pcm) else pcm[j]
        out.append(pcm[j] * (1 - frac) + nxt * frac)
    return out


def active(samples: list) -> tuple:
    frame = RATE // 100
    levels = []
    for i in range(0, len(samples) - frame + 1, frame):
        chunk = samples[i : i + frame]
        levels.append(math.sqrt(sum(x * x for x in chunk) / frame) + 1e-9)
    loudest = max(levels)
    loud = [i for i, level in enumerate(levels) if 20 * math.log10(level / loudest) > -40]
    return loud[0] * frame, (loud[-1] + 1) * frame


def main():
    global RATE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("phrases", nargs="*", default=PHRASES)
    parser.add_argument("--rate", type=int, default=48_000)
    args = parser.parse_args()
    RATE = args.rate
    samples = [0.0] * (RATE // 2)
    phrases = []
    for text in args.phrases:
        phrase = speak(text)
        start, end = active(phrase)
        at = len(samples)
        phrases.append({"text": text, "start_s": (at + start) / RATE, "end_s": (at + end) / RATE})
        samples += phrase + [0.0] * RATE
    with wave.open(str(args.out), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(struct.pack("<h", max(-32768, min(32767, round(x * 32767)))) for x in samples))
    print(json.dumps({"phrases": phrases, "seconds": len(samples) / RATE}))


if __name__ == "__main__":
    main()
