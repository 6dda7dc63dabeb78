"""The node base class and the registry of Python node types.

A node type is a :class:`Node` subclass registered with :func:`node`::

    from remotemedia_nodes import Audio, Node, node

    @node("Gain", description="Scales audio by gain_db decibels",
          params={"gain_db": {"type": "number", "default": 0.0}},
          accepts=["audio"], produces=["audio"])
    class Gain(Node):
        def __init__(self, gain_db: float):
            self.factor = 10.0 ** (gain_db / 20.0)

        def process(self, data):
            return Audio(data.samples * self.factor, data.sample_rate, data.channels)

Manifests name it ``python:Gain``. The runtime finds node types by importing the modules listed
under the ``remotemedia.nodes`` entry-point group of installed packages, and those named in env
``REMOTEMEDIA_PYTHON_MODULES`` (comma-separated), then reading this registry.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Dict, Iterable, List, Optional, Type

KINDS = ("audio", "text", "json", "binary", "tensor")
ENTRY_POINT_GROUP = "remotemedia.nodes"
MODULES_ENV = "REMOTEMEDIA_PYTHON_MODULES"


class Node:
    """Base class of Python nodes. One instance serves one session, in a process of its own.

    The constructor receives the manifest's ``params`` as keyword arguments, with schema
    defaults filled in.

    ``process`` and ``finish`` return ``None`` (no output), one value (one output), or a
    generator (one output per value it yields). A value is pipeline data: :class:`Audio`,
    ``str`` (Text), ``bytes`` (Binary), :class:`Json` or a dict/list/number/bool (Json),
    :class:`Tensor`. An exception fails that one item: the client gets an error item naming
    the node, and the node goes on with the next input.
    """

    def process(self, data: Any) -> Any:
        """Handles one input item."""
        raise NotImplementedError(f"{type(self).__name__} does not implement process()")

    def finish(self) -> Any:
        """Called once when input has ended: return whatever is still buffered."""
        return None


@dataclass(frozen=True)
class NodeType:
    """A registered node type, as ``describe`` reports it to the runtime."""

    name: str
    cls: Type[Node]
    description: str
    params_schema: Dict[str, Any]
    accepts: List[str]
    produces: List[str]

    def describe(self) -> Dict[str, Any]:
        return {
            "node_type": f"python:{self.name}",
            "description": self.description,
            "params_schema": self.params_schema,
            "accepts": self.accepts,
            "produces": self.produces,
            "module": self.cls.__module__,
        }

    def defaults(self) -> Dict[str, Any]:
        props = self.params_schema.get("properties", {})
        return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


_REGISTRY: Dict[str, NodeType] = {}


def _kinds(what: str, kinds: Iterable[str], name: str) -> List[str]:
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"node type {name!r}: {what} must be a non-empty list of {KINDS}, got {kinds!r}")
    return kinds


def node(
    name: str,
    *,
    description: str = "",
    params: Optional[Dict[str, Dict[str, Any]]] = None,
    required: Iterable[str] = (),
    accepts: Iterable[str] = KINDS,
    produces: Iterable[str] = KINDS,
) -> Callable[[Type[Node]], Type[Node]]:
    """Registers a :class:`Node` subclass as node type ``python:<name>``.

    ``params`` maps each param name to its JSON schema (``{"type": "number", "default": 0.0}``);
    the runtime checks manifests against it before any process starts, and rejects params not
    listed. ``required`` names params that have no default and must be given.
    """
    params = dict(params or {})
    missing = [p for p in required if p not in params]
    if missing:
        raise ValueError(f"node type {name!r}: required params {missing} are not in params")
    schema = {
        "type": "object",
        "properties": params,
        "required": sorted(required),
        "additionalProperties": False,
    }
    accepts_list = _kinds("accepts", accepts, name)
    produces_list = _kinds("produces", produces, name)

    def register(cls: Type[Node]) -> Type[Node]:
        if not (isinstance(cls, type) and issubclass(cls, Node)):
            raise TypeError(f"@node({name!r}) decorates {cls!r}, which is not a Node subclass")
        existing = _REGISTRY.get(name)
        if existing is not None and existing.cls is not cls:
            raise ValueError(
                f"node type {name!r} is registered twice: {existing.cls.__module__}.{existing.cls.__qualname__} "
                f"and {cls.__module__}.{cls.__qualname__}"
            )
        _REGISTRY[name] = NodeType(name, cls, description or (cls.__doc__ or "").strip().split("\n")[0],
                                   schema, accepts_list, produces_list)
        return cls

    return register


class PluginError(Exception):
    """A node module could not be imported."""


def load_plugins() -> Dict[str, NodeType]:
    """Imports every node module (entry points, then ``REMOTEMEDIA_PYTHON_MODULES``) and
    returns the registry. A module that fails to import is an error naming it."""
    from . import builtin  # noqa: F401  (registers the package's own node types)

    modules = [ep.value.split(":")[0] for ep in entry_points(group=ENTRY_POINT_GROUP)]
    modules += [m.strip() for m in os.environ.get(MODULES_ENV, "").split(",") if m.strip()]
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # any import failure, reported with the module's name
            raise PluginError(f"node module {module!r} failed to import: {type(e).__name__}: {e}") from e
    return dict(_REGISTRY)


def registered() -> Dict[str, NodeType]:
    """The node types registered so far (without loading plugins)."""
    return dict(_REGISTRY)
