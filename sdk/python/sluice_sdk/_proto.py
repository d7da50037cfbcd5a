"""The protobuf messages of schemas/worker.proto and the v1 framing.

The message classes are built at import time from schema.binpb, a FileDescriptorSet that
`protoc --include_imports --descriptor_set_out` makes from schemas/worker.proto (a test
checks that the checked-in file matches the schemas). Building from the descriptor set
avoids generated-code/runtime version skew: any protobuf >= 4.21 works. The set is split
into its files by hand (it is one repeated bytes field), so that start-up does not import
descriptor_pb2, the largest module of protobuf. Type checkers see the typed declarations
under TYPE_CHECKING below instead (the package has py.typed).
"""

from __future__ import annotations

import os
import struct
from typing import IO, TYPE_CHECKING, Any, Generic, Iterator, List, Optional, TypeVar

from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")


def _varint(buf: bytes, pos: int) -> "tuple[int, int]":
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("schema.binpb: a truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _descriptor_files(fds: bytes) -> List[bytes]:
    """The serialized FileDescriptorProtos of a FileDescriptorSet (field 1, repeated)."""
    files = []
    pos = 0
    while pos < len(fds):
        key, pos = _varint(fds, pos)
        if key != (1 << 3 | 2):
            raise ValueError(f"schema.binpb: unexpected field key {key} (not a FileDescriptorSet?)")
        size, pos = _varint(fds, pos)
        if pos + size > len(fds):
            raise ValueError("schema.binpb: a file descriptor runs past the end")
        files.append(fds[pos:pos + size])
        pos += size
    return files


_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "schema.binpb"), "rb") as _f:
    _fds = _f.read()
_pool = descriptor_pool.DescriptorPool()
for _file in _descriptor_files(_fds):
    _pool.AddSerializedFile(_file)


def _cls(name: str) -> Any:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName("sluice.v1." + name))


if TYPE_CHECKING:
    _M = TypeVar("_M", bound="_Message")
    _T = TypeVar("_T")

    class _Message:
        """What every protobuf message offers (google.protobuf.message.Message)."""

        def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...
        def ParseFromString(self, data: bytes) -> int: ...
        def HasField(self, field_name: str) -> bool: ...
        def WhichOneof(self, oneof_group: str) -> Optional[str]: ...
        def CopyFrom(self: _M, other_msg: _M) -> None: ...
        def Clear(self) -> None: ...
        @classmethod
        def FromString(cls: type[_M], s: bytes) -> _M: ...

    class _Repeated(Generic[_T]):
        """A repeated message field."""

        def __iter__(self) -> Iterator[_T]: ...
        def __len__(self) -> int: ...
        def __getitem__(self, index: int) -> _T: ...
        def add(self, **kwargs: Any) -> _T: ...
        def append(self, value: _T) -> None: ...
        def extend(self, values: Any) -> None: ...

    class Header(_Message):
        """A broker header (sluice.v1.Header)."""

        name: str
        value: bytes

        def __init__(self, *, name: str = ..., value: bytes = ...) -> None: ...

    class Extension(_Message):
        """A CloudEvents extension attribute (sluice.v1.Extension)."""

        name: str
        value: str

        def __init__(self, *, name: str = ..., value: str = ...) -> None: ...

    class Event(_Message):
        """The CloudEvents envelope sluice delivers (schemas/event.proto, sluice.v1.Event)."""

        id: str
        source: str
        spec_version: str
        type: str
        data_content_type: str
        data_schema: str
        subject: str
        time: str
        extensions: _Repeated[Extension]
        data: bytes
        broker: str
        topic: str
        partition: int
        offset: int
        key: bytes
        headers: _Repeated[Header]
        broker_timestamp_ms: int
        attempt: int
        first_attempt_time_ms: int

        def __init__(self, *, id: str = ..., source: str = ..., spec_version: str = ...,
                     type: str = ..., data_content_type: str = ..., data_schema: str = ...,
                     subject: str = ..., time: str = ..., extensions: Any = ...,
                     data: bytes = ..., broker: str = ..., topic: str = ...,
                     partition: int = ..., offset: int = ..., key: bytes = ...,
                     headers: Any = ..., broker_timestamp_ms: int = ..., attempt: int = ...,
                     first_attempt_time_ms: int = ...) -> None: ...

    class Frame(_Message):
        """One frame of protocol v1 (sluice.v1.Frame; `kind` is the oneof). Its fields
        are not part of the handler API: they are Any here."""

        def __init__(self, **fields: Any) -> None: ...
        def __getattr__(self, name: str) -> Any: ...

    # the other messages of worker.proto, used inside the SDK only
    Hello: Any
    HelloAck: Any
    Invoke: Any
    Result: Any
    Cancel: Any
    Log: Any
    Goodbye: Any
else:
    Event = _cls("Event")
    Header = _cls("Header")
    Extension = _cls("Extension")
    Hello = _cls("Hello")
    HelloAck = _cls("HelloAck")
    Invoke = _cls("Invoke")
    Result = _cls("Result")
    Cancel = _cls("Cancel")
    Log = _cls("Log")
    Goodbye = _cls("Goodbye")
    Frame = _cls("Frame")


