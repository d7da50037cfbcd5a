'use strict';
// The worker side of the stdio protocol v1: handshake, invocations, logs, shutdown.
// Everything runs on Node's event loop; run() writes frames to fd 1 (lib/stdio.js) and
// turns what user code prints to process.stdout into log frames.

const { AsyncLocalStorage } = require('node:async_hooks');
const codec = require('./codec');
const pb = require('./frames');
const stdio = require('./stdio');

// package.json's version is sluice's own (sdk/version.sh checks it).
const VERSION = require('../package.json').version;
const SDK_NAME = `sluice-node/${VERSION}`;
const EXIT_PROTOCOL = 2;

class Reject extends Error {
  constructor(message) {
    super(message);
    this.name = 'Reject';
  }
}

class Retry extends Error {
  constructor(message, { afterMs = 0 } = {}) {
    super(message);
    this.name = 'Retry';
    this.afterMs = afterMs;
  }
}

// An explicit result: output bytes, its content type, and events to emit.
class Response {
  constructor(output, { contentType = '', emit = [] } = {}) {
    this.output = output;
    this.contentType = contentType;
    this.emit = emit;
  }
}

const current = new AsyncLocalStorage();

// Drops fields at their proto3 default so the encoding is canonical (as in Python and Go).
function prune(value) {
  if (Array.isArray(value)) return value.map(prune);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || value instanceof Uint8Array ||
      typeof value.toNumber === 'function') {
    return value;
  }
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    if (v === undefined || v === null || v === '' || v === 0 || v === false) continue;
    if ((Array.isArray(v) || v instanceof Uint8Array) && v.length === 0) continue;
    if (typeof v === 'object' && typeof v.isZero === 'function' && v.isZero()) continue;
    out[k] = prune(v);
  }
  return out;
}

function toBytes(data) {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  throw new TypeError('event data must be a string, Buffer or Uint8Array');
}

// Builds an event to emit: id defaults to a random UUID, spec version 1.0.
function newEvent(data, { type, id, source = '', subject = '', contentType = '', extensions = {} } = {}) {
  if (!type) throw new TypeError('an emitted event needs a type');
  if (typeof data === 'string' && !contentType) contentType = 'text/plain; charset=utf-8';
  return prune({
    id: id || require('node:crypto').randomUUID(), // required here: start-up time
    source,
    specVersion: '1.0',
    type,
    dataContentType: contentType,
    subject,
    extensions: Object.entries(extensions).map(([name, value]) => ({ name, value: String(value) })),
    data: toBytes(data),
  });
}

const LEVELS = { debug: pb.Level.DEBUG, info: pb.Level.INFO, warn: pb.Level.WARN, error: pb.Level.ERROR };

// Per-invocation context: its id, deadline, cancellation signal, logging and emitting.
class Context {
  constructor(worker, id, timeoutMs) {
    this.worker = worker;
    // The id as the worker's encoders take it: a number below 2^32, else { low, high }
    // (or a Long); `id` is the Long.
    this.num = id;
    this.function = worker.function;
    this.timeoutMs = timeoutMs;
    this.deadline = timeoutMs ? Date.now() + timeoutMs : null;
    this.cancelled = false; // true once sluice cancels the invocation
    this.emitted = [];
    this.key = undefined; // set by the Worker
    this.ac = null; // made on first use of `signal` (an AbortController is not cheap)
    this.long = undefined; // made on first use of `id`
  }

  // The invocation id as a Long (protobufjs' uint64), made on first use.
  get id() {
    if (this.long === undefined) {
      const n = this.num;
      this.long = typeof n === 'number' ? codec.toLong(n, 0)
        : n !== null && typeof n === 'object' && typeof n.isZero !== 'function' ? codec.toLong(n.low, n.high) : n;
    }
    return this.long;
  }

  // An AbortSignal, aborted when sluice cancels the invocation.
  get signal() {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.cancelled) this.ac.abort();
    }
    return this.ac.signal;
  }

  cancel() {
    this.cancelled = true;
    if (this.ac) this.ac.abort();
  }

  log(message, level = 'info') { this.worker.log(message, level, this.num); }
  debug(message) { this.log(message, 'debug'); }
  info(message) { this.log(message, 'info'); }
  warn(message) { this.log(message, 'warn'); }
  error(message) { this.log(message, 'error'); }

  // Publish one more event to the function's output when this invocation succeeds.
  emit(data, options = {}) {
    const ev = newEvent(data, { source: `/sluice/function/${this.function || 'unknown'}`, ...options });
    this.emitted.push(ev);
    return ev;
  }
}

