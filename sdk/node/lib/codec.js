'use strict';
// The hot path of the protocol without protobufjs' general machinery: a decoder for
// Invoke frames straight into the plain event object handed to handlers, and encoders
// that write Result and Log frames (length prefix included) into one Buffer.
//
// Both produce exactly what the protobufjs path produces (tests compare them byte for
// byte and field for field). The decoder takes only the plain, canonical shape of an
// Invoke; for anything else (unknown fields, a wire type that does not match the
// field, a value that runs past its message, a malformed varint) it returns null and
// the caller decodes the frame with protobufjs, which then gives its usual answer or
// error. The handshake (Hello, HelloAck) is coded here too, so that a worker answers
// its first invocation without loading protobufjs at all (start-up time is part of
// every cold start): protobufjs is required on first use only.

const { MAX_FRAME_BYTES, ProtocolError } = require('./frames');

// uint64 ids are Longs of long.js, the class protobufjs itself uses when it is there,
// made on first use only: loading long.js compiles a WebAssembly module, a measurable
// part of a cold start, and the worker's own path carries ids as numbers below 2^32.
let LongClass; // undefined: not loaded yet; null: neither long nor protobufjs has it
function longClass() {
  if (LongClass === undefined) {
    try {
      LongClass = require('long');
    } catch {
      LongClass = require('protobufjs').util.Long || null;
    }
  }
  return LongClass;
}
// A uint64 from its 32-bit halves, as protobufjs decodes it (a Long, or a plain
// { low, high, unsigned } without long.js).
function toLong(lo, hi) {
  const Long = longClass();
  return Long ? new Long(lo | 0, hi | 0, true) : { low: lo | 0, high: hi | 0, unsigned: true };
}
let longBits = null; // protobufjs' LongBits, for an id given as a number string or an odd number
function LongBitsFrom(v) {
  if (longBits === null) longBits = require('protobufjs').util.LongBits;
  return longBits.from(v);
}
const TWO_32 = 4294967296;

// ---- decoding ----

// The last varint read: its low and high 32 bits (unsigned), and its length in bytes.
let LO = 0;
let HI = 0;
let VLEN = 0;

// Reads the varint at b[p] (not past `end`); returns the position after it, or -1 when
// it is longer than 10 bytes or runs past `end`.
function varint(b, p, end) {
  const start = p;
  let lo = 0;
  let hi = 0;
  let byte;
  for (let shift = 0; shift < 28; shift += 7) {
    if (p >= end) return -1;
    byte = b[p++];
    lo |= (byte & 127) << shift;
    if (byte < 128) {
      LO = lo >>> 0;
      HI = 0;
      VLEN = p - start;
      return p;
    }
  }
  if (p >= end) return -1;
  byte = b[p++];
  lo |= (byte & 15) << 28;
  hi = (byte & 127) >> 4;
  if (byte < 128) {
    LO = lo >>> 0;
    HI = hi;
    VLEN = p - start;
    return p;
  }
  for (let shift = 3; shift < 32; shift += 7) {
    if (p >= end) return -1;
    byte = b[p++];
    hi |= (byte & 127) << shift;
    if (byte < 128) {
      LO = lo >>> 0;
      HI = hi >>> 0;
      VLEN = p - start;
      return p;
    }
  }
  return -1;
}

// A varint of a 32-bit field: protobufjs reads 5 bytes and skips 5 more, so only 1-5
// or exactly 10 bytes are taken here (LO holds the value).
function varint32(b, p, end) {
  p = varint(b, p, end);
  return p >= 0 && VLEN > 5 && VLEN !== 10 ? -1 : p;
}

// LO/HI as a signed 64-bit number (protobufjs' LongBits.toNumber()).
function int64Number() {
  if (HI >>> 31) {
    const lo = ~LO + 1 >>> 0;
    let hi = ~HI >>> 0;
    if (!lo) hi = hi + 1 >>> 0;
    return -(lo + hi * TWO_32);
  }
  return LO + HI * TWO_32;
}

