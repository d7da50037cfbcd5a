'use strict';
// The hot-path codec (lib/codec.js) against protobufjs: same events, same bytes.
const test = require('node:test');
const assert = require('node:assert/strict');
const sluice = require('..');
const codec = require('../lib/codec');
const { fixture } = require('./helpers');

const Long = require('protobufjs').util.Long;
const Result = sluice.Frame.lookupType('sluice.v1.Result');
const OPTS = { longs: Number, defaults: true, arrays: true };

// What the protobufjs path makes of a frame body (the reference), or the error it throws.
function reference(body) {
  let frame;
  try {
    frame = sluice.decodeFrame(body);
  } catch (e) {
    return { error: e };
  }
  if (frame.kind !== 'invoke') return { other: frame.kind };
  const inv = frame.invoke;
  return { id: inv.id, timeoutMs: inv.timeoutMs, event: sluice.Event.toObject(inv.event || {}, OPTS) };
}

// decodeInvoke either declines (null) or agrees with protobufjs exactly.
function checkBody(body, { expectFast = null } = {}) {
  const fast = codec.decodeInvoke(body, 0, body.length);
  const ref = reference(body);
  if (expectFast === true) assert.notEqual(fast, null, `the fast path declined ${body.toString('hex')}`);
  if (expectFast === false) assert.equal(fast, null, `the fast path took ${body.toString('hex')}`);
  if (fast === null) return { fast, ref };
  assert.ok(!ref.error, `fast path accepted what protobufjs rejects (${ref.error && ref.error.message}): ` +
                        body.toString('hex'));
  assert.equal(ref.other, undefined);
  assert.ok(fast.id instanceof Long && fast.id.unsigned);
  assert.equal(fast.id.toString(), Long.fromValue(ref.id).toUnsigned().toString());
  assert.equal(fast.timeoutMs, ref.timeoutMs);
  assert.deepStrictEqual(Object.keys(fast.event), Object.keys(ref.event));
  assert.deepStrictEqual(fast.event, ref.event);
  return { fast, ref };
}

function body(frame) {
  return sluice.encodeFrame(frame).subarray(4);
}

// A small deterministic PRNG (mulberry32).
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('fast Invoke decoding equals protobufjs on the fixtures', () => {
  for (const name of ['invoke', 'invoke_fanout', 'invoke_poison']) {
    const { fast } = checkBody(fixture(name).subarray(4), { expectFast: true });
    if (name === 'invoke') assert.equal(fast.id.toString(), '9007199254740993');
  }
});

test('fast Invoke decoding equals protobufjs on edge values', () => {
  const events = [
    undefined,
    {},
    { id: 'x', data: Buffer.alloc(0), key: Buffer.alloc(0) },
    { partition: -1, offset: -1, brokerTimestampMs: -5, firstAttemptTimeMs: Number.MAX_SAFE_INTEGER },
    { partition: 2147483647, offset: '-9223372036854775808', attempt: 4294967295 },
    { partition: -2147483648, offset: '9223372036854775807', brokerTimestampMs: 4294967296 },
    { id: 'héllo ✓ 日本 🎉', source: 'x'.repeat(200), type: 'y'.repeat(48), topic: 'z'.repeat(49) },
    { extensions: [{ name: 'a', value: '' }, { name: '', value: 'b' }, {}], headers: [{ name: 'h' }, { value: Buffer.from([0]) }, {}] },
    { data: Buffer.alloc(300, 7), key: Buffer.from([0xff, 0x00]) },
    { data: Buffer.alloc(70000, 1) },
  ];
  const ids = [0, 1, 127, 128, 4294967295, 4294967296, '9007199254740993', '18446744073709551615'];
  for (const event of events) {
    for (const id of ids) {
      for (const timeoutMs of [0, 30000, 4294967295]) {
        checkBody(body({ invoke: { id, event, timeoutMs } }), { expectFast: true });
      }
    }
  }
  // The same event twice: the repeated-string memory answers the second time.
  const b = body({ invoke: { id: 3, event: { source: '/s', type: 't', topic: 'in', broker: 'local' } } });
  checkBody(b, { expectFast: true });
  checkBody(b, { expectFast: true });
  checkBody(body({ invoke: { id: 3, event: { source: '/r', type: 'u', topic: 'im', broker: 'locam' } } }),
            { expectFast: true });
});

