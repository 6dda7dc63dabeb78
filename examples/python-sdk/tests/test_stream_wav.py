"""The python-sdk example, run as its README says, on the repository's test WAV."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "stream_wav.py"
MAKE_WAV = HERE.parents[1] / "audio" / "make_wav.py"


def run_example(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_streams_a_wav_and_prints_every_window_event(tmp_path: pathlib.Path):
    wav = tmp_path / "test.wav"
    subprocess.run([sys.executable, str(MAKE_WAV), str(wav)], check=True)
    result = run_example(str(wav), "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    # 3.1 s of audio in 100 ms windows, four analyzers each.
    by_node: dict[str, list] = {}
    for e in events:
        by_node.setdefault(e["node"], []).append(e)
    assert {n: len(v) for n, v in by_node.items()} == {n: 31 for n in ("level", "silence", "clipping", "balance")}
    # The pattern: tone 0-1 s, silence 1-1.6 s, right channel 20 dB down 1.6-2.6 s, clipping.
    assert any(e["event"]["is_silent"] for e in by_node["silence"])
    assert any(e["event"].get("is_imbalanced") for e in by_node["balance"])
    assert by_node["clipping"][-1]["event"]["is_clipping"]
    assert not by_node["clipping"][0]["event"]["is_clipping"]
    assert "124 events from 3.10 s of audio" in result.stderr


def test_without_a_file_it_streams_a_test_signal_in_readable_lines():
    result = run_example()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 124
    assert any("CLIPPING" in line for line in lines) and any("IMBALANCED" in line for line in lines)


def test_a_bad_pipeline_is_reported_with_its_problems(tmp_path: pathlib.Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: v1\nnodes:\n  - id: x\n    node_type: Nope\n")
    result = run_example("--pipeline", str(bad))
    assert result.returncode == 2
    assert "nodes[0].node_type (node 'x', line 4)" in result.stderr
