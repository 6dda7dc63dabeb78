"""``python:Gain``: scales audio by a gain in decibels."""

from __future__ import annotations

import numpy as np

from remotemedia_nodes import Audio, Node, node


@node(
    "Gain",
    description="Scales audio by gain_db decibels (clipping at full scale)",
    params={
        "gain_db": {
            "type": "number",
            "minimum": -120,
            "maximum": 60,
            "default": 0.0,
            "description": "Gain in dB: -6 halves the amplitude, +6 doubles it",
        }
    },
    accepts=["audio"],
    produces=["audio"],
)
class Gain(Node):
    def __init__(self, gain_db: float):
        self.factor = np.float32(10.0 ** (gain_db / 20.0))

    def process(self, data):
        if not isinstance(data, Audio):
            raise TypeError(f"Gain takes audio, got {type(data).__name__}")
        samples = np.clip(data.samples * self.factor, -1.0, 1.0)
        return Audio(samples, data.sample_rate, data.channels, data.stream_id, data.timestamp_us)
