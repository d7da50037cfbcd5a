"""sluice-sdk: write sluice functions in Python (stdio worker protocol v1).

    import sluice_sdk as sluice

    def handle(event, ctx):
        return event.data.upper()

    sluice.run(handle)
"""

from ._proto import (PROTOCOL_VERSION, MAX_FRAME_BYTES, Event, Frame, ProtocolError,
                     decode_frame, encode_frame, read_frame, read_frames)
from ._version import __version__
from ._worker import SDK_NAME, Context, Handler, Output, Reject, Response, Retry, Worker, new_event, run

__all__ = ["__version__", "PROTOCOL_VERSION", "MAX_FRAME_BYTES", "SDK_NAME", "Event", "Frame", "Context",
           "Handler", "Output", "Reject", "Retry", "Response", "ProtocolError", "Worker", "new_event", "run",
           "decode_frame", "encode_frame", "read_frame", "read_frames"]
