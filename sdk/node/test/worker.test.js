'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const sluice = require('..');
const { fixture, fixtures, invoke, cancel, serve, results, resultBytes } = require('./helpers');

const ECHO = path.join(__dirname, '..', 'examples', 'echo', 'main.js');

function runProc(args, input) {
  const p = spawnSync(process.execPath, args, { input, timeout: 60000 });
  assert.equal(p.error, undefined, 'worker hung or failed to start');
  return { code: p.status, frames: sluice.readFrames(p.stdout), stderr: p.stderr.toString() };
}

test('echo example session is byte-exact', () => {
  const r = runProc([ECHO], fixtures('hello_ack', 'invoke', 'invoke_fanout', 'invoke_poison', 'goodbye'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.frames[0].kind, 'hello');
  assert.equal(r.frames[0].hello.protocolVersion, 1);
  assert.match(r.frames[0].hello.sdk, /^sluice-node\//);
  assert.ok(r.frames[0].hello.pid > 0);
  assert.deepEqual(resultBytes(r.frames),
    ['result_echo', 'result_fanout', 'result_poison'].map((n) => fixture(n).toString('hex')).sort());
  const logs = r.frames.filter((f) => f.kind === 'log').map((f) => `${f.log.id}:${f.log.message}`);
  assert.ok(logs.includes('9007199254740993:echo ev-1') && logs.includes('2:echo ev-2'), logs.join());
});

test('a terminal on stdout is refused', () => {
  const p = spawnSync('script', ['-qec', `${process.execPath} ${ECHO}`, '/dev/null'],
    { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
  assert.equal(p.status, 2);
  assert.match(p.stdout.toString(), /sluice-sdk: stdout is a terminal/);
});

test('end of input without Goodbye finishes the invocation and exits 0', () => {
  const r = runProc([ECHO], fixtures('hello_ack', 'invoke'));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(resultBytes(r.frames), [fixture('result_echo').toString('hex')]);
});

for (const [input, message] of [
  [fixture('hello_ack_v2'), 'sluice speaks protocol version 2'],
  [fixture('goodbye_refused'), 'refused the handshake: protocol version 7 is not supported'],
  [Buffer.alloc(0), 'closed the stream before answering Hello'],
  [fixture('invoke'), "expected HelloAck as sluice's first frame, got invoke"],
  [fixture('bad_garbage'), 'does not parse'],
  [fixtures('hello_ack', 'bad_garbage'), 'does not parse'],
  [fixtures('hello_ack', 'bad_oversize'), 'exceeds the 67108864-byte limit'],
  [fixtures('hello_ack', 'bad_truncated'), 'ended inside a frame'],
  [fixtures('hello_ack', 'bad_no_kind'), 'no known kind'],
  [fixtures('hello_ack', 'result_echo'), 'unexpected result frame'],
  [fixtures('hello_ack', 'hello_ack'), 'unexpected hello_ack frame'],
]) {
  test(`protocol error exits 2: ${message}`, () => {
    const r = runProc([ECHO], input);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes('sluice-sdk: protocol error: '), r.stderr);
    assert.ok(r.stderr.includes(message), r.stderr);
    assert.equal(r.frames[0].kind, 'hello');
  });
}

test('console.log becomes log frames and does not corrupt the stream', () => {
  const script = `
    const sluice = require(${JSON.stringify(path.join(__dirname, '..'))});
    sluice.run(async (event) => {
      console.log('printed by', event.id);
      process.stdout.write('partial ');
      process.stdout.write('line\\n');
      return Buffer.from('ok');
    });`;
  const r = runProc(['-e', script], Buffer.concat([fixture('hello_ack'), invoke(11, 'a'), fixture('goodbye')]));
  assert.equal(r.code, 0, r.stderr);
  const logs = r.frames.filter((f) => f.kind === 'log').map((f) => `${f.log.id}:${f.log.level}:${f.log.message}`);
  assert.ok(logs.includes('11:2:printed by ev-11'), logs.join());
  assert.ok(logs.includes('11:2:partial line'), logs.join());
  assert.deepEqual(results(r.frames).map((x) => x.output.toString()), ['ok']);
});

test('errors, rejects, retries and return types', async () => {
  const handler = async (event) => {
    switch (event.data.toString()) {
      case 'retry': throw new sluice.Retry('boom', { afterMs: 1500 });
      case 'fail': throw new TypeError('bad value');
      case 'reject': throw new sluice.Reject('never');
      case 'str': return 'héllo';
      case 'json': return { a: [1, 2] };
      case 'huge': return Buffer.alloc(sluice.MAX_FRAME_BYTES + 1);
      default: return undefined;
    }
  };
  const r = await serve(handler, Buffer.concat([fixture('hello_ack'), invoke(4, 'retry'), invoke(5, 'fail'),
    invoke(6, 'reject'), invoke(7, 'str'), invoke(8, 'json'), invoke(9, 'none'), invoke(10, 'huge'),
    fixture('goodbye')]));
  assert.equal(r.code, 0, r.stderr);
  const byId = new Map(results(r.frames).map((x) => [Number(x.id), x]));
  assert.deepEqual(sluice.encodeFrame({ result: byId.get(4) }), fixture('result_error'));
  assert.equal(byId.get(5).status, sluice.Status.ERROR);
  assert.equal(byId.get(5).errorMessage, 'TypeError: bad value');
  assert.ok(r.frames.some((f) => f.kind === 'log' && Number(f.log.id) === 5 && f.log.level === sluice.Level.ERROR &&
                                 f.log.message.includes('TypeError: bad value\n    at ')));
  assert.equal(byId.get(6).status, sluice.Status.REJECTED);
  assert.equal(byId.get(6).errorMessage, 'never');
  assert.equal(byId.get(7).output.toString(), 'héllo');
  assert.equal(byId.get(7).contentType, 'text/plain; charset=utf-8');
  assert.equal(byId.get(8).output.toString(), '{"a":[1,2]}');
  assert.equal(byId.get(8).contentType, 'application/json');
  assert.equal(byId.get(9).status, sluice.Status.OK);
  assert.equal(byId.get(9).output.length, 0);
  assert.equal(byId.get(10).status, sluice.Status.ERROR);
  assert.match(byId.get(10).errorMessage, /^result cannot be sent: frame of 67108879 bytes exceeds/);
});

test('many invocations in flight at once', async () => {
  const n = 50;
  let arrived = 0;
  let release;
  const all = new Promise((resolve) => { release = resolve; });
  const handler = async (event) => {
    if (++arrived === n) release();
    await all; // resolves only when all n are in flight at once
    return event.data;
  };
  const input = [fixture('hello_ack')];
  for (let i = 1; i <= n; i++) input.push(invoke(i, `d${i}`));
  input.push(fixture('goodbye'));
  const r = await serve(handler, Buffer.concat(input), { maxInflight: 64 });
  assert.equal(r.code, 0, r.stderr);
  const got = results(r.frames).map((x) => [Number(x.id), x.output.toString()]).sort((a, b) => a[0] - b[0]);
  assert.deepEqual(got, Array.from({ length: n }, (_, i) => [i + 1, `d${i + 1}`]));
  assert.equal(r.frames[0].hello.maxInflight, 64);
});

test('a cancelled invocation sees its signal abort and is answered', async () => {
  let aborted = false;
  const handler = async (event, ctx) => {
    if (event.data.toString() === 'hang') {
      await new Promise((resolve) => ctx.signal.addEventListener('abort', () => { aborted = true; resolve(); }));
    }
    return event.data;
  };
  const r = await serve(handler, Buffer.concat([fixture('hello_ack'), invoke(1, 'hang'), invoke(2, 'fine'),
    cancel(1), fixture('goodbye')]));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(results(r.frames).map((x) => `${x.id}:${x.output}`).sort(), ['1:hang', '2:fine']);
  assert.ok(aborted);
});

test('a duplicate invocation id is a protocol error', async () => {
  const handler = () => new Promise(() => {});
  const r = await serve(handler, Buffer.concat([fixture('hello_ack'), invoke(7, 'a'), invoke(7, 'b')]));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Invoke id 7 is already in flight/);
});

test('ctx.emit fills the function source and a UUID id', async () => {
  let ev;
  const r = await serve(async (event, ctx) => { ev = ctx.emit('x', { type: 't.x' }); return null; },
    Buffer.concat([fixture('hello_ack'), invoke(1, 'a'), fixture('goodbye')]));
  assert.equal(r.code, 0);
  assert.equal(ev.source, '/sluice/function/echo');
  assert.match(ev.id, /^[0-9a-f-]{36}$/);
  assert.equal(results(r.frames)[0].emit[0].type, 't.x');
});