// The position after a length-delimited field's length, with LEN_END its end; -1 if
// it runs past `end`.
let LEN_END = 0;
function lengthDelimited(b, p, end) {
  const first = b[p];
  if (first < 128 && p < end) {
    LEN_END = p + 1 + first;
    return LEN_END > end ? -1 : p + 1;
  }
  p = varint32(b, p, end);
  if (p < 0 || HI !== 0 || VLEN > 5) return -1;
  LEN_END = p + LO;
  return LEN_END > end ? -1 : p;
}

// An empty field is a fresh empty Buffer (as protobufjs makes it), a view of this one
// (cheaper than Buffer.alloc(0)).
const EMPTY = Buffer.alloc(0);

function bytesOf(b, s, e) {
  return s === e ? EMPTY.subarray(0, 0) : b.subarray(s, e);
}

// Strings that usually repeat from event to event (source, type, topic, ...) are
// decoded once and then recognised by their bytes: slot -> [bytes, string].
const SAME_MAX = 48;
const sameBytes = [];
const sameString = [];

function repeatedString(b, s, e, slot) {
  const n = e - s;
  if (n === 0) return '';
  if (n > SAME_MAX) return b.utf8Slice(s, e);
  const known = sameBytes[slot];
  if (known !== undefined && known.length === n) {
    let i = 0;
    while (i < n && known[i] === b[s + i]) i++;
    if (i === n) return sameString[slot];
  }
  const str = b.utf8Slice(s, e);
  const copy = new Uint8Array(n);
  for (let i = 0; i < n; i++) copy[i] = b[s + i];
  sameBytes[slot] = copy;
  sameString[slot] = str;
  return str;
}

// Extension { string name = 1; string value = 2; } and Header { string name = 1;
// bytes value = 2; } as Event.toObject({ defaults: true }) builds them; null if not plain.
function decodePair(b, p, end, bytesValue) {
  let name = '';
  let value = null;
  while (p < end) {
    const tag = b[p++];
    if (tag === 0x0a || tag === 0x12) {
      p = lengthDelimited(b, p, end);
      if (p < 0) return null;
      const e = LEN_END;
      if (tag === 0x0a) name = b.utf8Slice(p, e);
      else value = bytesValue ? bytesOf(b, p, e) : b.utf8Slice(p, e);
      p = e;
    } else {
      return null;
    }
  }
  if (value === null) value = bytesValue ? EMPTY.subarray(0, 0) : '';
  return { name, value };
}

// Decodes a sluice.v1.Event from b[p, end) into the object
// Event.toObject(Event.decode(...), { longs: Number, defaults: true, arrays: true })
// gives (same keys, same order, same values); null if it is not plain.
function decodeEvent(b, p, end) {
  const ev = {
    extensions: [],
    headers: [],
    id: '',
    source: '',
    specVersion: '',
    type: '',
    dataContentType: '',
    dataSchema: '',
    subject: '',
    time: '',
    data: null,
    broker: '',
    topic: '',
    partition: 0,
    offset: 0,
    key: null,
    brokerTimestampMs: 0,
    attempt: 0,
    firstAttemptTimeMs: 0,
  };
  while (p < end) {
    let tag = b[p];
    if (tag < 128) {
      p++;
    } else {
      p = varint32(b, p, end);
      if (p < 0) return null;
      tag = LO;
    }
    const wire = tag & 7;
    const field = tag >>> 3;
    if (wire === 2) {
      p = lengthDelimited(b, p, end);
      if (p < 0) return null;
      const e = LEN_END;
      switch (field) {
        case 1: ev.id = b.utf8Slice(p, e); break;
        case 2: ev.source = repeatedString(b, p, e, 0); break;
        case 3: ev.specVersion = repeatedString(b, p, e, 1); break;
        case 4: ev.type = repeatedString(b, p, e, 2); break;
        case 5: ev.dataContentType = repeatedString(b, p, e, 3); break;
        case 6: ev.dataSchema = repeatedString(b, p, e, 4); break;
        case 7: ev.subject = b.utf8Slice(p, e); break;
        case 8: ev.time = b.utf8Slice(p, e); break;
        case 9: {
          const x = decodePair(b, p, e, false);
          if (x === null) return null;
          ev.extensions.push(x);
          break;
        }
        case 10: ev.data = bytesOf(b, p, e); break;
        case 20: ev.broker = repeatedString(b, p, e, 5); break;
        case 21: ev.topic = repeatedString(b, p, e, 6); break;
        case 24: ev.key = bytesOf(b, p, e); break;
        case 25: {
          const x = decodePair(b, p, e, true);
          if (x === null) return null;
          ev.headers.push(x);
          break;
        }
        default: return null;
      }
      p = e;
    } else if (wire === 0) {
      switch (field) {
        case 22:
          p = varint32(b, p, end);
          if (p < 0) return null;
          ev.partition = LO | 0;
          break;
        case 30:
          p = varint32(b, p, end);
          if (p < 0) return null;
          ev.attempt = LO;
          break;
        case 23:
        case 26:
        case 31: {
          p = varint(b, p, end);
          if (p < 0) return null;
          const n = int64Number();
          if (field === 23) ev.offset = n;
          else if (field === 26) ev.brokerTimestampMs = n;
          else ev.firstAttemptTimeMs = n;
          break;
        }
        default: return null;
      }
    } else {
      return null;
    }
  }
  if (ev.data === null) ev.data = EMPTY.subarray(0, 0);
  if (ev.key === null) ev.key = EMPTY.subarray(0, 0);
  return ev;
}

