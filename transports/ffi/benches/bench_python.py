#!/usr/bin/env python3
"""Benchmarks of the remotemedia Python package (`make bench-python`; results in
docs/benchmarks.md section 9). Machines here are noisy, so every figure is compared with a
baseline measured in the same run.

1. Per-call overhead of `await remotemedia.execute(pipeline, item)` on a PassThrough pipeline,
   against a plain Python function call and a plain `async def` call.
2. Sending audio of 1 s, 10 s and 60 s (48 kHz stereo) into a session: float32 arrays are lent
   without a copy, so the time should not grow with length; float64 arrays must be converted
   (a copy), which is the baseline that does grow. Also a PassThrough round trip per length.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import numpy as np

import remotemedia

PASSTHROUGH = {"version": "v1", "metadata": {"name": "bench"}, "nodes": [{"id": "p", "node_type": "PassThrough"}]}
CALLS = 3_000
REPEATS = 7


def per_call_us(samples: list[float], calls: int) -> float:
    return statistics.median(samples) / calls * 1e6


async def call_overhead() -> None:
    pipeline = remotemedia.load(PASSTHROUGH)

    def plain(item):
        return [item]

    async def plain_async(item):
        return [item]

    async def loop_execute():
        for _ in range(CALLS):
            await remotemedia.execute(pipeline, "x")

    async def loop_async():
        for _ in range(CALLS):
            await plain_async("x")

    def loop_plain():
        for _ in range(CALLS):
            plain("x")

    await loop_execute()  # warm up threads and caches
    results = {"execute": [], "async def": [], "def": []}
    for _ in range(REPEATS):
        for name, body in (("execute", loop_execute), ("async def", loop_async)):
            start = time.perf_counter()
            await body()
            results[name].append(time.perf_counter() - start)
        start = time.perf_counter()
        loop_plain()
        results["def"].append(time.perf_counter() - start)
    execute_us = per_call_us(results["execute"], CALLS)
    plain_us = per_call_us(results["def"], CALLS)
    async_us = per_call_us(results["async def"], CALLS)
    print(f"per call ({CALLS} calls, median of {REPEATS} runs):")
    print(f"  await remotemedia.execute(PassThrough) {execute_us:9.2f} us")
    print(f"  plain def call                         {plain_us:9.3f} us  -> execute is {execute_us / plain_us:,.0f}x")
    print(f"  await plain async def                  {async_us:9.3f} us  -> execute is {execute_us / async_us:,.0f}x")
    print(f"  execute overhead vs plain def:         {execute_us - plain_us:9.2f} us per call")


async def timed(body, repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        await body()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e3


async def audio_sizes() -> None:
    rate, channels = 48_000, 2
    pipeline = remotemedia.load(PASSTHROUGH)
    print(f"\naudio, {rate} Hz stereo (median of {REPEATS}, milliseconds):")
    print(f"  {'length':>6} {'MB':>6} {'send f32':>9} {'send f64':>9} {'f64/f32':>8} {'execute f32':>12} {'lent back':>9}")
    for seconds in (1, 10, 60):
        f32 = (np.random.default_rng(seconds).standard_normal((rate * seconds, channels)) * 0.1).astype(np.float32)
        f64 = f32.astype(np.float64)
        async with remotemedia.open_session(pipeline) as session:

            async def send(samples):
                await session.send(remotemedia.Audio(samples, rate))
                await session.recv()

            send_f32 = await timed(lambda: send(f32))
            send_f64 = await timed(lambda: send(f64))
        outputs = []

        async def execute():
            outputs[:] = await remotemedia.execute(pipeline, remotemedia.Audio(f32, rate))

        execute_f32 = await timed(execute)
        lent_back = np.shares_memory(outputs[0].data.samples, f32)
        print(
            f"  {seconds:>5}s {f32.nbytes / 1e6:6.1f} {send_f32:9.3f} {send_f64:9.3f} {send_f64 / send_f32:7.0f}x "
            f"{execute_f32:12.3f} {str(lent_back):>9}"
        )


def main() -> None:
    print(f"remotemedia {remotemedia.__version__}, numpy {np.__version__}")
    asyncio.run(call_overhead())
    asyncio.run(audio_sizes())


if __name__ == "__main__":
    main()