test('fast Invoke decoding declines what is not plain, and protobufjs decides', () => {
  const ok = Buffer.from(body({ invoke: { id: 5, event: { id: 'e', partition: -1 } } }));
  const inner = ok.subarray(2); // Invoke (the frame is 1a <len> Invoke, len < 128)
  const frame = (inv) => Buffer.concat([Buffer.from([0x1a, inv.length]), inv]);
  const cases = [
    // an unknown Invoke field (9, varint) and an unknown Event field (15, varint)
    [frame(Buffer.concat([inner, Buffer.from([0x48, 0x01])])), false],
    [frame(Buffer.concat([Buffer.from([0x08, 0x05, 0x12, 0x02, 0x78, 0x01])])), false],
    // id with wire type 2
    [frame(Buffer.from([0x0a, 0x01, 0x05])), false],
    // a varint that runs past the end, an 11-byte varint
    [frame(Buffer.from([0x08, 0xff])), false],
    [frame(Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), false],
    // an event whose length runs past the Invoke
    [frame(Buffer.from([0x12, 0x05, 0x0a, 0x01])), false],
    // a 7-byte varint for the 32-bit timeout (protobufjs reads 5 and skips 5)
    [frame(Buffer.from([0x18, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x08, 0x01, 0x08, 0x02])), false],
    // a 10-byte varint for the 32-bit timeout: taken, low 32 bits
    [frame(Buffer.from([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])), true],
    // the same field twice: the last one counts (as in protobufjs)
    [frame(Buffer.from([0x08, 0x05, 0x08, 0x06, 0x12, 0x03, 0x0a, 0x01, 0x61, 0x12, 0x03, 0x12, 0x01, 0x62])), true],
    // a frame with more than the Invoke in it, and another kind
    [Buffer.concat([ok, Buffer.from([0x2a, 0x00])]), false],
    [body({ cancel: { id: 5 } }), false],
    [body({ log: { id: 5, message: 'x' } }), false],
  ];
  for (const [b, expectFast] of cases) checkBody(b, { expectFast });
});

test('fast Invoke decoding agrees with protobufjs on random events and corrupted frames', () => {
  const rand = rng(42);
  const pick = (a) => a[Math.floor(rand() * a.length)];
  const str = () => pick(['', 'a', '/sluice/bench', 'héllo', 'x'.repeat(60), '\u{1f600}', 'ev-' + Math.floor(rand() * 1e6)]);
  const int = () => pick([0, 1, -1, 300, -300, 2147483647, -2147483648]);
  const long = () => pick([0, 1, -1, 1234567890123, -1234567890123, '9223372036854775807', '-9223372036854775808']);
  const bytes = () => Buffer.from(Array.from({ length: pick([0, 1, 5, 200]) }, () => Math.floor(rand() * 256)));
  const bodies = [];
  for (let i = 0; i < 300; i++) {
    const event = {};
    for (const f of ['id', 'source', 'specVersion', 'type', 'dataContentType', 'dataSchema', 'subject', 'time',
      'broker', 'topic']) if (rand() < 0.6) event[f] = str();
    if (rand() < 0.6) event.data = bytes();
    if (rand() < 0.3) event.key = bytes();
    if (rand() < 0.5) event.partition = int();
    for (const f of ['offset', 'brokerTimestampMs', 'firstAttemptTimeMs']) if (rand() < 0.5) event[f] = long();
    if (rand() < 0.5) event.attempt = pick([0, 1, 7, 4294967295]);
    if (rand() < 0.3) event.extensions = [{ name: str(), value: str() }, { name: str() }];
    if (rand() < 0.3) event.headers = [{ name: str(), value: bytes() }, { value: bytes() }];
    const b = body({ invoke: { id: long(), timeoutMs: pick([0, 1000, 4294967295]), event } });
    checkBody(b, { expectFast: true });
    bodies.push(b);
  }
  // Flip, drop and insert bytes: the fast path must never disagree with protobufjs.
  let declined = 0;
  for (let i = 0; i < 5000; i++) {
    const b = Buffer.from(pick(bodies));
    const at = Math.floor(rand() * b.length);
    let m;
    const r = rand();
    if (r < 0.5) {
      b[at] = Math.floor(rand() * 256);
      m = b;
    } else if (r < 0.75) {
      m = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    } else {
      m = Buffer.concat([b.subarray(0, at), Buffer.from([Math.floor(rand() * 256)]), b.subarray(at)]);
    }
    if (checkBody(m).fast === null) declined++;
  }
  assert.ok(declined > 0 && declined < 5000);
});

