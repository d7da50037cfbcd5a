'use strict';
// The protobuf messages of schemas/worker.proto (proto/ holds copies; a test keeps them
// equal to schemas/) and the v1 framing: a 4-byte big-endian length, then a Frame.

const path = require('node:path');
const protobuf = require('protobufjs');

const PROTOCOL_VERSION = 1;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

const root = protobuf.loadSync(path.join(__dirname, '..', 'proto', 'worker.proto'));
const Frame = root.lookupType('sluice.v1.Frame');
const Event = root.lookupType('sluice.v1.Event');
const Result = root.lookupType('sluice.v1.Result');
const Log = root.lookupType('sluice.v1.Log');
const Status = Result.lookupEnum('Status').values;
const Level = Log.lookupEnum('Level').values;

class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

function encodeFrame(frame) {
  const body = Frame.encode(frame).finish();
  if (body.length > MAX_FRAME_BYTES) {
    throw new ProtocolError(`frame of ${body.length} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
  }
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

function decodeFrame(body) {
  let frame;
  try {
    frame = Frame.decode(body);
  } catch (e) {
    throw new ProtocolError(`frame of ${body.length} bytes does not parse as sluice.v1.Frame: ${e.message}`);
  }
  if (!frame.kind) {
    throw new ProtocolError(`frame of ${body.length} bytes carries no known kind (not a sluice.v1.Frame?)`);
  }
  return frame;
}

// Splits a growing byte stream into frames. push() returns the complete frames;
// end() throws if the stream stopped inside a frame.
class FrameReader {
  constructor() {
    this.chunks = [];
    this.size = 0;
  }

  push(chunk) {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const frames = [];
    for (;;) {
      if (this.size < 4) break;
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.size)];
      const n = this.chunks[0].readUInt32BE(0);
      if (n > MAX_FRAME_BYTES) {
        throw new ProtocolError(
          `frame length ${n} exceeds the ${MAX_FRAME_BYTES}-byte limit (not a sluice frame stream?)`);
      }
      if (this.size < 4 + n) break; // join the chunks only once the frame is complete
      const buf = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
      frames.push(decodeFrame(buf.subarray(4, 4 + n)));
      const rest = buf.subarray(4 + n);
      this.chunks = rest.length ? [rest] : [];
      this.size = rest.length;
    }
    return frames;
  }

  end() {
    if (this.size === 0) return;
    if (this.size < 4) {
      throw new ProtocolError(`stream ended inside a frame header (${this.size} of 4 bytes)`);
    }
    const buf = Buffer.concat(this.chunks, this.size);
    throw new ProtocolError(`stream ended inside a frame (${this.size - 4} of ${buf.readUInt32BE(0)} bytes)`);
  }
}

// Splits a complete byte string into frames.
function readFrames(data) {
  const r = new FrameReader();
  const frames = r.push(Buffer.from(data));
  r.end();
  return frames;
}

module.exports = {
  PROTOCOL_VERSION, MAX_FRAME_BYTES, Frame, Event, Status, Level, ProtocolError,
  encodeFrame, decodeFrame, FrameReader, readFrames,
};
