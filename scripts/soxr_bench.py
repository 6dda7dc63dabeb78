"""Times libsoxr HQ (PyPI soxr) streaming 48 kHz -> 16 kHz mono in 20 ms pieces.

    python soxr_bench.py ITERATIONS SECONDS   -> prints total CPU seconds of resampling

The signal is the same formula as runtime-core/benches/resample.rs. Only the resampling loop is
timed (time.process_time), not interpreter start-up or signal generation.
"""
import sys
import time

import numpy as np
import soxr

RATE, FRAME = 48_000, 960


def main():
    iterations, seconds = int(sys.argv[1]), int(sys.argv[2])
    t = np.arange(seconds * RATE) / RATE
    signal = (0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)
    frames = [signal[i : i + FRAME] for i in range(0, len(signal), FRAME)]
    total = 0.0
    for _ in range(iterations):
        start = time.process_time()
        stream = soxr.ResampleStream(RATE, 16_000, 1, dtype="float32", quality="HQ")
        for i, f in enumerate(frames):
            stream.resample_chunk(f, last=(i == len(frames) - 1))
        total += time.process_time() - start
    print(f"{total:.9f}")


if __name__ == "__main__":
    main()
