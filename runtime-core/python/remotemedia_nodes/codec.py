"""The pod-link message format, byte for byte as ``runtime-core/src/ipc/codec.rs`` defines it.

Data maps to Python as: Audio -> :class:`Audio` (samples a float32 numpy array, viewed in place
when decoding from a buffer), Text -> ``str``, Json -> any JSON value (``Json(value)`` wraps
a value that would otherwise be mistaken for Text or Binary, such as a bare string), Binary ->
``bytes``, Tensor -> :class:`Tensor`. Decoding raises :class:`DecodeError` naming the field
and byte offset; it never reads past the buffer.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

import numpy as np

MAGIC = b"RM"
VERSION = 2
HEADER_LEN = 16

_DTYPES = {"f32": "<f4", "f16": "<f2", "f64": "<f8", "i8": "i1", "i16": "<i2", "i32": "<i4", "i64": "<i8", "u8": "u1"}
_DTYPE_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


class DecodeError(ValueError):
    """Bytes that are not a valid message: ``field`` at byte ``offset``."""

    def __init__(self, field_name: str, offset: int, problem: str):
        super().__init__(f"{field_name} at byte {offset}: {problem}")
        self.field = field_name
        self.offset = offset
        self.problem = problem


@dataclass
class Audio:
    """Interleaved float32 audio."""

    samples: np.ndarray
    sample_rate: int
    channels: int = 1
    stream_id: Optional[str] = None
    timestamp_us: Optional[int] = None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Audio)
            and (self.sample_rate, self.channels, self.stream_id, self.timestamp_us)
            == (other.sample_rate, other.channels, other.stream_id, other.timestamp_us)
            and np.array_equal(np.asarray(self.samples, "<f4").view("<u4"), np.asarray(other.samples, "<f4").view("<u4"))
        )


@dataclass
class Tensor:
    """A dense little-endian tensor."""

    array: np.ndarray

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tensor) and self.array.dtype == other.array.dtype and np.array_equal(self.array, other.array)


@dataclass
class Json:
    """Marks a value as Json when its Python type alone would say Text (``str``) or Binary."""

    value: Any


Data = Union[Audio, str, Json, bytes, Tensor, dict, list, int, float, bool, None]


@dataclass
class Item:
    """One item of pipeline data with the caller's sequence number and metadata."""

    data: Data
    sequence: Optional[int] = None
    metadata: dict = field(default_factory=dict)


@dataclass
class Open:
    session: int
    manifest: str = ""


@dataclass
class Input:
    session: int
    item: Item


@dataclass
class EndInput:
    session: int


@dataclass
class Close:
    session: int


@dataclass
class Credit:
    """Either way on the pod link: the sender took ``count`` more of the session's items."""

    session: int
    count: int


@dataclass
class Opened:
    session: int
    manifest: str


@dataclass
class Output:
    session: int
    node: str
    item: Item


@dataclass
class Error:
    session: int
    node: Optional[str]  # None: the session itself failed on the item, not a node
    sequence: Optional[int]
    message: str


@dataclass
class Completed:
    """Every output was delivered after the end of input."""


@dataclass
class Aborted:
    """The session stopped before its end."""

    reason: str


@dataclass
class Problem:
    """One manifest problem, as the Rust validator reports it."""

    severity: str  # "error" or "warning"
    kind: str  # snake_case, e.g. "invalid_param"
    path: str
    node: Optional[str]
    line: Optional[int]
    column: Optional[int]
    message: str


@dataclass
class ParamIssue:
    field: str
    kind: str
    message: str


@dataclass
class InvalidManifest:
    problems: List[Problem]


@dataclass
class NodeCreation:
    node: str
    issues: List[ParamIssue]


@dataclass
class NodeStart:
    node: str
    reason: str


@dataclass
class RefusedOther:
    reason: str


Refusal = Union[InvalidManifest, NodeCreation, NodeStart, RefusedOther]


@dataclass
class Refused:
    """The session never opened: the answer to Open."""

    refusal: Refusal


Ending = Union[Completed, Aborted, Refused]


@dataclass
class Closed:
    session: int
    ending: Ending


