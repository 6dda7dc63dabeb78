"""Every data type, both ways, through execute; Audio without copies; bad items refused."""

from __future__ import annotations

import asyncio
import gc

import numpy as np
import pytest

import remotemedia
from ffi_support import single, within


def run(coro):
    return asyncio.run(within(coro))


def roundtrip(item, **kwargs):
    (output,) = run(remotemedia.execute(single("PassThrough"), item, **kwargs))
    assert output.node == "n"
    return output


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        ("héllo wörld", "text"),
        ("", "text"),
        ({"nested": [1, 2.5, None, True, {"big": 2**64 - 1, "neg": -(2**63)}]}, "json"),
        ([1, "two", [3.0]], "json"),
        (b"\x00\x01binary\xff", "binary"),
    ],
)
def test_plain_items_come_back_unchanged(item, kind):
    output = roundtrip(item)
    assert output.kind == kind
    assert output.data == item
    assert type(output.data) is type(item)


def test_bytearray_comes_back_as_bytes():
    assert roundtrip(bytearray(b"abc")).data == b"abc"


def test_tuples_inside_json_become_lists():
    assert roundtrip({"t": (1, 2)}).data == {"t": [1, 2]}


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int8", "int16", "int32", "int64", "uint8"])
def test_arrays_are_tensors_of_their_dtype_and_shape(dtype):
    array = (np.arange(24) - 12).astype(dtype).reshape(2, 3, 4)
    output = roundtrip(array)
    assert output.kind == "tensor"
    assert output.data.dtype == array.dtype and output.data.shape == (2, 3, 4)
    np.testing.assert_array_equal(output.data, array)
    # Fortran order and views are sent in C order, by value.
    np.testing.assert_array_equal(roundtrip(np.asfortranarray(array)[:, ::2]).data, array[:, ::2])


def test_unsupported_dtypes_are_refused_by_name():
    with pytest.raises(TypeError, match="dtype <c16 cannot be a tensor"):
        run(remotemedia.execute(single("PassThrough"), np.zeros(2, dtype=complex)))


def test_sequence_and_metadata_come_back():
    output = roundtrip("x", sequence=41, metadata={"call": "abc", "lang": "de"})
    assert output.sequence == 41
    assert output.metadata == {"call": "abc", "lang": "de"}
    with pytest.raises(TypeError, match="metadata must map str to str"):
        roundtrip("x", metadata={"n": 1})


def test_audio_is_lent_without_a_copy_and_comes_back_as_the_same_memory():
    samples = np.linspace(-1, 1, 48_000 * 2, dtype=np.float32)
    audio = remotemedia.Audio(samples, 48_000, 2, stream_id="mic", timestamp_us=1_500)
    assert np.shares_memory(audio.samples, samples)
    output = roundtrip(audio)
    assert output.kind == "audio"
    back = output.data
    assert back == audio
    assert np.shares_memory(back.samples, samples), "PassThrough returned a copy"
    assert (back.sample_rate, back.channels, back.frames) == (48_000, 2, 48_000)
    assert (back.stream_id, back.timestamp_us, back.duration) == ("mic", 1_500, 1.0)


def test_audio_samples_are_read_only():
    audio = remotemedia.Audio(np.zeros(4, dtype=np.float32), 16_000)
    with pytest.raises(ValueError, match="read-only"):
        audio.samples[0] = 1.0


def test_audio_from_other_arrays_is_converted():
    doubles = np.array([0.5, -0.25, 1.0, 0.0])
    audio = remotemedia.Audio(doubles, 8_000)
    assert audio.samples.dtype == np.float32
    assert not np.shares_memory(audio.samples, doubles)
    np.testing.assert_array_equal(audio.samples, doubles.astype(np.float32))
    assert remotemedia.Audio([0.0, 0.5], 8_000).frames == 2
    strided = np.arange(8, dtype=np.float32)[::2]
    np.testing.assert_array_equal(remotemedia.Audio(strided, 8_000).samples, [0, 2, 4, 6])


def test_two_dimensional_audio_is_frames_by_channels():
    frames = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=np.float32)
    audio = remotemedia.Audio(frames, 48_000)
    assert (audio.channels, audio.frames) == (2, 3)
    np.testing.assert_array_equal(audio.samples, frames.reshape(-1))
    assert np.shares_memory(audio.samples, frames)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(4, np.float32), 0), "sample_rate must be between 1"),
        ((np.zeros(4, np.float32), -8_000), "sample_rate must be between 1"),
        ((np.zeros(3, np.float32), 8_000, 2), "not a whole number of 2-channel frames"),
        ((np.zeros(4, np.float32), 8_000, 0), "channels must be between 1"),
        ((np.zeros((2, 2), np.float32), 8_000, 3), "2 columns .* but channels=3"),
        ((np.zeros((2, 2, 2), np.float32), 8_000), "1-D .* or 2-D"),
    ],
)
def test_bad_audio_is_refused_naming_the_field(args, message):
    with pytest.raises(ValueError, match=message):
        remotemedia.Audio(*args)


def test_audio_made_by_the_runtime_is_a_read_only_view_that_outlives_its_output():
    manifest = single("ChannelMixerNode", {"output_channels": 1})
    stereo = np.array([[0.2, 0.4], [-1.0, 1.0]], dtype=np.float32)
    (output,) = run(remotemedia.execute(manifest, remotemedia.Audio(stereo, 16_000)))
    samples = output.data.samples
    del output
    gc.collect()
    np.testing.assert_allclose(samples, [0.3, 0.0], atol=1e-6)
    assert not samples.flags.writeable
    assert not np.shares_memory(samples, stereo)


@pytest.mark.parametrize(
    ("item", "error", "message"),
    [
        ({1: "x"}, TypeError, r"item: JSON object keys must be str, not int"),
        ({"a": [1, float("nan")]}, ValueError, r"item\['a'\]\[1\]: NaN is not valid JSON"),
        ({"a": {"b": object()}}, TypeError, r"item\['a'\]\['b'\]: a object is not JSON"),
        ([2**70], ValueError, r"item\[0\]: integer .* does not fit in 64 bits"),
        (42, TypeError, "cannot send a int: items are remotemedia.Audio, str"),
        (None, TypeError, "cannot send a NoneType"),
    ],
)
def test_bad_items_are_refused_naming_where(item, error, message):
    with pytest.raises(error, match=message):
        run(remotemedia.execute(single("PassThrough"), item))


def test_self_containing_json_is_refused_not_a_crash():
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper than 128 levels"):
        run(remotemedia.execute(single("PassThrough"), loop))
