'use strict';
// sluice-sdk: write sluice functions in Node.js (stdio worker protocol v1).
//
//   const sluice = require('sluice-sdk');
//   sluice.run(async (event, ctx) => event.data.toString().toUpperCase());

const frames = require('./lib/frames');
const worker = require('./lib/worker');

module.exports = {
  PROTOCOL_VERSION: frames.PROTOCOL_VERSION,
  MAX_FRAME_BYTES: frames.MAX_FRAME_BYTES,
  ProtocolError: frames.ProtocolError,
  get Frame() { return frames.Frame; }, // loaded on first use (start-up time)
  get Event() { return frames.Event; },
  Status: frames.Status,
  Level: frames.Level,
  encodeFrame: frames.encodeFrame,
  decodeFrame: frames.decodeFrame,
  readFrames: frames.readFrames,
  FrameReader: frames.FrameReader,
  ...worker,
};
