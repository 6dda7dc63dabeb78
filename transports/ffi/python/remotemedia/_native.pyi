"""Type stubs of the native extension (transports/ffi/src). Keep in step with the Rust code:
tests/test_stubs.py checks that every public name here exists at runtime and vice versa."""

import asyncio
from typing import Any, Literal, Mapping, Optional

import numpy as np
import numpy.typing as npt

__version__: str

from ._types import Data, Item, JsonValue, ManifestSource

class Audio:
    """Interleaved float32 PCM. ``samples`` is 1-D (interleaved) or 2-D (frames x channels);
    a C-contiguous float32 array is lent to the runtime without a copy (do not write to it
    while it is in flight), anything else is converted. ``channels`` defaults to the array's
    second dimension, or 1."""

    def __init__(
        self,
        samples: npt.ArrayLike,
        sample_rate: int,
        channels: Optional[int] = None,
        *,
        stream_id: Optional[str] = None,
        timestamp_us: Optional[int] = None,
    ) -> None: ...
    @property
    def samples(self) -> npt.NDArray[np.float32]:
        """The samples, interleaved, as a read-only array (no copy)."""
    @property
    def sample_rate(self) -> int: ...
    @property
    def channels(self) -> int: ...
    @property
    def frames(self) -> int:
        """Samples per channel."""
    @property
    def duration(self) -> float:
        """Length in seconds."""
    @property
    def stream_id(self) -> Optional[str]: ...
    @property
    def timestamp_us(self) -> Optional[int]: ...
    def __eq__(self, other: object) -> bool: ...

class Output:
    """One result of a pipeline."""

    @property
    def node(self) -> str:
        """Id of the node that produced it."""
    @property
    def kind(self) -> Literal["audio", "text", "json", "binary", "tensor"]:
        """The kind of data (tells a JSON string from text)."""
    @property
    def data(self) -> Data: ...
    @property
    def sequence(self) -> Optional[int]:
        """Sequence number of the input it derives from."""
    @property
    def metadata(self) -> dict[str, str]:
        """Metadata of the input it derives from."""

class Problem:
    """One problem with a manifest: what (``kind``, ``message``) and where (``path``,
    ``node_id``, ``line``, ``column``)."""

    @property
    def severity(self) -> Literal["error", "warning"]: ...
    @property
    def kind(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def node_id(self) -> Optional[str]: ...
    @property
    def line(self) -> Optional[int]: ...
    @property
    def column(self) -> Optional[int]: ...
    @property
    def message(self) -> str: ...

class Pipeline:
    """A checked manifest, ready to run any number of times (see :func:`load`)."""

    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str:
        """A file path, ``<string>`` or ``<dict>``."""
    @property
    def node_ids(self) -> list[str]: ...

class Param:
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def default(self) -> JsonValue: ...
    @property
    def description(self) -> Optional[str]: ...

class NodeType:
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def accepts(self) -> list[str]: ...
    @property
    def produces(self) -> list[str]: ...
    @property
    def params(self) -> list[Param]: ...
    @property
    def params_schema(self) -> dict[str, Any]: ...

class NativeSession:
    """The native half of remotemedia.Session (see _session.py)."""

    def start(self) -> "asyncio.Future[None]": ...
    def send(
        self,
        item: Item,
        *,
        sequence: Optional[int] = None,
        metadata: Optional[Mapping[str, str]] = None,
        timeout: Optional[float] = None,
    ) -> "asyncio.Future[None]": ...
    def end_input(self) -> "asyncio.Future[None]": ...
    def wait_output(self) -> "asyncio.Future[bool]":
        """True once an output is ready for take_output, False when the session has ended."""
    def take_output(self) -> Optional[Output]:
        """The oldest ready output; raises NodeError for a node's failure."""
    def close(self) -> "asyncio.Future[None]": ...
    @property
    def id(self) -> Optional[str]: ...
    @property
    def active(self) -> bool: ...
    @property
    def pipeline(self) -> str: ...

def validate(manifest: ManifestSource) -> list[Problem]:
    """Every problem with ``manifest`` (errors and warnings); empty when it is fine."""

def load(manifest: ManifestSource) -> Pipeline:
    """Checks ``manifest``; raises ManifestError listing every problem."""

def list_nodes() -> list[NodeType]:
    """The node types a manifest can use."""

def execute(
    manifest: ManifestSource,
    item: Item,
    *,
    sequence: Optional[int] = None,
    metadata: Optional[Mapping[str, str]] = None,
) -> "asyncio.Future[list[Output]]":
    """Runs one item through a fresh session; every output once the pipeline has drained."""

def open_session(manifest: ManifestSource) -> NativeSession:
    """A session of ``manifest``, not yet started; raises ManifestError for a bad one."""
