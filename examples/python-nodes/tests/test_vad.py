"""The voice-activity node on speech from espeak-ng, without the runtime: its events land
within 100 ms of where each phrase starts and ends."""

import shutil
import subprocess
import wave

import numpy as np
import pytest

from remotemedia_example_nodes import VoiceActivity
from remotemedia_nodes import Audio

RATE = 16_000
PHRASES = ["The quick brown fox jumps over the lazy dog.", "Hello there.", "Speech detection works."]


def speak(text: str, path) -> np.ndarray:
    """One phrase from espeak-ng, as 16 kHz float samples."""
    subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768
    t = np.arange(int(len(pcm) * RATE / rate)) / RATE
    return np.interp(t, np.arange(len(pcm)) / rate, pcm).astype(np.float32)


def active(samples: np.ndarray) -> tuple:
    """First and last sample of 10 ms frames within 40 dB of the phrase's loudest frame."""
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    level = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    loud = np.nonzero(20 * np.log10(level / level.max()) > -40)[0]
    return loud[0] * 160, (loud[-1] + 1) * 160


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Phrases with a second of silence between them, and where each one really is."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: scripts/system-packages.sh installs it")
    parts, truth, at = [np.zeros(RATE // 2, np.float32)], [], RATE // 2
    for i, text in enumerate(PHRASES):
        phrase = speak(text, tmp_path_factory.mktemp("speech") / f"{i}.wav")
        start, end = active(phrase)
        truth.append(((at + start) / RATE, (at + end) / RATE))
        parts += [phrase, np.zeros(RATE, np.float32)]
        at += len(phrase) + RATE
    return np.concatenate(parts), truth


def run(samples: np.ndarray, chunk: int, **params) -> list:
    node = VoiceActivity(**{"threshold": 0.5, "min_silence_ms": 300, "speech_pad_ms": 30, **params})
    events = []
    for i in range(0, len(samples), chunk):
        events += list(node.process(Audio(samples[i : i + chunk], RATE, 1, "mic", None)))
    return events + list(node.finish())


@pytest.mark.parametrize("chunk", [320, 512, 1999])
def test_events_fall_within_100_ms_of_each_phrase(speech, chunk):
    samples, truth = speech
    events = run(samples, chunk)
    starts = [e["time_s"] for e in events if e["event"] == "speech_start"]
    ends = [e["time_s"] for e in events if e["event"] == "speech_end"]
    assert len(starts) == len(ends) == len(PHRASES), events
    for (start, end), got_start, got_end in zip(truth, starts, ends):
        assert abs(got_start - start) <= 0.1, (start, got_start, events)
        assert abs(got_end - end) <= 0.1, (end, got_end, events)


def test_the_same_audio_gives_the_same_events_however_it_is_chunked(speech):
    samples, _ = speech
    assert run(samples, 320) == run(samples, 4096)


@pytest.mark.parametrize("shift", [160, 320, 480])
def test_a_pause_inside_a_phrase_does_not_end_it_wherever_the_windows_fall(speech, shift):
    samples, truth = speech
    # A lead-in of silence moves every 32 ms window against the speech.
    events = run(np.concatenate([np.zeros(shift, np.float32), samples]), 320)
    assert [e["event"] for e in events] == ["speech_start", "speech_end"] * len(PHRASES), events
    for (start, end), (begins, ends) in zip(truth, zip(events[::2], events[1::2])):
        assert abs(begins["time_s"] - shift / RATE - start) <= 0.1, (start, begins)
        assert abs(ends["time_s"] - shift / RATE - end) <= 0.1, (end, ends)


def test_silence_gives_no_events():
    assert run(np.zeros(3 * RATE, np.float32), 320) == []


def test_wrong_rate_is_an_error_naming_the_fix():
    node = VoiceActivity(threshold=0.5, min_silence_ms=300, speech_pad_ms=30)
    with pytest.raises(ValueError, match="16000 Hz mono.*FastResampleNode"):
        list(node.process(Audio(np.zeros(960, np.float32), 48_000, 1, "mic", None)))