// prune() of lib/worker.js: the fields at their proto3 default left out.
function pruned(obj) {
  const out = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === '' || v === 0 || v === false) continue;
    if (v instanceof Uint8Array && v.length === 0) continue;
    if (typeof v === 'object' && typeof v.isZero === 'function' && v.isZero()) continue;
    out[k] = v;
  }
  return out;
}

test('fast Result and Log encoding is byte-exact with protobufjs', () => {
  const ids = [0, 1, 2, 127, 128, 300, 4294967295, 4294967296, -1, 1.5, NaN, '77', '',
    Long.fromString('9007199254740993', true), Long.fromString('18446744073709551615', true), Long.UZERO, null,
    undefined];
  const outputs = [null, undefined, Buffer.alloc(0), Buffer.from('ECHO:'), new Uint8Array([1, 2, 3]),
    Buffer.alloc(200, 1), Buffer.alloc(20000, 2)];
  const strings = [undefined, null, '', 'text/plain', 'héllo ✓ 日本', 'x'.repeat(130)];
  const retries = [undefined, null, 0, 1500, 4294967295, 4294967296, NaN, -5, ''];
  for (const id of ids) {
    for (const status of [1, 2, 3]) {
      for (const output of outputs) {
        for (const s of strings) {
          const want = sluice.encodeFrame({ result: pruned({ id, status, output, contentType: s }) });
          assert.deepEqual(codec.encodeResult(id, status, output, s), want, `id ${String(id)}`);
        }
      }
      for (const err of strings) {
        for (const retryAfterMs of retries) {
          const want = sluice.encodeFrame({ result: pruned({ id, status, errorMessage: err, retryAfterMs }) });
          assert.deepEqual(codec.encodeResult(id, status, null, '', err, retryAfterMs), want);
        }
      }
    }
    for (const level of [1, 2, 3, 4]) {
      for (const message of ['', 'echo ev-1', 'héllo ✓ 日本', 'y'.repeat(300)]) {
        const want = sluice.encodeFrame({ log: pruned({ id, level, message }) });
        assert.deepEqual(codec.encodeLog(id, level, message), want);
      }
    }
  }
  // The shared fixtures.
  const inv = sluice.readFrames(fixture('invoke'))[0].invoke;
  assert.deepEqual(codec.encodeLog(inv.id, sluice.Level.WARN, 'héllo ✓ 日本'), fixture('log'));
  assert.deepEqual(codec.encodeResult(inv.id, sluice.Status.OK, Buffer.from('HELLO'), 'text/plain'),
                   fixture('result_echo'));
  const err = Result.toObject(sluice.readFrames(fixture('result_error'))[0].result, { longs: String });
  assert.deepEqual(codec.encodeResult(err.id, err.status, null, '', err.errorMessage, err.retryAfterMs),
                   fixture('result_error'));
  // Too large to send: the same error as encodeFrame.
  const huge = Buffer.alloc(sluice.MAX_FRAME_BYTES);
  let want;
  assert.throws(() => sluice.encodeFrame({ result: { id: 1, status: 1, output: huge } }), (e) => { want = e; return true; });
  assert.throws(() => codec.encodeResult(1, 1, huge),
    (e) => e instanceof sluice.ProtocolError && e.message === want.message);
  assert.match(want.message, /^frame of 67108878 bytes exceeds the 67108864-byte limit$/);
  const long = 'x'.repeat(sluice.MAX_FRAME_BYTES);
  assert.throws(() => sluice.encodeFrame({ log: { id: 1, level: 1, message: long } }), (e) => { want = e; return true; });
  assert.throws(() => codec.encodeLog(1, 1, long), (e) => e instanceof sluice.ProtocolError && e.message === want.message);
});

