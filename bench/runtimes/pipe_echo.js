'use strict';
// bench/runtimes baseline: a bare length-prefixed pipe echo loop in Node.js.
//
// Reads frames (a 4-byte big-endian length, then that many bytes) from stdin and writes
// each one back unchanged (the frames of one read in one write). Exits 0 at the end of
// stdin. No sluice code: the floor a Node stdio worker cannot beat (stdio-node in
// runtimes_bench.cc).
let buf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
  let off = 0;
  while (buf.length - off >= 4) {
    const n = buf.readUInt32BE(off);
    if (buf.length - off < 4 + n) break;
    off += 4 + n;
  }
  if (off > 0) {
    process.stdout.write(buf.subarray(0, off));
    buf = buf.subarray(off);
  }
});
process.stdin.on('end', () => process.exit(0));
