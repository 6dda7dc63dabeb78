"""Helpers of the remotemedia package's tests (run: pytest transports/ffi/tests)."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[3]
PIPELINES = REPO / "examples" / "pipelines"

# Every awaited step of a test is bounded, so a lost message fails the test instead of hanging.
STEP = 30.0


def single(node_type: str, params: dict[str, Any] | None = None, node_id: str = "n") -> dict:
    """A one-node manifest."""
    node: dict[str, Any] = {"id": node_id, "node_type": node_type}
    if params:
        node["params"] = params
    return {"version": "v1", "metadata": {"name": "test"}, "nodes": [node]}


async def within(awaitable, seconds: float = STEP):
    return await asyncio.wait_for(awaitable, seconds)
