'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { PassThrough } = require('node:stream');
const sluice = require('..');

const TESTDATA = path.join(__dirname, '..', '..', 'testdata');

function fixture(name) {
  return fs.readFileSync(path.join(TESTDATA, `${name}.bin`));
}

function fixtures(...names) {
  return Buffer.concat(names.map(fixture));
}

function invoke(id, data) {
  return sluice.encodeFrame({ invoke: { id, event: { id: `ev-${id}`, data: Buffer.from(data) } } });
}

function cancel(id) {
  return sluice.encodeFrame({ cancel: { id } });
}

// Runs a Worker in-process on `input` (a Buffer: one chunk, or an array of chunks);
// resolves to { code, frames, stderr, writes (the frame kinds of each write) }.
function serve(handler, input, options = {}) {
  return new Promise((resolve, reject) => {
    const out = [];
    let stderr = '';
    const stream = new PassThrough();
    const timer = setTimeout(() => reject(new Error('worker hung')), 60000);
    const worker = new sluice.Worker(handler, {
      ...options,
      write: (buf) => out.push(Buffer.from(buf)),
      stderr: { write: (s) => { stderr += s; } },
      done: (code) => {
        clearTimeout(timer);
        resolve({ code, frames: sluice.readFrames(Buffer.concat(out)), stderr,
                  writes: out.map((w) => sluice.readFrames(w).map((f) => f.kind)) });
      },
    });
    worker.start(stream);
    if (Array.isArray(input)) {
      for (const chunk of input) stream.write(chunk);
      stream.end();
    } else {
      stream.end(input);
    }
  });
}

function results(frames) {
  return frames.filter((f) => f.kind === 'result').map((f) => f.result);
}

function resultBytes(frames) {
  return frames.filter((f) => f.kind === 'result').map((f) => sluice.encodeFrame(f).toString('hex')).sort();
}

module.exports = { TESTDATA, fixture, fixtures, invoke, cancel, serve, results, resultBytes };
