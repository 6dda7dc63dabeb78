"""The transport conformance suite (runtime-core/src/conformance.rs), through the Python API.

The same behaviour every transport must show, checked from Python: order, sequence numbers
and metadata kept, every data kind unchanged, node errors as errors that name the node while
the session goes on, buffered output flushed at end of input, nothing lost to a slow reader,
sessions independent, unary equal to streaming, close never hanging.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import remotemedia
from ffi_support import single, within


def run(coro):
    return asyncio.run(within(coro, 120))


def every_kind() -> list:
    return [
        remotemedia.Audio(np.array([0.0, 0.5, -0.5, 1.0], dtype=np.float32), 16_000, 2, stream_id="s", timestamp_us=7),
        "text",
        {"nested": [1, 2.5, None, {"k": 2**64 - 1}]},
        ["a", 1],
        b"\x00\xffbytes",
        np.arange(6, dtype=np.int32).reshape(2, 3),
    ]


async def drain(session) -> list:
    return [o async for o in session]


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


def test_order_sequence_metadata_and_every_data_kind():
    async def main():
        items = every_kind()
        async with remotemedia.open_session(single("PassThrough")) as s:
            for i, item in enumerate(items):
                await s.send(item, sequence=100 + i, metadata={"i": str(i)})
            await s.end_input()
            outputs = await within(drain(s))
        assert [o.node for o in outputs] == ["n"] * len(items)
        assert [o.sequence for o in outputs] == [100 + i for i in range(len(items))]
        assert [o.metadata for o in outputs] == [{"i": str(i)} for i in range(len(items))]
        for item, output in zip(items, outputs):
            assert same(item, output.data), (item, output.data)

    run(main())


def test_node_errors_name_the_node_and_the_session_goes_on():
    async def main():
        async with remotemedia.open_session(single("CalculatorNode")) as s:
            for op in ("add", "cube", "multiply"):
                await s.send({"operation": op, "operands": [3, 4]})
            await s.end_input()
            results, errors = [], []
            while True:
                try:
                    output = await within(s.recv())
                except remotemedia.NodeError as e:
                    errors.append(e)
                    continue
                if output is None:
                    break
                results.append(output.data["result"])
        assert results == [7, 12]
        assert [(e.node_id, e.sequence) for e in errors] == [("n", 1)]
        assert "cube" in str(errors[0])

    run(main())


def test_buffered_output_is_flushed_at_end_of_input():
    async def main():
        async with remotemedia.open_session(single("AudioChunkerNode", {"chunk_size": 480})) as s:
            await s.send(remotemedia.Audio(np.ones(1_000, dtype=np.float32), 48_000))
            await s.end_input()
            outputs = await within(drain(s))
        assert [o.data.frames for o in outputs] == [480, 480, 40]

    run(main())


def test_a_slow_reader_loses_nothing():
    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:

            async def produce():
                for i in range(500):
                    await s.send(str(i))
                await s.end_input()

            producer = asyncio.create_task(produce())
            await asyncio.sleep(0.2)  # let the queues fill: the producer must wait, not drop
            got = [o.data async for o in s]
            await producer
        assert got == [str(i) for i in range(500)]

    run(main())


def test_sessions_are_independent():
    async def main():
        pipeline = remotemedia.load(single("PassThrough"))
        async with remotemedia.open_session(pipeline) as a, remotemedia.open_session(pipeline) as b:
            assert a.id != b.id
            await a.send("for a")
            await b.send("for b")
            await b.close()
            await a.end_input()
            assert [o.data for o in await within(drain(a))] == ["for a"]
            assert await b.recv() is None

    run(main())


def test_unary_matches_streaming():
    async def main():
        manifest = single("CalculatorNode")
        request = {"operation": "divide", "operands": [1, 4]}
        unary = await remotemedia.execute(manifest, request)
        async with remotemedia.open_session(manifest) as s:
            await s.send(request)
            await s.end_input()
            streamed = await within(drain(s))
        assert [(o.node, o.data) for o in unary] == [(o.node, o.data) for o in streamed]

    run(main())


def test_close_ends_the_session_without_hanging():
    async def main():
        s = await remotemedia.open_session(single("PassThrough")).start()
        for i in range(10):
            await s.send(str(i))
        await within(s.close(), 5)
        assert not s.active
        with pytest.raises(remotemedia.SessionClosed):
            await s.send("after close")
        assert await within(s.recv(), 5) is None

    run(main())
