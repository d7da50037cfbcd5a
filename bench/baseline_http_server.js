// The raw baseline for HTTP ingress: a minimal Node.js HTTP/1.1 server that reads
// the request body, stores nothing and answers 202 with a JSON body of the same
// shape as sluice's. Usage: node baseline_http_server.js PORT
'use strict';
const http = require('http');
const { randomUUID } = require('crypto');
const port = Number(process.argv[2] || 0);
let n = 0;
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    const body = JSON.stringify({ id: randomUUID(), topic: 'bench', partition: 0, offset: n++ });
    res.writeHead(202, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