function resultOf(value, ctx) {
  let output;
  let contentType = '';
  let emit = ctx.emitted;
  if (value instanceof Response) {
    output = value.output;
    contentType = value.contentType;
    emit = emit.concat(value.emit.map(prune));
    if (typeof output === 'string') {
      output = Buffer.from(output, 'utf8');
      contentType = contentType || 'text/plain; charset=utf-8';
    }
  } else if (value === undefined || value === null) {
    output = null;
  } else if (value instanceof Uint8Array) {
    output = value;
  } else if (typeof value === 'string') {
    output = Buffer.from(value, 'utf8');
    contentType = 'text/plain; charset=utf-8';
  } else {
    output = Buffer.from(JSON.stringify(value), 'utf8');
    contentType = 'application/json';
  }
  return prune({ id: ctx.id, status: pb.Status.OK, output, contentType, emit });
}

const RESOLVED = Promise.resolve();

function callHandler(worker, event, ctx) {
  return worker.handler(event, ctx);
}

function isThenable(value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') &&
    typeof value.then === 'function';
}

// Serves one handler over a frame stream: `input` is a readable byte stream, `write`
// sends bytes to sluice, `done(code)` is called once, with 0 after Goodbye or the end
// of input (when every invocation has answered) or 2 after a protocol error.
// `trackContext` runs each handler in the AsyncLocalStorage that run()'s stdout hook
// reads (to tag printed lines with their invocation); a Worker used on its own does not
// need it.
//
// The hot path: the frames of one input chunk are handled in place (an Invoke is
// decoded straight into the event object, see codec.js); a handler that returns a
// value (not a promise) is answered at once, one that returns a promise when it
// settles. Frames are encoded when sent and queued; the queue goes out in one write
// once the work that filled it is over: at the end of the input chunk when its
// handlers all returned values, else in a process.nextTick queued from a microtask,
// which runs once the microtask queue is empty (so an async handler that needs no
// I/O is answered in the same write as its logs).
class Worker {
  constructor(handler, { maxInflight = 0, write, done, stderr = null, trackContext = false } = {}) {
    this.handler = handler;
    this.maxInflight = maxInflight;
    this.write = write;
    this.done = done;
    this.stderr = stderr; // null: process.stderr, created when first needed (start-up time)
    this.context = trackContext ? current : null;
    this.function = '';
    this.reader = new pb.FrameReader();
    this.state = 'handshake'; // -> serving -> draining -> finished
    this.inflight = new Map(); // idKey(id) -> Context
    this.pending = []; // encoded frames not yet written
    this.inData = false; // handling an input chunk: it flushes when done
    this.awaiting = false; // a handler of this chunk returned a promise
    this.flushQueued = false;
    this.flushTick = () => {
      this.flushQueued = false;
      this.flush();
    };
    this.queueFlush = () => {
      if (!this.flushQueued) {
        this.flushQueued = true;
        process.nextTick(this.flushTick);
      }
    };
  }

  // Queues an encoded frame; frames queued in one turn go out in one write.
  sendBytes(bytes) {
    this.pending.push(bytes);
    if (!this.inData) this.queueFlush();
  }

  send(frame) {
    this.sendBytes(pb.encodeFrame(frame));
  }

  flush() {
    const n = this.pending.length;
    if (n === 0) return;
    const data = n === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending.length = 0;
    this.write(data);
  }

  finish(code) {
    this.flush();
    this.done(code);
  }

  log(message, level = 'info', id = 0) {
    if (this.state === 'finished') return;
    this.sendBytes(codec.encodeLog(id, LEVELS[level] || pb.Level.INFO, String(message)));
  }

  start(input) {
    this.sendBytes(codec.encodeHello(pb.PROTOCOL_VERSION, SDK_NAME, this.maxInflight, process.pid));
    input.on('data', (chunk) => this.onData(chunk));
    input.on('end', () => this.onEnd());
    input.on('error', (e) => this.fail(`cannot read from sluice: ${e.message}`));
    this.input = input;
  }

  fail(message) {
    if (this.state === 'finished') return;
    this.state = 'finished';
    (this.stderr || process.stderr).write(`sluice-sdk: protocol error: ${message}\n`);
    for (const ctx of this.inflight.values()) ctx.cancel();
    if (this.input) this.input.pause();
    this.finish(EXIT_PROTOCOL);
  }

  finishIfDrained() {
    if (this.state === 'draining' && this.inflight.size === 0) {
      this.state = 'finished';
      this.finish(0);
    }
  }

  onEnd() {
    if (this.state === 'finished') return;
    try {
      this.reader.end();
    } catch (e) {
      return this.fail(e.message);
    }
    if (this.state === 'handshake') return this.fail('sluice closed the stream before answering Hello');
    this.state = 'draining';
    this.finishIfDrained();
  }