@dataclass
class Describe:
    """Client -> worker: which node types do you run? (answered with Catalog)"""

    session: int


@dataclass
class Catalog:
    """Worker -> client: the node catalog's JSON."""

    session: int
    catalog: str


@dataclass
class Done:
    """Node process -> host: every output of the last input has been sent."""

    session: int


Message = Union[Open, Input, EndInput, Close, Credit, Describe, Opened, Output, Error, Closed, Done, Catalog]
_KINDS = {
    Open: 1, Input: 2, EndInput: 3, Close: 4, Credit: 5, Describe: 6,
    Opened: 16, Output: 17, Error: 18, Closed: 19, Done: 20, Catalog: 21,
}


def _str16(out: bytearray, s: str) -> None:
    raw = s.encode()
    out += struct.pack("<H", len(raw)) + raw


def _bytes32(out: bytearray, raw: bytes) -> None:
    out += struct.pack("<I", len(raw)) + raw


def _data(out: bytearray, data: Data) -> None:
    if isinstance(data, Audio):
        samples = np.ascontiguousarray(data.samples, dtype="<f4")
        out += struct.pack("<BIH", 1, data.sample_rate, data.channels)
        if data.stream_id is None:
            out += b"\x00"
        else:
            out += b"\x01"
            _str16(out, data.stream_id)
        out += b"\x00" if data.timestamp_us is None else b"\x01" + struct.pack("<Q", data.timestamp_us)
        out += struct.pack("<I", samples.size)
        out += b"\x00" * ((4 - len(out) % 4) % 4)
        out += samples.tobytes()
    elif isinstance(data, str):
        out += b"\x02"
        _bytes32(out, data.encode())
    elif isinstance(data, (bytes, bytearray, memoryview)):
        out += b"\x04"
        _bytes32(out, bytes(data))
    elif isinstance(data, Tensor):
        array = np.ascontiguousarray(data.array)
        name = _DTYPE_NAMES.get(array.dtype.newbyteorder("<") if array.dtype.byteorder == ">" else array.dtype)
        if name is None:
            raise ValueError(f"tensor dtype {array.dtype} has no wire type")
        out += b"\x05"
        _str16(out, name)
        out += struct.pack("<B", array.ndim) + b"".join(struct.pack("<Q", d) for d in array.shape)
        _bytes32(out, array.astype(_DTYPES[name], copy=False).tobytes())
    else:
        value = data.value if isinstance(data, Json) else data
        out += b"\x03"
        # Sorted keys, compact, UTF-8: the same text serde_json writes on the Rust side.
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True)
        _bytes32(out, text.encode())


_SEVERITIES = {"error": 1, "warning": 2}
_REFUSALS = {InvalidManifest: 1, NodeCreation: 2, NodeStart: 3, RefusedOther: 4}


def _opt_str16(out: bytearray, s: Optional[str]) -> None:
    if s is None:
        out += b"\x00"
    else:
        out += b"\x01"
        _str16(out, s)


def _opt_u64(out: bytearray, v: Optional[int]) -> None:
    out += b"\x00" if v is None else b"\x01" + struct.pack("<Q", v)


def _ending(out: bytearray, ending: Ending) -> None:
    if isinstance(ending, Completed):
        out += b"\x01"
    elif isinstance(ending, Aborted):
        out += b"\x02"
        _bytes32(out, ending.reason.encode())
    else:
        refusal = ending.refusal
        out += struct.pack("<BB", 3, _REFUSALS[type(refusal)])
        if isinstance(refusal, InvalidManifest):
            out += struct.pack("<I", len(refusal.problems))
            for p in refusal.problems:
                out += struct.pack("<B", _SEVERITIES[p.severity])
                _str16(out, p.kind)
                _str16(out, p.path)
                _opt_str16(out, p.node)
                _opt_u64(out, p.line)
                _opt_u64(out, p.column)
                _bytes32(out, p.message.encode())
        elif isinstance(refusal, NodeCreation):
            _str16(out, refusal.node)
            out += struct.pack("<I", len(refusal.issues))
            for issue in refusal.issues:
                _str16(out, issue.field)
                _str16(out, issue.kind)
                _bytes32(out, issue.message.encode())
        elif isinstance(refusal, NodeStart):
            _str16(out, refusal.node)
            _bytes32(out, refusal.reason.encode())
        else:
            _bytes32(out, refusal.reason.encode())


