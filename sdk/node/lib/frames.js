'use strict';
// The protobuf messages of schemas/worker.proto and the v1 framing: a 4-byte big-endian
// length, then a Frame. A packed SDK carries the .proto files in proto/ (npm prepack,
// `sluice new`); in the checkout they are read from schemas/, their one copy.

const fs = require('node:fs');
const path = require('node:path');

const PROTOCOL_VERSION = 1;
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

// The message types, loaded on first use: protobufjs and parsing the .proto files are
// most of the SDK's start-up, and the usual path (handshake, plain Invokes, Results
// without emitted events, Logs) never needs them (codec.js).
let types = null;
function protoDir() {
  const packed = path.join(__dirname, '..', 'proto');
  return fs.existsSync(path.join(packed, 'worker.proto'))
    ? packed : path.join(__dirname, '..', '..', '..', 'schemas');
}
function loaded() {
  if (types === null) {
    const root = require('protobufjs').loadSync(path.join(protoDir(), 'worker.proto'));
    types = { Frame: root.lookupType('sluice.v1.Frame'), Event: root.lookupType('sluice.v1.Event') };
  }
  return types;
}
// Result.Status and Log.Level of worker.proto (a test checks them against it).
const Status = { STATUS_UNSPECIFIED: 0, OK: 1, ERROR: 2, REJECTED: 3 };
const Level = { LEVEL_UNSPECIFIED: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ProtocolError';
  }
}

function encodeFrame(frame) {
  const body = loaded().Frame.encode(frame).finish();
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
    frame = loaded().Frame.decode(body);
  } catch (e) {
    throw new ProtocolError(`frame of ${body.length} bytes does not parse as sluice.v1.Frame: ${e.message}`);
  }
  if (!frame.kind) {
    throw new ProtocolError(`frame of ${body.length} bytes carries no known kind (not a sluice.v1.Frame?)`);
  }
  return frame;
}

// Splits a growing byte stream into frames. push() returns the complete frames;
// end() throws if the stream stopped inside a frame. split() hands out the bodies
// without decoding them (the worker's hot path).
//
// A chunk is scanned in place; only the bytes of an incomplete frame are kept, as a
// list of chunks joined once, when the frame is complete (so a large frame that
// arrives in many chunks is copied once, not once per chunk).
class FrameReader {
  constructor() {
    this.chunks = []; // the start of an incomplete frame
    this.size = 0; // bytes in this.chunks
    this.need = 4; // bytes needed before this.chunks can be scanned again
  }

  // Calls sink.onBody(buf, start, end) for each complete frame body buf[start, end),
  // in order, until it returns false. Throws ProtocolError on a length above the limit.
  split(chunk, sink) {
    let buf = chunk;
    if (this.size !== 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size < this.need) return;
      buf = Buffer.concat(this.chunks, this.size);
      this.chunks = [];
      this.size = 0;
    }
    const len = buf.length;
    let off = 0;
    while (len - off >= 4) {
      const n = buf.readUInt32BE(off);
      if (n > MAX_FRAME_BYTES) {
        throw new ProtocolError(
          `frame length ${n} exceeds the ${MAX_FRAME_BYTES}-byte limit (not a sluice frame stream?)`);
      }
      if (len - off - 4 < n) break;
      const start = off + 4;
      off = start + n;
      if (sink.onBody(buf, start, off) === false) return;
    }
    if (off < len) {
      const rest = off === 0 ? buf : buf.subarray(off);
      this.chunks.push(rest);
      this.size = rest.length;
      this.need = rest.length >= 4 ? 4 + rest.readUInt32BE(0) : 4;
    }
  }

  push(chunk) {
    const frames = [];
    this.split(chunk, { onBody: (buf, start, end) => { frames.push(decodeFrame(buf.subarray(start, end))); } });
    return frames;
  }

  end() {
    if (this.size === 0) return;
    if (this.size < 4) {
      throw new ProtocolError(`stream ended inside a frame header (${this.size} of 4 bytes)`);
    }
    throw new ProtocolError(`stream ended inside a frame (${this.size - 4} of ${this.need - 4} bytes)`);
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
  PROTOCOL_VERSION, MAX_FRAME_BYTES, Status, Level, ProtocolError,
  encodeFrame, decodeFrame, FrameReader, readFrames,
  get Frame() { return loaded().Frame; },
  get Event() { return loaded().Event; },
};
