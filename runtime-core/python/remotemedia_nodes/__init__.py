"""RemoteMedia pipeline nodes written in Python.

* :class:`Node` and :func:`node`: subclass, register, and manifests can name ``python:<Name>``
  (see :mod:`remotemedia_nodes.node`).
* :mod:`remotemedia_nodes.codec`: the pod-link byte format shared with the Rust runtime
  (``runtime-core/src/ipc/codec.rs``).
* :mod:`remotemedia_nodes.host`: how the runtime runs one node instance in its own process.
"""

from .codec import (
    Audio,
    Close,
    Closed,
    Credit,
    DecodeError,
    Done,
    EndInput,
    Error,
    Input,
    Item,
    Json,
    Open,
    Opened,
    Output,
    Tensor,
    decode,
    encode,
)
from .node import Node, NodeType, PluginError, node

__all__ = [
    "Audio", "Close", "Closed", "Credit", "DecodeError", "Done", "EndInput", "Error", "Input", "Item", "Json",
    "Node", "NodeType", "Open", "Opened", "Output", "PluginError", "Tensor", "decode", "encode", "node",
]