def _item(out: bytearray, item: Item) -> None:
    out += b"\x00" if item.sequence is None else b"\x01" + struct.pack("<Q", item.sequence)
    out += struct.pack("<I", len(item.metadata))
    for key in sorted(item.metadata):  # the Rust side keeps metadata sorted (BTreeMap)
        _str16(out, key)
        _bytes32(out, item.metadata[key].encode())
    _data(out, item.data)


def encode(message: Message) -> bytes:
    """The bytes of ``message``."""
    out = bytearray(MAGIC)
    out += struct.pack("<BBHHQ", VERSION, _KINDS[type(message)], 0, 0, message.session)
    if isinstance(message, (Open, Opened)):
        _bytes32(out, message.manifest.encode())
    elif isinstance(message, Catalog):
        _bytes32(out, message.catalog.encode())
    elif isinstance(message, Input):
        _item(out, message.item)
    elif isinstance(message, Output):
        _str16(out, message.node)
        _item(out, message.item)
    elif isinstance(message, Error):
        _opt_str16(out, message.node)
        _opt_u64(out, message.sequence)
        _bytes32(out, message.message.encode())
    elif isinstance(message, Closed):
        _ending(out, message.ending)
    elif isinstance(message, Credit):
        out += struct.pack("<I", message.count)
    return bytes(out)


class _Reader:
    def __init__(self, buf: Union[bytes, memoryview]):
        self.buf = memoryview(buf).cast("B")
        self.pos = 0

    def take(self, n: int, name: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise DecodeError(name, self.pos, f"needs {n} bytes, {len(self.buf) - self.pos} left")
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str, name: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size, name))[0]

    def flag(self, name: str) -> bool:
        at = self.pos
        value = self.unpack("<B", name)
        if value not in (0, 1):
            raise DecodeError(name, at, f"presence flag must be 0 or 1, is {value}")
        return value == 1

    def text(self, n: int, name: str) -> str:
        at = self.pos
        try:
            return bytes(self.take(n, name)).decode()
        except UnicodeDecodeError as e:
            raise DecodeError(name, at, f"not UTF-8: {e}") from None

    def str16(self, name: str) -> str:
        return self.text(self.unpack("<H", name), name)

    def str32(self, name: str) -> str:
        return self.text(self.unpack("<I", name), name)

    def opt_u64(self, name: str) -> Optional[int]:
        return self.unpack("<Q", name) if self.flag(name) else None

    def ending(self) -> Ending:
        at = self.pos
        tag = self.unpack("<B", "ending")
        if tag == 1:
            return Completed()
        if tag == 2:
            return Aborted(self.str32("reason"))
        if tag == 3:
            return Refused(self.refusal())
        raise DecodeError("ending", at, f"unknown ending {tag}")

    def refusal(self) -> Refusal:
        at = self.pos
        tag = self.unpack("<B", "refusal")
        if tag == 1:
            return InvalidManifest([self.problem() for _ in range(self.unpack("<I", "problems"))])
        if tag == 2:
            node = self.str16("node")
            issues = []
            for _ in range(self.unpack("<I", "issues")):
                name = self.str16("issue field")
                kind = self.str16("issue kind")
                issues.append(ParamIssue(name, kind, self.str32("issue message")))
            return NodeCreation(node, issues)
        if tag == 3:
            node = self.str16("node")
            return NodeStart(node, self.str32("reason"))
        if tag == 4:
            return RefusedOther(self.str32("reason"))
        raise DecodeError("refusal", at, f"unknown refusal {tag}")

    def problem(self) -> Problem:
        at = self.pos
        severity = {1: "error", 2: "warning"}.get(self.unpack("<B", "problem severity"))
        if severity is None:
            raise DecodeError("problem severity", at, "unknown severity")
        kind = self.str16("problem kind")
        path = self.str16("problem path")
        node = self.str16("problem node") if self.flag("problem node") else None
        line = self.opt_u64("problem line")
        column = self.opt_u64("problem column")
        return Problem(severity, kind, path, node, line, column, self.str32("problem message"))

    def item(self) -> Item:
        sequence = self.unpack("<Q", "sequence") if self.flag("sequence") else None
        metadata = {}
        for _ in range(self.unpack("<I", "metadata")):
            key = self.str16("metadata key")
            metadata[key] = self.str32("metadata value")
        return Item(self.data(), sequence, metadata)

    def data(self) -> Data:
        at = self.pos
        tag = self.unpack("<B", "data tag")
        if tag == 1:
            rate = self.unpack("<I", "sample_rate")
            channels = self.unpack("<H", "channels")
            stream_id = self.str16("stream_id") if self.flag("stream_id") else None
            timestamp = self.unpack("<Q", "timestamp_us") if self.flag("timestamp_us") else None
            count = self.unpack("<I", "samples")
            self.take((4 - self.pos % 4) % 4, "samples padding")
            samples = np.frombuffer(self.take(count * 4, "samples"), dtype="<f4")
            return Audio(samples, rate, channels, stream_id, timestamp)
        if tag == 2:
            return self.str32("text")
        if tag == 3:
            text_at = self.pos + 4
            text = self.str32("json")
            try:
                return Json(json.loads(text))
            except ValueError as e:
                raise DecodeError("json", text_at, f"not JSON: {e}") from None
        if tag == 4:
            return bytes(self.take(self.unpack("<I", "binary"), "binary"))
        if tag == 5:
            dtype_at = self.pos
            name = self.str16("dtype")
            if name not in _DTYPES:
                raise DecodeError("dtype", dtype_at, f"unknown dtype {name!r}")
            shape = tuple(self.unpack("<Q", "shape") for _ in range(self.unpack("<B", "shape")))
            bytes_at = self.pos
            raw = self.take(self.unpack("<I", "tensor bytes"), "tensor bytes")
            itemsize = np.dtype(_DTYPES[name]).itemsize
            if int(np.prod(shape, dtype=np.int64)) * itemsize != len(raw):
                raise DecodeError("tensor bytes", bytes_at, f"tensor of shape {list(shape)} and dtype {name} needs {int(np.prod(shape)) * itemsize} bytes, has {len(raw)}")
            return Tensor(np.frombuffer(raw, dtype=_DTYPES[name]).reshape(shape))
        raise DecodeError("data tag", at, f"unknown data tag {tag}")


