"""The Python codec against the Rust encoder's golden vectors (runtime-core/tests/data/ipc)."""

from pathlib import Path

import numpy as np
import pytest

from remotemedia_nodes.codec import (
    Aborted, Audio, Catalog, Close, Closed, Completed, Credit, Describe, DecodeError, Done, EndInput, Error, Input, InvalidManifest,
    Item, Json, NodeCreation, NodeStart, Open, Opened, Output, ParamIssue, Problem, Refused, RefusedOther, Tensor,
    decode, encode,
)

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "data" / "ipc"

EXPECTED = {
    "open": Open(1, ""),
    "input_audio": Input(2, Item(Audio(np.array([0.0, 0.5, -0.5, 1.0], "<f4"), 48000, 2, "mic", 20000), 3, {"k": "v"})),
    "input_text": Input(3, Item("héllo")),
    "output_json": Output(4, "level", Item(Json({"rms_db": -20.5, "clipped": False}))),
    "output_binary": Output(5, "enc", Item(bytes([0, 1, 254, 255]))),
    "input_tensor": Input(6, Item(Tensor(np.array([[1, -2, 3], [-4, 5, -6]], dtype="<i2")))),
    "end_input": EndInput(7),
    "close": Close(8),
    "credit": Credit(11, 8),
    "opened": Opened(9, '{"version":"v1","nodes":[{"id":"pass","node_type":"PassThrough"}]}'),
    "error": Error(10, "gain", 42, "ValueError: boom"),
    "error_session": Error(10, None, None, "undecodable input"),
    "closed": Closed(2**64 - 1, Completed()),
    "closed_aborted": Closed(12, Aborted("worker shutting down")),
    "closed_refused_manifest": Closed(13, Refused(InvalidManifest([
        Problem("error", "invalid_param", "nodes[1].params.gain_db", "gain", 7, 15,
                'param \'gain_db\': "loud" is not of type "number"'),
        Problem("warning", "ignored_field", "metadata.description", None, None, None, "ignored"),
    ]))),
    "closed_refused_node_creation": Closed(14, Refused(NodeCreation(
        "resample", [ParamIssue("target_rate", "invalid_param", "must be at least 1")]))),
    "closed_refused_node_start": Closed(15, Refused(NodeStart("python:Gain", "TypeError: bad param"))),
    "closed_refused_other": Closed(16, Refused(RefusedOther("client manifests are not allowed"))),
    "done": Done(0),
    "describe": Describe(17),
    "catalog": Catalog(17, '{"version":1,"node_types":[]}'),
}


def test_every_rust_vector_is_covered():
    assert sorted(p.stem for p in VECTORS.glob("*.bin")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decodes_the_rust_bytes_and_encodes_them_back_identically(name):
    raw = (VECTORS / f"{name}.bin").read_bytes()
    message = decode(raw)
    assert message == EXPECTED[name]
    assert encode(message) == raw
    assert encode(EXPECTED[name]) == raw


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_truncation_raises_decode_error(name):
    raw = (VECTORS / f"{name}.bin").read_bytes()
    for cut in range(len(raw)):
        with pytest.raises(DecodeError):
            decode(raw[:cut])


def test_audio_is_a_float32_view_of_the_buffer_not_a_copy():
    buf = bytearray((VECTORS / "input_audio.bin").read_bytes())
    message = decode(memoryview(buf))
    samples = message.item.data.samples
    assert samples.dtype == np.dtype("<f4")
    assert np.shares_memory(samples, np.frombuffer(buf, dtype=np.uint8))


def test_python_values_map_to_the_expected_data_types():
    for value, tag in [("text", 2), ({"a": 1}, 3), ([1, 2], 3), (None, 3), (Json("json string"), 3), (b"\x00", 4)]:
        raw = encode(Input(1, Item(value)))
        # tag sits after header (16), sequence flag (1) and metadata count (4)
        assert raw[21] == tag, value
        back = decode(raw).item.data
        expected = Json(value) if tag == 3 and not isinstance(value, Json) else value
        assert back == expected, value


def test_bad_bytes_name_field_and_offset():
    raw = bytearray((VECTORS / "end_input.bin").read_bytes())
    raw[3] = 99
    with pytest.raises(DecodeError) as e:
        decode(bytes(raw))
    assert (e.value.field, e.value.offset) == ("kind", 3)
    with pytest.raises(DecodeError) as e:
        decode((VECTORS / "end_input.bin").read_bytes() + b"\x00")
    assert e.value.field == "end"
