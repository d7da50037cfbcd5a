'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const sluice = require('..');
const { fixture, fixtures, invoke, cancel, serve, results, resultBytes } = require('./helpers');

const ECHO = path.join(__dirname, '..', 'examples', 'echo', 'main.js');
const ECHO_ESM = path.join(__dirname, '..', 'examples', 'echo', 'main.mjs');

function runProc(args, input) {
  const p = spawnSync(process.execPath, args, { input, timeout: 60000 });
  assert.equal(p.error, undefined, 'worker hung or failed to start');
  return { code: p.status, frames: sluice.readFrames(p.stdout), stderr: p.stderr.toString() };
}

for (const [name, example] of [['echo', ECHO], ['echo (ES module)', ECHO_ESM]]) {
  test(`${name} example session is byte-exact`, () => {
    const r = runProc([example], fixtures('hello_ack', 'invoke', 'invoke_fanout', 'invoke_poison', 'goodbye'));
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
}

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

const NOOP = path.join(__dirname, '..', 'examples', 'noop', 'main.js');

test('noop example: success, no output, no log', () => {
  const r = runProc([NOOP], fixtures('hello_ack', 'invoke', 'invoke_fanout', 'invoke_poison', 'goodbye'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.frames[0].kind, 'hello');
  assert.deepEqual(r.frames.slice(1).map((f) => f.kind), ['result', 'result', 'result']);
  const ids = ['invoke', 'invoke_fanout', 'invoke_poison'].map((n) => sluice.readFrames(fixture(n))[0].invoke.id);
  assert.deepEqual(resultBytes(r.frames),
    ids.map((id) => sluice.encodeFrame({ result: { id, status: sluice.Status.OK } }).toString('hex')).sort());
});

// Handlers that answer without a promise, and the same handlers made async: same Results.
test('synchronous handlers are answered like async ones', async () => {
  const thenable = (v) => ({ then(resolve) { resolve(v); } });
  const sync = (event, ctx) => {
    switch (event.data.toString()) {
      case 'retry': throw new sluice.Retry('boom', { afterMs: 1500 });
      case 'fail': throw new TypeError('bad value');
      case 'reject': throw new sluice.Reject('never');
      case 'str': return 'héllo';
      case 'json': return { a: [1, 2] };
      case 'bigint': return 10n;
      case 'huge': return Buffer.alloc(sluice.MAX_FRAME_BYTES + 1);
      case 'resp': return new sluice.Response('out', { contentType: 'text/x' });
      case 'resp-bytes': return new sluice.Response(Buffer.from('b'));
      case 'resp-emit': return new sluice.Response(null, { emit: [{ id: 'x', type: 't', data: Buffer.from('d') }] });
      case 'emit': ctx.emit(Buffer.from('E'), { type: 't.e', id: 'e-1' }); return 'emitted';
      case 'bytes': return new Uint8Array([1, 2]);
      case 'empty': return '';
      case 'thenable': return thenable('then');
      case 'bad-then': return { get then() { throw new Error('no then'); } };
      default: return undefined;
    }
  };
  const names = ['retry', 'fail', 'reject', 'str', 'json', 'bigint', 'huge', 'resp', 'resp-bytes', 'resp-emit', 'emit',
    'bytes', 'empty', 'thenable', 'bad-then', 'none'];
  const input = Buffer.concat([fixture('hello_ack'), ...names.map((n, i) => invoke(i + 1, n)), fixture('goodbye')]);
  const a = await serve(sync, input);
  const b = await serve(async (event, ctx) => sync(event, ctx), input);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(results(a.frames).length, names.length);
  assert.deepEqual(resultBytes(a.frames), resultBytes(b.frames));
  const byId = new Map(results(a.frames).map((x) => [Number(x.id), x]));
  const of = (name) => byId.get(names.indexOf(name) + 1);
  assert.deepEqual(sluice.encodeFrame({ result: of('retry') }).subarray(4),
                   sluice.encodeFrame({ result: { ...sluice.readFrames(fixture('result_error'))[0].result, id: 1 } })
                     .subarray(4));
  assert.equal(of('fail').errorMessage, 'TypeError: bad value');
  assert.equal(of('reject').status, sluice.Status.REJECTED);
  assert.equal(of('bigint').status, sluice.Status.ERROR);
  assert.match(of('huge').errorMessage, /^result cannot be sent: frame of 67108879 bytes exceeds/);
  assert.equal(of('resp').contentType, 'text/x');
  assert.equal(of('resp-emit').emit[0].id, 'x');
  assert.equal(of('emit').emit[0].id, 'e-1');
  assert.equal(of('thenable').output.toString(), 'then');
  assert.equal(of('bad-then').errorMessage, 'Error: no then');
  assert.ok(a.frames.some((f) => f.kind === 'log' && Number(f.log.id) === names.indexOf('fail') + 1 &&
                                 f.log.message.startsWith('TypeError: bad value\n    at ')));
});

test('one write per input chunk for synchronous handlers', async () => {
  const input = Buffer.concat([fixture('hello_ack'), invoke(1, 'a'), invoke(2, 'b'), invoke(3, 'c')]);
  const r = await serve((event, ctx) => {
    ctx.info(`got ${event.id}`);
    return event.data;
  }, [input, fixture('goodbye')]);
  assert.equal(r.code, 0, r.stderr);
  // The three logs and three Results of the chunk go out together.
  const answers = r.writes.map((kinds) => kinds.filter((k) => k !== 'hello')).filter((kinds) => kinds.length);
  assert.deepEqual(answers, [['log', 'result', 'log', 'result', 'log', 'result']]);
});

test('an async handler that needs no I/O is answered in one write with its logs', async () => {
  const r = await serve(async (event, ctx) => {
    ctx.info('before');
    await null;
    await Promise.resolve();
    ctx.info('after');
    return event.data;
  }, [Buffer.concat([fixture('hello_ack'), invoke(1, 'a'), invoke(2, 'b')])]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(results(r.frames).map((x) => `${x.id}:${x.output}`), ['1:a', '2:b']);
  const answers = r.writes.map((kinds) => kinds.filter((k) => k !== 'hello')).filter((kinds) => kinds.length);
  assert.deepEqual(answers, [['log', 'log', 'log', 'log', 'result', 'result']]);
});

test('frames split at every byte, and a large frame in many chunks', async () => {
  const big = Buffer.alloc(3 * 1024 * 1024 + 17, 'z');
  const input = Buffer.concat([fixture('hello_ack'), invoke(1, 'one'), invoke(2, big), cancel(9), invoke(3, 'three'),
    fixture('goodbye')]);
  const head = input.subarray(0, fixture('hello_ack').length + invoke(1, 'one').length + 10);
  const chunks = [...head].map((b) => Buffer.from([b]));
  for (let off = head.length; off < input.length; off += 65536) chunks.push(input.subarray(off, off + 65536));
  const r = await serve((event) => event.data, chunks);
  assert.equal(r.code, 0, r.stderr);
  const got = results(r.frames).map((x) => [Number(x.id), x.output]);
  assert.deepEqual(got.map(([id]) => id), [1, 2, 3]);
  assert.equal(got[0][1].toString(), 'one');
  assert.ok(got[1][1].equals(big));
  assert.equal(got[2][1].toString(), 'three');
});

test('console.log after an await is tagged with its invocation', () => {
  const script = `
    const sluice = require(${JSON.stringify(path.join(__dirname, '..'))});
    sluice.run(async (event) => {
      // Both invocations are in flight across turns of the event loop.
      for (let i = event.data.toString() === 'slow' ? 3 : 1; i > 0; i--) await new Promise((r) => setImmediate(r));
      console.log('late', event.id);
      await null;
      process.stdout.write('part ');
      return null;
    });`;
  const r = runProc(['-e', script], Buffer.concat([fixture('hello_ack'), invoke(21, 'slow'), invoke(22, 'fast'),
    fixture('goodbye')]));
  assert.equal(r.code, 0, r.stderr);
  const logs = r.frames.filter((f) => f.kind === 'log').map((f) => `${f.log.id}:${f.log.message}`);
  assert.deepEqual(logs.sort(), ['21:late ev-21', '21:part ', '22:late ev-22', '22:part '], logs.join());
});

test('the ES module entry (index.mjs) exports every name of index.js, as the same objects', async () => {
  const esm = await import('../index.mjs');
  assert.equal(esm.default, sluice);
  assert.deepEqual(Object.keys(esm).filter((k) => k !== 'default').sort(), Object.keys(sluice).sort());
  for (const k of Object.keys(sluice)) assert.equal(esm[k], sluice[k], k);
  assert.equal(sluice.SDK_NAME, `sluice-node/${require('../package.json').version}`);
});

test('ctx.id is the invocation id as a Long, made when read', async () => {
  const Long = require('long');
  const seen = [];
  const r = await serve((ev, ctx) => {
    seen.push(ctx.id);
    return ctx.id === ctx.id ? 'same' : 'new';
  }, Buffer.concat([fixtures('hello_ack', 'invoke'), invoke(5, 'x')]));
  assert.equal(r.code, 0);
  assert.ok(seen.every((id) => id instanceof Long && id.unsigned));
  assert.deepEqual(seen.map(String), ['9007199254740993', '5']);
  assert.deepEqual(results(r.frames).map((x) => `${x.id}:${x.output}`), ['9007199254740993:same', '5:same']);
});

test('a handshake read in pieces, then the rest from the stream', async () => {
  const { spawn } = require('node:child_process');
  const p = spawn(process.execPath, [ECHO], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = [];
  let stderr = '';
  p.stderr.on('data', (d) => { stderr += d; });
  const ack = fixture('hello_ack');
  p.stdout.once('data', () => {
    // Hello is out: the worker reads its handshake now. Half a frame header first, the
    // rest a little later (so the reads most likely see the pieces apart).
    p.stdin.write(ack.subarray(0, 2));
    setTimeout(() => p.stdin.write(ack.subarray(2, 7)), 20);
    setTimeout(() => p.stdin.end(Buffer.concat([ack.subarray(7), fixtures('invoke', 'invoke_poison', 'goodbye')])), 40);
  });
  p.stdout.on('data', (d) => out.push(d));
  const code = await new Promise((resolve) => p.on('close', resolve));
  assert.equal(code, 0, stderr);
  assert.deepEqual(resultBytes(sluice.readFrames(Buffer.concat(out))),
    ['result_echo', 'result_poison'].map((n) => fixture(n).toString('hex')).sort());
});

test('frames stay whole and in order when stdout is non-blocking and full', () => {
  // require('node:stream') first: run() then makes process.stdout at once, and the
  // stream sets fd 1 non-blocking, so the 8 MiB answer meets a full pipe (EAGAIN).
  const script = `
    require('node:stream');
    const sluice = require(${JSON.stringify(path.join(__dirname, '..'))});
    sluice.run((event) => (event.data.toString() === 'big' ? Buffer.alloc(8 << 20, 97) : 'small'));`;
  const p = spawnSync(process.execPath, ['-e', script], {
    input: Buffer.concat([fixture('hello_ack'), invoke(1, 'big'), invoke(2, 'x'), fixture('goodbye')]),
    timeout: 60000, maxBuffer: 64 << 20,
  });
  assert.equal(p.error, undefined, 'worker hung or failed to start');
  assert.equal(p.status, 0, p.stderr.toString());
  const got = results(sluice.readFrames(p.stdout));
  assert.deepEqual(got.map((x) => [Number(x.id), x.output.length]), [[1, 8 << 20], [2, 5]]);
  assert.ok(got[0].output.every((b) => b === 97));
});
