"""Type aliases of the remotemedia API (importable at runtime, used by the stubs)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Mapping, Union

import numpy.typing as npt

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ._native import Audio, Pipeline

JsonValue = Union[None, bool, int, float, str, list["JsonValue"], dict[str, "JsonValue"]]
ManifestSource = Union[str, os.PathLike[str], Mapping[str, Any], "Pipeline"]
"""A path to a YAML/JSON file, the manifest's text, the manifest as a dict, or a loaded Pipeline."""
Item = Union["Audio", str, dict[str, Any], list[Any], bytes, bytearray, npt.NDArray[Any]]
"""What a pipeline takes: Audio, text, JSON (dict/list), binary, or a tensor (numpy array)."""
Data = Union["Audio", str, JsonValue, bytes, npt.NDArray[Any]]
"""What a pipeline gives back: the same kinds (binary as bytes, tensors as read-only arrays)."""