class ProtocolError(Exception):
    """A frame that breaks protocol v1: bad length, does not parse, unexpected kind."""


def encode_frame(frame: Frame) -> bytes:
    """Serialize a Frame with its 4-byte big-endian length prefix."""
    body = frame.SerializeToString()
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return _HEADER.pack(len(body)) + body


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    parts = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def decode_frame(body: bytes) -> Frame:
    """Parse one frame body (without its length prefix); raises ProtocolError."""
    frame = Frame()
    try:
        frame.ParseFromString(body)
    except DecodeError as e:
        raise ProtocolError(f"frame of {len(body)} bytes does not parse as sluice.v1.Frame: {e}") from None
    if frame.WhichOneof("kind") is None:
        raise ProtocolError(f"frame of {len(body)} bytes carries no known kind (not a sluice.v1.Frame?)")
    return frame


_parse_invoke = Invoke.FromString


def invoke_of(body: bytes) -> Optional[Invoke]:
    """The Invoke of a frame body that is Frame.invoke and nothing else (what sluice
    sends), parsed without a Frame around it: the same message decode_frame(body).invoke
    gives, for less. None for any other body (decode_frame it); raises ProtocolError."""
    size = len(body)
    if size < 3 or body[0] != 0x1A:  # field 3 (invoke), length-delimited
        return None
    n = body[1]
    if n < 0x80:  # the length of the Invoke, a varint of 1 or 2 bytes below 16 KiB
        off = 2
    elif body[2] < 0x80:
        n = n & 0x7F | body[2] << 7
        off = 3
    else:
        n = shift = 0
        for off in range(1, min(size, 6)):
            n |= (body[off] & 0x7F) << shift
            shift += 7
            if body[off] < 0x80:
                break
        else:
            return None
        off += 1
    if off + n != size:
        return None
    try:
        return _parse_invoke(body[off:])
    except DecodeError as e:
        raise ProtocolError(f"frame of {len(body)} bytes does not parse as sluice.v1.Frame: {e}") from None


def read_frame(stream: IO[bytes]) -> Optional[Frame]:
    """Read one frame from a binary stream; None at a clean end of stream."""
    head = _read_exact(stream, 4)
    if not head:
        return None
    if len(head) < 4:
        raise ProtocolError(f"stream ended inside a frame header ({len(head)} of 4 bytes)")
    (n,) = _HEADER.unpack(head)
    if n > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame length {n} exceeds the {MAX_FRAME_BYTES}-byte limit (not a sluice frame stream?)")
    body = _read_exact(stream, n)
    if len(body) < n:
        raise ProtocolError(f"stream ended inside a frame ({len(body)} of {n} bytes)")
    return decode_frame(body)


class FrameSplitter:
    """Splits a byte stream that arrives in chunks into frames.

    A chunk that holds whole frames (the usual case) is sliced directly; the bytes of a
    frame that spans chunks are kept as a list and joined once, when it is complete."""

    def __init__(self):
        self._parts = []  # bytes of an incomplete frame
        self._have = 0  # their total length
        self._need = 0  # the length of that frame with its header, once known

    def push(self, chunk):
        """Add bytes; return the frames now complete (raises ProtocolError)."""
        return [decode_frame(body) for body in self.split(chunk)]

    def split(self, chunk):
        """Add bytes; return the bodies of the frames now complete, not parsed yet
        (raises ProtocolError for a length over the limit)."""
        if not self._parts and len(chunk) >= 4 and _HEADER.unpack_from(chunk)[0] == len(chunk) - 4:
            return [chunk[4:]]  # exactly one frame
        if self._parts:
            self._parts.append(chunk)
            self._have += len(chunk)
            if self._have < self._need:
                return []
            buf = b"".join(self._parts)
            self._parts = []
        else:
            buf = chunk
        frames = []
        pos = 0
        end = len(buf)
        while end - pos >= 4:
            (n,) = _HEADER.unpack_from(buf, pos)
            if n > MAX_FRAME_BYTES:
                raise ProtocolError(f"frame length {n} exceeds the {MAX_FRAME_BYTES}-byte limit "
                                    "(not a sluice frame stream?)")
            if end - pos - 4 < n:
                self._need = 4 + n
                break
            frames.append(buf[pos + 4:pos + 4 + n])
            pos += 4 + n
        else:
            self._need = 4  # the header itself, if any of it arrived
        if pos < end:
            self._parts.append(buf[pos:])
            self._have = end - pos
        return frames

    def end(self):
        """The stream ended: raises ProtocolError if it stopped inside a frame."""
        left = b"".join(self._parts)
        if not left:
            return
        if len(left) < 4:
            raise ProtocolError(f"stream ended inside a frame header ({len(left)} of 4 bytes)")
        (n,) = _HEADER.unpack_from(left, 0)
        raise ProtocolError(f"stream ended inside a frame ({len(left) - 4} of {n} bytes)")


def read_frames(data: bytes) -> List[Frame]:
    """Split a byte string of concatenated frames into Frame messages."""
    import io

    stream = io.BytesIO(data)
    frames: List[Frame] = []
    while True:
        frame = read_frame(stream)
        if frame is None:
            return frames
        frames.append(frame)
