#!/usr/bin/env python3
"""Streams a WAV file through the audio-health pipeline in this process and prints its events.

    python examples/python-sdk/stream_wav.py recording.wav
    python examples/python-sdk/stream_wav.py recording.wav --realtime --json

The file is read in 20 ms frames and sent as it would arrive from a microphone, while a second
task prints the pipeline's events (level, silence, clipping, channel balance per 100 ms window)
as they come. Without a file, a test signal is generated (tone, silence, an unbalanced tone,
clipping) so you can see every kind of event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import pathlib
import sys
import wave

import numpy as np

import remotemedia

HERE = pathlib.Path(__file__).resolve().parent
DEFAULT_PIPELINE = HERE.parent / "pipelines" / "audio-health.yaml"
FRAME_MS = 20


def read_wav(path: pathlib.Path) -> tuple[np.ndarray, int]:
    """(frames x channels float32 in [-1, 1], sample rate) of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise SystemExit(f"{path}: only 16-bit PCM WAV files are supported")
        raw = wav.readframes(wav.getnframes())
        channels, rate = wav.getnchannels(), wav.getframerate()
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)
    return pcm.astype(np.float32) / 32768.0, rate


def test_signal(rate: int = 48_000) -> np.ndarray:
    """3.1 s of stereo: a tone, silence, a tone 20 dB quieter on the right, clipping."""

    def tone(seconds, freq, left, right):
        t = np.arange(int(seconds * rate)) / rate
        wave_ = np.sin(2 * math.pi * freq * t)
        return np.stack([left * wave_, right * wave_], axis=1)

    clipped = np.clip(tone(0.5, 330, 3.0, 3.0), -1.0, 1.0)
    parts = [tone(1.0, 440, 0.5, 0.5), np.zeros((int(0.6 * rate), 2)), tone(1.0, 660, 0.5, 0.05), clipped]
    return np.concatenate(parts).astype(np.float32)


def describe(output: remotemedia.Output) -> str:
    event = output.data
    # A window's events carry the sequence of the frame that completed it: print its end.
    seconds = ((output.sequence or 0) + 1) * FRAME_MS / 1000
    if output.node == "level":
        detail = f"rms {event['rms_db']:6.1f} dB, peak {event['peak_db']:6.1f} dB"
    elif output.node == "silence":
        detail = "silent" if event["is_silent"] else "sound"
    elif output.node == "clipping":
        detail = "CLIPPING" if event["is_clipping"] else "clean"
    elif output.node == "balance":
        if not event["applicable"]:
            detail = "mono"
        else:
            detail = f"{event['imbalance_db']:5.1f} dB " + ("IMBALANCED" if event["is_imbalanced"] else "balanced")
    else:
        detail = json.dumps(event)
    return f"{seconds:6.2f}s  {output.node:<9} health {event.get('health', 1.0):.2f}  {detail}"


async def stream(frames: np.ndarray, rate: int, pipeline: str, realtime: bool, as_json: bool) -> int:
    per_frame = rate * FRAME_MS // 1000
    events = 0
    async with remotemedia.open_session(pipeline) as session:

        async def send_audio() -> None:
            for start in range(0, len(frames), per_frame):
                chunk = frames[start : start + per_frame]
                await session.send(remotemedia.Audio(chunk, rate))
                if realtime:
                    await asyncio.sleep(FRAME_MS / 1000)
            await session.end_input()

        sender = asyncio.create_task(send_audio())
        async for output in session:
            events += 1
            if as_json:
                print(json.dumps({"node": output.node, "sequence": output.sequence, "event": output.data}))
            else:
                print(describe(output))
        await sender
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wav", nargs="?", type=pathlib.Path, help="16-bit PCM WAV (default: a test signal)")
    parser.add_argument("--pipeline", default=str(DEFAULT_PIPELINE), help="manifest or Pipeline resource")
    parser.add_argument("--realtime", action="store_true", help="send frames at the pace of the audio")
    parser.add_argument("--json", action="store_true", help="print one JSON object per event")
    args = parser.parse_args()

    if args.wav:
        frames, rate = read_wav(args.wav)
    else:
        frames, rate = test_signal(), 48_000
    try:
        events = asyncio.run(stream(frames, rate, args.pipeline, args.realtime, args.json))
    except remotemedia.ManifestError as error:
        print(error, file=sys.stderr)
        return 2
    print(f"{events} events from {len(frames) / rate:.2f} s of audio", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
