'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const sluice = require('..');
const { fixture } = require('./helpers');

const GOOD = ['hello', 'hello_ack', 'hello_ack_v2', 'goodbye', 'goodbye_refused', 'invoke', 'invoke_fanout',
  'invoke_poison', 'result_echo', 'result_fanout', 'result_poison', 'result_error', 'log', 'cancel'];

test('proto/, where a pack left it, holds the same files as schemas/', (t) => {
  for (const name of ['event.proto', 'worker.proto']) {
    const packed = path.join(__dirname, '..', 'proto', name);
    if (!fs.existsSync(packed)) return t.skip('no proto/: the SDK reads schemas/');
    const schema = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'schemas', name), 'utf8');
    assert.equal(fs.readFileSync(packed, 'utf8'), schema, `sdk/node/proto/${name} is stale: npm pack copies it again`);
  }
});

for (const name of GOOD) {
  test(`fixture ${name} decodes and re-encodes byte-exact`, () => {
    const data = fixture(name);
    const frames = sluice.readFrames(data);
    assert.equal(frames.length, 1);
    assert.deepEqual(sluice.encodeFrame(frames[0]), data);
  });
}

test('invoke fixture fields (uint64 id above 2^53 survives)', () => {
  const inv = sluice.readFrames(fixture('invoke'))[0].invoke;
  assert.equal(String(inv.id), '9007199254740993');
  assert.equal(inv.timeoutMs, 30000);
  const ev = sluice.Event.toObject(inv.event, { longs: String });
  assert.equal(ev.id, 'ev-1');
  assert.equal(ev.source, '/sdk/testdata');
  assert.equal(ev.specVersion, '1.0');
  assert.equal(ev.type, 'com.example.test');
  assert.equal(ev.dataContentType, 'text/plain');
  assert.equal(ev.dataSchema, 'https://example.com/schema');
  assert.equal(ev.subject, 'subj');
  assert.equal(ev.time, '2026-01-02T03:04:05Z');
  assert.deepEqual(ev.extensions.map((e) => [e.name, e.value]), [['traceparent', '00-abc-def-01'], ['tenant', 't1']]);
  assert.deepEqual(Buffer.from(ev.data), Buffer.from('hello'));
  assert.deepEqual([ev.broker, ev.topic, ev.partition, ev.offset], ['local', 'in', 3, '1234567890123']);
  assert.deepEqual(Buffer.from(ev.key), Buffer.from([0x6b, 0x00, 0xff]));
  assert.deepEqual(ev.headers.map((h) => [h.name, Buffer.from(h.value).toString('hex')]), [['x-h', '7601']]);
  assert.deepEqual([ev.brokerTimestampMs, ev.attempt, ev.firstAttemptTimeMs], ['1767323045000', 2, '1767323046000']);
});

test('frames built by the SDK are byte-exact', () => {
  const log = sluice.encodeFrame({ log: { id: sluice.readFrames(fixture('invoke'))[0].invoke.id,
                                          level: sluice.Level.WARN, message: 'héllo ✓ 日本' } });
  assert.deepEqual(log, fixture('log'));
  const ev = sluice.newEvent(Buffer.from('FANOUT'), { type: 'sluice.echo.fanout', id: 'ev-2-fanout',
                                                      source: '/sluice/echo', contentType: 'text/plain' });
  const res = sluice.encodeFrame({ result: { id: 2, status: sluice.Status.OK, output: Buffer.from('FANOUT'),
                                             contentType: 'text/plain', emit: [ev] } });
  assert.deepEqual(res, fixture('result_fanout'));
});

for (const [name, message] of [
  ['bad_oversize', /exceeds the 67108864-byte limit/],
  ['bad_garbage', /does not parse/],
  ['bad_no_kind', /no known kind/],
  ['bad_truncated', /ended inside a frame/],
]) {
  test(`bad fixture ${name} is a clear error`, () => {
    assert.throws(() => sluice.readFrames(fixture(name)), (e) => e instanceof sluice.ProtocolError && message.test(e.message));
  });
}

test('a frame split across many chunks is reassembled', () => {
  const data = fixture('invoke');
  const r = new sluice.FrameReader();
  const frames = [];
  for (const b of data) frames.push(...r.push(Buffer.from([b])));
  r.end();
  assert.equal(frames.length, 1);
  assert.deepEqual(sluice.encodeFrame(frames[0]), data);
  assert.throws(() => sluice.readFrames(Buffer.from([0, 0])), /inside a frame header/);
  assert.deepEqual(sluice.readFrames(Buffer.alloc(0)), []);
});
