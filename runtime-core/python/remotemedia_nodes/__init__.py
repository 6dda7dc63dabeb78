"""RemoteMedia pipeline nodes written in Python.

* :class:`Node` and :func:`node`: subclass, register, and manifests can name ``python:<Name>``
  (see :mod:`remotemedia_nodes.node`).
* :mod:`remotemedia_nodes.codec`: the pod-link byte format shared with the Rust runtime
  (``runtime-core/src/ipc/codec.rs``).
* :mod:`remotemedia_nodes.host`: how the runtime runs one node instance in its own process.
"""

from .codec import (
    Aborted,
    Audio,
    Close,
    Closed,
    Completed,
    Credit,
    DecodeError,
    Done,
    EndInput,
    Error,
    Input,
    InvalidManifest,
    Item,
    Json,
    NodeCreation,
    NodeStart,
    Open,
    Opened,
    Output,
    ParamIssue,
    Problem,
    Refused,
    RefusedOther,
    Tensor,
    decode,
    encode,
)
from .node import Node, NodeType, PluginError, node

__all__ = [
    "Aborted", "Audio", "Close", "Closed", "Completed", "Credit", "DecodeError", "Done", "EndInput", "Error",
    "Input", "InvalidManifest", "Item", "Json", "Node", "NodeCreation", "NodeStart", "NodeType", "Open",
    "Opened", "Output", "ParamIssue", "PluginError", "Problem", "Refused", "RefusedOther", "Tensor", "decode",
    "encode", "node",
]
