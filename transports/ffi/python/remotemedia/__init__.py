"""Run RemoteMedia pipelines in this process, from asyncio.

>>> import remotemedia
>>> [p.message for p in remotemedia.validate({"version": "v1", "nodes": []})]
['the pipeline has no nodes']

Typical use::

    outputs = await remotemedia.execute("pipeline.yaml", "some text")
    async with remotemedia.open_session("pipeline.yaml") as session:
        await session.send(remotemedia.Audio(samples, 48_000))
        await session.end_input()
        async for output in session:
            print(output.node, output.data)

Items are ``remotemedia.Audio`` (numpy float32 samples, lent to the runtime without a copy),
``str`` (text), ``dict``/``list`` (JSON), ``bytes`` (binary) and other numpy arrays (tensors);
outputs come back as the same types. The runtime works on threads of its own, without the GIL.
"""

from typing import Mapping, Optional

from . import _native
from ._native import (
    Audio,
    NodeType,
    Output,
    Param,
    Pipeline,
    Problem,
    __version__,
    list_nodes,
    load,
    validate,
)
from ._session import Session, open_session
from ._types import Data, Item, JsonValue, ManifestSource
from .errors import (
    ManifestError,
    NodeError,
    PipelineTimeout,
    RemoteMediaError,
    SessionAborted,
    SendTimeout,
    SessionClosed,
)

__all__ = [
    "Audio",
    "Data",
    "Item",
    "JsonValue",
    "ManifestSource",
    "ManifestError",
    "NodeError",
    "NodeType",
    "Output",
    "Param",
    "Pipeline",
    "PipelineTimeout",
    "Problem",
    "RemoteMediaError",
    "Session",
    "SessionAborted",
    "SendTimeout",
    "SessionClosed",
    "__version__",
    "execute",
    "list_nodes",
    "load",
    "open_session",
    "validate",
]


async def execute(
    manifest: ManifestSource,
    item: Item,
    *,
    sequence: Optional[int] = None,
    metadata: Optional[Mapping[str, str]] = None,
) -> list[Output]:
    """Runs one item through a fresh session of ``manifest`` and returns every output once the
    pipeline has drained, in the order they were produced.

    A node's failure raises :class:`NodeError` (with ``node_id`` and ``path``); a pipeline
    that does not drain within 30 s raises :class:`PipelineTimeout`. Pass a :class:`Pipeline`
    (from :func:`load`) to skip re-reading the manifest on every call.
    """
    return await _native.execute(manifest, item, sequence=sequence, metadata=metadata)
