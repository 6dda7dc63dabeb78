"""RemoteMedia pipeline nodes written in Python.

So far: :mod:`remotemedia_nodes.codec`, the pod-link byte format shared with the Rust runtime
(``runtime-core/src/ipc/codec.rs``). The node base class and the process runner come next.
"""

from .codec import (
    Audio,
    Close,
    Closed,
    DecodeError,
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

__all__ = [
    "Audio", "Close", "Closed", "DecodeError", "EndInput", "Error", "Input", "Item", "Json",
    "Open", "Opened", "Output", "Tensor", "decode", "encode",
]