test('idKey: one key per uint64 id, whatever its form', () => {
  const seen = new Map();
  for (const [id, same] of [
    [Long.fromNumber(5, true), 5], [Long.fromString('9007199254740993', true), '9007199254740993'],
    [Long.fromString('18446744073709551615', true), '18446744073709551615'], [Long.UZERO, 0],
  ]) {
    assert.equal(codec.idKey(id), codec.idKey(same));
    assert.equal(codec.idKey(id), codec.idKey(sluice.readFrames(sluice.encodeFrame({ cancel: { id } }))[0].cancel.id));
    assert.ok(!seen.has(codec.idKey(id)));
    seen.set(codec.idKey(id), id);
  }
  assert.notEqual(codec.idKey(Long.fromBits(5, 1, true)), codec.idKey(5));
});

test('fast Hello encoding and HelloAck decoding are byte-exact with protobufjs', () => {
  for (const [v, sdk, max, pid] of [[1, 'sluice-node/0.1.0', 0, 1234], [1, '', 16, 0], [7, 'ü€', 4294967295, 1],
                                    [0, 'x', 0, 0]]) {
    const fast = codec.encodeHello(v, sdk, max, pid);
    const hello = {};
    if (v) hello.protocolVersion = v;
    if (sdk) hello.sdk = sdk;
    if (max) hello.maxInflight = max;
    if (pid) hello.pid = pid;
    assert.deepStrictEqual(fast, sluice.encodeFrame({ hello }));
  }
  for (const ack of [{ protocolVersion: 1, function: 'fn' }, { protocolVersion: 0, function: '' },
                     { protocolVersion: 2, function: 'ü'.repeat(300) }]) {
    const body = sluice.encodeFrame({ helloAck: ack }).subarray(4);
    assert.deepStrictEqual(codec.decodeHelloAck(body, 0, body.length), ack);
    assert.deepStrictEqual({ ...sluice.decodeFrame(body).helloAck }, ack);
  }
  // Not a plain HelloAck: declined, protobufjs decides.
  const invoke = sluice.encodeFrame({ invoke: { id: 1 } }).subarray(4);
  assert.equal(codec.decodeHelloAck(invoke, 0, invoke.length), null);
  const extra = Buffer.from([0x12, 0x04, 0x08, 0x01, 0x28, 0x01]); // an unknown field 5
  assert.equal(codec.decodeHelloAck(extra, 0, extra.length), null);
  const cut = Buffer.from([0x12, 0x05, 0x08, 0x01]); // runs past the end
  assert.equal(codec.decodeHelloAck(cut, 0, cut.length), null);
});

test('Status and Level are the enums of worker.proto', () => {
  assert.deepStrictEqual({ ...sluice.Status }, { ...Result.lookupEnum('Status').values });
  assert.deepStrictEqual({ ...sluice.Level },
                         { ...sluice.Frame.lookupType('sluice.v1.Log').lookupEnum('Level').values });
});

test('a worker answers its handshake and a plain invocation without loading protobufjs or long', () => {
  const { spawnSync } = require('node:child_process');
  const path = require('node:path');
  // The child feeds one HelloAck and one Invoke to a worker, then reports what it loaded.
  const script = `
    const sluice = require(${JSON.stringify(path.join(__dirname, '..'))});
    const { PassThrough } = require('node:stream');
    const ack = Buffer.from(${JSON.stringify([...fixture('hello_ack')])});
    const inv = Buffer.from(${JSON.stringify([...fixture('invoke')])});
    const out = [];
    const w = new sluice.Worker((ev, ctx) => ev.data, { write: (b) => out.push(b), done: () => {} });
    const input = new PassThrough();
    w.start(input);
    input.write(Buffer.concat([ack, inv]));
    setImmediate(() => {
      const loaded = Object.keys(require.cache).filter((k) => k.includes('node_modules'));
      process.stdout.write(JSON.stringify({ loaded, frames: Buffer.concat(out).length, state: w.state }));
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout);
  assert.equal(got.state, 'serving');
  assert.ok(got.frames > 0);
  assert.deepEqual(got.loaded, []);
});
