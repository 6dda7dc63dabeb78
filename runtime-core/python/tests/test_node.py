"""Node registration and the per-input protocol of a node process, without iceoryx2 (the Rust
tests in server/tests/python_nodes.rs drive real processes over real shared memory)."""

from collections import deque

import numpy as np
import pytest

from remotemedia_nodes import (
    Audio, Closed, Done, EndInput, Error, Input, Item, Json, Node, NodeStart, Opened, Output, Refused, node,
)
from remotemedia_nodes.codec import Close, decode, encode
from remotemedia_nodes.host import NodeProcess
from remotemedia_nodes.node import load_plugins, registered


class ScriptedLink:
    """Feeds the process a fixed list of messages and records what it sends back."""

    def __init__(self, *incoming):
        self.incoming = deque(encode(m) for m in incoming)
        self.sent = []

    def recv(self):
        return bytearray(self.incoming.popleft())

    def send(self, message):
        self.sent.append(decode(message))


@node("TestDoubler", description="Doubles numbers", params={"factor": {"type": "integer", "default": 2}},
      accepts=["json"], produces=["json", "text"])
class Doubler(Node):
    def __init__(self, factor):
        self.factor = factor
        self.count = 0

    def process(self, data):
        self.count += 1
        if data.value == "many":
            yield Json(1)
            yield "two"
            raise KeyError("third")
        yield Json(data.value * self.factor)

    def finish(self):
        return Json({"count": self.count})


def run(node_type, params, *incoming):
    link = ScriptedLink(*incoming)
    status = NodeProcess(registered()[node_type], link).run(params)
    return status, link.sent


def test_registration_describes_the_type_for_the_runtime():
    described = registered()["TestDoubler"].describe()
    assert described == {
        "node_type": "python:TestDoubler",
        "description": "Doubles numbers",
        "params_schema": {
            "type": "object",
            "properties": {"factor": {"type": "integer", "default": 2}},
            "required": [],
            "additionalProperties": False,
        },
        "accepts": ["json"],
        "produces": ["json", "text"],
        "module": __name__,
    }


def test_each_input_ends_with_done_and_defaults_fill_params():
    status, sent = run("TestDoubler", {}, Input(0, Item(Json(21))), EndInput(0), Close(0))
    assert status == 0
    node_id = "python:TestDoubler"
    assert sent == [
        Opened(0, ""),
        Output(0, node_id, Item(Json(42))), Done(0),
        Output(0, node_id, Item(Json({"count": 1}))), Done(0),
    ]


def test_an_exception_keeps_earlier_outputs_and_the_node_goes_on():
    status, sent = run("TestDoubler", {"factor": 3}, Input(0, Item(Json("many"))), Input(0, Item(Json(1))), Close(0))
    assert status == 0
    node_id = "python:TestDoubler"
    assert sent == [
        Opened(0, ""),
        Output(0, node_id, Item(Json(1))), Output(0, node_id, Item("two")),
        Error(0, node_id, None, "KeyError: 'third'"), Done(0),
        Output(0, node_id, Item(Json(3))), Done(0),
    ]


def test_a_result_that_cannot_be_sent_is_an_error_item():
    @node("TestReturnsSet")
    class ReturnsSet(Node):
        def process(self, data):
            return {1, 2}

    _, sent = run("TestReturnsSet", {}, Input(0, Item("x")), Close(0))
    assert isinstance(sent[1], Error) and "TypeError" in sent[1].message and "set" in sent[1].message
    assert sent[2] == Done(0)


def test_a_constructor_failure_is_reported_before_exiting():
    @node("TestNoStart")
    class NoStart(Node):
        def __init__(self):
            raise OSError("model missing")

    status, sent = run("TestNoStart", {})
    assert status == 1
    reason = "python:TestNoStart failed to start: OSError: model missing"
    assert sent == [Closed(0, Refused(NodeStart("python:TestNoStart", reason)))]


def test_audio_arrives_as_writable_float32():
    @node("TestInPlace")
    class InPlace(Node):
        def process(self, data):
            assert data.samples.dtype == np.float32
            data.samples *= 2  # in place: the array is the node's own copy
            return data

    audio = Audio(np.array([0.25, -0.25], dtype=np.float32), 48_000)
    _, sent = run("TestInPlace", {}, Input(0, Item(audio)), Close(0))
    assert sent[1].item.data == Audio(np.array([0.5, -0.5], dtype=np.float32), 48_000)


def test_bad_registrations_are_refused_by_name():
    with pytest.raises(ValueError, match="'TestBadKinds': accepts must be a non-empty list"):
        node("TestBadKinds", accepts=["video"])
    with pytest.raises(ValueError, match="required params \\['x'\\] are not in params"):
        node("TestBadRequired", required=["x"])
    with pytest.raises(TypeError, match="not a Node subclass"):
        node("TestNotANode")(object)
    with pytest.raises(ValueError, match="registered twice"):
        node("TestDoubler")(type("Other", (Node,), {}))


def test_plugins_load_from_env_and_a_broken_one_is_named(monkeypatch, tmp_path):
    (tmp_path / "broken_nodes.py").write_text("import no_such_module\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("REMOTEMEDIA_PYTHON_MODULES", "broken_nodes")
    from remotemedia_nodes.node import PluginError

    with pytest.raises(PluginError, match="node module 'broken_nodes' failed to import: ModuleNotFoundError"):
        load_plugins()
    monkeypatch.setenv("REMOTEMEDIA_PYTHON_MODULES", "")
    assert "PassThrough" in load_plugins()
