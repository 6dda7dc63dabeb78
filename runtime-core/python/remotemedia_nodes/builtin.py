"""Node types that ship with the package."""

from typing import Any

from .node import Node, node


@node("PassThrough", description="Returns every input unchanged (for tests and latency measurements)")
class PassThrough(Node):
    def process(self, data: Any) -> Any:
        return data