  onData(chunk) {
    if (this.state === 'finished' || this.state === 'draining') return;
    this.inData = true;
    try {
      this.reader.split(chunk, this);
    } catch (e) {
      this.inData = false;
      this.awaiting = false;
      return this.fail(e.message);
    }
    this.inData = false;
    if (this.awaiting) {
      // Promises of this chunk may settle in the microtasks that run next: what is
      // queued now goes out with their answers (an answer queues a flush itself).
      this.awaiting = false;
      if (this.pending.length !== 0) RESOLVED.then(this.queueFlush);
    } else {
      this.flush();
    }
  }

  // One frame body of the chunk being handled; false stops the chunk.
  onBody(buf, start, end) {
    if (this.state === 'serving') {
      const inv = codec.decodeInvoke(buf, start, end);
      if (inv !== null) {
        this.invoke(inv.num, inv.timeoutMs, inv.event);
        return this.state === 'serving';
      }
    } else if (this.state !== 'handshake') {
      return false;
    } else {
      const ack = codec.decodeHelloAck(buf, start, end);
      if (ack !== null) {
        this.onFrame({ kind: 'helloAck', helloAck: ack });
        return this.state === 'serving';
      }
    }
    this.onFrame(pb.decodeFrame(buf.subarray(start, end)));
    return this.state === 'handshake' || this.state === 'serving';
  }

  onFrame(frame) {
    const kind = frame.kind;
    if (this.state === 'handshake') {
      if (kind === 'goodbye') {
        return this.fail(`sluice refused the handshake: ${frame.goodbye.reason || '(no reason)'}`);
      }
      if (kind !== 'helloAck') return this.fail(`expected HelloAck as sluice's first frame, got ${snake(kind)}`);
      const v = frame.helloAck.protocolVersion;
      if (v !== pb.PROTOCOL_VERSION) {
        return this.fail(`sluice speaks protocol version ${v}, this SDK (${SDK_NAME}) speaks ${pb.PROTOCOL_VERSION}`);
      }
      this.function = frame.helloAck.function;
      this.state = 'serving';
      return;
    }
    if (kind === 'invoke') {
      const inv = frame.invoke;
      const event = pb.Event.toObject(inv.event || {}, { longs: Number, defaults: true, arrays: true });
      return this.invoke(inv.id, inv.timeoutMs, event);
    }
    if (kind === 'cancel') {
      const ctx = this.inflight.get(codec.idKey(frame.cancel.id));
      // ctx.signal aborts; the handler's Result still goes out when it settles, so
      // sluice sees the worker is alive.
      if (ctx) ctx.cancel();
      return;
    }
    if (kind === 'goodbye') {
      this.state = 'draining';
      this.input.pause();
      return this.finishIfDrained();
    }
    return this.fail(`unexpected ${snake(kind)} frame from sluice after the handshake`);
  }

  invoke(id, timeoutMs, event) {
    const key = codec.idKey(id);
    if (this.inflight.has(key)) return this.fail(`Invoke id ${String(id)} is already in flight`);
    const ctx = new Context(this, id, timeoutMs);
    ctx.key = key; // of this.inflight
    this.inflight.set(key, ctx);
    let value;
    let thenable;
    try {
      value = this.context ? this.context.run(ctx, callHandler, this, event, ctx) : this.handler(event, ctx);
      thenable = isThenable(value);
    } catch (e) {
      return this.failed(ctx, e);
    }
    if (thenable) {
      // A native promise is awaited directly; any other thenable through a promise
      // (as `await` does it).
      const p = value instanceof Promise ? value : Promise.resolve(value);
      p.then((v) => this.succeeded(ctx, v), (e) => this.failed(ctx, e));
      this.awaiting = true;
    } else {
      this.succeeded(ctx, value);
    }
  }

  // The handler returned (or its promise resolved to) `value`.
  succeeded(ctx, value) {
    if (this.state === 'finished') return; // after a protocol error
    let bytes;
    if (ctx.emitted.length === 0) {
      // The common shapes, encoded directly.
      let output;
      let contentType = '';
      let fast = true;
      if (value === undefined || value === null) {
        output = null;
      } else if (value instanceof Uint8Array) {
        output = value;
      } else if (typeof value === 'string') {
        output = Buffer.from(value, 'utf8');
        contentType = 'text/plain; charset=utf-8';
      } else if (value instanceof Response) {
        output = value.output;
        contentType = value.contentType;
        if (typeof output === 'string') {
          output = Buffer.from(output, 'utf8');
          contentType = contentType || 'text/plain; charset=utf-8';
        }
        fast = (output === undefined || output === null || output instanceof Uint8Array) &&
          (contentType === undefined || contentType === null || typeof contentType === 'string') &&
          Array.isArray(value.emit) && value.emit.length === 0;
      } else {
        fast = false;
      }
      if (fast) {
        try {
          bytes = codec.encodeResult(ctx.num, pb.Status.OK, output, contentType);
        } catch (e) {
          bytes = this.unsendable(ctx, e);
        }
      }
    }
    if (bytes === undefined) {
      let result;
      try {
        result = resultOf(value, ctx);
      } catch (e) {
        return this.failed(ctx, e);
      }
      try {
        bytes = pb.encodeFrame({ result });
      } catch (e) {
        bytes = this.unsendable(ctx, e);
      }
    }
    this.answer(ctx, bytes);
  }

