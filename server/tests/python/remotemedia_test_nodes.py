"""Python node types the runtime's Rust tests drive (loaded through REMOTEMEDIA_PYTHON_MODULES)."""

import os
import time
import signal

from remotemedia_nodes import Json, Node, node


@node("FailOn", description="Echoes its input, but raises on the text 'boom'",
      params={"word": {"type": "string", "default": "boom"}})
class FailOn(Node):
    def __init__(self, word):
        self.word = word

    def process(self, data):
        if data == self.word:
            raise ValueError(f"refusing {data!r}")
        return data


@node("DieOn", description="Echoes its input, but kills its own process on the text 'die'")
class DieOn(Node):
    def process(self, data):
        if data == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        return data


@node("Burst", description="Emits `count` outputs per input, and a summary when input ends",
      params={"count": {"type": "integer", "minimum": 0}}, required=["count"])
class Burst(Node):
    def __init__(self, count):
        self.count = count
        self.seen = 0

    def process(self, data):
        self.seen += 1
        for i in range(self.count):
            yield Json({"input": self.seen, "part": i})

    def finish(self):
        return Json({"inputs": self.seen})


@node("BadInit", description="Cannot start")
class BadInit(Node):
    def __init__(self):
        raise RuntimeError("no model file here")


@node("HangOn", description="Echoes its input, but never answers the text 'hang'",
      params={"marker": {"type": "string", "default": ""}})
class HangOn(Node):
    def __init__(self, marker):
        self.marker = marker

    def process(self, data):
        if data == "hang":
            while True:
                time.sleep(3600)
        return data
