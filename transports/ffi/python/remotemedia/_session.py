"""remotemedia.Session: a streaming session driven from asyncio."""

from __future__ import annotations

from types import TracebackType
from typing import AsyncIterator, Mapping, Optional, Type

from . import _native
from ._types import Item, ManifestSource


class Session(AsyncIterator[_native.Output]):
    """A streaming session of one pipeline. Open it with ``async with``::

        async with remotemedia.open_session("pipeline.yaml") as session:
            await session.send(item)
            await session.end_input()
            async for output in session:
                ...

    ``send`` and iteration may run in different tasks at once: that is how a producer keeps
    feeding while a consumer reads. Queues are bounded, so ``send`` waits while the pipeline
    is full; nothing is dropped.

    Cancelling a task that awaits a receive loses nothing (the next receive returns the
    output). A cancelled ``send`` may still have delivered its item if the pipeline took it
    just before the cancellation.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeSession) -> None:
        self._native = native

    async def start(self) -> "Session":
        """Starts the nodes; ``async with`` does this for you. Returns the session."""
        await self._native.start()
        return self

    async def __aenter__(self) -> "Session":
        return await self.start()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self.close()

    async def send(
        self,
        item: Item,
        *,
        sequence: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
    ) -> None:
        """Sends one item, waiting while the pipeline is full. ``sequence`` and ``metadata``
        come back on every output derived from it (without a sequence, the session numbers
        items from 0). Raises ``TypeError`` for an item of an unsupported type and
        :class:`SessionClosed` after :meth:`end_input` or :meth:`close`."""
        await self._native.send(item, sequence=sequence, metadata=metadata)

    async def end_input(self) -> None:
        """Declares that no more input follows: nodes flush, then iteration ends."""
        await self._native.end_input()

    async def recv(self) -> Optional[_native.Output]:
        """The next output, or None once the session has ended. A node's failure on one item
        raises :class:`NodeError`; the session goes on, so receive again for the next."""
        native = self._native
        while await native.wait_output():
            # No await between the wait and the take: a cancellation cannot fall between them.
            output = native.take_output()
            if output is not None:
                return output
        return None

    def __aiter__(self) -> "Session":
        return self

    async def __anext__(self) -> _native.Output:
        output = await self.recv()
        if output is None:
            raise StopAsyncIteration
        return output

    async def close(self) -> None:
        """Stops the session now, discarding what is queued. Idempotent."""
        await self._native.close()

    @property
    def id(self) -> Optional[str]:
        """The session's id (None before it starts)."""
        return self._native.id

    @property
    def active(self) -> bool:
        """True from start until the session is closed or has delivered every output."""
        return self._native.active

    def __repr__(self) -> str:
        return f"Session(pipeline={self._native.pipeline!r}, id={self.id!r}, active={self.active})"


def open_session(manifest: ManifestSource) -> Session:
    """A session of ``manifest`` (a path, YAML/JSON text, a dict or a :class:`Pipeline`),
    started by ``async with`` or ``await session.start()``. The manifest is checked now: a bad
    one raises :class:`ManifestError` at once."""
    return Session(_native.open_session(manifest))
