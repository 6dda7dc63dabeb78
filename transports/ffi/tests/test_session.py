"""Sessions: streaming, node errors, closing, cancellation, backpressure, concurrency, GIL."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import remotemedia
from ffi_support import single, within


def run(coro):
    return asyncio.run(within(coro, 120))


async def collect(session) -> list:
    return [output async for output in session]


def test_outputs_arrive_in_order_with_their_sequences():
    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:
            assert s.active and s.id
            for i in range(50):
                await s.send(f"item {i}")
            await s.end_input()
            outputs = await within(collect(s))
            assert [o.data for o in outputs] == [f"item {i}" for i in range(50)]
            assert [o.sequence for o in outputs] == list(range(50))
            assert not s.active
            assert await s.recv() is None

    run(main())


def test_a_node_error_raises_and_the_session_goes_on():
    async def main():
        async with remotemedia.open_session(single("CalculatorNode", node_id="calc")) as s:
            await s.send({"operation": "add", "operands": [1, 2]})
            await s.send({"operation": "cube", "operands": [3, 4]})
            await s.send({"operation": "multiply", "operands": [3, 4]})
            await s.end_input()
            first = await s.recv()
            assert first.data["result"] == 3
            with pytest.raises(remotemedia.NodeError) as caught:
                await s.recv()
            error = caught.value
            assert (error.node_id, error.path, error.sequence) == ("calc", "nodes[0]", 1)
            assert "cube" in str(error)
            rest = await within(collect(s))
            assert [o.data["result"] for o in rest] == [12]

    run(main())


def test_execute_raises_node_error_naming_node_and_path():
    manifest = {
        "version": "v1",
        "nodes": [
            {"id": "pass", "node_type": "PassThrough"},
            {"id": "calc", "node_type": "CalculatorNode"},
        ],
        "connections": [{"from": "pass", "to": "calc"}],
    }
    with pytest.raises(remotemedia.NodeError) as caught:
        run(remotemedia.execute(manifest, {"operation": "divide", "operands": [1, 0]}))
    assert (caught.value.node_id, caught.value.path) == ("calc", "nodes[1]")


def test_a_bad_manifest_fails_at_open_not_later():
    with pytest.raises(remotemedia.ManifestError) as caught:
        remotemedia.open_session(single("NoSuchNode"))
    assert caught.value.problems[0].path == "nodes[0].node_type"


def test_input_after_end_or_close_is_refused():
    async def main():
        session = remotemedia.open_session(single("PassThrough"))
        with pytest.raises(RuntimeError, match="has not started"):
            await session.send("too early")
        await session.start()
        await session.end_input()
        with pytest.raises(remotemedia.SessionClosed) as caught:
            await session.send("late")
        assert caught.value.session_id == session.id
        await session.close()
        await session.close()  # idempotent
        assert not session.active
        with pytest.raises(remotemedia.SessionClosed):
            await session.send("after close")
        assert await session.recv() is None

    run(main())


def test_leaving_the_block_by_an_exception_closes_the_session():
    async def main():
        with pytest.raises(KeyError):
            async with remotemedia.open_session(single("PassThrough")) as s:
                await s.send("queued, never read")
                raise KeyError("boom")
        assert not s.active

    run(main())


def test_close_ends_a_receive_that_is_waiting():
    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:
            waiting = asyncio.ensure_future(s.recv())
            await asyncio.sleep(0)  # let it start waiting
            await within(s.close())
            assert await within(waiting) is None

    run(main())


def test_cancelled_receives_lose_no_output():
    """Cancel receives at every moment: before the output exists, while the runtime hands it
    over, after. Whatever a cancelled receive had taken, the next receive returns it."""

    async def main():
        count = 300
        async with remotemedia.open_session(single("PassThrough")) as s:
            cancelled = completed = 0
            for i in range(count):
                await within(s.send({"i": i}))
                task = asyncio.ensure_future(s.recv())
                await asyncio.sleep((i % 5) * 0.0002)
                if task.cancel():
                    cancelled += 1
                    with pytest.raises(asyncio.CancelledError):
                        await task
                    output = await within(s.recv())
                else:
                    completed += 1
                    output = task.result()
                assert output.data == {"i": i}
            await s.end_input()
            assert await within(collect(s)) == []
            assert cancelled > 0 and completed > 0, (cancelled, completed)

    run(main())


def test_a_receive_cut_short_by_a_timeout_leaves_the_session_usable():
    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(s.recv(), 0.05)
            await s.send("after the timeout")
            assert (await within(s.recv())).data == "after the timeout"

    run(main())


def test_a_slow_reader_loses_nothing():
    """The producer outruns the consumer by far; bounded queues make it wait, nothing drops."""

    async def main():
        count = 2_000
        async with remotemedia.open_session(single("PassThrough")) as s:

            async def produce():
                for i in range(count):
                    await s.send(i.to_bytes(4, "little"))
                await s.end_input()

            producer = asyncio.create_task(produce())
            got = []
            async for output in s:
                got.append(int.from_bytes(output.data, "little"))
                if len(got) % 100 == 0:
                    await asyncio.sleep(0.005)
            await within(producer)
            assert got == list(range(count))

    run(main())


def test_many_concurrent_sessions_keep_to_themselves():
    async def one(index: int, pipeline) -> None:
        async with remotemedia.open_session(pipeline) as s:
            for i in range(20):
                await s.send({"session": index, "i": i}, metadata={"session": str(index)})
            await s.end_input()
            outputs = await collect(s)
        assert [o.data for o in outputs] == [{"session": index, "i": i} for i in range(20)]
        assert {o.metadata["session"] for o in outputs} == {str(index)}

    async def main():
        pipeline = remotemedia.load(single("PassThrough"))
        await asyncio.gather(*(one(i, pipeline) for i in range(200)))

    run(main())


def test_the_gil_is_released_while_the_runtime_works():
    """A Python thread keeps running while a minute of audio is resampled."""
    manifest = single("FastResampleNode", {"source_rate": 48_000, "target_rate": 16_000})
    audio = remotemedia.Audio(np.random.default_rng(1).standard_normal(48_000 * 60).astype(np.float32) * 0.1, 48_000)
    ticks = 0
    stop = threading.Event()

    def count():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        started = time.perf_counter()
        outputs = run(remotemedia.execute(manifest, audio))
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        counter.join()
    assert sum(o.data.frames for o in outputs) == pytest.approx(16_000 * 60, abs=64)
    # The thread sleeps 1 ms per tick: held GIL or not, it cannot exceed elapsed/1 ms. If the
    # runtime held the GIL it would barely tick at all.
    assert ticks > elapsed / 0.001 * 0.3, f"{ticks} ticks in {elapsed:.3f} s"


def test_a_send_nobody_reads_for_fails_after_its_timeout_saying_why():
    """The README's one-item example extended to many items without reading: the bounded
    queues fill, and the send that cannot get in says why instead of hanging."""

    async def main():
        frame = remotemedia.Audio(np.zeros(960, np.float32), 48_000)
        async with remotemedia.open_session(single("PassThrough"), send_timeout=0.5) as s:
            sent = 0
            with pytest.raises(remotemedia.SendTimeout) as caught:
                for _ in range(100_000):
                    await s.send(frame)
                    sent += 1
            error = caught.value
            assert isinstance(error, TimeoutError)
            assert "nobody reads the outputs" in str(error), str(error)
            assert error.timeout == 0.5 and error.session_id == s.id
            # The session goes on: read what is queued, and sending works again.
            for _ in range(sent):
                assert (await within(s.recv())) is not None
            await s.send(frame, timeout=None)
            assert (await within(s.recv())) is not None

    run(main())


def test_stream_sends_a_whole_input_while_reading_its_outputs():
    async def main():
        count = 3_000  # far more than the queues hold
        async with remotemedia.open_session(single("PassThrough"), send_timeout=5) as s:
            items = (i.to_bytes(4, "little") for i in range(count))
            got = [int.from_bytes(o.data, "little") async for o in s.stream(items)]
            assert got == list(range(count))
            assert not s.active

        async def frames():
            for i in range(500):
                yield f"frame {i}"

        async with remotemedia.open_session(single("PassThrough")) as s:
            got = [o.data async for o in s.stream(frames())]
            assert got == [f"frame {i}" for i in range(500)]

    run(main())


def test_stream_raises_the_error_of_an_item_it_could_not_send():
    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:
            with pytest.raises(TypeError):
                async for _ in s.stream(["fine", object()]):
                    pass
            assert not s.active

    run(main())


def test_a_send_timeout_must_be_a_number_of_seconds():
    with pytest.raises(ValueError, match="send_timeout"):
        remotemedia.open_session(single("PassThrough"), send_timeout=-1)

    async def main():
        async with remotemedia.open_session(single("PassThrough")) as s:
            with pytest.raises(ValueError, match="timeout"):
                await s.send("x", timeout=float("nan"))

    run(main())