def decode(buf: Union[bytes, memoryview]) -> Message:
    """The message in ``buf``. Audio samples and tensors are views into ``buf``, not copies."""
    r = _Reader(buf)
    if bytes(r.take(2, "magic")) != MAGIC:
        raise DecodeError("magic", 0, "expected b'RM'")
    version = r.unpack("<B", "version")
    if version != VERSION:
        raise DecodeError("version", 2, f"version {version} is not {VERSION}")
    kind = r.unpack("<B", "kind")
    r.unpack("<H", "flags")
    r.unpack("<H", "reserved")
    session = r.unpack("<Q", "session")
    if kind == 1:
        message: Message = Open(session, r.str32("manifest"))
    elif kind == 2:
        message = Input(session, r.item())
    elif kind == 3:
        message = EndInput(session)
    elif kind == 4:
        message = Close(session)
    elif kind == 5:
        message = Credit(session, r.unpack("<I", "count"))
    elif kind == 16:
        message = Opened(session, r.str32("manifest"))
    elif kind == 17:
        node = r.str16("node")
        message = Output(session, node, r.item())
    elif kind == 18:
        node = r.str16("node") if r.flag("node") else None
        sequence = r.opt_u64("sequence")
        message = Error(session, node, sequence, r.str32("message"))
    elif kind == 19:
        message = Closed(session, r.ending())
    elif kind == 20:
        message = Done(session)
    elif kind == 6:
        message = Describe(session)
    elif kind == 21:
        message = Catalog(session, r.str32("catalog"))
    else:
        raise DecodeError("kind", 3, f"unknown message kind {kind}")
    if r.pos != len(r.buf):
        raise DecodeError("end", r.pos, f"{len(r.buf) - r.pos} trailing bytes")
    return message
