"""The exceptions remotemedia raises.

Every one derives from :class:`RemoteMediaError`, and the ones that mean a familiar Python
condition also derive from the built-in (``ManifestError`` is a ``ValueError``, ``PipelineTimeout``
a ``TimeoutError``), so generic handlers keep working. Each carries, as attributes, what it is
about: the node id and the field path in the manifest, the problems found, the session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Sequence

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ._native import Problem

__all__ = [
    "RemoteMediaError",
    "ManifestError",
    "NodeError",
    "PipelineTimeout",
    "SessionClosed",
    "SessionAborted",
]


class RemoteMediaError(Exception):
    """Base class of the errors remotemedia raises."""


class ManifestError(RemoteMediaError, ValueError):
    """The manifest cannot run. ``problems`` lists every problem found, each with its field
    path (``nodes[1].params.target_rate``), node id and line; ``source`` says where the manifest
    came from (a file path, ``<string>`` or ``<dict>``)."""

    def __init__(self, message: str, *, problems: Sequence["Problem"] = (), source: str = "") -> None:
        super().__init__(message)
        self.problems = list(problems)
        self.source = source

    @property
    def node_id(self) -> Optional[str]:
        """The node of the first problem that names one."""
        return next((p.node_id for p in self.problems if p.node_id), None)

    @property
    def path(self) -> Optional[str]:
        """The field path of the first problem."""
        return self.problems[0].path if self.problems else None


class NodeError(RemoteMediaError):
    """A node failed. ``node_id`` names it, ``path`` is its place in the manifest
    (``nodes[2]``), ``sequence`` the input it was working on. In a session the session goes on:
    keep iterating to get the next output."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str,
        path: Optional[str] = None,
        sequence: Optional[int] = None,
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.path = path
        self.sequence = sequence


class PipelineTimeout(RemoteMediaError, TimeoutError):
    """``execute`` did not finish in time; ``unfinished_nodes`` were still working."""

    def __init__(self, message: str, *, unfinished_nodes: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.unfinished_nodes = list(unfinished_nodes)


class SendTimeout(RemoteMediaError, TimeoutError):
    """``Session.send`` waited longer than its timeout for the pipeline to take the item: the
    session's queues are full, most often because nobody reads its outputs. The item was not
    sent; the session goes on."""

    def __init__(self, message: str, *, session_id: Optional[str] = None, timeout: float = 0.0) -> None:
        super().__init__(message)
        self.session_id = session_id
        self.timeout = timeout


class SessionClosed(RemoteMediaError):
    """The session no longer accepts this call: it was closed, or its input was ended."""

    def __init__(self, message: str, *, session_id: Optional[str] = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class SessionAborted(RemoteMediaError):
    """The session ended abnormally (a node process died, the runtime shut down)."""

    def __init__(self, message: str, *, session_id: Optional[str] = None, reason: str = "") -> None:
        super().__init__(message)
        self.session_id = session_id
        self.reason = reason
