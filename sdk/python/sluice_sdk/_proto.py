"""The protobuf messages of schemas/worker.proto and the v1 framing.

The message classes are built at import time from schema.binpb, a FileDescriptorSet that
`protoc --include_imports --descriptor_set_out` makes from schemas/worker.proto (a test
checks that the checked-in file matches the schemas). Building from the descriptor set
avoids generated-code/runtime version skew: any protobuf >= 4.21 works.
"""

import os
import struct

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct(">I")

_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "schema.binpb"), "rb") as _f:
    _fds = descriptor_pb2.FileDescriptorSet.FromString(_f.read())
_pool = descriptor_pool.DescriptorPool()
for _file in _fds.file:
    _pool.Add(_file)


def _cls(name):
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName("sluice.v1." + name))


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


def encode_frame(frame):
    """Serialize a Frame with its 4-byte big-endian length prefix."""
    body = frame.SerializeToString()
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")
    return _HEADER.pack(len(body)) + body


def _read_exact(stream, n):
    parts = []
    got = 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def decode_frame(body):
    """Parse one frame body (without its length prefix); raises ProtocolError."""
    frame = Frame()
    try:
        frame.ParseFromString(body)
    except DecodeError as e:
        raise ProtocolError(f"frame of {len(body)} bytes does not parse as sluice.v1.Frame: {e}") from None
    if frame.WhichOneof("kind") is None:
        raise ProtocolError(f"frame of {len(body)} bytes carries no known kind (not a sluice.v1.Frame?)")
    return frame


def read_frame(stream):
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
        if not self._parts and len(chunk) >= 4 and _HEADER.unpack_from(chunk)[0] == len(chunk) - 4:
            return [decode_frame(chunk[4:])]  # exactly one frame
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
            frames.append(decode_frame(buf[pos + 4:pos + 4 + n]))
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


def read_frames(data):
    """Split a byte string of concatenated frames into Frame messages."""
    import io

    stream = io.BytesIO(data)
    frames = []
    while True:
        frame = read_frame(stream)
        if frame is None:
            return frames
        frames.append(frame)