  // The handler threw (or its promise rejected with) `e`.
  failed(ctx, e) {
    if (this.state === 'finished') return; // after a protocol error
    let bytes;
    try {
      if (e instanceof Reject) {
        bytes = codec.encodeResult(ctx.num, pb.Status.REJECTED, null, '', String(e.message || 'rejected'));
      } else if (e instanceof Retry) {
        bytes = codec.encodeResult(ctx.num, pb.Status.ERROR, null, '', String(e.message || 'retry'),
                                   Math.max(0, Math.floor(e.afterMs)));
      } else {
        const message = describe(e);
        if (e && e.stack) this.log(e.stack, 'error', ctx.num);
        bytes = codec.encodeResult(ctx.num, pb.Status.ERROR, null, '', message);
      }
    } catch (err) {
      bytes = this.unsendable(ctx, err);
    }
    this.answer(ctx, bytes);
  }

  unsendable(ctx, e) {
    return codec.encodeResult(ctx.num, pb.Status.ERROR, null, '', `result cannot be sent: ${e.message}`);
  }

  answer(ctx, bytes) {
    this.inflight.delete(ctx.key);
    this.sendBytes(bytes);
    this.finishIfDrained();
  }
}

// String(e) for the Result of a handler error, even for a value that cannot be turned
// into a string.
function describe(e) {
  try {
    return String(e);
  } catch (_) {
    return 'the handler threw a value that cannot be converted to a string';
  }
}

function snake(kind) {
  return kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

// Serves `handler` on this process's stdin/stdout, then exits: 0 after Goodbye or the
// end of stdin, 2 (with one line on stderr) on a protocol error.
//
// handler(event, ctx) may be async; it returns a Buffer, string, JSON-able value,
// null or a Response, or throws Reject (dead-letter), Retry or any error (retried).
// stdout is reserved for frames: process.stdout.write (and so console.log) is
// replaced, and complete lines become INFO log frames of the current invocation.
function run(handler, { maxInflight = 0 } = {}) {
  if (stdio.isTerminal(1)) {
    process.stderr.write('sluice-sdk: stdout is a terminal, but it carries binary frames to sluice: this program ' +
                         'is a sluice function worker (runtime: stdio) and is started by sluice\n');
    process.exit(EXIT_PROTOCOL);
  }
  const partial = new Map(); // idKey -> [id, the text after the last newline]
  let worker;
  const streamWrite = stdio.captureStdout((chunk, encoding, cb) => {
    const ctx = current.getStore();
    const id = ctx ? ctx.num : 0;
    const key = ctx ? ctx.key : 0;
    const held = partial.get(key);
    const text = (held ? held[1] : '') +
      (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const lines = text.split('\n');
    const rest = lines.pop();
    if (rest) partial.set(key, [id, rest]); else partial.delete(key);
    for (const line of lines) worker.log(line, 'info', id);
    if (typeof encoding === 'function') encoding(); else if (typeof cb === 'function') cb();
    return true;
  });
  const out = new stdio.FdOutput(1, streamWrite);
  const write = (buf) => {
    try {
      out.write(buf);
    } catch (e) {
      process.stderr.write(`sluice-sdk: cannot write to sluice: ${e.message}\n`);
      process.exit(EXIT_PROTOCOL);
    }
  };
  const input = new stdio.HandshakeInput(0, () => process.stdin);
  worker = new Worker(handler, {
    maxInflight,
    trackContext: true,
    write,
    done: (code) => {
      // Lines printed without a final newline (the worker is finished: sent directly).
      for (const [id, rest] of partial.values()) worker.pending.push(codec.encodeLog(id, pb.Level.INFO, rest));
      partial.clear();
      worker.flush();
      if (out.stream === null) process.exit(code);
      else out.stream(Buffer.alloc(0), () => process.exit(code));
    },
  });
  worker.start(input);
  worker.flush(); // Hello, now: sluice answers while the rest of the program loads
  // The handshake once the program's main module has run (as a stream would deliver it).
  setImmediate(() => input.start(() => worker.state === 'handshake'));
}

module.exports = { VERSION, SDK_NAME, Reject, Retry, Response, Context, Worker, newEvent, run };
