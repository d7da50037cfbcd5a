// sluice-sdk as an ES module (package.json "exports" → "import"): the same objects as
// the CommonJS index.js, as named exports and as the default export.
//
//   import { run, Reject } from 'sluice-sdk';
//   run(async (event, ctx) => event.data.toString().toUpperCase());
import sdk from './index.js';

export const {
  VERSION, SDK_NAME, PROTOCOL_VERSION, MAX_FRAME_BYTES, ProtocolError, Frame, Event, Status, Level,
  encodeFrame, decodeFrame, readFrames, FrameReader, Reject, Retry, Response, Context, Worker,
  newEvent, run,
} = sdk;
export default sdk;
