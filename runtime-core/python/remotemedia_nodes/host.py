"""Runs one node instance in this process, linked to the runtime that spawned it over iceoryx2.

The runtime (``runtime-core/src/python``) creates every service before it starts this process,
all under one prefix ``P`` it passes as ``--services``::

    P/in/data    runtime -> node: Input, EndInput, Close      ([u8] publish-subscribe)
    P/out/data   node -> runtime: Opened or Closed first, then Output*, Error?, Done per input
    P/py         this process's event inbox: 0 "input arrived", 1 "output has room"
    P/host       the runtime's inbox:        0 "output arrived", 1 "input has room"

Messages are the pod-link format of :mod:`remotemedia_nodes.codec`. Events are only wake-ups:
after each one the loop looks at the queue itself, so an event meant for the other wait is
harmless. Waits spin briefly before they sleep on the event, which is what keeps a round trip
near tens of microseconds without burning a core while idle.

The process ends when the runtime sends Close, or when its stdin reaches end of file: the
runtime holds the other end, so it closes when the runtime exits or dies, however that happens.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import time
import traceback
import types
from typing import Any, Callable, Optional

import iceoryx2 as iox

from .codec import Closed, Close, Done, EndInput, Error, Input, Item, NodeStart, Opened, Output, Refused, decode, encode
from .node import NodeType

INPUT_ARRIVED, OUTPUT_ROOM = 0, 1  # slots of this process's inbox
OUTPUT_ARRIVED, INPUT_ROOM = 0, 1  # slots of the runtime's inbox
WAIT_SLICE = iox.Duration.from_millis(100)
BUSY_SECONDS = 0.001  # spin only while messages arrive at most this far apart


class Link:
    """The two pipes and two inboxes shared with the runtime."""

    def __init__(self, prefix: str, depth: int, spin_seconds: float):
        iox.set_log_level_from_env_or(iox.LogLevel.Error)
        self.node = (
            iox.NodeBuilder.new()
            .signal_handling_mode(iox.SignalHandlingMode.Disabled)
            .create(iox.ServiceType.Ipc)
        )
        u8 = iox.Slice[ctypes.c_uint8]
        self.subscriber = (
            self._service(f"{prefix}/in/data").publish_subscribe(u8).open().subscriber_builder().buffer_size(depth).create()
        )
        self.publisher = (
            self._service(f"{prefix}/out/data")
            .publish_subscribe(u8)
            .open()
            .publisher_builder()
            .initial_max_slice_len(4096)
            .allocation_strategy(iox.AllocationStrategy.PowerOfTwo)
            # A full runtime queue is reported as "delivered to nobody"; we then wait for room
            # instead of dropping or busy-retrying.
            .backpressure_strategy(iox.BackpressureStrategy.DiscardData)
            .create()
        )
        self.listener = self._service(f"{prefix}/py").event().open().listener_builder().create()
        self.runtime_bell = self._service(f"{prefix}/host").event().open().notifier_builder().create()
        self.spin_seconds = spin_seconds
        self.last_message = 0.0
        self.last_gap = float("inf")

    def _service(self, name: str) -> Any:
        return self.node.service_builder(iox.ServiceName.new(name))

    def _ring(self, slot: int) -> None:
        self.runtime_bell.notify_with_custom_event_id(iox.EventId.new(slot))

    def _wait(self, ready: Callable[[], bool]) -> None:
        """Returns once ``ready()``: spins for a moment if messages are coming back to back,
        then sleeps on the inbox. A steady 20 ms stream never spins (busy means the last two
        messages came close together, not merely that the last one is recent)."""
        now = time.perf_counter()
        if self.last_gap <= BUSY_SECONDS and now - self.last_message <= BUSY_SECONDS:
            deadline = now + self.spin_seconds
            while time.perf_counter() < deadline:
                if ready():
                    return
        while not ready():
            self.listener.timed_wait(WAIT_SLICE)

    def recv(self) -> bytearray:
        """The next message from the runtime (a writable copy, so numpy views of it are too)."""
        while True:
            sample = self.subscriber.receive()
            if sample is not None:
                size = sample.payload().len()
                message = bytearray(size)
                ctypes.memmove((ctypes.c_char * size).from_buffer(message), sample.payload_ptr, size)
                sample.delete()
                self._ring(INPUT_ROOM)
                now = time.perf_counter()
                self.last_gap = now - self.last_message
                self.last_message = now
                return message
            self._wait(self.subscriber.has_samples)

    def send(self, message: bytes) -> None:
        """Sends ``message``, waiting while the runtime's queue is full. Nothing is dropped."""
        while True:
            sample = self.publisher.loan_slice_uninit(len(message))
            ctypes.memmove(sample.payload_ptr, message, len(message))
            if sample.assume_init().send() > 0:
                self._ring(OUTPUT_ARRIVED)
                return
            # Full: wait for the runtime to take a message (its ring), then send again.
            self.listener.timed_wait(WAIT_SLICE)


def _exit_when_runtime_goes() -> None:
    """Ends the process when stdin closes: the runtime exited, was killed, or dropped us.
    A runtime that drops us sends Close first; the pause lets that end us cleanly."""
    try:
        # The raw descriptor, not sys.stdin: a daemon thread blocked inside a buffered reader
        # makes interpreter shutdown abort.
        while os.read(0, 4096):
            pass
        time.sleep(0.5)
    finally:
        os._exit(0)


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"


class NodeProcess:
    """One node instance answering the runtime's messages until Close."""

    def __init__(self, node_type: NodeType, link: Link):
        self.node_type = node_type
        self.node_id = f"python:{node_type.name}"
        self.link = link

    def run(self, params: dict) -> int:
        try:
            instance = self.node_type.cls(**{**self.node_type.defaults(), **params})
        except Exception as e:
            reason = f"python:{self.node_type.name} failed to start: {_describe(e)}"
            traceback.print_exc()
            self.link.send(encode(Closed(0, Refused(NodeStart(self.node_id, reason)))))
            return 1
        self.link.send(encode(Opened(0, "")))
        while True:
            message = decode(self.link.recv())
            if isinstance(message, Input):
                data = message.item.data
                self._emit(lambda: instance.process(data))
            elif isinstance(message, EndInput):
                self._emit(instance.finish)
            elif isinstance(message, Close):
                return 0
            else:
                raise ValueError(f"unexpected message from the runtime: {type(message).__name__}")
            self.link.send(encode(Done(0)))

    def _output(self, value: Any) -> None:
        self.link.send(encode(Output(0, self.node_id, Item(value))))

    def _emit(self, call: Callable[[], Any]) -> None:
        """Runs one call into the node and sends what it produced; an exception (also one
        raised while encoding a result) becomes one Error after the outputs sent so far."""
        try:
            result = call()
            if isinstance(result, types.GeneratorType):
                for value in result:
                    self._output(value)
            elif result is not None:
                self._output(result)
        except Exception as e:
            traceback.print_exc()
            self.link.send(encode(Error(0, self.node_id, None, _describe(e))))


def serve(node_type: NodeType, params: dict, prefix: str, depth: int, spin_seconds: float) -> int:
    """Serves one node instance until the runtime lets go; returns the exit status."""
    threading.Thread(target=_exit_when_runtime_goes, name="runtime-watch", daemon=True).start()
    link = Link(prefix, depth, spin_seconds)
    return NodeProcess(node_type, link).run(params)


def describe(types_: Optional[dict] = None) -> list:
    """What ``python -m remotemedia_nodes describe`` prints: every registered node type."""
    from .node import load_plugins

    registry = load_plugins() if types_ is None else types_
    return [t.describe() for _, t in sorted(registry.items())]