// The defaults of an Invoke without an event.
function emptyEvent() {
  return decodeEvent(Buffer.alloc(0), 0, 0);
}

// Decodes a frame body b[start, end) that holds only an Invoke:
// { id (a Long, as protobufjs decodes uint64), timeoutMs, event (plain, as above) },
// or null when the frame is not a plain Invoke (the caller then uses protobufjs).
function decodeInvoke(b, start, end) {
  if (b[start] !== 0x1a) return null; // Frame.invoke = 3, length-delimited
  let p = lengthDelimited(b, start + 1, end);
  if (p < 0 || LEN_END !== end) return null;
  let idLo = 0;
  let idHi = 0;
  let timeoutMs = 0;
  let event = null;
  while (p < end) {
    const tag = b[p++];
    if (tag === 0x08) { // id = 1, uint64
      p = varint(b, p, end);
      if (p < 0) return null;
      idLo = LO;
      idHi = HI;
    } else if (tag === 0x12) { // event = 2
      p = lengthDelimited(b, p, end);
      if (p < 0) return null;
      const e = LEN_END;
      event = decodeEvent(b, p, e);
      if (event === null) return null;
      p = e;
    } else if (tag === 0x18) { // timeout_ms = 3, uint32
      p = varint32(b, p, end);
      if (p < 0) return null;
      timeoutMs = LO;
    } else {
      return null;
    }
  }
  return new Invoke(idLo, idHi, timeoutMs, event === null ? emptyEvent() : event);
}

// A decoded Invoke: `id` is the uint64 as protobufjs gives it (a Long, made when read);
// `num` is the id as the encoders below take it without long.js: a number when it is
// below 2^32 (the usual case), else { low, high, unsigned }.
class Invoke {
  constructor(lo, hi, timeoutMs, event) {
    this.lo = lo;
    this.hi = hi;
    this.timeoutMs = timeoutMs;
    this.event = event;
  }

  get id() { return toLong(this.lo, this.hi); }

  get num() { return this.hi === 0 ? this.lo : { low: this.lo | 0, high: this.hi | 0, unsigned: true }; }
}

// Decodes a frame body b[start, end) that holds only a HelloAck:
// { protocolVersion, function } as Frame.decode() gives them, or null when the frame is
// not a plain HelloAck (the caller then uses protobufjs).
function decodeHelloAck(b, start, end) {
  if (b[start] !== 0x12) return null; // Frame.hello_ack = 2, length-delimited
  let p = lengthDelimited(b, start + 1, end);
  if (p < 0 || LEN_END !== end) return null;
  let protocolVersion = 0;
  let fn = '';
  while (p < end) {
    const tag = b[p++];
    if (tag === 0x08) { // protocol_version = 1, uint32
      p = varint32(b, p, end);
      if (p < 0) return null;
      protocolVersion = LO;
    } else if (tag === 0x12) { // function = 2, string
      p = lengthDelimited(b, p, end);
      if (p < 0) return null;
      fn = b.utf8Slice(p, LEN_END);
      p = LEN_END;
    } else {
      return null;
    }
  }
  return { protocolVersion, function: fn };
}

