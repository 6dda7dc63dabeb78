"""The gain node on its own, without the runtime."""

import numpy as np
import pytest

from remotemedia_example_nodes import Gain
from remotemedia_nodes import Audio
from remotemedia_nodes.node import load_plugins


def tone(amplitude: float) -> Audio:
    t = np.arange(960, dtype=np.float32) / 48_000
    return Audio((amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48_000, 1, "mic", 1234)


def rms(a: Audio) -> float:
    return float(np.sqrt(np.mean(np.square(a.samples, dtype=np.float64))))


@pytest.mark.parametrize("gain_db", [-20.0, -6.0, 0.0, 6.0])
def test_level_changes_by_gain_db(gain_db):
    source = tone(0.25)
    out = Gain(gain_db=gain_db).process(source)
    assert 20 * np.log10(rms(out) / rms(source)) == pytest.approx(gain_db, abs=0.01)
    assert out.samples.dtype == np.float32
    assert (out.sample_rate, out.channels, out.stream_id, out.timestamp_us) == (48_000, 1, "mic", 1234)


def test_clips_at_full_scale():
    out = Gain(gain_db=20.0).process(tone(0.5))
    assert np.max(np.abs(out.samples)) == pytest.approx(1.0)


def test_rejects_non_audio_by_name():
    with pytest.raises(TypeError, match="Gain takes audio, got str"):
        Gain(gain_db=0.0).process("hello")


def test_registered_through_the_entry_point():
    registry = load_plugins()
    described = registry["Gain"].describe()
    assert described["node_type"] == "python:Gain"
    assert described["params_schema"]["properties"]["gain_db"]["default"] == 0.0
    assert described["params_schema"]["additionalProperties"] is False
    assert (described["accepts"], described["produces"]) == (["audio"], ["audio"])
