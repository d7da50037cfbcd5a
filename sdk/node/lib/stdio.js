'use strict';
// run()'s ends of the pipes to sluice, without Node's stdin/stdout streams on the way
// to the first answer: creating them loads Node's stream and net modules, a measurable
// part of a cold start. Frames go out with fs.writeSync on fd 1 (a blocking pipe from
// sluice: a full pipe blocks until sluice reads, which bounds what the worker holds);
// the handshake is read with fs.readSync on fd 0 (there is nothing else a worker can do
// before its HelloAck), and then process.stdin takes over. Where an fd is non-blocking
// (EAGAIN), the stream does the rest. All of it runs on the event loop's thread.

const fs = require('node:fs');

const READ_BYTES = 64 * 1024;

// Writes frames to `fd`; once a write would block on a non-blocking fd, everything
// from then on goes through `streamWrite()` (the raw write of process.stdout), in order.
class FdOutput {
  constructor(fd, streamWrite) {
    this.fd = fd;
    this.streamWrite = streamWrite;
    this.stream = null; // the stream's write, once it took over
  }

  // Throws what the write throws (other than EAGAIN): sluice is gone.
  write(buf) {
    if (this.stream === null) {
      let off = 0;
      try {
        while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
        return;
      } catch (e) {
        if (e.code !== 'EAGAIN') throw e;
      }
      this.stream = this.streamWrite();
      if (off !== 0) buf = buf.subarray(off);
    }
    this.stream(buf);
  }
}

// The input a Worker reads (its 'data', 'end' and 'error' events and pause()): chunks
// read from `fd` synchronously while `handshaking()` is true, then `openStream()`'s
// stream (process.stdin), attached in a later turn so that answers to the chunks read
// here go out first.
class HandshakeInput {
  constructor(fd, openStream) {
    this.fd = fd;
    this.openStream = openStream;
    this.handlers = { data: null, end: null, error: null };
    this.stream = null;
    this.paused = false;
    this.ended = false;
  }

  on(name, fn) {
    this.handlers[name] = fn;
    if (this.stream) this.stream.on(name, fn);
    return this;
  }

  pause() {
    this.paused = true;
    if (this.stream) this.stream.pause();
  }

  // Reads while handshaking() is true, then attaches the stream.
  start(handshaking) {
    while (!this.paused && handshaking()) {
      const buf = Buffer.allocUnsafe(READ_BYTES);
      let n;
      try {
        n = fs.readSync(this.fd, buf, 0, READ_BYTES, null);
      } catch (e) {
        if (e.code === 'EAGAIN' || e.code === 'EINTR') break; // non-blocking fd 0: the stream reads
        this.ended = true;
        this.handlers.error(e);
        return;
      }
      if (n === 0) {
        this.ended = true;
        this.handlers.end();
        return;
      }
      this.handlers.data(n === READ_BYTES ? buf : buf.subarray(0, n));
    }
    if (!this.paused) setImmediate(() => this.attach());
  }

  attach() {
    if (this.paused || this.ended) return;
    this.stream = this.openStream();
    for (const [name, fn] of Object.entries(this.handlers)) this.stream.on(name, fn);
  }
}

// Makes `write` the write method of process.stdout, so that what user code prints
// becomes log frames. The stream is created (and patched) on first use of
// process.stdout after this call; when it may exist already (Node's stream module is
// loaded, which creating it requires), it is patched now. Returns a function that gives
// the stream's own write (bound), for FdOutput.
function captureStdout(write) {
  const desc = Object.getOwnPropertyDescriptor(process, 'stdout');
  const original = desc && desc.get ? () => desc.get.call(process) : () => desc.value;
  let stream = null;
  let rawWrite = null;
  const get = () => {
    if (stream === null) {
      stream = original();
      rawWrite = stream.write.bind(stream);
      stream.write = write;
    }
    return stream;
  };
  if (!desc || !desc.configurable) {
    get();
  } else {
    Object.defineProperty(process, 'stdout', { configurable: true, enumerable: desc.enumerable, get });
    const modules = process.moduleLoadList;
    if (!Array.isArray(modules) || modules.includes('NativeModule stream')) get();
  }
  return () => {
    get();
    return rawWrite;
  };
}

// True when `fd` is a terminal. The tty module loads Node's stream and net modules, so
// it is asked only about a character device (a pipe, the usual case, is none).
function isTerminal(fd) {
  try {
    if (!fs.fstatSync(fd).isCharacterDevice()) return false;
  } catch {
    return false;
  }
  return require('node:tty').isatty(fd);
}

module.exports = { isTerminal, FdOutput, HandshakeInput, captureStdout };