// ---- encoding ----

// Sets LO/HI to the bits of a uint64 field's value and returns true, or returns false
// when the value is one the SDK leaves out (the proto3 default, as prune() does).
function uint64Bits(v) {
  if (typeof v === 'number') {
    if (v === 0) return false;
    if (v > 0 && v < TWO_32 && Number.isInteger(v)) {
      LO = v;
      HI = 0;
      return true;
    }
  } else if (v === undefined || v === null || v === '' || v === false) {
    return false;
  } else if (typeof v === 'object' && typeof v.low === 'number' && typeof v.high === 'number') {
    // a Long, or the { low, high } of a Long (protobufjs without long.js, Invoke.num)
    LO = v.low >>> 0;
    HI = v.high >>> 0;
    return LO !== 0 || HI !== 0;
  }
  const bits = LongBitsFrom(v);
  LO = bits.lo >>> 0;
  HI = bits.hi >>> 0;
  return true;
}

function varintSize(v) { // v: uint32
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

function varint64Size(lo, hi) {
  if (hi === 0) return varintSize(lo);
  return hi < 0x8 ? 5 : hi < 0x400 ? 6 : hi < 0x20000 ? 7 : hi < 0x1000000 ? 8 : hi < 0x80000000 ? 9 : 10;
}

function putVarint(b, p, v) { // v: uint32
  while (v > 127) {
    b[p++] = (v & 127) | 128;
    v >>>= 7;
  }
  b[p++] = v;
  return p;
}

function putVarint64(b, p, lo, hi) {
  while (hi) {
    b[p++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  return putVarint(b, p, lo);
}

function tooBig(n) {
  return new ProtocolError(`frame of ${n} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
}

// A length-prefixed Frame { result: Result { id, status, output, content_type,
// error_message, retry_after_ms } } (no emitted events), byte-exact with
// encodeFrame({ result: prune({...}) }). `output` is a Uint8Array, null or undefined;
// the strings are strings, null or undefined; retryAfterMs a number or undefined.
function encodeResult(id, status, output, contentType, errorMessage, retryAfterMs) {
  const hasId = uint64Bits(id);
  const idLo = LO;
  const idHi = HI;
  let n = 0;
  if (hasId) n += 1 + varint64Size(idLo, idHi);
  if (status) n += 2; // an enum value below 128
  const outLen = output ? output.length : 0;
  if (outLen) n += 1 + varintSize(outLen) + outLen;
  const ctLen = contentType ? Buffer.byteLength(contentType, 'utf8') : 0;
  if (ctLen) n += 1 + varintSize(ctLen) + ctLen;
  const errLen = errorMessage ? Buffer.byteLength(errorMessage, 'utf8') : 0;
  if (errLen) n += 1 + varintSize(errLen) + errLen;
  const retry = retryAfterMs === undefined || retryAfterMs === null || retryAfterMs === 0 || retryAfterMs === false ||
    retryAfterMs === '' ? -1 : retryAfterMs >>> 0;
  if (retry >= 0) n += 1 + varintSize(retry);
  const body = 1 + varintSize(n) + n;
  if (body > MAX_FRAME_BYTES) throw tooBig(body);
  const b = Buffer.allocUnsafe(4 + body);
  b.writeUInt32BE(body, 0);
  b[4] = 0x22; // Frame.result = 4
  let p = putVarint(b, 5, n);
  if (hasId) {
    b[p++] = 0x08;
    p = putVarint64(b, p, idLo, idHi);
  }
  if (status) {
    b[p++] = 0x10;
    b[p++] = status;
  }
  if (outLen) {
    b[p++] = 0x1a;
    p = putVarint(b, p, outLen);
    b.set(output, p);
    p += outLen;
  }
  if (ctLen) {
    b[p++] = 0x22;
    p = putVarint(b, p, ctLen);
    p += b.utf8Write(contentType, p, ctLen);
  }
  if (errLen) {
    b[p++] = 0x2a;
    p = putVarint(b, p, errLen);
    p += b.utf8Write(errorMessage, p, errLen);
  }
  if (retry >= 0) {
    b[p++] = 0x30;
    p = putVarint(b, p, retry);
  }
  return b;
}

// A length-prefixed Frame { log: Log { id, level, message } }, byte-exact with
// encodeFrame({ log: prune({ id, level, message }) }); level is 1-4, message a string.
function encodeLog(id, level, message) {
  const hasId = uint64Bits(id);
  const idLo = LO;
  const idHi = HI;
  let n = 2; // level
  if (hasId) n += 1 + varint64Size(idLo, idHi);
  const msgLen = Buffer.byteLength(message, 'utf8');
  if (msgLen) n += 1 + varintSize(msgLen) + msgLen;
  const body = 1 + varintSize(n) + n;
  if (body > MAX_FRAME_BYTES) throw tooBig(body);
  const b = Buffer.allocUnsafe(4 + body);
  b.writeUInt32BE(body, 0);
  b[4] = 0x32; // Frame.log = 6
  let p = putVarint(b, 5, n);
  if (hasId) {
    b[p++] = 0x08;
    p = putVarint64(b, p, idLo, idHi);
  }
  b[p++] = 0x10;
  b[p++] = level;
  if (msgLen) {
    b[p++] = 0x1a;
    p = putVarint(b, p, msgLen);
    b.utf8Write(message, p, msgLen);
  }
  return b;
}

// A key for a uint64 id (a Long, or the plain { low, high } protobufjs makes without
// Long): a number below 2^32, else "high:low". Cheaper than the decimal string.
function idKey(id) {
  if (typeof id === 'number' && id >= 0 && id < TWO_32 && Number.isInteger(id)) return id;
  if (typeof id !== 'object' || id === null) {
    const bits = LongBitsFrom(id);
    return bits.hi === 0 ? bits.lo >>> 0 : `${bits.hi >>> 0}:${bits.lo >>> 0}`;
  }
  const hi = id.high >>> 0;
  return hi === 0 ? id.low >>> 0 : `${hi}:${id.low >>> 0}`;
}

// A length-prefixed Frame { hello: Hello { protocol_version, sdk, max_inflight, pid } },
// byte-exact with encodeFrame({ hello: prune({...}) }); the numbers are uint32 (0: left
// out), sdk a string.
function encodeHello(protocolVersion, sdk, maxInflight, pid) {
  const sdkLen = sdk ? Buffer.byteLength(sdk, 'utf8') : 0;
  const nums = [[0x08, protocolVersion >>> 0], [0x18, maxInflight >>> 0], [0x20, pid >>> 0]];
  let n = sdkLen ? 1 + varintSize(sdkLen) + sdkLen : 0;
  for (const [, v] of nums) if (v) n += 1 + varintSize(v);
  const body = 1 + varintSize(n) + n;
  const b = Buffer.allocUnsafe(4 + body);
  b.writeUInt32BE(body, 0);
  b[4] = 0x0a; // Frame.hello = 1
  let p = putVarint(b, 5, n);
  if (nums[0][1]) {
    b[p++] = 0x08;
    p = putVarint(b, p, nums[0][1]);
  }
  if (sdkLen) {
    b[p++] = 0x12;
    p = putVarint(b, p, sdkLen);
    p += b.utf8Write(sdk, p, sdkLen);
  }
  for (const [tag, v] of nums.slice(1)) {
    if (!v) continue;
    b[p++] = tag;
    p = putVarint(b, p, v);
  }
  return b;
}

module.exports = { toLong, decodeInvoke, decodeEvent, decodeHelloAck, encodeHello, encodeResult, encodeLog, idKey };
