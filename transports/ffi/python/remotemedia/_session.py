"""remotemedia.Session: a streaming session driven from asyncio."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import AsyncIterable, AsyncIterator, Iterable, Mapping, Optional, Type, Union

from . import _native
from ._types import Item, ManifestSource


#: Seconds ``Session.send`` waits for a full pipeline to take an item before it raises
#: :class:`SendTimeout`, unless the session or the call says otherwise.
DEFAULT_SEND_TIMEOUT = 10.0

_SESSION_DEFAULT = object()


class Session(AsyncIterator[_native.Output]):
    """A streaming session of one pipeline. Open it with ``async with``::

        async with remotemedia.open_session("pipeline.yaml") as session:
            await session.send(item)
            await session.end_input()
            async for output in session:
                ...

    To send many items, read the outputs while sending: :meth:`stream` does both::

        async with remotemedia.open_session("pipeline.yaml") as session:
            async for output in session.stream(items):
                ...

    ``send`` and iteration may also run in different tasks of your own. Queues are bounded,
    so ``send`` waits while the pipeline is full; nothing is dropped. A pipeline that stays
    full (nobody reads its outputs) makes ``send`` raise :class:`SendTimeout` after the
    session's ``send_timeout`` instead of waiting for ever.

    Cancelling a task that awaits a receive loses nothing (the next receive returns the
    output). A cancelled ``send`` may still have delivered its item if the pipeline took it
    just before the cancellation.
    """

    __slots__ = ("_native", "_send_timeout")

    def __init__(
        self, native: _native.NativeSession, send_timeout: Optional[float] = DEFAULT_SEND_TIMEOUT
    ) -> None:
        self._native = native
        self._send_timeout = send_timeout

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
        timeout: Union[float, None, object] = _SESSION_DEFAULT,
    ) -> None:
        """Sends one item, waiting while the pipeline is full. ``sequence`` and ``metadata``
        come back on every output derived from it (without a sequence, the session numbers
        items from 0). Raises ``TypeError`` for an item of an unsupported type,
        :class:`SessionClosed` after :meth:`end_input` or :meth:`close`, and
        :class:`SendTimeout` when the pipeline takes nothing for ``timeout`` seconds (default:
        the session's ``send_timeout``; None waits for ever)."""
        limit = self._send_timeout if timeout is _SESSION_DEFAULT else timeout
        await self._native.send(item, sequence=sequence, metadata=metadata, timeout=limit)

    async def stream(
        self, items: Union[Iterable[Item], AsyncIterable[Item]]
    ) -> AsyncIterator[_native.Output]:
        """Sends every item of ``items`` (an iterable or an async iterable), then ends the
        input, while yielding the outputs as they come: the way to run a whole file through a
        session. Items are numbered from 0. Raises what :meth:`send` raises (a bad item ends
        the session) and, as iteration does, :class:`NodeError` for a node's failure."""
        failure: list[BaseException] = []

        async def feed() -> None:
            try:
                if isinstance(items, AsyncIterable):
                    async for item in items:
                        await self.send(item)
                else:
                    for item in items:
                        await self.send(item)
                await self.end_input()
            except Exception as e:  # noqa: BLE001 - re-raised in the reading task below
                failure.append(e)
                # Ends the iteration below, which then raises this.
                await self.close()

        feeder = asyncio.ensure_future(feed())
        try:
            async for output in self:
                yield output
            await feeder
            if failure:
                raise failure[0]
        finally:
            if not feeder.done():
                feeder.cancel()
                try:
                    await feeder
                except asyncio.CancelledError:
                    pass

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


def open_session(
    manifest: ManifestSource, *, send_timeout: Optional[float] = DEFAULT_SEND_TIMEOUT
) -> Session:
    """A session of ``manifest`` (a path, YAML/JSON text, a dict or a :class:`Pipeline`),
    started by ``async with`` or ``await session.start()``. The manifest is checked now: a bad
    one raises :class:`ManifestError` at once. ``send_timeout`` is how many seconds a
    :meth:`Session.send` waits for a full pipeline (None: for ever)."""
    if send_timeout is not None and not send_timeout >= 0:
        raise ValueError(f"send_timeout: {send_timeout!r} is not a number of seconds >= 0")
    return Session(_native.open_session(manifest), send_timeout)
